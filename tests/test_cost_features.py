"""Profit features in the snapshots: the cost to serve over 90 and 365 days and in total, from
the cost events (the ``costs`` log and the costs of ``retain.yaml``), by hand and against the
P&L on every engine, point in time, and named in the fingerprint."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest

from retain.errors import ConfigError
from retain.features import FeatureStore, compute_features, load_repository, resolve_data
from test_features_values import REPO
from test_profitability import CUTOFF, RATES, WORLD, _frame

COSTS = ("cost_to_serve_90d", "cost_to_serve_365d", "cost_to_serve_total")


@pytest.fixture(scope="module")
def views():
    return [view for view in load_repository(REPO).views if view.source == "cost_events"]


def _charged(rates=RATES, **changes):
    tables = {**WORLD.tables, "costs": WORLD.logs["costs"], **changes}
    tables.pop("cost_events")
    return resolve_data(tables).charge(rates)


def test_cost_to_serve_by_hand_and_as_the_pnl_counts_it(engine, views):
    sources = _charged()
    march = date(2024, 3, 6)
    frame = compute_features(views, sources, [march, CUTOFF], engine=engine)
    at = frame[frame["as_of"] == pd.Timestamp(CUTOFF)].set_index("customer_id")[list(COSTS)]
    assert at.index.tolist() == ["A", "B", "C", "D", "F"]  # C: signed up, no cost yet
    # A in [2024-10-03, 2025-01-01): the support ticket (4); the rest of 2024 in 365 days
    assert at.loc["A"].tolist() == pytest.approx([4.0, 23.3, 23.3])
    assert at.loc["B"].tolist() == pytest.approx([0.0, 3.2, 3.2])
    assert at.loc["C"].tolist() == [0.0, 0.0, 0.0]
    assert at.loc["D"].tolist() == pytest.approx([1.66, 1.66, 1.66])  # gift wrap counts too
    # A on 2024-03-06: order, payment, fulfilment (Jan 2); complaint (Feb 1); Mar 5's order
    early = frame[frame["as_of"] == pd.Timestamp(march)].set_index("customer_id")
    assert early.loc["A", "cost_to_serve_90d"] == pytest.approx(6.0 + 10.0 + 1.8)
    for cutoff in (march, CUTOFF):
        pnl = engine.profit_and_loss(sources, cutoff, cost_rates=RATES).set_index("customer_id")
        totals = frame[frame["as_of"] == pd.Timestamp(cutoff)].set_index("customer_id")
        pd.testing.assert_series_equal(
            totals["cost_to_serve_total"], pnl["cost_to_serve"], check_names=False
        )


def test_without_costs_every_cost_feature_is_zero_and_the_fingerprint_unchanged(engine, views):
    bare = resolve_data({name: WORLD.tables[name] for name in ("customers", "transactions")})
    fingerprint = bare.fingerprint
    assert bare.charge({"order": 0.0, "support_ticket": 0}).fingerprint == fingerprint
    assert bare.tables["cost_events"].num_rows == 0
    frame = compute_features(views, bare, CUTOFF, engine=engine)
    # known from their signup (D, known from a purchase, is not: no view reads purchases here)
    assert frame["customer_id"].tolist() == ["A", "B", "C", "F"]
    assert (frame[list(COSTS)] == 0.0).all().all()


def test_changed_costs_change_the_fingerprint_and_rebuild_the_snapshot(tmp_path, engine):
    repo = tmp_path / "features"  # two views: a build on Spark takes seconds, not half a minute
    repo.mkdir()
    for name in ("costs.py", "customers.py"):
        shutil.copyfile(REPO / name, repo / name)
    store = FeatureStore(tmp_path / "store", repo)
    cutoffs = [date(2024, 7, 1), CUTOFF]  # two cutoffs: the sources are staged
    first = store.build(_charged(), cutoffs, engine=engine)
    again = store.build(_charged(), cutoffs, engine=engine)
    assert [r.built for r in again] == [False, False]
    dearer = store.build(_charged({**RATES, "order": 2.0}), cutoffs, engine=engine)
    assert [r.built for r in dearer] == [True, True]
    assert dearer[1].snapshot_id != first[1].snapshot_id
    old = pd.read_parquet(first[1].path).set_index("customer_id")
    new = pd.read_parquet(dearer[1].path).set_index("customer_id")
    orders = pd.Series({"A": 2, "B": 1, "C": 0, "D": 1, "F": 2})  # orders before the cutoff
    assert (new["cost_to_serve_total"] - old["cost_to_serve_total"]).to_dict() == pytest.approx(
        orders.astype(float).to_dict()
    )
    others = [name for name in old.columns if not name.startswith("cost_to_serve")]
    pd.testing.assert_frame_equal(new[others], old[others])


def test_a_kind_both_configured_and_logged_is_refused_when_building(views):
    with pytest.raises(ConfigError, match="counted twice"):
        compute_features(views, _charged({"fulfilment": 1.0}), CUTOFF)


def test_costs_at_or_after_the_cutoff_change_no_cost_feature(engine, views):
    """Leakage: deleting every transaction, interaction and logged cost at or after the cutoff
    changes no cost feature, configured costs included."""
    from retain.data.simulator import simulate_world

    world = simulate_world(400, seed=5, costs=True)
    cutoff = date(2025, 3, 1)
    tables = {"customers": world.customers, "transactions": world.transactions,
              "interactions": world.interactions, "costs": world.costs}  # fmt: skip
    stamp = pd.Timestamp(cutoff)
    before = {
        name: frame if name == "customers" else frame[frame["timestamp"] < stamp]
        for name, frame in tables.items()
    }
    assert (world.costs["timestamp"] >= stamp).any()
    rates = {"order": 0.5, "web_visit": 0.1, "shipping": 0.01}
    full = compute_features(views, resolve_data(tables).charge(rates), cutoff, engine=engine)
    cut = compute_features(views, resolve_data(before).charge(rates), cutoff, engine=engine)
    pd.testing.assert_frame_equal(full, cut, check_exact=True)
    assert (full["cost_to_serve_total"] > 0).mean() > 0.5


def test_the_leakage_check_of_costs_can_fail(views):
    """Guard: a cost logged at the cutoff moved a second earlier must be noticed."""
    later = _frame([("A", "2025-01-01 00:00", "fulfilment", 7.0)],
                   ["customer_id", "timestamp", "kind", "amount"])  # fmt: skip
    costs = pd.concat([WORLD.logs["costs"].to_pandas(), later], ignore_index=True)
    at = compute_features(views, _charged(costs=costs), CUTOFF).set_index("customer_id")
    costs.loc[costs.index[-1], "timestamp"] -= pd.Timedelta(seconds=1)
    leaked = compute_features(views, _charged(costs=costs), CUTOFF).set_index("customer_id")
    assert leaked.loc["A", "cost_to_serve_total"] == at.loc["A", "cost_to_serve_total"] + 7.0


def test_the_workspace_costs_reach_the_snapshots_and_a_change_rebuilds(make_workspace, world_dir):
    """``retain features build`` charges the ``costs:`` of ``retain.yaml``; changing them
    builds new snapshots whose cost features changed and nothing else did."""
    from typer.testing import CliRunner

    from retain.cli import app

    workspace = make_workspace("costs", data=world_dir)
    config = workspace / "retain.yaml"
    packaged = config.read_text()
    assert "  per_order: 0.0" in packaged

    def build(per_order: str):
        config.write_text(packaged.replace("  per_order: 0.0", f"  per_order: {per_order}"))
        args = ["features", "build", "--as-of", "2025-01-01", "--workspace", str(workspace)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return result.output

    def snapshot(built: int) -> pd.DataFrame:
        paths = sorted(workspace.rglob("snapshots/as_of=2025-01-01/*.parquet"))
        assert len(paths) == built
        return pd.read_parquet(max(paths, key=lambda path: path.stat().st_mtime_ns))

    assert "built" in build("0.0")
    free = snapshot(1)
    assert (free[list(COSTS)] == 0.0).all().all()
    assert "skipped" in build("0")  # no cost: the same fingerprint
    assert "built" in build("1.5")
    dear = snapshot(2)
    assert (dear["cost_to_serve_total"] == 1.5 * dear["frequency"]).all()  # per order
    # the net profit to date is less by the cost; it pays back no sooner
    lost = free["net_profit_to_date"] - dear["net_profit_to_date"]
    assert lost.to_numpy() == pytest.approx(1.5 * dear["frequency"].to_numpy())
    assert (dear["payback_months"].fillna(1e9) >= free["payback_months"].fillna(1e9)).all()
    profit = ("net_profit_to_date", "payback_months")
    others = [name for name in free.columns if name not in (*COSTS, *profit)]
    pd.testing.assert_frame_equal(dear[others], free[others])
