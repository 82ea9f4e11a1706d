"""The Gamma-Gamma model of average spend per transaction (Fader, Hardie & Lee 2005).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
customer base analysis. *Journal of Marketing Research* 42(4), 415-430.
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://www.brucehardie.com/notes/025/

A customer's transaction values are ``Gamma(p, nu)`` (shape, rate) with ``nu ~ Gamma(q, v)``
across customers, independent of the purchase process. The observed mean ``m`` of ``x``
transactions is ``Gamma(p x, x nu)`` given ``nu``, so its marginal log-density is::

    log f(m | x) = lgamma(px+q) - lgamma(px) - lgamma(q) + q log v + px log x
                   + (px-1) log m - (px+q) log(v + x m)

Only customers with at least one repeat transaction (``x > 0``) carry information.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import digamma, gammaln
from sklearn.utils.validation import check_is_fitted

from retain.models.clv.base import (
    BTYDEstimator,
    as_result,
    check_frequency,
    reject_if,
    to_float_array,
)

__all__ = ["GammaGamma", "gamma_gamma_log_likelihood"]


def _check_spend(frequency: object, monetary_value: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate (x, m); m must be finite and positive where x > 0 and is ignored elsewhere."""
    x = check_frequency(frequency)
    m = to_float_array("monetary_value", monetary_value)
    try:
        x, m = np.broadcast_arrays(x, m)
    except ValueError as exc:
        shapes = f"{x.shape}, {m.shape}"
        raise ValueError(f"frequency and monetary_value have incompatible shapes {shapes}") from exc
    repeat = x > 0
    bad_finite = repeat & ~np.isfinite(m)
    reject_if(
        "monetary_value", np.ravel(bad_finite), np.ravel(m), "must be finite when frequency > 0"
    )
    bad_sign = repeat & ~(m > 0)
    reject_if(
        "monetary_value", np.ravel(bad_sign), np.ravel(m), "must be positive when frequency > 0"
    )
    return x, np.where(repeat, m, 0.0)


def _row_log_likelihood(p, q, v, x, m) -> np.ndarray:
    """Log-density of each repeat customer's mean spend (x > 0)."""
    px = p * x
    return (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + px * np.log(x)
        + (px - 1) * np.log(m) - (px + q) * np.log(v + x * m)
    )  # fmt: skip


def gamma_gamma_log_likelihood(
    params: Mapping[str, float], frequency: object, monetary_value: object
) -> np.ndarray:
    """Log-likelihood of each customer's mean spend under parameters ``p, q, v``.

    Parameters
    ----------
    params : mapping
        Parameter values by name (``p``, ``q``, ``v``).
    frequency : array-like of int
        Number of repeat transactions.
    monetary_value : array-like of float
        Mean value of those transactions.

    Returns
    -------
    numpy.ndarray
        One log-likelihood per customer; 0 for customers without repeat transactions.
    """
    x, m = _check_spend(frequency, monetary_value)
    repeat = x > 0
    values = [float(params[name]) for name in GammaGamma.param_names]
    out = np.zeros(x.shape)
    out[repeat] = _row_log_likelihood(*values, x[repeat], m[repeat])
    return out


class _SpendData:
    """Repeat customers, with terms that depend only on x computed per distinct x."""

    def __init__(self, x: np.ndarray, m: np.ndarray):
        self.x, self.m = x, m
        self.x_values, self.slot, counts = np.unique(x, return_inverse=True, return_counts=True)
        self.x_weight = counts.astype(np.float64)
        self.n = len(x)
        self.sum_x_log_x = float(np.sum(x * np.log(x)))
        self.sum_x_log_m = float(np.sum(x * np.log(m)))
        self.sum_log_m = float(np.sum(np.log(m)))

    def log_likelihood_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = params
        xs, nx = self.x_values, self.x_weight
        log_spent = np.log(v + self.x * self.m)
        shape_x = p * self.x + q
        total = (
            np.sum(nx * (gammaln(p * xs + q) - gammaln(p * xs))) - self.n * gammaln(q)
            + self.n * q * np.log(v) + p * (self.sum_x_log_x + self.sum_x_log_m)
            - self.sum_log_m - np.sum(shape_x * log_spent)
        )  # fmt: skip
        psi_sum = digamma(p * xs + q)
        grad = np.array(
            [
                np.sum(nx * xs * (psi_sum - digamma(p * xs)))
                + self.sum_x_log_x
                + self.sum_x_log_m
                - np.sum(self.x * log_spent),
                np.sum(nx * psi_sum) - self.n * digamma(q) + self.n * np.log(v) - log_spent.sum(),
                self.n * q / v - np.sum(shape_x / (v + self.x * self.m)),
            ]
        )
        return float(total), grad


class GammaGamma(BTYDEstimator):
    """Gamma-Gamma model of customers' average transaction value (Fader, Hardie & Lee 2005).

    Fitted by maximum likelihood over log-parameters with L-BFGS-B and the analytic
    gradient, on customers with at least one repeat transaction. Assumes spend is independent
    of purchase frequency (check the correlation before relying on it).

    Parameters
    ----------
    penalizer : float, default=0.0
        Coefficient of an L2 penalty on the parameters (see :class:`BTYDEstimator`).
    tol : float, default=1e-10
        Relative tolerance of the optimiser.
    max_iter : int, default=1000
        Maximum number of optimiser iterations.
    initial_params : dict or None, default=None
        Starting values for any of ``p, q, v``.

    Attributes
    ----------
    params_ : dict
        Fitted ``p`` (shape of transaction values) and ``q, v`` (shape and rate of the
        gamma distribution of the per-customer rate ``nu``).
    log_likelihood_ : float
        Maximised total log-likelihood (without the penalty).
    n_customers_ : int
        Number of customers fitted (those with ``frequency > 0``).
    converged_ : bool
        Whether the optimiser reported convergence.
    n_iter_ : int
        Optimiser iterations.

    Notes
    -----
    Published estimates on the 946 repeat customers of the CDNOW sample: p=6.25, q=3.74,
    v=15.44.
    """

    param_names = ("p", "q", "v")

    def fit(self, frequency: object, monetary_value: object) -> GammaGamma:
        """Fit the model to repeat customers' mean transaction values.

        Parameters
        ----------
        frequency : array-like of int
            Number of repeat transactions; customers with 0 are ignored.
        monetary_value : array-like of float
            Mean value of the repeat transactions (positive where ``frequency > 0``; any
            value, NaN included, where it is 0).

        Returns
        -------
        GammaGamma
            The fitted estimator.
        """
        self._check_settings()
        x, m = _check_spend(frequency, monetary_value)
        x, m = np.ravel(x), np.ravel(m)
        repeat = x > 0
        if not repeat.any():
            raise ValueError("frequency has no positive values; need repeat customers")
        data = _SpendData(x[repeat], m[repeat])

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(theta)
            total, grad = data.log_likelihood_and_gradient(params)
            return -total / data.n, -grad * params / data.n

        # p = 1, q = 2 make the population mean spend p v / (q - 1) equal to v
        guess = {"p": 1.0, "q": 2.0, "v": float(np.mean(data.m))}
        self._minimise(objective, self._start(guess), with_gradient=True)
        params = np.array(self._param_values())
        self.log_likelihood_ = data.log_likelihood_and_gradient(params)[0]
        self.n_customers_ = data.n
        return self

    def expected_spend(self, frequency: object, monetary_value: object):
        """Expected average transaction value of each customer given their history.

        FHL 2005 (RFM and CLV), eq. 5: a weighted mean of the population mean
        ``p v / (q - 1)`` and the customer's own mean ``m``::

            E[M | x, m] = p (v + x m) / (p x + q - 1)

        Customers with ``frequency == 0`` get the population mean (their
        ``monetary_value`` is ignored); it is infinite when ``q <= 1``.

        Parameters
        ----------
        frequency : array-like of int
            Number of repeat transactions.
        monetary_value : array-like of float
            Mean value of those transactions.

        Returns
        -------
        float or numpy.ndarray
        """
        check_is_fitted(self)
        x, m = _check_spend(frequency, monetary_value)
        p, q, v = self._param_values()
        denominator = p * x + q - 1
        with np.errstate(divide="ignore"):
            spend = np.where(denominator > 0, p * (v + x * m) / denominator, np.inf)
        return as_result(spend)
