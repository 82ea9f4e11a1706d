"""Who is active at a cutoff, and what they did after it: the labels of training, on Spark.

The definitions are those of :mod:`retain.training.labels` (DuckDB), written in Spark SQL:

- *active* at ``as_of``: a purchase (a transaction with a positive amount) in
  ``[as_of - active_days, as_of)``;
- outcomes from the transactions in ``[as_of, as_of + horizon_days)``: ``future_orders``
  (purchases), ``future_spend`` and ``future_margin`` (net, refunds included; ``margin``, else
  ``amount * margin_rate``) and ``churned`` (no purchase).

Cutoffs are midnights, so both windows are compared on calendar days (``to_date(timestamp)``
against ``as_of`` and ``date_add``/``date_sub`` of it), never on engine-specific timestamp
differences (ARCHITECTURE.md). Sums are accumulated as integer millionths, as in DuckDB, so both
engines give the same numbers to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf

from retain.training.labels import OUTCOMES

__all__ = ["active_customers", "margin_share", "outcomes", "transactions_frame"]

KEY = "customer_id"
MILLIONTHS = 1e6


def transactions_frame(spark: SparkSession, transactions: pa.Table) -> DataFrame:
    """The canonical transactions as a Spark DataFrame (``customer_id``, ``day``, amounts).

    ``day`` is the calendar day of the UTC-naive ``timestamp``; only the columns the labels
    read are kept.

    Parameters
    ----------
    spark : SparkSession
        The session.
    transactions : pyarrow.Table
        Canonical transactions (``SourceData.tables["transactions"]``).
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    columns = transactions.select([KEY, "timestamp", "amount", "margin"])
    schema = from_arrow_schema(columns.schema, prefer_timestamp_ntz=True)
    frame = spark.createDataFrame(columns, schema=schema)
    return frame.select(KEY, sf.to_date("timestamp").alias("day"), "amount", "margin")


def _cutoffs(spark: SparkSession, cutoffs: date | Sequence[date]) -> DataFrame:
    days = [cutoffs] if isinstance(cutoffs, date) else list(cutoffs)
    frame = spark.createDataFrame([(day,) for day in days], "as_of date")
    return sf.broadcast(frame)


def _in_window(start: Column, days: int, *, before: bool) -> Column:
    """``day`` in ``[start - days, start)`` (before) or ``[start, start + days)``."""
    day = sf.col("day")
    if before:
        return (day < start) & (day >= sf.date_sub(start, days))
    return (day >= start) & (day < sf.date_add(start, days))


def active_customers(
    transactions: DataFrame, cutoffs: date | Sequence[date], active_days: int
) -> DataFrame:
    """Customers with a purchase in the ``active_days`` before each cutoff.

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        From :func:`transactions_frame`.
    cutoffs : date or sequence of date
        Cutoffs (midnight of the day).
    active_days : int
        Lookback in days.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id``, ``as_of`` (date), one row per active customer and cutoff.
    """
    cut = _cutoffs(transactions.sparkSession, cutoffs)
    purchases = transactions.where(sf.col("amount") > 0)
    joined = purchases.join(cut, _in_window(sf.col("as_of"), active_days, before=True))
    return joined.select(KEY, "as_of").distinct()


def _millionths(value: Column) -> Column:
    return sf.sum(sf.round(value * MILLIONTHS).cast("long"))


def outcomes(
    transactions: DataFrame,
    cutoffs: date | Sequence[date],
    *,
    horizon_days: int,
    active_days: int,
    margin_rate: float = 0.3,
) -> DataFrame:
    """Labels of the customers active at each cutoff, from the window after it.

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        From :func:`transactions_frame`.
    cutoffs : date or sequence of date
        Cutoffs.
    horizon_days : int
        Label window length: ``[as_of, as_of + horizon_days)``.
    active_days : int
        Lookback that defines the population.
    margin_rate : float, default=0.3
        Margin as a share of the amount where a transaction has no ``margin``.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id``, ``as_of`` (date) and
        :data:`~retain.training.labels.OUTCOMES`, typed as the DuckDB labels (``int``,
        ``double``, ``double``, ``boolean``).
    """
    cut = _cutoffs(transactions.sparkSession, cutoffs)
    window = transactions.join(cut, _in_window(sf.col("as_of"), horizon_days, before=False))
    margin = sf.coalesce(sf.col("margin"), sf.col("amount") * sf.lit(margin_rate))
    future = window.groupBy("as_of", KEY).agg(
        sf.count(sf.when(sf.col("amount") > 0, 1)).alias("orders"),
        _millionths(sf.col("amount")).alias("spend"),
        _millionths(margin).alias("margin"),
    )
    active = active_customers(transactions, cutoffs, active_days)
    orders = sf.coalesce(sf.col("orders"), sf.lit(0))
    labels = active.join(future, ["as_of", KEY], "left").select(
        KEY,
        "as_of",
        orders.cast("int").alias("future_orders"),
        (sf.coalesce(sf.col("spend"), sf.lit(0)).cast("double") / MILLIONTHS).alias("future_spend"),
        (sf.coalesce(sf.col("margin"), sf.lit(0)).cast("double") / MILLIONTHS).alias(
            "future_margin"
        ),
        (orders == 0).alias("churned"),
    )
    return labels.select(KEY, "as_of", *OUTCOMES)


def margin_share(transactions: DataFrame, before: date, margin_rate: float) -> float:
    """Net margin per unit of gross spend before ``before``, as
    :func:`retain.training.clv.margin_share` computes it on DuckDB.

    Returns
    -------
    float
        ``margin_rate`` when there is no gross spend.
    """
    margin = sf.coalesce(sf.col("margin"), sf.col("amount") * sf.lit(margin_rate))
    gross = sf.when(sf.col("amount") > 0, sf.col("amount"))
    history = transactions.where(sf.col("day") < sf.lit(before))
    total, spend = history.agg(sf.sum(margin), sf.sum(gross)).first()
    return float(total / spend) if spend else float(margin_rate)
