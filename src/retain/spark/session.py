"""The Spark session retain runs on: settings from ``spark.yaml``, master from the environment.

The master comes from ``RETAIN_SPARK_MASTER`` when set, else ``spark.yaml`` (``local[*]`` by
default). An active session (a notebook's, a test's) is used as it is. Under ``spark-submit``
the master, driver memory and Python of ``spark-submit`` apply (its ``--master``, ``--conf``),
and ``spark.yaml`` adds only the settings that can still change once the driver runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from retain.errors import RetainError
from retain.settings import read_settings
from retain.workspace import locate

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

#: Environment variable naming the Spark master; it overrides ``spark.yaml``.
MASTER_ENV = "RETAIN_SPARK_MASTER"
#: Set in a Python driver that ``spark-submit`` (or the ``pyspark`` shell) started.
SUBMIT_ENV = "PYSPARK_GATEWAY_PORT"


@dataclass(frozen=True)
class SparkSettings:
    """Settings of ``spark.yaml`` (see the shipped file for what each key does)."""

    master: str = "local[*]"
    app_name: str = "retain"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    xgboost_workers: int = 2
    config: dict[str, str] = field(default_factory=dict)
    source: str = "defaults"

    @property
    def effective_master(self) -> str:
        """``RETAIN_SPARK_MASTER`` when set, else ``master``."""
        return os.environ.get(MASTER_ENV) or self.master


def load_spark_settings(
    workspace: str | Path = ".", path: str | Path | None = None
) -> SparkSettings:
    """``spark.yaml`` of the workspace (or ``path``); the defaults when there is none."""
    resolved = Path(path) if path is not None else locate(workspace, "spark.yaml")
    if path is None and not resolved.is_file():
        return SparkSettings()
    if not resolved.is_file():
        raise RetainError(f"{resolved}: Spark settings file not found")
    return read_settings(SparkSettings, resolved)


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
