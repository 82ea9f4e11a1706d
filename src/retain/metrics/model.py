"""Evaluation metrics for churn classifiers and customer-value regressors.

Churn models are judged on ranking (ROC AUC, average precision, lift and capture among the
customers ranked highest), on probability quality (log loss, Brier score, expected calibration
error) and on calibration tables. Value (CLV) models are judged on ordering (normalized Gini,
Spearman) and on totals per predicted decile, which is what budget allocation relies on.

Conventions
-----------
* Inputs are one-dimensional array-likes (lists, NumPy arrays, pandas Series) of equal length.
  Mismatched lengths, empty input, non-finite values and labels other than 0/1 raise
  :class:`ValueError` with a message that names the problem.
* Rankings sort on ``-score`` with a *stable* sort, so tied scores keep their input order: the
  earlier row counts as ranked higher. Results are therefore deterministic, and reordering tied
  rows in the input is the only thing that can change them.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = [
    "average_precision",
    "calibration_table",
    "classification_metrics",
    "decile_table",
    "expected_calibration_error",
    "gain_curve",
    "lift_and_capture",
    "normalized_gini",
    "roc_auc",
    "value_metrics",
]

Strategy = Literal["uniform", "quantile"]

#: Probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before taking logarithms.
EPSILON = 1e-15

CLASSIFICATION_KEYS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "lift_at_top",
    "capture_at_top",
    "ece",
    "positive_rate",
    "rows",
)
VALUE_KEYS = ("gini", "spearman", "decile_mape", "total_error", "rows")


# --------------------------------------------------------------------------- validation helpers


def _vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as a finite, non-empty 1-D float array."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one row")
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or infinity)")
    return array


def _same_length(first: NDArray, second: NDArray, names: tuple[str, str]) -> None:
    if first.shape[0] != second.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} have different lengths "
            f"({first.shape[0]} and {second.shape[0]})"
        )


def _labels(y_true: ArrayLike) -> NDArray[np.float64]:
    """Return binary labels as a 0.0/1.0 array, rejecting anything else."""
    labels = _vector(y_true, "y_true")
    if not np.all((labels == 0) | (labels == 1)):
        found = np.unique(labels[(labels != 0) & (labels != 1)])[:5]
        raise ValueError(f"y_true must contain only 0 and 1 (or booleans); found {found.tolist()}")
    return labels


def _probabilities(probability: ArrayLike) -> NDArray[np.float64]:
    values = _vector(probability, "probability")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(
            f"probability must lie in [0, 1]; got range [{values.min():.6g}, {values.max():.6g}]"
        )
    return values


def _labels_and(y_true: ArrayLike, other: ArrayLike, name: str) -> tuple[NDArray, NDArray]:
    labels = _labels(y_true)
    values = _probabilities(other) if name == "probability" else _vector(other, name)
    _same_length(labels, values, ("y_true", name))
    return labels, values


def _require_both_classes(labels: NDArray, metric: str) -> None:
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        only = "1 (positive)" if positives else "0 (negative)"
        raise ValueError(
            f"{metric} needs both classes in y_true; all {labels.size} rows are {only}"
        )


def _require_positive(labels: NDArray, metric: str) -> None:
    if labels.sum() == 0:
        raise ValueError(f"{metric} needs at least one positive row in y_true; found none")


def _check_bins(bins: int) -> None:
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins!r}")


def _ranking(score: NDArray) -> NDArray[np.intp]:
    """Row indices from highest to lowest score; ties keep input order (stable sort)."""
    return np.argsort(-score, kind="stable")


# --------------------------------------------------------------------------- classification


def roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans).
    score : array-like of shape (n,)
        Any real-valued score; higher means more likely positive.

    Returns
    -------
    float
        ROC AUC in [0, 1] (ties in ``score`` count one half, as in scikit-learn).

    Raises
    ------
    ValueError
        If ``y_true`` holds a single class, or on invalid input.
    """
    labels, values = _labels_and(y_true, score, "score")
    _require_both_classes(labels, "roc_auc")
    return float(roc_auc_score(labels, values))


def average_precision(y_true: ArrayLike, score: ArrayLike) -> float:
    """Average precision, the step-wise area under the precision-recall curve.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans).
    score : array-like of shape (n,)
        Any real-valued score; higher means more likely positive.

    Returns
    -------
    float
        Average precision in [0, 1]; a random ranking scores about the positive rate.

    Raises
    ------
    ValueError
        If ``y_true`` has no positive row, or on invalid input.
    """
    labels, values = _labels_and(y_true, score, "score")
    _require_positive(labels, "pr_auc (average precision)")
    return float(average_precision_score(labels, values))


def _log_loss(labels: NDArray, probability: NDArray) -> float:
    clipped = np.clip(probability, EPSILON, 1 - EPSILON)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped)))


def _brier(labels: NDArray, probability: NDArray) -> float:
    return float(np.mean((probability - labels) ** 2))


def _top_count(rows: int, top_fraction: float) -> int:
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1]; got {top_fraction!r}")
    # Round first so that e.g. 0.3 * 10 = 3.0000000000000004 gives 3 rows, not 4.
    return min(rows, max(1, math.ceil(round(top_fraction * rows, 9))))


def lift_and_capture(
    y_true: ArrayLike, score: ArrayLike, top_fraction: float = 0.1
) -> tuple[float, float]:
    """Lift and capture among the rows ranked highest by ``score``.

    The top ``ceil(top_fraction * n)`` rows (at least one) are taken after a stable sort on
    ``-score``, so tied scores keep their input order.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans).
    score : array-like of shape (n,)
        Any real-valued score; higher means contacted first.
    top_fraction : float, default=0.1
        Share of rows contacted, in (0, 1].

    Returns
    -------
    lift : float
        Positive rate among the top rows divided by the overall positive rate (1 = random).
    capture : float
        Share of all positives found among the top rows.

    Raises
    ------
    ValueError
        If ``y_true`` has no positive row, ``top_fraction`` is outside (0, 1], or on invalid
        input.
    """
    labels, values = _labels_and(y_true, score, "score")
    _require_positive(labels, "lift_and_capture")
    top = _top_count(labels.size, top_fraction)
    found = labels[_ranking(values)[:top]].sum()
    positives = labels.sum()
    lift = (found / top) / (positives / labels.size)
    return float(lift), float(found / positives)


def gain_curve(y_true: ArrayLike, score: ArrayLike) -> tuple[NDArray, NDArray]:
    """Cumulative gain: share of positives captured against share of rows contacted.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans).
    score : array-like of shape (n,)
        Any real-valued score; rows are contacted from highest to lowest (stable on ties).

    Returns
    -------
    share_contacted : ndarray of shape (n + 1,)
        ``0, 1/n, ..., 1``.
    share_captured : ndarray of shape (n + 1,)
        Share of all positives among the first ``k`` rows, starting at 0 and ending at 1.

    Raises
    ------
    ValueError
        If ``y_true`` has no positive row, or on invalid input.
    """
    labels, values = _labels_and(y_true, score, "score")
    _require_positive(labels, "gain_curve")
    captured = np.concatenate([[0.0], np.cumsum(labels[_ranking(values)])]) / labels.sum()
    contacted = np.arange(labels.size + 1, dtype=float) / labels.size
    return contacted, captured


def _bin_ids(probability: NDArray, bins: int, strategy: Strategy) -> NDArray[np.intp]:
    """Bin index (0-based) of each probability; edges as in ``sklearn.calibration_curve``."""
    _check_bins(bins)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(bins) + 1)
    elif strategy == "quantile":
        edges = np.percentile(probability, np.linspace(0, 100, int(bins) + 1))
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}")
    # Right-closed bins (lo, hi]; the first bin also holds its lower edge.
    return np.searchsorted(edges[1:-1], probability)


def calibration_table(
    y_true: ArrayLike,
    probability: ArrayLike,
    bins: int = 10,
    strategy: Strategy = "uniform",
) -> pd.DataFrame:
    """Observed positive rate against mean predicted probability, per probability bin.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans).
    probability : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    bins : int, default=10
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        ``"uniform"`` splits [0, 1] into equal-width bins; ``"quantile"`` uses quantiles of
        ``probability`` as edges (bins of about equal size; tied predictions may merge bins).
        Edges match :func:`sklearn.calibration.calibration_curve`.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin with columns ``bin`` (1-based index among all ``bins``),
        ``rows``, ``mean_predicted`` and ``observed_rate``.
    """
    labels, values = _labels_and(y_true, probability, "probability")
    frame = pd.DataFrame(
        {"bin": _bin_ids(values, bins, strategy) + 1, "label": labels, "probability": values}
    )
    table = frame.groupby("bin", sort=True).agg(
        rows=("label", "size"),
        mean_predicted=("probability", "mean"),
        observed_rate=("label", "mean"),
    )
    return table.reset_index()


def expected_calibration_error(
    y_true: ArrayLike,
    probability: ArrayLike,
    bins: int = 10,
    strategy: Strategy = "uniform",
) -> float:
    """Expected calibration error (ECE).

    The mean over bins of ``|observed rate - mean predicted probability|``, weighted by the
    share of rows in each bin; bins as in :func:`calibration_table`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans).
    probability : array-like of shape (n,)
        Predicted probabilities in [0, 1].
    bins : int, default=10
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Bin edges; see :func:`calibration_table`.

    Returns
    -------
    float
        ECE in [0, 1]; 0 when every bin's observed rate equals its mean prediction.
    """
    table = calibration_table(y_true, probability, bins=bins, strategy=strategy)
    gap = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float(np.sum(gap * table["rows"]) / table["rows"].sum())


def classification_metrics(
    y_true: ArrayLike,
    probability: ArrayLike,
    top_fraction: float = 0.1,
    bins: int = 10,
) -> dict[str, float]:
    """All churn-model metrics in one dictionary.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or booleans); both classes must be present.
    probability : array-like of shape (n,)
        Predicted probabilities in [0, 1]. They are clipped to ``[1e-15, 1 - 1e-15]`` for the
        log loss only.
    top_fraction : float, default=0.1
        Share of rows contacted for ``lift_at_top`` and ``capture_at_top``.
    bins : int, default=10
        Number of uniform bins for ``ece``.

    Returns
    -------
    dict of str to float
        ``roc_auc``, ``pr_auc`` (average precision), ``log_loss``, ``brier``, ``lift_at_top``,
        ``capture_at_top``, ``ece`` (uniform bins), ``positive_rate`` and ``rows``.

    Raises
    ------
    ValueError
        If ``y_true`` holds a single class, lengths differ, input is empty, labels are not 0/1,
        or probabilities are outside [0, 1] or not finite.
    """
    labels, values = _labels_and(y_true, probability, "probability")
    _require_both_classes(labels, "roc_auc")
    lift, capture = lift_and_capture(labels, values, top_fraction)
    return {
        "roc_auc": roc_auc(labels, values),
        "pr_auc": average_precision(labels, values),
        "log_loss": _log_loss(labels, values),
        "brier": _brier(labels, values),
        "lift_at_top": lift,
        "capture_at_top": capture,
        "ece": expected_calibration_error(labels, values, bins=bins),
        "positive_rate": float(labels.mean()),
        "rows": float(labels.size),
    }


# --------------------------------------------------------------------------- value (CLV)


def _value_pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[NDArray, NDArray]:
    truth = _vector(actual, "actual")
    guess = _vector(predicted, "predicted")
    _same_length(truth, guess, ("actual", "predicted"))
    return truth, guess


def _gini_area(actual: NDArray, order: NDArray) -> float:
    """Sum over k of (cumulative actual of the first k rows - k/n of the total)."""
    cumulative = np.cumsum(actual[order])
    return float(cumulative.sum() - actual.sum() * (actual.size + 1) / 2)


def normalized_gini(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Normalized Gini: Gini of the predicted ordering divided by Gini of the perfect ordering.

    Rows are sorted by ``predicted`` (descending, stable: tied predictions keep their input
    order, as in the Kaggle reference implementation) and the cumulative ``actual`` is compared
    with the straight line of a random ordering. The perfect ordering sorts by ``actual``.

    Parameters
    ----------
    actual : array-like of shape (n,)
        Observed values (e.g. future net margin). Negative values are allowed.
    predicted : array-like of shape (n,)
        Predicted values or any score; only the ordering matters.

    Returns
    -------
    float
        1 for the perfect ordering, -1 for the reversed one (with distinct predictions), near 0
        for a random one.

    Raises
    ------
    ValueError
        If all ``actual`` values are equal (no ordering is better than another), or on invalid
        input.

    Notes
    -----
    The Kaggle formula divides cumulative sums by the total of ``actual`` before subtracting the
    diagonal. Both Ginis are divided by that same total, so it cancels in the ratio; this
    implementation skips the division. The result equals the Kaggle value whenever the total is
    non-zero, **including negative totals** (net margin can be negative), and remains defined
    when the total is exactly zero. With negative values, the perfect ordering still puts the
    largest actual first (most profitable to most loss-making) and, because it maximises every
    prefix sum, the result always lies in [-1, 1].
    """
    truth, guess = _value_pair(actual, predicted)
    if np.ptp(truth) == 0:
        raise ValueError(
            "normalized_gini needs actual values that are not all equal; "
            f"all {truth.size} are {truth[0]:.6g}"
        )
    return _gini_area(truth, _ranking(guess)) / _gini_area(truth, _ranking(truth))


def _spearman(actual: NDArray, predicted: NDArray) -> float:
    """Spearman rank correlation; NaN when either side is constant (undefined)."""
    if np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return float("nan")
    return float(stats.spearmanr(actual, predicted).statistic)


def _relative_error(predicted_sum: float, actual_sum: float) -> float:
    if actual_sum == 0:
        return float("nan")
    return float((predicted_sum - actual_sum) / abs(actual_sum))


def decile_table(actual: ArrayLike, predicted: ArrayLike, deciles: int = 10) -> pd.DataFrame:
    """Predicted against actual totals per group of rows ranked by prediction.

    Rows are sorted by ``predicted`` (descending, stable on ties) and split into ``deciles``
    consecutive groups whose sizes differ by at most one (earlier groups get the extra rows).

    Parameters
    ----------
    actual : array-like of shape (n,)
        Observed values (negative allowed).
    predicted : array-like of shape (n,)
        Predicted values.
    deciles : int, default=10
        Number of groups; needs ``n >= deciles``.

    Returns
    -------
    pandas.DataFrame
        One row per group with columns ``decile`` (1 = highest predicted), ``rows``,
        ``predicted_sum``, ``actual_sum``, ``predicted_mean``, ``actual_mean`` and ``ape``
        (``|predicted_sum - actual_sum| / |actual_sum|``; NaN where ``actual_sum`` is 0).
    """
    truth, guess = _value_pair(actual, predicted)
    if int(deciles) != deciles or deciles < 1:
        raise ValueError(f"deciles must be a positive integer; got {deciles!r}")
    if truth.size < deciles:
        raise ValueError(f"decile_table needs at least {deciles} rows; got {truth.size}")
    groups = np.array_split(_ranking(guess), int(deciles))
    records = []
    for number, rows in enumerate(groups, start=1):
        predicted_sum, actual_sum = float(guess[rows].sum()), float(truth[rows].sum())
        records.append(
            {
                "decile": number,
                "rows": rows.size,
                "predicted_sum": predicted_sum,
                "actual_sum": actual_sum,
                "predicted_mean": predicted_sum / rows.size,
                "actual_mean": actual_sum / rows.size,
                "ape": abs(_relative_error(predicted_sum, actual_sum)),
            }
        )
    return pd.DataFrame.from_records(records)


def value_metrics(actual: ArrayLike, predicted: ArrayLike, deciles: int = 10) -> dict[str, float]:
    """All customer-value metrics in one dictionary.

    Parameters
    ----------
    actual : array-like of shape (n,)
        Observed values (negative allowed), not all equal.
    predicted : array-like of shape (n,)
        Predicted values.
    deciles : int, default=10
        Number of predicted-rank groups for ``decile_mape``; needs ``n >= deciles``.

    Returns
    -------
    dict of str to float
        ``gini`` (:func:`normalized_gini`), ``spearman`` (NaN if predictions are constant),
        ``decile_mape`` (mean of the ``ape`` column of :func:`decile_table`, skipping groups
        whose actual sum is 0 because their relative error is undefined; NaN if all are
        skipped), ``total_error`` (``(sum predicted - sum actual) / |sum actual|``, signed: >0
        means over-prediction; NaN if the actual sum is 0) and ``rows``.
    """
    truth, guess = _value_pair(actual, predicted)
    table = decile_table(truth, guess, deciles=deciles)
    ape = table["ape"].dropna()
    return {
        "gini": normalized_gini(truth, guess),
        "spearman": _spearman(truth, guess),
        "decile_mape": float(ape.mean()) if len(ape) else float("nan"),
        "total_error": _relative_error(float(guess.sum()), float(truth.sum())),
        "rows": float(truth.size),
    }
