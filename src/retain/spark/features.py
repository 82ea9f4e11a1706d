"""Feature snapshots on Spark: the same compiled views, run by Ibis' PySpark backend.

The feature engine (:func:`retain.features.engine.iter_snapshots`) compiles the repository once
to an Ibis expression; on Spark it runs on the engine's *plain* path (no staged key codes), the
path every backend shares. What is Spark-specific lives here:

- *Sources*: the validated canonical tables (:class:`~retain.features.inputs.SourceData`)
  become Spark temporary views. On a local master they are staged once per fingerprint as
  Parquet next to the DuckDB staging (``STORE/sources/<fingerprint>-parquet/``), which Spark
  scans in parallel, reading only the columns a query needs; on a cluster, whose executors
  cannot read the driver's disk, they are sent from the driver (``createDataFrame`` of Arrow).
  Either way timestamps are ``TIMESTAMP_NTZ`` (UTC-naive, as in retain) and the session time
  zone is UTC, so dates, hence epoch days, are the same as on DuckDB.
- *Column statistics*: the number of distinct values of each text column (which selects the
  bitmask distinct count) is counted on the driver from the Arrow tables, as staging does for
  DuckDB, rather than by two Spark jobs per column.
- *Results*: fetched as Arrow (``DataFrame.toArrow``), not through pandas as Ibis does, and
  given the types DuckDB's results have, so the snapshot Parquet files have the same schema
  whichever engine built them.

Spark 4 runs in ANSI mode (``spark.sql.ansi.enabled``): a division by zero or an overflowing
cast is an error, not a null. The compiled expressions divide only by ``NULLIF(x, 0)`` and sum
integers of millionths well within ``BIGINT``, so they run unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from retain.atomic import atomic_dir
from retain.features.engine import CUTOFFS_TABLE
from retain.features.inputs import SourceData
from retain.features.sources import SOURCES
from retain.features.staging import COLUMNS, column_counts
from retain.spark.session import SparkSettings, spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SOURCE_VIEW",
    "SparkEngine",
    "fetch_arrow",
    "is_local",
    "source_frames",
    "spark_engine",
    "stage_parquet",
]

#: Name of the temporary view of a source table (fixed, so compiled SQL is reused).
SOURCE_VIEW = "_retain_source_{name}"
#: Rows per Parquet row group of staged sources: Spark splits a file at row groups, so a large
#: table is read by several tasks at once.
ROW_GROUP_ROWS = 1_000_000


@dataclass
class SparkEngine:
    """An open Spark engine: the Ibis backend, the source tables and what the manifest records.

    Parameters
    ----------
    backend : ibis.BaseBackend
        Ibis' PySpark backend on the session.
    tables : dict of str to ibis.Table
        The canonical sources (and their column statistics under ``_columns``), as temporary
        views of the session.
    details : dict
        Recorded in the snapshot manifest under ``engine``: the Spark version and master.
    """

    backend: ibis.BaseBackend
    tables: dict[str, ir.Table]
    details: dict[str, str] = field(default_factory=dict)


@contextmanager
def spark_engine(
    sources: SourceData, staging: Path | None, settings: SparkSettings | None = None
) -> Iterator[SparkEngine]:
    """Open Ibis' PySpark backend with ``sources`` as temporary views; drop the views after.

    Parameters
    ----------
    sources : SourceData
        Validated canonical tables.
    staging : Path or None
        Folder for the Parquet staging of ``sources`` on a local master (created once, reused
        while it exists); ``None`` always sends the tables from the driver.
    settings : SparkSettings, optional
        Used only when no Spark session is active (under ``spark-submit`` one is).

    Yields
    ------
    SparkEngine
    """
    session = spark_session(settings)
    backend = ibis.pyspark.connect(session)
    folder = staging if staging is not None and is_local(session) else None
    frames = source_frames(session, sources, folder)
    frames[COLUMNS] = session.createDataFrame(column_counts(sources.tables))
    views = {name: SOURCE_VIEW.format(name=name.strip("_")) for name in frames}
    try:
        for name, frame in frames.items():
            frame.createOrReplaceTempView(views[name])
        tables = {name: backend.table(view) for name, view in views.items()}
        details = {
            "spark": session.version,
            "master": session.sparkContext.master,
            "sources": "parquet" if folder is not None else "driver",
        }
        yield SparkEngine(backend, tables, details)
    finally:
        for view in [*views.values(), CUTOFFS_TABLE]:
            session.catalog.dropTempView(view)


def is_local(session: SparkSession) -> bool:
    """Whether the session runs in this process (``local``, ``local[N]``, ``local[*]``)."""
    return session.sparkContext.master.startswith("local")


def source_frames(
    session: SparkSession, sources: SourceData, staging: Path | None
) -> dict[str, DataFrame]:
    """The canonical tables as Spark DataFrames: read from Parquet staged in ``staging``, or
    (``staging=None``) created from the Arrow tables on the driver."""
    if staging is not None:
        paths = stage_parquet(sources, staging)
        return {name: session.read.parquet(str(paths[name])) for name in SOURCES}
    return {name: _from_arrow(session, sources.tables[name]) for name in SOURCES}


def _from_arrow(session: SparkSession, table: pa.Table) -> DataFrame:
    """A DataFrame of an Arrow table, timestamps as ``TIMESTAMP_NTZ`` (as read from Parquet)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
    return session.createDataFrame(table, schema=schema)


def stage_parquet(sources: SourceData, folder: Path) -> dict[str, Path]:
    """Write the canonical tables to ``folder/<table>.parquet`` unless the folder exists.

    The folder is written atomically (complete or absent), once per fingerprint.

    Returns
    -------
    dict of str to Path
        Table name to its Parquet file.
    """
    paths = {name: folder / f"{name}.parquet" for name in SOURCES}
    if all(path.is_file() for path in paths.values()):
        return paths
    legacy = tuple(path.name for path in paths.values())
    with atomic_dir(folder, kind="staged parquet", legacy_files=legacy) as temporary:
        for name in SOURCES:
            pq.write_table(
                sources.tables[name],
                temporary / f"{name}.parquet",
                row_group_size=ROW_GROUP_ROWS,
                compression="zstd",
            )
    return paths


def fetch_arrow(backend: ibis.BaseBackend, sql: str) -> pa.Table:
    """Run ``sql`` on Spark and collect the result as Arrow, with DuckDB's result types.

    Ibis' ``to_pyarrow`` goes through pandas; Spark 4 hands Arrow batches over directly. Text
    comes back as ``string`` (not ``large_string``), so snapshot schemas do not depend on the
    engine (and every column nullable, as DuckDB's are).
    """
    table = backend.raw_sql(sql).toArrow()
    return table.cast(_duckdb_types(table.schema))


def _duckdb_types(schema: pa.Schema) -> pa.Schema:
    """Text as ``string``, every column nullable (Spark marks some columns non-null, which
    Parquet would store as ``required``)."""
    return pa.schema(
        [field.with_type(_duckdb_type(field.type)).with_nullable(True) for field in schema]
    )


def _duckdb_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    return kind
