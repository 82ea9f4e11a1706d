"""Batch scoring end to end on simulated data with the real champion models."""

from __future__ import annotations

import importlib
import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.errors import ConfigError, DataError, RetainError
from retain.serving import score
from retain.serving.config import load_score_config
from retain.serving.contract import CSV_FILE, LIST_COLUMNS, LIST_FILE, SUMMARY_FILE
from retain.serving.population import active_population
from retain.serving.reasons import phrase
from retain.serving.selection import select
from retain.training.dataset import open_sources, open_store

AS_OF = date(2026, 1, 1)


@pytest.fixture(scope="module")
def scored(trained_models, trained_workspace):
    """One list at the end of the simulated data, with a budget as well as a capacity."""
    out = trained_workspace / "lists" / "main"
    return score(AS_OF, workspace=trained_workspace, out=out, capacity=300, budget=900.0)


def test_list_has_every_column_sorted_by_rank_with_values_in_range(scored):
    frame = pd.read_parquet(scored.out / LIST_FILE)
    assert list(frame.columns) == list(LIST_COLUMNS)
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    gain = frame["expected_net_gain"].to_numpy()
    assert np.all(np.diff(gain) <= 1e-12)
    assert frame["churn_probability"].between(0, 1).all()
    assert (frame["clv"] >= 0).all()
    np.testing.assert_allclose(frame["value_at_risk"], frame["churn_probability"] * frame["clv"])
    np.testing.assert_allclose(
        frame["expected_net_gain"],
        frame["value_at_risk"] * frame["save_rate"] - frame["action_cost"],
    )
    assert set(frame["value_tier"]) <= {"high", "medium", "low", "potential"}
    assert frame["customer_id"].is_unique
    csv = pd.read_csv(scored.out / "retention_priority.csv")
    assert len(csv) == len(frame)


def test_scored_customers_are_exactly_the_active_ones(scored, world):
    transactions = world.transactions
    start = pd.Timestamp(AS_OF)
    window = transactions[
        (transactions.timestamp < start)
        & (transactions.timestamp >= start - pd.Timedelta(days=365))
        & (transactions.amount > 0)
    ]
    assert set(scored.frame["customer_id"]) == set(window["customer_id"])


def test_selection_respects_capacity_and_budget_and_only_takes_gains(scored):
    frame = scored.frame
    chosen = frame[frame["selected"]]
    assert 0 < len(chosen) <= 300
    assert chosen["action_cost"].sum() <= 900.0 + 1e-9
    assert (chosen["expected_net_gain"] > 0).all()
    assert scored.summary["selection"] == {
        "capacity": 300, "budget": 900.0, "selected": len(chosen),
        "cost": pytest.approx(chosen["action_cost"].sum()),
    }  # fmt: skip


def test_selection_is_optimal_without_a_budget():
    gain = np.array([5.0, -1.0, 3.0, 8.0, 0.0])
    cost = np.ones(5)
    assert select(gain, cost, capacity=2, budget=None).tolist() == [True, False, False, True, False]
    assert select(gain, cost, capacity=None, budget=None).sum() == 3
    # a budget prefers gain per unit of cost
    dear = np.array([10.0, 1.0, 1.0])
    assert select(np.array([9.0, 5.0, 5.0]), dear, capacity=None, budget=2.0).tolist() == [
        False, True, True,
    ]  # fmt: skip


def test_reasons_quote_the_customers_own_numbers(scored):
    frame = scored.frame.set_index("customer_id")
    with_recency = frame[frame["reason_1"].str.startswith("no purchase for ")]
    assert len(with_recency) > 0
    for customer, row in with_recency.head(20).iterrows():
        assert f"no purchase for {row['recency_days']:,.0f} days" in row["reason_1"], customer
    assert (frame["reason_1"] != "").mean() > 0.9


def test_phrases_by_hand():
    row = {"recency_days": 94.0, "purchase_gap_mean_days": 21.2, "complaints_90d": 2.0}
    assert phrase("recency_days", row) == "no purchase for 94 days; usually buys every 21"
    assert phrase("complaints_90d", row) == "2 complaints in the last 90 days"
    assert phrase("days_since_app_login", {"days_since_app_login": float("nan")}) == (
        "no app login yet"
    )
    assert phrase("spend_30d", {"spend_30d": 0.0}) == "no spend in the last 30 days"


def test_summary_names_models_views_fingerprint_and_drift(scored):
    summary = json.loads((scored.out / SUMMARY_FILE).read_text())
    assert summary["as_of"] == "2026-01-01"
    assert {m["version"] for m in summary["models"].values()} == {"1"}
    assert set(summary["feature_views"]) == {"purchases", "engagement", "customer_profile"}
    assert summary["data_fingerprint"]
    assert summary["drift"]["reference_as_of"] == "2025-10-01"
    assert summary["drift"]["psi"] and summary["drift"]["max_psi"] >= 0
    assert summary["model_card"]["churn"]["calibration"]
    assert summary["model_card"]["churn"]["gain"]["share_captured"][-1] == pytest.approx(1.0)
    assert summary["counts"]["selected"] == int(scored.frame["selected"].sum())


def test_same_inputs_give_an_identical_list(scored, trained_workspace):
    again = score(
        AS_OF, workspace=trained_workspace, out=trained_workspace / "lists" / "again",
        capacity=300, budget=900.0,
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.frame, scored.frame)


def test_known_data_are_scored_without_reading_a_table(scored, trained_workspace):
    config = load_score_config(workspace=trained_workspace)
    store = open_store(config, trained_workspace)
    sources = store.sources(open_sources(config, None, trained_workspace))
    population = active_population(sources, store, AS_OF, config.active_days)
    assert not sources.loaded  # the store knew the files; the snapshot held the rest
    assert population["customer_id"].tolist() == sorted(scored.frame["customer_id"])


def test_a_store_new_to_the_data_gives_the_same_list(scored, trained_workspace, tmp_path):
    workspace = tmp_path / "fresh"
    shutil.copytree(trained_workspace, workspace, ignore=shutil.ignore_patterns("lists", "store"))
    fresh = score(AS_OF, workspace=workspace, out=workspace / "list", capacity=300, budget=900.0)
    pd.testing.assert_frame_equal(fresh.frame, scored.frame)
    for name in (LIST_FILE, CSV_FILE):
        assert (fresh.out / name).read_bytes() == (scored.out / name).read_bytes(), name
    built = json.loads(next((workspace / "store" / "snapshots").rglob("*.json")).read_text())
    assert built["engine"]["sources"] == "memory"  # one cutoff: not staged on disk


def test_changed_data_with_a_bad_value_fail_clearly(scored, trained_workspace, tmp_path):
    data = shutil.copytree(trained_workspace / "data" / "simulated", tmp_path / "data")
    transactions = pd.read_parquet(data / "transactions.parquet")
    transactions["amount"] = transactions["amount"].astype(str)
    transactions.loc[7, "amount"] = "12,50"
    transactions.to_parquet(data / "transactions.parquet", index=False)
    with pytest.raises(DataError) as caught:
        score(AS_OF, workspace=trained_workspace, data=data, out=tmp_path / "list")
    [problem] = caught.value.problems
    assert (problem.table, problem.column, problem.samples) == (
        "transactions",
        "amount",
        ("12,50",),
    )
    assert problem.file == str(data / "transactions.parquet")
    assert not (tmp_path / "list").exists()


def test_strict_drift_refuses_to_write(scored, trained_workspace, tmp_path):
    config = tmp_path / "score.yaml"
    config.write_text("drift:\n  threshold: 0.0\n  strict: true\n")
    out = trained_workspace / "lists" / "strict"
    with pytest.raises(RetainError, match="--strict refuses to write the list"):
        score(AS_OF, workspace=trained_workspace, config_path=config, out=out)
    assert not out.exists()


def test_failure_mid_write_leaves_the_previous_list_intact(scored, trained_workspace, monkeypatch):
    out = trained_workspace / "lists" / "main"
    before = (out / LIST_FILE).read_bytes()

    def broken(frame, path):
        raise OSError("disk full")

    monkeypatch.setattr(importlib.import_module("retain.serving.score"), "write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        score(AS_OF, workspace=trained_workspace, out=out)
    assert (out / LIST_FILE).read_bytes() == before
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_pseudonymized_ids_are_keyed_hmacs(scored, trained_workspace, monkeypatch):
    out = trained_workspace / "lists" / "pseudo"
    monkeypatch.delenv("RETAIN_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="RETAIN_PSEUDONYM_KEY"):
        score(AS_OF, workspace=trained_workspace, out=out, pseudonymize_ids=True)
    monkeypatch.setenv("RETAIN_PSEUDONYM_KEY", "k" * 32)
    result = score(AS_OF, workspace=trained_workspace, out=out, pseudonymize_ids=True)
    ids = result.frame["customer_id"]
    assert ids.str.fullmatch(r"[0-9a-f]{32}").all()
    assert not set(ids) & set(scored.frame["customer_id"])
    assert result.summary["pseudonymized"] is True
    assert result.frame["churn_probability"].tolist() == scored.frame["churn_probability"].tolist()


@pytest.mark.parametrize(
    ("as_of", "message"),
    [(date(2023, 6, 1), "outside the data"), (date(2026, 6, 1), "outside the data")],
)
def test_as_of_outside_the_data_is_refused(scored, trained_workspace, as_of, message):
    with pytest.raises(RetainError, match=message):
        score(as_of, workspace=trained_workspace, out=trained_workspace / "lists" / "x")


def test_unwritable_output_folder_is_refused_before_scoring(scored, trained_workspace, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RetainError, match="cannot write the list under"):
        score(AS_OF, workspace=trained_workspace, out=blocker / "sub" / "list")


def test_changed_feature_definitions_are_named(scored, trained_workspace, tmp_path):
    workspace = tmp_path / "changed"
    shutil.copytree(trained_workspace, workspace, ignore=shutil.ignore_patterns("lists", "store"))
    view = workspace / "features" / "engagement.py"
    changed = view.read_text().replace('"mean", "value",', '"mean", "value", window_days=365,')
    assert changed != view.read_text()
    view.write_text(changed)
    with pytest.raises(RetainError, match=r"view engagement: trained on version \w+, now \w+"):
        score(AS_OF, workspace=workspace, out=workspace / "list")


def test_no_champion_names_the_command_to_run(world_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(
        app, ["score", "--as-of", "2026-01-01", "--data", str(world_dir),
              "--workspace", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "retain train churn" in result.output


def test_no_active_customers_is_refused(scored, trained_workspace):
    with pytest.raises(RetainError, match="no active customers"):
        score(
            date(2025, 12, 25), workspace=trained_workspace,
            out=trained_workspace / "lists" / "none",
            data=_without_days(trained_workspace, date(2024, 12, 25), date(2025, 12, 24)),
        )  # fmt: skip
    assert not (trained_workspace / "lists" / "none").exists()


def test_a_model_of_another_population_is_refused(scored, trained_workspace, tmp_path):
    config = tmp_path / "score.yaml"
    config.write_text("active_days: 30\n")
    with pytest.raises(RetainError, match=r"retain-churn v\d+ was trained for active_days 365 "
                       r"\(the config asks 30, active_days in .*score.yaml\)"):  # fmt: skip
        score(AS_OF, workspace=trained_workspace, config_path=config,
              out=trained_workspace / "lists" / "other")  # fmt: skip
    assert not (trained_workspace / "lists" / "other").exists()


def _without_days(workspace, first: date, last: date) -> dict:
    """The simulated tables with every transaction from ``first`` to ``last`` removed."""
    folder = workspace / "data" / "simulated"
    tables = {name: pd.read_parquet(folder / f"{name}.parquet")
              for name in ("customers", "transactions", "interactions")}  # fmt: skip
    transactions = tables["transactions"]
    days = transactions.timestamp.dt.date
    tables["transactions"] = transactions[(days < first) | (days > last)]
    return tables


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    from retain.serving.drift import population_stability, reference_profile

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"spend": rng.gamma(2.0, 50.0, 20_000), "region": rng.choice(["north", "south"], 20_000)}
    )
    profile = reference_profile(reference, ["spend", "region"])
    same = population_stability(profile, reference)
    assert same.max() == pytest.approx(0.0, abs=1e-12)
    shifted = pd.DataFrame({"spend": reference["spend"] * 1.5, "region": "east"})
    psi = population_stability(profile, shifted)
    assert psi["spend"] > 0.2 and psi["region"] > 1.0
    missing = reference.assign(spend=np.where(rng.random(20_000) < 0.3, np.nan, reference.spend))
    assert population_stability(profile, missing)["spend"] > 0.1
