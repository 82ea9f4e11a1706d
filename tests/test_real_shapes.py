"""Real data shapes end to end: each trains churn, CLV and segments and scores a list.

The shapes are those a retailer's raw export has (see ``shapes.py``): transactions only, nine
months of one acquisition cohort, 500 customers, order values in cents or in the hundreds of
thousands, dates without a time, integer customer ids, a whitespace-separated text file read
through a mapping. On every shape the served churn model's validation ROC-AUC is at least the
BTYD baseline's on the same rows (or BTYD serves), and nothing raises.
"""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from retain.data.simulator import simulate_world
from retain.serving import score
from retain.training.jobs import run_training
from shapes import reshape, write_shape

pytestmark = pytest.mark.slow  # six shapes, each trained and scored: about a minute and a half

NINE_MONTHS = {"start": "2024-01-01", "end": "2024-10-01"}
#: Small, quick models: the matrix checks that every shape runs, not how good the trees get.
CHURN = "cutoffs: {training: 4}\nmodel: {n_estimators: 150, learning_rate: 0.1, max_depth: 3, early_stopping_rounds: 15}\n"  # noqa: E501
CLV = "cutoffs: {training: 2}\nmodel: {n_estimators: 150, learning_rate: 0.1, max_depth: 3, early_stopping_rounds: 15}\n"  # noqa: E501

SOME = 1200  # customers of the shapes made from the 3k-customer world
#: name: (world fixture, reshape options, file layout)
SHAPES = {
    "transactions_only": ("world", {"transactions_only": True, "customers": SOME}, "parquet"),
    "nine_months_one_cohort": ("nine_months", {"one_cohort": True}, "parquet"),
    "500_customers": ("world", {"customers": 500}, "parquet"),
    "cents_date_only": (
        "world", {"customers": SOME, "amount_scale": 0.01, "date_only": True}, "csv"
    ),
    "b2b_integer_ids": (
        "world", {"customers": SOME, "amount_scale": 1000.0, "integer_ids": True}, "csv"
    ),
    # header-less, as real exports such as CDNOW's come (mapping: header false, by position)
    "whitespace_file": (
        "nine_months", {"transactions_only": True, "one_cohort": True}, "whitespace"
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def nine_months(seed):
    """Nine months of history: most customers joined in its first quarter."""
    return simulate_world(1500, seed=seed, **NINE_MONTHS)


@pytest.fixture(scope="module", params=list(SHAPES))
def trained(request, make_workspace, mlflow_isolation):
    """One shape: its workspace trained (churn, CLV, segments) and a list scored at its end."""
    source, options, layout = SHAPES[request.param]
    world = request.getfixturevalue(source)
    quick = {"training/churn.yaml": CHURN, "training/clv.yaml": CLV}
    folder = make_workspace(request.param, files=quick)
    shape = reshape(world, **options)
    mapping = write_shape(shape, folder / "data", layout=layout)
    # only the workspace config (and a mapping) says where the data are and how to read them
    settings = "data: data\n" + ("mapping: data/mapping.yaml\n" if mapping else "")
    (folder / "retain.yaml").write_text(settings)
    with mlflow_isolation():
        jobs = {job.family: job for job in run_training("all", workspace=folder)}
        listed = score(world.end, workspace=folder)
        yield {"name": request.param, "jobs": jobs, "list": listed, "folder": folder}


def test_every_family_is_trained_and_becomes_champion(trained):
    assert set(trained["jobs"]) == {"churn", "clv", "segments"}
    for job in trained["jobs"].values():
        assert job.decision.promoted, (trained["name"], job.family, job.decision.reason)


def test_served_churn_model_is_never_worse_than_btyd(trained):
    metrics = trained["jobs"]["churn"].metrics
    served, btyd = metrics["valid.served_roc_auc"], metrics["valid.btyd_roc_auc"]
    assert served >= btyd, trained["name"]
    assert served in (metrics["valid.model_roc_auc"], btyd)
    estimator = type(trained["jobs"]["churn"].model).__name__
    expected = "ChurnClassifier" if served > btyd else "BTYDChurnClassifier"
    assert estimator == expected
    summary = json.loads((trained["list"].out / "summary.json").read_text())
    assert summary["models"]["churn"]["estimator"] == estimator


def test_a_list_is_written_for_the_active_customers(trained):
    frame = trained["list"].frame
    assert len(frame) > 50
    assert frame["churn_probability"].between(0, 1).all()
    assert (frame["clv"] >= 0).all()
    # reasons name what pushes towards churn; a customer safer than usual may have none
    assert frame["reason_1"].str.len().gt(0).mean() > 0.5


def test_uninformative_features_are_left_out_and_recorded(trained):
    job = trained["jobs"]["churn"]
    left_out = job.manifest["left_out_features"]
    assert not set(left_out) & set(job.manifest["features"])
    if SHAPES[trained["name"]][1].get("transactions_only"):
        # no customers or interactions table: their features are all missing or constant
        assert {"acquisition_channel", "region", "days_since_web_visit"} <= set(left_out)
    version = MlflowClient().get_model_version("retain-churn", job.version)
    assert version.tags["definition"].startswith("horizon 90d, active 365d, features ")


def test_short_history_falls_back_to_btyd_for_clv(trained):
    job = trained["jobs"]["clv"]
    nine_months = SHAPES[trained["name"]][0] == "nine_months"
    assert ("valid.ml_gini" in job.metrics) is not nine_months
    assert job.model.horizon_days == 365
    if nine_months:
        assert job.model.ml_ is None and job.model.method_ == "btyd"
        assert job.manifest["label_window_days"] == 91
        params = MlflowClient().get_run(job.run_id).data.params
        assert "no 365-day label window fits" in params["model.fallback"]
