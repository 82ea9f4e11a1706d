"""Loyalty classes from how recently and how often customers have bought."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.models.segments._common import (
    check_fraction,
    check_frame,
    check_positive,
    numeric_column,
)

__all__ = ["LOYALTY_CLASSES", "LoyaltyClass"]

#: Classes in the order the rules are tried.
LOYALTY_CLASSES: tuple[str, ...] = ("churned", "loyal", "potential", "marginal")


class LoyaltyClass(BaseEstimator):
    """Loyal, potential, marginal and churned customers.

    ``fit`` learns two thresholds among the *active* customers (an order within
    ``churn_days``); ``transform`` applies them unchanged. Rules, first match wins:

    1. ``churned``: no order at all (missing recency) or the last order more than
       ``churn_days`` days ago.
    2. ``loyal``: recent (recency at or below the active customers' ``recency_quantile``) and
       frequent (orders at or above the active customers' ``frequency_quantile``).
    3. ``potential``: recent but not (yet) frequent.
    4. ``marginal``: active but not recent, however often they bought.

    Frequency defaults to orders in the last 365 days rather than orders ever, so that a
    long-standing customer who has slowed down does not count as frequent on old history alone.

    Parameters
    ----------
    churn_days : float, default=365
        Days without an order after which a customer is ``churned``.
    recency_quantile : float, default=0.5
        Quantile of active customers' recency at or below which a customer is recent.
    frequency_quantile : float, default=0.5
        Quantile of active customers' frequency at or above which a customer is frequent.
    recency : str, default="recency_days"
        Column of days since the last order (missing when there is none).
    frequency : str, default="orders_365d"
        Column of the number of orders that measures how often a customer buys.

    Attributes
    ----------
    recency_threshold_ : float
        Recency in days at or below which an active customer is recent.
    frequency_threshold_ : float
        Frequency at or above which an active customer is frequent.
    n_active_ : int
        Active customers the thresholds were learned from.
    """

    def __init__(
        self,
        churn_days: float = 365,
        recency_quantile: float = 0.5,
        frequency_quantile: float = 0.5,
        recency: str = "recency_days",
        frequency: str = "orders_365d",
    ) -> None:
        self.churn_days = churn_days
        self.recency_quantile = recency_quantile
        self.frequency_quantile = frequency_quantile
        self.recency = recency
        self.frequency = frequency

    @property
    def columns(self) -> list[str]:
        """Feature columns this estimator reads."""
        return [self.recency, self.frequency]

    def fit(self, features: pd.DataFrame, y: object = None) -> LoyaltyClass:
        """Learn the recency and frequency thresholds from the active customers.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the recency and frequency columns.
        y : None
            Ignored.

        Returns
        -------
        LoyaltyClass
            This estimator, fitted.

        Raises
        ------
        ValueError
            On bad settings, missing columns, or when no customer is active.
        """
        check_positive("churn_days", self.churn_days)
        recency_q = check_fraction("recency_quantile", self.recency_quantile)
        frequency_q = check_fraction("frequency_quantile", self.frequency_quantile)
        recency, frequency = self._measures(check_frame(features, self.columns, fitting=True))
        active = ~self._churned(recency)
        if not active.any():
            raise ValueError(f"no customer ordered within churn_days={self.churn_days}")
        self.recency_threshold_ = float(np.quantile(recency[active], recency_q))
        self.frequency_threshold_ = float(np.quantile(frequency[active], frequency_q))
        self.n_active_ = int(active.sum())
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Assign each customer a loyalty class with the fitted thresholds.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the recency and frequency columns.

        Returns
        -------
        pandas.DataFrame
            One column, ``loyalty_class``, indexed like ``features``.
        """
        check_is_fitted(self, "recency_threshold_")
        recency, frequency = self._measures(check_frame(features, self.columns))
        recent = recency <= self.recency_threshold_
        conditions = [
            self._churned(recency),
            recent & (frequency >= self.frequency_threshold_),
            recent,
        ]
        classes = np.select(conditions, list(LOYALTY_CLASSES[:3]), default=LOYALTY_CLASSES[3])
        return pd.DataFrame({"loyalty_class": classes.astype(object)}, index=features.index)

    def fit_transform(self, features: pd.DataFrame, y: object = None) -> pd.DataFrame:
        """Fit, then transform the same customers."""
        return self.fit(features).transform(features)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns ``transform`` returns."""
        return np.array(["loyalty_class"], dtype=object)

    def _measures(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        recency = numeric_column(features, self.recency)
        frequency = np.nan_to_num(numeric_column(features, self.frequency), nan=0.0)
        return recency, frequency

    def _churned(self, recency: np.ndarray) -> np.ndarray:
        return np.isnan(recency) | (recency > self.churn_days)
