"""Departure-from-baseline features: known answers on the tiny dataset, and the BTYD forecast.

Hand-computed on the tiny dataset of ``test_features_values`` (cutoff 2024-03-01):

- orders of A on 2023-07-01 (two), 2023-10-01, 2024-01-15 and 2024-02-29; of B on 2024-01-20
  and 2024-02-10; of D on 2023-12-01. A's first purchase day is 244 days before the cutoff,
  B's 41, D's 91.
- A's own interactions on 2023-12-01, 2024-01-05, 02-20, 02-25 and 02-28 (the first 91 days
  before the cutoff); E's on 2024-02-01 (29 days before) and 02-27.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.features import (
    BTYDForecast,
    BTYDSummary,
    Entity,
    FeatureView,
    GapProbability,
    Pace,
    Trend,
    col,
    compute_features,
    load_repository,
)
from retain.models.clv import BGNBD
from test_features_values import AS_OF, NA, REPO, expect, tiny_sources

customer = Entity("customer", join_key="customer_id")


@pytest.fixture(scope="module")
def snapshot() -> pd.DataFrame:
    frame = compute_features(load_repository(REPO), tiny_sources(), AS_OF)
    return frame.set_index("customer_id")


def test_order_pace_against_the_customers_own_180_day_rate(snapshot):
    expect(
        snapshot,
        {
            # A: 1 order in 30 days against 3 in 180 (observed for 244 days): (1/30)/(3/180)
            # B: 1 in 30 against 2 in the 41 days observed: (1/30)/(2/41); D: silent for 91
            "order_pace_30d": {"A": 2.0, "B": 41 / 60, "D": 0.0, "E": NA, "F": NA},
            "orders_14d": {"A": 1, "B": 0, "D": 0},
        },
    )


def test_gap_probability_weighs_the_silence_by_the_customers_own_rhythm(snapshot):
    expect(
        snapshot,
        {
            # (span / (span + silence)) ** (purchase days - 1)
            "purchase_gap_probability": {"A": (243 / 244) ** 3, "B": 21 / 41, "D": NA, "E": NA},
        },
    )


def test_falling_order_values_and_engagement(snapshot):
    expect(
        snapshot,
        {
            # mean order of the last 90 days (80, 30) against the 90 before (50)
            "order_value_trend_90d": {"A": 55 / 50, "B": NA, "D": NA},
            "days_since_engagement": {"A": 2, "B": NA, "E": 3},
            "engagements_30d": {"A": 3, "B": 0, "E": 2},
            # A: 3 in 14 days against 5 in the 91 days since the first; E: observed 29 days
            "engagement_pace_14d": {"A": (3 / 14) / (5 / 91), "E": (1 / 14) / (2 / 29)},
            "engagement_pace_30d": {"A": (3 / 30) / (5 / 91), "E": 1.0, "B": NA},
        },
    )


def test_campaign_contacts_are_not_engagement():
    sources = tiny_sources()
    contact = pd.DataFrame(
        {"customer_id": ["A"], "timestamp": pd.to_datetime(["2024-02-29"]).astype("datetime64[us]"),
         "type": ["campaign_contact"], "value": [NA]}
    )  # fmt: skip
    sources["interactions"] = pd.concat([sources["interactions"], contact], ignore_index=True)
    frame = compute_features(load_repository(REPO), sources, AS_OF).set_index("customer_id")
    assert frame.loc["A", "days_since_engagement"] == 2
    assert frame.loc["A", "days_since_campaign_contact"] == 1


def test_forecast_needs_enough_customers_and_is_missing_otherwise(snapshot):
    assert snapshot["btyd_p_alive"].isna().all()
    assert snapshot["btyd_expected_purchases_90d"].isna().all()
    assert snapshot["btyd_p_alive"].dtype == np.float64


def test_forecast_is_bgnbd_fitted_on_the_cutoffs_own_summaries(world):
    view = FeatureView(
        "purchases", customer, "transactions",
        features=[BTYDSummary(where=col("amount") > 0), BTYDForecast(horizon_days=60,
                  expected="expected_60d")],
    )  # fmt: skip
    sources = {"transactions": world.transactions}
    cutoff = "2025-01-01"
    frame = compute_features([view], sources, cutoff)
    known = frame["btyd_T"].notna() & (frame["btyd_T"] > 0)
    x, t_x, T = (frame.loc[known, name].to_numpy() for name in ("btyd_frequency", "btyd_recency",
                                                                "btyd_T"))  # fmt: skip
    model = BGNBD().fit(x, t_x, T)
    np.testing.assert_allclose(frame.loc[known, "btyd_p_alive"], model.probability_alive(x, t_x, T))
    np.testing.assert_allclose(
        frame.loc[known, "expected_60d"], model.predict_purchases(60.0, x, t_x, T)
    )
    assert frame.loc[known, "btyd_p_alive"].between(0, 1).all()
    # customers who bought once cannot have left under BG/NBD; regulars long silent have
    once = known & (frame["btyd_frequency"] == 0)
    assert (frame.loc[once, "btyd_p_alive"] == 1.0).all()
    assert frame.loc[known, "btyd_p_alive"].min() < 0.2


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (Pace("p", window_days=30, baseline_days=30), "baseline_days must be longer"),
        (Pace("p", window_days=0), "window_days must be a positive"),
        (BTYDForecast(frequency="nope"), "reads nope, which no BTYDSummary"),
        (GapProbability("g", where=col("amout") > 0), "unknown column 'amout'"),
        (Trend("t", "max", "amount"), "count, sum, mean or count_distinct"),
    ],
)
def test_bad_departure_features_are_named(feature, message):
    view = FeatureView("purchases", customer, "transactions", features=[BTYDSummary(), feature])
    problems = "\n".join(view.problems())
    assert message in problems
