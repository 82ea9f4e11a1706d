"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way:
an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284.

While active, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
(shape, rate); after each repeat purchase they drop out with probability ``p ~ Beta(a, b)``.
The likelihood of one customer's ``(x, t_x, T)`` is (FHL 2005, eq. 6)::

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))

evaluated here in log space (log-sum-exp of the two terms), so it neither overflows nor
underflows with frequencies in the thousands.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import digamma, expit, gammaln
from sklearn.utils.validation import check_is_fitted

from retain.models.clv._bgnbd_expectation import expected_purchases_if_alive
from retain.models.clv.base import (
    BTYDEstimator,
    RFMSummary,
    as_result,
    check_horizon,
    check_rfm,
    distinct_rows,
)

__all__ = ["BGNBD", "bgnbd_log_likelihood"]


def _row_log_likelihood(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood (FHL 2005 eq. 6), vectorised, no aggregation."""
    common = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    )  # fmt: skip
    alive = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # log[a / (b+x-1)] - (r+x) log(alpha+t_x); only defined (and needed) when x > 0
    safe_x = np.where(repeat, x, 1.0)
    dead = np.log(a) - np.log(b + safe_x - 1) - (r + safe_x) * np.log(alpha + t_x)
    dead = np.where(repeat, dead, -np.inf)
    return common + np.logaddexp(alive, dead)


def bgnbd_log_likelihood(
    params: Mapping[str, float], frequency: object, recency: object, T: object
) -> np.ndarray:
    """Log-likelihood of each customer under BG/NBD parameters ``r, alpha, a, b``.

    Parameters
    ----------
    params : mapping
        Parameter values by name (``r``, ``alpha``, ``a``, ``b``).
    frequency, recency, T : array-like
        Customer summaries, validated as in :meth:`BGNBD.fit`.

    Returns
    -------
    numpy.ndarray
        One log-likelihood per customer.
    """
    x, t_x, age = check_rfm(frequency, recency, T)
    values = [float(params[name]) for name in BGNBD.param_names]
    return _row_log_likelihood(*values, x, t_x, age)


def _log_likelihood_and_gradient(params: np.ndarray, data: RFMSummary) -> tuple[float, np.ndarray]:
    """Total log-likelihood of aggregated data and its gradient in ``(r, alpha, a, b)``."""
    r, alpha, a, b = params
    n, xs, nx = data.n_customers, data.x_values, data.x_weight
    # Terms that depend on a customer only through x: once per distinct frequency.
    total = _wsum(nx, gammaln(r + xs) + gammaln(b + xs) - gammaln(a + b + xs)) + n * (
        r * np.log(alpha) - gammaln(r) + gammaln(a + b) - gammaln(b)
    )
    psi_abx = _wsum(nx, digamma(a + b + xs))
    grad = np.array(
        [
            _wsum(nx, digamma(r + xs)) + n * (np.log(alpha) - digamma(r)),
            n * r / alpha,
            n * digamma(a + b) - psi_abx,
            n * (digamma(a + b) - digamma(b)) + _wsum(nx, digamma(b + xs)) - psi_abx,
        ]
    )
    # No repeat purchase: the customer is certainly alive; only -r log(alpha + T) remains.
    log_zero = np.log(alpha + data.zero_age)
    total -= r * _wsum(data.zero_weight, log_zero)
    grad[0] -= _wsum(data.zero_weight, log_zero)
    grad[1] -= r * _wsum(data.zero_weight, 1.0 / (alpha + data.zero_age))
    if len(data.x):
        total += _add_repeat_rows(r, alpha, a, b, data, grad)
    return total, grad


def _wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Weighted sum; avoids BLAS ``dot``, whose threads only add overhead at these sizes."""
    return float(np.sum(weights * values))


def _add_repeat_rows(r, alpha, a, b, data: RFMSummary, grad: np.ndarray) -> float:
    """Rows with x > 0: adds their gradient to ``grad`` in place, returns their log-likelihood.

    With ``D = log(alpha+T) - log(alpha+t_x) >= 0`` and ``q = a/(b+x-1)``, the bracket of
    eq. 6 is ``(alpha+t_x)^-(r+x) * (q + exp(-(r+x) D))``: one exp and one log per row, no
    overflow (the exponent is <= 0) and no underflow to log(0) (``q > 0``).
    """
    rx, w = r + data.x, data.weight
    log_T = np.log(alpha + data.age_values)[data.age_slot]
    log_tx = np.log(alpha + data.t_x)
    repeat = data.x_values > 0
    inv_bx = np.divide(1.0, b + data.x_values - 1, out=np.zeros_like(data.x_values), where=repeat)
    q = (a * inv_bx)[data.slot]
    still_there = np.exp(-rx * (log_T - log_tx))
    bracket = q + still_there
    total = _wsum(w, np.log(bracket) - rx * log_tx)
    # weighted shares of the two explanations: alive at T, or dropped after the last purchase
    alive_share = w * still_there / bracket
    dead_share = w - alive_share
    grad[0] -= _wsum(alive_share, log_T) + _wsum(dead_share, log_tx)
    grad[1] -= _wsum(rx, alive_share / (alpha + data.T) + dead_share / (alpha + data.t_x))
    grad[2] += dead_share.sum() / a
    grad[3] -= _wsum(dead_share, inv_bx[data.slot])
    return total


class BGNBD(BTYDEstimator):
    """Beta-geometric/NBD model of purchase counts (Fader, Hardie & Lee 2005).

    Fitted by maximum likelihood over log-parameters with L-BFGS-B and the analytic gradient,
    after merging customers with identical ``(frequency, recency, T)``. Time units are those
    of ``recency`` and ``T`` (and ``alpha`` is in the same units).

    Parameters
    ----------
    penalizer : float, default=0.0
        Coefficient of an L2 penalty on the parameters (see :class:`BTYDEstimator`).
    tol : float, default=1e-10
        Relative tolerance of the optimiser.
    max_iter : int, default=1000
        Maximum number of optimiser iterations.
    initial_params : dict or None, default=None
        Starting values for any of ``r, alpha, a, b``.

    Attributes
    ----------
    params_ : dict
        Fitted ``r, alpha`` (gamma shape and rate of purchase rates) and ``a, b`` (beta
        distribution of the dropout probability).
    log_likelihood_ : float
        Maximised total log-likelihood (without the penalty).
    n_customers_ : int
        Number of customers fitted.
    converged_ : bool
        Whether the optimiser reported convergence.
    n_iter_ : int
        Optimiser iterations.

    Notes
    -----
    Published estimates on the CDNOW sample (2357 customers, 39 weeks): r=0.243,
    alpha=4.414, a=0.793, b=2.426, log-likelihood -9582.4.
    """

    param_names = ("r", "alpha", "a", "b")

    def fit(self, frequency: object, recency: object, T: object) -> BGNBD:
        """Fit the model to customer summaries.

        Parameters
        ----------
        frequency : array-like of int
            Number of repeat purchases of each customer.
        recency : array-like of float
            Customer age at the last repeat purchase (0 for customers without one).
        T : float or array-like of float
            Customer age at the end of the observation period.

        Returns
        -------
        BGNBD
            The fitted estimator.
        """
        x, age, data = self._fit_inputs(frequency, recency, T)
        n = data.n_customers

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(theta)
            total, grad = _log_likelihood_and_gradient(params, data)
            return -total / n, -grad * params / n

        guess = {"r": 1.0, "alpha": max(age.mean(), 1e-6) / max(x.mean(), 0.1), "a": 1.0, "b": 1.0}
        self._minimise(objective, self._start(guess), with_gradient=True)
        self.log_likelihood_ = float(
            _log_likelihood_and_gradient(np.array(self._param_values()), data)[0]
        )
        self.n_customers_ = n
        return self

    def probability_alive(self, frequency: object, recency: object, T: object):
        """Probability that each customer is still active at ``T`` (FHL 2005, eq. 13).

        ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``; customers without
        repeat purchases cannot have dropped out under BG/NBD, so theirs is 1.

        Parameters
        ----------
        frequency, recency, T : array-like
            Customer summaries, as in :meth:`fit`.

        Returns
        -------
        float or numpy.ndarray
        """
        check_is_fitted(self)
        x, t_x, age = check_rfm(frequency, recency, T)
        return as_result(self._alive(x, t_x, age))

    def _alive(self, x, t_x, age) -> np.ndarray:
        r, alpha, a, b = self._param_values()
        repeat = x > 0
        safe_x = np.where(repeat, x, 1.0)
        log_ratio = np.log(alpha + age) - np.log(alpha + t_x)
        log_odds_dead = np.log(a) - np.log(b + safe_x - 1) + (r + x) * log_ratio
        return np.where(repeat, expit(-log_odds_dead), 1.0)

    def predict_purchases(self, t: object, frequency: object, recency: object, T: object):
        """Expected number of purchases in ``(T, T + t]`` given each customer's history.

        FHL 2005, eq. 10: ``P(alive) * E[X(t) | alive]``, where given alive
        ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)``, so that::

            E[X(t) | alive] = E_p[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p]
              = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(a-1)
                                       * 2F1(a+b-1-r, a-1; a+b+x-1; t/(alpha+T+t))]

        (the paper's hypergeometric after Euler's transformation). Evaluated stably for any
        parameters, including a = 1 and frequencies in the thousands; see
        :mod:`retain.models.clv._bgnbd_expectation`.

        Parameters
        ----------
        t : float or array-like of float
            Length of the prediction period, in the units of ``T``.
        frequency, recency, T : array-like
            Customer summaries, as in :meth:`fit`.

        Returns
        -------
        float or numpy.ndarray
        """
        check_is_fitted(self)
        horizon = check_horizon(t)
        x, t_x, age = check_rfm(frequency, recency, T)
        horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
        r, alpha, a, b = self._param_values()
        # the expectation given alive ignores recency: once per distinct (x, t/(alpha+T))
        (x_d, w_d), inverse = distinct_rows(np.ravel(x), np.ravel(horizon / (alpha + age)))
        if_alive = expected_purchases_if_alive(w_d, x_d, r, a, b)[inverse].reshape(x.shape)
        return as_result(self._alive(x, t_x, age) * if_alive)

    def conditional_probability_no_purchase(
        self, t: object, frequency: object, recency: object, T: object
    ):
        """Probability of no purchase in ``(T, T + t]`` given each customer's history.

        A customer who has dropped out buys nothing. One who is alive at ``T`` stays alive
        until their next purchase (BG/NBD dropout happens only right after a purchase), so
        they buy nothing in the period with probability ``exp(-lambda t)``; given alive and
        the history, ``lambda ~ Gamma(r+x, alpha+T)``. Hence::

            P(X(t) = 0 | x, t_x, T) = (1 - P(alive)) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x)

        Parameters
        ----------
        t : float or array-like of float
            Length of the period, in the units of ``T``.
        frequency, recency, T : array-like
            Customer summaries, as in :meth:`fit`.

        Returns
        -------
        float or numpy.ndarray
        """
        check_is_fitted(self)
        horizon = check_horizon(t)
        x, t_x, age = check_rfm(frequency, recency, T)
        horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
        r, alpha, _, _ = self._param_values()
        alive = self._alive(x, t_x, age)
        quiet_if_alive = np.exp(-(r + x) * np.log1p(horizon / (alpha + age)))
        return as_result(1.0 - alive * (1.0 - quiet_if_alive))
