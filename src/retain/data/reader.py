"""Read a data folder: the one path from its files to checked, tidied tables.

Each table is read a million rows at a time (:func:`~retain.data.files.iter_chunks`); each
chunk is parsed and checked (:func:`~retain.data.validation.conform_table`), its problems
gathered with those of the other chunks (:class:`~retain.data.validation.TableProblems`), and
its rows kept as Arrow with ``customer_id`` and the text of event tables dictionary-coded. Once
every table is read, every problem of every table is raised at once; otherwise the tables are
tidied (:mod:`retain.data.cleanup`: repeated transactions, customers derived from transactions,
events of unknown customers) and their ids coded on one sorted dictionary of every id
(:func:`~retain.data.dictionaries.key_codes`): the compact form described in
:mod:`retain.data.dictionaries`. Rules across rows are checked once a table's chunks are all
read (:func:`~retain.data.validation.rows_checker`), and referrals once ``customers`` and
``transactions`` are (:mod:`retain.data.referrals`).

The feature sources (``customers``, ``transactions``, ``interactions``) are given apart from
the logs (``campaigns``, ``costs``), which are checked the same way but feed no feature yet.

:func:`~retain.data.load_dataset` is this read, decoded to pandas; the feature store reads the
compact tables as they are.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.cleanup import add_derived_customers, drop_duplicates, known_events
from retain.data.dictionaries import (
    EVENT_TABLES,
    KEY,
    key_codes,
    narrowed,
    one_dictionary,
    sorted_keys,
)
from retain.data.files import RawChunk, TableSource, iter_chunks, locate_table, raw_schema
from retain.data.fingerprints import FolderFingerprint, file_stamps, fingerprint
from retain.data.mapping import Mapping, TableMapping, resolve_mapping
from retain.data.referrals import referral_problems
from retain.data.schemas import ARROW_TYPES, FEATURE_SOURCE_TABLES, LOG_TABLES, TABLES, TableSpec
from retain.data.validation import TableProblems, conform_table, rows_checker
from retain.errors import DataError, DataProblem
from retain.workspace import TimestampWindow

__all__ = ["CHUNK_ROWS", "SourceTables", "read_tables"]

#: Rows read and checked at a time.
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True, eq=False)
class SourceTables:
    """The checked, tidied tables of a data folder, in compact form, and what reading did.

    Attributes
    ----------
    tables : dict of str to pyarrow.Table
        ``customers``, ``transactions``, ``interactions`` (no rows when absent): the canonical
        columns only, compact (see :mod:`retain.data.dictionaries`). What features are built
        from.
    files : dict of str to str
        Table name -> file or folder read (``""`` when the table is absent).
    warnings : tuple of str
        What was tidied up, in plain words.
    duplicates_dropped : int
        Repeated transaction rows removed.
    derived_customers : int
        Customers added, last, because they appear in transactions but not in ``customers``.
    fingerprint : str
        First 16 hex digits of a SHA-256 over the mapping text and the bytes of every file read
        (see :mod:`retain.data.fingerprints`).
    extras : dict of str to pyarrow.Table
        With ``extras=True``: each table's columns that the contract does not know, as stored,
        row by row with ``tables`` (for ``customers``, with the customers read: derived ones
        come after them); a table without any has no columns. Empty otherwise.
    logs : dict of str to pyarrow.Table
        ``campaigns`` and ``costs`` (no rows when absent), as ``tables`` are (their ids on the
        same key dictionary, their text dictionary-coded): read and checked, of known
        customers only, but no feature source, so kept apart from ``tables``.
    """

    tables: dict[str, pa.Table]
    files: dict[str, str]
    warnings: tuple[str, ...]
    duplicates_dropped: int
    derived_customers: int
    fingerprint: str
    extras: dict[str, pa.Table] = field(default_factory=dict)
    logs: dict[str, pa.Table] = field(default_factory=dict)


def read_tables(
    data_dir: str | Path,
    mapping: str | Path | dict | Mapping | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    known: FolderFingerprint | None = None,
    window: TimestampWindow | None = None,
    extras: bool = False,
) -> SourceTables:
    """Read, check and tidy the tables of a data folder.

    Parameters
    ----------
    data_dir : str or Path
        Folder holding ``transactions`` and optionally ``customers``, ``interactions``,
        ``campaigns`` and ``costs``, each as ``NAME.csv``, ``NAME.parquet`` or a folder
        ``NAME/`` of Parquet parts.
    mapping : str, Path, dict, Mapping or None, default=None
        Column mapping (see :mod:`retain.data.mapping`).
    chunk_rows : int, default=CHUNK_ROWS
        Rows checked at a time (the result, problems included, does not depend on it).
    known : FolderFingerprint, optional
        The folder's fingerprint taken before: not computed again while its files' sizes and
        modification times are unchanged.
    window : TimestampWindow, optional
        Plausible dates of events and signups (default: 1900-01-01 to today + 1 day).
    extras : bool, default=False
        Keep the columns the contract does not know (see ``SourceTables.extras``).

    Returns
    -------
    SourceTables

    Raises
    ------
    ConfigError
        When the mapping is invalid.
    DataError
        With every problem found in every table, when the data break the contract.
    """
    mapping = resolve_mapping(mapping)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise DataError(DataProblem("data", str(data_dir), None, f"data folder {what}"))
    sources: dict[str, TableSource] = {}
    tables: dict[str, pa.Table] = {}
    problems: list[DataProblem] = []
    for spec in TABLES.values():
        table_mapping = mapping.table(spec.name)
        # transactions keep their extra columns until repeated rows are found: they compare them
        with_extras = extras or spec.name == "transactions"
        try:
            source = locate_table(data_dir, spec.name, table_mapping)
            if source is None:
                continue
            table, found = _read_checked(
                source, spec, table_mapping, chunk_rows, window, keep=not problems,
                extras=with_extras,
            )  # fmt: skip
        except DataError as error:
            problems.extend(error.problems)
            continue
        sources[spec.name] = source
        problems.extend(found)
        if table is not None:
            tables[spec.name] = table
    if "customers" in tables and "transactions" in tables:  # neither has problems
        file = str(sources["customers"].path)
        problems[:0] = referral_problems(tables["customers"], tables["transactions"], file)
    if problems:
        raise DataError(problems)
    return _tidied(tables, sources, mapping, known, extras)


def _tidied(
    tables: dict[str, pa.Table],
    sources: dict[str, TableSource],
    mapping: Mapping,
    known: FolderFingerprint | None,
    extras: bool,
) -> SourceTables:
    """Apply the cleanup rules, note each change as a warning, and code the ids."""
    files = {name: str(sources[name].path) if name in sources else "" for name in TABLES}
    warnings: list[str] = []
    policy = mapping.table("transactions").duplicates
    transactions, duplicates = drop_duplicates(tables.pop("transactions"), files, warnings, policy)
    customers, derived = add_derived_customers(
        tables.pop("customers", None), transactions, files, warnings
    )
    tidy = {"customers": customers, "transactions": transactions}
    del customers, transactions
    for name in ("interactions", *LOG_TABLES):
        tidy[name] = known_events(name, tables.pop(name, None), tidy["customers"], files, warnings)
    canonical = {name: table.select(list(TABLES[name].names)) for name, table in tidy.items()}
    kept = {}
    if extras:
        read = tidy["customers"].num_rows - (derived if files["customers"] else 0)
        tidy["customers"] = tidy["customers"].slice(0, read)
        kept = {name: table.drop_columns(list(TABLES[name].names)) for name, table in tidy.items()}
    del tidy
    keys = sorted_keys([canonical["customers"].column(KEY)])  # every id: customers are unique
    compact, _ = key_codes(canonical, keys)
    return SourceTables(
        {name: compact[name] for name in FEATURE_SOURCE_TABLES},
        files,
        tuple(warnings),
        duplicates,
        derived,
        _fingerprint(mapping, sources, known),
        kept,
        {name: compact[name] for name in LOG_TABLES},
    )


def _fingerprint(
    mapping: Mapping, sources: dict[str, TableSource], known: FolderFingerprint | None
) -> str:
    if known is not None and file_stamps(sources) == known.stamps:
        return known.fingerprint
    return fingerprint(mapping, sources)


def _read_checked(
    source: TableSource,
    spec: TableSpec,
    mapping: TableMapping,
    chunk_rows: int,
    window: TimestampWindow | None,
    *,
    keep: bool,
    extras: bool,
) -> tuple[pa.Table | None, list[DataProblem]]:
    """A table checked a chunk at a time, and its problems.

    The table (``None`` unless ``keep``) has the canonical columns of their Arrow types, with
    ``customer_id`` and event text dictionary-coded (one sorted dictionary per column), then
    with ``extras`` the extra columns as stored. Rows stop being kept at the first problem,
    but every chunk is still checked.
    """
    rows = chunk_rows if _chunkable(source, spec, mapping) else sys.maxsize
    found = TableProblems(spec, str(source.path))
    across = rows_checker(spec)  # rules across rows see every chunk, kept or not
    parts: list[pa.Table] = []
    first_row = 0
    for chunk in iter_chunks(source, mapping, rows, stored=extras):
        frame, findings = conform_table(
            chunk.frame, spec, mapping, window=window, first_row=first_row
        )
        if across is not None:
            across.add(frame, first_row)
        first_row += len(chunk.frame)
        found.add(findings)
        if found:  # the table will not be used: release it, check on
            keep = False
            parts.clear()
        if keep:
            parts.append(_coded(frame, chunk, spec, extras))
        del frame, chunk
    if across is not None:
        found.add(across.findings())
    if found or not keep:
        return None, found.problems()
    table = pa.concat_tables(parts)
    del parts
    for column in spec.columns:
        position = table.schema.get_field_index(column.name)
        if pa.types.is_dictionary(table.schema.field(position).type):
            coded = one_dictionary(table.column(position))
            coded = coded if column.name == KEY else narrowed(coded)
            table = table.set_column(position, column.name, coded)
    return table, []


def _chunkable(source: TableSource, spec: TableSpec, mapping: TableMapping) -> bool:
    """Whether checking chunk by chunk gives what checking the whole table gives.

    Customers are checked whole (ids must be unique across all rows). A CSV file is read as
    text, the same in every chunk. Parquet is converted to pandas a chunk at a time, and pandas
    types an integer column as float in a chunk with missing values: ids must then be text or
    integers, text columns text, times times or text.
    """
    if spec.name == "customers":
        return False
    if source.kind == "csv":
        return True
    schema = raw_schema(source)
    if schema is None:
        return True  # empty or unreadable: reading it reports the problem
    for column in spec.columns:
        name = mapping.columns.get(column.name, column.name)
        if name not in schema.names:
            continue
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        if column.kind == "id" and not (text or pa.types.is_integer(kind)):
            return False
        if column.kind == "text" and not text:
            return False
        if column.kind == "time" and not (text or pa.types.is_timestamp(kind)):
            return False
    return True


def _coded(frame: pd.DataFrame, chunk: RawChunk, spec: TableSpec, extras: bool) -> pa.Table:
    """One checked chunk as Arrow: the canonical columns of their Arrow types, ids and event
    text dictionary-coded (each chunk its own dictionary); then the extra columns as stored."""
    table = pa.Table.from_pandas(frame[list(spec.names)], preserve_index=False)
    for column in spec.columns:
        values = table.column(column.name)
        kind = ARROW_TYPES[column.kind]
        if column.name == KEY or (column.kind == "text" and spec.name in EVENT_TABLES):
            # coded first, then only the (few) distinct values cast
            coded = pc.dictionary_encode(values.cast(pa.large_string()).combine_chunks())
            values = coded.cast(pa.dictionary(pa.int32(), kind))
        else:
            values = values.cast(kind)
        table = table.set_column(table.schema.get_field_index(column.name), column.name, values)
    names = [str(name) for name in frame.columns[len(spec.names) :]]
    if extras and names:
        stored = chunk.arrow(names)
        for name in names:
            table = table.append_column(stored.schema.field(name), stored.column(name))
    return table
