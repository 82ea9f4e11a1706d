"""``--engine spark`` builds snapshots: what is Spark's own (the command line, Parquet staging,
the manifest, a missing pyspark). The feature values themselves are checked on every engine
(test_features_values.py, test_features_leakage.py); here the default repository is built on
the small simulated world by the command line on Spark and compared with DuckDB's snapshot:
same schema and id, integers and text exactly equal, floats within 1e-9 relative. Skipped
when pyspark is not installed (see ``spark`` in conftest.py).
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
from test_features_values import REPO

CUTOFF = "2025-01-01"
KEY = "customer_id"


@pytest.fixture(scope="module")
def sources(world_dir):
    return resolve_data(world_dir)


@pytest.fixture(scope="module")
def duckdb_store(tmp_path_factory, sources):
    store = FeatureStore(tmp_path_factory.mktemp("duckdb") / "store", load_repository(REPO))
    store.build(sources, CUTOFF)
    return store


@pytest.fixture(scope="module")
def spark_built(world_dir, tmp_path_factory, spark):
    """``retain features build --engine spark`` into a new store; its snapshot's Parquet."""
    store = tmp_path_factory.mktemp("spark") / "store"
    result = CliRunner().invoke(
        app,
        ["features", "build", "--data", str(world_dir), "--as-of", CUTOFF]
        + ["--store", str(store), "--repo", str(REPO), "--engine", "spark"],
    )
    assert result.exit_code == 0, result.output
    (parquet,) = store.glob("snapshots/as_of=*/*.parquet")
    return parquet


@pytest.mark.spark
def test_the_command_line_builds_duckdbs_snapshot_on_spark(spark_built, duckdb_store):
    expected = duckdb_store.find(pd.Timestamp(CUTOFF).date())
    assert spark_built.stem == expected.snapshot_id  # the id does not depend on the engine
    assert pq.read_schema(spark_built).equals(pq.read_schema(expected.path), check_metadata=False)
    found, wanted = pd.read_parquet(spark_built), pd.read_parquet(expected.path)
    assert list(found.columns) == list(wanted.columns) and len(found) == len(wanted) > 1000
    assert found.dtypes.to_dict() == wanted.dtypes.to_dict()
    pd.testing.assert_series_equal(found[KEY], wanted[KEY])
    for name in found.columns:
        if pd.api.types.is_float_dtype(found[name]):
            np.testing.assert_allclose(
                found[name], wanted[name], rtol=1e-9, atol=0, equal_nan=True, err_msg=name
            )
        else:
            pd.testing.assert_series_equal(found[name], wanted[name], check_exact=True)
    assert found["purchase_gap_std_days"].isna().any()  # missing values compared too


@pytest.mark.spark
def test_the_manifest_records_the_spark_engine_and_its_staging(spark_built):
    manifest = json.loads(spark_built.with_suffix(".json").read_text())
    engine = manifest["engine"]
    assert engine["backend"] == "spark"
    assert engine["master"] == "local[2]" and engine["sources"] == "parquet"
    store = spark_built.parents[2]
    staged = store / "sources" / f"{manifest['source_fingerprint']}-parquet"
    assert sorted(path.name for path in staged.glob("*.parquet")) == [
        "cost_events.parquet",  # derived from the others (and the costs log)
        "customers.parquet",
        "interactions.parquet",
        "transactions.parquet",
    ]


def test_a_snapshot_built_by_duckdb_is_found_by_every_engine(duckdb_store, sources, engine):
    results = duckdb_store.build(sources, CUTOFF, engine=engine)
    assert not any(result.built for result in results)
    info = duckdb_store.find(pd.Timestamp(CUTOFF).date())
    assert info.manifest["engine"]["backend"] == "duckdb"


def test_engine_spark_without_pyspark_exits_2(world_dir, tmp_path):
    """Without pyspark (made unimportable in a fresh interpreter) the command names the extra
    to install, exits 2 and writes nothing."""
    code = "import sys; sys.modules['pyspark'] = None; from retain.cli import app; app()"
    store = tmp_path / "store"
    args = ["features", "build", "--data", str(world_dir), "--as-of", CUTOFF]
    args += ["--store", str(store), "--repo", str(REPO), "--engine", "spark"]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pip install 'retain[spark]'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not store.exists()
