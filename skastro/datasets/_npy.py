"""Plain numeric ``.npy`` files read row by row, never whole."""

import contextlib
import os

import numpy as np

from skastro.datasets._common import PerProcessFile, check_regular_file
from skastro.exceptions import DataLoadError

__all__ = ["NpyArray", "npy_header"]


def npy_header(filename):
    """Return ``(shape, fortran_order, dtype, data_offset)`` of a ``.npy`` file.

    Raises :class:`~skastro.exceptions.DataLoadError` naming the file when it is not one.
    """
    fmt = np.lib.format
    check_regular_file(filename)
    try:
        with open(filename, "rb") as f:
            magic = f.read(len(fmt.MAGIC_PREFIX))
            if not magic:
                raise DataLoadError(filename, "it is empty (0 bytes), not a .npy file")
            if magic != fmt.MAGIC_PREFIX:
                raise DataLoadError(
                    filename,
                    "it is not a .npy file: it does not start with numpy's magic bytes "
                    f"\\x93NUMPY (it starts with {magic[:6]!r}); save arrays with np.save",
                )
            f.seek(0)
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            return shape, fortran, dtype, f.tell()
    except DataLoadError:
        raise
    except Exception as exc:  # numpy parses the header as Python: SyntaxError, TokenError...
        if isinstance(exc, MemoryError):
            raise
        raise DataLoadError(filename, f"not a readable .npy file ({exc})") from exc


class NpyArray(PerProcessFile):
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
        self.filename = str(filename)
        shape, fortran, dtype, offset = npy_header(self.filename)
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

    def __del__(self):
        # a file object collected while open is a ResourceWarning in the user's output
        with contextlib.suppress(Exception):
            self.close()

    def _handle(self):
        # one handle per process: a forked child must not share the parent's file offset
        if self._file is None or self._pid != os.getpid():
            self.close()  # the child's copy of an inherited handle; the parent keeps its own
            self._file = open(self.filename, "rb")
            self._pid = os.getpid()
        return self._file

    def _read_rows(self, start, stop, out):
        f = self._handle()
        f.seek(self.offset + start * self._row_bytes)
        view = memoryview(out.reshape(-1).view(np.uint8))
        if f.readinto(view) != len(view):
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
