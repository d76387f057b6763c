"""Tests for skastro.cutouts.PeakScaler: known answers, brightness invariance, layouts, errors."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline

from skastro import PeakScaler
from tests._sklearn_checks import parametrize_with_checks

SIZE = 16


def _gaussian(sigma, size=SIZE):
    """A centred circular Gaussian of unit peak."""
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    return np.exp(-(rows**2 + cols**2) / (2 * sigma**2))


@pytest.fixture(scope="module")
def stars_and_galaxies():
    """Point-like (sigma 1 px) and extended (sigma 2.5 px) objects over 3 decades of flux."""
    rng = np.random.default_rng(0)
    n = 80
    label = np.arange(n) % 2
    flux = 10.0 ** rng.uniform(0, 3, n)
    shapes = np.where(label[:, None, None] == 1, _gaussian(2.5), _gaussian(1.0))
    images = flux[:, None, None] * shapes + 0.01 * rng.standard_normal((n, SIZE, SIZE))
    return images.astype(np.float32), label


def test_brighter_copy_of_an_image_scales_to_the_same_output():
    star = _gaussian(1.5)
    out = PeakScaler().fit_transform(np.stack([star, 250.0 * star]))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


def test_central_pixel_maps_to_asinh_of_inverse_softening_and_colours_are_kept():
    star = _gaussian(1.5, size=17)  # odd size: the peak is the single central pixel
    colours = np.array([0.5, 2.0, 1.0])
    X = (colours[:, None, None] * star)[None]  # (1, 3, 17, 17)
    out = PeakScaler(softening=0.2, band=2, peak_box=1).fit_transform(X)
    np.testing.assert_allclose(out[0, :, 8, 8], np.arcsinh(colours / 0.2), rtol=1e-6)
    # undoing the stretch gives the image over its r-like band's peak: colour ratios unchanged
    back = np.sinh(out.astype(np.float64)) * 0.2
    np.testing.assert_allclose(back, X / 1.0, rtol=1e-5, atol=1e-7)


def test_band_none_uses_the_sum_of_the_channels():
    X = np.stack([_gaussian(1.0, 17), 3.0 * _gaussian(1.0, 17)])[None]
    out = PeakScaler(softening=1.0, peak_box=1).fit_transform(X)
    np.testing.assert_allclose(out[0, :, 8, 8], np.arcsinh([0.25, 0.75]), rtol=1e-6)


def test_crop_returns_the_central_square_of_the_scaled_image():
    rng = np.random.default_rng(1)
    X = rng.gamma(1.0, size=(3, 2, SIZE, SIZE)) + 5 * _gaussian(1.0)
    whole = PeakScaler().fit_transform(X)
    cropped = PeakScaler(crop=6).fit_transform(X)
    assert cropped.shape == (3, 2, 6, 6)
    assert cropped.dtype == np.float32
    np.testing.assert_allclose(cropped, whole[:, :, 5:11, 5:11])


def test_layouts_are_kept():
    rng = np.random.default_rng(2)
    X = rng.gamma(1.0, size=(4, SIZE, SIZE)).astype(np.float32)
    assert PeakScaler(crop=8).fit_transform(X).shape == (4, 8, 8)
    flat = rng.gamma(1.0, size=(4, 2 * SIZE * SIZE))
    out = PeakScaler(crop=8, image_shape=(2, SIZE, SIZE)).fit_transform(flat)
    assert out.shape == (4, 2 * 8 * 8)


def test_image_without_a_central_source_is_not_blown_up():
    noise = np.random.default_rng(3).standard_normal((1, SIZE, SIZE))
    noise[0, 6:10, 6:10] = -5.0  # the central box holds nothing positive
    out = PeakScaler().fit_transform(noise)
    assert np.all(np.isfinite(out))
    # divided by at least the noise level (~1): |x| < 5 gives |asinh(x / 0.1)| < asinh(50)
    assert np.abs(out).max() < np.arcsinh(60.0)


def test_peak_scaling_lets_a_clustering_find_shape_instead_of_brightness(stars_and_galaxies):
    images, label = stars_and_galaxies
    pipeline = make_pipeline(PCA(2, random_state=0), KMeans(2, n_init=10, random_state=0))
    raw = pipeline.fit_predict(images.reshape(len(images), -1))
    scaled = pipeline.fit_predict(PeakScaler().fit_transform(images).reshape(len(images), -1))
    assert adjusted_rand_score(label, scaled) > 0.9
    assert adjusted_rand_score(label, raw) < 0.3  # on raw fluxes the split is brightness


def test_big_endian_input_gives_the_same_answer():
    X = (5 * _gaussian(1.0) + 0.1)[None].astype(np.float32)
    native = PeakScaler().fit_transform(X)
    np.testing.assert_array_equal(PeakScaler().fit_transform(X.astype(">f4")), native)


def test_nan_pixels_raise_or_are_filled():
    X = np.stack([_gaussian(1.0), _gaussian(2.0)])
    X[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="nan_policy='fill'"):
        PeakScaler().fit(X)
    out = PeakScaler(nan_policy="fill").fit_transform(X)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"band": 3}, "band=3 but the images have 2 channel"),
        ({"crop": 20}, "crop=20 is larger than the 16 x 16 images"),
        ({"peak_box": 17}, "peak_box=17 is larger"),
        ({"softening": 0.0}, "softening"),
    ],
)
def test_bad_parameters_say_what_is_wrong(params, message):
    X = np.ones((2, 2, SIZE, SIZE))
    with pytest.raises(ValueError, match=message):
        PeakScaler(**params).fit(X)


def test_failed_fit_leaves_the_scaler_unfitted():
    scaler = PeakScaler(crop=20)
    with pytest.raises(ValueError):
        scaler.fit(np.ones((2, SIZE, SIZE)))
    assert not hasattr(scaler, "image_shape_")


# image_shape=(1, 1, -1) reads any flat row as a 1-pixel-high image, so every check applies
@parametrize_with_checks([PeakScaler(peak_box=1, image_shape=(1, 1, -1))], xfail_strict=True)
def test_sklearn_checks(estimator, check):
    check(estimator)
