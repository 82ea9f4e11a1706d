"""Model registry on a real sqlite store: challenger/champion aliases, decisions, loading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression

from retain.errors import RetainError
from retain.mlflow.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAMES,
    Decision,
    champion,
    decide,
    list_versions,
    load_model,
    model_name,
    promote,
    register,
)
from retain.mlflow.tracking import log_model, training_run


@pytest.fixture(autouse=True)
def _clean_registry(mlflow_workspace, mlflow_isolation):
    """Each test starts on the module's store with no registered models and no active run."""
    with mlflow_isolation(mlflow_workspace):
        client = MlflowClient()
        for name in MODEL_NAMES.values():
            if client.search_registered_models(filter_string=f"name = '{name}'"):
                client.delete_registered_model(name)
        yield


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"recency": rng.normal(size=80), "frequency": rng.normal(size=80)})
    y = (X["recency"] - X["frequency"] + rng.normal(scale=0.5, size=80) > 0).astype(int)
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def logged(mlflow_workspace, data):
    """A small churn model logged once; every registered version points at it."""
    X, y = data
    model = LogisticRegression().fit(X, y)
    with training_run("churn", mlflow_workspace, run_name="registry-tests") as run:
        info = log_model(model, X, predict_method="predict_proba")
    return model, info.model_uri, run.info.run_id


def _register(logged, score: float, family: str = "churn"):
    _, uri, run_id = logged
    return register(uri, family, run_id, primary_metric="roc_auc", score=score)


def test_model_names_accept_family_or_full_name():
    assert model_name("churn") == model_name("retain-churn") == "retain-churn"
    with pytest.raises(RetainError, match="known models: churn"):
        model_name("lifetime")


def test_register_sets_challenger_and_tags(logged):
    version = _register(logged, 0.75)
    assert version.status == "READY"
    assert version.aliases == [CHALLENGER]
    assert version.tags["primary_metric"] == "roc_auc"
    assert float(version.tags["score"]) == 0.75
    assert version.tags["run_id"] == logged[2]
    assert MlflowClient().get_registered_model("retain-churn").description
    assert champion("churn") is None


def test_first_version_becomes_champion(logged):
    version = _register(logged, 0.75)
    decision = decide(
        "churn", version.version, metric="roc_auc", challenger_score=0.75, champion_score=None
    )
    assert isinstance(decision, Decision)
    assert decision.promoted and decision.champion_version is None
    assert "no champion yet" in decision.reason
    assert champion("retain-churn").version == version.version
    tags = MlflowClient().get_model_version("retain-churn", version.version).tags
    assert tags["promotion_decision"] == decision.reason


def test_worse_challenger_keeps_champion_and_records_reason(logged):
    first = _register(logged, 0.80)
    decide("churn", first.version, metric="roc_auc", challenger_score=0.80, champion_score=None)
    second = _register(logged, 0.78)
    decision = decide(
        "churn", second.version, metric="roc_auc", challenger_score=0.781, champion_score=0.802
    )
    assert not decision.promoted
    assert decision.reason == (
        f"challenger roc_auc 0.781 does not beat champion v{first.version} roc_auc 0.802 "
        "on the same validation data"
    )
    assert decision.champion_version == str(first.version)
    assert champion("churn").version == first.version
    kept = MlflowClient().get_model_version("retain-churn", second.version)
    assert kept.aliases == [CHALLENGER]
    assert kept.tags["promotion_decision"] == decision.reason
    assert kept.tags["promoted"] == "false"


def test_better_challenger_is_promoted(logged):
    first = _register(logged, 0.70)
    decide("churn", first.version, metric="roc_auc", challenger_score=0.70, champion_score=None)
    second = _register(logged, 0.74)
    decision = decide(
        "churn", second.version, metric="roc_auc", challenger_score=0.74, champion_score=0.70
    )
    assert decision.promoted
    assert "beats champion" in decision.reason
    assert champion("churn").version == second.version
    assert sorted(champion("churn").aliases) == [CHALLENGER, CHAMPION]


def test_margin_and_lower_is_better(logged):
    first = _register(logged, 10.0, family="clv")
    decide("clv", first.version, metric="rmse", challenger_score=10.0, champion_score=None)
    second = _register(logged, 9.95, family="clv")
    small = decide(
        "clv",
        second.version,
        metric="rmse",
        challenger_score=9.95,
        champion_score=10.0,
        higher_is_better=False,
        min_improvement=0.1,
    )
    assert not small.promoted
    assert "by more than 0.1" in small.reason and "lower is better" in small.reason
    third = _register(logged, 9.5, family="clv")
    big = decide(
        "clv",
        third.version,
        metric="rmse",
        challenger_score=9.5,
        champion_score=10.0,
        higher_is_better=False,
        min_improvement=0.1,
    )
    assert big.promoted and champion("clv").version == third.version


def test_unscored_champion_is_kept(logged):
    first = _register(logged, 0.7)
    decide("churn", first.version, metric="roc_auc", challenger_score=0.7, champion_score=None)
    second = _register(logged, 0.9)
    decision = decide(
        "churn", second.version, metric="roc_auc", challenger_score=0.9, champion_score=None
    )
    assert not decision.promoted and "not scored" in decision.reason
    assert champion("churn").version == first.version


def test_manual_promote_and_errors(logged):
    first = _register(logged, 0.7)
    second = _register(logged, 0.6)
    decide("churn", first.version, metric="roc_auc", challenger_score=0.7, champion_score=None)
    promoted = promote("retain-churn", f"v{second.version}")
    assert CHAMPION in promoted.aliases
    assert champion("churn").version == second.version
    assert (
        promoted.tags["promotion_decision"] == f"promoted by hand (champion was v{first.version})"
    )
    with pytest.raises(RetainError, match=r"has no version 99; versions: v\d+, v\d+"):
        promote("churn", 99)
    with pytest.raises(RetainError, match="registered: retain-churn"):
        promote("lifetime", 1)
    with pytest.raises(RetainError, match="no registered model retain-segments"):
        promote("segments", 1)


def test_load_model_round_trip(logged, data):
    model, _, _ = logged
    X, _ = data
    version = _register(logged, 0.7)
    decide("churn", version.version, metric="roc_auc", challenger_score=0.7, champion_score=None)
    for ref in (CHAMPION, CHALLENGER, version.version, f"v{version.version}"):
        loaded = load_model("churn", ref)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_load_model_without_champion_names_the_command(logged):
    with pytest.raises(RetainError, match="train one with `retain train churn`"):
        load_model("churn")
    _register(logged, 0.7)  # a challenger only
    with pytest.raises(RetainError, match=r"no champion model retain-churn in sqlite:///"):
        load_model("retain-churn")


def test_list_versions_and_table(logged):
    empty = list_versions()
    assert empty.empty and list(empty.columns) == [
        "name",
        "version",
        "aliases",
        "created",
        "run_id",
        "primary_metric",
        "score",
        "decision",
        "lineage",
        "definition",
    ]
    first = _register(logged, 0.8)
    decide("churn", first.version, metric="roc_auc", challenger_score=0.8, champion_score=None)
    second = _register(logged, 0.7)
    decide("churn", second.version, metric="roc_auc", challenger_score=0.7, champion_score=0.8)
    _register(logged, 1.5, family="clv")

    churn = list_versions("churn")
    assert churn["version"].tolist() == [int(second.version), int(first.version)]
    assert churn["aliases"].tolist() == [CHALLENGER, CHAMPION]
    assert churn["score"].tolist() == [0.7, 0.8]
    assert (churn["run_id"] == logged[2]).all()
    assert (churn["primary_metric"] == "roc_auc").all()
    assert churn["decision"].iloc[0].startswith("challenger roc_auc 0.700 does not beat")
    assert pd.api.types.is_datetime64_any_dtype(churn["created"])

    everything = list_versions()
    assert everything["name"].tolist() == ["retain-churn", "retain-churn", "retain-clv"]

    from retain.cli import models_table

    table = models_table(everything)
    assert isinstance(table, Table) and table.row_count == 3
    console = Console(width=80, record=True)
    console.print(table)
    text = console.export_text()
    assert "clv" in text and "champion" in text and "0.8000" in text and "…" not in text
