"""E[X(t) | alive at T, x] under BG/NBD, for any parameters and frequencies in the thousands.

Given alive, ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)`` independently, and a
customer with ``(lambda, p)`` makes ``(1 - exp(-lambda p t)) / p`` purchases on average in
the next ``t``. With ``w = t/(alpha+T)``, ``k = r+x`` and ``B = b+x``::

    E = E_p[(1 - (1 + p w)^-k) / p]
      = (a+B-1)/(a-1) * [1 - (1+w)^(1-a) 2F1(a+b-1-r, a-1; a+b+x-1; w/(1+w))]

which is FHL (2005) eq. 10 after Euler's transformation; its hypergeometric parameters do
not grow with x, and its series converges quickly in the common cases. ``scipy.special.
hyp2f1`` is not used: it returns NaN for x in the thousands. Where the series does not
converge (few purchases with a long horizon, a huge a or b, or a+b+x-1 = 0), the
expectation over p is computed by Gauss-Jacobi quadrature instead.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh_tridiagonal

__all__ = ["expected_purchases_if_alive"]

SERIES_TOL = 1e-16
SERIES_MAX_TERMS = 1000
JACOBI_NODES = 128


def expected_purchases_if_alive(w, x, r: float, a: float, b: float) -> np.ndarray:
    """E[X(t) | alive at T, x] for arrays ``w = t/(alpha+T)`` and ``x`` of equal shape.

    Written as ``c [ (1 - (1+w)^(1-a))/(a-1) - (1+w)^(1-a) S ]`` with ``c = a+b+x-1`` and
    ``S = (2F1 - 1)/(a-1)`` summed directly, so that neither ``a = 1`` nor a short horizon
    costs precision to cancellation.
    """
    w, x = (np.asarray(v, dtype=np.float64) for v in (w, x))
    c = a + b + x - 1
    log_growth = np.log1p(w)
    first = log_growth if a == 1 else -np.expm1((1 - a) * log_growth) / (a - 1)
    tail = _hypergeometric_tail(a + b - 1 - r, a - 1, c, w / (1 + w))
    with np.errstate(invalid="ignore", over="ignore"):
        values = c * (first - np.exp((1 - a) * log_growth) * tail)
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        values[bad] = _by_quadrature(w[bad], x[bad], r, a, b)
    return values


def _hypergeometric_tail(p1, p2, c, z) -> np.ndarray:
    """(2F1(p1, p2; c; z) - 1) / p2 by its series, 0 <= z < 1; NaN where not converged.

    Term j >= 1 is (p1)_j (p2+1)_(j-1) z^j / ((c)_j j!). Stops once the remaining terms,
    bounded by a geometric series with the larger of the current term ratio and z (the
    limit of the ratios), fall below SERIES_TOL of the sum.
    """
    p1, p2, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (p1, p2, c, z)))
    shape = z.shape
    p1, p2, c, z = (np.ravel(v).copy() for v in (p1, p2, c, z))
    out = np.full(z.size, np.nan)
    todo = np.arange(z.size)
    settled = np.maximum(np.maximum(-p1, -p2), -c)  # from this index on, terms keep one sign
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        term = p1 * z / c
        total = term.copy()
        for j in range(1, SERIES_MAX_TERMS):
            ratio = (p1 + j) * (p2 + j) / ((c + j) * (j + 1)) * z
            term *= ratio
            total += term
            bound = np.maximum(np.abs(ratio), z)
            small = np.abs(term) * bound <= SERIES_TOL * (1 - bound) * np.abs(total)
            done = (term == 0) | (small & (bound < 1) & (j >= settled))
            out[todo[done]] = total[done]
            keep = ~done & np.isfinite(total)
            if not keep.all():
                todo, p1, p2, c, z, term, total, settled = (
                    v[keep] for v in (todo, p1, p2, c, z, term, total, settled)
                )
                if not todo.size:
                    break
    return out.reshape(shape)


def _by_quadrature(w, x, r: float, a: float, b: float) -> np.ndarray:
    """E_p[(1 - (1+pw)^-(r+x)) / p] with p ~ Beta(a, b+x), by Gauss-Jacobi per distinct x."""
    out = np.empty(w.shape)
    for value in np.unique(x):
        rows = x == value
        p, weights = beta_nodes(a, b + value, JACOBI_NODES)
        bought = -np.expm1(-(r + value) * np.log1p(np.outer(w[rows], p)))
        out[rows] = bought @ (weights / p)
    return out


def beta_nodes(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and probability weights for ``p ~ Beta(a, b)`` (Golub-Welsch).

    Weights come from the eigenvectors, so they neither overflow nor underflow for huge
    ``a`` or ``b`` (unlike ``scipy.special.roots_jacobi``). The Jacobi weight on [-1, 1] is
    ``(1-y)^(b-1) (1+y)^(a-1)`` with ``p = (1+y)/2``.
    """
    al, be = b - 1.0, a - 1.0
    k = np.arange(n, dtype=np.float64)
    s = 2 * k + al + be
    with np.errstate(invalid="ignore", divide="ignore"):
        diagonal = (be - al) * (be + al) / (s * (s + 2))
        k1, s1 = k[1:], s[1:]
        off = 4 * k1 * (k1 + al) * (k1 + be) * (k1 + al + be) / (s1**2 * (s1 + 1) * (s1 - 1))
    diagonal[0] = (be - al) / (al + be + 2)
    off[0] = 4 * (1 + al) * (1 + be) / ((2 + al + be) ** 2 * (3 + al + be))  # k = 1, simplified
    nodes, vectors = eigh_tridiagonal(diagonal, np.sqrt(off))
    weights = vectors[0] ** 2
    return (1 + nodes) / 2, weights / weights.sum()
