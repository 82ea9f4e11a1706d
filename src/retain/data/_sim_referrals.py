"""Referrals in the simulated world: who brought whom.

Each customer of the ``referral`` acquisition channel names a referrer: a customer who joined
strictly earlier and is engaged at the moment the new customer joins, drawn with weight
``exp(weight * referral_propensity)``. The propensity rises with engagement and satisfaction.
Referrers join before the customers they refer, so referrals form a forest (no cycles); the
referred customers keep their own, independently drawn value. Nothing else in the world changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from retain.data._sim_latent import Population
from retain.data._sim_path import ENGAGED, LatentPath

__all__ = ["draw_referrals"]


def draw_referrals(
    rng: np.random.Generator,
    population: Population,
    path: LatentPath,
    params: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Referral propensity per customer and the referrer's index (-1: none).

    Referrers are drawn by rejection: a candidate among the earlier customers (by weight) is
    kept when engaged at the referred customer's first order, else drawn again, up to
    ``max_rounds`` times; a customer none of whose draws succeeds keeps no referrer (an
    unknown one, as happens in real logs).
    """
    spec = params["referrals"]
    weights = spec["propensity"]
    noise = np.sqrt(max(0.0, 1.0 - sum(value**2 for value in weights.values())))
    propensity = (
        weights["engagement"] * population.engagement
        + weights["satisfaction"] * population.satisfaction
        + noise * rng.standard_normal(population.size)
    )
    channel = list(params["acquisition_channels"]).index("referral")
    referred = np.flatnonzero(population.channel == channel)
    joined = population.birth_seconds[referred]
    earlier = np.searchsorted(population.birth_seconds, joined, side="left")
    cumulative = np.cumsum(np.exp(spec["weight"] * propensity))
    referrer = np.full(population.size, -1, dtype=np.int64)
    pending = np.flatnonzero(earlier > 0)
    for _ in range(int(spec["max_rounds"])):
        if pending.size == 0:
            break
        limit = earlier[pending]
        draw = rng.random(pending.size) * cumulative[limit - 1]
        candidate = np.minimum(np.searchsorted(cumulative, draw, side="right"), limit - 1)
        engaged = path.state_at(candidate, joined[pending]) == ENGAGED
        referrer[referred[pending[engaged]]] = candidate[engaged]
        pending = pending[~engaged]
    return propensity, referrer
