"""PeakScaler: centred cutouts scaled to their central object's peak, for morphology.

Models that learn without labels find the strongest variation in their input. Across a sample
of cutouts that is brightness (objects span many magnitudes), so a star-galaxy split learnt on
fluxes or sky-noise units follows magnitude, not shape. Dividing every image by the peak of its
central object removes brightness, and an asinh stretch keeps the faint outer profile, where
extended and point-like objects differ, visible next to the core.
"""

import numbers

import numpy as np
from scipy.stats import median_abs_deviation
from sklearn.utils._param_validation import Interval, StrOptions

from skastro._constraints import refuse_bools
from skastro._validation import NAN_POLICIES
from skastro.features._base import _ImageTransformer

__all__ = ["PeakScaler"]


class PeakScaler(_ImageTransformer):
    """Divide each image by its central object's peak and stretch it with asinh.

    ``Xt = arcsinh(X / (softening * peak))``, where ``peak`` is the maximum of the reference
    band (``band``; the sum of all bands when None) within the central ``peak_box`` x
    ``peak_box`` pixels. All bands of an image are divided by the same peak, so its colours are
    kept while its brightness is removed: what remains to tell images apart is the shape and
    colour of their objects, what morphological (e.g. star-galaxy) classification looks at.
    ``softening`` sets where the stretch turns from linear to logarithmic, as a fraction of the
    peak: smaller values lift the faint outskirts more.

    The peak is never taken below the robust standard deviation of the reference band (1.4826
    times the median absolute deviation of its pixels), so an image with no central source
    comes out as noise of order one instead of being blown up.

    With ``crop``, only the central ``crop`` x ``crop`` pixels are returned (the peak is found
    first). A small crop around the object leaves out most neighbours and sky, whose noise
    would otherwise dominate a reconstruction loss.

    Nothing is learnt: ``fit`` only checks the images and records their shape. Output is
    float32 in the input's layout: ``(n, C, crop, crop)``, ``(n, crop, crop)`` or flat.

    Parameters
    ----------
    softening : float > 0, default=0.1
        Stretch softening as a fraction of the peak.
    band : int or None, default=None
        Channel whose central maximum is the peak (e.g. 2 for SDSS r in ugriz); None sums
        the channels.
    peak_box : int, default=4
        Side in pixels of the central box searched for the peak. Keep it small: the object
        is assumed centred, and a bigger box can pick up a neighbour.
    crop : int or None, default=None
        Side in pixels of the central square returned; None keeps the whole image.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of flat ``(n, F)`` input; one entry may be -1.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them by the per-channel
        mean of the images seen in ``fit``.

    Attributes
    ----------
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in ``fit``.
    n_features_in_ : int
        ``C * H * W``.
    fill_values_ : ndarray of shape (C,)
        Per-channel means that replace NaN/inf pixels (``nan_policy="fill"`` only).

    See Also
    --------
    skastro.preprocessing.ImageScaler : percentile clipping and stretches per image or channel.
    skastro.CondVAEClassifier : finds a star-galaxy split in peak-scaled cutouts.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.preprocessing import PeakScaler
    >>> yy, xx = np.mgrid[:16, :16] - 7.5
    >>> star = np.exp(-(yy**2 + xx**2) / 2.0)
    >>> X = np.stack([star, 100.0 * star])  # the same shape, 100 times brighter
    >>> Xt = PeakScaler(crop=8).fit_transform(X)
    >>> Xt.shape, bool(np.allclose(Xt[0], Xt[1]))
    ((2, 8, 8), True)
    """

    _image_output = True

    _parameter_constraints = {
        "softening": [Interval(numbers.Real, 0, None, closed="neither")],
        "band": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "peak_box": [Interval(numbers.Integral, 1, None, closed="left")],
        "crop": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
    }
    _parameter_constraints = refuse_bools(_parameter_constraints)

    def __init__(
        self,
        softening=0.1,
        *,
        band=None,
        peak_box=4,
        crop=None,
        image_shape=None,
        nan_policy="raise",
    ):
        self.softening = softening
        self.band = band
        self.peak_box = peak_box
        self.crop = crop
        self.image_shape = image_shape
        self.nan_policy = nan_policy

    def _check_image_shape(self, image_shape):
        n_channels, height, width = image_shape
        if self.band is not None and self.band >= n_channels:
            raise ValueError(
                f"band={self.band} but the images have {n_channels} channel(s); pass a "
                f"channel index below {n_channels}, or band=None to use the sum of all channels"
            )
        for name, size in (("peak_box", self.peak_box), ("crop", self.crop)):
            if size is not None and size > min(height, width):
                raise ValueError(
                    f"{name}={size} is larger than the {height} x {width} images; pass at "
                    f"most {min(height, width)}"
                )

    def _output_image_shape(self, image_shape):
        if self.crop is None:
            return image_shape
        return (image_shape[0], self.crop, self.crop)

    def _transform_batch(self, images):
        images = images.astype(np.float64)
        reference = images.sum(axis=1) if self.band is None else images[:, self.band]
        box = _central_slices(reference.shape[1:], self.peak_box)
        peak = reference[(slice(None), *box)].max(axis=(1, 2))
        noise = median_abs_deviation(reference, axis=(1, 2), scale="normal")
        # a constant image has no noise either: 1 keeps the division finite
        floor = np.where(noise > 0, noise, 1.0)
        scale = self.softening * np.maximum(peak, floor)
        if self.crop is not None:
            rows, cols = _central_slices(images.shape[2:], self.crop)
            images = images[:, :, rows, cols]
        return np.arcsinh(images / scale[:, None, None, None]).astype(np.float32)


def _central_slices(shape, size):
    """Row and column slices of the central ``size`` x ``size`` square of an ``(H, W)`` grid."""
    return tuple(slice((n - size) // 2, (n - size) // 2 + size) for n in shape)
