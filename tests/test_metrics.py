"""Evaluation metrics: hand-computed known answers, agreement with scikit-learn, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from retain.metrics.model import (
    calibration_table,
    classification_metrics,
    decile_table,
    expected_calibration_error,
    gain_curve,
    lift_and_capture,
    normalized_gini,
    roc_auc,
    value_metrics,
)

# Ten rows, three positives; the score ranks rows in input order.
Y10 = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
S10 = np.linspace(0.9, 0.0, 10)


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.fixture
def churn_sample(rng):
    probability = rng.uniform(0, 1, 500)
    labels = (rng.uniform(0, 1, 500) < probability).astype(int)
    return labels, probability


def kaggle_gini(actual, predicted):
    """The Kaggle reference implementation (ties broken by input order)."""
    data = np.c_[actual, predicted, np.arange(len(actual))].astype(float)
    data = data[np.lexsort((data[:, 2], -data[:, 1]))]
    total = data[:, 0].sum()
    area = data[:, 0].cumsum().sum() / total - (len(actual) + 1) / 2
    return area / len(actual)


# --------------------------------------------------------------------------- classification


def test_classification_metrics_keys_and_sklearn_agreement(churn_sample):
    labels, probability = churn_sample
    result = classification_metrics(labels, probability)
    assert list(result) == [
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "lift_at_top",
        "capture_at_top",
        "ece",
        "positive_rate",
        "rows",
    ]
    assert all(isinstance(value, float) for value in result.values())
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, probability))
    assert result["pr_auc"] == pytest.approx(average_precision_score(labels, probability))
    assert result["log_loss"] == pytest.approx(log_loss(labels, probability))
    assert result["brier"] == pytest.approx(brier_score_loss(labels, probability))
    assert result["positive_rate"] == pytest.approx(labels.mean())
    assert result["rows"] == 500.0
    assert result["ece"] == pytest.approx(expected_calibration_error(labels, probability))
    assert (result["lift_at_top"], result["capture_at_top"]) == lift_and_capture(
        labels, probability
    )


def test_perfect_ranking_has_auc_one():
    labels = [0, 0, 0, 1, 1]
    assert roc_auc(labels, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert classification_metrics(labels, [0.1, 0.2, 0.3, 0.8, 0.9])["pr_auc"] == 1.0
    assert roc_auc(labels, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0


def test_log_loss_clips_certain_mistakes():
    result = classification_metrics([1, 0], [0.0, 0.0])
    assert np.isfinite(result["log_loss"])
    assert result["log_loss"] == pytest.approx(-np.log(1e-15) / 2)
    assert result["brier"] == pytest.approx(0.5)


def test_lift_and_capture_by_hand():
    # Top 3 of 10 (rows 0-2) hold 2 of the 3 positives: lift (2/3) / (3/10), capture 2/3.
    lift, capture = lift_and_capture(Y10, S10, top_fraction=0.3)
    assert lift == pytest.approx(20 / 9)
    assert capture == pytest.approx(2 / 3)
    # Top 1 (row 0) is positive: lift 1 / 0.3, capture 1/3.
    assert lift_and_capture(Y10, S10, top_fraction=0.1) == pytest.approx((10 / 3, 1 / 3))
    # ceil(0.25 * 10) = 3 rows; everything contacted gives lift 1, capture 1.
    assert lift_and_capture(Y10, S10, top_fraction=0.25) == pytest.approx((20 / 9, 2 / 3))
    assert lift_and_capture(Y10, S10, top_fraction=1.0) == pytest.approx((1.0, 1.0))


def test_lift_ties_keep_input_order():
    tied = np.full(10, 0.5)
    assert lift_and_capture(Y10, tied, 0.3) == lift_and_capture(Y10, S10, 0.3)
    assert lift_and_capture(Y10[::-1], tied, 0.1) == (0.0, 0.0)


def test_gain_curve_by_hand():
    contacted, captured = gain_curve(Y10, S10)
    assert contacted.tolist() == pytest.approx(np.arange(11) / 10)
    expected = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]) / 3
    assert captured.tolist() == pytest.approx(expected)


def test_ece_zero_when_bins_are_calibrated():
    probability = [0.25] * 4 + [0.75] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    assert expected_calibration_error(labels, probability) == pytest.approx(0.0)
    assert expected_calibration_error(labels, probability, strategy="quantile") == pytest.approx(
        0.0
    )


def test_ece_miscalibrated_by_hand():
    # Bin at 0.2 observes 3/5 (gap 0.4), bin at 0.9 observes 4/5 (gap 0.1): 0.5*0.4 + 0.5*0.1.
    probability = [0.2] * 5 + [0.9] * 5
    labels = [1, 1, 1, 0, 0] + [1, 1, 1, 1, 0]
    assert expected_calibration_error(labels, probability) == pytest.approx(0.25)
    table = calibration_table(labels, probability)
    assert list(table.columns) == ["bin", "rows", "mean_predicted", "observed_rate"]
    assert table["rows"].tolist() == [5, 5]
    assert table["observed_rate"].tolist() == pytest.approx([0.6, 0.8])


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_table_matches_sklearn(churn_sample, strategy):
    labels, probability = churn_sample
    table = calibration_table(labels, probability, bins=8, strategy=strategy)
    observed, predicted = calibration_curve(labels, probability, n_bins=8, strategy=strategy)
    assert table["observed_rate"].to_numpy() == pytest.approx(observed)
    assert table["mean_predicted"].to_numpy() == pytest.approx(predicted)
    assert table["rows"].sum() == len(labels)


# --------------------------------------------------------------------------- value


def test_gini_perfect_reversed_and_by_hand():
    actual = np.array([5.0, 3.0, 8.0, 0.0, 1.0])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) == pytest.approx(-1.0)
    # Order by prediction: actuals 1, 0, 3 -> cumsum area 6 - 4*2 = -2; perfect 11 - 8 = 3.
    assert normalized_gini([3, 1, 0], [1, 3, 2]) == pytest.approx(-2 / 3)


def test_gini_matches_kaggle_with_ties_and_negative_totals(rng):
    actual = rng.normal(-0.5, 2.0, 300)  # net margin: negative values and a negative total
    predicted = rng.integers(0, 5, 300).astype(float)  # many ties
    assert actual.sum() < 0
    expected = kaggle_gini(actual, predicted) / kaggle_gini(actual, actual)
    assert normalized_gini(actual, predicted) == pytest.approx(expected)
    assert -1.0 <= normalized_gini(actual, predicted) <= 1.0


def test_gini_defined_when_actual_total_is_zero():
    actual = [2.0, -2.0, 1.0, -1.0]
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, [-2, 2, -1, 1]) == pytest.approx(-1.0)


def test_decile_table_and_mape_by_hand():
    actual = [10, 0, 5, 5, 1, -1]
    predicted = [12, 8, 6, 4, 2, 1]
    table = decile_table(actual, predicted, deciles=3)
    assert list(table.columns) == [
        "decile",
        "rows",
        "predicted_sum",
        "actual_sum",
        "predicted_mean",
        "actual_mean",
        "ape",
    ]
    assert table["predicted_sum"].tolist() == [20, 10, 3]
    assert table["actual_sum"].tolist() == [10, 10, 0]
    assert table["predicted_mean"].tolist() == [10, 5, 1.5]
    assert table["ape"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(table["ape"].iloc[2])
    result = value_metrics(actual, predicted, deciles=3)
    assert list(result) == ["gini", "spearman", "decile_mape", "total_error", "rows"]
    assert result["decile_mape"] == pytest.approx(0.5)  # (1.0 + 0.0) / 2; zero-sum decile skipped
    assert result["total_error"] == pytest.approx((33 - 20) / 20)
    assert result["rows"] == 6.0


def test_value_metrics_agree_with_scipy(rng):
    actual = rng.gamma(1.0, 50.0, 400)
    predicted = actual * rng.lognormal(0, 0.5, 400)
    result = value_metrics(actual, predicted)
    assert result["spearman"] == pytest.approx(stats.spearmanr(actual, predicted).statistic)
    assert 0.5 < result["gini"] < 1.0
    assert decile_table(actual, predicted)["rows"].tolist() == [40] * 10


def test_decile_table_groups_differ_by_at_most_one():
    table = decile_table(np.arange(23.0), np.arange(23.0), deciles=10)
    assert table["rows"].tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["predicted_mean"].is_monotonic_decreasing


def test_spearman_nan_for_constant_predictions():
    assert np.isnan(value_metrics([1, 2, 3], [5, 5, 5], deciles=3)["spearman"])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classification_metrics([0, 1, 1], [0.1, 0.2]), "different lengths"),
        (lambda: classification_metrics([], []), "empty"),
        (lambda: classification_metrics([1, 1, 1], [0.2, 0.5, 0.9]), "needs both classes"),
        (lambda: roc_auc([0, 0], [0.2, 0.5]), "needs both classes"),
        (lambda: classification_metrics([0, 2], [0.2, 0.5]), "only 0 and 1"),
        (lambda: classification_metrics([0, 1], [0.2, 1.5]), r"\[0, 1\]"),
        (lambda: classification_metrics([0, 1], [0.2, np.nan]), "non-finite"),
        (lambda: lift_and_capture([0, 0], [0.2, 0.5]), "at least one positive"),
        (lambda: lift_and_capture([0, 1], [0.2, 0.5], top_fraction=0), "top_fraction"),
        (lambda: gain_curve([[0, 1]], [[0.2, 0.5]]), "one-dimensional"),
        (lambda: expected_calibration_error([0, 1], [0.2, 0.5], strategy="x"), "strategy"),
        (lambda: expected_calibration_error([0, 1], [0.2, 0.5], bins=0), "bins"),
        (lambda: normalized_gini([2, 2, 2], [1, 2, 3]), "not all equal"),
        (lambda: normalized_gini([1, 2], [1, 2, 3]), "different lengths"),
        (lambda: value_metrics([], []), "empty"),
        (lambda: decile_table([1, 2, 3], [1, 2, 3]), "at least 10 rows"),
    ],
)
def test_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
