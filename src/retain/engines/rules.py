"""retain's rules, written once as Ibis expressions that every engine runs.

- **Active** at ``as_of``: a purchase (a transaction with a positive amount) in
  ``[as_of - active_days, as_of)``. Training rows and the scored population are the customers
  active at their cutoff.
- **Outcomes** from the transactions in ``[as_of, as_of + horizon_days)``: ``future_orders``
  (purchases), ``future_spend`` and ``future_margin`` (net, refunds included; ``margin``, else
  ``amount * margin_rate``) and ``churned`` (no purchase), for the customers active at
  ``as_of``.
- **Population** of a list: the customers of a snapshot active at its cutoff.
- **Training rows**: the outcomes joined with the snapshot's features, split by cutoff; their
  counts per cutoff and the profile of each feature (what leaves uninformative features out).
- **Campaign rows** (uplift): each campaign's cutoff is the day of its first contact; its
  enrolled customers (treatment and control) active then, with their outcomes after it and
  their features at it.
- **Tallies** of a list: customers, selected ones, and the totals of ``summary.json``.
- **Ranking inputs**: the columns the driver collects to select and rank
  (:mod:`retain.serving.selection`).
- **Experiment tallies** of a list's control groups: per action, decile and group (treatment
  or control), the customers and the sums and sums of squares of their realised churn and
  retained margin after the cutoff, from which :mod:`retain.serving.experiment` computes
  treated-minus-control effects.
- **Cost events**: the cost to serve, one row per cost: the ``costs`` log's rows and the
  costs ``retain.yaml`` configures per order, return, share of an order's amount and
  interaction type. ``outcomes`` adds ``future_cost`` and ``future_profit`` (margin - cost).
- **Profit and loss** of each customer known at a cutoff: revenue, margin, cost to serve by
  kind, acquisition cost, profit to date, months to pay back the acquisition cost, and the
  realised value of the customers they referred.

Time semantics (ARCHITECTURE.md): cutoffs are midnights, so windows are compared on calendar
days, as epoch-day integers (``date(timestamp)`` against the cutoff's day), never on an engine's
timestamp differences (DuckDB's ``DATE_DIFF`` and Spark's ``DATEDIFF`` disagree by a day). Sums
of money are accumulated as integers of millionths, exact in any order, so both engines give the
same numbers to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from retain.engines.layout import KEY, MICRO, epoch_day

__all__ = [
    "ASSIGNED",
    "COST_KINDS",
    "OUTCOMES",
    "PNL_COLUMNS",
    "TRANSACTION_COST_KINDS",
    "RANKING_INPUTS",
    "SPLIT",
    "TALLIED",
    "CAMPAIGN_COLUMNS",
    "active_customers",
    "assignments_arrow",
    "campaign_cutoffs",
    "campaign_rows",
    "check_cost_kinds",
    "class_counts",
    "cost_events",
    "column_profile",
    "cutoff_counts",
    "discount_factors",
    "cutoffs_table",
    "experiment_tallies",
    "finish_campaign_cutoffs",
    "finish_class_counts",
    "finish_column_profile",
    "finish_cutoff_counts",
    "finish_experiment_tallies",
    "finish_margin_share",
    "finish_tallies",
    "margin_share",
    "outcomes",
    "population",
    "profit_and_loss",
    "tallies",
    "training_rows",
]

#: Columns of the campaigns log that :func:`campaign_rows` keeps.
CAMPAIGN_COLUMNS = ("campaign_id", "action", "group", "cost")
#: Label columns of :func:`outcomes`.
OUTCOMES = ("future_orders", "future_spend", "future_margin", "future_cost", "future_profit",
            "churned")  # fmt: skip
#: Kinds of configured cost (``retain.yaml`` ``costs:``) charged on transactions; every other
#: configured kind is an interaction type.
TRANSACTION_COST_KINDS = ("order", "return", "payment", "shipping")
#: Cost kinds the profit and loss shows in columns of their own (``cost_<kind>``); the known
#: kinds of the data contract's ``costs`` table. Any other kind is in ``cost_other``.
COST_KINDS = ("order", "fulfilment", "shipping", "payment", "return", "return_processing",
              "support_ticket", "complaint", "campaign_contact")  # fmt: skip
#: Columns of :func:`profit_and_loss`, in order.
PNL_COLUMNS = (KEY, "as_of", "acquisition_channel", "region", "referred_by", "tenure_months",
               "orders", "returns", "revenue", "margin",
               *[f"cost_{kind}" for kind in COST_KINDS], "cost_other", "cost_to_serve",
               "acquisition_cost", "profit_to_date", "payback_months", "referrals",
               "influence_realised")  # fmt: skip
#: Days of a month in months to pay back and tenure (a year's mean month).
MONTH_DAYS = 365.25 / 12
#: Column of :func:`training_rows` telling ``train`` from ``validation`` rows.
SPLIT = "split"
#: Columns of a scored list the driver collects to select, rank and hold out control groups
#: (blocked on the ranks and the churn probability).
RANKING_INPUTS = (KEY, "expected_net_gain", "value_at_risk", "action_cost", "recommended_action",
                  "churn_probability")  # fmt: skip
#: Columns of a ranked list :func:`tallies` reads.
TALLIED = ("selected", "recommended_action", "value_at_risk", "clv", "expected_net_gain",
           "action_cost", "group")  # fmt: skip
#: Columns of the assignments :func:`experiment_tallies` reads.
ASSIGNED = (KEY, "action", "decile", "group")

AS_OF = "as_of"
DAY = "_day"
CUTOFF_DAY = "_cutoff_day"


# --------------------------------------------------------------------------- helpers


def cutoffs_table(cutoffs: date | Sequence[date]) -> ir.Table:
    """The cutoffs as an in-memory table: ``as_of`` (date) and its epoch day."""
    days = sorted({cutoffs} if isinstance(cutoffs, date) else set(cutoffs))
    return ibis.memtable(
        pd.DataFrame({AS_OF: days, CUTOFF_DAY: [epoch_day(day) for day in days]}),
        schema={AS_OF: "date", CUTOFF_DAY: "int64"},
    )


def _days(transactions: ir.Table) -> ir.Table:
    """The transactions with the epoch day of their timestamp."""
    return transactions.mutate(**{DAY: transactions.timestamp.date().epoch_days()})


def _exact(value: ir.NumericValue) -> ir.IntegerValue:
    """``value`` in integer millionths (summed exactly, whatever the order)."""
    return (value * MICRO).round().cast(dt.int64)


#: The type of an exact total: DuckDB sums BIGINT into a 128-bit integer; a cast to this type
#: (which Ibis tells from ``int64``) makes it a BIGINT again, as Spark's sum is.
TOTAL = dt.Int64(nullable=False)


def _total(values: ir.IntegerValue, where: ir.BooleanValue | None = None) -> ir.IntegerValue:
    """The sum of integers (of millionths) as a BIGINT; missing when there is no value."""
    return values.sum(where=where).cast(TOTAL)


def _from_exact(total: ir.Value) -> ir.FloatingValue:
    return total.fill_null(0).cast(dt.float64) / MICRO


def _margin(transactions: ir.Table, margin_rate: float) -> ir.FloatingValue:
    """A transaction's margin: its own, else ``amount * margin_rate``."""
    return transactions.margin.fill_null(transactions.amount * margin_rate)


# --------------------------------------------------------------------------- labels


def active_customers(transactions: ir.Table, cutoffs: ir.Table, active_days: int) -> ir.Table:
    """Customers with a purchase in the ``active_days`` before each cutoff.

    Parameters
    ----------
    transactions : ibis.Table
        Canonical transactions (``customer_id``, ``timestamp``, ``amount``).
    cutoffs : ibis.Table
        From :func:`cutoffs_table`.
    active_days : int
        Lookback in days.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``as_of`` (date): one row per active customer and cutoff, unordered.
    """
    events = _days(transactions)
    events = events.filter(events.amount > 0)
    joined = events.join(
        cutoffs,
        [events[DAY] < cutoffs[CUTOFF_DAY], events[DAY] >= cutoffs[CUTOFF_DAY] - active_days],
    )
    return joined.select(KEY, AS_OF).distinct()


def _future(
    transactions: ir.Table,
    cutoffs: ir.Table,
    horizon_days: int,
    margin_rate: float,
    discount_rate_monthly: float = 0.0,
) -> ir.Table:
    """Per cutoff and customer with a transaction in ``[as_of, as_of + horizon_days)``:
    ``orders`` (purchases), ``spend`` and ``margin`` (net, in millionths; discounted monthly
    when ``discount_rate_monthly`` is not 0, see :func:`experiment_tallies`)."""
    events = _days(transactions)
    window = events.join(
        cutoffs,
        [events[DAY] >= cutoffs[CUTOFF_DAY], events[DAY] < cutoffs[CUTOFF_DAY] + horizon_days],
    )
    margin = _margin(window, margin_rate)
    if discount_rate_monthly:
        margin = margin * _discount(window[DAY] - window[CUTOFF_DAY], horizon_days,
                                    discount_rate_monthly)  # fmt: skip
    return window.group_by([AS_OF, KEY]).aggregate(
        orders=_total((window.amount > 0).cast(dt.int64)),
        spend=_total(_exact(window.amount)),
        margin=_total(_exact(margin)),
    )


def discount_factors(horizon_days: int, rate_monthly: float) -> list[float]:
    """The discount factor of each day ``0..horizon_days-1`` after a cutoff: ``1 / (1 +
    rate) ** m``, ``m`` the month (:data:`MONTH_DAYS` days, 1-based) holding the middle of
    the day, as the CLV's monthly schedule discounts (``retain.models.clv.discount_schedule``:
    month ``m`` covers days ``((m - 1) x MONTH_DAYS, m x MONTH_DAYS]``)."""
    return [1.0 / (1.0 + rate_monthly) ** (math.floor((day + 0.5) / MONTH_DAYS) + 1)
            for day in range(horizon_days)]  # fmt: skip


def _discount(days: ir.IntegerValue, horizon_days: int, rate_monthly: float) -> ir.FloatingValue:
    """:func:`discount_factors` of a day offset, as literals (the same doubles on every
    engine, so the exact sums agree): one case per month."""
    factors = discount_factors(horizon_days, rate_monthly)
    months: dict[float, int] = {}  # factor -> first day of its month
    for day, factor in enumerate(factors):
        months.setdefault(factor, day)
    bounds = sorted(months.items(), key=lambda item: item[1])
    branches = [(days < start_next, factor) for (factor, _), (_, start_next)
                in zip(bounds, bounds[1:], strict=False)]  # fmt: skip
    return ibis.cases(*branches, else_=bounds[-1][0]) if branches else ibis.literal(bounds[0][0])


def outcomes(
    transactions: ir.Table,
    cutoffs: ir.Table,
    *,
    horizon_days: int,
    active_days: int,
    margin_rate: float = 0.3,
    costs: ir.Table | None = None,
) -> ir.Table:
    """Labels of the customers active at each cutoff, from the window after it.

    Parameters
    ----------
    transactions : ibis.Table
        Canonical transactions (``customer_id``, ``timestamp``, ``amount``, ``margin``).
    cutoffs : ibis.Table
        From :func:`cutoffs_table`.
    horizon_days : int
        Label window length: ``[as_of, as_of + horizon_days)``.
    active_days : int
        Lookback that defines the population (see :func:`active_customers`).
    margin_rate : float, default=0.3
        Margin as a share of the amount where a transaction has no ``margin``.
    costs : ibis.Table, optional
        :func:`cost_events`; without, no cost (``future_cost`` 0).

    Returns
    -------
    ibis.Table
        ``customer_id``, ``as_of`` (date) and :data:`OUTCOMES` (``int32``, ``float64``,
        ``float64``, ``float64``, ``float64``, ``boolean``), unordered. ``future_profit`` is
        ``future_margin - future_cost``, computed exactly.
    """
    future = _future(transactions, cutoffs, horizon_days, margin_rate)
    active = active_customers(transactions, cutoffs, active_days)
    joined = active.left_join(future, [AS_OF, KEY])
    if costs is not None:
        charged = costs.join(
            cutoffs,
            [costs[DAY] >= cutoffs[CUTOFF_DAY], costs[DAY] < cutoffs[CUTOFF_DAY] + horizon_days],
        )
        charged = charged.group_by([AS_OF, KEY]).aggregate(cost=_total(charged.cost))
        joined = joined.left_join(charged, [AS_OF, KEY])
        cost = joined.cost.fill_null(0)
    else:
        cost = ibis.literal(0, type=dt.int64)
    orders = joined.orders.fill_null(0)
    margin = joined.margin.fill_null(0)
    return joined.select(
        joined[KEY],
        joined[AS_OF],
        future_orders=orders.cast(dt.int32),
        future_spend=_from_exact(joined.spend),
        future_margin=_from_exact(margin),
        future_cost=_from_exact(cost),
        future_profit=_from_exact(margin - cost),
        churned=orders == 0,
    )


def margin_share(transactions: ir.Table, before: date, margin_rate: float) -> ir.Table:
    """Net margin and gross spend of the transactions before ``before``, in millionths (one
    row; see :func:`finish_margin_share`). Returns lower the margin but not the gross spend, as
    in the BTYD spend model.

    The sums are exact, hence the same on every engine and in every run (a sum of floats is
    not: DuckDB's parallel sum of the 20,000-customer world's margins gave two different
    results in eight runs).
    """
    events = _days(transactions)
    events = events.filter(events[DAY] < epoch_day(before))
    return events.aggregate(
        margin=_total(_exact(_margin(events, margin_rate))),
        spend=_total(_exact(events.amount), where=events.amount > 0),
    )


def finish_margin_share(row: Mapping[str, Any], margin_rate: float) -> float:
    """The share from :func:`margin_share`'s row: ``margin_rate`` without gross spend."""
    margin, spend = int(row["margin"] or 0), int(row["spend"] or 0)
    return margin / spend if spend else float(margin_rate)  # a ratio of exact integers


# --------------------------------------------------------------------------- costs and profit


def check_cost_kinds(rates: Mapping[str, float], logged: Sequence[str]) -> None:
    """Refuse a kind both configured (``rates``, see
    :meth:`retain.workspace.CostSettings.rates`) and in the ``costs`` log (``logged``: its
    distinct kinds): it would be counted twice."""
    both = sorted(set(rates) & {str(kind) for kind in logged})
    if both:
        from retain.errors import ConfigError

        raise ConfigError(
            f"retain.yaml: 'costs' configures {', '.join(map(repr, both))}, which the costs "
            "table logs too; each kind would be counted twice. Set them to 0 in retain.yaml "
            "(the log is the better record) or drop them from the costs table"
        )


def cost_events(
    transactions: ir.Table,
    interactions: ir.Table,
    costs: ir.Table,
    rates: Mapping[str, float],
) -> ir.Table:
    """Every cost of serving a customer: the ``costs`` log and the configured costs.

    Parameters
    ----------
    transactions, interactions : ibis.Table
        Canonical transactions and interactions.
    costs : ibis.Table
        The canonical ``costs`` log (``customer_id``, ``timestamp``, ``kind``, ``amount``).
    rates : mapping of str to float
        Configured cost per kind (:meth:`retain.workspace.CostSettings.rates`): ``order`` per
        order, ``return`` per return, ``payment`` and ``shipping`` as shares of an order's
        amount, any other kind per interaction of that type.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``_day`` (epoch day), ``kind`` and ``cost`` (integer millionths,
        each event's cost rounded to a millionth), unordered.
    """

    def rows(table: ir.Table, kind: ir.StringValue | str, cost: ir.NumericValue) -> ir.Table:
        return table.select(
            table[KEY].cast(dt.string).name(KEY),
            table.timestamp.date().epoch_days().cast(dt.int64).name(DAY),
            ibis.literal(kind, type=dt.string).name("kind")
            if isinstance(kind, str)
            else kind.cast(dt.string).name("kind"),
            _exact(cost).name("cost"),
        )

    parts = [rows(costs, costs.kind, costs.amount)]
    orders = transactions.filter(transactions.amount > 0)
    for kind, rate in rates.items():
        if kind in ("order", "return"):
            chosen = orders if kind == "order" else transactions.filter(transactions.amount < 0)
            parts.append(rows(chosen, kind, ibis.literal(float(rate))))
        elif kind in ("payment", "shipping"):
            parts.append(rows(orders, kind, orders.amount * float(rate)))
        else:
            typed = interactions.filter(interactions.type == kind)
            parts.append(rows(typed, kind, ibis.literal(float(rate))))
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def profit_and_loss(
    customers: ir.Table,
    transactions: ir.Table,
    costs: ir.Table,
    as_of: date,
    margin_rate: float = 0.3,
) -> ir.Table:
    """Each customer's profit and loss before ``as_of``.

    A customer counts from the earlier of their signup day and first transaction day, and is
    in the result when that day is before ``as_of``'s. Everything before ``as_of`` counts
    (``timestamp < as_of``, by day), so the result is point in time.

    Parameters
    ----------
    customers, transactions : ibis.Table
        Canonical customers and transactions.
    costs : ibis.Table
        :func:`cost_events`.
    as_of : date
        The cutoff.
    margin_rate : float, default=0.3
        Margin as a share of the amount where a transaction has no ``margin``.

    Returns
    -------
    ibis.Table
        :data:`PNL_COLUMNS`, unordered: the customer's attributes; ``tenure_months`` (from
        their first day to ``as_of``, months of 365.25 / 12 days); ``orders`` and
        ``returns`` (counts); ``revenue`` (net of returns) and ``margin``; the cost to serve
        by kind (``cost_<kind>`` for :data:`COST_KINDS`, ``cost_other`` for any other) and in
        total; ``acquisition_cost`` (missing counts as 0); ``profit_to_date`` = margin -
        cost to serve - acquisition cost; ``payback_months``: the months (counted from the
        first day, the first month being 1) by whose end margin - cost to serve had first
        reached the acquisition cost, 0 without acquisition cost, missing while not paid
        back; ``referrals``: customers they referred known at ``as_of``, and
        ``influence_realised``: those customers' profit to date. Money is summed exactly
        (integer millionths) and is the same on every engine.
    """
    cutoff = epoch_day(as_of)
    sales = _days(transactions)
    sales = sales.filter(sales[DAY] < cutoff)
    spent = costs.filter(costs[DAY] < cutoff)

    first_sale = sales.group_by(KEY).aggregate(_first_sale=sales[DAY].min())
    # buyers missing from customers (tables given in memory; a folder's reader adds them)
    keys = ibis.union(customers.select(KEY), first_sale.select(KEY), distinct=True)
    people = keys.left_join(customers, KEY).left_join(first_sale, KEY)
    signup = people.signup_date.date().epoch_days().cast(dt.int64)
    start = ibis.least(signup, people._first_sale)  # least ignores a missing value
    people = people.select(
        people[KEY], people.acquisition_channel, people.region, people.referred_by,
        _start=start, _acquisition=_exact(people.acquisition_cost.fill_null(0.0)),
    )  # fmt: skip
    people = people.filter(people._start < cutoff)

    totals = sales.group_by(KEY).aggregate(
        orders=_total((sales.amount > 0).cast(dt.int64)),
        returns=_total((sales.amount < 0).cast(dt.int64)),
        _revenue=_total(_exact(sales.amount)),
        _margin=_total(_exact(_margin(sales, margin_rate))),
    )
    bucket = ibis.cases(*[(spent.kind == kind, kind) for kind in COST_KINDS], else_="other")
    by_kind = spent.group_by(KEY).aggregate(
        **{f"_cost_{kind}": _total(spent.cost, where=bucket == kind)
           for kind in (*COST_KINDS, "other")},
        _cost=_total(spent.cost),
    )  # fmt: skip

    # months to pay back: margin less cost, by month since the customer's first day
    flows = ibis.union(
        sales.select(KEY, DAY, _flow=_exact(_margin(sales, margin_rate))),
        spent.select(KEY, DAY, _flow=-spent.cost),
        distinct=False,
    )
    flows = flows.join(people.select(KEY, "_start", "_acquisition"), KEY)
    month = ((flows[DAY] - flows._start).cast(dt.float64) / MONTH_DAYS).floor().cast(dt.int64)
    monthly = flows.mutate(_month=ibis.greatest(month, 0))
    monthly = monthly.group_by([KEY, "_month", "_acquisition"]).aggregate(
        _flow=_total(monthly._flow)
    )
    running = monthly._flow.sum().over(ibis.cumulative_window(group_by=KEY, order_by="_month"))
    monthly = monthly.mutate(_running=running.cast(TOTAL))
    paid = monthly.filter(monthly._running >= monthly._acquisition)
    paid = paid.group_by(KEY).aggregate(_paid_month=paid._month.min())

    pnl = people.left_join(totals, KEY).left_join(by_kind, KEY).left_join(paid, KEY)
    margin = pnl._margin.fill_null(0)
    cost = pnl._cost.fill_null(0)
    profit = margin - cost - pnl._acquisition
    payback = ibis.ifelse(pnl._acquisition <= 0, 0, pnl._paid_month + 1)
    pnl = pnl.select(
        pnl[KEY],
        as_of=ibis.literal(as_of, type=dt.date),
        acquisition_channel=pnl.acquisition_channel,
        region=pnl.region,
        referred_by=pnl.referred_by,
        tenure_months=(cutoff - pnl._start).cast(dt.float64) / MONTH_DAYS,
        orders=pnl.orders.fill_null(0).cast(dt.int64),
        returns=pnl.returns.fill_null(0).cast(dt.int64),
        revenue=_from_exact(pnl._revenue),
        margin=_from_exact(margin),
        **{f"cost_{kind}": _from_exact(pnl[f"_cost_{kind}"]) for kind in (*COST_KINDS, "other")},
        cost_to_serve=_from_exact(cost),
        acquisition_cost=_from_exact(pnl._acquisition),
        profit_to_date=_from_exact(profit),
        payback_months=payback.cast(dt.float64),
        _profit=profit,
    )
    referred = pnl.filter(pnl.referred_by.notnull())
    influence = referred.group_by(referred.referred_by.name(KEY)).aggregate(
        referrals=referred.count().cast(dt.int64), _influence=_total(referred._profit)
    )
    pnl = pnl.left_join(influence, KEY)
    return pnl.select(
        *[pnl[name] for name in PNL_COLUMNS[:-2]],
        referrals=pnl.referrals.fill_null(0),
        influence_realised=_from_exact(pnl._influence),
    )


# --------------------------------------------------------------------------- training rows


def training_rows(
    labels: ir.Table,
    snapshots: ir.Table,
    features: Sequence[str],
    validation: Sequence[date],
) -> ir.Table:
    """The outcomes of the customers active at each cutoff with their features, and the split.

    Parameters
    ----------
    labels : ibis.Table
        :func:`outcomes`.
    snapshots : ibis.Table
        Snapshot rows: the key, ``as_of`` (a timestamp at midnight) and ``features``.
    features : sequence of str
        Feature columns kept.
    validation : sequence of date
        Cutoffs of the validation rows; the others train.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``as_of`` (date), ``features``, :data:`OUTCOMES` and ``split``
        (``"train"`` or ``"validation"``), unordered. A customer active at a cutoff but absent
        from its snapshot has missing features.
    """
    snapshot = snapshots.select(KEY, snapshots[AS_OF].cast(dt.date).name(AS_OF), *features)
    joined = labels.left_join(snapshot, [KEY, AS_OF])
    split = ibis.ifelse(joined[AS_OF].isin(list(validation)), "validation", "train")
    return joined.select(
        joined[KEY], joined[AS_OF], *[joined[name] for name in features],
        *[joined[name] for name in OUTCOMES], split.name(SPLIT),
    )  # fmt: skip


def cutoff_counts(rows: ir.Table) -> ir.Table:
    """Rows and churn rate per cutoff (see :func:`finish_cutoff_counts`)."""
    return rows.group_by(AS_OF).aggregate(
        rows=rows.count(), churn_rate=rows.churned.cast(dt.float64).mean()
    )


def finish_cutoff_counts(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`cutoff_counts`' result indexed by cutoff (a date), in date order."""
    days = [pd.Timestamp(day).date() for day in table[AS_OF]]
    counts = pd.DataFrame(
        {
            "rows": table["rows"].to_numpy("int64"),
            "churn_rate": table["churn_rate"].to_numpy(float),
        },
        index=pd.Index(days, name=AS_OF, dtype=object),
    )
    return counts.sort_index()


def column_profile(
    rows: ir.Table,
    features: Sequence[str],
    vocabularies: Mapping[str, Sequence[str]],
    split: str | None = "train",
) -> ir.Table:
    """Per feature, its non-missing values and smallest and largest one (one row; see
    :func:`finish_column_profile`), of the ``split`` rows (every row with ``None``).

    A value outside an attribute's declared vocabulary counts as missing, as models see it
    (:func:`retain.features.categorical`).
    """
    if split is not None:
        rows = rows.filter(rows[SPLIT] == split)
    aggregates = {}
    for index, name in enumerate(features):
        column = rows[name]
        if name in vocabularies:
            column = ibis.ifelse(column.isin(list(vocabularies[name])), column, ibis.null())
        aggregates.update(
            {f"n{index}": column.count(), f"lo{index}": column.min(), f"hi{index}": column.max()}
        )
    return rows.aggregate(**aggregates)


def finish_column_profile(row: Mapping[str, Any], features: Sequence[str]) -> pd.DataFrame:
    """``present`` and ``distinct`` (counted up to two: a column has two distinct values
    exactly when its smallest and largest differ) per feature, from :func:`column_profile`."""
    present = [int(row[f"n{index}"]) for index in range(len(features))]
    distinct = [
        0 if not present[index] else 1 if row[f"lo{index}"] == row[f"hi{index}"] else 2
        for index in range(len(features))
    ]
    return pd.DataFrame({"present": present, "distinct": distinct}, index=list(features))


def class_counts(rows: ir.Table, label: str) -> ir.Table:
    """Rows and positives of a 0/1 ``label`` per split (see :func:`finish_class_counts`)."""
    return rows.group_by(SPLIT).aggregate(
        rows=rows.count(), positives=_total(rows[label].cast(dt.int64))
    )


def finish_class_counts(found: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """``{"train": (positives, negatives), "validation": (...)}`` from :func:`class_counts`."""
    by_split = {row[SPLIT]: (int(row["positives"] or 0), int(row["rows"])) for row in found}
    counts = {}
    for name in ("train", "validation"):
        positives, total = by_split.get(name, (0, 0))
        counts[name] = positives, total - positives
    return counts


# --------------------------------------------------------------------------- campaigns


def campaign_cutoffs(campaigns: ir.Table) -> ir.Table:
    """Each campaign's cutoff and size: the day of its first contact, its enrolled rows.

    A campaign's cutoff is the midnight starting the day of its first row (contact or hold
    out): its features see only events before any contact, and its outcome window starts with
    the first contact. A campaign spread over several days keeps the cutoff of its first day.

    Parameters
    ----------
    campaigns : ibis.Table
        The canonical campaigns log (``customer_id``, ``timestamp``, ``campaign_id``,
        ``action``, ``group``, ``cost``).

    Returns
    -------
    ibis.Table
        ``campaign_id``, ``as_of`` (date), ``last_day`` (date of its last row), ``rows``,
        ``treated`` and ``control`` (counts of rows), unordered.
    """
    day = campaigns.timestamp.date()
    return campaigns.group_by("campaign_id").aggregate(
        **{AS_OF: day.min()},
        last_day=day.max(),
        rows=campaigns.count(),
        treated=_total((campaigns.group == "treatment").cast(dt.int64)),
        control=_total((campaigns.group == "control").cast(dt.int64)),
    )


def finish_campaign_cutoffs(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`campaign_cutoffs`' result with dates as ``datetime.date`` and counts as
    integers, in cutoff and campaign order."""
    frame = pd.DataFrame(
        {
            "campaign_id": table["campaign_id"].astype(str).to_numpy(object),
            AS_OF: [pd.Timestamp(day).date() for day in table[AS_OF]],
            "last_day": [pd.Timestamp(day).date() for day in table["last_day"]],
            **{name: table[name].fillna(0).to_numpy("int64") for name in
               ("rows", "treated", "control")},
        }
    )  # fmt: skip
    return frame.sort_values([AS_OF, "campaign_id"], ignore_index=True)


def campaign_rows(
    campaigns: ir.Table,
    labels: ir.Table,
    snapshots: ir.Table,
    features: Sequence[str],
    validation: Sequence[date],
) -> ir.Table:
    """The enrolled customers of each campaign, with their outcomes after its cutoff and their
    features at it: the rows uplift models learn from.

    Parameters
    ----------
    campaigns : ibis.Table
        The canonical campaigns log.
    labels : ibis.Table
        :func:`outcomes` at the campaigns' cutoffs (:func:`campaign_cutoffs`).
    snapshots : ibis.Table
        Snapshot rows at those cutoffs: the key, ``as_of`` (a timestamp at midnight) and
        ``features``.
    features : sequence of str
        Feature columns kept.
    validation : sequence of date
        Cutoffs of the validation campaigns; the others train.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``as_of`` (date), :data:`CAMPAIGN_COLUMNS`, ``features``,
        :data:`OUTCOMES` and ``split``, unordered. Enrolled customers not active at the cutoff
        (no outcome row: outside the population a list scores) are left out; a customer
        absent from the snapshot has missing features.
    """
    cutoffs = campaign_cutoffs(campaigns).select("campaign_id", AS_OF)
    enrolled = campaigns.join(cutoffs, "campaign_id").select(KEY, AS_OF, *CAMPAIGN_COLUMNS)
    snapshot = snapshots.select(KEY, snapshots[AS_OF].cast(dt.date).name(AS_OF), *features)
    joined = enrolled.join(labels, [KEY, AS_OF]).left_join(snapshot, [KEY, AS_OF])
    split = ibis.ifelse(joined[AS_OF].isin(list(validation)), "validation", "train")
    return joined.select(
        joined[KEY], joined[AS_OF], *[joined[name] for name in CAMPAIGN_COLUMNS],
        *[joined[name] for name in features], *[joined[name] for name in OUTCOMES],
        split.name(SPLIT),
    )  # fmt: skip


# --------------------------------------------------------------------------- lists


def population(snapshot: ir.Table, active_days: int, active: ir.Table | None = None) -> ir.Table:
    """The snapshot's customers active at its cutoff.

    With the repository's ``recency_days`` defined as days since the last purchase (see
    :func:`retain.serving.population.recency_is_purchase_recency`), ``recency_days <=
    active_days`` holds exactly for them: ``as_of`` is a midnight, so a purchase is at or after
    ``as_of - active_days`` exactly when its date is, and the feature counts days between
    dates. Otherwise pass ``active`` (:func:`active_customers` at the cutoff).
    """
    if active is None:
        return snapshot.filter(snapshot.recency_days <= active_days)
    return snapshot.semi_join(active.select(KEY), KEY)


def tallies(listing: ir.Table) -> tuple[ir.Table, ir.Table]:
    """The counts and totals of a ranked list (one row), and the selected customers per
    action (see :func:`finish_tallies`).

    Totals are exact sums of the values in millionths, so every engine gives the same
    ``summary.json``; missing values (and NaN) count as 0. ``expected_net_gain`` counts only
    positive gains: what the list could gain at most.
    """

    def exact(value: ir.FloatingValue) -> ir.IntegerValue:
        present = ibis.ifelse(value.isnull() | value.isnan(), 0.0, value)
        return _total(_exact(present))

    chosen = listing.selected
    gain = listing.expected_net_gain
    held_out = chosen & (listing.group == "control").fill_null(False)
    totals = listing.aggregate(
        rows=listing.count(),
        selected=_total(chosen.cast(dt.int64)),
        value_at_risk=exact(listing.value_at_risk),
        clv=exact(listing.clv),
        expected_net_gain=exact(ibis.greatest(gain, 0.0)),
        selected_value_at_risk=exact(ibis.ifelse(chosen, listing.value_at_risk, 0.0)),
        selected_expected_net_gain=exact(ibis.ifelse(chosen, gain, 0.0)),
        selected_cost=exact(ibis.ifelse(chosen, listing.action_cost, 0.0)),
        control=_total(held_out.cast(dt.int64)),
        contacted_cost=exact(ibis.ifelse(chosen & ~held_out, listing.action_cost, 0.0)),
    )
    selected = listing.filter(chosen)
    by_action = selected.group_by("recommended_action").aggregate(count=selected.count())
    return totals, by_action


def finish_tallies(totals: Mapping[str, Any], by_action: pd.DataFrame) -> dict[str, dict]:
    """``counts`` and ``totals`` of ``summary.json`` from :func:`tallies`' results; actions
    by count, then name."""
    actions = sorted(
        zip(by_action["recommended_action"], by_action["count"], strict=True),
        key=lambda item: (-int(item[1]), str(item[0])),
    )
    rows = int(totals["rows"] or 0)
    counts = {
        "customers_active": rows,
        "scored": rows,
        "selected": int(totals["selected"] or 0),
        "control": int(totals["control"] or 0),
        "contacted": int(totals["selected"] or 0) - int(totals["control"] or 0),
        "by_action": {str(name): int(count) for name, count in actions},
    }
    names = ("value_at_risk", "clv", "expected_net_gain", "selected_value_at_risk",
             "selected_expected_net_gain", "selected_cost", "contacted_cost")  # fmt: skip
    return {"counts": counts, "totals": {name: int(totals[name] or 0) / MICRO for name in names}}


# --------------------------------------------------------------------------- experiments


def experiment_tallies(
    transactions: ir.Table,
    assignments: ir.Table,
    as_of: date,
    *,
    churn_days: int,
    margin_days: int,
    margin_rate: float = 0.3,
    discount_rate_monthly: float = 0.0,
) -> ir.Table:
    """Realised outcomes of a list's experiment, summed per action, decile and group.

    Parameters
    ----------
    transactions : ibis.Table
        Canonical transactions.
    assignments : ibis.Table
        :data:`ASSIGNED`: each selected customer's ``action``, ``decile`` (of the selected
        customers by rank) and ``group`` (``treatment`` or ``control``).
    as_of : datetime.date
        The list's cutoff: outcomes come from the windows after it.
    churn_days, margin_days : int
        ``churned``: no purchase in ``[as_of, as_of + churn_days)``; ``margin``: the net
        margin in ``[as_of, as_of + margin_days)`` (as :func:`outcomes` defines them). Every
        assigned customer counts, with or without transactions after the cutoff.
    margin_rate : float, default=0.3
        As in :func:`outcomes`.
    discount_rate_monthly : float, default=0.0
        Discount the margin as the CLV is (:func:`discount_factors`): a transaction on day
        ``d`` after the cutoff (0 = ``as_of``) counts ``1 / (1 + rate) ** m``, ``m`` the month
        (of 365.25 / 12 days, 1-based) holding the middle of that day; 0 adds the margin as it
        is.

    Returns
    -------
    ibis.Table
        ``action``, ``decile``, ``group``, ``customers``, ``churned_sum`` (churners; 0/1, so
        also the sum of squares), ``margin_sum`` (exact, in millionths) and
        ``margin_squares`` (float), unordered.
    """
    cutoffs = cutoffs_table(as_of)
    churn = _future(transactions, cutoffs, churn_days, margin_rate)
    value = _future(transactions, cutoffs, margin_days, margin_rate, discount_rate_monthly)
    joined = assignments.left_join(churn.select(KEY, "orders"), KEY).left_join(
        value.select(KEY, total="margin"), KEY
    )
    rows = joined.select(
        joined[KEY],
        joined.action,
        joined.decile,
        joined.group,
        churned=(joined.orders.fill_null(0) == 0).cast(dt.int64),
        exact=joined.total.fill_null(0),
    )
    margin = rows.exact.cast(dt.float64) / MICRO
    return rows.group_by(["action", "decile", "group"]).aggregate(
        customers=rows.count(),
        churned_sum=_total(rows.churned),
        margin_sum=_total(rows.exact),
        margin_squares=(margin * margin).sum(),
    )


def assignments_arrow(assignments: pd.DataFrame) -> pa.Table:
    """A list's assignments (:data:`ASSIGNED`) as Arrow with fixed types, as every engine
    reads them (an empty frame has no types to infer)."""
    return pa.table(
        {
            KEY: pa.array(assignments[KEY].astype(str).tolist(), pa.string()),
            "action": pa.array(assignments["action"].astype(str).tolist(), pa.string()),
            "decile": pa.array(assignments["decile"].to_numpy("int64"), pa.int64()),
            "group": pa.array(assignments["group"].astype(str).tolist(), pa.string()),
        }
    )


def finish_experiment_tallies(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`experiment_tallies`' result ordered by action, decile and group, the margin
    sum in currency; ``churned_squares`` added (equal to ``churned_sum``)."""
    frame = table.copy()
    frame["customers"] = frame["customers"].astype("int64")
    frame["churned_sum"] = frame["churned_sum"].fillna(0).astype(float)
    frame["churned_squares"] = frame["churned_sum"]
    frame["margin_sum"] = frame["margin_sum"].fillna(0).astype("int64") / MICRO
    frame["margin_squares"] = frame["margin_squares"].fillna(0.0).astype(float)
    frame["decile"] = frame["decile"].astype("int64")
    return frame.sort_values(["action", "decile", "group"], kind="stable").reset_index(drop=True)
