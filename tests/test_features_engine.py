"""The DuckDB engine's fast paths give exactly the values of the plain path.

Staged sources (and in-memory frames on DuckDB) carry integer key codes, value codes of small
text columns, ENUM text columns, epoch days and millionths; the compiler then groups and joins
on integers and counts distinct values with bitmasks. Tables without any of that take the
plain path (``DuckDBEngine(coded=False)``, what every backend can run, Spark included). Both
must agree to the last bit, on the default repository and on the edge cases of each shortcut.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from retain.engines.duckdb import DuckDBEngine
from retain.engines.layout import MASK_BITS
from retain.engines.staging import (
    DATABASE,
    KEYS,
    encode_keys,
    is_current,
    open_staged,
    stage_sources,
    staged_tables,
)
from retain.features import (
    Entity,
    FeatureStore,
    FeatureView,
    Recency,
    Repository,
    WindowAggregate,
    col,
    compute_features,
    load_repository,
)
from retain.features.engine import BLOCKS, in_key_order, small_columns
from retain.features.inputs import resolve_data
from test_features_values import REPO, tiny_sources

CUTOFFS = ["2024-06-01", "2025-06-01"]
customer = Entity("customer", join_key="customer_id")


@pytest.fixture(scope="module")
def repository() -> Repository:
    return load_repository(REPO)


@pytest.fixture(scope="module")
def sources(world) -> dict[str, pd.DataFrame]:
    return {
        "customers": world.customers,
        "transactions": world.transactions,
        "interactions": world.interactions,
    }


def plain(views, sources, as_of, strategy="per_cutoff") -> pd.DataFrame:
    """The features from tables without codes: the plain, portable path."""
    engine = DuckDBEngine(coded=False)
    with engine.connect(resolve_data(sources)) as connection:
        columns = [name for table in connection.tables.values() for name in table.columns]
        assert not any(name.startswith(("_code_", "_key", "_day_")) for name in columns)
    return compute_features(views, sources, as_of, engine=engine, strategy=strategy)


@pytest.mark.parametrize("strategy", ["per_cutoff", "joined"])
def test_coded_and_plain_paths_agree(repository, sources, strategy):
    coded = compute_features(repository, sources, CUTOFFS, strategy=strategy)
    expected = plain(repository, sources, CUTOFFS, strategy=strategy)
    pd.testing.assert_frame_equal(coded, expected, check_exact=True)
    counts = [f.name for v in repository.views for f in v.features if _is_count(f)]
    assert all(coded[name].dtype == np.int64 for name in counts)
    assert len(coded) > 1000


def _is_count(feature) -> bool:
    return isinstance(feature, WindowAggregate) and feature.agg in ("count", "count_distinct")


def test_staged_snapshots_equal_the_plain_path(tmp_path, repository, sources):
    store = FeatureStore(tmp_path / "store", repository)
    results = store.build(sources, CUTOFFS)
    built = pd.concat([pd.read_parquet(result.path) for result in results], ignore_index=True)
    pd.testing.assert_frame_equal(built, plain(repository, sources, CUTOFFS), check_exact=True)


def test_staged_tables_hold_codes_enums_days_and_millionths(tmp_path, sources):
    data = resolve_data(sources)
    database = stage_sources(data, tmp_path / "staged")
    assert is_current(database)
    with duckdb.connect(str(database), read_only=True) as con:
        types = {row[0]: row[1] for row in con.execute("DESCRIBE transactions").fetchall()}
        assert types["_key"] == "INTEGER" and types["_code_channel"] == "TINYINT"
        assert types["channel"].startswith("ENUM(")
        # the stored derived columns are exactly what the compiler computes
        (wrong,) = con.execute(
            """SELECT count(*) FROM transactions WHERE
            "_day_timestamp" != DATE_DIFF('DAY', MAKE_DATE(1970, 1, 1), CAST("timestamp" AS DATE))
            OR "_micros_amount" != CAST(ROUND("amount" * 1000000, 0) AS BIGINT)"""
        ).fetchone()
        assert wrong == 0
    backend, tables = open_staged(database)
    try:
        for name in ("transactions", "interactions", "customers"):
            stored = backend.con.sql(f"SELECT * FROM {name} LIMIT 0").to_arrow_table()
            assert set(tables[name].columns) == set(stored.column_names)
        # freed memory goes back to the system during a build (peak RSS of multi-cutoff builds)
        setting = "SELECT current_setting('allocator_background_threads')"
        assert backend.con.execute(setting).fetchone() == (True,)
        spill = backend.con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        assert spill == f"{database}.tmp"
    finally:
        backend.disconnect()


def test_a_database_staged_in_an_older_format_is_read_plainly_then_restaged(tmp_path, repository):
    data = resolve_data(tiny_sources())
    folder = tmp_path / "staged"
    folder.mkdir()
    with duckdb.connect(str(folder / DATABASE)) as con:  # what the first version staged
        for name, table in data.tables.items():
            con.register("_incoming", table)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
            con.unregister("_incoming")
    assert not is_current(folder / DATABASE)
    backend, tables = open_staged(folder / DATABASE)
    try:
        assert KEYS not in tables and "_key" not in tables["transactions"].columns
    finally:
        backend.disconnect()
    stage_sources(data, folder)
    assert is_current(folder / DATABASE)


def test_key_codes_follow_the_order_of_the_ids():
    tables = {
        "customers": pa.table({"customer_id": ["b", "a"]}),
        "transactions": pa.table({"customer_id": ["c", "b", None, "c"]}),
        "interactions": pa.table({"customer_id": pa.array([], pa.string())}),
    }
    coded, keys = encode_keys(tables)
    assert keys.column("customer_id").to_pylist() == ["a", "b", "c"]
    assert keys.column("_key").to_pylist() == [0, 1, 2]
    assert coded["customers"].column("_key").to_pylist() == [1, 0]
    assert coded["transactions"].column("_key").to_pylist() == [2, 1, None, 2]


def _many_values(count: int, customers: int = 40, rows: int = 600) -> dict[str, pd.DataFrame]:
    """Transactions whose ``category`` takes ``count`` values (all of them used)."""
    rng = np.random.default_rng(count)
    values = [f"c{index:03d}" for index in range(count)]
    chosen = np.concatenate([values, rng.choice(values, rows - count)])
    frame = pd.DataFrame(
        {
            "customer_id": [f"K{index % customers:02d}" for index in range(rows)],
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 300, rows), "D"),
            "amount": rng.choice([-5.0, 10.0, 20.5], rows),
            "category": chosen,
            "channel": rng.choice(["web", "app", None], rows),
        }
    )
    return {"transactions": frame}


@pytest.mark.parametrize("count", [MASK_BITS, MASK_BITS + 1])
def test_distinct_counts_at_the_edge_of_the_bitmask(tmp_path, count):
    sources = _many_values(count)
    view = FeatureView(
        name="variety",
        entity=customer,
        source="transactions",
        features=[
            WindowAggregate("categories", "count_distinct", "category", where=col("amount") > 0),
            WindowAggregate("categories_90d", "count_distinct", "category", window_days=90),
            WindowAggregate("channels", "count_distinct", "channel"),
        ],
    )
    repository = Repository.from_views([view])
    with DuckDBEngine(coded=False).connect(resolve_data(sources)) as connection:
        small = small_columns(repository, connection)  # counted: no statistics staged
    assert (("transactions", "category") in small) == (count <= MASK_BITS)
    as_of = date(2024, 10, 1)
    frame = sources["transactions"]
    before = frame[frame["timestamp"] < pd.Timestamp(as_of)]
    expected = {
        "categories": before[before["amount"] > 0].groupby("customer_id")["category"].nunique(),
        "channels": before.groupby("customer_id")["channel"].nunique(),
    }
    store = FeatureStore(tmp_path / "store", repository)
    staged = pd.read_parquet(store.build(sources, as_of)[0].path).set_index("customer_id")
    for result in (compute_features(repository, sources, as_of), plain(repository, sources, as_of)):
        result = result.set_index("customer_id")
        pd.testing.assert_frame_equal(result, staged, check_exact=True)
        for name, counts in expected.items():
            assert result[name].to_dict() == counts.reindex(result.index, fill_value=0).to_dict()


def test_filters_on_enum_columns_behave_as_on_text(tmp_path):
    sources = tiny_sources()
    view = FeatureView(
        name="oddities",
        entity=customer,
        source="interactions",
        features=[
            WindowAggregate("never", "count", where=col("type") == "not_a_type"),
            WindowAggregate("not_never", "count", where=col("type") != "not_a_type"),
            WindowAggregate("early_types", "count", where=col("type") < "f"),
            WindowAggregate("late_types", "count", where=col("type") >= "survey"),
            WindowAggregate("some", "count", where=col("type").isin(["survey", "nothing"])),
            Recency("since_unknown", where=col("type") == "not_a_type"),
        ],
    )
    as_of = "2024-03-01"
    store = FeatureStore(tmp_path / "store", Repository.from_views([view]))
    staged = pd.read_parquet(store.build(sources, as_of)[0].path)
    pd.testing.assert_frame_equal(staged, plain([view], sources, as_of), check_exact=True)
    rows = staged.set_index("customer_id")
    assert rows["never"].sum() == 0 and rows["since_unknown"].isna().all()
    assert rows.loc["A", "early_types"] == 1  # the complaint on 02-28 (not the one on 03-02)
    assert rows.loc["E", "early_types"] == 2  # email_click, email_open
    assert rows.loc["A", "some"] == 2  # two surveys
    assert rows.loc["A", "late_types"] == 4  # two surveys, two web visits


def test_staged_tables_code_every_id_and_the_small_text_columns(sources):
    tables = staged_tables(resolve_data(sources).tables)
    ids = set().union(*(set(frame["customer_id"]) for frame in sources.values()))
    assert tables[KEYS].num_rows == len(ids)
    assert {"_code_type", "_code_channel"} <= set(tables["interactions"].column_names)
    counts = {
        (r["source"], r["column"]): r["distinct_values"] for r in tables["_columns"].to_pylist()
    }
    assert counts[("interactions", "type")] == sources["interactions"]["type"].nunique()


def test_strategies_agree_on_the_coded_path(repository, sources):
    """Run per cutoff, the query groups by key alone (one cutoff at a time); joined, by key
    and cutoff: the same snapshots."""
    per_cutoff = compute_features(repository, sources, CUTOFFS, strategy="per_cutoff")
    joined = compute_features(repository, sources, CUTOFFS, strategy="joined")
    pd.testing.assert_frame_equal(per_cutoff, joined, check_exact=True)


@pytest.mark.parametrize("blocks", [1, 3, BLOCKS, BLOCKS + 1])
def test_rows_are_put_in_key_order(blocks):
    """A table made of a few blocks of rows in code order is reassembled from zero-copy slices
    of them (one chunk each); with more blocks, rows are taken one by one. Either way the
    rows come out in code order."""
    rng = np.random.default_rng(blocks)
    codes = np.sort(rng.choice(10_000, 3_000, replace=False)).astype(np.int32)
    shuffled = np.concatenate(np.array_split(codes, blocks)[::-1])  # blocks in reverse
    table = pa.table({"_key": shuffled, "value": shuffled.astype(np.float64) / 7})
    ordered = in_key_order(table)
    assert ordered.column("_key").to_numpy().tolist() == codes.tolist()
    assert ordered.column("value").to_numpy().tolist() == (codes / 7).tolist()
    if blocks == 1:
        assert ordered is table
    else:
        assert ordered.column("value").num_chunks == (blocks if blocks <= BLOCKS else 1)
