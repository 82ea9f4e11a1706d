"""The Spark engine: the same definitions, rules and models on Apache Spark (``--engine spark``).

Optional: ``pip install 'retain[spark]'`` (and Java 17). Nothing here imports pyspark until the
engine is used, so the embedded DuckDB engine never needs pyspark or Java. Only what is Spark's
own lives here: the session (:mod:`~retain.engines.spark.session`), sources staged as Parquet
and results fetched as Arrow (:mod:`~retain.engines.spark.staging`), per-batch functions in
``mapInPandas`` and the rules run as Spark SQL (:mod:`~retain.engines.spark.engine`), and the
trees grown with ``xgboost.spark`` (:mod:`~retain.engines.spark.training`).
"""

from retain.engines.spark.engine import SparkConnection, SparkEngine
from retain.engines.spark.session import (
    SparkSettings,
    load_spark_settings,
    require_pyspark,
    spark_session,
)

__all__ = [
    "SparkConnection",
    "SparkEngine",
    "SparkSettings",
    "load_spark_settings",
    "require_pyspark",
    "spark_session",
]
