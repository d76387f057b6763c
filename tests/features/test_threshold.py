"""SoftThreshold: known answer, sources kept and noise removed per image and band."""

import numpy as np

from skastro.features import (
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


# ----------------------------------------------------------------------------- SoftThreshold
def test_soft_threshold_known_answer():
    # 31 pixels at +1, 31 at -1 and two at +-10: sky (median) 0, MAD 1, noise 1.4826
    values = np.array([1.0] * 31 + [-1.0] * 31 + [10.0, -10.0])
    image = np.random.default_rng(0).permutation(values).reshape(1, 8, 8) + 5.0  # sky 5
    out = SoftThreshold(n_sigma=1.0).fit_transform(image)[0]
    expected = np.where(np.abs(values) > 5, np.sign(values) * (10.0 - 1.4826), 0.0)
    np.testing.assert_allclose(np.sort(out.ravel()), np.sort(expected), rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(out) == 2
    # n_sigma=0 only subtracts the sky
    np.testing.assert_allclose(SoftThreshold(0.0).fit_transform(image), image - 5.0, atol=1e-5)


def test_soft_threshold_keeps_sources_and_removes_noise_per_image_and_band():
    rng = np.random.default_rng(2)
    noise_levels = (0.01, 1.0)  # very different noise in the two bands
    images = np.stack(
        [
            np.stack(
                [
                    level * (rng.normal(size=(SIZE, SIZE)) + 8 * _gaussian(1.5))
                    for level in noise_levels
                ]
            )
            for _ in range(3)
        ]
    )
    out = SoftThreshold(n_sigma=4.0).fit_transform(images)
    assert out.shape == images.shape
    far = np.hypot(*_offsets()) > 8  # pixels well away from the source
    for band, level in enumerate(noise_levels):
        # the source's centre survives in every image, almost all noise pixels do not
        assert np.all(out[:, band, 32, 32] > 2 * level)
        assert np.mean(out[:, band][:, far] != 0) < 1e-3
    # equivariant under rotations and flips, and each image is thresholded on its own
    threshold = SoftThreshold(n_sigma=4.0).fit(images)
    np.testing.assert_allclose(
        threshold.transform(np.rot90(images, axes=(2, 3))), np.rot90(out, axes=(2, 3)), atol=1e-6
    )
    np.testing.assert_allclose(threshold.transform(images[:, :, ::-1]), out[:, :, ::-1])
    np.testing.assert_allclose(threshold.transform(images[1:]), out[1:])
