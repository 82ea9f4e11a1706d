"""Staged sources: validated canonical tables kept as a DuckDB database, once per fingerprint.

Loading and checking tens of millions of rows is the slow part of a build; the engine then
scans the sources several times (once per pipeline, or per cutoff). DuckDB's native storage
scans about twice as fast as Parquet and is read column by column in parallel with little
memory, so sources are written once per fingerprint to ``sources.duckdb`` and every build opens
it read-only. This is the DuckDB engine's own (:mod:`retain.engines.duckdb`): the compiler only
sees Ibis tables.

Two things are prepared while staging, since they depend on the data only (not on definitions
or cutoffs):

- *Key codes*: every customer id gets an integer code ``_key`` (0, 1, ... in id order), stored
  in each table and in a ``_keys`` table. Grouping and joining on an integer is much cheaper
  than on text; the compiler looks the id up once at the end (see ``keys`` in
  :func:`retain.features.compiler.compile_snapshot`).
- *Value codes*: a text column of an event table with at most ``MASK_BITS`` distinct values
  (a category, a channel) gets ``_code_<column>``, the rank of each value, so a distinct
  count of it is an OR of bits with no lookup; the numbers of distinct values are kept in
  ``_columns``. Such columns (up to 255 values) are also stored as DuckDB ENUMs, which
  compare with text literals much faster than text does, with the same results.
- *Derived columns*: the epoch day of every time column (``_day_<column>``) and every number
  of an event table in integer millionths (``_micros_<column>``), computed once here rather
  than for every row in every build.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retain.atomic import atomic_dir
from retain.data.dictionaries import KEY, key_codes, shared_dictionary
from retain.engines.base import Sources
from retain.engines.layout import (
    COLUMNS,
    DAY_PREFIX,
    KEY_CODE,
    KEYS,
    MASK_BITS,
    MICRO,
    MICROS_PREFIX,
    code_column,
)
from retain.engines.sources import SOURCES, arrow_schema, to_arrow

__all__ = [
    "COLUMNS",
    "DATABASE",
    "FORMAT",
    "KEY",
    "KEYS",
    "column_counts",
    "connect",
    "encode_columns",
    "encode_keys",
    "is_current",
    "open_staged",
    "register_plain",
    "register_staged",
    "stage_sources",
    "staged_tables",
]

DATABASE = "sources.duckdb"
#: Version of what a staged database holds; a database of another version is staged again.
FORMAT = 4
FORMAT_TABLE = "_format"
KEY_TYPE = pa.int32()
CODE_TYPE = pa.int8()
#: Text columns of event tables with at most this many values are staged as DuckDB ENUMs.
ENUM_VALUES = 255
#: Settings of every DuckDB connection the feature engine opens. With background threads,
#: DuckDB's allocator hands freed memory back to the system as it goes: benchmarks/features.py
#: at 1M customers and 6 cutoffs peaked at 2.6-2.8 GB instead of 3.1 GB, in the same time.
DUCKDB_SETTINGS = {"allocator_background_threads": True}


def quiet_progress(connection: duckdb.DuckDBPyConnection) -> None:
    """Turn DuckDB's progress bar off on ``connection``, where it can be turned off.

    In Jupyter without ``ipywidgets`` DuckDB starts with the bar off and refuses *any* change
    to its setting (``InvalidInputException``), even turning it off; that is not an error.
    """
    with contextlib.suppress(duckdb.InvalidInputException):
        connection.execute("SET enable_progress_bar = false")


def encode_keys(tables: Mapping[str, pa.Table]) -> tuple[dict[str, pa.Table], pa.Table]:
    """Add the integer code of ``customer_id`` to every table, as a last column ``_key``.

    The codes are those of :func:`retain.data.dictionaries.key_codes`, the one key coding: the
    distinct non-missing ids of all tables numbered in sorted (byte) order, the order DuckDB
    sorts text in, so ordering by code is ordering by id. A missing id gets no code. Tables
    the reader gave keep their codes: their ids are coded on one sorted dictionary already.

    Returns
    -------
    tables : dict of str to pyarrow.Table
        The tables with ``_key`` (int32) appended.
    keys : pyarrow.Table
        ``customer_id`` and ``_key``, one row per id, in code order.
    """
    coded, ids = key_codes(tables)
    keys = pa.table({KEY: ids, KEY_CODE: pa.array(range(len(ids)), KEY_TYPE)})
    with_codes = {
        name: table.append_column(pa.field(KEY_CODE, KEY_TYPE), _indices(coded[name].column(KEY)))
        for name, table in tables.items()
    }
    return with_codes, keys


def _indices(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([chunk.indices.cast(KEY_TYPE) for chunk in column.chunks], KEY_TYPE)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column with its dictionary, if any, decoded."""
    return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column


COLUMNS_SCHEMA = pa.schema(
    [("source", pa.string()), ("column", pa.string()), ("distinct_values", pa.int64())]
)


def column_counts(tables: Mapping[str, pa.Table]) -> pa.Table:
    """Distinct non-missing values of the event tables' text columns (``_columns``)."""
    rows: dict[str, list] = {name: [] for name in COLUMNS_SCHEMA.names}
    for name, schema in SOURCES.items():
        if schema.is_static or name not in tables:  # e.g. the data without derived sources
            continue
        for column, kind in schema.columns.items():
            if kind == "text":
                rows["source"].append(name)
                rows["column"].append(column)
                rows["distinct_values"].append(len(_distinct(tables[name].column(column))))
    return pa.table(rows, schema=COLUMNS_SCHEMA)


def _distinct(values: pa.ChunkedArray) -> pa.Array:
    """The sorted distinct non-missing values of a text column (a dictionary-coded one through
    the codes it uses, which is much cheaper than through its text)."""
    if pa.types.is_dictionary(values.type) and shared_dictionary([values]) is not None:
        used = pc.drop_null(pc.unique(_indices(values)))
        return values.chunk(0).dictionary.take(used.take(pc.sort_indices(used)))
    unique = pc.drop_null(pc.unique(_plain(values)))
    return unique.take(pc.sort_indices(unique))


def encode_columns(tables: Mapping[str, pa.Table], counts: pa.Table) -> dict[str, pa.Table]:
    """Add ``_code_<column>`` (int8: the value's rank among the column's sorted distinct
    values; missing stays missing) for each text column with at most ``MASK_BITS`` values."""
    tables = dict(tables)
    for row in sorted(counts.to_pylist(), key=lambda row: (row["source"], row["column"])):
        if row["distinct_values"] <= MASK_BITS:
            table = tables[row["source"]]
            column = table.column(row["column"])
            if pa.types.is_dictionary(column.type) and shared_dictionary([column]) is not None:
                codes = _ranks(column)
            else:
                values = _distinct(column)
                codes = pc.index_in(_plain(column), value_set=values).cast(CODE_TYPE)
            field = pa.field(code_column(row["column"]), CODE_TYPE)
            tables[row["source"]] = table.append_column(field, codes)
    return tables


def _ranks(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Rank of each value among the values used, from the codes of a sorted dictionary."""
    size = len(column.chunk(0).dictionary)
    used = pc.drop_null(pc.unique(_indices(column))).to_numpy()
    rank = np.full(size, -1, dtype=np.int8)
    rank[np.sort(used)] = np.arange(len(used), dtype=np.int8)
    ranks = pa.array(rank)
    return pa.chunked_array([ranks.take(chunk.indices) for chunk in column.chunks], CODE_TYPE)


def staged_tables(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """The canonical tables as staged: with key codes and value codes, plus the key table
    (``_keys``) and the column statistics (``_columns``). Plain or compact tables (see
    :mod:`retain.data.dictionaries`) give the same codes."""
    counts = column_counts(tables)
    coded, keys = encode_keys(tables)
    return {**encode_columns(coded, counts), KEYS: keys, COLUMNS: counts}


def register_staged(
    backend: ibis.BaseBackend, tables: Mapping[str, pa.Table]
) -> dict[str, ir.Table]:
    """:func:`staged_tables` of ``tables`` as Arrow tables registered on a DuckDB backend, for a
    build that reads them once (staging them on disk would cost more than it saves).

    The mapping of Ibis tables is as :func:`open_staged` gives it, without the derived columns
    (the compiler computes those itself when a table lacks them).
    """
    ibis_tables = {}
    for name, table in staged_tables(tables).items():
        registered = f"_retain_source_{name.strip('_')}"
        backend.con.register(registered, table)
        ibis_tables[name] = ibis.table(ibis.Schema.from_pyarrow(table.schema), name=registered)
    return ibis_tables


def register_plain(
    backend: ibis.BaseBackend, tables: Mapping[str, pa.Table]
) -> dict[str, ir.Table]:
    """The canonical tables registered on a DuckDB backend as they are, without codes or
    statistics: the plain path every backend runs (the compiler computes what they lack)."""
    ibis_tables = {}
    for name in SOURCES:
        arrow = to_arrow(name, tables.get(name))
        registered = f"_retain_source_{name}"
        backend.con.register(registered, arrow)
        ibis_tables[name] = ibis.table(ibis.Schema.from_pyarrow(arrow.schema), name=registered)
    return ibis_tables


def stage_sources(sources: Sources, folder: Path) -> Path:
    """Write ``sources`` to ``folder/sources.duckdb`` unless already there; return its path.

    The folder is written atomically, so a staged database is always complete. A database
    staged by an older version (without key codes) is staged again.
    """
    database = folder / DATABASE
    if database.is_file() and is_current(database):
        return database
    incoming = staged_tables(sources.compact)
    with atomic_dir(folder, kind="staged sources", legacy_files=(DATABASE,)) as staging:
        connection = duckdb.connect(str(staging / DATABASE), config=DUCKDB_SETTINGS)
        try:
            quiet_progress(connection)
            for name, table in incoming.items():
                connection.register("_incoming", table)
                enums = _enum_casts(table, incoming[COLUMNS], name)
                derived = "".join(f', {sql} AS "{column}"' for column, _, sql in _derived(name))
                select = f"SELECT *{enums}{derived} FROM _incoming"
                connection.execute(f'CREATE TABLE "{name}" AS {select}')
                connection.unregister("_incoming")
            connection.execute(f"CREATE TABLE {FORMAT_TABLE} AS SELECT {FORMAT} AS version")
        finally:
            connection.close()
    return database


def _derived(name: str) -> list[tuple[str, pa.DataType, str]]:
    """Columns computed once while staging a table, with their type and SQL: the epoch day of
    each time column (``_day_<column>``) and, in event tables, each number in integer
    millionths (``_micros_<column>``), exactly as the compiler would compute them per build
    (same SQL as :func:`retain.features.compiler._epoch_days` and ``_exact`` compile to)."""
    if name not in SOURCES:
        return []
    schema = SOURCES[name]
    derived = []
    for column, kind in schema.columns.items():
        if kind == "time":
            days = f"DATE_DIFF('DAY', MAKE_DATE(1970, 1, 1), CAST(\"{column}\" AS DATE))"
            sql = f"CAST({days} AS INTEGER)"
            derived.append((f"{DAY_PREFIX}{column}", pa.int32(), sql))
    for column, kind in schema.columns.items():
        if kind == "number" and not schema.is_static:
            sql = f'CAST(ROUND("{column}" * {MICRO}, 0) AS BIGINT)'
            derived.append((f"{MICROS_PREFIX}{column}", pa.int64(), sql))
    return derived


def _enum_casts(table: pa.Table, counts: pa.Table, name: str) -> str:
    """`` REPLACE (...)`` turning the table's text columns with few values into ENUMs.

    DuckDB compares an ENUM with a text literal as a small integer (``type = 'survey'`` is
    several times cheaper), and otherwise exactly as text: the values are listed in text order,
    and a literal that is not among them compares as text. SQL on the table is unchanged.
    """
    casts = []
    for row in counts.to_pylist():
        if row["source"] == name and 0 < row["distinct_values"] <= ENUM_VALUES:
            column = row["column"]
            values = _distinct(table.column(column)).to_pylist()
            listed = ", ".join("'" + value.replace("'", "''") + "'" for value in sorted(values))
            casts.append(f'CAST("{column}" AS ENUM({listed})) AS "{column}"')
    return f" REPLACE ({', '.join(casts)})" if casts else ""


def is_current(database: Path) -> bool:
    """Whether a staged database is of the current :data:`FORMAT`."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return _format(connection) == FORMAT


def _format(connection: duckdb.DuckDBPyConnection) -> int:
    """The staging format of a database (0: plain canonical tables, before formats)."""
    found = {row[0] for row in connection.execute(TABLES_QUERY).fetchall()}
    if FORMAT_TABLE not in found:
        return 0
    return connection.execute(f"SELECT max(version) FROM {FORMAT_TABLE}").fetchone()[0]


TABLES_QUERY = "SELECT table_name FROM duckdb_tables()"
SMALL_QUERY = f'SELECT "source", "column" FROM {COLUMNS} WHERE distinct_values <= ?'


#: Catalog name of a staged database attached by :func:`connect`.
STAGED_CATALOG = "_retain_staged"


def connect(database: Path | None = None) -> ibis.BaseBackend:
    """An in-memory Ibis DuckDB backend with :data:`DUCKDB_SETTINGS`; with ``database``, that
    staged database attached read-only and made the default catalog.

    A staged database is attached rather than opened read-only, since a read-only DuckDB
    instance cannot create the in-memory catalogs the engine keeps shared tables in (see
    :meth:`retain.engines.duckdb.DuckDBConnection.create_shared`).
    """
    backend = ibis.duckdb.connect(":memory:", **DUCKDB_SETTINGS)
    if database is not None:
        path = str(database).replace("'", "''")
        backend.con.execute(f"ATTACH '{path}' AS {STAGED_CATALOG} (READ_ONLY)")
        backend.con.execute(f"USE {STAGED_CATALOG}")
        # spill next to the database, as DuckDB does when it opens one (not into the cwd)
        backend.con.execute(f"SET temp_directory = '{path}.tmp'")
    return backend


def open_staged(database: Path) -> tuple[ibis.BaseBackend, dict[str, ir.Table]]:
    """A read-only DuckDB backend on a staged database, and its tables.

    Tables are declared with their canonical schema (plus the codes staged with them) rather
    than looked up, so the compiled query text (and its cache) is the same for every staged
    dataset with the same small columns. The mapping also holds the key codes under
    :data:`KEYS` and the column statistics under :data:`COLUMNS`. A database staged in an
    older format is read as plain canonical tables.
    """
    backend = connect(database)
    coded = _format(backend.con) == FORMAT
    small = backend.con.execute(SMALL_QUERY, [MASK_BITS]).fetchall() if coded else []
    tables = {}
    for name in SOURCES:
        schema = arrow_schema(name)
        if coded:
            schema = schema.append(pa.field(KEY_CODE, KEY_TYPE))
            for column in sorted(column for source, column in small if source == name):
                schema = schema.append(pa.field(code_column(column), CODE_TYPE))
            for column, kind, _ in _derived(name):
                schema = schema.append(pa.field(column, kind))
        tables[name] = ibis.table(ibis.Schema.from_pyarrow(schema), name=name)
    if coded:
        schema = pa.schema([(KEY, pa.string()), (KEY_CODE, KEY_TYPE)])
        tables[KEYS] = ibis.table(ibis.Schema.from_pyarrow(schema), name=KEYS)
        tables[COLUMNS] = ibis.table(ibis.Schema.from_pyarrow(COLUMNS_SCHEMA), name=COLUMNS)
    return backend, tables
