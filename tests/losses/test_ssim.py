"""The one SSIM implementation against torchmetrics."""

import numpy as np
import torch

from skastro.losses import data_range_of, ms_ssim, ms_ssim_settings, ssim_loss, ssim_map


def test_ssim_map_matches_torchmetrics():
    from torchmetrics.functional.image import structural_similarity_index_measure

    rng = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 20, 24, generator=rng)
    y = x + 0.3 * torch.randn(x.shape, generator=rng)
    _, reference = structural_similarity_index_measure(
        y, x, gaussian_kernel=True, sigma=1.5 * 7 / 11, kernel_size=7, data_range=1.0,
        reduction="none", return_full_image=True,
    )  # fmt: skip
    assert torch.allclose(ssim_map(y, x, kernel_size=7, data_range=1.0), reference, atol=1e-5)


def _reference_ssim_map(prediction, target, kernel_size, sigma, data_range):
    """SSIM per pixel in float64 with scipy: a Gaussian of ``kernel_size`` taps, borders
    mirrored (torch's "reflect"), local variances clipped at 0."""
    from scipy.ndimage import gaussian_filter

    p, t = prediction.double().numpy(), target.double().numpy()
    radius = (kernel_size - 1) // 2

    def blur(x):
        return gaussian_filter(x, (0, 0, sigma, sigma), mode="mirror", truncate=radius / sigma)

    mu_p, mu_t = blur(p), blur(t)
    var_p = np.clip(blur(p * p) - mu_p**2, 0, None)
    var_t = np.clip(blur(t * t) - mu_t**2, 0, None)
    cov = blur(p * t) - mu_p * mu_t
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return (
        (2 * mu_p * mu_t + c1) * (2 * cov + c2) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    )


def test_ssim_loss_is_one_minus_the_mean_ssim_with_the_documented_window():
    # a Gaussian of width (k - 1) / 7 over k taps (torchmetrics' sizing), data range from the
    # target; checked against an independent float64 implementation, not a library version
    rng = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 16, 16, generator=rng)
    y = x + 0.2 * torch.randn(x.shape, generator=rng)
    span = float(x.max() - x.min())
    reference = _reference_ssim_map(y, x, 7, 6 / 7, span).mean()
    assert abs(float(ssim_loss(y, x)) - (1.0 - reference)) < 1e-5
    assert float(ssim_loss(x, x)) < 1e-6


def test_ssim_loss_falls_back_to_mse_below_three_pixels():
    x, y = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert float(ssim_loss(y, x)) == 1.0


def test_ms_ssim_fits_small_cutouts_and_is_one_for_identical_images():
    assert ms_ssim_settings(64, 64) == (7, ms_ssim_settings(64, 64)[1])
    assert len(ms_ssim_settings(64, 64)[1]) == 4
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(ms_ssim(x, x, data_range=1.0), torch.ones(2))


def test_data_range_of_a_constant_target_is_one():
    assert data_range_of(torch.full((1, 1, 4, 4), 3.0)) == 1.0
