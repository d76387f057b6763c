"""Threshold + connected components: counts and sizes of blobs in each image."""

import numbers

import numpy as np
from scipy import ndimage
from sklearn.utils._param_validation import Interval, StrOptions

from skastro._constraints import refuse_bools
from skastro._validation import NAN_POLICIES
from skastro.features._base import _ImageTransformer
from skastro.features._sky import _robust_sky

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
    _parameter_constraints = refuse_bools(_parameter_constraints)

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
