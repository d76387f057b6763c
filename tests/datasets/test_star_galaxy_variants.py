"""make_star_galaxy's survey knobs: PSF shape, pixel scale, bands, noise, sky, profiles, blends."""

import numpy as np
import pytest

from skastro.datasets import make_star_galaxy


def _bright_stars(psf, **kwargs):
    """Noise-free-ish bright, isolated stars (r band, 48 px)."""
    data = make_star_galaxy(
        40,
        image_size=48,
        galaxy_fraction=0.0,
        magnitude_range=(15.0, 15.5),
        faint_fraction=0.0,
        neighbour_fraction=0.0,
        noise_scale=0.01,
        psf=psf,
        random_state=0,
        **kwargs,
    )
    return data.images[:, 2].astype(np.float64), data.metadata


def _moments(images, radius=12.0):
    """Flux-weighted second moments (Ixx, Iyy, Ixy) about the centroid, within ``radius``."""
    size = images.shape[-1]
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    images = images * (np.hypot(y, x) <= radius)
    flux = images.sum(axis=(1, 2))
    cx = (images * x).sum(axis=(1, 2)) / flux
    cy = (images * y).sum(axis=(1, 2)) / flux
    dx, dy = x - cx[:, None, None], y - cy[:, None, None]
    return [(images * w).sum(axis=(1, 2)) / flux for w in (dx * dx, dy * dy, dx * dy)]


def test_defaults_keep_the_five_ugriz_bands():
    data = make_star_galaxy(4, image_size=32, random_state=0)
    assert data.bands == ["u", "g", "r", "i", "z"]
    assert (data.metadata["psf_ellipticity"] == 0).all()
    assert (data.metadata["bulge_fraction"].dropna() == 0).all()


def test_bands_select_and_reorder_the_same_images():
    full = make_star_galaxy(6, image_size=32, random_state=3)
    some = make_star_galaxy(6, image_size=32, bands=("z", "r"), random_state=3)
    assert some.bands == ["z", "r"]
    np.testing.assert_array_equal(some.images, full.images[:, [4, 2]])
    np.testing.assert_array_equal(some.masks, full.masks)


def test_gaussian_psf_has_lighter_wings_than_moffat():
    def wing_fraction(images, fwhm_px):
        size = images.shape[-1]
        y, x = np.mgrid[:size, :size] - (size - 1) / 2
        far = np.hypot(y, x)[None] > 2.0 * fwhm_px[:, None, None]
        return (images * far).sum(axis=(1, 2)) / images.sum(axis=(1, 2))

    moffat, meta_m = _bright_stars("moffat", psf_beta_range=(2.5, 2.5))
    gauss, meta_g = _bright_stars("gaussian")
    # a Gaussian holds ~1e-5 of its light beyond 2 FWHM; a Moffat with beta 2.5 several %
    assert wing_fraction(gauss, meta_g["seeing_px"].to_numpy()).mean() < 0.005
    assert wing_fraction(moffat, meta_m["seeing_px"].to_numpy()).mean() > 0.02


def test_psf_ellipticity_elongates_stars():
    round_, _ = _bright_stars("gaussian")
    elongated, meta = _bright_stars("gaussian", psf_ellipticity=0.5)
    for images, expected in ((round_, np.zeros(len(round_))), (elongated, meta["psf_ellipticity"])):
        xx, yy, xy = _moments(images)
        # eigenvalues of the moment matrix give the axis ratio q = 1 - e (squared)
        half_trace, det = (xx + yy) / 2, xx * yy - xy**2
        spread = np.sqrt(half_trace**2 - det)
        q = np.sqrt((half_trace - spread) / (half_trace + spread))
        np.testing.assert_allclose(1 - q, expected, atol=0.03)


def test_finer_pixels_spread_the_same_seeing_over_more_pixels():
    sdss = make_star_galaxy(50, image_size=32, random_state=1)
    fine = make_star_galaxy(50, image_size=32, pixel_scale=0.2, random_state=1)
    np.testing.assert_allclose(fine.metadata["seeing_px"], sdss.metadata["seeing_px"] * 1.98)
    # same sky brightness per square arcsec: less noise per (smaller) pixel
    np.testing.assert_allclose(
        fine.metadata["sky_sigma_r"], sdss.metadata["sky_sigma_r"] * 0.2 / 0.396, rtol=1e-6
    )


def test_noise_scale_and_sky_gradient():
    base = make_star_galaxy(30, image_size=32, random_state=2)
    deep = make_star_galaxy(30, image_size=32, noise_scale=0.5, random_state=2)
    np.testing.assert_allclose(
        deep.metadata["sky_sigma_r"], base.metadata["sky_sigma_r"] * 0.5, rtol=1e-6
    )
    sloped = make_star_galaxy(30, image_size=32, sky_gradient=20.0, random_state=2)
    # the sky is drawn after everything else: the difference is exactly the residual plane
    plane = (sloped.images - base.images).astype(np.float64)
    np.testing.assert_allclose(np.diff(plane, n=2, axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.diff(plane, n=2, axis=-2), 0.0, atol=1e-5)
    sigma = base.metadata["sky_sigma_r"].to_numpy()
    corners = plane[:, 2, [0, 0, -1, -1], [0, -1, 0, -1]]
    across = (corners.max(axis=1) - corners.min(axis=1)) / sigma
    assert across.max() > 10 and across.max() <= 20 * np.sqrt(2) + 1e-3


def test_profile_mix_and_bulges():
    data = make_star_galaxy(
        60,
        image_size=32,
        sersic_n_range=(5.0, 6.0),
        bulge_fraction_range=(0.2, 0.4),
        random_state=4,
    )
    galaxies = data.metadata[data.target == 1]
    assert galaxies["sersic_n"].between(5.0, 6.0).all()
    assert galaxies["bulge_fraction"].between(0.2, 0.4).all()
    assert data.metadata["bulge_fraction"][data.target == 0].isna().all()


def test_neighbour_distance_range_makes_blends():
    data = make_star_galaxy(
        40,
        image_size=32,
        neighbour_fraction=1.0,
        neighbour_distance_range=(2.0, 4.0),
        magnitude_range=(15.0, 17.0),
        random_state=5,
    )
    # a neighbour within 4 px overlaps the central object: its mask touches the centre's
    size = data.masks.shape[-1]
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    near = np.hypot(y, x) <= 6
    assert np.mean([(m[near] == 2).any() for m in data.masks]) > 0.8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"psf": "airy"}, "psf must be one of"),
        ({"psf_beta_range": (1.0, 2.0)}, "psf_beta_range"),
        ({"psf_ellipticity": 1.0}, "psf_ellipticity"),
        ({"pixel_scale": 0.0}, "pixel_scale"),
        ({"noise_scale": -1.0}, "noise_scale"),
        ({"sky_gradient": -1.0}, "sky_gradient"),
        ({"bands": ("r", "y")}, "bands must be"),
        ({"bands": ("r", "r")}, "bands must be"),
        ({"bands": ()}, "bands must be"),
        ({"sersic_n_range": (0.1, 2.0)}, "sersic_n_range"),
        ({"bulge_fraction_range": (0.5, 1.5)}, "bulge_fraction_range"),
        ({"neighbour_distance_range": (5.0, 2.0)}, "neighbour_distance_range"),
    ],
)
def test_bad_knobs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_star_galaxy(4, image_size=32, **kwargs)
