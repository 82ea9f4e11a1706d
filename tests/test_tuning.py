"""``retain tune`` reports like Optuna: per-trial values and the best so far, pruning on the
objective itself, a resumed study with nothing new registers nothing, rounded settings."""

from __future__ import annotations

import re

import mlflow
import optuna
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.features import open_sources, open_store
from retain.mlflow import registry
from retain.training.config import load_config
from retain.training.dataset import build_training_set
from retain.training.jobs import run_tuning
from retain.training.tuning import _objective, format_settings

QUICK = "model:\n  n_estimators: 80\n  early_stopping_rounds: 10\ntuning:\n  startup_trials: 1\n"


@pytest.fixture(scope="module")
def workspace(world_dir, make_workspace, mlflow_isolation):
    """A workspace of its own: tuned models must not become the other tests' champions."""
    folder = make_workspace("tuning", data=world_dir, files={"training/quick.yaml": QUICK})
    with mlflow_isolation(folder):
        yield folder


@pytest.fixture(scope="module")
def training_set(workspace):
    config = load_config("churn", workspace / "training" / "quick.yaml", workspace=workspace)
    sources = open_sources(config, workspace=workspace)
    return config, build_training_set(config, sources, open_store(config, workspace))


def test_pruning_reports_the_objective_so_pruned_and_completed_trials_compare(
    workspace, training_set
):
    config, trainset = training_set
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    objective = _objective("churn", config, trainset, pruning=True)
    with mlflow.start_run(run_name="pruning-test"):
        study.optimize(objective, n_trials=3)
    for trial in study.trials:
        # ROC-AUC every 10 rounds, not xgboost's -logloss: between 0.5 and 1 like the values
        assert trial.intermediate_values, trial.number
        assert all(0.5 < value <= 1.0 for value in trial.intermediate_values.values())
        assert 0.5 < trial.value <= 1.0
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for trial in completed:  # the last report is the same measure as the final value
        last = trial.intermediate_values[trial.last_step]
        assert abs(last - trial.value) < 0.03


def test_trials_print_their_value_and_the_best_so_far_and_a_rerun_registers_nothing(workspace):
    config = workspace / "training" / "quick.yaml"
    lines: list[str] = []
    first = run_tuning("churn", workspace=workspace, config_path=config, trials=2,
                       progress=lines.append)  # fmt: skip
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert len(trial_lines) == 2
    for line in trial_lines:
        assert re.fullmatch(
            r"trial \d+: (roc_auc \d\.\d{4}|pruned at round \d+ \(roc_auc \d\.\d{4}\)); "
            r"best \d\.\d{4} \(trial \d+\)",
            line,
        ), line
    assert first.final is not None
    versions = len(registry.list_versions("churn"))

    again: list[str] = []
    second = run_tuning("churn", workspace=workspace, config_path=config, trials=0,
                        progress=again.append)  # fmt: skip
    assert second.final is None and second.resumed_from == 2
    assert "nothing new to try" in second.note and f"v{first.final.version}" in second.note
    assert any(line.startswith("resuming study") for line in again)
    assert len(registry.list_versions("churn")) == versions  # nothing registered


def test_best_settings_are_printed_rounded(workspace):
    assert format_settings({"learning_rate": 0.042356789123, "max_depth": 5}) == (
        "learning_rate 0.04236, max_depth 5"
    )
    result = CliRunner().invoke(
        app,
        ["tune", "churn", "--trials", "0", "--workspace", str(workspace),
         "--config", str(workspace / "training" / "quick.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "best 0." in result.output and "nothing new to try" in result.output
    assert not re.search(r"\d\.\d{7,}", result.output), result.output
