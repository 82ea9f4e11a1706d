"""Benchmark of the BTYD estimators against a plain baseline timed in the same run.

Run by hand::

    .venv/bin/python benchmarks/btyd.py                   # 1M customers for BG/NBD
    .venv/bin/python benchmarks/btyd.py --customers 200000

BG/NBD: our fit (merged rows, analytic gradient, L-BFGS-B) versus the same likelihood
minimised by scipy's Nelder-Mead on log-parameters, without gradient and without merging
identical customers. Pareto/NBD and Gamma-Gamma fits are timed on smaller samples.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from retain.data.simulator import simulate_bgnbd
from retain.models import BGNBD, GammaGamma, ParetoNBD
from retain.models.clv.bgnbd import _row_log_likelihood

BGNBD_TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO_TRUTH = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
SPEND_TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}
WEEKS = 39.0


def simulate_pareto(n: int, r, alpha, s, beta, T: float, rng) -> tuple[np.ndarray, ...]:
    """Pareto/NBD summaries: Poisson purchases until an exponential death."""
    rate = rng.gamma(r, 1 / alpha, n)
    lifetime = rng.exponential(1 / rng.gamma(s, 1 / beta, n))
    active = np.minimum(lifetime, T)
    x = rng.poisson(rate * active)
    t_x = np.where(x > 0, active * rng.beta(np.maximum(x, 1), 1), 0.0)
    return x.astype(float), t_x, np.full(n, T)


def simulate_spend(n: int, p, q, v, rng) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-Gamma mean spend of x ~ 1 + Poisson(2) transactions per customer."""
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(q, 1 / v, n)
    return x.astype(float), rng.gamma(p * x, 1 / (x * nu))


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def nelder_mead_bgnbd(x, t_x, T, start: np.ndarray):
    """Baseline: per-customer likelihood, no merging, no gradient, Nelder-Mead."""

    def loss(theta):
        return -_row_log_likelihood(*np.exp(theta), x, t_x, T).mean()

    options = {"xatol": 1e-6, "fatol": 1e-10, "maxiter": 10_000, "maxfev": 10_000}
    return minimize(loss, np.log(start), method="Nelder-Mead", options=options)


def show_params(label: str, fitted: dict, truth: dict) -> None:
    cells = ", ".join(
        f"{name}={fitted[name]:.4f} (true {value}, {fitted[name] / value - 1:+.1%})"
        for name, value in truth.items()
    )
    print(f"  {label}: {cells}")


def bench_bgnbd(n: int, seed: int, baseline: bool) -> None:
    frame = simulate_bgnbd(n, **BGNBD_TRUTH, T=WEEKS, seed=seed)
    x, t_x, T = (frame[c].to_numpy(np.float64) for c in ["frequency", "recency", "T"])
    model, ours = timed(lambda: BGNBD().fit(x, t_x, T))
    print(f"BG/NBD, {n:,} customers")
    print(
        f"  ours (merge + analytic gradient + L-BFGS-B): {ours:.2f} s, {model.n_iter_} iterations"
    )
    show_params("ours", model.params_, BGNBD_TRUTH)
    print(f"  log-likelihood: {model.log_likelihood_:.2f}")
    if not baseline:
        return
    start = np.array([1.0, T.mean() / max(x.mean(), 0.1), 1.0, 1.0])  # our default start
    result, base = timed(lambda: nelder_mead_bgnbd(x, t_x, T, start))
    fitted = dict(zip(BGNBD_TRUTH, np.exp(result.x), strict=True))
    print(f"  baseline (Nelder-Mead, per customer, no gradient): {base:.2f} s, {result.nfev} evals")
    show_params("baseline", fitted, BGNBD_TRUTH)
    print(f"  log-likelihood: {-result.fun * n:.2f}")
    print(f"  speed-up: {base / ours:.1f}x")


def bench_pareto(n: int, seed: int) -> None:
    x, t_x, T = simulate_pareto(n, **PARETO_TRUTH, T=WEEKS, rng=np.random.default_rng(seed))
    model, seconds = timed(lambda: ParetoNBD().fit(x, t_x, T))
    print(f"Pareto/NBD, {n:,} customers: {seconds:.2f} s, {model.n_iter_} iterations")
    show_params("ours", model.params_, PARETO_TRUTH)


def bench_spend(n: int, seed: int) -> None:
    x, m = simulate_spend(n, **SPEND_TRUTH, rng=np.random.default_rng(seed))
    model, seconds = timed(lambda: GammaGamma().fit(x, m))
    print(f"Gamma-Gamma, {n:,} repeat customers: {seconds:.2f} s, {model.n_iter_} iterations")
    show_params("ours", model.params_, SPEND_TRUTH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="BG/NBD sample size")
    parser.add_argument("--small", type=int, default=100_000, help="Pareto/NBD, Gamma-Gamma size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow baseline")
    args = parser.parse_args()
    bench_bgnbd(args.customers, args.seed, baseline=not args.no_baseline)
    bench_pareto(args.small, args.seed)
    bench_spend(args.small, args.seed)


if __name__ == "__main__":
    main()
