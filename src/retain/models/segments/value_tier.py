"""Value tiers from customer lifetime value = realised value + predicted future value."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.models.segments._common import as_clv, check_fraction, check_frame, numeric_column

__all__ = ["VALUE_TIERS", "ValueTier"]

#: Tiers in the order the rules are tried.
VALUE_TIERS: tuple[str, ...] = ("high", "potential", "medium", "low")


class ValueTier(BaseEstimator):
    """High, medium and low value customers, and low spenders with high potential.

    A customer's lifetime value is what they have already spent (``realised``, net of returns;
    missing counts as 0) plus the predicted future value ``clv`` given to ``fit`` and
    ``transform``. ``fit`` learns four thresholds; ``transform`` applies them unchanged. Rules,
    first match wins:

    1. ``high``: lifetime value at or above its ``high_quantile`` (top 20 % by default).
    2. ``potential``: realised value below its ``realised_quantile`` (the median) but future
       value at or above its ``potential_quantile`` (top 20 %): worth little so far, much later.
    3. ``medium``: lifetime value at or above its ``medium_quantile`` (the median).
    4. ``low``: everyone else.

    Parameters
    ----------
    high_quantile : float, default=0.8
        Quantile of lifetime value from which a customer is ``high``.
    medium_quantile : float, default=0.5
        Quantile of lifetime value from which a customer is ``medium``; below ``high_quantile``.
    potential_quantile : float, default=0.8
        Quantile of future value from which a low spender is ``potential``.
    realised_quantile : float, default=0.5
        Quantile of realised value below which a customer counts as a low spender.
    realised : str, default="monetary_total"
        Column of realised value (net spend to date).

    Attributes
    ----------
    high_threshold_ : float
        Lifetime value from which a customer is ``high``.
    medium_threshold_ : float
        Lifetime value from which a customer is ``medium``.
    potential_threshold_ : float
        Future value from which a low spender is ``potential``.
    realised_threshold_ : float
        Realised value below which a customer is a low spender.
    """

    def __init__(
        self,
        high_quantile: float = 0.8,
        medium_quantile: float = 0.5,
        potential_quantile: float = 0.8,
        realised_quantile: float = 0.5,
        realised: str = "monetary_total",
    ) -> None:
        self.high_quantile = high_quantile
        self.medium_quantile = medium_quantile
        self.potential_quantile = potential_quantile
        self.realised_quantile = realised_quantile
        self.realised = realised

    @property
    def columns(self) -> list[str]:
        """Feature columns this estimator reads."""
        return [self.realised]

    def fit(self, features: pd.DataFrame, clv: object) -> ValueTier:
        """Learn the value thresholds.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the ``realised`` column.
        clv : pandas.Series or array-like
            Predicted future value per customer; a Series is aligned on the index of
            ``features``, anything else by position. Must be finite.

        Returns
        -------
        ValueTier
            This estimator, fitted.
        """
        high = check_fraction("high_quantile", self.high_quantile)
        medium = check_fraction("medium_quantile", self.medium_quantile)
        if medium >= high:
            raise ValueError(f"medium_quantile ({medium}) must be below high_quantile ({high})")
        potential = check_fraction("potential_quantile", self.potential_quantile)
        realised_q = check_fraction("realised_quantile", self.realised_quantile)
        realised, future = self._values(check_frame(features, self.columns, fitting=True), clv)
        lifetime = realised + future
        self.high_threshold_ = float(np.quantile(lifetime, high))
        self.medium_threshold_ = float(np.quantile(lifetime, medium))
        self.potential_threshold_ = float(np.quantile(future, potential))
        self.realised_threshold_ = float(np.quantile(realised, realised_q))
        return self

    def transform(self, features: pd.DataFrame, clv: object) -> pd.DataFrame:
        """Assign each customer a tier with the fitted thresholds.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the ``realised`` column.
        clv : pandas.Series or array-like
            Predicted future value per customer, as in :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            One column, ``value_tier``, indexed like ``features``.
        """
        check_is_fitted(self, "high_threshold_")
        realised, future = self._values(check_frame(features, self.columns), clv)
        lifetime = realised + future
        conditions = [
            lifetime >= self.high_threshold_,
            (realised < self.realised_threshold_) & (future >= self.potential_threshold_),
            lifetime >= self.medium_threshold_,
        ]
        tiers = np.select(conditions, list(VALUE_TIERS[:3]), default=VALUE_TIERS[3])
        return pd.DataFrame({"value_tier": tiers.astype(object)}, index=features.index)

    def fit_transform(self, features: pd.DataFrame, clv: object) -> pd.DataFrame:
        """Fit, then transform the same customers."""
        return self.fit(features, clv).transform(features, clv)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns ``transform`` returns."""
        return np.array(["value_tier"], dtype=object)

    def _values(self, features: pd.DataFrame, clv: object) -> tuple[np.ndarray, np.ndarray]:
        realised = np.nan_to_num(numeric_column(features, self.realised), nan=0.0)
        return realised, as_clv(clv, features.index)
