"""Compile feature views to one Ibis expression: a point-in-time snapshot at one or many cutoffs.

Every definition becomes plain Ibis (filters, conditional aggregates, a lag window, joins,
``epoch_days``), so the same expression runs on DuckDB or PySpark. The plan:

1. *Framing*: each event row gets its epoch day ``_day`` and is joined with the cutoffs it may
   feed (``_day < _as_of_day``) from a cutoffs table of one or many rows.
   Because ``as_of`` is a midnight, ``timestamp < as_of`` is exactly ``date(timestamp) <
   as_of``, and a window of ``w`` days is ``_day >= _as_of_day - w``: integers, no deltas.
2. *Aggregation*: per view, one ``GROUP BY (key, _as_of_day)`` of conditional aggregates over the
   rows, plus one over distinct event days for gap statistics and the BTYD summary (with the
   previous event day from a lag window, which never looks past the day itself).
3. *Assembly*: the entities known at each cutoff (a view's events, or signup before ``as_of``)
   are left-joined with every view, and raw aggregates are finished into features.

Sums are accumulated as integers of millionths: exact, hence identical whatever order parallel
threads add rows in, which keeps snapshots byte-for-byte reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from retain.features.definitions import (
    Attribute,
    BTYDSummary,
    Feature,
    FeatureView,
    GapStatistics,
    Ratio,
    Recency,
    Tenure,
    Trend,
    WindowAggregate,
)
from retain.features.filters import Condition
from retain.features.repository import Repository
from retain.features.sources import SOURCES

__all__ = ["AS_OF_DAY", "EPOCH", "compile_snapshot", "epoch_day"]

AS_OF_DAY = "_as_of_day"
DAY = "_day"
EPOCH = date(1970, 1, 1)
#: Sums run on integers of 10^-6 units: exact, so their result is the same in any order.
MICRO = 1_000_000
FLOAT = dt.float64
INT = dt.int64


def epoch_day(day: date) -> int:
    """Days since 1970-01-01 of a date (the engine's integer calendar)."""
    return (day - EPOCH).days


def _exact(value: ir.NumericValue) -> ir.IntegerValue:
    """``value`` in integer millionths (summed exactly; faster than decimals on DuckDB)."""
    return (value * MICRO).round().cast(INT)


def _from_exact(total: ir.Value) -> ir.FloatingValue:
    """A sum of :func:`_exact` values back in the original unit."""
    return total.cast(FLOAT) / MICRO


def _and(*conditions: ir.BooleanValue | None) -> ir.BooleanValue | None:
    present = [condition for condition in conditions if condition is not None]
    if not present:
        return None
    result = present[0]
    for condition in present[1:]:
        result = result & condition
    return result


@dataclass
class _Cutoffs:
    """Pairs event rows with the cutoffs they may feed (a join with the cutoffs table)."""

    table: ir.Table

    def frame(self, rows: ir.Table) -> ir.Table:
        """Rows before each cutoff, with the cutoff's epoch day in ``_as_of_day``."""
        return rows.join(self.table, rows[DAY] < self.table[AS_OF_DAY])


@dataclass
class _Plan:
    """What one view contributes: raw aggregate tables and finishing expressions."""

    view: FeatureView
    keyed: list[ir.Table] = field(default_factory=list)  # keyed by (key, _as_of_day)
    static: ir.Table | None = None  # keyed by key only
    finishers: dict[str, Callable[[ir.Table], ir.Value]] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)


def compile_snapshot(
    repository: Repository | Sequence[FeatureView],
    tables: Mapping[str, ir.Table],
    cutoffs: ir.Table,
) -> ir.Table:
    """The snapshot expression of every view at every cutoff.

    Parameters
    ----------
    repository : Repository or sequence of FeatureView
        Validated views.
    tables : mapping of str to ibis.Table
        Canonical source tables (see :func:`retain.features.sources.to_ibis_tables`), all on one
        backend.
    cutoffs : ibis.Table
        One row per cutoff, column ``_as_of_day`` (int64 epoch day; see :func:`epoch_day`), on
        the same backend. The expression does not depend on its content, so it can be compiled
        once and run for each cutoff, or for all of them at once.

    Returns
    -------
    ibis.Table
        Columns: the join key, ``_as_of_day`` (epoch day of the cutoff), then every feature in
        view order; one row per entity known at each cutoff, ordered by cutoff and key.
    """
    views = repository.views if isinstance(repository, Repository) else tuple(repository)
    keys = {view.entity.join_key for view in views}
    if len(keys) != 1:
        raise ValueError(f"one snapshot holds one entity; views use keys {sorted(keys)}")
    key = keys.pop()
    framing = _Cutoffs(cutoffs)
    plans = [_plan_view(view, tables[view.source], framing) for view in views]
    spine = _spine(plans, tables, key, framing)
    return _assemble(spine, plans, key)


def _spine(plans: list[_Plan], tables: Mapping[str, ir.Table], key: str, cutoffs: _Cutoffs):
    """(key, _as_of_day) of every entity with an event in a view, or known since before as_of."""
    parts = [plan.keyed[0].select(key, AS_OF_DAY) for plan in plans if plan.keyed]
    for name, schema in SOURCES.items():
        if schema.is_static and schema.known_since:
            table = tables[name]
            known = table.filter(table[schema.known_since].notnull())
            known = known.select(key, **{DAY: known[schema.known_since].date().epoch_days()})
            parts.append(cutoffs.frame(known).select(key, AS_OF_DAY))
    return ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct()


def _assemble(spine: ir.Table, plans: list[_Plan], key: str) -> ir.Table:
    # one chain of left joins, selected once: far cheaper to compile than join-select pairs
    joined, raw = spine, [spine[key], spine[AS_OF_DAY]]
    for plan in plans:
        for table in plan.keyed:
            predicates = [spine[key] == table[key], spine[AS_OF_DAY] == table[AS_OF_DAY]]
            joined = joined.left_join(table, predicates)
            raw += [table[name] for name in table.columns if name not in (key, AS_OF_DAY)]
        if plan.static is not None:
            table = plan.static
            joined = joined.left_join(table, spine[key] == table[key])
            raw += [table[name] for name in table.columns if name != key]
    joined = joined.select(*raw)
    features = {name: finish(joined) for plan in plans for name, finish in plan.finishers.items()}
    finished = joined.select(key, AS_OF_DAY, **features)
    ratios = {
        ratio.name: finished[ratio.numerator].cast(FLOAT)
        / finished[ratio.denominator].cast(FLOAT).nullif(0)
        for plan in plans
        for ratio in plan.ratios
    }
    if ratios:
        finished = finished.mutate(**ratios)
    order = [name for plan in plans for name in plan.view.feature_names]
    return finished.select(key, AS_OF_DAY, *order).order_by([AS_OF_DAY, key])


def _plan_view(view: FeatureView, source: ir.Table, cutoffs: _Cutoffs) -> _Plan:
    plan = _Plan(view)
    plan.ratios = [feature for feature in view.features if isinstance(feature, Ratio)]
    if view.schema.is_static:
        _plan_static(plan, source)
        return plan
    key = view.entity.join_key
    events = source.mutate(**{DAY: source[view.event_time].date().epoch_days()})
    rows = cutoffs.frame(events)
    aggregates: dict[str, ir.Value] = {f"_{view.name}_events": rows.count()}
    for feature in view.features:
        if not isinstance(feature, GapStatistics | BTYDSummary | Ratio):
            aggregates.update(_row_feature(plan, feature, rows))
    plan.keyed.append(rows.group_by([key, AS_OF_DAY]).aggregate(**aggregates))
    daily_features = [f for f in view.features if isinstance(f, GapStatistics | BTYDSummary)]
    groups: dict[str, list[Feature]] = {}
    for feature in daily_features:
        groups.setdefault(repr(_canonical_where(feature.where)), []).append(feature)
    for index, group in enumerate(groups.values()):
        plan.keyed.append(
            _plan_daily(plan, group, events, cutoffs, prefix=f"_{view.name}_d{index}")
        )
    return plan


def _canonical_where(where: Condition | None) -> list | None:
    return None if where is None else where.canonical()


def _window(rows: ir.Table, start_days: int | None, end_days: int = 0) -> ir.BooleanValue | None:
    """Rows in ``[as_of - start_days, as_of - end_days)`` (rows are already before as_of)."""
    conditions = []
    if start_days is not None:
        conditions.append(rows[DAY] >= rows[AS_OF_DAY] - start_days)
    if end_days:
        conditions.append(rows[DAY] < rows[AS_OF_DAY] - end_days)
    return _and(*conditions)


def _aggregate(rows: ir.Table, agg: str, column: str | None, where, raw: str) -> dict:
    """Raw aggregate columns named from ``raw`` (a mean needs two)."""
    if agg == "count":
        value = rows.count(where=where) if column is None else rows[column].count(where=where)
        return {raw: value}
    values = rows[column]
    if agg == "sum":
        return {raw: _exact(values).sum(where=where)}
    if agg == "mean":
        return {
            f"{raw}_sum": _exact(values).sum(where=where),
            f"{raw}_n": values.count(where=where),
        }
    if agg == "count_distinct":
        return {raw: values.nunique(where=where)}
    return {raw: getattr(values, agg)(where=where)}  # min, max


def _finish_aggregate(agg: str, raw: str):
    if agg in ("count", "count_distinct"):
        return lambda t: t[raw].fill_null(0).cast(INT)
    if agg == "sum":
        return lambda t: _from_exact(t[raw]).fill_null(0.0)
    if agg == "mean":
        return lambda t: _from_exact(t[f"{raw}_sum"]) / t[f"{raw}_n"].nullif(0).cast(FLOAT)
    return lambda t: t[raw].cast(FLOAT)


def _row_feature(plan: _Plan, feature: Feature, rows: ir.Table) -> dict[str, ir.Value]:
    """Raw aggregates of a row-level feature; registers how to finish it."""
    raw = f"_{plan.view.name}_{feature.outputs[0]}"
    where = feature.where.to_ibis(rows) if getattr(feature, "where", None) is not None else None
    if isinstance(feature, WindowAggregate):
        condition = _and(_window(rows, feature.window_days), where)
        plan.finishers[feature.name] = _finish_aggregate(feature.agg, raw)
        return _aggregate(rows, feature.agg, feature.column, condition, raw)
    if isinstance(feature, Recency):
        plan.finishers[feature.name] = lambda t: (t[AS_OF_DAY] - t[raw]).cast(FLOAT)
        return {raw: rows[DAY].max(where=where)}
    if isinstance(feature, Tenure):
        plan.finishers[feature.name] = lambda t: (t[AS_OF_DAY] - t[raw]).cast(FLOAT)
        return {raw: rows[DAY].min()}
    if isinstance(feature, Trend):
        return _trend(plan, feature, rows, where, raw)
    raise TypeError(f"no compiler for {type(feature).__name__} on an event view")


def _trend(plan: _Plan, feature: Trend, rows: ir.Table, where, raw: str) -> dict:
    days = feature.window_days
    recent_where = _and(_window(rows, days), where)
    previous_where = _and(_window(rows, 2 * days, days), where)
    aggregates = _aggregate(rows, feature.agg, feature.column, recent_where, f"{raw}_recent")
    aggregates |= _aggregate(rows, feature.agg, feature.column, previous_where, f"{raw}_previous")
    recent = _finish_aggregate(feature.agg, f"{raw}_recent")
    previous = _finish_aggregate(feature.agg, f"{raw}_previous")
    if feature.method == "ratio":
        plan.finishers[feature.name] = lambda t: (
            recent(t).cast(FLOAT) / previous(t).cast(FLOAT).nullif(0.0)
        )
    else:
        plan.finishers[feature.name] = lambda t: (recent(t) - previous(t)).cast(FLOAT)
    return aggregates


def _plan_daily(plan: _Plan, group: list[Feature], events, cutoffs: _Cutoffs, prefix: str):
    """Aggregates over event days (one table per distinct filter); registers finishers.

    Instead of grouping rows into days (as many groups as rows, slow), each chosen row gets its
    previous chosen row's day and the first chosen day from window functions; a day counts once
    (its first row has a gap > 0, or is the very first), and gaps are the positive differences.
    Neither window looks past the row's own day, so no cutoff can see the future through them.
    """
    key = plan.view.entity.join_key
    where = group[0].where
    chosen = events.filter(where.to_ibis(events)) if where is not None else events
    value_columns = sorted({f.column for f in group if isinstance(f, BTYDSummary)})
    ordered = ibis.window(group_by=key, order_by=DAY)
    chosen = chosen.select(
        key,
        DAY,
        *[_exact(chosen[column]).name(f"_value_{column}") for column in value_columns],
        _gap=chosen[DAY] - chosen[DAY].lag().over(ordered),
        _first=chosen[DAY].first().over(ordered),  # same window as the lag: one sort for both
    )
    rows = cutoffs.frame(chosen)
    new_day = rows._gap.isnull() | (rows._gap > 0)
    aggregates = {
        f"{prefix}_days": rows.count(where=new_day),
        f"{prefix}_first": rows[DAY].min(),
        f"{prefix}_last": rows[DAY].max(),
        f"{prefix}_gap_sum": rows._gap.sum(where=rows._gap > 0),
        f"{prefix}_gap_squares": (rows._gap * rows._gap).sum(where=rows._gap > 0),
    }
    for column in value_columns:
        repeat = rows[DAY] > rows._first  # spend on days after the first purchase day
        aggregates[f"{prefix}_repeat_{column}"] = rows[f"_value_{column}"].sum(where=repeat)
    for feature in group:
        if isinstance(feature, GapStatistics):
            _finish_gaps(plan, feature, prefix)
        else:
            _finish_btyd(plan, feature, prefix)
    return rows.group_by([key, AS_OF_DAY]).aggregate(**aggregates)


def _gap_mean(t: ir.Table, prefix: str) -> ir.FloatingValue:
    spread = (t[f"{prefix}_last"] - t[f"{prefix}_first"]).cast(FLOAT)
    return spread / (t[f"{prefix}_days"] - 1).nullif(0).cast(FLOAT)


def _finish_gaps(plan: _Plan, feature: GapStatistics, prefix: str) -> None:
    def std(t: ir.Table) -> ir.FloatingValue:
        # sample variance of the n - 1 gaps from exact integer sums: order-independent
        gaps = (t[f"{prefix}_days"] - 1).cast(FLOAT)
        total = t[f"{prefix}_gap_sum"].cast(FLOAT)
        squares = t[f"{prefix}_gap_squares"].cast(FLOAT)
        variance = (squares - total * total / gaps) / (gaps - 1)
        return ibis.cases((gaps >= 2, ibis.greatest(variance, 0.0).sqrt()), else_=ibis.null(FLOAT))

    def overdue(t: ir.Table) -> ir.FloatingValue:
        recency = (t[AS_OF_DAY] - t[f"{prefix}_last"]).cast(FLOAT)
        return recency / _gap_mean(t, prefix)

    plan.finishers[feature.mean] = lambda t: _gap_mean(t, prefix)
    plan.finishers[feature.std] = std
    plan.finishers[feature.overdue] = overdue


def _finish_btyd(plan: _Plan, feature: BTYDSummary, prefix: str) -> None:
    def monetary(t: ir.Table) -> ir.FloatingValue:
        frequency = t[f"{prefix}_days"] - 1
        repeat = _from_exact(t[f"{prefix}_repeat_{feature.column}"].fill_null(0))
        return ibis.cases(
            (frequency > 0, repeat / frequency.cast(FLOAT)),
            (frequency == 0, 0.0),
            else_=ibis.null(FLOAT),
        )

    plan.finishers[feature.frequency] = lambda t: (t[f"{prefix}_days"] - 1).cast(FLOAT)
    plan.finishers[feature.recency] = lambda t: (t[f"{prefix}_last"] - t[f"{prefix}_first"]).cast(
        FLOAT
    )
    plan.finishers[feature.T] = lambda t: (t[AS_OF_DAY] - t[f"{prefix}_first"]).cast(FLOAT)
    plan.finishers[feature.monetary_value] = monetary


def _plan_static(plan: _Plan, source: ir.Table) -> None:
    """Static attributes joined by key; tenure counted from a date column."""
    key = plan.view.entity.join_key
    columns: dict[str, ir.Value] = {}
    for feature in plan.view.features:
        raw = f"_{plan.view.name}_{feature.outputs[0]}"
        if isinstance(feature, Attribute):
            columns[raw] = source[feature.source_column]
            plan.finishers[feature.name] = _finish_attribute(feature, raw)
        elif isinstance(feature, Tenure):
            columns[raw] = source[feature.column].date().epoch_days()
            plan.finishers[feature.name] = _finish_static_tenure(raw)
    plan.static = source.select(key, **columns)


def _finish_static_tenure(raw: str):
    def tenure(t: ir.Table) -> ir.FloatingValue:
        days = (t[AS_OF_DAY] - t[raw]).cast(FLOAT)
        return ibis.cases((t[raw] < t[AS_OF_DAY], days), else_=ibis.null(FLOAT))

    return tenure


def _finish_attribute(feature: Attribute, raw: str):
    def attribute(t: ir.Table) -> ir.Value:
        value = t[raw]
        if value.type().is_numeric():
            return value.cast(FLOAT)
        if feature.categories is None:
            return value.cast(dt.string)
        return ibis.cases(
            (value.isnull(), ibis.null(dt.string)),
            (value.isin(list(feature.categories)), value),
            else_=ibis.literal(Attribute.OTHER),
        )

    return attribute
