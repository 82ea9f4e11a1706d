"""A data folder as compact Arrow tables, checked and tidied exactly as ``load_dataset`` does.

:func:`~retain.data.load_dataset` gives pandas frames, the whole of each table at once: about
4 GB at peak for 20 million transactions. The feature engine needs Arrow, and less of it. Here
the same folder is read a million rows at a time; each chunk is checked by the same code
(:func:`~retain.data.validation.conform_table`) and kept as Arrow with its text dictionary-coded,
then the tables are tidied as ``load_dataset`` tidies them (repeated transactions dropped as
the mapping's ``duplicates`` policy says, customers derived from transactions, interactions
of unknown customers dropped), with the same warnings.

*Compact* means the canonical columns in canonical order, with the canonical Arrow types
(``string``, ``timestamp[us]``, ``float64``) except that

- ``customer_id`` is a dictionary whose values are every id of the three tables, sorted (byte
  order), the same dictionary in every table: an id's index is its key code;
- a text column of an event table with at most :data:`MAX_DICTIONARY` values is a dictionary
  of exactly the values it holds, sorted: a value's index is its rank.

Decoding the dictionaries (:func:`plain_tables`) gives the tables ``load_dataset`` gives, as
Arrow. Whatever this path cannot take as it is (a table with a problem, a Parquet file whose
typed columns could read differently a chunk at a time) goes through ``load_dataset`` itself, so
every problem is reported exactly as there.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.dataset import (
    Dataset,
    FolderFingerprint,
    derived_warning,
    file_stamps,
    find_duplicates,
    fingerprint,
    load_dataset,
    strangers_warning,
)
from retain.data.loaders import TableSource, iter_frames, locate_table, raw_schema
from retain.data.mapping import Mapping, TableMapping, resolve_mapping
from retain.data.schemas import TABLES, TableSpec
from retain.data.validation import conform_table
from retain.errors import MAX_SAMPLES, DataError
from retain.workspace import TimestampWindow

__all__ = [
    "ARROW_TYPES",
    "CHUNK_ROWS",
    "MAX_DICTIONARY",
    "CompactTables",
    "compact_tables",
    "load_compact",
    "plain_tables",
]

#: Arrow type of each column kind (what ``pyarrow.Table.from_pandas`` gives a loaded table).
ARROW_TYPES = {
    "id": pa.string(),
    "text": pa.string(),
    "time": pa.timestamp("us"),
    "number": pa.float64(),
}
#: Rows read and checked at a time.
CHUNK_ROWS = 1_000_000
#: Text columns with more distinct values than this stay plain text.
MAX_DICTIONARY = 32_767
KEY = "customer_id"
EVENT_TABLES = ("transactions", "interactions")


@dataclass(frozen=True, eq=False)
class CompactTables:
    """The checked tables of a data folder, compact (see the module), and what loading did.

    Attributes as in :class:`~retain.data.Dataset` (``files``, ``warnings``,
    ``duplicates_dropped``, ``derived_customers``, ``fingerprint``); ``tables`` holds the three
    canonical tables (``interactions`` with no rows when absent), canonical columns only.
    """

    tables: dict[str, pa.Table]
    files: dict[str, str]
    warnings: tuple[str, ...]
    duplicates_dropped: int
    derived_customers: int
    fingerprint: str


class _NotCompactError(Exception):
    """This folder goes through ``load_dataset``: a problem to report, or a layout read whole."""


def load_compact(
    data_dir: str | Path,
    mapping: str | Path | dict | Mapping | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    known: FolderFingerprint | None = None,
    window: TimestampWindow | None = None,
) -> CompactTables:
    """Read, check and tidy a data folder as :func:`~retain.data.load_dataset` does, compactly.

    Parameters
    ----------
    data_dir : str or Path
        The data folder.
    mapping : str, Path, dict, Mapping or None, default=None
        Column mapping (see :mod:`retain.data.mapping`).
    chunk_rows : int, default=CHUNK_ROWS
        Rows checked at a time (the result does not depend on it).
    known : FolderFingerprint, optional
        The folder's fingerprint taken before: not computed again while its files' sizes and
        modification times are unchanged.
    window : TimestampWindow, optional
        Plausible dates of events and signups (default: 1900-01-01 to today + 1 day).

    Returns
    -------
    CompactTables

    Raises
    ------
    ConfigError, DataError
        As ``load_dataset``, with the same problems.
    """
    mapping = resolve_mapping(mapping)
    try:
        return _load(Path(data_dir), mapping, chunk_rows, known, window)
    except (_NotCompactError, DataError):
        # raises with every problem found
        return from_dataset(load_dataset(data_dir, mapping, window=window))


def from_dataset(dataset: Dataset) -> CompactTables:
    """The compact form of a loaded :class:`~retain.data.Dataset`."""
    plain = {
        name: _canonical(pa.Table.from_pandas(getattr(dataset, name), preserve_index=False), name)
        for name in TABLES
    }
    return CompactTables(
        compact_tables(plain),
        dict(dataset.files),
        tuple(dataset.warnings),
        dataset.duplicates_dropped,
        dataset.derived_customers,
        dataset.fingerprint,
    )


def _load(
    data_dir: Path,
    mapping: Mapping,
    chunk_rows: int,
    known: FolderFingerprint | None,
    window: TimestampWindow | None = None,
) -> CompactTables:
    if not data_dir.is_dir():
        raise _NotCompactError
    sources: dict[str, TableSource] = {}
    tables: dict[str, pa.Table] = {}
    for spec in TABLES.values():
        table_mapping = mapping.table(spec.name)
        source = locate_table(data_dir, spec.name, table_mapping)
        if source is not None:
            sources[spec.name] = source
            tables[spec.name] = _read_checked(source, spec, table_mapping, chunk_rows, window)
    files = {name: str(sources[name].path) if name in sources else "" for name in TABLES}
    warnings: list[str] = []
    policy = mapping.table("transactions").duplicates
    transactions, duplicates = _drop_duplicates(tables["transactions"], files, warnings, policy)
    customers, derived = _add_derived(tables.get("customers"), transactions, files, warnings)
    interactions = _known_interactions(tables.get("interactions"), customers, files, warnings)
    ids = pc.unique(customers.column(KEY))  # every id: customers are unique
    keys = ids.take(pc.sort_indices(ids))
    compact = {
        "customers": _keyed(customers, keys),
        "transactions": _keyed(_drop_extras(transactions, "transactions"), keys),
        "interactions": _keyed(interactions, keys),
    }
    return CompactTables(
        compact,
        files,
        tuple(warnings),
        duplicates,
        derived,
        _fingerprint(mapping, sources, known),
    )


def _fingerprint(
    mapping: Mapping, sources: dict[str, TableSource], known: FolderFingerprint | None
) -> str:
    if known is not None and file_stamps(sources) == known.stamps:
        return known.fingerprint
    return fingerprint(mapping, sources)


# -- reading ---------------------------------------------------------------------------------


def _read_checked(
    source: TableSource,
    spec: TableSpec,
    mapping: TableMapping,
    chunk_rows: int,
    window: TimestampWindow | None = None,
) -> pa.Table:
    """A table checked a chunk at a time; canonical columns typed, text dictionary-coded (each
    chunk its own dictionary), extra columns kept for transactions (duplicates compare them)."""
    rows = chunk_rows if _chunkable(source, spec, mapping) else sys.maxsize
    parts = []
    for raw in iter_frames(source, mapping, rows):
        frame, problems = conform_table(raw, spec, mapping, str(source.path), window=window)
        del raw
        if problems:
            raise _NotCompactError
        parts.append(_coded(frame, spec))
        del frame
    try:
        table = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowException, TypeError):
        raise _NotCompactError from None
    del parts
    for position, field in enumerate(table.schema):  # one dictionary per column
        if pa.types.is_dictionary(field.type):
            column = _one_dictionary(table.column(position))
            column = column if field.name == KEY else _narrowed(column)
            table = table.set_column(position, field.name, column)
    return table


def _chunkable(source: TableSource, spec: TableSpec, mapping: TableMapping) -> bool:
    """Whether checking chunk by chunk gives what checking the whole table gives.

    Customers are checked whole (ids must be unique across all rows). A CSV file and a folder
    of Parquet parts are read whole and sliced, so every chunk has the same pandas types. A
    Parquet file is read a batch at a time, and pandas types an integer column with missing
    values as float: ids must then be text or integers, text columns text, times times or text.
    """
    if spec.name == "customers":
        return False
    if source.kind != "parquet":
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


def _coded(frame: pd.DataFrame, spec: TableSpec) -> pa.Table:
    """One checked chunk as Arrow: canonical columns cast as ``to_arrow`` casts them, ids and
    text dictionary-coded; extra columns only for transactions."""
    names = list(frame.columns if spec.name == "transactions" else spec.names)
    try:
        table = pa.Table.from_pandas(frame[names], preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        raise _NotCompactError from None
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
    return table


def _canonical(table: pa.Table, name: str) -> pa.Table:
    """The canonical columns of a table as ``to_arrow`` makes them (absent ones as nulls)."""
    arrays = []
    for column in TABLES[name].columns:
        kind = ARROW_TYPES[column.kind]
        present = column.name in table.column_names
        arrays.append(
            table.column(column.name).cast(kind) if present else pa.nulls(len(table), kind)
        )
    return pa.Table.from_arrays(arrays, names=list(TABLES[name].names))


def _drop_extras(table: pa.Table, name: str) -> pa.Table:
    return table.select(list(TABLES[name].names))


# -- tidying, as retain.data.dataset._assemble -----------------------------------------------


def _drop_duplicates(
    transactions: pa.Table, files: dict[str, str], warnings: list[str], policy: str
) -> tuple[pa.Table, int]:
    """Apply the mapping's ``duplicates`` policy: ``retain.data.dataset.find_duplicates``, the
    rule ``load_dataset`` applies, on the Arrow columns."""
    stamps = transactions.column("timestamp").to_numpy().view(np.int64)
    found = find_duplicates(
        stamps if stamps.flags.writeable else stamps.copy(),
        transactions.column("amount").to_numpy(),
        transactions.column("order_id"),
        lambda rows: _decoded(_rows(transactions, rows)).to_pandas(),
        policy,
        files["transactions"],
    )
    del stamps
    warnings.extend(found.warnings)
    if found.dropped:
        transactions = _with_present_values(_filter(transactions, ~found.drop), "transactions")
    return transactions, found.dropped


def _rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table.take(rows)`` for a few ascending rows, batch by batch (a take over a chunked
    column would first join its chunks: every order id copied for a few hundred rows)."""
    batches = table.to_batches()
    starts = np.cumsum([0, *(batch.num_rows for batch in batches)])
    taken = []
    for number, batch in enumerate(batches):
        inside = rows[(rows >= starts[number]) & (rows < starts[number + 1])]
        if len(inside):
            taken.append(batch.take(pa.array(inside - starts[number])))
    return pa.Table.from_batches(taken, schema=table.schema)


def _add_derived(
    customers: pa.Table | None,
    transactions: pa.Table,
    files: dict[str, str],
    warnings: list[str],
) -> tuple[pa.Table, int]:
    """Customers only in transactions appended, signed up the day of their first purchase."""
    ids = _one_dictionary(transactions.column(KEY))
    codes = pa.chunked_array([chunk.indices for chunk in ids.chunks], pa.int32())
    values = ids.chunk(0).dictionary if ids.num_chunks else pa.array([], pa.string())
    first = pa.table({"code": codes, "timestamp": transactions.column("timestamp")})
    if customers is not None:
        unknown = pc.invert(pc.is_in(values, value_set=_plain(customers.column(KEY))))
        first = first.filter(pc.take(unknown, codes))
    first = (
        first.group_by("code")
        .aggregate([("timestamp", "min")])
        .sort_by("code")  # codes follow the sorted ids: pandas' groupby(sort=True)
    )
    derived_ids = values.take(first.column("code"))
    signup = pc.floor_temporal(first.column("timestamp_min"), unit="day")
    derived = _canonical(pa.table({KEY: derived_ids, "signup_date": signup}), "customers")
    if customers is None:
        return derived, len(derived)
    customers = _drop_extras(_decoded(customers), "customers")
    if len(derived):
        shown = derived.column(KEY).slice(0, MAX_SAMPLES).to_pylist()
        warnings.append(derived_warning(files, len(derived), shown))
        customers = pa.concat_tables([customers, derived])
    return customers, len(derived)


def _known_interactions(
    interactions: pa.Table | None,
    customers: pa.Table,
    files: dict[str, str],
    warnings: list[str],
) -> pa.Table:
    """Interactions of known customers only (a warning names some of the others)."""
    if interactions is None:
        return _canonical(pa.table({}), "interactions")
    ids = _one_dictionary(interactions.column(KEY))
    codes = pa.chunked_array([chunk.indices for chunk in ids.chunks], pa.int32())
    values = ids.chunk(0).dictionary
    known_values = pc.is_in(values, value_set=_plain(customers.column(KEY)))
    if pc.all(known_values).as_py():
        return interactions
    known = pc.take(known_values, codes)
    unknown_codes = pc.filter(codes, pc.invert(known)).to_numpy()
    strangers = pd.unique(unknown_codes)
    shown = values.take(pa.array(strangers[:MAX_SAMPLES])).to_pylist()
    warnings.append(strangers_warning(files, len(unknown_codes), len(strangers), shown))
    return _with_present_values(_filter(interactions, known), "interactions")


# -- dictionaries ----------------------------------------------------------------------------


def _one_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column with one sorted dictionary of the values its chunks' dictionaries
    hold, for every chunk."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.num_chunks == 0:
        return pa.chunked_array([], pa.dictionary(pa.int32(), column.type.value_type))
    if _shared(column):
        return column
    column = pa.table({"values": column}).unify_dictionaries().column(0)
    values = column.chunk(0).dictionary
    order = pc.sort_indices(values)
    rank = np.empty(len(values), dtype=np.int32)
    rank[order.to_numpy()] = np.arange(len(values), dtype=np.int32)
    rank = pa.array(rank)
    values = values.take(order)
    chunks = [
        pa.DictionaryArray.from_arrays(rank.take(chunk.indices), values) for chunk in column.chunks
    ]
    return pa.chunked_array(chunks, pa.dictionary(pa.int32(), values.type))


def _shared(column: pa.ChunkedArray) -> bool:
    """Whether every chunk holds the same dictionary (the same buffers), sorted."""
    first = column.chunk(0).dictionary
    address = [buffer.address if buffer else 0 for buffer in first.buffers()]
    same = all(
        [buffer.address if buffer else 0 for buffer in chunk.dictionary.buffers()] == address
        for chunk in column.chunks[1:]
    )
    return same and _is_sorted(first)


def _is_sorted(values: pa.Array) -> bool:
    return len(values) < 2 or pc.all(pc.less(values[:-1], values[1:])).as_py()


def _recoded(column: pa.ChunkedArray, values: pa.Array, index: pa.DataType) -> pa.ChunkedArray:
    """``column`` (dictionary-coded, one dictionary) as indices into ``values``, which hold all
    its values."""
    kind = pa.dictionary(index, values.type)
    if column.num_chunks == 0:
        return pa.chunked_array([], kind)
    positions = pc.index_in(column.chunk(0).dictionary, value_set=values)
    chunks = [
        pa.DictionaryArray.from_arrays(positions.take(chunk.indices).cast(index), values)
        for chunk in column.chunks
    ]
    return pa.chunked_array(chunks, kind)


def _keyed(table: pa.Table, keys: pa.Array) -> pa.Table:
    """``customer_id`` coded on ``keys`` (every id, sorted)."""
    coded = _recoded(_one_dictionary(table.column(KEY)), keys, pa.int32())
    return table.set_column(table.schema.get_field_index(KEY), KEY, coded)


def _with_present_values(table: pa.Table, name: str) -> pa.Table:
    """The text dictionaries of an event table reduced to the values present (rows may have
    been dropped), sorted, in the smallest index type; too many values: plain text."""
    for column in TABLES[name].columns:
        position = table.schema.get_field_index(column.name)
        if column.kind != "text" or not pa.types.is_dictionary(table.schema.field(position).type):
            continue
        coded = _one_dictionary(table.column(position))
        if coded.num_chunks:
            values = coded.chunk(0).dictionary
            used = pc.drop_null(pc.unique(pa.chunked_array([c.indices for c in coded.chunks])))
            if len(used) < len(values):  # ascending positions in sorted values: still sorted
                coded = _recoded(coded, values.take(used.take(pc.sort_indices(used))), pa.int32())
        table = table.set_column(position, column.name, _narrowed(coded))
    return table


def _narrowed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column with one sorted dictionary in the smallest index type (plain text when it has
    more than :data:`MAX_DICTIONARY` values)."""
    if column.num_chunks == 0:
        return column
    values = column.chunk(0).dictionary
    if len(values) > MAX_DICTIONARY:
        return column.cast(values.type)
    index = _index_type(len(values))
    chunks = [pa.DictionaryArray.from_arrays(c.indices.cast(index), values) for c in column.chunks]
    return pa.chunked_array(chunks, pa.dictionary(index, values.type))


def _index_type(count: int) -> pa.DataType:
    return pa.int8() if count <= 127 else pa.int16()


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A text column as plain ``string`` values in one array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.string())


def _decoded(table: pa.Table) -> pa.Table:
    """Every dictionary column decoded to its values."""
    for position, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            values = table.column(position).cast(field.type.value_type)
            table = table.set_column(position, field.name, values)
    return table


def _filter(table: pa.Table, keep: np.ndarray | pa.ChunkedArray) -> pa.Table:
    """``table.filter(keep)``, chunk by chunk, each original chunk released once filtered."""
    keep = pa.chunked_array([keep]) if isinstance(keep, np.ndarray) else keep
    batches = table.to_batches()
    schema = table.schema
    del table
    kept, start = [], 0
    while batches:
        batch = batches.pop(0)
        kept.append(batch.filter(keep.slice(start, batch.num_rows).combine_chunks()))
        start += batch.num_rows
        del batch
    return pa.Table.from_batches(kept, schema=schema)


# -- the other way ---------------------------------------------------------------------------


def compact_tables(tables: MappingType[str, pa.Table]) -> dict[str, pa.Table]:
    """Compact form of canonical tables (canonical Arrow types; any ids).

    ``customer_id`` is coded on the sorted distinct ids of all tables (a missing id stays
    missing); text columns of event tables on their sorted distinct values.
    """
    ids = pa.chunked_array(
        [chunk for table in tables.values() for chunk in _plain_chunks(table.column(KEY))],
        type=pa.string(),
    )
    unique = pc.drop_null(pc.unique(ids))
    keys = unique.take(pc.sort_indices(unique))
    compact = {}
    for name, table in tables.items():
        table = _keyed(table, keys)
        if name in EVENT_TABLES:
            for column in TABLES[name].columns:
                if column.kind == "text" and column.name in table.column_names:
                    position = table.schema.get_field_index(column.name)
                    coded = pc.dictionary_encode(table.column(position))
                    table = table.set_column(position, column.name, coded)
        compact[name] = _with_present_values(table, name) if name in EVENT_TABLES else table
    return compact


def _plain_chunks(column: pa.ChunkedArray) -> list[pa.Array]:
    return [chunk.cast(pa.string()) for chunk in column.chunks]


def plain_tables(compact: MappingType[str, pa.Table]) -> dict[str, pa.Table]:
    """Canonical tables with plain text: every dictionary column decoded."""
    return {name: _decoded(table) for name, table in compact.items()}
