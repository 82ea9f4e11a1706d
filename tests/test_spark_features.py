"""``--engine spark``: the same snapshots as DuckDB, computed by Spark ``local[2]``.

The default feature repository is built on the small simulated world at two cutoffs by both
engines, through the store (the path ``retain features build`` takes), and every feature is
compared: same columns, types and rows, integers exactly equal, floats within 1e-9 relative,
missing values in the same places. Skipped when pyspark is not installed (see ``spark`` in
conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.features import FeatureStore, load_repository, resolve_data
from test_features_leakage import _with_order
from test_features_values import REPO, tiny_sources

CUTOFFS = ["2024-07-01", "2025-01-01"]
KEY = "customer_id"


@pytest.fixture(scope="module")
def repository():
    return load_repository(REPO)


@pytest.fixture(scope="module")
def sources(world_dir):
    return resolve_data(world_dir)


@pytest.fixture(scope="module")
def duckdb_store(tmp_path_factory, repository, sources):
    store = FeatureStore(tmp_path_factory.mktemp("duckdb") / "store", repository)
    store.build(sources, CUTOFFS)
    return store


@pytest.fixture(scope="module")
def spark_store(tmp_path_factory, repository, sources, spark):
    store = FeatureStore(tmp_path_factory.mktemp("spark") / "store", repository)
    results = store.build(sources, CUTOFFS, engine="spark")
    assert all(result.built for result in results)
    return store


def snapshot(store: FeatureStore, cutoff: str):
    """The snapshot of ``store`` at ``cutoff``: its info, its frame and its Parquet schema."""
    info = store.find(pd.Timestamp(cutoff).date())
    assert info is not None, f"no snapshot at {cutoff}"
    return info, pd.read_parquet(info.path), pq.read_schema(info.path)


def assert_same_features(spark: pd.DataFrame, duckdb: pd.DataFrame) -> None:
    """Same columns, dtypes, rows and keys; integers and text exactly equal, floats within
    1e-9 relative, missing values in the same places."""
    assert list(spark.columns) == list(duckdb.columns)
    assert spark.dtypes.to_dict() == duckdb.dtypes.to_dict()
    assert len(spark) == len(duckdb) > 1000
    pd.testing.assert_series_equal(spark[KEY], duckdb[KEY])
    for name in spark.columns:
        left, right = spark[name], duckdb[name]
        if pd.api.types.is_float_dtype(left):
            np.testing.assert_allclose(left, right, rtol=1e-9, atol=0, equal_nan=True, err_msg=name)
        else:
            pd.testing.assert_series_equal(left, right, check_exact=True)


@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_spark_snapshots_equal_duckdb_snapshots(spark_store, duckdb_store, cutoff):
    spark_info, spark_frame, spark_schema = snapshot(spark_store, cutoff)
    duckdb_info, duckdb_frame, duckdb_schema = snapshot(duckdb_store, cutoff)
    assert spark_schema.equals(duckdb_schema, check_metadata=False)
    assert_same_features(spark_frame, duckdb_frame)
    # the same definitions and data make the same snapshot, whichever engine built it
    assert spark_info.snapshot_id == duckdb_info.snapshot_id
    counts = [name for name in spark_frame.columns if spark_frame[name].dtype == np.int64]
    assert "frequency" in counts and "orders_90d" in counts
    assert spark_frame["purchase_gap_std_days"].isna().any()  # missing values compared too


def test_the_manifest_records_the_spark_engine(spark_store):
    info, _, _ = snapshot(spark_store, CUTOFFS[0])
    engine = info.manifest["engine"]
    assert engine["backend"] == "spark"
    assert engine["master"] == "local[2]" and engine["sources"] == "parquet"
    staged = spark_store.root / "sources" / f"{info.manifest['source_fingerprint']}-parquet"
    assert sorted(path.name for path in staged.glob("*.parquet")) == [
        "customers.parquet",
        "interactions.parquet",
        "transactions.parquet",
    ]


def test_a_snapshot_built_by_duckdb_is_not_rebuilt_by_spark(duckdb_store, sources, spark):
    results = duckdb_store.build(sources, CUTOFFS, engine="spark")
    assert not any(result.built for result in results)
    info, _, _ = snapshot(duckdb_store, CUTOFFS[0])
    assert info.manifest["engine"]["backend"] == "duckdb"


def test_cli_builds_with_engine_spark(world_dir, duckdb_store, tmp_path, spark):
    store = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        ["features", "build", "--data", str(world_dir), "--as-of", CUTOFFS[1]]
        + ["--store", str(store), "--repo", str(REPO), "--engine", "spark"],
    )
    assert result.exit_code == 0, result.output
    (parquet,) = store.glob("snapshots/as_of=*/*.parquet")
    manifest = json.loads(parquet.with_suffix(".json").read_text())
    assert manifest["engine"]["backend"] == "spark"
    _, expected, _ = snapshot(duckdb_store, CUTOFFS[1])
    assert_same_features(pd.read_parquet(parquet), expected)


def test_events_at_the_cutoff_are_excluded_on_spark(repository, tmp_path, spark):
    """An order and a visit exactly at ``as_of`` change nothing; one second earlier they count
    (the same cases as test_features_leakage.py, on Spark)."""
    as_of = "2024-03-01"
    built = {}
    for name, sources in (
        ("base", tiny_sources()),
        ("at", _with_order("2024-03-01 00:00:00")),
        ("before", _with_order("2024-02-29 23:59:59")),
    ):
        store = FeatureStore(tmp_path / name, repository)
        (result,) = store.build(sources, as_of, engine="spark")
        built[name] = pd.read_parquet(result.path)
    pd.testing.assert_frame_equal(built["at"], built["base"])
    customer = built["before"].set_index(KEY).loc["F"]
    assert customer["frequency"] == 1 and customer["orders_30d"] == 1
    assert customer["spend_30d"] == 10.0 and customer["recency_days"] == 1.0
    assert customer["web_visits_30d"] == 1 and customer["days_since_web_visit"] == 1.0
    duckdb = FeatureStore(tmp_path / "duckdb", repository).build(tiny_sources(), as_of)
    pd.testing.assert_frame_equal(built["base"], pd.read_parquet(duckdb[0].path))


def test_engine_spark_without_pyspark_exits_2(world_dir, tmp_path):
    """Without pyspark (made unimportable in a fresh interpreter) the command names the extra
    to install, exits 2 and writes nothing."""
    code = "import sys; sys.modules['pyspark'] = None; from retain.cli import app; app()"
    store = tmp_path / "store"
    args = ["features", "build", "--data", str(world_dir), "--as-of", CUTOFFS[0]]
    args += ["--store", str(store), "--repo", str(REPO), "--engine", "spark"]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pip install 'retain[spark]'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not store.exists()
