"""Dictionary coding of the canonical tables: customer keys and the values of text columns.

The reader (:mod:`retain.data.reader`) gives the tables in *compact* form: the canonical
columns in canonical order, of their Arrow types (:data:`~retain.data.schemas.ARROW_TYPES`),
except that

- ``customer_id`` is a dictionary whose values are every id of the tables, sorted (byte
  order), the same dictionary in every table: an id's index is its *key code*
  (:func:`key_codes`, which the feature store's staging takes as its integer key);
- a text column of an event table with at most :data:`MAX_DICTIONARY` values is a dictionary
  of exactly the values it holds, sorted: a value's index is its rank.

Decoding the dictionaries (:func:`plain_tables`) gives the plain canonical tables;
:func:`compact_tables` codes plain tables.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.schemas import TABLES

__all__ = [
    "EVENT_TABLES",
    "KEY",
    "MAX_DICTIONARY",
    "compact_tables",
    "decoded",
    "key_codes",
    "one_dictionary",
    "plain_tables",
    "present_values",
    "shared_dictionary",
    "sorted_keys",
]

#: The entity key of every canonical table.
KEY = "customer_id"
#: Tables of events, whose text columns are dictionary-coded.
EVENT_TABLES = ("transactions", "interactions", "campaigns", "costs")
#: Text columns with more distinct values than this stay plain text.
MAX_DICTIONARY = 32_767
INDEX_TYPE = pa.int32()


def key_codes(
    tables: Mapping[str, pa.Table], keys: pa.Array | None = None
) -> tuple[dict[str, pa.Table], pa.Array]:
    """``customer_id`` of every table coded on one sorted dictionary of the ids: the key codes.

    Codes number the distinct ids in sorted (byte) order, the order DuckDB sorts text in, so
    ordering by code is ordering by id; a missing id stays missing. This is the one key coding
    of retain: the reader codes its tables with it, and staging (see
    :mod:`retain.engines.staging`) takes the codes as the integer key of every table.

    Parameters
    ----------
    tables : mapping of str to pyarrow.Table
        Tables with a ``customer_id`` column, plain text or dictionary-coded.
    keys : pyarrow.Array, optional
        Every id of the tables, sorted and distinct (the reader knows them: the customers).
        By default the distinct non-missing ids of all tables, or the dictionary they are all
        coded on already (:func:`shared_dictionary`), in which case they are returned as given.

    Returns
    -------
    tables : dict of str to pyarrow.Table
        The tables with ``customer_id`` a dictionary (int32 indices) of ``keys``.
    keys : pyarrow.Array
        The ids, sorted: an id's position is its code.
    """
    columns = [table.column(KEY) for table in tables.values()]
    if keys is None:
        keys = shared_dictionary(columns)
        if keys is not None:
            return dict(tables), keys
        keys = sorted_keys(columns)
    coded = {}
    for name, table in tables.items():
        column = _recoded(one_dictionary(table.column(KEY)), keys, INDEX_TYPE)
        coded[name] = table.set_column(table.schema.get_field_index(KEY), KEY, column)
    return coded, keys


def sorted_keys(columns: list[pa.ChunkedArray]) -> pa.Array:
    """The distinct non-missing values of ``columns`` as plain text, sorted (byte order)."""
    ids = pa.chunked_array(
        [chunk for column in columns for chunk in _plain(column).chunks], type=pa.string()
    )
    unique = pc.drop_null(pc.unique(ids))
    return unique.take(pc.sort_indices(unique))


def shared_dictionary(columns: list[pa.ChunkedArray]) -> pa.Array | None:
    """The dictionary every chunk of every column is coded on, as plain text, when there is
    one and it is sorted (strictly: distinct values) and free of missing values; else ``None``.
    """
    if not all(pa.types.is_dictionary(column.type) for column in columns):
        return None
    chunks = [chunk for column in columns for chunk in column.chunks]
    if not chunks:
        return None
    first = chunks[0].dictionary
    address = _addresses(first)
    for chunk in chunks[1:]:
        other = chunk.dictionary
        if _addresses(other) != address and not other.equals(first):
            return None
    values = first.cast(pa.string())
    return values if values.null_count == 0 and _is_sorted(values) else None


def _addresses(values: pa.Array) -> list[int]:
    return [buffer.address if buffer else 0 for buffer in values.buffers()]


def _is_sorted(values: pa.Array) -> bool:
    return len(values) < 2 or pc.all(pc.less(values[:-1], values[1:])).as_py()


def one_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` dictionary-coded with one sorted dictionary, the same in every chunk, of the
    values its chunks' dictionaries hold (a plain column is coded first)."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.num_chunks == 0:
        return pa.chunked_array([], pa.dictionary(INDEX_TYPE, column.type.value_type))
    if shared_dictionary([column]) is not None:
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
    return pa.chunked_array(chunks, pa.dictionary(INDEX_TYPE, values.type))


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


def present_values(table: pa.Table, name: str) -> pa.Table:
    """The text dictionaries of event table ``name`` reduced to the values present (rows may
    have been dropped), sorted, in the smallest index type; too many values: plain text."""
    for column in TABLES[name].columns:
        position = table.schema.get_field_index(column.name)
        if column.kind != "text" or not pa.types.is_dictionary(table.schema.field(position).type):
            continue
        coded = one_dictionary(table.column(position))
        if coded.num_chunks:
            values = coded.chunk(0).dictionary
            used = pc.drop_null(pc.unique(pa.chunked_array([c.indices for c in coded.chunks])))
            if len(used) < len(values):  # ascending positions in sorted values: still sorted
                coded = _recoded(coded, values.take(used.take(pc.sort_indices(used))), INDEX_TYPE)
        table = table.set_column(position, column.name, narrowed(coded))
    return table


def narrowed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column with one sorted dictionary in the smallest index type (plain text when it has
    more than :data:`MAX_DICTIONARY` values)."""
    if column.num_chunks == 0:
        return column
    values = column.chunk(0).dictionary
    if len(values) > MAX_DICTIONARY:
        return column.cast(values.type)
    index = pa.int8() if len(values) <= 127 else pa.int16()
    chunks = [pa.DictionaryArray.from_arrays(c.indices.cast(index), values) for c in column.chunks]
    return pa.chunked_array(chunks, pa.dictionary(index, values.type))


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column with its dictionary, if any, decoded."""
    return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column


def decoded(table: pa.Table, names: list[str] | None = None) -> pa.Table:
    """Every dictionary column of ``table`` (or of ``names``) decoded to its values."""
    for position, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and (names is None or field.name in names):
            values = table.column(position).cast(field.type.value_type)
            table = table.set_column(position, field.name, values)
    return table


def compact_tables(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """Compact form of canonical tables (canonical Arrow types; any ids).

    ``customer_id`` is coded on the sorted distinct ids of all tables (:func:`key_codes`; a
    missing id stays missing); text columns of event tables on their sorted distinct values.
    """
    coded, _ = key_codes(tables)
    compact = {}
    for name, table in coded.items():
        if name in EVENT_TABLES:
            for column in TABLES[name].columns:
                if column.kind == "text" and column.name in table.column_names:
                    position = table.schema.get_field_index(column.name)
                    values = pc.dictionary_encode(table.column(position))
                    table = table.set_column(position, column.name, values)
            table = present_values(table, name)
        compact[name] = table
    return compact


def plain_tables(compact: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """Canonical tables with plain text: every dictionary column decoded."""
    return {name: decoded(table) for name, table in compact.items()}
