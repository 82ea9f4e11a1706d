"""MLflow tracking on a real sqlite store: URIs, experiments, runs, logging helpers, models."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.types import DataType
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from retain.errors import ConfigError, RetainError
from retain.mlflow import tracking
from retain.mlflow.tracking import (
    child_run,
    ensure_experiment,
    log_figure,
    log_frame,
    log_json,
    log_metrics_prefixed,
    log_model,
    log_params_flat,
    runtime_requirements,
    tracking_uri,
    training_run,
    trusted_model_loading,
    use_workspace,
)


@pytest.fixture(autouse=True)
def _isolated(mlflow_workspace, mlflow_isolation):
    """Each test starts on the module's store with no active run and no user override."""
    with mlflow_isolation(mlflow_workspace):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Model input with a string column, NaNs and an integer column."""
    rng = np.random.default_rng(3)
    n = 120
    X = pd.DataFrame(
        {
            "recency_days": rng.exponential(30, n),
            "frequency": rng.integers(0, 9, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    X.loc[::5, "recency_days"] = np.nan
    return X


@pytest.fixture(scope="module")
def model(frame):
    y = ((frame["recency_days"].fillna(60) > 30) ^ (frame["region"] == "east")).astype(int)
    return make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["region"]), (SimpleImputer(), ["recency_days", "frequency"])
        ),
        LogisticRegression(),
    ).fit(frame, y)


def _run(run_id: str):
    return MlflowClient().get_run(run_id)


# --------------------------------------------------------------------------- URIs and experiments


def test_tracking_uri_defaults_to_workspace_sqlite(tmp_path):
    uri = tracking_uri(tmp_path)
    assert uri == f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve().as_posix()}"
    assert (tmp_path / "mlruns").is_dir()


def test_tracking_uri_respects_user_override(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/shared.db")
    assert tracking_uri(tmp_path) == "sqlite:////elsewhere/shared.db"
    assert not (tmp_path / "mlruns").exists()


def test_use_workspace_sets_both_uris_and_is_cheap_to_repeat(mlflow_workspace, monkeypatch):
    uri = use_workspace(mlflow_workspace)
    assert uri == tracking_uri(mlflow_workspace)
    assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_registry_uri() == uri
    assert (mlflow_workspace / "mlruns" / "mlflow.db").is_file()
    # mlflow.set_tracking_uri copies the URI into os.environ: that value is ours, not a user's
    # override, so another mlflow_workspace still gets its own store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    other = mlflow_workspace / "elsewhere"
    assert tracking_uri(other) == f"sqlite:///{(other / 'mlruns' / 'mlflow.db').as_posix()}"


def test_experiment_per_family_with_artifacts_under_mlruns(mlflow_workspace):
    experiment_id = ensure_experiment("churn", mlflow_workspace)
    assert ensure_experiment("churn", mlflow_workspace) == experiment_id
    experiment = MlflowClient().get_experiment(experiment_id)
    assert experiment.name == "retain-churn"
    expected = (mlflow_workspace / "mlruns" / "artifacts" / "churn").resolve()
    assert experiment.artifact_location == expected.as_uri()
    with pytest.raises(ConfigError, match="unknown model family"):
        ensure_experiment("lifetime", mlflow_workspace)


# --------------------------------------------------------------------------- runs


def test_run_finishes_with_family_tags(mlflow_workspace):
    with training_run("clv", mlflow_workspace, run_name="ok", tags={"cutoff": "2024-01-01"}) as run:
        assert mlflow.active_run().info.run_id == run.info.run_id
    finished = _run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.run_name == "ok"
    assert finished.data.tags["retain.family"] == "clv"
    assert finished.data.tags["cutoff"] == "2024-01-01"
    assert finished.info.experiment_id == ensure_experiment("clv", mlflow_workspace)


def test_failed_run_is_marked_failed_and_error_propagates(mlflow_workspace):
    with pytest.raises(ValueError, match="boom"), training_run("churn", mlflow_workspace) as run:
        raise ValueError("boom")
    assert _run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_child_runs_nest_under_the_parent(mlflow_workspace):
    with training_run("churn", mlflow_workspace, run_name="tune") as parent:
        with child_run("trial-0", {"model": {"max_depth": 3}}) as trial:
            log_metrics_prefixed({"roc_auc": 0.7}, "valid")
        with pytest.raises(RuntimeError), child_run("trial-1") as failed:
            raise RuntimeError("diverged")
        assert mlflow.active_run().info.run_id == parent.info.run_id
    child = _run(trial.info.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.experiment_id == parent.info.experiment_id
    assert child.data.params == {"model.max_depth": "3"}
    assert child.info.status == "FINISHED"
    assert _run(failed.info.run_id).info.status == "FAILED"
    assert _run(parent.info.run_id).info.status == "FINISHED"


def test_child_run_needs_a_parent():
    with pytest.raises(RetainError, match="needs a parent"), child_run("orphan"):
        pass


# --------------------------------------------------------------------------- logging helpers


def test_logging_helpers(mlflow_workspace):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    settings = {"model": {"max_depth": 4, "eta": 0.1}, "features": ["a", "b"], "note": "x" * 7000}
    with training_run("churn", mlflow_workspace) as run:
        logged = log_params_flat(settings, prefix="cfg")
        metrics = log_metrics_prefixed(
            {"roc_auc": np.float64(0.81), "brier": float("nan"), "lift": float("inf")}, "valid"
        )
        log_json({"auc": np.float32(0.5), "when": pd.Timestamp("2024-01-01")}, "eval/m.json")
        log_frame(pd.DataFrame({"a": [1, 2], "b": ["x", None]}), "eval/table.csv")
        log_figure(fig, "plots/roc")
    data = _run(run.info.run_id).data
    assert data.params["cfg.model.max_depth"] == "4"
    assert data.params["cfg.features"] == "['a', 'b']"
    assert len(data.params["cfg.note"]) == 6000 and data.params["cfg.note"].endswith("…")
    assert logged["cfg.model.eta"] == "0.1"
    assert metrics == {"valid.roc_auc": 0.81}
    assert data.metrics == {"valid.roc_auc": 0.81}
    assert data.tags["nonfinite.valid.brier"] == "nan"
    assert data.tags["nonfinite.valid.lift"] == "inf"
    root = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=""))
    assert json.loads((root / "eval" / "m.json").read_text()) == {
        "auc": 0.5,
        "when": "2024-01-01T00:00:00",
    }
    assert pd.read_csv(root / "eval" / "table.csv").shape == (2, 2)
    assert (root / "plots" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_helpers_refuse_to_log_without_a_run():
    with pytest.raises(RetainError, match="no active MLflow run"):
        log_metrics_prefixed({"roc_auc": 0.5}, "valid")
    assert mlflow.active_run() is None


# --------------------------------------------------------------------------- models


def test_log_model_round_trip_with_signature_and_example(mlflow_workspace, model, frame):
    with training_run("churn", mlflow_workspace) as run:
        info = log_model(model, frame, predict_method="predict_proba")
    assert info.run_id == run.info.run_id
    assert info.model_uri.startswith("models:/m-")
    inputs = {spec.name: spec for spec in info.signature.inputs.inputs}
    assert inputs["region"].type == DataType.string
    assert inputs["recency_days"].type == DataType.double
    # every input optional: the pyfunc names a missing column itself (not the whole schema)
    assert not any(spec.required for spec in inputs.values())
    assert list(inputs)[:2] == ["customer_id", "as_of"]  # a snapshot's keys are inputs too
    assert info.signature.outputs.input_names() == ["customer_id", "churn_probability"]
    assert info.saved_input_example_info["type"] == "dataframe"
    assert info.metadata["predict_method"] == "predict_proba"

    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert list(example.columns) == list(frame.columns) and len(example) == 5
    assert math.isnan(example["recency_days"].iloc[0])

    with trusted_model_loading():
        loaded = mlflow.sklearn.load_model(info.model_uri)
        pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    # pyfunc: P(class 1) as a named column, the snapshot's customer id passed through
    snapshot = frame.head(3).assign(customer_id=["a", "b", "c"], as_of=pd.Timestamp("2025-01-01"))
    predicted = pyfunc.predict(snapshot)
    assert list(predicted.columns) == ["customer_id", "churn_probability"]
    assert predicted["customer_id"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(
        predicted["churn_probability"], model.predict_proba(frame.head(3))[:, 1]
    )
    with pytest.raises(ValueError, match=r"^missing column\(s\) 'frequency': the model") as error:
        pyfunc.predict(snapshot.drop(columns=["frequency"]))
    assert "region" not in str(error.value)  # the missing column alone, not the schema
    assert (local / "code" / "retain" / "mlflow" / "pyfunc.py").is_file()  # self-contained

    lines = (local / "requirements.txt").read_text().split()
    assert lines == list(runtime_requirements())
    assert any(line.startswith("scikit-learn==") for line in lines)
    assert not any(line.startswith("pytest") for line in lines)


def test_log_model_rejects_missing_method(mlflow_workspace, model, frame):
    with training_run("churn", mlflow_workspace), pytest.raises(ValueError, match="no method"):
        log_model(model, frame, predict_method="predict_value")


def test_trusted_model_loading_restores_the_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    with trusted_model_loading():
        assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "true"
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" not in os.environ


def test_module_exports_exist():
    assert all(hasattr(tracking, name) for name in tracking.__all__)


def test_runs_left_open_or_ended_early_are_handled(mlflow_workspace):
    with training_run("churn", mlflow_workspace) as parent:
        with child_run("ended-early") as early:
            mlflow.end_run(status="KILLED")
        assert mlflow.active_run().info.run_id == parent.info.run_id
        mlflow.start_run(run_name="left-open", nested=True)
    assert mlflow.active_run() is None
    assert _run(early.info.run_id).info.status == "KILLED"
    assert _run(parent.info.run_id).info.status == "FINISHED"
