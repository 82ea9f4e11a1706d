"""``retain train uplift``: the campaign rows, the learners compared out of time, the measures
against the other rankings and the oracle, tracking, the registry gate, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.errors import RetainError
from retain.models import UpliftModel
from retain.training.jobs import run_training

runner = CliRunner()
CUSTOMERS = 2_000
#: Small trees: the tests check the plumbing and the measures, not the models' quality.
FAST = "model: {n_estimators: 20}\nmin_arm_rows: 20\nlearners: [t, dr, x]\n"


@pytest.fixture(scope="module")
def campaign_world(seed):
    from retain.data.simulator import simulate_world

    return simulate_world(CUSTOMERS, seed=seed, campaigns=True)


@pytest.fixture(scope="module")
def trained(campaign_world, make_workspace, mlflow_isolation):
    workspace = make_workspace("uplift", data=campaign_world, files={"training/uplift.yaml": FAST})
    with mlflow_isolation(workspace):
        (result,) = run_training("uplift", workspace=workspace)
        yield workspace, result


def test_validation_is_the_latest_campaign_and_training_the_earlier(trained, campaign_world):
    _, result = trained
    days = sorted({str(day.date()) for day in campaign_world.campaigns["timestamp"]})
    assert result.manifest["validation_cutoffs"] == days[-1:]
    assert result.manifest["training_cutoffs"] == days[:-1]
    arms = result.manifest["rows"]["validation"]
    assert set(arms) == {"control", *campaign_world.campaigns["action"].unique()}
    # every enrolled customer active at the campaign's first day is a row
    enrolled = campaign_world.campaigns[campaign_world.campaigns["timestamp"].dt.date.astype(str)
                                        == days[-1]]  # fmt: skip
    assert 0 < sum(arms.values()) <= len(enrolled)


def test_every_ranking_is_measured_against_the_oracle(trained):
    _, result = trained
    metrics = result.metrics
    for ranking in ("model", "random", "churn_probability", "value_at_risk", "oracle"):
        for measure in ("incremental_profit_at_capacity", "qini", "auuc",
                        "true_incremental_margin_at_capacity", "share_of_oracle"):  # fmt: skip
            assert f"valid.{ranking}_{measure}" in metrics
    assert metrics["valid.oracle_share_of_oracle"] == pytest.approx(1.0)
    # nobody ranks customers by their true gain better than the oracle
    oracle = metrics["valid.oracle_true_incremental_margin_at_capacity"]
    assert oracle > 0
    for ranking in ("model", "random", "churn_probability", "value_at_risk"):
        assert metrics[f"valid.{ranking}_true_incremental_margin_at_capacity"] <= oracle + 1e-9
    assert "valid.model_incremental_profit_at_capacity__service_recovery" in metrics
    assert {
        "valid.t_learner_adjusted_qini",
        "valid.dr_learner_adjusted_qini",
        "valid.x_learner_adjusted_qini",
        "valid.x_learner_share_of_oracle",
    } <= set(metrics)
    # the learner served is the one the gate's measure prefers
    best = max(("t", "dr", "x"), key=lambda name: metrics[f"valid.{name}_learner_adjusted_qini"])
    assert metrics["valid.model_adjusted_qini"] == metrics[f"valid.{best}_learner_adjusted_qini"]


def test_the_model_is_registered_behind_the_baselines_gate(trained):
    from retain.mlflow import registry

    workspace, result = trained
    beats = (
        result.metrics["valid.model_adjusted_qini"]
        > result.metrics["valid.churn_probability_adjusted_qini"]
        and result.metrics["valid.model_adjusted_qini"]
        > result.metrics["valid.value_at_risk_adjusted_qini"]
    )
    assert result.decision.promoted == beats  # the first model: the baselines decide
    if not beats:
        assert "does not beat the baselines" in result.decision.reason
    model = registry.load_model("uplift", result.version)
    assert isinstance(model, UpliftModel) and isinstance(model.holdout_, UpliftModel)
    assert model.actions_ == sorted(result.manifest["rows"]["train"].keys() - {"control"})
    X = pd.DataFrame({name: [None] for name in result.manifest["features"]}).astype(float)
    assert list(model.predict_effects(X).columns)[:2] == [
        f"incremental_margin__{model.actions_[0]}", f"churn_effect__{model.actions_[0]}"
    ]  # fmt: skip


def _workspace_with(make_workspace, world, campaigns: pd.DataFrame | None) -> Path:
    from retain.data.simulator import write_world

    workspace = make_workspace("uplift-bad", files={"training/uplift.yaml": FAST})
    folder = workspace / "data" / "simulated"
    write_world(world, folder)
    (folder / "campaigns.parquet").unlink(missing_ok=True)
    if campaigns is not None:
        campaigns.to_parquet(folder / "campaigns.parquet", index=False)
    return workspace


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda log: None, "no campaign history"),
        (
            lambda log: log[log["campaign_id"] == log["campaign_id"].iloc[-1]],
            "too little campaign history to learn from: the campaigns table has 1 campaign",
        ),
        (
            lambda log: pd.concat(
                [log, log.tail(1).assign(timestamp=pd.Timestamp("2026-06-01"), campaign_id="x")]
            ),
            "campaigns after the cutoff",
        ),
    ],
    ids=["none", "one", "after"],
)
def test_bad_campaign_history_exits_2_and_writes_nothing(
    campaign_world, make_workspace, mlflow_isolation, edit, message
):
    workspace = _workspace_with(make_workspace, campaign_world, edit(campaign_world.campaigns))
    with mlflow_isolation(workspace):
        result = runner.invoke(app, ["train", "uplift", "--workspace", str(workspace)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (workspace / "mlruns").exists() or not list((workspace / "mlruns").rglob("MLmodel"))


def test_too_few_rows_per_arm_name_the_counts(campaign_world, make_workspace, mlflow_isolation):
    workspace = _workspace_with(make_workspace, campaign_world, campaign_world.campaigns)
    (workspace / "training" / "uplift.yaml").write_text("min_arm_rows: 100000\n")
    with mlflow_isolation(workspace), pytest.raises(RetainError, match="below 100000 rows"):
        run_training("uplift", workspace=workspace)


def test_the_verdict_needs_both_risk_rankings_beaten():
    from retain.training.uplift import GATE_MEASURE, _verdict

    def rankings(model: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ranking": ["model", "random", "churn_probability", "value_at_risk"],
                GATE_MEASURE: [model, 50.0, 10.0, 30.0],
                "incremental_profit_at_capacity": [0.0, 50.0, 10.0, 30.0],  # not the gate's
            }
        )

    assert _verdict(rankings(31.0)) == (
        True,
        f"{GATE_MEASURE} 31.00 beats churn_probability 10.00, value_at_risk 30.00",
    )
    passed, words = _verdict(rankings(20.0))
    assert not passed and "does not beat" in words
    # random targeting is not a bar: beating both risk rankings is enough
    assert _verdict(rankings(40.0))[0]


def test_the_validation_curves_and_figures_are_logged(trained):
    from mlflow import MlflowClient

    workspace, result = trained
    client = MlflowClient()
    run_id = client.get_model_version("retain-uplift", result.version).run_id
    plots = {item.path for item in client.list_artifacts(run_id, "plots")}
    assert {"plots/qini.png", "plots/incremental_profit.png"} <= plots
    path = client.download_artifacts(run_id, "evaluation/curves.csv", str(workspace / "dl"))
    curves = pd.read_csv(path)
    assert set(curves["ranking"]) == {"model", "random", "churn_probability", "value_at_risk",
                                      "oracle"}  # fmt: skip
    metrics = result.metrics
    for _, curve in curves.groupby("ranking"):
        assert curve["share_targeted"].iloc[0] == 0 and curve["share_targeted"].iloc[-1] == 1
        assert curve["share_targeted"].is_monotonic_increasing
        assert curve["qini"].iloc[0] == curve["incremental_profit"].iloc[0] == 0
        # the Qini curve ends at the incremental margin of the ranking's whole experiment,
        # whatever the order: the same for every ranking given the same action
        assert np.isfinite(curve[["qini", "incremental_profit"]].to_numpy()).all()
    ends = curves.groupby("ranking")["qini"].last()
    assert ends["churn_probability"] == pytest.approx(ends["value_at_risk"])
    # the gate's measure decided, and its steadiness is measured by the bootstrap
    assert client.get_run(run_id).data.metrics["gate.adjusted_qini"] == pytest.approx(
        metrics["valid.model_adjusted_qini"]
    )
    for measure in ("qini", "incremental_profit_at_capacity", "adjusted_qini",
                    "adjusted_incremental_profit_at_capacity"):  # fmt: skip
        for baseline in ("churn_probability", "value_at_risk"):
            low = metrics[f"valid.gate_{measure}_lead_p05__{baseline}"]
            high = metrics[f"valid.gate_{measure}_lead_p95__{baseline}"]
            assert low <= high
            assert 0 <= metrics[f"valid.gate_{measure}_lead_wins__{baseline}"] <= 1


def test_plan_refuses_uplift_cleanly(tmp_path):
    result = runner.invoke(app, ["plan", "uplift", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "retain plan is for churn, clv and segments" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_score_ranks_by_the_trained_uplift_models_effects(trained, mlflow_isolation):
    """The real path end to end: ``retain train uplift``'s model (named by version, whatever the
    gate decided) gives the list's expected incremental margins; without a champion alias the
    playbook's prior scores."""
    from retain.mlflow import registry
    from retain.serving.campaigns import load_uplift
    from retain.serving.score import score

    workspace, result = trained
    with mlflow_isolation(workspace):
        run_training("all", workspace=workspace)
        if not result.decision.promoted:
            assert load_uplift("champion") is None  # a model that failed the gate is not served
        with pytest.raises(RetainError, match=r"has no version 99; versions: .*score.yaml"):
            load_uplift("99")
        with pytest.raises(RetainError, match="retain-uplift has no alias 'winter'"):
            load_uplift("winter")
        (workspace / "serving" / "score.yaml").write_text(f"uplift: {result.version}\n")
        listed = score(workspace=workspace, out=workspace / "lists" / "uplift")
    gains = listed.summary["gains"]
    assert gains["source"] == f"uplift model retain-uplift v{result.version}"
    assert gains["measured"] is True
    model = registry.load_model("uplift", result.version)
    frame = listed.frame.set_index("customer_id")
    learned = frame[frame["recommended_action"].isin(model.actions_)]
    assert len(learned) > 0
    # the margin the list expects of a customer's action is the model's effect of that action
    from retain.features import get_features, open_store
    from retain.training.config import load_config

    store = open_store(load_config("uplift", workspace=workspace), workspace)
    as_of = listed.summary["as_of"]
    features = get_features(as_of, learned.index, store=store, as_categorical=True)
    effects = model.predict_effects(features.set_index("customer_id"))
    expected = [
        effects.at[customer, f"incremental_margin__{action}"]
        for customer, action in learned["recommended_action"].items()
    ]
    assert learned["expected_incremental_margin"].to_numpy() == pytest.approx(expected, rel=1e-6)

    # the report shows the model's validation Qini curve and coefficient, found via the summary
    from retain.reports.html import render_report

    with mlflow_isolation(workspace):
        page = render_report(listed.out, workspace / "reports" / "uplift.html").read_text()
    section = page.split("What contacts add")[1].split("<h2>")[0]
    assert (
        f"The uplift model on its validation campaign (retain-uplift v{result.version})" in section
    )
    assert f"Qini coefficient of {result.metrics['valid.model_qini']:,.2f}" in section
    assert 'alt="Validation Qini curves"' in section
    assert f"Qini coefficient is {result.metrics['valid.model_adjusted_qini']:,.2f}" in section


def test_the_report_works_without_the_uplift_models_run(tmp_path):
    from retain.reports.html import _experiment_section
    from retain.reports.uplift import uplift_validation

    summary = {"gains": {"source": "uplift model retain-uplift v7", "measured": True,
                         "note": "expected gains from uplift model retain-uplift v7"}}  # fmt: skip
    found = uplift_validation(summary, tmp_path)
    assert found["version"] == "7" and found["curves"] is None
    assert "no MLflow store" in found["missing"]
    section = _experiment_section(pd.DataFrame(), summary, None, "", found)
    assert "retain-uplift v7" in section and "not available (no MLflow store" in section
    # a list scored with the playbook's prior has no uplift model to show
    assert uplift_validation({"gains": {"source": "playbook prior"}}, tmp_path) is None


def test_an_unknown_gate_measure_is_refused(make_workspace, mlflow_isolation):
    workspace = make_workspace(
        "uplift-gate", files={"training/uplift.yaml": FAST + "primary_metric: roc_auc\n"}
    )
    with mlflow_isolation(workspace):
        result = runner.invoke(app, ["train", "uplift", "--workspace", str(workspace)])
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.split())
    assert "'primary_metric' (the uplift gate's measure) must be one of adjusted_qini" in words
    assert "Traceback" not in result.output
