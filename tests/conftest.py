"""Shared fixtures: a fixed seed and one small simulated world built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# as the CLI does (src/retain/cli.py): OpenMP spin-waiting is very slow on a busy machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SEED = 7
SMALL_WORLD_CUSTOMERS = 3_000
#: MLflow copies these into ``os.environ``; tests set the user's values aside and restore them.
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(scope="session")
def seed() -> int:
    return SEED


@pytest.fixture(scope="session")
def world(seed):
    """A simulated retail world of a few thousand customers (the real simulator, in memory)."""
    from retain.data.simulator import simulate_world

    return simulate_world(SMALL_WORLD_CUSTOMERS, seed=seed)


@pytest.fixture(scope="session")
def world_dir(world, tmp_path_factory) -> Path:
    """The same world written to a data folder in the data contract (read-only for tests)."""
    from retain.data.simulator import write_world

    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out


@pytest.fixture(scope="module")
def mlflow_workspace(tmp_path_factory):
    """A folder with its own MLflow store, one per test module (sqlite migrations take seconds)."""
    import mlflow

    from retain.mlflow.tracking import use_workspace

    saved = {name: os.environ.pop(name, None) for name in MLFLOW_URI_VARIABLES}
    folder = tmp_path_factory.mktemp("mlflow")
    use_workspace(folder)
    yield folder
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def trained_workspace(world_dir, tmp_path_factory):
    """A workspace like a fresh clone's (feature repository, configs, playbook, simulated data)
    with its own MLflow store; ``trained_models`` trains the three champions into it."""
    import shutil

    import mlflow

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path_factory.mktemp("workspace")
    for name in ("features", "training", "serving"):
        shutil.copytree(root / name, folder / name, ignore=shutil.ignore_patterns("output"))
    shutil.copytree(world_dir, folder / "data" / "simulated")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        yield folder
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def trained_models(trained_workspace):
    """``retain train all`` once per session: churn, CLV and segments, each a first champion."""
    from retain.training.jobs import run_training

    results = run_training("all", workspace=trained_workspace)
    return {result.family: result for result in results}


#: Settings of the tests' Spark session and engine.
SPARK_SETTINGS = {
    "master": "local[2]", "driver_memory": "2g", "shuffle_partitions": 4, "xgboost_workers": 1
}  # fmt: skip


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (``local[2]``) for every Spark test; skipped without pyspark.

    ``.ci/run`` installs the ``spark`` extra, so in CI these tests always run.
    """
    pytest.importorskip("pyspark")
    from retain.engines.spark import SparkSettings, spark_session

    session = spark_session(SparkSettings(**SPARK_SETTINGS))
    yield session
    session.stop()


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("spark", id="spark", marks=pytest.mark.spark),
    ],
)
def engine(request):
    """Every engine, one after the other, as Ibis' backend tests run each body on every
    backend (its ``con`` fixture): a test taking ``engine`` runs on DuckDB and on Spark
    (``local[2]``; marked ``spark``, skipped without pyspark). A gap of an engine is marked on
    the test: ``@pytest.mark.notimpl(["spark"], reason=...)`` skips it there."""
    if request.param == "duckdb":
        from retain.engines.duckdb import DuckDBEngine

        return DuckDBEngine()
    from retain.engines.spark import SparkEngine, SparkSettings

    return SparkEngine(SparkSettings(**SPARK_SETTINGS), session=request.getfixturevalue("spark"))


@pytest.fixture(autouse=True)
def _engine_per_test(request):
    """Skip a test on an engine its ``notimpl`` mark names; release what the engine cached
    for the test after it."""
    if "engine" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("engine")
    marker = request.node.get_closest_marker("notimpl")
    if marker is not None and engine.name in marker.args[0]:
        pytest.skip(f"not implemented on {engine.name}: {marker.kwargs.get('reason', '')}")
    yield
    engine.release()
