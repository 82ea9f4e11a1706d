"""Every campaign an experiment: the value if retained, the eligible action with the highest
expected net gain, control groups, the campaign log, the treated-minus-control backtest (on
every engine) and its coverage of the simulator's true effects."""

from __future__ import annotations

import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from retain.cli import app
from retain.data.oracle import oracle_uplift
from retain.data.simulator import simulate_world
from retain.engines.duckdb import DuckDBEngine
from retain.features import resolve_data
from retain.models.clv.value import BTYDValue
from retain.serving.config import Action, Playbook, Rule
from retain.serving.experiment import (
    CONTROL,
    TREATMENT,
    Z95,
    campaign_log,
    control_positions,
    effect_table,
    hold_out,
    welch_interval,
)
from retain.serving.gains import (
    ALIVE_FLOOR,
    choose_actions,
    clv_if_retained,
    effect_columns,
    eligibility,
)

AS_OF = date(2025, 1, 1)
PLAYBOOK = Playbook(
    actions={
        "call": Action(cost=10.0, save_rate=0.30, description="A call."),
        "email": Action(cost=0.5, save_rate=0.05, description="An email."),
        "offer": Action(cost=4.0, save_rate=0.20, description="An offer."),
    },
    rules=(Rule("call", {"value_tier": ["high"]}), Rule("offer", {"segment": ["At Risk"]})),
    default="email",
)


# --------------------------------------------------------------------------- the list


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "value_tier": ["high", "high", "low", "low", "high"],
            "segment": ["At Risk", "Loyal", "At Risk", "Loyal", "Loyal"],
        }
    )


def test_rules_open_actions_and_the_highest_expected_net_gain_wins():
    frame = _customers()
    allowed = eligibility(frame, pd.Series(["x"] * 5), PLAYBOOK)
    assert allowed["email"].all()  # the default is open to everyone
    assert allowed["call"].tolist() == [True, True, False, False, True]
    assert allowed["offer"].tolist() == [True, False, True, False, False]
    risk = np.array([100.0, 100.0, 100.0, 100.0, 20.0])
    chosen = choose_actions(allowed, PLAYBOOK, np.full(5, 0.5), risk)
    # gains: call 30-10=20, offer 20-4=16, email 5-0.5=4.5; customer 5: call -4, email 0.5
    assert chosen["recommended_action"].tolist() == ["call", "call", "offer", "email", "email"]
    np.testing.assert_allclose(chosen["expected_net_gain"], [20.0, 20.0, 16.0, 4.5, 0.5])
    np.testing.assert_allclose(chosen["expected_incremental_margin"], [30, 30, 20, 5, 1])
    np.testing.assert_allclose(chosen["expected_churn_effect"], [-0.15, -0.15, -0.1, -0.025,
                                                                 -0.025])  # fmt: skip
    assert not chosen["sleeping_dog"].any()


def test_an_uplift_models_effects_replace_the_prior_and_find_sleeping_dogs():
    frame = _customers()
    allowed = eligibility(frame, pd.Series(["x"] * 5), PLAYBOOK)
    effects = pd.DataFrame(
        {
            effect_columns("call")[0]: [5.0, 50.0, 0.0, 0.0, -3.0],
            effect_columns("call")[1]: [-0.01, -0.2, 0.0, 0.0, 0.02],
            effect_columns("email")[0]: [1.0, 1.0, -2.0, 3.0, -1.0],
            effect_columns("email")[1]: [0.0, 0.0, 0.01, -0.02, 0.01],
        }
    )  # no "offer": it keeps the prior
    risk = np.full(5, 100.0)
    chosen = choose_actions(allowed, PLAYBOOK, np.full(5, 0.5), risk, effects)
    # customer 1: call -5, offer 16 (prior), email 0.5; customer 2: call 40
    assert chosen["recommended_action"].tolist() == ["offer", "call", "offer", "email", "email"]
    np.testing.assert_allclose(chosen["expected_net_gain"], [16.0, 40.0, 16.0, 2.5, -1.5])
    np.testing.assert_allclose(chosen["expected_churn_effect"], [-0.1, -0.2, -0.1, -0.02, 0.01])
    # customer 5 loses margin with every action open to them: a sleeping dog
    assert chosen["sleeping_dog"].tolist() == [False, False, False, False, True]


def test_the_summary_says_whether_gains_are_assumptions_or_measured():
    from retain.serving.gains import gains_source

    prior = gains_source(PLAYBOOK, None)
    assert prior["source"] == "playbook prior" and not prior["measured"]
    assert "assumptions, not measurements" in prior["note"]
    model = {"name": "retain-uplift", "version": "3", "actions": ["call", "email"]}
    measured = gains_source(PLAYBOOK, model)
    assert measured["source"] == "uplift model retain-uplift v3" and measured["measured"]
    assert measured["actions"] == {"call": "uplift model retain-uplift v3",
                                   "email": "uplift model retain-uplift v3",
                                   "offer": "playbook prior"}  # fmt: skip
    assert "offer use the playbook prior" in measured["note"]
    # the basis each action's predicted margin is reckoned on, which the backtest measures on
    assert prior["margin_basis"]["call"] == {"days": None, "discount_rate_monthly": 0.0}
    dated = gains_source(PLAYBOOK, {**model, "horizon_days": 90}, clv_days=365,
                         discount_rate_monthly=0.01)  # fmt: skip
    assert dated["margin_basis"] == {
        "call": {"days": 90, "discount_rate_monthly": 0.0},
        "email": {"days": 90, "discount_rate_monthly": 0.0},
        "offer": {"days": 365, "discount_rate_monthly": 0.01},
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_value_if_retained_divides_by_the_probability_of_being_alive():
    rng = np.random.default_rng(4)
    rows = 400
    age = rng.uniform(60, 700, rows)
    frequency = rng.poisson(3, rows).astype(float)
    recency = np.where(frequency > 0, age * rng.uniform(0.05, 1, rows), 0.0)
    X = pd.DataFrame(
        {
            "btyd_frequency": frequency,
            "btyd_recency": recency,
            "btyd_T": age,
            "btyd_monetary_value": np.where(frequency > 0, rng.gamma(4, 10, rows), np.nan),
        }
    )
    model = BTYDValue(horizon_days=365).fit(X, margin_share=0.3)
    clv = model.predict(X)
    values, method = clv_if_retained(model, X, clv)
    alive = model.purchase_model_.probability_alive(frequency, recency, age)
    assert method == "clv / P(alive)"
    np.testing.assert_allclose(values, clv / np.clip(alive, ALIVE_FLOOR, 1))
    assert (values >= clv).all()
    np.testing.assert_allclose(values[frequency == 0], clv[frequency == 0])  # alive for sure
    assert (values[alive < 0.5] > 2 * clv[alive < 0.5]).all()
    plain, method = clv_if_retained(object(), X, clv)  # no BTYD side: the CLV as it is
    assert method == "clv" and np.array_equal(plain, clv)


# --------------------------------------------------------------------------- control groups


def test_control_groups_are_a_seeded_share_of_each_actions_selected_customers():
    rng = np.random.default_rng(0)
    ids = np.array([f"c{i:04d}" for i in range(1000)], dtype=object)
    actions = rng.choice(["call", "email", "offer"], 1000).astype(object)
    chosen = rng.random(1000) < 0.6
    rank = rng.permutation(1000)
    groups = hold_out(ids, actions, chosen, 0.1, 42, AS_OF, rank)
    assert (groups[~chosen] == None).all()  # noqa: E711 (element-wise)
    for action in ("call", "email", "offer"):
        members = chosen & (actions == action)
        held = int((groups[members] == CONTROL).sum())
        assert held == int(np.floor(0.1 * members.sum() + 0.5))
        assert set(groups[members]) == {TREATMENT, CONTROL}
        # blocks of 10 consecutive customers by rank: one control in each full block
        by_rank = groups[np.flatnonzero(members)[np.argsort(rank[members])]]
        full = len(by_rank) // 10 * 10
        assert ((by_rank[:full] == CONTROL).reshape(-1, 10).sum(axis=1) == 1).all()
    shuffled = rng.permutation(1000)  # any row order: the same draw
    again = hold_out(ids[shuffled], actions[shuffled], chosen[shuffled], 0.1, 42, AS_OF,
                     rank[shuffled])  # fmt: skip
    assert again.tolist() == groups[shuffled].tolist()
    assert hold_out(ids, actions, chosen, 0.1, 42, AS_OF, rank).tolist() == groups.tolist()
    other = hold_out(ids, actions, chosen, 0.1, 43, AS_OF, rank)
    assert other.tolist() != groups.tolist()
    later = hold_out(ids, actions, chosen, 0.1, 42, date(2025, 1, 2), rank)
    assert later.tolist() != groups.tolist()
    none = hold_out(ids, actions, chosen, 0.0, 42, AS_OF, rank)
    assert set(none[chosen]) == {TREATMENT}
    by_id = hold_out(ids, actions, chosen, 0.1, 42, AS_OF)  # no order: blocks follow the ids
    assert (by_id == CONTROL).sum() == (groups == CONTROL).sum()
    with pytest.raises(ValueError, match="order has 3 values for 1000"):
        hold_out(ids, actions, chosen, 0.1, 42, AS_OF, rank[:3])


@pytest.mark.parametrize("share", [0.0, 0.01, 0.05, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.9, 0.99])
def test_control_counts_are_exact_per_action_and_per_block(share):
    """``round(share x n)`` held out of ``n`` (half up), every size from 0 to 60 and a few
    large ones; each block of ``ceil(1 / share)`` holds its share to within one customer."""
    rng = np.random.default_rng(7)
    for size in [*range(61), 99, 101, 1000, 1001]:
        held = control_positions(size, share, rng)
        assert len(held) == int(np.floor(share * size + 0.5)), (size, share)
        assert len(set(held.tolist())) == len(held)
        assert ((held >= 0) & (held < size)).all()
        if share == 0 or size == 0:
            continue
        block = int(np.ceil(1 / share - 1e-9))
        counts = np.bincount(held // block, minlength=-(-size // block))
        sizes = np.minimum(block, size - block * np.arange(len(counts)))
        assert (np.abs(counts - share * sizes) < 1).all(), (size, share, counts)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        control_positions(10, 1.0, rng)


def test_blocked_control_groups_are_balanced_on_risk_and_value():
    """Over 200 seeds, blocks by rank (here: the prior's gain, save rate x churn probability x
    value) and, within strata of rank, by churn probability keep the treated and control means
    of churn probability and value far closer than complete randomisation within the action
    does (its 14% churn gap in a test world)."""
    rng = np.random.default_rng(1)
    size = 400
    probability = rng.beta(2, 5, size)
    value = rng.lognormal(5, 1, size)
    gain = 0.2 * probability * value - 4.0
    rank = np.argsort(np.argsort(-gain))
    ids = np.array([f"c{i:03d}" for i in range(size)], dtype=object)
    actions = np.full(size, "offer", dtype=object)
    chosen = np.ones(size, dtype=bool)

    def gaps(control: np.ndarray) -> tuple[float, float]:
        return tuple(
            abs(column[control].mean() - column[~control].mean()) / column.mean()
            for column in (probability, value)
        )

    blocked, complete = [], []
    for seed in range(200):
        groups = hold_out(ids, actions, chosen, 0.1, seed, AS_OF, rank, probability)
        blocked.append(gaps(groups == CONTROL))
        drawn = np.zeros(size, dtype=bool)
        drawn[np.random.default_rng(seed).permutation(size)[:40]] = True
        complete.append(gaps(drawn))
    blocked, complete = np.array(blocked), np.array(complete)
    print(f"mean relative gaps (churn p., value): blocked {blocked.mean(axis=0)}, "
          f"complete {complete.mean(axis=0)}")  # fmt: skip
    # churn probability 0.020 against 0.072; value 0.100 against 0.162: a block still draws
    # which of its customers a heavy-tailed value's largest falls to
    assert blocked.mean(axis=0)[0] < 0.4 * complete.mean(axis=0)[0]
    assert blocked.mean(axis=0)[1] < 0.75 * complete.mean(axis=0)[1]
    assert (blocked.max(axis=0) < complete.max(axis=0)).all()


def test_welch_intervals_cover_the_effect_of_a_blocked_assignment():
    """Blocking removes variance Welch's standard error still counts: over 400 assignments of
    one set of 600 customers with known potential outcomes (an effect that grows with risk),
    the 95% interval covers the true mean effect at least about 95% of the time."""
    rng = np.random.default_rng(3)
    size = 600
    probability = rng.beta(2, 4, size)
    value = rng.lognormal(4, 0.8, size)
    untreated = value * (rng.random(size) > probability)
    treated = value * (rng.random(size) > probability * 0.7)
    truth = float((treated - untreated).mean())
    rank = np.argsort(np.argsort(-probability * value))
    ids = np.array([f"c{i:03d}" for i in range(size)], dtype=object)
    actions = np.full(size, "call", dtype=object)
    covered = []
    for seed in range(400):
        groups = hold_out(ids, actions, np.ones(size, bool), 0.2, seed, AS_OF, rank, probability)
        control = groups == CONTROL
        outcome = np.where(control, untreated, treated)

        def sums(rows: np.ndarray) -> tuple[float, float, float]:
            return float(rows.size), float(rows.sum()), float((rows * rows).sum())

        _, low, high = welch_interval(sums(outcome[~control]), sums(outcome[control]))
        covered.append(low <= truth <= high)
    print(f"coverage of the blocked assignment: {np.mean(covered):.3f}")
    assert np.mean(covered) >= 0.93


def test_campaign_log_is_in_the_data_contracts_campaigns_format():
    selected = pd.DataFrame(
        {
            "rank": [2, 1, 3],
            "customer_id": ["b", "a", "c"],
            "recommended_action": ["call", "email", "call"],
            "group": [CONTROL, TREATMENT, TREATMENT],
            "action_cost": [10.0, 0.5, 10.0],
        }
    )
    log = campaign_log(selected, AS_OF)
    assert log.to_dict(orient="list") == {
        "customer_id": ["a", "b", "c"],
        "timestamp": ["2025-01-01"] * 3,
        "campaign_id": ["retain-2025-01-01"] * 3,
        "action": ["email", "call", "call"],
        "group": [TREATMENT, CONTROL, TREATMENT],
        "cost": [0.5, 0.0, 10.0],  # the control group is not contacted: it costs nothing
    }


# --------------------------------------------------------------------------- measuring


def test_welch_interval_matches_scipys_unequal_variance_test():
    rng = np.random.default_rng(1)
    treated, control = rng.normal(3.0, 2.0, 50), rng.normal(2.0, 5.0, 80)

    def sums(values):
        return len(values), values.sum(), (values**2).sum()

    difference, low, high = welch_interval(sums(treated), sums(control))
    statistic = stats.ttest_ind(treated, control, equal_var=False).statistic
    assert difference == pytest.approx(treated.mean() - control.mean())
    assert (high - low) / 2 == pytest.approx(Z95 * difference / statistic)
    assert np.isnan(welch_interval(sums(treated), sums(control[:1]))[1])
    assert np.isnan(welch_interval(sums(treated), (0, 0.0, 0.0))[0])


def _transactions() -> pd.DataFrame:
    """Purchases and a refund around AS_OF, margins given (a: twice, b: a refund)."""
    rows = [
        ("a", "2024-12-20", 10.0, 3.0),  # before the cutoff: not counted
        ("a", "2025-01-05", 20.0, 6.0),
        ("a", "2025-02-10", 30.0, 9.0),  # after the 30-day churn window, inside 60 days
        ("b", "2025-01-10", 50.0, 15.0),
        ("b", "2025-01-20", -50.0, -15.0),
        ("c", "2025-02-15", 40.0, 12.0),  # not a purchase within 30 days: churned
        ("e", "2025-01-02", 10.0, None),  # margin from the rate: 3
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "margin"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
    return frame


def test_experiment_tallies_by_hand_on_every_engine(engine):
    """Churn over 30 days, margin over 60, every assigned customer counted (d has no
    transaction at all), summed per action, decile and group."""
    assignments = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "action": ["call", "call", "call", "call", "email"],
            "decile": [1, 1, 2, 2, 1],
            "group": [TREATMENT, CONTROL, TREATMENT, TREATMENT, CONTROL],
        }
    )
    sources = resolve_data({"transactions": _transactions()})
    tallies = engine.experiment_tallies(
        sources, assignments, AS_OF, churn_days=30, margin_days=60, margin_rate=0.3
    )
    expected = pd.DataFrame(
        {
            "action": ["call", "call", "call", "email"],
            "decile": [1, 1, 2, 1],
            "group": [CONTROL, TREATMENT, TREATMENT, CONTROL],
            "customers": [1, 1, 2, 1],
            "churned_sum": [0.0, 0.0, 2.0, 0.0],
            "margin_sum": [0.0, 15.0, 12.0, 3.0],
            "margin_squares": [0.0, 225.0, 144.0, 9.0],
        }
    )
    columns = list(expected.columns)
    pd.testing.assert_frame_equal(tallies[columns], expected, check_dtype=False)
    assert (tallies["churned_squares"] == tallies["churned_sum"]).all()


def test_effect_table_per_action_per_decile_and_overall():
    tallies = pd.DataFrame(
        {
            "action": ["call", "call", "email", "email"],
            "decile": [1, 1, 2, 2],
            "group": [TREATMENT, CONTROL, TREATMENT, CONTROL],
            "customers": [4, 4, 2, 2],
            "churned_sum": [1.0, 2.0, 0.0, 1.0],
            "churned_squares": [1.0, 2.0, 0.0, 1.0],
            "margin_sum": [40.0, 20.0, 10.0, 6.0],
            "margin_squares": [500.0, 200.0, 60.0, 20.0],
        }
    )
    predicted = pd.DataFrame(
        {
            "action": ["call"] * 8 + ["email"] * 4,
            "decile": [1] * 8 + [2] * 4,
            "expected_incremental_margin": [4.0] * 8 + [1.0] * 4,
            "expected_churn_effect": [-0.1] * 8 + [-0.02] * 4,
        }
    )
    table = effect_table(tallies, predicted)
    assert table[["action", "decile"]].values.tolist() == [
        ["call", 0], ["email", 0], ["all", 1], ["all", 2], ["all", 0]
    ]  # fmt: skip
    call = table.iloc[0]
    assert (call.treated, call.control) == (4, 4)
    assert call.realised_incremental_margin == pytest.approx(10.0 - 5.0)
    assert call.realised_churn_effect == pytest.approx(0.25 - 0.5)
    assert call.predicted_incremental_margin == 4.0
    overall = table.iloc[-1]
    assert overall.realised_incremental_margin == pytest.approx(50 / 6 - 26 / 6)
    assert overall.predicted_incremental_margin == pytest.approx(36 / 12)
    assert overall.margin_low < overall.realised_incremental_margin < overall.margin_high


#: Seeds of the coverage check, and the share of intervals that must cover the truth.
COVERAGE_SEEDS = 20
CAMPAIGN_DAY = "2025-01-06"
HORIZON = 90


def _experiment_of(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One small world with one randomised campaign (half held out): the treated-minus-control
    table per action, and the oracle's true mean effect over the enrolled customers."""
    plan = {"dates": [CAMPAIGN_DAY], "control_share": 0.5}
    world = simulate_world(3000, seed=seed, start="2024-01-01", end="2025-06-01", campaigns=plan)
    enrolled = world.campaigns.assign(decile=1)
    sources = resolve_data({"transactions": world.transactions})
    tallies = DuckDBEngine().experiment_tallies(
        sources, enrolled, date.fromisoformat(CAMPAIGN_DAY), churn_days=HORIZON,
        margin_days=HORIZON,
    )  # fmt: skip
    predicted = enrolled.assign(expected_incremental_margin=np.nan, expected_churn_effect=np.nan)
    table = effect_table(tallies, predicted, strata=("action",)).set_index("action")
    truth = oracle_uplift(world.truth, CAMPAIGN_DAY, HORIZON)
    true = pd.DataFrame(
        {
            action: truth.xs(action, level="action")
            .reindex(rows["customer_id"])[["incremental_margin", "churn_effect"]]
            .mean()
            for action, rows in enrolled.groupby("action")
        }
    ).T
    return table.drop(index="all"), true


def test_treated_minus_control_covers_the_true_effect_in_about_95_percent_of_seeds():
    """Over 20 seeds x 5 actions (100 intervals), the 95% intervals of the backtest's
    treated-minus-control estimate cover the oracle's true mean effect over the enrolled
    customers about 95% of the time (churn exactly its estimand; margin as the oracle counts
    it, returns with their order). Fewer than 85 of 100 would be 4.6 standard errors short."""
    covered = {"churn": [], "margin": []}
    for seed in range(COVERAGE_SEEDS):
        table, true = _experiment_of(seed)
        true = true.loc[table.index]
        covered["churn"] += list(
            (table["churn_low"] <= true["churn_effect"])
            & (true["churn_effect"] <= table["churn_high"])
        )
        covered["margin"] += list(
            (table["margin_low"] <= true["incremental_margin"])
            & (true["incremental_margin"] <= table["margin_high"])
        )
    coverage = {name: float(np.mean(flags)) for name, flags in covered.items()}
    print(f"coverage over {COVERAGE_SEEDS} seeds: {coverage}")
    assert len(covered["churn"]) == 5 * COVERAGE_SEEDS
    assert coverage["churn"] >= 0.85 and coverage["margin"] >= 0.85


# --------------------------------------------------------------------------- end to end


def _campaigns_csv(rows: list[str]) -> str:
    return "customer_id,timestamp,campaign_id,action,group,cost\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def scored_list(trained_models, trained_workspace):
    from retain.serving import score

    out = trained_workspace / "lists" / "experiment"
    return score(date(2026, 1, 1), workspace=trained_workspace, out=out, capacity=400)


def test_the_list_holds_out_control_groups_and_logs_the_campaign(scored_list):
    frame, summary = scored_list.frame, scored_list.summary
    selected = frame[frame["selected"]]
    assert summary["gains"]["source"] == "playbook prior" and not summary["gains"]["measured"]
    assert "assumptions, not measurements" in summary["gains"]["note"]
    experiment = summary["experiment"]
    assert experiment["control_share"] == 0.1
    for action, rows in selected.groupby("recommended_action"):
        held = int((rows["group"] == CONTROL).sum())
        assert held == int(np.floor(0.1 * len(rows) + 0.5))
        assert experiment["by_action"][action] == {TREATMENT: len(rows) - held, CONTROL: held}
    assert summary["counts"]["control"] == experiment["control"] > 0
    contacts = pd.read_csv(scored_list.out / "contacts.csv", dtype={"customer_id": str})
    treated = selected[selected["group"] == TREATMENT]
    assert contacts["customer_id"].tolist() == treated["customer_id"].tolist()
    log = pd.read_csv(scored_list.out / "campaign_log.csv", dtype={"customer_id": str})
    assert log.columns.tolist() == ["customer_id", "timestamp", "campaign_id", "action",
                                    "group", "cost"]  # fmt: skip
    assert log["customer_id"].tolist() == selected["customer_id"].tolist()
    assert (log.loc[log["group"] == CONTROL, "cost"] == 0).all()
    assert set(log["campaign_id"]) == {"retain-2026-01-01"}


def test_the_campaign_log_recorded_back_passes_the_data_contract(scored_list, world_dir, tmp_path):
    from retain.data import load_dataset

    data = _with_campaigns(world_dir, tmp_path, (scored_list.out / "campaign_log.csv").read_text())
    dataset = load_dataset(data)
    assert len(dataset.campaigns) == int(scored_list.frame["selected"].sum())
    assert set(dataset.campaigns["group"]) == {TREATMENT, CONTROL}


def _with_campaigns(world_dir, tmp_path, text: str):
    data = tmp_path / "data"
    shutil.copytree(world_dir, data)
    (data / "campaigns.csv").write_text(text)
    return data


@pytest.mark.parametrize(
    ("rows", "column", "words", "sample"),
    [
        (["C0000001,2025-06-01,spring,free_pony,treatment,1"], "action",
         "actions the playbook", "free_pony"),
        (["C0000001,2026-01-01,winter,reminder_email,treatment,0.3"], "timestamp",
         "on or after the cutoff 2026-01-01", "winter on 2026-01-01"),
    ],
    ids=["unknown-action", "after-the-cutoff"],
)  # fmt: skip
def test_bad_campaign_logs_exit_2_and_write_nothing(
    trained_models, trained_workspace, world_dir, tmp_path, rows, column, words, sample
):
    data = _with_campaigns(world_dir, tmp_path, _campaigns_csv(rows))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["score", "--workspace", str(trained_workspace), "--data", str(data),
              "--out", str(out), "--as-of", "2026-01-01"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert f"campaigns ({data / 'campaigns.csv'}), column '{column}'" in text
    assert words in text and sample in text
    assert not out.exists()


@pytest.mark.parametrize("share", ["1", "-0.1", "1.5"])
def test_a_control_share_outside_0_1_is_refused(trained_workspace, tmp_path, share):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["score", "--workspace", str(trained_workspace), "--out", str(out),
              "--control-share", share],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--control-share must be a share in [0, 1)" in " ".join(result.output.split())
    assert not out.exists()


def test_backtest_measures_treated_minus_control_per_action_and_decile(
    scored_list, trained_workspace, tmp_path
):
    """The list at the end of the data cannot be backtested yet; one scored 200 days before
    the end can, and its table has a row per action, per decile and overall."""
    from retain.serving import score
    from retain.serving.backtest import backtest, write_backtest

    out = trained_workspace / "lists" / "past"
    past = score(date(2025, 5, 1), workspace=trained_workspace, out=out, capacity=600,
                 control_share=0.3)  # fmt: skip
    result = backtest(out, workspace=trained_workspace, allow_partial=True)
    table = result.experiment
    selected = past.frame[past.frame["selected"]]
    actions = sorted(set(selected["recommended_action"]))
    assert table.loc[table["decile"] == 0, "action"].tolist() == [*actions, "all"]
    assert table.loc[table["action"] == "all", "decile"].tolist() == [*range(1, 11), 0]
    overall = table.iloc[-1]
    assert overall.treated + overall.control == len(selected)
    assert overall.control == int((selected["group"] == CONTROL).sum())
    assert overall.margin_low <= overall.realised_incremental_margin <= overall.margin_high
    assert overall.predicted_incremental_margin == pytest.approx(
        selected["expected_incremental_margin"].mean()
    )
    paths = write_backtest(result, tmp_path / "backtest")
    written = pd.read_csv(paths["experiment"])
    assert len(written) == len(table)
    payload = json.loads(paths["summary"].read_text())
    assert "Welch" in payload["experiment"]["method"]
    assert len(payload["experiment"]["rows"]) == len(table)
    # written beside the list, the report shows the measured effect per action
    from retain.reports.html import render_report

    write_backtest(result, out)
    page = render_report(out, out / "report.html").read_text()
    assert "Measured effect per action not available" not in page
    assert "Realised margin [95% interval]" in page


# --------------------------------------------------------------------------- report


def test_profit_curve_by_hand_and_a_qini_plot_of_the_measured_curve():
    from retain.metrics.uplift import qini_curve
    from retain.reports.uplift import profit_curve, qini_plot

    profit = profit_curve([5.0, -2.0, np.nan, 3.0])
    assert profit["profit"].tolist() == [0.0, 5.0, 8.0, 8.0, 6.0]
    counts, qini = qini_curve([1.0, 0.0, 0.0, 1.0], [3, 2, 1, 0], [True, False, True, False])
    [ranking, random] = qini_plot(counts, qini).axes[0].get_lines()
    assert ranking.get_ydata().tolist() == qini.tolist()
    assert random.get_ydata().tolist() == [0.0, qini[-1]]


def test_report_says_where_gains_come_from_and_shows_effects_curve_and_sleeping_dogs(
    scored_list, tmp_path
):
    from retain.reports.html import report_html

    frame, summary = scored_list.frame.copy(), scored_list.summary
    page = report_html(frame, summary)
    assert "What contacts add" in page and "assumptions, not measurements" in page
    assert "Measured effect per action not available yet" in page
    assert "predicted profit peaks at" in page and "Incremental profit curve" in page
    assert "None predicted" in page  # the prior never predicts a negative effect
    frame.loc[frame.index[-3:], "sleeping_dog"] = True
    backtest = {"experiment": {"rows": [
        {"action": "reminder_email", "decile": 0, "treated": 90, "control": 10,
         "predicted_incremental_margin": 1.5, "realised_incremental_margin": 2.25,
         "margin_low": -1.0, "margin_high": 5.5, "predicted_churn_effect": -0.01,
         "realised_churn_effect": -0.02, "churn_low": -0.1, "churn_high": 0.06},
        {"action": "all", "decile": 3, "treated": 9, "control": 1},
    ]}}  # fmt: skip
    page = report_html(frame, summary, backtest=backtest)
    assert "2.25 [-1.00, 5.50]" in page and "-2.0% [-10.0%, +6.0%]" in page
    assert "3 customers are predicted to react" in page
    assert frame["customer_id"].iloc[-1] in page


class RecencyEffects:
    """An uplift model written by hand with the interface of
    ``retain.models.uplift.UpliftModel`` (``actions_``, ``predict_effects``): a reminder
    helps recent buyers and loses the long absent, an offer helps after two months away."""

    actions_ = ("reminder_email", "win_back_offer")

    def predict_effects(self, X: pd.DataFrame) -> pd.DataFrame:
        days = X["recency_days"].to_numpy(float)
        return pd.DataFrame(
            {
                "incremental_margin__reminder_email": 5.0 - days / 10,
                "churn_effect__reminder_email": np.where(days > 50, 0.01, -0.02),
                "incremental_margin__win_back_offer": np.where(days > 60, 20.0, -1.0),
                "churn_effect__win_back_offer": np.where(days > 60, -0.05, 0.0),
            },
            index=X.index,
        )


def test_an_uplift_champions_effects_rank_the_list(trained_models, trained_workspace, monkeypatch):
    """With an uplift champion, the list takes its effects for the actions it knows (the
    prior for the others), says the gains are measured, and finds sleeping dogs."""
    import importlib

    scoring = importlib.import_module("retain.serving.score")  # the module, not the function

    champion = {"name": "retain-uplift", "version": "7", "run_id": "r",
                "actions": list(RecencyEffects.actions_), "model": RecencyEffects()}  # fmt: skip
    monkeypatch.setattr(scoring, "load_uplift", lambda alias: champion)
    out = trained_workspace / "lists" / "uplift"
    result = scoring.score(date(2026, 1, 1), workspace=trained_workspace, out=out, capacity=400)
    frame = pd.read_parquet(out / "retention_priority.parquet")
    assert result.summary["gains"]["source"] == "uplift model retain-uplift v7"
    assert result.summary["gains"]["measured"]
    days = frame["recency_days"].to_numpy(float)
    email = frame["recommended_action"] == "reminder_email"
    np.testing.assert_allclose(
        frame.loc[email, "expected_incremental_margin"], 5.0 - days[email] / 10
    )
    offer = frame["recommended_action"] == "win_back_offer"
    assert (days[offer] > 60).all()  # the model's offer only pays after two months away
    others = ~(email | offer)
    np.testing.assert_allclose(
        frame.loc[others, "expected_incremental_margin"],
        frame.loc[others, "value_at_risk"] * frame.loc[others, "save_rate"],
    )
    # only the reminder is open to them and it loses margin: sleeping dogs, never selected
    dogs = frame["sleeping_dog"]
    assert dogs.any() and (frame.loc[dogs, "expected_incremental_margin"] < 0).all()
    assert not frame.loc[dogs, "selected"].any()


def test_a_customer_worth_less_than_nothing_is_no_sleeping_dog():
    """With costs a CLV (and the value at risk) can be negative: the prior's gains are then
    negative, the customer is not worth a contact, but no contact is predicted to harm them."""
    frame = _customers()
    allowed = eligibility(frame, pd.Series(["x"] * 5), PLAYBOOK)
    risk = np.array([100.0, -40.0, 5.0, -1.0, 0.0])
    chosen = choose_actions(allowed, PLAYBOOK, np.full(5, 0.5), risk)
    assert (chosen["expected_net_gain"].to_numpy()[[1, 3]] < 0).all()
    assert not chosen["sleeping_dog"].any()
