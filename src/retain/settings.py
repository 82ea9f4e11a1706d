"""Strict settings files: YAML read into frozen dataclasses, every mistake named.

Unknown keys, wrong types and malformed dates are :class:`~retain.errors.ConfigError` naming the
file and the key (dotted for nested sections), so a typo fails before any data are read. A
dataclass field ``source`` (when present) receives the file's path, for later messages.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from retain.errors import ConfigError, quote, shorten
from retain.yamlfile import load_yaml

__all__ = ["read_settings"]

Settings = TypeVar("Settings")


def read_settings(cls: type[Settings], path: str | Path) -> Settings:
    """Read ``path`` (YAML) into the dataclass ``cls``, checking every key and type.

    Raises
    ------
    ConfigError
        Unreadable YAML, not a mapping, an unknown key or a value of the wrong type.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read settings file {path}: {shorten(error, 200)}") from None
    raw = load_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    if "source" in {item.name for item in dataclasses.fields(cls)}:
        raw = {**raw, "source": str(path)}
    return _build(cls, raw, str(path), "")


def _build(cls: type[Settings], raw: dict, file: str, prefix: str) -> Settings:
    known = {item.name: item for item in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        keys = ", ".join(f"'{prefix}{shorten(key)}'" for key in unknown[:10])
        choices = ", ".join(name for name in known if name != "source")
        raise ConfigError(f"{file}: unknown key {keys}; known keys: {choices}")
    hints = typing.get_type_hints(cls)
    values = {
        name: _convert(hints[name], value, file, f"{prefix}{name}") for name, value in raw.items()
    }
    return cls(**values)


def _convert(hint: Any, value: Any, file: str, key: str) -> Any:
    """Check ``value`` against the type hint of its key, converting dates and lists."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in arguments:
            return None
        (hint,) = [argument for argument in arguments if argument is not type(None)]
        return _convert(hint, value, file, key)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: '{key}' must be a mapping of settings, got {quote(value)}")
        return _build(hint, value, file, f"{key}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{file}: '{key}' must be a list, got {quote(value)}")
        return tuple(_convert(arguments[0], item, file, key) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: '{key}' must be a mapping, got {quote(value)}")
        return dict(value)
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
    if hint is Any or (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{file}: '{key}' must be {hint.__name__}, got {quote(value)}")
