"""Aperture photometry of centred cutouts: sky noise, signal-to-noise and flux fractions.

Small NumPy functions for images ``(n, C, H, W)`` whose object sits at the centre, as survey
cutouts do. They need no fitting and no labels, so they serve as the brightness and
morphology measurements of label-free methods (the concentration index of star-galaxy
separation is a ratio of two of :func:`flux_fractions`' apertures).
"""

import numpy as np

from skastro._images import as_nchw

__all__ = ["aperture_snr", "flux_fractions", "sky_noise", "unit_scale"]

# Robust standard deviation of a Gaussian from its median absolute deviation.
_MAD_TO_SIGMA = 1.4826
# Keeps a noise of exactly zero (a constant border) from dividing by zero.
_TINY = 1e-12
# Images whose typical |pixel| lies outside this range are measured after an exact rescaling
# by a power of two: every measure here is a ratio, but the constant that keeps them finite
# (_TINY) would matter for fluxes in cgs units (~1e-29 erg/s/cm2/Hz). Images inside the range
# are measured as they are (bitwise).
_SCALE_RANGE = (2.0**-10, 2.0**20)


def _as_cubes(X):
    """``X`` as a numeric array ``(n, C, H, W)``; ``(n, H, W)`` is one band."""
    return as_nchw(X, allow_flat=False, numeric=True)


def _centre_distance(shape):
    """Distance of each pixel of an ``(H, W)`` image from the image centre."""
    height, width = shape
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    return np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2)


def unit_scale(X):
    """Powers of two that bring each image's typical pixel magnitude into a safe range.

    Parameters
    ----------
    X : ndarray of shape (..., H, W)
        Images (one factor per leading index, e.g. per image and band).

    Returns
    -------
    factor : ndarray of shape (..., 1, 1), float64
        1 where the median ``|pixel|`` (the maximum when the median is 0) lies within
        ``2**-10`` to ``2**20``; else the power of two that brings it to about 1. Multiplying
        by a power of two is exact, so measures that are ratios do not change.

    Examples
    --------
    >>> import numpy as np
    >>> np.log2(unit_scale(np.full((2, 1, 4, 4), [[[[3.0]]], [[[3e-29]]]]))).ravel().tolist()
    [0.0, 95.0]
    """
    X = np.asarray(X)
    flat = np.abs(X.reshape(*X.shape[:-2], -1)).astype(np.float64)
    typical = np.median(flat, axis=-1)
    typical = np.where(typical > 0, typical, flat.max(axis=-1, initial=0.0))
    low, high = _SCALE_RANGE
    with np.errstate(divide="ignore", invalid="ignore"):
        outside = (typical > 0) & np.isfinite(typical) & ((typical < low) | (typical > high))
        exponent = np.where(outside, -np.round(np.log2(np.where(outside, typical, 1.0))), 0.0)
    return np.exp2(exponent)[..., None, None]


def _check_band(band, n_bands):
    if not -n_bands <= band < n_bands:
        raise ValueError(f"band={band} is out of range for images with {n_bands} band(s).")


def sky_noise(X, *, border=8):
    """Sky noise of each band of each image, from the image's top and bottom rows.

    The robust standard deviation (1.4826 times the median absolute deviation) of the
    ``border`` rows at the top and at the bottom of the image, which hold sky far from a
    centred object.

    Parameters
    ----------
    X : array-like of shape (n, C, H, W) or (n, H, W)
        Images, sky not subtracted or subtracted alike.
    border : int, default=8
        Rows taken from each of the top and the bottom; ``2 * border`` must be below ``H``.

    Returns
    -------
    sigma : ndarray of shape (n, C), float64
        Always positive (a constant border gives ``1e-12``).

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.photometry import sky_noise
    >>> X = np.random.default_rng(0).normal(0.0, 2.0, (1, 1, 64, 64))
    >>> bool(abs(sky_noise(X)[0, 0] - 2.0) < 0.2)  # 1024 border pixels: about 4 % error
    True
    """
    X = _as_cubes(X)
    factor = unit_scale(X)  # exact; 1 for images in the usual range of values
    return _sky_noise(X * factor, border) / factor[..., 0, 0]


def _sky_noise(X, border):
    """:func:`sky_noise` of ``(n, C, H, W)`` images already brought to a safe scale."""
    if not (1 <= border and 2 * border < X.shape[2]):
        raise ValueError(
            f"border={border} rows at the top and at the bottom need images taller than "
            f"{2 * border} pixels, got height {X.shape[2]}; pass a border between 1 and "
            f"{(X.shape[2] - 1) // 2}."
        )
    frame = np.concatenate(
        [
            X[..., :border, :].reshape(*X.shape[:2], -1),
            X[..., -border:, :].reshape(*X.shape[:2], -1),
        ],
        axis=-1,
    ).astype(np.float64)
    median = np.median(frame, axis=-1, keepdims=True)
    return _MAD_TO_SIGMA * np.median(np.abs(frame - median), axis=-1) + _TINY


def aperture_snr(X, *, radius=6.0, band=0, border=8):
    """Signal-to-noise of the flux within a central circular aperture.

    ``flux / (sigma * sqrt(n_pixels))``, with ``flux`` the sum of ``band`` over the pixels
    within ``radius`` of the image centre and ``sigma`` its :func:`sky_noise` (the sky is
    taken as already subtracted, as in survey cutouts).

    Parameters
    ----------
    X : array-like of shape (n, C, H, W) or (n, H, W)
        Images with the object at the centre.
    radius : float, default=6.0
        Aperture radius in pixels.
    band : int, default=0
        The band measured.
    border : int, default=8
        Passed to :func:`sky_noise`.

    Returns
    -------
    snr : ndarray of shape (n,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.photometry import aperture_snr
    >>> X = np.random.default_rng(0).normal(0.0, 1.0, (2, 1, 32, 32))
    >>> X[1, 0, 14:18, 14:18] += 10.0  # 160 counts on a sky noise of 1
    >>> bool(aperture_snr(X, radius=4)[1] > 10)
    True
    """
    X = _as_cubes(X)
    X = X * unit_scale(X)  # a ratio: measured where the constants do not matter
    _check_band(band, X.shape[1])
    if not radius > 0:
        raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
    inside = _centre_distance(X.shape[-2:]) <= radius
    flux = X[:, band][:, inside].astype(np.float64).sum(axis=1)
    return flux / (_sky_noise(X, border)[:, band] * np.sqrt(inside.sum()))


def flux_fractions(X, radii, *, total_radius, band=0):
    """Fraction of the flux within ``total_radius`` that falls within each of ``radii``.

    A point source (a star blurred by the seeing) has most of its flux in the smallest
    apertures; an extended galaxy spreads it out. The ratio for one small and one large
    radius is the classic concentration index.

    Parameters
    ----------
    X : array-like of shape (n, C, H, W) or (n, H, W)
        Images with the object at the centre, sky subtracted.
    radii : sequence of float
        Inner aperture radii in pixels.
    total_radius : float
        Radius in pixels of the aperture whose flux is the denominator.
    band : int, default=0
        The band measured.

    Returns
    -------
    fractions : ndarray of shape (n, len(radii)), float64
        Not clipped: on noise-dominated images the fractions can leave [0, 1]. Where the
        total flux is 0 or negative they are meaningless (the denominator is then 1e-12):
        leave out images whose total is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.photometry import flux_fractions
    >>> X = np.zeros((1, 1, 9, 9))
    >>> X[0, 0, 4, 4] = 1.0  # all the flux in the central pixel
    >>> flux_fractions(X, [0.5, 2.0], total_radius=4.0)
    array([[1., 1.]])
    """
    X = _as_cubes(X)
    X = X * unit_scale(X)  # ratios: measured where the constants do not matter
    _check_band(band, X.shape[1])
    distance = _centre_distance(X.shape[-2:])
    image = X[:, band].astype(np.float64)
    total = image[:, distance <= total_radius].sum(axis=1)
    inner = np.stack([image[:, distance <= r].sum(axis=1) for r in radii], axis=1)
    return inner / np.maximum(total, _TINY)[:, None]
