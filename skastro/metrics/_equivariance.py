"""How much an embedding moves when the images are rotated or flipped."""

import math
import re
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning

from skastro._images import as_nchw, restore_layout

_ROTATION = re.compile(r"rot(-?\d+(?:\.\d+)?)$")


def _image_transform(name):
    """The (n, C, H, W) -> (n, C, H', W') function a transform name stands for."""
    if name == "fliplr":
        return lambda X: X[..., ::-1]
    if name == "flipud":
        return lambda X: X[..., ::-1, :]
    match = _ROTATION.match(name)
    if match is None:
        raise ValueError(
            f"unknown transform {name!r}: use 'rot<degrees>', 'fliplr', 'flipud' or a callable"
        )
    angle = float(match.group(1))
    if angle % 90 == 0:
        # exact: no interpolation for the rotations of the square's symmetry group
        return lambda X: np.rot90(X, int(angle // 90) % 4, axes=(-2, -1))

    def rotate(X):
        from scipy import ndimage

        # counter-clockwise like np.rot90 (scipy sorts the axes); corners filled with 0, the
        # usual zero padding of rotation augmentations
        return ndimage.rotate(X, angle, axes=(-2, -1), reshape=False, order=1, mode="constant")

    return rotate


def equivariance_error(
    estimator,
    X,
    transforms=("rot90", "rot180", "rot270", "fliplr", "flipud"),
    *,
    reduce=None,
    image_shape=None,
):
    """Relative change of an embedding when the images are rotated or flipped.

    For each transform ``T``::

        error_T = mean_i ||z(T x_i) - z(x_i)|| / mean_i ||z(x_i) - mean_j z(x_j)||

    where ``z`` is ``estimator.transform``. The denominator is the embedding's spread, so an
    embedding cannot look invariant by adding a large constant offset; 0 means invariant and
    about 1.4 is what an embedding unrelated to the original one would give.

    Parameters
    ----------
    estimator : fitted estimator with ``transform``
        The embedder (e.g. an autoencoder, or a pipeline ending in a transformer).
    X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
        Images. They are transformed as (n, C, H, W) and handed to the estimator in the layout
        given; flat images need a square ``F`` (one channel) or ``image_shape``.
    transforms : sequence or dict, default=("rot90", "rot180", "rot270", "fliplr", "flipud")
        Names or callables. ``"rot<degrees>"`` rotates counter-clockwise about the image
        centre, exactly (``np.rot90``) for multiples of 90 and otherwise bilinearly with the
        corners filled with 0 (``scipy.ndimage.rotate(reshape=False, order=1)``, e.g.
        ``"rot45"``); ``"fliplr"`` / ``"flipud"`` flip the columns / the rows. A callable maps
        an (n, C, H, W) array to another. A dict maps result names to either.
    reduce : {None, "mean", "max"}, default=None
        ``None`` returns one error per transform; otherwise the mean or max over transforms.
    image_shape : tuple of int or None, default=None
        (C, H, W) or (H, W) of flat images.

    Returns
    -------
    errors : dict of {str: float} or float
        Keys are the transform names (a callable's ``__name__``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> total_flux = FunctionTransformer(lambda X: X.sum(axis=(1, 2))[:, None])
    >>> X = np.random.default_rng(0).random((10, 8, 8))
    >>> errors = equivariance_error(total_flux, X, ["rot90", "fliplr"])
    >>> {name: round(error, 6) for name, error in errors.items()}
    {'rot90': 0.0, 'fliplr': 0.0}
    """
    if reduce not in (None, "mean", "max"):
        raise ValueError(f"reduce must be None, 'mean' or 'max', got {reduce!r}")
    if isinstance(transforms, str) or callable(transforms):
        transforms = [transforms]
    if not isinstance(transforms, dict):
        named = {}
        for transform in transforms:
            name = (
                transform
                if isinstance(transform, str)
                else getattr(transform, "__name__", repr(transform))
            )
            if name in named:
                raise ValueError(f"two transforms are named {name!r}: pass a dict")
            named[name] = transform
        transforms = named
    if not transforms:
        raise ValueError("no transform given")

    X = np.asarray(X)
    ndim = X.ndim
    X_nchw = as_nchw(X, image_shape=image_shape)
    n = len(X_nchw)

    def embed(images_nchw):
        Z = np.asarray(estimator.transform(restore_layout(images_nchw, ndim)), dtype=np.float64)
        return Z.reshape(n, -1)

    Z = embed(X_nchw)
    spread = np.linalg.norm(Z - Z.mean(0), axis=1).mean()
    errors = {}
    for name, transform in transforms.items():
        function = _image_transform(transform) if isinstance(transform, str) else transform
        moved = np.linalg.norm(embed(np.asarray(function(X_nchw))) - Z, axis=1).mean()
        if spread > 0:
            errors[name] = float(moved / spread)
        else:
            warnings.warn(
                "the embedding is constant, so its equivariance error is undefined (NaN)",
                UndefinedMetricWarning,
                stacklevel=2,
            )
            errors[name] = math.nan
    if reduce is None:
        return errors
    values = list(errors.values())
    return float(np.mean(values) if reduce == "mean" else np.max(values))
