"""Behavioural clusters: k-means on scaled behaviour features, k chosen by silhouette."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import skew
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from retain.models.segments._common import (
    check_frame,
    check_integer,
    check_names,
    check_positive,
    numeric_column,
)

__all__ = ["DEFAULT_CLUSTER_FEATURES", "BehaviouralClusters"]

#: Behaviour columns of the default feature repository: buying rhythm, spend, breadth and
#: engagement with the web, the app, e-mail and support.
DEFAULT_CLUSTER_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary_mean",
    "spend_365d",
    "orders_365d",
    "purchase_gap_mean_days",
    "distinct_categories",
    "web_visits_90d",
    "app_logins_90d",
    "email_opens_90d",
    "support_tickets_90d",
)


class BehaviouralClusters(BaseEstimator):
    """Customers grouped by behaviour with k-means; the number of groups chosen by silhouette.

    ``fit`` prepares the features (log1p on skewed non-negative columns, median imputation,
    standard scaling), fits k-means for every k in ``k_min..k_max`` and keeps the one with the
    best silhouette score on a seeded sample of ``sample_size`` customers (the smallest k on a
    tie). Clusters are numbered by size, 0 the largest. ``transform`` applies the fitted
    preparation and centres unchanged. For a given ``random_state`` the result is the same on
    every run.

    Parameters
    ----------
    features : sequence of str, default=DEFAULT_CLUSTER_FEATURES
        Numeric behaviour columns.
    k_min : int, default=3
        Smallest number of clusters tried, at least 2.
    k_max : int, default=8
        Largest number of clusters tried (capped at the number of customers less one).
    sample_size : int, default=5000
        Customers the silhouette score is computed on (it costs the square of this).
    random_state : int, default=0
        Seed of k-means and of the silhouette sample.
    n_init : int, default=4
        K-means restarts per k.
    skew_threshold : float, default=1.0
        A column with no negative value and a sample skewness above this is log1p-transformed
        (at scoring, values below 0 are clipped to 0 first).
    label_features : int, default=2
        How many of a cluster's most distinctive features its label names.

    Attributes
    ----------
    features_ : tuple of str
        The columns used, in order.
    log_features_ : tuple of str
        Columns transformed with log1p.
    medians_ : pandas.Series
        Median of each raw column, used for missing values.
    scaler_ : sklearn.preprocessing.StandardScaler
        Scaler of the prepared columns.
    k_ : int
        Number of clusters chosen.
    silhouette_scores_ : dict of int to float
        Silhouette score of each k tried.
    silhouette_ : float
        Silhouette score of the chosen k.
    kmeans_ : sklearn.cluster.KMeans
        The fitted k-means of the chosen k (its labels are before renumbering by size).
    cluster_order_ : numpy.ndarray
        Cluster number (by size) of each k-means label.
    profile_ : pandas.DataFrame
        One row per cluster: ``cluster``, ``customers``, ``share``, the mean of each raw
        feature, and ``label`` naming its most distinctive features (e.g.
        ``"high spend_365d, low recency_days"``).
    """

    def __init__(
        self,
        features: Sequence[str] = DEFAULT_CLUSTER_FEATURES,
        k_min: int = 3,
        k_max: int = 8,
        sample_size: int = 5000,
        random_state: int = 0,
        n_init: int = 4,
        skew_threshold: float = 1.0,
        label_features: int = 2,
    ) -> None:
        self.features = features
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.random_state = random_state
        self.n_init = n_init
        self.skew_threshold = skew_threshold
        self.label_features = label_features

    @property
    def columns(self) -> list[str]:
        """Feature columns this estimator reads."""
        return list(self.features)

    def fit(self, features: pd.DataFrame, y: object = None) -> BehaviouralClusters:
        """Prepare the features, choose k by silhouette and fit k-means.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with every column in ``features``.
        y : None
            Ignored.

        Returns
        -------
        BehaviouralClusters
            This estimator, fitted.

        Raises
        ------
        ValueError
            On bad settings, missing or non-numeric columns, or too few customers.
        """
        names = check_names("features", self.features)
        k_min, k_max = self._check_settings()
        raw = self._raw(check_frame(features, names, fitting=True), names)
        k_max = min(k_max, len(raw) - 1)
        if k_max < k_min:
            raise ValueError(f"{len(raw)} customers are too few for k_min={k_min} clusters")
        self.features_ = names
        self._learn_preparation(raw)
        prepared = self._prepare(raw)
        models = self._fit_candidates(prepared, k_min, k_max)
        self.k_ = max(self.silhouette_scores_, key=lambda k: (self.silhouette_scores_[k], -k))
        self.silhouette_ = self.silhouette_scores_[self.k_]
        self.kmeans_ = models[self.k_]
        self._number_by_size(self.kmeans_.labels_)
        self.profile_ = self._profile(raw, self.cluster_order_[self.kmeans_.labels_])
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Assign each customer to its nearest fitted cluster.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with every column in ``features_``.

        Returns
        -------
        pandas.DataFrame
            One column, ``cluster`` (int, 0 the largest fitted cluster), indexed like
            ``features``.
        """
        check_is_fitted(self, "kmeans_")
        raw = self._raw(check_frame(features, self.features_), self.features_)
        labels = self.kmeans_.predict(self._prepare(raw))
        return pd.DataFrame({"cluster": self.cluster_order_[labels]}, index=features.index)

    def fit_transform(self, features: pd.DataFrame, y: object = None) -> pd.DataFrame:
        """Fit, then transform the same customers."""
        return self.fit(features).transform(features)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns ``transform`` returns."""
        return np.array(["cluster"], dtype=object)

    def silhouette(self, features: pd.DataFrame) -> float:
        """Silhouette score of the fitted clusters on other customers (e.g. a later snapshot).

        Computed on a sample of ``sample_size`` customers drawn with ``random_state``.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with every column in ``features_``.

        Returns
        -------
        float
            Between -1 and 1, higher is better; -1 when the customers fall in a single cluster.
        """
        check_is_fitted(self, "kmeans_")
        raw = self._raw(check_frame(features, self.features_, fitting=True), self.features_)
        prepared = self._prepare(raw)
        sample = self._sample(len(prepared))
        return _silhouette(prepared[sample], self.kmeans_.predict(prepared[sample]))

    def _check_settings(self) -> tuple[int, int]:
        k_min = check_integer("k_min", self.k_min, 2)
        k_max = check_integer("k_max", self.k_max, k_min)
        check_integer("sample_size", self.sample_size, 2)
        check_integer("random_state", self.random_state, 0)
        check_integer("n_init", self.n_init, 1)
        check_integer("label_features", self.label_features, 1)
        check_positive("skew_threshold", self.skew_threshold)
        return k_min, k_max

    @staticmethod
    def _raw(features: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
        columns = {name: numeric_column(features, name) for name in names}
        raw = pd.DataFrame(columns, index=features.index)
        return raw.replace([np.inf, -np.inf], np.nan)

    def _learn_preparation(self, raw: pd.DataFrame) -> None:
        self.medians_ = raw.median().fillna(0.0)
        filled = raw.fillna(self.medians_)
        self.log_features_ = tuple(
            name
            for name in self.features_
            if filled[name].min() >= 0
            and np.nan_to_num(skew(filled[name].to_numpy())) > self.skew_threshold
        )
        self.scaler_ = StandardScaler().fit(self._logged(filled).to_numpy())

    def _logged(self, filled: pd.DataFrame) -> pd.DataFrame:
        out = filled.copy()
        for name in self.log_features_:
            out[name] = np.log1p(out[name].clip(lower=0.0))
        return out

    def _prepare(self, raw: pd.DataFrame) -> np.ndarray:
        return self.scaler_.transform(self._logged(raw.fillna(self.medians_)).to_numpy())

    def _fit_candidates(self, prepared: np.ndarray, k_min: int, k_max: int) -> dict[int, KMeans]:
        sample = self._sample(len(prepared))
        models, self.silhouette_scores_ = {}, {}
        for k in range(k_min, k_max + 1):
            model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
            models[k] = model.fit(prepared)
            self.silhouette_scores_[k] = _silhouette(prepared[sample], model.labels_[sample])
        return models

    def _sample(self, rows: int) -> np.ndarray:
        """Sorted positions of a seeded sample of at most ``sample_size`` rows."""
        rng = np.random.default_rng(self.random_state)
        size = min(self.sample_size, rows)
        return np.sort(rng.choice(rows, size=size, replace=False))

    def _number_by_size(self, labels: np.ndarray) -> None:
        sizes = np.bincount(labels, minlength=self.k_)
        by_size = np.lexsort((np.arange(self.k_), -sizes))  # largest first, then label
        order = np.empty(self.k_, dtype=np.int64)
        order[by_size] = np.arange(self.k_)
        self.cluster_order_ = order

    def _profile(self, raw: pd.DataFrame, clusters: np.ndarray) -> pd.DataFrame:
        groups = raw.groupby(clusters)
        profile = pd.DataFrame({"customers": groups.size()}).reindex(range(self.k_), fill_value=0)
        profile["share"] = profile["customers"] / len(raw)
        profile = profile.join(groups.mean())
        centres = np.empty_like(self.kmeans_.cluster_centers_)
        centres[self.cluster_order_] = self.kmeans_.cluster_centers_
        profile["label"] = [self._label(centre) for centre in centres]
        profile.index.name = "cluster"
        return profile.reset_index()

    def _label(self, centre: np.ndarray) -> str:
        """Name the features whose scaled centre lies farthest from the mean."""
        strongest = np.argsort(-np.abs(centre), kind="stable")[: self.label_features]
        return ", ".join(
            f"{'high' if centre[i] > 0 else 'low'} {self.features_[i]}" for i in strongest
        )


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score, or -1 when the sample holds one cluster or only singletons."""
    if not 2 <= len(np.unique(labels)) < len(labels):
        return -1.0
    return float(silhouette_score(points, labels))
