"""RFM scores and the named RFM segments, with quantile edges learned once and then kept."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.models.segments._common import check_frame, check_integer, numeric_column

__all__ = ["RFM_GRID", "RFM_SEGMENTS", "RFMSegmenter", "score_edges"]

#: Named segments, from the most to the least valuable.
RFM_SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Cannot Lose Them",
    "Hibernating",
    "Lost",
)

_H, _A, _C = "Hibernating", "At Risk", "Cannot Lose Them"
_S, _N, _L, _P = "About to Sleep", "Need Attention", "Loyal", "Potential Loyalist"
#: ``RFM_GRID[r - 1][f - 1]``: the segment of 5-point scores R = r and F = f.
RFM_GRID: tuple[tuple[str, ...], ...] = (
    ("Lost", _H, _A, _A, _C),  # R = 1
    (_H, _H, _A, _A, _C),  # R = 2
    (_S, _S, _N, _L, _L),  # R = 3
    ("Promising", _P, _P, _L, _L),  # R = 4
    ("New", _P, _P, "Champions", "Champions"),  # R = 5
)
GRID_SCORES = 5
MAX_BINS = 9  # one digit per score in ``rfm_code``


def score_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Score edges for values where higher is better; ties never straddle an edge.

    A value ``v`` scores ``1 + (number of edges <= v)``. Edges are observed values: the
    ``k``-th is the distinct value whose share of values strictly below it is closest to
    ``k / bins``, while edges stay strictly increasing and leave room for the ones after it,
    so every score ``1..bins`` is used on ``values`` when they hold at least ``bins`` distinct
    values. With ``m < bins`` distinct values, the ``m`` groups get scores spread evenly from
    1 to ``bins`` (edges repeat); with a single distinct value, every edge is ``+inf``.

    Parameters
    ----------
    values : numpy.ndarray
        Finite values of the fitted customers.
    bins : int
        Number of scores.

    Returns
    -------
    numpy.ndarray
        ``bins - 1`` non-decreasing edges.
    """
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size >= bins:
        return _quantile_edges(distinct, counts, bins)
    return _spread_edges(distinct, bins)


def _quantile_edges(distinct: np.ndarray, counts: np.ndarray, bins: int) -> np.ndarray:
    below = np.concatenate([[0], np.cumsum(counts)[:-1]]) / counts.sum()
    chosen, previous = [], 0
    for k in range(1, bins):
        low, high = previous + 1, distinct.size - bins + k
        previous = low + int(np.argmin(np.abs(below[low : high + 1] - k / bins)))
        chosen.append(previous)
    return distinct[chosen].astype(np.float64)


def _spread_edges(distinct: np.ndarray, bins: int) -> np.ndarray:
    if distinct.size < 2:
        return np.full(bins - 1, np.inf)
    groups = np.arange(distinct.size)
    scores = 1 + np.round(groups * (bins - 1) / (distinct.size - 1)).astype(int)
    # edge k is the smallest value scoring above k
    return np.array([distinct[np.argmax(scores > k)] for k in range(1, bins)], dtype=np.float64)


class RFMSegmenter(BaseEstimator):
    """Recency, frequency and monetary scores and the named RFM segments.

    ``fit`` learns quantile edges per measure from the customers with at least one order;
    ``transform`` applies those edges unchanged, so a fitted segmenter gives a customer the same
    scores whatever else is in the frame it scores.

    Scores run from 1 to ``bins``, higher is better: 5 (with 5 bins) is the most recent, the most
    frequent and the biggest spender. Ties are never split: customers with equal values always
    get equal scores, because edges are observed values (see :func:`score_edges`): a value at or
    above a frequency or monetary edge scores above it, a recency at or below a recency edge
    scores above it. With heavy ties (a single order is the most common frequency) the edge is
    put at the distinct value whose share below is closest to the target quantile, so score
    groups are as even as the ties allow and every score is used. Customers without an order
    (missing recency, or frequency 0) get 1 on all three; any other missing value scores 1.

    The ``segment`` comes from the well-known R x F grid (scores on a 5-point scale; with other
    ``bins`` a score ``s`` is rescaled to ``ceil(5 s / bins)``; with ``segment_on="fm"`` the
    second axis is ``FM = round-half-up((F + M) / 2)``):

    =====  ==============  ==================  ==================  ==========  ================
    R \\ F  1               2                   3                   4           5
    =====  ==============  ==================  ==================  ==========  ================
    5      New             Potential Loyalist  Potential Loyalist  Champions   Champions
    4      Promising       Potential Loyalist  Potential Loyalist  Loyal       Loyal
    3      About to Sleep  About to Sleep      Need Attention      Loyal       Loyal
    2      Hibernating     Hibernating         At Risk             At Risk     Cannot Lose Them
    1      Lost            Hibernating         At Risk             At Risk     Cannot Lose Them
    =====  ==============  ==================  ==================  ==========  ================

    Parameters
    ----------
    bins : int, default=5
        Number of scores per measure, 2 to 9 (one digit each in ``rfm_code``).
    recency : str, default="recency_days"
        Column of days since the last order (missing when there is none).
    frequency : str, default="frequency"
        Column of the number of orders.
    monetary : str, default="monetary_total"
        Column of the net spend to date.
    segment_on : {"f", "fm"}, default="f"
        Second axis of the segment grid: F alone, or the mean of F and M.

    Attributes
    ----------
    recency_edges_ : numpy.ndarray
        ``bins - 1`` recency edges in days, ascending; a recency at or below ``k`` of them
        scores ``1 + k``.
    frequency_edges_ : numpy.ndarray
        ``bins - 1`` frequency edges, ascending; a value at or above ``k`` of them scores
        ``1 + k``.
    monetary_edges_ : numpy.ndarray
        Monetary edges, as for frequency.
    n_buyers_ : int
        Customers with an order that the edges were learned from.

    Examples
    --------
    >>> rfm = RFMSegmenter().fit(features)  # doctest: +SKIP
    >>> rfm.transform(features)[["rfm_code", "segment"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        bins: int = 5,
        recency: str = "recency_days",
        frequency: str = "frequency",
        monetary: str = "monetary_total",
        segment_on: Literal["f", "fm"] = "f",
    ) -> None:
        self.bins = bins
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary
        self.segment_on = segment_on

    @property
    def columns(self) -> list[str]:
        """Feature columns this segmenter reads."""
        return [self.recency, self.frequency, self.monetary]

    def fit(self, features: pd.DataFrame, y: object = None) -> RFMSegmenter:
        """Learn score edges from the customers with at least one order.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the recency, frequency and monetary columns.
        y : None
            Ignored.

        Returns
        -------
        RFMSegmenter
            This segmenter, fitted.

        Raises
        ------
        ValueError
            On bad settings, missing or non-numeric columns, or when no customer has an order.
        """
        bins = check_integer("bins", self.bins, 2)
        if bins > MAX_BINS:
            raise ValueError(f"bins must be at most {MAX_BINS}, got {bins}")
        if self.segment_on not in ("f", "fm"):
            raise ValueError(f"segment_on must be 'f' or 'fm', got {self.segment_on!r}")
        recency, frequency, monetary = self._measures(
            check_frame(features, self.columns, fitting=True)
        )
        buyers = _buyers(recency, frequency)
        if not buyers.any():
            raise ValueError("no customer has an order: cannot learn RFM edges")
        self.recency_edges_ = -score_edges(-_finite(recency[buyers]), bins)[::-1]
        self.frequency_edges_ = score_edges(_finite(frequency[buyers]), bins)
        self.monetary_edges_ = score_edges(_finite(monetary[buyers]), bins)
        self.n_buyers_ = int(buyers.sum())
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Score customers with the fitted edges and name their segment.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer with the recency, frequency and monetary columns.

        Returns
        -------
        pandas.DataFrame
            ``r_score``, ``f_score``, ``m_score`` (int), ``rfm_code`` (e.g. ``"543"``) and
            ``segment``, indexed like ``features``.
        """
        check_is_fitted(self, "recency_edges_")
        recency, frequency, monetary = self._measures(check_frame(features, self.columns))
        r = _score(-recency, -self.recency_edges_[::-1])
        f = _score(frequency, self.frequency_edges_)
        m = _score(monetary, self.monetary_edges_)
        none = ~_buyers(recency, frequency)
        r[none], f[none], m[none] = 1, 1, 1
        out = pd.DataFrame({"r_score": r, "f_score": f, "m_score": m}, index=features.index)
        out["rfm_code"] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
        out["segment"] = self._segments(r, f, m)
        return out

    def fit_transform(self, features: pd.DataFrame, y: object = None) -> pd.DataFrame:
        """Fit, then transform the same customers."""
        return self.fit(features).transform(features)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the columns ``transform`` returns."""
        return np.array(["r_score", "f_score", "m_score", "rfm_code", "segment"], dtype=object)

    def _measures(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(numeric_column(features, column) for column in self.columns)

    def _segments(self, r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
        r5, f5 = _on_grid(r, self.bins), _on_grid(f, self.bins)
        if self.segment_on == "fm":
            f5 = (f5 + _on_grid(m, self.bins) + 1) // 2
        grid = np.array(RFM_GRID, dtype=object)
        return grid[r5 - 1, f5 - 1]


def _buyers(recency: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Customers with at least one order: a known recency and a positive frequency."""
    return ~np.isnan(recency) & (np.nan_to_num(frequency, nan=0.0) > 0)


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _score(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``1 + (number of edges <= value)``; missing values score 1."""
    scores = 1 + np.searchsorted(edges, values, side="right")
    scores[np.isnan(values)] = 1
    return scores.astype(np.int64)


def _on_grid(scores: np.ndarray, bins: int) -> np.ndarray:
    """Scores rescaled to the 5-point grid: ``ceil(5 s / bins)``."""
    return (GRID_SCORES * scores + bins - 1) // bins
