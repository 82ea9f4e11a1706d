"""Customer lifetime value: expected net margin over a horizon, discounted monthly.

Two ways to predict it, fitted side by side and compared on validation:

- :class:`BTYDValue`: BG/NBD (or Pareto/NBD) expected purchases in each month of the horizon
  x Gamma-Gamma expected spend per purchase x the margin share of spend;
- :class:`MLValue`: an xgboost tweedie model of the horizon's net margin (``SpendRegressor``).

:class:`CLVModel` fits both and keeps the one with the higher normalized Gini on validation.
Where serving customers costs something (a ``costs`` log or the costs of ``retain.yaml``), the
model also holds a regressor of the future cost to serve (``cost_``), and its CLV is the
expected discounted net *profit*: margin less cost to serve. Where the features also say what
each customer has cost and earned so far (:func:`cost_share`), the expected cost may instead be
the predicted margin times the customer's own cost per unit of margin to date, scaled to the
realised cost: the two predictions then err together (a customer predicted to buy more than
they will is predicted to cost more too), which ranks net profit better than two regressors
erring apart. Validation decides between the two (``cost_method_``).
Features are the feature store's (``btyd_frequency``, ``btyd_recency``, ``btyd_T`` and
``btyd_monetary_value`` in days and currency for the BTYD side). Predictions are the *potential*
(future) value; realised value is what the customer has spent so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.models.clv.bgnbd import BGNBD
from retain.models.clv.gamma_gamma import GammaGamma
from retain.models.clv.pareto_nbd import ParetoNBD

if TYPE_CHECKING:
    from retain.models.spend import SpendRegressor

__all__ = [
    "BTYD_COLUMNS",
    "BTYDValue",
    "CLVModel",
    "MARGIN_TO_DATE",
    "MLValue",
    "cost_share",
    "discount_schedule",
]

#: Feature columns the BTYD side reads: repeat purchase days, recency and age (days), spend.
BTYD_COLUMNS = ("btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary_value")
MONTH_DAYS = 365.25 / 12
#: Feature columns :func:`cost_share` reads: cost to serve to date, and margin to date itself
#: or the net profit to date it is derived from (net profit + cost to serve + acquisition cost).
COST_TO_DATE = "cost_to_serve_total"
MARGIN_TO_DATE = "margin_to_date"
NET_PROFIT_TO_DATE = ("net_profit_to_date", "acquisition_cost")
#: Largest cost share kept: beyond, one early complaint on a small first order would make a
#: customer look ever more costly without anything more being known of them.
MAX_COST_SHARE = 5.0
PURCHASE_MODELS = {"bgnbd": BGNBD, "pareto_nbd": ParetoNBD}


def discount_schedule(horizon_days: float, rate_monthly: float) -> tuple[np.ndarray, np.ndarray]:
    """Month boundaries (days from the cutoff) and the discount factor of each month.

    Month ``m`` (1-based) covers ``(boundary[m-1], boundary[m]]`` and is discounted by
    ``1 / (1 + rate) ** m``; the last month is cut at the horizon.
    """
    months = int(np.ceil(horizon_days / MONTH_DAYS - 1e-9))
    ends = np.minimum(np.arange(1, months + 1) * MONTH_DAYS, horizon_days)
    boundaries = np.concatenate([[0.0], ends])
    factors = 1.0 / (1.0 + rate_monthly) ** np.arange(1, months + 1)
    return boundaries, factors


def _uniform_discount(horizon_days: float, rate_monthly: float) -> float:
    """Mean discount factor of value spread evenly over the horizon."""
    boundaries, factors = discount_schedule(horizon_days, rate_monthly)
    weights = np.diff(boundaries) / horizon_days
    return float(weights @ factors)


def _to_date(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Cost to serve and margin to date of the rows of ``X``; ``None`` without the columns."""
    if COST_TO_DATE not in X:
        return None
    cost = np.nan_to_num(X[COST_TO_DATE].to_numpy(float))
    if MARGIN_TO_DATE in X:
        return cost, np.nan_to_num(X[MARGIN_TO_DATE].to_numpy(float))
    if all(name in X for name in NET_PROFIT_TO_DATE):
        net, acquisition = (np.nan_to_num(X[name].to_numpy(float)) for name in NET_PROFIT_TO_DATE)
        return cost, net + cost + acquisition
    return None


def cost_share(X: pd.DataFrame, fallback: float) -> np.ndarray | None:
    """Each customer's cost to serve to date per unit of margin to date, from the snapshot
    features (:data:`COST_TO_DATE` and :data:`MARGIN_TO_DATE`, or :data:`NET_PROFIT_TO_DATE`).

    Parameters
    ----------
    X : pandas.DataFrame
        Snapshot features.
    fallback : float
        The share of customers without a positive margin to date (e.g. the population's).

    Returns
    -------
    numpy.ndarray or None
        Shares in ``[0, MAX_COST_SHARE]``; ``None`` when ``X`` lacks the columns.
    """
    to_date = _to_date(X)
    if to_date is None:
        return None
    cost, margin = to_date
    share = np.divide(cost, margin, out=np.full(len(X), float(fallback)), where=margin > 0)
    return np.clip(share, 0.0, MAX_COST_SHARE)


def _population_share(X: pd.DataFrame) -> float | None:
    """Total cost to serve to date over total margin to date of the rows of ``X`` that have
    earned something (what :func:`cost_share` gives those who have not); ``None`` when ``X``
    lacks the columns or nobody has earned anything."""
    to_date = _to_date(X)
    if to_date is None:
        return None
    cost, margin = to_date
    earned = margin > 0
    if not earned.any():
        return None
    return float(np.clip(cost[earned].sum() / margin[earned].sum(), 0.0, MAX_COST_SHARE))


def _btyd_inputs(X: pd.DataFrame) -> tuple[np.ndarray, ...]:
    missing = [name for name in BTYD_COLUMNS if name not in X.columns]
    if missing:
        raise ValueError(f"BTYD value needs feature columns {missing}")
    frequency, recency, age, spend = (X[name].to_numpy(float) for name in BTYD_COLUMNS)
    known = np.isfinite(age) & (age > 0)
    frequency = np.where(known & np.isfinite(frequency), frequency, 0.0)
    recency = np.where(known & np.isfinite(recency), np.minimum(recency, age), 0.0)
    return frequency, recency, np.where(known, age, 1.0), spend, known


class BTYDValue(BaseEstimator):
    """Expected discounted net margin from a BTYD purchase model and Gamma-Gamma spend.

    Parameters
    ----------
    purchase_model : {"bgnbd", "pareto_nbd"}, default="bgnbd"
        Model of the number of future purchase days.
    horizon_days : float, default=365
        Length of the value horizon, in days.
    discount_rate_monthly : float, default=0.01
        Monthly discount rate.
    penalizer : float, default=0.0
        L2 penalty on the log-parameters of the purchase and spend models.

    Attributes
    ----------
    purchase_model_ : BGNBD or ParetoNBD
    spend_model_ : GammaGamma
    margin_share_ : float
        Net margin per unit of gross spend, learned from the training history.
    """

    def __init__(
        self,
        purchase_model: str = "bgnbd",
        horizon_days: float = 365,
        discount_rate_monthly: float = 0.01,
        penalizer: float = 0.0,
    ):
        self.purchase_model = purchase_model
        self.horizon_days = horizon_days
        self.discount_rate_monthly = discount_rate_monthly
        self.penalizer = penalizer

    def fit(self, X: pd.DataFrame, y: object = None, *, margin_share: float = 0.3) -> BTYDValue:
        """Fit purchase and spend models to the BTYD summaries of ``X`` (``y`` is unused)."""
        if self.purchase_model not in PURCHASE_MODELS:
            raise ValueError(
                f"purchase_model must be one of {sorted(PURCHASE_MODELS)}, "
                f"got {self.purchase_model!r}"
            )
        frequency, recency, age, spend, known = _btyd_inputs(X)
        model = PURCHASE_MODELS[self.purchase_model](penalizer=self.penalizer)
        self.purchase_model_ = model.fit(frequency[known], recency[known], age[known])
        repeat = known & (frequency > 0) & np.isfinite(spend) & (spend > 0)
        self.spend_model_ = GammaGamma(penalizer=self.penalizer).fit(
            frequency[repeat], spend[repeat]
        )
        self.margin_share_ = float(margin_share)
        return self

    def monthly_purchases(self, X: pd.DataFrame) -> np.ndarray:
        """Expected purchase days in each month of the horizon, shape ``(rows, months)``."""
        check_is_fitted(self, "purchase_model_")
        frequency, recency, age, _, known = _btyd_inputs(X)
        boundaries, _ = discount_schedule(self.horizon_days, self.discount_rate_monthly)
        cumulative = np.column_stack(
            [
                self.purchase_model_.predict_purchases(t, frequency, recency, age)
                if t > 0
                else np.zeros(len(frequency))
                for t in boundaries
            ]
        )
        return np.diff(cumulative, axis=1) * known[:, None]

    def expected_spend(self, X: pd.DataFrame) -> np.ndarray:
        """Expected gross spend per purchase (Gamma-Gamma, conditional on history)."""
        check_is_fitted(self, "spend_model_")
        frequency, _, _, spend, _ = _btyd_inputs(X)
        usable = (frequency > 0) & np.isfinite(spend) & (spend > 0)
        return self.spend_model_.expected_spend(
            np.where(usable, frequency, 0), np.where(usable, spend, np.nan)
        )

    def predict(self, X: pd.DataFrame, *, discounted: bool = True) -> np.ndarray:
        """Expected net margin over the horizon (discounted monthly unless told otherwise)."""
        _, factors = discount_schedule(self.horizon_days, self.discount_rate_monthly)
        monthly = self.monthly_purchases(X)
        weights = factors if discounted else np.ones_like(factors)
        return (monthly @ weights) * self.expected_spend(X) * self.margin_share_


class MLValue(BaseEstimator):
    """Expected discounted net margin from an xgboost tweedie regression on the features.

    Parameters
    ----------
    horizon_days : float, default=365
        Horizon of the training target (future net margin over it).
    discount_rate_monthly : float, default=0.01
        Monthly discount rate; predictions are discounted as if spread evenly over the horizon.
    settings : dict or None, default=None
        ``SpendRegressor`` settings.
    random_state : int, default=0
        Seed of the regressor.
    """

    def __init__(
        self,
        horizon_days: float = 365,
        discount_rate_monthly: float = 0.01,
        settings: dict | None = None,
        random_state: int = 0,
    ):
        self.horizon_days = horizon_days
        self.discount_rate_monthly = discount_rate_monthly
        self.settings = settings
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: object, *, eval_set=None, callbacks=None) -> MLValue:
        """Fit the regressor of future net margin, early-stopped on ``eval_set``."""
        from retain.models.spend import SpendRegressor

        settings = {**(self.settings or {}), "random_state": self.random_state}
        if callbacks is not None:
            settings["callbacks"] = callbacks
        self.regressor_ = SpendRegressor(**settings).fit(X, y, eval_set=eval_set)
        self.discount_ = _uniform_discount(self.horizon_days, self.discount_rate_monthly)
        return self

    def fit_from_regressor(self, regressor: SpendRegressor) -> MLValue:
        """Adopt a regressor of future net margin fitted elsewhere (e.g. on ``xgboost.spark``).

        Parameters
        ----------
        regressor : SpendRegressor
            Fitted; see :meth:`SpendRegressor.fit_from_booster`.

        Returns
        -------
        MLValue
            This model, fitted.
        """
        check_is_fitted(regressor, "model_")
        self.regressor_ = regressor
        self.discount_ = _uniform_discount(self.horizon_days, self.discount_rate_monthly)
        return self

    def refit(self, X: pd.DataFrame, y: object) -> MLValue:
        """Refit the regressor on ``X`` (training and validation rows); see
        :meth:`SpendRegressor.refit <retain.models.SpendRegressor.refit>`."""
        check_is_fitted(self, "regressor_")
        self.regressor_.refit(X, y)
        return self

    def predict(self, X: pd.DataFrame, *, discounted: bool = True) -> np.ndarray:
        """Expected net margin over the horizon (discounted unless told otherwise)."""
        check_is_fitted(self, "regressor_")
        value = np.asarray(self.regressor_.predict(X), dtype=float)
        return value * self.discount_ if discounted else value


class CLVModel(BaseEstimator):
    """Both CLV methods, fitted together; predictions come from the one that validated better.

    Parameters
    ----------
    purchase_model : {"bgnbd", "pareto_nbd"}, default="bgnbd"
        BTYD purchase model.
    horizon_days : float, default=365
        Value horizon in days.
    discount_rate_monthly : float, default=0.01
        Monthly discount rate.
    settings : dict or None, default=None
        ``SpendRegressor`` settings of the ML side.
    method : {"auto", "btyd", "ml"}, default="auto"
        ``auto`` keeps the method with the higher normalized Gini on ``eval_set``.
    random_state : int, default=0
        Seed.

    Attributes
    ----------
    btyd_ : BTYDValue
    ml_ : MLValue or None
        ``None`` when only BTYD was fitted (no label window of the horizon fits the data).
    method_ : str
        Method used by :meth:`predict`.
    validation_gini_ : dict
        Normalized Gini of each method's undiscounted prediction on ``eval_set``.
    holdout_ : CLVModel or None
        After :meth:`refit`, the model as it was fitted before (what validation metrics and
        the champion gate describe); ``None`` before.
    cost_ : MLValue or None
        Regressor of the future cost to serve over the horizon, subtracted from either
        method's margin (CLV = expected discounted net profit); ``None`` where nothing costs.
    cost_method_ : {"regressor", "share"}
        How the expected cost is predicted: by ``cost_``, or as each method's margin times the
        customer's :func:`cost_share` times ``cost_scales_`` of the method, whichever ranked the
        validation net profit better (``validation_cost_gini_``); ``"regressor"`` without the
        features the share needs.
    cost_scales_ : dict of str to float
        Per method, realised validation cost over its margin times cost share (empty unless
        the share could be measured).
    cost_share_fallback_ : float
        The cost share of customers without a positive margin to date: the validation rows'
        total cost to date over their total margin to date.
    validation_cost_gini_ : dict
        Normalized Gini of the chosen method's net profit on validation with each way of
        predicting the cost (empty without a cost regressor or the share's features).
    """

    def __init__(
        self,
        purchase_model: str = "bgnbd",
        horizon_days: float = 365,
        discount_rate_monthly: float = 0.01,
        settings: dict | None = None,
        method: str = "auto",
        random_state: int = 0,
    ):
        self.purchase_model = purchase_model
        self.horizon_days = horizon_days
        self.discount_rate_monthly = discount_rate_monthly
        self.settings = settings
        self.method = method
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        y: object,
        *,
        eval_set: tuple[pd.DataFrame, object],
        margin_share: float = 0.3,
        btyd_rows: np.ndarray | None = None,
    ) -> CLVModel:
        """Fit both methods and choose one on ``eval_set``.

        Parameters
        ----------
        X, y : DataFrame, array-like
            Training features and future net margin over the horizon.
        eval_set : (DataFrame, array-like)
            Validation features and outcomes (a later cutoff).
        margin_share : float, default=0.3
            Net margin per unit of gross spend, for the BTYD side.
        btyd_rows : boolean array, optional
            Rows of ``X`` the BTYD models fit on (e.g. only the latest training cutoff, so each
            customer counts once); default all.
        """
        self._check_method()
        btyd_X = X if btyd_rows is None else X[np.asarray(btyd_rows, bool)]
        self.btyd_ = BTYDValue(
            self.purchase_model, self.horizon_days, self.discount_rate_monthly
        ).fit(btyd_X, margin_share=margin_share)
        self.ml_ = MLValue(
            self.horizon_days, self.discount_rate_monthly, self.settings, self.random_state
        ).fit(X, y, eval_set=eval_set)
        self.holdout_ = None
        self.cost_ = None
        self._choose_method(eval_set)
        return self._choose_cost(eval_set, None)

    def refit(
        self,
        X: pd.DataFrame,
        y: object,
        *,
        btyd_rows: np.ndarray,
        margin_share: float,
        ml: MLValue | None = None,
        cost: MLValue | None = None,
    ) -> CLVModel:
        """Serve the latest behaviour: BTYD fitted again on ``X[btyd_rows]`` (e.g. the latest
        cutoff's summaries, which need no label) and the ML regressor grown again on all of
        ``X`` (training and validation rows, realised value ``y``), keeping the method chosen;
        the model fitted before is kept as ``holdout_``.

        Parameters
        ----------
        X, y : DataFrame, array-like
            Every row and its future net margin.
        btyd_rows : boolean array
            Rows the BTYD models fit on.
        margin_share : float
            Net margin per unit of gross spend for the BTYD side, learned before the latest
            cutoff.
        ml : MLValue, optional
            The ML side already refitted elsewhere (``xgboost.spark``); default: refit here.
        cost : MLValue, optional
            The cost regressor refitted (elsewhere); default: the one fitted before.

        Returns
        -------
        CLVModel
            This model, refitted.
        """
        check_is_fitted(self, "method_")
        import copy

        holdout = copy.copy(self)  # keeps the fitted parts, which are replaced, not changed
        holdout.holdout_ = None
        latest = X[np.asarray(btyd_rows, bool)]
        self.btyd_ = BTYDValue(
            self.purchase_model, self.horizon_days, self.discount_rate_monthly
        ).fit(latest, margin_share=margin_share)
        if ml is not None:
            self.ml_ = ml
        elif self.ml_ is not None:
            refitted = copy.copy(self.ml_)
            refitted.regressor_ = copy.copy(self.ml_.regressor_).refit(X, y)
            self.ml_ = refitted
        if cost is not None:
            self.cost_ = cost
        self.holdout_ = holdout
        return self

    def fit_from_parts(
        self,
        btyd: BTYDValue,
        ml: MLValue | None,
        eval_set: tuple,
        *,
        holdout: CLVModel | None = None,
        cost: MLValue | None = None,
        eval_cost: object = None,
    ) -> CLVModel:
        """Adopt both methods fitted elsewhere, then choose between them as :meth:`fit` does.

        For engines that fit the spend regressor outside this process (``xgboost.spark``).

        Parameters
        ----------
        btyd : BTYDValue
            Fitted BTYD value model.
        ml : MLValue or None
            Fitted ML value model (see :meth:`MLValue.fit_from_regressor`); ``None`` for BTYD
            alone (no label window of the horizon fits the data).
        eval_set : (pandas.DataFrame, array-like)
            Validation features and realised net margin (net profit, with ``cost``).
        holdout : CLVModel, optional
            The model the validation metrics describe, when these parts have seen the
            validation rows (kept as ``holdout_``).
        cost : MLValue, optional
            Fitted regressor of the future cost to serve: the CLV becomes net profit.
        eval_cost : array-like, optional
            Realised cost to serve of the ``eval_set`` rows: with it (and ``cost``), the cost
            share is scaled and weighed against the regressor (see ``cost_method_``).

        Returns
        -------
        CLVModel
            This model, fitted.
        """
        self._check_method()
        check_is_fitted(btyd, "purchase_model_")
        if ml is not None:
            check_is_fitted(ml, "regressor_")
        if cost is not None:
            check_is_fitted(cost, "regressor_")
        self.btyd_, self.ml_, self.cost_ = btyd, ml, cost
        self.holdout_ = holdout
        self._choose_method(eval_set)
        return self._choose_cost(eval_set, eval_cost)

    def _check_method(self) -> None:
        if self.method not in ("auto", "btyd", "ml"):
            raise ValueError(f"method must be 'auto', 'btyd' or 'ml', got {self.method!r}")

    def _choose_method(self, eval_set: tuple) -> CLVModel:
        """Keep the method with the higher normalized Gini of its undiscounted prediction."""
        from retain.metrics.model import normalized_gini

        X_valid, y_valid = eval_set
        actual = np.asarray(y_valid, float)
        self.validation_gini_ = {
            name: float(normalized_gini(actual, self.net(part, X_valid, discounted=False)))
            for name, part in (("btyd", self.btyd_), ("ml", self.ml_))
            if part is not None
        }
        best = max(self.validation_gini_, key=self.validation_gini_.get)
        self.method_ = best if self.method == "auto" or self.ml_ is None else self.method
        return self

    def _choose_cost(self, eval_set: tuple, eval_cost: object) -> CLVModel:
        """Keep the regressor's cost, or the cost share's where it ranks the validation net
        profit better with the chosen method (each method's share scaled to the realised cost
        of the validation rows)."""
        from retain.metrics.model import normalized_gini

        self.cost_method_, self.cost_scales_, self.validation_cost_gini_ = "regressor", {}, {}
        self.cost_share_fallback_ = 0.0
        X_valid, y_valid = eval_set
        if self.cost_ is None or eval_cost is None:
            return self
        fallback = _population_share(X_valid)
        share = cost_share(X_valid, fallback) if fallback is not None else None
        if share is None:
            return self
        self.cost_share_fallback_ = fallback
        realised = np.asarray(eval_cost, float)
        for name, part in self._parts():
            expected = part.predict(X_valid, discounted=False) * share
            total = expected.sum()
            self.cost_scales_[name] = float(realised.sum() / total) if total > 0 else 0.0
        actual = np.asarray(y_valid, float)
        chosen = self._chosen()
        for method in ("regressor", "share"):
            self.cost_method_ = method
            net = self.net(chosen, X_valid, discounted=False)
            self.validation_cost_gini_[method] = float(normalized_gini(actual, net))
        self.cost_method_ = max(self.validation_cost_gini_, key=self.validation_cost_gini_.get)
        self.validation_gini_ = {
            name: float(normalized_gini(actual, self.net(part, X_valid, discounted=False)))
            for name, part in self._parts()
        }
        return self

    def _chosen(self) -> BTYDValue | MLValue:
        """The method chosen on validation (``method_``)."""
        check_is_fitted(self, "method_")
        return self.btyd_ if self.method_ == "btyd" else self.ml_

    def _parts(self) -> list[tuple[str, BTYDValue | MLValue]]:
        return [(n, p) for n, p in (("btyd", self.btyd_), ("ml", self.ml_)) if p is not None]

    def predict(self, X: pd.DataFrame, *, discounted: bool = True) -> np.ndarray:
        """CLV (future net margin over the horizon, less the cost to serve where the model
        has a cost regressor) of the chosen method."""
        return self.net(self._chosen(), X, discounted=discounted)

    def expected_cost(self, X: pd.DataFrame, *, discounted: bool = True) -> np.ndarray:
        """Expected cost to serve over the horizon of the chosen method's customers (0 without
        a cost regressor; see ``cost_method_``)."""
        part = self._chosen()
        return self._cost(part, X, part.predict(X, discounted=discounted), discounted)

    def _cost(self, part, X: pd.DataFrame, margin: np.ndarray, discounted: bool) -> np.ndarray:
        """The expected cost that goes with ``part``'s predicted ``margin``."""
        cost = getattr(self, "cost_", None)  # models saved before costs existed have none
        if cost is None:
            return np.zeros(len(X))
        if getattr(self, "cost_method_", "regressor") == "share":
            share = cost_share(X, self.cost_share_fallback_)
            if share is None:
                raise ValueError(
                    f"this CLV model predicts the cost to serve from {COST_TO_DATE} and the "
                    f"margin to date ({MARGIN_TO_DATE}, or {' and '.join(NET_PROFIT_TO_DATE)})"
                    "; the features given lack them"
                )
            name = "btyd" if part is self.btyd_ else "ml"
            return margin * share * self.cost_scales_[name]
        return cost.predict(X, discounted=discounted)

    def net(self, part: BTYDValue | MLValue, X: pd.DataFrame, *, discounted: bool = True):
        """A method's margin less the expected cost to serve that goes with it."""
        margin = part.predict(X, discounted=discounted)
        return margin - self._cost(part, X, margin, discounted)

    def predict_components(self, X: pd.DataFrame) -> pd.DataFrame:
        """Both methods' discounted CLV, the expected cost to serve they are net of, and the
        BTYD pieces, indexed like ``X``."""
        check_is_fitted(self, "method_")
        return pd.DataFrame(
            {
                "clv_btyd": self.net(self.btyd_, X),
                "clv_ml": self.net(self.ml_, X) if self.ml_ is not None else np.nan,
                "expected_cost_to_serve": self.expected_cost(X),
                "expected_purchases": self.btyd_.monthly_purchases(X).sum(axis=1),
                "expected_spend": self.btyd_.expected_spend(X),
            },
            index=X.index,
        )
