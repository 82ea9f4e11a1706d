"""Customer segmentations: RFM segments, value tiers, loyalty, lifecycle and behaviour clusters.

- :class:`RFMSegmenter`: R, F and M scores from learned quantile edges and the named segments.
- :class:`ValueTier`: high / potential / medium / low from realised plus predicted value.
- :class:`LoyaltyClass`: loyal / potential / marginal / churned from recency and frequency.
- :class:`LifecycleStage`: new / growing / mature / declining / churned by fixed rules.
- :class:`BehaviouralClusters`: k-means on behaviour features, k chosen by silhouette.
- :class:`SegmentModel`: all of the above in one estimator built from flat settings.
- :func:`segment_summary`: size, value and recency per segment, for reports.

Every estimator learns its thresholds in ``fit`` and applies them unchanged in ``transform``,
so a customer keeps their segment when the same model scores them again.
"""

from retain.models.segments.clusters import DEFAULT_CLUSTER_FEATURES, BehaviouralClusters
from retain.models.segments.lifecycle import LIFECYCLE_STAGES, LifecycleStage
from retain.models.segments.loyalty import LOYALTY_CLASSES, LoyaltyClass
from retain.models.segments.model import SEGMENT_COLUMNS, SegmentModel
from retain.models.segments.rfm import RFM_GRID, RFM_SEGMENTS, RFMSegmenter
from retain.models.segments.summary import segment_summary
from retain.models.segments.value_tier import VALUE_TIERS, ValueTier

__all__ = [
    "DEFAULT_CLUSTER_FEATURES",
    "LIFECYCLE_STAGES",
    "LOYALTY_CLASSES",
    "RFM_GRID",
    "RFM_SEGMENTS",
    "SEGMENT_COLUMNS",
    "VALUE_TIERS",
    "BehaviouralClusters",
    "LifecycleStage",
    "LoyaltyClass",
    "RFMSegmenter",
    "SegmentModel",
    "ValueTier",
    "segment_summary",
]
