"""All segmentations of a customer base in one estimator, built from a flat settings mapping."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.errors import ConfigError
from retain.models.segments._common import as_clv, check_frame
from retain.models.segments.clusters import DEFAULT_CLUSTER_FEATURES, BehaviouralClusters
from retain.models.segments.lifecycle import LifecycleStage
from retain.models.segments.loyalty import LoyaltyClass
from retain.models.segments.rfm import RFMSegmenter
from retain.models.segments.value_tier import ValueTier

__all__ = ["SEGMENT_COLUMNS", "SegmentModel"]

#: Column of predicted CLV read by :meth:`SegmentModel.predict`.
CLV_COLUMN = "clv"

#: Columns of :meth:`SegmentModel.transform`, in order.
SEGMENT_COLUMNS: tuple[str, ...] = (
    "r_score",
    "f_score",
    "m_score",
    "rfm_code",
    "segment",
    "value_tier",
    "loyalty_class",
    "lifecycle_stage",
    "cluster",
)


class SegmentModel(BaseEstimator):
    """RFM segments, value tiers, loyalty classes, lifecycle stages and behavioural clusters.

    Every setting is a plain keyword, so the model is built from a flat mapping, e.g. the
    ``model`` section of ``training/segments.yaml``: ``SegmentModel(**config["model"])``, or
    :meth:`from_config`, which names unknown keys. ``fit`` fits one estimator per segmentation;
    ``transform`` applies them unchanged, so customers keep their segments when scored again.

    Parameters
    ----------
    recency : str, default="recency_days"
        Column of days since the last order (RFM, loyalty, lifecycle).
    frequency : str, default="frequency"
        Column of the number of orders ever (RFM).
    monetary : str, default="monetary_total"
        Column of net spend to date (RFM ``m_score``; realised value of the value tiers).
    recent_orders : str, default="orders_365d"
        Column of orders in the last year (loyalty frequency).
    tenure : str, default="days_since_first_purchase"
        Column of days since the first order (lifecycle).
    trend : str, default="spend_trend_90d"
        Column of spend in the last 90 days over the 90 before (lifecycle).
    recent_spend : str, default="spend_90d"
        Column of spend in the last 90 days (lifecycle).
    overdue : str, default="overdue_ratio"
        Column of days since the last order over the mean gap between orders (lifecycle).
    rfm_bins : int, default=5
        Scores per RFM measure (see :class:`RFMSegmenter`).
    rfm_segment_on : {"f", "fm"}, default="f"
        Second axis of the RFM segment grid.
    high_quantile, medium_quantile, potential_quantile, realised_quantile : float
        Value tier quantiles, defaults 0.8, 0.5, 0.8, 0.5 (see :class:`ValueTier`).
    loyal_recency_quantile, loyal_frequency_quantile : float, default=0.5
        Loyalty quantiles among active customers (see :class:`LoyaltyClass`).
    churn_days : float, default=365
        Days without an order after which a customer is churned (loyalty, lifecycle).
    new_days, decline_ratio, growth_ratio, overdue_limit : float
        Lifecycle rules, defaults 90, 0.5, 1.5, 2.0 (see :class:`LifecycleStage`).
    cluster_features : sequence of str, default=DEFAULT_CLUSTER_FEATURES
        Behaviour columns of the clusters (see :class:`BehaviouralClusters`).
    k_min, k_max : int, default=3, 8
        Range of cluster counts tried.
    sample_size : int, default=5000
        Customers the silhouette score is computed on.
    n_init : int, default=4
        K-means restarts per k.
    random_state : int, default=0
        Seed of the clusters.

    Attributes
    ----------
    rfm_ : RFMSegmenter
    value_tier_ : ValueTier
    loyalty_ : LoyaltyClass
    lifecycle_ : LifecycleStage
    clusters_ : BehaviouralClusters
        The fitted estimators.
    """

    def __init__(
        self,
        recency: str = "recency_days",
        frequency: str = "frequency",
        monetary: str = "monetary_total",
        recent_orders: str = "orders_365d",
        tenure: str = "days_since_first_purchase",
        trend: str = "spend_trend_90d",
        recent_spend: str = "spend_90d",
        overdue: str = "overdue_ratio",
        rfm_bins: int = 5,
        rfm_segment_on: Literal["f", "fm"] = "f",
        high_quantile: float = 0.8,
        medium_quantile: float = 0.5,
        potential_quantile: float = 0.8,
        realised_quantile: float = 0.5,
        loyal_recency_quantile: float = 0.5,
        loyal_frequency_quantile: float = 0.5,
        churn_days: float = 365,
        new_days: float = 90,
        decline_ratio: float = 0.5,
        growth_ratio: float = 1.5,
        overdue_limit: float = 2.0,
        cluster_features: Sequence[str] = DEFAULT_CLUSTER_FEATURES,
        k_min: int = 3,
        k_max: int = 8,
        sample_size: int = 5000,
        n_init: int = 4,
        random_state: int = 0,
    ) -> None:
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary
        self.recent_orders = recent_orders
        self.tenure = tenure
        self.trend = trend
        self.recent_spend = recent_spend
        self.overdue = overdue
        self.rfm_bins = rfm_bins
        self.rfm_segment_on = rfm_segment_on
        self.high_quantile = high_quantile
        self.medium_quantile = medium_quantile
        self.potential_quantile = potential_quantile
        self.realised_quantile = realised_quantile
        self.loyal_recency_quantile = loyal_recency_quantile
        self.loyal_frequency_quantile = loyal_frequency_quantile
        self.churn_days = churn_days
        self.new_days = new_days
        self.decline_ratio = decline_ratio
        self.growth_ratio = growth_ratio
        self.overdue_limit = overdue_limit
        self.cluster_features = cluster_features
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.n_init = n_init
        self.random_state = random_state

    @classmethod
    def from_config(cls, config: Mapping[str, object] | None) -> SegmentModel:
        """Build a model from a flat mapping of settings (e.g. a YAML section).

        Raises
        ------
        ConfigError
            Naming every unknown key, with the closest known one.
        """
        config = dict(config or {})
        known = [name for name in inspect.signature(cls).parameters]
        unknown = [key for key in config if key not in known]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(f"unknown segment model setting(s): {', '.join(hints)}")
        return cls(**config)

    @property
    def columns(self) -> list[str]:
        """Feature columns the model reads, without duplicates."""
        names = [column for part in self._parts().values() for column in part.columns]
        return list(dict.fromkeys(names))

    def fit(self, features: pd.DataFrame, clv: object) -> SegmentModel:
        """Fit every segmentation on one snapshot.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with every column in :attr:`columns`.
        clv : pandas.Series or array-like
            Predicted future value per customer; a Series is aligned on the index of
            ``features``, anything else by position.

        Returns
        -------
        SegmentModel
            This model, fitted.

        Raises
        ------
        ValueError
            Naming every missing column, or on bad settings or values.
        """
        parts = self._parts()
        check_frame(features, self.columns, fitting=True)
        future = as_clv(clv, features.index)
        self.rfm_ = parts["rfm"].fit(features)
        self.value_tier_ = parts["value_tier"].fit(features, future)
        self.loyalty_ = parts["loyalty"].fit(features)
        self.lifecycle_ = parts["lifecycle"].fit(features)
        self.clusters_ = parts["clusters"].fit(features)
        return self

    def transform(self, features: pd.DataFrame, clv: object) -> pd.DataFrame:
        """Assign every segment with the fitted estimators.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with every column in :attr:`columns`.
        clv : pandas.Series or array-like
            Predicted future value per customer, as in :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`SEGMENT_COLUMNS` (``r_score``, ``f_score``, ``m_score``,
            ``rfm_code``, ``segment``, ``value_tier``, ``loyalty_class``, ``lifecycle_stage``,
            ``cluster``), indexed like ``features``.
        """
        check_is_fitted(self, "clusters_")
        fitted = (self.rfm_, self.value_tier_, self.loyalty_, self.lifecycle_, self.clusters_)
        check_frame(features, [column for part in fitted for column in part.columns])
        future = as_clv(clv, features.index)
        parts = [
            self.rfm_.transform(features),
            self.value_tier_.transform(features, future),
            self.loyalty_.transform(features),
            self.lifecycle_.transform(features),
            self.clusters_.transform(features),
        ]
        return pd.concat(parts, axis=1)[list(SEGMENT_COLUMNS)]

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """:meth:`transform` with the predicted CLV in the column ``clv`` of ``features``.

        This one-argument form is what the registered model's ``pyfunc`` flavour calls.
        """
        if CLV_COLUMN not in features.columns:
            raise ValueError(f"predict needs the predicted CLV in a column {CLV_COLUMN!r}")
        return self.transform(features, features[CLV_COLUMN])

    def fit_transform(self, features: pd.DataFrame, clv: object) -> pd.DataFrame:
        """Fit, then transform the same customers."""
        return self.fit(features, clv).transform(features, clv)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns ``transform`` returns."""
        return np.array(SEGMENT_COLUMNS, dtype=object)

    def silhouette(self, features: pd.DataFrame) -> float:
        """Silhouette score of the fitted behavioural clusters on ``features``.

        See :meth:`BehaviouralClusters.silhouette`; on the fitted snapshot it equals
        ``clusters_.silhouette_``.
        """
        check_is_fitted(self, "clusters_")
        return self.clusters_.silhouette(features)

    def _parts(self) -> dict[str, BaseEstimator]:
        """The unfitted estimators, configured from this model's settings."""
        return {
            "rfm": RFMSegmenter(
                bins=self.rfm_bins,
                recency=self.recency,
                frequency=self.frequency,
                monetary=self.monetary,
                segment_on=self.rfm_segment_on,
            ),
            "value_tier": ValueTier(
                high_quantile=self.high_quantile,
                medium_quantile=self.medium_quantile,
                potential_quantile=self.potential_quantile,
                realised_quantile=self.realised_quantile,
                realised=self.monetary,
            ),
            "loyalty": LoyaltyClass(
                churn_days=self.churn_days,
                recency_quantile=self.loyal_recency_quantile,
                frequency_quantile=self.loyal_frequency_quantile,
                recency=self.recency,
                frequency=self.recent_orders,
            ),
            "lifecycle": LifecycleStage(
                new_days=self.new_days,
                churn_days=self.churn_days,
                decline_ratio=self.decline_ratio,
                growth_ratio=self.growth_ratio,
                overdue_limit=self.overdue_limit,
                tenure=self.tenure,
                recency=self.recency,
                trend=self.trend,
                recent_spend=self.recent_spend,
                overdue=self.overdue,
            ),
            "clusters": BehaviouralClusters(
                features=self.cluster_features,
                k_min=self.k_min,
                k_max=self.k_max,
                sample_size=self.sample_size,
                random_state=self.random_state,
                n_init=self.n_init,
            ),
        }
