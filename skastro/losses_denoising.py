"""Loss terms of the contrastive denoiser, one small torch function each.

The Galaxy Zoo Hubble denoiser splits each image into the source (foreground) and the sky
(background) with a binary mask and scores the two parts differently: the source must keep
its structure (SSIM), the sky must be smooth (total variation) and dark (no spurious flux);
the two noisy views of an image must embed close together (NT-Xent, Chen et al. 2020,
"A Simple Framework for Contrastive Learning of Visual Representations", SimCLR).

Every function returns a scalar tensor to *minimise*. Masks are boolean tensors of shape
``(b, 1, H, W)`` or ``(b, C, H, W)``; torch only, no scikit-learn here.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "background_tv_loss",
    "darkening_loss",
    "foreground_ssim_loss",
    "nt_xent_loss",
    "ssim_map",
]


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


def _blur_matrix(size, kernel_size, like):
    """``(size, size)`` matrix of a Gaussian blur with reflected borders along one axis.

    Blurring by matrix products is much faster on CPU than a depthwise convolution (and its
    backward pass), and the matrix is tiny for cutout-sized images.
    """
    sigma = 1.5 * kernel_size / 11
    offsets = torch.arange(kernel_size, device=like.device, dtype=like.dtype)
    window = torch.exp(-0.5 * ((offsets - (kernel_size - 1) / 2) / sigma) ** 2)
    window = window / window.sum()
    pad = (kernel_size - 1) // 2
    identity = torch.eye(size, device=like.device, dtype=like.dtype).unsqueeze(1)
    columns = F.conv1d(F.pad(identity, (pad, pad), mode="reflect"), window.view(1, 1, -1))
    return columns[:, 0]  # row j: how pixel j spreads over the output pixels


def ssim_map(prediction, target, *, kernel_size=7, data_range=1.0, k1=0.01, k2=0.03):
    """Per-pixel SSIM of two image batches, same size as the images.

    The standard SSIM (Wang et al. 2004) with a separable Gaussian window of width
    ``1.5 * kernel_size / 11``, borders reflected, so every pixel (and so every mask) has a
    value; it matches torchmetrics' ``return_full_image`` map.

    Parameters
    ----------
    prediction, target : torch.Tensor of shape (b, C, H, W)
    kernel_size : int, default=7
        Odd window width, at most the smaller image side.
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
    c, height, width = target.shape[1:]
    blur_h = _blur_matrix(height, kernel_size, target)
    blur_w = _blur_matrix(width, kernel_size, target)
    # the five local statistics of both images, blurred together
    stack = torch.cat(
        [prediction, target, prediction * prediction, target * target, prediction * target], 1
    )
    stack = blur_h.T @ stack @ blur_w
    mu_p, mu_t, pp, tt, pt = stack.split(c, dim=1)
    var_p, var_t, cov = pp - mu_p**2, tt - mu_t**2, pt - mu_p * mu_t
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )


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


def nt_xent_loss(z1, z2, temperature=0.5):
    """NT-Xent: normalised temperature-scaled cross-entropy between two views (SimCLR).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; the other ``2b - 2``
    embeddings of the batch are its negatives. Embeddings are L2-normalised, similarities
    divided by ``temperature``, and the cross-entropy of picking the positive is averaged
    over all ``2b`` anchors.

    Parameters
    ----------
    z1, z2 : torch.Tensor of shape (b, d)
        Projections of the two views.
    temperature : float, default=0.5

    Returns
    -------
    loss : torch.Tensor, scalar
        For one-hot (orthogonal) identical views it is ``log(1 + (2b - 2) exp(-1/t))``.

    Examples
    --------
    >>> import math
    >>> z = torch.eye(4)
    >>> t = 0.5
    >>> round(float(nt_xent_loss(z, z, t)), 6) == round(math.log(1 + 6 * math.exp(-1 / t)), 6)
    True
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must both have shape (b, d), got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    b = z1.shape[0]
    if b < 2:  # no negatives: the loss is constant, keep a zero with a gradient path
        return (z1.sum() + z2.sum()) * 0.0
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    # an embedding is never its own negative
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), -torch.inf)
    positives = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, positives)
