"""Band-pass filters that return images: difference of Gaussians, Fourier-Laplacian."""

import numbers

import numpy as np
from scipy import fft, ndimage
from sklearn.utils._param_validation import Interval, StrOptions

from skastro._constraints import refuse_bools
from skastro._validation import NAN_POLICIES
from skastro.features._base import _ImageTransformer


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
    _parameter_constraints = refuse_bools(_parameter_constraints)

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
    _parameter_constraints = refuse_bools(_parameter_constraints)

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
