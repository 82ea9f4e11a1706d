"""``retain backtest``: a past list compared with what its customers did next.

Lists are built here by hand (no scoring involved): the simulator's oracle gives a "good" list,
a seeded random score a useless one, and a four-customer dataset checks every number by hand.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from retain.data.oracle import oracle
from retain.engines import get_engine
from retain.errors import RetainError
from retain.features import resolve_data
from retain.serving.backtest import (
    DECILE_COLUMNS,
    BacktestResult,
    backtest,
    print_backtest,
    write_backtest,
)
from retain.serving.contract import LIST_COLUMNS, LIST_FILE, SUMMARY_FILE, SUMMARY_KEYS

AS_OF = date(2025, 7, 1)
CHURN_DAYS, CLV_DAYS = 90, 180


# --------------------------------------------------------------------------- list builders


def list_frame(
    ids, churn_probability, clv, as_of: date, share: float = 0.2, by: str = "value_at_risk"
) -> pd.DataFrame:
    """A list in the contract: ranked by ``by`` (descending), the top ``share`` selected."""
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype=str),
            "churn_probability": np.asarray(churn_probability, dtype=float),
            "clv": np.asarray(clv, dtype=float),
        }
    )
    frame["value_at_risk"] = frame["churn_probability"] * frame["clv"]
    frame = frame.sort_values(by, ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["as_of"] = as_of
    frame["selected"] = frame["rank"] <= round(share * len(frame))
    return _complete(frame)


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    defaults = {
        "recommended_action": "call",
        "action_cost": 5.0,
        "save_rate": 0.2,
        "segment": "loyal",
        "value_tier": "high",
        "loyalty_class": "loyal",
        "lifecycle_stage": "mature",
        "cluster": 0,
        "reason_1": "",
        "reason_2": "",
        "reason_3": "",
        "recency_days": 10.0,
        "frequency": 3.0,
        "monetary_total": 100.0,
        "influence_value": 0.0,
    }
    for name, value in defaults.items():
        if name not in frame.columns:
            frame[name] = value
    if "clv_if_retained" not in frame.columns:
        frame["clv_if_retained"] = frame["clv"]
    if "group" not in frame.columns:
        frame["group"] = None
    frame["expected_incremental_margin"] = frame["value_at_risk"] * frame["save_rate"]
    frame["expected_churn_effect"] = -frame["churn_probability"] * frame["save_rate"]
    frame["expected_net_gain"] = frame["expected_incremental_margin"] - frame["action_cost"]
    frame["sleeping_dog"] = False
    return frame[list(LIST_COLUMNS)]


def write_list(folder, frame, as_of, churn_days=CHURN_DAYS, clv_days=CLV_DAYS, **summary):
    """Write the list and a summary.json with every contract key."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / LIST_FILE, index=False)
    content = {key: {} for key in SUMMARY_KEYS}
    content.update(
        as_of=as_of.isoformat(),
        generated_at="2025-07-01T06:00:00Z",
        horizons={"churn_days": churn_days, "clv_days": clv_days},
        pseudonymized=False,
    )
    content.update(summary)
    (folder / SUMMARY_FILE).write_text(json.dumps(content))
    return folder


# --------------------------------------------------------------------------- simulated lists


@pytest.fixture(scope="module")
def sources(world):
    return resolve_data(
        {name: getattr(world, name) for name in ("customers", "transactions", "interactions")}
    )


@pytest.fixture(scope="module")
def active(sources):
    return get_engine().active_customers(sources, [AS_OF], 365)["customer_id"]


@pytest.fixture(scope="module")
def oracle_scores(world, active) -> tuple[np.ndarray, np.ndarray]:
    churn = oracle(world.truth, AS_OF, CHURN_DAYS)["p_no_purchase"].reindex(active)
    value = oracle(world.truth, AS_OF, CLV_DAYS)["expected_margin"].reindex(active)
    return churn.to_numpy(), value.to_numpy()


@pytest.fixture(scope="module")
def oracle_list(active, oracle_scores, tmp_path_factory):
    """The oracle's list ranked by value at risk, as ``retain score`` ranks."""
    frame = list_frame(active, *oracle_scores, AS_OF)
    return write_list(tmp_path_factory.mktemp("oracle"), frame, AS_OF)


@pytest.fixture(scope="module")
def oracle_result(oracle_list, sources) -> BacktestResult:
    return backtest(oracle_list, sources)


@pytest.fixture(scope="module")
def churn_ranked_result(active, oracle_scores, sources, tmp_path_factory) -> BacktestResult:
    """The oracle's list ranked by churn probability alone."""
    frame = list_frame(active, *oracle_scores, AS_OF, by="churn_probability")
    return backtest(write_list(tmp_path_factory.mktemp("churn"), frame, AS_OF), sources)


@pytest.fixture(scope="module")
def random_result(world, active, sources, tmp_path_factory) -> BacktestResult:
    rng = np.random.default_rng(11)
    clv = oracle(world.truth, AS_OF, CLV_DAYS)["expected_margin"].reindex(active)
    frame = list_frame(
        active, rng.uniform(size=len(active)), clv.to_numpy(), AS_OF, by="churn_probability"
    )
    folder = write_list(tmp_path_factory.mktemp("random"), frame, AS_OF)
    return backtest(folder / LIST_FILE, sources, deciles=5)


def test_oracle_list_ranks_churners_first(churn_ranked_result, active):
    deciles = churn_ranked_result.deciles
    rates = deciles["realised_churn_rate"]
    assert rates.iloc[0] == rates.max()
    assert (rates.diff().iloc[1:] < 0.05).all()  # falls with the decile, up to noise
    assert rates.iloc[0] > 0.9 and rates.iloc[-1] < 0.1
    overall = churn_ranked_result.overall
    assert overall["roc_auc"] > 0.8
    # the oracle is calibrated: predicted churn matches what happened, decile by decile
    assert overall["mean_churn_probability"] == pytest.approx(overall["churn_rate"], abs=0.03)
    assert np.allclose(deciles["mean_churn_probability"], rates, atol=0.1)
    assert overall["selected_churn_rate"] > 2 * overall["not_selected_churn_rate"]
    assert overall["churn_lift"] > 1.5


def test_value_ranked_list_puts_lost_value_first(oracle_result, churn_ranked_result, active):
    deciles = oracle_result.deciles
    assert list(deciles.columns) == list(DECILE_COLUMNS)
    assert len(deciles) == 10 and deciles["customers"].sum() == len(active)
    assert deciles["customers"].max() - deciles["customers"].min() <= 1
    assert deciles["rank_from"].iloc[0] == 1 and deciles["rank_to"].iloc[-1] == len(active)
    assert oracle_result.complete and oracle_result.warnings == ()
    assert (oracle_result.as_of, oracle_result.horizon_days) == (AS_OF, CHURN_DAYS)
    assert oracle_result.clv_horizon_days == CLV_DAYS
    # customers certain to churn are worth nothing to save: value at risk ranks them last
    lost = deciles["realised_lost_value"]
    assert lost.iloc[0] == lost.max()
    assert lost.iloc[:3].sum() > 0.5 * lost.sum()
    assert deciles["share_of_lost_value"].sum() == pytest.approx(1.0)
    assert oracle_result.overall["roc_auc"] == churn_ranked_result.overall["roc_auc"]


def test_oracle_selection_beats_random(oracle_result):
    overall = oracle_result.overall
    assert overall["selected"] == round(0.2 * overall["customers"])
    assert overall["random_expected"] == pytest.approx(
        overall["selected"] / overall["customers"] * overall["realised_lost_value"]
    )
    assert overall["value_at_risk_captured"] > 2 * overall["random_expected"]
    assert overall["value_at_risk_captured"] > 2 * overall["random_draw"]
    assert overall["lift_over_random"] > 2
    customers = oracle_result.customers
    assert customers["lost_value"].sum() == pytest.approx(overall["realised_lost_value"])
    assert overall["realised_future_margin"] == pytest.approx(customers["future_margin"].sum())


def test_random_list_has_no_skill(random_result):
    overall = random_result.overall
    assert len(random_result.deciles) == 5
    assert overall["roc_auc"] == pytest.approx(0.5, abs=0.05)
    rates = random_result.deciles["realised_churn_rate"]
    assert rates.max() - rates.min() < 0.12


def test_data_folder_gives_the_same_answer(oracle_list, oracle_result, world_dir):
    from_folder = backtest(oracle_list, world_dir)
    pd.testing.assert_frame_equal(from_folder.deciles, oracle_result.deciles)
    assert from_folder.overall == pytest.approx(oracle_result.overall, nan_ok=True)


def test_random_draw_follows_the_seed(oracle_list, sources, oracle_result):
    again = backtest(oracle_list, sources, seed=0)
    other = backtest(oracle_list, sources, seed=1, horizon_days=60, clv_horizon_days=60)
    assert again.overall["random_draw"] == oracle_result.overall["random_draw"]
    assert other.overall["random_draw"] != oracle_result.overall["random_draw"]
    assert other.horizon_days == 60 and other.clv_horizon_days == 60
    # a shorter window: more customers without a purchase in it
    assert other.overall["churn_rate"] > oracle_result.overall["churn_rate"]


def test_write_and_print(oracle_result, tmp_path, capsys):
    from rich.console import Console

    paths = write_backtest(oracle_result, tmp_path / "out")
    assert sorted(path.name for path in paths.values()) == ["backtest.json", "backtest_deciles.csv"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(
        path.name for path in paths.values()
    )  # no temporary files left behind
    written = pd.read_csv(paths["deciles"])
    pd.testing.assert_frame_equal(written, oracle_result.deciles, check_dtype=False)
    payload = json.loads(paths["summary"].read_text())
    assert payload["as_of"] == AS_OF.isoformat() and payload["complete"] is True
    assert payload["horizons"] == {"churn_days": CHURN_DAYS, "clv_days": CLV_DAYS}
    assert payload["overall"]["roc_auc"] == pytest.approx(oracle_result.overall["roc_auc"])
    assert len(payload["deciles"]) == 10
    print_backtest(oracle_result, console=Console(width=160, force_terminal=False))
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed and "lift" in printed and "decile" in printed


# --------------------------------------------------------------------------- refusals


def test_incomplete_horizon_is_refused_then_allowed(world, sources, tmp_path):
    as_of = date(2025, 11, 1)  # data end 2025-12-31; 90 days reach 2026-01-30
    ids = get_engine().active_customers(sources, [as_of], 365)["customer_id"]
    rng = np.random.default_rng(3)
    frame = list_frame(ids, rng.uniform(size=len(ids)), rng.gamma(2.0, 50.0, len(ids)), as_of)
    folder = write_list(tmp_path / "late", frame, as_of, churn_days=90, clv_days=60)
    with pytest.raises(RetainError, match=r"29 days of data are missing") as caught:
        backtest(folder, sources)
    message = str(caught.value)
    assert "2026-01-30" in message and "2025-12-31" in message and "--allow-partial" in message
    partial = backtest(folder, sources, allow_partial=True)
    assert partial.complete is False
    assert len(partial.warnings) == 1 and "PARTIAL churn window" in partial.warnings[0]
    assert partial.windows["churn"] == {
        "days": 90, "covered_days": 61, "complete": False, "ends": "2026-01-29"
    }  # fmt: skip
    assert partial.overall["customers"] == len(ids)
    # a 60-day horizon fits: complete
    assert backtest(folder, sources, horizon_days=60).complete


def test_pseudonymized_list_is_refused(oracle_list, sources, tmp_path):
    frame = pd.read_parquet(oracle_list / LIST_FILE)
    folder = write_list(tmp_path / "hashed", frame, AS_OF, pseudonymized=True)
    with pytest.raises(RetainError, match="pseudonymized"):
        backtest(folder, sources)


def test_missing_columns_are_named(oracle_list, sources, tmp_path):
    frame = pd.read_parquet(oracle_list / LIST_FILE).drop(columns=["clv", "selected"])
    folder = write_list(tmp_path / "thin", frame, AS_OF)
    with pytest.raises(RetainError, match="lacks required columns selected, clv"):
        backtest(folder, sources)
    frame = pd.read_parquet(oracle_list / LIST_FILE)
    frame.loc[[3, 5], "churn_probability"] = np.nan
    folder = write_list(tmp_path / "holes", frame, AS_OF)
    with pytest.raises(RetainError, match="column churn_probability has 2 missing"):
        backtest(folder, sources)


def test_missing_files_are_named(oracle_list, sources, tmp_path):
    with pytest.raises(RetainError, match=f"{tmp_path / 'nowhere'}.*not found"):
        backtest(tmp_path / "nowhere", sources)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RetainError, match=f"list file .*{LIST_FILE} not found"):
        backtest(tmp_path / "empty", sources)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / LIST_FILE).write_bytes((oracle_list / LIST_FILE).read_bytes())
    with pytest.raises(RetainError, match=f"summary file .*{SUMMARY_FILE} not found"):
        backtest(lonely / LIST_FILE, sources)


def test_unknown_customers_are_counted(oracle_list, sources, tmp_path):
    frame = pd.read_parquet(oracle_list / LIST_FILE)
    frame.loc[:2, "customer_id"] = ["ghost-1", "ghost-2", "ghost-3"]
    folder = write_list(tmp_path / "ghosts", frame, AS_OF)
    with pytest.raises(RetainError, match=r"3 of the .* listed customers .*'ghost-1'"):
        backtest(folder, sources)


# --------------------------------------------------------------------------- by hand


def tiny_data() -> dict[str, pd.DataFrame]:
    """Four listed customers and one newcomer; cutoff 2024-03-01, horizons 30 and 60 days."""
    rows = [
        ("A", "2024-02-10", 100.0, 40.0),
        ("A", "2024-03-05", 50.0, 20.0),  # buys in both windows: not churned, margin 20
        ("B", "2024-01-15", 80.0, 30.0),  # nothing after: churned, margin 0
        ("C", "2024-02-20", 200.0, 60.0),
        ("C", "2024-04-10", 100.0, None),  # after the 30 days: churned; margin 0.3 x 100 = 30
        ("D", "2023-12-01", 40.0, 12.0),
        ("D", "2024-03-10", -40.0, -12.0),  # a refund is no purchase: churned, margin -12
        ("E", "2024-04-29", 70.0, 21.0),  # not active at the cutoff; last day of the data
    ]
    transactions = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "margin"])
    transactions["timestamp"] = pd.to_datetime(transactions["timestamp"]) + pd.Timedelta(hours=12)
    return {"transactions": transactions}


def test_hand_checked_numbers(tmp_path):
    as_of = date(2024, 3, 1)
    frame = pd.DataFrame(
        {
            "customer_id": ["B", "C", "D", "A"],
            "churn_probability": [0.9, 0.3, 0.8, 0.35],
            "clv": [100.0, 200.0, 50.0, 100.0],
            "selected": [True, True, False, False],
        }
    )
    frame["value_at_risk"] = frame["churn_probability"] * frame["clv"]  # 90, 60, 40, 35
    frame["rank"] = [1, 2, 3, 4]
    frame["as_of"] = as_of
    folder = write_list(tmp_path / "tiny", _complete(frame), as_of, churn_days=30, clv_days=60)

    result = backtest(folder, tiny_data(), deciles=2, seed=0)
    assert result.complete  # last event 2024-04-29 + 1 day = 2024-03-01 + 60 days

    by_id = result.customers.set_index("customer_id")
    assert by_id["churned"].to_dict() == {"A": False, "B": True, "C": True, "D": True}
    assert by_id["future_margin"].to_dict() == pytest.approx({"A": 20, "B": 0, "C": 30, "D": -12})
    assert by_id["lost_value"].to_dict() == pytest.approx({"A": 0, "B": 100, "C": 200, "D": 50})

    first, second = result.deciles.to_dict(orient="records")
    assert first == pytest.approx(
        {
            "decile": 1,
            "rank_from": 1,
            "rank_to": 2,
            "customers": 2,
            "selected": 2,
            "mean_churn_probability": 0.6,
            "realised_churn_rate": 1.0,
            "predicted_value_at_risk": 150.0,
            "realised_lost_value": 300.0,
            "share_of_lost_value": 300 / 350,
            "predicted_clv": 300.0,
            "realised_future_margin": 30.0,
        }
    )
    assert second == pytest.approx(
        {
            "decile": 2,
            "rank_from": 3,
            "rank_to": 4,
            "customers": 2,
            "selected": 0,
            "mean_churn_probability": 0.575,
            "realised_churn_rate": 0.5,
            "predicted_value_at_risk": 75.0,
            "realised_lost_value": 50.0,
            "share_of_lost_value": 50 / 350,
            "predicted_clv": 150.0,
            "realised_future_margin": 8.0,
        }
    )

    overall = result.overall
    assert overall["roc_auc"] == pytest.approx(2 / 3)  # A (0.35) beats only C (0.3)
    assert overall["churn_rate"] == 0.75
    assert overall["selected_churn_rate"] == 1.0
    assert overall["not_selected_churn_rate"] == 0.5
    assert overall["churn_lift"] == pytest.approx(4 / 3)
    assert overall["churners_captured_share"] == pytest.approx(2 / 3)
    assert overall["realised_lost_value"] == 350.0
    assert overall["value_at_risk_captured"] == 300.0
    assert overall["random_expected"] == 175.0
    assert overall["lift_over_random"] == pytest.approx(300 / 175)
    assert overall["share_captured"] == pytest.approx(300 / 350)
    assert overall["predicted_value_at_risk_selected"] == pytest.approx(150.0)
    assert overall["selected_future_margin"] == 30.0
    assert overall["selected_retained_margin"] == 0.0
    assert overall["realised_future_margin"] == 38.0
    # CLV against realised margin: C (highest CLV) holds 30 of the 38; ranks by hand
    assert overall["clv_top_decile_capture"] == pytest.approx(30 / 38)
    assert overall["clv_spearman"] == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    assert -1 <= overall["clv_gini"] <= 1
    # one random pair of the four customers
    pairs = {a + b for a in (0, 100, 200, 50) for b in (0, 100, 200, 50) if a != b}
    assert overall["random_draw"] in pairs

    # a 45-day churn horizon reaches C's purchase on 2024-04-10 (day 40): C no longer churned
    longer = backtest(folder, tiny_data(), horizon_days=45, deciles=2)
    assert not longer.customers.set_index("customer_id")["churned"]["C"]
    assert longer.overall["churn_rate"] == 0.5


# --------------------------------------------------------------------------- per horizon


def test_churn_is_backtested_once_its_window_passes_and_clv_is_labelled_partial(
    oracle_list, sources, tmp_path
):
    # data end 2025-12-31: the 90-day churn window after 2025-07-01 has passed, a 365-day CLV
    # window has not (it ends 2026-06-30): churn complete, CLV partial, nothing refused
    frame = pd.read_parquet(oracle_list / LIST_FILE)
    folder = write_list(tmp_path / "long", frame, AS_OF, churn_days=90, clv_days=365)
    result = backtest(folder, sources)
    assert result.windows["churn"]["complete"]
    assert result.windows["clv"] == {
        "days": 365, "covered_days": 184, "complete": False, "ends": "2026-06-30"
    }  # fmt: skip
    assert not result.complete
    (note,) = result.warnings
    assert note.startswith("PARTIAL CLV window") and "184 of its 365 days" in note
    complete = backtest(oracle_list, sources)  # same list, 180-day CLV: both complete
    assert complete.overall["roc_auc"] == result.overall["roc_auc"]


def test_clv_is_compared_with_realised_margin(oracle_result, random_result, sources, tmp_path):
    overall = oracle_result.overall
    assert overall["clv_gini"] > 0.5 and overall["clv_spearman"] > 0.3
    assert overall["clv_top_decile_capture"] > 0.3  # a random tenth holds 0.1
    frame = pd.read_parquet(oracle_result.list_path)
    shuffled = frame.assign(clv=np.random.default_rng(5).permutation(frame["clv"].to_numpy()))
    noise = backtest(write_list(tmp_path / "noise", shuffled, AS_OF), sources).overall
    assert abs(noise["clv_gini"]) < 0.15 and noise["clv_top_decile_capture"] < 0.2


def test_a_list_inside_the_training_period_is_flagged_in_sample(oracle_list, sources, tmp_path):
    from retain.serving.champions import training_period

    manifest = {
        "training_cutoffs": ["2024-12-01", "2025-01-01"],
        "validation_cutoffs": ["2025-06-01"],
        "horizon_days": 90,
    }
    period = training_period(manifest)
    assert period == {"from": "2024-12-01", "until": "2025-08-30", "horizon_days": 90}
    models = {"churn": {"name": "retain-churn", "version": "3", "training_period": period}}
    frame = pd.read_parquet(oracle_list / LIST_FILE)
    folder = write_list(tmp_path / "inside", frame, AS_OF, models=models)
    result = backtest(folder, sources)
    assert result.in_sample
    (note,) = result.warnings
    assert note.startswith("IN-SAMPLE") and "retain-churn v3" in note and "2025-08-30" in note
    later = {"churn": {**models["churn"], "training_period": {**period, "until": "2025-07-01"}}}
    outside = backtest(write_list(tmp_path / "outside", frame, AS_OF, models=later), sources)
    assert not outside.in_sample and not outside.warnings


def test_backtest_reads_data_and_mapping_from_the_workspace_config(world, tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    # a workspace whose data are in other column names, described by its mapping
    data = tmp_path / "export"
    data.mkdir()
    renamed = world.transactions.rename(columns={"customer_id": "client", "amount": "dollars"})
    renamed.to_csv(data / "transactions.csv", index=False)
    (tmp_path / "map.yaml").write_text(
        "transactions:\n  columns: {customer_id: client, amount: dollars}\n"
    )
    (tmp_path / "retain.yaml").write_text("data: export\nmapping: map.yaml\n")
    sources = resolve_data(data, tmp_path / "map.yaml")
    ids = get_engine().active_customers(sources, [AS_OF], 365)["customer_id"]
    rng = np.random.default_rng(2)
    frame = list_frame(ids, rng.uniform(size=len(ids)), rng.gamma(2.0, 50.0, len(ids)), AS_OF)
    folder = write_list(tmp_path / "list", frame, AS_OF)

    result = backtest(folder, workspace=tmp_path)
    assert result.overall["customers"] == len(ids)
    out = CliRunner().invoke(app, ["backtest", "--list", str(folder), "--workspace", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "normalized Gini" in out.output and "top tenth by CLV" in out.output
    # --engine and --spark-config as score takes them: Spark settings for DuckDB are refused
    refused = CliRunner().invoke(app, ["backtest", "--list", str(folder), "--workspace",
                                       str(tmp_path), "--engine", "duckdb", "--spark-config",
                                       str(tmp_path / "map.yaml")])  # fmt: skip
    assert refused.exit_code == 2 and "--spark-config is for --engine spark" in refused.output
    assert "Traceback" not in refused.output


# --------------------------------------------------------------------------- engines


@pytest.fixture(scope="module")
def experiment_list(active, oracle_scores, tmp_path_factory):
    """The oracle's list with two actions and blocked control groups among the selected."""
    from retain.serving.experiment import hold_out

    frame = list_frame(active, *oracle_scores, AS_OF, share=0.3)
    frame["recommended_action"] = np.where(frame["rank"] % 3 == 0, "call", "email")
    groups = hold_out(
        frame["customer_id"].to_numpy(dtype=object), frame["recommended_action"].to_numpy(),
        frame["selected"].to_numpy(), 0.3, 5, AS_OF, frame["rank"].to_numpy(),
        frame["churn_probability"].to_numpy(),
    )  # fmt: skip
    frame["group"] = groups
    basis = {  # one action discounted over the CLV horizon (days in 7 months), one not
        "call": {"days": CLV_DAYS, "discount_rate_monthly": 0.01},
        "email": {"days": CHURN_DAYS, "discount_rate_monthly": 0.0},
    }
    folder = tmp_path_factory.mktemp("experiment")
    return write_list(folder, frame, AS_OF, gains={"margin_basis": basis})


def test_the_backtest_runs_on_every_engine_with_the_same_numbers(engine, experiment_list, sources):
    """The outcomes and the treated-minus-control tallies are one rule on every engine: the
    backtest on Spark equals the backtest on DuckDB (exact sums), and an engine given is not
    released by the backtest (the caller's)."""
    expected = backtest(experiment_list, sources, engine="duckdb")
    result = backtest(experiment_list, sources, engine=engine)
    assert not result.experiment.empty and result.experiment["control"].sum() > 0
    pd.testing.assert_frame_equal(result.deciles, expected.deciles)
    pd.testing.assert_frame_equal(result.experiment, expected.experiment)
    for key, value in expected.overall.items():
        assert result.overall[key] == pytest.approx(value, nan_ok=True), key


@pytest.mark.spark
def test_the_backtest_runs_on_the_workspaces_engine(spark, world_dir, experiment_list, tmp_path):
    """Without ``engine``, ``engine`` of the workspace's ``retain.yaml`` computes: Spark runs
    jobs for it (and none for ``engine="duckdb"``, which overrides the file), with the same
    numbers."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "retain.yaml").write_text(
        f"data: {world_dir}\nengine: spark\nspark:\n  master: local[2]\n"
        "  driver_memory: 2g\n  shuffle_partitions: 4\n"
    )
    tracker = spark.sparkContext.statusTracker()

    def last_job() -> int:
        return max(tracker.getJobIdsForGroup(), default=-1)

    before = last_job()
    result = backtest(experiment_list, workspace=workspace)
    after = last_job()
    assert after > before
    expected = backtest(experiment_list, workspace=workspace, engine="duckdb")
    assert last_job() == after
    pd.testing.assert_frame_equal(result.experiment, expected.experiment)
    pd.testing.assert_frame_equal(result.deciles, expected.deciles)


# --------------------------------------------------------------------------- like for like


def test_realised_margin_is_measured_on_the_basis_of_the_prediction(tmp_path):
    """Each action's realised incremental margin uses its prediction's window and discounting
    (``gains.margin_basis`` of ``summary.json``): ``call`` valued by the prior over the 60-day
    CLV horizon, discounted monthly at 10%; ``email`` by an uplift model over 30 days,
    undiscounted. By hand from :func:`tiny_data`: A (call, treated) 20 on day 4, month 1:
    20 / 1.1; C (call, control) 30 on day 40, month 2: 30 / 1.21; B (email, treated) nothing;
    D (email, control) -12 on day 9."""
    as_of = date(2024, 3, 1)
    frame = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "churn_probability": [0.35, 0.9, 0.3, 0.8],
            "clv": [100.0, 100.0, 200.0, 50.0],
            "selected": [True] * 4,
            "recommended_action": ["call", "email", "call", "email"],
            "group": ["treatment", "treatment", "control", "control"],
        }
    )
    frame["value_at_risk"] = frame["churn_probability"] * frame["clv"]
    frame["rank"] = [1, 2, 3, 4]
    frame["as_of"] = as_of
    basis = {
        "call": {"days": 60, "discount_rate_monthly": 0.1},
        "email": {"days": 30, "discount_rate_monthly": 0.0},
    }
    folder = write_list(tmp_path / "basis", _complete(frame), as_of, churn_days=30, clv_days=60,
                        gains={"margin_basis": basis})  # fmt: skip
    table = backtest(folder, tiny_data()).experiment.set_index(["action", "decile"])
    call, email = 20 / 1.1 - 30 / 1.21, 0 - (-12)
    assert table.loc[("call", 0), "realised_incremental_margin"] == pytest.approx(call)
    assert table.loc[("email", 0), "realised_incremental_margin"] == pytest.approx(email)
    overall = (20 / 1.1 + 0) / 2 - (30 / 1.21 - 12) / 2
    assert table.loc[("all", 0), "realised_incremental_margin"] == pytest.approx(overall)

    # a list that does not record its basis, without a workspace: undiscounted, over the CLV
    # horizon (60 days), and the backtest says so
    plain = write_list(tmp_path / "plain", _complete(frame), as_of, churn_days=30, clv_days=60)
    result = backtest(plain, tiny_data())
    table = result.experiment.set_index(["action", "decile"])
    assert table.loc[("call", 0), "realised_incremental_margin"] == pytest.approx(20 - 30)
    assert table.loc[("email", 0), "realised_incremental_margin"] == pytest.approx(12)
    assert any("margin_basis" in note for note in result.warnings)
