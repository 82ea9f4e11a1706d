"""log J = log of the integral from t to infinity of (alpha+u)^-m (beta+u)^-n du, computed stably.

Every Pareto/NBD quantity with a Gauss hypergeometric function in it reduces to differences
of this tail integral (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model and
Related Expressions": the A0 term of the likelihood is ``J(t_x) - J(T)``). With
``big = max(alpha, beta)`` carrying exponent ``k`` and ``small`` carrying ``n``::

    J = (big+t)^-k (small+t)^(1-n) / (k+n-1) * 2F1(1, k; k+n; z),  z = (big-small)/(big+t)

which is the paper's ``2F1(r+s+x, s+1; r+s+x+1; .)`` (alpha >= beta) or
``2F1(r+s+x, r+x; r+s+x+1; .)`` (alpha < beta) after Euler's transformation. The remaining
``2F1(1, k; k+n; z)`` has positive terms, lies between 1 and 1/(1-z) and is evaluated by the
continued fraction of the incomplete beta function (Numerical Recipes, 3rd ed., section 6.4),
which stays accurate for k in the thousands where the plain series and
``scipy.special.hyp2f1`` fail. Close to z = 1 (extreme alpha/beta ratios) the fraction
converges slowly; there the integral itself is computed by the trapezoidal rule in a
logarithmic variable, which is exponentially accurate for it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logsumexp

__all__ = ["log_difference", "log_integral_between", "log_tail_integral"]

CF_TOL = 1e-15
CF_MAX_ITER = 400
# Quadrature: beyond TAIL_CUT (+ log terms) from the kinks, the log-integrand is linear.
TAIL_CUT = 40.0
MAX_STEP = 0.25
DROP = 46.0  # nodes cover where the integrand is within exp(-DROP) of its peak
# The continued fraction needs about 10/sqrt(1-z) steps; closer to z = 1 than this,
# quadrature (a few hundred nodes at most) is cheaper.
QUADRATURE_BELOW = 0.02
QUADRATURE_CELLS = 1_000_000  # rows x nodes evaluated at once


def log_tail_integral(k_alpha, k_beta, alpha, beta, t) -> np.ndarray:
    """Log of the integral over u in (t, inf) of ``(alpha+u)^-k_alpha (beta+u)^-k_beta``.

    Parameters
    ----------
    k_alpha, k_beta : array-like of float
        Positive exponents with ``k_alpha + k_beta > 1`` (so that the integral converges).
    alpha, beta : float or array-like of float
        Positive shifts.
    t : array-like of float
        Non-negative lower limits.

    Returns
    -------
    numpy.ndarray
        The logarithm of the integral, broadcast over the inputs.
    """
    k_alpha, k_beta, alpha, beta, t = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (k_alpha, k_beta, alpha, beta, t))
    )
    shape = t.shape
    k_alpha, k_beta, alpha, beta, t = (np.ravel(v) for v in (k_alpha, k_beta, alpha, beta, t))
    swap = alpha < beta  # the integrand is symmetric under (alpha, k_alpha) <-> (beta, k_beta)
    big, small = np.where(swap, beta, alpha), np.where(swap, alpha, beta)
    k, n = np.where(swap, k_beta, k_alpha), np.where(swap, k_alpha, k_beta)
    big_t, small_t = big + t, small + t
    # z = (big - small)/big_t and, without cancellation, 1 - z = small_t/big_t
    near_one = small_t < QUADRATURE_BELOW * big_t
    log_f = np.full(k.shape, np.nan)
    fraction = ~near_one
    log_f[fraction] = _log_hyp2f1_unit(
        k[fraction],
        (k + n)[fraction],
        ((big - small) / big_t)[fraction],
        (small_t / big_t)[fraction],
    )
    stalled = ~np.isfinite(log_f)
    if np.any(stalled):
        log_f[stalled] = _log_hyp2f1_by_quadrature(
            k[stalled], n[stalled], big_t[stalled], small_t[stalled]
        )
    log_j = -k * np.log(big_t) + (1 - n) * np.log(small_t) - np.log(k + n - 1) + log_f
    return log_j.reshape(shape)


def _log_hyp2f1_unit(b, c, z, one_minus_z) -> np.ndarray:
    """log 2F1(1, b; c; z) for c > b > 0 and 0 <= z < 1; NaN where the fraction stalls.

    2F1(1, b; c; z) = h(a=c-1, bb=b-c+1, z) with h the incomplete-beta continued fraction;
    beyond z = c/(b+2) Pfaff's transformation 2F1(1, b; c; z) = 2F1(1, c-b; c; z/(z-1))/(1-z)
    is used instead, as NR recommends.
    """
    direct = z < c / (b + 2)
    x = np.where(direct, z, -z / one_minus_z)
    h = _incomplete_beta_fraction(c - 1, np.where(direct, b - c + 1, 1 - b), x)
    return np.log(h) - np.where(direct, 0.0, np.log(one_minus_z))


def _incomplete_beta_fraction(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lentz evaluation of the incomplete-beta continued fraction (NR 6.4.5).

    Returns ``h = 2F1(a+b, 1; a+1; x)``; NaN where it has not converged after CF_MAX_ITER
    steps (or hit an exact zero denominator, which Lentz's TINY guard would otherwise
    paper over; the caller integrates those entries numerically). Converged entries leave
    the working set once it has shrunk by a quarter, to keep the arrays short.
    """
    shape = x.shape
    out = np.full(x.size, np.nan)
    todo = np.arange(x.size)
    a, b, x = a.ravel(), b.ravel(), x.ravel()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = np.ones_like(x)
        d = 1.0 / (1.0 - (a + b) * x / (a + 1))
        h = d.copy()
        active = np.ones(x.size, dtype=bool)
        for step in range(1, CF_MAX_ITER + 1):
            two = 2 * step
            even = step * (b - step) * x / ((a - 1 + two) * (a + two))
            d = 1.0 / (1.0 + even * d)
            c = 1.0 + even / c
            h *= d * c
            odd = -(a + step) * (a + b + step) * x / ((a + two) * (a + 1 + two))
            d = 1.0 / (1.0 + odd * d)
            c = 1.0 + odd / c
            change = d * c
            h *= change
            done = active & (np.abs(change - 1.0) < CF_TOL)
            out[todo[done]] = h[done]
            active &= ~done & np.isfinite(h)  # a blown-up entry stays NaN
            left = np.count_nonzero(active)
            if left == 0:
                break
            if left < 0.75 * active.size:
                todo, a, b, x, c, d, h = (v[active] for v in (todo, a, b, x, c, d, h))
                active = np.ones(left, dtype=bool)
    return out.reshape(shape)


def _log_hyp2f1_by_quadrature(k, n, big_t, small_t) -> np.ndarray:
    """log 2F1(1, k; k+n; z) from the tail integral itself, for z close to 1.

    Substituting u = small_t * e^v turns the tail integral into one over the real line of
    exp(g(v)), g(v) = v - k logaddexp(rho, v) - n logaddexp(0, v) with rho = log(big_t/small_t):
    g is concave and analytic in a strip, with slopes 1 (v -> -inf) and 1-k-n (v -> +inf).
    The trapezoidal rule is then exponentially accurate. Nodes span the range where g is
    within DROP of its peak (clipped to where g is not yet linear); beyond the ends, the
    nodes are summed as geometric series with the end slopes (exact on the linear tails, a
    bound of relative size exp(-DROP) otherwise). The step resolves the peak, whose width is
    at least 2/sqrt(k+n). The closed-form prefactor of ``log_tail_integral`` is divided out.
    """
    rho = np.log(big_t) - np.log(small_t)  # >= 0
    lo, hi = -TAIL_CUT - np.log1p(n), rho + TAIL_CUT + np.log1p(k)  # g linear beyond
    peak = _bisect(lambda v: _slope(v, k, n, rho) > 0, lo, hi)
    floor = _log_integrand(peak, k, n, rho) - DROP
    left = _bisect(lambda v: _log_integrand(v, k, n, rho) < floor, lo, peak)
    right = _bisect(lambda v: _log_integrand(v, k, n, rho) >= floor, peak, hi)
    step = np.minimum(MAX_STEP, 0.5 / np.sqrt(k + n))
    counts = np.ceil((right - left) / step).astype(int) + 2
    out = np.empty(k.shape)
    # rows with similar node counts share one grid, within a budget of cells
    order = np.argsort(counts)
    first = 0
    while first < len(order):
        last = first + 1
        while last < len(order) and counts[order[last]] * (last + 1 - first) <= QUADRATURE_CELLS:
            last += 1
        rows = order[first:last]
        nodes = counts[rows].max()
        out[rows] = _trapezoid(k[rows], n[rows], rho[rows], left[rows], right[rows], nodes)
        first = last
    # log J = log_integral + (1-k-n) log small_t; dividing out the closed-form prefactor
    # -k log big_t + (1-n) log small_t - log(k+n-1) leaves:
    return out + k * rho + np.log(k + n - 1)


def _log_integrand(v, k, n, rho):
    return v - k * np.logaddexp(rho, v) - n * np.logaddexp(0.0, v)


def _slope(v, k, n, rho):
    return 1 - k * expit(v - rho) - n * expit(v)


def _trapezoid(k, n, rho, left, right, nodes: int) -> np.ndarray:
    """log of the trapezoidal sum over [left, right] plus geometric end tails, per row."""
    h = (right - left) / (nodes - 1)
    v = left[:, None] + h[:, None] * np.arange(nodes)
    log_g = _log_integrand(v, k[:, None], n[:, None], rho[:, None])
    # sum_{j>=1} e^{-s j h} = e^{-s h} / (1 - e^{-s h}), with s the slope away from the end
    tails = []
    for end, s in ((0, _slope(left, k, n, rho)), (-1, -_slope(right, k, n, rho))):
        s = np.maximum(s, 1e-12)
        tails.append(log_g[:, end] - s * h - np.log(-np.expm1(-s * h)))
    return logsumexp(np.column_stack([log_g, *tails]), axis=1) + np.log(h)


def _bisect(is_left, lo, hi, steps: int = 30) -> np.ndarray:
    """Vectorised bisection for where ``is_left`` turns False (to 2^-30 of the bracket)."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(steps):
        mid = (lo + hi) / 2
        go_right = is_left(mid)
        lo = np.where(go_right, mid, lo)
        hi = np.where(go_right, hi, mid)
    return (lo + hi) / 2


def log_integral_between(k_alpha, k_beta, alpha, beta, t_from, t_to) -> np.ndarray:
    """Log of the same integral over (t_from, t_to), t_from <= t_to: log(J(t_from) - J(t_to)).

    Computed as ``log J(t_from) + log(1 - J(t_to)/J(t_from))``, so it stays accurate when
    both tails are astronomically small; ``-inf`` where the interval is empty.
    """
    log_from = log_tail_integral(k_alpha, k_beta, alpha, beta, t_from)
    log_to = log_tail_integral(k_alpha, k_beta, alpha, beta, t_to)
    return log_difference(log_from, log_to)


def log_difference(log_big: np.ndarray, log_small: np.ndarray) -> np.ndarray:
    """``log(exp(log_big) - exp(log_small))`` for log_big >= log_small; -inf where equal."""
    # rounding can leave log_small a hair above log_big on tiny intervals
    ratio = np.minimum(log_small - log_big, 0.0)
    with np.errstate(divide="ignore"):
        return log_big + np.log(-np.expm1(ratio))
