"""Analytic light profiles drawn on pixel grids, vectorised over a batch of objects.

Every function takes per-object parameters as arrays of shape ``(m,)`` and returns images of
shape ``(m, H, W)`` (float32), so a whole batch of galaxies is drawn in a few numpy calls.
"""

import numpy as np
from scipy.special import gamma as gamma_function

from ._common import sersic_b


def column(value):
    """Per-object parameters as ``(m, 1, 1)`` float32, ready to broadcast against a grid."""
    return np.asarray(value, dtype=np.float32).reshape(-1, 1, 1)


def rotated(y, x, x0, y0, theta):
    """Coordinates along and across an axis at angle ``theta`` through ``(x0, y0)``."""
    dx, dy = x - column(x0), y - column(y0)
    cos, sin = np.cos(column(theta)), np.sin(column(theta))
    return dx * cos + dy * sin, -dx * sin + dy * cos


def sersic(y, x, *, x0, y0, n, r_eff, q, theta, flux=1.0, soften=0.5):
    """Elliptical Sérsic profiles with total (untruncated) flux ``flux``.

    ``soften`` (pixels) replaces ``r`` by ``sqrt(r**2 + soften**2)``: it stands in for
    integrating the cusp of high-index profiles over the central pixel, which point sampling
    would otherwise turn into a single spike.
    """
    n = np.asarray(n, dtype=np.float64)
    r_eff = np.asarray(r_eff, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    b = sersic_b(n)
    # total flux of exp(-b (r / r_eff) ** (1 / n)) over an ellipse of axis ratio q
    total = 2.0 * np.pi * q * n * r_eff**2 * b ** (-2.0 * n) * gamma_function(2.0 * n)
    u, v = rotated(y, x, x0, y0, theta)
    radius = np.sqrt(u**2 + (v / column(q)) ** 2 + np.float32(soften) ** 2)
    image = np.exp(-column(b) * (radius / column(r_eff)) ** (1.0 / column(n)))
    return image * column(np.asarray(flux) / total)


def gaussian(y, x, *, x0, y0, sigma, flux=1.0, q=1.0, theta=0.0):
    """Elliptical Gaussians with total flux ``flux``."""
    u, v = rotated(y, x, x0, y0, theta)
    sigma, q = column(sigma), column(q)
    image = np.exp(-0.5 * (u**2 + (v / q) ** 2) / sigma**2)
    return image * (column(flux) / (2.0 * np.pi * sigma**2 * q))


def moffat(y, x, *, x0, y0, fwhm, beta, flux=1.0):
    """Circular Moffat profiles (a seeing-limited PSF) with total flux ``flux``."""
    fwhm, beta = column(fwhm), column(beta)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    r2 = (x - column(x0)) ** 2 + (y - column(y0)) ** 2
    image = (1.0 + r2 / alpha**2) ** -beta
    return image * (column(flux) * (beta - 1.0) / (np.pi * alpha**2))
