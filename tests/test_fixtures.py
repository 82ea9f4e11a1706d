"""The shared fixtures do what the other tests rely on: ``make_workspace`` makes what
``retain init`` makes (plus data and overrides), ``mlflow_isolation`` leaves no run, URI or
variable behind and keeps the user's MLflow settings out."""

from __future__ import annotations

import os

import mlflow

from retain.workspace import PACKAGED, SCAFFOLD, load_workspace_config


def _files(folder) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_a_workspace_is_what_retain_init_writes_with_data_and_overrides(make_workspace, world_dir):
    folder = make_workspace(data=world_dir, files={"training/churn.yaml": "seed: 3\n"})
    data = {f"data/simulated/{name}" for name in _files(world_dir)}
    assert data and _files(folder) == set(SCAFFOLD) | data
    assert (folder / "training/churn.yaml").read_text() == "seed: 3\n"
    packaged = PACKAGED / "serving" / "score.yaml"
    assert (folder / "serving" / "score.yaml").read_bytes() == packaged.read_bytes()
    assert load_workspace_config(folder).source == str(folder / "retain.yaml")
    assert load_workspace_config(folder).data == "data/simulated"


def test_a_bare_workspace_falls_back_to_the_packaged_defaults(make_workspace, world):
    folder = make_workspace("bare", scaffold=False, data=world)
    assert {path.split("/")[0] for path in _files(folder)} == {"data"}
    assert load_workspace_config(folder).source == str(PACKAGED / "retain.yaml")
    assert make_workspace("bare") != folder  # a new folder each time


def test_the_users_mlflow_variables_are_set_aside():
    # MLflow copies the URIs retain selects into the environment; nothing else of MLflow's
    # may be there, and no URI that names a server
    ours = {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}
    assert {name for name in os.environ if name.startswith("MLFLOW_")} <= ours
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        assert os.environ.get(name, "sqlite:///").startswith("sqlite:///")


def test_a_context_ends_runs_and_restores_the_uris_it_found(mlflow_workspace, mlflow_isolation):
    # the module's store (selected for the module by mlflow_workspace) is the outer context
    outer = mlflow.get_tracking_uri()
    assert outer.endswith("/mlruns/mlflow.db") and str(mlflow_workspace.resolve()) in outer
    with mlflow_isolation():
        assert "MLFLOW_TRACKING_URI" not in os.environ
        mlflow.set_tracking_uri("sqlite:////nowhere/else.db")
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == outer
    with mlflow_isolation(mlflow_workspace) as uri:
        assert uri == outer
        run = mlflow.start_run(run_name="left-open")
    assert mlflow.active_run() is None
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_child_process_gets_no_copied_uri(mlflow_workspace, mlflow_isolation):
    assert os.environ["MLFLOW_TRACKING_URI"] == mlflow.get_tracking_uri()  # copied by MLflow
    environment = mlflow_isolation.environment(RETAIN_EXAMPLE="1")
    assert "MLFLOW_TRACKING_URI" not in environment and "MLFLOW_REGISTRY_URI" not in environment
    assert environment["RETAIN_EXAMPLE"] == "1" and environment["PATH"] == os.environ["PATH"]
