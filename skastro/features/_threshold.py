"""Soft thresholding at a multiple of each image's own noise."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from skastro._constraints import refuse_bools
from skastro._validation import NAN_POLICIES
from skastro.features._base import _ImageTransformer
from skastro.features._sky import _robust_sky


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
    _parameter_constraints = refuse_bools(_parameter_constraints)

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
