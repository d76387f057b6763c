"""Aperture photometry: known answers on hand-made images, and errors on bad input."""

import numpy as np
import pytest

from skastro.photometry import aperture_snr, flux_fractions, sky_noise


def test_sky_noise_recovers_the_noise_of_each_band():
    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 1.0, (20, 2, 40, 40)) * np.array([1.0, 3.0])[None, :, None, None]
    X[:, :, 12:28, 12:28] += 100.0  # a bright object in the middle does not count
    sigma = sky_noise(X)
    assert sigma.shape == (20, 2)
    np.testing.assert_allclose(sigma.mean(axis=0), [1.0, 3.0], rtol=0.05)


def test_sky_noise_of_a_constant_sky_is_tiny_but_positive():
    sigma = sky_noise(np.ones((1, 1, 20, 20)))
    assert 0 < sigma[0, 0] < 1e-9


def test_aperture_snr_of_a_known_flux():
    rng = np.random.default_rng(1)
    X = rng.normal(0.0, 2.0, (200, 1, 32, 32))
    X[:, 0, 16, 16] += 300.0  # a point source, well inside the aperture
    n_pixels = 113  # pixels within 6 px of the centre (15.5, 15.5) of a 32 x 32 image
    expected = 300.0 / (2.0 * np.sqrt(n_pixels))
    snr = aperture_snr(X, radius=6.0)
    assert abs(np.median(snr) - expected) < 0.05 * expected


def test_aperture_snr_measures_the_band_asked_for():
    X = np.random.default_rng(2).normal(0.0, 1.0, (5, 3, 32, 32))
    X[:, 1, 14:18, 14:18] += 50.0
    assert np.all(aperture_snr(X, band=1) > 10 * np.abs(aperture_snr(X, band=0)))
    np.testing.assert_array_equal(aperture_snr(X, band=-2), aperture_snr(X, band=1))


def test_flux_fractions_of_a_point_and_of_a_flat_disk():
    size = 21
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    distance = np.hypot(yy, xx)
    point = np.zeros((size, size))
    point[10, 10] = 5.0
    flat = (distance <= 8).astype(float)
    fractions = flux_fractions(np.stack([point, flat]), [1.0, 4.0], total_radius=8.0)
    np.testing.assert_allclose(fractions[0], [1.0, 1.0])
    expected = [(distance <= r).sum() / (distance <= 8).sum() for r in (1.0, 4.0)]
    np.testing.assert_allclose(fractions[1], expected)


def test_concentration_separates_compact_from_extended_objects():
    size = 24
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    compact = np.exp(-(xx**2 + yy**2) / (2 * 1.0**2))
    extended = np.exp(-(xx**2 + yy**2) / (2 * 3.0**2))
    ratio = flux_fractions(np.stack([compact, extended]), [2.0], total_radius=6.0)[:, 0]
    assert ratio[0] > 0.8 > 0.3 > ratio[1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sky_noise(np.zeros((2, 16))), "3-D"),
        (lambda: sky_noise(np.zeros((2, 1, 16, 16)), border=8), "pass a border between 1 and 7"),
        (lambda: aperture_snr(np.zeros((2, 1, 20, 20)), band=1), "band=1 is out of range"),
        (lambda: flux_fractions(np.zeros((2, 1, 20, 20)), [1.0], total_radius=3, band=3), "band"),
        (lambda: aperture_snr(np.array([[["a"]]])), "numeric"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rectangular_images_are_measured_about_their_centre():
    # a 32 x 40 image whose 32 x 32 centre holds the source: the same apertures as the crop
    rng = np.random.default_rng(0)
    wide = rng.normal(0.0, 1.0, (3, 1, 32, 40))
    wide[:, 0, 14:18, 18:22] += 20.0
    crop = wide[..., 4:36]
    np.testing.assert_allclose(
        flux_fractions(wide, [2.0], total_radius=6.0), flux_fractions(crop, [2.0], total_radius=6.0)
    )
    np.testing.assert_allclose(aperture_snr(wide, radius=4), aperture_snr(crop, radius=4), rtol=0.2)
    with pytest.raises(ValueError, match="radius must be a positive number"):
        aperture_snr(wide, radius=0)
    with pytest.raises(ValueError, match="pass a border between 1 and 15"):
        sky_noise(wide, border=0)


def test_measures_do_not_depend_on_flux_units():
    # cgs fluxes (~1e-29) are far below the 1e-12 that keeps ratios finite
    rng = np.random.default_rng(1)
    X = rng.normal(0.0, 1.0, (4, 1, 32, 32))
    X[:, 0, 13:19, 13:19] += np.array([2.0, 5.0, 20.0, 80.0])[:, None, None]
    for scale in (3e-29, 1e25):
        np.testing.assert_allclose(sky_noise(X * scale), sky_noise(X) * scale, rtol=1e-9)
        np.testing.assert_allclose(aperture_snr(X * scale), aperture_snr(X), rtol=1e-9)
        np.testing.assert_allclose(
            flux_fractions(X * scale, [2.0], total_radius=6.0),
            flux_fractions(X, [2.0], total_radius=6.0),
            rtol=1e-9,
        )
