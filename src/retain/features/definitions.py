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

from retain.engines.sources import FEATURE_SOURCES, PROFIT_EVENTS, SourceSchema
from retain.errors import ConfigError
from retain.features.filters import Condition

__all__ = [
    "AGGREGATIONS",
    "Attribute",
    "BTYDForecast",
    "BTYDSummary",
    "Entity",
    "Feature",
    "FeatureView",
    "GapProbability",
    "GapStatistics",
    "Pace",
    "PaybackMonths",
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
TREND_AGGREGATIONS = ("count", "sum", "mean", "count_distinct")
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
    agg : {"count", "sum", "mean", "count_distinct"}
        Aggregation of each window (``mean``, e.g. of order values: missing for a window
        without rows).
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
        if self.agg not in TREND_AGGREGATIONS:
            problems.append(
                f"a trend compares count, sum, mean or count_distinct, not {self.agg!r}"
            )
        else:
            problems += _aggregation_problems(self.agg, self.column, source)
        if self.window_days is None:
            problems.append("a trend needs window_days")
        if self.method not in ("ratio", "difference"):
            problems.append(f"method must be 'ratio' or 'difference', got {self.method!r}")
        return problems + _window_problems(self.window_days) + super().problems(source, view)


@dataclass(frozen=True)
class Pace(Feature):
    """The rate of events in the last ``window_days`` against the entity's own rate over the
    last ``baseline_days``: 1 is the usual pace, 0 silence, 2 twice as busy.

    Each rate is events per day of the time the entity was observed in the window: a window
    reaching back before its first event (passing ``where``) counts only the days since it,
    so a customer of 40 days is compared with their 40-day rate, not a 180-day one.

    Parameters
    ----------
    name : str
        Output column.
    window_days : int, default=30
        The recent window.
    baseline_days : int, default=180
        The longer window the recent one is compared with (it contains the recent one).
    where : Condition or None, default=None
        Row filter, e.g. the interaction types a customer starts.

    Notes
    -----
    Missing when the entity has no event in the baseline window.
    """

    kind: ClassVar[str] = "pace"
    name: str
    window_days: int = 30
    baseline_days: int = 180
    where: Condition | None = None

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        problems = _window_problems(self.window_days) + _window_problems(
            self.baseline_days, "baseline_days"
        )
        if not problems and self.baseline_days <= self.window_days:
            problems.append("baseline_days must be longer than window_days")
        return problems + super().problems(source, view)


@dataclass(frozen=True)
class PaybackMonths(Feature):
    """Months to pay back the acquisition cost, on the ``profit_events`` source.

    The months are counted from the customer's first day (the day of their ``acquisition``
    event: the earlier of signup and first transaction), the first month being 1, each of
    365.25 / 12 days; the result is the month by whose end the margin less the cost to serve
    before the cutoff had first reached the acquisition cost. 0 without an acquisition cost
    before the cutoff (none, 0, or a first day not yet come); missing while not paid back.
    The ``payback_months`` of :func:`retain.engines.rules.profit_and_loss`.

    Parameters
    ----------
    name : str, default="payback_months"
        Output column.
    """

    kind: ClassVar[str] = "payback_months"
    name: str = "payback_months"

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        if source.name != PROFIT_EVENTS:
            return [f"months to pay back read the {PROFIT_EVENTS!r} source, not {source.name!r}"]
        return []


@dataclass(frozen=True)
class GapProbability(Feature):
    """How likely a silence as long as the current one is under the entity's own rhythm.

    With ``n`` event days (passing ``where``) spanning ``S`` days between the first and the
    last, and ``R`` days from the last to the cutoff: ``(S / (S + R)) ** (n - 1)``, the
    probability of no event in ``R`` days for a Poisson rate with the gamma posterior that
    ``n - 1`` gaps in ``S`` days give (``Gamma(n - 1, S)``, no prior). Near 1 for a customer
    who just bought or buys rarely, near 0 for a regular customer long overdue; unlike the
    overdue ratio it weighs how much history backs the rhythm. Missing with fewer than two
    event days.

    Parameters
    ----------
    name : str
        Output column.
    where : Condition or None, default=None
        Row filter, e.g. ``col("amount") > 0`` for purchase days.
    """

    kind: ClassVar[str] = "gap_probability"
    name: str
    where: Condition | None = None


@dataclass(frozen=True)
class BTYDForecast(Feature):
    """A BG/NBD model's view of each entity: probability of being alive, and expected events.

    At every cutoff a BG/NBD model (Fader, Hardie & Lee 2005) is fitted to the BTYD summaries
    of the entities known at that cutoff (the ``frequency``, ``recency`` and ``T`` features of
    a :class:`BTYDSummary` in the same view), which hold only events before it; each entity
    then gets its probability of being alive and its expected number of purchase days in the
    next ``horizon_days``. The fit needs no label, so training and scoring snapshots are made
    the same way. Computed after the snapshot query, in Python, on whichever engine built it;
    missing for entities without a summary, and for all when the model cannot be fitted
    (fewer than :data:`BTYD_MIN_ENTITIES` with a purchase, or no repeat purchase).

    Parameters
    ----------
    p_alive : str, default="btyd_p_alive"
        Output: probability of being alive at the cutoff.
    expected : str, default="btyd_expected_purchases_90d"
        Output: expected purchase days in the next ``horizon_days``.
    horizon_days : int, default=90
        Horizon of ``expected``.
    frequency, recency, T : str
        The view's BTYD summary features read (defaults of :class:`BTYDSummary`).
    """

    kind: ClassVar[str] = "btyd_forecast"
    p_alive: str = "btyd_p_alive"
    expected: str = "btyd_expected_purchases_90d"
    horizon_days: int = 90
    frequency: str = "btyd_frequency"
    recency: str = "btyd_recency"
    T: str = "btyd_T"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.p_alive, self.expected)

    @property
    def inputs(self) -> tuple[str, str, str]:
        """The summary features read: frequency, recency and age."""
        return (self.frequency, self.recency, self.T)

    def problems(self, source: SourceSchema, view: FeatureView) -> list[str]:
        summaries = [f for f in view.features if isinstance(f, BTYDSummary)]
        provided = {name for summary in summaries for name in summary.outputs}
        missing = [name for name in self.inputs if name not in provided]
        problems = _window_problems(self.horizon_days, "horizon_days")
        if missing:
            problems.append(
                f"reads {', '.join(missing)}, which no BTYDSummary of the view produces"
            )
        return problems


#: A BTYD forecast is fitted only with at least this many entities with a purchase.
BTYD_MIN_ENTITIES = 20


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
    source : {"customers", "transactions", "interactions", "cost_events", "profit_events"}
        Source table: a canonical one, the cost events or the (virtual) profit events.
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
        return FEATURE_SOURCES[self.source]

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
        if self.source not in FEATURE_SOURCES:
            hint = did_you_mean(str(self.source), FEATURE_SOURCES)
            known = sorted(FEATURE_SOURCES)
            return [f"{where}: unknown source {self.source!r}{hint}; known: {known}"]
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
