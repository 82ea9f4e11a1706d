"""Coverage of the backtest's treated-minus-control intervals on simulated campaigns.

Run by hand::

    .venv/bin/python benchmarks/experiments.py                       # 100 seeds, 3,000 each
    .venv/bin/python benchmarks/experiments.py --seeds 40 --customers 20000 --control 0.1

Each seed simulates a world with one randomised retention campaign (every action, a share
held out as control), sums the realised outcomes of the enrolled customers through the
engine's rule (:meth:`retain.engines.Engine.experiment_tallies`, as ``retain backtest``
does), computes treated minus control per action with 95% intervals
(:func:`retain.serving.experiment.effect_table`: normal approximation, Welch) and checks them
against the oracle's true mean effect over the enrolled customers
(:func:`retain.data.oracle.oracle_uplift`). About 95% of the intervals should cover it;
``tests/test_experiments.py`` runs the same check on 20 seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

import numpy as np
import pandas as pd

from retain.data.oracle import oracle_uplift
from retain.data.simulator import simulate_world
from retain.engines.duckdb import DuckDBEngine
from retain.features import resolve_data
from retain.serving.experiment import effect_table

CAMPAIGN_DAY = "2025-01-06"


def one_seed(seed: int, customers: int, control: float, horizon: int) -> pd.DataFrame:
    """Per action: the interval's bounds and the true effect, for churn and margin."""
    plan = {"dates": [CAMPAIGN_DAY], "control_share": control}
    world = simulate_world(
        customers, seed=seed, start="2024-01-01", end="2025-06-01", campaigns=plan
    )
    enrolled = world.campaigns.assign(decile=1)
    tallies = DuckDBEngine().experiment_tallies(
        resolve_data({"transactions": world.transactions}), enrolled,
        date.fromisoformat(CAMPAIGN_DAY), churn_days=horizon, margin_days=horizon,
    )  # fmt: skip
    predicted = enrolled.assign(expected_incremental_margin=np.nan, expected_churn_effect=np.nan)
    table = effect_table(tallies, predicted, strata=("action",)).set_index("action")
    table = table.drop(index="all")
    truth = oracle_uplift(world.truth, CAMPAIGN_DAY, horizon)
    for action, rows in enrolled.groupby("action"):
        effect = truth.xs(action, level="action").reindex(rows["customer_id"])
        table.loc[action, "true_margin"] = effect["incremental_margin"].mean()
        table.loc[action, "true_churn"] = effect["churn_effect"].mean()
    return table.assign(seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--control", type=float, default=0.5, help="control share")
    parser.add_argument("--horizon", type=int, default=90)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = pd.concat(
        one_seed(seed, args.customers, args.control, args.horizon) for seed in range(args.seeds)
    )
    churn = (rows["churn_low"] <= rows["true_churn"]) & (rows["true_churn"] <= rows["churn_high"])
    margin = (rows["margin_low"] <= rows["true_margin"]) & (
        rows["true_margin"] <= rows["margin_high"]
    )
    report = {
        "seeds": args.seeds,
        "customers": args.customers,
        "control_share": args.control,
        "intervals": len(rows),
        "coverage_churn": round(float(churn.mean()), 4),
        "coverage_margin": round(float(margin.mean()), 4),
        "coverage_by_action": {
            action: {
                "churn": round(float(churn[rows.index == action].mean()), 3),
                "margin": round(float(margin[rows.index == action].mean()), 3),
            }
            for action in sorted(set(rows.index))
        },  # fmt: skip
        "mean_interval_width_margin": round(float((rows.margin_high - rows.margin_low).mean()), 3),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
