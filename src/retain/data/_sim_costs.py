"""Cost to serve in the simulated world: a cost log with known expected rates.

Every order costs its fulfilment (by order channel, per extra item, and a payment fee as a
share of the amount), every return its processing, every support ticket and complaint its
handling (by contact channel, times a lognormal factor of mean one), every promotional
contact a small fixed amount and every retention contact its action's cost. The same latent
traits that drive complaints and returns (issue propensity, return rate) and buying (purchase
rate, order value, channel mix) therefore drive the cost to serve, and its expected rates are
part of the truth, which is what the oracle needs for expected future cost and net profit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from retain.data._sim_events import Columns
from retain.data._sim_latent import PROPENSITIES, Population, expected_return_fraction
from retain.data._sim_params import INTERACTION_TYPES

__all__ = [
    "COST_KINDS",
    "contact_costs",
    "expected_cost_rates",
    "interaction_costs",
    "transaction_costs",
]

COST_KINDS = ("fulfilment", "return_processing", "support_ticket", "complaint", "campaign_contact")
ORDER_CHANNELS = ("web", "app", "store")
_HANDLED = ("support_ticket", "complaint")


def _rows(owner: np.ndarray, seconds: np.ndarray, kind: str, amount: np.ndarray) -> Columns:
    return {
        "owner": owner.astype(np.int64),
        "seconds": seconds.astype(np.int64),
        "kind": np.full(owner.size, COST_KINDS.index(kind), dtype=np.int8),
        "amount": np.round(amount, 2),
    }


def transaction_costs(rows: Columns, params: Mapping[str, Any]) -> list[Columns]:
    """Fulfilment of each order and processing of each return (deterministic given the row)."""
    spec = params["costs"]
    is_order = rows["amount"] > 0
    fulfilment = spec["fulfilment"]
    base = np.array([fulfilment["per_order"][name] for name in ORDER_CHANNELS])
    orders = {name: values[is_order] for name, values in rows.items()}
    order_cost = (
        base[orders["channel"]]
        + fulfilment["per_extra_item"] * (orders["quantity"] - 1)
        + fulfilment["payment_share"] * orders["amount"]
    )
    returns = {name: values[~is_order] for name, values in rows.items()}
    processing = spec["return_processing"]
    return_cost = processing["per_return"] + processing["share_of_amount"] * -returns["amount"]
    return [
        _rows(orders["owner"], orders["seconds"], "fulfilment", order_cost),
        _rows(returns["owner"], returns["seconds"], "return_processing", return_cost),
    ]


def interaction_costs(
    rng: np.random.Generator,
    events: Columns,
    vocabulary: list[str],
    params: Mapping[str, Any],
) -> list[Columns]:
    """Handling of tickets and complaints; promotional contacts (retention ones excluded)."""
    spec = params["costs"]
    parts = []
    for kind in _HANDLED:
        chosen = events["type"] == INTERACTION_TYPES.index(kind)
        per_channel = spec[kind]["per_contact"]
        price = np.array([per_channel.get(name, 0.0) for name in vocabulary])
        sigma = spec[kind]["sigma"]
        factor = np.exp(sigma * rng.standard_normal(int(chosen.sum())) - 0.5 * sigma**2)
        amount = price[events["channel"][chosen]] * factor
        parts.append(_rows(events["owner"][chosen], events["seconds"][chosen], kind, amount))
    promotional = events["type"] == INTERACTION_TYPES.index("campaign_contact")
    if "retention" in events:
        promotional &= ~events["retention"]
    amount = np.full(int(promotional.sum()), spec["campaign_contact"]["per_contact"])
    parts.append(
        _rows(
            events["owner"][promotional], events["seconds"][promotional], "campaign_contact", amount
        )
    )
    return parts


def contact_costs(owner: np.ndarray, seconds: np.ndarray, cost: np.ndarray) -> Columns:
    """Retention contacts at their action's cost."""
    return _rows(owner, seconds, "campaign_contact", cost)


def _channel_mean(channels: Mapping[str, float], prices: Mapping[str, float]) -> float:
    """Expected price of a contact whose channel is drawn with the given shares."""
    total = sum(channels.values())
    return sum(share / total * prices.get(name, 0.0) for name, share in channels.items())


def expected_cost_rates(population: Population, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The truth of the cost to serve, per customer.

    Returns
    -------
    dict of numpy.ndarray
        ``cost_per_order`` (expected fulfilment plus the expected processing of its return),
        ``service_cost_rate`` and ``service_cost_rate_disengaging`` (expected ticket and
        complaint handling per day while engaged or disengaging), ``contact_cost_rate``
        (promotional contacts per day, alive or not) and ``cost_to_serve_rate`` (the expected
        total per day while engaged, at average seasonality).
    """
    spec = params["costs"]
    fulfilment = spec["fulfilment"]
    order_value = params["spend"]["p"] / population.spend_scale * population.price_level
    store_share = 1.0 - population.web_share - population.app_share
    base = fulfilment["per_order"]
    cost_per_order = (
        population.web_share * base["web"]
        + population.app_share * base["app"]
        + store_share * base["store"]
        + fulfilment["per_extra_item"] * params["quantity_extra_mean"]
        + fulfilment["payment_share"] * order_value
    )
    processing = spec["return_processing"]
    returned = order_value * expected_return_fraction(params["returns"])
    cost_per_order += population.return_rate * (
        processing["per_return"] + processing["share_of_amount"] * returned
    )
    latent = {name: getattr(population, name) for name in PROPENSITIES}
    engaged = np.zeros(population.size)
    disengaging = np.zeros(population.size)
    for kind in _HANDLED:
        interaction = params["interactions"][kind]
        exponent = sum(interaction["effects"][name] * latent[name] for name in PROPENSITIES)
        rate = interaction["rate"] * np.exp(exponent)
        price = _channel_mean(interaction["channels"], spec[kind]["per_contact"])
        engaged += rate * price
        disengaging += rate * interaction["disengaged_multiplier"] * price
    contact = np.full(
        population.size, params["campaigns"]["rate"] * spec["campaign_contact"]["per_contact"]
    )
    return {
        "cost_per_order": cost_per_order,
        "service_cost_rate": engaged,
        "service_cost_rate_disengaging": disengaging,
        "contact_cost_rate": contact,
        "cost_to_serve_rate": population.purchase_rate * cost_per_order + engaged + contact,
    }
