"""Expected cost to serve over a CLV horizon, from each customer's own cost rates.

Cost to serve has two drivers (Kaplan's activity-based view of customer profitability): what
each order costs (fulfilment, shipping, payment, returns) and what the customer costs while a
customer (tickets, complaints, contacts). :class:`CostToServe` predicts both from BTYD:

    expected cost = order scale x cost per order x expected purchases (discounted)
                    + service scale x service cost per day x P(alive) x days (discounted)

with the BTYD purchase model of a fitted :class:`~retain.models.clv.value.CLVModel` giving the
expected purchases in each month of the horizon and the probability of being alive, and the
customer's history (:func:`retain.engines.rules.profit_and_loss` before the cutoff) giving the
rates. The scales are 1 unless learned: :meth:`CostToServe.fit` learns them by non-negative
least squares from realised future costs at an earlier cutoff (out of time).

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

__all__ = ["ORDER_COST_KINDS", "COST_INPUTS", "CostToServe", "cost_rates", "cost_drivers"]

#: Cost kinds an order causes (the others accrue with time as a customer).
ORDER_COST_KINDS = ("order", "fulfilment", "shipping", "payment", "return", "return_processing")
#: Columns :meth:`CostToServe.predict` reads (from :func:`cost_drivers`).
COST_INPUTS = ("expected_orders", "cost_per_order", "alive_days", "service_cost_per_day")


def cost_rates(pnl: pd.DataFrame) -> pd.DataFrame:
    """Each customer's cost per order and service cost per day of tenure, from their profit and
    loss (:data:`retain.engines.rules.PNL_COLUMNS`); 0 without orders or tenure.

    Returns
    -------
    pandas.DataFrame
        ``cost_per_order`` and ``service_cost_per_day``, on ``pnl``'s index.
    """
    per_order = sum(pnl[f"cost_{kind}"] for kind in ORDER_COST_KINDS)
    service = pnl["cost_to_serve"] - per_order
    orders = pnl["orders"].to_numpy(float)
    days = pnl["tenure_months"].to_numpy(float) * 365.25 / 12
    return pd.DataFrame(
        {
            "cost_per_order": np.divide(
                per_order, orders, out=np.zeros(len(pnl)), where=orders > 0
            ),
            "service_cost_per_day": np.divide(
                service.to_numpy(float), days, out=np.zeros(len(pnl)), where=days > 0
            ),
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
        },
        index=X.index,
    )


class CostToServe(BaseEstimator):
    """Expected discounted cost to serve: cost per order x expected orders + service cost per
    day x expected days alive, each part scaled (see the module docstring).

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
    """

    def __init__(self, learn_scales: bool = True):
        self.learn_scales = learn_scales

    def fit(self, X: pd.DataFrame, y: object = None) -> CostToServe:
        """Learn the scales from the drivers ``X`` (:func:`cost_drivers` at an earlier cutoff)
        and the realised cost to serve ``y`` over the horizon after it; without ``y`` (or
        when nothing cost) both scales are 1."""
        order, service = self._parts(X)
        self.order_scale_, self.service_scale_ = 1.0, 1.0
        if y is None or not self.learn_scales:
            return self
        target = np.asarray(y, dtype=float)
        design = np.column_stack([order, service])
        usable = np.isfinite(target) & np.isfinite(design).all(axis=1)
        design, target = design[usable], target[usable]
        if not usable.any() or not target.any():
            return self
        present = design.any(axis=0)  # a part that is 0 for everyone keeps its scale
        if present.any():
            scales, _ = nnls(design[:, present], target)
            learned = iter(scales)
            self.order_scale_, self.service_scale_ = (
                float(next(learned)) if flag else 1.0 for flag in present
            )
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected discounted cost to serve over the horizon, per row of ``X``."""
        check_is_fitted(self, "order_scale_")
        order, service = self._parts(X)
        return self.order_scale_ * order + self.service_scale_ * service

    @staticmethod
    def _parts(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [name for name in COST_INPUTS if name not in X.columns]
        if missing:
            raise ValueError(f"CostToServe needs columns {missing} (see cost_drivers)")
        values = {name: np.nan_to_num(X[name].to_numpy(float)) for name in COST_INPUTS}
        order = values["expected_orders"] * values["cost_per_order"]
        service = values["alive_days"] * values["service_cost_per_day"]
        return order, service
