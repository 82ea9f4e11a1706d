"""What a contact is expected to add: the value of a customer if retained, and per action the
expected incremental margin and net gain; the action is the eligible one that gains most.

**Value if retained.** ``clv`` is an expectation over the customer's survival: a BTYD model
predicts ``E[margin] = P(alive) x E[margin | alive]``, since a customer who has left buys
nothing, and so does any estimate of the unconditional expected margin (the ML spend model).
Multiplying it by the churn probability again would count churn twice and undervalue the
customers most at risk. What a save protects is the value of a customer who stays, so
:func:`clv_if_retained` divides the CLV by the probability that the customer is alive at the
cutoff, from the CLV model's own fitted BTYD purchase model (BG/NBD or Pareto/NBD, Fader,
Hardie and Lee 2005) whichever side predicts: ``E[margin | alive] = E[margin] / P(alive)``,
exact for BTYD and the same identity for the ML prediction. The probability is floored at
:data:`ALIVE_FLOOR`: a customer the model believes gone with near certainty is valued at most
``1 / ALIVE_FLOOR`` times the CLV, as the rate they would buy at if alive rests on a history
the model itself discounts. A model without a BTYD side is used as it is (``clv_if_retained ==
clv``; ``summary.json`` says which). ``value_at_risk = churn_probability x clv_if_retained``.

**Gains.** For each action ``a`` a customer is eligible for:

- with an uplift model (``retain-uplift``), ``expected_incremental_margin = incremental_margin
  __a`` and ``expected_churn_effect = churn_effect__a`` from its ``predict_effects(X)``;
- otherwise the playbook's ``save_rate`` is the prior: ``expected_incremental_margin =
  save_rate x value_at_risk`` and ``expected_churn_effect = -save_rate x churn_probability``.
  These are assumptions, not measurements (``summary.json`` and the report say so);

and ``expected_net_gain = expected_incremental_margin - cost``. **Eligibility**: the playbook's
default action is open to everyone, and each rule whose conditions a customer meets opens its
action to them. The recommended action is the eligible one with the highest expected net gain
(ties: the playbook's order of actions). A *sleeping dog* is a customer whom every eligible
action is predicted by the uplift model to harm (a higher churn probability or less retained
margin: negative uplift): do not contact. The prior never predicts harm: its gain is negative
only where the value at risk is (a customer whose expected profit, net of the cost to serve,
is below zero), which says the customer costs more than they bring, not that a contact drives
them away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from retain.serving.config import Playbook

__all__ = [
    "ALIVE_FLOOR",
    "PRIOR",
    "EffectsModel",
    "choose_actions",
    "clv_if_retained",
    "effect_columns",
    "eligibility",
    "gains_source",
    "retained_value_method",
]

#: Lowest probability of being alive that :func:`clv_if_retained` divides by.
ALIVE_FLOOR = 0.05
#: ``gains_source`` without an uplift model.
PRIOR = "playbook prior"
#: Feature columns of the BTYD side of a CLV model (``retain.models.clv.BTYD_COLUMNS``).
_BTYD = ("btyd_frequency", "btyd_recency", "btyd_T")

#: An uplift model: ``actions_`` and ``predict_effects(X)`` (see :func:`effect_columns`).
EffectsModel = Any


def effect_columns(action: str) -> tuple[str, str]:
    """Columns of an uplift model's ``predict_effects`` for ``action``: incremental margin
    and churn effect (treated minus untreated probability of churning)."""
    return f"incremental_margin__{action}", f"churn_effect__{action}"


def _purchase_model(model: object) -> object | None:
    """The fitted BTYD purchase model of a CLV model (its ``btyd_`` side), if it has one."""
    btyd = getattr(model, "btyd_", model)
    return getattr(btyd, "purchase_model_", None)


def clv_if_retained(model: object, X: pd.DataFrame, clv: np.ndarray) -> tuple[np.ndarray, str]:
    """The value of each customer if retained: ``clv / max(P(alive), ALIVE_FLOOR)``.

    Parameters
    ----------
    model : CLVModel or BTYDValue
        The CLV model that predicted ``clv``; its BTYD purchase model gives ``P(alive)``.
    X : pandas.DataFrame
        The features ``clv`` was predicted from (``btyd_frequency``, ``btyd_recency``,
        ``btyd_T`` in days).
    clv : array of float
        Predicted CLV.

    Returns
    -------
    values : ndarray of float
        Expected margin over the CLV horizon given the customer is alive at the cutoff.
    method : str
        ``"clv / P(alive)"``, or ``"clv"`` when the model has no BTYD side (values = clv).
    """
    clv = np.asarray(clv, dtype=float)
    purchases = _purchase_model(model)
    if purchases is None or not all(name in X.columns for name in _BTYD):
        return clv.copy(), "clv"
    frequency, recency, age = (X[name].to_numpy(float) for name in _BTYD)
    # as the BTYD side reads them: customers without a known age were valued at 0 (alive = 1)
    known = np.isfinite(age) & (age > 0)
    frequency = np.where(known & np.isfinite(frequency), frequency, 0.0)
    recency = np.where(known & np.isfinite(recency), np.minimum(recency, age), 0.0)
    alive = np.asarray(
        purchases.probability_alive(frequency, recency, np.where(known, age, 1.0)), dtype=float
    )
    alive = np.where(known & np.isfinite(alive), alive, 1.0)
    return clv / np.clip(alive, ALIVE_FLOOR, 1.0), "clv / P(alive)"


def retained_value_method(model: object) -> str:
    """How :func:`clv_if_retained` values a customer with this CLV model."""
    return "clv / P(alive)" if _purchase_model(model) is not None else "clv"


def eligibility(
    frame: pd.DataFrame, top_reason: pd.Series, playbook: Playbook
) -> dict[str, np.ndarray]:
    """Per action, which customers may get it: everyone the default action, and each rule's
    action those who meet every condition of the rule.

    ``frame`` holds the condition columns the rules name (``value_tier``, ``segment``,
    ``loyalty_class``, ``lifecycle_stage``, and ``influence_value`` for a range);
    ``top_reason`` is the feature behind each
    customer's first reason.
    """
    size = len(frame)
    allowed = {name: np.zeros(size, dtype=bool) for name in playbook.actions}
    allowed[playbook.default][:] = True
    columns: dict[str, pd.Series] = {"top_reason": top_reason}
    for rule in playbook.rules:
        match = np.ones(size, dtype=bool)
        for condition, values in rule.when.items():
            if condition not in columns:  # only the columns the rules name, each once
                columns[condition] = frame[condition].astype(str)
            match &= columns[condition].isin(values).to_numpy()
        for condition, (low, high) in rule.ranges.items():
            numbers = frame[condition].to_numpy(dtype=float)  # missing (NaN) meets no range
            if low is not None:
                match &= numbers >= low
            if high is not None:
                match &= numbers <= high
        allowed[rule.action] |= match
    return allowed


def choose_actions(
    allowed: Mapping[str, np.ndarray],
    playbook: Playbook,
    churn_probability: np.ndarray,
    value_at_risk: np.ndarray,
    effects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The recommended action per customer and what it is expected to add.

    Parameters
    ----------
    allowed : mapping of str to array of bool
        :func:`eligibility`.
    playbook : Playbook
        Costs and prior save rates of the actions.
    churn_probability, value_at_risk : array of float
        Per customer.
    effects : pandas.DataFrame, optional
        An uplift model's ``predict_effects(X)`` in the customers' order (columns
        :func:`effect_columns` per action it knows); actions it does not know use the prior.

    Returns
    -------
    pandas.DataFrame
        ``recommended_action``, ``action_cost``, ``save_rate`` (the prior's, for reference),
        ``expected_incremental_margin``, ``expected_churn_effect``, ``expected_net_gain`` and
        ``sleeping_dog`` (the uplift model predicts every eligible action to harm), indexed
        ``0..n-1``.
    """
    names: Sequence[str] = list(playbook.actions)
    risk = np.asarray(value_at_risk, dtype=float)
    probability = np.asarray(churn_probability, dtype=float)
    margin = np.empty((len(risk), len(names)))
    churn = np.empty_like(margin)
    harmed = np.zeros(margin.shape, dtype=bool)  # the prior never predicts harm
    for index, name in enumerate(names):
        margin_column, churn_column = effect_columns(name)
        if effects is not None and margin_column in effects.columns:
            margin[:, index] = effects[margin_column].to_numpy(float)
            churn[:, index] = effects[churn_column].to_numpy(float)
            harmed[:, index] = (churn[:, index] > 0) | (margin[:, index] < 0)
        else:
            rate = playbook.actions[name].save_rate
            margin[:, index] = rate * risk
            churn[:, index] = -rate * probability
    cost = np.array([playbook.actions[name].cost for name in names])
    eligible = np.column_stack([np.asarray(allowed[name], dtype=bool) for name in names])
    gain = np.where(eligible, margin - cost, -np.inf)
    gain = np.where(np.isnan(gain), -np.inf, gain)  # a missing value never wins
    best = np.argmax(gain, axis=1)  # the first of equal gains: the playbook's order
    rows = np.arange(len(risk))
    chosen = np.asarray(names, dtype=object)[best]
    return pd.DataFrame(
        {
            "recommended_action": chosen,
            "action_cost": cost[best],
            "save_rate": np.array([playbook.actions[n].save_rate for n in names])[best],
            "expected_incremental_margin": margin[rows, best],
            "expected_churn_effect": churn[rows, best],
            "expected_net_gain": margin[rows, best] - cost[best],
            "sleeping_dog": np.all(np.where(eligible, harmed, True), axis=1),
        }
    )


def gains_source(
    playbook: Playbook,
    uplift: Mapping[str, Any] | None,
    *,
    clv_days: int | None = None,
    discount_rate_monthly: float = 0.0,
) -> dict[str, Any]:
    """The ``gains`` entry of ``summary.json``: where the expected gains come from, and on
    which basis the expected incremental margin of each action is reckoned.

    Parameters
    ----------
    playbook : Playbook
        The actions.
    uplift : mapping or None
        The uplift champion (``name``, ``version``, ``actions``, ``horizon_days``), or
        ``None`` without one.
    clv_days : int, optional
        Horizon of the CLV the prior's value at risk comes from.
    discount_rate_monthly : float, default=0.0
        The CLV model's monthly discount rate.

    Returns
    -------
    dict
        ``source``, ``measured``, ``actions`` (per action: the prior or the model), ``note``
        and ``margin_basis``: per action ``{"days", "discount_rate_monthly"}``, the window and
        discounting of its predicted margin (the prior's: the CLV horizon, discounted as the
        CLV is; the uplift model's: its own horizon, undiscounted, as it learned the margin),
        on which ``retain backtest`` measures the realised margin (like for like).
    """
    prior_basis = {"days": clv_days, "discount_rate_monthly": float(discount_rate_monthly)}
    if uplift is None:
        return {
            "source": PRIOR,
            "measured": False,
            "actions": dict.fromkeys(playbook.actions, PRIOR),
            "note": "expected gains are assumptions, not measurements: the playbook's "
            "save_rate x value_at_risk, as no uplift model (retain-uplift) is registered; "
            "the control groups of each list measure them (retain backtest)",
            "margin_basis": {name: dict(prior_basis) for name in playbook.actions},
        }
    label = f"uplift model {uplift['name']} v{uplift['version']}"
    actions = {name: label if name in uplift["actions"] else PRIOR for name in playbook.actions}
    prior = sorted(name for name, source in actions.items() if source == PRIOR)
    model_basis = {"days": uplift.get("horizon_days"), "discount_rate_monthly": 0.0}
    return {
        "source": label,
        "measured": True,
        "actions": actions,
        "note": f"expected gains from {label}, learned from logged randomised campaigns"
        + (f"; {', '.join(prior)} use the playbook prior (not in the model)" if prior else ""),
        "margin_basis": {
            name: dict(prior_basis if source == PRIOR else model_basis)
            for name, source in actions.items()
        },
    }
