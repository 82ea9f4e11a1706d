"""The Pareto/NBD model of repeat buying (Schmittlein, Morrison & Colombo 1987).

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your customers: who are
they and what will they do next? *Management Science* 33(1), 1-24.
Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD model and related
expressions. http://www.brucehardie.com/notes/009/

While alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
their lifetime is exponential with rate ``mu ~ Gamma(s, beta)`` (shapes, rates). The
likelihood of one customer's ``(x, t_x, T)`` is (Fader & Hardie 2005, eq. 19, written with
the integral that their A0 term stands for)::

    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s
          + s * integral_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du ]

The integral is the difference of two hypergeometric tails, evaluated in log space by
:mod:`retain.models.clv._tail_integral` for both the alpha >= beta and alpha < beta cases.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import gammaln
from sklearn.utils.validation import check_is_fitted

from retain.models.clv._tail_integral import (
    log_difference,
    log_integral_between,
    log_tail_integral,
)
from retain.models.clv.base import (
    BTYDEstimator,
    RFMSummary,
    as_result,
    central_gradient,
    check_horizon,
    check_rfm,
)

__all__ = ["ParetoNBD", "pareto_nbd_log_likelihood"]


def _log_bracket(r, alpha, s, beta, x, t_x, T, log_tail_T=None) -> np.ndarray:
    """log of the square bracket of the likelihood (alive term + died-in-(t_x, T] term).

    ``log_tail_T``, the log tail integral from T, may be passed in when already known.
    """
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    if log_tail_T is None:
        log_tail_T = log_tail_integral(r + x, s + 1, alpha, beta, T)
    log_tail_tx = log_tail_integral(r + x, s + 1, alpha, beta, t_x)
    died = np.log(s) + log_difference(log_tail_tx, log_tail_T)
    return np.logaddexp(alive, died)


def _row_log_likelihood(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood, vectorised, no aggregation."""
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return head + _log_bracket(r, alpha, s, beta, x, t_x, T)


def pareto_nbd_log_likelihood(
    params: Mapping[str, float], frequency: object, recency: object, T: object
) -> np.ndarray:
    """Log-likelihood of each customer under Pareto/NBD parameters ``r, alpha, s, beta``.

    Parameters
    ----------
    params : mapping
        Parameter values by name (``r``, ``alpha``, ``s``, ``beta``).
    frequency, recency, T : array-like
        Customer summaries, validated as in :meth:`ParetoNBD.fit`.

    Returns
    -------
    numpy.ndarray
        One log-likelihood per customer.
    """
    x, t_x, age = check_rfm(frequency, recency, T)
    values = [float(params[name]) for name in ParetoNBD.param_names]
    return _row_log_likelihood(*values, x, t_x, age)


def _log_likelihood(params: np.ndarray, data: RFMSummary) -> float:
    """Total log-likelihood of aggregated data."""
    r, alpha, s, beta = params
    xs, nx = data.x_values, data.x_weight
    total = float(np.sum(nx * gammaln(r + xs))) + data.n_customers * (
        r * np.log(alpha) + s * np.log(beta) - gammaln(r)
    )
    zero = _log_bracket(r, alpha, s, beta, 0.0, 0.0, data.zero_age)
    total += float(np.sum(data.zero_weight * zero))
    if len(data.x):
        # the tail from T ignores recency: once per distinct (x, T)
        tail_T = log_tail_integral(r + data.pair_x, s + 1, alpha, beta, data.pair_age)
        repeat = _log_bracket(r, alpha, s, beta, data.x, data.t_x, data.T, tail_T[data.pair_slot])
        total += float(np.sum(data.weight * repeat))
    return total


class ParetoNBD(BTYDEstimator):
    """Pareto/NBD model of purchase counts (Schmittlein, Morrison & Colombo 1987).

    Fitted by maximum likelihood over log-parameters with L-BFGS-B, after merging customers
    with identical ``(frequency, recency, T)``. The gradient is by central differences (the
    derivatives of the hypergeometric term in ``r`` and ``s`` have no closed form). Time
    units are those of ``recency`` and ``T``.

    Parameters
    ----------
    penalizer : float, default=0.0
        Coefficient of an L2 penalty on the parameters (see :class:`BTYDEstimator`).
    tol : float, default=1e-10
        Relative tolerance of the optimiser.
    max_iter : int, default=1000
        Maximum number of optimiser iterations.
    initial_params : dict or None, default=None
        Starting values for any of ``r, alpha, s, beta``.

    Attributes
    ----------
    params_ : dict
        Fitted ``r, alpha`` (gamma shape and rate of purchase rates) and ``s, beta`` (gamma
        shape and rate of dropout rates).
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
    Published estimates on the CDNOW sample (2357 customers, 39 weeks): r=0.553,
    alpha=10.58, s=0.606, beta=11.67, log-likelihood -9595.0.
    """

    param_names = ("r", "alpha", "s", "beta")

    def fit(self, frequency: object, recency: object, T: object) -> ParetoNBD:
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
        ParetoNBD
            The fitted estimator.
        """
        x, age, data = self._fit_inputs(frequency, recency, T)
        n = data.n_customers

        def mean_loss(theta: np.ndarray) -> float:
            return -_log_likelihood(np.exp(theta), data) / n

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return mean_loss(theta), central_gradient(mean_loss, theta)

        scale = max(age.mean(), 1e-6)
        guess = {"r": 1.0, "alpha": scale / max(x.mean(), 0.1), "s": 1.0, "beta": scale}
        self._minimise(objective, self._start(guess), with_gradient=True)
        self.log_likelihood_ = _log_likelihood(np.array(self._param_values()), data)
        self.n_customers_ = n
        return self

    def probability_alive(self, frequency: object, recency: object, T: object):
        """Probability that each customer is still alive at ``T``.

        The share of the likelihood coming from the "alive at T" term (Fader & Hardie 2005,
        eq. 18): ``(alpha+T)^-(r+x) (beta+T)^-s / bracket``.

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
        return as_result(np.exp(self._log_alive(x, t_x, age)))

    def _log_alive(self, x, t_x, age) -> np.ndarray:
        r, alpha, s, beta = self._param_values()
        alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
        return alive - _log_bracket(r, alpha, s, beta, x, t_x, age)

    def predict_purchases(self, t: object, frequency: object, recency: object, T: object):
        """Expected number of purchases in ``(T, T + t]`` given each customer's history.

        Fader & Hardie 2005, eq. 22::

            P(alive) * (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)]

        with the limit ``(r+x)(beta+T)/(alpha+T) * log((beta+T+t)/(beta+T))`` at s = 1.

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
        r, alpha, s, beta = self._param_values()
        log_kept = -np.log1p(horizon / (beta + age))  # log((beta+T)/(beta+T+t)) <= 0
        # E[lifetime left within t | alive] * (beta+T): (1 - kept^(s-1)) / (s-1), or -log at s=1
        lifetime = -log_kept if s == 1 else -np.expm1((s - 1) * log_kept) / (s - 1)
        per_alive = (r + x) / (alpha + age) * (beta + age) * lifetime
        return as_result(np.exp(self._log_alive(x, t_x, age)) * per_alive)

    def conditional_probability_no_purchase(
        self, t: object, frequency: object, recency: object, T: object
    ):
        """Probability of no purchase in ``(T, T + t]`` given each customer's history.

        Given alive at ``T`` with rates ``(lambda, mu)``, the customer buys in the period
        unless death comes first or the period ends: by memorylessness
        ``P(buy | lambda, mu) = lambda/(lambda+mu) * (1 - exp(-(lambda+mu) t))
        = lambda * integral_0^t exp(-(lambda+mu) u) du``. Given alive and the history,
        ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)`` independently, so
        ``E[lambda e^(-lambda u)] E[e^(-mu u)]`` integrates in closed form to::

            P(buy | alive) = (r+x) (alpha+T)^(r+x) (beta+T)^s
                             * integral_T^{T+t} (alpha+u)^-(r+x+1) (beta+u)^-s du

            P(X(t) = 0 | x, t_x, T) = 1 - P(alive) * P(buy | alive)

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
        r, alpha, s, beta = self._param_values()
        rx = r + x
        log_buy = (
            np.log(rx) + rx * np.log(alpha + age) + s * np.log(beta + age)
            + log_integral_between(rx + 1, s, alpha, beta, age, age + horizon)
        )  # fmt: skip
        return as_result(1.0 - np.exp(self._log_alive(x, t_x, age) + log_buy))
