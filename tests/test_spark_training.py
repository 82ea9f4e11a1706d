"""Training on Spark: DuckDB's rows, xgboost.spark trees, the embedded engine's models.

What is Spark's own: the training rows kept on Spark (the driver's sample of them), the encoding
of xgboost.spark's input, trees grown by xgboost.spark and adopted by retain's estimators, and
the jobs run with ``--engine spark``. The labels and the statistics of training rows are checked
on every engine (test_training_sets.py, test_engines.py).

One workspace of its own (the 3k-customer world), so its registry is not the one other tests
promote in: DuckDB trains the first churn champion, then Spark trains churn and CLV into it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

pytest.importorskip("pyspark")
pytest.importorskip("xgboost.spark")

from retain.cli import app
from retain.engines.spark.training import encode, learn_encoding
from retain.features import open_sources, open_store
from retain.mlflow import registry
from retain.models import ChurnClassifier, CLVModel, SpendRegressor
from retain.models._xgboost import encode_features
from retain.training.config import load_config
from retain.training.dataset import build_training_set
from retain.training.jobs import run_training

pytestmark = pytest.mark.spark


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
def duckdb_set(churn_inputs):
    return build_training_set(*churn_inputs)


@pytest.fixture(scope="module")
def spark_engine(spark):
    from retain.engines.spark import SparkEngine, SparkSettings

    engine = SparkEngine(SparkSettings(xgboost_workers=1), session=spark)
    yield engine
    engine.release()


@pytest.fixture(scope="module")
def spark_set(churn_inputs, duckdb_set, spark_engine):
    return build_training_set(*churn_inputs, engine=spark_engine)  # DuckDB's snapshots, reused


def test_spark_training_set_has_the_duckdb_rows_and_manifest(duckdb_set, spark_set):
    expected, found = duckdb_set, spark_set
    assert found.features == expected.features and found.split == expected.split
    assert (found.manifest["engine"], expected.manifest["engine"]) == ("spark", "duckdb")
    assert {**found.manifest, "engine": ""} == {**expected.manifest, "engine": ""}
    pd.testing.assert_frame_equal(found.frame, expected.frame)
    assert found.class_counts("churned") == expected.class_counts("churned")


def test_spark_encoding_is_the_pandas_encoding(spark_set):
    training_set = spark_set
    features = list(training_set.features)
    fitted = ChurnClassifier(n_estimators=2).fit(
        training_set.train[features], training_set.train["churned"]
    )
    encoding = learn_encoding(training_set.rows, features, training_set.vocabularies)
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


def test_clv_with_costs_on_spark_learns_the_cost_as_on_duckdb(spark, make_workspace,
                                                               mlflow_isolation):  # fmt: skip
    """A world with cost to serve: on Spark the CLV job grows the cost regressor with
    xgboost.spark too (fitted, judged on net profit, refitted for serving), tracked and
    predicting as DuckDB's does."""
    from retain.data.simulator import simulate_world
    from retain.features import with_categories
    from retain.features.store import categories
    from retain.metrics.model import normalized_gini

    world = simulate_world(1500, seed=5, costs=True)
    files = {"retain.yaml": "spark:\n  xgboost_workers: 1\n"}
    workspace = make_workspace("spark_costly", data=world, files=files)
    with mlflow_isolation(workspace):
        [on_duckdb] = run_training("clv", workspace=workspace)
        [on_spark] = run_training("clv", workspace=workspace, engine="spark")
        params = MlflowClient().get_run(on_spark.run_id).data.params
    assert on_spark.manifest["engine"] == "spark" and on_spark.version == "2"
    assert on_spark.metrics.keys() == on_duckdb.metrics.keys()
    model = on_spark.model
    assert type(model.cost_.regressor_) is SpendRegressor
    holdout_cost = model.holdout_.cost_.regressor_
    assert int(params["model.cost_best_iteration"]) == holdout_cost.best_iteration_
    assert model.cost_.regressor_ is not holdout_cost  # refitted on Spark
    gini, expected = (job.metrics["valid.model_gini"] for job in (on_spark, on_duckdb))
    assert gini > 0.5 and abs(gini - expected) < 0.03, (gini, expected)
    # on the data's last snapshot: the cost each engine's model expects, and the CLV net of it
    store = open_store(load_config("clv", workspace=workspace), workspace)
    [built] = store.build(open_sources(load_config("clv", workspace=workspace),
                                       workspace=workspace), [world.end])  # fmt: skip
    snapshot = with_categories(pd.read_parquet(built.path), categories(store.repository))
    X = snapshot[list(on_spark.manifest["features"])]
    cost = model.expected_cost(X)
    assert (cost > 0).mean() > 0.9
    np.testing.assert_allclose(model.predict(X), model.net(model.ml_ if model.method_ == "ml"
                                                           else model.btyd_, X))  # fmt: skip
    assert normalized_gini(on_duckdb.model.expected_cost(X), cost) > 0.9
