"""DifferenceOfGaussians and FourierLaplacian: known answers, layouts."""

import numpy as np
import pytest

from skastro.features import (
    AxisymmetricResidual,
    DifferenceOfGaussians,
    FourierLaplacian,
    SoftThreshold,
)

SIZE = 64


# ----------------------------------------------------------------------------- drawing helpers
def _offsets(size=SIZE, centre=(0.0, 0.0)):
    """Row and column offsets of pixel centres from the image centre shifted by ``centre``."""
    rows, cols = np.mgrid[:size, :size].astype(float)
    middle = (size - 1) / 2
    return rows - middle - centre[0], cols - middle - centre[1]


def _gaussian(sigma, centre=(0.0, 0.0), size=SIZE):
    d_row, d_col = _offsets(size, centre)
    return np.exp(-(d_row**2 + d_col**2) / (2 * sigma**2))


# ----------------------------------------------------------------------------- DoG
def test_dog_of_flat_image_is_zero():
    out = DifferenceOfGaussians().fit_transform(np.full((2, SIZE, SIZE), 7.0))
    np.testing.assert_allclose(out, 0.0, atol=1e-5)


def test_dog_responds_most_to_blobs_of_matching_scale():
    sigmas = [0.7, 1.0, 1.3, np.sqrt(3.0), 2.3, 3.0, 5.0]
    blobs = np.stack([_gaussian(s, centre=(0.5, 0.5)) for s in sigmas])  # centred on a pixel
    out = DifferenceOfGaussians(1.0, 3.0).fit_transform(blobs)
    centre_response = out[:, 32, 32]
    # for unit-peak blobs the centre response peaks at sqrt(sigma_low * sigma_high)
    assert int(centre_response.argmax()) == 3
    assert np.unravel_index(out[3].argmax(), out[3].shape) == (32, 32)


# ----------------------------------------------------------------------------- Laplacian
@pytest.mark.parametrize("sigma", [None, 1.5])
def test_fourier_laplacian_of_constant_and_ramp(sigma):
    d_row, d_col = _offsets()
    images = np.stack([np.full((SIZE, SIZE), 3.0), 0.3 * d_col - 0.2 * d_row + 5.0])
    out = FourierLaplacian(sigma=sigma).fit_transform(images)
    np.testing.assert_allclose(out[0], 0.0, atol=1e-5)
    # the mirror extension keeps the ramp continuous; only its kinks at the border respond
    np.testing.assert_allclose(out[1, 12:-12, 12:-12], 0.0, atol=1e-3)


def test_fourier_laplacian_of_gaussian_matches_analytic_log():
    s = 3.0
    image = _gaussian(s)[None]
    d_row, d_col = _offsets()
    r2 = d_row**2 + d_col**2
    analytic = np.exp(-r2 / (2 * s**2)) * (r2 - 2 * s**2) / s**4
    np.testing.assert_allclose(FourierLaplacian().fit_transform(image)[0], analytic, atol=1e-5)
    # with a low-pass of width sigma, it is the Laplacian of the blob smoothed to sqrt(s^2+sigma^2)
    sigma = 2.0
    wide = np.hypot(s, sigma)
    smoothed = (s / wide) ** 2 * np.exp(-r2 / (2 * wide**2))
    analytic_log = smoothed * (r2 - 2 * wide**2) / wide**4
    out = FourierLaplacian(sigma=sigma).fit_transform(image)[0]
    np.testing.assert_allclose(out, analytic_log, atol=1e-5)
    assert np.corrcoef(out.ravel(), analytic_log.ravel())[0, 1] > 0.9999


# ----------------------------------------------------------------------------- layouts, dtypes
@pytest.mark.parametrize(
    "filter_",
    [
        DifferenceOfGaussians(),
        FourierLaplacian(sigma=1.0),
        AxisymmetricResidual(),
        SoftThreshold(0.5),
    ],
)
def test_image_filters_round_trip_layouts(filter_):
    rng = np.random.default_rng(0)
    images = rng.random((3, 16, 24))  # (n, H, W), not square
    out = filter_.fit_transform(images)
    assert out.shape == images.shape and out.dtype == np.float32
    out4 = filter_.fit_transform(images[:, None])
    assert out4.shape == (3, 1, 16, 24)
    np.testing.assert_array_equal(out4[:, 0], out)
    flat = filter_.set_params(image_shape=(1, 16, 24)).fit_transform(images.reshape(3, -1))
    assert flat.shape == (3, 16 * 24)
    np.testing.assert_array_equal(flat.reshape(images.shape), out)
    # several bands are filtered independently
    bands = np.stack([images, 2 * images], axis=1)
    out_bands = filter_.set_params(image_shape=None).fit_transform(bands)
    assert out_bands.shape == (3, 2, 16, 24)
    np.testing.assert_allclose(out_bands[:, 1], 2 * out, rtol=1e-5, atol=1e-6)
    names = filter_.get_feature_names_out()
    assert len(names) == 2 * 16 * 24 and names[0].endswith("_x0")
