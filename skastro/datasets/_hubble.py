"""Real galaxy cutouts from the Hubble Deep Field image shipped with scikit-image."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._common import check_int

_SOURCE = "skimage.data.hubble_deep_field"

_DESCR = """\
Hubble Deep Field cutouts
-------------------------

Square cutouts centred on the sources detected in the Hubble Deep Field colour image shipped
with scikit-image (``skimage.data.hubble_deep_field()``, 872 x 1000 pixels, a JPEG of a real
HST/WFPC2 field; credit: NASA, R. Williams and the HDF team). Nothing is downloaded.

Detection: the grey image (mean of R, G, B) is smoothed with a Gaussian of 1.5 px, pixels
above median + ``threshold`` x (robust sigma) are grouped into 8-connected components, and
components of at least ``min_area`` pixels whose cutout fits inside the field are kept,
brightest first. Each cutout is centred on the component's intensity-weighted centroid.
Values are the JPEG's 8-bit values / 255 (no background subtraction: the sky is ~0.05).
Neighbouring sources may share pixels between cutouts.
"""


def load_hubble_cutouts(size=64, *, n_max=None, color=False, threshold=5.0, min_area=30):
    """Cut real galaxy images out of the Hubble Deep Field shipped with scikit-image.

    Parameters
    ----------
    size : int, default=64
        Height and width of the cutouts in pixels.
    n_max : int, optional
        Keep at most this many cutouts (the brightest sources). All by default (several
        hundred at ``size=64``).
    color : bool, default=False
        If True, return the three RGB channels instead of one grey channel.
    threshold : float, default=5.0
        Detection threshold in robust standard deviations of the smoothed sky.
    min_area : int, default=30
        Smallest source, in pixels above the threshold.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, 1, size, size) - (n, 3, size, size) with ``color`` - float32 in
        [0, 1]; ``metadata``, a DataFrame with one row per cutout (``row``, ``col``: centre in
        the field; ``area`` in pixels; ``flux``: summed grey value of the source);
        ``filenames`` (the scikit-image data set, once per cutout); ``ids``; ``DESCR``.

    Examples
    --------
    >>> from skastro.datasets import load_hubble_cutouts
    >>> data = load_hubble_cutouts(32, n_max=5)
    >>> data.images.shape, data.images.dtype
    ((5, 1, 32, 32), dtype('float32'))
    """
    from scipy import ndimage
    from skimage import data as skimage_data
    from skimage import measure

    size = check_int(size, "size", minimum=4)
    min_area = check_int(min_area, "min_area")
    if n_max is not None:
        n_max = check_int(n_max, "n_max")

    rgb = skimage_data.hubble_deep_field().astype(np.float32) / 255.0
    grey = rgb.mean(axis=2)
    height, width = grey.shape
    if size > min(height, width):
        raise ValueError(f"size must be at most {min(height, width)}; got {size}")

    smooth = ndimage.gaussian_filter(grey, 1.5)
    sky = np.median(smooth)
    sigma = 1.4826 * np.median(np.abs(smooth - sky))  # MAD: robust to the sources themselves
    labels = measure.label(smooth > sky + threshold * sigma, connectivity=2)
    half = size // 2
    rows = []
    for region in measure.regionprops(labels, intensity_image=grey):
        if region.area < min_area:
            continue
        row, col = (int(np.rint(c)) for c in region.centroid_weighted)
        top, left = row - half, col - half
        if top < 0 or left < 0 or top + size > height or left + size > width:
            continue  # cut by the field's edge: padding would add artificial borders
        rows.append((row, col, int(region.area), float(region.image_intensity.sum())))
    metadata = pd.DataFrame(rows, columns=["row", "col", "area", "flux"])
    metadata = metadata.sort_values("flux", ascending=False, kind="stable").reset_index(drop=True)
    if n_max is not None:
        metadata = metadata.iloc[:n_max]

    source = rgb.transpose(2, 0, 1) if color else grey[None]
    images = np.empty((len(metadata), source.shape[0], size, size), dtype=np.float32)
    for i, (row, col) in enumerate(zip(metadata["row"], metadata["col"])):
        images[i] = source[:, row - half : row - half + size, col - half : col - half + size]
    return Bunch(
        images=images,
        metadata=metadata,
        filenames=[_SOURCE] * len(metadata),
        ids=[f"hdf_r{r:03d}_c{c:03d}" for r, c in zip(metadata["row"], metadata["col"])],
        DESCR=_DESCR,
    )
