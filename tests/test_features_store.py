"""The snapshot store: determinism, skip-when-unchanged, rebuilds, manifests and retrieval."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from retain.errors import RetainError
from retain.features import (
    CutoffError,
    CutoffWarning,
    FeatureStore,
    Repository,
    WindowAggregate,
    compute_features,
    get_features,
    load_repository,
)
from test_features_values import REPO, tiny_sources

CUTOFFS = ["2024-01-01", "2024-03-01"]


@pytest.fixture(scope="module")
def repository() -> Repository:
    return load_repository(REPO)


def _files(root) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted((root / "snapshots").rglob("*.parquet"))
    }


def test_build_writes_one_snapshot_and_manifest_per_cutoff(tmp_path, repository):
    store = FeatureStore(tmp_path / "store", repository)
    results = store.build(tiny_sources(), CUTOFFS)
    assert [result.as_of for result in results] == [date(2024, 1, 1), date(2024, 3, 1)]
    assert all(result.built for result in results)
    for result in results:
        assert result.path.parent.name == f"as_of={result.as_of}"
        manifest = json.loads(result.path.with_suffix(".json").read_text())
        assert manifest["snapshot_id"] == result.snapshot_id == result.path.stem
        assert manifest["views"] == repository.versions
        assert manifest["features"] == list(repository.feature_names)
        assert manifest["rows"] == result.rows == len(pd.read_parquet(result.path))
        assert manifest["categories"]["region"][-1] == "other"
        assert manifest["source_fingerprint"] and manifest["build_seconds"] >= 0
        assert manifest["engine"]["backend"] == "duckdb"
    assert results[1].rows == 5
    registry = json.loads((tmp_path / "store" / "registry.json").read_text())
    assert set(registry["views"]) == set(repository.versions)
    fingerprint = manifest["source_fingerprint"]
    assert (tmp_path / "store" / "sources" / fingerprint / "sources.duckdb").is_file()


def test_snapshots_equal_compute_features(tmp_path, repository):
    store = FeatureStore(tmp_path / "store", repository)
    result = store.build(tiny_sources(), "2024-03-01")[0]
    expected = compute_features(repository, tiny_sources(), "2024-03-01")
    pd.testing.assert_frame_equal(pd.read_parquet(result.path), expected)


def test_unchanged_snapshots_are_skipped(tmp_path, repository):
    store = FeatureStore(tmp_path / "store", repository)
    first = store.build(tiny_sources(), CUTOFFS)
    stamps = [result.path.stat().st_mtime_ns for result in first]
    again = store.build(tiny_sources(), [*CUTOFFS, "2024-02-01"])
    assert [result.built for result in again] == [False, True, False]
    assert [again[0].path.stat().st_mtime_ns, again[2].path.stat().st_mtime_ns] == stamps
    assert [again[0].snapshot_id, again[2].snapshot_id] == [r.snapshot_id for r in first]


def test_same_inputs_give_byte_identical_snapshots(tmp_path, repository, world):
    sources = {"customers": world.customers, "transactions": world.transactions}
    one = FeatureStore(tmp_path / "one", repository)
    two = FeatureStore(tmp_path / "two", repository)
    one.build(sources, ["2024-06-01", "2025-06-01"])
    two.build(sources, ["2024-06-01", "2025-06-01"], strategy="joined")
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    assert len(_files(tmp_path / "one")) == 2


def test_changed_definition_or_source_makes_a_new_snapshot(tmp_path, repository):
    store = FeatureStore(tmp_path / "store", repository)
    original = store.build(tiny_sources(), "2024-03-01")[0]
    purchases = repository.view("purchases")
    wider = replace(
        purchases,
        features=(*purchases.features, WindowAggregate("orders_730d", "count", window_days=730)),
    )
    changed = Repository.from_views([wider, *(v for v in repository.views if v is not purchases)])
    redefined = FeatureStore(tmp_path / "store", changed).build(tiny_sources(), "2024-03-01")[0]
    assert redefined.built and redefined.snapshot_id != original.snapshot_id
    assert "orders_730d" in pd.read_parquet(redefined.path).columns
    sources = tiny_sources()
    sources["transactions"].loc[0, "amount"] = 101.0
    resourced = store.build(sources, "2024-03-01")[0]
    assert resourced.built
    assert resourced.snapshot_id not in {original.snapshot_id, redefined.snapshot_id}
    assert len(store.snapshots(date(2024, 3, 1))) == 3
    assert [store.is_current(info) for info in store.snapshots()].count(True) == 2


def test_a_cutoff_before_the_first_event_fails_before_writing(tmp_path, repository):
    store = FeatureStore(tmp_path / "store", repository)
    with pytest.raises(CutoffError, match="before the first event"):
        store.build(tiny_sources(), ["2024-03-01", "2023-07-01"])
    assert not (tmp_path / "store").exists()


def test_a_cutoff_long_after_the_data_warns(tmp_path, repository):
    store = FeatureStore(tmp_path / "store", repository)
    with pytest.warns(CutoffWarning, match="after the last event"):
        store.build(tiny_sources(), "2024-06-01")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CutoffWarning)
        store.build(tiny_sources(), "2024-03-15")  # a fortnight after the data: normal scoring


def test_get_features_serves_training_and_scoring(tmp_path, repository):
    root = tmp_path / "store"
    training = get_features(CUTOFFS, store=root, repo=repository, data=tiny_sources())
    assert sorted(training["as_of"].unique()) == [pd.Timestamp(day) for day in CUTOFFS]
    scoring = get_features("2024-03-01", ["B", "A", "Z"], store=root, repo=repository)
    assert list(scoring["customer_id"]) == ["A", "B"]
    expected = training[training["as_of"] == pd.Timestamp("2024-03-01")]
    expected = expected[expected["customer_id"].isin(["A", "B"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(scoring, expected)
    engagement = get_features("2024-03-01", store=root, repo=repository, views=["engagement"])
    assert list(engagement.columns[:3]) == ["customer_id", "as_of", "support_tickets_30d"]
    assert "frequency" not in engagement.columns


def test_get_features_encodes_categories_identically(tmp_path, repository):
    frame = get_features(
        CUTOFFS, store=tmp_path / "s", repo=repository, data=tiny_sources(), as_categorical=True
    )
    channel = frame["acquisition_channel"]
    assert list(channel.cat.categories) == [
        "paid_search", "social", "referral", "organic", "affiliate", "other",
    ]  # fmt: skip
    assert channel[frame["customer_id"] == "B"].cat.codes.tolist() == [5]


def test_get_features_without_a_snapshot_says_how_to_build_it(tmp_path, repository):
    with pytest.raises(RetainError, match="retain features build"):
        get_features("2024-03-01", store=tmp_path / "empty", repo=repository)
