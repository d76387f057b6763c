"""Structural similarity (SSIM, MS-SSIM): the one implementation every SSIM in skastro uses.

SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility
to structural similarity") compares local means, variances and the covariance of two images
under a Gaussian window. :func:`ssim_map` computes it per pixel; :func:`ssim_loss` (``1 -``
its mean, a reconstruction loss), the denoiser's masked foreground SSIM
(:func:`skastro.losses.foreground_ssim_loss`) and the metric :func:`skastro.metrics.ssim`
(numpy in, float out) are all built on it. MS-SSIM (Wang, Simoncelli & Bovik 2003) compares
the images at several scales; :func:`ms_ssim` wraps torchmetrics' implementation with scales
and a window chosen to fit small cutouts.

Torch only: no scikit-learn here.
"""

import math

import torch
import torch.nn.functional as F

__all__ = ["data_range_of", "ms_ssim", "ms_ssim_settings", "ssim_loss", "ssim_map"]

# Wang, Simoncelli & Bovik (2003): weights of the five MS-SSIM scales, finest first.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def data_range_of(target):
    """The dynamic range ``max - min`` of a target batch (detached), 1.0 when it is constant.

    From the target only, detached: a loss must not get gradients through its constants.

    Examples
    --------
    >>> data_range_of(torch.tensor([[0.5, 2.0]]))
    1.5
    """
    span = float((target.max() - target.min()).detach())
    return span if span > 0 else 1.0


def _blur_matrix(size, kernel_size, sigma, like):
    """``(size, size)`` matrix of a Gaussian blur with reflected borders along one axis.

    Blurring by matrix products is much faster on CPU than a depthwise convolution (and its
    backward pass), and the matrix is tiny for cutout-sized images.
    """
    offsets = torch.arange(kernel_size, device=like.device, dtype=like.dtype)
    window = torch.exp(-0.5 * ((offsets - (kernel_size - 1) / 2) / sigma) ** 2)
    window = window / window.sum()
    pad = (kernel_size - 1) // 2
    identity = torch.eye(size, device=like.device, dtype=like.dtype).unsqueeze(1)
    columns = F.conv1d(F.pad(identity, (pad, pad), mode="reflect"), window.view(1, 1, -1))
    return columns[:, 0]  # row j: how pixel j spreads over the output pixels


def ssim_map(prediction, target, *, kernel_size=7, sigma=None, data_range=1.0, k1=0.01, k2=0.03):
    """Per-pixel SSIM of two image batches, same size as the images.

    The standard SSIM with a separable Gaussian window, borders reflected, so every pixel
    (and so every mask) has a value. Local variances are clipped at 0 (they can come out
    slightly negative in floating point), as torchmetrics does, whose ``return_full_image``
    map this matches to float rounding.

    Parameters
    ----------
    prediction, target : torch.Tensor of shape (b, C, H, W)
    kernel_size : int, default=7
        Odd window width, smaller than the smaller image side.
    sigma : float or None, default=None
        Width of the Gaussian; ``None`` uses ``1.5 * kernel_size / 11`` (the standard ratio:
        1.5 px for an 11 px window).
    data_range : float, default=1.0
        Dynamic range of the images (sets the stabilising constants).
    k1, k2 : float, default=0.01, 0.03
        SSIM's constants, relative to ``data_range``.

    Returns
    -------
    ssim : torch.Tensor of shape (b, C, H, W)

    Examples
    --------
    >>> x = torch.rand(1, 1, 16, 16)
    >>> bool(torch.allclose(ssim_map(x, x), torch.ones(1, 1, 16, 16)))
    True
    """
    sigma = 1.5 * kernel_size / 11 if sigma is None else float(sigma)
    c, height, width = target.shape[1:]
    blur_h = _blur_matrix(height, kernel_size, sigma, target)
    blur_w = _blur_matrix(width, kernel_size, sigma, target)
    # the five local statistics of both images, blurred together
    stack = torch.cat(
        [prediction, target, prediction * prediction, target * target, prediction * target], 1
    )
    stack = blur_h.T @ stack @ blur_w
    mu_p, mu_t, pp, tt, pt = stack.split(c, dim=1)
    var_p = (pp - mu_p**2).clamp_min(0.0)
    var_t = (tt - mu_t**2).clamp_min(0.0)
    cov = pt - mu_p * mu_t
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )


def ssim_loss(prediction, target, *, kernel_size=7, data_range=None):
    """``1 - SSIM`` between batches of images (differentiable; 0 for identical images).

    Parameters
    ----------
    prediction, target : torch.Tensor of shape (b, C, H, W)
    kernel_size : int
        Gaussian window (of width ``(kernel_size - 1) / 7``); it is shrunk automatically for
        images smaller than the window.
    data_range : float or None
        Dynamic range of the images; by default the target batch's max - min.

    Returns
    -------
    loss : torch.Tensor, scalar

    Examples
    --------
    >>> x = torch.rand(2, 1, 16, 16)
    >>> float(ssim_loss(x, x)) < 1e-6
    True
    """
    size = min(prediction.shape[-2:])
    kernel_size = max(3, min(kernel_size, size - (1 - size % 2)))
    if kernel_size > size:  # images smaller than 3 px: SSIM is undefined, use MSE instead
        return F.mse_loss(prediction, target)
    if data_range is None:
        data_range = max(float(target.max() - target.min()), 1e-8)
    values = ssim_map(
        prediction,
        target,
        kernel_size=kernel_size,
        sigma=(kernel_size - 1) / 7,
        data_range=data_range,
    )
    return 1.0 - values.mean()


def ms_ssim_settings(height, width, kernel_size=None, betas=None):
    """Number of scales and window size that MS-SSIM can use at this image size.

    Parameters
    ----------
    height, width : int
        Image size.
    kernel_size : int or None
        Window width; ``None`` picks the largest odd size up to 11 px that fits the coarsest
        scale.
    betas : tuple of float or None
        Weight of each scale, finest first; ``None``: as many scales (at most the standard
        five) as keep the coarsest one at least 8 px wide, with the standard weights
        rescaled to sum to 1.

    Returns
    -------
    kernel_size : int
    betas : tuple of float

    Examples
    --------
    >>> ms_ssim_settings(64, 64)[0]
    7
    """
    side = min(height, width)
    if betas is None:
        n_scales = min(5, max(1, math.floor(math.log2(max(side, 1) / 8)) + 1))
        weights = MS_SSIM_BETAS[:n_scales]
        betas = tuple(float(b) / sum(weights) for b in weights)
    n_scales = len(betas)
    if kernel_size is None:
        coarsest = side // 2 ** (n_scales - 1)
        # torchmetrics checks side // (n_scales - 1)**2 > kernel_size - 1; the reflection
        # padding of the coarsest scale needs kernel_size <= coarsest
        limit = min(11, coarsest, side // max(1, n_scales - 1) ** 2)
        kernel_size = limit if limit % 2 else limit - 1
        if kernel_size < 3:
            raise ValueError(
                f"images of {height}x{width} px are too small for MS-SSIM with {n_scales} scales"
            )
    return kernel_size, tuple(betas)


def ms_ssim(
    prediction,
    target,
    *,
    data_range,
    kernel_size=None,
    sigma=None,
    betas=None,
    k1=0.01,
    k2=0.03,
    normalize="relu",
):
    """Multi-scale SSIM of each image pair (differentiable), sized for small cutouts.

    Built on :func:`torchmetrics.functional.image.multiscale_structural_similarity_index_measure`,
    whose defaults (five scales, an 11 px window) need images of more than 160 px; here the
    scales and window follow :func:`ms_ssim_settings` unless given.

    Parameters
    ----------
    prediction, target : torch.Tensor of shape (b, C, H, W)
    data_range : float or (min, max) tuple
        Dynamic range of the pixel values; a tuple also clips both inputs to it.
    kernel_size, betas : see :func:`ms_ssim_settings`
    sigma : float or None, default=None
        Gaussian width; ``None`` uses ``1.5 * kernel_size / 11``.
    k1, k2 : float, default=0.01, 0.03
        Stabilising constants.
    normalize : {"relu", "simple"} or None, default="relu"
        How torchmetrics keeps negative contrast terms from breaking the product of powers.

    Returns
    -------
    ms_ssim : torch.Tensor of shape (b,)
        1 for identical images.

    Examples
    --------
    >>> x = torch.rand(2, 1, 32, 32)
    >>> [round(v, 4) for v in ms_ssim(x, x, data_range=1.0).tolist()]
    [1.0, 1.0]
    """
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    kernel_size, betas = ms_ssim_settings(target.shape[-2], target.shape[-1], kernel_size, betas)
    return multiscale_structural_similarity_index_measure(
        prediction,
        target,
        gaussian_kernel=True,
        sigma=1.5 * kernel_size / 11 if sigma is None else sigma,
        kernel_size=kernel_size,
        data_range=data_range,
        k1=k1,
        k2=k2,
        betas=tuple(betas),
        normalize=normalize,
        reduction="none",
    )
