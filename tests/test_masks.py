"""Foreground masks: Otsu and sigma-clipping thresholds against scikit-image and astropy."""

import numpy as np
import pytest
import torch

from skastro.masks import foreground_mask, otsu_threshold, sigma_clip_threshold

GAIN, SIGMA = 50.0, 0.03


def _square_on_sky(sky=0.2, value=3.0, size=12):
    """One image: a flat sky with a bright 4x4 square in the middle, and its true mask."""
    image = np.full((1, 1, size, size), sky)
    truth = np.zeros((1, 1, size, size), dtype=bool)
    truth[..., 4:8, 4:8] = True
    image[truth] = value
    return image, truth


# ---------------------------------------------------------------------------------- masks
def test_otsu_two_levels_gives_midpoint():
    X = np.zeros((2, 6, 6))
    X[0, :3] = 10.0
    X[1, :, :2] = -4.0
    assert np.allclose(otsu_threshold(X), [5.0, -2.0])


def test_otsu_matches_scikit_image():
    from skimage.filters import threshold_otsu

    X = np.random.default_rng(0).gamma(2.0, 1.0, (4, 32, 32))
    ours = otsu_threshold(X)
    # scikit-image works on a 256-bin histogram, so agree to within about one bin
    bins = (X.max(axis=(1, 2)) - X.min(axis=(1, 2))) / 256
    reference = np.array([threshold_otsu(x) for x in X])
    assert np.all(np.abs(ours - reference) <= 2 * bins)


def test_sigma_clip_matches_astropy():
    astropy_stats = pytest.importorskip("astropy.stats")
    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 1.0, (5, 48, 48))
    X[:, 20:28, 20:28] += rng.gamma(1.0, 5.0, (5, 8, 8))
    reference = []
    for x in X:
        _, median, std = astropy_stats.sigma_clipped_stats(x, sigma=3.0, maxiters=5)
        reference.append(median + 3.0 * std)
    assert np.allclose(sigma_clip_threshold(X), reference, atol=1e-9)


@pytest.mark.parametrize("method", ["otsu", "sigma_clip"])
def test_mask_of_square_on_flat_sky_is_the_square(method):
    image, truth = _square_on_sky()
    np.testing.assert_array_equal(foreground_mask(image, method), truth)


@pytest.mark.parametrize("method", ["otsu", "sigma_clip"])
def test_mask_is_unchanged_by_linear_rescaling_and_works_on_tensors(method):
    X = np.random.default_rng(1).gamma(2.0, 1.0, (3, 2, 16, 16)).astype(np.float32)
    mask = foreground_mask(X, method)
    assert mask.shape == (3, 1, 16, 16) and mask.dtype == bool
    np.testing.assert_array_equal(foreground_mask(100.0 * X + 7.0, method), mask)
    tensor_mask = foreground_mask(torch.from_numpy(X), method)
    assert isinstance(tensor_mask, torch.Tensor)
    np.testing.assert_array_equal(tensor_mask.numpy(), mask)
    assert foreground_mask(X[:, 0], method).shape == (3, 16, 16)


def test_smoothing_removes_isolated_noise_spikes():
    image, _ = _square_on_sky(sky=0.0, value=1.0, size=24)
    image[..., 1, 20] = 1.0  # a single hot pixel far from the source
    assert foreground_mask(image, "otsu")[..., 1, 20].all()
    assert not foreground_mask(image, "otsu", smooth=1.0)[..., 1, 20].any()


def test_mask_errors():
    X = np.zeros((1, 4, 4))
    with pytest.raises(ValueError, match="mask method must be one of"):
        foreground_mask(X, "kmeans")
    with pytest.raises(ValueError, match="smooth must be >= 0"):
        foreground_mask(X, smooth=-1.0)
    with pytest.raises(ValueError, match=r"\(n, H, W\) or \(n, C, H, W\)"):
        foreground_mask(np.zeros((4, 4)))


@pytest.mark.parametrize("function", [otsu_threshold, sigma_clip_threshold, foreground_mask])
def test_non_finite_pixels_are_refused_not_sorted_as_the_brightest(function):
    X = np.zeros((3, 16, 16))
    X[:, 6:10, 6:10] = 10.0
    X[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf pixels in 1 image\(s\) \(first indices: 2\)"):
        function(X)
