"""Customers of the simulated world: arrivals, attributes, latent propensities, dropout chain.

The latent lifetime is a Markov chain with states Engaged (E), Disengaging (D) and Dead,
moving at midnights. From E a customer leaves with daily probability ``1 - exp(-(kappa + mu))``,
to D with share ``kappa / (kappa + mu)`` and straight to Dead otherwise; from D they die with
daily probability ``1 - exp(-delta)``. Sojourns are therefore geometric in days, and the oracle
can propagate the same daily transition matrix exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from retain.data._sim_time import SECONDS_PER_DAY, DiurnalClock

__all__ = [
    "Population",
    "daily_transition_probabilities",
    "draw_population",
    "expected_return_fraction",
]

PROPENSITIES = ("engagement", "issue", "satisfaction")
Params = Mapping[str, Any]


def daily_transition_probabilities(
    kappa: np.ndarray, mu: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily probabilities of the latent chain from the hazards per day.

    Parameters
    ----------
    kappa, mu, delta : numpy.ndarray
        Hazards E -> D, E -> Dead and D -> Dead, per day.

    Returns
    -------
    leave_engaged : numpy.ndarray
        Probability of leaving E at a midnight.
    to_disengaging : numpy.ndarray
        Share of those departures that go to D (the rest die).
    leave_disengaging : numpy.ndarray
        Probability of dying from D at a midnight.
    """
    total = kappa + mu
    return -np.expm1(-total), kappa / total, -np.expm1(-delta)


@dataclass(frozen=True)
class Population:
    """Per-customer draws, one array entry per customer (ordered by signup time)."""

    birth_seconds: np.ndarray  # first purchase, seconds since the world's start
    signup_day: np.ndarray  # day index of signup (on or a few days before birth)
    channel: np.ndarray  # index into the acquisition channels
    acquisition_cost: np.ndarray
    region: np.ndarray  # index into the regions
    engagement: np.ndarray
    issue: np.ndarray
    satisfaction: np.ndarray
    purchase_rate: np.ndarray  # per day while engaged, before seasonality
    spend_scale: np.ndarray  # gamma-gamma nu_i
    favourite: np.ndarray  # favourite category index
    loyalty: np.ndarray  # share of orders from the favourite category
    price_level: np.ndarray  # expected category price multiplier of an order
    margin_rate: np.ndarray  # expected margin / expected spend
    app_share: np.ndarray
    web_share: np.ndarray
    return_rate: np.ndarray
    kappa: np.ndarray
    mu: np.ndarray
    delta: np.ndarray
    disengage_day: np.ndarray  # midnight entering D (inf: never)
    dropout_day: np.ndarray  # midnight entering Dead

    @property
    def size(self) -> int:
        """Number of customers."""
        return self.birth_seconds.size


def _draw_births(
    rng: np.random.Generator,
    n_customers: int,
    daily_season: np.ndarray,
    clock: DiurnalClock,
    arrivals: Mapping[str, float],
) -> np.ndarray:
    """Signup (first purchase) times in seconds, sorted: an opening cohort, then steady growth."""
    days = np.arange(daily_season.size, dtype=np.float64)
    opening = np.exp(-days / arrivals["initial_scale_days"])
    steady = np.exp(np.log1p(arrivals["growth_per_year"]) * days / 365.25) * daily_season
    weights = arrivals["initial_share"] * opening / opening.sum()
    weights += (1.0 - arrivals["initial_share"]) * steady / steady.sum()
    cdf = np.cumsum(weights)
    day = np.searchsorted(cdf / cdf[-1], rng.random(n_customers), side="right")
    day = np.minimum(day, daily_season.size - 1)
    seconds_of_day = np.floor(clock.draw_time_of_day(rng, n_customers) * SECONDS_PER_DAY)
    seconds = day * SECONDS_PER_DAY + np.minimum(seconds_of_day, SECONDS_PER_DAY - 1).astype(
        np.int64
    )
    return np.sort(seconds)


def _log_linear(
    base: float, effects: Mapping[str, float], latent: Mapping[str, np.ndarray]
) -> np.ndarray:
    """``base * exp(sum of effect * propensity)``."""
    exponent = sum(effects[name] * latent[name] for name in PROPENSITIES)
    return base * np.exp(exponent)


def _draw_latent(
    rng: np.random.Generator, n: int, channel: np.ndarray, params: Params
) -> dict[str, np.ndarray]:
    """Correlated standard-normal propensities, shifted by acquisition channel."""
    factor = np.linalg.cholesky(np.asarray(params["latent_correlation"], dtype=np.float64))
    shifts = np.array([spec["shift"] for spec in params["acquisition_channels"].values()])
    values = rng.standard_normal((n, 3)) @ factor.T + shifts[channel]
    return {name: np.ascontiguousarray(values[:, k]) for k, name in enumerate(PROPENSITIES)}


def _draw_chain(
    rng: np.random.Generator,
    birth_seconds: np.ndarray,
    kappa: np.ndarray,
    mu: np.ndarray,
    delta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Midnights of entering D (inf if never) and Dead, from geometric sojourns."""
    leave_engaged, to_disengaging, leave_disengaging = daily_transition_probabilities(
        kappa, mu, delta
    )
    birth_day = (birth_seconds // SECONDS_PER_DAY).astype(np.float64)
    exit_day = birth_day + rng.geometric(leave_engaged)
    disengages = rng.random(birth_day.size) < to_disengaging
    dying_day = exit_day + rng.geometric(leave_disengaging)
    disengage_day = np.where(disengages, exit_day, np.inf)
    dropout_day = np.where(disengages, dying_day, exit_day)
    return disengage_day, dropout_day


def _shares(table: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
    shares = np.array([spec["share"] for spec in table.values()], dtype=np.float64)
    return shares / shares.sum()


def _draw_categories(rng: np.random.Generator, n: int, params: Params) -> tuple[np.ndarray, ...]:
    """Favourite category and loyalty; expected price level and margin rate of an order."""
    categories = params["categories"]
    shares = _shares(categories)
    price = np.array([spec["price_level"] for spec in categories.values()])
    margin = np.array([spec["margin_rate"] for spec in categories.values()])
    favourite = rng.choice(shares.size, size=n, p=shares).astype(np.int8)
    loyalty = rng.beta(params["category_loyalty"]["a"], params["category_loyalty"]["b"], n)
    price_level = loyalty * price[favourite] + (1 - loyalty) * (shares @ price)
    margin_amount = loyalty * (price * margin)[favourite] + (1 - loyalty) * (
        shares @ (price * margin)
    )
    return favourite, loyalty, price_level, margin_amount / price_level


def _draw_order_channels(
    engagement: np.ndarray, region: np.ndarray, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer shares of web and app orders (softmax of web 0, app, store log-odds)."""
    spec = params["order_channels"]
    store_shift = np.array([r["store_shift"] for r in params["regions"].values()])
    app = np.exp(spec["app_base"] + spec["app_engagement"] * engagement)
    store = np.exp(spec["store_base"] + store_shift[region])
    total = 1.0 + app + store
    return 1.0 / total, app / total


def draw_population(
    rng: np.random.Generator,
    n_customers: int,
    daily_season: np.ndarray,
    clock: DiurnalClock,
    params: Mapping[str, Any],
) -> Population:
    """Draw every customer-level quantity of the world.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source.
    n_customers : int
        Number of customers.
    daily_season : numpy.ndarray
        Seasonality per day of the world (arrivals follow it too).
    clock : DiurnalClock
        Time-of-day profile of signups.
    params : mapping
        World parameters (see :mod:`retain.data._sim_params`).

    Returns
    -------
    Population
        Customers ordered by signup time.
    """
    birth_seconds, signup_day = _draw_signups(rng, n_customers, daily_season, clock, params)
    acquisition = _draw_acquisition(rng, n_customers, params)
    latent = _draw_latent(rng, n_customers, acquisition["channel"], params)
    buying = _draw_buying(rng, latent, acquisition["region"], params)
    hazards = _draw_hazards(rng, latent, params)
    disengage_day, dropout_day = _draw_chain(rng, birth_seconds, **hazards)
    return Population(
        birth_seconds=birth_seconds,
        signup_day=signup_day,
        **acquisition,
        engagement=latent["engagement"],
        issue=latent["issue"],
        satisfaction=latent["satisfaction"],
        **buying,
        **hazards,
        disengage_day=disengage_day,
        dropout_day=dropout_day,
    )


def _draw_signups(
    rng: np.random.Generator, n: int, daily_season: np.ndarray, clock: DiurnalClock, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """Birth (first order) in seconds, sorted, and the signup day on or shortly before it."""
    arrivals = params["arrivals"]
    birth_seconds = _draw_births(rng, n, daily_season, clock, arrivals)
    lag = np.where(
        rng.random(n) < arrivals["signup_lag_share"],
        rng.integers(1, arrivals["signup_lag_max_days"] + 1, n),
        0,
    )
    return birth_seconds, np.maximum(birth_seconds // SECONDS_PER_DAY - lag, 0)


def _draw_acquisition(rng: np.random.Generator, n: int, params: Params) -> dict[str, np.ndarray]:
    """Acquisition channel, its lognormal cost, and region."""
    channels = params["acquisition_channels"]
    channel = rng.choice(len(channels), size=n, p=_shares(channels)).astype(np.int8)
    median = np.array([spec["cost_median"] for spec in channels.values()])
    sigma = np.array([spec["cost_sigma"] for spec in channels.values()])
    cost = np.round(median[channel] * np.exp(sigma[channel] * rng.standard_normal(n)), 2)
    regions = params["regions"]
    region = rng.choice(len(regions), size=n, p=_shares(regions)).astype(np.int8)
    return {"channel": channel, "acquisition_cost": cost, "region": region}


def _draw_buying(
    rng: np.random.Generator, latent: dict[str, np.ndarray], region: np.ndarray, params: Params
) -> dict[str, np.ndarray]:
    """Purchase rate (gamma, tilted by engagement), spend, category mix, channels, returns."""
    n = region.size
    purchases = params["purchases"]
    shape, effect = purchases["rate_shape"], purchases["engagement_effect"]
    purchase_rate = purchases["rate_mean"] * rng.gamma(shape, 1.0 / shape, n)
    purchase_rate *= np.exp(effect * latent["engagement"] - 0.5 * effect**2)
    spend_scale = rng.gamma(params["spend"]["q"], 1.0 / params["spend"]["gamma"], n)
    favourite, loyalty, price_level, margin_rate = _draw_categories(rng, n, params)
    web_share, app_share = _draw_order_channels(latent["engagement"], region, params)
    mean, concentration = params["returns"]["rate_mean"], params["returns"]["rate_concentration"]
    return_rate = rng.beta(mean * concentration, (1 - mean) * concentration, n)
    return {
        "purchase_rate": purchase_rate,
        "spend_scale": spend_scale,
        "favourite": favourite,
        "loyalty": loyalty,
        "price_level": price_level,
        "margin_rate": margin_rate,
        "web_share": web_share,
        "app_share": app_share,
        "return_rate": return_rate,
    }


def _draw_hazards(
    rng: np.random.Generator, latent: dict[str, np.ndarray], params: Params
) -> dict[str, np.ndarray]:
    """Hazards per day: kappa (E -> D), mu (E -> Dead) from the propensities; delta (D -> Dead)."""
    dropout = params["dropout"]
    kappa = _log_linear(dropout["kappa_base"], dropout["kappa_effects"], latent)
    kappa *= np.exp(dropout["kappa_noise"] * rng.standard_normal(kappa.size))
    mu = _log_linear(dropout["mu_base"], dropout["mu_effects"], latent)
    shape = dropout["delta_shape"]
    delta = rng.gamma(shape, dropout["delta_mean"] / shape, kappa.size)
    return {"kappa": kappa, "mu": mu, "delta": delta}


def expected_return_fraction(returns: Mapping[str, float]) -> float:
    """Mean share of an order's value that a return gives back."""
    partial = 0.5 * (returns["partial_low"] + returns["partial_high"])
    return returns["full_share"] + (1.0 - returns["full_share"]) * partial
