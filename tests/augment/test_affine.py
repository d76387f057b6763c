"""The kornia affine augmentation: seeded, shape-preserving, flux-conserving, tiny images."""

import numpy as np
import pytest
import torch

from skastro.augment import affine_augmentation, random_affine


# ---------------------------------------------------------------------------- augmentation
def test_affine_augmentation_is_seeded_and_shape_preserving():
    X = torch.rand(8, 2, 16, 16)
    augment = affine_augmentation((16, 16), perspective=0.3)
    torch.manual_seed(1)
    a = augment(X)
    torch.manual_seed(1)
    b = augment(X)
    assert a.shape == X.shape
    assert torch.equal(a, b)
    assert not torch.allclose(a, X)


def test_affine_augmentation_with_everything_off_is_the_identity():
    X = torch.rand(4, 1, 8, 8)
    out = random_affine(
        X, max_rotation=0, scale_range=None, max_shear=0, blur_sigma=None, flip=False
    )
    assert torch.equal(out, X)


def test_affine_augmentation_keeps_total_flux_of_a_centred_disk():
    # rotations and flips move pixels but a centred round disk looks the same
    size = 32
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    disk = torch.from_numpy(np.exp(-0.5 * (x**2 + y**2) / 16.0)).float()[None, None]
    out = random_affine(disk.repeat(4, 1, 1, 1), scale_range=None, max_shear=0, blur_sigma=None)
    assert torch.allclose(out, disk.expand_as(out), atol=2e-2)


def test_blur_window_fits_tiny_images():
    out = random_affine(torch.rand(3, 1, 1, 9), blur_sigma=(0.5, 3.0))
    assert out.shape == (3, 1, 1, 9)
    with pytest.raises(ValueError, match="batch of images"):
        random_affine(torch.rand(1, 8, 8))
