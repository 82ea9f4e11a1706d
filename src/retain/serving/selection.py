"""Whom to contact: the customers that maximise total expected net gain within capacity and budget.

Only customers with a positive expected net gain are worth an action. With a capacity alone,
the best ``capacity`` by gain are optimal. With a budget, this is a knapsack; customers are taken
greedily by gain per unit of cost (then by gain), which is optimal up to the last customer that
no longer fits — within one action's cost of the best possible total.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["rank_order", "select"]


def rank_order(frame: pd.DataFrame) -> np.ndarray:
    """Row order of the list: expected net gain, then value at risk, then customer id."""
    return np.lexsort(
        (
            frame["customer_id"].to_numpy(),
            -frame["value_at_risk"].to_numpy(float),
            -frame["expected_net_gain"].to_numpy(float),
        )
    )


def select(
    gain: np.ndarray, cost: np.ndarray, *, capacity: int | None, budget: float | None
) -> np.ndarray:
    """Boolean mask of the customers to contact.

    Parameters
    ----------
    gain : array of float
        Expected net gain per customer (value at risk x save rate - cost).
    cost : array of float
        Cost of each customer's action.
    capacity : int or None
        Most customers to contact.
    budget : float or None
        Most total cost.
    """
    gain, cost = np.asarray(gain, float), np.asarray(cost, float)
    worth = np.flatnonzero(gain > 0)
    if budget is None:
        order = worth[np.argsort(-gain[worth], kind="stable")]
    else:
        ratio = gain[worth] / np.maximum(cost[worth], 1e-12)
        order = worth[np.lexsort((-gain[worth], -ratio))]
    if budget is not None:
        order = order[np.cumsum(cost[order]) <= budget + 1e-9]
    if capacity is not None:
        order = order[:capacity]
    chosen = np.zeros(len(gain), dtype=bool)
    chosen[order] = True
    return chosen
