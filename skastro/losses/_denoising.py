"""Masked loss terms of the contrastive denoiser, one small torch function each.

The Galaxy Zoo Hubble denoiser splits each image into the source (foreground) and the sky
(background) with a binary mask and scores the two parts differently: the source must keep
its structure (SSIM), the sky must be smooth (total variation) and dark (no spurious flux).
Its contrastive term is :func:`skastro.losses.nt_xent_loss`.

Every function returns a scalar tensor to *minimise*. Masks are boolean tensors of shape
``(b, 1, H, W)`` or ``(b, C, H, W)``; torch only, no scikit-learn here.
"""

import torch

from skastro.losses._ssim import ssim_map

__all__ = ["background_tv_loss", "darkening_loss", "foreground_ssim_loss"]


def _check_mask(mask, images, name="mask"):
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a boolean tensor, got dtype {mask.dtype}")
    b, c, h, w = images.shape
    if mask.ndim != 4 or mask.shape[0] != b or mask.shape[1] not in (1, c):
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not match images of shape "
            f"{tuple(images.shape)}; expected (b, 1, H, W) or (b, C, H, W)"
        )
    if tuple(mask.shape[2:]) != (h, w):
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not match images of shape "
            f"{tuple(images.shape)}"
        )
    return mask.expand(b, c, h, w)


def _masked_mean(values, mask):
    """Mean of ``values`` over ``mask``; 0 (with a gradient path) for an empty mask."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def foreground_ssim_loss(prediction, target, mask, *, kernel_size=7, data_range=None):
    """``1 - SSIM`` averaged over the foreground pixels of the SSIM map.

    Parameters
    ----------
    prediction, target : torch.Tensor of shape (b, C, H, W)
    mask : torch.Tensor of bool, shape (b, 1, H, W) or (b, C, H, W)
        True on the foreground. An empty mask gives 0.
    kernel_size : int, default=7
        Width of SSIM's Gaussian window, shrunk for images smaller than it.
    data_range : float or None, default=None
        Dynamic range of the images; by default ``target.max() - target.min()`` of the batch.

    Returns
    -------
    loss : torch.Tensor, scalar
        0 for identical images, up to 2 for anti-correlated ones.

    Examples
    --------
    >>> x = torch.rand(2, 1, 16, 16)
    >>> mask = x > 0.5
    >>> float(foreground_ssim_loss(x, x, mask)) < 1e-6
    True
    """
    if prediction.shape != target.shape or prediction.ndim != 4:
        raise ValueError(
            f"prediction and target must have the same (b, C, H, W) shape, got "
            f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    mask = _check_mask(mask, target)
    size = min(target.shape[-2:])
    kernel_size = min(kernel_size, size if size % 2 else size - 1)
    if kernel_size < 3:  # SSIM needs a window; tiny images fall back to masked squared error
        return _masked_mean((prediction - target) ** 2, mask)
    if data_range is None:
        data_range = max(float((target.max() - target.min()).detach()), 1e-8)
    values = ssim_map(prediction, target, kernel_size=kernel_size, data_range=data_range)
    return 1.0 - _masked_mean(values, mask) if mask.any() else values.sum() * 0.0


def background_tv_loss(prediction, background):
    """Total variation of the prediction inside the background, per pair of pixels.

    The mean absolute difference between horizontally and vertically adjacent pixels that
    both lie in the background (anisotropic TV), so edges of the source cost nothing.

    Parameters
    ----------
    prediction : torch.Tensor of shape (b, C, H, W)
    background : torch.Tensor of bool, shape (b, 1, H, W) or (b, C, H, W)
        True on the sky.

    Returns
    -------
    loss : torch.Tensor, scalar
        0 for a flat background.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 8, 8)
    >>> x[..., 2:4, 2:4] = 5.0  # a source on a flat sky
    >>> float(background_tv_loss(x, x == 0))
    0.0
    """
    background = _check_mask(background, prediction, "background")
    dx = (prediction[..., :, 1:] - prediction[..., :, :-1]).abs()
    dy = (prediction[..., 1:, :] - prediction[..., :-1, :]).abs()
    mx = background[..., :, 1:] & background[..., :, :-1]
    my = background[..., 1:, :] & background[..., :-1, :]
    weights_x, weights_y = mx.to(dx.dtype), my.to(dy.dtype)
    count = (weights_x.sum() + weights_y.sum()).clamp_min(1.0)
    return ((dx * weights_x).sum() + (dy * weights_y).sum()) / count


def darkening_loss(prediction, background, level=0.0):
    """Mean absolute departure of the background from the sky level.

    The write-up's "darkening" term pushes the background of a [0, 1] image to black; for
    images in any units (sky-subtracted or not) this generalises to the distance from a sky
    ``level``, so that flux in the background (and holes below the sky) are penalised.

    Parameters
    ----------
    prediction : torch.Tensor of shape (b, C, H, W)
    background : torch.Tensor of bool, shape (b, 1, H, W) or (b, C, H, W)
        True on the sky.
    level : float or torch.Tensor broadcastable to (b, C, 1, 1), default=0.0
        Sky level in the prediction's units (e.g. the median of the clean background).

    Returns
    -------
    loss : torch.Tensor, scalar

    Examples
    --------
    >>> x = torch.full((1, 1, 4, 4), 0.5)
    >>> float(darkening_loss(x, torch.ones(1, 1, 4, 4, dtype=torch.bool)))
    0.5
    """
    background = _check_mask(background, prediction, "background")
    return _masked_mean((prediction - level).abs(), background)
