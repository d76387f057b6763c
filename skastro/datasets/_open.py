"""The one way to open a data path: any file or folder the loaders read, chosen by content.

Every command (``skastro fit``, ``embed``, ``explore``) opens its DATA argument with
:func:`open_data`.

=========================================  ============================================
DATA                                       read with
=========================================  ============================================
``.fits`` / ``.fit`` / ``.fts`` file,      :func:`skastro.datasets.load_fits`
or a folder of them
``.npy`` structured (SDSS layout), or a    :func:`skastro.datasets.load_sdss_npy`
folder of them
``.npy`` plain numeric array               :class:`NpyArray` (read lazily, chunk by chunk)
``.png`` / ``.jpg`` file or folder         :func:`skastro.datasets.load_image_folder`
``.h5`` / ``.hdf5`` file                   :func:`skastro.datasets.load_hdf5` (``--key``)
=========================================  ============================================

Plain ``.npy`` arrays and HDF5 datasets are never loaded whole, and folders of FITS or PNG/JPEG
files are opened lazily (``lazy=True``: each file is checked once, then read again when its
batch is needed): the estimators read them batch by batch, so data sets larger than memory can
be fitted and embedded.
"""

import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from skastro.datasets._common import check_regular_file
from skastro.datasets._fits import FITS_SUFFIXES, load_fits
from skastro.datasets._hdf5 import load_hdf5
from skastro.datasets._image_folder import IMAGE_SUFFIXES, load_image_folder
from skastro.datasets._npy import NpyArray, npy_header
from skastro.datasets._sdss import load_sdss_npy
from skastro.exceptions import DataLoadError

__all__ = ["data_kind", "open_data"]

_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5", ".hdf")


def open_data(path, *, key="images", id_key=None, skip_bad=False, report=None, channels_last=False):
    """Open image data from a path, choosing the loader from what the path holds.

    Parameters
    ----------
    path : str or path-like
        A file or a folder (see the module docstring for what is read).
    key, id_key : str or None
        HDF5 datasets of the images and of their identifiers.
    skip_bad : bool
        Skip unreadable files instead of raising :class:`skastro.exceptions.DataLoadError`.
    report : callable or None
        Called with one line of text per warning (e.g. the list of skipped files).
    channels_last : bool
        The HDF5 images are stored ``(n, H, W, C)`` (HDF5 only). Arrays that look stored that
        way without it (a last axis of 1-4 after two larger equal ones) get a warning.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (an array, or a lazily read array-like, of shape (n, C, H, W) or (n, H, W)),
        ``ids`` (n identifiers: file names, SDSS objIDs or row numbers), ``kind`` (a word
        naming the format) and ``skipped`` (``(file, reason)`` pairs), plus whatever else the
        loader returned (``target``, ``metadata``, ``band_names``, ...).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "images.npy")
    >>> np.save(path, np.zeros((5, 8, 8), dtype=np.float32))
    >>> data = open_data(path)
    >>> data.kind, data.images.shape, data.ids[:2].tolist()
    ('npy', (5, 8, 8), [0, 1])
    """
    path = Path(path)
    if not path.is_dir():
        # FileNotFoundError for nothing there; DataLoadError for a device, a pipe, a socket
        check_regular_file(path)
    kind = data_kind(path, FITS_SUFFIXES, IMAGE_SUFFIXES)
    if channels_last and kind != "HDF5":
        raise ValueError(
            f"channels_last (--channels-last) is for HDF5 files, and {path} holds {kind} data; "
            "a .npy array stored (n, H, W, C) can be re-saved as np.moveaxis(X, -1, 1)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "FITS":
            bunch = load_fits(path, skip_bad=skip_bad, lazy=path.is_dir())
        elif kind == "SDSS npy":
            bunch = load_sdss_npy(path, skip_bad=skip_bad)
        elif kind == "images":
            bunch = load_image_folder(path, skip_bad=skip_bad, lazy=path.is_dir())
        elif kind == "HDF5":
            bunch = load_hdf5(path, key, id_key=id_key, channels_last=channels_last)
        else:
            images = NpyArray(path)
            bunch = Bunch(images=images, ids=np.arange(len(images)), skipped=[])
        if kind in ("HDF5", "npy") and not channels_last:
            _warn_if_channels_last(bunch.images.shape, path, kind)
    if report is not None:
        for record in caught:
            report(f"warning: {record.message}")
    else:
        for record in caught:
            warnings.warn(record.message, record.category, stacklevel=2)
    # the loader's own entries (labels, metadata, band names...) travel along
    entries = dict(bunch)
    entries.update(ids=np.asarray(bunch.ids), kind=kind, skipped=list(bunch.get("skipped") or []))
    return Bunch(**entries)


def _warn_if_channels_last(shape, path, kind):
    """Warn when an (n, A, B, C) array looks like (n, H, W, C) images, read as (n, C, H, W).

    RGB cutouts are often stored channels last (Galaxy10's HDF5 file, PIL arrays); read as
    channels first they make nonsense images of A channels and width C.
    """
    if len(shape) != 4 or not (shape[3] <= 4 < shape[1] and shape[1] == shape[2]):
        return
    fix = (
        "pass channels_last=True (skastro commands: --channels-last)"
        if kind == "HDF5"
        else "re-save them channels first, np.save(path, np.moveaxis(X, -1, 1))"
    )
    warnings.warn(
        f"{path} holds an array of shape {tuple(shape)}, read as {shape[1]} channels of "
        f"{shape[2]}x{shape[3]} pixels; if these are {shape[1]}x{shape[2]} images of "
        f"{shape[3]} band(s) stored channels last, {fix}",
        UserWarning,
        stacklevel=3,
    )


def data_kind(path, fits_suffixes, image_suffixes):
    """Name the format of a file or folder from its suffix(es) and, for .npy, its header."""

    def kind_of(file, in_folder=False):
        name = file.name.lower()
        if name.endswith(fits_suffixes):
            return "FITS"
        if name.endswith(image_suffixes):
            return "images"
        if name.endswith(_HDF5_SUFFIXES):
            return "HDF5"
        if name.endswith(".npy"):
            try:
                return "SDSS npy" if _is_structured_npy(file) else "npy"
            except DataLoadError:
                if not in_folder:
                    raise
                # a damaged file in a folder: the loader reports it with every other bad
                # file (or skips it with skip_bad)
                return "SDSS npy"
        return None

    if path.is_file():
        kind = kind_of(path)
        if kind is None:
            raise ValueError(
                f"cannot tell the format of {path} from its name; expected a FITS (.fits, "
                ".fit, .fts), .npy, HDF5 (.h5, .hdf5) or PNG/JPEG file, or a folder of them"
            )
        return kind
    kinds = {}
    try:
        entries = sorted(path.iterdir())
    except OSError as exc:
        raise DataLoadError(path, f"the folder cannot be listed ({exc.strerror or exc})") from exc
    for file in entries:
        if file.is_file() and not file.name.startswith("."):
            kind = kind_of(file, in_folder=True)
            if kind is not None:
                kinds.setdefault(kind, []).append(file)
    if not kinds:
        inner = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
        nested = (
            f"; sub-folders ({', '.join(sorted(inner)[:3])}{', ...' if len(inner) > 3 else ''}) "
            "are not read: pass one of them"
            if inner
            else ""
        )
        raise FileNotFoundError(
            f"no image files in folder {path}: expected FITS (.fits, .fit, .fts), SDSS .npy "
            f"or PNG/JPEG files{nested}"
        )
    if "npy" in kinds:
        raise ValueError(
            f"folder {path} holds plain numeric .npy files ({kinds['npy'][0].name}, ...); "
            "pass one .npy file at a time (only SDSS-style structured .npy files are read "
            "as a folder)"
        )
    if "HDF5" in kinds:
        raise ValueError(f"folder {path} holds HDF5 files; pass one HDF5 file at a time")
    if len(kinds) > 1:
        found = ", ".join(f"{len(files)} {kind}" for kind, files in kinds.items())
        raise ValueError(
            f"folder {path} mixes formats ({found} files); put each format in its own folder"
        )
    return next(iter(kinds))


def _is_structured_npy(filename):
    return npy_header(filename)[2].names is not None
