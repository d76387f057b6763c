"""reconstruction_mse, ssim and ms_ssim on arrays and tensors."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from skastro.losses import ms_ssim_settings as _ms_ssim_settings
from skastro.metrics import (
    ms_ssim,
    reconstruction_mse,
    ssim,
)


@pytest.fixture(scope="module")
def images():
    """Smooth 'galaxies' (Gaussian blobs) on a 32 x 32 grid."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    centres = rng.uniform(10, 22, (6, 2))
    widths = rng.uniform(2, 5, 6)
    blobs = np.exp(
        -((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2)
        / (2 * widths[:, None, None] ** 2)
    )
    return blobs[:, None]  # (6, 1, 32, 32)


def test_reconstruction_mse_known_values():
    X = np.zeros((2, 3, 4, 4))
    X_rec = np.stack([np.full((3, 4, 4), 0.5), np.full((3, 4, 4), 1.0)])
    assert reconstruction_mse(X, X_rec) == pytest.approx((0.25 + 1.0) / 2)
    np.testing.assert_allclose(reconstruction_mse(X, X_rec, reduction="none"), [0.25, 1.0])
    X_pred = torch.tensor(X_rec, requires_grad=True)
    loss = reconstruction_mse(torch.tensor(X), X_pred)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    loss.backward()
    assert X_pred.grad is not None and X_pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shapes differ"):
        reconstruction_mse(X, X[:1])


def test_ssim_default_data_range_comes_from_the_target(images):
    noisy = images + 0.5 * np.random.default_rng(2).standard_normal(images.shape)
    span = images.max() - images.min()
    assert ssim(images, noisy) == pytest.approx(ssim(images, noisy, data_range=span))
    assert ssim(images, noisy) != pytest.approx(ssim(noisy, images))


def test_ssim_is_a_differentiable_loss(images):
    target = torch.tensor(images, dtype=torch.float32)
    output = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    loss = 1 - ssim(target, output)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    loss.backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0
    # a numpy target with a tensor prediction gives a tensor too
    assert isinstance(ssim(images, output), torch.Tensor)


def test_masked_ssim_is_the_mean_of_the_ssim_map_over_the_mask(images):
    noisy = images + 0.1 * np.random.default_rng(3).standard_normal(images.shape)
    mask = images[:, 0] > 0.3  # the bright "foreground"
    _, ssim_map = structural_similarity_index_measure(
        torch.tensor(noisy),
        torch.tensor(images),
        sigma=1.5,
        data_range=float(images.max() - images.min()),
        reduction="none",
        return_full_image=True,
    )
    ssim_map = ssim_map.numpy()[:, 0]
    assert ssim(images, noisy, mask=mask) == pytest.approx(ssim_map[mask].mean())
    per_image = [ssim_map[i][mask[i]].mean() for i in range(len(mask))]
    np.testing.assert_allclose(ssim(images, noisy, mask=mask, reduction="none"), per_image)
    # (n, 1, H, W) masks work alike; an all-True mask is plain SSIM
    assert ssim(images, noisy, mask=mask[:, None]) == pytest.approx(ssim_map[mask].mean())
    full = np.ones_like(mask)
    assert ssim(images, noisy, mask=full) == pytest.approx(ssim(images, noisy))
    with pytest.raises(ValueError, match="no pixel"):
        ssim(images, noisy, mask=np.zeros_like(mask))
    with pytest.raises(ValueError, match="does not match"):
        ssim(images, noisy, mask=mask[:, :16])


@pytest.mark.parametrize("size", [32, 64])
def test_ms_ssim_works_on_small_images(size):
    rng = np.random.default_rng(4)
    X = rng.gamma(2.0, size=(2, 2, size, size))
    X = X.cumsum(-1).cumsum(-2)  # smooth, structured images
    assert ms_ssim(X, X) == pytest.approx(1.0, abs=1e-6)
    scores = [ms_ssim(X, X + s * X.std() * rng.standard_normal(X.shape)) for s in (0.05, 0.3)]
    assert 1.0 > scores[0] > scores[1] > 0
    # torchmetrics' defaults reject these sizes, which is why the settings follow the size
    with pytest.raises(ValueError):
        multiscale_structural_similarity_index_measure(torch.tensor(X), torch.tensor(X))
    target = torch.tensor(X, dtype=torch.float32)
    output = (target * 1.1).requires_grad_(True)
    loss = 1 - ms_ssim(target, output)
    loss.backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0


def test_ms_ssim_settings_rule():
    kernel, betas = _ms_ssim_settings(64, 64, None, None)
    assert kernel == 7 and len(betas) == 4 and sum(betas) == pytest.approx(1)
    kernel, betas = _ms_ssim_settings(32, 32, None, None)
    assert kernel == 7 and len(betas) == 3
    kernel, betas = _ms_ssim_settings(256, 256, None, None)
    assert kernel == 11 and len(betas) == 5
    assert _ms_ssim_settings(64, 64, 5, None)[0] == 5
    with pytest.raises(ValueError, match="too small"):
        _ms_ssim_settings(2, 2, None, None)


def test_image_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        ms_ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="reduction"):
        ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), reduction="sum")


def test_ssim_refuses_an_empty_range_and_a_window_the_images_cannot_hold():
    x = np.random.default_rng(0).random((2, 5, 5))
    with pytest.raises(ValueError, match=r"below twice the image's smaller side \(5 px"):
        ssim(x, x)  # the default 11 px window
    assert ssim(x, x, kernel_size=3) == pytest.approx(1.0)
    for data_range in (0.0, -1.0, (1.0, 1.0)):
        with pytest.raises(ValueError, match="data_range must be positive"):
            ssim(x, x, kernel_size=3, data_range=data_range)
