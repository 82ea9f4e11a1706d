"""YAML for settings and mapping files: safe types only, and a bound on what aliases expand to.

``yaml.safe_load`` constructs only plain types, but an anchor used many times (``&a``, ``*a``)
is one object referenced many times: 500 bytes can stand for millions of values, which any
message or code walking the structure then expands (a 500-byte mapping once printed 4.3 MB).
:func:`load_yaml` counts the values a document holds with every alias expanded and refuses a
document above :data:`MAX_VALUES`, a recursive alias, or a file above :data:`MAX_BYTES`. Small
aliases (a shared list, a ``<<: *defaults`` merge) still work.
"""

from __future__ import annotations

from typing import Any

import yaml

from retain.errors import ConfigError, shorten

__all__ = ["MAX_BYTES", "MAX_VALUES", "load_yaml"]

#: Values a settings document may hold with its aliases expanded.
MAX_VALUES = 100_000
#: Size of a settings or mapping file.
MAX_BYTES = 1_000_000


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document of plain values (``None`` for an empty one).

    Parameters
    ----------
    text : str
        The document.
    source : str
        File named in errors.

    Raises
    ------
    ConfigError
        Not valid YAML, larger than :data:`MAX_BYTES`, nested too deeply, or holding more than
        :data:`MAX_VALUES` values once its aliases are expanded (or a recursive alias).
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{source}: {len(text):,} characters; a settings file is at most {MAX_BYTES:,}"
        )
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {shorten(error, 500)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a settings file") from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Count the values of ``root`` with aliases expanded (each shared node counted once per
    use, computed once), without recursion; refuse too many and alias cycles."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_VALUES:
                raise ConfigError(
                    f"{source}: its anchors and aliases (&name, *name) expand to more than "
                    f"{MAX_VALUES:,} values; write the settings out instead"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError(f"{source}: an alias (*name) refers to itself; write it out")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
