"""Scale-out on Apache Spark: the same feature views, training and scoring (``--engine spark``).

Optional: ``pip install 'retain[spark]'``. Nothing here is imported unless a command asks for
Spark, so the embedded DuckDB engine never needs pyspark or Java.
"""

from retain.spark.session import SparkSettings, load_spark_settings, require_pyspark, spark_session

__all__ = ["SparkSettings", "load_spark_settings", "require_pyspark", "spark_session"]
