"""Per-segment summaries for reports: size, share, value and recency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.models.segments._common import as_clv, check_frame, numeric_column
from retain.models.segments.lifecycle import LIFECYCLE_STAGES
from retain.models.segments.loyalty import LOYALTY_CLASSES
from retain.models.segments.rfm import RFM_SEGMENTS
from retain.models.segments.value_tier import VALUE_TIERS

__all__ = ["segment_summary"]

#: Row order of the summaries of the named segmentations.
KNOWN_ORDER: dict[str, tuple[str, ...]] = {
    "segment": RFM_SEGMENTS,
    "value_tier": VALUE_TIERS,
    "loyalty_class": LOYALTY_CLASSES,
    "lifecycle_stage": LIFECYCLE_STAGES,
}


def segment_summary(
    assigned: pd.DataFrame,
    features: pd.DataFrame,
    clv: object,
    *,
    by: str = "segment",
    recency: str = "recency_days",
) -> pd.DataFrame:
    """Size, value and recency of each segment, for reports.

    Parameters
    ----------
    assigned : pandas.DataFrame
        Output of :meth:`SegmentModel.transform` (or any frame with the ``by`` column),
        indexed like ``features``.
    features : pandas.DataFrame
        The feature frame the segments were assigned from.
    clv : pandas.Series or array-like
        Predicted future value per customer, aligned like ``features``.
    by : str, default="segment"
        Column of ``assigned`` to group by.
    recency : str, default="recency_days"
        Column of days since the last order.

    Returns
    -------
    pandas.DataFrame
        One row per segment present: ``by``, ``customers``, ``share``, ``mean_clv``,
        ``total_clv``, ``clv_share`` and ``mean_recency_days`` (over customers with an order).
        Named segmentations keep their natural order (most valuable first); others are sorted
        by size.
    """
    check_frame(assigned, [by])
    check_frame(features, [recency])
    if not assigned.index.equals(features.index):
        raise ValueError("assigned and features must share the same index")
    future = as_clv(clv, features.index)
    frame = pd.DataFrame(
        {by: assigned[by].to_numpy(), "clv": future, "recency": numeric_column(features, recency)}
    )
    groups = frame.groupby(by, sort=False)
    summary = pd.DataFrame(
        {
            "customers": groups.size(),
            "mean_clv": groups["clv"].mean(),
            "total_clv": groups["clv"].sum(),
            "mean_recency_days": groups["recency"].mean(),
        }
    )
    summary.insert(1, "share", summary["customers"] / len(frame))
    total = future.sum()
    summary.insert(4, "clv_share", summary["total_clv"] / total if total else np.nan)
    summary = _ordered(summary, KNOWN_ORDER.get(by))
    summary.index.name = by
    return summary.reset_index()


def _ordered(summary: pd.DataFrame, order: tuple[str, ...] | None) -> pd.DataFrame:
    if order is not None and set(summary.index) <= set(order):
        return summary.reindex([name for name in order if name in summary.index])
    return summary.sort_values("customers", ascending=False, kind="stable")
