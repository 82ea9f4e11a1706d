"""The simulator: contract tables, time semantics, determinism, calibration and BG/NBD mode."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special
from typer.testing import CliRunner

from retain.cli import app
from retain.data._sim_params import INTERACTION_TYPES
from retain.data._sim_time import seasonality
from retain.data.simulator import (
    PROGRESS_STEPS,
    simulate_bgnbd,
    simulate_world,
    write_bgnbd,
    write_world,
)
from retain.errors import ConfigError

EXPECTED_COLUMNS = {
    "customers": {
        "customer_id": "str",
        "signup_date": "datetime64[us]",
        "acquisition_channel": "str",
        "acquisition_cost": "float64",
        "region": "str",
    },
    "transactions": {
        "customer_id": "str",
        "timestamp": "datetime64[us]",
        "amount": "float64",
        "order_id": "str",
        "quantity": "int64",
        "category": "str",
        "channel": "str",
        "margin": "float64",
    },
    "interactions": {
        "customer_id": "str",
        "timestamp": "datetime64[us]",
        "type": "str",
        "value": "float64",
        "channel": "str",
    },
}


@pytest.fixture(scope="module")
def large_world():
    """Enough customers for statistical checks of the churn signal."""
    return simulate_world(20_000, seed=11)


def _orders(world) -> pd.DataFrame:
    return world.transactions[world.transactions["amount"] > 0]


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("table", sorted(EXPECTED_COLUMNS))
def test_tables_have_contract_columns_and_dtypes(world, table):
    frame = getattr(world, table)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == EXPECTED_COLUMNS[table]
    assert not frame.drop(columns=["value"], errors="ignore").isna().any().any()


def test_ids_are_consistent_across_tables(world):
    customers = world.customers["customer_id"]
    assert customers.is_unique and customers.str.fullmatch(r"C\d{7}").all()
    assert world.truth["customer_id"].equals(customers)
    assert set(world.transactions["customer_id"]) == set(customers)  # everyone buys at signup
    assert set(world.interactions["customer_id"]) <= set(customers)


def test_orders_and_returns_are_consistent(world):
    tx = world.transactions
    orders, returns = tx[tx["amount"] > 0], tx[tx["amount"] < 0]
    assert len(orders) + len(returns) == len(tx)
    assert orders["order_id"].is_unique
    matched = returns.merge(orders, on="order_id", suffixes=("", "_order"), validate="one_to_one")
    assert len(matched) == len(returns)
    assert (matched["customer_id"] == matched["customer_id_order"]).all()
    assert (matched["category"] == matched["category_order"]).all()
    assert (-matched["amount"] <= matched["amount_order"] + 1e-9).all()
    delay = matched["timestamp"] - matched["timestamp_order"]
    assert delay.min() >= pd.Timedelta(days=1) and delay.max() <= pd.Timedelta(days=30)
    assert (orders["quantity"] >= 1).all() and (returns["quantity"] <= -1).all()
    assert (np.sign(tx["margin"]) * np.sign(tx["amount"]) >= 0).all()
    assert (tx["margin"].abs() < tx["amount"].abs()).all()


def test_returns_are_about_three_percent_of_orders(world):
    tx = world.transactions
    share = (tx["amount"] < 0).sum() / (tx["amount"] > 0).sum()
    assert 0.025 < share < 0.035


def test_vocabularies(world):
    assert set(world.interactions["type"]) == set(INTERACTION_TYPES)
    assert world.transactions["category"].nunique() == 8
    assert set(world.transactions["channel"]) == {"web", "app", "store"}
    assert set(world.customers["acquisition_channel"]) == {
        "paid_search",
        "social",
        "referral",
        "organic",
        "affiliate",
    }
    surveys = world.interactions["type"] == "survey"
    scores = world.interactions.loc[surveys, "value"]
    assert scores.between(1, 10).all() and (scores == scores.round()).all()
    assert world.interactions.loc[~surveys, "value"].isna().all()


def test_acquisition_costs_differ_by_channel(world):
    medians = world.customers.groupby("acquisition_channel")["acquisition_cost"].median()
    assert (world.customers["acquisition_cost"] >= 0).all()
    assert medians["paid_search"] > medians["referral"] > medians["organic"]


def test_all_events_lie_inside_history(world):
    start, end = pd.Timestamp(world.start), pd.Timestamp(world.end)
    for table in (world.transactions, world.interactions):
        assert table["timestamp"].min() >= start
        assert table["timestamp"].max() < end
    assert world.truth["birth"].between(start, end, inclusive="left").all()
    assert (world.customers["signup_date"] <= world.truth["birth"]).all()
    assert (world.truth["birth"] - world.customers["signup_date"]).max() <= pd.Timedelta(days=15)


def test_first_purchase_is_at_birth(world):
    first = _orders(world).groupby("customer_id")["timestamp"].min()
    birth = world.truth.set_index("customer_id")["birth"]
    pd.testing.assert_series_equal(first.reindex(birth.index), birth, check_names=False)


def test_no_customer_events_after_dropout(world):
    truth = world.truth.set_index("customer_id")
    stop = truth["dropout_time"].fillna(pd.Timestamp(world.end))
    both = truth.dropna(subset=["disengage_time", "dropout_time"])
    assert (both["disengage_time"] < both["dropout_time"]).all()
    for table in (
        world.transactions,
        world.interactions[world.interactions["type"] != "campaign_contact"],
    ):
        limit = stop.reindex(table["customer_id"]).to_numpy()
        assert (table["timestamp"].to_numpy() < limit).all()
    contacts = world.interactions[world.interactions["type"] == "campaign_contact"]
    assert (
        contacts["timestamp"].to_numpy() >= stop.reindex(contacts["customer_id"]).to_numpy()
    ).any()


def test_arrivals_spread_over_the_period(world):
    month = world.truth["birth"].dt.to_period("M")
    per_month = month.value_counts().sort_index()
    assert len(per_month) == 30  # every month of 2023-07 .. 2025-12 has new customers
    assert per_month.iloc[:3].sum() > 0.25 * len(world.truth)  # an opening cohort
    assert per_month.iloc[-6:].mean() > per_month.iloc[6:12].mean()  # mild growth


def test_volumes_are_calibrated(large_world):
    per_customer = {
        name: count / len(large_world.customers) for name, count in large_world.counts().items()
    }
    assert 17 < per_customer["transactions"] < 23  # ~20M transactions per 1M customers
    assert 8 < per_customer["interactions"] < 12  # ~10M interactions per 1M customers


def test_seasonality_is_normalised_with_weekend_and_holiday_peaks(world):
    season_params = world.params["seasonality"]
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2027-12-31"))
    values = seasonality(days, season_params)
    assert abs(values.mean() - 1.0) < 0.01
    weekday = (days.astype(np.int64) + 3) % 7
    assert values[weekday == 5].mean() > values[weekday == 1].mean()
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    by_month = pd.Series(values).groupby(month).mean()
    assert by_month.idxmax() in (10, 11) and by_month[11] > 1.3 * by_month[2]


def test_orders_follow_the_seasonality(large_world):
    orders = _orders(large_world)
    weekday = orders["timestamp"].dt.day_of_week.value_counts(normalize=True)
    assert weekday[5] > 1.15 * weekday[1]  # Saturday vs Tuesday
    hour = orders["timestamp"].dt.hour.value_counts(normalize=True)
    assert hour[20] > 5 * hour[3]


def test_complaints_precede_churn(large_world):
    """Customers with recent complaints drop out more often in the next 90 days (truth)."""
    as_of, horizon = pd.Timestamp("2025-01-01"), pd.Timedelta(days=90)
    truth = large_world.truth.set_index("customer_id")
    alive = (truth["birth"] < as_of) & (
        truth["dropout_time"].isna() | (truth["dropout_time"] > as_of)
    )
    churns = (truth["dropout_time"] < as_of + horizon)[alive]
    interactions = large_world.interactions
    recent = interactions[
        (interactions["timestamp"] < as_of)
        & (interactions["timestamp"] >= as_of - horizon)
        & (interactions["type"] == "complaint")
    ]
    complained = churns.index.isin(recent["customer_id"])
    with_complaint, without = churns[complained], churns[~complained]
    error = np.sqrt(with_complaint.var() / len(with_complaint) + without.var() / len(without))
    assert len(with_complaint) > 50
    assert with_complaint.mean() > 1.5 * without.mean()
    assert (with_complaint.mean() - without.mean()) / error > 3


def _rfm(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    past = orders[orders["timestamp"] < as_of].groupby("customer_id")["timestamp"]
    recent = orders[
        (orders["timestamp"] < as_of) & (orders["timestamp"] >= as_of - pd.Timedelta(days=90))
    ]
    return pd.DataFrame(
        {
            "recency": (as_of - past.max()).dt.days,
            "frequency": past.size(),
            "tenure": (as_of - past.min()).dt.days,
            "frequency_90": recent.groupby("customer_id").size(),
        }
    ).fillna(0)


def test_interactions_predict_latent_churn_beyond_rfm(large_world):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    as_of, horizon = pd.Timestamp("2025-01-01"), pd.Timedelta(days=90)
    rfm = _rfm(_orders(large_world), as_of)
    rfm = rfm[rfm["recency"] < 90]  # active customers
    dropout = large_world.truth.set_index("customer_id")["dropout_time"].reindex(rfm.index)
    label = ((dropout >= as_of) & (dropout < as_of + horizon)).to_numpy()
    history = large_world.interactions[large_world.interactions["timestamp"] < as_of]
    enriched = rfm.copy()
    for days in (30, 180):
        window = history[history["timestamp"] >= as_of - pd.Timedelta(days=days)]
        counts = window.groupby(["customer_id", "type"]).size().unstack(fill_value=0)
        counts = counts.reindex(rfm.index, fill_value=0).add_suffix(f"_{days}")
        enriched = enriched.join(counts)
    held_out = np.random.default_rng(0).random(len(rfm)) < 0.5

    def held_out_auc(features: pd.DataFrame) -> float:
        values = np.log1p(features.to_numpy(np.float64))
        values = (values - values.mean(axis=0)) / values.std(axis=0)
        model = LogisticRegression(max_iter=500).fit(values[~held_out], label[~held_out])
        return roc_auc_score(label[held_out], model.predict_proba(values[held_out])[:, 1])

    assert held_out_auc(enriched) > held_out_auc(rfm) + 0.03


def test_progress_is_reported_once_per_step():
    steps = []
    simulate_world(200, seed=1, progress=lambda description, advance=1.0: steps.append(advance))
    assert len(steps) == PROGRESS_STEPS and sum(steps) == PROGRESS_STEPS


def test_same_seed_same_world_and_bytes(tmp_path):
    first, second = simulate_world(400, seed=3), simulate_world(400, seed=3)
    for name in ("customers", "transactions", "interactions", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert first.params == second.params
    paths_a, paths_b = write_world(first, tmp_path / "a"), write_world(second, tmp_path / "b")
    assert set(paths_a) == {"customers", "transactions", "interactions", "truth", "simulation"}
    for name in paths_a:
        assert _sha256(paths_a[name]) == _sha256(paths_b[name]), name


def test_different_seed_different_world():
    first, second = simulate_world(400, seed=3), simulate_world(400, seed=4)
    assert not first.transactions["timestamp"].equals(second.transactions["timestamp"])
    assert not np.allclose(first.truth["purchase_rate"], second.truth["purchase_rate"])


def test_written_world_reads_back(world, world_dir):
    for name in ("customers", "transactions", "interactions", "truth"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(world_dir / f"{name}.parquet"), getattr(world, name)
        )
    truth = pd.read_parquet(world_dir / "truth.parquet")
    assert truth.attrs["simulation"]["params"] == world.params
    description = json.loads((world_dir / "simulation.json").read_text())
    assert description["seed"] == world.seed and description["start"] == str(world.start)
    assert description["counts"]["transactions"] == len(world.transactions)
    assert description["params"] == world.params
    assert not list(world_dir.glob(".*"))  # no temporary files left behind


def test_custom_period_and_invalid_arguments():
    short = simulate_world(300, seed=2, start="2024-01-01", end="2024-04-01")
    assert short.transactions["timestamp"].max() < pd.Timestamp("2024-04-01")
    assert short.truth["birth"].min() >= pd.Timestamp("2024-01-01")
    with pytest.raises(ConfigError):
        simulate_world(10, start="2024-01-01", end="2024-01-01")
    with pytest.raises(ConfigError):
        simulate_world(0)
    with pytest.raises(ConfigError):
        simulate_world(10, start="January")


def test_cli_simulate_writes_the_files(tmp_path):
    out = tmp_path / "world"
    result = CliRunner().invoke(
        app, ["simulate", "--customers", "500", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    for name in ("customers", "transactions", "interactions", "truth"):
        assert len(pd.read_parquet(out / f"{name}.parquet")) > 0
    assert json.loads((out / "simulation.json").read_text())["counts"]["customers"] == 500


def test_cli_simulate_bgnbd(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--model",
            "bgnbd",
            "--customers",
            "300",
            "--seed",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "bgnbd.parquet")) == 300
    assert json.loads((tmp_path / "bgnbd.json").read_text())["r"] == pytest.approx(0.24)


# BG/NBD mode: published CDNOW estimates (Fader, Hardie & Lee 2005).
R, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426


def _bgnbd_pmf(x: int, t: float) -> float:
    """P(X(t) = x), equation (8) of Fader, Hardie & Lee (2005)."""
    ratio, share = ALPHA / (ALPHA + t), t / (ALPHA + t)
    log_gamma = special.gammaln(R + x) - special.gammaln(R) - special.gammaln(x + 1)
    first = (
        np.exp(special.betaln(A, B + x) - special.betaln(A, B) + log_gamma) * ratio**R * share**x
    )
    if x == 0:
        return float(first)
    tail = sum(
        np.exp(special.gammaln(R + j) - special.gammaln(R) - special.gammaln(j + 1)) * share**j
        for j in range(x)
    )
    second = np.exp(special.betaln(A + 1, B + x - 1) - special.betaln(A, B)) * (1 - ratio**R * tail)
    return float(first + second)


def _bgnbd_log_likelihood(params, frequency, recency, T) -> float:
    """Sum of the individual BG/NBD log-likelihoods, equation (6) of Fader, Hardie & Lee (2005)."""
    r, alpha, a, b = np.exp(params)
    x = frequency
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    first = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    second = (
        special.betaln(a + 1, np.maximum(b + x - 1, 1e-12))  # unused where x = 0
        - special.betaln(a, b)
        - (r + x) * np.log(alpha + recency)
    )
    second = np.where(x > 0, second, -np.inf)
    return float(np.sum(common + np.logaddexp(first, second)))


@pytest.fixture(scope="module")
def bgnbd_sample():
    return simulate_bgnbd(50_000, r=R, alpha=ALPHA, a=A, b=B, T=39.0, seed=5)


def test_bgnbd_frequency_matches_the_closed_form(bgnbd_sample):
    T = 39.0
    expected = (A + B - 1) / (A - 1)
    expected *= 1 - (ALPHA / (ALPHA + T)) ** R * special.hyp2f1(R, B, A + B - 1, T / (ALPHA + T))
    frequency = bgnbd_sample["frequency"]
    assert abs(frequency.mean() - expected) < 4 * frequency.std() / np.sqrt(len(frequency))
    for x in range(4):
        probability = _bgnbd_pmf(x, T)
        observed = (frequency == x).mean()
        assert abs(observed - probability) < 4 * np.sqrt(
            probability * (1 - probability) / len(frequency)
        )


def test_bgnbd_recency_fits_the_likelihood(bgnbd_sample):
    """A likelihood-ratio test of the true parameters against the maximum: chi-square(4)."""
    data = [bgnbd_sample[name].to_numpy() for name in ("frequency", "recency", "T")]
    truth = np.log([R, ALPHA, A, B])
    fitted = optimize.minimize(lambda p: -_bgnbd_log_likelihood(p, *data), truth, method="L-BFGS-B")
    statistic = 2 * (-fitted.fun - _bgnbd_log_likelihood(truth, *data))
    assert statistic < 20  # chi-square(4) exceeds 20 with probability 0.0005


def test_bgnbd_sample_shape(bgnbd_sample):
    frame = bgnbd_sample
    assert list(frame.columns) == ["customer_id", "frequency", "recency", "T"]
    assert ((frame["recency"] > 0) == (frame["frequency"] > 0)).all()
    assert (frame["recency"] <= frame["T"]).all()
    assert frame.attrs["bgnbd"]["r"] == R


def test_bgnbd_per_customer_horizons_and_writing(tmp_path):
    T = np.linspace(1.0, 50.0, 1_000)
    frame = simulate_bgnbd(1_000, r=R, alpha=ALPHA, a=A, b=B, T=T, seed=1)
    assert np.array_equal(frame["T"].to_numpy(), T)
    assert (frame["recency"] <= frame["T"]).all()
    path = write_bgnbd(frame, tmp_path / "out")
    assert path.name == "bgnbd.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    params = json.loads((tmp_path / "out" / "bgnbd.json").read_text())
    assert params["a"] == A and params["T"] == "per customer"
    with pytest.raises(ConfigError):
        simulate_bgnbd(10, r=-1.0, alpha=ALPHA, a=A, b=B)
