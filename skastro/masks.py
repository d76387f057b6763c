"""Foreground masks of astronomical images: which pixels belong to the source, which to the sky.

Each image gets its own threshold, computed for the whole batch at once (no Python loop over
images):

``"otsu"``
    Otsu's method: the threshold that maximises the between-class variance of the two pixel
    populations. Computed exactly over every distinct pixel value (a sort and cumulative sums),
    not on a 256-bin histogram.
``"sigma_clip"``
    The astronomer's sky threshold: the background median and standard deviation are
    estimated with iterative :math:`\\kappa\\sigma` clipping (which rejects the source pixels),
    and pixels brighter than ``median + n_sigma * std`` are foreground.

Multi-channel images get one mask per image, from the mean over the channels. Pixels must be
finite (NaN and inf are refused in arrays; fill masked pixels first). Works on numpy
arrays (returns numpy) and torch tensors (returns tensors on the same device); torch only, no
scikit-learn.
"""

import numpy as np
import torch

__all__ = [
    "MASK_METHODS",
    "foreground_mask",
    "gaussian_blur",
    "otsu_threshold",
    "sigma_clip_threshold",
]

MASK_METHODS = ("otsu", "sigma_clip")


def _as_tensor(X):
    """``(X as a float (n, C, H, W) tensor, was it numpy?, original ndim)``."""
    is_numpy = not isinstance(X, torch.Tensor)
    if is_numpy:
        X = np.asarray(X, dtype=np.float64)
        finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1) if X.ndim else np.isfinite(X)
        if not np.all(finite):
            # sorted thresholds would count NaN as the brightest pixels: a wrong mask, silently.
            # (Tensors are not checked: that would make a GPU wait, inside training loops.)
            bad = np.flatnonzero(~finite)
            raise ValueError(
                f"X holds NaN or inf pixels in {len(bad)} image(s) (first indices: "
                f"{', '.join(map(str, bad[:5]))}); fill masked pixels first (e.g. with the "
                "image's sky median)"
            )
    tensor = torch.from_numpy(X) if is_numpy else X
    if not tensor.is_floating_point():
        tensor = tensor.float()
    ndim = tensor.ndim
    if ndim == 3:
        tensor = tensor.unsqueeze(1)
    elif ndim != 4:
        raise ValueError(
            f"expected images of shape (n, H, W) or (n, C, H, W), got {tuple(tensor.shape)}"
        )
    return tensor, is_numpy, ndim


def _pixels(X):
    """Per-image pixel values ``(n, H*W)``, averaged over channels."""
    return X.mean(1).flatten(1)


def otsu_threshold(X):
    """Otsu's threshold of each image, computed exactly over all pixel values.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Images; channels are averaged first.

    Returns
    -------
    thresholds : ndarray or torch.Tensor of shape (n,)
        Midpoint between the two pixel values where the split maximises the between-class
        variance; pixels ``> threshold`` are foreground. A constant image gets its value.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((1, 4, 4))
    >>> X[0, :2] = 10.0  # two flat levels: the threshold lies halfway
    >>> otsu_threshold(X)
    array([5.])
    """
    X, is_numpy, _ = _as_tensor(X)
    values, _ = torch.sort(_pixels(X), dim=1)
    n_pixels = values.shape[1]
    cumulative = torch.cumsum(values, dim=1)
    total = cumulative[:, -1:]
    # split after the k-th sorted value, k = 1 .. n_pixels - 1
    k = torch.arange(1, n_pixels, device=X.device, dtype=values.dtype)
    low_sum = cumulative[:, :-1]
    mean_low = low_sum / k
    mean_high = (total - low_sum) / (n_pixels - k)
    between = k * (n_pixels - k) * (mean_low - mean_high) ** 2
    # only splits between two distinct values are real thresholds
    between = torch.where(values[:, 1:] > values[:, :-1], between, torch.full_like(between, -1))
    if n_pixels > 1:
        best = between.argmax(dim=1, keepdim=True)
        threshold = 0.5 * (values.gather(1, best) + values.gather(1, best + 1)).squeeze(1)
        constant = values[:, -1] == values[:, 0]
        threshold = torch.where(constant, values[:, 0], threshold)
    else:
        threshold = values[:, 0]
    return threshold.numpy() if is_numpy else threshold


def sigma_clip_threshold(X, *, n_sigma=3.0, clip_sigma=3.0, n_iter=5):
    """Sky threshold ``median + n_sigma * std`` of each image's sigma-clipped background.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Images; channels are averaged first.
    n_sigma : float, default=3.0
        How many background standard deviations above the background median a pixel must
        lie to count as foreground.
    clip_sigma : float, default=3.0
        Pixels farther than ``clip_sigma`` standard deviations from the median are rejected at
        each clipping iteration.
    n_iter : int, default=5
        Clipping iterations.

    Returns
    -------
    thresholds : ndarray or torch.Tensor of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(0.0, 1.0, (1, 64, 64))
    >>> X[0, 30:34, 30:34] = 100.0  # a bright source does not bias the sky estimate
    >>> t = sigma_clip_threshold(X)
    >>> bool(2.5 < t[0] < 3.5)
    True
    """
    X, is_numpy, _ = _as_tensor(X)
    # One sort per image: clipping around the median always keeps a contiguous run of the
    # sorted values, so each iteration only moves two bounds (searchsorted) and reads the
    # median, mean and variance of the run from cumulative sums.
    values, _ = torch.sort(_pixels(X), dim=1)
    n, n_pixels = values.shape
    wide = values.double()
    zero = torch.zeros(n, 1, dtype=wide.dtype, device=wide.device)
    sums = torch.cat([zero, wide.cumsum(1)], dim=1)
    squares = torch.cat([zero, (wide * wide).cumsum(1)], dim=1)
    lo = torch.zeros(n, 1, dtype=torch.long, device=values.device)
    hi = torch.full_like(lo, n_pixels)
    for iteration in range(int(n_iter) + 1):
        count = hi - lo
        median = 0.5 * (values.gather(1, lo + (count - 1) // 2) + values.gather(1, lo + count // 2))
        mean = (sums.gather(1, hi) - sums.gather(1, lo)) / count
        variance = (squares.gather(1, hi) - squares.gather(1, lo)) / count - mean**2
        std = variance.clamp_min(0.0).sqrt().to(values.dtype)
        if iteration == int(n_iter):
            break
        new_lo = torch.searchsorted(values, median - clip_sigma * std, side="left")
        new_hi = torch.searchsorted(values, median + clip_sigma * std, side="right")
        # a run can only shrink; never clip every pixel away
        valid = new_hi > new_lo
        lo = torch.where(valid, torch.maximum(lo, new_lo), lo)
        hi = torch.where(valid, torch.minimum(hi, new_hi), hi)
    median, std = median[:, 0], std[:, 0]
    threshold = median + n_sigma * std
    return threshold.numpy() if is_numpy else threshold


def foreground_mask(X, method="otsu", *, smooth=0.0, n_sigma=3.0):
    """Boolean foreground mask of each image (True on the source, False on the sky).

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Images, in any units (both thresholds are unchanged by a linear rescaling).
    method : {"otsu", "sigma_clip"}, default="otsu"
        How each image's threshold is chosen; see the module docstring.
    smooth : float, default=0.0
        Width (in pixels) of a Gaussian blur applied before thresholding; masks of noisy
        images need it, otherwise single noise spikes become foreground.
    n_sigma : float, default=3.0
        Threshold of ``"sigma_clip"`` in background standard deviations.

    Returns
    -------
    mask : ndarray or torch.Tensor of bool, shape (n, 1, H, W) or (n, H, W)
        ``(n, 1, H, W)`` for ``(n, C, H, W)`` input (it broadcasts over the channels),
        ``(n, H, W)`` for ``(n, H, W)`` input.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((1, 4, 4))
    >>> X[0, 1:3, 1:3] = 1.0
    >>> foreground_mask(X).astype(int)
    array([[[0, 0, 0, 0],
            [0, 1, 1, 0],
            [0, 1, 1, 0],
            [0, 0, 0, 0]]])
    """
    if method not in MASK_METHODS:
        raise ValueError(f"mask method must be one of {MASK_METHODS}, got {method!r}")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth!r}")
    X, is_numpy, ndim = _as_tensor(X)
    image = X.mean(1, keepdim=True)
    if smooth > 0:
        image = gaussian_blur(image, smooth)
    if method == "otsu":
        threshold = otsu_threshold(image)
    else:
        threshold = sigma_clip_threshold(image, n_sigma=n_sigma)
    mask = image > threshold.view(-1, 1, 1, 1)
    if ndim == 3:
        mask = mask[:, 0]
    return mask.numpy() if is_numpy else mask


def gaussian_blur(X, sigma):
    """Gaussian blur of ``(n, C, H, W)`` tensors (kornia), reflected borders, 3 sigma wide.

    Examples
    --------
    >>> X = torch.ones(1, 1, 5, 5)
    >>> bool(torch.allclose(gaussian_blur(X, 1.0), X))
    True
    """
    from kornia.filters import gaussian_blur2d

    radius = max(1, int(3.0 * sigma + 0.5))
    # reflection needs a pad smaller than the image; replicate the edge otherwise
    border = "reflect" if radius < min(X.shape[-2:]) else "replicate"
    size = 2 * radius + 1
    return gaussian_blur2d(X, (size, size), (float(sigma), float(sigma)), border_type=border)
