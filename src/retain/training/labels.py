"""Who is active at a cutoff, and what they did in the label window after it.

Time semantics (ARCHITECTURE.md): a customer is *active* at ``as_of`` with a purchase (a
transaction with a positive amount) in ``[as_of - active_days, as_of)``; outcomes count the
transactions in ``[as_of, as_of + horizon_days)``. Churn is no purchase in that window among the
active. Scoring asks for the active customers through the same query as training, so the
population a model is trained on is the population it scores.

Sums are accumulated as integer millionths, so results do not depend on DuckDB's thread order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

__all__ = ["OUTCOMES", "active_customers", "outcomes"]

#: Label columns produced by :func:`outcomes`.
OUTCOMES = ("future_orders", "future_spend", "future_margin", "churned")

_ACTIVE = """
    cut AS (SELECT unnest($cutoffs::TIMESTAMP[]) AS as_of),
    active AS (
        SELECT DISTINCT c.as_of, t.customer_id
        FROM transactions t JOIN cut c
          ON t.timestamp < c.as_of
         AND t.timestamp >= c.as_of - to_days($active_days)
        WHERE t.amount > 0
    )
"""

_OUTCOMES = f"""
WITH {_ACTIVE},
future AS (
    SELECT c.as_of, t.customer_id,
           count(*) FILTER (WHERE t.amount > 0) AS orders,
           sum(round(t.amount * 1e6)::HUGEINT) AS spend,
           sum(round(coalesce(t.margin, t.amount * $margin_rate) * 1e6)::HUGEINT) AS margin
    FROM transactions t JOIN cut c
      ON t.timestamp >= c.as_of
     AND t.timestamp < c.as_of + to_days($horizon_days)
    GROUP BY ALL
)
SELECT a.customer_id, a.as_of::DATE AS as_of,
       coalesce(f.orders, 0)::INTEGER AS future_orders,
       coalesce(f.spend, 0)::DOUBLE / 1e6 AS future_spend,
       coalesce(f.margin, 0)::DOUBLE / 1e6 AS future_margin,
       coalesce(f.orders, 0) = 0 AS churned
FROM active a LEFT JOIN future f USING (as_of, customer_id)
ORDER BY as_of, customer_id
"""


def _query(sql: str, transactions: pa.Table, parameters: dict) -> pd.DataFrame:
    connection = duckdb.connect()
    try:
        connection.register("transactions", transactions)
        frame = connection.execute(sql, parameters).df()
    finally:
        connection.close()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    return frame


def _cutoff_list(cutoffs: date | Sequence[date]) -> list[str]:
    cutoffs = [cutoffs] if isinstance(cutoffs, date) else list(cutoffs)
    return [day.isoformat() for day in cutoffs]


def active_customers(
    transactions: pa.Table, cutoffs: date | Sequence[date], active_days: int
) -> pd.DataFrame:
    """Customers with a purchase in the ``active_days`` before each cutoff.

    Parameters
    ----------
    transactions : pyarrow.Table
        Canonical transactions (``customer_id``, ``timestamp``, ``amount``, ``margin``).
    cutoffs : date or sequence of date
        Cutoffs (midnight of the day).
    active_days : int
        Lookback in days.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``as_of``, ordered by cutoff then customer.
    """
    sql = f"WITH {_ACTIVE} SELECT customer_id, as_of::DATE AS as_of FROM active ORDER BY 2, 1"
    parameters = {"cutoffs": _cutoff_list(cutoffs), "active_days": active_days}
    return _query(sql, transactions, parameters)


def outcomes(
    transactions: pa.Table,
    cutoffs: date | Sequence[date],
    *,
    horizon_days: int,
    active_days: int,
    margin_rate: float = 0.3,
) -> pd.DataFrame:
    """Labels of the customers active at each cutoff, from the window after it.

    Parameters
    ----------
    transactions : pyarrow.Table
        Canonical transactions.
    cutoffs : date or sequence of date
        Cutoffs.
    horizon_days : int
        Label window length: ``[as_of, as_of + horizon_days)``.
    active_days : int
        Lookback that defines the population (see :func:`active_customers`).
    margin_rate : float, default=0.3
        Margin as a share of the amount where a transaction has no ``margin``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``as_of`` and :data:`OUTCOMES`: orders, net spend and net margin in the
        window, and ``churned`` (no order in the window).
    """
    parameters = {
        "cutoffs": _cutoff_list(cutoffs),
        "active_days": active_days,
        "horizon_days": horizon_days,
        "margin_rate": margin_rate,
    }
    return _query(_OUTCOMES, transactions, parameters)
