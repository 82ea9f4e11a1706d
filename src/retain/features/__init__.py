"""Point-in-time features: the feature-view API, its compiler to Ibis, and the snapshot store.

Define views in a feature repository (``features/*.py``), then build snapshots at cutoffs with
``retain features build`` or fetch them with :func:`get_features`; training and scoring use the
same call with different cutoffs. See the README, section "Features".
"""

from retain.features.definitions import (
    AGGREGATIONS,
    Attribute,
    BTYDForecast,
    BTYDSummary,
    Entity,
    Feature,
    FeatureView,
    GapProbability,
    GapStatistics,
    Pace,
    PaybackMonths,
    Ratio,
    Recency,
    Tenure,
    Trend,
    WindowAggregate,
)
from retain.features.engine import as_dates, compute_features, iter_snapshots
from retain.features.filters import Condition, col
from retain.features.inputs import (
    CutoffError,
    CutoffWarning,
    SourceData,
    default_cutoff,
    resolve_data,
)
from retain.features.repository import Repository, age_features, check_views, load_repository
from retain.features.retrieval import categorical, get_features, with_categories
from retain.features.store import BuildResult, FeatureStore, SnapshotInfo
from retain.features.workspace import open_sources, open_store

__all__ = [
    "AGGREGATIONS",
    "Attribute",
    "BTYDForecast",
    "BTYDSummary",
    "BuildResult",
    "Condition",
    "CutoffError",
    "CutoffWarning",
    "Entity",
    "Feature",
    "FeatureStore",
    "FeatureView",
    "GapProbability",
    "GapStatistics",
    "Ratio",
    "Recency",
    "Pace",
    "PaybackMonths",
    "Repository",
    "SnapshotInfo",
    "SourceData",
    "Tenure",
    "Trend",
    "WindowAggregate",
    "age_features",
    "as_dates",
    "categorical",
    "check_views",
    "col",
    "compute_features",
    "default_cutoff",
    "get_features",
    "iter_snapshots",
    "load_repository",
    "open_sources",
    "open_store",
    "resolve_data",
    "with_categories",
]
