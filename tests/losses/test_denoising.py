"""The denoiser's masked losses: background TV, darkening, foreground SSIM, mask errors."""

import numpy as np
import pytest
import torch

from skastro import ContrastiveDenoiser
from skastro.augment import add_noise
from skastro.datasets import make_galaxies
from skastro.losses import (
    background_tv_loss,
    darkening_loss,
    foreground_ssim_loss,
)
from skastro.metrics import ssim

GAIN, SIGMA = 50.0, 0.03


def _square_on_sky(sky=0.2, value=3.0, size=12):
    """One image: a flat sky with a bright 4x4 square in the middle, and its true mask."""
    image = np.full((1, 1, size, size), sky)
    truth = np.zeros((1, 1, size, size), dtype=bool)
    truth[..., 4:8, 4:8] = True
    image[truth] = value
    return image, truth


# ---------------------------------------------------------------------------------- losses
def test_background_tv_is_zero_on_flat_background_with_a_source():
    image, truth = _square_on_sky()
    X = torch.from_numpy(image)
    assert float(background_tv_loss(X, torch.from_numpy(~truth))) == 0.0


def test_background_tv_of_a_ramp():
    # a horizontal ramp: every horizontal pair differs by 1, every vertical pair by 0
    h, w = 5, 7
    X = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w)
    everywhere = torch.ones(1, 1, h, w, dtype=torch.bool)
    expected = h * (w - 1) / (h * (w - 1) + w * (h - 1))
    assert float(background_tv_loss(X, everywhere)) == pytest.approx(expected)


def test_darkening_known_values():
    X = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])
    background = torch.tensor([[[[True, True], [False, False]]]])
    assert float(darkening_loss(X, background)) == pytest.approx(2.0)  # mean(|1|, |3|)
    assert float(darkening_loss(X, background, level=1.0)) == pytest.approx(1.0)
    level = torch.tensor([2.0]).view(1, 1, 1, 1)  # per-image sky levels broadcast
    assert float(darkening_loss(X, background, level)) == pytest.approx(1.0)


def test_foreground_ssim_ignores_the_far_background():
    image, truth = _square_on_sky(size=24)
    target = torch.from_numpy(image)
    mask = torch.from_numpy(truth)
    assert float(foreground_ssim_loss(target, target, mask)) == pytest.approx(0.0, abs=1e-6)
    changed = target.clone()
    changed[..., 18:, 18:] += 5.0  # farther from the source than the 7 px window reaches
    assert float(foreground_ssim_loss(changed, target, mask, data_range=3.0)) == pytest.approx(
        0.0, abs=1e-6
    )
    blurred = target.clone()
    blurred[..., 4:8, 4:8] = 1.0
    assert float(foreground_ssim_loss(blurred, target, mask)) > 0.05
    empty = torch.zeros_like(mask)
    assert float(foreground_ssim_loss(blurred, target, empty)) == 0.0


def test_loss_mask_errors():
    X = torch.zeros(2, 1, 8, 8)
    with pytest.raises(TypeError, match="boolean"):
        background_tv_loss(X, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="does not match"):
        darkening_loss(X, torch.zeros(2, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="same"):
        foreground_ssim_loss(X, X[:1], torch.zeros(2, 1, 8, 8, dtype=torch.bool))


# ---------------------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def galaxies():
    train = make_galaxies(64, image_size=32, random_state=0).images
    test = make_galaxies(24, image_size=32, random_state=1)
    noisy = add_noise(test.images, GAIN, SIGMA, generator=0)
    return train, test, noisy


def _model(**params):
    settings = dict(
        n_components=4, widths=(8, 16), noise_gain=GAIN, noise_sigma=SIGMA, max_epochs=10,
        batch_size=16, lr=3e-3, random_state=0,
    )  # fmt: skip
    settings.update(params)
    return ContrastiveDenoiser(**settings)


@pytest.fixture(scope="module")
def fitted_clean(galaxies):
    train, _, _ = galaxies
    return _model().fit(train)


def test_denoise_improves_foreground_ssim(galaxies, fitted_clean):
    _, test, noisy = galaxies
    before = ssim(test.images, noisy, mask=test.masks)
    after = ssim(test.images, fitted_clean.denoise(noisy), mask=test.masks)
    assert after > before + 0.03, (before, after)
