"""Synthetic protoplanetary disks, smooth or with subtle planet signatures."""

import numpy as np
import pandas as pd

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

SIGNATURES = ("gap", "spiral", "kink", "point_source")

# images are drawn in batches so memory stays flat however many are asked for
_BATCH = 256
_MAX_RINGS = 3

_DESCR = """\
Synthetic protoplanetary disks
------------------------------

Dust-continuum-like images of protoplanetary disks (in the style of ALMA / SPHERE disk
images and of the ML4SCI EXXA simulations), one band, channels first ``(n, 1, H, W)``.

Each disk has a tapered power-law radial profile ``r**-gamma * exp(-r**(2 - gamma))`` with a
bright unresolved core and a soft outer edge, optionally natural axisymmetric rings (in both
classes), a mild lopsidedness, and is seen at a random inclination and position angle. The
image is convolved with a Gaussian beam, scaled so its noise-free peak is 1, and receives
beam-correlated Gaussian noise (interferometric noise is correlated on the beam scale).

Target: 1 when the disk carries a planet signature, 0 for a smooth disk:

- ``gap``: a narrow dark annulus;
- ``spiral``: one or two logarithmic spiral arms;
- ``kink``: a ring locally displaced in radius over a small range of azimuth;
- ``point_source``: a faint compact blob (circumplanetary emission) inside the disk.

The signatures are subtle by default (``signature_strength=0.5``): pixel-space PCA +
KMeans does not find them (orientation and size dominate the pixel variance). Even at
``signature_strength=1`` with all four signatures, the label is hard for any fixed embedding:
a logistic regression trained on 1000 disks scores about 0.50 on PCA (16 components) and
0.52 on RadialProfile features, while a small supervised CNN reaches about 0.75. One
signature type at a time is easier (gaps only: 0.73 and 0.79). Subtracting each disk's
axisymmetric model first (``skastro.features.AxisymmetricResidual``) cancels size,
inclination, profile and rings and leaves spirals, kinks and point sources: on those
residuals an equivariant autoencoder's 16 latents give a probe accuracy of about 0.75, and
blob counts (``DifferenceOfGaussians`` + ``BlobCounter``, which find the point sources)
about 0.81. Soft-thresholding the residuals at 3 sigma (``SoftThreshold``) before the
autoencoder lifts it to about 0.79 (0.76 for a plain convolutional autoencoder).
"""


def make_disks(
    n_samples=200,
    *,
    image_size=64,
    planet_fraction=0.5,
    signature_strength=0.5,
    signatures=SIGNATURES,
    ring_fraction=0.5,
    inclination_range=(0.0, 70.0),
    beam_fwhm_range=(1.5, 3.0),
    noise=0.01,
    random_state=None,
    return_X_y=False,
):
    """Generate protoplanetary disk images, some with subtle planet signatures.

    Parameters
    ----------
    n_samples : int, default=200
        Number of images.
    image_size : int, default=64
        Height and width in pixels. Geometry scales with it (a disk fills the same fraction of
        the frame at any size).
    planet_fraction : float, default=0.5
        Fraction of disks with a planet signature (label 1); counts are exact after rounding.
    signature_strength : float, default=0.5
        Overall contrast of the signatures: gap depth, spiral-arm contrast, kink displacement
        and point-source brightness all scale linearly with it. ``0`` makes the classes
        identical; ``1`` makes signatures obvious to the eye.
    signatures : sequence of str, default=("gap", "spiral", "kink", "point_source")
        Signature types drawn (uniformly) for label-1 disks.
    ring_fraction : float, default=0.5
        Fraction of disks, in *both* classes, with 1-3 natural axisymmetric rings, so that
        "has a ring" does not give the label away.
    inclination_range : (float, float), default=(0, 70)
        Range of inclinations in degrees (0 is face-on), drawn uniformly.
    beam_fwhm_range : (float, float), default=(1.5, 3.0)
        Range of the Gaussian beam FWHM in pixels at ``image_size=64`` (scaled with size).
    noise : float, default=0.01
        Standard deviation of the beam-correlated Gaussian noise, relative to the peak.
    random_state : int, numpy.random.Generator or None, default=None
        Seed for reproducible output.
    return_X_y : bool, default=False
        If True, return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, 1, H, W) float32 with peak ~1 and dark corners; ``target`` (n,) int,
        1 = planet signature; ``target_names`` ``['smooth', 'planet']``; ``metadata``, a
        DataFrame with one row per image (``inclination`` and ``position_angle`` in degrees,
        ``radius`` in pixels, ``gamma``, ``n_rings``, ``signature`` - ``'none'`` or one of
        ``signatures`` -, ``signature_radius`` in pixels, ``beam_fwhm``); ``DESCR``.
    (images, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from skastro.datasets import make_disks
    >>> disks = make_disks(8, image_size=32, random_state=0)
    >>> disks.images.shape, disks.images.dtype
    ((8, 1, 32, 32), dtype('float32'))
    >>> int(disks.target.sum())
    4
    >>> sorted(disks.metadata["signature"].unique())[:2]
    ['gap', 'kink']
    """
    n_samples = check_int(n_samples, "n_samples")
    image_size = check_int(image_size, "image_size", minimum=8)
    planet_fraction = check_fraction(planet_fraction, "planet_fraction")
    ring_fraction = check_fraction(ring_fraction, "ring_fraction")
    inc_lo, inc_hi = check_range(inclination_range, "inclination_range", 0.0, 89.0)
    beam_lo, beam_hi = check_range(beam_fwhm_range, "beam_fwhm_range", 0.0)
    if signature_strength < 0:
        raise ValueError(f"signature_strength must be >= 0; got {signature_strength!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}")
    signatures = tuple(signatures)
    unknown = set(signatures) - set(SIGNATURES)
    if not signatures or unknown:
        raise ValueError(f"signatures must be a non-empty subset of {SIGNATURES}; got {signatures}")
    rng = check_generator(random_state)
    scale = image_size / 64.0

    target = split_labels(n_samples, [1.0 - planet_fraction, planet_fraction], rng)
    kind = np.full(n_samples, -1)
    kind[target == 1] = rng.integers(0, len(signatures), int(target.sum()))
    params = {
        "inclination": rng.uniform(inc_lo, inc_hi, n_samples),
        "position_angle": rng.uniform(0.0, 180.0, n_samples),
        "radius": rng.uniform(9.0, 16.0, n_samples) * scale,
        "gamma": rng.uniform(0.3, 1.0, n_samples),
        "edge": rng.uniform(1.4, 1.8, n_samples),
        "core": rng.uniform(0.0, 0.4, n_samples),
        "lopsided": rng.uniform(0.0, 0.1, n_samples),
        "lopsided_angle": rng.uniform(-np.pi, np.pi, n_samples),
        "beam_fwhm": rng.uniform(beam_lo, beam_hi, n_samples) * scale,
    }
    # natural rings: present in both classes; a kink needs a ring to distort, so kinked disks
    # always get one, in slot 0
    has_rings = rng.random(n_samples) < ring_fraction
    n_rings = np.where(has_rings, rng.integers(1, _MAX_RINGS + 1, n_samples), 0)
    is_kink = np.array([k >= 0 and signatures[k] == "kink" for k in kind])
    n_rings[is_kink] = np.maximum(n_rings[is_kink], 1)
    ring_radius = np.sort(rng.uniform(0.35, 1.25, (n_samples, _MAX_RINGS)), axis=1)
    ring_radius[is_kink, 0] = rng.uniform(0.6, 1.1, int(is_kink.sum()))
    ring_width = rng.uniform(0.7, 1.4, (n_samples, _MAX_RINGS)) * scale
    ring_amp = rng.uniform(0.4, 1.2, (n_samples, _MAX_RINGS))
    ring_amp[is_kink, 0] = rng.uniform(0.8, 1.2, int(is_kink.sum()))
    ring_amp[np.arange(_MAX_RINGS)[None, :] >= n_rings[:, None]] = 0.0
    params["n_rings"] = n_rings

    # signature parameters, drawn for every disk so the random stream does not depend on
    # which signature a disk got; only the relevant ones are used
    sig = {
        "radius": rng.uniform(0.45, 1.05, n_samples),
        "angle": rng.uniform(-np.pi, np.pi, n_samples),
        "amplitude": signature_strength * rng.uniform(0.6, 1.0, n_samples),
        "width": rng.uniform(1.2, 2.2, n_samples) * scale,
        "arms": rng.integers(1, 3, n_samples),
        "pitch": np.deg2rad(rng.uniform(12.0, 25.0, n_samples)),
        "extent": rng.uniform(0.35, 0.7, n_samples),
    }
    sig["radius"][is_kink] = ring_radius[is_kink, 0]

    images = np.empty((n_samples, 1, image_size, image_size), dtype=np.float32)
    white = rng.standard_normal((n_samples, image_size, image_size), dtype=np.float32)
    for start in range(0, n_samples, _BATCH):
        batch = slice(start, min(start + _BATCH, n_samples))
        images[batch, 0] = _render(
            image_size,
            {k: v[batch] for k, v in params.items()},
            ring_radius[batch],
            ring_width[batch],
            ring_amp[batch],
            kind[batch],
            signatures,
            {k: v[batch] for k, v in sig.items()},
            white[batch],
            noise,
        )

    names = np.array(("none", *signatures))
    metadata = pd.DataFrame(
        {
            "inclination": params["inclination"],
            "position_angle": params["position_angle"],
            "radius": params["radius"],
            "gamma": params["gamma"],
            "n_rings": n_rings,
            "signature": names[kind + 1],
            "signature_radius": np.where(kind >= 0, sig["radius"] * params["radius"], np.nan),
            "beam_fwhm": params["beam_fwhm"],
        }
    )
    return finish_bunch(images, target, ["smooth", "planet"], metadata, _DESCR, return_X_y)


def _render(size, p, ring_radius, ring_width, ring_amp, kind, signatures, sig, white, noise):
    scale = np.float32(size / 64.0)
    col = {k: np.asarray(v, dtype=np.float32)[:, None, None] for k, v in p.items()}
    sig = {k: np.asarray(v, dtype=np.float32)[:, None, None] for k, v in sig.items()}
    kind_name = np.array([signatures[k] if k >= 0 else "none" for k in kind])
    y, x = pixel_grid(size)
    inc = np.deg2rad(col["inclination"])
    pa = np.deg2rad(col["position_angle"])
    # sky -> disk plane: rotate by the position angle, stretch the minor axis by 1 / cos(i)
    x_disk = x * np.cos(pa) + y * np.sin(pa)
    y_disk = (-x * np.sin(pa) + y * np.cos(pa)) / np.cos(inc)
    r_px = np.hypot(x_disk, y_disk)
    phi = np.arctan2(y_disk, x_disk)
    r = r_px / col["radius"]
    gamma = col["gamma"]

    # Lynden-Bell & Pringle taper, softened at the centre, times a steep outer edge (dust
    # drift gives continuum disks sharp edges)
    soft = np.hypot(r, 0.15)
    disk = soft**-gamma * np.exp(-(soft ** (2.0 - gamma))) / (1.0 + (r / col["edge"]) ** 8)
    # bright, unresolved inner disk
    disk += col["core"] * np.exp(-0.5 * (r_px / (1.2 * scale)) ** 2) * 0.15**-gamma
    disk *= 1.0 + col["lopsided"] * np.cos(phi - col["lopsided_angle"]) * np.minimum(r, 1.0)

    # a kink displaces ring 0 outwards over a limited range of azimuth
    kink_shift = np.zeros_like(disk)
    sel = kind_name == "kink"
    if sel.any():
        dphi = wrap_angle(phi[sel] - sig["angle"][sel])
        bump = np.exp(-0.5 * (dphi / sig["extent"][sel]) ** 2)
        kink_shift[sel] = 4.0 * scale * sig["amplitude"][sel] * bump
    rings = np.ones_like(disk)
    for k in range(ring_radius.shape[1]):
        amp = ring_amp[:, k].astype(np.float32)[:, None, None]
        if not amp.any():
            continue
        centre = ring_radius[:, k].astype(np.float32)[:, None, None] * col["radius"]
        width = ring_width[:, k].astype(np.float32)[:, None, None]
        offset = r_px - centre - (kink_shift if k == 0 else 0.0)
        rings += amp * np.exp(-0.5 * (offset / width) ** 2)
    disk *= rings

    sel = kind_name == "gap"
    if sel.any():
        depth = np.minimum(2.0 * sig["amplitude"][sel], 0.95)
        centre = sig["radius"][sel] * col["radius"][sel]
        disk[sel] *= 1.0 - depth * np.exp(-0.5 * ((r_px[sel] - centre) / sig["width"][sel]) ** 2)
    sel = kind_name == "spiral"
    if sel.any():
        rs = np.maximum(r_px[sel], 0.5)
        winding = np.log(rs / col["radius"][sel]) / np.tan(sig["pitch"][sel])
        arms = (
            0.5 + 0.5 * np.cos(sig["arms"][sel] * (phi[sel] - sig["angle"][sel]) - winding)
        ) ** 4
        envelope = np.exp(-0.5 * (np.log(rs / (0.8 * col["radius"][sel])) / 0.45) ** 2)
        disk[sel] *= 1.0 + 1.5 * sig["amplitude"][sel] * arms * envelope

    beam_sigma = p["beam_fwhm"] / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    # white noise scaled so that, after the beam, its standard deviation is `noise`
    # (a Gaussian of width s turns unit white noise into noise of std 1 / (2 sqrt(pi) s))
    white = white * (2.0 * np.sqrt(np.pi) * beam_sigma[:, None, None] * noise)
    stacked = fourier_gaussian_blur(np.concatenate([disk, white]), np.concatenate([beam_sigma] * 2))
    clean, correlated = stacked[: len(disk)], stacked[len(disk) :]
    clean /= clean.reshape(len(clean), -1).max(axis=1)[:, None, None]

    sel = kind_name == "point_source"
    if sel.any():
        # circumplanetary emission is unresolved: after the beam it is a beam-sized blob at the
        # projected position of the planet, added here with a peak relative to the disk's
        rp = sig["radius"][sel] * col["radius"][sel]
        px, py = rp * np.cos(sig["angle"][sel]), rp * np.sin(sig["angle"][sel]) * np.cos(inc[sel])
        a = pa[sel]
        sx, sy = px * np.cos(a) - py * np.sin(a), px * np.sin(a) + py * np.cos(a)
        width2 = (0.5 * scale) ** 2 + col["beam_fwhm"][sel] ** 2 / (8.0 * np.log(2.0))
        blob = np.exp(-0.5 * ((x - sx) ** 2 + (y - sy) ** 2) / width2)
        clean[sel] += 0.2 * sig["amplitude"][sel] * blob
    return clean + correlated
