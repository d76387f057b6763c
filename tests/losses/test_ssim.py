"""The one SSIM implementation against torchmetrics."""

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


def test_ssim_loss_is_one_minus_torchmetrics_ssim():
    # the global SSIM loss keeps torchmetrics' definition: a Gaussian of width (k - 1) / 7
    from torchmetrics.functional.image import structural_similarity_index_measure

    rng = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 16, 16, generator=rng)
    y = x + 0.2 * torch.randn(x.shape, generator=rng)
    span = float(x.max() - x.min())
    reference = structural_similarity_index_measure(y, x, data_range=span, sigma=6 / 7)
    assert abs(float(ssim_loss(y, x)) - (1.0 - float(reference))) < 1e-5
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
