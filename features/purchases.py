"""Purchase behaviour: RFM, windowed orders and spend, returns, variety, rhythm, BTYD summary.

An order is a transaction with a positive amount; a return one with a negative amount. Spend is
net of returns. The last group measures a customer's departure from their own baseline: the
pace of orders against their own 180-day rate, the probability of a silence this long under
their own rhythm, falling order values, and a BG/NBD model's probability that they are alive.
"""

from retain.features import (
    BTYDForecast,
    BTYDSummary,
    Entity,
    FeatureView,
    GapProbability,
    GapStatistics,
    Pace,
    Ratio,
    Recency,
    Tenure,
    Trend,
    WindowAggregate,
    col,
)

customer = Entity("customer", join_key="customer_id")
order = col("amount") > 0
refund = col("amount") < 0

windowed = []
for days in (30, 90, 180, 365):
    windowed += [
        WindowAggregate(f"orders_{days}d", "count", window_days=days, where=order),
        WindowAggregate(f"spend_{days}d", "sum", "amount", window_days=days),
    ]

purchases = FeatureView(
    name="purchases",
    entity=customer,
    source="transactions",
    description="Recency, frequency, monetary value and their trends over the purchase history.",
    features=[
        Recency("recency_days", where=order),
        WindowAggregate("frequency", "count", where=order),
        WindowAggregate("monetary_total", "sum", "amount"),
        WindowAggregate("monetary_mean", "mean", "amount", where=order),
        *windowed,
        WindowAggregate("returns_count", "count", where=refund),
        Ratio("return_share", numerator="returns_count", denominator="frequency"),
        WindowAggregate("distinct_categories", "count_distinct", "category", where=order),
        WindowAggregate("distinct_channels", "count_distinct", "channel", where=order),
        GapStatistics(
            mean="purchase_gap_mean_days",
            std="purchase_gap_std_days",
            overdue="overdue_ratio",
            where=order,
        ),
        Trend("spend_trend_90d", "sum", "amount", window_days=90, where=order),
        Tenure("days_since_first_purchase"),
        BTYDSummary(where=order),
        # departure from the customer's own baseline
        WindowAggregate("orders_14d", "count", window_days=14, where=order),
        Pace("order_pace_30d", window_days=30, baseline_days=180, where=order),
        GapProbability("purchase_gap_probability", where=order),
        Trend("order_value_trend_90d", "mean", "amount", window_days=90, where=order),
        BTYDForecast(),
    ],
)
