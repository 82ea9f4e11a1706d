"""Errors that the command line reports without a traceback.

Every error a user can fix (bad data, bad config, a missing model) is a :class:`RetainError`.
The CLI prints its message and exits with :attr:`RetainError.exit_code`; a Python traceback is
shown only with ``--debug``.
"""

from __future__ import annotations

import errno
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ConfigError",
    "DataError",
    "DataProblem",
    "ModelFileError",
    "OutputError",
    "RetainError",
    "StorageError",
    "quote",
    "shorten",
    "storage_error",
]

MAX_SAMPLES = 5
#: Characters of one value quoted in a message (a sample, a setting's value).
MAX_VALUE_CHARS = 80
#: Characters of a whole message; the rest is cut (a last guard, whatever the input).
MAX_MESSAGE_CHARS = 20_000


class RetainError(Exception):
    """Base class of errors caused by user input, reported cleanly by the CLI.

    Its text is at most :data:`MAX_MESSAGE_CHARS` characters, whatever went into it.
    """

    exit_code: int = 2

    def __str__(self) -> str:
        text = super().__str__()
        if len(text) <= MAX_MESSAGE_CHARS:
            return text
        return text[:MAX_MESSAGE_CHARS] + f"\n... (message cut at {MAX_MESSAGE_CHARS:,} characters)"


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    # a few items per container, two levels deep: a YAML alias bomb prints as a few dozen bytes
    short.maxlevel = 2
    short.maxdict = short.maxlist = short.maxtuple = short.maxset = short.maxfrozenset = 4
    short.maxdeque = short.maxarray = 4
    short.maxstring = short.maxother = short.maxlong = MAX_VALUE_CHARS
    return short


_SHORT = _short_repr()


def shorten(text: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """A bounded ``repr`` of ``value`` for messages: containers cut to a few items, two levels
    deep, at most ``limit`` characters; numpy and pandas scalars shown as plain Python values."""
    try:
        text = _SHORT.repr(_plain(value))
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return shorten(text, limit)


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong with one column of one input table.

    Parameters
    ----------
    table : str
        Logical table name (``customers``, ``transactions``, ``interactions``).
    file : str
        Path of the file (or folder of Parquet parts) the table was read from.
    column : str or None
        Offending column; ``None`` when the problem concerns the whole file.
    problem : str
        What is wrong, in plain words.
    rows : int, default=0
        How many rows are affected (0 when not row-based).
    samples : tuple, default=()
        Up to five offending values, as found in the input.
    """

    table: str
    file: str
    column: str | None
    problem: str
    rows: int = 0
    samples: tuple = field(default_factory=tuple)

    def __str__(self) -> str:
        where = f"{self.table} ({self.file})"
        if self.column is not None:
            where += f", column '{shorten(self.column)}'"
        text = f"{where}: {self.problem}"
        if self.rows:
            text += f" [{self.rows:,} row{'s' if self.rows != 1 else ''}]"
        if self.samples:
            shown = ", ".join(quote(value) for value in self.samples[:MAX_SAMPLES])
            text += f"; e.g. {shown}"
        return text


def _plain(value: object) -> object:
    """Unwrap numpy/pandas scalars so that ``repr`` shows what the user wrote."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


class DataError(RetainError):
    """Input data break the data contract; carries every problem found, not just the first."""

    def __init__(self, problems: DataProblem | Iterable[DataProblem]):
        if isinstance(problems, DataProblem):
            problems = [problems]
        self.problems: Sequence[DataProblem] = list(problems)
        count = len(self.problems)
        lines = [f"{count} problem{'s' if count != 1 else ''} in the input data:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class ConfigError(RetainError):
    """A configuration, mapping or definition file is invalid."""


class OutputError(RetainError):
    """An output path retain may not write or replace (a file or folder it did not write)."""


class StorageError(RetainError):
    """The file system refused a read or write: read-only, full, a file where a folder should
    be, no permission. Nothing partial was left behind."""


class ModelFileError(RetainError):
    """A registered model's files do not match the checksums recorded when it was registered,
    or the model comes from a tracking server that is not trusted."""


_STORAGE_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "a file or folder of that name is in the way",
    errno.EISDIR: "a folder stands where a file should be",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def storage_error(error: BaseException, action: str | None = None) -> StorageError | None:
    """A clean :class:`StorageError` for a file-system error, ``None`` for anything else.

    ``OSError`` (and pyarrow's, which derive from it) and DuckDB's I/O errors qualify; the
    message names the path (or ``action``, e.g. ``"write the list to out/"``) and what went
    wrong, without a traceback.
    """
    if isinstance(error, OSError):
        reason = _STORAGE_HINTS.get(error.errno or -1) or (error.strerror or str(error))
        if action is not None:
            return StorageError(f"cannot {action}: {reason}")
        paths = [name for name in (error.filename, error.filename2) if name]
        where = " -> ".join(shorten(name, 300) for name in map(str, paths))
        if not where:  # pyarrow's errors name no path
            detail = f"{reason} ({shorten(error, 300)})" if error.errno else shorten(error, 500)
            return StorageError(f"cannot read or write files: {detail}")
        return StorageError(f"cannot read or write {where}: {reason}")
    module = type(error).__module__ or ""
    if module.startswith(("duckdb", "_duckdb")):
        text = str(error)
        reason = next((hint for words, hint in _DUCKDB_HINTS if words in text), None)
        if reason is None and type(error).__name__ != "IOException":
            return None  # not the file system's doing
        where = f"{action}" if action else "read or write the store"
        detail = f"{reason} ({shorten(text, 300)})" if reason else shorten(text, 500)
        return StorageError(f"cannot {where}: {detail}")
    return None


# DuckDB reports file-system errors in its own exception types (a failed commit is a
# TransactionException), with the operating system's words in the text
_DUCKDB_HINTS = (
    ("No space left on device", "the disk is full"),
    ("Disk quota exceeded", "the disk quota is exhausted"),
    ("Read-only file system", "the file system is read-only"),
    ("Permission denied", "permission denied"),
)
