"""Lazily load image collections from HDF5 files."""

import numbers
import os

import numpy as np
from sklearn.utils import Bunch

from skastro.datasets._array_protocol import LazyFloat32Array
from skastro.exceptions import DataLoadError

from ._common import PerProcessFile, check_regular_file, reading


class HDF5Array(PerProcessFile, LazyFloat32Array):
    """A read-only, lazily loaded view of an HDF5 image dataset, channels first.

    Behaves enough like a numpy array for skastro's estimators and for numpy: ``shape``,
    ``dtype`` (always float32), ``ndim``, ``len()``, indexing with an int, a slice, an
    integer or boolean index array (optionally followed by indices into the other axes),
    and ``np.asarray(x)``. Only the requested images are read from disk, converted to
    float32, given a channel axis when the dataset is ``(n, H, W)``, and moved to channels
    first when ``channels_last``.

    The file is opened on first access and kept open; pickling stores only the path and the
    dataset name (the copy re-opens the file), and a child process opens its own handle.

    Parameters
    ----------
    filename : str or path-like
        The HDF5 file.
    key : str
        Path of the dataset inside the file, e.g. ``'images'`` or ``'cutouts/r'``.
    channels_last : bool, default=False
        True when the dataset is stored ``(n, H, W, C)`` (as Galaxy10 and many Keras-era
        files are).

    Examples
    --------
    >>> import numpy as np, h5py, os, pickle, tempfile
    >>> from skastro.datasets import HDF5Array
    >>> path = os.path.join(tempfile.mkdtemp(), "cutouts.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("images", data=np.arange(4 * 8 * 8).reshape(4, 8, 8))
    >>> images = HDF5Array(path, "images")
    >>> images.shape, images.dtype
    ((4, 1, 8, 8), dtype('float32'))
    >>> images[[3, 1]].shape
    (2, 1, 8, 8)
    >>> bool((pickle.loads(pickle.dumps(images))[2] == images[2]).all())
    True
    """

    def __init__(self, filename, key, *, channels_last=False):
        self.filename = str(check_regular_file(filename))
        self.key = key
        self.channels_last = channels_last
        self._file = None
        self._pid = None
        try:
            dataset = self._dataset()
            raw_shape, raw_dtype = tuple(dataset.shape), dataset.dtype
        finally:
            # stay closed until the data are actually needed
            self.close()
        if raw_dtype.kind == "c":
            # converting to float32 would silently drop the imaginary part
            raise DataLoadError(
                self.filename,
                f"dataset {key!r} holds complex numbers ({raw_dtype}); images must be real: "
                "store np.abs(x) or x.real instead",
            )
        if raw_dtype.kind not in "biuf" or raw_dtype.names is not None:
            raise DataLoadError(
                self.filename,
                f"dataset {key!r} holds {raw_dtype} values; images must be plain numbers",
            )
        if len(raw_shape) == 3:
            self._shape = (raw_shape[0], 1, *raw_shape[1:])
        elif len(raw_shape) == 4:
            n, *rest = raw_shape
            self._shape = (n, rest[2], rest[0], rest[1]) if channels_last else raw_shape
        else:
            raise ValueError(
                f"dataset {key!r} in {self.filename} has shape {raw_shape}; expected "
                "(n, H, W) or (n, C, H, W)" + (" / (n, H, W, C)" if channels_last else "")
            )
        self._raw_ndim = len(raw_shape)

    # -- array protocol ---------------------------------------------------------------------
    def __repr__(self):
        return f"HDF5Array({self.filename!r}, {self.key!r}, shape={self._shape})"

    def __iter__(self):
        # read in blocks: one HDF5 read per image would be slow
        for start in range(0, len(self), 256):
            yield from self[start : start + 256]

    def __getitem__(self, index):
        rest = ()
        if isinstance(index, tuple):
            if not index:
                return self[:]
            index, rest = index[0], index[1:]
        if index is Ellipsis:
            return self[:][(Ellipsis, *rest)]
        if isinstance(index, numbers.Integral):
            position = int(index) + len(self) if index < 0 else int(index)
            if not 0 <= position < len(self):
                raise IndexError(f"index {index} is out of bounds for {len(self)} images")
            data = self._convert(self._read(lambda d: d[position : position + 1]))[0]
            return data[rest] if rest else data
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step > 0:
                data = self._convert(self._read(lambda d: d[start:stop:step]))
                return data[(slice(None), *rest)] if rest else data
            index = np.arange(start, stop, step)
        data = self._convert(self._read_indices(np.asarray(index)))
        return data[(slice(None), *rest)] if rest else data

    # -- helpers ------------------------------------------------------------------------------
    def _dataset(self):
        import h5py

        # an HDF5 handle inherited through fork is not safe to use: re-open in the child
        if self._file is None or self._pid != os.getpid():
            with reading(self.filename, fatal_warnings=(), what="HDF5 file"):
                self._file = h5py.File(self.filename, "r")
            self._pid = os.getpid()
        try:
            return self._file[self.key]
        except KeyError:
            listing = ", ".join(f"{k!r} {s}" for k, s in _datasets(self._file).items())
            raise KeyError(
                f"no dataset {self.key!r} in {self.filename}; datasets present: {listing or 'none'}"
            ) from None

    def _read(self, select):
        """``select(dataset)``, with a failed read (a damaged chunk) as a DataLoadError."""
        dataset = self._dataset()
        with reading(self.filename, fatal_warnings=(), what="HDF5 file"):
            return select(dataset)

    def _read_indices(self, index):
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise IndexError(
                    f"boolean index of shape {index.shape} does not match {len(self)} images"
                )
            index = np.flatnonzero(index)
        if index.dtype.kind not in "iu":
            raise IndexError(f"cannot index images with an array of dtype {index.dtype}")
        index = np.where(index < 0, index + len(self), index).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"index out of bounds for {len(self)} images")
        flat = index.ravel()
        dataset = self._dataset()
        if flat.size == 0:
            return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
        # h5py wants increasing, unique indices: read those, then reorder and repeat
        unique, inverse = np.unique(flat, return_inverse=True)
        span = unique[-1] - unique[0] + 1
        if span <= 4 * unique.size:
            # dense enough: one contiguous read is faster than a scattered one
            block = self._read(lambda d: d[unique[0] : unique[-1] + 1])[unique - unique[0]]
        else:
            block = self._read(lambda d: d[unique])
        return block[inverse].reshape(*index.shape, *dataset.shape[1:])

    def _convert(self, raw):
        data = np.asarray(raw, dtype=np.float32)
        if self._raw_ndim == 3:
            return data[..., None, :, :]
        if self.channels_last:
            return np.ascontiguousarray(np.moveaxis(data, -1, -3))
        return data


def load_hdf5(path, key="images", *, label_key=None, id_key=None, channels_last=False):
    """Load an image collection from an HDF5 file, lazily.

    Parameters
    ----------
    path : str or path-like
        The HDF5 file.
    key : str, default='images'
        Dataset holding the images, ``(n, H, W)`` or ``(n, C, H, W)``.
    label_key : str, optional
        Dataset of ``n`` labels, integers or strings; read eagerly.
    id_key : str, optional
        Dataset of ``n`` identifiers; read eagerly.
    channels_last : bool, default=False
        True when the images are stored ``(n, H, W, C)``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images``, an :class:`HDF5Array` (nothing is read until it is indexed);
        ``target`` (n,) int64 or None - string labels are encoded as indices into
        ``target_names`` (sorted), integer labels kept as they are (``target_names`` None);
        ``ids`` (from ``id_key``, else ``0 .. n-1``); ``filenames`` (the file, once per
        image).

    Raises
    ------
    DataLoadError
        The file is not a readable HDF5 file, or the images are not plain real numbers
        (complex values are refused rather than losing their imaginary part).
    KeyError
        A dataset is missing; the message lists the datasets the file has.
    ValueError
        The images or labels have an unexpected shape.

    Examples
    --------
    >>> import numpy as np, h5py, os, tempfile
    >>> from skastro.datasets import load_hdf5
    >>> path = os.path.join(tempfile.mkdtemp(), "cutouts.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("images", data=np.zeros((10, 3, 16, 16), dtype="u1"))
    ...     _ = f.create_dataset("labels", data=np.array([b"spiral", b"elliptical"] * 5))
    >>> data = load_hdf5(path, label_key="labels")
    >>> data.images.shape, data.target[:2].tolist(), data.target_names.tolist()
    ((10, 3, 16, 16), [1, 0], ['elliptical', 'spiral'])
    >>> data.images[2:4].shape
    (2, 3, 16, 16)
    """
    import h5py

    path = check_regular_file(path)
    # "/images" is h5py's absolute name of "images"; the listing below names them relatively
    key, label_key, id_key = (
        k.lstrip("/") if isinstance(k, str) and k.strip("/") else k
        for k in (key, label_key, id_key)
    )
    with reading(path, fatal_warnings=(), what="HDF5 file"):
        with h5py.File(path, "r") as f:
            present = _datasets(f)
            missing = [k for k in (key, label_key, id_key) if k is not None and k not in present]
            if not missing:
                labels = f[label_key][()] if label_key is not None else None
                ids = f[id_key][()] if id_key is not None else None
    if missing:
        listing = ", ".join(f"{k!r} {s}" for k, s in present.items()) or "none"
        raise KeyError(f"no dataset {missing[0]!r} in {path}; datasets present: {listing}")
    images = HDF5Array(path, key, channels_last=channels_last)
    n = len(images)
    target = target_names = None
    if labels is not None:
        labels = _one_per_image(labels, n, label_key, path)
        if labels.dtype.kind in "iub":
            target = labels.astype(np.int64)
        else:
            target_names, target = np.unique(_as_text(labels), return_inverse=True)
            target = target.astype(np.int64)
    if ids is not None:
        ids = _one_per_image(ids, n, id_key, path)
        ids = _as_text(ids) if ids.dtype.kind in "SOU" else ids
    else:
        ids = np.arange(n)
    return Bunch(
        images=images,
        target=target,
        target_names=target_names,
        ids=ids,
        filenames=[str(path)] * n,
    )


def _datasets(f):
    import h5py

    found = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = obj.shape

    f.visititems(visit)
    return found


def _one_per_image(values, n, key, path):
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise ValueError(f"dataset {key!r} in {path} has shape {values.shape}; expected ({n},)")
    return values


def _as_text(values):
    return np.array(
        [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in values]
    )
