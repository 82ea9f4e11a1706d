"""Lifecycle stages from tenure, spend trend and how overdue the next order is."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.models.segments._common import check_frame, check_positive, numeric_column

__all__ = ["LIFECYCLE_STAGES", "LifecycleStage"]

#: Stages in the order the rules are tried.
LIFECYCLE_STAGES: tuple[str, ...] = ("churned", "new", "declining", "growing", "mature")


class LifecycleStage(BaseEstimator):
    """New, growing, mature, declining and churned customers, by fixed business rules.

    Nothing is learned from the data: the thresholds are the settings, so a stage means the same
    at every cutoff. Rules, first match wins:

    1. ``churned``: no order at all (missing recency or tenure), or the last order more than
       ``churn_days`` days ago.
    2. ``new``: first order at most ``new_days`` days ago.
    3. ``declining``: spend trend (last 90 days over the 90 before) at most ``decline_ratio``
       (0 when spending stopped), or the customer is overdue: days since the last order at
       least ``overdue_limit`` times their mean gap between orders. A one-order customer has no
       gap; they count as overdue when that order is more than ``new_days`` days old.
    4. ``growing``: spend trend at least ``growth_ratio``, or spend in the last 90 days after
       none in the 90 before (the trend is then missing).
    5. ``mature``: everyone else (steady spend, on rhythm).

    Parameters
    ----------
    new_days : float, default=90
        Customers whose first order is at most this old are ``new``.
    churn_days : float, default=365
        Days without an order after which a customer is ``churned``.
    decline_ratio : float, default=0.5
        Spend trend at or below which a customer is ``declining``.
    growth_ratio : float, default=1.5
        Spend trend at or above which a customer is ``growing``; above ``decline_ratio``.
    overdue_limit : float, default=2.0
        Overdue ratio at or above which a customer is ``declining``.
    tenure : str, default="days_since_first_purchase"
        Column of days since the first order.
    recency : str, default="recency_days"
        Column of days since the last order.
    trend : str, default="spend_trend_90d"
        Column of spend in the last 90 days over spend in the 90 days before (missing when the
        earlier spend is 0).
    recent_spend : str, default="spend_90d"
        Column of spend in the last 90 days (tells growth from nothing apart from no spend).
    overdue : str, default="overdue_ratio"
        Column of days since the last order over the mean gap between orders.

    Attributes
    ----------
    stage_counts_ : dict of str to int
        Customers per stage in the fitted frame, for reference.
    """

    def __init__(
        self,
        new_days: float = 90,
        churn_days: float = 365,
        decline_ratio: float = 0.5,
        growth_ratio: float = 1.5,
        overdue_limit: float = 2.0,
        tenure: str = "days_since_first_purchase",
        recency: str = "recency_days",
        trend: str = "spend_trend_90d",
        recent_spend: str = "spend_90d",
        overdue: str = "overdue_ratio",
    ) -> None:
        self.new_days = new_days
        self.churn_days = churn_days
        self.decline_ratio = decline_ratio
        self.growth_ratio = growth_ratio
        self.overdue_limit = overdue_limit
        self.tenure = tenure
        self.recency = recency
        self.trend = trend
        self.recent_spend = recent_spend
        self.overdue = overdue

    @property
    def columns(self) -> list[str]:
        """Feature columns this estimator reads."""
        return [self.tenure, self.recency, self.trend, self.recent_spend, self.overdue]

    def fit(self, features: pd.DataFrame, y: object = None) -> LifecycleStage:
        """Check the settings and the columns; learn nothing else.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the tenure, recency, trend, spend and overdue columns.
        y : None
            Ignored.

        Returns
        -------
        LifecycleStage
            This estimator, fitted.
        """
        self._check_settings()
        stages = self._stages(check_frame(features, self.columns, fitting=True))
        names, counts = np.unique(stages, return_counts=True)
        self.stage_counts_ = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Assign each customer a lifecycle stage.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the tenure, recency, trend, spend and overdue columns.

        Returns
        -------
        pandas.DataFrame
            One column, ``lifecycle_stage``, indexed like ``features``.
        """
        check_is_fitted(self, "stage_counts_")
        stages = self._stages(check_frame(features, self.columns))
        return pd.DataFrame({"lifecycle_stage": stages}, index=features.index)

    def fit_transform(self, features: pd.DataFrame, y: object = None) -> pd.DataFrame:
        """Fit, then transform the same customers."""
        return self.fit(features).transform(features)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns ``transform`` returns."""
        return np.array(["lifecycle_stage"], dtype=object)

    def _check_settings(self) -> None:
        for name in ("new_days", "churn_days", "decline_ratio", "growth_ratio", "overdue_limit"):
            check_positive(name, getattr(self, name))
        if self.new_days >= self.churn_days:
            raise ValueError(f"new_days ({self.new_days}) must be below churn_days")
        if self.decline_ratio >= self.growth_ratio:
            raise ValueError(
                f"decline_ratio ({self.decline_ratio}) must be below growth_ratio "
                f"({self.growth_ratio})"
            )

    def _stages(self, features: pd.DataFrame) -> np.ndarray:
        tenure, recency, trend, spend, overdue = (
            numeric_column(features, column) for column in self.columns
        )
        late = np.where(np.isnan(overdue), recency > self.new_days, overdue >= self.overdue_limit)
        conditions = [
            np.isnan(recency) | np.isnan(tenure) | (recency > self.churn_days),
            tenure <= self.new_days,
            (trend <= self.decline_ratio) | late,
            (trend >= self.growth_ratio) | (np.isnan(trend) & (spend > 0)),
        ]
        stages = np.select(conditions, list(LIFECYCLE_STAGES[:4]), default=LIFECYCLE_STAGES[4])
        return stages.astype(object)
