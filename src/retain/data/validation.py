"""Turn a table as read into its canonical form, collecting every problem on the way.

Two passes, both vectorised:

1. *Parsing* (here): rename mapped columns, then convert each canonical column by its kind
   (:mod:`retain.data.schemas`). Values that cannot be converted (``"yesterday"`` as a
   timestamp, ``"12,50"`` as an amount) are problems, quoted as they were in the input.
2. *Rules* (pandera, :func:`~retain.data.schemas.canonical_schema`) on the converted frame:
   missing values in required columns, infinite numbers, duplicate customer ids. Failing rows
   are traced back to the raw values for the samples.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api import types

from retain.data.mapping import TableMapping, position_name
from retain.data.schemas import ColumnSpec, TableSpec, canonical_schema, empty_column
from retain.errors import MAX_SAMPLES, DataProblem
from retain.workspace import TimestampWindow

__all__ = ["MAX_ABS_NUMBER", "NA_TOKENS", "conform_table", "parse_column"]

# Text that means "no value" in a numeric column (exports from R, SQL clients, spreadsheets).
NA_TOKENS = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
# An explicit UTC offset after a clock time: "...10:00:00+02:00", "...10:00Z", "...1000-0500".
OFFSET_SUFFIX = r"\d{2}:?\d{2}(?::?\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
ISO_HINT = "ISO 8601 such as 2024-03-01 or 2024-03-01T10:00:00+02:00"
SHOWN_COLUMNS = 12
#: Largest magnitude of a number: sums are exact integers of millionths in 64 bits (about
#: 9.2e12 units), so a value of 1e13 overflows on its own; 1e12 leaves room to add a few.
MAX_ABS_NUMBER = 1e12

RULE_TEXT = {
    "not_nullable": "missing values",
    "field_uniqueness": "duplicate ids (customer_id must be unique)",
    "finite": "infinite values",
}


def conform_table(
    raw: pd.DataFrame,
    spec: TableSpec,
    mapping: TableMapping,
    file: str,
    *,
    window: TimestampWindow | None = None,
) -> tuple[pd.DataFrame, list[DataProblem]]:
    """Rename, parse and check one table.

    Parameters
    ----------
    raw : pandas.DataFrame
        The table as read by :func:`~retain.data.loaders.read_table` (RangeIndex).
    spec : TableSpec
        Its canonical spec.
    mapping : TableMapping
        Column names, time format and zone.
    file : str
        Path named in problems.
    window : TimestampWindow, optional
        Plausible dates (default: 1900-01-01 to today + 1 day).

    Returns
    -------
    frame : pandas.DataFrame
        Canonical columns first (absent optional ones filled with missing values), then the
        extra columns as read. Meaningful only when ``problems`` is empty.
    problems : list of DataProblem
        Everything wrong with the table.
    """
    named, problems = _apply_column_names(raw, spec, mapping, file)
    absent = [name for name in spec.required_names if name not in named.columns]
    mapped_away = {
        canonical for canonical, own in mapping.columns.items() if own not in raw.columns
    }
    problems += [
        _missing_column(spec.name, file, name, named.columns, mapping.header)
        for name in absent
        if name not in mapped_away
    ]
    columns: dict[str, pd.Series] = {}
    unparsed: dict[str, pd.Series] = {}
    for column in spec.columns:
        if column.name not in named.columns:
            columns[column.name] = empty_column(column.kind, len(named), named.index)
            continue
        parsed, bad = parse_column(named[column.name], column, mapping)
        columns[column.name] = parsed
        unparsed[column.name] = bad
        if bad.any():
            problem = _unparseable_text(column, mapping)
            problems.append(_row_problem(spec.name, file, column.name, problem, named, bad))
    extras = [name for name in named.columns if name not in columns]
    columns.update((name, named[name]) for name in extras)
    frame = pd.DataFrame(columns, copy=False)
    problems += _rule_problems(frame, named, spec, absent, unparsed, file)
    problems += _limit_problems(frame, named, spec, file, window or TimestampWindow())
    order = {name: position for position, name in enumerate(spec.names)}
    problems.sort(key=lambda problem: order.get(problem.column, len(order)))
    return frame, problems


def parse_column(
    raw: pd.Series, column: ColumnSpec, mapping: TableMapping
) -> tuple[pd.Series, pd.Series]:
    """Convert one raw column to the dtype of its kind.

    Parameters
    ----------
    raw : pandas.Series
        Text (from a CSV) or typed values (from Parquet).
    column : ColumnSpec
        The canonical column.
    mapping : TableMapping
        Supplies the time format and zone.

    Returns
    -------
    parsed : pandas.Series
        Converted values; missing where the input was empty or unconvertible.
    unparseable : pandas.Series of bool
        Rows that held something that could not be converted.
    """
    if column.kind == "id":
        return _parse_id(raw), _nowhere(raw)
    if column.kind == "time":
        return _parse_time(raw, mapping.time_format, mapping.timezone)
    if column.kind == "number":
        return _parse_number(raw)
    return _parse_text(raw), _nowhere(raw)


def _parse_id(raw: pd.Series) -> pd.Series:
    """Ids are text: never numbers, no surrounding blanks, empty means missing."""
    if types.is_float_dtype(raw.dtype) and (raw.dropna() % 1 == 0).all():
        raw = raw.astype("Int64")  # 123.0 (an int column with gaps) is the id "123"
    text = raw.astype("str")
    if not (types.is_numeric_dtype(raw.dtype) or types.is_bool_dtype(raw.dtype)):
        text = text.str.strip()
    return text.mask(text == "")


def _parse_text(raw: pd.Series) -> pd.Series:
    text = raw.astype("str")
    return text.mask(text == "")


def _parse_number(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    if types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(values, index=raw.index, name=raw.name, copy=False), _nowhere(raw)
    text = raw.astype("str").str.strip()
    missing = text.isna() | text.isin(NA_TOKENS)
    parsed = pd.to_numeric(text.mask(missing), errors="coerce").astype("float64")
    return parsed, parsed.isna() & ~missing


def _parse_time(
    raw: pd.Series, time_format: str | None, timezone: str | None
) -> tuple[pd.Series, pd.Series]:
    """Parse to UTC-naive ``datetime64[us]``: convert offsets, read naive times in ``timezone``."""
    if types.is_datetime64_any_dtype(raw.dtype):
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            parsed = raw.dt.tz_convert("UTC").dt.tz_localize(None)
        else:
            parsed = _local_to_utc(raw, timezone) if timezone else raw
        return parsed.astype("datetime64[us]"), _nowhere(raw)
    text = raw.astype("str").str.strip()
    missing = text.isna() | (text == "")
    parsed = pd.to_datetime(
        text.mask(missing), format=time_format or "ISO8601", utc=True, errors="coerce"
    )
    wall = parsed.dt.tz_convert(None).astype("datetime64[us]")
    if timezone:
        naive = ~_has_offset(text, time_format)
        wall[naive] = _local_to_utc(wall[naive], timezone)
    return wall, parsed.isna() & ~missing


def _has_offset(text: pd.Series, time_format: str | None) -> pd.Series:
    if time_format is not None:
        has = "%z" in time_format or "%Z" in time_format
        return pd.Series(has, index=text.index)
    return text.str.contains(OFFSET_SUFFIX, regex=True).fillna(False).astype(bool)


def _local_to_utc(wall: pd.Series, timezone: str) -> pd.Series:
    """Read naive wall-clock times in ``timezone``; return them as UTC-naive.

    In the repeated hour when clocks go back, a time is read as standard time; times in the
    hour skipped when clocks go forward move forward to the first valid instant.
    """
    standard_time = np.zeros(len(wall), dtype=bool)
    local = wall.dt.tz_localize(timezone, ambiguous=standard_time, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")


def _nowhere(raw: pd.Series) -> pd.Series:
    return pd.Series(False, index=raw.index)


def _apply_column_names(
    raw: pd.DataFrame, spec: TableSpec, mapping: TableMapping, file: str
) -> tuple[pd.DataFrame, list[DataProblem]]:
    """Rename the user's columns to canonical names as the mapping says."""
    problems, renames = [], {}
    for canonical, own in mapping.columns.items():
        if own not in raw.columns and not mapping.header:
            position = own.removeprefix(position_name(""))
            problem = (
                f"field {position} (mapped to {canonical}) is not in the file: its lines have "
                f"{raw.shape[1]} fields"
            )
            problems.append(DataProblem(spec.name, file, canonical, problem))
        elif own not in raw.columns:
            problem = f"column mapped to {canonical} is not in the file; " + _listing(raw.columns)
            problems.append(DataProblem(spec.name, file, own, problem))
        elif canonical != own and canonical in raw.columns:
            problem = f"the file has a column '{canonical}' and also maps '{own}' to it; drop one"
            problems.append(DataProblem(spec.name, file, canonical, problem))
        else:
            renames[own] = canonical
    return raw.rename(columns=renames), problems


def _missing_column(
    table: str, file: str, name: str, present: pd.Index, header: bool = True
) -> DataProblem:
    if not header:
        text = (
            f"required column is not mapped; the file has no header line (header: false), so "
            f"give its position: columns: {{{name}: N}} (1 = the first of its "
            f"{len(present)} fields)"
        )
        return DataProblem(table, file, name, text)
    text = "required column is missing; " + _listing(present)
    lowered = {str(column).lower(): str(column) for column in present}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        text += (
            f"; if '{lowered[close[0]]}' is it, map it: columns: {{{name}: {lowered[close[0]]}}}"
        )
    elif len(present) == 1:
        header = str(present[0])
        guess = next((sep for sep in (";", "\t", "|", ",", " ") if sep in header), None)
        if guess is not None:
            text += f"; the header looks {guess!r}-separated: set separator in a mapping file"
    return DataProblem(table, file, name, text)


def _listing(columns: pd.Index) -> str:
    names = [str(name) for name in columns]
    shown = ", ".join(names[:SHOWN_COLUMNS]) + (", ..." if len(names) > SHOWN_COLUMNS else "")
    return f"columns in the file: {shown}"


def _unparseable_text(column: ColumnSpec, mapping: TableMapping) -> str:
    if column.kind == "number":
        return "not a number"
    expected = f"format {mapping.time_format}" if mapping.time_format else ISO_HINT
    what = "date" if column.name == "signup_date" else "timestamp"
    return f"unparseable {what}, expected {expected}"


def _rule_problems(
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    spec: TableSpec,
    absent: list[str],
    unparsed: dict[str, pd.Series],
    file: str,
) -> list[DataProblem]:
    """Run the pandera schema; report failures with the raw values of the failing rows."""
    schema = canonical_schema(spec.name).remove_columns(absent)
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return []
    problems = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        rows = pd.Index(group["index"].dropna().astype("int64").unique())
        if check == "not_nullable":  # rows that held junk were already reported as unparseable
            rows = rows[~unparsed[column].to_numpy()[rows]]
        if len(rows) == 0 and not group["index"].isna().all():
            continue
        mask = pd.Series(raw.index.isin(rows), index=raw.index)
        problem = RULE_TEXT.get(str(check), f"fails check {check}")
        if check == "not_nullable":
            problem += f" ({_row_numbers(rows)})"
        problems.append(_row_problem(spec.name, file, str(column), problem, raw, mask))
    return problems


def _limit_problems(
    frame: pd.DataFrame, raw: pd.DataFrame, spec: TableSpec, file: str, window: TimestampWindow
) -> list[DataProblem]:
    """Numbers too large for exact sums; dates outside the plausible window."""
    earliest, latest = window.bounds()
    start, end = pd.Timestamp(earliest), pd.Timestamp(latest) + pd.Timedelta(days=1)
    problems = []
    for column in spec.columns:
        if column.name not in raw.columns:
            continue
        values = frame[column.name]
        if column.kind == "number":
            huge = (values.abs() > MAX_ABS_NUMBER).fillna(False) & np.isfinite(values)
            if huge.any():
                problem = (
                    f"beyond ±{MAX_ABS_NUMBER:,.0f}: sums are kept exact in integer millionths, "
                    "which cannot hold such values (a wrong unit or a placeholder?)"
                )
                problems.append(_row_problem(spec.name, file, column.name, problem, raw, huge))
        elif column.kind == "time":
            outside = ((values < start) | (values >= end)).fillna(False)
            if outside.any():
                problem = (
                    f"dated outside {earliest} to {latest}, the plausible window "
                    "(timestamp_window in retain.yaml)"
                )
                problems.append(_row_problem(spec.name, file, column.name, problem, raw, outside))
    return problems


def _row_problem(
    table: str, file: str, column: str, problem: str, raw: pd.DataFrame, mask: pd.Series
) -> DataProblem:
    """A problem with the rows of ``mask``, sampling distinct raw values of ``column``."""
    values = raw[column][mask] if column in raw.columns else pd.Series(dtype=object)
    samples = tuple(values.head(10_000).drop_duplicates().head(MAX_SAMPLES).tolist())
    return DataProblem(table, file, column, problem, rows=int(mask.sum()), samples=samples)


def _row_numbers(rows: pd.Index) -> str:
    """Where the first missing values are, counting data rows from 1 (the header not counted)."""
    shown = ", ".join(str(row + 1) for row in rows.sort_values()[:MAX_SAMPLES])
    more = ", ..." if len(rows) > MAX_SAMPLES else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"
