"""Expected cost to serve over a CLV horizon, from each customer's own cost rates.

Cost to serve has three drivers (Kaplan's activity-based view of customer profitability):
what each order costs (fulfilment, shipping, payment, returns), what the customer costs while
a customer (tickets, complaints and any other kind), and what reaching them costs, whether
they still buy or not (campaign contacts go to everyone on file). :class:`CostToServe`
predicts them from BTYD:

    expected cost = order scale x cost per order x expected purchases (discounted)
                    + service scale x service cost per day x P(alive) x days (discounted)
                    + contact scale x contact cost per day x days (discounted)

with the BTYD purchase model of a fitted :class:`~retain.models.clv.value.CLVModel` giving the
expected purchases in each month of the horizon and the probability of being alive, and the
customer's history (:func:`retain.engines.rules.profit_and_loss` before the cutoff) giving the
rates (per order over their orders, per day over their tenure). The scales are 1 unless
learned: :meth:`CostToServe.fit` learns them by non-negative least squares from realised
future costs at an earlier cutoff (out of time).

Expected future profit = CLV (discounted margin) - expected cost to serve (discounted); with no
cost at all both rates are 0 and the profit equals the margin CLV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from retain.models.clv.value import _btyd_inputs, discount_schedule

__all__ = [
    "CONTACT_COST_KINDS",
    "COST_INPUTS",
    "ORDER_COST_KINDS",
    "CostToServe",
    "cost_drivers",
    "cost_rates",
]

#: Cost kinds an order causes.
ORDER_COST_KINDS = ("order", "fulfilment", "shipping", "payment", "return", "return_processing")
#: Cost kinds of reaching a customer, alive or not; every other kind is service.
CONTACT_COST_KINDS = ("campaign_contact",)
#: Columns :meth:`CostToServe.predict` reads (from :func:`cost_drivers`).
COST_INPUTS = ("expected_orders", "cost_per_order", "alive_days", "service_cost_per_day",
               "days", "contact_cost_per_day")  # fmt: skip


def cost_rates(pnl: pd.DataFrame) -> pd.DataFrame:
    """Each customer's cost per order, and service and contact cost per day of tenure, from
    their profit and loss (:data:`retain.engines.rules.PNL_COLUMNS`); 0 without orders or
    tenure.

    Returns
    -------
    pandas.DataFrame
        ``cost_per_order``, ``service_cost_per_day`` and ``contact_cost_per_day``, on
        ``pnl``'s index.
    """
    per_order = sum(pnl[f"cost_{kind}"] for kind in ORDER_COST_KINDS).to_numpy(float)
    contact = sum(pnl[f"cost_{kind}"] for kind in CONTACT_COST_KINDS).to_numpy(float)
    service = pnl["cost_to_serve"].to_numpy(float) - per_order - contact
    orders = pnl["orders"].to_numpy(float)
    days = pnl["tenure_months"].to_numpy(float) * 365.25 / 12

    def per(amount: np.ndarray, count: np.ndarray) -> np.ndarray:
        return np.divide(amount, count, out=np.zeros(len(pnl)), where=count > 0)

    return pd.DataFrame(
        {
            "cost_per_order": per(per_order, orders),
            "service_cost_per_day": per(service, days),
            "contact_cost_per_day": per(contact, days),
        },
        index=pnl.index,
    )


def cost_drivers(clv: object, X: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """The inputs of :class:`CostToServe` for the customers of snapshot rows ``X``.

    Parameters
    ----------
    clv : CLVModel
        Fitted; its BTYD side gives the expected purchases per month of its horizon and the
        probability of being alive.
    X : pandas.DataFrame
        Snapshot features (the BTYD summary columns).
    rates : pandas.DataFrame
        :func:`cost_rates` of the same customers, row by row with ``X``.

    Returns
    -------
    pandas.DataFrame
        :data:`COST_INPUTS`, discounted as the CLV is, on ``X``'s index.
    """
    btyd = clv.btyd_
    boundaries, factors = discount_schedule(btyd.horizon_days, btyd.discount_rate_monthly)
    orders = btyd.monthly_purchases(X) @ factors
    frequency, recency, age, _, known = _btyd_inputs(X)
    alive = np.where(known, btyd.purchase_model_.probability_alive(frequency, recency, age), 0.0)
    days = float(np.diff(boundaries) @ factors)
    return pd.DataFrame(
        {
            "expected_orders": orders,
            "cost_per_order": rates["cost_per_order"].to_numpy(float),
            "alive_days": alive * days,
            "service_cost_per_day": rates["service_cost_per_day"].to_numpy(float),
            "days": np.full(len(X), days),
            "contact_cost_per_day": rates["contact_cost_per_day"].to_numpy(float),
        },
        index=X.index,
    )


class CostToServe(BaseEstimator):
    """Expected discounted cost to serve: cost per order x expected orders + service cost per
    day x expected days alive + contact cost per day x days, each part scaled (see the module
    docstring).

    Parameters
    ----------
    learn_scales : bool, default=True
        Whether :meth:`fit` learns the two scales from realised costs (else they stay 1).

    Attributes
    ----------
    order_scale_ : float
        Multiplies cost per order x expected orders.
    service_scale_ : float
        Multiplies service cost per day x expected days alive.
    contact_scale_ : float
        Multiplies contact cost per day x days.
    """

    def __init__(self, learn_scales: bool = True):
        self.learn_scales = learn_scales

    def fit(self, X: pd.DataFrame, y: object = None) -> CostToServe:
        """Learn the scales from the drivers ``X`` (:func:`cost_drivers` at an earlier cutoff)
        and the realised cost to serve ``y`` over the horizon after it; without ``y`` (or
        when nothing cost) every scale is 1."""
        design = np.column_stack(self._parts(X))
        scales = np.ones(design.shape[1])
        if y is not None and self.learn_scales:
            target = np.asarray(y, dtype=float)
            usable = np.isfinite(target) & np.isfinite(design).all(axis=1)
            design, target = design[usable], target[usable]
            present = design.any(axis=0)  # a part that is 0 for everyone keeps its scale
            if target.any() and present.any():
                scales[present], _ = nnls(design[:, present], target)
        self.order_scale_, self.service_scale_, self.contact_scale_ = map(float, scales)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected discounted cost to serve over the horizon, per row of ``X``."""
        return self.predict_parts(X).sum(axis=1).to_numpy()

    def predict_parts(self, X: pd.DataFrame) -> pd.DataFrame:
        """The three parts of :meth:`predict`, scaled: ``order``, ``service``, ``contact``."""
        check_is_fitted(self, "order_scale_")
        order, service, contact = self._parts(X)
        return pd.DataFrame(
            {
                "order": self.order_scale_ * order,
                "service": self.service_scale_ * service,
                "contact": self.contact_scale_ * contact,
            },
            index=X.index,
        )

    @staticmethod
    def _parts(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        missing = [name for name in COST_INPUTS if name not in X.columns]
        if missing:
            raise ValueError(f"CostToServe needs columns {missing} (see cost_drivers)")
        values = {name: np.nan_to_num(X[name].to_numpy(float)) for name in COST_INPUTS}
        order = values["expected_orders"] * values["cost_per_order"]
        service = values["alive_days"] * values["service_cost_per_day"]
        contact = values["days"] * values["contact_cost_per_day"]
        return order, service, contact
