"""Gamma-Gamma spend model: likelihood against direct implementations, recovery, predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from sklearn.exceptions import NotFittedError

from retain.models import GammaGamma
from retain.models.clv.gamma_gamma import _SpendData, gamma_gamma_log_likelihood

# Published CDNOW estimates (FHL 2005, "RFM and CLV"), used as the simulation truth.
TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}


def simulate_spend(n, p, q, v, rng):
    """Repeat customers: x ~ 1 + Poisson(2), nu ~ Gamma(q, v), mean of x Gamma(p, nu) values."""
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(q, 1 / v, n)
    mean_spend = rng.gamma(p * x, 1 / (x * nu))  # the mean of x Gamma(p, nu) draws
    return x.astype(float), mean_spend, nu


def direct_log_likelihood(p, q, v, x, m):
    """Marginal log-density of the mean m of x transactions, term by term (FHL 2005)."""
    return (
        math.lgamma(p * x + q) - math.lgamma(p * x) - math.lgamma(q)
        + q * math.log(v) + p * x * math.log(x) + (p * x - 1) * math.log(m)
        - (p * x + q) * math.log(v + x * m)
    )  # fmt: skip


def integrated_log_likelihood(p, q, v, x, m):
    """Density of the mean (Gamma(px, x nu)) integrated over nu ~ Gamma(q, v)."""

    def joint(nu):
        log_mean = p * x * math.log(x * nu) + (p * x - 1) * math.log(m) - x * nu * m
        log_nu = q * math.log(v) + (q - 1) * math.log(nu) - v * nu
        return math.exp(log_mean + log_nu - math.lgamma(p * x) - math.lgamma(q))

    value, _ = integrate.quad(joint, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)
    return math.log(value)


SMALL = [(1, 12.5), (2, 30.0), (3, 8.0), (7, 21.0), (15, 40.0)]


@pytest.fixture(scope="session")
def spend_sample():
    return simulate_spend(50_000, **TRUTH, rng=np.random.default_rng(8))


@pytest.fixture(scope="session")
def spend_fitted(spend_sample):
    x, m, _ = spend_sample
    return GammaGamma().fit(x, m)


@pytest.mark.parametrize("params", [TRUTH, {"p": 0.7, "q": 1.5, "v": 80.0}])
def test_log_likelihood_equals_direct_formula_and_integral(params):
    x, m = (np.array(column, dtype=float) for column in zip(*SMALL, strict=True))
    got = gamma_gamma_log_likelihood(params, x, m)
    expected = [direct_log_likelihood(*params.values(), *row) for row in SMALL]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    integrated = [integrated_log_likelihood(*params.values(), *row) for row in SMALL]
    np.testing.assert_allclose(got, integrated, rtol=1e-9)
    total, _ = _SpendData(x, m).log_likelihood_and_gradient(np.array(list(params.values())))
    assert total == pytest.approx(sum(expected), rel=1e-12)


def test_gradient_matches_finite_differences(spend_sample):
    x, m, _ = spend_sample
    data = _SpendData(x[:200], m[:200])
    point = np.array([2.0, 3.0, 20.0])
    _, gradient = data.log_likelihood_and_gradient(point)
    numeric = np.empty(3)
    for i in range(3):
        step = np.eye(3)[i] * 1e-6 * point[i]
        up = data.log_likelihood_and_gradient(point + step)[0]
        down = data.log_likelihood_and_gradient(point - step)[0]
        numeric[i] = (up - down) / (2 * step[i])
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)


def test_recovers_simulated_parameters(spend_sample, spend_fitted):
    model = spend_fitted
    assert model.converged_ and model.n_customers_ == len(spend_sample[0])
    for name, value in TRUTH.items():
        assert model.params_[name] == pytest.approx(value, rel=0.05), name
    x, m, _ = spend_sample
    assert model.log_likelihood_ == pytest.approx(
        gamma_gamma_log_likelihood(model.params_, x, m).sum(), rel=1e-12
    )


def test_expected_spend_is_the_conditional_mean(spend_sample):
    """With the true parameters, E[p/nu | x, m] is matched on average, overall and by x."""
    x, m, nu = spend_sample
    model = GammaGamma()
    model.params_ = dict(TRUTH)
    residual = TRUTH["p"] / nu - model.expected_spend(x, m)
    for mask in (np.ones(len(x), bool), x == 1, x >= 4, m > np.median(m)):
        z = residual[mask].mean() / (residual[mask].std(ddof=1) / math.sqrt(mask.sum()))
        assert abs(z) < 4


def test_customers_without_repeat_purchases(spend_fitted):
    model = spend_fitted
    p, q, v = model.params_.values()
    spend = model.expected_spend(pd.Series([0, 0, 3]), pd.Series([np.nan, 0.0, 20.0]))
    assert spend[0] == spend[1] == pytest.approx(p * v / (q - 1))
    assert spend[2] == pytest.approx(p * (v + 60.0) / (3 * p + q - 1))
    assert isinstance(model.expected_spend(2, 10.0), float)
    # fit ignores them (their monetary value may be anything)
    refit = GammaGamma().fit([0, 1, 2, 3, 5], [np.nan, 10.0, 12.0, 30.0, 18.0])
    assert refit.n_customers_ == 4


@pytest.mark.parametrize(
    ("frequency", "monetary", "message"),
    [
        ([1, 2], [10.0, -3.0], r"monetary_value must be positive when frequency > 0.*-3\.0"),
        ([1, 2], [10.0, np.inf], r"monetary_value must be finite.*inf"),
        ([1, 2.5], [10.0, 3.0], r"frequency must be integer-valued.*2\.5"),
        ([0, 0], [1.0, 2.0], r"no positive values"),
        ([1, 2], [1.0, 2.0, 3.0], r"incompatible shapes"),
    ],
)
def test_invalid_inputs_are_named(frequency, monetary, message):
    with pytest.raises(ValueError, match=message):
        GammaGamma().fit(frequency, monetary)


def test_predicting_before_fit_raises():
    with pytest.raises(NotFittedError):
        GammaGamma().expected_spend(1, 10.0)
