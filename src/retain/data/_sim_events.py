"""Events of the simulated world: orders, returns and interactions, as plain numpy columns.

Every function here is vectorised over customers and events; the only Python loops run over
event types. Times are whole seconds since the world's first midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from retain.data._sim_latent import Population
from retain.data._sim_params import INTERACTION_TYPES
from retain.data._sim_path import LatentPath
from retain.data._sim_time import SECONDS_PER_DAY, DailyIntensity, DiurnalClock, sample_events

__all__ = [
    "draw_interactions",
    "draw_orders",
    "draw_returns",
    "interaction_channels",
    "order_details",
    "order_times",
    "ResponseShifts",
    "RetentionContacts",
    "sort_by_owner",
]

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class ResponseShifts:
    """Per-customer log-odds added to opening and clicking promotional emails."""

    open: np.ndarray
    click: np.ndarray


@dataclass(frozen=True)
class RetentionContacts:
    """Contacts of retention campaigns: customer, time and channel (index into the names)."""

    owner: np.ndarray
    seconds: np.ndarray
    channel: np.ndarray
    channel_names: list[str]


def _categorical(uniform: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Category index for each uniform draw, given a short CDF (one comparison per category)."""
    index = np.zeros(uniform.size, dtype=np.int8)
    for threshold in cdf[:-1]:
        index += uniform >= threshold
    return index


def _small_poisson(rng: np.random.Generator, mean: float, size: int) -> np.ndarray:
    """Poisson draws with a small mean by inversion (faster than numpy's sampler here).

    The support is cut where the tail probability falls below 1e-9.
    """
    support = np.arange(64)
    pmf = np.exp(support * np.log(mean) - mean - special.gammaln(support + 1))
    cdf = np.cumsum(pmf)
    cdf = cdf[: int(np.searchsorted(cdf, 1.0 - 1e-9)) + 1]
    cdf[-1] = 1.0
    return _categorical(rng.random(size, dtype=np.float32), cdf).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sort_by_owner(columns: Columns) -> Columns:
    """Order rows by owner then time (stable; inputs are concatenations of sorted runs)."""
    key = (columns["owner"].astype(np.int64) << 32) | columns["seconds"]
    order = np.argsort(key, kind="stable")
    return {name: values[order] for name, values in columns.items()}


def insertion_points(first: Columns, second: Columns) -> np.ndarray:
    """Where rows of ``second`` go among those of ``first`` (both sorted by owner then time).

    Use with ``numpy.insert`` per column; rows of ``first`` stay first on ties.
    """

    def keys(columns: Columns) -> np.ndarray:
        key = columns["owner"].astype(np.int64)
        key <<= 32
        key |= columns["seconds"]
        return key

    return np.searchsorted(keys(first), keys(second), side="right")


def draw_orders(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    seasonal: DailyIntensity,
    clock: DiurnalClock,
    params: Mapping[str, Any],
) -> Columns:
    """Orders: an inhomogeneous Poisson process on each customer's alive interval.

    The first order happens at signup; after it, orders arrive at ``purchase_rate * s(t)`` while
    engaged and ``disengaged_multiplier`` times that while disengaging, until dropout or the
    end of history. Order value is gamma-gamma (Fader, Hardie & Lee 2005) times the price level
    of a category drawn from the customer's mix; margin is value times the category's rate.

    Returns
    -------
    dict of numpy.ndarray
        ``owner, seconds, amount, margin, quantity, category, channel`` sorted by owner, time.
    """
    owner, seconds = order_times(rng, population, path, seasonal, clock, params, first=True)
    return order_details(rng, population, owner, seconds, params)


def order_times(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    seasonal: DailyIntensity,
    clock: DiurnalClock,
    params: Mapping[str, Any],
    *,
    first: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Owners and times of the orders on each piece of ``path`` (sorted by piece, then time).

    ``first``: each piece begins at its customer's birth, which is an order.
    """
    multiplier = params["purchases"]["disengaged_multiplier"]
    rate = path.per_piece(population.purchase_rate)
    piece, seconds = sample_events(
        rng,
        seasonal,
        clock,
        rate,
        rate * multiplier,
        path.begin_seconds,
        path.switch_day,
        path.stop_day,
        event_at_begin=first,
    )
    return path.customers(piece), seconds


def order_details(
    rng: np.random.Generator,
    population: Population,
    owner: np.ndarray,
    seconds: np.ndarray,
    params: Mapping[str, Any],
) -> Columns:
    """Category, channel, amount, margin and quantity of the orders at ``owner, seconds``."""
    n_orders = owner.size
    categories = params["categories"]
    shares = np.array([spec["share"] for spec in categories.values()])
    price = np.array([spec["price_level"] for spec in categories.values()])
    margin_rate = np.array([spec["margin_rate"] for spec in categories.values()])

    # Uniforms in float32 halve the memory of these draws; their resolution is ample here.
    category = _categorical(
        rng.random(n_orders, dtype=np.float32), np.cumsum(shares / shares.sum())
    )
    from_favourite = rng.random(n_orders, dtype=np.float32) < population.loyalty[owner]
    np.copyto(category, population.favourite[owner], where=from_favourite)
    del from_favourite

    draw = rng.random(n_orders, dtype=np.float32)
    web = population.web_share[owner]
    channel = (draw >= web).astype(np.int8)
    web += population.app_share[owner]
    channel += draw >= web
    del draw, web

    amount = rng.standard_gamma(params["spend"]["p"], n_orders, dtype=np.float32).astype(np.float64)
    amount /= population.spend_scale[owner]
    amount *= price[category]
    np.round(amount, 2, out=amount)
    np.maximum(amount, 0.01, out=amount)
    margin = margin_rate[category]
    margin *= amount
    np.round(margin, 2, out=margin)
    quantity = _small_poisson(rng, params["quantity_extra_mean"], n_orders)
    quantity += 1
    return {
        "owner": owner,
        "seconds": seconds,
        "amount": amount,
        "margin": margin,
        "quantity": quantity,
        "category": category,
        "channel": channel,
    }


def draw_returns(
    rng: np.random.Generator,
    orders: Columns,
    population: Population,
    path: LatentPath,
    params: Mapping[str, Any],
) -> Columns:
    """Returns: each order is returned with the customer's return rate, 1-30 days later.

    A return gives back the whole order or a uniform part of it; it reuses the order's id
    (``order`` holds the index of the returned order), category and channel. Returns that would
    fall after the customer's dropout or the end of history are not recorded.

    Returns
    -------
    dict of numpy.ndarray
        ``order, owner, seconds, amount, margin, quantity, category, channel``.
    """
    spec = params["returns"]
    draw = rng.random(orders["owner"].size, dtype=np.float32)
    order = np.flatnonzero(draw < population.return_rate[orders["owner"]])
    del draw
    delay = rng.uniform(spec["min_days"], spec["max_days"], order.size) * SECONDS_PER_DAY
    full = rng.random(order.size) < spec["full_share"]
    fraction = np.where(
        full, 1.0, rng.uniform(spec["partial_low"], spec["partial_high"], order.size)
    )

    owner = orders["owner"][order]
    seconds = orders["seconds"][order] + delay.astype(np.int64)
    keep = seconds < path.end_seconds[owner]
    order, owner, seconds, full, fraction = (
        x[keep] for x in (order, owner, seconds, full, fraction)
    )

    amount = np.maximum(np.round(fraction * orders["amount"][order], 2), 0.01)
    margin_rate = np.array([c["margin_rate"] for c in params["categories"].values()])
    category = orders["category"][order]
    bought = orders["quantity"][order]
    quantity = np.where(full, bought, np.maximum(1, np.round(bought * fraction).astype(np.int64)))
    return {
        "order": order,
        "owner": owner,
        "seconds": seconds,
        "amount": -amount,
        "margin": -np.round(amount * margin_rate[category], 2),
        "quantity": -quantity,
        "category": category,
        "channel": orders["channel"][order],
    }


def interaction_channels(params: Mapping[str, Any]) -> list[str]:
    """Vocabulary of interaction channels, in order of first appearance in the parameters."""
    names: list[str] = []
    for spec in params["interactions"].values():
        names += [name for name in spec["channels"] if name not in names]
    return names if "email" in names else [*names, "email"]


def _interaction_table(
    owner: np.ndarray, seconds: np.ndarray, kind: str, channel: np.ndarray | int
) -> Columns:
    """Columns of one interaction type (``value`` is filled in for surveys only)."""
    return {
        "owner": owner,
        "seconds": seconds,
        "type": np.full(owner.size, INTERACTION_TYPES.index(kind), dtype=np.int8),
        "value": np.full(owner.size, np.nan),
        "channel": np.broadcast_to(np.asarray(channel, dtype=np.int8), owner.shape).copy(),
    }


def _customer_initiated(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    kind: str,
    spec: Mapping[str, Any],
    intensity: DailyIntensity,
    clock: DiurnalClock,
    vocabulary: list[str],
) -> Columns:
    """One customer-initiated interaction type on the alive interval (two rate regimes).

    ``owner`` of the result holds piece indices of ``path`` (the caller maps them).
    """
    latent = {
        "engagement": population.engagement,
        "issue": population.issue,
        "satisfaction": population.satisfaction,
    }
    effects = spec["effects"]
    rate = spec["rate"] * np.exp(sum(effects[name] * latent[name] for name in latent))
    rate = path.per_piece(rate)
    owner, seconds = sample_events(
        rng,
        intensity,
        clock,
        rate,
        rate * spec["disengaged_multiplier"],
        path.begin_seconds,
        path.switch_day,
        path.stop_day,
    )
    channels = spec["channels"]
    shares = np.array(list(channels.values()), dtype=np.float64)
    codes = np.array([vocabulary.index(name) for name in channels], dtype=np.int8)
    channel = codes[_categorical(rng.random(owner.size), np.cumsum(shares / shares.sum()))]
    return _interaction_table(owner, seconds, kind, channel)


def _survey_scores(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    piece: np.ndarray,
    seconds: np.ndarray,
    params: Mapping[str, Any],
) -> np.ndarray:
    """Satisfaction score 1..10: latent satisfaction and issues, lower while disengaging."""
    spec = params["survey_score"]
    disengaging = seconds >= path.switch_day[piece] * SECONDS_PER_DAY
    owner = path.customers(piece)
    score = (
        spec["mean"]
        + spec["satisfaction"] * population.satisfaction[owner]
        + spec["issue"] * population.issue[owner]
        + spec["disengaged"] * disengaging
        + spec["noise"] * rng.standard_normal(owner.size)
    )
    return np.clip(np.round(score), 1.0, 10.0)


def _campaign_contacts(
    rng: np.random.Generator,
    population: Population,
    flat: DailyIntensity,
    clock: DiurnalClock,
    spec: Mapping[str, Any],
    start_weekday: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Contacts from signup to the end of history, alive or not, on the weekly send day."""
    n_days = flat.n_days
    rate = np.full(population.size, spec["rate"])
    never = np.full(population.size, np.inf)
    end = np.full(population.size, float(n_days))
    owner, seconds = sample_events(
        rng, flat, clock, rate, rate, population.birth_seconds, never, end
    )
    # Campaigns go out on one weekday at a fixed hour: move each draw to the next send day.
    day = seconds // SECONDS_PER_DAY
    day += (spec["weekday"] - (start_weekday + day) - 1) % 7 + 1
    keep = day < n_days
    owner, day = owner[keep], day[keep]
    return owner, day * SECONDS_PER_DAY + spec["hour"] * 3600 + rng.integers(0, 3600, owner.size)


def _email_responses(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    owner: np.ndarray,
    contact: np.ndarray,
    spec: Mapping[str, Any],
    shifts: ResponseShifts | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Opens (likelier when engaged, rarer when disengaging, never when dead) and clicks.

    ``shifts`` add per-customer log-odds to opening and clicking (traits that only show in
    responses to promotions: contact aversion, price sensitivity).
    """
    engagement = population.engagement[owner]
    disengaging = contact >= path.switch_day[path.piece_of(owner, contact)] * SECONDS_PER_DAY
    stop = path.end_seconds[owner]
    state_factor = np.where(disengaging, spec["open_disengaged_multiplier"], 1.0) * (contact < stop)
    open_logit = spec["open_logit"] + spec["open_engagement"] * engagement
    if shifts is not None:
        open_logit += shifts.open[owner]
    open_probability = _sigmoid(open_logit)
    opens = rng.random(owner.size) < open_probability * state_factor
    open_delay = rng.exponential(spec["open_delay_mean_days"] * SECONDS_PER_DAY, owner.size)
    opened = contact + np.ceil(open_delay).astype(np.int64)
    opens &= opened < stop
    click_logit = spec["click_logit"] + spec["click_engagement"] * engagement
    if shifts is not None:
        click_logit += shifts.click[owner]
    click_probability = _sigmoid(click_logit)
    clicks = opens & (rng.random(owner.size) < click_probability)
    click_delay = rng.exponential(spec["click_delay_mean_minutes"] * 60.0, owner.size)
    clicked = opened + np.ceil(click_delay).astype(np.int64)
    clicks &= clicked < stop
    return opens, opened, clicks, clicked


def draw_interactions(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    seasonal: DailyIntensity,
    flat: DailyIntensity,
    clock: DiurnalClock,
    params: Mapping[str, Any],
    start_weekday: int,
    *,
    shifts: ResponseShifts | None = None,
    contacts: RetentionContacts | None = None,
) -> Columns:
    """All interactions, sorted by customer and time.

    Customer-initiated types (web visits, app logins, support tickets, complaints, surveys)
    are Poisson processes on the alive interval whose rates depend on the latent propensities
    and change in the disengaging state (engagement falls, tickets and complaints rise).
    Campaign contacts reach everyone until the end of history; only living customers open
    and click. Retention ``contacts`` (treated customers of retention campaigns) are added
    as campaign contacts on their action's channel.

    Returns
    -------
    dict of numpy.ndarray
        ``owner, seconds, type, value, channel`` (``type`` indexes ``INTERACTION_TYPES``,
        ``channel`` indexes :func:`interaction_channels`).
    """
    vocabulary = interaction_channels(params)
    tables = []
    for kind, spec in params["interactions"].items():
        intensity = seasonal if spec["seasonal"] else flat
        table = _customer_initiated(rng, population, path, kind, spec, intensity, clock, vocabulary)
        if kind == "survey":
            table["value"] = _survey_scores(
                rng, population, path, table["owner"], table["seconds"], params
            )
        table["owner"] = path.customers(table["owner"])
        tables.append(table)
    spec = params["campaigns"]
    owner, contact = _campaign_contacts(rng, population, flat, clock, spec, start_weekday)
    opens, opened, clicks, clicked = _email_responses(
        rng, population, path, owner, contact, spec, shifts
    )
    email = vocabulary.index("email")
    tables += [
        _interaction_table(owner, contact, "campaign_contact", email),
        _interaction_table(owner[opens], opened[opens], "email_open", email),
        _interaction_table(owner[clicks], clicked[clicks], "email_click", email),
    ]
    if contacts is not None:
        codes = np.array([vocabulary.index(name) for name in contacts.channel_names], np.int8)
        tables.append(
            _interaction_table(
                contacts.owner, contacts.seconds, "campaign_contact", codes[contacts.channel]
            )
        )
        # Marks the retention contacts among all campaign contacts (for their costs).
        for table in tables:
            table["retention"] = np.zeros(table["owner"].size, dtype=bool)
        tables[-1]["retention"][:] = True
    merged = {name: np.concatenate([table[name] for table in tables]) for name in tables[0]}
    return sort_by_owner(merged)
