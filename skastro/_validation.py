"""Input validation shared by every estimator: images in, batches of float32 out.

The rules are those of DESIGN.md ("Images in, vectors out"):

* ``(n, H, W)`` and ``(n, C, H, W)`` are images, channels first;
* a flat ``(n, F)`` array is an image when ``image_shape=(C, H, W)`` is given (one entry may be
  ``-1`` and is inferred, as in :func:`numpy.reshape`) or when ``F`` is a perfect square;
* any real dtype and byte order is accepted; values are converted to native float32 one batch at
  a time, so ``np.memmap`` and other lazily loaded arrays are never copied whole;
* NaN/inf pixels raise a ``ValueError`` naming how many images are affected and the first
  indices, unless a fill policy is chosen.
"""

import math
import numbers
import warnings

import numpy as np

NAN_POLICIES = ("raise", "fill")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# How many images are scanned at once when checking lazily loaded arrays for NaN.
_SCAN_CHUNK = 1024


def is_lazy_array(X):
    """Return True for arrays that must be read in slices, never converted whole.

    That is ``np.memmap`` and any array-like with ``shape``, ``dtype`` and ``__getitem__`` that
    is not an in-memory ndarray (``h5py.Dataset``, skastro's ``HDF5Array``, zarr arrays, ...).
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray):
        return False
    return all(hasattr(X, name) for name in ("shape", "dtype", "__getitem__"))


def _as_array_like(X):
    """Return X unchanged if it is an (lazy) array, else ``np.asarray(X)`` with clear errors."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required: skastro estimators take "
            "dense image arrays. Use X.toarray() to convert to a dense numpy array."
        )
    if isinstance(X, np.ndarray) and X.dtype == object:
        try:
            return X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            # keep numpy's message ("argument must be a string or a real number") and type
            raise type(exc)(
                f"images must hold real numbers, but X has dtype object with values that are "
                f"not numbers ({exc}); convert them first, e.g. X.astype(np.float32)."
            ) from exc
    if isinstance(X, np.ndarray) or is_lazy_array(X):
        return X
    try:
        if hasattr(X, "detach"):  # a torch tensor
            X = X.detach().cpu().numpy()
        return np.asarray(X)
    except Exception as exc:
        raise ValueError(f"could not convert X of type {type(X).__name__} to an array") from exc


def _check_dtype(dtype):
    if dtype.kind in "fiub":
        return
    if dtype.kind == "c":
        raise ValueError("Complex data not supported: pass np.abs(X) or X.real as images")
    raise ValueError(
        f"images must hold real numbers, got dtype {dtype}. "
        "Convert X with X.astype(np.float32) if it holds numbers stored as objects or strings."
    )


def _resolve_image_shape(n_features, image_shape):
    """Turn a flat feature count into ``(C, H, W)``, inferring one ``-1`` entry."""
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features or n_features == 0:
            raise ValueError(
                f"X is flat with {n_features} features per sample, which is not a square "
                "one-channel image; pass image_shape=(C, H, W) (one entry may be -1) to say "
                "how to reshape each row, or pass X as (n, H, W) / (n, C, H, W)."
            )
        return (1, side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
        raise ValueError(f"image_shape may hold positive sizes and at most one -1, got {shape}")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if n_features % known:
            raise ValueError(
                f"X has {n_features} features per sample, which cannot be reshaped to "
                f"image_shape={shape}"
            )
        shape = tuple(n_features // known if s == -1 else s for s in shape)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"X has {n_features} features per sample but image_shape={shape} needs "
            f"{math.prod(shape)}; pass the image_shape your flat images were made with"
        )
    return shape


def _check_declared_shape(shape, image_shape, estimator_name):
    """Refuse an ``image_shape`` parameter that contradicts the images' own shape.

    ``image_shape`` only says how to reshape flat rows; images given as (n, H, W) or
    (n, C, H, W) carry their shape, and a different declared one is a mistake (e.g. a
    parameter copied from another data set) that must not pass silently.
    """
    try:
        declared = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}") from None
    if len(declared) != 3 or any(d != -1 and d != s for d, s in zip(declared, shape)):
        raise ValueError(
            f"{estimator_name} has image_shape={tuple(image_shape)!r}, but X holds images of "
            f"shape {tuple(shape)}; image_shape is only needed for flat (n, F) input: leave it "
            "None for (n, H, W) and (n, C, H, W) images, or set it to their shape"
        )


class ImageBatches:
    """A validated view of the user's images that yields native float32 batches.

    It never copies the whole input: in-memory arrays are reshaped as views and lazily loaded
    arrays are sliced batch by batch. It is also a :class:`torch.utils.data.Dataset`-like
    object (``len`` and integer indexing), which is what skorch expects to receive.

    Parameters
    ----------
    X : array-like
        The images as given by the user.
    layout : {"flat", "hw", "chw"}
        How the user laid the images out, so outputs can be returned the same way.
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    nan_policy : {"raise", "fill"}
        With "fill", non-finite pixels are replaced by ``fill_values`` (one per channel).
    checked : bool
        True when every pixel has already been checked for finiteness (in-memory input);
        lazily loaded input is checked batch by batch as it is read.
    can_fill : bool
        Whether the estimator offers ``nan_policy="fill"`` (the NaN error suggests it).
    """

    def __init__(self, X, layout, image_shape, nan_policy="raise", checked=False, can_fill=True):
        self.X = X
        self.layout = layout
        self.image_shape = tuple(image_shape)
        self.nan_policy = nan_policy
        self.checked = checked
        self.can_fill = can_fill
        self.fill_values = None

    def __len__(self):
        return int(self.X.shape[0])

    def __getitem__(self, index):
        return self.read(np.atleast_1d(index))[0]

    def read(self, index):
        """Read the images at ``index`` (a slice or an integer array) as native float32."""
        if isinstance(index, np.ndarray) and is_lazy_array(self.X):
            # h5py and memmaps read sorted, unique indices fastest; restore the order after.
            order = np.argsort(index, kind="stable")
            block = np.asarray(self.X[index[order]])
            batch = np.empty_like(block)
            batch[order] = block
        else:
            batch = np.asarray(self.X[index])
        batch = batch.reshape((batch.shape[0], *self.image_shape))
        if batch.dtype != np.float32 or not batch.dtype.isnative:
            batch = batch.astype(np.float32)  # also swaps big-endian (FITS) data to native
        # views such as np.rot90(X) or X[..., ::-1] have negative strides, which torch refuses
        batch = np.ascontiguousarray(batch)
        if not self.checked or self.nan_policy == "fill":
            batch = self._handle_non_finite(batch, index)
        return batch

    def _handle_non_finite(self, batch, index):
        finite = np.isfinite(batch)
        if finite.all():
            return batch
        if self.nan_policy == "fill":
            # a new array: the batch may be a view of the user's images, never written to
            return np.where(finite, batch, self.fill_values[None, :, None, None])
        bad = np.flatnonzero(~finite.reshape(len(batch), -1).all(axis=1))
        positions = np.arange(len(self))[index][bad] if index is not None else bad
        raise ValueError(
            non_finite_message(len(bad), positions[:5], partial=True, can_fill=self.can_fill)
        )

    def iter_slices(self, batch_size):
        """Yield ``(start, stop)`` of consecutive batches, in order."""
        for start in range(0, len(self), batch_size):
            yield start, min(start + batch_size, len(self))

    def to_layout(self, images):
        """Return ``(n, C, H, W)`` images in the layout the user passed them in."""
        if self.layout == "flat":
            return images.reshape(len(images), -1)
        if self.layout == "hw":
            return images[:, 0]
        return images


def non_finite_message(n_bad, first_indices, partial=False, can_fill=True):
    """The error text for NaN/inf pixels: how many images, which ones, how to proceed.

    ``can_fill``: the estimator has ``nan_policy="fill"`` to suggest.
    """
    first = ", ".join(str(int(i)) for i in first_indices)
    scope = "at least " if partial else ""
    how = (
        "fill them before fitting, or pass nan_policy='fill' to replace them with the "
        "per-channel mean of the training images."
        if can_fill
        else "fill them first (e.g. with the sky level around them) or leave those images out."
    )
    return (
        f"X contains NaN or inf pixels in {scope}{n_bad} image(s) (first indices: {first}). "
        f"Masked pixels are common in astronomy: {how}"
    )


def _scan_finite(X2d_or_nd, lazy):
    """Return indices of images that hold NaN/inf, and whether float values overflow float32."""
    n = X2d_or_nd.shape[0]
    bad, overflow = [], False
    chunk = _SCAN_CHUNK if lazy else n
    for start in range(0, n, max(chunk, 1)):
        block = np.asarray(X2d_or_nd[start : start + chunk])
        if block.dtype.kind != "f":
            continue
        flat = block.reshape(len(block), -1)
        finite = np.isfinite(flat)
        bad.extend((start + np.flatnonzero(~finite.all(axis=1))).tolist())
        if block.dtype.itemsize > 4 and finite.any():
            overflow = overflow or bool(np.abs(flat[finite]).max() > _FLOAT32_MAX)
    return np.asarray(bad, dtype=int), overflow


def check_images(
    X,
    *,
    image_shape=None,
    nan_policy="raise",
    expected_shape=None,
    estimator_name="estimator",
    scan_lazy=False,
    can_fill=True,
    refuse_flat=None,
):
    """Validate images and return an :class:`ImageBatches` view of them.

    Parameters
    ----------
    X : array-like of shape (n, F), (n, H, W) or (n, C, H, W)
        The images.
    image_shape : tuple of int or None
        ``(C, H, W)`` for flat input; one entry may be -1.
    nan_policy : {"raise", "fill"}
        What to do with NaN/inf pixels.
    expected_shape : tuple of int or None
        The ``(C, H, W)`` seen in ``fit``; a mismatch is a ``ValueError``.
    estimator_name : str
        Used in error messages.
    scan_lazy : bool
        Also scan lazily loaded arrays for NaN/inf up front (in chunks) instead of batch by
        batch as they are read.
    can_fill : bool
        Whether the estimator offers ``nan_policy="fill"``, which the NaN error then suggests.
    refuse_flat : str or None
        The error message for flat ``(n, F)`` rows, for estimators that need an image layout
        (None: flat rows are reshaped to images).

    Returns
    -------
    batches : ImageBatches
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    X = _as_array_like(X)
    lazy = is_lazy_array(X)
    _check_dtype(np.dtype(X.dtype))
    ndim = len(X.shape)
    if ndim not in (2, 3, 4):
        raise ValueError(
            f"Expected images as a 2-D (n, F), 3-D (n, H, W) or 4-D (n, C, H, W) array, got a "
            f"{ndim}-D array of shape {tuple(X.shape)}. Reshape your data, e.g. X[None] for a "
            "single image or X.reshape(1, -1) for a single flat sample."
        )
    n = X.shape[0]
    if n == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
            f"required by {estimator_name}."
        )
    if ndim == 2:
        n_features = X.shape[1]
        if n_features == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 "
                f"is required by {estimator_name}."
            )
        if refuse_flat is not None:
            raise ValueError(refuse_flat)
        if expected_shape is not None and image_shape is None:
            if n_features != math.prod(expected_shape):
                raise ValueError(
                    f"X has {n_features} features, but {estimator_name} is expecting "
                    f"{math.prod(expected_shape)} features as input (images of shape "
                    f"{tuple(expected_shape)})."
                )
            shape = tuple(expected_shape)
        else:
            if expected_shape is not None and n_features != math.prod(expected_shape):
                raise ValueError(
                    f"X has {n_features} features, but {estimator_name} is expecting "
                    f"{math.prod(expected_shape)} features as input (images of shape "
                    f"{tuple(expected_shape)})."
                )
            shape = _resolve_image_shape(n_features, image_shape)
        layout = "flat"
    elif ndim == 3:
        shape, layout = (1, *X.shape[1:]), "hw"
    else:
        shape, layout = tuple(X.shape[1:]), "chw"
    if ndim > 2 and image_shape is not None:
        _check_declared_shape(shape, image_shape, estimator_name)
    if min(shape) < 1:
        raise ValueError(f"images must have at least one pixel, got image shape {shape}")
    if expected_shape is not None and tuple(shape) != tuple(expected_shape):
        fitted = tuple(expected_shape)
        what = "channels" if shape[0] != fitted[0] else "pixels"
        raise ValueError(
            f"X has images of shape {tuple(shape)} but {estimator_name} was fitted on images of "
            f"shape {fitted} (a mismatch in {what}); X has {math.prod(shape)} features, but "
            f"{estimator_name} is expecting {math.prod(fitted)} features as input. "
            "Pass images with the same bands and size as in fit."
        )
    checked = False
    if not lazy or scan_lazy:
        bad, overflow = _scan_finite(X, lazy)
        if overflow:
            raise ValueError(
                "X holds float64 values beyond the float32 range (|x| > 3.4e38), which would "
                "become inf in training; rescale the images first (e.g. with ImageScaler)."
            )
        if len(bad) and nan_policy == "raise":
            raise ValueError(non_finite_message(len(bad), bad[:5], can_fill=can_fill))
        checked = not len(bad)
    batches = ImageBatches(
        X, layout, shape, nan_policy=nan_policy, checked=checked, can_fill=can_fill
    )
    return batches


# Inputs further than this many training standard deviations from the training mean are
# refused by transform: they overflow float32 inside a network (3.4e38) and come out as inf.
MAX_STANDARDISED = 1e18


def check_cutouts(X, *, expected_shape, estimator_name, measures):
    """:func:`check_images` for estimators that measure around the image centre: flat
    ``(n, F)`` rows are refused, since only an image layout says where the centre is.

    ``measures`` completes the error message: "<estimator_name> <measures>, so it needs
    images as (n, H, W) or (n, C, H, W) arrays, not flat (n, F) rows."

    Examples
    --------
    >>> import numpy as np
    >>> check_cutouts(np.zeros((2, 8, 8)), expected_shape=None, estimator_name="E",
    ...               measures="measures fluxes").image_shape
    (1, 8, 8)
    """
    # these estimators have no nan_policy: their NaN error does not suggest one
    return check_images(
        X,
        expected_shape=expected_shape,
        estimator_name=estimator_name,
        can_fill=False,
        refuse_flat=(
            f"{estimator_name} {measures}, so it needs images as (n, H, W) or (n, C, H, W) "
            "arrays, not flat (n, F) rows."
        ),
    )


def check_input_scale(data, mean, std, estimator_name="estimator"):
    """Refuse in-memory images far outside the scale of the training images.

    Parameters
    ----------
    data : ImageBatches
        Checked images; lazily loaded ones are not scanned.
    mean, std : ndarray of shape (C,)
        Per-channel statistics of the training images.
    estimator_name : str

    Raises
    ------
    ValueError
        Some pixel lies more than :data:`MAX_STANDARDISED` standard deviations from the
        training mean: the network would return inf or NaN for it.
    """
    if is_lazy_array(data.X) or not isinstance(data.X, np.ndarray):
        return
    images = data.X.reshape(len(data.X), *data.image_shape)
    if images.dtype.kind in "biu":
        # integers cannot be far enough from the mean unless the training images were constant
        info = np.iinfo(images.dtype) if images.dtype.kind != "b" else np.iinfo(np.uint8)
        if max(-float(info.min), float(info.max)) < MAX_STANDARDISED * float(np.min(std)):
            return
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels
        low = np.nanmin(images, axis=(0, 2, 3)).astype(np.float64)
        high = np.nanmax(images, axis=(0, 2, 3)).astype(np.float64)
        # +-inf pixels are nan_policy's to fill or refuse, not a sign of another scale: the
        # channels that hold some are measured on their finite pixels (a copy, but rare)
        for channel in np.flatnonzero(np.isinf(low) | np.isinf(high)):
            pixels = images[:, channel]
            pixels = pixels[np.isfinite(pixels)]
            low[channel], high[channel] = (
                (pixels.min(), pixels.max()) if pixels.size else (np.nan, np.nan)
            )
    spread = np.fmax(np.abs(low - mean), np.abs(high - mean)) / np.asarray(std, np.float64)
    if np.isnan(spread).all():
        return  # no finite pixel: nothing to compare
    if np.nanmax(spread) > MAX_STANDARDISED:
        channel = int(np.nanargmax(spread))
        raise ValueError(
            f"X holds values up to {max(abs(low[channel]), abs(high[channel])):.3g} in channel "
            f"{channel}, {np.nanmax(spread):.2g} standard deviations from the mean of the images "
            f"{estimator_name} was fitted on: the network would return inf or NaN. Scale the "
            "images as the training images were (e.g. with the same ImageScaler)."
        )


# projections that lay out neighbourhoods, which an embedding without spread does not have
_NEIGHBOUR_PROJECTIONS = {"tsne": "t-SNE", "umap": "UMAP"}


def check_spread(Z, method):
    """Refuse an embedding whose rows are all equal before a neighbour-based projection.

    t-SNE started from PCA divides by the spread of the first component and crashes the
    process on NaN when there is none; UMAP finds no neighbourhoods. A collapsed model gives
    such embeddings, so say so.

    ``method`` is the projection's name; other projections than ``"tsne"`` and ``"umap"``
    are not checked.

    Examples
    --------
    >>> check_spread(np.eye(3), "tsne")
    >>> check_spread(np.ones((4, 2)), "pca")
    >>> check_spread(np.ones((4, 2)), "tsne")
    Traceback (most recent call last):
    ...
    ValueError: every row of the embedding is the same, so t-SNE has nothing to lay out; ...
    """
    name = _NEIGHBOUR_PROJECTIONS.get(method) if isinstance(method, str) else None
    if name is None:
        return
    Z = np.asarray(Z)
    if len(Z) and not (Z != Z[:1]).any():
        raise ValueError(
            f"every row of the embedding is the same, so {name} has nothing to lay out; "
            "the model may have collapsed (check its training loss), or use method='pca'"
        )


def check_positive_int(value, name, minimum=1):
    """Raise a clear error unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_widths(widths, name="widths"):
    """Raise a clear error unless ``widths`` is a non-empty sequence of positive ints.

    Examples
    --------
    >>> check_widths((8, 16))
    (8, 16)
    """
    valid = (
        not isinstance(widths, str | bytes)
        and hasattr(widths, "__len__")
        and len(widths) > 0
        and all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool | np.bool_) and w >= 1
            for w in widths
        )
    )
    if not valid:
        raise ValueError(
            f"{name} must be a non-empty tuple of positive ints, e.g. (16, 32, 64); got {widths!r}"
        )
    return tuple(int(w) for w in widths)
