"""The Spark session retain runs on: settings from the ``spark:`` section of ``retain.yaml``
(or a file given with ``--spark-config``), master from the environment.

The master comes from ``RETAIN_SPARK_MASTER`` when set, else ``spark.master`` (``local[*]`` by
default). An active session (a notebook's, a test's) is used as it is. Under ``spark-submit``
the master, driver memory and Python of ``spark-submit`` apply (its ``--master``, ``--conf``),
and the settings add only what can still change once the driver runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from retain.errors import ConfigError, RetainError
from retain.settings import read_settings
from retain.workspace import CONFIG_FILE, MASTER_ENV, SparkSettings, load_workspace_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "MASTER_ENV",
    "SUBMIT_ENV",
    "SparkSettings",
    "launched_by_spark_submit",
    "load_spark_settings",
    "require_pyspark",
    "spark_session",
]

#: Set in a Python driver that ``spark-submit`` (or the ``pyspark`` shell) started.
SUBMIT_ENV = "PYSPARK_GATEWAY_PORT"
#: Where Spark settings lived before they moved into ``retain.yaml``.
OLD_FILE = "spark.yaml"


def load_spark_settings(
    workspace: str | Path = ".", path: str | Path | None = None
) -> SparkSettings:
    """The ``spark:`` section of the workspace's ``retain.yaml``, or the file ``path``.

    ``path`` (``--spark-config``) holds the same keys as the section, at its top level, and
    replaces it: one file per cluster, say.

    Raises
    ------
    ConfigError
        ``path`` missing or invalid, or a ``spark.yaml`` left in the workspace: its settings
        moved into ``retain.yaml``.
    """
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: Spark settings file not found")
        return read_settings(SparkSettings, path)
    old = Path(workspace) / OLD_FILE
    if old.is_file():
        raise ConfigError(
            f"{old}: Spark settings moved into {CONFIG_FILE}, as its `spark:` section (the "
            f"same keys, indented under `spark:`); move them there and delete {old}, or pass "
            f"--spark-config {old}"
        )
    return load_workspace_config(workspace).spark


def require_pyspark() -> None:
    """Raise a clear error when pyspark (the ``spark`` extra) is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise RetainError(
            "--engine spark needs pyspark: pip install 'retain[spark]' (and Java 17 on PATH)"
        ) from None


def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """The active Spark session, or a new one configured by ``settings``.

    Workers run the same Python as the driver (``PYSPARK_PYTHON`` defaults to this
    interpreter), and the session's time zone is UTC, as timestamps are UTC-naive in retain.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = settings or SparkSettings()
    builder = SparkSession.builder.appName(settings.app_name)
    if not launched_by_spark_submit():  # else spark-submit's master and Python apply
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = builder.master(settings.effective_master).config(
            "spark.driver.memory", settings.driver_memory
        )
    builder = (
        builder.config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in settings.config.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


def launched_by_spark_submit() -> bool:
    """Whether this Python is a driver started by ``spark-submit`` (or the ``pyspark`` shell)."""
    return SUBMIT_ENV in os.environ
