"""Compile feature views to one Ibis expression: a point-in-time snapshot at one or many cutoffs.

Every definition becomes plain Ibis (filters, conditional aggregates, a lag window, joins,
``epoch_days``), so the same expression runs on DuckDB or PySpark. The plan:

1. *Framing*: each event row gets its epoch day ``_day`` and is joined with the cutoffs it may
   feed (``_day < _as_of_day``) from a cutoffs table of one or many rows.
   Because ``as_of`` is a midnight, ``timestamp < as_of`` is exactly ``date(timestamp) <
   as_of``, and a window of ``w`` days is ``_day >= _as_of_day - w``: integers, no deltas.
2. *Aggregation*: per view, one ``GROUP BY (key, _as_of_day)`` of conditional aggregates over the
   rows (identical aggregates computed once; a distinct count of a column with few values as a
   bitmask), plus one over distinct event days for gap statistics and the BTYD summary (with
   the previous event day from a lag window, which never looks past the day itself). An
   expression that only ever sees one cutoff at a time groups by key alone (``single``).
3. *Assembly*: the entities known at each cutoff (a view's events, or signup before ``as_of``)
   are left-joined with every view, and raw aggregates are finished into features.

Sources may carry what staging prepares once per dataset (see :mod:`retain.engines.staging`):
integer key codes (everything is then grouped and joined on integers, and the spine is every
key at every cutoff, filtered), value codes of small text columns, epoch days and millionths.
Without them the same values are computed here; either way the result is the same.

Sums are accumulated as integers of millionths: exact, hence identical whatever order parallel
threads add rows in, which keeps snapshots byte-for-byte reproducible.

Conditional aggregates are written without ``FILTER`` clauses (see :func:`_count_if` and the
functions after it): DuckDB spends a quarter to a third less on ``count_if``, sums of values
times 0 or 1 and extremes of a ``CASE`` than on the same aggregates with filters (benchmarks/
features.py: the transaction aggregates took 2.4 s instead of 3.2 s of CPU, the interaction
aggregates 1.5 s instead of 2.1 s), and Spark runs them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from retain.engines.layout import (
    AS_OF_DAY,
    CODE_PREFIX,
    DAY_PREFIX,
    EPOCH,
    KEY_CODE,
    MASK_BITS,
    MICRO,
    MICROS_PREFIX,
    code_column,
    epoch_day,
)
from retain.engines.sources import (
    COST_EVENTS,
    DEFAULT_MARGIN_RATE,
    PROFIT_EVENTS,
    SOURCES,
)
from retain.features.definitions import (
    Attribute,
    BTYDForecast,
    BTYDSummary,
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
from retain.features.filters import Condition
from retain.features.repository import Repository

__all__ = [
    "AS_OF_DAY",
    "CODE_PREFIX",
    "DAY_PREFIX",
    "EPOCH",
    "KEY_CODE",
    "MASK_BITS",
    "MICROS_PREFIX",
    "code_column",
    "compile_snapshot",
    "distinct_columns",
    "epoch_day",
]

#: Kinds computed from a table of event days (one per distinct filter) rather than from rows.
DAILY_KINDS = (GapStatistics, BTYDSummary, GapProbability)
DAY = "_day"
#: Days of a month in months to pay back (a year's mean month, as the P&L counts them).
MONTH_DAYS = 365.25 / 12
FLOAT = dt.float64
INT = dt.int64


@ibis.udf.scalar.builtin
def bit_count(value: dt.int64) -> dt.int8:  # type: ignore[empty-body]
    """Number of set bits (DuckDB and Spark SQL ``bit_count``; a small integer, cast after)."""


@ibis.udf.agg.builtin
def bit_or(value: dt.int64) -> dt.int64:  # type: ignore[empty-body]
    """Bitwise OR of the values (DuckDB and Spark SQL ``bit_or``; Ibis' own ``bit_or`` has no
    PySpark translation)."""


@ibis.udf.agg.builtin
def count_if(value: dt.boolean) -> dt.int64:  # type: ignore[empty-body]
    """Number of rows where ``value`` is true (DuckDB and Spark SQL ``count_if``)."""


#: The type of a count. DuckDB's ``count_if`` gives a 128-bit integer; a cast to this type
#: (which Ibis tells from ``int64``: a count is never missing) makes it a BIGINT, as ``COUNT``.
COUNT = dt.Int64(nullable=False)


def _count_if(rows: ir.Table, where: ir.BooleanValue | None) -> ir.IntegerValue:
    """Rows passing ``where`` (all rows without one); 0 when none pass, as ``COUNT``."""
    return rows.count() if where is None else count_if(where).cast(COUNT)


def _count_present(values: ir.Value, where: ir.BooleanValue | None) -> ir.IntegerValue:
    """Rows passing ``where`` where ``values`` has a value."""
    return values.count() if where is None else count_if(values.notnull() & where).cast(COUNT)


def _sum_if(values: ir.IntegerValue, where: ir.BooleanValue | None) -> ir.IntegerValue:
    """Sum of integer ``values`` over the rows passing ``where``, as the sum of each value
    times 1 or 0: 0 rather than missing when rows exist but none pass, which every finisher
    reads alike (a sum is filled with 0, a mean divides by a count that is 0 then)."""
    return values.sum() if where is None else (values * where.cast(INT)).sum()


def _extreme_if(values: ir.Value, agg: str, where: ir.BooleanValue | None) -> ir.Value:
    """``min`` or ``max`` of ``values`` over the rows passing ``where``."""
    if where is not None:
        values = ibis.ifelse(where, values, ibis.null(values.type()))
    return getattr(values, agg)()


def _exact(value: ir.NumericValue) -> ir.IntegerValue:
    """``value`` in integer millionths (summed exactly; faster than decimals on DuckDB)."""
    return (value * MICRO).round().cast(INT)


def _exact_column(table: ir.Table, column: str) -> ir.IntegerValue:
    """:func:`_exact` of a column, read from ``_micros_<column>`` when the source has it."""
    stored = f"{MICROS_PREFIX}{column}"
    return table[stored] if stored in table.columns else _exact(table[column])


def _epoch_days(table: ir.Table, column: str) -> ir.IntegerValue:
    """Epoch day of a time column, read from ``_day_<column>`` when the source has it (as it
    is stored: 32-bit integers sort and compare cheaper than 64-bit ones)."""
    stored = f"{DAY_PREFIX}{column}"
    if stored in table.columns:
        return table[stored]
    return table[column].date().epoch_days()


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
    shared: dict[str, ir.Table] | None = None
    #: the table holds exactly one cutoff: aggregates are grouped by key alone
    single: bool = False

    def by(self, key: str) -> list[str]:
        """The columns aggregates are grouped (and joined) by."""
        return [key] if self.single else [key, AS_OF_DAY]

    def frame(self, rows: ir.Table) -> ir.Table:
        """Rows before each cutoff, with the cutoff's epoch day in ``_as_of_day``."""
        return rows.join(self.table, rows[DAY] < self.table[AS_OF_DAY])

    def share(self, name: str, table: ir.Table) -> ir.Table:
        """``table``, which does not depend on the cutoffs: inline, or (when collecting shared
        tables) recorded under ``_retain_<name>`` and read from a table of that name."""
        if self.shared is None:
            return table
        name = f"_retain_{name}"
        self.shared[name] = table
        return ibis.table(table.schema(), name=name)


@dataclass
class _Plan:
    """What one view contributes: raw aggregate tables and finishing expressions."""

    view: FeatureView
    key: str  # the column grouped on: the join key, or its integer code
    by: list[str]  # the columns grouped on: the key, and _as_of_day unless single
    keyed: list[ir.Table] = field(default_factory=list)  # keyed by ``by``
    static: ir.Table | None = None  # keyed by key only
    finishers: dict[str, Callable[[ir.Table], ir.Value]] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    #: columns coded for bitmask distinct counts: column -> code column in the rows
    codes: dict[str, str] = field(default_factory=dict)


def compile_snapshot(
    repository: Repository | Sequence[FeatureView],
    tables: Mapping[str, ir.Table],
    cutoffs: ir.Table,
    *,
    small_columns: Collection[tuple[str, str]] = (),
    keys: ir.Table | None = None,
    shared: dict[str, ir.Table] | None = None,
    order: bool = True,
    single: bool = False,
    margin_rate: float = DEFAULT_MARGIN_RATE,
) -> ir.Table:
    """The snapshot expression of every view at every cutoff.

    Parameters
    ----------
    repository : Repository or sequence of FeatureView
        Validated views.
    tables : mapping of str to ibis.Table
        Canonical source tables, all on one backend (see
        :meth:`retain.engines.Engine.connect`).
    cutoffs : ibis.Table
        One row per cutoff, column ``_as_of_day`` (int64 epoch day; see :func:`epoch_day`), on
        the same backend. The expression does not depend on its content, so it can be compiled
        once and run for each cutoff, or for all of them at once.
    small_columns : collection of (source, column), default=()
        Columns known to hold at most :data:`MASK_BITS` distinct non-missing values. A
        ``count_distinct`` of such a column is an OR of one bit per value (a bitmask) inside
        the view's aggregate; any other is counted in a separate grouping of its distinct
        values. Both give the same count; the bitmask is several times cheaper. A source
        column ``_code_<column>`` (integers 0 .. ``MASK_BITS - 1``, one per distinct value;
        staged sources have them) marks a small column too, and saves building the codes.
    keys : ibis.Table, optional
        The join key of every entity and its integer code ``_key`` (see :data:`KEY_CODE`),
        numbered in the order of the key; every event table then has a ``_key`` column too.
        Everything is grouped and joined on the code, far cheaper than on text, and the key is
        looked up once at the end.
    shared : dict, optional
        When given, the parts that do not depend on the cutoffs (the event days of gap
        statistics and BTYD summaries, with their lag window: the costliest part) are left out
        of the expression and put in this dict, name to expression; the expression reads
        tables of those names instead, which the caller creates once for many cutoffs.
    order : bool, default=True
        Order the rows by cutoff and key. With ``keys``, ``False`` leaves the order to the
        caller, who sorts by ``_key`` (see :func:`retain.features.engine.in_key_order`): DuckDB
        hands the rows back nearly in that order already, so that costs far less than an
        ``ORDER BY`` of every column. Without ``keys`` the rows are always ordered.
    single : bool, default=False
        The expression will only ever run with one row in ``cutoffs`` (as the engine's runs
        per cutoff do): aggregates are then grouped and joined by key alone, which is cheaper
        than by key and cutoff. With several rows its result would be wrong.
    margin_rate : float, default=0.3
        Margin as a share of the amount of a transaction without a ``margin``, in the
        virtual ``profit_events`` source (read only when a view reads that source).

    Returns
    -------
    ibis.Table
        Columns: the join key, ``_as_of_day`` (epoch day of the cutoff), ``_key`` when ``keys``
        is given, then every feature in view order; one row per entity known at each cutoff,
        ordered by cutoff and key (unless ``order`` is false and ``keys`` given).
    """
    views = repository.views if isinstance(repository, Repository) else tuple(repository)
    keys_table, keys = keys, {view.entity.join_key for view in views}
    if len(keys) != 1:
        raise ValueError(f"one snapshot holds one entity; views use keys {sorted(keys)}")
    (key,) = keys
    if keys_table is not None and key not in keys_table.columns:
        keys_table = None  # codes of another key
    group = key if keys_table is None else KEY_CODE
    framing = _Cutoffs(cutoffs, shared, single)
    small = set(small_columns)
    tables, profit = _with_virtual(tables, {view.source for view in views}, group, margin_rate)
    plans = [_plan_view(view, tables[view.source], framing, small, group, profit) for view in views]
    if keys_table is None:
        return _assemble(_spine(plans, tables, group, framing), plans, key)
    return _assemble_coded(keys_table, tables, plans, key, framing, order=order)


def _with_virtual(
    tables: Mapping[str, ir.Table], read: Collection[str], key: str, margin_rate: float
) -> tuple[Mapping[str, ir.Table], _Profit | None]:
    """``tables`` with the virtual sources the views ``read`` (and the tables lack) as
    expressions over them, and the parts of the profit events that months to pay back read:
    nothing is built for a source no view reads."""
    if PROFIT_EVENTS not in read:
        return tables, None
    profit = _Profit(tables, key, margin_rate)
    return {**tables, PROFIT_EVENTS: tables.get(PROFIT_EVENTS, profit.events())}, profit


@dataclass
class _Profit:
    """The virtual ``profit_events`` source (see :data:`retain.engines.sources.PROFIT_EVENTS`)
    and its parts, as expressions over the transactions, the cost events and the customers.

    One row per transaction (its margin: its own, else ``amount * margin_rate``), per cost
    event (minus the cost) and per customer with a non-zero acquisition cost (minus it, on
    their first day: the earlier of signup and first transaction, as
    :func:`retain.engines.rules.profit_and_loss` counts from). Amounts are exact integer
    millionths, rounded per event as the P&L rounds them; days are epoch days, read from what
    staging prepared when the tables have it.
    """

    tables: Mapping[str, ir.Table]
    key: str
    margin_rate: float

    def margins(self, day: str, flow: str) -> ir.Table:
        """Each transaction's day and margin (the P&L's: ``round(coalesce(margin, amount *
        rate) * 10^6)``, each value rounded alone), in columns ``day`` and ``flow``."""
        sales = self.tables["transactions"]
        margin = _exact_column(sales, "margin").fill_null(_exact(sales.amount * self.margin_rate))
        days = _epoch_days(sales, "timestamp").cast(INT)
        return sales.select(sales[self.key], days.name(day), margin.cast(INT).name(flow))

    def costs(self, day: str, flow: str) -> ir.Table:
        """Each cost event's day and its cost, negative."""
        spent = self.tables[COST_EVENTS]
        days = _epoch_days(spent, "timestamp").cast(INT)
        cost = -_exact_column(spent, "amount")
        return spent.select(spent[self.key], days.name(day), cost.cast(INT).name(flow))

    def acquired(self) -> ir.Table:
        """``_start`` (the first day) and ``_cost`` (the acquisition cost) of each customer
        with a non-zero acquisition cost and a first day."""
        key, sales, people = self.key, self.tables["transactions"], self.tables["customers"]
        first_sale = sales.group_by(key).aggregate(
            _first_sale=_epoch_days(sales, "timestamp").min()
        )
        paying = people.filter(people.acquisition_cost.notnull() & (people.acquisition_cost != 0))
        acquired = paying.left_join(first_sale, paying[key] == first_sale[key])
        signup = _epoch_days(paying, "signup_date").cast(INT)
        start = ibis.least(signup, acquired._first_sale.cast(INT))  # least ignores a missing
        acquired = acquired.select(paying[key], _start=start, _cost=_exact(paying.acquisition_cost))
        return acquired.filter(acquired._start.notnull())

    def events(self) -> ir.Table:
        """The ``profit_events`` rows: ``kind``, ``_day_timestamp``, ``_micros_amount`` and
        ``amount`` (what the compiler reads of an event table)."""
        day, micros = f"{DAY_PREFIX}timestamp", f"{MICROS_PREFIX}amount"

        def kind(table: ir.Table, name: str) -> ir.Table:
            return table.select(
                self.key, day, ibis.literal(name, type=dt.string).name("kind"), micros
            )

        acquired = self.acquired()
        acquired = acquired.select(
            acquired[self.key], acquired._start.name(day), (-acquired._cost).name(micros)
        )
        events = ibis.union(
            kind(self.margins(day, micros), "margin"),
            kind(self.costs(day, micros), "cost"),
            kind(acquired, "acquisition"),
            distinct=False,
        )
        return events.mutate(amount=events[micros].cast(FLOAT) / MICRO)


def _spine(plans: list[_Plan], tables: Mapping[str, ir.Table], key: str, cutoffs: _Cutoffs):
    """(key, _as_of_day) of every entity with an event in a view, or known since before as_of."""
    parts = [
        plan.keyed[0].select(key).cross_join(cutoffs.table.view())
        if cutoffs.single
        else plan.keyed[0].select(key, AS_OF_DAY)
        for plan in plans
        if plan.keyed
    ]
    for name, schema in SOURCES.items():
        if schema.is_static and schema.known_since:
            table = tables[name]
            known = table.filter(table[schema.known_since].notnull())
            known = known.select(key, **{DAY: _epoch_days(known, schema.known_since)})
            parts.append(cutoffs.frame(known).select(key, AS_OF_DAY))
    return ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct()


def _assemble(spine: ir.Table, plans: list[_Plan], key: str) -> ir.Table:
    leading = [spine[key], spine[AS_OF_DAY]]
    joined, raw = _join_views(spine, spine[key], spine[AS_OF_DAY], plans, key, leading)
    return _finish_snapshot(joined.select(*raw), plans, [key, AS_OF_DAY], key)


def _assemble_coded(
    keys: ir.Table,
    tables: Mapping[str, ir.Table],
    plans: list[_Plan],
    key: str,
    cutoffs: _Cutoffs,
    *,
    order: bool = True,
) -> ir.Table:
    """Every key at every cutoff, joined with the views, then kept if known at the cutoff.

    With integer codes this is cheaper than collecting the known keys first (a union of
    distinct keys): every join (and the final order, when there is one) is on integers.
    """
    days = cutoffs.table.view()
    code, day = keys[KEY_CODE], days[AS_OF_DAY]
    spine = keys.cross_join(days)  # a join chain: refer to its tables' columns, not its own
    leading = [keys[key], day, code]
    joined, raw = _join_views(spine, code, day, plans, KEY_CODE, leading)
    known = [
        table[f"_{plan.view.name}_events"].notnull() for plan in plans for table in plan.keyed[:1]
    ]
    static = {plan.view.source: plan for plan in plans if plan.static is not None}
    for name, schema in SOURCES.items():
        if schema.is_static and schema.known_since:
            if name in static:  # joined already
                plan = static[name]
                known.append(plan.static[_known_since(plan)] < day)
                continue
            table = tables[name]
            since = table.select(KEY_CODE, _known_since=_epoch_days(table, schema.known_since))
            joined = joined.left_join(since, code == since[KEY_CODE])
            known.append(since["_known_since"] < day)
    condition = known[0]
    for other in known[1:]:
        condition = condition | other
    joined = joined.select(*raw, _known=condition)
    joined = joined.filter(joined["_known"])
    return _finish_snapshot(joined, plans, [key, AS_OF_DAY, KEY_CODE], KEY_CODE if order else None)


def _join_views(
    spine: ir.Table, key: ir.Value, day: ir.Value, plans: list[_Plan], group: str, raw: list
) -> tuple[ir.Table, list]:
    """Left-join every view's tables to the spine on its ``key`` and cutoff ``day``."""
    # one chain of left joins, selected once: far cheaper to compile than join-select pairs
    joined, raw = spine, list(raw)
    for plan in plans:
        for table in plan.keyed:
            predicates = [key == table[group]]
            if AS_OF_DAY in table.columns:  # unless grouped by key alone (one cutoff)
                predicates.append(day == table[AS_OF_DAY])
            joined = joined.left_join(table, predicates)
            raw += [table[name] for name in table.columns if name not in (group, AS_OF_DAY)]
        if plan.static is not None:
            table = plan.static
            joined = joined.left_join(table, key == table[group])
            raw += [table[name] for name in table.columns if name != group]
    return joined, raw


def _finish_snapshot(
    joined: ir.Table, plans: list[_Plan], leading: list[str], group: str | None
) -> ir.Table:
    """Raw aggregates finished into features, in view order, ordered by cutoff and ``group``
    (unordered when ``group`` is ``None``)."""
    features = {name: finish(joined) for plan in plans for name, finish in plan.finishers.items()}
    finished = joined.select(*leading, **features)
    ratios = {
        ratio.name: finished[ratio.numerator].cast(FLOAT)
        / finished[ratio.denominator].cast(FLOAT).nullif(0)
        for plan in plans
        for ratio in plan.ratios
    }
    if ratios:
        finished = finished.mutate(**ratios)
    order = [name for plan in plans for name in plan.view.feature_names]
    finished = finished.select(*leading, *order)
    return finished if group is None else finished.order_by([AS_OF_DAY, group])


def distinct_columns(views: Sequence[FeatureView]) -> set[tuple[str, str]]:
    """(source, column) of every ``count_distinct`` in ``views`` (candidates for a bitmask)."""
    return {
        (view.source, feature.column)
        for view in views
        for feature in view.features
        if isinstance(feature, WindowAggregate | Trend) and feature.agg == "count_distinct"
    }


def _plan_view(
    view: FeatureView,
    source: ir.Table,
    cutoffs: _Cutoffs,
    small: set[tuple[str, str]],
    key: str,
    profit: _Profit | None = None,
) -> _Plan:
    plan = _Plan(view, key, cutoffs.by(key))
    plan.ratios = [feature for feature in view.features if isinstance(feature, Ratio)]
    if view.schema.is_static:
        _plan_static(plan, source)
        return plan
    events = source.mutate(**{DAY: _epoch_days(source, view.event_time)})
    coded = events
    for _, column in sorted(
        c for c in distinct_columns([view]) if c in small or code_column(c[1]) in source.columns
    ):
        coded, plan.codes[column] = _coded(coded, source, column)
    daily_features = [f for f in view.features if isinstance(f, DAILY_KINDS)]
    groups: dict[str, list[Feature]] = {}
    for feature in daily_features:
        groups.setdefault(repr(_canonical_where(feature.where)), []).append(feature)
    prefixes = {where: f"_{view.name}_d{index}" for index, where in enumerate(groups)}
    rows = cutoffs.frame(coded)
    aggregates: dict[str, ir.Value] = {f"_{view.name}_events": rows.count()}
    for feature in view.features:
        if isinstance(feature, BTYDForecast):
            # filled in after the query, from the finished summaries (retain.features.forecast)
            for name in feature.outputs:
                plan.finishers[name] = lambda t: ibis.null(FLOAT)
            continue
        if isinstance(feature, (*DAILY_KINDS, Ratio)):
            continue
        if isinstance(feature, PaybackMonths):
            plan.keyed.append(_payback(plan, feature, profit, cutoffs))
            continue
        prefix = None
        if isinstance(feature, Recency):
            prefix = prefixes.get(repr(_canonical_where(feature.where)))
        if prefix is not None:
            # the last day of the same rows is in the table of event days: read it there
            plan.finishers[feature.name] = _finish_recency(f"{prefix}_last")
        else:
            aggregates.update(_row_feature(plan, feature, rows))
    # first: every entity with an event is in it (see _spine)
    plan.keyed.insert(0, _grouped(rows, plan.by, aggregates))
    for where, group in groups.items():
        plan.keyed.append(_plan_daily(plan, group, events, cutoffs, prefix=prefixes[where]))
    return plan


def _coded(events: ir.Table, source: ir.Table, column: str) -> tuple[ir.Table, str]:
    """``events`` with the code of ``column`` in its dictionary of distinct values (0, 1, ...;
    missing for a missing value), and the name of the code column. A source that has the codes
    already (staged sources) is used as it is; otherwise the dictionary is built and joined."""
    code = code_column(column)
    if code in source.columns:
        return events, code
    values = source.select(_value=source[column]).filter(ibis._["_value"].notnull()).distinct()
    dictionary = values.select("_value", **{code: ibis.row_number().over(order_by="_value")})
    joined = events.left_join(dictionary, events[column] == dictionary["_value"])
    return joined.select(*events.columns, code), code


def _grouped(rows: ir.Table, by: list[str], aggregates: dict[str, ir.Value]) -> ir.Table:
    """``rows`` grouped and aggregated, computing each distinct aggregate expression once."""
    first: dict = {}
    copies = {}
    for name, value in aggregates.items():
        found = first.setdefault(value.op(), name)
        if found != name:
            copies[name] = found
    unique = {name: value for name, value in aggregates.items() if name not in copies}
    table = rows.group_by(by).aggregate(**unique)
    return table.mutate(**{name: table[found] for name, found in copies.items()})


def _present_only(where: Condition | None, column: str | None) -> bool:
    """Whether ``where`` can pass a row only when ``column`` has a value (a comparison of the
    column passes no missing value, as in SQL)."""

    def passes_present_only(node: list) -> bool:
        head = node[0]
        if head == "and":
            return passes_present_only(node[1]) or passes_present_only(node[2])
        if head == "or":
            return passes_present_only(node[1]) and passes_present_only(node[2])
        if head in ("not", "isnull"):
            return False
        return node[1] == column  # a comparison or isin on the column

    return where is not None and column is not None and passes_present_only(where.canonical())


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


def _aggregate(
    plan: _Plan, rows: ir.Table, agg: str, column: str | None, where, raw: str, present: bool
) -> dict:
    """Raw aggregate columns named from ``raw`` (a mean needs two); a distinct count of a
    column without a small dictionary gets a table of its own instead. ``present``: the filter
    passes only rows where ``column`` has a value, so counting it is counting rows (the same
    aggregate as other counts with that filter, computed once; see :func:`_plan_view`)."""
    if agg == "count":
        counted = column is None or present
        value = _count_if(rows, where) if counted else _count_present(rows[column], where)
        return {raw: value}
    values = rows[column]
    if agg == "sum":
        return {raw: _sum_if(_exact_column(rows, column), where)}
    if agg == "mean":
        count = _count_if(rows, where) if present else _count_present(values, where)
        return {f"{raw}_sum": _sum_if(_exact_column(rows, column), where), f"{raw}_n": count}
    if agg == "count_distinct":
        if column in plan.codes:
            bit = ibis.literal(1, INT) << rows[plan.codes[column]].cast(INT)
            # OR of each value's bit times 1 or 0: 0 when no row passes (counted as none)
            return {f"{raw}_mask": bit_or(bit if where is None else bit * where.cast(INT))}
        plan.keyed.append(_distinct_count(plan, rows, column, where, raw))
        return {}
    return {raw: _extreme_if(values, agg, where)}  # min, max


def _distinct_count(plan: _Plan, rows: ir.Table, column: str, where, raw: str) -> ir.Table:
    """Distinct values of ``column`` per (key, cutoff) counted from their own grouping: a
    ``COUNT(DISTINCT)`` next to filtered aggregates makes DuckDB copy all rows for it."""
    chosen = rows.filter(_and(rows[column].notnull(), where))
    pairs = chosen.select(*plan.by, _value=chosen[column]).distinct()
    return pairs.group_by(plan.by).aggregate(**{raw: pairs.count()})


def _finish_aggregate(plan: _Plan, agg: str, column: str | None, raw: str):
    if agg == "count_distinct" and column in plan.codes:
        return lambda t: bit_count(t[f"{raw}_mask"]).fill_null(0).cast(INT)
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
        plan.finishers[feature.name] = _finish_aggregate(plan, feature.agg, feature.column, raw)
        present = _present_only(feature.where, feature.column)
        return _aggregate(plan, rows, feature.agg, feature.column, condition, raw, present)
    if isinstance(feature, Recency):
        plan.finishers[feature.name] = _finish_recency(raw)
        return {raw: _extreme_if(rows[DAY], "max", where)}
    if isinstance(feature, Tenure):
        plan.finishers[feature.name] = lambda t: (t[AS_OF_DAY] - t[raw]).cast(FLOAT)
        return {raw: rows[DAY].min()}
    if isinstance(feature, Trend):
        return _trend(plan, feature, rows, where, raw)
    if isinstance(feature, Pace):
        return _pace(plan, feature, rows, where, raw)
    raise TypeError(f"no compiler for {type(feature).__name__} on an event view")


def _pace(plan: _Plan, feature: Pace, rows: ir.Table, where, raw: str) -> dict:
    """Events of the recent and the baseline window, and the first event day: see
    :class:`Pace`."""
    recent_days, baseline_days = float(feature.window_days), float(feature.baseline_days)

    def pace(t: ir.Table) -> ir.FloatingValue:
        since = (t[AS_OF_DAY] - t[f"{raw}_first"]).cast(FLOAT)  # days observed, >= 1
        recent = t[f"{raw}_recent"].fill_null(0).cast(FLOAT) / ibis.least(since, recent_days)
        baseline = t[f"{raw}_baseline"].cast(FLOAT) / ibis.least(since, baseline_days)
        return recent / baseline.nullif(0.0)

    plan.finishers[feature.name] = pace
    return {
        f"{raw}_recent": _count_if(rows, _and(_window(rows, feature.window_days), where)),
        f"{raw}_baseline": _count_if(rows, _and(_window(rows, feature.baseline_days), where)),
        f"{raw}_first": _extreme_if(rows[DAY], "min", where),
    }


#: Months to pay back found from per-entity sums of the first months (most customers pay back
#: in them); only the others go through a running sum over their months.
EARLY_MONTHS = 3


def _payback(plan: _Plan, feature: PaybackMonths, profit: _Profit, cutoffs: _Cutoffs) -> ir.Table:
    """Acquisition cost and the first month paid back per entity (and cutoff), as
    :func:`retain.engines.rules.profit_and_loss` finds it: the margin less the cost of each
    month since the first day (the acquisition event's), summed month by month, against the
    acquisition cost; registers the finisher (see :class:`PaybackMonths`).

    A running sum over every entity's months (a grouping by entity and month, then a window)
    costs DuckDB more than the rest of the view: at 200,000 customers it doubled the view's
    time. So the sums up to each of the first :data:`EARLY_MONTHS` months, and the sum of the
    gains (a bound of every running sum), come from one grouping by entity; only an entity
    paid back in none of those months that gained at least its cost since has its later months
    summed one by one (the first months as one, none of which paid back).
    """
    raw = f"_{plan.view.name}_{feature.name}"
    by = plan.by
    # from the parts of the profit events, not their rows: the view's aggregate then reads
    # them once, and DuckDB keeps no copy of every row for this (see _Profit)
    acquired = cutoffs.frame(profit.acquired().mutate(**{DAY: ibis._["_start"]}))
    acquired = acquired.select(*by, "_start", "_cost")
    flows = ibis.union(profit.margins(DAY, "_flow"), profit.costs(DAY, "_flow"), distinct=False)
    flows = cutoffs.frame(flows).join(acquired, by)
    flows = flows.select(*by, _cost=flows._cost, _days=flows[DAY] - flows._start, _flow=flows._flow)
    # month m (0, 1, ...) ends before day ceil((m + 1) * 365.25 / 12) after the first: whole
    # days compared, no month computed for every row
    sums = {
        f"_until_{month}": _sum_if(flows._flow, flows._days < math.ceil((month + 1) * MONTH_DAYS))
        for month in range(EARLY_MONTHS)
    }
    early = flows.group_by(by).aggregate(
        **sums, _gains=_sum_if(flows._flow, flows._flow > 0), _cost=flows._cost.max()
    )
    first = ibis.cases(
        *[(early[name] >= early._cost, month) for month, name in enumerate(sums)],
        else_=ibis.null(dt.int32),
    )
    early = early.select(*by, _early=first, _later=first.isnull() & (early._gains >= early._cost))
    later = flows.join(early.filter(early._later).select(*by), by)
    month = (later._days.cast(FLOAT) / MONTH_DAYS).floor().cast(dt.int32)  # as the P&L does
    monthly = later.group_by([*by, ibis.greatest(month, EARLY_MONTHS - 1).name("_month")])
    monthly = monthly.aggregate(_flow=later._flow.sum().cast(INT), _cost=later._cost.max())
    running = monthly._flow.sum().over(ibis.cumulative_window(group_by=by, order_by="_month"))
    monthly = monthly.mutate(_running=running.cast(INT))
    paid = monthly.filter(monthly._running >= monthly._cost)
    paid = paid.group_by(by).aggregate(_later=paid._month.min())
    table = acquired.left_join(early, by).left_join(paid, by)
    table = table.select(
        *[acquired[name] for name in by],
        **{f"{raw}_cost": acquired._cost, f"{raw}_paid": early._early.fill_null(paid._later)},
    )

    def payback(t: ir.Table) -> ir.FloatingValue:
        cost = t[f"{raw}_cost"]
        paid_back = (t[f"{raw}_paid"] + 1).cast(FLOAT)
        return ibis.cases((cost.isnull() | (cost <= 0), 0.0), else_=paid_back)

    plan.finishers[feature.name] = payback
    return table


def _finish_recency(last: str) -> Callable[[ir.Table], ir.FloatingValue]:
    """Days from the last event day (raw column ``last``) to the cutoff."""
    return lambda t: (t[AS_OF_DAY] - t[last]).cast(FLOAT)


def _trend(plan: _Plan, feature: Trend, rows: ir.Table, where, raw: str) -> dict:
    days = feature.window_days
    recent_where = _and(_window(rows, days), where)
    previous_where = _and(_window(rows, 2 * days, days), where)
    column, present = feature.column, _present_only(feature.where, feature.column)
    aggregates = _aggregate(plan, rows, feature.agg, column, recent_where, f"{raw}_recent", present)
    aggregates |= _aggregate(
        plan, rows, feature.agg, column, previous_where, f"{raw}_previous", present
    )
    recent = _finish_aggregate(plan, feature.agg, column, f"{raw}_recent")
    previous = _finish_aggregate(plan, feature.agg, column, f"{raw}_previous")
    if feature.method == "ratio":
        plan.finishers[feature.name] = lambda t: (
            recent(t).cast(FLOAT) / previous(t).cast(FLOAT).nullif(0.0)
        )
    else:
        plan.finishers[feature.name] = lambda t: (recent(t) - previous(t)).cast(FLOAT)
    return aggregates


def _plan_daily(plan: _Plan, group: list[Feature], events, cutoffs: _Cutoffs, prefix: str):
    """Aggregates over event days (one table per distinct filter); registers finishers.

    Instead of grouping rows into days (as many groups as rows, slow), each chosen row gets,
    from window functions over one sort, its previous chosen row's day (``lag``) and its rank
    among the chosen rows by day (0 on the first day: the rows of later days are the repeats);
    a day counts once (its first row has a gap > 0, or is the very first), and gaps are the
    positive differences. Neither looks at a row of a later day, so no cutoff can see the future
    through them; and neither depends on the cutoff, so both are computed once for all cutoffs.
    (A rank costs DuckDB less than a minimum over the partition, or its first value.)
    """
    key = plan.key
    where = group[0].where
    chosen = events.filter(where.to_ibis(events)) if where is not None else events
    value_columns = sorted({f.column for f in group if isinstance(f, BTYDSummary)})
    ordered = ibis.window(group_by=key, order_by=DAY)
    windowed = chosen.select(
        key,
        DAY,
        *[_exact_column(chosen, column).name(f"_value_{column}") for column in value_columns],
        _gap=chosen[DAY] - chosen[DAY].lag().over(ordered),
        _rank=ibis.rank().over(ordered),  # rows on earlier days: the same sort as the lag
    )
    repeated = (windowed._rank > 0).cast(INT)  # a day after the first event day: 1, else 0
    repeats = {
        f"_repeat_{column}": windowed[f"_value_{column}"] * repeated for column in value_columns
    }
    # small types: these rows may be kept in memory for all cutoffs (see _Cutoffs.share)
    days = windowed.select(
        key, windowed[DAY].cast(dt.int32).name(DAY), _gap=windowed._gap.cast(dt.int32), **repeats
    )
    rows = cutoffs.frame(cutoffs.share(f"{prefix.strip('_')}_days", days))
    gap = rows._gap.cast(INT)
    aggregates = {
        f"{prefix}_days": _count_if(rows, gap.isnull() | (gap > 0)),
        f"{prefix}_first": rows[DAY].min(),
        f"{prefix}_last": rows[DAY].max(),
        # gaps of 0 (a second event on a day) add nothing; the gaps themselves sum to last - first
        f"{prefix}_gap_squares": (gap * gap).sum(),
    }
    for column in value_columns:
        aggregates[f"{prefix}_repeat_{column}"] = rows[f"_repeat_{column}"].sum()
    for feature in group:
        if isinstance(feature, GapStatistics):
            _finish_gaps(plan, feature, prefix)
        elif isinstance(feature, GapProbability):
            plan.finishers[feature.name] = _finish_gap_probability(prefix)
        else:
            _finish_btyd(plan, feature, prefix)
    return rows.group_by(plan.by).aggregate(**aggregates)


def _gap_mean(t: ir.Table, prefix: str) -> ir.FloatingValue:
    spread = (t[f"{prefix}_last"] - t[f"{prefix}_first"]).cast(FLOAT)
    return spread / (t[f"{prefix}_days"] - 1).nullif(0).cast(FLOAT)


def _finish_gaps(plan: _Plan, feature: GapStatistics, prefix: str) -> None:
    def std(t: ir.Table) -> ir.FloatingValue:
        # sample variance of the n - 1 gaps from exact integer sums: order-independent
        gaps = (t[f"{prefix}_days"] - 1).cast(FLOAT)
        total = (t[f"{prefix}_last"] - t[f"{prefix}_first"]).cast(FLOAT)
        squares = t[f"{prefix}_gap_squares"].cast(FLOAT)
        variance = (squares - total * total / gaps) / (gaps - 1)
        return ibis.cases((gaps >= 2, ibis.greatest(variance, 0.0).sqrt()), else_=ibis.null(FLOAT))

    def overdue(t: ir.Table) -> ir.FloatingValue:
        recency = (t[AS_OF_DAY] - t[f"{prefix}_last"]).cast(FLOAT)
        return recency / _gap_mean(t, prefix)

    plan.finishers[feature.mean] = lambda t: _gap_mean(t, prefix)
    plan.finishers[feature.std] = std
    plan.finishers[feature.overdue] = overdue


def _finish_gap_probability(prefix: str) -> Callable[[ir.Table], ir.FloatingValue]:
    """``(span / (span + silence)) ** (days - 1)``: see :class:`GapProbability`."""

    def probability(t: ir.Table) -> ir.FloatingValue:
        days = t[f"{prefix}_days"]
        span = (t[f"{prefix}_last"] - t[f"{prefix}_first"]).cast(FLOAT)
        observed = (t[AS_OF_DAY] - t[f"{prefix}_first"]).cast(FLOAT)  # span + silence, >= 1
        share = span / observed
        return ibis.cases((days >= 2, share ** (days - 1).cast(FLOAT)), else_=ibis.null(FLOAT))

    return probability


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
    key = plan.key
    columns: dict[str, ir.Value] = {}
    for feature in plan.view.features:
        raw = f"_{plan.view.name}_{feature.outputs[0]}"
        if isinstance(feature, Attribute):
            columns[raw] = source[feature.source_column]
            plan.finishers[feature.name] = _finish_attribute(feature, raw)
        elif isinstance(feature, Tenure):
            columns[raw] = _epoch_days(source, feature.column)
            plan.finishers[feature.name] = _finish_static_tenure(raw)
    known_since = plan.view.schema.known_since
    if known_since is not None:  # for the spine (see _assemble_coded)
        columns[_known_since(plan)] = _epoch_days(source, known_since)
    plan.static = source.select(key, **columns)


def _known_since(plan: _Plan) -> str:
    return f"_{plan.view.name}_known_since"


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
