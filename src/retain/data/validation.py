"""Turn a table as read into its canonical form, collecting every problem on the way.

Two passes, both vectorised:

1. *Parsing* (here): rename mapped columns, then convert each canonical column by its kind
   (:mod:`retain.data.schemas`). Values that cannot be converted (``"yesterday"`` as a
   timestamp, ``"12,50"`` as an amount) are problems, quoted as they were in the input.
2. *Rules* (pandera, :func:`~retain.data.schemas.canonical_schema`) on the converted frame:
   missing values in required columns, infinite numbers, duplicate customer ids. Failing rows
   are traced back to the raw values for the samples.

A table may be checked a chunk of rows at a time: each chunk gives :class:`Finding` s, and a
:class:`TableProblems` merges those of every chunk into the problems a check of the whole table
reports (rows counted over all chunks, row numbers and samples taken in table order).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandas.api import types

from retain.data.mapping import TableMapping, position_name
from retain.data.schemas import (
    CAMPAIGNS,
    ColumnSpec,
    TableSpec,
    canonical_schema,
    empty_column,
)
from retain.errors import MAX_SAMPLES, DataProblem
from retain.workspace import TimestampWindow

__all__ = [
    "MAX_ABS_NUMBER",
    "NA_TOKENS",
    "CampaignGroups",
    "Finding",
    "TableProblems",
    "conform_table",
    "parse_column",
    "rows_checker",
]

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
#: Offending rows whose raw values samples are taken from (the first ones of the table).
SAMPLED_ROWS = 10_000
#: Where a problem comes in the list of one column's problems: column-level problems, then
#: unparseable values, then the rules (in the order pandera checks them), then the limits,
#: then the rules across rows (found once every chunk is read).
COLUMN, PARSING, RULES, LIMITS, ACROSS_ROWS = range(5)
RULE_ORDER = {"not_nullable": 0, "field_uniqueness": 1, "finite": 2, "values": 3, "minimum": 4}
#: The groups of a campaign; rows of the first (treatment) must name their action, while
#: control rows may leave it empty (a control group shared by the campaign's actions).
GROUPS = CAMPAIGNS.column("group").values
TREATMENT = GROUPS[0]


@dataclass(frozen=True)
class Finding:
    """One problem of one chunk of a table, to merge with the same problem in other chunks.

    Attributes
    ----------
    column : str
        The offending column (canonical name, or the file's own name for a mapping problem).
    problem : str
        What is wrong, without the row numbers (see ``numbered``).
    order : tuple of int
        Its place among the problems of its column (see :data:`COLUMN`).
    rows : int
        Rows of the chunk affected (0 for a problem with the column as a whole).
    row_numbers : tuple of int
        The first :data:`~retain.errors.MAX_SAMPLES` affected rows, counted in the table from 0.
    candidates : tuple of (int, object)
        The first distinct raw values of the affected rows, each with how many affected rows
        of the chunk come before it (enough to pick a whole table's samples).
    numbered : bool
        Whether the problem names its first rows.
    """

    column: str
    problem: str
    order: tuple[int, int]
    rows: int = 0
    row_numbers: tuple[int, ...] = ()
    candidates: tuple[tuple[int, object], ...] = ()
    numbered: bool = False

    @property
    def key(self) -> tuple[str, str, tuple[int, int]]:
        """What makes two chunks' findings the same problem."""
        return self.column, self.problem, self.order


class TableProblems:
    """The problems of one table, gathered chunk by chunk, in the words, counts, samples and
    order a check of the whole table at once gives.

    Parameters
    ----------
    spec : TableSpec
        The table's canonical spec (problems are listed in the order of its columns).
    file : str
        Path named in the problems.
    """

    def __init__(self, spec: TableSpec, file: str):
        self.spec = spec
        self.file = file
        self._found: dict[tuple, list[Finding]] = {}

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, findings: Iterable[Finding]) -> None:
        """Take the findings of the next chunk (chunks in table order)."""
        for finding in findings:
            self._found.setdefault(finding.key, []).append(finding)

    def problems(self) -> list[DataProblem]:
        """Every problem found so far, merged over the chunks."""
        position = {name: number for number, name in enumerate(self.spec.names)}
        arrival = {key: number for number, key in enumerate(self._found)}

        def place(key: tuple) -> tuple:
            column, _, order = key
            return position.get(column, len(position)), order, arrival[key]

        return [self._merged(self._found[key]) for key in sorted(self._found, key=place)]

    def _merged(self, findings: list[Finding]) -> DataProblem:
        first = findings[0]
        rows = sum(finding.rows for finding in findings)
        problem = first.problem
        if first.numbered:
            numbers = [number for finding in findings for number in finding.row_numbers]
            problem += f" ({_row_numbers(numbers, rows)})"
        return DataProblem(
            self.spec.name, self.file, first.column, problem, rows=rows,
            samples=_samples(findings),
        )  # fmt: skip


def _samples(findings: list[Finding]) -> tuple:
    """The first distinct raw values among the first :data:`SAMPLED_ROWS` affected rows."""
    samples: list = []
    before = 0  # affected rows in earlier chunks
    for finding in findings:
        for ahead, value in finding.candidates:
            if before + ahead >= SAMPLED_ROWS or len(samples) == MAX_SAMPLES:
                break
            if not pd.Series([*samples, value], dtype=object).duplicated().iloc[-1]:
                samples.append(value)
        before += finding.rows
    return tuple(samples)


def conform_table(
    raw: pd.DataFrame,
    spec: TableSpec,
    mapping: TableMapping,
    *,
    window: TimestampWindow | None = None,
    first_row: int = 0,
) -> tuple[pd.DataFrame, list[Finding]]:
    """Rename, parse and check one table, or a chunk of its rows.

    Parameters
    ----------
    raw : pandas.DataFrame
        The rows as read by :func:`~retain.data.files.iter_chunks` (RangeIndex).
    spec : TableSpec
        Its canonical spec.
    mapping : TableMapping
        Column names, time format and zone.
    window : TimestampWindow, optional
        Plausible dates (default: 1900-01-01 to today + 1 day).
    first_row : int, default=0
        Position of the chunk's first row in the table (row numbers in problems count from it).

    Returns
    -------
    frame : pandas.DataFrame
        Canonical columns first (absent optional ones filled with missing values), then the
        extra columns as read. Meaningful only when ``findings`` is empty.
    findings : list of Finding
        Everything wrong with the rows (:class:`TableProblems` words them).
    """
    named, findings = _apply_column_names(raw, mapping)
    absent = [name for name in spec.required_names if name not in named.columns]
    mapped_away = {
        canonical for canonical, own in mapping.columns.items() if own not in raw.columns
    }
    findings += [
        _missing_column(name, named.columns, mapping.header)
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
            findings.append(_row_finding(column.name, problem, (PARSING, 0), named, bad, first_row))
    extras = [name for name in named.columns if name not in columns]
    columns.update((name, named[name]) for name in extras)
    frame = pd.DataFrame(columns, copy=False)
    findings += _rule_findings(frame, named, spec, absent, unparsed, first_row)
    findings += _action_findings(frame, named, spec, first_row)
    findings += _limit_findings(frame, named, spec, window or TimestampWindow(), first_row)
    return frame, findings


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
    raw: pd.DataFrame, mapping: TableMapping
) -> tuple[pd.DataFrame, list[Finding]]:
    """Rename the user's columns to canonical names as the mapping says."""
    problems, renames = [], {}
    for canonical, own in mapping.columns.items():
        if own not in raw.columns and not mapping.header:
            position = own.removeprefix(position_name(""))
            problem = (
                f"field {position} (mapped to {canonical}) is not in the file: its lines have "
                f"{raw.shape[1]} fields"
            )
            problems.append(Finding(canonical, problem, (COLUMN, 0)))
        elif own not in raw.columns:
            problem = f"column mapped to {canonical} is not in the file; " + _listing(raw.columns)
            problems.append(Finding(own, problem, (COLUMN, 0)))
        elif canonical != own and canonical in raw.columns:
            problem = f"the file has a column '{canonical}' and also maps '{own}' to it; drop one"
            problems.append(Finding(canonical, problem, (COLUMN, 0)))
        else:
            renames[own] = canonical
    return raw.rename(columns=renames), problems


def _missing_column(name: str, present: pd.Index, header: bool = True) -> Finding:
    if not header:
        text = (
            f"required column is not mapped; the file has no header line (header: false), so "
            f"give its position: columns: {{{name}: N}} (1 = the first of its "
            f"{len(present)} fields)"
        )
        return Finding(name, text, (COLUMN, 0))
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
    return Finding(name, text, (COLUMN, 0))


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


def _rule_findings(
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    spec: TableSpec,
    absent: list[str],
    unparsed: dict[str, pd.Series],
    first_row: int,
) -> list[Finding]:
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
        problem = _rule_text(str(check), spec, str(column))
        order = (RULES, RULE_ORDER.get(str(check), len(RULE_ORDER)))
        numbered = check == "not_nullable"
        problems.append(
            _row_finding(str(column), problem, order, raw, mask, first_row, numbered=numbered)
        )
    return problems


def _rule_text(check: str, spec: TableSpec, column: str) -> str:
    """What a failed rule means, in words (those of a column's values and minimum name them)."""
    if check == "values":
        return "not one of " + ", ".join(spec.column(column).values)
    if check == "minimum":
        lowest = spec.column(column).minimum
        if lowest == 0:
            return (
                "negative: a cost is 0 or more (a credit or reversal is not a cost: net it "
                "into the cost it corrects)"
            )
        return f"below {lowest:g}"
    return RULE_TEXT.get(check, f"fails check {check}")


def _action_findings(
    frame: pd.DataFrame, raw: pd.DataFrame, spec: TableSpec, first_row: int
) -> list[Finding]:
    """Campaign rows of the treatment group without an action (control rows may have none)."""
    if spec.name != "campaigns" or not {"action", "group"} <= set(raw.columns):
        return []
    missing = frame["action"].isna() & frame["group"].eq(TREATMENT).fillna(False)
    if not missing.any():
        return []
    problem = "missing in treatment rows (only control rows may leave the action empty)"
    return [_row_finding("action", problem, (RULES, 0), raw, missing, first_row, numbered=True)]


class CampaignGroups:
    """Customers in both the treatment and the control group of one campaign: a rule across
    rows, so across chunks. Each chunk's valid keys are kept (customer, campaign, group, row
    number); :meth:`findings` judges them once every chunk is in."""

    COLUMNS = ("customer_id", "campaign_id", "group")

    def __init__(self) -> None:
        self._parts: list[pyarrow.Table] = []

    def add(self, frame: pd.DataFrame, first_row: int) -> None:
        """Take the keys of a conformed chunk (rows with a missing key or group are left out:
        they are problems of their own)."""
        if not all(name in frame.columns for name in self.COLUMNS):
            return
        groups = frame["group"]
        valid = (
            frame["customer_id"].notna() & frame["campaign_id"].notna() & groups.isin(list(GROUPS))
        ).to_numpy()
        if not valid.any():
            return
        positions = np.flatnonzero(valid)
        self._parts.append(
            pyarrow.table(
                {
                    "customer_id": pyarrow.array(frame["customer_id"].to_numpy()[positions]),
                    "campaign_id": pyarrow.array(frame["campaign_id"].to_numpy()[positions]),
                    "treated": (groups.to_numpy()[positions] == TREATMENT).astype(np.int8),
                    "row": first_row + positions,
                }
            )
        )

    def findings(self) -> list[Finding]:
        """The one problem of the rows whose customer is in both groups of their campaign."""
        if not self._parts:
            return []
        keys = pyarrow.concat_tables(self._parts)
        self._parts = []
        groups = keys.group_by(["customer_id", "campaign_id"]).aggregate(
            [("treated", "min"), ("treated", "max")]
        )
        both = groups.filter(pc.not_equal(groups["treated_min"], groups["treated_max"]))
        if not len(both):
            return []
        rows = keys.join(
            both.select(["customer_id", "campaign_id"]),
            ["customer_id", "campaign_id"],
            join_type="inner",
        ).sort_by("row")
        head = rows.slice(0, SAMPLED_ROWS)
        named = [
            f"{customer} in {campaign}"
            for customer, campaign in zip(
                head["customer_id"].to_pylist(), head["campaign_id"].to_pylist(), strict=True
            )
        ]
        firsts = np.flatnonzero(~pd.Series(named).duplicated().to_numpy())[: 2 * MAX_SAMPLES]
        problem = (
            f"{len(both):,} customer{'s' if len(both) > 1 else ''} in both the treatment and "
            "the control group of one campaign"
        )
        return [
            Finding(
                "group",
                problem,
                (ACROSS_ROWS, 0),
                rows=len(rows),
                row_numbers=tuple(rows["row"].slice(0, MAX_SAMPLES).to_pylist()),
                candidates=tuple((int(ahead), named[ahead]) for ahead in firsts),
                numbered=True,
            )
        ]


def rows_checker(spec: TableSpec) -> CampaignGroups | None:
    """What checks table ``spec`` across rows (``campaigns``: :class:`CampaignGroups`)."""
    return CampaignGroups() if spec.name == "campaigns" else None


def _limit_findings(
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    spec: TableSpec,
    window: TimestampWindow,
    first_row: int,
) -> list[Finding]:
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
                problems.append(
                    _row_finding(column.name, problem, (LIMITS, 0), raw, huge, first_row)
                )
        elif column.kind == "time":
            outside = ((values < start) | (values >= end)).fillna(False)
            if outside.any():
                problem = (
                    f"dated outside {earliest} to {latest}, the plausible window "
                    "(timestamp_window in retain.yaml)"
                )
                problems.append(
                    _row_finding(column.name, problem, (LIMITS, 0), raw, outside, first_row)
                )
    return problems


def _row_finding(
    column: str,
    problem: str,
    order: tuple[int, int],
    raw: pd.DataFrame,
    mask: pd.Series,
    first_row: int,
    *,
    numbered: bool = False,
) -> Finding:
    """A problem with the rows of ``mask``: their count, the first of them, and the first
    distinct raw values of ``column`` among them (twice as many as a problem shows, as some may
    repeat samples of earlier chunks)."""
    positions = np.flatnonzero(mask.to_numpy())
    values = raw[column] if column in raw.columns else pd.Series(pd.NA, index=raw.index)
    head = values.iloc[positions[:SAMPLED_ROWS]]
    firsts = np.flatnonzero(~head.duplicated().to_numpy())[: 2 * MAX_SAMPLES]
    candidates = tuple(zip(firsts.tolist(), head.iloc[firsts].tolist(), strict=True))
    return Finding(
        column,
        problem,
        order,
        rows=len(positions),
        row_numbers=tuple((first_row + positions[:MAX_SAMPLES]).tolist()) if numbered else (),
        candidates=candidates if column in raw.columns else (),
        numbered=numbered,
    )


def _row_numbers(rows: list[int], count: int) -> str:
    """Where the first of ``count`` rows are, counting data rows from 1 (the header not
    counted); ``rows`` holds the first ones, ascending."""
    shown = ", ".join(str(row + 1) for row in rows[:MAX_SAMPLES])
    more = ", ..." if count > MAX_SAMPLES else ""
    return f"row{'s' if count > 1 else ''} {shown}{more}"
