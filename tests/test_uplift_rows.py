"""The campaign rows of uplift training (rules.campaign_cutoffs, rules.campaign_rows), by hand,
on every engine (the ``engine`` fixture)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retain.features import resolve_data


def _ts(*values: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(value) for value in values]


@pytest.fixture(scope="module")
def log() -> pa.Table:
    """Two campaigns: spring (two days, a to d), autumn (a, b, e)."""
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "a", "b", "e"],
            "timestamp": _ts(
                "2025-03-01 10:00",
                "2025-03-01 11:00",
                "2025-03-02 09:00",
                "2025-03-01 12:00",
                "2025-09-01 10:00",
                "2025-09-01 10:30",
                "2025-09-01 11:00",
            ),  # fmt: skip
            "campaign_id": ["spring"] * 4 + ["autumn"] * 3,
            "action": ["call", "mail", "call", "call", "mail", "mail", None],
            "group": [
                "treatment",
                "treatment",
                "control",
                "treatment",
                "treatment",
                "control",
                "control",
            ],  # fmt: skip
            "cost": [5.0, 1.0, 0.0, 5.0, 1.0, 0.0, 0.0],
        }
    )
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us]")
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="module")
def sources():
    """a buys before and after both campaigns; b before spring only; c before spring and in
    its window; d never before spring (not active); e before autumn, nothing after."""
    transactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c", "c", "d", "e"],
            "timestamp": _ts(
                "2025-01-10",
                "2025-03-20",
                "2025-08-01",
                "2025-09-15",
                "2025-02-01",
                "2025-02-15",
                "2025-04-01",
                "2025-03-05",
                "2025-07-01",
            ),  # fmt: skip
            "amount": [10.0, 20.0, 30.0, 40.0, 15.0, 25.0, 50.0, 60.0, 70.0],
            "margin": [None, 5.0, None, 4.0, None, None, 12.5, None, None],
        }
    )
    transactions["timestamp"] = transactions["timestamp"].astype("datetime64[us]")
    return resolve_data({"transactions": transactions})


def test_campaign_cutoffs_are_the_first_day_of_each_campaign(engine, log):
    cutoffs = engine.campaign_cutoffs(log)
    assert cutoffs["campaign_id"].tolist() == ["spring", "autumn"]
    assert cutoffs["as_of"].tolist() == [date(2025, 3, 1), date(2025, 9, 1)]
    assert cutoffs["last_day"].tolist() == [date(2025, 3, 2), date(2025, 9, 1)]
    assert cutoffs[["rows", "treated", "control"]].to_numpy().tolist() == [[4, 3, 1], [3, 1, 2]]


def test_campaign_rows_join_enrolment_outcomes_and_features(engine, log, sources, tmp_path):
    snapshot = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "a", "b", "e"],
            "as_of": _ts(*["2025-03-01"] * 3, *["2025-09-01"] * 3),
            "spend": [10.0, 15.0, 25.0, 60.0, 15.0, 70.0],
        }
    )
    snapshot["as_of"] = snapshot["as_of"].astype("datetime64[us]")
    path = tmp_path / "snapshot.parquet"
    pq.write_table(pa.Table.from_pandas(snapshot, preserve_index=False), path)
    rows = engine.campaign_rows(
        sources, log, [path], ["spend"], validation=[date(2025, 9, 1)], horizon_days=60,
        active_days=365, margin_rate=0.5,
    )  # fmt: skip
    # d was enrolled in spring without a purchase before it: not active, left out
    assert rows["customer_id"].tolist() == ["a", "b", "c", "a", "b", "e"]
    assert rows["campaign_id"].tolist() == ["spring"] * 3 + ["autumn"] * 3
    assert rows["as_of"].tolist() == _ts(*["2025-03-01"] * 3, *["2025-09-01"] * 3)
    assert rows["group"].tolist() == ["treatment", "treatment", "control", "treatment",
                                      "control", "control"]  # fmt: skip
    assert rows["action"].tolist()[:5] == ["call", "mail", "call", "mail", "mail"]
    assert pd.isna(rows["action"].iloc[5])
    assert rows["cost"].tolist() == [5.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert rows["spend"].tolist() == [10.0, 15.0, 25.0, 60.0, 15.0, 70.0]
    # 60 days after 2025-03-01: a's 2025-03-20 (margin 5), c's 2025-04-01 (margin 12.5);
    # after 2025-09-01: a's 2025-09-15 (margin 4)
    assert rows["future_orders"].tolist() == [1, 0, 1, 1, 0, 0]
    assert rows["future_margin"].tolist() == [5.0, 0.0, 12.5, 4.0, 0.0, 0.0]
    assert rows["future_spend"].tolist() == [20.0, 0.0, 50.0, 40.0, 0.0, 0.0]
    assert rows["churned"].tolist() == [False, True, False, False, True, True]
    assert rows["split"].tolist() == ["train"] * 3 + ["validation"] * 3
