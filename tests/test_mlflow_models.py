"""MLflow-native models: each champion loads with plain MLflow, in a process without retain.

The workspace's champions (``trained_models``) are loaded with ``mlflow.pyfunc.load_model`` in a
fresh Python process from which the installed retain is hidden, and predict named columns on a
feature snapshot; the answers must equal what retain's own objects predict. The runs carry
descriptive names, durations that cover the fit and the settings the models used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from retain.cli import app
from retain.features import get_features
from retain.mlflow import registry
from retain.mlflow.tracking import tracking_uri

AS_OF = "2026-01-01"

#: Runs in a fresh interpreter: hides retain (its source folder and any installed copy), loads
#: each champion with plain MLflow and writes the predictions next to the snapshot.
FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    sys.path = [p for p in sys.path if not Path(p, "retain", "__init__.py").is_file()]
    import importlib.util
    assert importlib.util.find_spec("retain") is None, "retain is still importable"

    import mlflow
    import pandas as pd

    snapshot_file, out = Path(sys.argv[1]), Path(sys.argv[2])
    snapshot = pd.read_parquet(snapshot_file)
    report = {}
    for family in ("churn", "clv", "segments"):
        model = mlflow.pyfunc.load_model(f"models:/retain-{family}@champion")
        model.predict(snapshot).to_parquet(out / f"{family}.parquet")
    import retain
    report["retain_file"] = retain.__file__
    (out / "report.json").write_text(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def workspace(trained_models, trained_workspace, mlflow_isolation):
    with mlflow_isolation(trained_workspace):
        yield trained_workspace


@pytest.fixture(scope="module")
def snapshot(workspace) -> pd.DataFrame:
    """Every customer known at the end of the data, with all of a snapshot's columns."""
    return get_features(
        AS_OF, store=workspace / "store", data=workspace / "data" / "simulated",
        repo=workspace / "features",
    )  # fmt: skip


@pytest.fixture(scope="module")
def fresh(workspace, snapshot, tmp_path_factory, mlflow_isolation) -> Path:
    """The champions' predictions from a fresh process without retain (plain MLflow)."""
    out = tmp_path_factory.mktemp("pyfunc")
    snapshot.to_parquet(out / "snapshot.parquet")
    script = out / "load.py"
    script.write_text(FRESH_PROCESS)
    env = mlflow_isolation.environment(MLFLOW_TRACKING_URI=tracking_uri(workspace))
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(script), str(out / "snapshot.parquet"), str(out)],
        cwd=out, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_champions_load_with_plain_mlflow_without_retain_installed(fresh):
    report = json.loads((fresh / "report.json").read_text())
    # the retain that unpickled the models is the copy logged with them
    assert f"{os.sep}code{os.sep}retain{os.sep}" in report["retain_file"]
    assert "artifacts" in report["retain_file"]


def test_churn_pyfunc_returns_named_probabilities(fresh, snapshot, trained_models):
    predicted = pd.read_parquet(fresh / "churn.parquet")
    assert list(predicted.columns) == ["customer_id", "churn_probability"]
    assert predicted["customer_id"].tolist() == snapshot["customer_id"].tolist()
    model = trained_models["churn"].model
    expected = model.predict_proba(snapshot[list(model.feature_names_in_)])[:, 1]
    np.testing.assert_allclose(predicted["churn_probability"], expected)


def test_clv_pyfunc_returns_clv_and_its_parts(fresh, snapshot, trained_models):
    predicted = pd.read_parquet(fresh / "clv.parquet")
    assert list(predicted.columns)[:2] == ["customer_id", "clv"]
    assert {"clv_btyd", "clv_ml", "expected_purchases", "expected_spend"} <= set(predicted)
    features = snapshot[trained_models["clv"].manifest["features"]]
    np.testing.assert_allclose(predicted["clv"], trained_models["clv"].model.predict(features))


def test_segments_pyfunc_needs_only_a_snapshot(fresh, snapshot, trained_models):
    predicted = pd.read_parquet(fresh / "segments.parquet")
    labels = ["segment", "value_tier", "loyalty_class", "lifecycle_stage", "cluster"]
    assert {"customer_id", "clv", *labels} <= set(predicted.columns)
    features = snapshot[trained_models["segments"].manifest["features"]]
    clv = registry.load_model("clv").predict(features)
    np.testing.assert_allclose(predicted["clv"], clv)
    expected = trained_models["segments"].model.transform(features, clv)
    for label in labels:
        assert predicted[label].astype(str).tolist() == expected[label].astype(str).tolist()


def test_a_missing_column_is_named_alone(workspace, snapshot):
    model = mlflow.pyfunc.load_model("models:/retain-segments@champion")
    with pytest.raises(ValueError, match=r"missing column\(s\) 'recency_days'") as error:
        model.predict(snapshot.head(20).drop(columns=["recency_days"]))
    assert "frequency" not in str(error.value)
    given = model.predict(snapshot.head(20).assign(clv=1.0))  # a clv column is used as given
    assert (given["clv"] == 1.0).all()


def test_requirements_pin_the_runtime_and_the_model_carries_retain(workspace):
    uri = "models:/retain-churn@champion"
    requirements = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
    assert any(line.startswith("xgboost==") for line in requirements)
    assert any(line.startswith("cloudpickle==") for line in requirements)
    local = Path(mlflow.artifacts.download_artifacts(uri))
    assert (local / "code" / "retain" / "models" / "churn.py").is_file()
    assert not list((local / "code").rglob("__pycache__"))


def test_runs_are_named_timed_and_log_the_settings_used(workspace, trained_models):
    client = MlflowClient()
    for family, result in trained_models.items():
        run = client.get_run(result.run_id)
        assert run.info.run_name == f"{family}-2026-01-01-v{result.version}"
        params = run.data.params
        assert any(name.startswith("model.") for name in params), family
    churn = client.get_run(trained_models["churn"].run_id)
    # code defaults too, not only what a config file set (an empty folder sets none)
    for name in ("max_depth", "min_child_weight", "learning_rate", "n_estimators"):
        assert f"model.{name}" in churn.data.params
    clv = client.get_run(trained_models["clv"].run_id).data.params
    assert "model.ml.regressor.max_depth" in clv
    # the run covers the job: it starts before the job built its first snapshot (the store
    # was empty), so its duration includes the training set and the fit, not only the logging
    manifest = trained_models["churn"].manifest
    built = [
        pd.Timestamp(json.loads(path.read_text())["built_at"]).timestamp()
        for day, snapshot_id in manifest["snapshots"].items()
        for path in (workspace / "store" / "snapshots" / f"as_of={day}").glob(f"{snapshot_id}.json")
    ]
    assert built and churn.info.start_time / 1000 <= min(built) + 1.0  # built_at is in seconds


def test_mlflow_ui_opens_the_workspace_store(workspace, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)
    result = CliRunner().invoke(app, ["mlflow", "ui", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    (command,) = calls
    assert command[1:4] == ["-m", "mlflow", "ui"]
    store = command[command.index("--backend-store-uri") + 1]
    assert store == tracking_uri(workspace) and store.startswith("sqlite:///")
    names = {e.name for e in MlflowClient(tracking_uri=store).search_experiments()}
    assert {"retain-churn", "retain-clv", "retain-segments"} <= names
