"""Synthetic galaxy cutouts of several morphological classes (HST-like, noise-free)."""

import numpy as np
import pandas as pd
from scipy.special import k1

from ._common import (
    check_fraction,
    check_generator,
    check_int,
    check_range,
    finish_bunch,
    fourier_gaussian_blur,
    pixel_grid,
    split_labels,
    wrap_angle,
)
from ._profiles import column, gaussian, rotated, sersic

GALAXY_CLASSES = ("elliptical", "spiral", "edge_on", "irregular")

_BATCH = 256

_DESCR = """\
Synthetic galaxies
------------------

HST-like galaxy cutouts (in the style of Galaxy Zoo: Hubble / CANDELS), channels first
``(n, n_bands, H, W)``, noise-free with a zero sky by default: denoising benchmarks add their
own Poisson + Gaussian noise. Each image is convolved with a Gaussian PSF of 1.5-2.5 px FWHM
(at 64 px) and scaled so its brightest pixel is ``peak``, drawn from ``peak_range``.

Classes (``target_names``):

0. ``elliptical``: a single Sérsic profile, n = 2.5-5.5, axis ratio 0.5-1;
1. ``spiral``: exponential disk (inclination 0-65 deg) + Sérsic bulge (B/T 0.05-0.4) with
   two or three logarithmic spiral arms, star-forming knots along them and a bar in 30%;
2. ``edge_on``: a thin exponential disk seen edge-on (sech^2 vertical profile), a small bulge
   and a dust lane in half of them;
3. ``irregular``: either clumpy (a diffuse disk with 3-8 bright clumps) or a merger (two
   nuclei with tidal tails); ``metadata['subtype']`` says which.

Sizes overlap between classes and every image is scaled to a similar peak, so the classes
differ by shape rather than by total flux. Multi-band images (``n_bands > 1``, ordered blue
to red) give bulges and ellipticals red colours and arms, knots and clumps blue ones.

``masks`` are foreground masks: pixels of the noise-free image (summed over bands) above
``mask_threshold`` times its maximum.
"""


def make_galaxies(
    n_samples=200,
    *,
    image_size=64,
    n_bands=1,
    size_range=(3.5, 9.0),
    peak_range=(0.6, 1.0),
    psf_fwhm_range=(1.5, 2.5),
    noise_sigma=0.0,
    mask_threshold=0.03,
    random_state=None,
    return_X_y=False,
):
    """Generate galaxy images of four morphological classes.

    Parameters
    ----------
    n_samples : int, default=200
        Number of images; the four classes get equal counts (up to rounding).
    image_size : int, default=64
        Height and width in pixels; sizes scale with it.
    n_bands : int, default=1
        Number of bands (channels), ordered from blue to red.
    size_range : (float, float), default=(3.5, 9.0)
        Range of the characteristic radius (effective radius of the main component) in
        pixels at ``image_size=64``, drawn log-uniformly.
    peak_range : (float, float), default=(0.6, 1.0)
        Range of the brightest pixel value of each noise-free image.
    psf_fwhm_range : (float, float), default=(1.5, 2.5)
        Range of the Gaussian PSF FWHM in pixels at ``image_size=64``.
    noise_sigma : float, default=0.0
        Standard deviation of Gaussian noise added to ``images`` (the masks are always
        computed from the noise-free image).
    mask_threshold : float, default=0.03
        Foreground threshold, as a fraction of the noise-free image's maximum.
    random_state : int, numpy.random.Generator or None, default=None
        Seed for reproducible output.
    return_X_y : bool, default=False
        If True, return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, n_bands, H, W) float32; ``target`` (n,) int; ``target_names``
        ``['elliptical', 'spiral', 'edge_on', 'irregular']``; ``masks`` (n, H, W) bool;
        ``metadata``, a DataFrame with one row per image (``morphology``, ``subtype``,
        ``size`` in pixels, ``axis_ratio``, ``angle`` in degrees, ``sersic_n``,
        ``bulge_fraction``, ``peak``, ``total_flux``, ``psf_fwhm``, ``x_center``,
        ``y_center`` - offsets from the image centre in pixels); ``DESCR``.
    (images, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from skastro.datasets import make_galaxies
    >>> galaxies = make_galaxies(8, image_size=32, random_state=0)
    >>> galaxies.images.shape, galaxies.masks.shape
    ((8, 1, 32, 32), (8, 32, 32))
    >>> galaxies.target_names.tolist()
    ['elliptical', 'spiral', 'edge_on', 'irregular']
    >>> bool(galaxies.images.max() <= 1.0)
    True
    """
    n_samples = check_int(n_samples, "n_samples")
    image_size = check_int(image_size, "image_size", minimum=8)
    n_bands = check_int(n_bands, "n_bands")
    size_lo, size_hi = check_range(size_range, "size_range", 1e-3)
    peak_lo, peak_hi = check_range(peak_range, "peak_range", 1e-6)
    psf_lo, psf_hi = check_range(psf_fwhm_range, "psf_fwhm_range", 0.0)
    mask_threshold = check_fraction(mask_threshold, "mask_threshold")
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0; got {noise_sigma!r}")
    rng = check_generator(random_state)
    scale = image_size / 64.0

    target = split_labels(n_samples, np.full(len(GALAXY_CLASSES), 1 / len(GALAXY_CLASSES)), rng)
    common = {
        "size": np.exp(rng.uniform(np.log(size_lo), np.log(size_hi), n_samples)) * scale,
        "angle": rng.uniform(0.0, np.pi, n_samples),
        "x_center": rng.uniform(-1.5, 1.5, n_samples) * scale,
        "y_center": rng.uniform(-1.5, 1.5, n_samples) * scale,
        "peak": rng.uniform(peak_lo, peak_hi, n_samples),
        "psf_fwhm": rng.uniform(psf_lo, psf_hi, n_samples) * scale,
    }
    renderers = (_elliptical, _spiral, _edge_on, _irregular)

    images = np.zeros((n_samples, n_bands, image_size, image_size), dtype=np.float32)
    rows = [None] * n_samples
    y, x = pixel_grid(image_size)
    for label, render in enumerate(renderers):
        members = np.flatnonzero(target == label)
        for start in range(0, members.size, _BATCH):
            idx = members[start : start + _BATCH]
            params = {k: v[idx] for k, v in common.items()}
            # each renderer returns a list of (image stack, colour) components and a dict of
            # per-object metadata
            components, meta = render(y, x, params, rng, scale)
            for stack, colour in components:
                images[idx] += stack[:, None] * _band_factors(colour, n_bands)
            for j, i in enumerate(idx):
                rows[i] = {k: v[j] for k, v in meta.items()}

    sigma = common["psf_fwhm"] / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    images = fourier_gaussian_blur(images, sigma)
    np.maximum(images, 0.0, out=images)  # the FFT leaves +-1e-7 ripples on the sky
    peak_now = images.reshape(n_samples, -1).max(axis=1)
    images *= (common["peak"] / peak_now).astype(np.float32)[:, None, None, None]
    band_sum = images.sum(axis=1)
    masks = band_sum > mask_threshold * band_sum.reshape(n_samples, -1).max(axis=1)[:, None, None]

    metadata = pd.DataFrame(rows)
    metadata.insert(0, "morphology", np.asarray(GALAXY_CLASSES)[target])
    for key in ("size", "peak", "psf_fwhm", "x_center", "y_center"):
        metadata[key] = common[key]
    metadata["angle"] = np.rad2deg(common["angle"])
    metadata["total_flux"] = images.sum(axis=(1, 2, 3))
    if noise_sigma > 0:
        images += rng.normal(0.0, noise_sigma, images.shape).astype(np.float32)
    return finish_bunch(
        images, target, list(GALAXY_CLASSES), metadata, _DESCR, return_X_y, masks=masks
    )


def _band_factors(colour, n_bands):
    """Flux in each band relative to the reddest, for colours in magnitudes per band step.

    Positive colours are red (fainter in the blue bands). Shape ``(m, n_bands, 1, 1)``.
    """
    steps = np.arange(n_bands, dtype=np.float32) - (n_bands - 1)
    factors = 10.0 ** (0.4 * np.asarray(colour, dtype=np.float32)[:, None] * steps[None, :])
    return factors[:, :, None, None].astype(np.float32)


def _normalised(image):
    """Scale each image to unit sum, so components mix in the intended flux ratios."""
    total = image.sum(axis=(1, 2), keepdims=True)
    # an absent component (no knots drawn, say) stays zero rather than becoming NaN
    return image / np.where(total > 0, total, 1.0)


def _elliptical(y, x, p, rng, scale):
    m = len(p["size"])
    n = rng.uniform(2.5, 5.5, m)
    q = rng.uniform(0.5, 1.0, m)
    image = sersic(
        y, x, x0=p["x_center"], y0=p["y_center"], n=n, r_eff=p["size"], q=q, theta=p["angle"]
    )
    colour = rng.uniform(0.25, 0.4, m)
    meta = {"subtype": np.full(m, "elliptical"), "axis_ratio": q, "sersic_n": n}
    meta["bulge_fraction"] = np.ones(m)
    return [(_normalised(image), colour)], meta


def _spiral(y, x, p, rng, scale):
    m = len(p["size"])
    x0, y0, theta = p["x_center"], p["y_center"], p["angle"]
    q_disk = np.maximum(np.cos(np.deg2rad(rng.uniform(0.0, 65.0, m))), 0.3)
    h = p["size"] / 1.678  # scale length of an exponential disk with this effective radius
    bulge_fraction = rng.uniform(0.05, 0.4, m)
    n_bulge = rng.uniform(1.0, 4.0, m)
    r_bulge = rng.uniform(0.15, 0.35, m) * p["size"]
    n_arms = np.where(rng.random(m) < 0.8, 2, 3)
    pitch = np.deg2rad(rng.uniform(12.0, 30.0, m))
    arm_phase = rng.uniform(-np.pi, np.pi, m)
    contrast = rng.uniform(1.0, 2.5, m)
    has_bar = rng.random(m) < 0.3
    bar_length = rng.uniform(0.5, 0.9, m) * p["size"]

    u, v = rotated(y, x, x0, y0, theta)
    v = v / column(q_disk)  # deproject into the disk plane
    r = np.maximum(np.hypot(u, v), 0.3)
    phi = np.arctan2(v, u)
    # arms start at the ends of the bar (or of the bulge) and wind outwards
    r_start = column(np.where(has_bar, bar_length, 2.0 * r_bulge))
    winding = np.log(r / r_start) / np.tan(column(pitch))
    arms = (0.5 + 0.5 * np.cos(column(n_arms) * (phi - column(arm_phase)) - winding)) ** 2
    inner = 1.0 - np.exp(-0.5 * (r / r_start) ** 2)
    disk = np.exp(-r / column(h))
    smooth_part = disk * (1.0 + 0.3 * inner)
    arm_part = disk * column(contrast) * arms * inner

    # star-forming knots sit on the arms
    n_knots = 6
    knot_r = rng.uniform(0.8, 2.5, (m, n_knots)) * h[:, None]
    which_arm = rng.integers(0, n_arms[:, None], (m, n_knots))
    knot_phi = (
        arm_phase[:, None]
        + (np.log(knot_r / r_start.reshape(-1, 1)) / np.tan(pitch[:, None]) + 2 * np.pi * which_arm)
        / n_arms[:, None]
    )
    knot_u, knot_v = knot_r * np.cos(knot_phi), knot_r * np.sin(knot_phi) * q_disk[:, None]
    cos_t, sin_t = np.cos(theta)[:, None], np.sin(theta)[:, None]
    knot_x = x0[:, None] + knot_u * cos_t - knot_v * sin_t
    knot_y = y0[:, None] + knot_u * sin_t + knot_v * cos_t
    knot_flux = rng.uniform(0.0, 1.0, (m, n_knots)) * (rng.random((m, n_knots)) < 0.6)
    knots = np.zeros_like(disk)
    for k in range(n_knots):
        knots += gaussian(
            y, x, x0=knot_x[:, k], y0=knot_y[:, k], sigma=0.6 * scale, flux=knot_flux[:, k]
        )

    bulge = sersic(
        y, x, x0=x0, y0=y0, n=n_bulge, r_eff=r_bulge, q=rng.uniform(0.7, 1.0, m), theta=theta
    )
    # the bar lies along the arm phase in the disk plane: its direction is projected onto the
    # sky, its axis ratio is not (not worth the code at these sizes)
    bar_angle = theta + np.arctan2(q_disk * np.sin(arm_phase), np.cos(arm_phase))
    bar = sersic(
        y,
        x,
        x0=x0,
        y0=y0,
        n=np.full(m, 0.5),
        r_eff=bar_length,
        q=rng.uniform(0.2, 0.35, m),
        theta=bar_angle,
    )
    disk_fraction = 1.0 - bulge_fraction
    bar_fraction = np.where(has_bar, 0.15, 0.0) * disk_fraction
    star_forming = 0.5 * (disk_fraction - bar_fraction)
    components = [
        (_normalised(bulge) * column(bulge_fraction), rng.uniform(0.25, 0.4, m)),
        (
            _normalised(smooth_part) * column(disk_fraction - bar_fraction - star_forming),
            rng.uniform(0.1, 0.2, m),
        ),
        (_normalised(arm_part) * column(star_forming * 0.85), rng.uniform(-0.1, 0.05, m)),
        (_normalised(knots) * column(star_forming * 0.15), rng.uniform(-0.15, 0.0, m)),
        (_normalised(bar) * column(bar_fraction), rng.uniform(0.2, 0.35, m)),
    ]
    meta = {
        "subtype": np.where(has_bar, "barred_spiral", "spiral"),
        "axis_ratio": q_disk,
        "sersic_n": n_bulge,
        "bulge_fraction": bulge_fraction,
    }
    return components, meta


def _edge_on(y, x, p, rng, scale):
    m = len(p["size"])
    x0, y0, theta = p["x_center"], p["y_center"], p["angle"]
    # edge-on disks are drawn longer than the other classes are wide, so that their thinness
    # does not leave them with visibly less total light at the same peak
    h = p["size"] / 1.678 * rng.uniform(1.2, 1.8, m)
    z0 = h * rng.uniform(0.12, 0.3, m)
    bulge_fraction = rng.uniform(0.0, 0.35, m)
    n_bulge = rng.uniform(1.0, 4.0, m)
    has_lane = rng.random(m) < 0.5
    lane_depth = np.where(has_lane, rng.uniform(0.6, 0.95, m), 0.0)

    u, v = rotated(y, x, x0, y0, theta)
    # an exponential disk seen exactly edge-on integrates to (|u|/h) K1(|u|/h) along the line
    # of sight; the vertical structure is an isothermal sech^2
    t = np.maximum(np.abs(u) / column(h), 1e-3)
    fold = np.exp(-2.0 * np.abs(v) / column(z0))  # sech^2 written so it cannot overflow
    disk = t * k1(t) * 4.0 * fold / (1.0 + fold) ** 2
    lane_offset = rng.uniform(-0.3, 0.3, m) * z0
    lane = 1.0 - column(lane_depth) * np.exp(
        -0.5 * ((v - column(lane_offset)) / (0.6 * column(z0))) ** 2
    ) * (1.0 - np.exp(-0.5 * (u / column(0.5 * h)) ** 2))
    disk = (disk * lane).astype(np.float32)
    bulge = sersic(
        y,
        x,
        x0=x0,
        y0=y0,
        n=n_bulge,
        r_eff=rng.uniform(0.15, 0.3, m) * p["size"],
        q=rng.uniform(0.6, 0.9, m),
        theta=theta,
    )
    components = [
        (_normalised(disk) * column(1.0 - bulge_fraction), rng.uniform(0.1, 0.25, m)),
        (_normalised(bulge) * column(bulge_fraction), rng.uniform(0.25, 0.4, m)),
    ]
    meta = {
        "subtype": np.where(has_lane, "edge_on_dust_lane", "edge_on"),
        "axis_ratio": z0 / h,
        "sersic_n": n_bulge,
        "bulge_fraction": bulge_fraction,
    }
    return components, meta


def _irregular(y, x, p, rng, scale):
    m = len(p["size"])
    x0, y0, theta, size = p["x_center"], p["y_center"], p["angle"], p["size"]
    is_merger = rng.random(m) < 0.5

    # clumpy: a diffuse disk with bright star-forming clumps scattered over it
    n_clumps = 8
    present = np.arange(n_clumps)[None, :] < rng.integers(3, n_clumps + 1, m)[:, None]
    clump_x = x0[:, None] + rng.normal(0.0, 0.6, (m, n_clumps)) * size[:, None]
    clump_y = y0[:, None] + rng.normal(0.0, 0.6, (m, n_clumps)) * size[:, None]
    clump_sigma = rng.uniform(0.7, 2.0, (m, n_clumps)) * scale
    clump_flux = rng.uniform(0.2, 1.0, (m, n_clumps)) * present
    clumps = np.zeros((m, *np.broadcast_shapes(y.shape, x.shape)), dtype=np.float32)
    for k in range(n_clumps):
        clumps += gaussian(
            y, x, x0=clump_x[:, k], y0=clump_y[:, k], sigma=clump_sigma[:, k], flux=clump_flux[:, k]
        )
    diffuse = sersic(
        y,
        x,
        x0=x0,
        y0=y0,
        n=np.full(m, 1.0),
        r_eff=size,
        q=rng.uniform(0.4, 1.0, m),
        theta=theta,
    )
    clump_fraction = rng.uniform(0.35, 0.7, m)

    # merger: two nuclei, with tidal tails drawn from the first
    separation = rng.uniform(0.8, 1.6, m) * size
    direction = rng.uniform(-np.pi, np.pi, m)
    ratio = rng.uniform(0.3, 1.0, m)
    n_nuclei = rng.uniform(1.0, 4.0, (m, 2))
    centre_x = x0[:, None] + np.array([-0.5, 0.5]) * (separation * np.cos(direction))[:, None]
    centre_y = y0[:, None] + np.array([-0.5, 0.5]) * (separation * np.sin(direction))[:, None]
    nuclei = [
        sersic(
            y,
            x,
            x0=centre_x[:, k],
            y0=centre_y[:, k],
            n=n_nuclei[:, k],
            r_eff=rng.uniform(0.35, 0.7, m) * size,
            q=rng.uniform(0.5, 1.0, m),
            theta=rng.uniform(0.0, np.pi, m),
        )
        for k in range(2)
    ]
    tails = _tidal_tails(y, x, centre_x, centre_y, size, rng, scale)
    tail_fraction = rng.uniform(0.1, 0.25, m)

    merger_w = column(is_merger)
    clumpy_w = 1.0 - merger_w
    first = 1.0 / (1.0 + ratio)
    body_fraction = 1.0 - tail_fraction
    components = [
        (_normalised(diffuse) * clumpy_w * column(1.0 - clump_fraction), rng.uniform(0.05, 0.2, m)),
        (_normalised(clumps) * clumpy_w * column(clump_fraction), rng.uniform(-0.15, 0.0, m)),
        (
            _normalised(nuclei[0]) * merger_w * column(body_fraction * first),
            rng.uniform(0.1, 0.35, m),
        ),
        (
            _normalised(nuclei[1]) * merger_w * column(body_fraction * (1.0 - first)),
            rng.uniform(0.1, 0.35, m),
        ),
        (_normalised(tails) * merger_w * column(tail_fraction), rng.uniform(0.0, 0.15, m)),
    ]
    meta = {
        "subtype": np.where(is_merger, "merger", "clumpy"),
        "axis_ratio": np.full(m, np.nan),
        "sersic_n": np.where(is_merger, n_nuclei[:, 0], 1.0),
        "bulge_fraction": np.where(is_merger, body_fraction, 1.0 - clump_fraction),
    }
    return components, meta


def _tidal_tails(y, x, centre_x, centre_y, size, rng, scale):
    """One or two faint logarithmic-spiral arcs leaving the nuclei of a merger."""
    m = len(size)
    tails = np.zeros((m, *np.broadcast_shapes(y.shape, x.shape)), dtype=np.float32)
    two_tails = rng.random(m) < 0.5
    for k in range(2):
        dx, dy = x - column(centre_x[:, k]), y - column(centre_y[:, k])
        rho = np.hypot(dx, dy)
        start = rng.uniform(-np.pi, np.pi, m)
        sense = np.where(rng.random(m) < 0.5, 1.0, -1.0)
        # angle travelled along the tail, in [0, 2 pi)
        travelled = np.mod(
            column(sense) * wrap_angle(np.arctan2(dy, dx) - column(start)), 2 * np.pi
        )
        r0 = column(rng.uniform(0.6, 1.0, m) * size)
        arc = r0 * np.exp(travelled * np.tan(np.deg2rad(column(rng.uniform(15.0, 30.0, m)))))
        width = (0.8 + 0.5 * travelled) * scale
        extent = column(rng.uniform(1.5, 3.0, m))
        weight = np.exp(-travelled / extent) * (travelled < extent)
        tail = weight * np.exp(-0.5 * ((rho - arc) / width) ** 2) / width
        tails += tail * column(np.where(k == 0, 1.0, two_tails))
    return tails
