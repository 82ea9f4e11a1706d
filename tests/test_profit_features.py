"""Profit features in the snapshots: net profit to date and months to pay back the acquisition
cost, from the virtual source ``profit_events`` (margin, cost to serve, acquisition cost), by
hand and against the P&L on every engine, point in time, and the workspace's ``margin_rate``
in the fingerprint."""

from __future__ import annotations

import math
import shutil
from datetime import date

import pandas as pd
import pytest

from retain.engines.duckdb import DuckDBEngine
from retain.errors import ConfigError
from retain.features import (
    Entity,
    FeatureStore,
    FeatureView,
    PaybackMonths,
    Repository,
    compute_features,
    load_repository,
    resolve_data,
)
from test_features_values import REPO
from test_profitability import CUTOFF, RATES, WORLD

PROFIT = ("net_profit_to_date", "payback_months")
MARCH = date(2024, 3, 6)


@pytest.fixture(scope="module")
def views():
    return [view for view in load_repository(REPO).views if view.source == "profit_events"]


def _charged(rates=RATES, margin_rate=0.25, **changes):
    tables = {**WORLD.tables, "costs": WORLD.logs["costs"], **changes}
    tables.pop("cost_events")
    return resolve_data(tables).charge(rates, margin_rate)


def _at(frame: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    return frame[frame["as_of"] == pd.Timestamp(cutoff)].set_index("customer_id")


def test_the_default_repository_has_the_profit_view(views):
    assert [view.feature_names for view in views] == [PROFIT]


def test_profit_features_by_hand_and_as_the_pnl_counts_them(engine, views):
    sources = _charged()
    frame = compute_features(views, sources, [MARCH, CUTOFF], engine=engine)
    at = _at(frame, CUTOFF)
    assert at.index.tolist() == ["A", "B", "C", "D", "F"]  # E joins after the cutoff
    # A: margin 30 + 40 * 0.25 - 5 (the return); cost to serve 23.3; acquisition 5
    assert at.loc["A", "net_profit_to_date"] == pytest.approx(35.0 - 23.3 - 5.0)
    assert at.loc["A", "payback_months"] == 1  # month 0: 30 - 3 - 1 - 2 = 24 >= 5
    # B: margin 1; fulfilment 2, order 1, payment 0.2; acquisition 2: never paid back
    assert at.loc["B", "net_profit_to_date"] == pytest.approx(1.0 - 3.2 - 2.0)
    assert math.isnan(at.loc["B", "payback_months"])
    # C: signed up the day before the cutoff, nothing bought: the acquisition cost only
    assert at.loc["C", "net_profit_to_date"] == pytest.approx(-3.0)
    assert math.isnan(at.loc["C", "payback_months"])
    # D: no acquisition cost: nothing to pay back; the gift wrap (another kind) costs too
    assert at.loc["D", "net_profit_to_date"] == pytest.approx(2.0 - (0.16 + 1.0 + 0.5))
    assert at.loc["D", "payback_months"] == 0
    # F: month 0 (Jan 10): 4 - 1 - 0.4 = 2.6; month 3 (Apr 15): 12 - 1 - 1 = 10; 12.6 >= 10
    assert at.loc["F", "net_profit_to_date"] == pytest.approx(16.0 - 3.4 - 10.0)
    assert at.loc["F", "payback_months"] == 4
    early = _at(frame, MARCH)
    # A on 2024-03-06: margins 30 + 10; costs of Jan 2 (3 + 1 + 2), Feb 1 (10), Mar 5 (1.8)
    assert early.loc["A", "net_profit_to_date"] == pytest.approx(40.0 - 17.8 - 5.0)
    assert early.loc["A", "payback_months"] == 1
    assert early.loc["F", "net_profit_to_date"] == pytest.approx(2.6 - 10.0)
    assert math.isnan(early.loc["F", "payback_months"])  # not yet: paid back in April
    for cutoff in (MARCH, CUTOFF):
        pnl = engine.profit_and_loss(sources, cutoff, margin_rate=0.25, cost_rates=RATES)
        pnl = pnl.set_index("customer_id")
        found = _at(frame, cutoff)
        pd.testing.assert_series_equal(
            found["net_profit_to_date"], pnl["profit_to_date"], check_names=False
        )
        pd.testing.assert_series_equal(
            found["payback_months"], pnl["payback_months"], check_names=False
        )


def _simulated(world, cutoff: date | None = None) -> dict[str, pd.DataFrame]:
    tables = {"customers": world.customers, "transactions": world.transactions,
              "interactions": world.interactions, "costs": world.costs}  # fmt: skip
    if cutoff is None:
        return tables
    stamp = pd.Timestamp(cutoff)
    return {
        name: frame if name == "customers" else frame[frame["timestamp"] < stamp]
        for name, frame in tables.items()
    }


@pytest.fixture(scope="module")
def simulated():
    from retain.data.simulator import simulate_world

    return simulate_world(400, seed=5, costs=True)


SIMULATED_RATES = {"order": 0.5, "web_visit": 0.1, "shipping": 0.01}


def test_profit_features_equal_the_pnl_on_a_simulated_world(engine, views, simulated):
    cutoff = date(2025, 3, 1)
    sources = resolve_data(_simulated(simulated)).charge(SIMULATED_RATES, 0.35)
    frame = compute_features(views, sources, cutoff, engine=engine).set_index("customer_id")
    pnl = engine.profit_and_loss(sources, cutoff, margin_rate=0.35, cost_rates=SIMULATED_RATES)
    pnl = pnl.set_index("customer_id")
    assert len(pnl) > 200 and set(pnl.index) <= set(frame.index)
    found = frame.loc[pnl.index]
    pd.testing.assert_series_equal(
        found["net_profit_to_date"], pnl["profit_to_date"], check_names=False, check_exact=True
    )
    pd.testing.assert_series_equal(
        found["payback_months"], pnl["payback_months"], check_names=False, check_exact=True
    )
    paid = found["payback_months"]
    assert (paid > 1).sum() > 10 and paid.isna().sum() > 10  # both cases are exercised


@pytest.mark.parametrize("strategy", ["per_cutoff", "joined"])
def test_staged_and_plain_sources_and_both_strategies_agree(tmp_path, views, simulated, strategy):
    """The compiler reads what staging prepared (key codes, epoch days, millionths) or
    computes it: the same values, at one or at several cutoffs per query."""
    cutoffs = [date(2024, 9, 1), date(2025, 3, 1)]
    sources = resolve_data(_simulated(simulated)).charge(SIMULATED_RATES)
    plain = compute_features(views, sources, cutoffs, engine=DuckDBEngine(coded=False))
    store = FeatureStore(tmp_path / "store", Repository.from_views(views))
    built = store.build(sources, cutoffs, strategy=strategy)
    staged = pd.concat([pd.read_parquet(result.path) for result in built], ignore_index=True)
    pd.testing.assert_frame_equal(staged, plain, check_exact=True)


def test_events_at_or_after_the_cutoff_change_no_profit_feature(engine, views, simulated):
    """Leakage: deleting every transaction, interaction and logged cost at or after the cutoff
    changes neither feature (acquisition costs of customers who join later included)."""
    cutoff = date(2025, 3, 1)
    full = compute_features(
        views, resolve_data(_simulated(simulated)).charge(SIMULATED_RATES), cutoff, engine=engine
    )
    cut = compute_features(
        views,
        resolve_data(_simulated(simulated, cutoff)).charge(SIMULATED_RATES),
        cutoff,
        engine=engine,
    )
    pd.testing.assert_frame_equal(full, cut, check_exact=True)
    assert full["payback_months"].notna().mean() > 0.3


def test_the_leakage_check_of_profit_can_fail(views):
    """Guard: a transaction at the cutoff moved a second earlier must be noticed."""
    transactions = WORLD.tables["transactions"].to_pandas()
    late = transactions["timestamp"] == pd.Timestamp("2025-01-01")
    at = _at(compute_features(views, _charged(), CUTOFF), CUTOFF)
    transactions.loc[late, "timestamp"] -= pd.Timedelta(seconds=1)
    leaked = _at(compute_features(views, _charged(transactions=transactions), CUTOFF), CUTOFF)
    # A's order of 50 at the cutoff: margin 12.5, less order 1 and payment 1
    assert leaked.loc["A", "net_profit_to_date"] == pytest.approx(
        at.loc["A", "net_profit_to_date"] + 12.5 - 2.0
    )


def test_a_payback_on_another_source_is_refused():
    view = FeatureView(
        "wrong", Entity("customer"), "transactions", features=[PaybackMonths("payback_months")]
    )
    with pytest.raises(ConfigError, match="months to pay back read the 'profit_events' source"):
        view.check()


def test_the_margin_rate_changes_the_fingerprint_and_rebuilds_only_the_profit(tmp_path):
    repo = tmp_path / "features"  # two views: a build on Spark takes seconds
    repo.mkdir()
    for name in ("profit.py", "customers.py"):
        shutil.copyfile(REPO / name, repo / name)
    store = FeatureStore(tmp_path / "store", repo)
    default = _charged(margin_rate=0.3)
    assert default.fingerprint == _charged(margin_rate=None).fingerprint  # the default: as before
    first = store.build(default, [CUTOFF])
    assert not store.build(_charged(margin_rate=0.3), [CUTOFF])[0].built
    richer = store.build(_charged(margin_rate=0.5), [CUTOFF])
    assert richer[0].built and richer[0].snapshot_id != first[0].snapshot_id
    old = pd.read_parquet(first[0].path).set_index("customer_id")
    new = pd.read_parquet(richer[0].path).set_index("customer_id")
    # A's one transaction without a margin before the cutoff: 40 * (0.5 - 0.3)
    gained = (new["net_profit_to_date"] - old["net_profit_to_date"]).to_dict()
    assert gained == pytest.approx({"A": 8.0, "B": 0.0, "C": 0.0, "D": 0.0, "F": 0.0})
    others = [name for name in old.columns if name not in PROFIT]
    pd.testing.assert_frame_equal(new[others], old[others])
