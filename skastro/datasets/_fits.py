"""Load FITS images (single files, lists, folders) as channels-first float32 arrays."""

import functools
import math
import os

import numpy as np
from sklearn.utils import Bunch

from skastro.exceptions import DataLoadError

from ._common import check_same_shape, list_files, read_each, reading
from ._lazy import LazyHeaders, LazyImageFiles

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz")

# keywords that describe an HDU's own layout: never copied from the primary header into an
# extension's header when the two are merged
_STRUCTURAL = {
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS", "BSCALE",
    "BZERO", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "EXTVER", "EXTLEVEL", "INHERIT",
    "NEXTEND", "END", "ZIMAGE", "ZBITPIX", "ZNAXIS", "ZTILE", "ZCMPTYPE", "", "COMMENT",
    "HISTORY",
}  # fmt: skip


def load_fits(path, *, hdu=None, skip_bad=False, lazy=False):
    """Load FITS images as a channels-first float32 array.

    Parameters
    ----------
    path : str, path-like, or list of them
        A FITS file, a folder (its ``*.fits``, ``*.fit``, ``*.fts`` files, gzipped or not,
        and ``*.fz`` tile-compressed files, read in sorted order, not recursively) or a list
        of files and folders.
    hdu : int, str or (str, int), optional
        The HDU to read from every file (index, ``EXTNAME`` or ``(EXTNAME, EXTVER)``).
        By default every image HDU with data whose image size matches the first one's
        becomes a channel (e.g. the u, g, r, i, z extensions of a multi-extension file).
    skip_bad : bool, default=False
        If True, files that cannot be read are skipped with a warning and listed in
        ``skipped`` instead of raising.
    lazy : bool, default=False
        If True, ``images`` is a :class:`~skastro.datasets.LazyImageFiles` that reads the
        files when it is indexed, so a folder larger than memory can be fitted and embedded
        batch by batch, and ``headers`` reads each header when indexed. Every file is still
        read and checked once here, as in an eager load (same errors, same ``skip_bad``);
        only its pixels are not kept.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, C, H, W) float32 in native byte order: ``BSCALE``/``BZERO`` applied,
        integer pixels equal to ``BLANK`` set to NaN. A 2-D image gives one channel, a 3-D
        cube one channel per plane; leading axes of length 1 (radio cubes' Stokes and
        frequency axes) are dropped. ``filenames`` and ``ids`` (file names without the FITS
        suffix), one per image; ``headers``, the astropy ``Header`` of the first HDU used in
        each file, with the primary header's non-structural cards appended when that HDU is
        an extension; ``hdus``, the HDU indices used per file; ``skipped``, a list of
        ``(filename, reason)``.

    Raises
    ------
    DataLoadError
        A file is corrupt or truncated, fails its checksum, holds no image data, or lacks
        the requested HDU. The file is named in the message.
    ValueError
        Files hold images of different shapes (both shapes and files are named).

    Notes
    -----
    astropy only *warns* about some damage (a failed ``CHECKSUM``/``DATASUM``, a file cut
    inside its final padding) and returns data anyway; those warnings are errors here. A
    multi-extension file cut exactly at an HDU boundary is a valid FITS file with fewer
    extensions and cannot be detected. Files are opened read-only and never modified.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from astropy.io import fits
    >>> from skastro.datasets import load_fits
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     fits.PrimaryHDU(np.full((8, 8), i, dtype=">i2")).writeto(
    ...         os.path.join(folder, f"img{i}.fits"))
    >>> data = load_fits(folder)
    >>> data.images.shape, data.images.dtype, data.ids
    ((3, 1, 8, 8), dtype('float32'), ['img0', 'img1', 'img2'])
    """
    files = list_files(path, FITS_SUFFIXES, "FITS")
    read = functools.partial(_checked_fits if lazy else _read_fits, hdu=hdu)
    results, kept, skipped = read_each(files, read, skip_bad)
    shapes = [result[0] if lazy else result[0].shape for result in results]
    check_same_shape(shapes, kept)
    if lazy:
        images = LazyImageFiles(kept, functools.partial(_fits_pixels, hdu=hdu), shapes[0])
        headers = LazyHeaders(kept, functools.partial(_fits_header, hdu=hdu))
    else:
        images = np.stack([array for array, _, _ in results])
        headers = [header for _, header, _ in results]
    return Bunch(
        images=images,
        filenames=[str(f) for f in kept],
        ids=[_strip_suffix(f.name) for f in kept],
        headers=headers,
        hdus=[used for _, _, used in results],
        skipped=skipped,
    )


def _checked_fits(filename, hdu=None):
    """Read and check one file as :func:`_read_fits` does; keep only its image shape."""
    array, _, chosen = _read_fits(filename, hdu=hdu)
    return array.shape, None, chosen


def _fits_pixels(filename, hdu=None):
    return _read_fits(filename, hdu=hdu)[0]


def _fits_header(filename, hdu=None):
    return _read_fits(filename, hdu=hdu)[1]


def _strip_suffix(name):
    lower = name.lower()
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_fits(filename, hdu=None):
    """Read one file: ``(array (C, H, W) float32, merged header, HDU indices used)``."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    # AstropyUserWarning covers truncation, checksum failures and unparsable headers
    # (VerifyWarning is a subclass); a BLANK card on a float image is harmless
    with reading(
        filename,
        fatal_warnings=(AstropyUserWarning,),
        benign_messages=("Invalid 'BLANK' keyword",),
        what="FITS file",
    ):
        # headers first: data sizes they announce are checked before astropy allocates them
        _check_announced_sizes(filename)
        # memmap=False and lazy_load_hdus=False read every HDU now, while the file is open,
        # so truncation anywhere in the file is noticed; scaling is done by hand below so
        # that BLANK integer pixels become NaN (astropy leaves them alone when unscaled)
        with fits.open(
            filename,
            mode="readonly",
            memmap=False,
            lazy_load_hdus=False,
            checksum=True,
            do_not_scale_image_data=True,
        ) as hdul:
            chosen = _choose_hdus(hdul, hdu, filename)
            planes = [_as_channels(_scaled(hdul[i]), filename, i) for i in chosen]
            header = _merged_header(hdul, chosen[0])
    return np.concatenate(planes), header, chosen


def _announced_bytes(header):
    """Bytes of data a FITS header announces (FITS standard 4.0, section 4.4.1.1)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0, 0
    sizes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    if header.get("GROUPS") and sizes and sizes[0] == 0:
        sizes = sizes[1:]  # random groups: NAXIS1 = 0 is not a size
    values = math.prod(sizes)
    if "ZNAXIS" in header:  # a tile-compressed image: the size once decompressed
        znaxis = int(header["ZNAXIS"])
        values = max(
            values, math.prod(int(header.get(f"ZNAXIS{i}", 0)) for i in range(1, znaxis + 1))
        )
    total = abs(int(header.get("BITPIX", 8))) // 8 * int(header.get("GCOUNT", 1))
    return total * (int(header.get("PCOUNT", 0)) + math.prod(sizes)), values


def _check_announced_sizes(filename):
    """Refuse a file whose headers announce more data than it holds, or than fits in memory.

    astropy allocates what a header announces before it reads: a header claiming 10**9 x 8
    pixels in a 6 kB file would ask for 30 GB. Uncompressed files must hold what their headers
    announce, and no HDU may announce more than
    :data:`skastro._limits.MAX_IMAGE_VALUES` values.
    """
    from astropy.io import fits

    from skastro._limits import MAX_IMAGE_VALUES

    with fits.open(filename, mode="readonly", memmap=False, lazy_load_hdus=True) as hdul:
        announced = 0
        for index, hdu in enumerate(hdul):
            n_bytes, n_values = _announced_bytes(hdu.header)
            if n_values > MAX_IMAGE_VALUES:
                raise DataLoadError(
                    filename,
                    f"HDU {index} announces {n_values:,} values, more than the limit of "
                    f"{MAX_IMAGE_VALUES:,} (skastro._limits.MAX_IMAGE_VALUES); the header is "
                    "damaged, or the image must be cut into smaller cutouts",
                )
            # each header is at least one 2880-byte block; data are padded to whole blocks
            announced += 2880 + n_bytes
    compressed = str(filename).lower().endswith((".gz", ".fz", ".bz2", ".zip"))
    size = os.path.getsize(filename)
    if not compressed and announced > size:
        raise DataLoadError(
            filename,
            f"it is truncated: its headers announce at least {announced:,} bytes, the file "
            f"has {size:,}",
        )


def _is_image(h):
    from astropy.io import fits

    return isinstance(h, fits.PrimaryHDU | fits.ImageHDU) and h.data is not None and h.data.size > 0


def _choose_hdus(hdul, hdu, filename):
    if hdu is not None:
        try:
            index = hdul.index_of(hdu)
            hdul[index]
        except (KeyError, IndexError):
            raise DataLoadError(
                filename, f"it has no HDU {hdu!r}; it has {_listing(hdul)}"
            ) from None
        if not _is_image(hdul[index]):
            raise DataLoadError(
                filename, f"HDU {hdu!r} holds no image data ({type(hdul[index]).__name__})"
            )
        return [index]
    images = [i for i, h in enumerate(hdul) if _is_image(h)]
    if not images:
        raise DataLoadError(filename, f"no HDU holds image data; it has {_listing(hdul)}")
    size = hdul[images[0]].data.shape[-2:]
    return [i for i in images if hdul[i].data.shape[-2:] == size]


def _listing(hdul):
    return ", ".join(f"{i}: {h.name or '-'} ({type(h).__name__})" for i, h in enumerate(hdul))


def _scaled(h):
    """Physical values of an HDU's data as float32, BLANK -> NaN (FITS standard 4.4.2.5)."""
    raw = h.data
    bscale = float(h.header.get("BSCALE", 1.0))
    bzero = float(h.header.get("BZERO", 0.0))
    if raw.dtype.kind in "iu":
        # float64 keeps 32-bit integers and BZERO offsets such as 32768 exact
        data = raw.astype(np.float64)
        if bscale != 1.0 or bzero != 0.0:
            data = data * bscale + bzero
        blank = h.header.get("BLANK")
        if blank is not None:
            data[raw == blank] = np.nan
    else:
        data = raw.astype(np.float32)
        if bscale != 1.0 or bzero != 0.0:
            data = data * np.float32(bscale) + np.float32(bzero)
    return data.astype(np.float32)


def _as_channels(data, filename, index):
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3:
        return data
    raise DataLoadError(
        filename,
        f"HDU {index} holds {data.ndim}-D data of shape {data.shape}; only 2-D images and "
        "3-D cubes (planes as channels) are supported",
    )


def _merged_header(hdul, index):
    header = hdul[index].header.copy()
    if index == 0:
        return header
    for card in hdul[0].header.cards:
        keyword = card.keyword
        if keyword in _STRUCTURAL or keyword.startswith("NAXIS") or keyword in header:
            continue
        header.append(card)
    return header
