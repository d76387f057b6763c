"""Scaling of astronomical images to [0, 1] with the stretches astronomers use."""

import math
import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import FLOAT_DTYPES, check_is_fitted, validate_data

from skastro._constraints import refuse_bools
from skastro.distributed._arrays import accepts_dask

__all__ = ["ImageScaler"]


# Normalisations are Python floats (math.*): under numpy 2's promotion rules (NEP 50) a numpy
# float64 scalar would turn float32 images into float64.
def _stretch(u, stretch, softening):
    softening = float(softening)
    if stretch == "linear":
        return u
    if stretch == "sqrt":
        return np.sqrt(u)
    if stretch == "asinh":
        return np.arcsinh(u / softening) / math.asinh(1.0 / softening)
    return np.log1p(u / softening) / math.log1p(1.0 / softening)


def _unstretch(y, stretch, softening):
    softening = float(softening)
    if stretch == "linear":
        return y
    if stretch == "sqrt":
        return y * y
    if stretch == "asinh":
        return softening * np.sinh(y * math.asinh(1.0 / softening))
    return softening * np.expm1(y * math.log1p(1.0 / softening))


def _limits(values, percentile):
    """Lower and upper limits along the last axis, NaN ignored."""
    # np.nan* reductions along an axis are much slower than the plain ones: use them only
    # when there is a NaN to ignore. All-NaN images (fully masked) give NaN limits quietly.
    has_nan = np.isnan(values).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if percentile is None:
            low, high = (np.nanmin, np.nanmax) if has_nan else (np.min, np.max)
            return low(values, axis=-1), high(values, axis=-1)
        quantiles = (np.nanpercentile if has_nan else np.percentile)(
            values, list(percentile), axis=-1
        )
    return quantiles[0], quantiles[1]


def _span(lower, upper, dtype):
    """``upper - lower`` and the float dtype to scale in.

    The span of finite float32 limits can exceed float32's range (limits of -3e38 and 3e38
    span 6e38): it would become inf and every pixel NaN, so such images are scaled in float64.
    A constant image (or channel) has no range: its span is 1, mapping it to 0 instead of
    dividing by 0.
    """
    span = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    span = np.where(span > 0, span, 1.0)
    finite = span[np.isfinite(span)]
    work = dtype
    if finite.size and float(finite.max()) > float(np.finfo(dtype).max):
        work = np.dtype(np.float64)
    return span.astype(work), work


class ImageScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip images at percentiles and stretch them to [0, 1].

    Each channel is clipped to ``[lower, upper]`` (by default its 0.5th and 99.5th
    percentiles), mapped linearly to ``u`` in [0, 1], then stretched:

    - ``"linear"``: ``u``;
    - ``"sqrt"``: ``sqrt(u)``;
    - ``"asinh"``: ``asinh(u / a) / asinh(1 / a)``, linear for faint pixels and logarithmic for
      bright ones (Lupton et al. 1999), the usual display of galaxies;
    - ``"log"``: ``log(1 + u / a) / log(1 + 1 / a)``;

    where ``a`` is ``softening``. Images keep the layout they come in: ``(n, H, W)``,
    ``(n, C, H, W)`` or flat ``(n, F)``. NaN pixels (masked) stay NaN and are ignored when the
    limits are computed.

    Parameters
    ----------
    stretch : {"asinh", "log", "linear", "sqrt"}, default="asinh"
        The stretch applied after clipping.
    percentile : tuple of two floats in [0, 100] or None, default=(0.5, 99.5)
        Percentiles giving the clip limits. ``None`` takes the minimum and maximum, so nothing
        is clipped in the data the limits come from.
    per_image : bool, default=True
        ``True``: limits of each image and channel, computed at transform time (nothing is
        learnt). ``False``: one pair of limits per channel learnt by ``fit`` over all images,
        so brightness stays comparable between images; values outside them are clipped.
    softening : float > 0, default=0.1
        ``a`` above, relative to the clip range: smaller values brighten faint structure more.
        Used by ``"asinh"`` and ``"log"`` only.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of flat ``(n, F)`` input, so that its channels get their own limits.
        Flat input without it is one channel.

    Attributes
    ----------
    lower_, upper_ : ndarray of shape (n_channels,)
        Learnt clip limits per channel; only with ``per_image=False``.
    n_features_in_ : int
        Number of values per image seen in ``fit`` (``C * H * W``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame given to ``fit``.

    See Also
    --------
    skastro.plotting.plot_image : displays an image through this scaler.

    Notes
    -----
    ``inverse_transform`` needs the clip limits. With ``per_image=True`` they depend on each
    original image and cannot be recovered from the scaled data (and ``transform`` may not
    store them), so get them with :meth:`image_limits` before scaling and pass them back.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).gamma(1.0, size=(4, 2, 8, 8))
    >>> scaler = ImageScaler(stretch="asinh")
    >>> Xt = scaler.fit_transform(X)
    >>> Xt.shape, float(Xt.min()), float(Xt.max())
    ((4, 2, 8, 8), 0.0, 1.0)
    >>> limits = scaler.image_limits(X)
    >>> X_back = scaler.inverse_transform(Xt, limits=limits)
    >>> bool(np.allclose(X_back, np.clip(X, *(lim[..., None, None] for lim in limits))))
    True
    """

    _parameter_constraints = {
        "stretch": [StrOptions({"asinh", "log", "linear", "sqrt"})],
        "percentile": ["array-like", None],
        "per_image": ["boolean"],
        "softening": [Interval(Real, 0, None, closed="neither")],
        "image_shape": ["array-like", None],
    }
    _parameter_constraints = refuse_bools(_parameter_constraints)

    def __init__(
        self,
        stretch="asinh",
        *,
        percentile=(0.5, 99.5),
        per_image=True,
        softening=0.1,
        image_shape=None,
    ):
        self.stretch = stretch
        self.percentile = percentile
        self.per_image = per_image
        self.softening = softening
        self.image_shape = image_shape

    def fit(self, X, y=None):
        """Check the images and, with ``per_image=False``, learn the clip limits per channel.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Images; any real dtype and byte order.
        y : None
            Ignored.

        Returns
        -------
        self : ImageScaler
            The fitted scaler.
        """
        self._validate_params()
        if self.percentile is not None:
            limits = np.ravel(self.percentile).astype(np.float64)
            if limits.size != 2 or not 0 <= limits[0] < limits[1] <= 100:
                raise ValueError(
                    "percentile must be None or two increasing values in [0, 100], got "
                    f"{self.percentile!r}"
                )
        X = self._validate_images(X, reset=True)
        if not self.per_image:
            # one row per channel, all images' pixels of that channel along it
            per_channel = np.moveaxis(X, 1, 0).reshape(X.shape[1], -1)
            lower, upper = _limits(per_channel, self._percentile())
            empty = np.flatnonzero(~(np.isfinite(lower) & np.isfinite(upper)))
            if empty.size:
                # limits of NaN would turn every pixel of that channel into NaN in transform
                raise ValueError(
                    f"channel {int(empty[0])} of X has no finite pixel, so ImageScaler("
                    "per_image=False) cannot learn its clip limits; fit on images whose "
                    "channels hold finite values, or use per_image=True."
                )
            self.lower_ = np.asarray(lower, dtype=np.float64)
            self.upper_ = np.asarray(upper, dtype=np.float64)
        return self

    @accepts_dask
    def transform(self, X):
        """Clip and stretch images to [0, 1].

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Images with as many values per image as in ``fit``.

        Returns
        -------
        Xt : ndarray of the same shape
            Scaled images; float32 and float16 input keep their dtype, other input gives float64
            (as scikit-learn's scalers do). NaN stays NaN.
        """
        check_is_fitted(self)
        X, layout = self._validate_images(X, reset=False, return_layout=True)
        lower, upper = self._limits_of(X)
        span, work = _span(lower, upper, X.dtype)
        u = (X.astype(work, copy=False) - lower.astype(work)[..., None]) / span[..., None]
        np.clip(u, 0.0, 1.0, out=u)
        Xt = _stretch(u.astype(X.dtype, copy=False), self.stretch, self.softening)
        # float32 rounding of the stretch's normalisation can overshoot 1 by an ulp
        np.clip(Xt, 0.0, 1.0, out=Xt)
        return Xt.reshape(layout)

    def inverse_transform(self, X, *, limits=None):
        """Undo the stretch and the linear mapping: exact for values inside the clip limits.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Scaled images.
        limits : tuple (lower, upper) or None, default=None
            Clip limits of shape ``(n, C)`` (as returned by :meth:`image_limits`) or ``(C,)``.
            Required with ``per_image=True``; defaults to the learnt limits otherwise.

        Returns
        -------
        X_original : ndarray of the same shape
            Images in the original units; pixels that were clipped come back at the limit.
        """
        check_is_fitted(self)
        X, layout = self._validate_images(X, reset=False, return_layout=True)
        n, n_channels = X.shape[:2]
        if limits is None:
            if self.per_image:
                raise ValueError(
                    "with per_image=True the clip limits of each image cannot be recovered from "
                    "the scaled images: pass limits=scaler.image_limits(X_original)"
                )
            lower, upper = self.lower_[None], self.upper_[None]
        else:
            lower, upper = (np.asarray(limit, dtype=np.float64) for limit in limits)
            if lower.shape != upper.shape or lower.shape not in ((n, n_channels), (n_channels,)):
                raise ValueError(
                    f"limits must have shape ({n}, {n_channels}) or ({n_channels},), got "
                    f"{lower.shape} and {upper.shape}"
                )
            lower, upper = np.atleast_2d(lower), np.atleast_2d(upper)
        span, work = _span(lower, upper, X.dtype)
        u = _unstretch(X, self.stretch, self.softening).astype(work, copy=False)
        X_original = lower.astype(work)[..., None] + u * span[..., None]
        return X_original.astype(X.dtype, copy=False).reshape(layout)

    def image_limits(self, X):
        """Clip limits that :meth:`transform` uses for each image and channel.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Unscaled images.

        Returns
        -------
        lower, upper : ndarray of shape (n, C)
            Per-image limits with ``per_image=True``, the learnt limits repeated otherwise;
            pass them to :meth:`inverse_transform` as ``limits``.
        """
        check_is_fitted(self)
        X = self._validate_images(X, reset=False)
        lower, upper = self._limits_of(X)
        shape = X.shape[:2]
        return (
            np.broadcast_to(lower, shape).astype(np.float64),
            np.broadcast_to(upper, shape).astype(np.float64),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ----------------------------------------------------------------------------------------

    def _percentile(self):
        return None if self.percentile is None else tuple(np.ravel(self.percentile))

    def _limits_of(self, X):
        """(lower, upper) of shape (n, C) or (1, C) for images viewed as (n, C, P)."""
        if self.per_image:
            return _limits(X, self._percentile())
        if len(self.lower_) != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} channels, but ImageScaler was fitted with {len(self.lower_)}"
            )
        return self.lower_[None], self.upper_[None]

    def _validate_images(self, X, *, reset, return_layout=False):
        """Check X and view it as (n, C, P): images, channels, pixels per channel."""
        if getattr(getattr(X, "dtype", None), "kind", None) == "c":
            raise ValueError("Complex data not supported: pass np.abs(X) or X.real as images")
        if isinstance(X, np.ndarray) and not X.dtype.isnative:
            # FITS data are big-endian; native order keeps float32 float32 below
            X = X.astype(X.dtype.newbyteorder("="))
        # sparse matrices, DataFrames and array-likes go through sklearn's 2-D validation
        # as they are; only n-D images are flattened first (validate_data is 2-D only)
        ndim = np.asarray(X).ndim if isinstance(X, list | tuple) else getattr(X, "ndim", 2)
        # scikit-learn's quick finiteness test sums X: finite values near the float32 limit
        # overflow that sum (a harmless RuntimeWarning) before the exact test clears them
        with np.errstate(over="ignore", invalid="ignore"):
            return self._validate_layout(X, ndim, reset, return_layout)

    def _validate_layout(self, X, ndim, reset, return_layout):
        if sp.issparse(X) or hasattr(X, "columns") or ndim <= 2:
            flat = validate_data(
                self, X, reset=reset, dtype=FLOAT_DTYPES, ensure_all_finite="allow-nan"
            )
            layout = flat.shape
            n_channels = self._flat_channels(flat.shape[1])
        else:
            images = np.asarray(X)
            if images.ndim > 4:
                raise ValueError(
                    f"expected images of shape (n, H, W) or (n, C, H, W), got {images.shape}"
                )
            flat = validate_data(
                self,
                images.reshape(len(images), -1),
                reset=reset,
                dtype=FLOAT_DTYPES,
                ensure_all_finite="allow-nan",
            )
            layout = images.shape
            n_channels = layout[1] if images.ndim == 4 else 1
        X = flat.reshape(len(flat), n_channels, -1)
        return (X, layout) if return_layout else X

    def _flat_channels(self, n_features):
        if self.image_shape is None:
            return 1
        image_shape = tuple(int(size) for size in self.image_shape)
        if math.prod(image_shape) != n_features:
            raise ValueError(
                f"image_shape {image_shape} does not hold the {n_features} features of X"
            )
        return image_shape[0] if len(image_shape) == 3 else 1
