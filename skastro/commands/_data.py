"""Open the DATA argument of ``skastro fit`` / ``skastro embed``: any file the loaders read.

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

Plain ``.npy`` arrays and HDF5 datasets are never loaded whole: the estimators read them batch
by batch, so data sets larger than memory can be fitted and embedded.
"""

import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["NpyArray", "add_data_arguments", "describe_error", "open_data"]

_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5", ".hdf")


def add_data_arguments(parser):
    """Add ``--key`` and ``--skip-bad``, the options of :func:`open_data`."""
    parser.add_argument(
        "--key",
        default="images",
        help="dataset holding the images in an HDF5 file (default: images)",
    )
    parser.add_argument(
        "--id-key",
        default=None,
        help="dataset holding one identifier per image in an HDF5 file (default: row numbers)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip files that cannot be read (listed on stderr) instead of stopping",
    )


def describe_error(exc, skip_bad=False):
    """One line for a data error, with a hint when unreadable files could be skipped.

    ``str()`` of a :class:`~skastro.exceptions.DataLoadError` can come out as OSError's
    ``[Errno None] ...`` form, so its file and reason are used directly.
    """
    from skastro.exceptions import DataLoadError

    if isinstance(exc, DataLoadError):
        text = f"cannot read {exc.filename}: {exc.reason}"
        return text if skip_bad else text + " (pass --skip-bad to skip unreadable files)"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def open_data(path, *, key="images", id_key=None, skip_bad=False, report=None):
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

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (an array, or a lazily read array-like, of shape (n, C, H, W) or (n, H, W)),
        ``ids`` (n identifiers: file names, SDSS objIDs or row numbers), ``kind`` (a word
        naming the format) and ``skipped`` (``(file, reason)`` pairs).

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
    from sklearn.utils import Bunch

    from skastro import datasets
    from skastro.datasets._fits import FITS_SUFFIXES
    from skastro.datasets._image_folder import IMAGE_SUFFIXES

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    kind = _kind(path, FITS_SUFFIXES, IMAGE_SUFFIXES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "FITS":
            bunch = datasets.load_fits(path, skip_bad=skip_bad)
        elif kind == "SDSS npy":
            bunch = datasets.load_sdss_npy(path, skip_bad=skip_bad)
        elif kind == "images":
            bunch = datasets.load_image_folder(path, skip_bad=skip_bad)
        elif kind == "HDF5":
            bunch = datasets.load_hdf5(path, key, id_key=id_key)
        else:
            images = NpyArray(path)
            bunch = Bunch(images=images, ids=np.arange(len(images)), skipped=[])
    if report is not None:
        for record in caught:
            report(f"warning: {record.message}")
    else:
        for record in caught:
            warnings.warn(record.message, record.category, stacklevel=2)
    return Bunch(
        images=bunch.images,
        ids=np.asarray(bunch.ids),
        kind=kind,
        skipped=list(bunch.get("skipped") or []),
    )


def _kind(path, fits_suffixes, image_suffixes):
    """Name the format of a file or folder from its suffix(es) and, for .npy, its header."""

    def kind_of(file):
        name = file.name.lower()
        if name.endswith(fits_suffixes):
            return "FITS"
        if name.endswith(image_suffixes):
            return "images"
        if name.endswith(_HDF5_SUFFIXES):
            return "HDF5"
        if name.endswith(".npy"):
            return "SDSS npy" if _is_structured_npy(file) else "npy"
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
    for file in sorted(path.iterdir()):
        if file.is_file() and not file.name.startswith("."):
            kind = kind_of(file)
            if kind is not None:
                kinds.setdefault(kind, []).append(file)
    if not kinds:
        raise FileNotFoundError(
            f"no image files in folder {path}: expected FITS (.fits, .fit, .fts), SDSS .npy "
            "or PNG/JPEG files"
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


def _npy_header(filename):
    """Return ``(shape, fortran_order, dtype, data_offset)`` of a ``.npy`` file."""
    from skastro.exceptions import DataLoadError

    fmt = np.lib.format
    try:
        with open(filename, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            return shape, fortran, dtype, f.tell()
    except (OSError, ValueError) as exc:
        raise DataLoadError(filename, f"not a readable .npy file ({exc})") from exc


def _is_structured_npy(filename):
    return _npy_header(filename)[2].names is not None


class NpyArray:
    """A read-only view of a plain numeric ``.npy`` file that reads rows on demand.

    Rows are read with ordinary file reads into fresh arrays. Unlike a ``np.memmap``, the
    pages read are not mapped into the process, so its resident memory stays that of one
    batch however many images are streamed through it.

    Parameters
    ----------
    filename : str or path-like
        A ``.npy`` file holding a C-ordered array of numbers.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(24, dtype=">i2").reshape(6, 2, 2))
    >>> x = NpyArray(path)
    >>> x.shape, x.dtype
    ((6, 2, 2), dtype('>i2'))
    >>> x[[4, 1]][:, 0, 0].tolist(), x[2:4].shape
    ([16, 4], (2, 2, 2))
    """

    def __init__(self, filename):
        from skastro.exceptions import DataLoadError

        self.filename = str(filename)
        shape, fortran, dtype, offset = _npy_header(self.filename)
        if dtype.names is not None or dtype.kind not in "biuf":
            raise DataLoadError(
                self.filename, f"it holds a {dtype} array; images must be plain numbers"
            )
        if fortran and len(shape) > 1:
            raise DataLoadError(
                self.filename,
                "it is stored in Fortran order, which cannot be read image by image; re-save "
                "it with np.save(path, np.ascontiguousarray(x))",
            )
        if len(shape) == 0:
            raise DataLoadError(self.filename, "it holds a single number, not images")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.offset = offset
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize
        expected = offset + self._row_bytes * self.shape[0]
        size = os.path.getsize(self.filename)
        if size < expected:
            raise DataLoadError(
                self.filename,
                f"it is truncated: {size} bytes where its header announces {expected}",
            )
        self._file = None
        self._pid = None

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"NpyArray({self.filename!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = state["_pid"] = None  # a copy re-opens the file
        return state

    def _handle(self):
        # one handle per process: a forked child must not share the parent's file offset
        if self._file is None or self._pid != os.getpid():
            self._file = open(self.filename, "rb")
            self._pid = os.getpid()
        return self._file

    def _read_rows(self, start, stop, out):
        f = self._handle()
        f.seek(self.offset + start * self._row_bytes)
        view = memoryview(out.reshape(-1).view(np.uint8))
        if f.readinto(view) != len(view):
            from skastro.exceptions import DataLoadError

            raise DataLoadError(self.filename, f"it ended while reading rows {start}..{stop}")

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                out = np.empty((max(stop - start, 0), *self.shape[1:]), dtype=self.dtype)
                if len(out):
                    self._read_rows(start, stop, out)
                return out[rest] if rest else out
            key = np.arange(start, stop, step)
        squeeze = False
        if isinstance(key, int | np.integer):
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of bounds for {n} images")
            key, squeeze = np.asarray([key % n]), True
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = np.where(index < 0, index + n, index).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise IndexError(f"index out of bounds for {n} images")
        out = self._take(index.ravel()).reshape(*index.shape, *self.shape[1:])
        if squeeze:
            out = out[0]
        return out[(slice(None),) * (0 if squeeze else index.ndim) + rest] if rest else out

    def _take(self, index):
        """Read rows ``index`` (any order, repeats allowed), one file read per run of rows."""
        unique, inverse = np.unique(index, return_inverse=True)
        block = np.empty((len(unique), *self.shape[1:]), dtype=self.dtype)
        if len(unique):
            breaks = np.flatnonzero(np.diff(unique) != 1) + 1
            for run in np.split(np.arange(len(unique)), breaks):
                first, last = unique[run[0]], unique[run[-1]]
                self._read_rows(first, last + 1, block[run[0] : run[-1] + 1])
        return block[inverse]
