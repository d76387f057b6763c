"""Synthetic SDSS-like ugriz cutouts of stars and galaxies."""

import numpy as np
import pandas as pd
import scipy.fft

from ._common import (
    check_fraction,
    check_generator,
    check_int,
    check_range,
    finish_bunch,
    pixel_grid,
    split_labels,
)
from ._profiles import moffat, sersic

BANDS = ("u", "g", "r", "i", "z")
PIXEL_SCALE = 0.396  # arcsec per pixel of the SDSS camera
_WAVELENGTH = np.array([3551.0, 4686.0, 6166.0, 7480.0, 8932.0])  # Angstrom, effective
# Per-pixel sky noise in nanomaggies, from the 5-sigma point-source depths (u 22.0, g 22.2,
# r 22.2, i 21.3, z 20.5) at the median seeing of 1.4 arcsec.
_SKY_SIGMA = np.array([0.060, 0.050, 0.050, 0.114, 0.237])
# Photo-electrons per nanomaggy (gain / nMgyPerCount): sets the source Poisson noise.
_ELECTRONS_PER_NMGY = np.array([160.0, 830.0, 940.0, 740.0, 160.0])
# Stellar locus in SDSS colours, tabulated against g - r (after Covey et al. 2007).
_LOCUS_GR = np.array([-0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6])
_LOCUS_UG = np.array([0.7, 0.9, 1.1, 1.5, 1.95, 2.3, 2.5, 2.6, 2.6])
_LOCUS_RI = np.array([-0.1, 0.05, 0.12, 0.2, 0.3, 0.45, 0.8, 1.3, 1.8])
_LOCUS_IZ = np.array([-0.05, 0.0, 0.05, 0.1, 0.15, 0.25, 0.4, 0.65, 0.9])

_BATCH = 128
_PSF_SHAPES = ("moffat", "gaussian", "double_gaussian")
# the double-Gaussian PSF: a fraction of the light in a wider halo (SDSS's PSF fits put
# ~10% in a halo twice as wide as the core)
_HALO_FRACTION = 0.15
_HALO_WIDTH = 2.5

_DESCR = """\
Synthetic SDSS-like star/galaxy cutouts
---------------------------------------

Five-band (u, g, r, i, z) 64 x 64 cutouts at the SDSS pixel scale (0.396 arcsec), channels
first ``(n, 5, H, W)``, in sky-subtracted nanomaggies (22.5 - 2.5 log10(flux) is an AB
magnitude), laid out like the labelled SDSS data of Kim & Brunner.

- Stars are Moffat point-spread functions (beta 3-4.5) whose FWHM (the seeing, 1-2 arcsec
  in r, i.e. 2.5-5 px) varies from image to image and with wavelength (FWHM ~ lambda^-0.2),
  with colours along the stellar locus.
- Galaxies are Sérsic profiles (n 0.5-4, effective radius from ~0.5 px to several px
  shrinking with magnitude, axis ratio 0.3-1) convolved with the same PSF, with red-sequence
  or blue-cloud colours reddened with redshift.
- r-band magnitudes are uniform over ``magnitude_range`` except that ``faint_fraction`` of
  the objects are drawn from its faintest two magnitudes, where galaxies are small and noisy
  and look like stars.
- Noise: per-band sky noise matching the SDSS depths (varying by +-30% between images) plus
  the Poisson noise of the source.
- ``neighbour_fraction`` of the images contain one or two other stars or galaxies
  off-centre; the central object is always within half a pixel of the centre.

``masks`` (n, H, W) int: 0 background, 1 central object, 2 neighbours - pixels where the
object's noise-free r-band image exceeds ``mask_threshold`` times the r-band sky noise
(where objects overlap, the brighter one wins).

A concentration index (r-band flux within 2 px over flux within 6 px of the centre)
separates the classes with a ROC AUC of about 0.85 at the defaults.

Other surveys: ``psf`` (Moffat, Gaussian, double Gaussian), ``psf_beta_range``,
``psf_ellipticity``, ``pixel_scale``, ``bands`` (any subset and order), ``noise_scale``,
``sky_gradient`` (residual sky), ``sersic_n_range``, ``bulge_fraction_range`` and
``neighbour_distance_range`` (blends) change what real surveys differ in; at their defaults
the output is the SDSS-like data above, bit for bit.
"""


def make_star_galaxy(
    n_samples=200,
    *,
    image_size=64,
    galaxy_fraction=0.5,
    magnitude_range=(15.5, 22.0),
    faint_fraction=0.4,
    seeing_range=(1.0, 2.0),
    galaxy_size_scale=1.0,
    neighbour_fraction=0.3,
    mask_threshold=1.0,
    psf="moffat",
    psf_beta_range=(3.0, 4.5),
    psf_ellipticity=0.0,
    pixel_scale=PIXEL_SCALE,
    bands=BANDS,
    noise_scale=1.0,
    sky_gradient=0.0,
    sersic_n_range=None,
    bulge_fraction_range=None,
    neighbour_distance_range=None,
    random_state=None,
    return_X_y=False,
):
    """Generate SDSS-like five-band cutouts of stars and galaxies.

    Parameters
    ----------
    n_samples : int, default=200
        Number of images.
    image_size : int, default=64
        Height and width in pixels (the pixel scale stays 0.396 arcsec).
    galaxy_fraction : float, default=0.5
        Fraction of images whose central object is a galaxy (exact after rounding).
    magnitude_range : (float, float), default=(15.5, 22.0)
        Range of r-band magnitudes of the central objects and of the neighbours.
    faint_fraction : float, default=0.4
        Fraction of objects drawn from the faintest two magnitudes of ``magnitude_range``
        (the rest are uniform over the brighter part). Raise it for a harder problem.
    seeing_range : (float, float), default=(1.0, 2.0)
        Range of the r-band seeing FWHM in arcsec, drawn uniformly per image.
    galaxy_size_scale : float, default=1.0
        Multiplies every galaxy's effective radius: below 1 more galaxies look like stars.
    neighbour_fraction : float, default=0.3
        Fraction of images with one or two neighbouring objects.
    mask_threshold : float, default=1.0
        Segmentation threshold in units of the image's r-band sky noise per pixel.
    psf : {"moffat", "gaussian", "double_gaussian"}, default="moffat"
        Shape of the point-spread function, whose FWHM is the seeing. ``"double_gaussian"``
        is a core Gaussian of that FWHM with 15% of the light in a halo 2.5 times wider.
    psf_beta_range : (float, float), default=(3.0, 4.5)
        Range of the Moffat index beta, drawn per image (smaller: broader wings).
    psf_ellipticity : float, default=0.0
        Largest PSF ellipticity ``1 - b/a``, drawn uniformly per image with a random
        orientation (the same in every band).
    pixel_scale : float, default=0.396
        Arcsec per pixel. The seeing and the galaxies' angular sizes stay the same, so they
        cover more pixels at a finer scale; the sky noise per pixel scales with the pixel's
        side (the same sky brightness per square arcsec).
    bands : sequence of str, default=("u", "g", "r", "i", "z")
        The bands returned, in this order: any subset of ugriz in any order.
    noise_scale : float, default=1.0
        Multiplies the sky noise of every band (below 1: a deeper survey).
    sky_gradient : float, default=0.0
        Residual sky left by an imperfect sky subtraction: a plane with a random direction
        whose value changes by up to ``sky_gradient`` sky sigmas across the image (drawn per
        image), with a random offset of up to half of that.
    sersic_n_range : (float, float) or None, default=None
        Draw every galaxy's Sérsic index uniformly from this range instead of the default
        mix (60% n 0.5-1.5, 40% n 1.5-4).
    bulge_fraction_range : (float, float) or None, default=None
        Give every galaxy a de Vaucouleurs (n = 4) bulge with this range of bulge-to-total
        flux ratios, 0.2-0.5 times the galaxy's effective radius; None draws no bulges.
    neighbour_distance_range : (float, float) or None, default=None
        Range of the neighbours' distance from the centre in pixels; None gives 8-40 px at
        64 px (scaled with ``image_size``). Below ~6 px neighbours blend with the object.
    random_state : int, numpy.random.Generator or None, default=None
        Seed for reproducible output.
    return_X_y : bool, default=False
        If True, return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, 5, H, W) float32 in nanomaggies; ``target`` (n,) int, 0 = STAR,
        1 = GALAXY; ``target_names`` ``['STAR', 'GALAXY']``; ``masks`` (n, H, W) int8
        (0 background, 1 central object, 2 neighbours); ``bands`` ``['u', ..., 'z']``;
        ``metadata``, a DataFrame with one row per image (``class``, ``mag_u`` ...
        ``mag_z``, ``snr_r`` - matched-filter signal-to-noise of the central object in r -,
        ``seeing`` in arcsec, ``seeing_px``, ``psf_beta``, ``psf_ellipticity``,
        ``sersic_n``, ``r_eff`` in pixels, ``axis_ratio`` and ``bulge_fraction`` - NaN for
        stars -, ``z`` (redshift), ``sky_sigma_r``, ``has_neighbour``, ``n_neighbours``,
        ``x_center``, ``y_center``); ``DESCR``. ``bands`` lists the bands returned.
    (images, target) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from skastro.datasets import make_star_galaxy
    >>> data = make_star_galaxy(6, image_size=32, random_state=0)
    >>> data.images.shape, data.masks.shape
    ((6, 5, 32, 32), (6, 32, 32))
    >>> data.target_names.tolist(), int(data.target.sum())
    (['STAR', 'GALAXY'], 3)
    """
    n_samples = check_int(n_samples, "n_samples")
    image_size = check_int(image_size, "image_size", minimum=16)
    galaxy_fraction = check_fraction(galaxy_fraction, "galaxy_fraction")
    faint_fraction = check_fraction(faint_fraction, "faint_fraction")
    neighbour_fraction = check_fraction(neighbour_fraction, "neighbour_fraction")
    magnitudes = check_range(magnitude_range, "magnitude_range", 0.0, 40.0)
    seeing_lo, seeing_hi = check_range(seeing_range, "seeing_range", 0.3)
    if galaxy_size_scale <= 0:
        raise ValueError(f"galaxy_size_scale must be > 0; got {galaxy_size_scale!r}")
    if mask_threshold < 0:
        raise ValueError(f"mask_threshold must be >= 0; got {mask_threshold!r}")
    if psf not in _PSF_SHAPES:
        raise ValueError(f"psf must be one of {_PSF_SHAPES}; got {psf!r}")
    beta_lo, beta_hi = check_range(psf_beta_range, "psf_beta_range", 1.5, 100.0)
    if not 0.0 <= psf_ellipticity < 1.0:
        raise ValueError(f"psf_ellipticity must be in [0, 1); got {psf_ellipticity!r}")
    for name, value in (("pixel_scale", pixel_scale), ("noise_scale", noise_scale)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0; got {value!r}")
    if not sky_gradient >= 0:
        raise ValueError(f"sky_gradient must be >= 0; got {sky_gradient!r}")
    band_index = _band_index(bands)
    if sersic_n_range is not None:
        sersic_n_range = check_range(sersic_n_range, "sersic_n_range", 0.36, 10.0)
    if bulge_fraction_range is not None:
        bulge_fraction_range = check_range(bulge_fraction_range, "bulge_fraction_range", 0.0, 1.0)
    if neighbour_distance_range is not None:
        neighbour_distance_range = check_range(
            neighbour_distance_range, "neighbour_distance_range", 0.0
        )
    rng = check_generator(random_state)
    galaxy_shapes = {
        # galaxies keep their angular size: more pixels at a finer scale (exactly 1 at SDSS's)
        "size_scale": galaxy_size_scale * (PIXEL_SCALE / pixel_scale),
        "sersic_n_range": sersic_n_range,
        "bulge_fraction_range": bulge_fraction_range,
    }

    target = split_labels(n_samples, [1.0 - galaxy_fraction, galaxy_fraction], rng)
    seeing = rng.uniform(seeing_lo, seeing_hi, n_samples)
    image_params = {
        "seeing_px": seeing / pixel_scale,
        "beta": rng.uniform(beta_lo, beta_hi, n_samples),
        "sky_scale": rng.uniform(0.8, 1.3, n_samples),
    }
    central = _draw_objects(target.astype(bool), magnitudes, faint_fraction, galaxy_shapes, rng)
    central["image"] = np.arange(n_samples)
    central["x"] = rng.uniform(-0.5, 0.5, n_samples)
    central["y"] = rng.uniform(-0.5, 0.5, n_samples)

    n_neighbours = np.where(
        rng.random(n_samples) < neighbour_fraction, 1 + (rng.random(n_samples) < 0.3), 0
    )
    owner = np.repeat(np.arange(n_samples), n_neighbours)
    neighbours = _draw_objects(
        rng.random(owner.size) < 0.5, magnitudes, faint_fraction, galaxy_shapes, rng
    )
    neighbours["image"] = owner
    # 8 to 40 px (at 64 px) from the centre: some neighbours are cut by the frame, but all
    # stay on the padded canvas they are drawn on
    farthest = min(40.0 * image_size / 64.0, _pad(image_size) + image_size / 2 - 5)
    nearest = 8.0 * image_size / 64.0
    if neighbour_distance_range is not None:
        nearest, farthest = neighbour_distance_range[0], min(neighbour_distance_range[1], farthest)
    distance = rng.uniform(nearest, max(nearest, farthest), owner.size)
    direction = rng.uniform(-np.pi, np.pi, owner.size)
    neighbours["x"] = distance * np.cos(direction)
    neighbours["y"] = distance * np.sin(direction)

    if psf != "moffat" or psf_ellipticity > 0:
        image_params["ellipticity"] = rng.uniform(0.0, psf_ellipticity, n_samples)
        image_params["psf_angle"] = rng.uniform(0.0, np.pi, n_samples)
    # sky noise per pixel grows with the pixel's side at a fixed sky brightness (1.0 at SDSS's)
    depth = _SKY_SIGMA * (noise_scale * pixel_scale / PIXEL_SCALE)
    sky_sigma = (image_params["sky_scale"][:, None] * depth[None, :]).astype(np.float32)
    electrons_per_nmgy = _ELECTRONS_PER_NMGY.astype(np.float32)[None, :, None, None]
    noise = rng.standard_normal((n_samples, len(BANDS), image_size, image_size), dtype=np.float32)
    images = np.empty((n_samples, len(BANDS), image_size, image_size), dtype=np.float32)
    masks = np.empty((n_samples, image_size, image_size), dtype=np.int8)
    snr = np.empty(n_samples)
    for start in range(0, n_samples, _BATCH):
        stop = min(start + _BATCH, n_samples)
        chunk = slice(start, stop)
        in_chunk = (owner >= start) & (owner < stop)
        central_img, neighbour_img = _render_chunk(
            image_size,
            {k: v[chunk] for k, v in image_params.items()},
            {k: v[chunk] for k, v in central.items()},
            {k: v[in_chunk] for k, v in neighbours.items()},
            offset=start,
            psf=psf,
        )
        clean = central_img + neighbour_img
        # sky noise plus the source's own Poisson noise (Gaussian limit: many photons)
        variance = (
            sky_sigma[chunk, :, None, None] ** 2 + np.maximum(clean, 0.0) / electrons_per_nmgy
        )
        images[chunk] = clean + np.sqrt(variance) * noise[chunk]
        threshold = mask_threshold * sky_sigma[chunk, 2, None, None]
        central_r, neighbour_r = central_img[:, 2], neighbour_img[:, 2]
        mask = np.zeros(central_r.shape, dtype=np.int8)
        mask[(central_r > threshold) & (central_r >= neighbour_r)] = 1
        mask[(neighbour_r > threshold) & (neighbour_r > central_r)] = 2
        masks[chunk] = mask
        snr[chunk] = np.sqrt((central_r**2 / variance[:, 2]).sum(axis=(1, 2)))

    if sky_gradient > 0:
        sky = _sky_planes(n_samples, image_size, sky_gradient, rng)
        images += sky * sky_sigma[:, :, None, None]
    images = images[:, band_index] if band_index != list(range(len(BANDS))) else images

    metadata = pd.DataFrame(
        {
            "class": np.where(target == 1, "GALAXY", "STAR"),
            **{f"mag_{band}": central["mag"][:, k] for k, band in enumerate(BANDS)},
            "snr_r": snr,
            "seeing": seeing,
            "seeing_px": image_params["seeing_px"],
            "psf_beta": image_params["beta"],
            "psf_ellipticity": image_params.get("ellipticity", np.zeros(n_samples)),
            "sersic_n": np.where(target == 1, central["n"], np.nan),
            "r_eff": np.where(target == 1, central["r_eff"], np.nan),
            "axis_ratio": np.where(target == 1, central["q"], np.nan),
            "bulge_fraction": np.where(target == 1, central["bulge_fraction"], np.nan),
            "z": central["redshift"],
            "sky_sigma_r": sky_sigma[:, 2],
            "has_neighbour": n_neighbours > 0,
            "n_neighbours": n_neighbours,
            "x_center": central["x"],
            "y_center": central["y"],
        }
    )
    return finish_bunch(
        images,
        target,
        ["STAR", "GALAXY"],
        metadata,
        _DESCR,
        return_X_y,
        masks=masks,
        bands=[BANDS[k] for k in band_index],
    )


def _band_index(bands):
    """Positions in ugriz of the requested bands, checked."""
    if isinstance(bands, str):
        bands = list(bands)
    bands = list(bands)
    if not bands or any(b not in BANDS for b in bands) or len(set(bands)) != len(bands):
        raise ValueError(f"bands must be distinct names among {BANDS}; got {bands!r}")
    return [BANDS.index(b) for b in bands]


def _sky_planes(n, size, amplitude, rng):
    """Residual sky planes in sky sigmas: up to ``amplitude`` across the image, random slope."""
    y, x = pixel_grid(size)
    angle = rng.uniform(-np.pi, np.pi, n)[:, None, None]
    change = rng.uniform(0.0, amplitude, n)[:, None, None]
    offset = rng.uniform(-0.5, 0.5, n)[:, None, None] * change
    plane = change * (x * np.cos(angle) + y * np.sin(angle)) / size + offset
    return plane[:, None].astype(np.float32)


def _draw_objects(is_galaxy, magnitudes, faint_fraction, shapes, rng):
    """Magnitudes, colours and shapes of stars and galaxies (one row per object)."""
    m = is_galaxy.size
    mag_lo, mag_hi = magnitudes
    split = max(mag_lo, mag_hi - 2.0)
    faint = rng.random(m) < faint_fraction
    mag_r = np.where(faint, rng.uniform(split, mag_hi, m), rng.uniform(mag_lo, split, m))

    # stars: halo/thick-disk F-G stars and disk K-M dwarfs along the stellar locus
    g_r_star = np.where(
        rng.random(m) < 0.6, rng.normal(0.35, 0.12, m), rng.uniform(0.6, 1.5, m)
    ).clip(-0.1, 1.6)
    star_colours = np.stack(
        [
            np.interp(g_r_star, _LOCUS_GR, _LOCUS_UG),
            g_r_star,
            np.interp(g_r_star, _LOCUS_GR, _LOCUS_RI),
            np.interp(g_r_star, _LOCUS_GR, _LOCUS_IZ),
        ],
        axis=1,
    )
    # galaxies: higher Sérsic index -> more often on the red sequence; fainter -> further
    # away -> smaller and redder
    n = np.where(rng.random(m) < 0.6, rng.uniform(0.5, 1.5, m), rng.uniform(1.5, 4.0, m))
    redshift = np.clip(0.1 * 10 ** (0.2 * (mag_r - 17.5)) * rng.lognormal(0.0, 0.3, m), 0.01, 1.0)
    red = rng.random(m) < np.clip(0.1 + 0.8 * (n - 1.0) / 3.0, 0.05, 0.9)
    base = np.where(red[:, None], [1.8, 0.8, 0.42, 0.35], [1.1, 0.45, 0.25, 0.15])
    galaxy_colours = base + np.outer(redshift, [0.5, 0.8, 0.3, 0.2])
    colours = np.where(is_galaxy[:, None], galaxy_colours, star_colours)
    colours = colours + rng.normal(0.0, 0.05, (m, 4)) * [3.0, 1.0, 1.0, 1.0]
    u_g, g_r, r_i, i_z = colours.T
    mag = np.stack([mag_r + g_r + u_g, mag_r + g_r, mag_r, mag_r - r_i, mag_r - r_i - i_z], axis=1)

    # effective radius shrinks with magnitude: ~6 px at r = 16, ~1 px at r = 22
    r_eff = (
        6.0 * 10 ** (-0.13 * (mag_r - 16.0)) * rng.lognormal(0.0, 0.45, m) * shapes["size_scale"]
    )
    objects = {
        "is_galaxy": is_galaxy,
        "mag": mag,
        "n": n,
        "r_eff": np.clip(r_eff, 0.3, 30.0),
        "q": np.where(n < 1.5, rng.uniform(0.3, 1.0, m), rng.uniform(0.6, 1.0, m)),
        "theta": rng.uniform(0.0, np.pi, m),
        "redshift": np.where(is_galaxy, redshift, rng.normal(0.0, 2e-4, m)),
        "bulge_fraction": np.zeros(m),
    }
    # the variants' profile mixes draw after everything else, so the defaults stay unchanged
    if shapes["sersic_n_range"] is not None:
        objects["n"] = rng.uniform(*shapes["sersic_n_range"], m)
    if shapes["bulge_fraction_range"] is not None:
        objects["bulge_fraction"] = rng.uniform(*shapes["bulge_fraction_range"], m)
        objects["bulge_r_eff"] = np.clip(rng.uniform(0.2, 0.5, m) * objects["r_eff"], 0.2, None)
        objects["bulge_q"] = rng.uniform(0.7, 1.0, m)
    return objects


def _render_chunk(size, image_params, central, neighbours, offset, psf="moffat"):
    """Noise-free, PSF-convolved images of the central objects and of the neighbours.

    Everything is convolved in Fourier space: a star is the PSF's transfer function times the
    phase ramp of its (sub-pixel) position, a galaxy the transform of its Sérsic image times
    the transfer function. Objects are drawn on a canvas padded by ``size // 8`` per side, so
    neighbours near the edge and the PSF wings that the FFT wraps round behave, then cropped.
    """
    pad = _pad(size)
    canvas = size + 2 * pad
    # seeing is worse in the blue: FWHM ~ lambda^-0.2 (Kolmogorov turbulence)
    fwhm = image_params["seeing_px"][:, None] * (_WAVELENGTH[2] / _WAVELENGTH) ** 0.2
    if "ellipticity" in image_params:
        otf = _psf_transfer(canvas, fwhm, image_params, psf)
    else:
        otf = _moffat_transfer(canvas, fwhm, image_params["beta"])  # (n, 5, canvas, canvas//2+1)

    spectra = _unit_spectra(canvas, central)[:, None] * otf
    spectra *= _flux(central)[:, :, None, None]
    central_img = scipy.fft.irfft2(spectra, s=(canvas, canvas), workers=1)

    neighbour_img = np.zeros_like(central_img)
    owner = neighbours["image"] - offset
    if owner.size:
        with_neighbours, slot = np.unique(owner, return_inverse=True)
        spectra = np.zeros((with_neighbours.size, *otf.shape[1:]), dtype=otf.dtype)
        np.add.at(
            spectra,
            slot,
            _unit_spectra(canvas, neighbours)[:, None] * _flux(neighbours)[:, :, None, None],
        )
        spectra *= otf[with_neighbours]
        neighbour_img[with_neighbours] = scipy.fft.irfft2(spectra, s=(canvas, canvas), workers=1)
    crop = (Ellipsis, slice(pad, pad + size), slice(pad, pad + size))
    return central_img[crop], neighbour_img[crop]


def _pad(size):
    return max(size // 8, 4)


def _flux(objects):
    """Fluxes in nanomaggies, (m, 5) float32."""
    return (10.0 ** (0.4 * (22.5 - objects["mag"]))).astype(np.float32)


def _moffat_transfer(canvas, fwhm, beta):
    """Transfer functions (rfft2) of unit-sum Moffat PSFs, one per image and band.

    The PSF is centred on pixel (0, 0) of the periodic canvas. It depends only on the absolute
    pixel offsets, so it is evaluated on one quadrant and mirrored (4x fewer powers).
    """
    quadrant = np.arange(canvas // 2 + 1, dtype=np.float32)
    n, n_bands = fwhm.shape
    kernel = moffat(
        quadrant[:, None],
        quadrant[None, :],
        x0=np.zeros(n * n_bands),
        y0=np.zeros(n * n_bands),
        fwhm=fwhm.ravel(),
        beta=np.repeat(beta, n_bands),
    ).reshape(n, n_bands, quadrant.size, quadrant.size)
    mirror = np.abs(np.fft.fftfreq(canvas, 1.0 / canvas)).astype(int)
    kernel = kernel[:, :, mirror[:, None], mirror[None, :]]
    otf = scipy.fft.rfft2(kernel, workers=1)
    return otf / otf[..., :1, :1].real


def _psf_transfer(canvas, fwhm, image_params, psf):
    """Transfer functions of unit-sum PSFs of any shape, ellipticity and orientation.

    The general path (the default circular Moffat PSF takes :func:`_moffat_transfer`): each
    kernel is evaluated on the whole periodic canvas, centred on pixel (0, 0). An ellipticity
    ``e`` stretches the radius to ``sqrt(q u**2 + v**2 / q)`` with ``q = 1 - e`` along the
    PSF's axes, which keeps the area of an isophote.
    """
    offsets = np.fft.fftfreq(canvas, 1.0 / canvas).astype(np.float32)
    dy, dx = offsets[None, :, None], offsets[None, None, :]
    angle = image_params["psf_angle"].astype(np.float32)[:, None, None]
    q = (1.0 - image_params["ellipticity"]).astype(np.float32)[:, None, None]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    r2 = (q * u**2 + v**2 / q)[:, None]  # (n, 1, canvas, canvas)
    width = fwhm.astype(np.float32)[:, :, None, None]
    if psf == "moffat":
        beta = image_params["beta"].astype(np.float32)[:, None, None, None]
        alpha = width / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        kernel = (1.0 + r2 / alpha**2) ** -beta
    else:
        sigma = width / np.float32(2.0 * np.sqrt(2.0 * np.log(2.0)))
        kernel = np.exp(-0.5 * r2 / sigma**2) / sigma**2
        if psf == "double_gaussian":
            halo = np.float32(_HALO_WIDTH) * sigma
            kernel = (1.0 - _HALO_FRACTION) * kernel + _HALO_FRACTION * np.exp(
                -0.5 * r2 / halo**2
            ) / halo**2
    otf = scipy.fft.rfft2(kernel, workers=1)
    return otf / otf[..., :1, :1].real


def _unit_spectra(canvas, objects):
    """Fourier transforms of the unit-flux, un-convolved objects: ``(m, canvas, canvas//2+1)``."""
    m = objects["is_galaxy"].size
    spectra = np.empty((m, canvas, canvas // 2 + 1), dtype=np.complex64)
    centre = (canvas - 1) / 2.0
    stars = np.flatnonzero(~objects["is_galaxy"])
    if stars.size:
        # a point source at (x, y): the phase ramp exp(-2 pi i (fy y + fx x))
        fy = np.fft.fftfreq(canvas).astype(np.float32)
        fx = np.fft.rfftfreq(canvas).astype(np.float32)
        ramp_y = np.exp(-2j * np.pi * np.outer(objects["y"][stars] + centre, fy))
        ramp_x = np.exp(-2j * np.pi * np.outer(objects["x"][stars] + centre, fx))
        spectra[stars] = ramp_y[:, :, None] * ramp_x[:, None, :]
    galaxies = np.flatnonzero(objects["is_galaxy"])
    if galaxies.size:
        y, x = pixel_grid(canvas)
        g = {k: v[galaxies] for k, v in objects.items()}
        image = _sersic_supersampled(y, x, g, canvas)
        if "bulge_r_eff" in g:
            bulge = dict(g, n=np.full(galaxies.size, 4.0), r_eff=g["bulge_r_eff"], q=g["bulge_q"])
            fraction = g["bulge_fraction"][:, None, None]
            image = (1.0 - fraction) * image + fraction * _sersic_supersampled(y, x, bulge, canvas)
        spectra[galaxies] = scipy.fft.rfft2(image, workers=1)
    return spectra


def _sersic_supersampled(y, x, g, canvas, half=3, factor=5):
    """Unit-flux Sérsic images, integrated over pixels near the centre.

    Compact galaxies (r_eff ~ 0.5 px) are badly point-sampled: the 7 x 7 pixels around each
    centre are replaced by the mean over a 5 x 5 sub-pixel grid.
    """
    shape = {k: g[k] for k in ("n", "q", "theta")}
    image = sersic(y, x, x0=g["x"], y0=g["y"], r_eff=g["r_eff"], soften=0.0, **shape)
    centre = (canvas - 1) / 2.0
    row0 = np.rint(g["y"] + centre).astype(int) - half
    col0 = np.rint(g["x"] + centre).astype(int) - half
    width = 2 * half + 1
    sub = (np.arange(width * factor) + 0.5) / factor - 0.5  # sub-pixel centres, in pixels
    ys = (row0[:, None] - centre + sub[None, :])[:, :, None].astype(np.float32)
    xs = (col0[:, None] - centre + sub[None, :])[:, None, :].astype(np.float32)
    fine = sersic(ys, xs, x0=g["x"], y0=g["y"], r_eff=g["r_eff"], soften=0.0, **shape)
    patch = fine.reshape(-1, width, factor, width, factor).mean(axis=(2, 4))
    rows = row0[:, None, None] + np.arange(width)[None, :, None]
    cols = col0[:, None, None] + np.arange(width)[None, None, :]
    image[np.arange(len(row0))[:, None, None], rows, cols] = patch
    # unit flux on the canvas (the part of a big galaxy beyond it is lost, as in a real cutout)
    return image / image.sum(axis=(1, 2), keepdims=True)
