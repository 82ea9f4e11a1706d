"""Simulated retail world with known ground truth, and plain BG/NBD summary data.

The retail world is non-contractual: customers sign up with a first order, buy at their own
seasonally modulated Poisson rate while alive, and drop out silently. Dropout is a latent
Markov chain Engaged -> Disengaging -> Dead (plus Engaged -> Dead) whose hazards depend on
latent propensities that also drive the observable interactions (engagement, issues,
satisfaction), so interaction history carries churn signal beyond recency and frequency.
The per-customer truth (rates, spend parameters, hazards, transition times) is kept so that
:func:`retain.data.oracle.oracle` can compute exact conditional expectations.

Tables (canonical columns of the data contract, see ``ARCHITECTURE.md``):

* ``customers``: ``customer_id`` (``C0000001`` ... in signup order), ``signup_date`` (the day of
  the first order or up to two weeks before), ``acquisition_channel`` (each with its own
  lognormal acquisition cost and a slightly different latent mix), ``acquisition_cost``,
  ``region``.
* ``transactions``: one row per order plus one per return (negative ``amount``, ``margin`` and
  ``quantity``; same ``order_id`` as the order, 1-30 days later). The first order happens at
  signup (``truth.birth``); ~3% of orders are returned.
* ``interactions``: ``support_ticket, complaint, web_visit, app_login, survey`` (customer
  initiated, only while alive), ``campaign_contact`` (to everyone until the end of history),
  ``email_open, email_click`` (responses to contacts, only while alive). ``value`` holds the
  1-10 survey score.
* ``truth``: per customer ``birth`` (first order), ``disengage_time`` and ``dropout_time``
  (midnights; missing when never or after the end of history), ``purchase_rate`` (orders per
  day while engaged, before seasonality), gamma-gamma ``spend_shape``/``spend_scale``,
  ``price_level``, ``expected_order_value``, ``margin_rate``, ``return_rate``,
  ``expected_return_share``, the hazards per day ``kappa`` (E -> D), ``delta`` (D -> Dead),
  ``mu`` (E -> Dead), and the latent ``engagement``, ``issue_propensity``, ``satisfaction``.

Options, off by default (off, the world is exactly the one without them), each with its own
random stream:

* ``campaigns``: randomised retention campaigns (:mod:`retain.data._sim_campaigns`): a
  ``campaigns`` table (``customer_id, timestamp, campaign_id, action, group, cost``), the treated
  contacts as ``campaign_contact`` interactions, effects on the latent chain; the truth gains the
  traits ``price_sensitivity`` and ``contact_aversion``, per action ``rescue_<action>``,
  ``push_<action>``, ``kappa_factor_<action>``, and the whole path as lists (``path_start``,
  ``path_state``, ``path_kappa_factor``, ``path_factor_until``).
* ``costs``: a ``costs`` table (``customer_id, timestamp, kind, amount``; see
  :mod:`retain.data._sim_costs`) and the expected cost rates in the truth.
* ``referrals``: ``referred_by`` in ``customers`` and the truth, ``referral_propensity`` in the
  truth (see :mod:`retain.data._sim_referrals`).

Calibration: ~20 transactions and ~10 interactions per customer over the default 30 months.

Buying follows the Pareto/NBD and BG/NBD tradition (Schmittlein, Morrison & Colombo 1987;
Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science 24(2));
order values follow the gamma-gamma model (Fader, Hardie & Lee 2005, "RFM and CLV",
Journal of Marketing Research 42(4)).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from retain.atomic import atomic_file, check_output_dir
from retain.data._sim_campaigns import (
    CampaignPlan,
    Effects,
    draw_traits,
    effect_probabilities,
    resolve_plan,
    response_shifts,
    run_campaigns,
)
from retain.data._sim_costs import (
    COST_KINDS,
    contact_costs,
    expected_cost_rates,
    interaction_costs,
    transaction_costs,
)
from retain.data._sim_events import (
    draw_interactions,
    draw_orders,
    draw_returns,
    insertion_points,
    interaction_channels,
    order_details,
    sort_by_owner,
)
from retain.data._sim_latent import Population, draw_population, expected_return_fraction
from retain.data._sim_params import (
    INTERACTION_TYPES,
    cost_params,
    default_params,
    referral_params,
    retention_params,
)
from retain.data._sim_path import LatentPath
from retain.data._sim_referrals import draw_referrals
from retain.data._sim_tables import (
    fixed_width_ids,
    pandas_frame,
    text_column,
    timestamps,
    write_parquet,
)
from retain.data._sim_time import SECONDS_PER_DAY, DailyIntensity, DiurnalClock, seasonality
from retain.errors import ConfigError
from retain.progress import ProgressReporter, null_progress

__all__ = [
    "PROGRESS_STEPS",
    "CampaignPlan",
    "World",
    "simulate_bgnbd",
    "simulate_world",
    "write_bgnbd",
    "write_world",
]

PROGRESS_STEPS = 6
ORDER_CHANNELS = ["web", "app", "store"]
TABLE_NAMES = ("customers", "transactions", "interactions", "truth")
OPTIONAL_TABLES = ("campaigns", "costs")
REPEATING_NUMBERS = ("amount", "margin", "quantity")  # dictionary-encoded in Parquet


@dataclass(frozen=True, eq=False)
class World:
    """A simulated world: the three contract tables, the per-customer truth and how it was made.

    Attributes
    ----------
    customers, transactions, interactions : pandas.DataFrame
        Tables in the data contract (see ``ARCHITECTURE.md``).
    truth : pandas.DataFrame
        One row per customer with the latent quantities; ``truth.attrs["simulation"]`` holds
        the parameters the oracle needs, and survives a Parquet round trip.
    start, end : datetime.date
        First day of history and the day after the last (exclusive).
    seed : int
        Random seed.
    params : dict
        The world's parameters (JSON-serialisable).
    campaigns : pandas.DataFrame or None
        The retention campaigns' log (``simulate_world(campaigns=...)``): ``customer_id,
        timestamp, campaign_id, action, group, cost``.
    costs : pandas.DataFrame or None
        The cost-to-serve log (``simulate_world(costs=True)``): ``customer_id, timestamp,
        kind, amount``.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame
    start: date
    end: date
    seed: int
    params: dict[str, Any] = field(repr=False)
    campaigns: pd.DataFrame | None = field(default=None, repr=False)
    costs: pd.DataFrame | None = field(default=None, repr=False)

    def tables(self) -> tuple[str, ...]:
        """Names of the tables this world has (the optional ones only when simulated)."""
        optional = tuple(name for name in OPTIONAL_TABLES if getattr(self, name) is not None)
        return (*TABLE_NAMES, *optional)

    def counts(self) -> dict[str, int]:
        """Row count of each table."""
        return {name: len(getattr(self, name)) for name in self.tables()}


def _as_date(value: str | date, name: str) -> date:
    if isinstance(value, datetime):  # pandas.Timestamp included
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from None


def simulate_world(
    n_customers: int = 20_000,
    seed: int = 0,
    start: str | date = "2023-07-01",
    end: str | date = "2026-01-01",
    progress: ProgressReporter = null_progress,
    *,
    campaigns: bool | CampaignPlan | Mapping[str, Any] | None = None,
    costs: bool = False,
    referrals: bool = False,
) -> World:
    """Simulate a non-contractual retail world with known ground truth.

    The three options are off by default; off, the world is exactly the one simulated
    before they existed (byte-identical files). Each draws from its own random stream.

    Parameters
    ----------
    n_customers : int, default=20_000
        Number of customers; signups spread over the whole period (an opening cohort, then
        steady, mildly growing arrivals).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the same seed gives the same world.
    start : str or datetime.date, default="2023-07-01"
        First day of history.
    end : str or datetime.date, default="2026-01-01"
        Day after the last day of history (exclusive).
    progress : callable, default=null_progress
        Called :data:`PROGRESS_STEPS` times with a description of the step just finished.
    campaigns : bool, CampaignPlan or mapping, optional
        Retention campaigns: randomised experiments of the playbook's actions with known,
        heterogeneous effects on the latent chain (see :mod:`retain.data._sim_campaigns`).
        ``True`` runs the default :class:`CampaignPlan`; a mapping gives its fields. Adds
        the ``campaigns`` table, retention contacts in ``interactions``, the traits and
        per-action effects and the full latent path in ``truth``.
    costs : bool, default=False
        A cost-to-serve log (``costs`` table) and the expected cost rates in ``truth``.
    referrals : bool, default=False
        A ``referred_by`` column in ``customers`` (and ``truth``) and each customer's
        ``referral_propensity`` in ``truth``.

    Returns
    -------
    World
        Customers, transactions, interactions, truth, the optional tables and the parameters.

    Raises
    ------
    ConfigError
        If ``n_customers < 1``, a date is malformed, ``end`` is not after ``start``, or the
        campaign plan is invalid (naming the setting).
    """
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if n_customers < 1:
        raise ConfigError(f"n_customers must be at least 1, got {n_customers}")
    if last <= first:
        raise ConfigError(f"end ({last}) must be after start ({first})")
    params = default_params()
    if campaigns is not None and campaigns is not False:
        params["retention"] = {**retention_params(), "plan": resolve_plan(campaigns, first, last)}
        for kind, change in params["retention"]["interactions"].items():
            spec = params["interactions"][kind]
            spec["rate"] *= change.get("rate_factor", 1.0)
            spec["disengaged_multiplier"] = change.get(
                "disengaged_multiplier", spec["disengaged_multiplier"]
            )
    if costs:
        params["costs"] = cost_params()
    if referrals:
        params["referrals"] = referral_params()
    return _simulate(n_customers, seed, first, last, progress, params)


def _stream(seed: int, option: str) -> np.random.Generator:
    """An option's own random stream, independent of the world's and of the other options'."""
    key = ("retention", "costs", "referrals").index(option) + 1
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


def _simulate(
    n_customers: int,
    seed: int,
    first: date,
    last: date,
    progress: ProgressReporter,
    params: dict[str, Any],
) -> World:
    """Draw the world step by step (arguments already validated)."""
    rng = np.random.default_rng(seed)
    start_day = np.datetime64(first, "D")
    n_days = (last - first).days
    daily_season = seasonality(start_day + np.arange(n_days), params["seasonality"])
    seasonal = DailyIntensity.from_daily(daily_season)
    flat = DailyIntensity.from_daily(np.ones(n_days))
    clock = DiurnalClock.from_hourly(params["diurnal"])

    population = draw_population(rng, n_customers, daily_season, clock, params)
    extras: dict[str, Any] = {}
    run = None
    if "retention" in params:
        side = _stream(seed, "retention")
        traits = draw_traits(side, population, params)
        effects = effect_probabilities(
            population, traits, params, params["retention"]["plan"]["actions"]
        )
        # Orders up to each campaign come first: who is eligible depends on them.
        run = run_campaigns(
            rng,
            side,
            population,
            params["retention"]["plan"],
            effects,
            seasonal,
            clock,
            params,
            first,
        )
        path = run.path
        extras.update(shifts=response_shifts(traits, params), contacts=run.contacts)
    else:
        path = LatentPath.natural(population, n_days)
    cost_rows: list[dict[str, np.ndarray]] | None = [] if "costs" in params else None
    progress("customers and latent lifetimes")
    # Interactions first: their smaller table is what stays in memory while the larger
    # transactions table is built, which keeps the peak lower than the other order.
    start_weekday = int((start_day.astype(np.int64) + 3) % 7)
    events = draw_interactions(
        rng, population, path, seasonal, flat, clock, params, start_weekday, **extras
    )
    progress("interactions")
    if cost_rows is not None:
        cost_rows += interaction_costs(
            _stream(seed, "costs"), events, interaction_channels(params), params
        )
    interactions = _interactions_frame(events, population, start_day, params)
    del events
    progress("interactions table")
    if run is None:
        orders = draw_orders(rng, population, path, seasonal, clock, params)
    else:
        orders = order_details(rng, population, run.order_owner, run.order_seconds, params)
    progress("orders")
    transactions = _transactions_frame(rng, orders, population, path, start_day, params, cost_rows)
    progress("returns and transactions table")
    customer_ids = fixed_width_ids(np.arange(1, n_customers + 1), "C", _id_digits(population))
    columns = _truth_columns(customer_ids, population, path, start_day, n_days, params)
    referred_by = None
    if "referrals" in params:
        propensity, referrer = draw_referrals(_stream(seed, "referrals"), population, path, params)
        referred_by = _referrer_ids(customer_ids, referrer)
        columns.update(referral_propensity=propensity, referred_by=referred_by)
    customers = _customers_frame(customer_ids, population, start_day, params, referred_by)
    optional: dict[str, pd.DataFrame] = {}
    if run is not None:
        columns.update(_campaign_truth(traits, effects, run.states, start_day, n_customers))
        optional["campaigns"] = _campaigns_frame(run.log, effects, population, start_day, params)
    if cost_rows is not None:
        columns.update(expected_cost_rates(population, params))
        if run is not None:
            treated = ~run.log["control"]
            cost_rows.append(
                contact_costs(
                    run.log["owner"][treated], run.log["seconds"][treated], run.log["cost"][treated]
                )
            )
        optional["costs"] = _costs_frame(cost_rows, population, start_day)
    truth = pandas_frame(columns)
    truth.attrs["simulation"] = {
        "params": params,
        "seed": seed,
        "start": str(first),
        "end": str(last),
    }
    progress("customers and truth tables")
    return World(
        customers, transactions, interactions, truth, first, last, seed, params, **optional
    )


def _transactions_frame(
    rng: np.random.Generator,
    orders: dict[str, np.ndarray],
    population: Population,
    path: LatentPath,
    start_day: np.datetime64,
    params: Mapping[str, Any],
    cost_rows: list[dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Orders and returns in one table, by customer and time; returns reuse their order's id.

    ``orders`` is consumed: its columns are released as soon as they are converted, which
    keeps the peak memory near the size of the finished table. The fulfilment and return
    processing costs are appended to ``cost_rows`` when given.
    """
    returns = draw_returns(rng, orders, population, path, params)
    order_number = _order_numbers(rng, orders["owner"].size)
    returns["number"] = order_number[returns.pop("order")]
    orders["number"] = order_number
    del order_number
    returns = sort_by_owner(returns)
    where = insertion_points(orders, returns)
    rows = {}
    for name in list(orders):
        rows[name] = np.insert(orders.pop(name), where, returns.pop(name))
    del where
    if cost_rows is not None:
        cost_rows += transaction_costs(rows, params)
    digits = _id_digits(population)
    columns = {"customer_id": fixed_width_ids(rows.pop("owner").astype(np.uint32) + 1, "C", digits)}
    columns["timestamp"] = timestamps(start_day, rows.pop("seconds"))
    columns["amount"] = rows.pop("amount")
    columns["order_id"] = fixed_width_ids(rows.pop("number"), "O", 11)
    columns["quantity"] = rows.pop("quantity").astype(np.int64, copy=False)
    columns["category"] = text_column(rows.pop("category"), list(params["categories"]))
    columns["channel"] = text_column(rows.pop("channel"), ORDER_CHANNELS)
    columns["margin"] = rows.pop("margin")
    return pandas_frame(columns)


def _order_numbers(rng: np.random.Generator, n_orders: int) -> np.ndarray:
    """Distinct order numbers that look random: an affine bijection of 0..n-1 modulo 4e9.

    The multiplier is odd and not a multiple of 5, hence invertible modulo 2**11 * 5**9; this
    costs one pass, where a random permutation of millions is many times slower.
    """
    modulus, multiplier = 4_000_000_000, 2_654_435_761
    if n_orders > modulus:
        raise ConfigError(f"too many orders to number ({n_orders:,})")
    numbers = np.arange(n_orders, dtype=np.uint64)
    numbers *= np.uint64(multiplier)
    numbers += np.uint64(rng.integers(modulus))
    numbers %= np.uint64(modulus)
    return numbers.astype(np.uint32)


def _id_digits(population: Population) -> int:
    """Digits of customer ids, identical in every table."""
    return max(7, len(str(population.size)))


def _interactions_frame(
    events: dict[str, np.ndarray],
    population: Population,
    start_day: np.datetime64,
    params: Mapping[str, Any],
) -> pd.DataFrame:
    """The interactions table in the data contract."""
    return pandas_frame(
        {
            "customer_id": fixed_width_ids(
                events["owner"].astype(np.uint32) + 1, "C", _id_digits(population)
            ),
            "timestamp": timestamps(start_day, events["seconds"]),
            "type": text_column(events["type"], list(INTERACTION_TYPES)),
            "value": events["value"],
            "channel": text_column(events["channel"], interaction_channels(params)),
        }
    )


def _customers_frame(
    customer_ids: pa.Array,
    population: Population,
    start_day: np.datetime64,
    params: Mapping[str, Any],
    referred_by: pa.Array | None = None,
) -> pd.DataFrame:
    """The customers table in the data contract (``referred_by`` with referrals)."""
    columns = {
        "customer_id": customer_ids,
        "signup_date": timestamps(start_day, population.signup_day * SECONDS_PER_DAY),
        "acquisition_channel": text_column(
            population.channel, list(params["acquisition_channels"])
        ),
        "acquisition_cost": population.acquisition_cost,
        "region": text_column(population.region, list(params["regions"])),
    }
    if referred_by is not None:
        columns["referred_by"] = referred_by
    return pandas_frame(columns)


def _referrer_ids(customer_ids: pa.Array, referrer: np.ndarray) -> pa.Array:
    """The referrer's id per customer (null without one)."""
    return customer_ids.take(pa.array(referrer, mask=referrer < 0))


def _day_times(start_day: np.datetime64, days: np.ndarray, n_days: int) -> np.ndarray:
    """Timestamps of midnights; NaT for days after the end of history (or never)."""
    known = days <= n_days
    seconds = np.where(known, days, 0).astype(np.int64) * SECONDS_PER_DAY
    values = timestamps(start_day, seconds)
    values[~known] = np.datetime64("NaT")
    return values


def _truth_columns(
    customer_ids: pa.Array,
    population: Population,
    path: LatentPath,
    start_day: np.datetime64,
    n_days: int,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """Per-customer latent truth (everything the oracle needs, and the drivers behind it).

    ``disengage_time`` and ``dropout_time`` describe the final stretch of the path: with
    campaigns a customer may have been disengaging (and rescued) before; the ``path_*``
    columns hold the whole path then.
    """
    p = float(params["spend"]["p"])
    expected_order_value = p / population.spend_scale * population.price_level
    return_fraction = expected_return_fraction(params["returns"])
    return {
        "customer_id": customer_ids,
        "birth": timestamps(start_day, population.birth_seconds),
        "disengage_time": _day_times(start_day, path.disengage_day, n_days),
        "dropout_time": _day_times(start_day, path.dropout_day, n_days),
        "purchase_rate": population.purchase_rate,
        "spend_shape": np.full(population.size, p),
        "spend_scale": population.spend_scale,
        "price_level": population.price_level,
        "expected_order_value": expected_order_value,
        "margin_rate": population.margin_rate,
        "return_rate": population.return_rate,
        "expected_return_share": population.return_rate * return_fraction,
        "kappa": population.kappa,
        "delta": population.delta,
        "mu": population.mu,
        "engagement": population.engagement,
        "issue_propensity": population.issue,
        "satisfaction": population.satisfaction,
        "favourite_category": text_column(population.favourite, list(params["categories"])),
        "category_loyalty": population.loyalty,
    }


def _list_column(offsets: np.ndarray, values: np.ndarray | pa.Array) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _campaign_truth(
    traits: Mapping[str, np.ndarray],
    effects: Effects,
    states: Mapping[str, np.ndarray],
    start_day: np.datetime64,
    n_customers: int,
) -> dict[str, Any]:
    """Traits, each action's effect parameters, and the whole latent path as lists.

    ``path_start[i]`` are the moments the state (or the protection) changed, ``path_state``
    the state from then on (0 engaged, 1 disengaging, 2 dead), ``path_kappa_factor`` and
    ``path_factor_until`` the protection in force from then on (factor 1 and no end: none).
    """
    columns: dict[str, Any] = dict(traits)
    for k, action in enumerate(effects.actions):
        columns[f"rescue_{action}"] = effects.rescue[k]
        columns[f"push_{action}"] = effects.push[k]
        columns[f"kappa_factor_{action}"] = effects.kappa_factor[k]
    offsets = np.zeros(n_customers + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(states["owner"], minlength=n_customers))
    until = states["until_day"]
    known = np.isfinite(until)
    until_times = timestamps(
        start_day, np.where(known, until, 0).astype(np.int64) * SECONDS_PER_DAY
    )
    columns["path_start"] = _list_column(
        offsets, pa.array(timestamps(start_day, states["seconds"]))
    )
    columns["path_state"] = _list_column(offsets, pa.array(states["state"]))
    columns["path_kappa_factor"] = _list_column(offsets, pa.array(states["kappa_factor"]))
    columns["path_factor_until"] = _list_column(offsets, pa.array(until_times, mask=~known))
    return columns


def _campaigns_frame(
    log: Mapping[str, np.ndarray],
    effects: Effects,
    population: Population,
    start_day: np.datetime64,
    params: Mapping[str, Any],
) -> pd.DataFrame:
    """The campaigns table: one row per enrolled customer and campaign, by campaign."""
    dates = params["retention"]["plan"]["dates"]
    return pandas_frame(
        {
            "customer_id": fixed_width_ids(log["owner"] + 1, "C", _id_digits(population)),
            "timestamp": timestamps(start_day, log["seconds"]),
            "campaign_id": text_column(log["campaign"], [f"retention_{day}" for day in dates]),
            "action": text_column(log["action"], effects.actions),
            "group": text_column(log["control"].astype(np.int8), ["treatment", "control"]),
            "cost": log["cost"],
        }
    )


def _costs_frame(
    rows: list[dict[str, np.ndarray]], population: Population, start_day: np.datetime64
) -> pd.DataFrame:
    """The costs table, by customer and time."""
    merged = sort_by_owner(
        {name: np.concatenate([part[name] for part in rows]) for name in rows[0]}
    )
    return pandas_frame(
        {
            "customer_id": fixed_width_ids(merged["owner"] + 1, "C", _id_digits(population)),
            "timestamp": timestamps(start_day, merged["seconds"]),
            "kind": text_column(merged["kind"], list(COST_KINDS)),
            "amount": merged["amount"],
        }
    )


#: The files ``retain simulate`` writes; a folder holding only these may be written again.
SIMULATION_FILES = (
    *(f"{name}.parquet" for name in (*TABLE_NAMES, *OPTIONAL_TABLES)),
    "simulation.json",
    "bgnbd.parquet",
    "bgnbd.json",
)


def check_simulation_out(out_dir: str | Path) -> Path:
    """``out_dir`` if simulated data may be written there: absent, empty, or holding only what
    an earlier simulation wrote (so a data folder of real files is never overwritten).

    Raises
    ------
    OutputError
        Naming the folder and files retain did not write.
    """
    return check_output_dir(
        out_dir, "simulated world", legacy_files=SIMULATION_FILES, replaced=False
    )


def write_world(world: World, out_dir: str | Path) -> dict[str, Path]:
    """Write a world's tables to Parquet and its description to ``simulation.json``.

    Each file is written atomically (temporary sibling, then rename); the same world always
    gives byte-identical files (no wall-clock metadata is stored).

    Parameters
    ----------
    world : World
        What :func:`simulate_world` returned.
    out_dir : str or path-like
        Folder to write into; created if needed.

    Returns
    -------
    dict of str to pathlib.Path
        ``customers, transactions, interactions, truth``, the optional ``campaigns`` and
        ``costs`` when the world has them, and ``simulation``, to their paths.

    Notes
    -----
    An optional table the world lacks is removed from the folder when an earlier simulation
    left it there (the folder holds only simulation files, checked first), so the folder
    always describes one world.
    """
    folder = check_simulation_out(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    names = world.tables()

    def write(name: str) -> Path:
        frame = getattr(world, name)
        metadata = frame.attrs if name == "truth" else None
        path = folder / f"{name}.parquet"
        dictionary = (*REPEATING_NUMBERS, "campaign_id")
        return write_parquet(frame, path, metadata=metadata, dictionary=dictionary)

    # Parquet encoding releases the GIL: the largest table on one thread, the rest on another.
    with ThreadPoolExecutor(max_workers=2) as pool:
        largest = pool.submit(write, "transactions")
        others = pool.submit(
            lambda: {name: write(name) for name in names if name != "transactions"}
        )
        paths = {"transactions": largest.result(), **others.result()}
    paths = {name: paths[name] for name in names}
    for name in OPTIONAL_TABLES:
        if name not in names:
            (folder / f"{name}.parquet").unlink(missing_ok=True)
    description = {
        "seed": world.seed,
        "start": str(world.start),
        "end": str(world.end),
        "counts": world.counts(),
        "params": world.params,
    }
    paths["simulation"] = _write_json(description, folder / "simulation.json")
    return paths


def _write_json(payload: Mapping[str, Any], path: Path) -> Path:
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def simulate_bgnbd(
    n_customers: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray = 39.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Draw BTYD summary data exactly from the BG/NBD model.

    Model (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative
    to the Pareto/NBD model", Marketing Science 24(2), 275-284): while active, repeat purchases
    are Poisson with rate ``lambda ~ Gamma(shape=r, rate=alpha)``; after each repeat purchase
    the customer becomes inactive with probability ``p ~ Beta(a, b)`` (never at time 0). The
    likelihood of ``(x, t_x, T)`` is
    ``(1-p)^x lambda^x e^{-lambda T} + [x > 0] p (1-p)^{x-1} lambda^x e^{-lambda t_x}``.

    Sampling is vectorised: ``N ~ Poisson(lambda T)`` events of an immortal process,
    ``J ~ Geometric(p)`` (the purchase after which the customer dies, ``J >= 1``),
    ``x = min(N, J)``, and the recency ``t_x = T * Beta(x, N - x + 1)`` is the x-th order
    statistic of ``N`` uniforms on ``(0, T]`` (0 when ``x = 0``).

    Parameters
    ----------
    n_customers : int
        Number of customers.
    r, alpha : float
        Shape and rate of the gamma distribution of purchase rates.
    a, b : float
        Parameters of the beta distribution of dropout probabilities.
    T : float or array of float, default=39.0
        Length of each customer's observation period since their first purchase (a scalar,
        or one value per customer).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T``; ``attrs["bgnbd"]`` holds the true parameters.

    Raises
    ------
    ConfigError
        If a parameter is not positive or ``T`` has the wrong length.
    """
    parameters = np.array([r, alpha, a, b], dtype=float)
    if n_customers < 1 or not (np.isfinite(parameters).all() and (parameters > 0).all()):
        raise ConfigError(
            "BG/NBD needs n_customers >= 1 and finite, positive r, alpha, a, b; got "
            f"r={r}, alpha={alpha}, a={a}, b={b}"
        )
    horizon = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
    if np.any(horizon <= 0) or not np.all(np.isfinite(horizon)):
        raise ConfigError("BG/NBD observation lengths T must be positive and finite")
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, n_customers)
    dropout = np.clip(rng.beta(a, b, n_customers), 1e-12, 1.0)  # geometric needs p > 0
    events = rng.poisson(rate * horizon)
    last_purchase = rng.geometric(dropout)
    frequency = np.minimum(events, last_purchase)
    position = rng.beta(np.maximum(frequency, 1), events - frequency + 1)
    recency = np.where(frequency > 0, horizon * position, 0.0)
    frame = pandas_frame(
        {
            "customer_id": fixed_width_ids(np.arange(1, n_customers + 1), "C", 7),
            "frequency": frequency.astype(np.int64),
            "recency": recency,
            "T": horizon,
        }
    )
    scalar_T = float(T) if np.ndim(T) == 0 else "per customer"
    frame.attrs["bgnbd"] = {
        "model": "bgnbd",
        "r": float(r),
        "alpha": float(alpha),
        "a": float(a),
        "b": float(b),
        "T": scalar_T,
        "n_customers": int(n_customers),
        "seed": int(seed),
    }
    return frame


def write_bgnbd(frame: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write BG/NBD data to ``bgnbd.parquet`` and the true parameters to ``bgnbd.json``.

    Parameters
    ----------
    frame : pandas.DataFrame
        What :func:`simulate_bgnbd` returned (the parameters are read from its ``attrs``).
    out_dir : str or path-like
        Folder to write into; created if needed.

    Returns
    -------
    pathlib.Path
        Path of ``bgnbd.parquet``.
    """
    if "bgnbd" not in frame.attrs:
        raise ConfigError("the frame carries no BG/NBD parameters; make it with simulate_bgnbd")
    folder = check_simulation_out(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_parquet(frame, folder / "bgnbd.parquet", metadata=dict(frame.attrs))
    _write_json(frame.attrs["bgnbd"], folder / "bgnbd.json")
    return path
