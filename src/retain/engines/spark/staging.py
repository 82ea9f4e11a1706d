"""Sources into Spark, results out of it: Parquet staging, DataFrames of Arrow tables, Arrow
fetches with DuckDB's result types.

- *Sources*: on a local master the validated canonical tables are staged once per fingerprint
  as Parquet next to the DuckDB staging (``STORE/sources/<fingerprint>-parquet/``), which
  Spark scans in parallel, reading only the columns a query needs; on a cluster, whose
  executors cannot read the driver's disk, they are sent from the driver (``createDataFrame``
  of Arrow). Either way timestamps are ``TIMESTAMP_NTZ`` (UTC-naive, as in retain) and the
  session time zone is UTC, so dates, hence epoch days, are the same as on DuckDB.
- *Results*: fetched as Arrow (``DataFrame.toArrow``), not through pandas as Ibis does, and
  given the types DuckDB's results have, so snapshot Parquet files have the same schema
  whichever engine built them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from retain.atomic import atomic_dir
from retain.engines.base import Sources
from retain.engines.sources import SOURCES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["ROW_GROUP_ROWS", "from_arrow", "is_local", "source_frames", "stage_parquet",
           "to_arrow"]  # fmt: skip

#: Rows per Parquet row group of staged sources: Spark splits a file at row groups, so a large
#: table is read by several tasks at once.
ROW_GROUP_ROWS = 1_000_000


def is_local(session: SparkSession) -> bool:
    """Whether the session runs in this process (``local``, ``local[N]``, ``local[*]``)."""
    return session.sparkContext.master.startswith("local")


def stage_parquet(sources: Sources, folder: Path) -> dict[str, Path]:
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


def source_frames(
    session: SparkSession, sources: Sources, staging: Path | None
) -> dict[str, DataFrame]:
    """The canonical tables as Spark DataFrames: read from Parquet staged in ``staging``, or
    (``staging=None``) created from the Arrow tables on the driver."""
    if staging is not None:
        paths = stage_parquet(sources, staging)
        return {name: session.read.parquet(str(paths[name])) for name in SOURCES}
    return {name: from_arrow(session, sources.tables[name]) for name in SOURCES}


def from_arrow(session: SparkSession, table: pa.Table) -> DataFrame:
    """A DataFrame of an Arrow table, timestamps as ``TIMESTAMP_NTZ`` (as read from Parquet)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
    return session.createDataFrame(table, schema=schema)


def to_arrow(frame: DataFrame) -> pa.Table:
    """Collect a DataFrame as Arrow, with DuckDB's result types.

    Spark 4 hands Arrow batches over directly (Ibis' ``to_pyarrow`` goes through pandas).
    Text comes back as ``string`` (not ``large_string``), so snapshot schemas do not depend
    on the engine, and every column nullable, as DuckDB's are.
    """
    table = frame.toArrow()
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
