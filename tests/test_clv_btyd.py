"""BG/NBD and Pareto/NBD: likelihoods against direct implementations, recovery, predictions.

Ground truth comes from (1) plain per-customer formulas written with ``math`` exactly as in
the papers, (2) numerical integration of the individual-level likelihood over the latent
rates, (3) closed forms of the tail integral for integer and half-integer exponents, and
(4) simulation from the models with known parameters, including a holdout period.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from retain.models import BGNBD, ParetoNBD
from retain.models.clv._tail_integral import log_tail_integral
from retain.models.clv.base import summarise_rfm
from retain.models.clv.bgnbd import _log_likelihood_and_gradient, bgnbd_log_likelihood
from retain.models.clv.pareto_nbd import _log_likelihood, pareto_nbd_log_likelihood

# Published CDNOW estimates (FHL 2005; Fader & Hardie 2005), used as simulation truths.
BGNBD_TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO_TRUTH = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
WEEKS = 39.0
HORIZON = 26.0


# ---------------------------------------------------------------------------------------
# generators (with the holdout period that the summary simulator does not provide)


def simulate_bgnbd_future(n, r, alpha, a, b, T, horizon, rng):
    """BG/NBD summaries at T plus the truth after it: alive at T, purchases in (T, T+horizon]."""
    rate = rng.gamma(r, 1 / alpha, n)
    dropout = rng.beta(a, b, n)
    last = rng.geometric(dropout)  # the purchase after which the customer drops out
    seen = rng.poisson(rate * T)  # purchases of an immortal customer in (0, T]
    x = np.minimum(seen, last)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), seen - x + 1), 0.0)
    alive = last > seen
    future = np.where(alive, np.minimum(rng.poisson(rate * horizon), last - seen), 0)
    return x.astype(float), t_x, np.full(n, T), alive, future


def simulate_pareto_future(n, r, alpha, s, beta, T, horizon, rng):
    """Pareto/NBD summaries at T plus alive-at-T and purchases in (T, T+horizon]."""
    rate = rng.gamma(r, 1 / alpha, n)
    death_rate = rng.gamma(s, 1 / beta, n)
    lifetime = rng.exponential(1 / death_rate)
    active = np.minimum(lifetime, T)
    x = rng.poisson(rate * active)
    t_x = np.where(x > 0, active * rng.beta(np.maximum(x, 1), 1), 0.0)  # max of x uniforms
    alive = lifetime > T
    remaining = np.clip(lifetime - T, 0.0, horizon)  # time alive within the holdout
    future = rng.poisson(rate * remaining)
    return x.astype(float), t_x, np.full(n, T), alive, future


def with_params(model, params):
    """A model with given parameters, as if fitted (to test formulas at the truth)."""
    model.params_ = dict(params)
    return model


def assert_unbiased(observed, predicted, groups, z_max=4.0):
    """Mean of observed - predicted is zero overall and within groups (|z| < z_max)."""
    for label, mask in {"all": np.ones(len(observed), bool), **groups}.items():
        diff = np.asarray(observed, float)[mask] - np.asarray(predicted)[mask]
        if not diff.any():  # e.g. BG/NBD customers without repeat purchases are surely alive
            continue
        z = diff.mean() / (diff.std(ddof=1) / math.sqrt(diff.size))
        assert abs(z) < z_max, f"{label}: mean residual {diff.mean():.4g}, z={z:.2f}"


def history_groups(x, t_x, T):
    return {
        "x=0": x == 0,
        "x in 1..2": (x >= 1) & (x <= 2),
        "x>=3": x >= 3,
        "recent": (x > 0) & (t_x > 0.8 * T),
        "lapsed": (x > 0) & (t_x < 0.5 * T),
    }


def standard_errors(total_log_likelihood, params: np.ndarray) -> np.ndarray:
    """Asymptotic standard errors from a central-difference Hessian of the log-likelihood."""
    k = len(params)
    steps = 1e-4 * params
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * steps[i], np.eye(k)[j] * steps[j]
            hessian[i, j] = (
                total_log_likelihood(params + ei + ej) - total_log_likelihood(params + ei - ej)
                - total_log_likelihood(params - ei + ej) + total_log_likelihood(params - ei - ej)
            ) / (4 * steps[i] * steps[j])  # fmt: skip
    return np.sqrt(np.diag(np.linalg.inv(-hessian)))


# ---------------------------------------------------------------------------------------
# direct, obviously-correct likelihoods


def bgnbd_direct(r, alpha, a, b, x, t_x, T):
    """FHL 2005 eq. 6 for one customer, term by term in plain floats."""
    beta_fn = lambda u, v: math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))  # noqa: E731
    nbd = math.exp(math.lgamma(r + x) - math.lgamma(r)) * alpha**r
    first = beta_fn(a, b + x) / beta_fn(a, b) * nbd / (alpha + T) ** (r + x)
    second = 0.0
    if x > 0:
        second = beta_fn(a + 1, b + x - 1) / beta_fn(a, b) * nbd / (alpha + t_x) ** (r + x)
    return math.log(first + second)


def gamma_pdf(value, shape, rate):
    log_density = shape * math.log(rate) + (shape - 1) * math.log(value) - rate * value
    return math.exp(log_density - math.lgamma(shape))


def beta_pdf(value, a, b):
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return math.exp((a - 1) * math.log(value) + (b - 1) * math.log1p(-value) - log_beta)


def bgnbd_integrated(r, alpha, a, b, x, t_x, T):
    """Individual likelihood integrated over lambda ~ Gamma(r, alpha) and p ~ Beta(a, b)."""

    def individual(lam, p):
        alive = (1 - p) ** x * lam**x * math.exp(-lam * T)
        dead = p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 else 0.0
        return (alive + dead) * gamma_pdf(lam, r, alpha) * beta_pdf(p, a, b)

    lam_max = stats.gamma.isf(1e-14, r, scale=1 / alpha)  # holds all but 1e-14 of the mass
    value, _ = integrate.dblquad(individual, 0, 1, 0, lam_max, epsabs=0, epsrel=1e-9)
    return math.log(value)


def pareto_direct(r, alpha, s, beta, x, t_x, T):
    """Fader & Hardie (2005 note) eq. 19 with the paper's two 2F1 branches, plain floats."""
    hyp = special.hyp2f1
    big, second = (alpha, s + 1) if alpha >= beta else (beta, r + x)
    z = lambda t: abs(alpha - beta) / (big + t)  # noqa: E731
    k = r + s + x
    a0 = (
        hyp(k, second, k + 1, z(t_x)) / (big + t_x) ** k
        - hyp(k, second, k + 1, z(T)) / (big + T) ** k
    )
    head = math.exp(math.lgamma(r + x) - math.lgamma(r)) * alpha**r * beta**s
    return math.log(head * (1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / k * a0))


def pareto_integrated(r, alpha, s, beta, x, t_x, T):
    """Individual likelihood integrated over lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)."""

    def individual(lam, mu):
        alive = lam**x * math.exp(-(lam + mu) * T)
        dead = lam**x * mu / (lam + mu) * (math.exp(-(lam + mu) * t_x) - math.exp(-(lam + mu) * T))
        return (alive + dead) * gamma_pdf(lam, r, alpha) * gamma_pdf(mu, s, beta)

    # beyond these quantiles the densities hold less than 1e-14 of their mass
    lam_max = stats.gamma.isf(1e-14, r, scale=1 / alpha)
    mu_max = stats.gamma.isf(1e-14, s, scale=1 / beta)
    value, _ = integrate.dblquad(individual, 0, mu_max, 0, lam_max, epsabs=0, epsrel=1e-9)
    return math.log(value)


SMALL_CUSTOMERS = [  # (x, t_x, T), with repeats so that aggregation is exercised
    (0, 0.0, 39.0),
    (0, 0.0, 39.0),
    (0, 0.0, 20.5),
    (1, 2.5, 39.0),
    (1, 30.0, 39.0),
    (2, 38.0, 39.0),
    (3, 12.25, 30.0),
    (3, 12.25, 30.0),
    (7, 39.0, 39.0),
    (12, 25.0, 39.0),
]


@pytest.fixture(scope="session")
def small_rfm():
    x, t_x, T = (np.array(column, dtype=float) for column in zip(*SMALL_CUSTOMERS, strict=True))
    return x, t_x, T


PARAM_SETS_BGNBD = [
    BGNBD_TRUTH,
    {"r": 2.0, "alpha": 0.7, "a": 3.0, "b": 0.4},
    {"r": 0.05, "alpha": 50.0, "a": 0.2, "b": 8.0},
]
PARAM_SETS_PARETO = [
    PARETO_TRUTH,  # alpha < beta
    {"r": 1.7, "alpha": 20.0, "s": 0.3, "beta": 4.0},  # alpha > beta
    {"r": 0.2, "alpha": 3.0, "s": 2.5, "beta": 3.0},  # alpha == beta
]


# ---------------------------------------------------------------------------------------
# BG/NBD


@pytest.mark.parametrize("params", PARAM_SETS_BGNBD)
def test_bgnbd_log_likelihood_equals_direct_formula(small_rfm, params):
    x, t_x, T = small_rfm
    expected = [bgnbd_direct(*params.values(), *row) for row in SMALL_CUSTOMERS]
    np.testing.assert_allclose(bgnbd_log_likelihood(params, x, t_x, T), expected, rtol=1e-12)
    total, _ = _log_likelihood_and_gradient(
        np.array(list(params.values())), summarise_rfm(x, t_x, T)
    )
    assert total == pytest.approx(sum(expected), rel=1e-12)


def test_bgnbd_log_likelihood_equals_numerical_integration():
    params = {"r": 1.5, "alpha": 6.0, "a": 1.5, "b": 2.5}
    for row in [(0, 0.0, 39.0), (1, 5.0, 39.0), (4, 30.0, 39.0)]:
        got = bgnbd_log_likelihood(params, *row)[()]
        assert got == pytest.approx(bgnbd_integrated(*params.values(), *row), abs=1e-8)


def test_bgnbd_gradient_matches_finite_differences(small_rfm):
    data = summarise_rfm(*small_rfm)
    for params in PARAM_SETS_BGNBD:
        point = np.array(list(params.values()))
        _, gradient = _log_likelihood_and_gradient(point, data)
        numeric = np.empty(4)
        for i in range(4):
            step = np.eye(4)[i] * 1e-6 * point[i]
            up = _log_likelihood_and_gradient(point + step, data)[0]
            down = _log_likelihood_and_gradient(point - step, data)[0]
            numeric[i] = (up - down) / (2 * step[i])
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="session")
def bgnbd_sample():
    from retain.data.simulator import simulate_bgnbd

    return simulate_bgnbd(50_000, **BGNBD_TRUTH, T=WEEKS, seed=11)


@pytest.fixture(scope="session")
def bgnbd_fitted(bgnbd_sample):
    frame = bgnbd_sample
    return BGNBD().fit(frame["frequency"], frame["recency"], frame["T"])


def test_bgnbd_recovers_simulated_parameters(bgnbd_sample, bgnbd_fitted):
    model, frame = bgnbd_fitted, bgnbd_sample
    assert model.converged_ and model.n_customers_ == len(frame)
    fitted = np.array(list(model.params_.values()))
    truth = np.array(list(BGNBD_TRUTH.values()))
    data = summarise_rfm(*(frame[c].to_numpy(float) for c in ["frequency", "recency", "T"]))
    errors = standard_errors(lambda p: _log_likelihood_and_gradient(p, data)[0], fitted)
    assert np.all(np.abs(fitted - truth) < 4 * errors), (fitted, truth, errors)
    # the well-identified quantities are within a few percent
    assert model.params_["r"] == pytest.approx(BGNBD_TRUTH["r"], rel=0.04)
    assert model.params_["alpha"] == pytest.approx(BGNBD_TRUTH["alpha"], rel=0.05)
    mean_dropout = model.params_["a"] / (model.params_["a"] + model.params_["b"])
    assert mean_dropout == pytest.approx(0.793 / (0.793 + 2.426), rel=0.04)


def test_bgnbd_log_likelihood_attribute_is_the_maximum(bgnbd_sample, bgnbd_fitted):
    frame, model = bgnbd_sample, bgnbd_fitted
    columns = [frame[c] for c in ["frequency", "recency", "T"]]
    assert model.log_likelihood_ == pytest.approx(
        bgnbd_log_likelihood(model.params_, *columns).sum(), rel=1e-12
    )
    assert model.log_likelihood_ > bgnbd_log_likelihood(BGNBD_TRUTH, *columns).sum()


def test_bgnbd_predictions_match_simulated_holdout():
    rng = np.random.default_rng(3)
    x, t_x, T, alive, future = simulate_bgnbd_future(
        60_000, **BGNBD_TRUTH, T=WEEKS, horizon=HORIZON, rng=rng
    )
    model = with_params(BGNBD(), BGNBD_TRUTH)
    groups = history_groups(x, t_x, T)
    assert_unbiased(alive, model.probability_alive(x, t_x, T), groups)
    assert_unbiased(future, model.predict_purchases(HORIZON, x, t_x, T), groups)
    no_purchase = model.conditional_probability_no_purchase(HORIZON, x, t_x, T)
    assert_unbiased(future == 0, no_purchase, groups)


def test_bgnbd_expected_purchases_equals_integral_over_dropout():
    """E[X(t) | alive] = E_p[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p], p ~ Beta(a, b+x)."""
    cases = [  # (params, t, x, T): ordinary, a < 1 with a+b < 1, a ~ 1, x in the thousands
        (BGNBD_TRUTH, 39.0, 3, 39.0),
        ({"r": 0.243, "alpha": 4.414, "a": 0.3, "b": 0.4}, 10.0, 0, 39.0),
        ({"r": 0.243, "alpha": 4.414, "a": 1.000003, "b": 2.0}, 500.0, 2, 39.0),
        (BGNBD_TRUTH, 52.0, 2000, 39.0),
    ]
    for params, t, x, T in cases:
        r, alpha, a, b = params.values()

        def integrand(p, r=r, alpha=alpha, a=a, b=b, t=t, x=x, T=T):
            kept = -np.expm1(-(r + x) * np.log1p(p * t / (alpha + T)))
            return stats.beta.pdf(p, a, b + x) * kept / p

        mean = a / (a + b + x)  # split there: for large x the mass sits near 0
        pieces = [(0, mean), (mean, min(1, 10 * mean)), (min(1, 10 * mean), 1)]
        expected = sum(
            integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-11, limit=200)[0]
            for lo, hi in pieces
            if hi > lo
        )
        model = with_params(BGNBD(), params)
        t_x = T if x else 0.0
        got = model.predict_purchases(t, x, t_x, T) / model.probability_alive(x, t_x, T)
        assert got == pytest.approx(expected, rel=1e-8)


def test_bgnbd_no_purchase_probability_limits(bgnbd_fitted):
    model = bgnbd_fitted
    x, t_x, T = np.array([0, 1, 5, 40]), np.array([0, 3.0, 35.0, 20.0]), 39.0
    assert np.all(model.conditional_probability_no_purchase(0.0, x, t_x, T) == 1.0)
    far = model.conditional_probability_no_purchase(1e40, x, t_x, T)
    np.testing.assert_allclose(far, 1 - model.probability_alive(x, t_x, T), atol=1e-6)
    horizons = np.array([1.0, 5.0, 26.0, 52.0])
    curve = model.conditional_probability_no_purchase(horizons, 2, 30.0, T)
    assert np.all(np.diff(curve) < 0)
    # Markov's inequality: P(X >= 1) <= E[X]
    for h in horizons:
        buys = 1 - model.conditional_probability_no_purchase(h, x, t_x, T)
        assert np.all(buys <= model.predict_purchases(h, x, t_x, T) + 1e-12)


def test_bgnbd_large_frequencies_stay_finite(bgnbd_sample):
    x = np.array([0, 1500, 3000, 5000, 5000])
    t_x = np.array([0.0, 38.0, 39.0, 10.0, 39.0])
    frame = bgnbd_sample.iloc[:5000]
    model = BGNBD().fit(np.append(frame["frequency"], x), np.append(frame["recency"], t_x), 39.0)
    assert model.converged_ and np.isfinite(model.log_likelihood_)
    for values in (
        model.probability_alive(x, t_x, 39.0),
        model.predict_purchases(10.0, x, t_x, 39.0),
        model.conditional_probability_no_purchase(10.0, x, t_x, 39.0),
    ):
        assert np.all(np.isfinite(values))
    assert model.probability_alive(5000, 10.0, 39.0) < 1e-100  # silent for 29 weeks: gone


def test_bgnbd_accepts_series_and_scalars(bgnbd_fitted):
    model = bgnbd_fitted
    frame = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 10.0], "T": [39.0, 39.0]})
    alive = model.probability_alive(frame["frequency"], frame["recency"], frame["T"])
    assert isinstance(alive, np.ndarray) and alive.shape == (2,)
    assert isinstance(model.probability_alive(2, 10.0, 39.0), float)
    assert model.predict_purchases(10, 2, 10.0, 39.0) == pytest.approx(
        model.predict_purchases(10.0, frame["frequency"], frame["recency"], 39.0)[1]
    )


# ---------------------------------------------------------------------------------------
# Pareto/NBD


@pytest.mark.parametrize("params", PARAM_SETS_PARETO)
def test_pareto_log_likelihood_equals_direct_formula(small_rfm, params):
    x, t_x, T = small_rfm
    expected = [pareto_direct(*params.values(), *row) for row in SMALL_CUSTOMERS]
    np.testing.assert_allclose(pareto_nbd_log_likelihood(params, x, t_x, T), expected, rtol=1e-10)
    total = _log_likelihood(np.array(list(params.values())), summarise_rfm(x, t_x, T))
    assert total == pytest.approx(sum(expected), rel=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 1.3, "alpha": 8.0, "s": 1.5, "beta": 12.0},
        {"r": 2.0, "alpha": 15.0, "s": 1.2, "beta": 5.0},
    ],
)
def test_pareto_log_likelihood_equals_numerical_integration(params):
    for row in [(0, 0.0, 39.0), (1, 5.0, 39.0), (4, 30.0, 39.0)]:
        got = pareto_nbd_log_likelihood(params, *row)[()]
        assert got == pytest.approx(pareto_integrated(*params.values(), *row), abs=1e-7)


TAIL_CLOSED_FORMS = {  # (k_alpha, k_beta): integral over (t, inf) of (alpha+u)^-k (beta+u)^-l
    (1.0, 1.0): lambda a, b, t: math.log((a + t) / (b + t)) / (a - b),
    (2.0, 1.0): lambda a, b, t: (
        math.log((a + t) / (b + t)) / (a - b) ** 2 - 1 / ((a - b) * (a + t))
    ),
    (0.5, 1.5): lambda a, b, t: 2 * (math.sqrt((a + t) / (b + t)) - 1) / (a - b),
}


@pytest.mark.parametrize("exponents", list(TAIL_CLOSED_FORMS))
@pytest.mark.parametrize("ratio", [1e-9, 1e-4, 0.3, 3.0, 1e4, 1e9])
@pytest.mark.parametrize("t", [0.0, 0.01, 39.0])
def test_tail_integral_equals_closed_forms(exponents, ratio, t):
    """Covers both branches, the continued fraction and (z near 1) the quadrature fallback."""
    alpha, beta = 2.0, 2.0 / ratio
    exact = TAIL_CLOSED_FORMS[exponents](alpha, beta, t)
    got = log_tail_integral(*exponents, alpha, beta, t)
    assert got == pytest.approx(math.log(exact), abs=1e-9)


@pytest.mark.parametrize("k_alpha", [0.3, 25.0, 3000.0])
@pytest.mark.parametrize("k_beta", [0.8, 1.6])
def test_tail_integral_equals_quadrature(k_alpha, k_beta):
    for alpha, beta, t in [
        (4.0, 11.0, 0.0),
        (11.0, 4.0, 5.0),
        (300.0, 0.5, 2.0),
        (0.5, 300.0, 2.0),
    ]:
        # integrate the ratio to the value at t, so that nothing underflows
        def ratio(u, alpha=alpha, beta=beta, t=t):
            log_a, log_b = math.log1p((u - t) / (alpha + t)), math.log1p((u - t) / (beta + t))
            return math.exp(-k_alpha * log_a - k_beta * log_b)

        pieces = [t, t + 1e-3, t + 1, t + 30, t + 1e3, np.inf]
        value = sum(
            integrate.quad(ratio, lo, hi, epsabs=0, epsrel=1e-12, limit=500)[0]
            for lo, hi in zip(pieces[:-1], pieces[1:], strict=True)
        )
        expected = math.log(value) - k_alpha * math.log(alpha + t) - k_beta * math.log(beta + t)
        got = log_tail_integral(k_alpha, k_beta, alpha, beta, t)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.fixture(scope="session")
def pareto_sample():
    rng = np.random.default_rng(21)
    return simulate_pareto_future(20_000, **PARETO_TRUTH, T=WEEKS, horizon=HORIZON, rng=rng)


def test_pareto_recovers_simulated_parameters(pareto_sample):
    x, t_x, T, _, _ = pareto_sample
    model = ParetoNBD().fit(x, t_x, T)
    assert model.converged_
    fitted = np.array(list(model.params_.values()))
    truth = np.array(list(PARETO_TRUTH.values()))
    data = summarise_rfm(x, t_x, T)
    errors = standard_errors(lambda p: _log_likelihood(p, data), fitted)
    assert np.all(np.abs(fitted - truth) < 4 * errors), (fitted, truth, errors)
    assert model.params_["r"] == pytest.approx(PARETO_TRUTH["r"], rel=0.08)
    assert model.params_["alpha"] == pytest.approx(PARETO_TRUTH["alpha"], rel=0.08)
    assert model.log_likelihood_ == pytest.approx(
        pareto_nbd_log_likelihood(model.params_, x, t_x, T).sum(), rel=1e-12
    )


def test_pareto_predictions_match_simulated_holdout():
    rng = np.random.default_rng(5)
    x, t_x, T, alive, future = simulate_pareto_future(
        60_000, **PARETO_TRUTH, T=WEEKS, horizon=HORIZON, rng=rng
    )
    model = with_params(ParetoNBD(), PARETO_TRUTH)
    groups = history_groups(x, t_x, T)
    assert_unbiased(alive, model.probability_alive(x, t_x, T), groups)
    assert_unbiased(future, model.predict_purchases(HORIZON, x, t_x, T), groups)
    no_purchase = model.conditional_probability_no_purchase(HORIZON, x, t_x, T)
    assert_unbiased(future == 0, no_purchase, groups)


def test_pareto_no_purchase_equals_posterior_integral():
    """P(buy | alive) = E[lambda/(lambda+mu) (1 - e^{-(lambda+mu) t})] over the posterior."""
    params = {"r": 1.3, "alpha": 8.0, "s": 1.5, "beta": 12.0}
    model = with_params(ParetoNBD(), params)
    for x, t_x, T, t in [(0, 0.0, 39.0, 10.0), (3, 30.0, 39.0, 26.0), (2, 5.0, 20.0, 100.0)]:

        def buys(lam, mu, x=x, T=T, t=t):
            density = gamma_pdf(lam, 1.3 + x, 8.0 + T) * gamma_pdf(mu, 1.5, 12.0 + T)
            return density * lam / (lam + mu) * -math.expm1(-(lam + mu) * t)

        lam_max = stats.gamma.isf(1e-14, 1.3 + x, scale=1 / (8.0 + T))
        mu_max = stats.gamma.isf(1e-14, 1.5, scale=1 / (12.0 + T))
        buy_if_alive = integrate.dblquad(buys, 0, mu_max, 0, lam_max, epsabs=0, epsrel=1e-9)[0]
        alive = model.probability_alive(x, t_x, T)
        expected = 1 - alive * buy_if_alive
        got = model.conditional_probability_no_purchase(t, x, t_x, T)
        assert got == pytest.approx(expected, abs=1e-8)


def test_pareto_expected_purchases_at_s_equal_one_is_continuous():
    base = {"r": 0.5, "alpha": 10.0, "beta": 12.0}
    at_one = with_params(ParetoNBD(), {**base, "s": 1.0}).predict_purchases(20.0, 3, 30.0, 39.0)
    near = with_params(ParetoNBD(), {**base, "s": 1.0 + 1e-7}).predict_purchases(
        20.0, 3, 30.0, 39.0
    )
    assert at_one == pytest.approx(near, rel=1e-6)


def test_pareto_large_frequencies_stay_finite():
    x = np.array([0, 1500, 3000, 5000, 5000])
    t_x = np.array([0.0, 38.0, 39.0, 10.0, 39.0])
    for params in PARAM_SETS_PARETO:
        values = pareto_nbd_log_likelihood(params, x, t_x, 39.0)
        assert np.all(np.isfinite(values))
        model = with_params(ParetoNBD(), params)
        for output in (
            model.probability_alive(x, t_x, 39.0),
            model.predict_purchases(10.0, x, t_x, 39.0),
            model.conditional_probability_no_purchase(10.0, x, t_x, 39.0),
        ):
            assert np.all(np.isfinite(output))


# ---------------------------------------------------------------------------------------
# estimator conventions and input checks (both models)

MODELS = [BGNBD, ParetoNBD]


@pytest.mark.parametrize("cls", MODELS)
def test_predicting_before_fit_raises(cls):
    with pytest.raises(NotFittedError):
        cls().probability_alive(1, 1.0, 2.0)


@pytest.mark.parametrize("cls", MODELS)
def test_settings_are_only_stored_and_cloneable(cls):
    model = cls(penalizer=-1.0, initial_params={"r": 2.0})  # validated in fit, not here
    assert clone(model).get_params()["penalizer"] == -1.0
    with pytest.raises(ValueError, match="penalizer"):
        model.fit([1, 2], [1.0, 2.0], 3.0)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, -2], [1.0, 1.0], 3.0, r"frequency must be non-negative.*-2\.0"),
        ([1, 1.5], [1.0, 1.0], 3.0, r"frequency must be integer-valued.*1\.5"),
        ([1, 2], [1.0, np.nan], 3.0, r"recency must be finite.*nan"),
        ([1, 2], [1.0, 4.0], 3.0, r"recency must not exceed T.*\(4\.0, 3\.0\)"),
        ([0, 2], [1.0, 2.0], 3.0, r"recency must be 0 when frequency is 0.*1\.0"),
        ([1, 2], [1.0, 2.0], [3.0, np.inf], r"T must be finite.*inf"),
        ([1, 2], [1.0, 2.0, 1.0], 3.0, r"incompatible shapes"),
        (["a", "b"], [1.0, 2.0], 3.0, r"frequency must be numeric"),
    ],
)
@pytest.mark.parametrize("cls", MODELS)
def test_invalid_inputs_are_named(cls, frequency, recency, T, message):
    with pytest.raises(ValueError, match=message):
        cls().fit(frequency, recency, T)


@pytest.mark.parametrize("cls", MODELS)
def test_penalizer_shrinks_parameters(cls, pareto_sample):
    x, t_x, T = (column[:500] for column in pareto_sample[:3])
    plain = cls().fit(x, t_x, T)
    shrunk = cls(penalizer=0.5).fit(x, t_x, T)
    squares = lambda model: sum(v**2 for v in model.params_.values())  # noqa: E731
    assert squares(shrunk) < squares(plain)
    assert shrunk.log_likelihood_ <= plain.log_likelihood_ + 1e-9


@pytest.mark.parametrize("cls", MODELS)
def test_iteration_limit_warns(cls, small_rfm):
    with pytest.warns(ConvergenceWarning):
        model = cls(max_iter=1).fit(*small_rfm)
    assert model.converged_ is False
