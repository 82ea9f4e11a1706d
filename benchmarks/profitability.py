"""How well ``retain profitability`` recovers the simulator's true profitability.

Run by hand::

    .venv/bin/python benchmarks/profitability.py                     # 20,000 customers, seed 0
    .venv/bin/python benchmarks/profitability.py --customers 8000 --seed 0 1 2

Simulates a world with cost to serve and referrals into a temporary workspace, trains the
churn, CLV and segment models (``retain train all``), writes the P&L at the end of the data and
compares it with the oracle's expected margin and profit over the CLV horizon (365 days) at that
cutoff:

- normalized Gini of the margin CLV (``predicted_margin``) against the true expected margin, and
  of the predicted future profit against the true expected profit (the done-when of issue 20:
  profit at least as good as margin);
- where that Gini is lost: the predicted margin less the *true* expected cost, and the true
  expected margin less the predicted cost (both discounted as the predictions are), against
  the true expected profit;
- the share of profit-destroying customers: predicted future profit below 0 against true
  expected profit below 0 (among the active customers, the models' population, and among all),
  and over the lifetime (profit to date + future) against profit to date + the true future;
- how the CLV model predicts the cost (``cost_method``: its regressor or the cost share, with
  the validation Gini of each) and, with the share, the Gini the regressor would have given.

The default features hold what the cost share needs (``net_profit_to_date``,
``cost_to_serve_total`` and ``acquisition_cost`` give the margin to date; see
:func:`retain.models.clv.value.cost_share`), so validation chooses between it and the cost
regressor.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retain.data.oracle import oracle
from retain.data.simulator import simulate_world, write_world
from retain.features import open_store, with_categories
from retain.features.store import categories
from retain.metrics.model import normalized_gini
from retain.mlflow import tracking
from retain.models.clv.value import discount_schedule
from retain.serving.champions import load_champion
from retain.serving.profitability import profitability
from retain.training.jobs import run_training
from retain.workspace import load_workspace_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one run per seed")
    args = parser.parse_args()
    runs = {seed: measure(args.customers, seed) for seed in args.seed}
    print(json.dumps(runs if len(runs) > 1 else runs[args.seed[0]], indent=2))


def _snapshot(workspace: Path, as_of, customers: pd.Series) -> pd.DataFrame:
    """The features of ``customers`` in the snapshot at ``as_of``, row by row."""
    store = open_store(load_workspace_config(workspace), workspace)
    [path] = (workspace / "store" / "snapshots" / f"as_of={as_of}").glob("*.parquet")
    snapshot = with_categories(pd.read_parquet(path), categories(store.repository))
    rows = snapshot.set_index("customer_id").reindex(customers.to_numpy())
    return rows.drop(columns=["as_of"]).reset_index(drop=True)


def measure(customers: int, seed: int) -> dict:
    """The figures of one simulated world of ``customers`` customers, seeded ``seed``."""
    started = time.perf_counter()
    world = simulate_world(customers, seed=seed, costs=True, referrals=True)
    with tempfile.TemporaryDirectory(prefix="retain-profitability-") as folder:
        workspace = Path(folder)
        (workspace / "retain.yaml").write_text(f"seed: {seed}\n")
        write_world(world, workspace / "data" / "simulated")
        run_training("all", workspace=workspace)
        trained = time.perf_counter()
        result = profitability(world.end, workspace=workspace)
        seconds = time.perf_counter() - trained
        tracking.use_workspace(workspace)
        clv = load_champion("clv", "champion").model
        cost_method = {"method": clv.method_, "cost": clv.cost_method_,
                       "validation_gini": clv.validation_cost_gini_}  # fmt: skip
        if clv.cost_method_ == "share":  # the regressor's cost instead, on the same customers
            X = _snapshot(workspace, world.end, result.pnl["customer_id"])
            clv.cost_method_ = "regressor"
            other = pd.Series(clv.predict(X), index=result.pnl["customer_id"].to_numpy())
    pnl = result.pnl.set_index("customer_id")
    truth = oracle(world.truth, world.end, 365).reindex(pnl.index)
    recency = (world.end - world.transactions[world.transactions.amount > 0]
               .groupby("customer_id")["timestamp"].max().dt.date)  # fmt: skip
    active = recency.reindex(pnl.index).map(lambda d: d is not None and d.days <= 365)
    active = active.fillna(False).astype(bool).to_numpy()
    future_true = truth["expected_profit"].to_numpy(float)
    future = pnl["predicted_future_profit"].to_numpy(float)
    lifetime = pnl["profit_to_date"].to_numpy(float)
    if cost_method["cost"] == "share":
        cost_method["gini_profit_on_profit_with_the_regressor"] = normalized_gini(
            future_true[active], other.reindex(pnl.index).to_numpy(float)[active]
        )
    # the truth discounted as the predictions are (evenly over the horizon), for the mixes
    boundaries, factors = discount_schedule(365, 0.01)
    discount = float(np.diff(boundaries) / 365 @ factors)
    true_margin = truth["expected_margin"].to_numpy(float)[active] * discount
    true_cost = truth["expected_cost_to_serve"].to_numpy(float)[active] * discount
    predicted_margin = pnl["predicted_margin"].to_numpy(float)[active]
    predicted_cost = pnl["predicted_cost_to_serve"].to_numpy(float)[active]
    return {
        "customers": len(pnl),
        "active": int(active.sum()),
        "gini_margin_clv_on_margin": normalized_gini(
            truth["expected_margin"].to_numpy(float)[active],
            pnl["predicted_margin"].to_numpy(float)[active],
        ),
        "gini_profit_on_profit": normalized_gini(future_true[active], future[active]),
        "gini_margin_clv_on_profit": normalized_gini(
            future_true[active], pnl["predicted_margin"].to_numpy(float)[active]
        ),
        "gini_cost_on_cost": normalized_gini(true_cost, predicted_cost),
        "gini_predicted_margin_less_true_cost": normalized_gini(
            future_true[active], predicted_margin - true_cost
        ),
        "gini_true_margin_less_predicted_cost": normalized_gini(
            future_true[active], true_margin - predicted_cost
        ),
        "unprofitable_future_active": {
            "true": float(np.mean(future_true[active] < 0)),
            "predicted": float(np.mean(future[active] < 0)),
        },
        "unprofitable_future_all": {
            "true": float(np.mean(future_true < 0)),
            "predicted": float(np.mean(future < 0)),
        },
        "unprofitable_lifetime": {
            "true": float(np.mean(lifetime + future_true < 0)),
            "predicted": float(np.mean(lifetime + future < 0)),
        },
        "unprofitable_to_date": result.summary["unprofitable_share"],
        "summary_lifetime_unprofitable_share": result.summary["lifetime_unprofitable_share"],
        "notes": result.summary["notes"],
        "cost_method": cost_method,
        "profitability_seconds": round(seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    main()
