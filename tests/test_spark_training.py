"""Training on Spark: DuckDB's labels and rows, xgboost.spark trees, the embedded engine's models.

One workspace of its own (the 3k-customer world), so its registry is not the one other tests
promote in: DuckDB trains the first churn champion, then Spark trains churn and CLV into it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

pytest.importorskip("pyspark")
pytest.importorskip("xgboost.spark")

from retain.cli import app
from retain.features import open_sources, open_store
from retain.mlflow import registry
from retain.models import ChurnClassifier, CLVModel, SpendRegressor
from retain.models._xgboost import encode_features
from retain.spark import labels as spark_labels
from retain.spark.training import SparkTrainer, encode
from retain.training import labels as duckdb_labels
from retain.training.clv import margin_share
from retain.training.config import load_config
from retain.training.dataset import build_training_set
from retain.training.jobs import run_training

CUTOFFS = [date(2024, 1, 1), date(2024, 11, 1), date(2025, 7, 1), date(2025, 10, 1)]


@pytest.fixture(scope="module")
def workspace(world_dir, make_workspace, mlflow_isolation):
    """A workspace like ``trained_workspace`` with its own MLflow store."""
    settings = {
        "retain.yaml": "spark:\n  xgboost_workers: 2\n",
        "cluster.yaml": "xgboost_workers: 2\n",  # for --spark-config
    }
    folder = make_workspace("spark_training", data=world_dir, files=settings)
    with mlflow_isolation():
        yield folder


@pytest.fixture(scope="module")
def churn_inputs(workspace):
    config = load_config("churn", workspace=workspace)
    return config, open_sources(config, workspace=workspace), open_store(config, workspace)


@pytest.fixture(scope="module")
def duckdb_churn(workspace):
    return run_training("churn", workspace=workspace)[0]


@pytest.fixture(scope="module")
def spark_churn(spark, workspace, duckdb_churn):
    return run_training("churn", workspace=workspace, engine="spark")[0]


@pytest.fixture(scope="module")
def trainer(spark):
    engine = SparkTrainer(spark, workers=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def spark_set(churn_inputs, trainer):
    return trainer.training_set(*churn_inputs)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["as_of", "customer_id"], ignore_index=True)


def test_spark_labels_equal_the_duckdb_labels(spark, churn_inputs):
    _, sources, _ = churn_inputs
    table = sources.tables["transactions"]
    transactions = spark_labels.transactions_frame(spark, table)
    for horizon, active in ((90, 365), (365, 120)):
        expected = duckdb_labels.outcomes(
            table, CUTOFFS, horizon_days=horizon, active_days=active, margin_rate=0.25
        )
        found = spark_labels.outcomes(
            transactions, CUTOFFS, horizon_days=horizon, active_days=active, margin_rate=0.25
        ).toPandas()
        found["as_of"] = pd.to_datetime(found["as_of"]).astype("datetime64[us]")
        assert len(expected) > 1000 and expected["churned"].any()
        pd.testing.assert_frame_equal(_sorted(found), _sorted(expected), check_dtype=False)
    active = spark_labels.active_customers(transactions, CUTOFFS, 365).toPandas()
    assert len(active) == len(duckdb_labels.active_customers(table, CUTOFFS, 365))
    share = spark_labels.margin_share(transactions, CUTOFFS[-1], 0.3)
    assert share == pytest.approx(margin_share(table, CUTOFFS[-1], 0.3), rel=1e-12)


def test_spark_training_set_has_the_duckdb_rows_and_manifest(churn_inputs, spark_set):
    expected, found = build_training_set(*churn_inputs), spark_set
    assert found.features == expected.features and found.split == expected.split
    manifest = {k: v for k, v in found.manifest.items() if k not in ("engine", "driver_train_rows")}
    assert manifest == expected.manifest
    assert found.manifest["driver_train_rows"] == expected.manifest["train_rows"]
    pd.testing.assert_frame_equal(found.frame, expected.frame, check_dtype=False)
    categorical = found.frame.select_dtypes("category").columns
    assert list(categorical) == list(expected.frame.select_dtypes("category").columns)
    assert found.class_counts("churned") == expected.class_counts("churned")


def test_spark_encoding_is_the_pandas_encoding(spark_set, trainer):
    training_set = spark_set
    features = list(training_set.features)
    fitted = ChurnClassifier(n_estimators=2).fit(
        training_set.train[features], training_set.train["churned"]
    )
    encoding = trainer._encoding(training_set)
    assert encoding == fitted.encoding_ and encoding.categories
    rows = training_set.rows.where("split = 'validation'").orderBy("customer_id")
    spark_input = encode(rows, encoding, rows["churned"]).toPandas()[features]
    valid = training_set.validation.sort_values("customer_id")
    pandas_input = encode_features(valid, encoding.feature_names, encoding.categories)
    for name in features:
        column = pandas_input[name]
        values = column.cat.codes.replace(-1, np.nan) if column.dtype == "category" else column
        np.testing.assert_array_equal(spark_input[name].to_numpy(float), values.to_numpy(float))


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_spark_churn_is_tracked_and_registered_as_on_duckdb(spark_churn, duckdb_churn):
    assert spark_churn.metrics.keys() == duckdb_churn.metrics.keys()
    client = MlflowClient()
    assert _artifacts(client, spark_churn.run_id) == _artifacts(client, duckdb_churn.run_id)
    run = client.get_run(spark_churn.run_id)
    assert run.data.params.keys() == client.get_run(duckdb_churn.run_id).data.params.keys()
    assert spark_churn.manifest["engine"] == "spark"
    assert spark_churn.version == "2"
    auc, expected = (r.metrics["valid.model_roc_auc"] for r in (spark_churn, duckdb_churn))
    assert abs(auc - expected) < 0.02, (auc, expected)
    assert (
        spark_churn.metrics["valid.model_roc_auc"]
        > spark_churn.metrics["valid.recency_rule_roc_auc"]
    )


def test_registered_spark_churn_model_scores_pandas_frames(spark_churn, spark_set):
    loaded = registry.load_model("churn", spark_churn.version)
    assert type(loaded) is ChurnClassifier and loaded.best_iteration_ > 0
    X = spark_set.validation[list(spark_churn.manifest["features"])]
    as_text = X.astype({name: object for name in X.select_dtypes("category").columns})
    probability = loaded.predict_proba(as_text)
    assert probability.shape == (len(X), 2)
    np.testing.assert_allclose(probability, spark_churn.model.predict_proba(X))
    contributions = loaded.contributions(X.head(50))
    np.testing.assert_allclose(
        contributions.sum(axis=1), loaded.predict_margin(X.head(50)), rtol=1e-5, atol=1e-5
    )


def test_train_clv_on_spark_from_the_command_line(spark, workspace, duckdb_churn):
    result = CliRunner().invoke(
        app,
        ["train", "clv", "--engine", "spark", "--spark-config", str(workspace / "cluster.yaml"),
         "--workspace", str(workspace)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "retain-clv" in result.output
    version = registry.champion("clv")
    assert version is not None and str(version.version) == "1"
    model = registry.load_model("clv")
    assert type(model) is CLVModel and type(model.ml_.regressor_) is SpendRegressor
    assert set(model.validation_gini_) == {"btyd", "ml"}
    assert min(model.validation_gini_.values()) > 0.5
    run = MlflowClient().get_run(version.run_id)
    assert run.data.metrics["valid.ml_gini"] == pytest.approx(model.validation_gini_["ml"])


def test_unknown_engine_is_refused(workspace):
    from retain.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown engine 'polars'"):
        run_training("churn", workspace=workspace, engine="polars")


def test_features_left_out_are_decided_alike_on_spark(spark):
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from retain.spark.training import _column_profile
    from retain.training.dataset import column_profile, uninformative_features

    frame = pd.DataFrame(
        {
            "varies": [1.0, 2.0, np.nan, 1.0],
            "constant": [3.0, 3.0, np.nan, 3.0],
            "empty": [np.nan] * 4,
            "text": ["a", "a", None, "a"],
            "texts": ["a", "b", "a", None],
        }
    )
    features = tuple(frame.columns)
    schema = StructType(
        [StructField(name, StringType() if name.startswith("text") else DoubleType())
         for name in features]
    )  # fmt: skip
    rows = [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]
    on_spark = _column_profile(spark.createDataFrame(rows, schema), features)
    pd.testing.assert_frame_equal(on_spark, column_profile(frame, features))
    assert uninformative_features(on_spark) == {
        "constant": "constant", "empty": "all missing", "text": "constant"
    }  # fmt: skip
