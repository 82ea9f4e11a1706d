"""Spend regressor: gradient-boosted trees (xgboost) for a customer's future net margin.

:class:`SpendRegressor` predicts the net margin a customer will bring in a horizon from the
same kind of feature frame as the churn model (encoding, column checks and SHAP explanations
come from :class:`~retain.models._xgboost.XGBoostEstimator`). Future spend is zero for many
customers and skewed for the rest, which the default Tweedie objective (a compound
Poisson-gamma distribution with a log link) fits well. Tweedie and Poisson need non-negative
targets, so negative net margins (refunds exceeding purchases) are clipped to 0 in ``fit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted

from retain.models._xgboost import (
    FeatureEncoding,
    XGBoostEstimator,
    check_booster_settings,
    check_number,
    check_target,
)

__all__ = ["NON_NEGATIVE_OBJECTIVES", "SpendRegressor"]

# Objectives with a log link that need targets >= 0; their predictions are >= 0 too.
NON_NEGATIVE_OBJECTIVES = ("reg:tweedie", "count:poisson")
TWEEDIE = "reg:tweedie"


class SpendRegressor(RegressorMixin, XGBoostEstimator):
    """Gradient-boosted regressor of future net margin (Tweedie by default).

    Parameters
    ----------
    objective : str, default="reg:tweedie"
        xgboost objective. With ``"reg:tweedie"`` or ``"count:poisson"`` negative targets are
        clipped to 0 and predictions are non-negative; other objectives (e.g.
        ``"reg:squarederror"``) use the targets as they are.
    tweedie_variance_power : float, default=1.5
        Tweedie power ``p`` in ``(1, 2)``: near 1 Poisson-like, near 2 gamma-like. Used only
        with ``objective="reg:tweedie"``.
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
    early_stopping_rounds : int or None, default=50
        Stop when the validation metric (xgboost's default for the objective, e.g.
        ``tweedie-nloglik@1.5``) has not improved for this many rounds; only with an
        ``eval_set``.
    device : str, default="cpu"
        xgboost device (``"cpu"``, ``"cuda"``, ...).
    n_jobs : int or None, default=None
        Threads used by xgboost; ``None`` uses all.
    random_state : int or None, default=0
        Seed of row and column sampling.
    callbacks : list of xgboost.callback.TrainingCallback or None, default=None
        Passed to xgboost during ``fit``; the validation set is named ``"validation_0"``.

    Attributes
    ----------
    model_ : xgboost.XGBRegressor
        The fitted xgboost model (``booster_`` is its ``Booster``).
    best_iteration_ : int
        0-based index of the last boosting round used for predictions.
    evals_result_ : dict
        Validation metric per round (empty without an ``eval_set``).
    clipped_share_ : float
        Share of training targets that were negative and clipped to 0 (0 for objectives that
        accept negative targets).
    feature_names_in_ : numpy.ndarray of str
        Training columns; set only when ``X`` was a DataFrame with string column names. The
        columns of an array are named ``x0``, ``x1``, ... inside (in ``categories_`` and the
        columns of ``contributions``).
    n_features_in_ : int
        Number of training columns.
    categories_ : dict of str to list of str
        Categories of each categorical column as learned in ``fit`` (strings, sorted). At
        prediction time, values outside them (and missing values) are treated as missing.

    Examples
    --------
    >>> model = SpendRegressor().fit(X_train, margin_train, eval_set=(X_valid, margin_valid))
    >>> expected_margin = model.predict(X_new)
    """

    _model_class = xgb.XGBRegressor

    def __init__(
        self,
        objective: str = TWEEDIE,
        tweedie_variance_power: float = 1.5,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        max_depth: int = 5,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        early_stopping_rounds: int | None = 50,
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | None = 0,
        callbacks: list[xgb.callback.TrainingCallback] | None = None,
    ) -> None:
        self.objective = objective
        self.tweedie_variance_power = tweedie_variance_power
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.early_stopping_rounds = early_stopping_rounds
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.callbacks = callbacks

    def fit(
        self, X: pd.DataFrame | ArrayLike, y: object, *, eval_set: tuple | None = None
    ) -> SpendRegressor:
        """Fit the trees, stopping early on ``eval_set`` when given.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_rows, n_features)
            Features: numeric columns (NaN = missing) and categorical ones (pandas
            ``Categorical``, strings or objects). A 2-D array's columns are named ``x0``,
            ``x1``, ... (see ``feature_names_in_``).
        y : array-like of float
            Future net margin per customer. Negative values are clipped to 0 for Tweedie and
            Poisson objectives (their share is recorded in ``clipped_share_``).
        eval_set : (pandas.DataFrame or array-like, array-like) or None, default=None
            Validation features (read as ``X``) and targets for early stopping (clipped like ``y``).

        Returns
        -------
        SpendRegressor
            The fitted estimator.
        """
        self._check_settings()
        X = self._fit_input(X)
        y = check_target(y, len(X), "y")
        valid = self._eval_input(eval_set)
        if valid is not None:
            valid = valid[0], self._clip(check_target(valid[1], len(valid[0]), "y_valid"))
        self.clipped_share_ = float(np.mean(y < 0)) if self.clips_targets else 0.0
        self._fit_model(X, self._clip(y), valid)
        self.holdout_ = None
        return self

    def refit(self, X: pd.DataFrame | ArrayLike, y: object) -> SpendRegressor:
        """Grow the trees again on ``X`` (training and validation rows) for the rounds early
        stopping chose; the fitted model so far is kept as ``holdout_``.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_rows, n_features_in_)
            Every row to learn from, with the training columns (an array: in training order).
        y : array-like of float
            Future net margin (clipped as in :meth:`fit`).

        Returns
        -------
        SpendRegressor
            This estimator, refitted.
        """
        check_is_fitted(self, "model_")
        X = self._input(X)
        y = check_target(y, len(X), "y")
        return self._refit_trees(X, self._clip(y))

    def fit_from_booster(
        self,
        booster: xgb.Booster,
        encoding: FeatureEncoding,
        *,
        best_iteration: int | None = None,
        evals_result: dict | None = None,
        clipped_share: float = 0.0,
    ) -> SpendRegressor:
        """Adopt trees fitted elsewhere (``xgboost.spark``) instead of fitting them.

        Parameters
        ----------
        booster : xgboost.Booster
            Trees trained with this estimator's :meth:`booster_params` on input encoded as
            ``encoding`` describes, and on targets clipped as :meth:`fit` clips them
            (see :attr:`clips_targets`).
        encoding : FeatureEncoding
            Training columns and categories the booster's input was encoded with.
        best_iteration : int or None, default=None
            0-based last round to predict with; default the booster's ``best_iteration``
            attribute (set by early stopping), else its last round.
        evals_result : dict or None, default=None
            Validation metric per round, kept as ``evals_result_``.
        clipped_share : float, default=0.0
            Share of training targets that were negative and clipped to 0.

        Returns
        -------
        SpendRegressor
            The fitted estimator.
        """
        self._check_settings()
        check_number("clipped_share", clipped_share, 0, 1)
        self._adopt_booster(booster, encoding, best_iteration, evals_result)
        self.clipped_share_ = float(clipped_share) if self.clips_targets else 0.0
        self.holdout_ = None
        return self

    def _check_settings(self) -> None:
        check_booster_settings(self)
        if not isinstance(self.objective, str):
            raise ValueError(f"objective must be an xgboost objective name; got {self.objective}")
        if self.objective == TWEEDIE:
            check_number(
                "tweedie_variance_power",
                self.tweedie_variance_power,
                1,
                2,
                open_low=True,
                open_high=True,
            )

    @property
    def clips_targets(self) -> bool:
        """Whether the objective needs targets >= 0, so ``fit`` clips negative ones to 0."""
        return self.objective in NON_NEGATIVE_OBJECTIVES

    def _clip(self, y: np.ndarray) -> np.ndarray:
        return np.maximum(y, 0.0) if self.clips_targets else y

    def _xgb_params(self) -> dict[str, Any]:
        params = super()._xgb_params()
        params["objective"] = self.objective
        if self.objective == TWEEDIE:
            params["tweedie_variance_power"] = self.tweedie_variance_power
        return params

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # negative targets are clipped to 0 for these objectives, not learned from
        tags.target_tags.positive_only = self.clips_targets
        return tags

    def predict(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        """Expected future net margin per row.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_rows, n_features_in_)
            Features with (at least) the training columns, or an array of them in training
            order.

        Returns
        -------
        numpy.ndarray of shape (n_rows,)
            Non-negative for Tweedie and Poisson objectives.
        """
        return self._booster_predict(X)
