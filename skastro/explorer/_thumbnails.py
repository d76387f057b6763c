"""PNG thumbnails rendered from in-memory image arrays.

Astronomical cutouts have a huge dynamic range (a faint disk next to a saturated core), so a
linear map to 8 bits shows either the core or the background, never both. The default asinh
stretch is linear near the background and logarithmic in the bright parts, as in the SDSS
colour composites (Lupton et al. 2004).
"""

import base64
import io
from functools import lru_cache

import numpy as np

STRETCHES = ("asinh", "log", "sqrt", "linear")

# Percentiles that set black and white: robust to a few hot pixels and to masked borders.
_LOW_PERCENTILE = 1.0
_HIGH_PERCENTILE = 99.5
# asinh softening as a fraction of the white level: smaller shows fainter structure.
_ASINH_SOFTENING = 0.1
_LOG_GAIN = 1000.0


def default_rgb_bands(n_bands):
    """Bands shown as red, green, blue in the ``"rgb"`` composite, or None if fewer than 3.

    Three bands are taken in order (PNG/JPEG cutouts are RGB already). Five bands are taken to
    be SDSS u, g, r, i, z, and shown as i, r, g: the usual SDSS composite.
    """
    if n_bands < 3:
        return None
    if n_bands == 5:
        return (3, 2, 1)
    return (0, 1, 2)


def _stretch(x, stretch):
    """Map values already scaled so that 0 is black and 1 is white onto [0, 1]."""
    x = np.clip(x, 0.0, None)
    if stretch == "asinh":
        y = np.arcsinh(x / _ASINH_SOFTENING) / np.arcsinh(1.0 / _ASINH_SOFTENING)
    elif stretch == "log":
        y = np.log1p(_LOG_GAIN * x) / np.log1p(_LOG_GAIN)
    elif stretch == "sqrt":
        y = np.sqrt(x)
    elif stretch == "linear":
        y = x
    else:
        raise ValueError(f"stretch must be one of {STRETCHES}, got {stretch!r}")
    return np.clip(y, 0.0, 1.0)


def scale_image(image, stretch="asinh"):
    """Stretch a ``(C, H, W)`` image to floats in [0, 1] for display.

    Each band's background (low percentile) is subtracted, then all bands share one white
    level so that an RGB composite keeps its colours. Non-finite pixels (masked pixels) are
    shown black.

    Parameters
    ----------
    image : ndarray of shape (C, H, W)
        Any real dtype and byte order.
    stretch : {"asinh", "log", "sqrt", "linear"}, default="asinh"

    Returns
    -------
    ndarray of shape (C, H, W), float32, values in [0, 1]
    """
    image = np.asarray(image, dtype=np.float32)
    flat = image.reshape(len(image), -1)
    if np.isfinite(flat).all():
        # np.percentile is several times faster than nanpercentile: a click renders a dozen.
        low = np.percentile(flat, _LOW_PERCENTILE, axis=1)[:, None, None]
        shifted = image - low
        white = np.percentile(shifted, _HIGH_PERCENTILE)
    else:
        image = np.where(np.isfinite(image), image, np.nan)
        with np.errstate(all="ignore"):
            low = np.nanpercentile(image.reshape(len(image), -1), _LOW_PERCENTILE, axis=1)
            low = np.nan_to_num(low)[:, None, None]
            shifted = image - low
            white = np.nanpercentile(shifted, _HIGH_PERCENTILE)
    if not np.isfinite(white) or white <= 0:
        # A flat (or all-masked) image: show it mid-grey rather than divide by zero.
        return np.where(np.isfinite(image), 0.5, 0.0).astype(np.float32)
    scaled = _stretch(np.nan_to_num(shifted / white, nan=0.0), stretch)
    return scaled.astype(np.float32)


def render_png(image, *, stretch="asinh", band=None, size=64, rgb_bands=None):
    """Render one image as PNG bytes.

    Parameters
    ----------
    image : ndarray of shape (C, H, W) or (H, W)
    stretch : {"asinh", "log", "sqrt", "linear"}, default="asinh"
    band : int, "rgb" or None, default=None
        The band shown in grey, or ``"rgb"`` for a colour composite of ``rgb_bands``.
        None shows the composite when there are three bands or more, else band 0.
    size : int, default=64
        Length of the longer side in pixels. Small cutouts are enlarged without smoothing
        so that each detector pixel stays visible.
    rgb_bands : tuple of 3 int, default=None
        Bands shown as red, green and blue; see :func:`default_rgb_bands`.

    Returns
    -------
    bytes
        A PNG file (8-bit grey or RGB).
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"expected an image of shape (C, H, W) or (H, W), got {image.shape}")
    n_bands = image.shape[0]
    rgb_bands = tuple(rgb_bands) if rgb_bands is not None else default_rgb_bands(n_bands)
    if band is None:
        band = "rgb" if rgb_bands is not None else 0
    if band == "rgb":
        if rgb_bands is None:
            raise ValueError(f"an RGB composite needs 3 bands or more, the image has {n_bands}")
        pixels = scale_image(image[list(rgb_bands)], stretch).transpose(1, 2, 0)
        mode = "RGB"
    else:
        band = int(band)
        if not 0 <= band < n_bands:
            raise ValueError(f"band must be in [0, {n_bands}), got {band}")
        pixels = scale_image(image[band : band + 1], stretch)[0]
        mode = "L"
    picture = Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode=mode)
    height, width = pixels.shape[:2]
    scale = size / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size != (width, height):
        resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BOX
        picture = picture.resize(new_size, resample)
    buffer = io.BytesIO()
    # Light compression: a click renders a dozen thumbnails and speed matters more than bytes.
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_data_uri(png):
    """A ``data:image/png;base64,...`` URI for PNG bytes, usable as an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class ThumbnailRenderer:
    """Renders images of an in-memory array by index, with an LRU cache.

    Only an integer index into ``images`` selects what is rendered: nothing here ever
    builds a file path, so request data cannot reach the filesystem.

    Parameters
    ----------
    images : array-like of shape (n, C, H, W)
        Indexed one image at a time, so a memory map is never read whole.
    rgb_bands : tuple of 3 int, default=None
    cache_size : int, default=4096
        Thumbnails kept; a click shows about a dozen, so this covers a long session.
    """

    def __init__(self, images, *, rgb_bands=None, cache_size=4096):
        self.images = images
        self.n_bands = int(images.shape[1])
        self.rgb_bands = (
            tuple(int(b) for b in rgb_bands)
            if rgb_bands is not None
            else default_rgb_bands(self.n_bands)
        )
        self._cached_png = lru_cache(maxsize=cache_size)(self._render)

    def band_options(self):
        """Valid ``band`` values: ``"rgb"`` when a composite is possible, then each band."""
        options = ["rgb"] if self.rgb_bands is not None else []
        return options + list(range(self.n_bands))

    def normalize_band(self, band):
        """Turn a band value from a request into ``"rgb"`` or an int, or raise ValueError."""
        if band is None or band == "":
            return "rgb" if self.rgb_bands is not None else 0
        if band == "rgb":
            if self.rgb_bands is None:
                raise ValueError("an RGB composite needs 3 bands or more")
            return "rgb"
        band = int(band)
        if not 0 <= band < self.n_bands:
            raise ValueError(f"band must be in [0, {self.n_bands}), got {band}")
        return band

    def _render(self, index, stretch, band, size):
        return render_png(
            self.images[index], stretch=stretch, band=band, size=size, rgb_bands=self.rgb_bands
        )

    def png(self, index, *, stretch="asinh", band=None, size=64):
        """PNG bytes of image ``index``.

        Raises
        ------
        IndexError
            If ``index`` is not an integer in ``[0, n)``.
        ValueError
            If ``stretch`` or ``band`` is not valid.
        """
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise IndexError(f"image index must be an integer, got {index!r}")
        index = int(index)
        if not 0 <= index < len(self.images):
            raise IndexError(f"image index {index} out of range [0, {len(self.images)})")
        if stretch not in STRETCHES:
            raise ValueError(f"stretch must be one of {STRETCHES}, got {stretch!r}")
        size = int(size)
        if not 4 <= size <= 1024:
            raise ValueError(f"size must be in [4, 1024], got {size}")
        return self._cached_png(index, stretch, self.normalize_band(band), size)

    def data_uri(self, index, *, stretch="asinh", band=None, size=64):
        """Image ``index`` as a ``data:image/png;base64`` URI."""
        return png_data_uri(self.png(index, stretch=stretch, band=band, size=size))
