"""BTYDChurnClassifier: BG/NBD's probability of no purchase, calibrated and explained exactly."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from retain.features import BTYDSummary, Entity, FeatureView, col, compute_features
from retain.models import BGNBD, BTYDChurnClassifier

VIEW = FeatureView(
    "purchases", Entity("customer"), "transactions", features=[BTYDSummary(where=col("amount") > 0)]
)


def _labelled(world, cutoff: str, horizon: int = 90) -> tuple[pd.DataFrame, np.ndarray]:
    """BTYD summaries of the customers with a purchase before ``cutoff``, and whether each
    made none in the next ``horizon`` days."""
    frame = compute_features([VIEW], {"transactions": world.transactions}, cutoff)
    frame = frame[frame["btyd_T"].notna()].reset_index(drop=True)
    start = pd.Timestamp(cutoff)
    tx = world.transactions
    window = tx[(tx.timestamp >= start) & (tx.timestamp < start + pd.Timedelta(days=horizon))]
    bought = frame["customer_id"].isin(window.loc[window.amount > 0, "customer_id"])
    return frame, (~bought).to_numpy(int)


@pytest.fixture(scope="module")
def data(world):
    return _labelled(world, "2025-06-01")


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return BTYDChurnClassifier(horizon_days=90).fit(X, eval_set=(X, y))


def test_raw_probability_is_bgnbd_no_purchase_in_the_horizon(fitted, data):
    X, y = data
    x, t_x, T = (X[c].to_numpy() for c in ("btyd_frequency", "btyd_recency", "btyd_T"))
    model = BGNBD().fit(x, t_x, T)
    expected = model.conditional_probability_no_purchase(90.0, x, t_x, T)
    np.testing.assert_allclose(fitted.predict_raw_proba(X), expected)
    assert roc_auc_score(y, fitted.predict_raw_proba(X)) > 0.8
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert fitted.calibration_ in ("none", "platt", "isotonic")
    assert set(fitted.calibration_scores_) == {"none", "platt", "isotonic"}
    assert len(fitted.oof_probability_) == len(X)


def test_customers_without_a_history_are_certain_churners(fitted, data):
    X, _ = data
    unknown = X.head(3).assign(btyd_frequency=np.nan, btyd_recency=np.nan, btyd_T=np.nan)
    np.testing.assert_array_equal(fitted.predict_raw_proba(unknown), 1.0)


def test_contributions_are_exact_shapley_values_summing_to_the_log_odds(fitted, data):
    X, _ = data
    sample = X.sample(300, random_state=0)
    contributions = fitted.contributions(sample, approximate=True)
    assert list(contributions.columns) == [
        "btyd_frequency", "btyd_recency", "btyd_T", "bias"
    ]  # fmt: skip
    log_odds = logit(np.clip(fitted.predict_raw_proba(sample), 1e-7, 1 - 1e-7))
    np.testing.assert_allclose(contributions.sum(axis=1), log_odds, atol=1e-9)
    # the reference customer has no contribution; a long silence pushes towards churn
    reference = pd.DataFrame([fitted.reference_], columns=["btyd_frequency", "btyd_recency",
                                                          "btyd_T"])  # fmt: skip
    np.testing.assert_allclose(fitted.contributions(reference).iloc[0, :3], 0.0, atol=1e-12)
    silent = sample[sample["btyd_T"] - sample["btyd_recency"] > 200]
    assert (fitted.contributions(silent)["btyd_T"] > 0).mean() > 0.5
    importance = fitted.shap_importance(sample)
    assert list(importance.index)[0] in ("btyd_recency", "btyd_T", "btyd_frequency")


def test_refit_keeps_calibration_and_the_holdout(world, fitted, data):
    X, _ = data
    later, _ = _labelled(world, "2025-09-01")
    model = pickle.loads(pickle.dumps(fitted))
    before = model.predict_proba(X)
    model.refit(later)
    assert model.holdout_ is not None
    assert model.calibration_ == fitted.calibration_
    np.testing.assert_array_equal(model.predict_holdout_proba(X), before)
    assert model.purchase_model_.params_ != fitted.purchase_model_.params_


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"purchase_model": "weibull"}, "purchase_model must be one of"),
        ({"horizon_days": 0}, "horizon_days must be a positive number"),
        ({"calibration": "magic"}, "calibration must be one of"),
    ],
)
def test_bad_settings_are_named(data, settings, message):
    X, _ = data
    with pytest.raises(ValueError, match=message):
        BTYDChurnClassifier(**settings).fit(X)


def test_missing_summaries_and_unfitted_models_are_refused(data):
    X, _ = data
    with pytest.raises(ValueError, match="missing the BTYD summary column"):
        BTYDChurnClassifier().fit(X.drop(columns="btyd_T"))
    with pytest.raises(NotFittedError):
        BTYDChurnClassifier().predict_proba(X)
