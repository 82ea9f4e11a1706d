"""Batch scoring end to end on simulated data with the real champion models."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.engines import get_engine
from retain.errors import ConfigError, DataError, RetainError, StorageError
from retain.features import open_sources, open_store
from retain.serving import score
from retain.serving.config import load_score_config
from retain.serving.contract import CSV_FILE, LIST_COLUMNS, LIST_FILE, SUMMARY_FILE
from retain.serving.population import active_population

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
    chosen = frame["selected"].to_numpy()
    assert chosen[: chosen.sum()].all()  # the selected first, in contact order
    assert np.all(np.diff(frame["expected_net_gain"].to_numpy()[: chosen.sum()]) <= 1e-12)
    assert frame["churn_probability"].between(0, 1).all()
    assert (frame["clv"] >= 0).all()
    assert (frame["clv_if_retained"] >= frame["clv"] - 1e-9).all()  # given alive: never less
    np.testing.assert_allclose(
        frame["value_at_risk"], frame["churn_probability"] * frame["clv_if_retained"]
    )
    np.testing.assert_allclose(  # no uplift model: the playbook's prior
        frame["expected_incremental_margin"], frame["value_at_risk"] * frame["save_rate"]
    )
    np.testing.assert_allclose(
        frame["expected_net_gain"], frame["expected_incremental_margin"] - frame["action_cost"]
    )
    assert not frame["sleeping_dog"].any()  # a prior save rate is never negative
    assert set(frame.loc[frame["selected"], "group"]) == {"treatment", "control"}
    assert frame.loc[~frame["selected"], "group"].isna().all()
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
    selection = scored.summary["selection"]
    assert {key: selection[key] for key in ("capacity", "budget", "selected")} == {
        "capacity": 300, "budget": 900.0, "selected": len(chosen),
    }  # fmt: skip
    assert selection["cost"] == pytest.approx(chosen["action_cost"].sum())
    assert selection["expected_net_gain"] == pytest.approx(chosen["expected_net_gain"].sum())
    assert selection["lp_bound"] >= selection["expected_net_gain"] - 1e-9
    assert 0 <= selection["optimality_gap_share"] < 0.01
    assert scored.summary["currency"] == "USD"


def test_reasons_quote_the_customers_own_numbers(scored):
    frame = scored.frame.set_index("customer_id")
    with_recency = frame[frame["reason_1"].str.startswith("no purchase for ")]
    assert len(with_recency) > 0
    for customer, row in with_recency.head(20).iterrows():
        days = row["recency_days"]
        unit = "day" if round(days) == 1 else "days"
        assert f"no purchase for {days:,.0f} {unit}" in row["reason_1"], customer
    assert (frame["reason_1"] != "").all()


def test_reasons_read_well_and_explain_risk(scored):
    """No NaN, no plural after 1 or singular after other numbers, a unit after every number
    but a score, and at most 5% of the selected with a static trait as first reason."""
    frame = scored.frame
    texts = pd.concat([frame[c] for c in ("reason_1", "reason_2", "reason_3")])
    texts = texts[texts != ""]
    assert not texts.str.contains(r"\bnan\b|\bNone\b|[{}]", case=False).any()
    plural_after_one = (
        r"(?<![\d.,])1 (?:days|orders|purchases|complaints|returns|categories|channels|"
        r"support tickets|web visits|app logins|emails opened|email clicks)\b"
    )
    assert not texts.str.contains(plural_after_one).any()
    singular_after_more = r"(?<![\d.,])(?:[02-9]|\d{2,}) (?:day|order|purchase|complaint)\b"
    assert not texts.str.contains(singular_after_more).any()
    unitless = texts[~texts.str.contains("survey score")]  # only a score has no unit
    numbers = unitless.str.extractall(r"(?P<number>(?<![\w.,])\d[\d,]*(?:\.\d+)?)(?P<after>.?.?)")
    assert numbers["after"].str.match(r"^(?: [a-zA-Z]|%)").all(), numbers.head()
    chosen = frame[frame["selected"]]
    traits = r"^(?:acquired through|region|customer for|first purchase|never )"
    assert chosen["reason_1"].str.contains(traits).mean() <= 0.05
    low = frame["churn_probability"] < scored.summary["reasons"]["low_risk_below"]
    assert frame.loc[low, "reason_1"].str.contains("CLV").all()
    assert not frame.loc[~low, "reason_1"].str.contains("low churn risk").any()


def test_summary_names_models_views_fingerprint_and_drift(scored):
    summary = json.loads((scored.out / SUMMARY_FILE).read_text())
    assert summary["as_of"] == "2026-01-01"
    assert {m["version"] for m in summary["models"].values()} == {"1"}
    assert set(summary["feature_views"]) == {
        "purchases", "engagement", "customer_profile", "service_costs", "customer_profit"
    }  # fmt: skip
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
    population = active_population(get_engine(), sources, store, AS_OF, config.active_days)
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
    with pytest.raises(StorageError, match=f"cannot write the list to {out}: disk full"):
        score(AS_OF, workspace=trained_workspace, out=out)
    assert (out / LIST_FILE).read_bytes() == before
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_pseudonymized_ids_are_keyed_hmacs(scored, trained_workspace, monkeypatch):
    out = trained_workspace / "lists" / "pseudo"
    monkeypatch.delenv("RETAIN_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="RETAIN_PSEUDONYM_KEY"):
        score(AS_OF, workspace=trained_workspace, out=out, pseudonymize_ids=True)
    monkeypatch.setenv("RETAIN_PSEUDONYM_KEY", "k" * 32)
    result = score(
        AS_OF, workspace=trained_workspace, out=out, pseudonymize_ids=True, capacity=300,
        budget=900.0,
    )  # fmt: skip
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


def test_no_champion_names_the_command_to_run(world_dir, tmp_path, mlflow_isolation):
    with mlflow_isolation():
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


def test_a_model_of_another_population_is_refused(scored, trained_workspace):
    settings = trained_workspace / "retain.yaml"  # the population is a workspace setting
    original = settings.read_text()
    settings.write_text("active_days: 30\n")
    try:
        expected = r"retain-churn v\d+ was trained for active_days 365 \(the config asks 30, "
        with pytest.raises(RetainError, match=expected + r"active_days in .*retain.yaml\)"):
            score(AS_OF, workspace=trained_workspace, out=trained_workspace / "lists" / "other")
    finally:
        settings.write_text(original)
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
    from retain.metrics.drift import population_stability, reference_profile

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


def test_contacts_sheet_holds_the_selected_customers_in_contact_order(scored):
    from retain.serving.sheets import CONTACTS_CSV, CONTACTS_XLSX

    sheet = pd.read_csv(scored.out / CONTACTS_CSV, dtype={"customer_id": str})
    chosen = scored.frame[scored.frame["selected"] & (scored.frame["group"] == "treatment")]
    assert sheet.columns.tolist() == [
        "rank", "customer_id", "action", "reasons", "churn risk (%)", "value at risk (USD)",
        "expected gain (USD)",
    ]  # fmt: skip
    assert sheet["customer_id"].tolist() == chosen["customer_id"].tolist()
    assert sheet["rank"].tolist() == chosen["rank"].tolist()  # the control group left out
    assert sheet["action"].str.len().min() > 20  # the playbook's descriptions, not codes
    assert not sheet["action"].str.contains("_").any()
    assert (sheet["reasons"].str.len() > 0).all()
    np.testing.assert_allclose(sheet["value at risk (USD)"], chosen["value_at_risk"].round(2))
    text = (scored.out / CONTACTS_CSV).read_text()
    assert not re.search(r"\d\.\d{3,}", text)  # money in cents, no long floats
    openpyxl = importlib.util.find_spec("openpyxl") is not None
    assert (scored.out / CONTACTS_XLSX).exists() == openpyxl


def test_csv_rounds_money_to_cents_and_parquet_keeps_full_precision(scored):
    csv = pd.read_csv(scored.out / CSV_FILE, dtype={"customer_id": str})
    parquet = pd.read_parquet(scored.out / LIST_FILE)
    for name in ("clv", "value_at_risk", "expected_net_gain", "monetary_total"):
        assert (csv[name] == csv[name].round(2)).all(), name
        np.testing.assert_allclose(csv[name], parquet[name], atol=0.005 + 1e-9)
    assert (parquet["clv"] != parquet["clv"].round(2)).any()


def test_rescoring_regenerates_or_keeps_a_report_and_says_which(scored, trained_workspace):
    from retain.reports.html import render_report

    out = trained_workspace / "lists" / "reported"
    first = score(AS_OF, workspace=trained_workspace, out=out, capacity=50)
    assert first.report is None and first.summary["report"] is None
    render_report(out, out / "report.html")
    before = (out / "report.html").read_text()
    kept = score(AS_OF, workspace=trained_workspace, out=out, capacity=50)
    assert kept.report == "kept" and (out / "report.html").read_text() == before
    regenerated = score(
        AS_OF, workspace=trained_workspace, out=out, capacity=60, render_report=render_report
    )
    assert regenerated.report == "regenerated"
    assert regenerated.summary["report"] == "regenerated"
    after = (out / "report.html").read_text()
    assert after != before and "capacity 60 customers" in after


def test_no_positive_gain_is_explained_and_the_list_ranked_by_value_at_risk(
    scored, trained_workspace, tmp_path
):
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        "actions:\n  letter:\n    cost: 100000.0\n    save_rate: 0.1\n"
        "    description: A letter.\ndefault: letter\n"
    )
    config = tmp_path / "score.yaml"
    config.write_text(f"playbook: {playbook}\n")
    result = score(AS_OF, workspace=trained_workspace, config_path=config, out=tmp_path / "list")
    frame = result.frame
    assert not frame["selected"].any()
    assert np.all(np.diff(frame["value_at_risk"].to_numpy()) <= 1e-12)
    advice = result.summary["selection"]["no_positive_gain"]
    assert advice["cheapest_action"] == "letter"
    assert advice["break_even_value_at_risk"] == pytest.approx(1_000_000.0)
    assert advice["value_at_risk_percentiles"]["p100"] == pytest.approx(
        frame["value_at_risk"].max()
    )
    assert result.summary["selection"]["notes"][0].startswith("no customer has a positive")
    contacts = pd.read_csv(result.out / "contacts.csv")
    assert contacts.empty and "customer_id" in contacts.columns


@pytest.mark.parametrize("width", [80, 200])
def test_terminal_summary_fits_80_columns_and_marks_the_selected(scored, width):
    from rich.console import Console

    from retain.quickstart import show_top

    out = Console(width=width, record=True, color_system=None)
    show_top(scored, console=out)
    lines = out.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(i for i, line in enumerate(lines) if "first reason" in line)
    # a row starts with its rank; long reasons wrap onto continuation lines, never cut
    # (a continuation line may start with a number too, far to the right)
    rows = [line for line in lines[header + 2 :] if re.match(r"\s{0,6}\d[\d,]*\s", line)][:10]
    assert len(rows) == 10
    assert all(" yes " in row or " hold " in row for row in rows)  # the selected first
    assert not any("…" in line for line in lines)
    assert scored.frame["customer_id"].iloc[0] in rows[0]
    assert any(line.startswith("selected 300") or "selected" in line for line in lines)
    assert "amounts in USD" in " ".join(lines)
