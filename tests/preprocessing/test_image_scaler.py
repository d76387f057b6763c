"""Tests of skastro.preprocessing.ImageScaler."""

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skastro.preprocessing import ImageScaler
from tests._sklearn_checks import parametrize_with_checks

STRETCHES = ["asinh", "log", "linear", "sqrt"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # the test machines have 2 shared cores: OpenMP's spinning threads (t-SNE, KMeans) slow
    # down tenfold when oversubscribed, so these tiny problems run on one thread
    with threadpool_limits(1):
        yield


def _expected_failed_checks(estimator):
    # every common check applies to ImageScaler in both modes; an entry here would need a
    # one-line reason, and strict xfails make a check that starts passing fail the suite
    return {}


@parametrize_with_checks(
    [ImageScaler(per_image=False), ImageScaler(per_image=True)],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def images():
    """(n, C, H, W) images with a wide dynamic range, like sky cutouts."""
    return np.random.default_rng(0).gamma(0.5, 3.0, size=(5, 3, 12, 12))


def _clip(X, lower, upper):
    return np.clip(X, lower[..., None, None], upper[..., None, None])


@pytest.mark.parametrize("stretch", STRETCHES)
def test_global_inverse_round_trip(images, stretch):
    scaler = ImageScaler(stretch, per_image=False).fit(images)
    assert scaler.lower_.shape == scaler.upper_.shape == (3,)
    for c in range(3):
        expected = np.percentile(images[:, c], [0.5, 99.5])
        np.testing.assert_allclose([scaler.lower_[c], scaler.upper_[c]], expected)
    Xt = scaler.transform(images)
    assert Xt.min() >= 0 and Xt.max() <= 1
    expected = _clip(images, scaler.lower_[None], scaler.upper_[None])
    np.testing.assert_allclose(scaler.inverse_transform(Xt), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stretch", STRETCHES)
def test_per_image_inverse_round_trip_with_limits(images, stretch):
    scaler = ImageScaler(stretch).fit(images)
    Xt = scaler.transform(images)
    lower, upper = scaler.image_limits(images)
    assert lower.shape == upper.shape == (5, 3)
    np.testing.assert_allclose(lower[2, 1], np.percentile(images[2, 1], 0.5))
    back = scaler.inverse_transform(Xt, limits=(lower, upper))
    np.testing.assert_allclose(back, _clip(images, lower, upper), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="image_limits"):
        scaler.inverse_transform(Xt)
    with pytest.raises(ValueError, match="limits must have shape"):
        scaler.inverse_transform(Xt, limits=(lower[:2], upper[:2]))


def test_per_image_scales_each_image_alone(images):
    scaler = ImageScaler().fit(images)
    brighter = images.copy()
    brighter[0] *= 10.0
    Xt, Xt_bright = scaler.transform(images), scaler.transform(brighter)
    np.testing.assert_allclose(Xt_bright, Xt, atol=1e-12)
    # the global mode keeps relative brightness: the brightened image saturates
    global_scaler = ImageScaler(per_image=False).fit(images)
    assert global_scaler.transform(brighter)[0].mean() > global_scaler.transform(images)[0].mean()


def test_asinh_is_monotone_and_lifts_faint_pixels():
    ramp = np.linspace(0.0, 1.0, 64).reshape(1, 8, 8)
    scaler = ImageScaler("asinh", percentile=None).fit(ramp)
    stretched = scaler.transform(ramp).ravel()
    assert stretched[0] == 0.0 and stretched[-1] == pytest.approx(1.0)
    assert np.all(np.diff(stretched) > 0)
    assert np.all(stretched[1:-1] > ramp.ravel()[1:-1])  # faint structure brightened
    softer = ImageScaler("asinh", percentile=None, softening=1.0).fit_transform(ramp).ravel()
    assert np.all(stretched[1:-1] > softer[1:-1])  # smaller softening, stronger stretch
    linear = ImageScaler("linear", percentile=None).fit_transform(ramp).ravel()
    np.testing.assert_allclose(linear, ramp.ravel())


def test_percentile_clips_and_none_spans_min_to_max(images):
    Xt = ImageScaler("linear", percentile=(10, 90)).fit_transform(images)
    assert np.isclose(Xt, 0).mean() == pytest.approx(0.1, abs=0.02)
    assert np.isclose(Xt, 1).mean() == pytest.approx(0.1, abs=0.02)
    Xt = ImageScaler("linear", percentile=None).fit_transform(images)
    assert (Xt.reshape(5, 3, -1).min(-1) == 0).all() and (Xt.reshape(5, 3, -1).max(-1) == 1).all()


@pytest.mark.parametrize("per_image", [True, False])
def test_nan_pixels_stay_nan_and_are_ignored(images, per_image):
    X = images.copy()
    X[1, 0, :3, :3] = np.nan
    scaler = ImageScaler(per_image=per_image).fit(X)
    Xt = scaler.transform(X)
    np.testing.assert_array_equal(np.isnan(Xt), np.isnan(X))
    lower, upper = scaler.image_limits(X)
    data = X[1, 0] if per_image else X[:, 0]
    np.testing.assert_allclose([lower[1, 0], upper[1, 0]], np.nanpercentile(data, [0.5, 99.5]))


def test_fully_masked_image_is_all_nan_without_warnings(images):
    X = images.copy()
    X[2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Xt = ImageScaler().fit_transform(X)
    assert np.isnan(Xt[2]).all() and not np.isnan(Xt[[0, 1, 3, 4]]).any()


def test_global_limits_need_a_finite_pixel_per_channel(images):
    X = images.copy()
    X[:, 1] = np.nan  # a band masked in every image: no limits to learn for it
    scaler = ImageScaler(per_image=False).fit(images)
    with pytest.raises(ValueError, match="channel 1 of X has no finite pixel"):
        scaler.fit(X)
    assert np.isfinite(scaler.lower_).all()  # the failed fit kept the earlier limits
    assert np.isnan(ImageScaler(per_image=True).fit_transform(X)[:, 1]).all()


@pytest.mark.parametrize("shape", [(5, 12, 12), (5, 3, 12, 12), (5, 144)])
def test_layout_is_kept(images, shape):
    X = images[:, :1] if len(shape) != 4 else images
    X = X.reshape(shape)
    Xt = ImageScaler().fit_transform(X)
    assert Xt.shape == shape
    flat_scaler = ImageScaler(image_shape=(3, 12, 12) if len(shape) == 4 else None)
    np.testing.assert_allclose(Xt.reshape(5, -1), flat_scaler.fit_transform(X.reshape(5, -1)))


def test_flat_input_with_image_shape_has_channels(images):
    flat = images.reshape(5, -1)
    scaler = ImageScaler(per_image=False, image_shape=(3, 12, 12)).fit(flat)
    assert scaler.lower_.shape == (3,)
    expected = ImageScaler(per_image=False).fit_transform(images).reshape(5, -1)
    np.testing.assert_allclose(scaler.transform(flat), expected)
    with pytest.raises(ValueError, match="image_shape"):
        ImageScaler(image_shape=(2, 12, 12)).fit(flat)


def test_big_endian_and_integer_input(images):
    native = images.astype("<f4")
    big = images.astype(">f4")
    Xt = ImageScaler().fit_transform(big)
    assert Xt.dtype == np.float32 and Xt.dtype.isnative
    np.testing.assert_array_equal(Xt, ImageScaler().fit_transform(native))
    counts = (images * 100).astype(">u2")  # e.g. raw CCD counts from a FITS file
    Xt = ImageScaler(per_image=False).fit_transform(counts)
    assert Xt.dtype == np.float64 and Xt.min() >= 0 and Xt.max() <= 1


def test_constant_image_maps_to_zero():
    X = np.ones((2, 4, 4))
    X[1] = np.arange(16).reshape(4, 4)
    Xt = ImageScaler().fit_transform(X)
    np.testing.assert_array_equal(Xt[0], 0.0)


def test_channel_mismatch_and_bad_parameters(images):
    scaler = ImageScaler(per_image=False).fit(images[:, :2])  # 2 x 144 values per image
    with pytest.raises(ValueError, match="channels"):
        scaler.transform(images[:, 0].reshape(5, 1, 12, 12).repeat(2, axis=2))
    with pytest.raises(ValueError, match="percentile"):
        ImageScaler(percentile=(90, 10)).fit(images)
    with pytest.raises(ValueError, match="stretch"):
        ImageScaler("gamma").fit(images)
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        ImageScaler().fit(images[None])
