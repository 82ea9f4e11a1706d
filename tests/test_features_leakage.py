"""No feature peeks past its cutoff: deleting every event at or after it changes nothing, on
every engine."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from retain.features import compute_features, load_repository
from test_features_values import REPO, tiny_sources

EVENT_TABLES = ("transactions", "interactions")


@pytest.fixture(scope="module")
def repository():
    return load_repository(REPO)


def _sources(world) -> dict[str, pd.DataFrame]:
    return {
        "customers": world.customers,
        "transactions": world.transactions,
        "interactions": world.interactions,
    }


def _before(sources: dict[str, pd.DataFrame], cutoff: date) -> dict[str, pd.DataFrame]:
    """The sources with every event at or after ``cutoff`` deleted."""
    stamp = pd.Timestamp(cutoff)
    return {
        name: frame[frame["timestamp"] < stamp] if name in EVENT_TABLES else frame
        for name, frame in sources.items()
    }


def _random_cutoffs(world, seed: int, count: int) -> list[date]:
    rng = np.random.default_rng(seed)
    span = (world.end - world.start).days
    offsets = rng.choice(np.arange(30, span + 20), size=count, replace=False)
    return sorted(world.start + timedelta(days=int(offset)) for offset in offsets)


def test_snapshots_ignore_events_at_or_after_the_cutoff(world, seed, repository, engine):
    sources = _sources(world)
    # a build of the whole repository takes Spark local[2] about 25 s: one cutoff there
    cutoffs = _random_cutoffs(world, seed, count=3 if engine.in_process else 1)
    full = compute_features(repository, sources, cutoffs, strategy="joined", engine=engine)
    for cutoff in cutoffs:
        expected = full[full["as_of"] == pd.Timestamp(cutoff)].reset_index(drop=True)
        assert len(expected) > 100
        truncated = compute_features(repository, _before(sources, cutoff), cutoff, engine=engine)
        pd.testing.assert_frame_equal(truncated, expected, check_exact=True)


def test_the_leakage_check_can_fail(world, repository):
    """Guard the property test: leaking one later order into the past must be noticed."""
    sources = _sources(world)
    cutoff = world.start + timedelta(days=300)
    truncated = _before(sources, cutoff)
    later = sources["transactions"][sources["transactions"]["timestamp"] >= pd.Timestamp(cutoff)]
    leaked = later.iloc[[0]].assign(timestamp=pd.Timestamp(cutoff) - pd.Timedelta(hours=1))
    truncated["transactions"] = pd.concat([truncated["transactions"], leaked], ignore_index=True)
    clean = compute_features(repository, _before(sources, cutoff), cutoff)
    dirty = compute_features(repository, truncated, cutoff)
    assert not clean.equals(dirty)


def _with_order(stamp: str) -> dict[str, pd.DataFrame]:
    """The tiny dataset plus one order of 10 and one web visit of customer F at ``stamp``."""
    sources = tiny_sources()
    moment = pd.Timestamp(stamp).as_unit("us")
    order = {"customer_id": "F", "timestamp": moment, "amount": 10.0, "category": "toys"}
    visit = {"customer_id": "F", "timestamp": moment, "type": "web_visit"}
    for name, row in (("transactions", order), ("interactions", visit)):
        sources[name] = pd.concat([sources[name], pd.DataFrame([row])], ignore_index=True)
    return sources


def test_an_event_exactly_at_the_cutoff_is_excluded(repository, engine):
    base = compute_features(repository, tiny_sources(), "2024-03-01", engine=engine)
    at_cutoff = compute_features(
        repository, _with_order("2024-03-01 00:00:00"), "2024-03-01", engine=engine
    )
    pd.testing.assert_frame_equal(at_cutoff, base)


def test_an_event_one_second_earlier_is_included(repository, engine):
    frame = compute_features(
        repository, _with_order("2024-02-29 23:59:59"), "2024-03-01", engine=engine
    )
    customer = frame.set_index("customer_id").loc["F"]
    assert customer["frequency"] == 1
    assert customer["orders_30d"] == 1
    assert customer["spend_30d"] == 10.0
    assert customer["recency_days"] == 1.0
    assert customer["web_visits_30d"] == 1
    assert customer["days_since_web_visit"] == 1.0
    assert customer["btyd_T"] == 1.0
