"""Sky level and noise of images, robust to the sources on them."""

import numpy as np


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
