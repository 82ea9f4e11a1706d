"""Engines: where retain's data work runs, behind one protocol (:class:`Engine`).

``duckdb`` (the default) runs everything in this process on embedded DuckDB; ``spark`` runs
the same definitions and rules on Apache Spark (``pip install 'retain[spark]'``).
:func:`get_engine` is the one place an engine is chosen by name; nothing else in retain
branches on engine names or imports a backend.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from retain.engines.base import Batches, Connection, Engine, Rows, Sources, TrainingRows
from retain.errors import ConfigError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "Batches",
    "Connection",
    "Engine",
    "Rows",
    "Sources",
    "TrainingRows",
    "get_engine",
]

#: Engine name -> ``module:class`` of its implementation (imported only when chosen, so the
#: DuckDB engine never needs pyspark or Java). ``retain.workspace.ENGINES`` lists the same
#: names for checking ``retain.yaml`` (a test keeps them equal).
ENGINES: dict[str, str] = {
    "duckdb": "retain.engines.duckdb:DuckDBEngine",
    "spark": "retain.engines.spark:SparkEngine",
}
#: The engine of a workspace that names none, and of library calls given none.
DEFAULT_ENGINE = "duckdb"


def get_engine(
    name: str | None = None,
    *,
    workspace: str | Path = ".",
    config_file: str | Path | None = None,
) -> Engine:
    """The engine called ``name`` (default :data:`DEFAULT_ENGINE`), configured for a workspace.

    Parameters
    ----------
    name : {"duckdb", "spark"}, optional
        The engine.
    workspace : str or Path, default="."
        Folder whose ``retain.yaml`` holds the engine's settings (Spark: its ``spark:``
        section).
    config_file : str or Path, optional
        A settings file replacing that section (``--spark-config``); only for an engine that
        has settings.

    Raises
    ------
    ConfigError
        An unknown name, or a settings file for an engine that takes none.
    RetainError
        An engine whose libraries are not installed (``spark`` without pyspark), before any
        data are read.
    """
    name = DEFAULT_ENGINE if name is None else name
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls).from_workspace(workspace, config_file)
