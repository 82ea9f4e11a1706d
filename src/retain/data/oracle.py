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
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from retain.data._sim_latent import daily_transition_probabilities
from retain.data._sim_params import default_params
from retain.data._sim_time import seasonality
from retain.errors import ConfigError

__all__ = ["oracle"]

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


def _forward(
    rate: np.ndarray,
    state: np.ndarray,
    chain: tuple[np.ndarray, np.ndarray, np.ndarray],
    season: np.ndarray,
    disengaged_multiplier: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Propagate the latent chain over the horizon; expected orders and P(no order).

    ``p_*`` are state probabilities; ``w_*`` the same probabilities weighted by the chance of
    no order so far. The chain moves at midnights, after each day's orders.
    """
    leave_engaged, to_disengaging, leave_disengaging = chain
    stay_engaged, stay_disengaging = 1.0 - leave_engaged, 1.0 - leave_disengaging
    engaged_to_d = leave_engaged * to_disengaging
    engaged_to_dead = leave_engaged - engaged_to_d
    p_engaged = (state == 0).astype(np.float64)
    p_disengaging = (state == 1).astype(np.float64)
    w_engaged, w_disengaging = p_engaged.copy(), p_disengaging.copy()
    w_dead = (state == 2).astype(np.float64)
    orders = np.zeros(rate.size)
    for level in season:
        orders += level * (p_engaged + disengaged_multiplier * p_disengaging)
        w_engaged *= np.exp(-rate * level)
        w_disengaging *= np.exp(-rate * (disengaged_multiplier * level))
        w_dead += w_engaged * engaged_to_dead + w_disengaging * leave_disengaging
        w_engaged, w_disengaging = (
            w_engaged * stay_engaged,
            w_engaged * engaged_to_d + w_disengaging * stay_disengaging,
        )
        p_engaged, p_disengaging = (
            p_engaged * stay_engaged,
            p_engaged * engaged_to_d + p_disengaging * stay_disengaging,
        )
    return rate * orders, np.clip(w_engaged + w_disengaging + w_dead, 0.0, 1.0)


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
        ``p_no_purchase``, ``expected_purchases``, ``expected_spend``, ``expected_margin``.

    Raises
    ------
    ConfigError
        If ``as_of`` is not a midnight or lies outside the history, ``horizon_days < 1``, or
        ``truth`` lacks a needed column.
    """
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

    born = truth.loc[truth["birth"].to_numpy() < cutoff.to_datetime64()]
    dropout = born["dropout_time"].to_numpy()
    disengage = born["disengage_time"].to_numpy()
    cutoff64 = cutoff.to_datetime64()
    alive = np.isnat(dropout) | (dropout > cutoff64)
    disengaging = alive & ~np.isnat(disengage) & (disengage <= cutoff64)
    state = np.where(alive, np.where(disengaging, 1, 0), 2)

    world = info["params"]
    days = np.datetime64(cutoff.date(), "D") + np.arange(int(horizon_days))
    chain = daily_transition_probabilities(
        born["kappa"].to_numpy(np.float64),
        born["mu"].to_numpy(np.float64),
        born["delta"].to_numpy(np.float64),
    )
    purchases, no_purchase = _forward(
        born["purchase_rate"].to_numpy(np.float64),
        state,
        chain,
        seasonality(days, world["seasonality"]),
        float(world["purchases"]["disengaged_multiplier"]),
    )
    spend = (
        purchases
        * born["expected_order_value"].to_numpy(np.float64)
        * (1.0 - born["expected_return_share"].to_numpy(np.float64))
    )
    result = pd.DataFrame(
        {
            "alive": alive,
            "state": pd.array(STATES[state], dtype="str"),
            "p_no_purchase": no_purchase,
            "expected_purchases": purchases,
            "expected_spend": spend,
            "expected_margin": spend * born["margin_rate"].to_numpy(np.float64),
        },
        index=pd.Index(born["customer_id"], name="customer_id"),
    )
    return result
