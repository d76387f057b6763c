"""Synthetic detector noise for denoising: Poisson (photon) plus Gaussian (read) noise.

Noise is added in the images' own flux units, so the noise model matches a detector: a gain
(counts per unit flux) sets the photon noise, a standard deviation the read and sky noise.
Torch only, no scikit-learn.
"""

import numbers

import numpy as np
import torch

__all__ = ["add_noise"]


def add_noise(X, noise_gain, noise_sigma, generator=None):
    """Add Poisson (photon) and Gaussian (read) noise to images in flux units.

    A pixel of flux ``f > 0`` becomes ``Poisson(noise_gain * f) / noise_gain`` plus
    ``Normal(0, noise_sigma)``; negative flux (below a subtracted sky) only gets the Gaussian
    part. ``noise_gain=None`` turns the Poisson part off.

    Parameters
    ----------
    X : torch.Tensor or ndarray of shape (b, C, H, W)
        Images in flux units; an array gives an array back.
    noise_gain : float or None
        Detected counts per unit flux; higher means less photon noise.
    noise_sigma : float
        Standard deviation of the Gaussian noise, in flux units.
    generator : torch.Generator, int or None
        Random generator, or a seed for a new one; None uses torch's global generator.

    Returns
    -------
    noisy : torch.Tensor or ndarray of shape (b, C, H, W)

    Examples
    --------
    >>> X = torch.full((1, 1, 64, 64), 4.0)
    >>> noisy = add_noise(X, noise_gain=1.0, noise_sigma=0.0)
    >>> bool(abs(float(noisy.var()) - 4.0) < 0.5)  # Poisson: variance = mean counts
    True
    """
    if isinstance(noise_gain, numbers.Real) and not noise_gain > 0:
        # counts / 0 would make every pixel NaN
        raise ValueError(
            f"noise_gain must be positive (detected counts per unit flux), or None to leave "
            f"photon noise out; got {noise_gain!r}"
        )
    is_numpy = not isinstance(X, torch.Tensor)
    if is_numpy:
        X = torch.from_numpy(np.array(X, dtype=np.float32))
    if isinstance(generator, int | np.integer):
        generator = torch.Generator(device=X.device).manual_seed(int(generator))
    noisy = X
    if noise_gain is not None:
        positive = X.clamp_min(0.0)
        counts = torch.poisson(positive * noise_gain, generator=generator)
        noisy = noisy + (counts / noise_gain - positive)
    if noise_sigma:
        noise = torch.randn(X.shape, generator=generator, device=X.device, dtype=X.dtype)
        noisy = noisy + noise_sigma * noise
    return noisy.numpy() if is_numpy else noisy
