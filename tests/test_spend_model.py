"""SpendRegressor on spend features built from the simulated world: real xgboost, no mocks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.stats import spearmanr
from sklearn.metrics import mean_tweedie_deviance

from retain.models.spend import SpendRegressor

CATEGORICAL = ["acquisition_channel", "region"]
HORIZON_DAYS = 180
FAST = {"learning_rate": 0.1, "n_jobs": 1}
POWER = 1.5


def spend_frame(world, cutoff: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features at ``cutoff``; target = net margin in the next 180 days (0 without purchases)."""
    as_of = pd.Timestamp(cutoff)
    tx, customers = world.transactions, world.customers
    customers = customers[customers["signup_date"] < as_of].set_index("customer_id")
    past = tx[tx["timestamp"] < as_of].groupby("customer_id")
    end = as_of + pd.Timedelta(days=HORIZON_DAYS)
    future = tx[(tx["timestamp"] >= as_of) & (tx["timestamp"] < end)]
    last_day = past["timestamp"].max().dt.normalize()
    X = pd.DataFrame(
        {
            "recency_days": (as_of.normalize() - last_day).dt.days.astype(float),
            "frequency": past.size().astype(float),
            "margin": past["margin"].sum(),
        }
    ).reindex(customers.index)
    X = X.fillna({"frequency": 0.0, "margin": 0.0})
    X["tenure_days"] = (as_of - customers["signup_date"]).dt.days.astype(float)
    for column in CATEGORICAL:
        X[column] = customers[column].astype(object)
    y = future.groupby("customer_id")["margin"].sum().reindex(customers.index, fill_value=0.0)
    return X, y.rename("future_margin")


@pytest.fixture(scope="module")
def frames(world):
    """Train and validation customers at 2025-01-01; held-out customers at 2025-07-01."""
    X, y = spend_frame(world, "2025-01-01")
    in_train = np.random.default_rng(0).random(len(X)) < 0.6
    return (
        (X[in_train], y[in_train]),
        (X[~in_train], y[~in_train]),
        spend_frame(world, "2025-07-01"),
    )


@pytest.fixture(scope="module")
def fitted(frames):
    (X, y), valid, _ = frames
    return SpendRegressor(**FAST).fit(X, y, eval_set=valid)


def test_predictions_are_non_negative_and_shaped(fitted, frames):
    _, _, (X_test, _) = frames
    prediction = fitted.predict(X_test)
    assert prediction.shape == (len(X_test),)
    assert np.all(prediction >= 0) and np.all(np.isfinite(prediction))


def test_beats_a_constant_on_held_out_customers(fitted, frames):
    (_, y), _, (X_test, y_test) = frames
    target = np.maximum(y_test, 0)
    prediction = fitted.predict(X_test)
    constant = np.full(len(target), y.clip(lower=0).mean())
    model_deviance = mean_tweedie_deviance(target, prediction, power=POWER)
    constant_deviance = mean_tweedie_deviance(target, constant, power=POWER)
    assert model_deviance < 0.8 * constant_deviance
    assert spearmanr(prediction, target).statistic > 0.5


def test_early_stopping_stops(fitted):
    assert fitted.best_iteration_ < fitted.n_estimators - 1
    (history,) = fitted.evals_result_["validation_0"].values()
    assert len(history) == fitted.best_iteration_ + fitted.early_stopping_rounds + 1
    assert isinstance(fitted.model_, xgb.XGBRegressor)


def test_negative_targets_are_clipped_to_zero(frames):
    (X, y), valid, (X_test, _) = frames
    with_refunds = y.copy()
    with_refunds.iloc[:50] = -np.abs(with_refunds.iloc[:50]) - 1.0
    settings = {"n_estimators": 40, **FAST}
    clipped = SpendRegressor(**settings).fit(X, with_refunds, eval_set=valid)
    by_hand = SpendRegressor(**settings).fit(X, with_refunds.clip(lower=0), eval_set=valid)
    assert clipped.clipped_share_ == pytest.approx(50 / len(y))
    assert by_hand.clipped_share_ == 0.0
    np.testing.assert_array_equal(clipped.predict(X_test), by_hand.predict(X_test))


def test_other_objectives_keep_negative_targets(frames):
    (X, y), _, _ = frames
    shifted = y - 1000.0  # mostly negative
    model = SpendRegressor(objective="reg:squarederror", n_estimators=20, **FAST).fit(X, shifted)
    assert model.clipped_share_ == 0.0
    assert model.predict(X).min() < 0


def test_contributions_sum_to_the_log_of_the_prediction(fitted, frames):
    _, _, (X_test, _) = frames
    contributions = fitted.contributions(X_test)
    assert list(contributions.columns) == [*X_test.columns, "bias"]
    assert contributions.index.equals(X_test.index)
    margin = fitted.predict_margin(X_test)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-4)
    np.testing.assert_allclose(np.exp(margin), fitted.predict(X_test), rtol=1e-5)
    assert fitted.shap_importance(X_test).is_monotonic_decreasing


def test_encoding_rules(fitted, frames):
    _, _, (X_test, _) = frames
    expected = fitted.predict(X_test)
    as_category = X_test.astype({column: "category" for column in CATEGORICAL})
    np.testing.assert_array_equal(fitted.predict(as_category), expected)
    reordered = X_test[X_test.columns[::-1]].assign(extra="ignored")
    np.testing.assert_array_equal(fitted.predict(reordered), expected)
    unseen = X_test.assign(acquisition_channel="carrier_pigeon")
    np.testing.assert_array_equal(
        fitted.predict(unseen), fitted.predict(X_test.assign(acquisition_channel=np.nan))
    )
    with pytest.raises(ValueError, match="tenure_days"):
        fitted.predict(X_test.drop(columns="tenure_days"))


def test_pickle_round_trip_and_determinism(fitted, frames):
    (X, y), valid, (X_test, _) = frames
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X_test), fitted.predict(X_test))
    again = SpendRegressor(**FAST).fit(X, y, eval_set=valid)
    np.testing.assert_array_equal(again.predict(X_test), fitted.predict(X_test))


@pytest.mark.parametrize("power", [1.0, 2.0, 2.5, "1.5"])
def test_tweedie_power_must_lie_in_the_open_interval(frames, power):
    (X, y), _, _ = frames
    with pytest.raises(ValueError, match="tweedie_variance_power"):
        SpendRegressor(tweedie_variance_power=power).fit(X, y)


def test_non_finite_targets_are_rejected(frames):
    (X, y), _, _ = frames
    with pytest.raises(ValueError, match="finite"):
        SpendRegressor(n_estimators=5).fit(X, y.where(y > 10))


def test_an_array_of_a_frames_values_fits_the_same_model(frames):
    """As scikit-learn estimators do: columns by position, no ``feature_names_in_``."""
    (X, y), (X_valid, y_valid), (X_test, _) = frames
    settings = {"n_estimators": 40, **FAST}
    on_frame = SpendRegressor(**settings).fit(X, y, eval_set=(X_valid, y_valid))
    on_array = SpendRegressor(**settings).fit(
        X.to_numpy(), y.to_numpy(), eval_set=(X_valid.to_numpy(), y_valid.to_numpy())
    )
    assert not hasattr(on_array, "feature_names_in_") and on_array.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(on_array.predict(X_test.to_numpy()), on_frame.predict(X_test))
    with pytest.raises(ValueError, match="requires y to be passed"):
        SpendRegressor(n_estimators=5).fit(X, None)
