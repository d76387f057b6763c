"""Folders of image files read lazily: an array-like that opens each file when indexed.

``load_fits(path, lazy=True)`` and ``load_image_folder(path, lazy=True)`` return a
:class:`LazyImageFiles` as ``images``: every file is checked once when the folder is loaded
(with exactly the checks, and the ``skip_bad`` behaviour, of an eager load), but no pixels are
kept; indexing reads the requested files again. Memory then holds one batch of images however
many files the folder has, and the estimators read it batch by batch like any lazily loaded
array (worker processes can read it ahead of training: it pickles as its file names).
"""

import numbers

import numpy as np

from skastro.datasets._array_protocol import LazyFloat32Array
from skastro.exceptions import DataLoadError

__all__ = ["LazyHeaders", "LazyImageFiles"]


class LazyImageFiles(LazyFloat32Array):
    """A read-only ``(n, C, H, W)`` float32 array-like whose images are files, read on access.

    Supports ``shape``, ``dtype`` (float32), ``ndim``, ``len()``, indexing with an int, a
    slice, an integer or boolean index array (optionally followed by indices into the other
    axes), and ``np.asarray(x)`` (which reads every file).

    Parameters
    ----------
    filenames : list of str or path-like
        One file per image, in order.
    read_one : callable
        ``read_one(filename)`` returns the ``(C, H, W)`` float32 image of a file, or raises
        :class:`~skastro.exceptions.DataLoadError`. It must pickle (a module-level function
        or a :func:`functools.partial` of one) for worker processes to use it.
    image_shape : tuple of int
        ``(C, H, W)`` of every image; a file that no longer gives this shape is an error.

    Examples
    --------
    >>> import numpy as np
    >>> images = LazyImageFiles(["a", "b", "c"], lambda f: np.full((1, 2, 2), ord(f), "f4"),
    ...                         (1, 2, 2))
    >>> images.shape, images[[2, 0]][:, 0, 0, 0].tolist()
    ((3, 1, 2, 2), [99.0, 97.0])
    """

    def __init__(self, filenames, read_one, image_shape):
        self.filenames = [str(f) for f in filenames]
        self.read_one = read_one
        self._shape = (len(self.filenames), *(int(s) for s in image_shape))

    def __repr__(self):
        return f"LazyImageFiles({len(self)} files, shape={self._shape})"

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            if not key:
                return self[:]
            key, rest = key[0], key[1:]
        n = len(self)
        if isinstance(key, numbers.Integral):
            position = int(key) + n if key < 0 else int(key)
            if not 0 <= position < n:
                raise IndexError(f"index {key} is out of bounds for {n} images")
            image = self._read(position)
            return image[rest] if rest else image
        if key is Ellipsis:
            positions = np.arange(n)
        elif isinstance(key, slice):
            positions = np.arange(n)[key]
        else:
            positions = np.asarray(key)
            if positions.dtype == bool:
                if positions.shape != (n,):
                    raise IndexError(
                        f"boolean index of shape {positions.shape} does not match {n} images"
                    )
                positions = np.flatnonzero(positions)
            if positions.dtype.kind not in "iu":
                raise IndexError(f"cannot index images with an array of dtype {positions.dtype}")
            positions = np.where(positions < 0, positions + n, positions).ravel()
            if positions.size and (positions.min() < 0 or positions.max() >= n):
                raise IndexError(f"index out of bounds for {n} images")
        out = np.empty((len(positions), *self._shape[1:]), dtype=np.float32)
        for row, position in enumerate(positions):
            out[row] = self._read(int(position))
        return out[(slice(None), *rest)] if rest else out

    def _read(self, position):
        filename = self.filenames[position]
        image = self.read_one(filename)
        if image.shape != self._shape[1:]:
            raise DataLoadError(
                filename,
                f"it now holds an image of shape {image.shape}, not {self._shape[1:]} as when "
                "its folder was loaded (was it replaced?)",
            )
        return image


class LazyHeaders:
    """A read-only sequence of the FITS headers of files, each read when indexed.

    Examples
    --------
    >>> headers = LazyHeaders(["a.fits"], lambda f: {"FILE": f})
    >>> len(headers), headers[0]["FILE"]
    (1, 'a.fits')
    """

    def __init__(self, filenames, read_header):
        self.filenames = [str(f) for f in filenames]
        self.read_header = read_header

    def __len__(self):
        return len(self.filenames)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.read_header(f) for f in self.filenames[index]]
        return self.read_header(self.filenames[index])

    def __iter__(self):
        for filename in self.filenames:
            yield self.read_header(filename)

    def __repr__(self):
        return f"LazyHeaders({len(self)} files)"
