"""Simulator options: retention campaigns with known effects, cost to serve, referrals.

The options are off by default and must leave the world unchanged; on, their tables must be
consistent with the events, and their truth with what the simulated customers did.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retain.cli import app
from retain.data.oracle import oracle, oracle_influence, oracle_uplift
from retain.data.simulator import CampaignPlan, simulate_world, write_world
from retain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"campaigns": True, "costs": True, "referrals": True}
HORIZON = 90


@pytest.fixture(scope="module")
def option_world():
    """Every option on, the default campaign plan."""
    return simulate_world(6_000, seed=13, **OPTIONS)


@pytest.fixture(scope="module")
def plain_world():
    return simulate_world(6_000, seed=13)


@pytest.fixture(scope="module")
def experiment():
    """Two campaigns further apart than the horizon, half of each held out: enough power to
    see the effects on the customers a contact can move."""
    plan = {
        "actions": ["service_recovery", "win_back_offer"],
        "control_share": 0.5,
        "dates": ["2024-09-03", "2025-05-06"],
        "size": None,  # every active customer enrolled
    }
    world = simulate_world(20_000, seed=17, campaigns=plan)
    tx = world.transactions
    frames = []
    for campaign_id, rows in world.campaigns.groupby("campaign_id"):
        day = rows["timestamp"].min().normalize()
        in_window = (tx["timestamp"] >= day) & (tx["timestamp"] < day + pd.Timedelta(days=HORIZON))
        orders = tx[in_window & (tx["amount"] > 0)]
        # Returns attributed to their order, as the oracle treats them.
        margin = tx[tx["order_id"].isin(orders["order_id"])].groupby("customer_id")["margin"].sum()
        truth = oracle_uplift(world.truth, day, HORIZON)
        rows = rows.set_index("customer_id")
        # Each customer's truth for the action they were assigned (or held out from).
        effect = pd.concat(
            truth.xs(action, level="action").reindex(group.index)
            for action, group in rows.groupby("action")
        )
        wanted = ["state", "expected_margin_without", "expected_margin_with", "incremental_margin"]
        rows = rows.join(effect[wanted])
        rows["margin"] = margin.reindex(rows.index, fill_value=0.0)
        rows["campaign_id"] = campaign_id
        frames.append(rows)
    return world, pd.concat(frames)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fingerprint(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.sha256(hashed).hexdigest()[:16]


# Content of simulate_world(400, seed=3) before the options existed (same on every platform:
# pandas' row hashes, not Parquet bytes).
UNCHANGED = {
    "customers": "169d31e683c296bc",
    "transactions": "dc2f16348eba6999",
    "interactions": "cef8f810a6347c34",
    "truth": "053228d45dac57bf",
}


def test_options_off_leave_the_world_unchanged():
    world = simulate_world(400, seed=3)
    assert {name: _fingerprint(getattr(world, name)) for name in UNCHANGED} == UNCHANGED
    assert world.campaigns is None and world.costs is None
    assert not {"retention", "costs", "referrals"} & set(world.params)
    assert world.tables() == ("customers", "transactions", "interactions", "truth")


def test_same_seed_same_bytes_with_every_option(tmp_path):
    first = write_world(simulate_world(800, seed=4, **OPTIONS), tmp_path / "a")
    second = write_world(simulate_world(800, seed=4, **OPTIONS), tmp_path / "b")
    assert set(first) == {
        "customers",
        "transactions",
        "interactions",
        "truth",
        "campaigns",
        "costs",
        "simulation",
    }
    for name, path in first.items():
        assert _sha256(path) == _sha256(second[name]), name
    other = simulate_world(800, seed=5, **OPTIONS)
    assert not other.campaigns["customer_id"].equals(
        pd.read_parquet(first["campaigns"])["customer_id"]
    )


def test_written_option_world_reads_back(option_world, tmp_path):
    paths = write_world(option_world, tmp_path)
    for name in option_world.tables():
        pd.testing.assert_frame_equal(pd.read_parquet(paths[name]), getattr(option_world, name))
    truth = pd.read_parquet(paths["truth"])  # lists come back as arrays, attrs as saved
    pd.testing.assert_frame_equal(
        oracle_uplift(truth, "2025-03-24", 60), oracle_uplift(option_world.truth, "2025-03-24", 60)
    )
    description = json.loads(paths["simulation"].read_text())
    assert description["counts"]["campaigns"] == len(option_world.campaigns)
    assert description["params"]["retention"]["plan"]["dates"] == [
        "2024-05-01",
        "2024-10-11",
        "2025-03-24",
        "2025-09-03",
    ]
    # Written again without options, the folder holds one world: the optional tables go.
    write_world(simulate_world(300, seed=1), tmp_path)
    assert not (tmp_path / "campaigns.parquet").exists()
    assert not (tmp_path / "costs.parquet").exists()


def test_costs_and_referrals_change_nothing_else(plain_world):
    world = simulate_world(6_000, seed=13, costs=True, referrals=True)
    pd.testing.assert_frame_equal(world.transactions, plain_world.transactions)
    pd.testing.assert_frame_equal(world.interactions, plain_world.interactions)
    pd.testing.assert_frame_equal(
        world.customers.drop(columns="referred_by"), plain_world.customers
    )
    pd.testing.assert_frame_equal(
        world.truth[plain_world.truth.columns], plain_world.truth, check_like=False
    )


def test_campaign_log_follows_the_contract_and_the_playbook(option_world):
    log = option_world.campaigns
    assert {name: str(dtype) for name, dtype in log.dtypes.items()} == {
        "customer_id": "str",
        "timestamp": "datetime64[us]",
        "campaign_id": "str",
        "action": "str",
        "group": "str",
        "cost": "float64",
    }
    playbook = yaml.safe_load((ROOT / "serving" / "playbook.yaml").read_text())["actions"]
    assert set(log["action"]) == set(playbook)
    treated = log[log["group"] == "treatment"]
    costs = treated["action"].map({name: spec["cost"] for name, spec in playbook.items()})
    assert np.allclose(treated["cost"], costs)
    assert (log.loc[log["group"] == "control", "cost"] == 0).all()
    assert set(log["group"]) == {"treatment", "control"}
    assert abs((log["group"] == "control").mean() - 0.2) < 0.02
    assert not log.duplicated(["campaign_id", "customer_id"]).any()
    hour = log["timestamp"].dt.hour
    assert hour.between(9, 16).all()
    day = log["timestamp"].dt.normalize().dt.strftime("%Y-%m-%d")
    assert (log["campaign_id"] == "retention_" + day).all()
    assert log["customer_id"].isin(option_world.customers["customer_id"]).all()


def test_eligible_are_the_active_customers(option_world):
    orders = option_world.transactions[option_world.transactions["amount"] > 0]
    for campaign_id, rows in option_world.campaigns.groupby("campaign_id"):
        day = rows["timestamp"].min().normalize()
        recent = orders[
            (orders["timestamp"] < day) & (orders["timestamp"] >= day - pd.Timedelta(days=365))
        ]
        assert set(rows["customer_id"]) == set(recent["customer_id"]), campaign_id


def test_treated_contacts_appear_as_campaign_contacts(option_world):
    log = option_world.campaigns
    contacts = option_world.interactions[option_world.interactions["type"] == "campaign_contact"]
    matched = log.merge(contacts, on=["customer_id", "timestamp"], how="left", indicator=True)
    treated = matched["group"] == "treatment"
    assert (matched.loc[treated, "_merge"] == "both").all()
    assert (matched.loc[~treated, "_merge"] == "left_only").all()
    channel = {
        "service_recovery": "phone",
        "personal_call": "phone",
        "win_back_offer": "email",
        "loyalty_reward": "app",
        "reminder_email": "email",
    }
    assert (matched.loc[treated, "channel"] == matched.loc[treated, "action"].map(channel)).all()


def test_latent_path_agrees_with_the_events(option_world):
    truth = option_world.truth.set_index("customer_id")
    stop = truth["dropout_time"].fillna(pd.Timestamp(option_world.end))
    initiated = option_world.interactions["type"].isin(
        ["support_ticket", "complaint", "web_visit", "app_login", "survey", "email_open"]
    )
    for table in (option_world.transactions, option_world.interactions[initiated]):
        limit = stop.reindex(table["customer_id"]).to_numpy()
        assert (table["timestamp"].to_numpy() < limit).all()
    lengths = truth["path_start"].map(len)
    assert (lengths == truth["path_state"].map(len)).all()
    first_start = truth["path_start"].map(lambda starts: starts[0])
    assert (first_start.to_numpy() == truth["birth"].to_numpy()).all()
    assert (truth["path_state"].map(lambda states: states[0]) == 0).all()
    assert (
        truth["path_start"]
        .map(lambda starts: bool(np.all(np.diff(starts) > np.timedelta64(0))))
        .all()
    )
    ends_dead = truth["path_state"].map(lambda states: states[-1] == 2)
    assert (ends_dead == truth["dropout_time"].notna()).all()
    transitions = (
        pd.Series([tuple(zip(s[:-1], s[1:], strict=True)) for s in truth["path_state"]])
        .explode()
        .dropna()
        .value_counts()
    )
    assert transitions[(1, 0)] > 20  # rescued
    assert transitions[(0, 1)] > transitions[(1, 0)]
    assert (2, 0) not in transitions and (2, 1) not in transitions  # nothing helps the dead


def test_effects_are_heterogeneous_and_signed(option_world):
    truth = option_world.truth.set_index("customer_id")
    day = pd.Timestamp(option_world.params["retention"]["plan"]["dates"][-1])
    enrolled = option_world.campaigns.loc[
        option_world.campaigns["timestamp"].dt.normalize() == day, "customer_id"
    ]
    effect = oracle_uplift(option_world.truth, day, HORIZON)
    for action in option_world.params["retention"]["plan"]["actions"]:
        one = effect.xs(action, level="action").reindex(enrolled)
        dead, disengaging = one["state"] == "dead", one["state"] == "disengaging"
        assert (one.loc[dead, ["incremental_margin", "churn_effect"]] == 0).all().all()
        assert (one.loc[disengaging, "incremental_margin"] > 0).all()
        assert (one.loc[disengaging, "churn_effect"] < 0).all()
        intrusiveness = option_world.params["retention"]["actions"][action]["intrusiveness"]
        averse = truth[f"push_{action}"].reindex(enrolled) / intrusiveness > 0.4
        sleeping = (one["state"] == "engaged") & averse
        assert sleeping.sum() > 20
        assert (one.loc[sleeping, "incremental_margin"] < 0).mean() > 0.9, action
        # Ascarza (2018): risk does not tell who responds.
        risk = one["p_no_purchase_without"]
        assert abs(one["incremental_margin"].corr(risk)) < 0.2, action
    one = effect.xs("service_recovery", level="action").reindex(enrolled)
    moved = one[one["state"] == "disengaging"]
    issue = truth["issue_propensity"].reindex(moved.index)
    assert moved["incremental_margin"].corr(issue, method="spearman") > 0.3
    one = effect.xs("win_back_offer", level="action").reindex(enrolled)
    moved = one[one["state"] == "disengaging"]
    price = truth["price_sensitivity"].reindex(moved.index)
    assert moved["incremental_margin"].corr(price, method="spearman") > 0.3


def _difference(rows: pd.DataFrame) -> tuple[float, float]:
    """Treated minus control of the outcome net of the oracle's untreated expectation."""
    residual = rows["margin"] - rows["expected_margin_without"]
    treated = (rows["group"] == "treatment").to_numpy()
    difference = residual[treated].mean() - residual[~treated].mean()
    error = np.sqrt(
        residual[treated].var() / treated.sum() + residual[~treated].var() / (~treated).sum()
    )
    return difference, error


def test_randomised_difference_agrees_with_the_oracle(experiment):
    _, rows = experiment
    for (campaign_id, action), group in rows.groupby(["campaign_id", "action"]):
        difference, error = _difference(group)
        assert abs(difference - group["incremental_margin"].mean()) < 3.5 * error, (
            campaign_id,
            action,
        )
    # Where the effects are large (disengaging at the campaign date, a pre-treatment state),
    # the experiment sees them, and sees the oracle's size.
    moved = rows[rows["state"] == "disengaging"]
    difference, error = _difference(moved)
    expected = moved["incremental_margin"].mean()
    assert expected > 10
    # expected / error is about 3.5 here: a 2-sigma bar keeps the power check off the edge
    # of this one draw (a null effect passes it 2% of the time)
    assert difference > 2 * error
    assert abs(difference - expected) < 3.5 * error
    treated = moved[moved["group"] == "treatment"]
    calibration = treated["margin"] - treated["expected_margin_with"]
    assert abs(calibration.mean()) < 3.5 * calibration.std() / np.sqrt(len(calibration))


def test_oracle_between_campaigns_matches_outcomes(option_world):
    """After a campaign, the protection in force and the new path are part of the state."""
    day = pd.Timestamp(option_world.params["retention"]["plan"]["dates"][-1]) + pd.Timedelta(
        days=20
    )
    expected = oracle(option_world.truth, day, 60)
    tx = option_world.transactions
    orders = tx[(tx["timestamp"] >= day) & (tx["timestamp"] < day + pd.Timedelta(days=60))]
    observed = orders[orders["amount"] > 0].groupby("customer_id").size()
    observed = observed.reindex(expected.index, fill_value=0)
    error = observed.std() * np.sqrt(len(observed))
    assert abs(observed.sum() - expected["expected_purchases"].sum()) < 3 * error
    protected = option_world.truth.set_index("customer_id")["path_factor_until"].map(
        lambda until: bool(np.any(until > day.to_datetime64()))
    )
    assert protected.sum() > 100


def _hand_made_truth(as_of: pd.Timestamp) -> pd.DataFrame:
    """Engaged; disengaging; engaged under a protection (kappa x 0.3 for 10 more days)."""
    birth = as_of - pd.Timedelta(days=100)
    contact = as_of - pd.Timedelta(days=50)
    stamps = [
        np.array([birth], "datetime64[us]"),
        np.array([birth, as_of - pd.Timedelta(days=3)], "datetime64[us]"),
        np.array([birth, contact], "datetime64[us]"),
    ]
    truth = pd.DataFrame(
        {
            "customer_id": pd.array(["C1", "C2", "C3"], dtype="str"),
            "birth": [birth] * 3,
            "disengage_time": [pd.NaT, as_of - pd.Timedelta(days=3), pd.NaT],
            "dropout_time": [pd.NaT] * 3,
            "purchase_rate": [0.05, 0.08, 0.04],
            "expected_order_value": [50.0, 80.0, 20.0],
            "expected_return_share": [0.02, 0.0, 0.05],
            "margin_rate": [0.3, 0.2, 0.4],
            "kappa": [0.02, 0.002, 0.05],
            "mu": [0.001, 0.001, 0.02],
            "delta": [0.05, 0.04, 0.1],
            "rescue_service_recovery": [0.6, 0.7, 0.5],
            "push_service_recovery": [0.2, 0.1, 0.05],
            "kappa_factor_service_recovery": [0.4, 0.5, 0.2],
            "path_start": stamps,
            "path_state": [
                np.array([0], np.int8),
                np.array([0, 1], np.int8),
                np.array([0, 0], np.int8),
            ],
            "path_kappa_factor": [np.array([1.0]), np.array([1.0, 1.0]), np.array([1.0, 0.3])],
            "path_factor_until": [
                np.array(["NaT"], "datetime64[us]"),
                np.array(["NaT", "NaT"], "datetime64[us]"),
                np.array(["NaT", as_of + pd.Timedelta(days=10)], "datetime64[us]"),
            ],
        }
    ).astype(
        {
            "birth": "datetime64[us]",
            "disengage_time": "datetime64[us]",
            "dropout_time": "datetime64[us]",
        }
    )
    return truth


def _monte_carlo(
    row,
    state: int,
    season: np.ndarray,
    days_protected: int,
    old_factor: float,
    contact: bool,
    protect_days: int,
    paths: int,
    rng,
) -> tuple[float, float, float]:
    """Day-by-day simulation of the chain with protections and a contact's jump."""
    multiplier = 0.6
    current = np.full(paths, state)
    orders = np.zeros(paths)
    for day, level in enumerate(season):
        intensity = row.purchase_rate * level * np.where(current == 1, multiplier, 1.0)
        orders += rng.poisson(np.where(current == 2, 0.0, intensity))
        if contact and day >= 1:
            factor = row.kappa_factor_service_recovery if day <= protect_days else 1.0
        else:
            factor = old_factor if day < days_protected else 1.0
        kappa = row.kappa * factor
        leave = 1 - np.exp(-(kappa + row.mu))
        draw = rng.random(paths)
        engaged = current == 0
        to_d = engaged & (draw < leave * kappa / (kappa + row.mu))
        to_dead = engaged & (draw >= leave * kappa / (kappa + row.mu)) & (draw < leave)
        dies = (current == 1) & (rng.random(paths) < 1 - np.exp(-row.delta))
        current = np.where(to_d, 1, np.where(to_dead | dies, 2, current))
        if contact and day == 0:
            draw = rng.random(paths)
            rescued = (current == 1) & (draw < row.rescue_service_recovery)
            pushed = (current == 0) & (draw < row.push_service_recovery)
            current = np.where(rescued, 0, np.where(pushed, 1, current))
    return orders.mean(), orders.std() / np.sqrt(paths), (orders == 0).mean()


def test_uplift_recursion_matches_path_simulation():
    from retain.data._sim_params import default_params, retention_params
    from retain.data._sim_time import seasonality

    as_of, horizon = pd.Timestamp("2024-11-15"), 40
    params = default_params()
    params["retention"] = {**retention_params(), "plan": {"actions": ["service_recovery"]}}
    truth = _hand_made_truth(as_of)
    truth.attrs["simulation"] = {"params": params, "start": "2023-07-01", "end": "2026-01-01"}
    effect = oracle_uplift(truth, as_of, horizon).xs("service_recovery", level="action")
    assert list(effect["state"]) == ["engaged", "disengaging", "engaged"]
    season = seasonality(np.datetime64(as_of.date()) + np.arange(horizon), params["seasonality"])
    protect_days = params["retention"]["actions"]["service_recovery"]["protect"]["days"]
    rng = np.random.default_rng(0)
    for (_, row), state, (days_protected, old_factor), (_, result) in zip(
        truth.iterrows(), [0, 1, 0], [(0, 1.0), (0, 1.0), (10, 0.3)], effect.iterrows(), strict=True
    ):
        row = pd.Series(row)
        value = row.expected_order_value * (1 - row.expected_return_share) * row.margin_rate
        for contact, margin, p_none in (
            (False, result["expected_margin_without"], result["p_no_purchase_without"]),
            (True, result["expected_margin_with"], result["p_no_purchase_with"]),
        ):
            mean, error, none = _monte_carlo(
                row, state, season, days_protected, old_factor, contact, protect_days, 200_000, rng
            )
            assert abs(margin / value - mean) < 4 * error, (row.customer_id, contact)
            assert p_none == pytest.approx(none, abs=4e-3), (row.customer_id, contact)


def test_oracle_uplift_refuses_what_it_cannot_answer(option_world, world):
    with pytest.raises(ConfigError, match="no campaign effects"):
        oracle_uplift(world.truth, "2025-01-01", 30)
    with pytest.raises(ConfigError, match="unknown action"):
        oracle_uplift(option_world.truth, "2025-01-01", 30, actions=["free_pony"])
    with pytest.raises(ConfigError, match="path columns"):
        oracle(option_world.truth.drop(columns=["path_start"]), "2025-01-01", 30)
    one = oracle_uplift(option_world.truth, "2025-01-01", 30, actions=["reminder_email"])
    assert set(one.index.get_level_values("action")) == {"reminder_email"}
    assert "incremental_profit" in one.columns  # the world has costs
    assert np.allclose(one["expected_net_gain"], one["incremental_margin"] - one["action_cost"])


def test_cost_log_matches_the_events(option_world):
    costs, tx = option_world.costs, option_world.transactions
    assert {name: str(dtype) for name, dtype in costs.dtypes.items()} == {
        "customer_id": "str",
        "timestamp": "datetime64[us]",
        "kind": "str",
        "amount": "float64",
    }
    assert (costs["amount"] > 0).all()
    kinds = costs["kind"].value_counts()
    assert kinds["fulfilment"] == (tx["amount"] > 0).sum()
    assert kinds["return_processing"] == (tx["amount"] < 0).sum()
    interactions = option_world.interactions["type"].value_counts()
    for kind in ("support_ticket", "complaint", "campaign_contact"):
        assert kinds[kind] == interactions[kind], kind
    orders = tx[tx["amount"] > 0].merge(
        costs[costs["kind"] == "fulfilment"], on=["customer_id", "timestamp"], validate="1:1"
    )
    base = orders["channel"].map({"web": 4.5, "app": 4.0, "store": 1.2})
    formula = base + 0.6 * (orders["quantity"] - 1) + 0.018 * orders["amount_x"]
    assert np.allclose(orders["amount_y"], formula.round(2), atol=0.006)
    treated = option_world.campaigns[option_world.campaigns["group"] == "treatment"]
    retention = costs.merge(treated, on=["customer_id", "timestamp"])
    assert len(retention) == len(treated)
    assert np.allclose(retention["amount"], retention["cost"])
    assert (
        costs[["customer_id", "timestamp"]].sort_values(["customer_id", "timestamp"]).index
        == costs.index
    ).all()


def test_expected_cost_to_serve_matches_the_log(option_world):
    day = pd.Timestamp("2025-10-01")  # after the last campaign: no retention contact ahead
    expected = oracle(option_world.truth, day, HORIZON)
    assert np.allclose(
        expected["expected_profit"],
        expected["expected_margin"] - expected["expected_cost_to_serve"],
    )
    costs = option_world.costs
    window = costs[
        (costs["timestamp"] >= day) & (costs["timestamp"] < day + pd.Timedelta(days=HORIZON))
    ]
    observed = window.groupby("customer_id")["amount"].sum().reindex(expected.index, fill_value=0.0)
    error = observed.std() * np.sqrt(len(observed))
    assert abs(observed.sum() - expected["expected_cost_to_serve"].sum()) < 3 * error
    assert abs(observed.sum() / expected["expected_cost_to_serve"].sum() - 1) < 0.05
    assert observed.corr(expected["expected_cost_to_serve"], method="spearman") > 0.5


def test_cost_to_serve_follows_the_latent_traits(option_world):
    truth = option_world.truth.set_index("customer_id")
    handling = option_world.costs[option_world.costs["kind"].isin(["support_ticket", "complaint"])]
    end = truth["dropout_time"].fillna(pd.Timestamp(option_world.end))
    alive_days = (end - truth["birth"]).dt.days + 1
    per_day = handling.groupby("customer_id")["amount"].sum().reindex(truth.index, fill_value=0)
    per_day /= alive_days
    quartile = pd.qcut(truth["issue_propensity"], 4, labels=False)
    by_quartile = per_day.groupby(quartile).mean()
    assert by_quartile[3] > 3 * by_quartile[0]
    assert truth["service_cost_rate"].corr(truth["issue_propensity"], method="spearman") > 0.8
    rate = per_day.corr(truth["service_cost_rate"], method="spearman")
    assert rate > 0.2


def test_referrals_form_a_forest_of_earlier_engaged_referrers(option_world):
    customers = option_world.customers.set_index("customer_id")
    truth = option_world.truth.set_index("customer_id")
    referred = customers[customers["referred_by"].notna()]
    channel = customers["acquisition_channel"] == "referral"
    assert set(referred.index) <= set(customers.index[channel])
    assert len(referred) > 0.9 * channel.sum()
    assert referred["referred_by"].isin(customers.index).all()
    joined, referrer_joined = truth["birth"], truth["birth"].reindex(referred["referred_by"])
    assert (referrer_joined.to_numpy() < joined.reindex(referred.index).to_numpy()).all()
    starts, states = truth["path_start"], truth["path_state"]
    for customer, referrer in referred["referred_by"].items():
        moment = truth.at[customer, "birth"].to_datetime64()
        current = np.searchsorted(starts[referrer], moment, side="right") - 1
        assert states[referrer][current] == 0  # engaged when the referred customer joined
    counts = referred["referred_by"].value_counts()
    propensity = truth["referral_propensity"]
    assert np.average(propensity.reindex(counts.index), weights=counts) > propensity.mean() + 0.3
    assert truth["referred_by"].equals(customers["referred_by"])


def test_oracle_influence_sums_the_referred(option_world):
    day = pd.Timestamp("2025-06-01")
    influence = oracle_influence(option_world.truth, day, 365)
    expected = oracle(option_world.truth, day, 365)
    referrer = option_world.truth.set_index("customer_id")["referred_by"].reindex(expected.index)
    manual = expected["expected_margin"].groupby(referrer).sum()
    pd.testing.assert_series_equal(
        influence["referred_expected_margin"][manual.index], manual, check_names=False
    )
    assert influence["n_referred"].sum() == referrer.notna().sum()
    assert (
        (influence.drop(index=manual.index)[["n_referred", "referred_expected_margin"]] == 0)
        .all()
        .all()
    )
    assert "referred_expected_profit" in influence.columns
    with pytest.raises(ConfigError, match="referred_by"):
        oracle_influence(option_world.truth.drop(columns="referred_by"), day, 30)


def test_campaign_plans_are_checked():
    with pytest.raises(ConfigError, match="unknown setting 'budget'"):
        simulate_world(100, campaigns={"budget": 3})
    with pytest.raises(ConfigError, match="size must be a positive whole number or None"):
        simulate_world(100, campaigns={"size": 0})
    with pytest.raises(ConfigError, match="control_share"):
        simulate_world(100, campaigns=CampaignPlan(control_share=1.0))
    with pytest.raises(ConfigError, match="actions"):
        simulate_world(100, campaigns={"actions": ["coupon"]})
    with pytest.raises(ConfigError, match="dates"):
        simulate_world(100, campaigns={"dates": ["2027-01-01"]})
    with pytest.raises(ConfigError, match="dates must be YYYY-MM-DD"):
        simulate_world(100, campaigns={"dates": ["soon"]})
    with pytest.raises(ConfigError, match="action_shares"):
        simulate_world(100, campaigns={"actions": ["reminder_email"], "action_shares": {"x": 1}})
    world = simulate_world(
        1_500,
        seed=2,
        campaigns={
            "dates": ["2025-02-04", "2024-08-06"],
            "actions": ["reminder_email", "loyalty_reward"],
            "action_shares": {"reminder_email": 3, "loyalty_reward": 1},
            "eligibility": "all",
            "reach": 0.5,
            "size": 400,
        },
    )
    log = world.campaigns
    assert list(log["campaign_id"].unique()) == ["retention_2024-08-06", "retention_2025-02-04"]
    born = world.truth["birth"] < pd.Timestamp("2024-08-06")
    first = log[log["campaign_id"] == "retention_2024-08-06"]
    # half of everyone who has joined, alive or not, up to 400 a campaign
    assert 0.4 < len(first) / born.sum() < 0.6 or len(first) == 400
    assert log.groupby("campaign_id").size().max() <= 400
    assert 0.65 < (log["action"] == "reminder_email").mean() < 0.85


def test_cli_simulate_with_options(tmp_path):
    out = tmp_path / "world"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "simulate",
            "--customers",
            "600",
            "--out",
            str(out),
            "--costs",
            "--referrals",
            "--campaign-dates",
            "2024-09-03,2025-03-04",
            "--control-share",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    log = pd.read_parquet(out / "campaigns.parquet")
    assert sorted(log["campaign_id"].unique()) == ["retention_2024-09-03", "retention_2025-03-04"]
    assert (out / "costs.parquet").is_file()
    assert "referred_by" in pd.read_parquet(out / "customers.parquet").columns
    result = runner.invoke(app, ["simulate", "--customers", "600", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "customers.parquet",
        "interactions.parquet",
        "simulation.json",
        "transactions.parquet",
        "truth.parquet",
    ]
    before = {path.name: _sha256(path) for path in out.iterdir()}
    result = runner.invoke(
        app, ["simulate", "--customers", "600", "--out", str(out), "--control-share", "1.5"]
    )
    assert result.exit_code == 2 and "control_share" in result.output
    assert {path.name: _sha256(path) for path in out.iterdir()} == before
    result = runner.invoke(
        app, ["simulate", "--model", "bgnbd", "--out", str(tmp_path / "b"), "--costs"]
    )
    assert result.exit_code == 2 and "retail" in result.output
