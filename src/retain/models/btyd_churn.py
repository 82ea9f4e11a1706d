"""Churn from a buy-till-you-die model: the probability of no purchase in the horizon.

:class:`BTYDChurnClassifier` fits BG/NBD (Fader, Hardie & Lee 2005) or Pareto/NBD (Schmittlein,
Morrison & Colombo 1987) to the customers' purchase summaries (``btyd_frequency``,
``btyd_recency``, ``btyd_T``: repeat purchase days, and the age at the last purchase and now, in
days) and predicts, for each customer, the model's probability of no purchase in the next
``horizon_days`` given their history. It needs no label window to be estimated, only a cutoff's
summaries, so it is the baseline every churn model must beat on the same rows, and what retain
serves where the gradient-boosted model does not beat it.

Like :class:`~retain.models.ChurnClassifier` it calibrates its probabilities on validation rows
(cross-fitted, see :class:`~retain.models.churn.CalibratedChurnMixin`) and explains them:
:meth:`BTYDChurnClassifier.contributions` splits each customer's log-odds of churn against a
reference customer (the training medians) into exact Shapley values of the three summary
columns, so the list's reasons work whichever model serves.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from retain.models._xgboost import BIAS_COLUMN, check_frame, split_eval_set
from retain.models.churn import CALIBRATION_SETTINGS, LOGIT_CLIP, CalibratedChurnMixin, check_labels
from retain.models.clv.value import BTYD_COLUMNS, PURCHASE_MODELS, _btyd_inputs

__all__ = ["BTYDChurnClassifier", "SUMMARY_COLUMNS"]

#: The summary columns the model reads: repeat purchase days, recency and age (days).
SUMMARY_COLUMNS = BTYD_COLUMNS[:3]


class BTYDChurnClassifier(ClassifierMixin, CalibratedChurnMixin, BaseEstimator):
    """P(no purchase in ``horizon_days``) from a BTYD model of each purchase history.

    Parameters
    ----------
    purchase_model : {"bgnbd", "pareto_nbd"}, default="bgnbd"
        The BTYD model of purchases and dropout.
    horizon_days : float, default=90
        Horizon of the churn label: no purchase in ``[as_of, as_of + horizon_days)``.
    penalizer : float, default=0.0
        L2 penalty of the purchase model's fit.
    calibration : {"auto", "isotonic", "platt", "none"}, default="auto"
        Calibration on the ``eval_set`` of :meth:`fit`, as for ``ChurnClassifier``.
    random_state : int or None, default=0
        Seed of the calibration's cross-fitting split.

    Attributes
    ----------
    purchase_model_ : BGNBD or ParetoNBD
        The fitted purchase model.
    feature_names_in_ : numpy.ndarray of str
        :data:`SUMMARY_COLUMNS`.
    n_features_in_ : int
        3.
    classes_ : numpy.ndarray
        ``[0, 1]``: 1 means churn.
    reference_ : numpy.ndarray
        Median summary of the fitting rows: the reference customer of :meth:`contributions`.
    calibration_, calibrator_, calibration_scores_, oof_probability_, oof_raw_probability_
        As for :class:`~retain.models.ChurnClassifier`.
    holdout_ : BTYDChurnClassifier or None
        After :meth:`refit`, the model fitted before (``None`` before).

    Notes
    -----
    Customers without a purchase before the cutoff (no summary) get P(churn) = 1.
    """

    def __init__(
        self,
        purchase_model: str = "bgnbd",
        horizon_days: float = 90,
        penalizer: float = 0.0,
        calibration: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.purchase_model = purchase_model
        self.horizon_days = horizon_days
        self.penalizer = penalizer
        self.calibration = calibration
        self.random_state = random_state

    def fit(
        self, X: pd.DataFrame, y: object = None, *, eval_set: tuple | None = None
    ) -> BTYDChurnClassifier:
        """Fit the purchase model to the summaries of ``X``; calibrate on ``eval_set``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with :data:`SUMMARY_COLUMNS` (other columns are ignored), e.g. the customers
            active at one cutoff; their summaries use only events before it.
        y : ignored
            The purchase model learns from the histories alone.
        eval_set : (pandas.DataFrame, array-like of 0/1) or None, default=None
            Validation rows and churn labels for the calibration.

        Returns
        -------
        BTYDChurnClassifier
            The fitted estimator.
        """
        self._check_settings()
        self._fit_purchases(check_frame(X))
        self.classes_ = np.array([0, 1])
        valid = split_eval_set(eval_set)
        if valid is not None:
            valid = valid[0], check_labels(valid[1], len(valid[0]), "y_valid")
        elif self.calibration in ("platt", "isotonic"):
            raise ValueError(f"calibration={self.calibration!r} needs an eval_set")
        self._fit_calibration(valid)
        self.holdout_ = None
        return self

    def refit(self, X: pd.DataFrame, y: object = None) -> BTYDChurnClassifier:
        """Fit the purchase model again on ``X`` (e.g. the latest cutoff's customers), keeping
        the calibration; the model fitted before is kept as ``holdout_``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with :data:`SUMMARY_COLUMNS`.
        y : ignored

        Returns
        -------
        BTYDChurnClassifier
            This estimator, refitted.
        """
        check_is_fitted(self, "calibrator_")
        holdout = _copy_fitted(self)
        self._fit_purchases(check_frame(X))
        self.holdout_ = holdout
        return self

    def _check_settings(self) -> None:
        if self.purchase_model not in PURCHASE_MODELS:
            raise ValueError(
                f"purchase_model must be one of {sorted(PURCHASE_MODELS)}, "
                f"got {self.purchase_model!r}"
            )
        if self.calibration not in CALIBRATION_SETTINGS:
            raise ValueError(f"calibration must be one of {CALIBRATION_SETTINGS}")
        horizon = self.horizon_days
        if isinstance(horizon, bool) or not isinstance(horizon, int | float) or horizon <= 0:
            raise ValueError(f"horizon_days must be a positive number; got {horizon!r}")

    def _fit_purchases(self, X: pd.DataFrame) -> None:
        frequency, recency, age, known = _summaries(X)
        if not known.any():
            raise ValueError("no row has a purchase history (btyd_T > 0) to fit on")
        model = PURCHASE_MODELS[self.purchase_model](penalizer=self.penalizer)
        self.purchase_model_ = model.fit(frequency[known], recency[known], age[known])
        self.feature_names_in_ = np.asarray(SUMMARY_COLUMNS, dtype=object)
        self.n_features_in_ = len(SUMMARY_COLUMNS)
        self.reference_ = np.array(
            [np.median(frequency[known]), np.median(recency[known]), np.median(age[known])]
        )

    # -- prediction ----------------------------------------------------------------------------

    def _no_purchase(self, frequency, recency, age, known) -> np.ndarray:
        probability = self.purchase_model_.conditional_probability_no_purchase(
            float(self.horizon_days), frequency, recency, age
        )
        return np.where(known, probability, 1.0)

    def predict_raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated P(churn): the model's probability of no purchase in the horizon.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with :data:`SUMMARY_COLUMNS`.

        Returns
        -------
        numpy.ndarray of shape (n_rows,)
        """
        check_is_fitted(self, "purchase_model_")
        return self._no_purchase(*_summaries(check_frame(X)))

    def contributions(self, X: pd.DataFrame, *, approximate: bool = False) -> pd.DataFrame:
        """Exact Shapley values of the raw log-odds of churn over the three summary columns.

        Each customer is compared with the reference customer (``reference_``): a column
        "absent" from a coalition takes the reference's value (a recency above the age is cut
        to the age; without repeat purchases the recency is 0, as in any summary). With three
        columns all eight coalitions are evaluated, so the values are exact.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with :data:`SUMMARY_COLUMNS`.
        approximate : bool, default=False
            Ignored (the values are always exact); accepted so that scoring treats every
            churn model alike.

        Returns
        -------
        pandas.DataFrame
            One column per summary column plus ``bias`` (the reference's log-odds), indexed
            like ``X``; each row sums to the customer's log-odds of ``predict_raw_proba``.
        """
        check_is_fitted(self, "purchase_model_")
        values = np.column_stack(_summaries(check_frame(X))[:3])
        known = _summaries(X)[3]
        n = len(SUMMARY_COLUMNS)
        worth = {}
        for size in range(n + 1):
            for coalition in combinations(range(n), size):
                mixed = np.tile(self.reference_, (len(values), 1))
                mixed[:, list(coalition)] = values[:, list(coalition)]
                worth[coalition] = self._log_odds(mixed)
        shapley = np.zeros_like(values)
        weights = {size: _shapley_weight(size, n) for size in range(n)}
        for column in range(n):
            for coalition, value in worth.items():
                if column in coalition:
                    continue
                joined = tuple(sorted((*coalition, column)))
                shapley[:, column] += weights[len(coalition)] * (worth[joined] - value)
        # customers without a history are certain churners: put it all on the age column
        full = self._log_odds(values, known)
        bias = worth[()]
        shapley[~known] = 0.0
        shapley[~known, 2] = full[~known] - bias[~known]
        frame = pd.DataFrame(shapley, index=X.index, columns=list(SUMMARY_COLUMNS))
        frame[BIAS_COLUMN] = bias
        return frame

    def _log_odds(self, values: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
        frequency, recency, age = values[:, 0], values[:, 1], values[:, 2]
        recency = np.where(frequency > 0, np.minimum(recency, age), 0.0)
        known = np.ones(len(values), bool) if known is None else known
        probability = self._no_purchase(frequency, recency, age, known)
        return logit(np.clip(probability, LOGIT_CLIP, 1 - LOGIT_CLIP))

    def shap_importance(self, X: pd.DataFrame) -> pd.Series:
        """Mean absolute contribution per summary column on ``X``, largest first."""
        contributions = self.contributions(X).drop(columns=BIAS_COLUMN)
        importance = contributions.abs().mean(axis=0).rename("mean_abs_shap")
        return importance.sort_values(ascending=False, kind="stable")


def _summaries(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frequency, recency and age (0, 0 and 1 where unknown) and whether each row has them."""
    missing = [name for name in SUMMARY_COLUMNS if name not in X.columns]
    if missing:
        raise ValueError(f"X is missing the BTYD summary column(s) {missing}")
    padded = X.reindex(columns=list(BTYD_COLUMNS))  # _btyd_inputs reads the spend as well
    frequency, recency, age, _, known = _btyd_inputs(padded)
    return frequency, recency, age, known


def _shapley_weight(size: int, n: int) -> float:
    """Weight of a coalition of ``size`` columns (of ``n``) in a Shapley value."""
    from math import factorial

    return factorial(size) * factorial(n - size - 1) / factorial(n)


def _copy_fitted(model: BTYDChurnClassifier) -> BTYDChurnClassifier:
    import copy

    holdout = copy.copy(model)
    holdout.holdout_ = None
    return holdout
