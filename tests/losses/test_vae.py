"""The bimodal prior's density, responsibilities, KL and Wasserstein terms against scipy."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import quad
from torch.distributions import Normal, kl_divergence

from skastro.losses import (
    bimodal_kl_mc,
    bimodal_log_odds,
    bimodal_log_prob,
    bimodal_responsibility,
    gaussian_kl_standard,
    sample_bimodal,
    wasserstein_1d,
)


def _mixture_pdf(z, m, s):
    return 0.5 * stats.norm.pdf(z, -m, s) + 0.5 * stats.norm.pdf(z, m, s)


@pytest.mark.parametrize("m, s", [(1.0, 0.2), (2.0, 1.0), (0.0, 0.5)])
def test_bimodal_log_prob_matches_scipy(m, s):
    z = np.linspace(-4, 4, 41)
    expected = np.log(_mixture_pdf(z, m, s))
    got = bimodal_log_prob(torch.tensor(z, dtype=torch.float64), m, s).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_bimodal_log_prob_stays_finite_far_in_the_tails():
    assert torch.isfinite(bimodal_log_prob(torch.tensor([1e3, -1e3]), 1.0, 0.1)).all()


@pytest.mark.parametrize("z", [-0.7, 0.0, 0.3, 1.5])
def test_responsibility_is_bayes_rule(z):
    m, s = 1.0, 0.6
    plus, minus = stats.norm.pdf(z, m, s), stats.norm.pdf(z, -m, s)
    expected = plus / (plus + minus)
    assert float(bimodal_responsibility(torch.tensor(z), m, s)) == pytest.approx(expected)
    assert float(bimodal_log_odds(torch.tensor(z), m, s)) == pytest.approx(math.log(plus / minus))


def _kl_by_quadrature(mu, sigma, m, s):
    def integrand(z):
        log_q = stats.norm.logpdf(z, mu, sigma)
        log_p = np.logaddexp(stats.norm.logpdf(z, -m, s), stats.norm.logpdf(z, m, s)) - np.log(2)
        return np.exp(log_q) * (log_q - log_p)

    return quad(integrand, mu - 12 * sigma, mu + 12 * sigma, limit=200)[0]


@pytest.mark.parametrize(
    "mu, sigma", [(1.0, 0.2), (0.0, 0.2), (0.4, 1.0), (-2.0, 0.05), (0.0, 3.0)]
)
def test_bimodal_kl_mc_matches_numerical_integration(mu, sigma):
    m, s = 1.0, 0.2
    n = 200_000
    generator = torch.Generator().manual_seed(0)
    mu_t = torch.full((n,), mu, dtype=torch.float64)
    logvar_t = torch.full((n,), 2 * math.log(sigma), dtype=torch.float64)
    estimate = float(bimodal_kl_mc(mu_t, logvar_t, m, s, generator=generator))
    expected = _kl_by_quadrature(mu, sigma, m, s)
    assert estimate == pytest.approx(expected, rel=0.01, abs=0.01)


def test_bimodal_kl_mc_is_differentiable_and_minimised_at_a_mode():
    mu = torch.tensor([0.3], requires_grad=True)
    logvar = torch.tensor([2 * math.log(0.2)])
    kl = bimodal_kl_mc(mu, logvar, 1.0, 0.2, n_samples=2000, generator=torch.Generator())
    kl.backward()
    assert mu.grad is not None and float(mu.grad) < 0  # pushed toward the +1 mode


def test_bimodal_kl_mc_checks_inputs():
    with pytest.raises(ValueError, match="same shape"):
        bimodal_kl_mc(torch.zeros(3), torch.zeros(4), 1.0, 0.2)
    with pytest.raises(ValueError, match="standard deviation"):
        bimodal_kl_mc(torch.zeros(3), torch.zeros(3), 1.0, 0.0)


def test_sample_bimodal_has_the_prior_moments():
    z = sample_bimodal(200_000, 1.5, 0.3, generator=torch.Generator().manual_seed(0)).numpy()
    assert abs(z.mean()) < 0.01
    assert z.var() == pytest.approx(1.5**2 + 0.3**2, rel=0.01)
    assert np.mean(z > 0) == pytest.approx(0.5, abs=0.01)


def test_wasserstein_1d_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 50), rng.normal(1, 2, 50)
    got = float(wasserstein_1d(torch.tensor(x), torch.tensor(y)))
    assert got == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-10)


@pytest.mark.parametrize("p", [1, 2])
def test_wasserstein_1d_is_the_best_matching(p):
    # brute force over every matching of 6 points: sorting finds the optimal one
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=6), rng.normal(size=6)
    best = min(np.mean(np.abs(x - y[list(perm)]) ** p) for perm in itertools.permutations(range(6)))
    assert float(wasserstein_1d(torch.tensor(x), torch.tensor(y), p=p)) == pytest.approx(best)


def test_wasserstein_1d_checks_inputs():
    with pytest.raises(ValueError, match="equal size"):
        wasserstein_1d(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="p must be"):
        wasserstein_1d(torch.zeros(3), torch.zeros(3), p=3)


def test_gaussian_kl_matches_closed_form_by_hand():
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1) / 2 - log s, summed over units
    mu = torch.tensor([[1.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    expected = (1.0 + 1.0 - 1.0) / 2 + (4.0 + 4.0 - 1.0) / 2 - math.log(2.0)
    assert float(gaussian_kl_standard(mu, logvar)) == pytest.approx(expected, rel=1e-6)


def test_gaussian_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 3, generator=generator)
    logvar = torch.randn(7, 3, generator=generator)
    reference = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    expected = reference.sum(1).mean()
    assert float(gaussian_kl_standard(mu, logvar)) == pytest.approx(float(expected), rel=1e-5)


def test_gaussian_kl_is_zero_only_at_the_prior_and_checks_shapes():
    assert float(gaussian_kl_standard(torch.zeros(4, 2), torch.zeros(4, 2))) == 0.0
    assert float(gaussian_kl_standard(torch.full((4, 2), 0.1), torch.zeros(4, 2))) > 0.0
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl_standard(torch.zeros(4, 2), torch.zeros(4, 3))
