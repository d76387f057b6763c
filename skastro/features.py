"""Classic (non-deep) image features as scikit-learn transformers.

These are the baselines every learned embedding should be compared with, and the "other things
tried" of the protoplanetary-disk write-up: elliptical radial intensity profiles, Fourier-domain
Laplacian filtering, difference of Gaussians and threshold + connected-components blob finding,
the residual of an axisymmetric model (the structure a smooth disk cannot have) and soft
thresholding at a multiple of each image's noise (what is left is significant structure).
They are plain NumPy / SciPy / scikit-image code (no torch), work on whole batches of images at
once, and drop into a :class:`~sklearn.pipeline.Pipeline` in front of any clusterer::

    Pipeline([("radial", RadialProfile()), ("km", KMeans(2))])
    Pipeline([("dog", DifferenceOfGaussians()), ("blobs", BlobCounter()), ("km", KMeans(2))])

Images are given as DESIGN.md says (``(n, H, W)``, ``(n, C, H, W)``, or flat ``(n, F)`` with
``image_shape=(C, H, W)`` or ``F`` a perfect square). :class:`RadialProfile` and
:class:`BlobCounter` return feature vectors; :class:`DifferenceOfGaussians`,
:class:`FourierLaplacian`, :class:`AxisymmetricResidual` and :class:`SoftThreshold` return
filtered images in the layout they were given, so they chain into :class:`BlobCounter` or an
autoencoder. Every output is ``float32``.
"""

import math
import numbers

import numpy as np
from scipy import fft, ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skastro._validation import NAN_POLICIES, check_images

__all__ = [
    "AxisymmetricResidual",
    "BlobCounter",
    "DifferenceOfGaussians",
    "FourierLaplacian",
    "RadialProfile",
    "SoftThreshold",
]

# Pixels (float32 values) read and processed per batch: bounds memory for memmaps and big cubes
# while keeping batches large enough for NumPy's vectorised loops to dominate the run time.
_BATCH_VALUES = 4 * 2**20
# Pixels enter the moments of RadialProfile's ellipse only this many robust standard deviations
# of the sky above it: a 3-sigma detection keeps ~0.1% of pure-noise pixels.
_DETECTION_SIGMA = 3.0
# Smallest axis ratio an ellipse may have: a line-like object has a near-zero minor moment, and
# dividing by it would stretch the elliptical radius without bound.
_MIN_AXIS_RATIO = 0.05


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Validation, batching and feature names shared by the transformers of this module.

    Subclasses implement ``_transform_batch(images)`` on native float32 ``(b, C, H, W)``
    batches and either set ``_image_output = True`` (output is an image, by default of the
    input's shape - see ``_output_image_shape`` - returned in the input's layout) or implement
    ``_n_features_out()``.
    """

    _image_output = False

    def _check_params(self):
        """Check parameters that the constraints cannot express; subclasses extend it."""

    def _check_image_shape(self, image_shape):
        """Check parameters against the ``(C, H, W)`` of the training images, before any
        fitted attribute is set (a failed fit leaves the transformer unfitted)."""

    def _fit_images(self, image_shape):
        """Set fitted attributes that depend on the image shape; subclasses extend it."""

    def _output_image_shape(self, image_shape):
        """``(C, H, W)`` of the output images of an ``_image_output`` transformer."""
        return image_shape

    def _check_images(self, X, *, reset):
        data = check_images(
            X,
            image_shape=self.image_shape,
            nan_policy=self.nan_policy,
            expected_shape=None if reset else self.image_shape_,
            estimator_name=type(self).__name__,
        )
        # Feature names (pandas columns) exist only for flat input; sklearn's own helper keeps
        # them and warns on a mismatch. Called after check_images so a failed fit leaves no
        # fitted-looking attribute behind.
        if len(data.X.shape) == 2:
            validate_data(self, X, reset=reset, skip_check_array=True)
        elif reset and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if self.nan_policy == "fill":
            fitted = None if reset else getattr(self, "fill_values_", None)
            # nan_policy may have been switched to "fill" after a fit with "raise".
            data.fill_values = self._channel_means(data) if fitted is None else fitted
        return data

    @staticmethod
    def _channel_means(data):
        """Per-channel mean of the finite training pixels: the value NaN/inf pixels get."""
        n_channels = data.image_shape[0]
        sums = np.zeros(n_channels)
        counts = np.zeros(n_channels)
        for start, stop in data.iter_slices(_batch_size(data.image_shape)):
            raw = np.asarray(data.X[start:stop]).reshape(stop - start, n_channels, -1)
            raw = raw.astype(np.float64)
            finite = np.isfinite(raw)
            sums += np.where(finite, raw, 0.0).sum(axis=(0, 2))
            counts += finite.sum(axis=(0, 2))
        return (sums / np.maximum(counts, 1)).astype(np.float32)

    def fit(self, X, y=None):
        """Check the images and record their shape.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Training images. Flat rows need ``image_shape`` unless ``F`` is a perfect square.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._validate_params()
        self._check_params()
        data = self._check_images(X, reset=True)
        self._check_image_shape(data.image_shape)
        self.image_shape_ = data.image_shape
        self.n_features_in_ = math.prod(data.image_shape)
        if self.nan_policy == "fill":
            self.fill_values_ = data.fill_values
        elif hasattr(self, "fill_values_"):  # left over from an earlier fit with "fill"
            del self.fill_values_
        self._fit_images(data.image_shape)
        return self

    def transform(self, X):
        """Compute the features (or filtered images) of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Images with the shape seen in :meth:`fit`.

        Returns
        -------
        Xt : ndarray, float32
            See the class description for the shape.
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        n = len(data)
        if self._image_output:
            out = np.empty((n, *self._output_image_shape(data.image_shape)), dtype=np.float32)
        else:
            out = np.empty((n, self._n_features_out()), dtype=np.float32)
        for start, stop in data.iter_slices(_batch_size(data.image_shape)):
            out[start:stop] = self._transform_batch(data.read(slice(start, stop)))
        return data.to_layout(out) if self._image_output else out

    def _input_names(self, input_features):
        """Validate ``input_features`` as sklearn does and return the input feature names."""
        check_is_fitted(self)
        names_in = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if names_in is not None:
                return names_in
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        input_features = np.asarray(input_features, dtype=object)
        if names_in is not None and not np.array_equal(input_features, names_in):
            raise ValueError("input_features is not equal to feature_names_in_")
        if len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features should have length equal to number of features "
                f"({self.n_features_in_}), got {len(input_features)}"
            )
        return input_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # Every output is float32 (DESIGN.md): float64 input is not preserved.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _batch_size(image_shape):
    return max(1, _BATCH_VALUES // math.prod(image_shape))


def _pixel_grid(height, width):
    """Row and column coordinates of pixel centres, as float64 ``(H, 1)`` and ``(1, W)``."""
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    return rows, cols


class RadialProfile(_ImageTransformer):
    """Elliptical radial intensity profile of each image.

    The centre, axis ratio and orientation of each object are measured from the first and
    second moments of its intensity above the sky, on the band sum: the sky level and noise
    are the median and the robust standard deviation (1.4826 times the median absolute
    deviation) of the image border, and only pixels more than 3 noise levels above the sky
    count. Pixels are then binned by their *elliptical* radius
    ``sqrt(u**2 + (v / q)**2)``, where ``u`` and ``v`` are the offsets along the major and
    minor axes and ``q`` the axis ratio, so an inclined ring or disk (a circle seen at an angle)
    falls into one bin: the radius is measured along the major axis. Each feature is the mean
    intensity of one channel in one annulus; annuli with no pixel centre (tiny images, many
    bins, or ``max_radius`` beyond the image) take the value interpolated linearly from the
    nearest non-empty annuli (beyond the last one, its value).

    Parameters
    ----------
    n_bins : int, default=16
        Number of annuli, of equal width, from the centre to ``max_radius``.
    elliptical : bool, default=True
        Use elliptical annuli fitted to each image; ``False`` uses circles around the same
        centre (no correction for inclination).
    normalize : bool, default=True
        Divide each profile by its total (the sum of its absolute values), so clusters follow
        the shape of the profile rather than the brightness of the object.
    max_radius : float or None, default=None
        Outer radius of the last annulus, in pixels along the major axis. ``None`` means half
        the smaller side of the image. Pixels beyond it are ignored.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` for flat input whose row length is not a perfect square; one entry
        may be -1 and is inferred, as in :func:`numpy.reshape`.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them with the per-channel
        mean of the training images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in :meth:`fit`.
    max_radius_ : float
        The outer radius used.
    bin_edges_ : ndarray of shape (n_bins + 1,)
        Radii of the annulus edges, in pixels.
    fill_values_ : ndarray of shape (C,)
        Values given to NaN/inf pixels (only with ``nan_policy="fill"``).

    See Also
    --------
    BlobCounter : counts and sizes of bright blobs.

    Notes
    -----
    The output has shape ``(n, n_bins * C)``, channel-major: the profile of channel 0, then
    channel 1, and so on (see :meth:`get_feature_names_out`).

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.features import RadialProfile
    >>> rows, cols = np.mgrid[:32, :32] - 15.5
    >>> ring = np.exp(-((np.hypot(rows, cols) - 9.0) ** 2) / 2)  # a ring of radius 9 px
    >>> profile = RadialProfile(n_bins=8).fit_transform(ring[None])
    >>> profile.shape
    (1, 8)
    >>> int(profile.argmax())  # bins are 2 px wide: radius 9 is in bin 4
    4
    """

    _parameter_constraints = {
        "n_bins": [Interval(numbers.Integral, 1, None, closed="left")],
        "elliptical": ["boolean"],
        "normalize": ["boolean"],
        "max_radius": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }

    def __init__(
        self,
        n_bins=16,
        *,
        elliptical=True,
        normalize=True,
        max_radius=None,
        image_shape=None,
        nan_policy="raise",
    ):
        self.n_bins = n_bins
        self.elliptical = elliptical
        self.normalize = normalize
        self.max_radius = max_radius
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _fit_images(self, image_shape):
        _, height, width = image_shape
        self.max_radius_ = (
            float(self.max_radius) if self.max_radius is not None else min(height, width) / 2
        )
        self.bin_edges_ = np.linspace(0.0, self.max_radius_, self.n_bins + 1)

    def _n_features_out(self):
        return self.n_bins * self.image_shape_[0]

    def measure_ellipse(self, X):
        """Centre, axis ratio and orientation of the object in each image.

        These are the ellipses the annuli follow (with ``elliptical=True``).

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Images with the shape seen in :meth:`fit`.

        Returns
        -------
        ellipses : ndarray of shape (n, 4), float64
            Columns: row and column of the centre (pixels, from the first pixel's centre),
            axis ratio ``b / a`` in ``[0.05, 1]``, and the major axis angle in degrees in
            ``(-90, 90]``, measured from the +column axis towards the +row axis. An image with
            no positive signal gets the image centre, ratio 1 and angle 0.
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        out = np.empty((len(data), 4))
        for start, stop in data.iter_slices(_batch_size(data.image_shape)):
            images = data.read(slice(start, stop)).astype(np.float64)
            row, col, ratio, angle = _image_ellipses(images.sum(axis=1))
            out[start:stop] = np.stack([row, col, ratio, np.degrees(angle)], axis=1)
        return out

    def _transform_batch(self, images):
        images = images.astype(np.float64)
        n_images, n_channels = images.shape[:2]
        radius = _object_radii(images, self.elliptical)

        n_bins = self.n_bins
        annulus = np.floor(radius * (n_bins / self.max_radius_)).astype(np.int64)
        counts, sums = _annulus_sums(annulus, n_bins, images)
        with np.errstate(invalid="ignore", divide="ignore"):
            profiles = sums / counts[:, None, :]
        _fill_empty_annuli(profiles, counts, self.bin_edges_)

        if self.normalize:
            total = np.abs(profiles).sum(axis=2, keepdims=True)
            profiles = np.divide(profiles, total, out=np.zeros_like(profiles), where=total > 0)
        return profiles.reshape(n_images, n_channels * n_bins)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``radial_ch{c}_bin{k}``.

        ``c`` is the channel and ``k`` the annulus, from the centre outwards; annulus ``k``
        spans radii ``bin_edges_[k]`` to ``bin_edges_[k + 1]``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the input features and otherwise ignored.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``n_bins * C`` names, channel-major.
        """
        self._input_names(input_features)
        return np.asarray(
            [
                f"radial_ch{channel}_bin{k}"
                for channel in range(self.image_shape_[0])
                for k in range(self.n_bins)
            ],
            dtype=object,
        )


def _object_radii(images, elliptical):
    """Radius of every pixel centre from the object of its image, ``(b, H, W)`` float64.

    The object's centre, axis ratio and orientation are its moment ellipse on the band sum of
    the ``(b, C, H, W)`` batch; the radius is measured along the major axis, so a circle seen
    at an angle has one radius. ``elliptical=False`` uses circles around the same centre.
    """
    _, _, height, width = images.shape
    row, col, ratio, angle = _image_ellipses(images.sum(axis=1))
    if not elliptical:
        ratio = np.ones_like(ratio)
    rows, cols = _pixel_grid(height, width)
    d_row = rows[None] - row[:, None, None]
    d_col = cols[None] - col[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    along = d_col * cos + d_row * sin
    across = (d_row * cos - d_col * sin) / ratio[:, None, None]
    return np.sqrt(along**2 + across**2)


def _annulus_sums(annulus, n_bins, values):
    """Pixel counts ``(b, n_bins)`` and value sums ``(b, K, n_bins)`` of each image's annuli.

    ``annulus`` ``(b, H, W)`` holds each pixel's annulus index and ``values`` ``(b, K, H, W)``
    the values summed per annulus; pixels in annulus ``n_bins`` or beyond are left out. One
    bincount per value channel covers the whole batch: image i's annulus k is bin
    ``i * n_bins + k``.
    """
    n_images, n_values = values.shape[:2]
    inside = annulus < n_bins
    flat_bin = (annulus + n_bins * np.arange(n_images)[:, None, None])[inside]
    size = n_images * n_bins
    counts = np.bincount(flat_bin, minlength=size).reshape(n_images, n_bins)
    sums = np.stack(
        [
            np.bincount(flat_bin, weights=values[:, k][inside], minlength=size)
            for k in range(n_values)
        ]
    )
    return counts, sums.reshape(n_values, n_images, n_bins).transpose(1, 0, 2)


def _robust_sky(flat):
    """Median and robust standard deviation (1.4826 times the median absolute deviation) of
    each row of ``flat``: the sky level and noise of an image, little moved by its sources.
    NaN entries (pixels a caller left out) are ignored."""
    # np.median is several times faster than np.nanmedian, and NaNs appear only where a caller
    # has left pixels out (the images themselves are finite after validation)
    median = np.nanmedian if np.isnan(flat).any() else np.median
    sky = median(flat, axis=1)
    return sky, 1.4826 * median(np.abs(flat - sky[:, None]), axis=1)


def _border_sky(border):
    """Sky level and robust noise (1.4826 MAD) of each image's border pixels, ``(b,)`` each.

    A value repeated exactly over more than a quarter of a border, but not all of it, is a
    fill, not sky (the zero corners of a rotated or edge-of-field cutout, masked pixels given
    one value) and is left out: it would otherwise shrink the noise towards zero, let noise
    pixels into the moments and pull the ellipse towards a circle. Sky noise in floats does
    not repeat; in integer images whose noise is below one count it can, and the sky then
    comes from the other values.
    """
    border = border.copy()
    for values in border:
        levels, counts = np.unique(values, return_counts=True)
        if len(values) // 4 < counts.max() < len(values):
            values[values == levels[counts.argmax()]] = np.nan
    return _robust_sky(border)


def _image_ellipses(band_sum):
    """Moment ellipse of the signal above the sky in each ``(H, W)`` image of a batch.

    Returns centre row, centre column, axis ratio and major-axis angle (radians), each ``(b,)``.
    """
    _, height, width = band_sum.shape
    # Only pixels clearly above the sky (median and MAD of the image border) carry weight:
    # sky level and noise cover the whole image and would otherwise outweigh the object,
    # pulling every centre to the middle and every axis ratio towards 1.
    border = np.concatenate(
        [band_sum[:, 0, :], band_sum[:, -1, :], band_sum[:, :, 0], band_sum[:, :, -1]], axis=1
    )
    sky, noise = _border_sky(border)
    signal = band_sum - sky[:, None, None]
    weight = np.where(signal > _DETECTION_SIGMA * noise[:, None, None], signal, 0.0)
    rows, cols = _pixel_grid(height, width)
    total = weight.sum(axis=(1, 2))
    has_signal = total > 0
    safe_total = np.where(has_signal, total, 1.0)
    row = np.where(has_signal, (weight * rows).sum(axis=(1, 2)) / safe_total, (height - 1) / 2)
    col = np.where(has_signal, (weight * cols).sum(axis=(1, 2)) / safe_total, (width - 1) / 2)
    d_row = rows[None] - row[:, None, None]
    d_col = cols[None] - col[:, None, None]
    m_rr = (weight * d_row**2).sum(axis=(1, 2)) / safe_total
    m_cc = (weight * d_col**2).sum(axis=(1, 2)) / safe_total
    m_rc = (weight * d_row * d_col).sum(axis=(1, 2)) / safe_total
    half_trace = (m_rr + m_cc) / 2
    spread = np.hypot((m_cc - m_rr) / 2, m_rc)
    major, minor = half_trace + spread, np.clip(half_trace - spread, 0.0, None)
    valid = has_signal & (major > 0)
    ratio = np.sqrt(np.divide(minor, major, out=np.ones_like(major), where=valid))
    ratio = np.clip(ratio, _MIN_AXIS_RATIO, 1.0)
    angle = np.where(valid, 0.5 * np.arctan2(2 * m_rc, m_cc - m_rr), 0.0)
    # Report the angle in (-pi/2, pi/2]: the same axis either way.
    angle = np.where(angle <= -np.pi / 2, angle + np.pi, angle)
    return row, col, ratio, angle


def _fill_empty_annuli(profiles, counts, bin_edges):
    """Linearly interpolate, in place, the annuli that hold no pixel centre."""
    empty = counts == 0
    if not empty.any():
        return
    centres = (bin_edges[:-1] + bin_edges[1:]) / 2
    for i in np.flatnonzero(empty.any(axis=1)):
        filled = ~empty[i]
        for channel in range(profiles.shape[1]):
            if filled.any():
                profiles[i, channel, empty[i]] = np.interp(
                    centres[empty[i]], centres[filled], profiles[i, channel, filled]
                )
            else:  # max_radius smaller than the distance to every pixel centre
                profiles[i, channel] = 0.0


class DifferenceOfGaussians(_ImageTransformer):
    """Difference-of-Gaussians band-pass filter: blobs and edges stand out, sky and gradients go.

    Each channel of each image is smoothed with Gaussians of standard deviation ``sigma_low``
    and ``sigma_high`` pixels, and the second is subtracted from the first. Structure much
    larger than ``sigma_high`` (sky, smooth gradients, flat disks) cancels, and structure much
    smaller than ``sigma_low`` (pixel noise) is smoothed away. For a Gaussian blob of unit peak,
    the response at its centre is largest when the blob's standard deviation is
    ``sqrt(sigma_low * sigma_high)``. With ``sigma_high / sigma_low`` about 1.6, the filter
    approximates a (negated, scale-normalised) Laplacian of Gaussian.

    This is an image-to-image transformer: the output has the shape and layout of the input
    (``(n, H, W)`` in, ``(n, H, W)`` out; flat in, flat out), so it chains into
    :class:`BlobCounter` (give both the same ``image_shape`` for flat non-square input).
    Image borders are handled by reflection, so a constant image maps to exactly zero.

    Parameters
    ----------
    sigma_low : float, default=1.0
        Width (standard deviation, pixels) of the narrow Gaussian.
    sigma_high : float, default=3.0
        Width of the wide Gaussian; must be larger than ``sigma_low``.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` for flat input whose row length is not a perfect square; one entry
        may be -1 and is inferred, as in :func:`numpy.reshape`.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them with the per-channel
        mean of the training images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in :meth:`fit`.
    fill_values_ : ndarray of shape (C,)
        Values given to NaN/inf pixels (only with ``nan_policy="fill"``).

    See Also
    --------
    FourierLaplacian : Laplacian (of Gaussian) filtering in the Fourier domain.
    BlobCounter : counts the blobs this filter highlights.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.features import DifferenceOfGaussians
    >>> images = np.zeros((2, 32, 32))
    >>> images[1, 16, 16] = 1.0  # a point source; image 0 is blank
    >>> filtered = DifferenceOfGaussians().fit_transform(images)
    >>> filtered.shape, filtered.dtype
    ((2, 32, 32), dtype('float32'))
    >>> bool(np.all(filtered[0] == 0)), bool(filtered[1, 16, 16] > 0)
    (True, True)
    """

    _parameter_constraints = {
        "sigma_low": [Interval(numbers.Real, 0, None, closed="neither")],
        "sigma_high": [Interval(numbers.Real, 0, None, closed="neither")],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }

    _image_output = True

    def __init__(self, sigma_low=1.0, sigma_high=3.0, *, image_shape=None, nan_policy="raise"):
        self.sigma_low = sigma_low
        self.sigma_high = sigma_high
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _check_params(self):
        if not self.sigma_low < self.sigma_high:
            raise ValueError(
                f"sigma_low must be smaller than sigma_high, got sigma_low={self.sigma_low} "
                f"and sigma_high={self.sigma_high}"
            )

    def _transform_batch(self, images):
        images = images.astype(np.float64)
        # sigma 0 on the batch and channel axes: each channel of each image is filtered alone.
        narrow = ndimage.gaussian_filter(images, (0, 0, self.sigma_low, self.sigma_low))
        wide = ndimage.gaussian_filter(images, (0, 0, self.sigma_high, self.sigma_high))
        return narrow - wide

    def get_feature_names_out(self, input_features=None):
        """Names of the output pixels: ``dog_`` followed by the input feature name.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per pixel value, in the flat order of the input.
        """
        return np.asarray([f"dog_{name}" for name in self._input_names(input_features)], object)


class FourierLaplacian(_ImageTransformer):
    """Laplacian filtering in the Fourier domain, optionally with a Gaussian low-pass (LoG).

    Each channel's spectrum is multiplied by ``-(kx**2 + ky**2)`` (the Laplacian, with
    wavenumbers in radians per pixel) and, when ``sigma`` is given, by the Gaussian low-pass
    ``exp(-sigma**2 * (kx**2 + ky**2) / 2)``, which tames the amplified pixel noise and makes
    the filter a Laplacian of Gaussian of width ``sigma``. Peaks and blobs give strong
    negative responses at their centres, edges give zero crossings, and constant or linearly
    varying regions give zero.

    The spectrum is that of the image's mirror-symmetric extension (a type-II discrete cosine
    transform) rather than of the image itself: a plain FFT treats the image as periodic, so
    opposite edges would meet in a spurious step whose Laplacian rings across the whole image.
    The result is in units of intensity per pixel squared (the Laplacian of ``x**2`` is 2).

    This is an image-to-image transformer: the output has the shape and layout of the input
    (``(n, H, W)`` in, ``(n, H, W)`` out; flat in, flat out).

    Parameters
    ----------
    sigma : float or None, default=None
        Width (standard deviation, pixels) of the Gaussian low-pass; ``None`` or 0 for the
        bare Laplacian, which amplifies noise at the highest frequencies.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` for flat input whose row length is not a perfect square; one entry
        may be -1 and is inferred, as in :func:`numpy.reshape`.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them with the per-channel
        mean of the training images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in :meth:`fit`.
    fill_values_ : ndarray of shape (C,)
        Values given to NaN/inf pixels (only with ``nan_policy="fill"``).

    See Also
    --------
    DifferenceOfGaussians : the usual real-space approximation of a Laplacian of Gaussian.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.features import FourierLaplacian
    >>> rows, cols = np.mgrid[:32, :32]
    >>> bowl = (cols - 15.5) ** 2 / 2.0  # Laplacian 1 everywhere
    >>> filtered = FourierLaplacian().fit_transform(bowl[None])
    >>> round(float(filtered[0, 16, 16]), 2)
    1.0
    """

    _parameter_constraints = {
        "sigma": [Interval(numbers.Real, 0, None, closed="left"), None],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }

    _image_output = True

    def __init__(self, sigma=None, *, image_shape=None, nan_policy="raise"):
        self.sigma = sigma
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _transform_batch(self, images):
        _, _, height, width = images.shape
        # Cosine k of an N-point DCT-II has wavenumber pi * k / N radians per pixel.
        k_row = np.pi * np.arange(height) / height
        k_col = np.pi * np.arange(width) / width
        k_squared = k_row[:, None] ** 2 + k_col[None, :] ** 2
        response = -k_squared
        if self.sigma:
            response = response * np.exp(-0.5 * self.sigma**2 * k_squared)
        spectrum = fft.dctn(images.astype(np.float64), type=2, axes=(-2, -1), norm="ortho")
        return fft.idctn(spectrum * response, type=2, axes=(-2, -1), norm="ortho")

    def get_feature_names_out(self, input_features=None):
        """Names of the output pixels: ``laplacian_`` followed by the input feature name.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per pixel value, in the flat order of the input.
        """
        names = self._input_names(input_features)
        return np.asarray([f"laplacian_{name}" for name in names], dtype=object)


class AxisymmetricResidual(_ImageTransformer):
    """Subtract each object's axisymmetric model: what is left is its non-axisymmetric structure.

    A disk or galaxy seen at any inclination and orientation is modelled as its own elliptical
    radial profile: the ellipse is measured as :class:`RadialProfile` measures it (moments of
    the band sum above the sky), pixels are binned by elliptical radius into annuli
    ``bin_width`` pixels wide, and each channel's model at a pixel is the mean intensity of
    the annuli, interpolated linearly at the pixel's radius (each annulus is placed at the
    mean radius of its pixels). The output is the image minus this model.

    Everything that depends only on radius cancels: size, inclination, brightness profile,
    rings and gaps, and an unresolved core. Spiral arms, kinks, point sources, lopsidedness
    and noise remain. This is how substructure in protoplanetary disks is usually shown (the
    residual of an azimuthally averaged profile), and it hands a learned embedding only the
    structure that an axisymmetric disk cannot have::

        Pipeline([("residual", AxisymmetricResidual()),
                  ("embed", EquivariantAutoencoder()),
                  ("cluster", KMeans(2))])

    This is an image-to-image transformer: the output has the shape and layout of the input.
    Nothing is learnt from the training images beyond their shape (and, with
    ``nan_policy="fill"``, the fill values); the model is measured on each image itself.

    Parameters
    ----------
    bin_width : float, default=0.5
        Width of the annuli in pixels, along the major axis. Narrow annuli follow sharp rings;
        the innermost ones hold few pixels, so the model there is close to the image.
    elliptical : bool, default=True
        Use each object's ellipse; ``False`` uses circles around the same centre (for objects
        known to be face-on).
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` for flat input whose row length is not a perfect square; one entry
        may be -1 and is inferred, as in :func:`numpy.reshape`.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them with the per-channel
        mean of the training images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in :meth:`fit`.
    fill_values_ : ndarray of shape (C,)
        Values given to NaN/inf pixels (only with ``nan_policy="fill"``).

    See Also
    --------
    RadialProfile : the profiles themselves, as features.
    skastro.EquivariantAutoencoder : a rotation- and flip-invariant embedding of the residuals.

    Notes
    -----
    The model of each channel is ``X - transform(X)``. All bands share one ellipse (measured
    on their sum), and each band has its own profile.

    The moment ellipse is not exact: for a disk whose bright part is compact, or with a bright
    ring, its axis ratio can be off by a few per cent, and a sharp ring (about a pixel wide)
    then leaves a residual of a tenth of its brightness, symmetric about the centre.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.features import AxisymmetricResidual
    >>> rows, cols = np.mgrid[:48, :48] - 23.5
    >>> radius = np.hypot(cols, rows / 0.6)  # a disk inclined to an axis ratio of 0.6
    >>> disk = np.exp(-radius / 6.0) + 0.5 * np.exp(-0.125 * (radius - 14.0) ** 2)  # a ring
    >>> planet = np.exp(-0.5 * ((rows - 4.0) ** 2 + (cols + 12.0) ** 2))  # and a point source
    >>> residual = AxisymmetricResidual().fit_transform(np.stack([disk, disk + 0.3 * planet]))
    >>> residual.shape, residual.dtype
    ((2, 48, 48), dtype('float32'))
    >>> bool(np.abs(residual[0]).max() < 0.05)  # the disk and its ring cancel (peak 0.85)
    True
    >>> [int(i) for i in np.unravel_index(residual[1].argmax(), (48, 48))]  # the source stays
    [28, 12]
    """

    _parameter_constraints = {
        "bin_width": [Interval(numbers.Real, 0, None, closed="neither")],
        "elliptical": ["boolean"],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }

    _image_output = True

    def __init__(self, bin_width=0.5, *, elliptical=True, image_shape=None, nan_policy="raise"):
        self.bin_width = bin_width
        self.elliptical = elliptical
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _transform_batch(self, images):
        images = images.astype(np.float64)
        n_images, n_channels = images.shape[:2]
        radius = _object_radii(images, self.elliptical)
        annulus = np.floor(radius / self.bin_width).astype(np.int64)
        # the radius rides along as a first "channel": its sums give each annulus' mean radius
        counts, sums = _annulus_sums(
            annulus, int(annulus.max()) + 1, np.concatenate([radius[:, None], images], axis=1)
        )
        residual = np.empty_like(images)
        for i in range(n_images):
            # Annuli with no pixel centre are skipped: interpolation bridges them. The
            # annuli and their mean radii are the same for every channel.
            filled = counts[i] > 0
            image_sums = sums[i][:, filled] / counts[i, filled]
            centres, profiles = image_sums[0], image_sums[1:]
            for channel in range(n_channels):
                model = np.interp(radius[i], centres, profiles[channel])
                residual[i, channel] = images[i, channel] - model
        return residual

    def get_feature_names_out(self, input_features=None):
        """Names of the output pixels: ``residual_`` followed by the input feature name.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per pixel value, in the flat order of the input.
        """
        names = self._input_names(input_features)
        return np.asarray([f"residual_{name}" for name in names], dtype=object)


class SoftThreshold(_ImageTransformer):
    """Keep only what stands ``n_sigma`` above each image's noise: soft thresholding.

    Each channel of each image has its sky level (median) and noise (1.4826 times the median
    absolute deviation) measured on itself; pixels within ``n_sigma`` noise of the sky become
    zero, and the others are moved towards it by ``n_sigma`` noise, keeping their sign::

        out = sign(x - median) * max(|x - median| - n_sigma * noise, 0)

    This is the soft-thresholding (shrinkage) rule of wavelet denoising applied to pixels, and
    it makes the output continuous in the input. What is left is significant structure, bright
    or dark: point sources, arms, the edges of gaps. Put it between
    :class:`AxisymmetricResidual` and an autoencoder: the residuals of smooth disks are almost
    all noise, and a reconstruction loss on them is spent on noise instead of on the faint
    compact sources (on ``make_disks`` residuals, a linear probe on the equivariant
    autoencoder's latent found 82 % of the point sources after it, against 49 % without; see
    ``benchmarks/results/disks.md``)::

        Pipeline([("residual", AxisymmetricResidual()),
                  ("threshold", SoftThreshold(3.0)),
                  ("embed", EquivariantAutoencoder()),
                  ("cluster", KMeans(2))])

    This is an image-to-image transformer: the output has the shape and layout of the input.
    Nothing is learnt from the training images beyond their shape (and, with
    ``nan_policy="fill"``, the fill values); the noise is measured on each image itself, so
    an image whose pixels are mostly one value (MAD zero) is passed on minus its median.
    The rule is the same for every rotation of an image: it keeps rotation equivariance.

    The noise is measured on the whole image, so pixels that hold no data lower it: the
    zero-filled corners of a cutout rotated by 45 degrees (a sixth of its pixels) make the
    threshold let more noise through. Crop such cutouts, or fill the corners with sky.

    Parameters
    ----------
    n_sigma : float, default=3.0
        Threshold in units of each image's noise; 0 only subtracts the median.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` for flat input whose row length is not a perfect square; one entry
        may be -1 and is inferred, as in :func:`numpy.reshape`.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them with the per-channel
        mean of the training images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in :meth:`fit`.
    fill_values_ : ndarray of shape (C,)
        Values given to NaN/inf pixels (only with ``nan_policy="fill"``).

    See Also
    --------
    AxisymmetricResidual : the residuals this is meant to clean.
    BlobCounter : a hard threshold at ``("sigma", k)``, then connected components.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.features import SoftThreshold
    >>> image = np.random.default_rng(0).normal(size=(1, 32, 32))  # unit noise
    >>> image[0, 10, 10] = 9.0  # a bright pixel
    >>> image[0, 20, 5] = -7.0  # and a dark one
    >>> out = SoftThreshold(n_sigma=5.0).fit_transform(image)
    >>> out.shape, out.dtype
    ((1, 32, 32), dtype('float32'))
    >>> [(int(r), int(c)) for r, c in zip(*np.nonzero(out[0]))]  # the noise is gone
    [(10, 10), (20, 5)]
    >>> # each moved towards the sky (-0.07) by 5 times the noise (0.94)
    >>> [round(float(out[0, 10, 10]), 2), round(float(out[0, 20, 5]), 2)]
    [4.35, -2.21]
    """

    _parameter_constraints = {
        "n_sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }

    _image_output = True

    def __init__(self, n_sigma=3.0, *, image_shape=None, nan_policy="raise"):
        self.n_sigma = n_sigma
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _transform_batch(self, images):
        images = images.astype(np.float64)
        flat = images.reshape(images.shape[0] * images.shape[1], -1)
        median, sigma = _robust_sky(flat)
        deviation = flat - median[:, None]
        shrunk = np.maximum(np.abs(deviation) - self.n_sigma * sigma[:, None], 0.0)
        return (np.sign(deviation) * shrunk).reshape(images.shape)

    def get_feature_names_out(self, input_features=None):
        """Names of the output pixels: ``thresholded_`` followed by the input feature name.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per pixel value, in the flat order of the input.
        """
        names = self._input_names(input_features)
        return np.asarray([f"thresholded_{name}" for name in names], dtype=object)


# Output columns of BlobCounter, in order (documented in its get_feature_names_out).
_BLOB_FEATURES = (
    "n_blobs",
    "total_area",
    "mean_area",
    "max_area",
    "mean_distance",
    "max_distance",
)


class BlobCounter(_ImageTransformer):
    """Count and measure the bright blobs of each image: threshold + connected components.

    Each image's band sum is thresholded, its connected foreground regions (8-connected, as
    :func:`skimage.measure.label` with full connectivity) are labelled, regions smaller than
    ``min_area`` pixels are dropped, and the rest are summarised in six numbers (see
    :meth:`get_feature_names_out`). The whole batch is labelled in one
    :func:`scipy.ndimage.label` call whose structuring element never links two images.

    Applied to the output of :class:`DifferenceOfGaussians` (positive on blobs) it finds
    compact structures such as planets or clumps in disks and galaxies; the Laplacian of
    :class:`FourierLaplacian` is negative on blobs, so negate it first (e.g. with
    ``FunctionTransformer(np.negative)``). Images with no blob get a row of zeros.

    Parameters
    ----------
    threshold : "otsu", float or ("sigma", k), default="otsu"
        Foreground is the pixels strictly above it. ``"otsu"``: Otsu's threshold of each
        image (it always splits an image into two classes, so on pure noise it finds noise
        blobs; prefer ``("sigma", k)`` when some images may be empty). ``("sigma", k)``: the
        image's median plus ``k`` robust standard deviations (1.4826 times the median
        absolute deviation), i.e. a detection at ``k`` sigma above the sky. A float: the same
        absolute threshold for every image, in the units of the band sum.
    min_area : int, default=2
        Smallest blob kept, in pixels; single hot pixels are not blobs.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` for flat input whose row length is not a perfect square; one entry
        may be -1 and is inferred, as in :func:`numpy.reshape`.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them with the per-channel
        mean of the training images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in :meth:`fit`.
    fill_values_ : ndarray of shape (C,)
        Values given to NaN/inf pixels (only with ``nan_policy="fill"``).

    See Also
    --------
    DifferenceOfGaussians : band-pass filter that isolates blobs before counting.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.features import BlobCounter
    >>> image = np.zeros((1, 32, 32))
    >>> image[0, 4:7, 4:7] = 1.0  # a 3x3 blob
    >>> image[0, 20:24, 10:12] = 1.0  # a 4x2 blob
    >>> counter = BlobCounter(threshold=0.5).fit(image)
    >>> counter.transform(image)[0, :4].tolist()  # n_blobs, total_area, mean_area, max_area
    [2.0, 17.0, 8.5, 9.0]
    """

    _parameter_constraints = {
        "threshold": [
            StrOptions({"otsu"}),
            Interval(numbers.Real, None, None, closed="neither"),
            tuple,
        ],
        "min_area": [Interval(numbers.Integral, 1, None, closed="left")],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }

    def __init__(self, threshold="otsu", *, min_area=2, image_shape=None, nan_policy="raise"):
        self.threshold = threshold
        self.min_area = min_area
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _check_params(self):
        if isinstance(self.threshold, tuple):
            valid = (
                len(self.threshold) == 2
                and self.threshold[0] == "sigma"
                and isinstance(self.threshold[1], numbers.Real)
                and np.isfinite(self.threshold[1])
            )
            if not valid:
                raise ValueError(
                    f"threshold as a tuple must be ('sigma', k) with k a finite number, "
                    f"got {self.threshold!r}"
                )
        elif not isinstance(self.threshold, str) and not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold!r}")

    def _n_features_out(self):
        return len(_BLOB_FEATURES)

    def _thresholds(self, band_sum):
        """Per-image threshold on the band sum, ``(b,)``."""
        if isinstance(self.threshold, str):  # "otsu"
            # Imported here: skimage.filters pulls in much of scikit-image.
            from skimage.filters import threshold_otsu

            return np.array([threshold_otsu(image) for image in band_sum])
        if isinstance(self.threshold, tuple):
            median, sigma = _robust_sky(band_sum.reshape(len(band_sum), -1))
            return median + self.threshold[1] * sigma
        return np.full(len(band_sum), float(self.threshold))

    def _transform_batch(self, images):
        band_sum = images.astype(np.float64).sum(axis=1)
        n_images, height, width = band_sum.shape
        foreground = band_sum > self._thresholds(band_sum)[:, None, None]
        structure = np.zeros((3, 3, 3), dtype=bool)
        structure[1] = True  # 8-connected within an image, never across images
        labels, n_labels = ndimage.label(foreground, structure=structure)
        features = np.zeros((n_images, len(_BLOB_FEATURES)))
        if n_labels == 0:
            return features

        labels = labels.ravel()
        rows, cols = np.divmod(np.arange(height * width), width)
        area = np.bincount(labels, minlength=n_labels + 1)[1:].astype(np.float64)
        sum_row = np.bincount(labels, weights=np.tile(rows, n_images), minlength=n_labels + 1)
        sum_col = np.bincount(labels, weights=np.tile(cols, n_images), minlength=n_labels + 1)
        owner = np.zeros(n_labels + 1, dtype=np.int64)
        owner[labels] = np.repeat(np.arange(n_images), height * width)
        owner = owner[1:]
        distance = np.hypot(
            sum_row[1:] / area - (height - 1) / 2, sum_col[1:] / area - (width - 1) / 2
        )

        keep = area >= self.min_area
        owner, area, distance = owner[keep], area[keep], distance[keep]
        n_blobs = np.bincount(owner, minlength=n_images)
        total_area = np.bincount(owner, weights=area, minlength=n_images)
        max_area = np.zeros(n_images)
        np.maximum.at(max_area, owner, area)
        max_distance = np.zeros(n_images)
        np.maximum.at(max_distance, owner, distance)
        weighted_distance = np.bincount(owner, weights=area * distance, minlength=n_images)
        has_blob = n_blobs > 0
        features[:, 0] = n_blobs
        features[:, 1] = total_area
        features[:, 2] = np.divide(total_area, n_blobs, out=np.zeros(n_images), where=has_blob)
        features[:, 3] = max_area
        features[:, 4] = np.divide(
            weighted_distance, total_area, out=np.zeros(n_images), where=has_blob
        )
        features[:, 5] = max_distance
        return features

    def get_feature_names_out(self, input_features=None):
        """Names of the six output features.

        ``n_blobs``: number of blobs; ``total_area``: their summed area (pixels);
        ``mean_area`` and ``max_area``: mean and largest blob area (pixels);
        ``mean_distance``: area-weighted mean distance of the blob centroids from the image
        centre (pixels); ``max_distance``: distance of the farthest blob centroid (pixels).
        All are 0 for an image without blobs.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the input features and otherwise ignored.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        self._input_names(input_features)
        return np.asarray(_BLOB_FEATURES, dtype=object)
