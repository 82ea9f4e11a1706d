"""Strict settings files: YAML read into frozen dataclasses, every mistake named.

Unknown keys, wrong types and malformed dates are :class:`~retain.errors.ConfigError` naming the
file and the key (dotted for nested sections), so a typo fails before any data are read. A key
that moved to another file is an error saying where it went. A dataclass field ``source``
(when present, in nested sections too) receives the file's path, for later messages.

Every key is optional, and a section given in part keeps the defaults of the keys it leaves
out: a nested section (a dataclass) or a mapping of settings (a ``dict`` field such as
``model``) is laid over the field's default, so ``model: {max_depth: 6}`` changes one setting
and keeps the others.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from retain.errors import ConfigError, quote, shorten
from retain.yamlfile import load_yaml

__all__ = ["field_default", "read_settings", "settings_keys"]

Settings = TypeVar("Settings")
_NONE = object()


def read_settings(
    cls: type[Settings],
    path: str | Path,
    *,
    moved: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Settings:
    """Read ``path`` (YAML) into the dataclass ``cls``, checking every key and type.

    Parameters
    ----------
    cls : type
        A (frozen) dataclass; nested dataclass fields are sections.
    path : str or Path
        The YAML file.
    moved : mapping of str to str, optional
        Keys that no longer belong in this file -> the file they moved to.
    context : mapping, optional
        Values of fields that do not come from the file (e.g. the workspace config a job runs
        in); their names are not keys of the file.

    Raises
    ------
    ConfigError
        Unreadable YAML, not a mapping, a moved key, an unknown key or a value of the wrong type.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read settings file {path}: {shorten(error, 200)}") from None
    raw = load_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    misplaced = sorted(set(raw) & set(moved or {}))
    if misplaced:
        hints = "; ".join(
            f"'{key}' moved to {moved[key]}: delete it here and set it there"  # type: ignore[index]
            for key in misplaced
        )
        raise ConfigError(f"{path}: {hints} (every command reads it from there)")
    return _build(cls, raw, str(path), "", dict(context or {}))


def settings_keys(cls: type) -> tuple[str, ...]:
    """The keys a settings file of ``cls`` may hold (every field but ``source``)."""
    return tuple(item.name for item in dataclasses.fields(cls) if item.name != "source")


def field_default(item: dataclasses.Field) -> Any:
    """The default value of a dataclass field (``default_factory`` called); ``_NONE`` if none."""
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return _NONE


def _build(cls: type[Settings], raw: dict, file: str, prefix: str, context: dict) -> Settings:
    fields = {item.name: item for item in dataclasses.fields(cls)}
    known = {name: item for name, item in fields.items() if name != "source"}
    for name in context:
        known.pop(name, None)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        keys = ", ".join(f"'{prefix}{shorten(key)}'" for key in unknown[:10])
        raise ConfigError(f"{file}: unknown key {keys}; known keys: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    values = {
        name: _convert(hints[name], value, file, f"{prefix}{name}", field_default(fields[name]))
        for name, value in raw.items()
    }
    if "source" in fields:
        values["source"] = file
    return cls(**values, **context)


def _convert(hint: Any, value: Any, file: str, key: str, default: Any = _NONE) -> Any:
    """Check ``value`` against the type hint of its key, converting dates and lists; sections
    (dataclasses, mappings) are laid over their ``default``."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in arguments:
            return None
        (hint,) = [argument for argument in arguments if argument is not type(None)]
        return _convert(hint, value, file, key, default)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: '{key}' must be a mapping of settings, got {quote(value)}")
        section = _build(hint, value, file, f"{key}.", {})
        if not dataclasses.is_dataclass(default):
            return section
        given = {name: getattr(section, name) for name in value}
        if any(item.name == "source" for item in dataclasses.fields(hint)):
            given["source"] = file
        return dataclasses.replace(default, **given)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{file}: '{key}' must be a list, got {quote(value)}")
        return tuple(_convert(arguments[0], item, file, key) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: '{key}' must be a mapping, got {quote(value)}")
        return {**default, **value} if isinstance(default, dict) else dict(value)
    return _scalar(hint, value, file, key)


def _scalar(hint: Any, value: Any, file: str, key: str) -> Any:
    if hint is date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"{file}: '{key}' must be a date YYYY-MM-DD, got {quote(value)}"
            ) from None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a model version written as a number (`uplift: 3`)
    if hint is Any or (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{file}: '{key}' must be {hint.__name__}, got {quote(value)}")
