"""Whom to contact, and in which order: the list's selection and its ranks.

**Selection.** Choose customers ``x_i in {0, 1}`` to maximise the total expected net gain
``sum g_i x_i`` subject to ``sum x_i <= capacity`` and ``sum c_i x_i <= budget`` (either limit
may be absent): a knapsack with a cardinality limit. Only customers with a positive gain can
be worth their action, so only they are candidates.

- Capacity alone: the ``capacity`` largest gains are optimal. Neither limit: every candidate.
  If the budget is given but the top gains within the capacity fit in it, they are optimal too.
- Otherwise the budget binds and :func:`select` uses the linear-programming (LP) relaxation
  through its Lagrangian dual. For a price ``lam >= 0`` per unit of cost, the customer's
  reduced gain is ``r_i = g_i - lam c_i`` and

      D(lam) = lam * budget + sum of the ``capacity`` largest positive ``r_i``

  is an upper bound on every feasible selection's gain (weak duality; the capacity's own price
  is the ``capacity``-th largest ``r_i``). ``D`` is convex in ``lam``, and its minimum is the
  LP optimum (the subproblem has integral vertices), so the bound is found by bisection on
  ``lam`` with a sort-free partition per step: ``O(n)`` per step, no generic LP solver on a
  million variables. The selection is then a greedy repair: customers by reduced gain at the
  best ``lam`` (also by gain, and by gain per unit of cost; the best of the three), each taken
  when it still fits both limits, then one-for-one exchanges that gain within the budget left
  (the LP solution has at most two fractional customers, so the repair usually needs one).
  ``D`` says how much could still be missing: ``summary.json`` reports the LP bound and the
  gap.
- A gap left is closed where that is cheap. Any customer whose reduced gain lies farther than
  the gap from the capacity's price must keep the LP's choice in any better selection
  (reduced-cost fixing), so only the few near the price are open; when at most
  :data:`CORE_MAX` are, scipy's ``milp`` (HiGHS) solves that small problem exactly and the
  selection is optimal.

**Rank** (1 = contact first): the selected customers in contact order (by expected net gain),
then the customers with a positive gain that the limits left out (by gain: the next to add
with more capacity or budget), then everyone else (no action pays off for them) by value at
risk, so the list is never ordered by action cost. Ties: value at risk, then customer id.

Both engines call these functions on the driver's id, gain, value-at-risk and cost columns,
so a list is selected and ranked the same way whatever computed it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CORE_MAX",
    "Selection",
    "no_gain_advice",
    "rank_and_select",
    "rank_order",
    "select",
    "selection_summary",
]

#: At most this many undecided customers are solved exactly after the greedy repair.
CORE_MAX = 2_000
#: Branch-and-bound nodes the exact step may use (a node limit, unlike a time limit, keeps the
#: result the same on a busy machine).
CORE_NODES = 20_000
#: Most one-for-one exchanges tried after the greedy repair.
SWAP_ROUNDS = 100
#: Share of a limit below which it counts as mostly unused (a note says why).
MOSTLY_UNUSED = 0.5
#: Value-at-risk percentiles compared with the cheapest action when no gain is positive.
PERCENTILES = (50, 90, 99, 100)


@dataclass(frozen=True)
class Selection:
    """The customers chosen for contact and how good the choice provably is.

    Attributes
    ----------
    chosen : ndarray of bool
        One flag per customer, in the input order.
    capacity, budget : int or float or None
        The limits applied.
    candidates : int
        Customers with a positive expected net gain.
    gain, cost : float
        Total expected net gain and cost of the chosen customers.
    bound : float
        An upper bound on the gain of any selection within the limits (the LP bound where a
        budget binds, else the gain itself).
    method : str
        ``none`` (no candidate), ``all``, ``top_gain``, ``lagrangian`` (LP bound and greedy
        repair) or ``lagrangian+exact`` (the undecided core solved exactly).
    optimal : bool
        Whether the selection is proven optimal.
    binding : tuple of str
        The limits that stop the selection from taking more (``capacity``, ``budget``).
    """

    chosen: np.ndarray
    capacity: int | None
    budget: float | None
    candidates: int
    gain: float
    cost: float
    bound: float
    method: str
    optimal: bool
    binding: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        """Customers chosen."""
        return int(self.chosen.sum())

    @property
    def gap(self) -> float:
        """``bound - gain``: how much more any selection could gain, at most."""
        return max(0.0, self.bound - self.gain)

    @property
    def relative_gap(self) -> float:
        """:attr:`gap` as a share of :attr:`bound` (0 when the bound is 0)."""
        return self.gap / self.bound if self.bound > 0 else 0.0


def _tolerance(budget: float) -> float:
    return 1e-9 * max(1.0, abs(budget)) if np.isfinite(budget) else 0.0


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest values, ties broken by position (sorted by position)."""
    if k >= len(values):
        return np.arange(len(values))
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    above = np.flatnonzero(values > threshold)
    equal = np.flatnonzero(values == threshold)[: k - len(above)]
    return np.sort(np.concatenate([above, equal]))


def _greedy(order: np.ndarray, cost: np.ndarray, capacity: int, budget: float) -> np.ndarray:
    """Take customers in ``order`` while they fit: each round takes the longest prefix within
    the budget left, then drops the customers too dear for what remains."""
    tolerance = _tolerance(budget)
    taken, left_count, left_budget, rest = [], capacity, budget, order
    while left_count > 0 and rest.size:
        rest = rest[cost[rest] <= left_budget + tolerance]
        if not rest.size:
            break
        spent = np.cumsum(cost[rest])
        n = min(int(np.searchsorted(spent, left_budget + tolerance, side="right")), left_count)
        taken.append(rest[:n])
        left_count -= n
        left_budget -= float(spent[n - 1])
        rest = rest[n:]
    return np.concatenate(taken) if taken else np.empty(0, dtype=np.intp)


def _swap(chosen: np.ndarray, gain, cost, budget: float, rounds: int = SWAP_ROUNDS):
    """Improve ``chosen`` (positions) by exchanging one customer for another, best exchange
    first, while one gains within the budget left (the count stays the same)."""
    tolerance = _tolerance(budget)
    taken = np.zeros(len(gain), dtype=bool)
    taken[chosen] = True
    for _ in range(rounds):
        inside = np.flatnonzero(taken)
        if not inside.size:
            break
        slack = budget - float(cost[inside].sum())
        outside = np.flatnonzero(~taken & (gain > gain[inside].min()))
        if not outside.size:
            break
        # for an outsider j: the cheapest-gain insider i with cost[i] >= cost[j] - slack
        by_cost = inside[np.argsort(cost[inside], kind="stable")]
        weakest = np.minimum.accumulate(gain[by_cost][::-1])[::-1]
        where = np.searchsorted(cost[by_cost], cost[outside] - slack - tolerance, side="left")
        fits = where < len(by_cost)
        outside, where = outside[fits], where[fits]
        if not outside.size:
            break
        improvement = gain[outside] - weakest[where]
        best = int(np.argmax(improvement))
        if improvement[best] <= 1e-12 * max(1.0, abs(float(gain[inside].sum()))):
            break
        tail = by_cost[where[best] :]
        out = tail[int(np.argmin(gain[tail]))]
        taken[out], taken[outside[best]] = False, True
    return np.flatnonzero(taken)


def _by(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """Positions sorted by the keys (the first key first), all descending, ties by position."""
    return np.lexsort((np.arange(len(keys[0])), *(-key for key in reversed(keys))))


@dataclass
class _Dual:
    """The Lagrangian bound at a price per unit of cost."""

    price: float
    bound: float
    cost: float
    threshold: float  # the capacity's price: the capacity-th largest positive reduced gain


def _dual(price: float, gain, cost, capacity: int, budget: float) -> _Dual:
    reduced = gain - price * cost
    positive = np.flatnonzero(reduced > 0)
    if len(positive) > capacity:
        keep = positive[_top(reduced[positive], capacity)]
        threshold = float(reduced[keep].min())
    else:
        keep, threshold = positive, 0.0
    total = float(reduced[keep].sum())
    return _Dual(price, price * budget + total, float(cost[keep].sum()), threshold)


def _lagrangian(gain, cost, capacity: int, budget: float) -> _Dual:
    """The price minimising the dual bound (bisection on the sign of its slope)."""
    priced = cost > 0
    low, high = 0.0, float(np.max(gain[priced] / cost[priced])) * (1 + 1e-12) + 1e-300
    best = min(
        _dual(low, gain, cost, capacity, budget),
        _dual(high, gain, cost, capacity, budget),
        key=lambda d: d.bound,
    )
    slope = budget + float(cost.sum())  # |dD/dprice| never exceeds this
    for _ in range(200):
        if (high - low) * slope <= 1e-12 * max(abs(best.bound), 1.0):
            break
        middle = 0.5 * (low + high)
        dual = _dual(middle, gain, cost, capacity, budget)
        if dual.bound < best.bound:
            best = dual
        if dual.cost > budget:
            low = middle
        else:
            high = middle
    return best


def _exact_core(gain, cost, capacity, budget, dual: _Dual, chosen: np.ndarray, core_max: int):
    """Improve ``chosen`` (positions) by solving the undecided customers exactly.

    Returns the positions and whether they are proven optimal.
    """
    value = float(gain[chosen].sum())
    slack = dual.bound - value
    tolerance = 1e-9 * max(abs(dual.bound), 1.0)
    if slack <= tolerance:
        return chosen, True
    deviation = gain - dual.price * cost - dual.threshold
    fixed_in = np.flatnonzero(deviation >= slack)
    open_ = np.flatnonzero(np.abs(deviation) < slack)
    left_count = capacity - len(fixed_in)
    left_budget = budget - float(cost[fixed_in].sum())
    if left_count < 0 or left_budget < -_tolerance(budget):
        return chosen, True  # no selection keeps every forced customer: none beats ``chosen``
    if len(open_) > core_max:
        return chosen, False
    if len(open_) == 0:
        return chosen, True
    from scipy.optimize import Bounds, LinearConstraint, milp

    rows = np.vstack([np.ones(len(open_)), cost[open_]])
    with _quiet_stdout():
        result = milp(
            -gain[open_],
            integrality=np.ones(len(open_)),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(rows, -np.inf, [left_count, left_budget]),
            options={"node_limit": CORE_NODES, "mip_rel_gap": 1e-9},
        )
    if result.x is None:
        return chosen, result.status == 2  # infeasible: nothing beats ``chosen``
    picked = open_[result.x > 0.5]
    candidate = np.sort(np.concatenate([fixed_in, picked]))
    fits = len(candidate) <= capacity and cost[candidate].sum() <= budget + _tolerance(budget)
    if fits and gain[candidate].sum() > value + tolerance:
        chosen = candidate
    return chosen, result.status == 0


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence the process's standard output (HiGHS sometimes prints a debugging line from C)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def select(
    gain: np.ndarray,
    cost: np.ndarray,
    *,
    capacity: int | None,
    budget: float | None,
    core_max: int = CORE_MAX,
) -> Selection:
    """The customers to contact: the most total expected net gain within both limits.

    Parameters
    ----------
    gain : array of float
        Expected net gain per customer (expected incremental margin - cost).
    cost : array of float
        Cost of each customer's action (at least 0).
    capacity : int or None
        Most customers to contact.
    budget : float or None
        Most total cost.
    core_max : int, default=CORE_MAX
        Most undecided customers solved exactly after the greedy repair (0: never).

    Returns
    -------
    Selection
        The chosen customers, their totals, the LP bound and whether the choice is optimal.
    """
    gain, cost = np.asarray(gain, dtype=float), np.asarray(cost, dtype=float)
    if gain.shape != cost.shape or gain.ndim != 1:
        raise ValueError(f"gain and cost must be 1-d of one length, got {gain.shape} {cost.shape}")
    if capacity is not None and capacity < 0:
        raise ValueError(f"capacity must be at least 0, got {capacity}")
    if budget is not None and not budget >= 0:
        raise ValueError(f"budget must be at least 0, got {budget}")
    worth = np.flatnonzero(np.isfinite(gain) & (gain > 0) & np.isfinite(cost) & (cost >= 0))
    g, c = gain[worth], cost[worth]
    count = len(worth) if capacity is None else min(int(capacity), len(worth))
    limit = np.inf if budget is None else float(budget)

    def finish(positions, bound, method, optimal, binding=()) -> Selection:
        chosen = np.zeros(len(gain), dtype=bool)
        chosen[worth[positions]] = True
        total = float(g[positions].sum())
        return Selection(chosen, capacity, budget, len(worth), total, float(c[positions].sum()),
                         max(float(bound), total), method, bool(optimal), binding)  # fmt: skip

    if count == 0:
        return finish(np.empty(0, dtype=np.intp), 0.0, "none", True)
    top = _top(g, count)
    if c[top].sum() <= limit + _tolerance(limit):
        method = "all" if count == len(worth) else "top_gain"
        binding = ("capacity",) if count < len(worth) else ()
        return finish(top, float(g[top].sum()), method, True, binding)
    dual = _lagrangian(g, c, count, limit)
    orders = (
        _by((g - dual.price * c, g)),
        _by((g,)),
        _by((g / np.maximum(c, 1e-300), g)),
    )
    best = max((_greedy(order, c, count, limit) for order in orders), key=lambda p: g[p].sum())
    best = _swap(best, g, c, limit)
    binding = ("budget", "capacity") if len(best) == count else ("budget",)
    if core_max <= 0:
        return finish(np.sort(best), dual.bound, "lagrangian", False, binding)
    greedy = np.sort(best)
    improved, optimal = _exact_core(g, c, count, limit, dual, greedy, core_max)
    method = "lagrangian+exact" if improved is not greedy else "lagrangian"
    optimal = optimal or dual.bound - g[improved].sum() <= 1e-9 * max(dual.bound, 1.0)
    return finish(improved, dual.bound, method, optimal, binding)


def rank_order(
    gain: np.ndarray, value_at_risk: np.ndarray, ids: np.ndarray, chosen: np.ndarray
) -> np.ndarray:
    """Row order of the list (see the module docstring): selected customers by gain, then the
    others with a positive gain by gain, then the rest by value at risk; ties by value at risk,
    then id. Missing numbers sort last."""
    gain = np.asarray(gain, dtype=float)
    risk = np.asarray(value_at_risk, dtype=float)
    chosen = np.asarray(chosen, dtype=bool)
    positive = np.isfinite(gain) & (gain > 0)
    group = np.where(chosen, 0, np.where(positive, 1, 2))
    primary = np.where(group < 2, -gain, -risk)
    return np.lexsort((np.asarray(ids), -risk, primary, group))


def rank_and_select(
    ids: np.ndarray,
    gain: np.ndarray,
    value_at_risk: np.ndarray,
    cost: np.ndarray,
    *,
    capacity: int | None,
    budget: float | None,
) -> tuple[np.ndarray, Selection]:
    """:func:`select` within the limits, then :func:`rank_order`: the list's row order and the
    selection (flags in the input order)."""
    selection = select(gain, cost, capacity=capacity, budget=budget)
    return rank_order(gain, value_at_risk, ids, selection.chosen), selection


def _money(value: float, currency: str) -> str:
    decimals = 0 if abs(value) >= 100 else 2
    return f"{value:,.{decimals}f} {currency}".strip()


def no_gain_advice(
    value_at_risk: np.ndarray, actions: Mapping[str, tuple[float, float]], currency: str = ""
) -> dict[str, Any]:
    """Why no action pays off: the cheapest action's break-even value at risk against the
    value-at-risk percentiles of the list.

    Parameters
    ----------
    value_at_risk : array of float
        Every customer's value at risk.
    actions : mapping of str to (cost, save_rate)
        The playbook's actions.
    currency : str, default=""
        Currency code for the sentence.
    """
    risk = np.asarray(value_at_risk, dtype=float)
    risk = risk[np.isfinite(risk)]
    percentiles = {f"p{p}": float(np.percentile(risk, p)) for p in PERCENTILES} if risk.size else {}
    name, (cost, save_rate) = min(actions.items(), key=lambda item: (item[1][0], item[0]))
    break_even = cost / save_rate if save_rate > 0 else float("inf")
    spread = ", ".join(
        f"{_money(percentiles[f'p{p}'], currency)} at the "
        + ("maximum" if p == 100 else "median" if p == 50 else f"{p}th percentile")
        for p in PERCENTILES
        if f"p{p}" in percentiles
    )
    message = (
        f"no customer has a positive expected net gain: the cheapest action, {name} "
        f"({_money(cost, currency)}, saving {save_rate:.0%}), pays off only from a value at "
        f"risk of {_money(break_even, currency)}; value at risk is {spread}. The list is "
        "ranked by value at risk; lower the action costs in the playbook to select customers"
    )
    return {
        "cheapest_action": name,
        "cost": cost,
        "save_rate": save_rate,
        "break_even_value_at_risk": break_even,
        "value_at_risk_percentiles": percentiles,
        "message": message,
    }


def _notes(selection: Selection) -> list[str]:
    """Sentences for a limit that is mostly unused, each with the reason."""
    notes: list[str] = []
    if selection.candidates == 0:
        return notes  # no_gain_advice says why
    exhausted = selection.count == selection.candidates
    why_all = (
        f"only {selection.candidates:,} customers have a positive expected net gain, and all "
        "are selected"
    )
    if selection.capacity and selection.count < MOSTLY_UNUSED * selection.capacity:
        reason = why_all if exhausted else "the budget runs out first"
        notes.append(
            f"{selection.capacity - selection.count:,} of the capacity of "
            f"{selection.capacity:,} customers left unused: {reason}"
        )
    if selection.budget and selection.cost < MOSTLY_UNUSED * selection.budget:
        reason = why_all if exhausted else "the capacity is reached first"
        notes.append(
            f"{selection.budget - selection.cost:,.2f} of the budget of "
            f"{selection.budget:,.2f} left unused: {reason}"
        )
    return notes


def selection_summary(
    selection: Selection,
    value_at_risk: np.ndarray,
    actions: Mapping[str, tuple[float, float]],
    currency: str = "",
) -> dict[str, Any]:
    """The ``selection`` entry of ``summary.json``: limits, totals, the LP bound and gap, how
    much of each limit is used, notes on unused limits, and the advice when no gain is
    positive."""
    summary: dict[str, Any] = {
        "capacity": selection.capacity,
        "budget": selection.budget,
        "selected": selection.count,
        "cost": selection.cost,
        "expected_net_gain": selection.gain,
        "candidates": selection.candidates,
        "method": selection.method,
        "lp_bound": selection.bound,
        "optimality_gap": selection.gap,
        "optimality_gap_share": selection.relative_gap,
        "optimal": selection.optimal,
        "binding": list(selection.binding),
        "capacity_used_share": (
            selection.count / selection.capacity if selection.capacity else None
        ),
        "budget_used_share": selection.cost / selection.budget if selection.budget else None,
        "notes": _notes(selection),
    }
    if selection.candidates == 0 and len(value_at_risk) and actions:
        advice = no_gain_advice(value_at_risk, actions, currency)
        summary["no_positive_gain"] = advice
        summary["notes"].insert(0, advice["message"])
    return summary
