"""Hand-computed feature values on a tiny hand-written dataset, for every feature family, on
every engine (the ``engine`` fixture of conftest.py).

Cutoff 2024-03-01 (a leap year: February has 29 days). Customers:

- A: signup 2023-06-15; orders on 2023-07-01 (100 + 20, same day), 2023-10-01 (50),
  2024-01-15 (80), 2024-02-29 23:59:59 (30, one second before the cutoff) and 2024-03-01
  00:00:00 (999, exactly at the cutoff: excluded); a return of 20 on 2023-10-05.
  Purchase days 07-01, 10-01, 01-15, 02-29: gaps 92, 106, 45 days.
- B: signup 2024-01-10 via an unknown channel, no region; orders 2024-01-20 (40) and
  2024-02-10 (60), a return of 60 on 2024-02-15.
- C: signup 2024-03-05, after the cutoff, no events: not in the snapshot.
- D: not in customers; one order of 25 on 2023-12-01 (91 days before the cutoff).
- E: not in customers; only interactions.
- F: signup 2024-02-01, no events at all.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.engines.duckdb import DuckDBEngine
from retain.features import (
    Attribute,
    Entity,
    FeatureView,
    Recency,
    Tenure,
    Trend,
    WindowAggregate,
    col,
    compute_features,
    load_repository,
)

REPO = Path(__file__).resolve().parents[1] / "features"
AS_OF = "2024-03-01"
NA = np.nan


def _stamp(values: list[str]) -> pd.Series:
    return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")


def tiny_sources() -> dict[str, pd.DataFrame]:
    """The tiny dataset described in the module docstring (canonical tables)."""
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "F"],
            "signup_date": _stamp(["2023-06-15", "2024-01-10", "2024-03-05", "2024-02-01"]),
            "acquisition_channel": ["referral", "tiktok", "organic", "organic"],
            "acquisition_cost": [15.0, NA, 3.0, 2.0],
            "region": ["north", None, "south", "west"],
        }
    )
    rows = [
        ("A", "2023-07-01 10:00:00", 100.0, "grocery", "web"),
        ("A", "2023-07-01 15:00:00", 20.0, "books", "web"),
        ("A", "2023-10-01 09:00:00", 50.0, "grocery", "store"),
        ("A", "2023-10-05 12:00:00", -20.0, "grocery", "store"),
        ("A", "2024-01-15 08:00:00", 80.0, "home", "app"),
        ("A", "2024-02-29 23:59:59", 30.0, "home", "app"),
        ("A", "2024-03-01 00:00:00", 999.0, "home", "app"),
        ("B", "2024-01-20 12:00:00", 40.0, "apparel", "web"),
        ("B", "2024-02-10 12:00:00", 60.0, "apparel", "web"),
        ("B", "2024-02-15 12:00:00", -60.0, "apparel", "web"),
        ("D", "2023-12-01 12:00:00", 25.0, "toys", "store"),
    ]
    transactions = pd.DataFrame(
        rows, columns=["customer_id", "ts", "amount", "category", "channel"]
    )
    transactions.insert(1, "timestamp", _stamp(list(transactions.pop("ts"))))
    contacts = [
        ("A", "2024-02-20 10:00:00", "web_visit", NA),
        ("A", "2024-01-05 10:00:00", "web_visit", NA),
        ("A", "2023-12-01 10:00:00", "survey", 8.0),
        ("A", "2024-02-25 10:00:00", "survey", 6.0),
        ("A", "2024-02-28 10:00:00", "complaint", NA),
        ("A", "2024-03-02 10:00:00", "complaint", NA),
        ("E", "2024-02-01 10:00:00", "email_open", NA),
        ("E", "2024-02-27 10:00:00", "email_click", NA),
    ]
    interactions = pd.DataFrame(contacts, columns=["customer_id", "ts", "type", "value"])
    interactions.insert(1, "timestamp", _stamp(list(interactions.pop("ts"))))
    return {"customers": customers, "transactions": transactions, "interactions": interactions}


@pytest.fixture(scope="module")
def snapshot(engine) -> pd.DataFrame:
    frame = compute_features(load_repository(REPO), tiny_sources(), AS_OF, engine=engine)
    return frame.set_index("customer_id")


def expect(snapshot: pd.DataFrame, expected: dict[str, dict[str, float]]) -> None:
    """Compare ``{feature: {customer: value}}`` with the snapshot (NaN means missing)."""
    for feature, values in expected.items():
        for customer, value in values.items():
            got = snapshot.loc[customer, feature]
            if isinstance(value, float) and np.isnan(value):
                assert pd.isna(got), (feature, customer, got)
            elif isinstance(value, str):
                assert got == value, (feature, customer, got)
            else:
                assert got == pytest.approx(value, rel=1e-12), (feature, customer, got)


def test_entities_are_customers_known_before_the_cutoff(snapshot):
    assert list(snapshot.index) == ["A", "B", "D", "E", "F"]
    assert (snapshot["as_of"] == pd.Timestamp(AS_OF)).all()


def test_rfm_and_windows(snapshot):
    expect(
        snapshot,
        {
            "recency_days": {"A": 1, "B": 20, "D": 91, "E": NA, "F": NA},
            "frequency": {"A": 5, "B": 2, "D": 1, "E": 0, "F": 0},
            "monetary_total": {"A": 260.0, "B": 40.0, "D": 25.0, "E": 0.0},
            "monetary_mean": {"A": 56.0, "B": 50.0, "D": 25.0, "E": NA},
            "orders_30d": {"A": 1, "B": 1, "D": 0},
            "spend_30d": {"A": 30.0, "B": 0.0, "D": 0.0},
            "orders_90d": {"A": 2, "B": 2, "D": 0},  # D's order is 91 days old
            "spend_90d": {"A": 110.0, "B": 40.0, "D": 0.0},
            "orders_180d": {"A": 3, "B": 2, "D": 1},
            "spend_180d": {"A": 140.0, "B": 40.0, "D": 25.0},
            "orders_365d": {"A": 5},
            "spend_365d": {"A": 260.0},
        },
    )


def test_returns_variety_and_tenure(snapshot):
    expect(
        snapshot,
        {
            "returns_count": {"A": 1, "B": 1, "D": 0, "E": 0},
            "return_share": {"A": 0.2, "B": 0.5, "D": 0.0, "E": NA},
            "distinct_categories": {"A": 3, "B": 1, "E": 0},
            "distinct_channels": {"A": 3, "B": 1, "E": 0},
            "days_since_first_purchase": {"A": 244, "B": 41, "D": 91, "E": NA},
            "tenure_days": {"A": 260, "B": 51, "D": NA, "F": 29},
        },
    )


def test_gap_statistics_and_overdue_ratio(snapshot):
    expect(
        snapshot,
        {
            "purchase_gap_mean_days": {"A": 81.0, "B": 21.0, "D": NA, "E": NA},
            # gaps 92, 106, 45: deviations 11, 25, -36 -> sample variance 2042 / 2
            "purchase_gap_std_days": {"A": np.sqrt(1021.0), "B": NA, "D": NA},
            "overdue_ratio": {"A": 1 / 81, "B": 20 / 21, "D": NA},
        },
    )


def test_spend_trend(snapshot):
    # last 90 days [2023-12-02, 2024-03-01) vs the 90 before, orders only
    expect(snapshot, {"spend_trend_90d": {"A": 110 / 50, "B": NA, "D": 0.0, "E": NA}})


def test_btyd_summary(snapshot):
    expect(
        snapshot,
        {
            "btyd_frequency": {"A": 3, "B": 1, "D": 0, "E": NA},
            "btyd_recency": {"A": 243, "B": 21, "D": 0, "E": NA},
            "btyd_T": {"A": 244, "B": 41, "D": 91, "E": NA},
            # A: repeat purchase days spend 50, 80, 30 (the first day, 120, is excluded)
            "btyd_monetary_value": {"A": 160 / 3, "B": 60.0, "D": 0.0, "E": NA},
        },
    )


def test_interactions(snapshot):
    expect(
        snapshot,
        {
            "web_visits_30d": {"A": 1, "E": 0},
            "web_visits_90d": {"A": 2},
            "complaints_30d": {"A": 1},  # the complaint after the cutoff is ignored
            "email_opens_30d": {"E": 1},
            "email_clicks_30d": {"E": 1},
            "support_tickets_90d": {"A": 0, "F": 0},
            "days_since_complaint": {"A": 2, "E": NA},
            "days_since_web_visit": {"A": 10},
            "days_since_email_click": {"E": 3},
            "days_since_email_open": {"E": 29},
            "days_since_survey": {"A": 5},
            "days_since_support_ticket": {"A": NA},
            "survey_score_mean": {"A": 7.0, "E": NA},
        },
    )


def test_attributes_use_the_declared_vocabulary(snapshot):
    expect(
        snapshot,
        {
            "acquisition_channel": {"A": "referral", "B": "other", "F": "organic", "D": NA},
            "region": {"A": "north", "B": NA, "F": "west"},
            "acquisition_cost": {"A": 15.0, "B": NA, "F": 2.0},
        },
    )


def test_dtypes_are_stable(snapshot):
    assert snapshot["frequency"].dtype == "int64"
    assert snapshot["recency_days"].dtype == "float64"
    assert snapshot["spend_30d"].dtype == "float64"
    assert pd.api.types.is_string_dtype(snapshot["region"])


def test_other_aggregations_filters_and_trend_difference(engine):
    customer = Entity("customer")
    view = FeatureView(
        "extra",
        customer,
        "transactions",
        features=[
            WindowAggregate("largest_order", "max", "amount"),
            WindowAggregate("largest_return", "min", "amount", where=col("amount") < 0),
            WindowAggregate("web_or_app", "count", where=col("channel").isin(["web", "app"])),
            WindowAggregate(
                "categories_not_home", "count_distinct", "category", where=col("category") != "home"
            ),  # fmt: skip
            WindowAggregate(
                "mid_orders", "count", where=(col("amount") > 20) & (col("amount") <= 80)
            ),
            Trend(
                "orders_trend",
                "count",
                window_days=60,
                where=col("amount") > 0,
                method="difference",
            ),
            Recency(
                "days_since_store", where=(col("channel") == "store") | col("channel").isnull()
            ),
            Tenure("first_event_days"),
        ],
    )
    profile = FeatureView(
        "raw_profile",
        customer,
        "customers",
        features=[Attribute("raw_channel", "acquisition_channel")],
    )
    frame = compute_features([view, profile], tiny_sources(), AS_OF, engine=engine)
    frame = frame.set_index("customer_id")
    expect(
        frame,
        {
            "largest_order": {"A": 100.0, "B": 60.0, "F": NA},
            "largest_return": {"A": -20.0, "D": NA},
            "web_or_app": {"A": 4, "B": 3, "D": 0},
            "categories_not_home": {"A": 2, "B": 1},
            "mid_orders": {"A": 3, "B": 2, "D": 1},
            # orders in the last 60 days [2024-01-01, ...) minus the 60 before
            "orders_trend": {"A": 2 - 0, "B": 2, "D": -1},
            "days_since_store": {"A": 148, "D": 91, "B": NA},  # A: the return of 2023-10-05
            "first_event_days": {"A": 244, "D": 91, "F": NA},
            "raw_channel": {"B": "tiktok", "F": "organic"},
        },
    )


def test_strategies_agree_at_several_cutoffs():
    repository = load_repository(REPO)
    cutoffs = [date(2023, 10, 1), date(2024, 1, 1), date(2024, 3, 1)]
    per_cutoff = compute_features(repository, tiny_sources(), cutoffs, strategy="per_cutoff")
    joined = compute_features(repository, tiny_sources(), cutoffs, strategy="joined")
    pd.testing.assert_frame_equal(per_cutoff, joined)
    single = compute_features(repository, tiny_sources(), AS_OF)
    last = per_cutoff[per_cutoff["as_of"] == pd.Timestamp(AS_OF)].reset_index(drop=True)
    pd.testing.assert_frame_equal(last, single)
    early = per_cutoff[per_cutoff["as_of"] == pd.Timestamp("2023-10-01")].set_index("customer_id")
    # on 2023-10-01 only A (signup and first orders) is known; the 09:00 order is on the cutoff day
    assert list(early.index) == ["A"]
    assert early.loc["A", "frequency"] == 2


def _refunds() -> FeatureView:
    refund = col("amount") < 0
    return FeatureView(
        "refunds",
        Entity("customer"),
        "transactions",
        features=[
            WindowAggregate("refund_total", "sum", "amount", where=refund),
            WindowAggregate("refund_mean", "mean", "amount", where=refund),
            WindowAggregate("refunds", "count", "amount", where=refund),
            WindowAggregate("refund_categories", "count_distinct", "category", where=refund),
            WindowAggregate("smallest_refund", "min", "amount", where=refund),
            Recency("days_since_refund", where=refund),
            Trend("refund_trend", "sum", "amount", window_days=90, where=refund),
        ],
    )


def test_filters_that_pass_none_of_a_customers_rows(engine):
    """Aggregates are conditional sums, counts and extremes rather than filtered ones: a
    filter that passes none of a customer's rows must give what no rows give. A and B have
    one return each, D one order and no return, F (a customer since 2024-02-01) no
    transactions."""
    frame = compute_features([_refunds()], tiny_sources(), AS_OF, engine=engine)
    expect(
        frame.set_index("customer_id"),
        {
            "refund_total": {"A": -20.0, "B": -60.0, "D": 0.0, "F": 0.0},
            "refund_mean": {"A": -20.0, "B": -60.0, "D": NA, "F": NA},
            "refunds": {"A": 1, "B": 1, "D": 0, "F": 0},
            "refund_categories": {"A": 1, "B": 1, "D": 0, "F": 0},
            "smallest_refund": {"A": -20.0, "B": -60.0, "D": NA, "F": NA},
            "days_since_refund": {"A": 148, "B": 15, "D": NA, "F": NA},
            # last 90 days over the 90 before: A 0 / -20, B -60 / 0, D and F 0 / 0
            "refund_trend": {"A": 0.0, "B": NA, "D": NA, "F": NA},
        },
    )


def test_the_plain_path_gives_what_the_coded_path_gives():
    """DuckDB's key and value codes (staging) change nothing: the plain path (what Spark
    runs) gives the same, filters passing no row included."""
    coded = compute_features([_refunds()], tiny_sources(), AS_OF)
    plain = compute_features([_refunds()], tiny_sources(), AS_OF, engine=DuckDBEngine(coded=False))
    pd.testing.assert_frame_equal(coded, plain, check_exact=True)
