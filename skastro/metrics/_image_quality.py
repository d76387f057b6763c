"""Image quality: reconstruction error, SSIM and MS-SSIM of numpy arrays or torch tensors.

They take numpy arrays (and return floats) or torch tensors (and return differentiable
tensors, so they double as loss terms). SSIM and MS-SSIM are thin wrappers of the one
implementation in :mod:`skastro.losses`.
"""

import numpy as np


def _as_tensor_pair(X_true, X_pred):
    """Both inputs as (n, C, H, W) torch tensors, and whether the caller gave tensors."""
    import torch

    is_torch = isinstance(X_true, torch.Tensor) or isinstance(X_pred, torch.Tensor)
    like = X_true if isinstance(X_true, torch.Tensor) else X_pred

    def to_tensor(x):
        if isinstance(x, torch.Tensor):
            return x if x.is_floating_point() else x.float()
        # numpy arrays are taken in float64 (native byte order); a tensor partner dictates
        # dtype and device
        tensor = torch.from_numpy(np.asarray(x, dtype=np.float64))
        if is_torch:
            dtype = like.dtype if like.is_floating_point() else torch.float32
            tensor = tensor.to(device=like.device, dtype=dtype)
        return tensor

    X_true, X_pred = to_tensor(X_true), to_tensor(X_pred)
    if X_true.shape != X_pred.shape:
        raise ValueError(f"shapes differ: {tuple(X_true.shape)} and {tuple(X_pred.shape)}")
    if X_true.ndim == 3:
        X_true, X_pred = X_true.unsqueeze(1), X_pred.unsqueeze(1)
    elif X_true.ndim != 4:
        raise ValueError(
            f"expected images of shape (n, H, W) or (n, C, H, W), got {tuple(X_true.shape)}"
        )
    return X_true, X_pred, is_torch


def _finish(value, is_torch):
    if is_torch:
        return value
    value = value.detach().cpu().numpy()
    return float(value) if value.ndim == 0 else value


def _data_range(X_true, data_range):
    if data_range is not None:
        return tuple(data_range) if isinstance(data_range, tuple | list) else float(data_range)
    from skastro.losses import data_range_of

    return data_range_of(X_true)


def _check_reduction(reduction):
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def reconstruction_mse(X_true, X_pred, *, reduction="mean"):
    """Mean squared error per image, averaged over images.

    Parameters
    ----------
    X_true, X_pred : array-like or torch.Tensor of the same shape (n, ...)
        Original and reconstructed images, any layout with the images on the first axis.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns the per-image errors (useful as anomaly scores).

    Returns
    -------
    mse : float, ndarray of shape (n,), or torch.Tensor
        A tensor (differentiable) when either input is a tensor.

    Examples
    --------
    >>> import numpy as np
    >>> reconstruction_mse(np.zeros((2, 4, 4)), np.full((2, 4, 4), 0.5))
    0.25
    """
    import torch

    _check_reduction(reduction)
    is_torch = isinstance(X_true, torch.Tensor) or isinstance(X_pred, torch.Tensor)
    if is_torch:
        like = X_true if isinstance(X_true, torch.Tensor) else X_pred
        X_true = torch.as_tensor(X_true, dtype=like.dtype, device=like.device)
        X_pred = torch.as_tensor(X_pred, dtype=like.dtype, device=like.device)
    else:
        X_true = np.asarray(X_true, dtype=np.float64)
        X_pred = np.asarray(X_pred, dtype=np.float64)
    if X_true.shape != X_pred.shape:
        raise ValueError(f"shapes differ: {tuple(X_true.shape)} and {tuple(X_pred.shape)}")
    per_image = ((X_true - X_pred) ** 2).reshape(len(X_true), -1).mean(1)
    if reduction == "none":
        return per_image
    return per_image.mean() if is_torch else float(per_image.mean())


def ssim(
    X_true,
    X_pred,
    *,
    data_range=None,
    mask=None,
    kernel_size=11,
    sigma=None,
    k1=0.01,
    k2=0.03,
    reduction="mean",
):
    """Structural similarity (SSIM) between two batches of images, optionally masked.

    The SSIM map of :func:`skastro.losses.ssim_map` (a Gaussian window, reflected borders),
    averaged over all or the masked pixels. With torch tensors it returns a tensor and is
    differentiable, so ``1 - ssim(target, output)`` is a loss; with numpy arrays it returns a
    float.

    Parameters
    ----------
    X_true, X_pred : array-like or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Target and prediction. SSIM is symmetric except that the default ``data_range`` comes
        from ``X_true``.
    data_range : float, (min, max) tuple or None, default=None
        Dynamic range of the pixel values, which sets SSIM's stabilising constants. ``None``:
        ``X_true.max() - X_true.min()`` over the whole batch (detached), or 1.0 for a constant
        target. A tuple also clips both inputs to it.
    mask : array-like or torch.Tensor of bool, shape (n, H, W), (n, 1, H, W) or (n, C, H, W)
        If given, SSIM is averaged over the masked pixels only (from the full SSIM map), e.g.
        the "foreground SSIM" of a denoiser. With ``reduction="mean"`` every masked pixel of
        the batch weighs the same. A mask selecting no pixel raises a ``ValueError``.
    kernel_size : int, default=11
        Width of the Gaussian window, odd.
    sigma : float or None, default=None
        Width of the Gaussian; ``None`` uses ``1.5 * kernel_size / 11`` (the standard ratio).
    k1, k2 : float, default=0.01, 0.03
        SSIM's stabilising constants, relative to ``data_range``.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns one value per image (NaN for an image whose mask is empty).

    Returns
    -------
    ssim : float, ndarray of shape (n,), or torch.Tensor
        1 for identical images; lower is less similar.

    See Also
    --------
    ms_ssim : the multi-scale version.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((2, 32, 32))
    >>> ssim(x, x)
    1.0
    >>> bool(ssim(x, x + 0.3 * rng.standard_normal(x.shape)) < 0.9)
    True
    """
    import torch

    from skastro.losses import ssim_map as per_pixel_ssim

    _check_reduction(reduction)
    X_true, X_pred, is_torch = _as_tensor_pair(X_true, X_pred)
    data_range = _data_range(X_true, data_range)
    if isinstance(data_range, tuple):
        low, high = data_range
        X_true, X_pred = X_true.clamp(low, high), X_pred.clamp(low, high)
        data_range = high - low
    if not data_range > 0:
        raise ValueError(
            f"data_range must be positive (or a (min, max) pair with max > min), got a range "
            f"of {data_range!r}"
        )
    height, width = X_true.shape[-2:]
    if kernel_size % 2 != 1 or (kernel_size - 1) // 2 >= min(height, width):
        # borders are reflected: half the window must be shorter than the image's sides
        raise ValueError(
            f"kernel_size must be odd and below twice the image's smaller side "
            f"({min(height, width)} px for {height}x{width} images), got {kernel_size}"
        )
    ssim_map = per_pixel_ssim(
        X_pred, X_true, kernel_size=kernel_size, sigma=sigma, data_range=data_range, k1=k1, k2=k2
    )
    if mask is None:
        per_image = ssim_map.reshape(len(ssim_map), -1).mean(1)
        return _finish(per_image.mean() if reduction == "mean" else per_image, is_torch)

    mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    mask = mask.to(device=ssim_map.device, dtype=torch.bool)
    if mask.ndim == 3:
        mask = mask.unsqueeze(1)
    n, n_channels, height, width = ssim_map.shape
    if (
        mask.ndim != 4
        or mask.shape[0] != n
        or mask.shape[1] not in (1, n_channels)
        or (mask.shape[2:] != (height, width))
    ):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match images of shape "
            f"{tuple(ssim_map.shape)}"
        )
    weights = mask.expand_as(ssim_map).to(ssim_map.dtype)
    if reduction == "none":
        value = (ssim_map * weights).sum((1, 2, 3)) / weights.sum((1, 2, 3))
    else:
        if not mask.any():
            raise ValueError("the mask selects no pixel")
        value = (ssim_map * weights).sum() / weights.sum()
    return _finish(value, is_torch)


def ms_ssim(
    X_true,
    X_pred,
    *,
    data_range=None,
    kernel_size=None,
    sigma=None,
    betas=None,
    k1=0.01,
    k2=0.03,
    normalize="relu",
    reduction="mean",
):
    """Multi-scale structural similarity (MS-SSIM), usable on small images.

    :func:`skastro.losses.ms_ssim` (torchmetrics' implementation), whose defaults (five
    scales, an 11 px window) need images of more than 160 px. Here the
    number of scales and the window follow the image size unless given:

    - scales: as many as keep the coarsest scale at least 8 px wide, at most five
      (``floor(log2(side / 8)) + 1``): 4 scales at 64 px, 3 at 32 px, 5 from 128 px. The
      weights are the first standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
      rescaled to sum to 1;
    - window: the largest odd size up to 11 px that fits the coarsest scale and torchmetrics'
      size check: 7 px at 32 and 64 px, 11 px from 256 px.

    Parameters
    ----------
    X_true, X_pred : array-like or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Target and prediction. Tensors give a differentiable tensor; arrays give a float.
    data_range : float, (min, max) tuple or None, default=None
        As in :func:`ssim`: ``None`` uses the target's range over the batch.
    kernel_size : int or None, default=None
        Gaussian window width (odd); ``None`` picks it as above.
    sigma : float or None, default=None
        Gaussian width; ``None`` uses ``1.5 * kernel_size / 11``.
    betas : tuple of float or None, default=None
        Weight of each scale, finest first; its length is the number of scales. ``None``
        picks them as above.
    k1, k2 : float, default=0.01, 0.03
        Stabilising constants.
    normalize : {"relu", "simple"} or None, default="relu"
        How torchmetrics keeps negative contrast terms from breaking the product of powers.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns one value per image.

    Returns
    -------
    ms_ssim : float, ndarray of shape (n,), or torch.Tensor
        1 for identical images.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((2, 1, 32, 32))
    >>> round(ms_ssim(x, x), 6)
    1.0
    """
    from skastro.losses import ms_ssim as ms_ssim_per_image

    _check_reduction(reduction)
    X_true, X_pred, is_torch = _as_tensor_pair(X_true, X_pred)
    per_image = ms_ssim_per_image(
        X_pred,
        X_true,
        data_range=_data_range(X_true, data_range),
        kernel_size=kernel_size,
        sigma=sigma,
        betas=betas,
        k1=k1,
        k2=k2,
        normalize=normalize,
    )
    return _finish(per_image.mean() if reduction == "mean" else per_image, is_torch)
