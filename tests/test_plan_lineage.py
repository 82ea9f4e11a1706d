"""Plans that fit the data, features left out, and model lineages: known answers on real shapes.

The plan cases use nine months of one acquisition cohort (2024-01-01 to 2024-10-01), where a
365-day CLV horizon cannot fit; the lineage cases train small churn models into a workspace of
their own, so no other module's champions change.
"""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.data.simulator import simulate_world
from retain.engines import get_engine
from retain.features import FeatureStore, resolve_data
from retain.mlflow import registry
from retain.mlflow.lineage import DefinitionMismatchError, definition, lineage_id
from retain.serving.champions import check_champions
from retain.training.config import ChurnConfig, CLVConfig, CutoffPlan, SegmentsConfig, load_config
from retain.training.cutoffs import (
    IncompleteLabelWindowError,
    PlanDoesNotFitError,
    fitting_plan,
    plan_cutoffs,
)
from retain.training.dataset import (
    NO_COSTS,
    TrainingWarning,
    build_training_set,
    costless_features,
    leave_out_uninformative,
)
from retain.training.plan import make_plan
from retain.workspace import locate
from shapes import reshape, write_shape

START, END = date(2024, 1, 1), date(2024, 10, 1)
QUICK = "model: {n_estimators: 60, learning_rate: 0.2, max_depth: 3, early_stopping_rounds: 10}\n"


@pytest.fixture(scope="module")
def short_data(seed, tmp_path_factory) -> Path:
    """Nine months, one cohort, transactions only: a folder in the contract."""
    world = simulate_world(800, seed=seed, start=str(START), end=str(END))
    folder = tmp_path_factory.mktemp("short")
    write_shape(reshape(world, transactions_only=True, one_cohort=True), folder)
    return folder


# --------------------------------------------------------------------------- plans


def test_a_horizon_too_long_for_the_data_names_a_plan_that_fits():
    with pytest.raises(PlanDoesNotFitError) as caught:
        plan_cutoffs(CutoffPlan(training=9), 365, START, END)
    message = str(caught.value)
    assert "validation cutoff 2023-10-01 is not after the first event (2024-01-01)" in message
    assert (
        "a plan that fits these data: horizon_days 91 with 3 training cutoffs (2024-02-01 to "
        "2024-04-01) and validation cutoff 2024-07-01" in message
    )


def test_no_training_cutoff_names_a_shorter_horizon():
    # 18 months of one cohort (the real log's shape) with a 365-day CLV and 3 training cutoffs
    with pytest.raises(PlanDoesNotFitError, match="no training cutoff fits") as caught:
        plan_cutoffs(CutoffPlan(training=3), 365, date(1997, 1, 1), date(1998, 7, 1))
    assert "horizon_days 182 with 3 training cutoffs" in str(caught.value)


def test_an_explicit_cutoff_past_the_data_suggests_automatic_cutoffs():
    with pytest.raises(IncompleteLabelWindowError) as caught:
        plan_cutoffs(CutoffPlan(last=date(2024, 9, 1)), 90, START, END)
    message = str(caught.value)
    assert "runs past the end of the data" in message
    assert "horizon_days 90 with 3 training cutoffs" in message
    assert "automatic cutoffs: leave cutoffs.last and the dates unset" in message


def test_data_too_short_for_any_horizon_say_so():
    assert fitting_plan(CutoffPlan(), 90, START, date(2024, 2, 15)) is None
    with pytest.raises(PlanDoesNotFitError, match="too short for any horizon of 30 days"):
        plan_cutoffs(CutoffPlan(), 90, START, date(2024, 2, 15))


def test_churn_plan_counts_the_active_customers_and_churners(short_data):
    sources = resolve_data(short_data)
    plan = make_plan(ChurnConfig(), sources, "churn")
    assert plan.split.training == (date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1))
    assert plan.split.validation == (date(2024, 7, 1),)
    assert plan.methods == ("xgboost", "btyd") and plan.label_horizon_days == 90
    assert "6 planned training cutoffs (2023-08-01 to 2024-01-01) left out" in plan.notes[0]
    transactions = pd.read_parquet(short_data / "transactions.parquet")
    active = get_engine().active_customers(sources, plan.split.all, 365)
    rows = plan.rows()
    assert [row["rows"] for row in rows] == active.groupby("as_of").size().tolist()
    validation = rows[-1]
    assert validation["role"] == "validation"
    assert validation["window"] == (date(2024, 7, 1), date(2024, 9, 29))
    buyers = transactions[
        (transactions.timestamp >= "2024-07-01") & (transactions.timestamp < "2024-09-29")
        & (transactions.amount > 0)
    ]["customer_id"]  # fmt: skip
    cohort = active[active.as_of == "2024-07-01"]["customer_id"]
    assert validation["churn_rate"] == pytest.approx(1 - cohort.isin(buyers).mean())
    assert plan.as_dict()["cutoffs"][0]["label_window"] == ["2024-02-01", "2024-05-01"]


def test_clv_plan_falls_back_to_btyd_over_the_longest_window_that_fits(short_data):
    plan = make_plan(CLVConfig(), resolve_data(short_data), "clv")
    assert plan.horizon_days == 365 and plan.label_horizon_days == 91
    assert plan.methods == ("btyd",)
    assert any("no 365-day label window fits" in note for note in plan.notes)
    segments = make_plan(SegmentsConfig(), resolve_data(short_data), "segments")
    assert [row["churn_rate"] for row in segments.rows()] == [None]


def test_plan_command_prints_the_plan_or_a_plan_that_fits(short_data, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["plan", "churn", "--data", str(short_data), "--workspace", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "churn plan: horizon 90 days" in result.output
    assert "2024-07-01" in result.output and "validation" in result.output
    config = tmp_path / "long.yaml"
    config.write_text("horizon_days: 300\n")
    failed = runner.invoke(
        app, ["plan", "churn", "--data", str(short_data), "--config", str(config),
              "--workspace", str(tmp_path)],
    )  # fmt: skip
    assert failed.exit_code == 2
    assert "a plan that fits these data: horizon_days 91" in failed.output
    assert "Traceback" not in failed.output


# --------------------------------------------------------------------------- features left out


def test_uninformative_features_are_left_out_with_one_warning():
    profile = pd.DataFrame(
        {"present": [10, 0, 10, 0, 10], "distinct": [2, 0, 1, 0, 1]},
        index=["recency_days", "region", "web_visits_30d", "tenure_days", "btyd_frequency"],
    )
    with pytest.warns(TrainingWarning) as caught:
        kept, left_out = leave_out_uninformative(tuple(profile.index), profile)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "left out 3 feature(s) entirely missing or constant in the training rows: region, "
        "tenure_days (all missing); web_visits_30d (constant)"
    )
    assert kept == ("recency_days", "btyd_frequency")  # the BTYD summary is always kept
    assert left_out == {
        "region": "all missing", "tenure_days": "all missing", "web_visits_30d": "constant"
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert leave_out_uninformative(("recency_days",), profile.head(1)) == (
            ("recency_days",), {}
        )  # fmt: skip


def test_features_expected_to_carry_nothing_are_left_out_without_a_warning():
    profile = pd.DataFrame(
        {"present": [10, 10, 10], "distinct": [2, 1, 1]},
        index=["recency_days", "cost_to_serve_total", "web_visits_30d"],
    )
    expected = {"cost_to_serve_total": "constant: no cost", "recency_days": "constant: no cost"}
    with pytest.warns(TrainingWarning) as caught:
        kept, left_out = leave_out_uninformative(tuple(profile.index), profile, expected)
    assert [str(w.message) for w in caught] == [
        "left out 1 feature(s) entirely missing or constant in the training rows: "
        "web_visits_30d (constant)"
    ]  # the expected one is recorded with its own reason; one that varies is kept
    assert kept == ("recency_days",)
    assert left_out == {"cost_to_serve_total": "constant: no cost", "web_visits_30d": "constant"}


def test_cost_features_of_a_world_without_costs_do_not_warn(tmp_path):
    """Without a costs log or configured costs, every cost-to-serve feature is 0: the training
    set leaves them out (recorded why) without warning; with costs they are features."""
    world = simulate_world(400, seed=3, costs=True)
    tables = {name: getattr(world, name) for name in ("customers", "transactions", "interactions")}
    store = FeatureStore(tmp_path / "store", locate(tmp_path, "features"))
    config = load_config("churn", workspace=tmp_path)
    cost_features = {"cost_to_serve_90d", "cost_to_serve_365d", "cost_to_serve_total"}
    costless = resolve_data(tables)
    assert costless_features(store.repository, costless) == dict.fromkeys(cost_features, NO_COSTS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingWarning)
        training = build_training_set(config, costless, store)
    assert not [w for w in caught if "cost_to_serve" in str(w.message)]
    left_out = training.manifest["left_out_features"]
    assert {name: left_out.get(name) for name in cost_features} == dict.fromkeys(
        cost_features, NO_COSTS
    )
    for costly in (resolve_data({**tables, "costs": world.costs}),
                   resolve_data(tables).charge({"order": 1.0})):  # fmt: skip
        assert costless_features(store.repository, costly) == {}
    training = build_training_set(config, resolve_data({**tables, "costs": world.costs}), store)
    assert cost_features <= set(training.features)


# --------------------------------------------------------------------------- lineages


def test_definitions_change_with_the_label_and_the_feature_set():
    manifest = {"horizon_days": 90, "active_days": 365, "features": ["b", "a"],
                "feature_views": {"purchases": "v1"}}  # fmt: skip
    base = definition("churn", manifest)
    assert base == definition("churn", {**manifest, "features": ["a", "b"]})
    assert lineage_id(base) == lineage_id(dict(reversed(base.items())))
    for change in ({"horizon_days": 91}, {"active_days": 180}, {"features": ["a"]},
                   {"feature_views": {"purchases": "v2"}}):  # fmt: skip
        assert lineage_id(definition("churn", {**manifest, **change})) != lineage_id(base)
    assert lineage_id(definition("clv", manifest, margin_rate=0.3)) != lineage_id(
        definition("clv", manifest, margin_rate=0.4)
    )


def test_scoring_refuses_a_champion_of_another_horizon(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "churn.yaml").write_text("horizon_days: 91\n")
    churn = SimpleNamespace(
        name="retain-churn", version="4", manifest={"horizon_days": 90, "active_days": 365}
    )
    segments = SimpleNamespace(name="retain-segments", version="2", manifest={"active_days": 365})
    check_champions({"segments": segments}, tmp_path, 365, "retain.yaml")
    with pytest.raises(DefinitionMismatchError) as caught:
        check_champions({"churn": churn, "segments": segments}, tmp_path, 365, "retain.yaml")
    assert str(caught.value).startswith(
        "retain-churn v4 was trained for horizon_days 90 (the config asks 91, "
        f"{tmp_path / 'training' / 'churn.yaml'})"
    )


@pytest.fixture(scope="module")
def lineage_workspace(world_dir, make_workspace, mlflow_isolation):
    folder = make_workspace("lineage", data=world_dir, files={"training/churn.yaml": QUICK})
    with mlflow_isolation():
        yield folder


def test_a_new_horizon_starts_a_lineage_judged_against_its_own_baselines(lineage_workspace):
    from retain.training.jobs import run_training

    first = run_training("churn", workspace=lineage_workspace)[0]
    assert first.decision.promoted
    again = run_training("churn", workspace=lineage_workspace)[0]  # same lineage: compared
    assert not again.decision.promoted and "does not beat champion v1" in again.decision.reason
    (lineage_workspace / "training" / "churn.yaml").write_text(QUICK + "horizon_days: 91\n")
    longer = run_training("churn", workspace=lineage_workspace)[0]
    assert longer.decision.promoted, longer.decision.reason
    reason = longer.decision.reason
    assert reason.startswith("first model of a new lineage")
    assert "judged against the baselines on its own validation rows: roc_auc" in reason
    assert "btyd" in reason and "recency_rule" in reason
    assert str(registry.champion("churn").version) == longer.version
    listed = CliRunner().invoke(app, ["models", "list", "churn", "--workspace",
                                      str(lineage_workspace)])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert f"churn v{longer.version}: horizon 91d, active 365d, features " in listed.output
    assert "churn v1: horizon 90d, active 365d, features " in listed.output


def test_a_run_records_its_definition(lineage_workspace):
    import mlflow

    version = registry.champion("churn")
    recorded = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/definition.json")
    assert recorded["horizon_days"] == 91 and recorded["lineage"] == version.tags["lineage"]
    assert registry.lineage_of(version) == recorded["lineage"]
    assert version.tags["definition"].startswith("horizon 91d, active 365d, features ")
