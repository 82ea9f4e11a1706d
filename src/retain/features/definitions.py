"""The feature-view API: entities, views and the small vocabulary of feature kinds.

Definitions are plain frozen dataclasses. They hold no engine objects, so a repository can be
validated when it loads, hashed into a stable version, and compiled to DuckDB or PySpark alike.

Time semantics (see ARCHITECTURE.md): at cutoff ``as_of`` (a date, midnight UTC) a view sees the
events with ``timestamp < as_of`` only; a window of ``w`` days covers ``[as_of - w days, as_of)``;
day differences are differences of calendar dates (epoch days), never timestamp deltas.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from retain.errors import ConfigError
from retain.features.filters import Condition
from retain.features.sources import SOURCES, SourceSchema

__all__ = [
    "AGGREGATIONS",
    "Attribute",
    "BTYDSummary",
    "Entity",
    "Feature",
    "FeatureView",
    "GapStatistics",
    "Ratio",
    "Recency",
    "Tenure",
    "Trend",
    "WindowAggregate",
    "did_you_mean",
]

#: Aggregation name -> column kinds it accepts (``None``: no column needed).
AGGREGATIONS: dict[str, tuple[str, ...] | None] = {
    "count": None,
    "sum": ("number",),
    "mean": ("number",),
    "min": ("number",),
    "max": ("number",),
    "count_distinct": ("id", "text", "number"),
}
RESERVED_NAMES = frozenset({"as_of"})
NUMBER_TYPES = (int, float)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when a close match exists, else ``""``."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _canonical(value: Any) -> Any:
    if isinstance(value, Condition):
        return value.canonical()
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    return value


@dataclass(frozen=True)
class Entity:
    """What features describe: one row per entity and cutoff.

    Parameters
    ----------
    name : str
        Entity name, e.g. ``"customer"``.
    join_key : str, default="customer_id"
        Key column present in every source the entity's views read.
    """

    name: str
    join_key: str = "customer_id"


@dataclass(frozen=True)
class Feature:
    """Base of all feature kinds; subclasses say which columns they read and what they output."""

    kind: ClassVar[str] = "feature"
    #: Whether the kind reads events (``True``) or static attributes (``False``).
    needs_events: ClassVar[bool] = True

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the snapshot columns the feature produces."""
        return (self.name,)  # type: ignore[attr-defined]

    @property
    def label(self) -> str:
        """How error messages name the feature."""
        return ", ".join(self.outputs)

    def spec(self) -> dict[str, Any]:
        """Deterministic, JSON-serialisable form of the definition (hashed into the version)."""
        fields = {f.name: _canonical(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"kind": self.kind, **fields}

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        """What is wrong with the feature on ``source`` (empty when it is valid)."""
        where = getattr(self, "where", None)
        return _filter_problems(where, source) if where is not None else []


def _column_problems(column: str, source: SourceSchema, allowed: Iterable[str] | None) -> list[str]:
    if column not in source.columns:
        hint = did_you_mean(column, source.columns)
        return [f"unknown column {column!r} in source {source.name!r}{hint}"]
    kind = source.columns[column]
    if allowed is not None and kind not in allowed:
        return [f"column {column!r} is {kind}, expected {' or '.join(allowed)}"]
    return []


def _filter_problems(where: Condition, source: SourceSchema) -> list[str]:
    if not isinstance(where, Condition):
        return [f"'where' must be a filter such as col('amount') < 0, got {where!r}"]
    problems = []
    for column in sorted(where.columns()):
        problems += _column_problems(column, source, ("id", "text", "number"))
    for column, literal in where.literals():
        kind = source.columns.get(column)
        is_number = isinstance(literal, NUMBER_TYPES) and not isinstance(literal, bool)
        if kind == "number" and not is_number:
            problems.append(f"filter compares number column {column!r} with {literal!r}")
        if kind in ("id", "text") and not isinstance(literal, str):
            problems.append(f"filter compares text column {column!r} with {literal!r}")
    return problems


def _window_problems(window_days: int | None, name: str = "window_days") -> list[str]:
    if window_days is None:
        return []
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days <= 0:
        return [f"{name} must be a positive whole number of days, got {window_days!r}"]
    return []


def _aggregation_problems(agg: str, column: str | None, source: SourceSchema) -> list[str]:
    if agg not in AGGREGATIONS:
        return [f"unknown aggregation {agg!r}{did_you_mean(agg, AGGREGATIONS)}"]
    allowed = AGGREGATIONS[agg]
    if column is None:
        return [] if allowed is None else [f"aggregation {agg!r} needs a column"]
    return _column_problems(column, source, allowed or ("id", "text", "number"))


@dataclass(frozen=True)
class WindowAggregate(Feature):
    """An aggregation of the events in ``[as_of - window_days, as_of)`` that pass ``where``.

    Parameters
    ----------
    name : str
        Output column.
    agg : {"count", "sum", "mean", "min", "max", "count_distinct"}
        ``count`` without a column counts rows; with one, its non-missing values.
    column : str or None, default=None
        Column aggregated (numbers for sum/mean/min/max).
    window_days : int or None, default=None
        Window length in days; ``None`` for the whole history before ``as_of``.
    where : Condition or None, default=None
        Row filter, e.g. ``col("amount") < 0``.

    Notes
    -----
    ``count``, ``count_distinct`` and ``sum`` are 0 for an entity without matching events;
    ``mean``, ``min`` and ``max`` are missing.
    """

    kind: ClassVar[str] = "window_aggregate"
    name: str
    agg: str
    column: str | None = None
    window_days: int | None = None
    where: Condition | None = None

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        return (
            _aggregation_problems(self.agg, self.column, source)
            + _window_problems(self.window_days)
            + super().problems(source, view)
        )


@dataclass(frozen=True)
class Recency(Feature):
    """Days since the last event passing ``where``: ``as_of.date() - last_event.date()``.

    Missing when the entity has no such event before ``as_of``.
    """

    kind: ClassVar[str] = "recency"
    name: str
    where: Condition | None = None


@dataclass(frozen=True)
class Tenure(Feature):
    """Days since the entity's first event, or since the date in ``column`` (e.g. signup).

    Parameters
    ----------
    name : str
        Output column.
    column : str or None, default=None
        A date column of a static source (``signup_date``); ``None`` on an event view means the
        first event of the view. Missing when the date is unknown or not before ``as_of``.
    """

    kind: ClassVar[str] = "tenure"
    needs_events: ClassVar[bool] = False
    name: str
    column: str | None = None

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        if not source.is_static:
            return (
                []
                if self.column is None
                else ["on an event view tenure counts from the first event; leave column unset"]
            )
        if self.column is None:
            return ["a tenure on a static source needs a date column, e.g. 'signup_date'"]
        return _column_problems(self.column, source, ("time",))


@dataclass(frozen=True)
class Trend(Feature):
    """Aggregate over the last ``window_days`` compared with the ``window_days`` before.

    Parameters
    ----------
    name : str
        Output column.
    agg : {"count", "sum", "count_distinct"}
        Aggregation of each window.
    column : str or None, default=None
        Column aggregated (``None`` with ``count``).
    window_days : int, default=90
        Length of each of the two windows.
    where : Condition or None, default=None
        Row filter.
    method : {"ratio", "difference"}, default="ratio"
        ``recent / previous`` (missing when ``previous`` is 0) or ``recent - previous``.
    """

    kind: ClassVar[str] = "trend"
    name: str
    agg: str
    column: str | None = None
    window_days: int = 90
    where: Condition | None = None
    method: str = "ratio"

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        problems = []
        if self.agg not in ("count", "sum", "count_distinct"):
            problems.append(f"a trend compares count, sum or count_distinct, not {self.agg!r}")
        else:
            problems += _aggregation_problems(self.agg, self.column, source)
        if self.window_days is None:
            problems.append("a trend needs window_days")
        if self.method not in ("ratio", "difference"):
            problems.append(f"method must be 'ratio' or 'difference', got {self.method!r}")
        return problems + _window_problems(self.window_days) + super().problems(source, view)


@dataclass(frozen=True)
class Ratio(Feature):
    """``numerator / denominator`` of two other features of the same view (missing if 0/0).

    The denominator being 0 or missing gives a missing value.
    """

    kind: ClassVar[str] = "ratio"
    needs_events: ClassVar[bool] = False
    name: str
    numerator: str
    denominator: str

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        plain = [n for f in view.features if not isinstance(f, Ratio) for n in f.outputs]
        problems = []
        for role in ("numerator", "denominator"):
            target = getattr(self, role)
            if target not in plain:
                hint = did_you_mean(target, plain)
                problems.append(f"{role} {target!r} is not a (non-ratio) feature of the view{hint}")
        return problems


@dataclass(frozen=True)
class GapStatistics(Feature):
    """Mean and standard deviation of the days between event days, and the overdue ratio.

    Event days are the distinct dates with an event passing ``where``; gaps are the differences
    between consecutive event days. The mean gap needs 2 event days, the (sample, ddof=1)
    standard deviation 3; the overdue ratio is ``recency / mean gap`` (``> 1``: later than usual).

    Parameters
    ----------
    mean, std, overdue : str
        Output column names.
    where : Condition or None, default=None
        Row filter, e.g. ``col("amount") > 0`` for purchase days.
    """

    kind: ClassVar[str] = "gap_statistics"
    mean: str = "gap_mean_days"
    std: str = "gap_std_days"
    overdue: str = "overdue_ratio"
    where: Condition | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.mean, self.std, self.overdue)


@dataclass(frozen=True)
class BTYDSummary(Feature):
    """The RFM summary of buy-till-you-die models (BG/NBD, Pareto/NBD, Gamma-Gamma).

    Purchase days are the distinct dates with events passing ``where`` (default: positive
    ``amount``). ``frequency`` = purchase days - 1 (repeat purchase days); ``recency`` = last -
    first purchase day; ``T`` = ``as_of`` - first purchase day; ``monetary_value`` = mean daily
    sum of ``column`` over the repeat purchase days (0 when ``frequency`` is 0). All four are
    missing for an entity without purchases. This is lifetimes'
    ``summary_data_from_transaction_data(freq="D", observation_period_end=as_of)`` applied to the
    events before ``as_of``.
    """

    kind: ClassVar[str] = "btyd_summary"
    frequency: str = "btyd_frequency"
    recency: str = "btyd_recency"
    T: str = "btyd_T"
    monetary_value: str = "btyd_monetary_value"
    column: str = "amount"
    where: Condition | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.frequency, self.recency, self.T, self.monetary_value)

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        return _column_problems(self.column, source, ("number",)) + super().problems(source, view)


@dataclass(frozen=True)
class Attribute(Feature):
    """A static column of the entity, copied as is (numbers) or encoded (categories).

    Parameters
    ----------
    name : str
        Output column.
    column : str or None, default=None
        Source column; defaults to ``name``.
    categories : tuple of str or None, default=None
        Vocabulary of a text column. Values outside it become ``"other"``, so training and
        scoring snapshots share one encoding (see :func:`retain.features.categorical`);
        missing values stay missing. ``None`` keeps text as is.
    """

    kind: ClassVar[str] = "attribute"
    needs_events: ClassVar[bool] = False
    OTHER: ClassVar[str] = "other"
    name: str
    column: str | None = None
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.categories is not None and not isinstance(self.categories, tuple):
            object.__setattr__(self, "categories", tuple(self.categories))

    @property
    def source_column(self) -> str:
        """The column read from the source."""
        return self.column or self.name

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        problems = _column_problems(self.source_column, source, ("id", "text", "number"))
        if self.categories is not None:
            if source.columns.get(self.source_column) == "number":
                problems.append("categories apply to text columns, not numbers")
            if not all(isinstance(value, str) for value in self.categories):
                problems.append("categories must be strings")
            if len(set(self.categories)) != len(self.categories) or self.OTHER in self.categories:
                problems.append(f"categories must be distinct and not include {self.OTHER!r}")
        return problems


@dataclass(frozen=True)
class FeatureView:
    """A named group of features of one entity, computed from one source table.

    Parameters
    ----------
    name : str
        View name (unique in the repository).
    entity : Entity
        What the rows describe.
    source : {"customers", "transactions", "interactions"}
        Canonical source table.
    features : sequence of Feature
        The view's features; their output names are unique across the repository.
    timestamp_field : str or None, default=None
        Event time column; ``None`` means the source's (``timestamp``), and must stay ``None``
        for the static ``customers`` table.
    description : str, default=""
        Documentation only; not part of the version.
    """

    name: str
    entity: Entity
    source: str
    features: tuple[Feature, ...] = field(default_factory=tuple)
    timestamp_field: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))

    @property
    def schema(self) -> SourceSchema:
        """The source schema (raises ``KeyError`` for an unknown source)."""
        return SOURCES[self.source]

    @property
    def event_time(self) -> str | None:
        """The timestamp column events are cut on (``None`` for a static view)."""
        return self.timestamp_field or self.schema.event_time

    @property
    def feature_names(self) -> tuple[str, ...]:
        """All output columns, in definition order."""
        return tuple(name for feature in self.features for name in feature.outputs)

    def spec(self) -> dict[str, Any]:
        """Deterministic, JSON-serialisable form of everything that affects the values."""
        return {
            "name": self.name,
            "entity": {"name": self.entity.name, "join_key": self.entity.join_key},
            "source": self.source,
            "timestamp_field": self.timestamp_field,
            "features": [feature.spec() for feature in self.features],
        }

    @property
    def version(self) -> str:
        """Stable hash of :meth:`spec`: changes exactly when the definition does."""
        text = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the view and feature if the definition is invalid."""
        problems = self.problems()
        if problems:
            raise ConfigError("invalid feature definitions:\n" + "\n".join(problems))

    def problems(self) -> list[str]:
        """Every problem of the view, each line naming the view (and feature)."""
        where = f"view {self.name!r}"
        if not isinstance(self.entity, Entity):
            return [f"{where}: entity must be an Entity, got {self.entity!r}"]
        if self.source not in SOURCES:
            hint = did_you_mean(str(self.source), SOURCES)
            return [f"{where}: unknown source {self.source!r}{hint}; known: {sorted(SOURCES)}"]
        problems = [f"{where}: {problem}" for problem in self._view_problems()]
        for feature in self.features:
            if not isinstance(feature, Feature):
                problems.append(f"{where}: {feature!r} is not a feature definition")
                continue
            for problem in self._feature_problems(feature):
                problems.append(f"{where}, feature {feature.label!r}: {problem}")
        return problems

    def _view_problems(self) -> list[str]:
        schema = self.schema
        problems = []
        if self.entity.join_key not in schema.columns:
            problems.append(f"join key {self.entity.join_key!r} is not a column of {self.source!r}")
        if schema.is_static and self.timestamp_field is not None:
            problems.append(f"source {self.source!r} has no events; leave timestamp_field unset")
        elif (
            self.timestamp_field is not None and schema.columns.get(self.timestamp_field) != "time"
        ):
            hint = did_you_mean(self.timestamp_field, schema.columns)
            problems.append(f"timestamp_field {self.timestamp_field!r} is no time column{hint}")
        if not self.features:
            problems.append("a view needs at least one feature")
        return problems

    def _feature_problems(self, feature: Feature) -> list[str]:
        schema = self.schema
        problems = []
        for name in feature.outputs:
            if not isinstance(name, str) or not name.isidentifier():
                problems.append(f"feature name {name!r} is not a valid identifier")
            elif name in RESERVED_NAMES or name == self.entity.join_key or name.startswith("_"):
                problems.append(f"feature name {name!r} is reserved")
        if schema.is_static and feature.needs_events:
            problems.append(f"{feature.kind} needs events; {self.source!r} is a static table")
        if not schema.is_static and isinstance(feature, Attribute):
            problems.append("attributes come from the static 'customers' source")
        return problems + feature.problems(schema, self)
