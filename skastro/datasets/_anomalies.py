"""Image artefacts that make normal cutouts anomalous, for anomaly-detection experiments.

Four kinds of artefacts that survey pipelines meet: satellite trails (a straight, PSF-wide
streak across the frame, in every band), cosmic rays (a few sharp, unconvolved hits in one
band only, since they strike a single exposure), saturated stars with diffraction spikes (a
bright PSF clipped at a saturation level, with four spikes) and blank frames (sky noise only).
"""

import numpy as np
from sklearn.utils import Bunch

__all__ = ["ANOMALY_KINDS", "make_anomalies"]

ANOMALY_KINDS = ("satellite_trail", "cosmic_ray", "saturated_star", "blank_frame")


def _grid(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return y, x


def add_satellite_trail(image, rng, *, brightness=(0.2, 0.5), width=(0.6, 1.2)):
    """Add a straight streak through a random point at a random angle (all bands)."""
    _, h, w = image.shape
    y, x = _grid(h, w)
    y0, x0 = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    angle = rng.uniform(0, np.pi)
    # distance of each pixel to the line through (x0, y0)
    distance = np.abs((x - x0) * np.sin(angle) - (y - y0) * np.cos(angle))
    profile = np.exp(-0.5 * (distance / rng.uniform(*width)) ** 2)
    return image + rng.uniform(*brightness) * image.max() * profile[None]


def add_cosmic_rays(image, rng, *, n_hits=(3, 8), brightness=(0.5, 2.0)):
    """Add a few sharp hits and short tracks (1-4 pixels) in one random band."""
    image = image.copy()
    n_bands, h, w = image.shape
    band = rng.integers(n_bands)
    peak = image.max()
    for _ in range(rng.integers(n_hits[0], n_hits[1] + 1)):
        yy, xx = rng.integers(h), rng.integers(w)
        dy, dx = rng.choice([-1, 0, 1], size=2)
        for step in range(rng.integers(1, 5)):
            py, px = yy + step * dy, xx + step * dx
            if 0 <= py < h and 0 <= px < w:
                image[band, py, px] += rng.uniform(*brightness) * peak
    return image


def add_saturated_star(image, rng, *, contrast=(4.0, 10.0), saturation=1.2, fwhm=(1.5, 2.5)):
    """Add a bright star clipped at ``saturation`` times the image peak, with four spikes."""
    _, h, w = image.shape
    y, x = _grid(h, w)
    y0, x0 = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    peak = image.max()
    amplitude = rng.uniform(*contrast) * peak
    sigma = rng.uniform(*fwhm) / 2.355
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    star = np.exp(-0.5 * r2 / sigma**2)
    # diffraction spikes of the secondary mirror's supports: thin lines fading as 1/r
    radius = np.sqrt(r2) + 1.0
    spikes = np.exp(-0.5 * ((x - x0) / sigma) ** 2) + np.exp(-0.5 * ((y - y0) / sigma) ** 2)
    star = star + 0.3 * spikes / radius
    star = amplitude * star
    out = image + star[None]
    level = saturation * peak
    # a saturated pixel reads the full-well level in every band
    return np.where(star[None] > level, level, np.minimum(out, np.maximum(level, image)))


def blank_frame(image, rng, *, noise_sigma=0.02):
    """Replace the image by sky noise only."""
    return rng.normal(0.0, noise_sigma, image.shape).astype(np.float32)


_MAKERS = {
    "satellite_trail": add_satellite_trail,
    "cosmic_ray": add_cosmic_rays,
    "saturated_star": add_saturated_star,
    "blank_frame": blank_frame,
}


def make_anomalies(images, n_per_kind=50, *, kinds=ANOMALY_KINDS, noise_sigma=0.02, random_state=0):
    """Anomalous images built from normal ones (chosen at random) by adding artefacts.

    Parameters
    ----------
    images : ndarray of shape (n, C, H, W)
        Normal images to corrupt.
    n_per_kind : int, default=50
        Anomalies of each kind.
    kinds : sequence of str, default=ANOMALY_KINDS
        Among ``"satellite_trail"``, ``"cosmic_ray"``, ``"saturated_star"``, ``"blank_frame"``.
    noise_sigma : float, default=0.02
        Sky noise of blank frames (match the normal images' noise).
    random_state : int, default=0
        Seed.

    Returns
    -------
    anomalies : Bunch
        ``images`` (n_per_kind * len(kinds), C, H, W) float32, ``kind`` (names), ``source``
        (index of the normal image each one was made from).

    Examples
    --------
    >>> import numpy as np
    >>> normal = np.zeros((4, 2, 16, 16), dtype=np.float32)
    >>> normal[:, :, 8, 8] = 1.0
    >>> anomalies = make_anomalies(normal, 2)
    >>> anomalies.images.shape, str(sorted(set(anomalies.kind))[0])
    ((8, 2, 16, 16), 'blank_frame')
    """
    rng = np.random.default_rng(random_state)
    out, names, sources = [], [], []
    for kind in kinds:
        make = _MAKERS[kind]
        for source in rng.integers(len(images), size=n_per_kind):
            image = np.asarray(images[source], dtype=np.float32)
            if kind == "blank_frame":
                anomaly = make(image, rng, noise_sigma=noise_sigma)
            else:
                anomaly = make(image, rng)
            out.append(anomaly.astype(np.float32))
            names.append(kind)
            sources.append(source)
    return Bunch(
        images=np.stack(out), kind=np.asarray(names), source=np.asarray(sources, dtype=int)
    )
