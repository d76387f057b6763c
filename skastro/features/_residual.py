"""The residual of an axisymmetric model: structure a smooth disk cannot have."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from skastro._constraints import refuse_bools
from skastro._validation import NAN_POLICIES
from skastro.features._base import _ImageTransformer
from skastro.features._profiles import _annulus_sums, _object_radii


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
    _parameter_constraints = refuse_bools(_parameter_constraints)

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
