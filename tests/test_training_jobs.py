"""Training jobs end to end on simulated data: real xgboost, real MLflow registry, real Optuna."""

from __future__ import annotations

import dataclasses
from datetime import date

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from retain.cli import app
from retain.errors import RetainError
from retain.features import open_sources, open_store
from retain.mlflow import registry
from retain.training.config import CutoffPlan, load_config
from retain.training.cutoffs import IncompleteLabelWindowError
from retain.training.dataset import build_training_set
from retain.training.jobs import run_training, run_tuning
from retain.training.tuning import study_storage


@pytest.fixture(scope="module")
def workspace(trained_workspace):
    return trained_workspace


@pytest.fixture(scope="module")
def trained(trained_models):
    return trained_models


@pytest.fixture(autouse=True)
def _tracking_here(workspace, mlflow_isolation):
    """Point MLflow at this module's workspace: tests of other modules, run in between, may
    have pointed the process at theirs."""
    with mlflow_isolation(workspace):
        yield


def _versions(family: str) -> int:
    return len(registry.list_versions(family))


def test_train_all_registers_three_first_champions(trained):
    for family in ("churn", "clv", "segments"):
        result = trained[family]
        assert result.decision.promoted, result.decision.reason
        assert result.version == "1"
        assert str(registry.champion(family).version) == "1"


def test_churn_beats_baselines_and_approaches_the_oracle(trained):
    metrics = trained["churn"].metrics
    model = metrics["valid.model_roc_auc"]
    assert model > metrics["valid.recency_rule_roc_auc"] + 0.01
    assert model > metrics["valid.btyd_roc_auc"]
    assert metrics["valid.oracle_roc_auc"] >= model
    assert metrics["valid.oracle_roc_auc"] - model < 0.06
    assert metrics["valid.model_lift_at_top"] > 1.5


def test_calibration_lowers_the_expected_calibration_error(trained):
    metrics = trained["churn"].metrics
    assert metrics["valid.model_ece"] < metrics["valid.model_uncalibrated_ece"]


def test_churn_run_logs_what_a_data_scientist_needs(trained):
    run_id = trained["churn"].run_id
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.params["horizon_days"] == "90"
    assert "model.max_depth" in run.data.params
    files = {item.path for item in client.list_artifacts(run_id)}
    assert {"training_set.json", "features.json", "plots", "evaluation"} <= files
    plots = {item.path for item in client.list_artifacts(run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/shap_importance.png"} <= plots
    manifest = mlflow.artifacts.load_dict(f"runs:/{run_id}/training_set.json")
    assert manifest["validation_cutoffs"] == ["2025-10-01"]
    assert manifest["train_rows"] > 0 and manifest["data_fingerprint"]
    features = mlflow.artifacts.load_dict(f"runs:/{run_id}/features.json")
    assert set(features["views"]) == {
        "purchases", "engagement", "customer_profile", "service_costs", "customer_profit"
    }  # fmt: skip
    version = registry.champion("churn")
    info = mlflow.models.get_model_info(f"models:/retain-churn/{version.version}")
    assert info.signature is not None and info.saved_input_example_info is not None


def test_clv_compares_both_methods_and_keeps_the_better(trained):
    result = trained["clv"]
    metrics = result.metrics
    chosen = result.model.method_
    other = "ml" if chosen == "btyd" else "btyd"
    assert metrics[f"valid.{chosen}_gini"] >= metrics[f"valid.{other}_gini"]
    assert metrics["valid.model_gini"] == metrics[f"valid.{chosen}_gini"]
    assert metrics["valid.btyd_gini"] > 0.5 and metrics["valid.ml_gini"] > 0.5
    for name in ("spearman", "decile_mape", "total_error"):
        assert f"valid.model_{name}" in metrics


def test_segments_assigned_at_fit_are_assigned_again_by_the_registered_model(trained, workspace):
    config = load_config("segments", workspace=workspace)
    sources = open_sources(config, workspace=workspace)
    # as segments are trained: every feature, constant ones too (the cost features here)
    store = open_store(config, workspace)
    rows = build_training_set(config, sources, store, leave_out=False).validation
    X = rows[list(trained["segments"].manifest["features"])].set_axis(rows["customer_id"])
    clv = pd.Series(registry.load_model("clv").predict(X), index=X.index)
    fitted = trained["segments"].model.transform(X, clv)
    loaded = registry.load_model("segments").predict(X.assign(clv=clv))
    pd.testing.assert_frame_equal(fitted, loaded)
    assert set(fitted["value_tier"]) <= {"high", "medium", "low", "potential"}


def test_same_seed_gives_identical_metrics_and_an_equal_model_stays_challenger(trained, workspace):
    again = run_training("churn", workspace=workspace)[0]
    assert again.metrics == trained["churn"].metrics
    assert not again.decision.promoted
    assert "does not beat champion v1" in again.decision.reason
    assert str(registry.champion("churn").version) == "1"


def test_a_worse_model_stays_challenger_with_the_reason_logged(trained, workspace):
    from retain.training.churn import train_churn

    config = load_config("churn", workspace=workspace)
    worse = train_churn(
        config, open_sources(config, workspace=workspace), open_store(config, workspace),
        workspace=str(workspace), settings={"max_depth": 1, "n_estimators": 2},
    )  # fmt: skip
    assert not worse.decision.promoted
    assert worse.decision.champion_score > worse.decision.challenger_score
    assert str(registry.champion("churn").version) == "1"
    version = MlflowClient().get_model_version("retain-churn", worse.version)
    assert "does not beat" in version.tags["promotion_decision"]
    assert "challenger" in MlflowClient().get_registered_model("retain-churn").aliases


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"min_class_rows": 10**6}, RetainError, "too few rows of a class"),
        ({"cutoffs": CutoffPlan(last=date(2025, 12, 1))}, IncompleteLabelWindowError,
         "runs past the end of the data"),
        ({"data": "no/such/folder"}, RetainError, "data folder .*no/such/folder not found"),
    ],
)  # fmt: skip
def test_bad_input_registers_nothing(trained, workspace, change, error, message):
    from retain.training.churn import train_churn

    before = _versions("churn")
    config = load_config("churn", workspace=workspace)
    if "data" in change:  # a workspace setting
        settings = dataclasses.replace(config.workspace_config, **change)
        config = dataclasses.replace(config, workspace_config=settings)
    else:
        config = dataclasses.replace(config, **change)
    with pytest.raises(error, match=message):
        train_churn(
            config, open_sources(config, workspace=workspace), open_store(config, workspace),
            workspace=str(workspace),
        )  # fmt: skip
    assert _versions("churn") == before


def test_cli_reports_config_errors_and_lists_and_promotes(trained, workspace):
    runner = CliRunner()
    bad = workspace / "bad.yaml"
    bad.write_text("horizon: 90\n")
    result = runner.invoke(
        app, ["train", "churn", "--config", str(bad), "--workspace", str(workspace)]
    )
    assert result.exit_code == 2
    assert "unknown key 'horizon'" in result.output and "bad.yaml" in result.output
    listed = runner.invoke(app, ["models", "list", "--workspace", str(workspace)])
    assert listed.exit_code == 0, listed.output
    assert "churn" in listed.output and "champion" in listed.output
    missing = runner.invoke(
        app, ["models", "promote", "churn", "999", "--workspace", str(workspace)]
    )
    assert missing.exit_code == 2 and "999" in missing.output
    promoted = runner.invoke(
        app, ["models", "promote", "churn", "2", "--workspace", str(workspace)]
    )
    assert promoted.exit_code == 0, promoted.output
    assert str(registry.champion("churn").version) == "2"
    registry.promote("churn", "1")


def test_tuning_resumes_its_study_and_registers_the_final_model(trained, workspace):
    before = _versions("churn")
    config = workspace / "training" / "churn_quick.yaml"
    config.write_text("model:\n  n_estimators: 60\n  early_stopping_rounds: 10\n")
    first = run_tuning("churn", workspace=workspace, config_path=config, trials=2)
    assert first.trials == 2 and first.final.version == str(before + 1)
    second = run_tuning("churn", workspace=workspace, config_path=config, trials=1)
    study = optuna.load_study(study_name=second.study_name, storage=study_storage(workspace))
    assert len(study.trials) == 3
    assert second.best_settings.keys() >= {"learning_rate", "max_depth"}
    children = mlflow.search_runs(
        experiment_names=["retain-churn"], filter_string="tags.mlflow.parentRunId != ''"
    )
    assert len(children) >= 3
    assert np.isfinite(second.best_value)
