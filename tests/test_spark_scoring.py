"""Scoring on Spark writes the DuckDB engine's list: same customers, ranks, selection, values,
files and summary, the list written by Spark as one Parquet file (what is Spark's own; the
selection, ranking and tallies themselves are checked on every engine in test_engines.py)."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from retain.atomic import MARKER
from retain.serving import score
from retain.serving.contract import CSV_FILE, LIST_COLUMNS, LIST_FILE, SUMMARY_FILE, SUMMARY_KEYS
from retain.serving.experiment import CAMPAIGN_LOG
from retain.serving.pseudonyms import pseudonymize
from retain.serving.sheets import CONTACTS_CSV

AS_OF = date(2026, 1, 1)
BOUNDS = {"capacity": 300, "budget": 900.0}
FLOATS = ["churn_probability", "clv", "clv_if_retained", "value_at_risk", "action_cost",
          "save_rate", "expected_incremental_margin", "expected_churn_effect",
          "expected_net_gain", "recency_days", "frequency", "monetary_total"]  # fmt: skip
KEY = "k" * 32
pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def lists(spark, trained_models, trained_workspace):
    """The same cutoff scored by both engines, with a capacity and a budget."""
    folder = trained_workspace / "lists"
    duckdb = score(AS_OF, workspace=trained_workspace, out=folder / "duckdb", **BOUNDS)
    spark_list = score(
        AS_OF, workspace=trained_workspace, out=folder / "spark", engine="spark", **BOUNDS
    )
    return duckdb, spark_list


def _read(result) -> pd.DataFrame:
    return pd.read_parquet(result.out / LIST_FILE)


def test_same_customers_ranks_selection_and_values(lists):
    duckdb, spark = (_read(result) for result in lists)
    assert len(spark) == len(duckdb) > 1000
    assert spark["customer_id"].tolist() == duckdb["customer_id"].tolist()
    assert spark["rank"].tolist() == list(range(1, len(spark) + 1))
    assert spark["selected"].tolist() == duckdb["selected"].tolist()
    assert 0 < spark["selected"].sum() <= BOUNDS["capacity"]
    for name in FLOATS:
        np.testing.assert_allclose(spark[name], duckdb[name], rtol=0, atol=1e-9, err_msg=name)
    others = [name for name in LIST_COLUMNS if name not in FLOATS]
    pd.testing.assert_frame_equal(spark[others], duckdb[others])


def test_files_follow_the_contract(lists):
    duckdb, spark = lists
    schema = pq.read_schema(spark.out / LIST_FILE)
    assert schema.names == list(LIST_COLUMNS)
    expected = pq.read_schema(duckdb.out / LIST_FILE)
    assert [field.type for field in schema] == [field.type for field in expected]
    assert sorted(path.name for path in spark.out.iterdir()) == sorted(
        [CSV_FILE, LIST_FILE, SUMMARY_FILE, CONTACTS_CSV, CAMPAIGN_LOG, MARKER]
    )
    logs = [pd.read_csv(result.out / CAMPAIGN_LOG) for result in lists]
    pd.testing.assert_frame_equal(*logs)  # the same control groups on both engines
    csv, local_csv = (pd.read_csv(result.out / CSV_FILE) for result in lists)
    pd.testing.assert_frame_equal(csv, local_csv, check_exact=False, rtol=0, atol=1e-9)
    contacts, local_contacts = (pd.read_csv(result.out / CONTACTS_CSV) for result in lists)
    pd.testing.assert_frame_equal(contacts, local_contacts)
    pd.testing.assert_frame_equal(spark.frame, _read(spark))


def test_summary_has_the_same_keys_counts_and_totals(lists):
    duckdb, spark = (json.loads((result.out / SUMMARY_FILE).read_text()) for result in lists)
    assert set(spark) == set(duckdb) and set(spark) <= set(SUMMARY_KEYS)
    assert spark["counts"] == duckdb["counts"]
    assert spark["totals"] == duckdb["totals"]  # exact sums, whatever the engine
    numbers = {k for k, v in duckdb["selection"].items() if isinstance(v, float | int)}
    assert {k: spark["selection"][k] for k in numbers} == pytest.approx(
        {k: duckdb["selection"][k] for k in numbers}, rel=1e-9
    )
    assert {k: v for k, v in spark["selection"].items() if k not in numbers} == {
        k: v for k, v in duckdb["selection"].items() if k not in numbers
    }
    for key in ("models", "feature_views", "data_fingerprint", "horizons", "reasons_method"):
        assert spark[key] == duckdb[key], key
    drift = spark["drift"]
    assert drift["psi"] == pytest.approx(duckdb["drift"]["psi"], abs=1e-9)
    assert drift["drifted"] == duckdb["drift"]["drifted"]
    assert lists[1].run_id and lists[1].run_id != lists[0].run_id


def test_pseudonymized_ids_and_no_csv_above_the_limit(lists, trained_workspace, tmp_path):
    duckdb = lists[0]
    config = tmp_path / "score.yaml"
    config.write_text("csv_max_rows: 100\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RETAIN_PSEUDONYM_KEY", KEY)
        result = score(
            AS_OF, workspace=trained_workspace, config_path=config, out=tmp_path / "list",
            pseudonymize_ids=True, engine="spark", **BOUNDS,
        )  # fmt: skip
    assert not (result.out / CSV_FILE).exists()
    assert len(result.frame) == 100
    written = _read(result)
    assert len(written) == len(duckdb.frame)
    expected = pseudonymize(duckdb.frame["customer_id"], KEY.encode())
    assert written["customer_id"].tolist() == expected.tolist()
    assert result.summary["pseudonymized"] is True
