"""Errors that the command line reports without a traceback.

Every error a user can fix (bad data, bad config, a missing model) is a :class:`RetainError`.
The CLI prints its message and exits with :attr:`RetainError.exit_code`; a Python traceback is
shown only with ``--debug``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["ConfigError", "DataError", "DataProblem", "RetainError"]

MAX_SAMPLES = 5


class RetainError(Exception):
    """Base class of errors caused by user input, reported cleanly by the CLI."""

    exit_code: int = 2


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
            where += f", column '{self.column}'"
        text = f"{where}: {self.problem}"
        if self.rows:
            text += f" [{self.rows:,} row{'s' if self.rows != 1 else ''}]"
        if self.samples:
            shown = ", ".join(repr(_plain(value)) for value in self.samples[:MAX_SAMPLES])
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
