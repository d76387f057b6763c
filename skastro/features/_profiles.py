"""Elliptical radial intensity profiles, and the moment ellipse they are measured in."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skastro._constraints import refuse_bools
from skastro._validation import NAN_POLICIES
from skastro.features._base import _batch_size, _ImageTransformer, _pixel_grid
from skastro.features._sky import _border_sky

# Pixels enter the moments of RadialProfile's ellipse only this many robust standard deviations
# of the sky above it: a 3-sigma detection keeps ~0.1% of pure-noise pixels.
_DETECTION_SIGMA = 3.0
# Smallest axis ratio an ellipse may have: a line-like object has a near-zero minor moment, and
# dividing by it would stretch the elliptical radius without bound.
_MIN_AXIS_RATIO = 0.05


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
    _parameter_constraints = refuse_bools(_parameter_constraints)

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
