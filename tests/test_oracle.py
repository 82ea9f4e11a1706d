"""The oracle: exact expectations given the latent state, checked against simulated outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.data._sim_latent import daily_transition_probabilities
from retain.data._sim_params import default_params
from retain.data._sim_time import seasonality
from retain.data.oracle import oracle
from retain.data.simulator import simulate_world
from retain.errors import ConfigError

AS_OF = pd.Timestamp("2024-10-01")
HORIZON = 90


@pytest.fixture(scope="module")
def big_world():
    return simulate_world(20_000, seed=21)


@pytest.fixture(scope="module")
def prediction(big_world):
    return oracle(big_world.truth, AS_OF, HORIZON)


@pytest.fixture(scope="module")
def outcome(big_world, prediction):
    """Observed orders and net spend per customer in the horizon (customers born before AS_OF)."""
    tx = big_world.transactions
    in_window = (tx["timestamp"] >= AS_OF) & (tx["timestamp"] < AS_OF + pd.Timedelta(days=HORIZON))
    orders = tx[in_window & (tx["amount"] > 0)]
    # Returns attributed to their order, as the oracle treats them (whenever they happen).
    attributed = tx[tx["order_id"].isin(orders["order_id"])].groupby("customer_id")
    window = tx[in_window].groupby("customer_id")
    index = prediction.index
    return pd.DataFrame(
        {
            "orders": orders.groupby("customer_id").size().reindex(index, fill_value=0),
            "spend": attributed["amount"].sum().reindex(index, fill_value=0.0),
            "margin": attributed["margin"].sum().reindex(index, fill_value=0.0),
            "window_spend": window["amount"].sum().reindex(index, fill_value=0.0),
        }
    )


def _within(observed: pd.Series, expected: pd.Series, sigmas: float = 3.0) -> bool:
    """Is the total observed within ``sigmas`` standard errors of the total expected?"""
    error = observed.std() * np.sqrt(len(observed))
    return abs(observed.sum() - expected.sum()) < sigmas * error


def test_covers_customers_born_before_the_cutoff(big_world, prediction):
    born = big_world.truth.loc[big_world.truth["birth"] < AS_OF, "customer_id"]
    assert prediction.index.name == "customer_id"
    assert list(prediction.index) == list(born)
    assert list(prediction.columns) == [
        "alive",
        "state",
        "p_no_purchase",
        "expected_purchases",
        "expected_spend",
        "expected_margin",
    ]
    assert prediction["alive"].dtype == bool


def test_states_agree_with_truth(big_world, prediction):
    truth = big_world.truth.set_index("customer_id").loc[prediction.index]
    dead = truth["dropout_time"].notna() & (truth["dropout_time"] <= AS_OF)
    assert (prediction["alive"] == ~dead).all()
    disengaging = ~dead & truth["disengage_time"].notna() & (truth["disengage_time"] <= AS_OF)
    assert (prediction["state"] == "disengaging").sum() == disengaging.sum() > 100


def test_probabilities_and_dead_customers(prediction):
    assert prediction["p_no_purchase"].between(0, 1).all()
    dead = prediction[~prediction["alive"]]
    assert len(dead) > 1000
    assert (dead["p_no_purchase"] == 1.0).all()
    assert (dead[["expected_purchases", "expected_spend", "expected_margin"]] == 0).all().all()
    alive = prediction[prediction["alive"]]
    assert (alive["expected_purchases"] > 0).all() and (alive["p_no_purchase"] < 1).all()


def test_expected_purchases_match_observed_orders(prediction, outcome):
    assert _within(outcome["orders"], prediction["expected_purchases"])
    for state in ("engaged", "disengaging"):
        chosen = prediction["state"] == state
        assert _within(outcome["orders"][chosen], prediction["expected_purchases"][chosen])


def test_no_purchase_share_matches(prediction, outcome):
    everyone = pd.Series(True, index=prediction.index)
    for chosen in (everyone, prediction["alive"]):
        none = (outcome["orders"][chosen] == 0).astype(float)
        expected = prediction["p_no_purchase"][chosen]
        error = np.sqrt(expected.mean() * (1 - expected.mean()) / len(none))
        assert abs(none.mean() - expected.mean()) < 3 * error


def test_expected_spend_and_margin_match(prediction, outcome):
    assert _within(outcome["spend"], prediction["expected_spend"])
    assert _within(outcome["margin"], prediction["expected_margin"])
    # Net spend in the window itself (returns of earlier orders in, later returns out).
    assert abs(outcome["window_spend"].sum() / prediction["expected_spend"].sum() - 1) < 0.04


def test_oracle_beats_recency_at_predicting_churn(big_world, prediction, outcome):
    from sklearn.metrics import roc_auc_score

    orders = big_world.transactions[big_world.transactions["amount"] > 0]
    last = orders[orders["timestamp"] < AS_OF].groupby("customer_id")["timestamp"].max()
    recency = (AS_OF - last.reindex(prediction.index)).dt.days
    active = recency < 90
    churned = outcome["orders"][active] == 0
    oracle_auc = roc_auc_score(churned, prediction["p_no_purchase"][active])
    recency_auc = roc_auc_score(churned, recency[active])
    assert oracle_auc > recency_auc + 0.05


def test_oracle_reads_parameters_from_parquet(world, world_dir):
    truth = pd.read_parquet(world_dir / "truth.parquet")
    assert truth.attrs["simulation"]["params"] == world.params
    from_file = oracle(truth, "2025-03-01", 30)
    pd.testing.assert_frame_equal(from_file, oracle(world.truth, "2025-03-01", 30))
    bare = truth.copy()
    bare.attrs = {}
    pd.testing.assert_frame_equal(oracle(bare, "2025-03-01", 30, params=world.params), from_file)


def test_invalid_cutoffs(world):
    with pytest.raises(ConfigError):
        oracle(world.truth, "2026-02-01", 30)  # after the end of history
    with pytest.raises(ConfigError):
        oracle(world.truth, "2023-01-01", 30)  # before the start
    with pytest.raises(ConfigError):
        oracle(world.truth, "2025-01-01 12:00", 30)
    with pytest.raises(ConfigError):
        oracle(world.truth, "2025-01-01", 0)
    with pytest.raises(ConfigError):
        oracle(world.truth.drop(columns=["kappa"]), "2025-01-01", 30)


def _hand_made_truth(as_of: pd.Timestamp) -> pd.DataFrame:
    """Three customers alive at ``as_of``: engaged, disengaging, and engaged with high hazards."""
    never = pd.NaT
    return pd.DataFrame(
        {
            "customer_id": pd.array(["C1", "C2", "C3"], dtype="str"),
            "birth": [as_of - pd.Timedelta(days=100)] * 3,
            "disengage_time": [never, as_of - pd.Timedelta(days=3), never],
            "dropout_time": [never, never, never],
            "purchase_rate": [0.05, 0.08, 0.03],
            "expected_order_value": [50.0, 80.0, 20.0],
            "expected_return_share": [0.02, 0.0, 0.05],
            "margin_rate": [0.3, 0.2, 0.4],
            "kappa": [0.01, 0.002, 0.05],
            "mu": [0.001, 0.001, 0.02],
            "delta": [0.05, 0.04, 0.1],
        }
    ).astype(
        {
            "birth": "datetime64[us]",
            "disengage_time": "datetime64[us]",
            "dropout_time": "datetime64[us]",
        }
    )


def _monte_carlo(truth: pd.DataFrame, state: list[int], as_of, horizon: int, paths: int):
    """Mean orders and P(no order) by simulating the daily chain directly, path by path."""
    params = default_params()
    season = seasonality(np.datetime64(as_of.date()) + np.arange(horizon), params["seasonality"])
    cumulative = np.concatenate(([0.0], np.cumsum(season)))
    multiplier = params["purchases"]["disengaged_multiplier"]
    rng = np.random.default_rng(0)
    means, zeros = [], []
    for row, start_state in zip(truth.itertuples(), state, strict=True):
        leave_e, to_d, leave_d = daily_transition_probabilities(
            np.array(row.kappa), np.array(row.mu), np.array(row.delta)
        )
        engaged_days = rng.geometric(leave_e, paths) if start_state == 0 else np.zeros(paths, int)
        disengages = (rng.random(paths) < to_d) | (start_state == 1)
        dying = engaged_days + np.where(disengages, rng.geometric(leave_d, paths), 0)
        engaged_end, dead_start = np.minimum(engaged_days, horizon), np.minimum(dying, horizon)
        exposure = cumulative[engaged_end] + multiplier * (
            cumulative[dead_start] - cumulative[engaged_end]
        )
        counts = rng.poisson(row.purchase_rate * exposure)
        means.append((counts.mean(), counts.std() / np.sqrt(paths)))
        zeros.append(np.exp(-row.purchase_rate * exposure).mean())
    return means, zeros


def test_forward_recursion_matches_path_simulation():
    as_of, horizon = pd.Timestamp("2024-11-15"), 60
    truth = _hand_made_truth(as_of)
    prediction = oracle(truth, as_of, horizon)
    assert list(prediction["state"]) == ["engaged", "disengaging", "engaged"]
    means, zeros = _monte_carlo(truth, [0, 1, 0], as_of, horizon, paths=400_000)
    for (mean, error), zero, (_, row) in zip(means, zeros, prediction.iterrows(), strict=True):
        assert abs(row["expected_purchases"] - mean) < 4 * error
        assert row["p_no_purchase"] == pytest.approx(zero, abs=3e-3)
    expected_spend = prediction["expected_purchases"] * truth["expected_order_value"].to_numpy()
    expected_spend *= 1 - truth["expected_return_share"].to_numpy()
    np.testing.assert_allclose(prediction["expected_spend"], expected_spend)
    np.testing.assert_allclose(
        prediction["expected_margin"], expected_spend * truth["margin_rate"].to_numpy()
    )


def test_one_day_horizon_is_the_daily_rate():
    as_of = pd.Timestamp("2024-12-07")
    truth = _hand_made_truth(as_of)
    prediction = oracle(truth, as_of, 1)
    params = default_params()
    level = seasonality(np.array([np.datetime64("2024-12-07")]), params["seasonality"])[0]
    multiplier = np.array([1.0, params["purchases"]["disengaged_multiplier"], 1.0])
    expected = truth["purchase_rate"].to_numpy() * level * multiplier
    np.testing.assert_allclose(prediction["expected_purchases"], expected)
    np.testing.assert_allclose(prediction["p_no_purchase"], np.exp(-expected))
