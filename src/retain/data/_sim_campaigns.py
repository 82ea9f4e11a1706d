"""Retention campaigns of the simulated world: randomised experiments with known effects.

At each campaign date the eligible customers (by default those with an order in the
``active_days`` before it, the population retain scores) are randomly assigned to one of the
actions or to a control group. A treated customer is contacted during the campaign day; at the
following midnight (after that midnight's own transition of the chain) the contact acts on the
latent chain, depending on the customer's state and traits:

* dead: nothing happens;
* disengaging: with probability ``rescue`` the customer returns to engaged;
* engaged: with probability ``push`` the contact pushes them into disengaging ("sleeping
  dogs", Ascarza 2018); otherwise, as after a rescue, the hazard ``kappa`` of leaving the
  engaged state is multiplied by ``kappa_factor`` for the action's protection days.

A later contact's protection replaces an earlier one. Everything else about the chain stays
as it was, so from the midnight of the effect the path is drawn again with the changed
hazards (the sojourns are geometric, hence memoryless, so redrawing is exact). The per-customer
``rescue``, ``push`` and ``kappa_factor`` of every action are part of the truth; the oracle
(:func:`retain.data.oracle.oracle_uplift`) propagates the same chain exactly.

Ascarza (2018), "Retention Futility: Targeting High-Risk Customers Might Be Ineffective",
Journal of Marketing Research 55(1): the customers most at risk are not the ones a contact
saves, and a contact can make some customers leave. The effects here follow that: who responds
depends on traits (issue propensity for service recovery, price sensitivity for offers and
rewards, engagement and satisfaction for calls), not on risk itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

import numpy as np
from scipy import special

from retain.data._sim_events import (
    ResponseShifts,
    RetentionContacts,
    order_times,
    sort_by_owner,
)
from retain.data._sim_latent import Population, daily_transition_probabilities
from retain.data._sim_path import DEAD, DISENGAGING, ENGAGED, LatentPath
from retain.data._sim_time import SECONDS_PER_DAY, DailyIntensity, DiurnalClock
from retain.errors import ConfigError

__all__ = [
    "ACTIONS",
    "CampaignPlan",
    "CampaignRun",
    "Effects",
    "draw_traits",
    "effect_probabilities",
    "resolve_plan",
    "response_shifts",
    "run_campaigns",
]

#: The default playbook's actions (``serving/playbook.yaml``).
ACTIONS = (
    "service_recovery",
    "personal_call",
    "win_back_offer",
    "loyalty_reward",
    "reminder_email",
)
ELIGIBILITY = ("active", "all")


@dataclass(frozen=True)
class CampaignPlan:
    """When the simulated retention campaigns run, whom they enrol and how they split them.

    Parameters
    ----------
    dates : sequence of str or datetime.date, optional
        Campaign dates (midnights inside the history, before its last day). Default:
        ``count`` dates evenly spread from a year after the start (a third of the history if
        shorter) to 120 days before the end (a quarter of the history if shorter), so that
        a 90-day outcome window fits after the last one.
    count : int, default=4
        Number of campaigns when ``dates`` is not given.
    actions : sequence of str, default=ACTIONS
        Actions to try, among the simulator's (the default playbook's action names).
    control_share : float, default=0.2
        Share of the enrolled customers held out as control, in [0, 1).
    action_shares : mapping of str to float, optional
        Relative weights of the actions among the treated (default: equal). Control rows are
        labelled with an action drawn from the same weights (the one they were held out
        from), so each action has its own randomised control group.
    eligibility : {"active", "all"}, default="active"
        ``active``: customers with an order in the ``active_days`` before the campaign date
        (retain's scoring population); ``all``: every customer who has signed up, alive or not.
    active_days : int, default=365
        Look-back of ``active`` eligibility.
    reach : float, default=1.0
        Share of the eligible customers enrolled in each campaign, in (0, 1].
    size : int or None, default=None
        Most customers enrolled per campaign, treated and control together (e.g. a retention
        team's capacity, a few thousand contacts per campaign): when more are eligible (after
        ``reach``), a random sample of this many. ``None``: every eligible customer is
        randomised, as the experiments the uplift models learn from need most (see the
        README's uplift benchmark: at 5,000 a campaign the learned list loses most of its lead).
    """

    dates: Sequence[str | date] | None = None
    count: int = 4
    actions: Sequence[str] = ACTIONS
    control_share: float = 0.2
    action_shares: Mapping[str, float] | None = None
    eligibility: str = "active"
    active_days: int = 365
    reach: float = 1.0
    size: int | None = None


def _plan_from(value: bool | CampaignPlan | Mapping[str, Any]) -> CampaignPlan:
    if value is True:
        return CampaignPlan()
    if isinstance(value, CampaignPlan):
        return value
    if isinstance(value, Mapping):
        known = {field.name for field in fields(CampaignPlan)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"campaigns: unknown setting {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        return CampaignPlan(**value)
    raise ConfigError(f"campaigns must be True, a CampaignPlan or a mapping, got {value!r}")


def _as_day(value: str | date, first: date) -> int:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"campaigns: dates must be YYYY-MM-DD, got {value!r}") from None
    if hasattr(day, "date"):  # datetime or pandas.Timestamp
        day = day.date()
    return (day - first).days


def resolve_plan(
    value: bool | CampaignPlan | Mapping[str, Any], first: date, last: date
) -> dict[str, Any]:
    """Validate a campaign plan for the history ``[first, last)`` and spell it out.

    Returns
    -------
    dict
        JSON-serialisable: ``dates`` (ISO), ``actions``, ``action_shares`` (summing to one),
        ``control_share``, ``eligibility``, ``active_days``, ``reach``, ``size``.

    Raises
    ------
    ConfigError
        Naming the setting that is out of range or unknown.
    """
    plan = _plan_from(value)
    n_days = (last - first).days
    actions = [str(name) for name in plan.actions]
    unknown = [name for name in actions if name not in ACTIONS]
    if not actions or unknown or len(set(actions)) != len(actions):
        raise ConfigError(
            f"campaigns: actions must be distinct names among {', '.join(ACTIONS)}; "
            f"got {', '.join(actions) or 'none'}"
        )
    weights = dict(plan.action_shares or dict.fromkeys(actions, 1.0))
    if set(weights) != set(actions) or not all(
        np.isfinite(weights[name]) and weights[name] > 0 for name in actions
    ):
        raise ConfigError(
            "campaigns: action_shares must give a positive weight to each action "
            f"({', '.join(actions)}); got {weights}"
        )
    if not 0.0 <= plan.control_share < 1.0:
        raise ConfigError(f"campaigns: control_share must lie in [0, 1), got {plan.control_share}")
    if not 0.0 < plan.reach <= 1.0:
        raise ConfigError(f"campaigns: reach must lie in (0, 1], got {plan.reach}")
    if plan.size is not None and (int(plan.size) != plan.size or plan.size < 1):
        raise ConfigError(
            f"campaigns: size must be a positive whole number or None, got {plan.size!r}"
        )
    if plan.eligibility not in ELIGIBILITY:
        raise ConfigError(
            f"campaigns: eligibility must be one of {', '.join(ELIGIBILITY)}, "
            f"got {plan.eligibility!r}"
        )
    if int(plan.active_days) != plan.active_days or plan.active_days < 1:
        raise ConfigError(
            f"campaigns: active_days must be a positive whole number, got {plan.active_days!r}"
        )
    if plan.dates is not None:
        dates = [plan.dates] if isinstance(plan.dates, str | date) else plan.dates
        days = sorted({_as_day(value, first) for value in dates})
    else:
        if int(plan.count) != plan.count or plan.count < 1:
            raise ConfigError(
                f"campaigns: count must be a positive whole number, got {plan.count!r}"
            )
        begin = min(365, n_days // 3)
        end = n_days - min(120, n_days // 4)
        days = sorted({int(day) for day in np.linspace(begin, end, int(plan.count)).round()})
    if not days or days[0] < 1 or days[-1] > n_days - 2:
        raise ConfigError(
            f"campaigns: dates must lie from {first + timedelta(days=1)} to "
            f"{last - timedelta(days=2)} (a contact's effect starts the next midnight, inside "
            "the history); got " + ", ".join(str(first + timedelta(days=day)) for day in days)
        )
    total = sum(weights[name] for name in actions)
    return {
        "dates": [str(first + timedelta(days=day)) for day in days],
        "actions": actions,
        "action_shares": {name: weights[name] / total for name in actions},
        "control_share": float(plan.control_share),
        "eligibility": plan.eligibility,
        "active_days": int(plan.active_days),
        "reach": float(plan.reach),
        "size": None if plan.size is None else int(plan.size),
    }


def draw_traits(
    rng: np.random.Generator, population: Population, params: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Latent price sensitivity and contact aversion (roughly standard normal).

    Price sensitivity rises with the gamma-gamma scale (cheaper orders); contact aversion
    falls with engagement. Both show in the responses to promotional emails.
    """
    spec = params["retention"]["traits"]
    q, gamma = params["spend"]["q"], params["spend"]["gamma"]
    # log of a Gamma(q, rate gamma) variable has mean digamma(q) - log(gamma), variance trigamma(q)
    scale = np.log(population.spend_scale) - (special.digamma(q) - np.log(gamma))
    scale /= np.sqrt(special.polygamma(1, q))
    spend_r = spec["price_sensitivity_spend_correlation"]
    engagement_r = spec["contact_aversion_engagement_correlation"]
    noise = rng.standard_normal((2, population.size))
    return {
        "price_sensitivity": spend_r * scale + np.sqrt(1 - spend_r**2) * noise[0],
        "contact_aversion": engagement_r * population.engagement
        + np.sqrt(1 - engagement_r**2) * noise[1],
    }


def response_shifts(traits: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> ResponseShifts:
    """How the traits tilt opening and clicking promotional emails (their observable trace)."""
    spec = params["retention"]["responses"]
    return ResponseShifts(
        open=spec["open_contact_aversion"] * traits["contact_aversion"],
        click=spec["click_price_sensitivity"] * traits["price_sensitivity"],
    )


@dataclass(frozen=True)
class Effects:
    """Per action (rows, in ``actions`` order) and customer (columns): effect parameters."""

    actions: list[str]
    rescue: np.ndarray  # P(disengaging -> engaged)
    push: np.ndarray  # P(engaged -> disengaging)
    kappa_factor: np.ndarray  # multiplier of kappa during the protection
    protect_days: np.ndarray  # per action
    cost: np.ndarray  # per action
    channel: list[str]  # per action


def _response(spec: Mapping[str, Any], latent: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    exponent = np.full(size, float(spec["logit"]))
    for name, weight in spec["effects"].items():
        exponent += weight * latent[name]
    return spec["max"] * special.expit(exponent)


def effect_probabilities(
    population: Population,
    traits: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    actions: Sequence[str],
) -> Effects:
    """Each customer's rescue and push probabilities and protection factor per action."""
    spec = params["retention"]
    shape = params["dropout"]["delta_shape"]
    # How fast a disengaging customer fades: log delta standardised (delta is gamma).
    fading = np.log(population.delta) - (
        special.digamma(shape) + np.log(params["dropout"]["delta_mean"] / shape)
    )
    fading /= np.sqrt(special.polygamma(1, shape))
    latent = {
        "engagement": population.engagement,
        "issue": population.issue,
        "satisfaction": population.satisfaction,
        "fading": fading,
        **traits,
    }
    n = population.size
    sleeping = special.expit(
        spec["push"]["logit"] + spec["push"]["contact_aversion"] * traits["contact_aversion"]
    )
    chosen = [spec["actions"][name] for name in actions]
    return Effects(
        actions=list(actions),
        rescue=np.stack([_response(action["rescue"], latent, n) for action in chosen]),
        push=np.stack([action["intrusiveness"] * sleeping for action in chosen]),
        kappa_factor=np.stack([1.0 - _response(action["protect"], latent, n) for action in chosen]),
        protect_days=np.array([action["protect"]["days"] for action in chosen], dtype=np.int64),
        cost=np.array([action["cost"] for action in chosen], dtype=np.float64),
        channel=[action["channel"] for action in chosen],
    )


def _redraw_engaged(
    rng: np.random.Generator,
    start_day: float,
    kappa: np.ndarray,
    mu: np.ndarray,
    delta: np.ndarray,
    factor: np.ndarray,
    days: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The chain from the engaged state at midnight ``start_day``, kappa times ``factor`` on
    the ``days`` days from it: midnights of entering disengaging (inf: never) and death."""
    leave_protected, to_d_protected, leave_disengaging = daily_transition_probabilities(
        kappa * factor, mu, delta
    )
    leave_natural, to_d_natural, _ = daily_transition_probabilities(kappa, mu, delta)
    first = rng.geometric(leave_protected)
    later = days + rng.geometric(leave_natural)
    within = first <= days
    exit_day = start_day + np.where(within, first, later).astype(np.float64)
    disengages = rng.random(kappa.size) < np.where(within, to_d_protected, to_d_natural)
    dying_day = exit_day + rng.geometric(leave_disengaging)
    return np.where(disengages, exit_day, np.inf), np.where(disengages, dying_day, exit_day)


@dataclass
class _Segments:
    """Restarts of the chain: where a customer's path was (re)drawn, and as what."""

    owner: list[np.ndarray]
    start_seconds: list[np.ndarray]
    state: list[np.ndarray]
    disengage_day: list[np.ndarray]
    dropout_day: list[np.ndarray]
    kappa_factor: list[np.ndarray]
    until_day: list[np.ndarray]

    def add(self, owner, start_seconds, state, disengage, dropout, factor, until) -> None:
        size = owner.size
        self.owner.append(owner.astype(np.int64))
        self.start_seconds.append(np.broadcast_to(start_seconds, size).astype(np.int64))
        self.state.append(np.broadcast_to(np.int8(state), size).astype(np.int8))
        self.disengage_day.append(disengage.astype(np.float64))
        self.dropout_day.append(dropout.astype(np.float64))
        self.kappa_factor.append(np.broadcast_to(factor, size).astype(np.float64))
        self.until_day.append(np.broadcast_to(until, size).astype(np.float64))

    def concatenated(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class CampaignRun:
    """What the campaigns produced: orders' owners and times, the path, the log, the truth."""

    order_owner: np.ndarray
    order_seconds: np.ndarray
    path: LatentPath
    log: dict[str, np.ndarray]  # owner, seconds, campaign, action, control, cost
    contacts: RetentionContacts
    states: dict[str, np.ndarray]  # per state change: owner, seconds, state, factor, until


def _last_per_owner(owner: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner and latest time of each run (rows sorted by owner, then time)."""
    if owner.size == 0:
        return owner, seconds
    last = np.flatnonzero(np.append(owner[1:] != owner[:-1], True))
    return owner[last], seconds[last]


def run_campaigns(
    rng: np.random.Generator,
    side: np.random.Generator,
    population: Population,
    plan: Mapping[str, Any],
    effects: Effects,
    seasonal: DailyIntensity,
    clock: DiurnalClock,
    params: Mapping[str, Any],
    first: date,
) -> CampaignRun:
    """Walk the history campaign by campaign: orders up to each date, assignment, effects.

    Orders are drawn window by window (a Poisson process splits exactly at the campaign
    midnights), so each campaign's eligibility sees the orders that happened before it,
    campaigns included. ``rng`` draws the orders; ``side`` the assignments and effects.
    """
    n_days = seasonal.n_days
    birth = population.birth_seconds
    disengage = population.disengage_day.copy()
    dropout = population.dropout_day.copy()
    everyone = np.arange(population.size)
    segments = _Segments([], [], [], [], [], [], [])
    segments.add(everyone, birth, ENGAGED, disengage, dropout, 1.0, np.nan)
    last_order = birth.copy()  # the first order is at birth
    pieces: list[tuple[np.ndarray, ...]] = []
    orders: list[tuple[np.ndarray, np.ndarray]] = [(everyone.astype(np.int32), birth)]
    log: list[dict[str, np.ndarray]] = []
    days = [_as_day(value, first) for value in plan["dates"]]
    window_start = 0
    for k, window_end in enumerate([day + 1 for day in days] + [n_days]):
        alive = np.flatnonzero((birth < window_end * SECONDS_PER_DAY) & (dropout > window_start))
        window = LatentPath(
            owner=alive.astype(np.int32),
            begin_seconds=np.maximum(birth[alive], window_start * SECONDS_PER_DAY),
            switch_day=disengage[alive],
            stop_day=np.minimum(dropout[alive], window_end),
            disengage_day=disengage,
            dropout_day=dropout,
            n_days=n_days,
        )
        pieces.append((window.owner, window.begin_seconds, window.switch_day, window.stop_day))
        owner, seconds = order_times(rng, population, window, seasonal, clock, params, first=False)
        orders.append((owner, seconds))
        if k == len(days):
            break
        cutoff = days[k] * SECONDS_PER_DAY
        before = seconds < cutoff
        seen, latest = _last_per_owner(owner[before], seconds[before])
        last_order[seen] = latest
        log.append(
            _campaign(
                side,
                k,
                days[k],
                plan,
                effects,
                population,
                last_order,
                disengage,
                dropout,
                segments,
                params["retention"]["contact_hours"],
            )
        )
        seen, latest = _last_per_owner(owner[~before], seconds[~before])
        last_order[seen] = latest
        window_start = window_end

    owner, begin, switch, stop = (np.concatenate(parts) for parts in zip(*pieces, strict=True))
    order = np.argsort(owner, kind="stable")  # windows are in time order
    path = LatentPath(
        owner=owner[order],
        begin_seconds=begin[order],
        switch_day=switch[order],
        stop_day=stop[order],
        disengage_day=disengage,
        dropout_day=dropout,
        n_days=n_days,
    )
    times = sort_by_owner(
        {
            "owner": np.concatenate([part[0] for part in orders]),
            "seconds": np.concatenate([part[1] for part in orders]),
        }
    )
    entries = {name: np.concatenate([part[name] for part in log]) for name in log[0]}
    treated = ~entries["control"]
    contacts = RetentionContacts(
        owner=entries["owner"][treated],
        seconds=entries["seconds"][treated],
        channel=entries["action"][treated],
        channel_names=effects.channel,
    )
    return CampaignRun(
        times["owner"],
        times["seconds"],
        path,
        entries,
        contacts,
        _state_changes(segments.concatenated(), n_days),
    )


def _campaign(
    rng: np.random.Generator,
    k: int,
    day: int,
    plan: Mapping[str, Any],
    effects: Effects,
    population: Population,
    last_order: np.ndarray,
    disengage: np.ndarray,
    dropout: np.ndarray,
    segments: _Segments,
    hours: Sequence[int],
) -> dict[str, np.ndarray]:
    """Enrol, assign and contact; apply the effects to ``disengage``/``dropout`` in place."""
    cutoff = day * SECONDS_PER_DAY
    born = population.birth_seconds < cutoff
    if plan["eligibility"] == "active":
        born &= last_order >= (day - plan["active_days"]) * SECONDS_PER_DAY
    enrolled = np.flatnonzero(born)
    if plan["reach"] < 1.0:
        enrolled = enrolled[rng.random(enrolled.size) < plan["reach"]]
    size = plan.get("size")
    if size is not None and enrolled.size > size:  # no draw otherwise: smaller worlds unchanged
        enrolled = np.sort(rng.choice(enrolled, size, replace=False))
    shares = np.array([plan["action_shares"][name] for name in effects.actions])
    control = rng.random(enrolled.size) < plan["control_share"]
    action = rng.choice(shares.size, size=enrolled.size, p=shares).astype(np.int8)
    opening, closing = hours
    seconds = cutoff + rng.integers(opening * 3600, closing * 3600, enrolled.size)

    treated, act = enrolled[~control], action[~control].astype(np.int64)
    effect_day = day + 1
    dead = dropout[treated] <= effect_day
    disengaging = ~dead & (disengage[treated] <= effect_day)
    engaged = ~dead & ~disengaging
    draw = rng.random(treated.size)
    pushed = engaged & (draw < effects.push[act, treated])
    rescued = disengaging & (draw < effects.rescue[act, treated])
    protected = (engaged & ~pushed) | rescued

    who, chosen = treated[protected], act[protected]
    factor = effects.kappa_factor[chosen, who]
    span = effects.protect_days[chosen]
    new_disengage, new_dropout = _redraw_engaged(
        rng,
        float(effect_day),
        population.kappa[who],
        population.mu[who],
        population.delta[who],
        factor,
        span,
    )
    disengage[who], dropout[who] = new_disengage, new_dropout
    until = np.where(span > 0, effect_day + span, np.nan)
    segments.add(
        who, effect_day * SECONDS_PER_DAY, ENGAGED, new_disengage, new_dropout, factor, until
    )

    who = treated[pushed]
    _, _, leave_disengaging = daily_transition_probabilities(
        population.kappa[who], population.mu[who], population.delta[who]
    )
    new_dropout = effect_day + rng.geometric(leave_disengaging).astype(np.float64)
    disengage[who], dropout[who] = float(effect_day), new_dropout
    segments.add(
        who, effect_day * SECONDS_PER_DAY, DISENGAGING, disengage[who], new_dropout, 1.0, np.nan
    )
    return {
        "owner": enrolled,
        "seconds": seconds,
        "campaign": np.full(enrolled.size, k, dtype=np.int16),
        "action": action,
        "control": control,
        "cost": np.where(control, 0.0, effects.cost[action]),
    }


def _state_changes(segments: dict[str, np.ndarray], n_days: int) -> dict[str, np.ndarray]:
    """Every change of state (or of protection) inside the history, sorted by owner and time.

    Each segment contributes its start and, before the next segment of its customer begins,
    its own entry into disengaging and its death.
    """
    order = np.lexsort((segments["start_seconds"], segments["owner"]))
    seg = {name: values[order] for name, values in segments.items()}
    following = np.full(seg["owner"].size, np.inf)
    same = seg["owner"][1:] == seg["owner"][:-1]
    following[:-1] = np.where(same, seg["start_seconds"][1:] / SECONDS_PER_DAY, np.inf)
    inside = float(n_days)
    to_disengaging = (
        (seg["state"] == ENGAGED)
        & (seg["disengage_day"] < following)
        & (seg["disengage_day"] <= inside)
    )
    to_dead = (seg["dropout_day"] < following) & (seg["dropout_day"] <= inside)
    parts = [
        (
            seg["owner"],
            seg["start_seconds"],
            seg["state"],
            seg["kappa_factor"],
            seg["until_day"],
        ),
        (
            seg["owner"][to_disengaging],
            (seg["disengage_day"][to_disengaging] * SECONDS_PER_DAY).astype(np.int64),
            np.full(to_disengaging.sum(), DISENGAGING, np.int8),
            np.ones(to_disengaging.sum()),
            np.full(to_disengaging.sum(), np.nan),
        ),
        (
            seg["owner"][to_dead],
            (seg["dropout_day"][to_dead] * SECONDS_PER_DAY).astype(np.int64),
            np.full(to_dead.sum(), DEAD, np.int8),
            np.ones(to_dead.sum()),
            np.full(to_dead.sum(), np.nan),
        ),
    ]
    names = ("owner", "seconds", "state", "kappa_factor", "until_day")
    rows = {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(names)}
    order = np.lexsort((rows["seconds"], rows["owner"]))
    return {name: values[order] for name, values in rows.items()}
