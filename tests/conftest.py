"""Shared fixtures: a fixed seed, one small simulated world built once per test session, a
workspace factory (``make_workspace``) and MLflow isolation (``mlflow_isolation``).

A test that needs a workspace asks ``make_workspace`` for one, at the scope it needs; a test or
fixture that touches MLflow runs inside ``with mlflow_isolation(folder):`` (or
``mlflow_isolation()`` when the code under test selects its store itself), so that no run,
tracking URI or registry URI outlives it and no user setting reaches it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from retain.data.simulator import World

# as the CLI does (src/retain/cli.py): OpenMP spin-waiting is very slow on a busy machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SEED = 7
SMALL_WORLD_CUSTOMERS = 3_000
#: Where the packaged ``retain.yaml`` looks for data, relative to the workspace.
DATA_FOLDER = "data/simulated"
#: MLflow copies the URIs it is given into these variables, for subprocesses to inherit.
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


# --------------------------------------------------------------------------- workspaces


@pytest.fixture(scope="session")
def make_workspace(tmp_path_factory) -> Callable[..., Path]:
    """A factory of workspaces: folders like a fresh clone's or ``retain init``'s.

    ``make_workspace(name="workspace", *, data=None, files=None, scaffold=True)`` returns a
    new folder under pytest's temporary base (named after ``name``, numbered) holding:

    - with ``scaffold``, what ``retain init`` writes: ``retain.yaml``, ``features/``,
      ``training/`` and ``serving/`` (the packaged defaults, i.e. the repository's own files)
      and an empty ``data/``; without it nothing, so that every command falls back to the
      packaged defaults;
    - with ``data``, the data at ``data/simulated`` (where ``retain.yaml`` points): a data
      folder is copied, a simulated ``World`` written;
    - with ``files``, ``{path relative to the workspace: text}`` written last, over what is
      there: config overrides (``{"retain.yaml": "seed: 3\\n", "training/churn.yaml": ...}``)
      or any other file a test needs.

    Session-scoped so that fixtures of every scope can use it; a workspace lives as long as
    the fixture (or test) that made it keeps it.
    """
    from retain.data.simulator import write_world
    from retain.workspace import init_workspace

    def make(
        name: str = "workspace",
        *,
        data: str | os.PathLike | World | None = None,
        files: Mapping[str, str] | None = None,
        scaffold: bool = True,
    ) -> Path:
        folder = tmp_path_factory.mktemp(name)
        if scaffold:
            init_workspace(folder)
        if isinstance(data, str | os.PathLike):
            shutil.copytree(data, folder / DATA_FOLDER)
        elif data is not None:
            write_world(data, folder / DATA_FOLDER)
        for relative, text in (files or {}).items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return folder

    return make


# --------------------------------------------------------------------------- MLflow


class MlflowIsolation:
    """Keeps MLflow's process-wide state from leaking between tests.

    Call it for a context: ``with mlflow_isolation(folder) as uri:`` points tracking and the
    model registry at ``folder``'s own store (``retain``'s ``use_workspace``);
    ``mlflow_isolation()`` selects none, for code that selects its store itself. Entering sets
    aside the URI variables MLflow copied into ``os.environ`` earlier and ends runs left
    active; leaving ends the runs left active, resets both URIs and restores those variables,
    which re-selects the store of an enclosing context (MLflow falls back to them).
    """

    @contextmanager
    def __call__(self, workspace: str | os.PathLike | None = None) -> Iterator[str | None]:
        saved = {name: os.environ.pop(name, None) for name in MLFLOW_URI_VARIABLES}
        _reset_mlflow()
        try:
            if workspace is None:
                yield None
            else:
                from retain.mlflow.tracking import use_workspace

                yield use_workspace(workspace)
        finally:
            _reset_mlflow()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @staticmethod
    def environment(**variables: str) -> dict[str, str]:
        """``os.environ`` for a child process, without the URIs MLflow copied into it (so the
        child uses its workspace's own store), plus ``variables``."""
        inherited = {k: v for k, v in os.environ.items() if k not in MLFLOW_URI_VARIABLES}
        return {**inherited, **variables}


def _reset_mlflow() -> None:
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:  # not imported yet: nothing to reset (and importing it takes seconds)
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture(scope="session", autouse=True)
def mlflow_isolation() -> Iterator[MlflowIsolation]:
    """MLflow isolation: the user's ``MLFLOW_*`` variables (a tracking server, an experiment,
    credentials) are set aside for the whole session and restored after it, and the session
    runs in one :class:`MlflowIsolation` context; call the fixture for narrower ones."""
    user = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("MLFLOW_")}
    isolation = MlflowIsolation()
    try:
        with isolation():
            yield isolation
    finally:
        for name in [name for name in os.environ if name.startswith("MLFLOW_")]:
            del os.environ[name]
        os.environ.update(user)


@pytest.fixture(scope="module")
def mlflow_workspace(make_workspace, mlflow_isolation) -> Iterator[Path]:
    """A bare folder with its own MLflow store, selected for the module (one per module:
    creating a store runs sqlite migrations, which take seconds)."""
    folder = make_workspace("mlflow", scaffold=False)
    with mlflow_isolation(folder):
        yield folder


# --------------------------------------------------------------------------- trained models


@pytest.fixture(scope="session")
def trained_workspace(make_workspace, world_dir) -> Path:
    """A workspace like a fresh clone's (feature repository, configs, playbook, simulated data)
    with its own MLflow store; ``trained_models`` trains the three champions into it."""
    return make_workspace("workspace", data=world_dir)


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
