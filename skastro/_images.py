"""The one way to see an array of images as ``(n, C, H, W)``, and back.

Images come as ``(n, H, W)``, ``(n, C, H, W)`` or flat ``(n, F)`` rows (DESIGN.md). The
metrics, plots, photometry and the explorer all work on ``(n, C, H, W)``; they go through
:func:`as_nchw`, which returns a view (a memory map stays a memory map) and says what was
wrong with anything else. The estimators' own, stricter validation (dtype, NaN, byte order,
lazy arrays) is :func:`skastro._validation.check_images`.
"""

import math

import numpy as np

__all__ = ["as_nchw", "restore_layout"]


def as_nchw(images, *, image_shape=None, allow_flat=True, numeric=False):
    """A ``(n, C, H, W)`` view of ``images``.

    Parameters
    ----------
    images : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
        Lazily read arrays (e.g. h5py datasets) are read whole.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` of flat rows; None takes a flat row of ``F`` features as
        one square band when ``F`` is a perfect square.
    allow_flat : bool, default=True
        Whether flat ``(n, F)`` rows are accepted.
    numeric : bool, default=False
        Require a numeric dtype (integers or floats).

    Returns
    -------
    images : ndarray of shape (n, C, H, W)

    Examples
    --------
    >>> as_nchw(np.zeros((2, 16))).shape
    (2, 1, 4, 4)
    >>> as_nchw(np.zeros((2, 8, 8))).shape
    (2, 1, 8, 8)
    """
    images = np.asarray(images)
    if numeric and images.dtype.kind not in "fiu":
        raise ValueError(f"expected numeric images, got dtype {images.dtype}")
    if images.ndim == 4:
        return images
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 2 and allow_flat:
        n_features = images.shape[1]
        if image_shape is None:
            side = math.isqrt(n_features)
            if side * side != n_features:
                raise ValueError(
                    f"flat images of {n_features} features are not square: pass image_shape, "
                    "or the images as (n, H, W) or (n, C, H, W)"
                )
            image_shape = (1, side, side)
        image_shape = tuple(image_shape)
        if len(image_shape) == 2:
            image_shape = (1, *image_shape)
        if math.prod(image_shape) != n_features:
            raise ValueError(f"image_shape {image_shape} does not hold {n_features} features")
        return images.reshape(len(images), *image_shape)
    flat = ", or 2-D (n, F) flat rows" if allow_flat else ""
    raise ValueError(
        f"expected images as a 3-D (n, H, W) or 4-D (n, C, H, W) array{flat}, got an array of "
        f"shape {images.shape}"
    )


def restore_layout(images_nchw, ndim):
    """``(n, C, H, W)`` images back in the layout of an ``ndim``-dimensional input.

    Examples
    --------
    >>> restore_layout(np.zeros((2, 1, 4, 4)), 2).shape
    (2, 16)
    """
    if ndim == 4:
        return np.ascontiguousarray(images_nchw)
    if ndim == 3:
        return np.ascontiguousarray(images_nchw[:, 0])
    return np.ascontiguousarray(images_nchw).reshape(len(images_nchw), -1)
