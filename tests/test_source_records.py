"""Sources read when needed: folders known by their files, records in the store, memory builds."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pyarrow.parquet as pq
import pytest

from retain.data import load_dataset
from retain.errors import DataError, RetainError
from retain.features import FeatureStore, load_repository, resolve_data
from retain.features.inputs import mapped
from test_data_contract import CUSTOMERS, INTERACTIONS, TRANSACTIONS, make_data

CUTOFF = date(2025, 6, 1)
EARLIER = date(2025, 3, 1)


@pytest.fixture(scope="module")
def repository():
    from pathlib import Path

    return load_repository(Path(__file__).resolve().parents[1] / "features")


@pytest.fixture
def data(world_dir, tmp_path):
    return shutil.copytree(world_dir, tmp_path / "data")


def test_a_folder_is_fingerprinted_without_reading_a_table(data):
    sources = resolve_data(data)
    assert not sources.loaded
    dataset = load_dataset(data)
    assert sources.fingerprint == dataset.fingerprint
    expected = resolve_data(dataset)
    assert sources.notes == expected.notes and sources.loaded
    for name, table in expected.tables.items():
        assert sources.tables[name].equals(table), name
    assert sources.event_range == expected.event_range


def test_released_tables_are_read_again_when_needed(data):
    sources = resolve_data(data)
    before = sources.tables["transactions"]
    sources.release()
    assert not sources.loaded
    assert sources.tables["transactions"].equals(before)


def test_mapped_tables_equal_the_tables(world):
    tables = resolve_data({"transactions": world.transactions}).tables
    copies = mapped(dict(tables), above=0)
    assert all(copies[name].equals(table) for name, table in tables.items())


def test_one_cutoff_is_built_from_memory_and_equals_the_staged_build(data, repository, tmp_path):
    memory = FeatureStore(tmp_path / "memory", repository)
    [built] = memory.build(data, CUTOFF)
    manifest = json.loads(built.path.with_suffix(".json").read_text())
    assert manifest["engine"]["sources"] == "memory"
    assert not (memory.root / "sources" / manifest["source_fingerprint"]).exists()
    staged = FeatureStore(tmp_path / "staged", repository)
    results = staged.build(data, [EARLIER, CUTOFF])
    assert (staged.root / "sources" / manifest["source_fingerprint"]).exists()
    assert results[1].snapshot_id == built.snapshot_id
    assert results[1].path.read_bytes() == built.path.read_bytes()


def test_a_store_knows_data_it_has_read_by_their_files(data, repository, tmp_path):
    store = FeatureStore(tmp_path / "store", repository)
    first = store.sources(data)
    store.build(first, CUTOFF)
    assert first.loaded
    again = store.sources(data)
    assert not again.loaded
    assert again.event_range == first.event_range and again.notes == first.notes
    [result] = store.build(again, CUTOFF)
    assert not result.built and not again.loaded  # found by fingerprint: no table read
    # a record written by another version of retain is not trusted
    record = store.root / "sources" / f"{first.fingerprint}.json"
    record.write_text(record.read_text().replace('"retain": "', '"retain": "old-'))
    other = store.sources(data)
    assert other.event_range == first.event_range and other.loaded


def test_notes_of_known_data_come_from_the_record(tmp_path, repository):
    interactions = INTERACTIONS + "X7,2024-03-04,web_visit,\n"
    folder = make_data(
        tmp_path / "data", customers=CUSTOMERS, transactions=TRANSACTIONS, interactions=interactions
    )
    store = FeatureStore(tmp_path / "store", repository)
    store.build(folder, "2024-03-04")
    known = store.sources(folder)
    assert not known.loaded
    assert known.notes == load_dataset(folder).warnings and known.notes


def test_changed_files_are_read_and_checked_again(tmp_path, repository):
    folder = make_data(tmp_path / "data", customers=CUSTOMERS, transactions=TRANSACTIONS)
    store = FeatureStore(tmp_path / "store", repository)
    store.build(folder, "2024-03-04")
    (folder / "transactions.csv").write_text(TRANSACTIONS + "C1,2024-03-03,12;50\n")
    with pytest.raises(DataError) as caught:
        store.build(folder, "2024-03-04")
    [problem] = caught.value.problems
    assert (problem.table, problem.column, problem.samples) == (
        "transactions",
        "amount",
        ("12;50",),
    )
    assert problem.file == str(folder / "transactions.csv")


def test_sources_changed_while_read_are_refused(data, tmp_path):
    sources = resolve_data(data)
    frame = pq.read_table(data / "transactions.parquet").slice(0, 100)
    pq.write_table(frame, data / "transactions.parquet")
    with pytest.raises(RetainError, match="changed while being read"):
        assert sources.tables
