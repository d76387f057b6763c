"""VICReg's random views: flux ratios between bands kept, identity settings, blur."""

import pytest
import torch

from skastro.augment import random_blur, random_crop_rotate, random_view


def test_views_keep_flux_ratios_between_bands():
    torch.manual_seed(0)
    X = torch.rand(6, 1, 16, 16)
    X = torch.cat([X, 3 * X], dim=1)
    view = random_view(X, noise_std=0.0)
    assert not torch.allclose(view, X)
    torch.testing.assert_close(view[:, 1], 3 * view[:, 0])


def test_identity_view_settings_and_blur_conserves_flux():
    X = torch.rand(3, 2, 12, 12)
    torch.testing.assert_close(
        random_crop_rotate(X, crop_scale=(1, 1), rotate=False), X, atol=1e-5, rtol=0
    )
    assert random_blur(X, sigma=(0.0, 0.0)) is X
    point = torch.zeros(1, 1, 15, 15)
    point[..., 7, 7] = 1.0
    assert float(random_blur(point, sigma=(1.0, 1.0), p=1.0).sum()) == pytest.approx(1.0)


def test_flips_without_rotations_are_drawn_per_image():
    torch.manual_seed(0)
    X = torch.arange(64 * 16, dtype=torch.float32).reshape(64, 1, 4, 4)
    out = random_view(X, crop_scale=(1, 1), rotate=False, flip=True, noise_std=0.0,
                      blur_sigma=(0, 0))  # fmt: skip
    flipped = (out == X.flip(-1)).flatten(1).all(1)
    kept = (out == X).flatten(1).all(1)
    assert bool((flipped | kept).all())  # each image is itself or its mirror
    assert 10 < int(flipped.sum()) < 54  # a mix in one batch, not all or none
