"""ChurnClassifier on churn features built from the simulated world: real xgboost, no mocks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from retain.models.churn import CALIBRATION_METHODS, ChurnClassifier

CATEGORICAL = ["acquisition_channel", "region"]
NUMERIC = ["recency_days", "frequency", "spend", "tenure_days", "acquisition_cost"]
HORIZON_DAYS = 90
FAST = {"learning_rate": 0.1, "n_jobs": 1}


def churn_frame(world, cutoff: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features at ``cutoff`` for customers signed up before it; label = no purchase in 90 days.

    ``recency_days`` is NaN for customers without a purchase before the cutoff.
    """
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
            "spend": past["amount"].sum(),
        }
    ).reindex(customers.index)
    X = X.fillna({"frequency": 0.0, "spend": 0.0})
    X["tenure_days"] = (as_of - customers["signup_date"]).dt.days.astype(float)
    X["acquisition_cost"] = customers["acquisition_cost"]
    for column in CATEGORICAL:
        X[column] = customers[column].astype(object)
    bought = future.groupby("customer_id").size().reindex(customers.index, fill_value=0)
    return X, (bought == 0).astype(int).rename("churn")


def as_categorical(X: pd.DataFrame) -> pd.DataFrame:
    return X.astype({column: "category" for column in CATEGORICAL})


def expected_calibration_error(probability, y, bins: int = 10) -> float:
    """Share-weighted mean |mean label - mean probability| over equal-width bins."""
    probability, y = np.asarray(probability), np.asarray(y)
    which = np.minimum((probability * bins).astype(int), bins - 1)
    gaps = [
        np.mean(which == b) * abs(y[which == b].mean() - probability[which == b].mean())
        for b in range(bins)
        if np.any(which == b)
    ]
    return float(np.sum(gaps))


@pytest.fixture(scope="module")
def frames(world):
    """Training features at 2025-03-01, validation at 2025-06-01 (a later cutoff)."""
    return churn_frame(world, "2025-03-01"), churn_frame(world, "2025-06-01")


@pytest.fixture(scope="module")
def fitted(frames):
    (X, y), (X_valid, y_valid) = frames
    return ChurnClassifier(**FAST).fit(X, y, eval_set=(X_valid, y_valid))


def test_fit_predict_shapes_and_ranges(fitted, frames):
    _, (X_valid, y_valid) = frames
    proba = fitted.predict_proba(X_valid)
    assert proba.shape == (len(X_valid), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    raw = fitted.predict_raw_proba(X_valid)
    assert raw.shape == (len(X_valid),) and np.all((raw > 0) & (raw < 1))
    labels = fitted.predict(X_valid)
    assert set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels, (proba[:, 1] > 0.5).astype(int))
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert roc_auc_score(y_valid, proba[:, 1]) > 0.8
    assert list(fitted.feature_names_in_) == list(X_valid.columns)
    assert fitted.n_features_in_ == X_valid.shape[1]
    assert fitted.categories_["region"] == sorted(X_valid["region"].unique())


def test_early_stopping_stops(fitted):
    assert fitted.best_iteration_ < fitted.n_estimators - 1
    history = fitted.evals_result_["validation_0"]["logloss"]
    assert len(history) == fitted.best_iteration_ + fitted.early_stopping_rounds + 1
    assert int(np.argmin(history)) == fitted.best_iteration_
    assert isinstance(fitted.booster_, xgb.Booster)
    assert isinstance(fitted.model_, xgb.XGBClassifier)


def test_without_eval_set_no_early_stopping_and_no_calibration(frames):
    (X, y), (X_valid, _) = frames
    model = ChurnClassifier(n_estimators=30, **FAST).fit(X, y)
    assert model.best_iteration_ == 29
    assert model.calibration_ == "none"
    assert model.calibration_scores_ == {} and model.evals_result_ == {}
    assert model.oof_probability_ is None and model.oof_raw_probability_ is None
    np.testing.assert_array_equal(
        model.predict_proba(X_valid)[:, 1], model.predict_raw_proba(X_valid)
    )


def test_strings_objects_and_categoricals_predict_identically(fitted, frames):
    _, (X_valid, _) = frames
    as_object = fitted.predict_proba(X_valid)
    as_category = fitted.predict_proba(as_categorical(X_valid))
    as_string = fitted.predict_proba(X_valid.astype({c: "string" for c in CATEGORICAL}))
    np.testing.assert_array_equal(as_object, as_category)
    np.testing.assert_array_equal(as_object, as_string)


def test_fit_on_categoricals_equals_fit_on_strings(frames):
    (X, y), (X_valid, y_valid) = frames
    settings = {"n_estimators": 40, **FAST}
    on_strings = ChurnClassifier(**settings).fit(X, y, eval_set=(X_valid, y_valid))
    on_categories = ChurnClassifier(**settings).fit(
        as_categorical(X), y, eval_set=(as_categorical(X_valid), y_valid)
    )
    assert on_categories.categories_ == on_strings.categories_
    np.testing.assert_array_equal(
        on_categories.predict_proba(X_valid), on_strings.predict_proba(X_valid)
    )


def test_unseen_category_is_treated_as_missing(fitted, frames):
    _, (X_valid, _) = frames
    unseen = X_valid.assign(region="atlantis")
    missing = X_valid.assign(region=None)
    np.testing.assert_array_equal(fitted.predict_proba(unseen), fitted.predict_proba(missing))
    assert np.all(np.isfinite(fitted.predict_proba(as_categorical(unseen))))


def test_missing_column_is_named(fitted, frames):
    _, (X_valid, _) = frames
    with pytest.raises(ValueError, match=r"missing .*\['region'\]"):
        fitted.predict_proba(X_valid.drop(columns="region"))


def test_column_order_and_extra_columns_do_not_matter(fitted, frames):
    _, (X_valid, _) = frames
    shuffled = X_valid[X_valid.columns[::-1]].assign(unused=1.0)
    np.testing.assert_array_equal(fitted.predict_proba(shuffled), fitted.predict_proba(X_valid))


def test_contributions_sum_to_the_raw_margin(fitted, frames):
    _, (X_valid, _) = frames
    contributions = fitted.contributions(X_valid)
    assert list(contributions.columns) == [*X_valid.columns, "bias"]
    assert contributions.index.equals(X_valid.index)
    margin = fitted.predict_margin(X_valid)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-4)
    raw = fitted.predict_raw_proba(X_valid)
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), raw, rtol=1e-5)


def test_shap_importance_ranks_recency_first(fitted, frames):
    _, (X_valid, _) = frames
    importance = fitted.shap_importance(X_valid)
    assert set(importance.index) == set(X_valid.columns)
    assert importance.is_monotonic_decreasing
    assert importance.index[0] == "recency_days"  # the simulator's churn is driven by recency


def test_calibration_is_chosen_by_out_of_fold_log_loss(fitted, frames):
    _, (X_valid, _) = frames
    scores = fitted.calibration_scores_
    assert set(scores) == set(CALIBRATION_METHODS)
    assert fitted.calibration_ == min(scores, key=scores.get)
    assert fitted.oof_probability_.shape == fitted.oof_raw_probability_.shape == (len(X_valid),)
    np.testing.assert_array_equal(fitted.oof_raw_probability_, fitted.predict_raw_proba(X_valid))


@pytest.mark.parametrize("method", ["none", "platt", "isotonic"])
def test_explicit_calibration_is_used(frames, method):
    (X, y), (X_valid, y_valid) = frames
    model = ChurnClassifier(n_estimators=40, calibration=method, **FAST)
    model.fit(X, y, eval_set=(X_valid, y_valid))
    assert model.calibration_ == method
    assert set(model.calibration_scores_) == set(CALIBRATION_METHODS)
    calibrated = model.predict_proba(X_valid)[:, 1]
    raw = model.predict_raw_proba(X_valid)
    assert np.array_equal(calibrated, raw) == (method == "none")


def test_calibration_fixes_a_shifted_base_rate(frames):
    """Training on a churn-enriched sample overstates P(churn); calibration corrects it."""
    (X, y), (X_valid, y_valid) = frames
    rng = np.random.default_rng(0)
    keep = (y.to_numpy() == 1) | (rng.random(len(y)) < 0.15)  # keep 15% of the stayers
    model = ChurnClassifier(**FAST).fit(X[keep], y[keep], eval_set=(X_valid, y_valid))
    assert y[keep].mean() > y_valid.mean() + 0.2
    assert model.calibration_ != "none"
    raw_ece = expected_calibration_error(model.oof_raw_probability_, y_valid)
    calibrated_ece = expected_calibration_error(model.oof_probability_, y_valid)
    assert calibrated_ece < 0.5 * raw_ece
    assert model.calibration_scores_[model.calibration_] < model.calibration_scores_["none"]


def test_pickle_round_trip(fitted, frames):
    _, (X_valid, _) = frames
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X_valid), fitted.predict_proba(X_valid))
    pd.testing.assert_frame_equal(restored.contributions(X_valid), fitted.contributions(X_valid))


def test_same_seed_same_predictions(fitted, frames):
    (X, y), (X_valid, y_valid) = frames
    again = ChurnClassifier(**FAST).fit(X, y, eval_set=(X_valid, y_valid))
    np.testing.assert_array_equal(again.predict_proba(X_valid), fitted.predict_proba(X_valid))
    np.testing.assert_array_equal(again.oof_probability_, fitted.oof_probability_)


class RecordingCallback(xgb.callback.TrainingCallback):
    """Remembers the validation log names it saw (as a pruning callback would read them)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def after_iteration(self, model, epoch, evals_log) -> bool:
        self.seen = list(evals_log)
        return epoch >= 4  # stop after five rounds


def test_callbacks_reach_xgboost_and_are_not_kept(frames):
    (X, y), (X_valid, y_valid) = frames
    callback = RecordingCallback()
    model = ChurnClassifier(callbacks=[callback], early_stopping_rounds=None, **FAST)
    model.fit(X, y, eval_set=(X_valid, y_valid))
    assert callback.seen == ["validation_0"]
    assert model.booster_.num_boosted_rounds() == 5
    assert model.model_.get_params()["callbacks"] is None
    assert model.get_params()["callbacks"] == [callback]


def test_settings_are_stored_untouched_and_clone(fitted):
    params = fitted.get_params()
    assert params["calibration"] == "auto" and params["learning_rate"] == 0.1
    assert clone(fitted).get_params() == params


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"calibration": "beta"}, "calibration"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"subsample": 1.5}, "subsample"),
        ({"gamma": -1.0}, "gamma"),
    ],
)
def test_bad_settings_are_rejected_in_fit(frames, settings, message):
    (X, y), _ = frames
    with pytest.raises(ValueError, match=message):
        ChurnClassifier(**settings).fit(X, y)


def test_bad_inputs_are_rejected(frames):
    (X, y), (X_valid, y_valid) = frames
    with pytest.raises(ValueError, match="0/1 labels .* binary target with values such as"):
        ChurnClassifier(n_estimators=5).fit(X, y * 2)
    with pytest.raises(ValueError, match="got a continuous target"):
        ChurnClassifier(n_estimators=5).fit(X, y * 0.5)
    with pytest.raises(ValueError, match="both classes .* one class"):
        ChurnClassifier(n_estimators=5).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="requires y to be passed"):
        ChurnClassifier(n_estimators=5).fit(X, None)
    with pytest.raises(ValueError, match="needs an eval_set"):
        ChurnClassifier(n_estimators=5, calibration="isotonic").fit(X, y)
    with pytest.raises(TypeError, match="dense data is required"):
        ChurnClassifier(n_estimators=5).fit(sparse.csr_matrix(X[NUMERIC].to_numpy()), y)
    with pytest.raises(ValueError, match="eval_set"):
        ChurnClassifier(n_estimators=5).fit(X, y, eval_set=[(X_valid, y_valid)])
    with pytest.raises(NotFittedError):
        ChurnClassifier().predict_proba(X_valid)


def test_tiny_validation_set_leaves_probabilities_uncalibrated(frames):
    (X, y), (X_valid, y_valid) = frames
    few = X_valid.iloc[:3], np.array([1, 1, 0])
    with pytest.warns(UserWarning, match="uncalibrated"):
        model = ChurnClassifier(n_estimators=20, **FAST).fit(X, y, eval_set=few)
    assert model.calibration_ == "none" and set(model.calibration_scores_) == {"none"}


def test_integer_codes_match_their_strings_and_empty_columns_are_fine(frames):
    """Values compare as strings; a categorical never observed in fit is all-missing."""
    (X, y), (X_valid, _) = frames
    tier = pd.Series(np.arange(len(X)) % 3, index=X.index)
    X = X.assign(tier=tier.astype("category"), note=pd.Series(None, index=X.index, dtype=object))
    model = ChurnClassifier(n_estimators=20, **FAST).fit(X, y)
    assert model.categories_["tier"] == ["0", "1", "2"] and model.categories_["note"] == []
    codes = pd.Series(np.arange(len(X_valid)) % 3, index=X_valid.index)
    as_int = X_valid.assign(tier=codes.astype("category"), note="anything")
    as_str = X_valid.assign(tier=codes.astype(str), note=None)
    np.testing.assert_array_equal(model.predict_proba(as_int), model.predict_proba(as_str))


def test_refit_grows_the_chosen_rounds_on_all_rows_and_keeps_the_holdout(frames):
    (X, y), (X_valid, y_valid) = frames
    model = ChurnClassifier(**FAST).fit(X, y, eval_set=(X_valid, y_valid))
    before = model.predict_proba(X_valid)
    rounds, calibrator = model.best_iteration_ + 1, model.calibrator_
    oof = model.oof_probability_.copy()
    everything = pd.concat([X, X_valid], ignore_index=True)
    labels = np.concatenate([y.to_numpy(), y_valid.to_numpy()])
    assert model.refit(everything, labels) is model
    assert model.booster_.num_boosted_rounds() == rounds
    assert model.best_iteration_ == rounds - 1
    assert model.calibrator_ is calibrator  # chosen and fitted on the earlier trees' predictions
    np.testing.assert_array_equal(model.oof_probability_, oof)
    # the holdout predicts as the model did before; the refitted trees differ
    np.testing.assert_array_equal(model.predict_holdout_proba(X_valid), before)
    np.testing.assert_array_equal(model.holdout_.predict_proba(X_valid), before)
    assert not np.allclose(model.predict_proba(X_valid), before)
    # trained on the validation rows now: they fit better in sample
    assert roc_auc_score(y_valid, model.predict_proba(X_valid)[:, 1]) > roc_auc_score(
        y_valid, before[:, 1]
    )
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_holdout_proba(X_valid), before)


def test_refit_from_a_booster_grown_elsewhere(frames):
    (X, y), (X_valid, y_valid) = frames
    model = ChurnClassifier(**FAST).fit(X, y, eval_set=(X_valid, y_valid))
    before = model.predict_proba(X_valid)
    everything = pd.concat([X, X_valid], ignore_index=True)
    labels = np.concatenate([y.to_numpy(), y_valid.to_numpy()])
    here = clone(model).set_params(n_estimators=model.best_iteration_ + 1)
    trees = here.fit(everything, labels).booster_
    model.refit_from_booster(trees)
    np.testing.assert_allclose(model.predict_raw_proba(X_valid), here.predict_raw_proba(X_valid))
    np.testing.assert_array_equal(model.predict_holdout_proba(X_valid), before)


def test_refit_needs_a_fitted_model(frames):
    (X, y), _ = frames
    with pytest.raises(NotFittedError):
        ChurnClassifier().refit(X, y)


# --------------------------------------------------------------------------- arrays (scikit-learn)


def test_an_array_of_a_frames_values_fits_the_same_model(frames):
    """Columns by position, named x0, x1, ... inside; object columns of numbers are numbers."""
    (X, y), (X_valid, y_valid) = frames
    settings = {"n_estimators": 40, **FAST}
    on_frame = ChurnClassifier(**settings).fit(X, y, eval_set=(X_valid, y_valid))
    on_array = ChurnClassifier(**settings).fit(
        X.to_numpy(), y.to_numpy(), eval_set=(X_valid.to_numpy(), y_valid.to_numpy())
    )  # an object array: the categorical columns make it one
    assert not hasattr(on_array, "feature_names_in_") and on_array.n_features_in_ == X.shape[1]
    names = [f"x{position}" for position in range(X.shape[1])]
    assert on_array.encoding_.feature_names == tuple(names)
    assert on_array.categories_ == {
        f"x{list(X.columns).index(column)}": values
        for column, values in on_frame.categories_.items()
    }
    np.testing.assert_array_equal(
        on_array.predict_proba(X_valid.to_numpy()), on_frame.predict_proba(X_valid)
    )
    contributions = on_array.contributions(X_valid.to_numpy())
    assert list(contributions.columns) == [*names, "bias"]
    np.testing.assert_array_equal(
        contributions.to_numpy(), on_frame.contributions(X_valid).to_numpy()
    )


def test_a_model_fitted_on_a_frame_reads_an_array_by_position(fitted, frames):
    _, (X_valid, _) = frames
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        by_position = fitted.predict_proba(X_valid.to_numpy())
    np.testing.assert_array_equal(by_position, fitted.predict_proba(X_valid))
    narrower = X_valid.iloc[:, :-1].to_numpy()
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="expecting 7 features"):
        fitted.predict_proba(narrower)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_numeric_arrays_of_any_dtype_and_their_containers(frames, dtype):
    """What scikit-learn's dtype and not-an-array checks cover, with churn labels (0/1)."""
    (X, y), _ = frames
    values = X[NUMERIC].fillna(0).to_numpy().astype(dtype)
    model = ChurnClassifier(n_estimators=20, **FAST).fit(values, y.to_numpy())
    expected = model.predict_proba(values)
    np.testing.assert_array_equal(model.predict_proba(values.tolist()), expected)
    unnamed = pd.DataFrame(values)  # integer column names: read as an array
    np.testing.assert_array_equal(model.predict_proba(unnamed), expected)
    again = ChurnClassifier(n_estimators=20, **FAST).fit(unnamed, pd.Series(y.to_numpy()))
    np.testing.assert_array_equal(again.predict_proba(values), expected)
    labels = model.predict(values)
    assert labels.dtype == np.int64 and set(np.unique(labels)) <= {0, 1}
