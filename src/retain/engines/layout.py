"""Names shared by the feature compiler and the engines: the columns staging adds to the
sources and the compiled query reads, and the tables a snapshot query is run with.

The compiler (:mod:`retain.features.compiler`) turns definitions into Ibis expressions over
these names; an engine prepares tables that carry them (DuckDB stages key codes, epoch days and
millionths once per dataset) and binds the cutoffs table by name when it runs a query.
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "AS_OF_DAY",
    "CODE_PREFIX",
    "COLUMNS",
    "CUTOFFS_TABLE",
    "DAY_PREFIX",
    "EPOCH",
    "KEY",
    "KEYS",
    "KEY_CODE",
    "MASK_BITS",
    "MICRO",
    "MICROS_PREFIX",
    "code_column",
    "epoch_day",
]

#: The entity key of every canonical table.
KEY = "customer_id"
#: The cutoff's epoch day, the one column of the cutoffs table a snapshot query joins.
AS_OF_DAY = "_as_of_day"
#: Name the cutoffs table is bound by when a compiled query runs.
CUTOFFS_TABLE = "_retain_cutoffs"
#: Integer code of the join key (see ``keys`` in :func:`retain.features.compiler.compile_snapshot`).
KEY_CODE = "_key"
#: Name of the key-code table (in a staged database, and in a mapping of Ibis tables).
KEYS = "_keys"
#: Name of the table of column statistics: source, column, distinct values.
COLUMNS = "_columns"
#: ``_code_<column>``: codes (0 .. MASK_BITS - 1) of a text column with few values.
CODE_PREFIX = "_code_"
#: ``_day_<column>``: a time column's epoch day; ``_micros_<column>``: a number column in
#: integer millionths. Optional: the compiler computes them when a source lacks them.
DAY_PREFIX = "_day_"
MICROS_PREFIX = "_micros_"
EPOCH = date(1970, 1, 1)
#: Sums run on integers of 10^-6 units: exact, so their result is the same in any order.
MICRO = 1_000_000
#: A column with at most this many distinct values is counted with a 64-bit mask (sign bit unused).
MASK_BITS = 63


def code_column(column: str) -> str:
    """Name of the value-code column of a text column."""
    return f"{CODE_PREFIX}{column}"


def epoch_day(day: date) -> int:
    """Days since 1970-01-01 of a date (the engines' integer calendar)."""
    return (day - EPOCH).days
