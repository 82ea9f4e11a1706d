"""Column mapping: how a user's files differ from the canonical tables (names, formats, zones).

A mapping is a small YAML file, one section per table, every key optional::

    transactions:
      file: purchases.txt            # another file (csv/parquet/folder) inside the data folder
      separator: whitespace          # ",", ";", "|", "tab" (or "\\t"), "whitespace"
      encoding: latin-1              # text encoding of a CSV (default utf-8, BOM or not)
      columns: {customer_id: ID, timestamp: date, amount: dollars}   # canonical: yours
      timestamp_format: "%Y%m%d"     # strftime format (ISO 8601 otherwise)
      timezone: Europe/Berlin        # zone of naive timestamps (default UTC)
      duplicates: auto               # auto | keep | drop (see DUPLICATE_POLICIES)
    customers:
      columns: {customer_id: cust}
      date_format: "%d/%m/%Y"        # format of signup_date
    campaigns:                       # interactions, campaigns and costs: as transactions,
      columns: {group: arm}          # without duplicates

A text file without a header line says ``header: false`` and gives its columns by position
(1 = the first field): ``columns: {customer_id: 1, timestamp: 2, amount: 4}``. Fields it does
not map are kept as ``column_<position>``.

Anything unknown is a :class:`~retain.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import codecs
import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from retain.data.schemas import TABLES
from retain.errors import ConfigError, quote, shorten
from retain.yamlfile import load_yaml

__all__ = [
    "DUPLICATE_POLICIES",
    "Mapping",
    "TableMapping",
    "load_mapping",
    "mapping_from_dict",
    "position_name",
    "resolve_mapping",
]

# The key that holds the format of each table's time column (signup_date or timestamp).
TIME_FORMAT_KEYS = {
    "customers": "date_format",
    "transactions": "timestamp_format",
    "interactions": "timestamp_format",
    "campaigns": "timestamp_format",
    "costs": "timestamp_format",
}
COMMON_KEYS = ("file", "separator", "encoding", "header", "columns", "timezone")
#: Keys only some tables take.
TABLE_KEYS = {"transactions": ("duplicates",)}
#: ``duplicates`` of transactions: ``auto`` drops rows repeating an earlier order's
#: ``order_id`` and keeps (and counts) identical rows without one, as they may be real repeat
#: purchases; ``drop`` drops both; ``keep`` keeps both, counted.
DUPLICATE_POLICIES = ("auto", "keep", "drop")
#: Name of the field at ``position`` (1 = first) of a file without a header line.
POSITION_NAME = "column_{}"
SEPARATOR_NAMES = {"whitespace": r"\s+", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True)
class TableMapping:
    """How one table is stored, as far as it differs from the contract.

    Parameters
    ----------
    file : str or None, default=None
        File or folder name inside the data folder (relative, no ``..``); ``None`` looks for
        ``NAME.csv``, ``NAME.parquet`` or ``NAME/``.
    separator : str, default=","
        Field separator of a CSV; ``"whitespace"`` splits on runs of blanks.
    encoding : str, default="utf-8"
        Text encoding of a CSV. A UTF-8 byte-order mark is always accepted.
    header : bool, default=True
        Whether a CSV's first line names its columns. Without one, fields are named
        ``column_1``, ``column_2``, ... and ``columns`` maps to those names (the YAML gives
        positions).
    columns : dict, default={}
        Canonical name -> name in the file, for the columns whose names differ.
    time_format : str or None, default=None
        strftime format of the time column; ``None`` means ISO 8601.
    timezone : str or None, default=None
        IANA zone of naive timestamps; ``None`` means they are UTC already.
    duplicates : {"auto", "keep", "drop"}, default="auto"
        Transactions only: what to do with repeated rows (see :data:`DUPLICATE_POLICIES`).
    """

    file: str | None = None
    separator: str = ","
    encoding: str = "utf-8"
    header: bool = True
    columns: dict[str, str] = field(default_factory=dict)
    time_format: str | None = None
    timezone: str | None = None
    duplicates: str = "auto"

    @property
    def csv_separator(self) -> str:
        """The separator as :func:`pandas.read_csv` wants it."""
        return SEPARATOR_NAMES.get(self.separator, self.separator)

    @property
    def csv_encoding(self) -> str:
        """The encoding to read with; plain UTF-8 becomes ``utf-8-sig`` so a BOM is dropped."""
        return "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding


@dataclass(frozen=True)
class Mapping:
    """A parsed, checked mapping file: one :class:`TableMapping` per table mentioned.

    Parameters
    ----------
    tables : dict of str to TableMapping
        Sections of the mapping; tables not mentioned follow the contract as is.
    source : str, default=""
        Where the mapping came from (a path, ``"<dict>"``, or ``""`` for no mapping).
    text : str, default=""
        Its text, hashed into the dataset fingerprint.
    """

    tables: dict[str, TableMapping] = field(default_factory=dict)
    source: str = ""
    text: str = ""

    def table(self, name: str) -> TableMapping:
        """The mapping of table ``name`` (the default one when the table is not mentioned)."""
        return self.tables.get(name, TableMapping())


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a YAML mapping file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Mapping

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or has unknown tables, keys or column names
        (the message names the file and the key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"mapping file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read mapping file {path}: {error}") from None
    data = load_yaml(text, str(path))
    return mapping_from_dict({} if data is None else data, source=str(path), text=text)


def mapping_from_dict(data: dict, source: str = "<dict>", text: str | None = None) -> Mapping:
    """Check a mapping given as a dictionary (the parsed YAML) and build a :class:`Mapping`.

    Parameters
    ----------
    data : dict
        ``{table: {key: value}}`` as in the YAML file.
    source : str, default="<dict>"
        Named in error messages.
    text : str or None, default=None
        Text for the fingerprint; a canonical JSON dump of ``data`` when ``None``.

    Returns
    -------
    Mapping
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of tables, got {type(data).__name__}")
    tables = {}
    for name, section in data.items():
        _check_known(source, str(name), str(name), TABLES, "table")
        tables[name] = _table_mapping(source, name, section)
    if text is None:
        text = json.dumps(data, sort_keys=True, default=str)
    return Mapping(tables=tables, source=source, text=text)


def resolve_mapping(mapping: str | Path | dict | Mapping | None) -> Mapping:
    """Turn whatever :func:`~retain.data.load_dataset` was given into a :class:`Mapping`."""
    if mapping is None:
        return Mapping()
    if isinstance(mapping, Mapping):
        return mapping
    if isinstance(mapping, dict):
        return mapping_from_dict(mapping)
    return load_mapping(mapping)


def position_name(position: int) -> str:
    """The name a field of a header-less file gets: ``column_<position>`` (1 = first)."""
    return POSITION_NAME.format(position)


def _table_mapping(source: str, table: str, section: Any) -> TableMapping:
    if section is None:
        return TableMapping()
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: {table}: expected keys such as columns, file, separator")
    time_key = TIME_FORMAT_KEYS[table]
    known = (*COMMON_KEYS, time_key, *TABLE_KEYS.get(table, ()))
    for key in section:
        _check_known(source, f"{table}.{key}", str(key), known, "key")
    options: dict[str, Any] = {}
    if "file" in section:
        options["file"] = _file(source, f"{table}.file", section["file"])
    if "separator" in section:
        options["separator"] = _separator(source, f"{table}.separator", section["separator"])
    if "encoding" in section:
        options["encoding"] = _encoding(source, f"{table}.encoding", section["encoding"])
    if "header" in section:
        options["header"] = _flag(source, f"{table}.header", section["header"])
    if "columns" in section:
        header = options.get("header", True)
        options["columns"] = _columns(source, table, section["columns"], header)
    if "duplicates" in section:
        options["duplicates"] = _duplicates(source, f"{table}.duplicates", section["duplicates"])
    if time_key in section:
        options["time_format"] = _time_format(source, f"{table}.{time_key}", section[time_key])
    if "timezone" in section:
        options["timezone"] = _timezone(source, f"{table}.timezone", section["timezone"])
    return TableMapping(**options)


def _check_known(source: str, where: str, key: str, known: Iterable[str], what: str) -> None:
    known = list(known)
    if key in known:
        return
    message = f"{source}: {shorten(where)}: unknown {what} '{shorten(key)}'"
    close = difflib.get_close_matches(key[:100], known, n=1)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    if key in TIME_FORMAT_KEYS.values():
        message += "; customers take date_format, the other tables timestamp_format"
    raise ConfigError(f"{message}; expected one of: {', '.join(known)}")


def _text(source: str, where: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or str(value) == "":
        raise ConfigError(f"{source}: {where}: expected a non-empty name, got {quote(value)}")
    return str(value)


def _file(source: str, where: str, value: Any) -> str:
    """A file name inside the data folder: relative, without ``..`` (symlinks are checked when
    the folder is read, :func:`retain.data.files.locate_table`)."""
    name = _text(source, where, value)
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or PureWindowsPath(name).drive or ".." in path.parts:
        raise ConfigError(
            f"{source}: {where}: {quote(name)} is outside the data folder; name a file or folder "
            "inside it (relative, without '..')"
        )
    return name


def _separator(source: str, where: str, value: Any) -> str:
    if isinstance(value, str) and (value in SEPARATOR_NAMES or len(value) == 1):
        return value
    if value == "\\t":  # written unquoted in YAML, a tab arrives as backslash-t
        return "\t"
    names = ", ".join(SEPARATOR_NAMES)
    raise ConfigError(
        f"{source}: {where}: expected one character or one of {names}; got {quote(value)}"
    )


def _encoding(source: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{source}: {where}: expected the name of a text encoding, got {quote(value)}"
        )
    try:
        info = codecs.lookup(value)
    except LookupError:
        raise ConfigError(f"{source}: {where}: unknown text encoding {quote(value)}") from None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13, hex: not text
        raise ConfigError(
            f"{source}: {where}: {quote(value)} is not a text encoding; use one such as "
            "utf-8, latin-1 or cp1252"
        )
    return value


def _flag(source: str, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: {where}: expected true or false, got {value!r}")
    return value


def _duplicates(source: str, where: str, value: Any) -> str:
    if value not in DUPLICATE_POLICIES:
        choices = ", ".join(DUPLICATE_POLICIES)
        raise ConfigError(f"{source}: {where}: expected one of {choices}; got {value!r}")
    return value


def _columns(source: str, table: str, value: Any, header: bool = True) -> dict[str, str]:
    where = f"{table}.columns"
    if not isinstance(value, dict):
        pairs = "canonical_name: your_name" if header else "canonical_name: position"
        raise ConfigError(f"{source}: {where}: expected {pairs} pairs")
    columns: dict[str, str] = {}
    for canonical, own in value.items():
        _check_known(source, f"{where}.{canonical}", str(canonical), TABLES[table].names, "column")
        if header:
            columns[canonical] = _text(source, f"{where}.{canonical}", own)
        else:
            columns[canonical] = position_name(_position(source, f"{where}.{canonical}", own))
    taken = [own for own in columns.values() if list(columns.values()).count(own) > 1]
    if taken:
        shown = taken[0] if header else taken[0].removeprefix(POSITION_NAME.format(""))
        what = "column" if header else "position"
        raise ConfigError(f"{source}: {where}: {what} '{shown}' is mapped more than once")
    return columns


def _position(source: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{source}: {where}: with header: false, give the field's position (1 = the first "
            f"field of a line), got {value!r}"
        )
    return value


def _time_format(source: str, where: str, value: Any) -> str:
    if not isinstance(value, str) or "%" not in value:
        raise ConfigError(f"{source}: {where}: expected a strftime format such as '%Y-%m-%d'")
    try:  # the parser the data are read with: a bad directive fails on any input
        pd.to_datetime(pd.Series(["2024-01-01"]), format=value, errors="coerce")
    except ValueError as error:
        raise ConfigError(
            f"{source}: {where}: invalid format {quote(value)}: {shorten(error, 200)}"
        ) from None
    return value


def _timezone(source: str, where: str, value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: {where}: unknown time zone {quote(value)}; use an IANA name like "
            "Europe/Berlin"
        ) from None
    return str(value)
