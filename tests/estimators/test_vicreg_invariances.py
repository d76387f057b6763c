"""VICRegEmbedder's ``invariances``: which transformations make the two views of a pair."""

import numpy as np
import pytest
import torch

from skastro import VICRegEmbedder
from skastro.augment import random_view

TINY = dict(n_components=4, widths=(4,), expander_widths=(8,), max_epochs=1, batch_size=8)


def _letter_l(n=8, size=16):
    """An L: a vertical bar and a foot to the right; its mirror image is a different letter."""
    X = torch.zeros(n, 1, size, size)
    X[:, :, 3:13, 4:6] = 1.0
    X[:, :, 11:13, 4:11] = 1.0
    return X


def test_default_views_are_unchanged():
    # the default invariances draw exactly the views random_view drew before they existed
    X = torch.rand(6, 2, 16, 16)
    embedder = VICRegEmbedder(**TINY)
    torch.manual_seed(0)
    expected = random_view(X, crop_scale=(0.6, 1.0), noise_std=0.1, blur_sigma=(0.1, 1.0))
    torch.manual_seed(0)
    torch.testing.assert_close(embedder._view(X), expected)


def test_oriented_views_keep_their_orientation():
    X = _letter_l(64)
    mirrored = X.flip(-1)

    def closer_to_original(invariances):
        torch.manual_seed(0)
        views = VICRegEmbedder(invariances=invariances, **TINY)._view(X)
        same = (views * X).sum(dim=(1, 2, 3))
        other = (views * mirrored).sum(dim=(1, 2, 3))
        return (same > other).float().mean().item()

    # without rotations and flips every view is still an L ...
    assert closer_to_original(("crop", "blur", "noise")) == 1.0
    # ... with them, many views are mirrored or turned
    assert closer_to_original(("rotation", "flip", "crop", "blur", "noise")) < 0.8


def test_each_invariance_alone():
    X = torch.rand(16, 3, 16, 16)
    torch.manual_seed(1)
    noisy = VICRegEmbedder(invariances=("noise",), noise_std=0.5, **TINY)._view(X)
    residual = noisy - X
    assert 0.0 < residual.std().item() < 0.5
    torch.manual_seed(1)
    coloured = VICRegEmbedder(invariances=("colour",), **TINY)._view(X)
    gain = coloured / X
    # one gain per image and band, within exp(+-0.2), different between bands
    per_band = gain.flatten(2)
    torch.testing.assert_close(per_band.min(-1).values, per_band.max(-1).values)
    assert per_band.min().item() >= np.exp(-0.2) - 1e-6
    assert per_band.max().item() <= np.exp(0.2) + 1e-6
    assert per_band[:, :, 0].std(dim=1).mean().item() > 0.01
    torch.manual_seed(1)
    flipped = VICRegEmbedder(invariances=("flip",), **TINY)._view(X)
    # each image is itself or its mirror (drawn per image)
    same = (flipped == X).flatten(1).all(1) | (flipped == X.flip(-1)).flatten(1).all(1)
    assert bool(same.all())


def test_fit_with_oriented_invariances():
    X = np.random.default_rng(0).random((16, 1, 16, 16), dtype=np.float32)
    embedder = VICRegEmbedder(invariances=("crop", "noise"), random_state=0, **TINY).fit(X)
    assert embedder.transform(X).shape == (16, 4)


@pytest.mark.parametrize(
    "invariances, message",
    [
        (("rotation", "shear"), "invariances must be a tuple of names among"),
        ("noise", "must be an instance of .tuple."),
        ((), "with invariances=\\(\\) both views are the same image"),
    ],
)
def test_bad_invariances(invariances, message):
    X = np.zeros((8, 1, 16, 16), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        VICRegEmbedder(invariances=invariances, **TINY).fit(X)
