"""The oracle: exact expected behaviour of simulated customers given their latent state.

Models cannot know a customer's latent state, only the history it produced; the oracle knows
it. Its predictions are the conditional expectations given the true state at ``as_of``
(not given the future dropout time), so no model can beat them on average: they are the
ceiling against which churn and CLV models are judged.

Given the state at ``as_of`` (Engaged, Disengaging or Dead), the simulator's latent chain is
propagated day by day with its exact daily transition matrix (a phase-type lifetime, as in
the Markov-chain view of customer dropout; cf. Fader & Hardie's BTYD models, where the death
process is the only unobserved part). Orders on day ``d`` are Poisson with mean
``lambda * s(d) * m(state)``, so

* ``expected_purchases = lambda * sum_d s(d) * (P_E(d) + m_D * P_D(d))``;
* ``p_no_purchase = E[exp(-lambda * sum_d s(d) m(state_d))]``, computed with the same forward
  recursion on probabilities weighted by each day's no-purchase probability;
* ``expected_spend = expected_purchases * E[order value] * (1 - expected return share)``;
  returns are attributed to their order and treated in expectation, whenever they happen;
* ``expected_margin = expected_spend * margin_rate``.

Worlds simulated with options add to this (each exact through the same recursion):

* retention campaigns: the state at ``as_of`` and any protection still in force come from
  the truth's ``path_*`` columns; :func:`oracle_uplift` propagates the chain with and without
  a contact at ``as_of`` (the contact's effect at the next midnight: rescue, push, protection);
* costs: ``expected_cost_to_serve = expected_purchases * cost_per_order + E[engaged days] *
  service_cost_rate + E[disengaging days] * service_cost_rate_disengaging + horizon *
  contact_cost_rate``, and ``expected_profit = expected_margin - expected_cost_to_serve``;
* referrals: :func:`oracle_influence` sums the expectations of the customers each one referred.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from retain.data._sim_latent import daily_transition_probabilities
from retain.data._sim_params import default_params
from retain.data._sim_time import seasonality
from retain.errors import ConfigError

__all__ = ["oracle", "oracle_influence", "oracle_uplift"]

STATES = np.array(["engaged", "disengaging", "dead"])
_TRUTH_COLUMNS = (
    "customer_id",
    "birth",
    "disengage_time",
    "dropout_time",
    "purchase_rate",
    "expected_order_value",
    "expected_return_share",
    "margin_rate",
    "kappa",
    "mu",
    "delta",
)
_PATH_COLUMNS = ("path_start", "path_state", "path_kappa_factor", "path_factor_until")
_COST_COLUMNS = (
    "cost_per_order",
    "service_cost_rate",
    "service_cost_rate_disengaging",
    "contact_cost_rate",
)
_EFFECT_PREFIXES = ("rescue_", "push_", "kappa_factor_")


def _midnight(value: str | date | pd.Timestamp, name: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if stamp != stamp.normalize():
        raise ConfigError(f"{name} must be a date (a midnight), got {value!r}")
    return stamp.as_unit("us")


def _simulation_info(truth: pd.DataFrame, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters and history bounds: from arguments, else the truth's attrs, else defaults."""
    stored = truth.attrs.get("simulation", {})
    return {
        "params": params if params is not None else stored.get("params", default_params()),
        "start": stored.get("start"),
        "end": stored.get("end"),
    }


@dataclass(frozen=True)
class _Chain:
    """Daily transition probabilities of the latent chain, in the form the recursion uses."""

    stay_engaged: np.ndarray
    engaged_to_disengaging: np.ndarray
    engaged_to_dead: np.ndarray
    leave_disengaging: np.ndarray
    stay_disengaging: np.ndarray

    @classmethod
    def from_hazards(cls, kappa: np.ndarray, mu: np.ndarray, delta: np.ndarray) -> _Chain:
        leave_engaged, to_disengaging, leave_disengaging = daily_transition_probabilities(
            kappa, mu, delta
        )
        engaged_to_d = leave_engaged * to_disengaging
        return cls(
            1.0 - leave_engaged,
            engaged_to_d,
            leave_engaged - engaged_to_d,
            leave_disengaging,
            1.0 - leave_disengaging,
        )

    def where(self, condition: np.ndarray, other: _Chain) -> _Chain:
        """This chain where ``condition`` holds, ``other`` elsewhere."""
        return _Chain(
            *(
                np.where(condition, getattr(self, name), getattr(other, name))
                for name in self.__dataclass_fields__
            )
        )


@dataclass(frozen=True)
class _Paths:
    """Expectations over the horizon from one run of the recursion."""

    purchases: np.ndarray
    p_no_purchase: np.ndarray
    engaged_days: np.ndarray
    disengaging_days: np.ndarray


def _forward(
    rate: np.ndarray,
    state: np.ndarray,
    season: np.ndarray,
    disengaged_multiplier: float,
    day_chain: Callable[[int], _Chain],
    jump: tuple[np.ndarray, np.ndarray] | None = None,
) -> _Paths:
    """Propagate the latent chain over the horizon; expected orders, P(no order), state days.

    ``p_*`` are state probabilities; ``w_*`` the same probabilities weighted by the chance of
    no order so far. The chain moves at midnights, after each day's orders, with the
    probabilities ``day_chain(day)``. ``jump = (rescue, push)`` acts after the first midnight
    (a contact on the first day): disengaging mass returns to engaged with probability
    ``rescue``, engaged mass moves to disengaging with probability ``push``.
    """
    p_engaged = (state == 0).astype(np.float64)
    p_disengaging = (state == 1).astype(np.float64)
    w_engaged, w_disengaging = p_engaged.copy(), p_disengaging.copy()
    w_dead = (state == 2).astype(np.float64)
    orders = np.zeros(rate.size)
    engaged_days, disengaging_days = np.zeros(rate.size), np.zeros(rate.size)
    for day, level in enumerate(season):
        chain = day_chain(day)
        orders += level * (p_engaged + disengaged_multiplier * p_disengaging)
        engaged_days += p_engaged
        disengaging_days += p_disengaging
        w_engaged *= np.exp(-rate * level)
        w_disengaging *= np.exp(-rate * (disengaged_multiplier * level))
        w_dead += w_engaged * chain.engaged_to_dead + w_disengaging * chain.leave_disengaging
        w_engaged, w_disengaging = (
            w_engaged * chain.stay_engaged,
            w_engaged * chain.engaged_to_disengaging + w_disengaging * chain.stay_disengaging,
        )
        p_engaged, p_disengaging = (
            p_engaged * chain.stay_engaged,
            p_engaged * chain.engaged_to_disengaging + p_disengaging * chain.stay_disengaging,
        )
        if day == 0 and jump is not None:
            rescue, push = jump
            p_engaged, p_disengaging = (
                p_engaged * (1.0 - push) + p_disengaging * rescue,
                p_disengaging * (1.0 - rescue) + p_engaged * push,
            )
            w_engaged, w_disengaging = (
                w_engaged * (1.0 - push) + w_disengaging * rescue,
                w_disengaging * (1.0 - rescue) + w_engaged * push,
            )
    return _Paths(
        rate * orders,
        np.clip(w_engaged + w_disengaging + w_dead, 0.0, 1.0),
        engaged_days,
        disengaging_days,
    )


@dataclass(frozen=True)
class _Setting:
    """What every oracle needs: customers born before the cutoff, their state and chain."""

    born: pd.DataFrame
    cutoff: pd.Timestamp
    params: Mapping[str, Any]
    state: np.ndarray
    chain: _Chain
    protected_chain: _Chain  # kappa times the protection factor in force at the cutoff
    protected_days: np.ndarray  # days from the cutoff on which that protection still runs
    season: np.ndarray
    horizon_days: int

    def natural_day(self, day: int) -> _Chain:
        """The chain on ``day`` without a new contact."""
        protected = day < self.protected_days
        if not protected.any():
            return self.chain
        return self.protected_chain.where(protected, self.chain)

    def run(self, day_chain: Callable[[int], _Chain] | None = None, jump=None) -> _Paths:
        return _forward(
            self.born["purchase_rate"].to_numpy(np.float64),
            self.state,
            self.season,
            float(self.params["purchases"]["disengaged_multiplier"]),
            day_chain or self.natural_day,
            jump,
        )


def _flatten(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Values of a column of lists (arrays per row, as Parquet gives them) and row offsets."""
    lengths = np.fromiter((len(values) for values in column), dtype=np.int64, count=len(column))
    offsets = np.zeros(len(column) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    values = np.concatenate([np.asarray(values) for values in column]) if len(column) else []
    return np.asarray(values), offsets


def _state_from_path(
    born: pd.DataFrame, cutoff64: np.datetime64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State, protection factor and protected days at the cutoff from the ``path_*`` lists."""
    starts, offsets = _flatten(born["path_start"])
    if len(starts) == 0:
        return np.zeros(0, np.int64), np.ones(0), np.zeros(0, np.int64)
    starts = starts.astype("datetime64[us]")
    passed = np.concatenate(([0], np.cumsum(starts <= cutoff64)))
    count = passed[offsets[1:]] - passed[offsets[:-1]]
    if np.any(count < 1):
        raise ConfigError("the truth's path_start does not begin at birth for every customer")
    current = offsets[:-1] + count - 1
    state = _flatten(born["path_state"])[0].astype(np.int64)[current]
    factor = _flatten(born["path_kappa_factor"])[0].astype(np.float64)[current]
    until = _flatten(born["path_factor_until"])[0].astype("datetime64[us]")[current]
    known = ~np.isnat(until)
    days = np.zeros(until.size, dtype=np.int64)
    days[known] = np.maximum((until[known] - cutoff64) // np.timedelta64(1, "D"), 0)
    return state, factor, days


def _setting(
    truth: pd.DataFrame,
    as_of: str | date | pd.Timestamp,
    horizon_days: int,
    start: str | date | None,
    params: Mapping[str, Any] | None,
) -> _Setting:
    missing = [name for name in _TRUTH_COLUMNS if name not in truth.columns]
    if missing:
        raise ConfigError(f"the truth table lacks columns: {', '.join(missing)}")
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ConfigError(f"horizon_days must be a positive whole number, got {horizon_days!r}")
    info = _simulation_info(truth, params)
    cutoff = _midnight(as_of, "as_of")
    first = start if start is not None else info["start"]
    if first is not None and cutoff < _midnight(first, "start"):
        raise ConfigError(f"as_of {cutoff.date()} is before the start of history ({first})")
    if info["end"] is not None and cutoff > _midnight(info["end"], "end"):
        raise ConfigError(f"as_of {cutoff.date()} is after the end of history ({info['end']})")
    world = info["params"]
    if "retention" in world and not set(_PATH_COLUMNS) <= set(truth.columns):
        raise ConfigError(
            "this world had retention campaigns but the truth lacks its path columns "
            f"({', '.join(_PATH_COLUMNS)}): pass the whole truth table"
        )

    born = truth.loc[truth["birth"].to_numpy() < cutoff.to_datetime64()]
    cutoff64 = cutoff.to_datetime64()
    kappa = born["kappa"].to_numpy(np.float64)
    mu, delta = born["mu"].to_numpy(np.float64), born["delta"].to_numpy(np.float64)
    if "path_start" in born.columns:
        state, factor, protected_days = _state_from_path(born, cutoff64)
    else:
        dropout = born["dropout_time"].to_numpy()
        disengage = born["disengage_time"].to_numpy()
        alive = np.isnat(dropout) | (dropout > cutoff64)
        disengaging = alive & ~np.isnat(disengage) & (disengage <= cutoff64)
        state = np.where(alive, np.where(disengaging, 1, 0), 2)
        factor, protected_days = np.ones(len(born)), np.zeros(len(born), dtype=np.int64)

    days = np.datetime64(cutoff.date(), "D") + np.arange(int(horizon_days))
    chain = _Chain.from_hazards(kappa, mu, delta)
    protected = _Chain.from_hazards(kappa * factor, mu, delta) if protected_days.any() else chain
    return _Setting(
        born=born,
        cutoff=cutoff,
        params=world,
        state=state,
        chain=chain,
        protected_chain=protected,
        protected_days=protected_days,
        season=seasonality(days, world["seasonality"]),
        horizon_days=int(horizon_days),
    )


def _money(setting: _Setting, paths: _Paths) -> dict[str, np.ndarray]:
    """Spend, margin and (where the truth has costs) cost to serve and profit of a run."""
    born = setting.born
    spend = (
        paths.purchases
        * born["expected_order_value"].to_numpy(np.float64)
        * (1.0 - born["expected_return_share"].to_numpy(np.float64))
    )
    money = {"spend": spend, "margin": spend * born["margin_rate"].to_numpy(np.float64)}
    if set(_COST_COLUMNS) <= set(born.columns):
        rates = {name: born[name].to_numpy(np.float64) for name in _COST_COLUMNS}
        cost = (
            paths.purchases * rates["cost_per_order"]
            + paths.engaged_days * rates["service_cost_rate"]
            + paths.disengaging_days * rates["service_cost_rate_disengaging"]
            + setting.horizon_days * rates["contact_cost_rate"]
        )
        money.update(cost_to_serve=cost, profit=money["margin"] - cost)
    return money


def oracle(
    truth: pd.DataFrame,
    as_of: str | date | pd.Timestamp,
    horizon_days: int,
    start: str | date | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Exact expected purchases, spend and margin over ``[as_of, as_of + horizon_days)``.

    Parameters
    ----------
    truth : pandas.DataFrame
        The world's truth table (``World.truth`` or ``truth.parquet`` read back with pandas,
        which restores the simulation parameters into ``attrs``).
    as_of : str, datetime.date or pandas.Timestamp
        Cutoff, a midnight inside the simulated history (at most its end).
    horizon_days : int
        Length of the horizon in days.
    start : str or datetime.date, optional
        First day of the simulated history, to check ``as_of`` against; defaults to the one
        stored in ``truth.attrs``.
    params : mapping, optional
        World parameters (``World.params``) when ``truth`` carries none in its ``attrs``;
        otherwise the simulator's defaults are used.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, for customers who signed up before ``as_of``: ``alive``
        (bool, latent state at ``as_of``), ``state`` (engaged, disengaging or dead),
        ``p_no_purchase``, ``expected_purchases``, ``expected_spend``, ``expected_margin``;
        in a world with costs also ``expected_cost_to_serve`` and ``expected_profit``
        (margin minus cost to serve). In a world with retention campaigns the state and any
        protection in force come from the truth's path; no further contact is assumed.

    Raises
    ------
    ConfigError
        If ``as_of`` is not a midnight or lies outside the history, ``horizon_days < 1``, or
        ``truth`` lacks a needed column.
    """
    setting = _setting(truth, as_of, horizon_days, start, params)
    paths = setting.run()
    money = _money(setting, paths)
    columns = {
        "alive": setting.state != 2,
        "state": pd.array(STATES[setting.state], dtype="str"),
        "p_no_purchase": paths.p_no_purchase,
        "expected_purchases": paths.purchases,
        "expected_spend": money["spend"],
        "expected_margin": money["margin"],
    }
    if "cost_to_serve" in money:
        columns.update(
            expected_cost_to_serve=money["cost_to_serve"], expected_profit=money["profit"]
        )
    return pd.DataFrame(columns, index=pd.Index(setting.born["customer_id"], name="customer_id"))


def oracle_uplift(
    truth: pd.DataFrame,
    as_of: str | date | pd.Timestamp,
    horizon_days: int,
    actions: Sequence[str] | None = None,
    start: str | date | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """True effect of contacting each customer with each action at ``as_of``, exactly.

    The contact happens on the day ``as_of`` (as a campaign dated ``as_of``); its effect on
    the latent chain comes at the next midnight, as in the simulator: a disengaging customer
    returns to engaged with probability ``rescue_<action>``, an engaged one moves to
    disengaging with probability ``push_<action>``, and whoever is engaged after it has
    kappa multiplied by ``kappa_factor_<action>`` for the action's protection days (replacing
    a protection in force). Without the action, any protection in force runs on. No other
    contact is assumed within the horizon, so the effect of a campaign dated ``as_of``
    equals the expected difference treated minus control when the next campaign comes after
    the horizon.

    Parameters
    ----------
    truth : pandas.DataFrame
        The truth of a world simulated with campaigns.
    as_of : str, datetime.date or pandas.Timestamp
        Day of the contact (a midnight inside the history).
    horizon_days : int
        Length of the outcome window ``[as_of, as_of + horizon_days)``.
    actions : sequence of str, optional
        Actions to evaluate; default: every action of the world's campaigns.
    start, params : optional
        As for :func:`oracle`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(customer_id, action)`` for customers born before ``as_of``: ``state``,
        ``p_no_purchase_without``, ``p_no_purchase_with``, ``churn_effect`` (with minus
        without: negative when the contact prevents churn), ``expected_margin_without``,
        ``expected_margin_with``, ``incremental_margin``, ``action_cost``,
        ``expected_net_gain`` (incremental margin minus action cost); in a world with costs
        also ``expected_cost_to_serve_without``/``_with``, ``incremental_cost_to_serve`` and
        ``incremental_profit`` (net gain minus the incremental cost to serve).

    Raises
    ------
    ConfigError
        As :func:`oracle`, and if the world had no campaigns or an action is unknown.
    """
    setting = _setting(truth, as_of, horizon_days, start, params)
    spec = setting.params.get("retention")
    known = list(spec["plan"]["actions"]) if spec else []
    if not spec or not all(f"{prefix}{known[0]}" in truth.columns for prefix in _EFFECT_PREFIXES):
        raise ConfigError(
            "the truth has no campaign effects: simulate the world with campaigns "
            "(simulate_world(campaigns=True) or retain simulate --campaigns)"
        )
    chosen = list(actions) if actions is not None else known
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown action(s) {', '.join(map(repr, unknown)) or 'none given'}; "
            f"the world's actions: {', '.join(known)}"
        )
    born = setting.born
    without = _money(setting, base := setting.run())
    frames = []
    for action in chosen:
        factor = born[f"kappa_factor_{action}"].to_numpy(np.float64)
        days = int(spec["actions"][action]["protect"]["days"])
        protected = _Chain.from_hazards(
            born["kappa"].to_numpy(np.float64) * factor,
            born["mu"].to_numpy(np.float64),
            born["delta"].to_numpy(np.float64),
        )

        def day_chain(day: int, protected: _Chain = protected, days: int = days) -> _Chain:
            if day == 0:
                return setting.natural_day(0)
            return protected if day <= days else setting.chain

        jump = (
            born[f"rescue_{action}"].to_numpy(np.float64),
            born[f"push_{action}"].to_numpy(np.float64),
        )
        treated = setting.run(day_chain, jump)
        with_action = _money(setting, treated)
        cost = float(spec["actions"][action]["cost"])
        columns = {
            "state": pd.array(STATES[setting.state], dtype="str"),
            "p_no_purchase_without": base.p_no_purchase,
            "p_no_purchase_with": treated.p_no_purchase,
            "churn_effect": treated.p_no_purchase - base.p_no_purchase,
            "expected_margin_without": without["margin"],
            "expected_margin_with": with_action["margin"],
            "incremental_margin": with_action["margin"] - without["margin"],
            "action_cost": np.full(len(born), cost),
            "expected_net_gain": with_action["margin"] - without["margin"] - cost,
        }
        if "cost_to_serve" in without:
            extra = with_action["cost_to_serve"] - without["cost_to_serve"]
            columns.update(
                expected_cost_to_serve_without=without["cost_to_serve"],
                expected_cost_to_serve_with=with_action["cost_to_serve"],
                incremental_cost_to_serve=extra,
                incremental_profit=columns["expected_net_gain"] - extra,
            )
        index = pd.MultiIndex.from_arrays(
            [born["customer_id"], pd.array([action] * len(born), dtype="str")],
            names=["customer_id", "action"],
        )
        frames.append(pd.DataFrame(columns, index=index))
    return pd.concat(frames).sort_index(level="customer_id", sort_remaining=False, kind="stable")


def oracle_influence(
    truth: pd.DataFrame,
    as_of: str | date | pd.Timestamp,
    horizon_days: int,
    start: str | date | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Each customer's influence: the expected value of the customers they referred.

    Parameters
    ----------
    truth : pandas.DataFrame
        The truth of a world simulated with referrals (it has ``referred_by``).
    as_of, horizon_days, start, params
        As for :func:`oracle`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` for customers born before ``as_of``: ``n_referred`` (their
        referred customers who joined before ``as_of``), ``referred_expected_margin`` (the
        sum of those customers' :func:`oracle` expected margin over the horizon) and, in a
        world with costs, ``referred_expected_profit``.

    Raises
    ------
    ConfigError
        As :func:`oracle`, and if the truth has no ``referred_by``.
    """
    if "referred_by" not in truth.columns:
        raise ConfigError(
            "the truth has no referred_by: simulate the world with referrals "
            "(simulate_world(referrals=True) or retain simulate --referrals)"
        )
    expected = oracle(truth, as_of, horizon_days, start, params)
    referrer = truth.set_index("customer_id")["referred_by"].reindex(expected.index)
    values = {"n_referred": pd.Series(1, index=expected.index)}
    values["referred_expected_margin"] = expected["expected_margin"]
    if "expected_profit" in expected.columns:
        values["referred_expected_profit"] = expected["expected_profit"]
    sums = pd.DataFrame(values)[referrer.notna().to_numpy()].groupby(referrer.dropna()).sum()
    result = sums.reindex(expected.index, fill_value=0)
    result["n_referred"] = result["n_referred"].astype(np.int64)
    return result
