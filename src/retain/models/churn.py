"""Churn classifier: gradient-boosted trees (xgboost) with honestly chosen calibration.

:class:`ChurnClassifier` predicts P(churn) from a feature frame of numeric columns and
categorical attributes (encoding, column checks and SHAP explanations come from
:class:`~retain.models._xgboost.XGBoostEstimator`). Given a validation set, it stops boosting
early on it and then calibrates the probabilities. The calibration method is chosen without
fooling itself: the validation rows are split in two (stratified, by ``random_state``), each
candidate calibrator is fitted on one half and scored on the other, and the method with the
lowest out-of-fold log loss wins; it is then refitted on the whole validation set. The
out-of-fold probabilities are kept (``oof_probability_``) so that validation metrics of the
calibrated model can be computed without re-using the rows the calibrator saw.

The candidates are the raw probabilities (``"none"``), Platt scaling (a logistic regression on
the logit of the raw probability; Platt 1999) and isotonic regression (Zadrozny & Elkan 2002).

:meth:`ChurnClassifier.refit` then lets the served model learn the latest behaviour: the trees
are grown again on the training *and* validation rows, for the number of rounds early stopping
chose, and the calibrator chosen and fitted on the validation rows' predictions of the earlier
trees is kept. The earlier model stays available as ``holdout_``: its out-of-fold validation
metrics are the ones to report, and a champion gate compares holdout models on rows neither saw.
:class:`CalibratedChurnMixin` holds the calibration part, which the BTYD churn model shares.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike
from scipy.special import logit
from sklearn.base import ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import Tags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from retain.models._xgboost import (
    FeatureEncoding,
    XGBoostEstimator,
    check_booster_settings,
    check_number,
    check_target,
    split_eval_set,
)

__all__ = [
    "CALIBRATION_METHODS",
    "CalibratedChurnMixin",
    "ChurnClassifier",
    "IdentityCalibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
]

CALIBRATION_METHODS = ("none", "platt", "isotonic")
CALIBRATION_SETTINGS = ("auto", *CALIBRATION_METHODS)
CALIBRATION_FOLDS = 2
# Raw probabilities are float32: clip before taking logits so that 0 and 1 stay finite.
LOGIT_CLIP = 1e-7
# Platt scaling is a two-parameter fit; this C makes its L2 penalty negligible.
PLATT_C = 1e4


# ---------------------------------------------------------------------------------------------
# Calibrators: fit(raw probability, label) -> self; predict(raw probability) -> probability
# ---------------------------------------------------------------------------------------------


class IdentityCalibrator:
    """Leaves probabilities as they are (the ``"none"`` method)."""

    def fit(self, probability: np.ndarray, y: np.ndarray) -> IdentityCalibrator:
        return self

    def predict(self, probability: np.ndarray) -> np.ndarray:
        return np.asarray(probability, dtype=np.float64)


class PlattCalibrator:
    """Platt scaling: a logistic regression on the logit of the raw probability."""

    def fit(self, probability: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        self.regression_ = LogisticRegression(C=PLATT_C).fit(_logit_column(probability), y)
        return self

    def predict(self, probability: np.ndarray) -> np.ndarray:
        return self.regression_.predict_proba(_logit_column(probability))[:, 1]


class IsotonicCalibrator:
    """Isotonic regression of the label on the raw probability.

    Outputs are kept within ``[1/(2(n+1)), 1 - 1/(2(n+1))]`` for ``n`` fitting rows, so that a
    region of the score without positives (or negatives) does not claim certainty.
    """

    def fit(self, probability: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        margin = 1.0 / (2.0 * (len(y) + 1))
        isotonic = IsotonicRegression(y_min=margin, y_max=1 - margin, out_of_bounds="clip")
        self.regression_ = isotonic.fit(np.asarray(probability, dtype=np.float64), y)
        return self

    def predict(self, probability: np.ndarray) -> np.ndarray:
        return self.regression_.predict(np.asarray(probability, dtype=np.float64))


Calibrator = IdentityCalibrator | PlattCalibrator | IsotonicCalibrator
CALIBRATORS: dict[str, type[Calibrator]] = {
    "none": IdentityCalibrator,
    "platt": PlattCalibrator,
    "isotonic": IsotonicCalibrator,
}


def _logit_column(probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(probability, dtype=np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return logit(clipped).reshape(-1, 1)


def cross_fitted_probabilities(
    raw: np.ndarray, y: np.ndarray, random_state: Any
) -> dict[str, np.ndarray]:
    """Out-of-fold calibrated probabilities of each method, by 2-fold cross-fitting.

    Parameters
    ----------
    raw : numpy.ndarray
        Raw probabilities of the validation rows.
    y : numpy.ndarray
        Their 0/1 labels (at least two of each).
    random_state : int, RandomState or None
        Seed of the stratified split.

    Returns
    -------
    dict of str to numpy.ndarray
        Method name to probabilities, each row predicted by a calibrator that did not see it.
    """
    folds = StratifiedKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=random_state)
    splits = list(folds.split(np.zeros((len(y), 1)), y))
    out = {}
    for method, calibrator in CALIBRATORS.items():
        oof = np.empty(len(y), dtype=np.float64)
        for fit_rows, score_rows in splits:
            fitted = calibrator().fit(raw[fit_rows], y[fit_rows])
            oof[score_rows] = fitted.predict(raw[score_rows])
        out[method] = oof
    return out


def check_labels(y: object, n_rows: int, name: str) -> np.ndarray:
    """0/1 (or boolean) labels, one per row, as floats.

    Raises
    ------
    ValueError
        If a label is not 0 or 1 (the message names the kind of target, e.g. continuous).
    """
    labels = check_target(y, n_rows, name)
    bad = ~np.isin(labels, (0.0, 1.0))
    if np.any(bad):
        kind = type_of_target(labels, input_name=name)
        binary = "Only binary classification is supported. " if kind == "multiclass" else ""
        raise ValueError(
            f"{binary}{name} must hold 0/1 labels (1 = churn); got a {kind} target with values "
            f"such as {np.unique(labels[bad])[:5]}"
        )
    return labels


# ---------------------------------------------------------------------------------------------
# Calibrated prediction, and the estimator
# ---------------------------------------------------------------------------------------------


class CalibratedChurnMixin:
    """Calibration chosen by cross-fitting on validation rows, and calibrated prediction.

    For churn classifiers with ``calibration`` and ``random_state`` settings and a
    ``predict_raw_proba`` method; ``_fit_calibration`` sets ``calibration_``, ``calibrator_``,
    ``calibration_scores_``, ``oof_probability_`` and ``oof_raw_probability_`` as
    :class:`ChurnClassifier` documents them.
    """

    def _fit_calibration(self, valid: tuple[pd.DataFrame, np.ndarray] | None) -> None:
        """Choose the calibration by cross-fitting on the validation rows, then refit it."""
        if valid is None:
            self._set_calibration("none", IdentityCalibrator(), {}, None, None)
            return
        raw = self._checked_raw_proba(valid[0])
        y = valid[1]
        if np.bincount(y.astype(np.intp), minlength=2).min() < CALIBRATION_FOLDS:
            self._calibrate_without_folds(raw, y)
            return
        oof = cross_fitted_probabilities(raw, y, self.random_state)
        scores = {method: log_loss(y, p, labels=[0, 1]) for method, p in oof.items()}
        method = min(scores, key=scores.get) if self.calibration == "auto" else self.calibration
        calibrator = CALIBRATORS[method]().fit(raw, y)
        self._set_calibration(method, calibrator, scores, oof[method], raw)

    def _checked_raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated P(churn) of features ``fit`` has checked already."""
        return self.predict_raw_proba(X)

    def _calibrate_without_folds(self, raw: np.ndarray, y: np.ndarray) -> None:
        """Too few rows of a class to cross-fit: explicit methods fail, ``auto`` uses none."""
        if self.calibration in ("platt", "isotonic"):
            raise ValueError(
                f"calibration={self.calibration!r} needs at least {CALIBRATION_FOLDS} rows of "
                "each class in the validation set"
            )
        if self.calibration == "auto":
            warnings.warn(
                "too few rows of a class in the validation set to choose a calibration; "
                "probabilities are left uncalibrated",
                UserWarning,
                stacklevel=3,
            )
        scores = {"none": log_loss(y, raw, labels=[0, 1])}
        self._set_calibration("none", IdentityCalibrator(), scores, raw.copy(), raw)

    def _set_calibration(
        self,
        method: str,
        calibrator: Calibrator,
        scores: dict[str, float],
        oof: np.ndarray | None,
        raw: np.ndarray | None,
    ) -> None:
        self.calibration_ = method
        self.calibrator_ = calibrator
        self.calibration_scores_ = {name: float(score) for name, score in scores.items()}
        self.oof_probability_ = oof
        self.oof_raw_probability_ = raw

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated class probabilities.

        Parameters
        ----------
        X : pandas.DataFrame
            Features with (at least) the training columns.

        Returns
        -------
        numpy.ndarray of shape (n_rows, 2)
            Columns ``[P(stay), P(churn)]``, in the order of ``classes_``.
        """
        check_is_fitted(self, "calibrator_")
        churn = self.calibrator_.predict(self.predict_raw_proba(X))
        return np.column_stack([1.0 - churn, churn])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where the calibrated P(churn) exceeds 0.5, else 0.

        Parameters
        ----------
        X : pandas.DataFrame
            Features with (at least) the training columns.

        Returns
        -------
        numpy.ndarray of int, shape (n_rows,)
        """
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)

    def predict_holdout_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated class probabilities of the model fitted without the validation rows.

        The model itself when it was not refitted (see ``refit``); what a champion gate scores
        on validation rows, out of time for every model compared.
        """
        holdout = getattr(self, "holdout_", None)
        return (holdout if holdout is not None else self).predict_proba(X)


class ChurnClassifier(ClassifierMixin, CalibratedChurnMixin, XGBoostEstimator):
    """Gradient-boosted churn classifier with early stopping and chosen calibration.

    Parameters
    ----------
    n_estimators : int, default=1000
        Maximum number of boosting rounds (early stopping usually ends sooner).
    learning_rate : float, default=0.05
        Shrinkage of each tree.
    max_depth : int, default=5
        Maximum depth of a tree.
    min_child_weight : float, default=1.0
        Minimum hessian sum in a leaf.
    subsample : float, default=0.8
        Share of rows sampled per tree.
    colsample_bytree : float, default=0.8
        Share of columns sampled per tree.
    reg_lambda : float, default=1.0
        L2 penalty on leaf weights.
    reg_alpha : float, default=0.0
        L1 penalty on leaf weights.
    gamma : float, default=0.0
        Minimum loss reduction to make a split.
    early_stopping_rounds : int or None, default=50
        Stop when the validation metric has not improved for this many rounds (only with an
        ``eval_set``); ``None`` trains all ``n_estimators`` rounds.
    eval_metric : str, default="logloss"
        xgboost metric on the validation set; the last one drives early stopping.
    calibration : {"auto", "isotonic", "platt", "none"}, default="auto"
        How to calibrate probabilities on the validation set; ``"auto"`` picks the method with
        the lowest cross-fitted log loss. ``"platt"`` and ``"isotonic"`` need an ``eval_set``.
    device : str, default="cpu"
        xgboost device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    n_jobs : int or None, default=None
        Threads used by xgboost; ``None`` uses all.
    random_state : int or None, default=0
        Seed of row/column sampling and of the calibration split.
    callbacks : list of xgboost.callback.TrainingCallback or None, default=None
        Passed to xgboost during ``fit`` (e.g. pruning in a hyper-parameter search); the
        validation set is named ``"validation_0"`` in their evaluation logs.

    Attributes
    ----------
    model_ : xgboost.XGBClassifier
        The fitted xgboost model (``booster_`` is its ``Booster``).
    best_iteration_ : int
        0-based index of the last boosting round used for predictions.
    evals_result_ : dict
        Validation metric per round, ``{"validation_0": {metric: [...]}}`` (empty without an
        ``eval_set``).
    feature_names_in_ : numpy.ndarray of str
        Training columns; set only when ``X`` was a DataFrame with string column names. The
        columns of an array are named ``x0``, ``x1``, ... inside (in ``categories_`` and the
        columns of ``contributions``).
    n_features_in_ : int
        Number of training columns.
    categories_ : dict of str to list of str
        Categories of each categorical column as learned in ``fit`` (strings, sorted). At
        prediction time, values outside them (and missing values) are treated as missing.
    classes_ : numpy.ndarray
        ``[0, 1]``: 1 means churn.
    calibration_ : str
        Calibration method in use: ``"none"``, ``"platt"`` or ``"isotonic"``. ``"none"``
        without an ``eval_set``.
    calibrator_ : IdentityCalibrator, PlattCalibrator or IsotonicCalibrator
        The calibrator, fitted on the whole validation set.
    calibration_scores_ : dict of str to float
        Out-of-fold log loss of each method on the validation rows (empty without an
        ``eval_set``; only ``"none"`` when the validation set has fewer than two rows of a
        class).
    oof_probability_ : numpy.ndarray or None
        Out-of-fold calibrated P(churn) of the validation rows, in their order.
    oof_raw_probability_ : numpy.ndarray or None
        Uncalibrated P(churn) of the validation rows. The booster never trained on them, but
        early stopping chose the number of rounds on them (a mild optimism).
    holdout_ : ChurnClassifier or None
        After :meth:`refit`, the model fitted without the validation rows (which the
        ``oof_*`` attributes describe); ``None`` before.

    Examples
    --------
    >>> model = ChurnClassifier().fit(X_train, y_train, eval_set=(X_valid, y_valid))
    >>> p_churn = model.predict_proba(X_new)[:, 1]
    """

    _model_class = xgb.XGBClassifier

    def __init__(
        self,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        max_depth: int = 5,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        early_stopping_rounds: int | None = 50,
        eval_metric: str = "logloss",
        calibration: str = "auto",
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | None = 0,
        callbacks: list[xgb.callback.TrainingCallback] | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.early_stopping_rounds = early_stopping_rounds
        self.eval_metric = eval_metric
        self.calibration = calibration
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.callbacks = callbacks

    # -- fitting -------------------------------------------------------------------------------

    def fit(
        self, X: pd.DataFrame | ArrayLike, y: object, *, eval_set: tuple | None = None
    ) -> ChurnClassifier:
        """Fit the trees (early stopping on ``eval_set``) and choose the calibration.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_rows, n_features)
            Features: numeric columns (NaN = missing) and categorical ones (pandas
            ``Categorical``, strings or objects). A 2-D array's columns are named ``x0``,
            ``x1``, ... (see ``feature_names_in_``).
        y : array-like of 0/1 or bool
            1 = churned. Both classes must occur.
        eval_set : (pandas.DataFrame or array-like, array-like) or None, default=None
            Validation features (read as ``X``) and labels for early stopping and calibration.

        Returns
        -------
        ChurnClassifier
            The fitted estimator.
        """
        self._check_settings()
        X = self._fit_input(X)
        y = check_labels(y, len(X), "y")
        if len(np.unique(y)) < 2:
            raise ValueError(f"y must contain both classes (0 and 1); got one class ({y[0]:.0f})")
        valid = self._checked_eval_set(self._eval_input(eval_set))
        self._fit_model(X, y, valid)
        self.classes_ = np.array([0, 1])
        self._fit_calibration(valid)
        self.holdout_ = None
        return self

    def refit(self, X: pd.DataFrame | ArrayLike, y: object) -> ChurnClassifier:
        """Grow the trees again on ``X`` (training and validation rows) to serve the latest
        behaviour; the fitted model so far is kept as ``holdout_``.

        The new trees get ``best_iteration_ + 1`` rounds (the number early stopping chose on
        the validation rows) and no early stopping; the calibration method and calibrator
        are kept. The calibrator was fitted on the earlier trees' predictions of rows they
        never saw, so it stays out of sample; the refitted trees, trained on a little more
        and more recent data with the same settings, give probabilities on a similar scale,
        which it maps as before. Report the holdout's metrics (``oof_probability_``); the
        refitted model has seen the validation rows.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_rows, n_features_in_)
            Every row to learn from, with the training columns (an array: in training order).
        y : array-like of 0/1 or bool
            1 = churned.

        Returns
        -------
        ChurnClassifier
            This estimator, refitted (``holdout_`` holds the one it replaced).
        """
        check_is_fitted(self, "calibrator_")
        X = self._input(X)
        return self._refit_trees(X, check_labels(y, len(X), "y"))

    def fit_from_booster(
        self,
        booster: xgb.Booster,
        encoding: FeatureEncoding,
        *,
        eval_set: tuple | None = None,
        best_iteration: int | None = None,
        evals_result: dict | None = None,
    ) -> ChurnClassifier:
        """Adopt trees fitted elsewhere (``xgboost.spark``), then choose the calibration.

        Everything after the trees is what :meth:`fit` does: the calibration is cross-fitted
        on ``eval_set`` and prediction, explanations and pickling are unchanged.

        Parameters
        ----------
        booster : xgboost.Booster
            Trees trained with this estimator's :meth:`booster_params` (objective
            ``binary:logistic``) on input encoded as ``encoding`` describes.
        encoding : FeatureEncoding
            Training columns and categories the booster's input was encoded with.
        eval_set : (pandas.DataFrame, array-like) or None, default=None
            Validation features and 0/1 labels for the calibration (the rows early stopping
            used).
        best_iteration : int or None, default=None
            0-based last round to predict with; default the booster's ``best_iteration``
            attribute (set by early stopping), else its last round.
        evals_result : dict or None, default=None
            Validation metric per round, kept as ``evals_result_``.

        Returns
        -------
        ChurnClassifier
            The fitted estimator.

        Raises
        ------
        ValueError
            Bad settings, a booster that does not match ``encoding``, or bad validation labels.
        """
        self._check_settings()
        valid = self._checked_eval_set(split_eval_set(eval_set))
        self._adopt_booster(booster, encoding, best_iteration, evals_result)
        self.classes_ = np.array([0, 1])
        self._fit_calibration(valid)
        self.holdout_ = None
        return self

    def _checked_eval_set(
        self, valid: tuple[pd.DataFrame, object] | None
    ) -> tuple[pd.DataFrame, np.ndarray] | None:
        if valid is not None:
            return valid[0], check_labels(valid[1], len(valid[0]), "y_valid")
        if self.calibration in ("platt", "isotonic"):
            raise ValueError(f"calibration={self.calibration!r} needs an eval_set")
        return None

    def _check_settings(self) -> None:
        check_booster_settings(self)
        if self.calibration not in CALIBRATION_SETTINGS:
            raise ValueError(f"calibration must be one of {CALIBRATION_SETTINGS}")
        check_number("gamma", self.gamma, 0, open_high=True)

    def _xgb_params(self) -> dict[str, Any]:
        params = super()._xgb_params()
        params.update(objective="binary:logistic", gamma=self.gamma, eval_metric=self.eval_metric)
        return params

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # churn or not: labels 0/1
        return tags

    # -- prediction ----------------------------------------------------------------------------

    def _checked_raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        # not read again: an array's frame would look like named columns to prediction
        return self._predict_encoded(self._encode_unchecked(X))

    def predict_raw_proba(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        """Uncalibrated P(churn) from the trees.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_rows, n_features_in_)
            Features with (at least) the training columns, or an array of them in training
            order.

        Returns
        -------
        numpy.ndarray of shape (n_rows,)
        """
        return self._booster_predict(X)
