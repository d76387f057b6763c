"""Prior terms of the variational autoencoders: pull latent codes toward a chosen prior.

Two priors appear in the unsupervised star-galaxy write-up (Sun, Kim, Li & Brunner 2017):

* the standard normal ``N(0, I)`` of a plain VAE, with its closed-form KL divergence;
* the bimodal mixture ``p = ½ N(-m, s²) + ½ N(m, s²)`` on one "class unit", whose two modes are
  the two classes. Its KL divergence has no closed form, so it is estimated by Monte Carlo;
  as an alternative the write-up uses Wasserstein-style distances between the batch's codes
  and samples of the prior, which keep useful gradients where the KL's vanish.

Every loss takes tensors and returns a scalar tensor to *minimise*; the helpers
(:func:`bimodal_log_prob`, :func:`bimodal_responsibility`, :func:`sample_bimodal`) serve the
estimators' inference too. Torch only: no scikit-learn here.
"""

import math

import torch

__all__ = [
    "bimodal_kl_mc",
    "bimodal_log_odds",
    "bimodal_log_prob",
    "bimodal_responsibility",
    "gaussian_kl_standard",
    "sample_bimodal",
    "wasserstein_1d",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_mixture(m, s):
    if not s > 0:
        raise ValueError(f"the prior's standard deviation s must be > 0, got {s}")
    if not m >= 0:
        raise ValueError(f"the prior's mode position m must be >= 0, got {m}")


def _check_pair(mu, logvar):
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu.shape)} and "
            f"{tuple(logvar.shape)}"
        )


def gaussian_kl_standard(mu, logvar):
    """KL divergence ``KL(N(mu, diag(exp(logvar))) || N(0, I))``, summed over units.

    The closed form is ``½ Σ (mu² + σ² - 1 - log σ²)``; it is averaged over the batch.

    Parameters
    ----------
    mu, logvar : torch.Tensor of shape (b, k)
        Posterior means and log-variances.

    Returns
    -------
    torch.Tensor
        Scalar, in nats per image.

    Examples
    --------
    >>> float(gaussian_kl_standard(torch.zeros(3, 2), torch.zeros(3, 2)))
    0.0
    >>> float(gaussian_kl_standard(torch.ones(1, 2), torch.zeros(1, 2)))
    1.0
    """
    _check_pair(mu, logvar)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1).mean()


def bimodal_log_prob(z, m, s):
    """Log density of ``½ N(-m, s²) + ½ N(m, s²)`` at ``z`` (element-wise).

    Computed with a log-sum-exp, so it stays finite far in the tails.

    Examples
    --------
    >>> z = torch.tensor([0.0])
    >>> round(float(bimodal_log_prob(z, 0.0, 1.0)[0]), 4)  # m=0 is N(0, 1)
    -0.9189
    """
    _check_mixture(m, s)
    log_norm = -math.log(s) - 0.5 * _LOG_2PI
    a = -0.5 * ((z + m) / s) ** 2
    b = -0.5 * ((z - m) / s) ** 2
    return torch.logaddexp(a, b) + log_norm - math.log(2.0)


def bimodal_log_odds(z, m, s):
    """Log-odds that ``z`` comes from the ``+m`` mode rather than the ``-m`` mode.

    For two equal-weight Gaussians of equal width the log-likelihood ratio is linear:
    ``log N(z; m, s²) - log N(z; -m, s²) = 2 m z / s²``.

    Examples
    --------
    >>> float(bimodal_log_odds(torch.tensor(0.5), 1.0, 0.5))
    4.0
    """
    _check_mixture(m, s)
    return 2.0 * m * z / (s * s)


def bimodal_responsibility(z, m, s):
    """Posterior probability that ``z`` belongs to the ``+m`` mode of the bimodal prior.

    ``sigmoid(2 m z / s²)``: 0.5 at ``z = 0``, towards 1 near ``+m`` and 0 near ``-m``.

    Examples
    --------
    >>> r = bimodal_responsibility(torch.tensor([-1.0, 0.0, 1.0]), 1.0, 0.5)
    >>> [round(float(v), 4) for v in r]
    [0.0003, 0.5, 0.9997]
    """
    return torch.sigmoid(bimodal_log_odds(z, m, s))


def sample_bimodal(n, m, s, *, generator=None, device=None, dtype=torch.float32):
    """Draw ``n`` samples of ``½ N(-m, s²) + ½ N(m, s²)``.

    Uses torch's default generator unless ``generator`` is given, so the estimators' seeded
    training makes the draws reproducible.

    Examples
    --------
    >>> z = sample_bimodal(1000, 2.0, 0.1, generator=torch.Generator().manual_seed(0))
    >>> z.shape, bool((z.abs() > 1.5).all())
    (torch.Size([1000]), True)
    """
    _check_mixture(m, s)
    sign = torch.randint(0, 2, (n,), generator=generator, device=device).to(dtype) * 2 - 1
    noise = torch.randn(n, generator=generator, device=device, dtype=dtype)
    return sign * m + s * noise


def bimodal_kl_mc(mu, logvar, m, s, *, n_samples=1, generator=None):
    """Monte-Carlo estimate of ``KL(N(mu, σ²) || ½ N(-m, s²) + ½ N(m, s²))`` for 1-D codes.

    ``KL = E_q[log q(z)] - E_q[log p(z)]``. The first term is the Gaussian's negative entropy,
    ``-½ log(2 π e σ²)``, taken exactly; only the cross term is sampled, with the
    reparameterisation ``z = mu + sigma * eps`` so the estimate is differentiable in ``mu`` and
    ``logvar``. It is unbiased, and exact in expectation over ``eps``.

    Parameters
    ----------
    mu, logvar : torch.Tensor of shape (b,) or (b, 1)
        Posterior mean and log-variance of the class unit.
    m, s : float
        Mode position and width of the prior.
    n_samples : int, default=1
        Monte-Carlo samples per code.
    generator : torch.Generator or None, default=None
        Source of the noise; torch's default generator when None (seeded during training).
        A fixed generator makes the estimate deterministic, e.g. for scoring.

    Returns
    -------
    torch.Tensor
        Scalar: the estimate averaged over the batch, in nats per image.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> mu, logvar = torch.full((4000,), 1.0), torch.full((4000,), 2 * math.log(0.1))
    >>> kl = bimodal_kl_mc(mu, logvar, 1.0, 0.1)  # q is one mode of p: KL close to log 2
    >>> abs(float(kl) - math.log(2)) < 0.05
    True
    """
    _check_pair(mu, logvar)
    _check_mixture(m, s)
    mu, logvar = mu.reshape(-1), logvar.reshape(-1)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(
        (n_samples, mu.shape[0]), generator=generator, device=mu.device, dtype=mu.dtype
    )
    z = mu + std * eps
    neg_entropy = -0.5 * (_LOG_2PI + 1.0 + logvar)
    cross = bimodal_log_prob(z, m, s).mean(0)
    return (neg_entropy - cross).mean()


def wasserstein_1d(x, y, *, p=1):
    """``p``-Wasserstein distance between two 1-D samples of equal size, to the power ``p``.

    In one dimension the optimal transport plan matches order statistics, so for equal sizes
    ``W_p^p = mean(|sort(x) - sort(y)|^p)`` exactly. Sorting is differentiable almost
    everywhere (gradients flow to the matched elements), which makes this a training loss.
    For ``p=1`` it equals :func:`scipy.stats.wasserstein_distance` of the two samples.

    Parameters
    ----------
    x, y : torch.Tensor of shape (n,)
        The samples, e.g. a batch of class-unit codes and as many draws from the prior.
    p : {1, 2}, default=1
        The order; ``p=2`` returns the squared 2-Wasserstein distance.

    Returns
    -------
    torch.Tensor
        Scalar.

    Examples
    --------
    >>> float(wasserstein_1d(torch.tensor([0.0, 1.0]), torch.tensor([3.0, 2.0])))
    2.0
    """
    x, y = x.reshape(-1), y.reshape(-1)
    if x.shape != y.shape:
        raise ValueError(
            f"wasserstein_1d needs samples of equal size, got {x.shape[0]} and {y.shape[0]}"
        )
    if x.shape[0] == 0:
        raise ValueError("wasserstein_1d needs non-empty samples")
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    diff = torch.sort(x).values - torch.sort(y).values
    return diff.abs().mean() if p == 1 else diff.pow(2).mean()
