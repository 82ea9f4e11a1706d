"""Staged sources: validated canonical tables kept as a DuckDB database, once per fingerprint.

Loading and checking tens of millions of rows is the slow part of a build; the engine then
scans the sources several times (once per pipeline, or per cutoff). DuckDB's native storage
scans about twice as fast as Parquet and is read column by column in parallel with little
memory, so sources are written once per fingerprint to ``sources.duckdb`` and every build opens
it read-only. This is a detail of the DuckDB backend: the compiler only sees Ibis tables.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir

from retain.atomic import atomic_dir
from retain.features.inputs import SourceData
from retain.features.sources import SOURCES, arrow_schema

__all__ = ["DATABASE", "open_staged", "stage_sources"]

DATABASE = "sources.duckdb"


def stage_sources(sources: SourceData, folder: Path) -> Path:
    """Write ``sources`` to ``folder/sources.duckdb`` unless already there; return its path.

    The folder is written atomically, so a staged database is always complete.
    """
    database = folder / DATABASE
    if database.is_file():
        return database
    with atomic_dir(folder) as staging:
        connection = duckdb.connect(str(staging / DATABASE))
        try:
            for name, table in sources.tables.items():
                connection.register("_incoming", table)
                connection.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
                connection.unregister("_incoming")
        finally:
            connection.close()
    return database


def open_staged(database: Path) -> tuple[ibis.BaseBackend, dict[str, ir.Table]]:
    """A read-only DuckDB backend on a staged database, and its canonical tables.

    Tables are declared with their canonical schema rather than looked up, so the compiled
    query text (and its cache) is the same for every staged dataset.
    """
    backend = ibis.duckdb.connect(str(database), read_only=True)
    tables = {
        name: ibis.table(ibis.Schema.from_pyarrow(arrow_schema(name)), name=name)
        for name in SOURCES
    }
    return backend, tables
