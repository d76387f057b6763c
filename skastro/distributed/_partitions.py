"""Split a data path into partitions that workers read on their own, batch by batch.

A :class:`Partition` is a small, picklable description (a file and a row range, or a list
of files): the client plans them from file headers and listings only, without reading
images, and each worker reads its partition's images itself with skastro's loaders, one
batch at a time, so a worker's memory holds one batch of images whatever the partition size.

=========================  ===========================================================
DATA                       partitioned by
=========================  ===========================================================
plain ``.npy`` array       row ranges, read with :class:`NpyArray` (plain file reads)
HDF5 file (``key``)        row ranges, read with :class:`~skastro.datasets.HDF5Array`
FITS file(s) / folder      lists of files, read with :func:`~skastro.datasets.load_fits`
PNG / JPEG folder          lists of files, :func:`~skastro.datasets.load_image_folder`
SDSS ``.npy`` file/folder  lists of files; a file larger than a partition by row ranges
=========================  ===========================================================

The ids are those ``skastro embed`` writes in one process: row numbers for ``.npy`` and HDF5
files (or the ``id_key`` dataset), file names without suffix for FITS and image files, and
for SDSS files the ``objID`` (else ``<file stem>[<row>]``), decided file by file.
"""

import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np

from skastro.datasets._npy import NpyArray, npy_header
from skastro.datasets._open import data_kind

__all__ = ["DataPlan", "Partition", "plan_partitions", "read_batches"]

# kinds whose partitions are row ranges of one file, and kinds read file by file
_ROW_KINDS = ("npy", "HDF5")
_FILE_KINDS = ("FITS", "images", "SDSS npy")


@dataclasses.dataclass(frozen=True)
class Partition:
    """One unit of work: which images to read, and where they sit in the whole data set.

    Parameters
    ----------
    index : int
        Position among the partitions (the output file ``part-<index>.parquet``).
    kind : str
        ``"npy"``, ``"HDF5"``, ``"FITS"``, ``"images"`` or ``"SDSS npy"``.
    path : str or None
        The data file of a row-range partition.
    start, stop : int
        Rows ``start:stop`` of the data set (of ``path``, or counted over the listed files).
    files : tuple
        ``(file, first_row, last_row)`` for each file of a file-list partition (rows of the
        file; ``None, None`` for the whole file).
    key, id_key : str or None
        HDF5 datasets of the images and of the ids.
    """

    index: int
    kind: str
    path: str | None
    start: int
    stop: int
    files: tuple = ()
    key: str | None = None
    id_key: str | None = None

    @property
    def n_images(self):
        """Images in the partition (before unreadable files are skipped)."""
        return self.stop - self.start


@dataclasses.dataclass
class DataPlan:
    """The partitions of a data path and what is known of the data before reading it.

    Attributes
    ----------
    kind : str
    path : str
        The data path, absolute.
    n_images : int
    partitions : list of Partition
    id_type : {"int64", "string"}
        Type of the ids column.
    listing_digest : str
        A hash of the files (names and sizes) or of the array's header, to tell later whether
        the data changed.
    """

    kind: str
    path: str
    n_images: int
    partitions: list
    id_type: str
    listing_digest: str


def plan_partitions(path, partition_size, *, key="images", id_key=None):
    """Plan the partitions of a data path, reading headers and listings only.

    Parameters
    ----------
    path : str or path-like
        A plain or SDSS ``.npy`` file, an HDF5 file, a FITS file, or a folder of FITS, PNG /
        JPEG or SDSS ``.npy`` files (what ``skastro embed`` reads).
    partition_size : int
        Images per partition (the last one may be smaller; SDSS files are not split below
        one file unless a file alone holds more than ``partition_size`` rows).
    key, id_key : str or None
        HDF5 datasets of the images and of their identifiers.

    Returns
    -------
    plan : DataPlan

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "images.npy")
    >>> np.save(path, np.zeros((10, 8, 8), dtype=np.float32))
    >>> plan = plan_partitions(path, 4)
    >>> plan.kind, [(p.start, p.stop) for p in plan.partitions]
    ('npy', [(0, 4), (4, 8), (8, 10)])
    """
    import hashlib

    from skastro.datasets._fits import FITS_SUFFIXES
    from skastro.datasets._image_folder import IMAGE_SUFFIXES

    if int(partition_size) < 1:
        raise ValueError(f"partition_size must be at least 1, got {partition_size}")
    partition_size = int(partition_size)
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    kind = data_kind(path, FITS_SUFFIXES, IMAGE_SUFFIXES)
    digest = hashlib.sha256()
    id_type = "int64"
    if kind in _ROW_KINDS:
        if kind == "npy":
            images = NpyArray(path)
            n = len(images)
            digest.update(repr((images.shape, str(images.dtype))).encode())
        else:
            n, id_type = _hdf5_layout(path, key, id_key)
            digest.update(repr((n, key, id_key)).encode())
        digest.update(repr((str(path), *_stamp(path))).encode())
        partitions = [
            Partition(i, kind, str(path), start, min(start + partition_size, n), (), key, id_key)
            for i, start in enumerate(range(0, n, partition_size))
        ]
        return DataPlan(kind, str(path), n, partitions, id_type, digest.hexdigest())

    from skastro.datasets._common import list_files

    suffixes = {"FITS": FITS_SUFFIXES, "images": IMAGE_SUFFIXES, "SDSS npy": (".npy",)}[kind]
    files = list_files(path, suffixes, kind)  # (hidden files left out)
    rows = [_sdss_rows(f) for f in files] if kind == "SDSS npy" else [1] * len(files)
    id_type = "string"
    for f in files:
        digest.update(repr((f.name, *_stamp(f))).encode())
    partitions, current, start, count = [], [], 0, 0

    def close():
        nonlocal current, start, count
        if current:
            partitions.append(
                Partition(len(partitions), kind, None, start, start + count, tuple(current))
            )
            start, current, count = start + count, [], 0

    for f, k in zip(files, rows):
        if k > partition_size:  # one big SDSS file: its own row-range partitions
            close()
            for first in range(0, k, partition_size):
                last = min(first + partition_size, k)
                current, count = [(str(f), first, last)], last - first
                close()
            continue
        current.append((str(f), None, None))
        count += k
        if count >= partition_size:
            close()
    close()
    return DataPlan(kind, str(path), int(sum(rows)), partitions, id_type, digest.hexdigest())


def _stamp(path):
    """Size and modification time of a file, for the data fingerprint.

    The time catches images changed in place (same name, same size) between an interrupted
    run and its resumption; a file that cannot be stat'ed (a dangling link) is reported by
    its reader, not here.
    """
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


def _hdf5_layout(path, key, id_key):
    """Number of images and the ids' type of an HDF5 file (nothing but headers is read)."""
    import h5py

    from skastro.datasets import load_hdf5

    n = len(load_hdf5(path, key).images)  # checks the file and the images' shape
    if id_key is None:
        return n, "int64"
    with h5py.File(path, "r") as f:
        if id_key not in f:
            raise KeyError(f"no dataset {id_key!r} in {path}; pass the dataset holding the ids")
        dataset = f[id_key]
        shape, dtype = dataset.shape, dataset.dtype
    if shape not in ((n,), (n, 1)):
        raise ValueError(f"dataset {id_key!r} in {path} has shape {shape}; expected ({n},)")
    return n, "int64" if dtype.kind in "iub" else "string"


def _sdss_rows(filename):
    shape = npy_header(filename)[0]
    return int(np.prod(shape)) if len(shape) else 1


# ---------------------------------------------------------------------------------- reading
def read_batches(partition, batch_size, *, skip_bad=False):
    """Yield ``(images, ids, skipped)`` for one partition, ``batch_size`` images at a time.

    Runs on the worker. ``skipped`` lists the ``(file, reason)`` of unreadable files when
    ``skip_bad`` (an unreadable file raises :class:`~skastro.exceptions.DataLoadError`
    otherwise). A batch may hold fewer images than asked, or none, when files are skipped.

    Parameters
    ----------
    partition : Partition
    batch_size : int
    skip_bad : bool, default=False

    Yields
    ------
    images : ndarray of shape (b, ...)
    ids : ndarray of shape (b,)
    skipped : list of (str, str)

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "images.npy")
    >>> np.save(path, np.arange(40, dtype=np.float32).reshape(10, 2, 2))
    >>> part = plan_partitions(path, 6).partitions[1]
    >>> [(images.shape, ids.tolist()) for images, ids, _ in read_batches(part, 3)]
    [((3, 2, 2), [6, 7, 8]), ((1, 2, 2), [9])]
    """
    batch_size = max(1, int(batch_size))
    if partition.kind in _ROW_KINDS:
        yield from _row_batches(partition, batch_size)
    else:
        yield from _file_batches(partition, batch_size, skip_bad)


def _row_batches(partition, batch_size):
    if partition.kind == "npy":
        images = NpyArray(partition.path)
        ids_dataset = None
    else:
        from skastro.datasets import HDF5Array

        images = HDF5Array(partition.path, partition.key)
        ids_dataset = partition.id_key
    for start in range(partition.start, partition.stop, batch_size):
        stop = min(start + batch_size, partition.stop)
        ids = np.arange(start, stop)
        if ids_dataset is not None:
            ids = _hdf5_ids(partition.path, ids_dataset, start, stop)
        yield np.asarray(images[start:stop]), ids, []
    if hasattr(images, "close"):
        images.close()


def _hdf5_ids(path, id_key, start, stop):
    import h5py

    from skastro.datasets._hdf5 import _as_text

    with h5py.File(path, "r") as f:
        values = np.asarray(f[id_key][start:stop])
    if values.ndim == 2:
        values = values[:, 0]
    return _as_text(values) if values.dtype.kind in "SOU" else values.astype(np.int64)


def _file_batches(partition, batch_size, skip_bad):
    from skastro.exceptions import DataLoadError

    images, ids, skipped, n_read = [], [], [], 0
    for filename, first, last in partition.files:
        try:
            batch_images, batch_ids = _read_file(partition.kind, filename, first, last)
        except DataLoadError as exc:
            if not skip_bad:
                raise
            skipped.append((str(filename), exc.reason))
            continue
        images.append(batch_images)
        ids.extend(batch_ids)
        n_read += len(batch_images)
        if n_read >= batch_size:
            yield _stack(images, filename), np.asarray(ids, dtype=object).astype(str), skipped
            images, ids, skipped, n_read = [], [], [], 0
    if images or skipped:
        stacked = _stack(images, partition.files[-1][0]) if images else None
        yield stacked, np.asarray(ids, dtype=object).astype(str), skipped


def _stack(arrays, last_file):
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"images of different shapes {sorted(shapes)} in the files up to {last_file}; "
            "put each image size in its own folder"
        )
    return np.concatenate(arrays)


def _read_file(kind, filename, first, last):
    """Images and ids of one file (rows ``first:last`` of an SDSS file when given)."""
    from skastro import datasets

    with warnings.catch_warnings():
        # a loader's "skipped N unreadable files" warning cannot happen for a single file
        warnings.simplefilter("ignore", UserWarning)
        if kind == "FITS":
            bunch = datasets.load_fits(filename)
        elif kind == "images":
            bunch = datasets.load_image_folder(filename)
        elif first is None:
            bunch = datasets.load_sdss_npy(filename)
        else:
            return _sdss_slice(filename, first, last)
    return bunch.images, [str(i) for i in bunch.ids]


def _sdss_slice(filename, first, last):
    """Rows ``first:last`` of a large SDSS ``.npy`` file, read through a memory map."""
    from skastro.datasets._common import reading

    with reading(filename, fatal_warnings=(), what=".npy file"):
        array = np.load(filename, mmap_mode="r", allow_pickle=False).reshape(-1)
        rows = array[first:last]
        images = np.asarray(rows["image"], dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        if "objID" in (array.dtype.names or ()):
            ids = [str(int(i)) for i in rows["objID"]]
        else:
            stem = Path(filename).name[:-4]
            ids = [f"{stem}[{i}]" for i in range(first, last)]
    return images, ids


def describe(partition):
    """A short JSON description of a partition, stored in its parquet file.

    Examples
    --------
    >>> describe(Partition(0, "npy", "/data/x.npy", 0, 10))
    '{"index": 0, "kind": "npy", "start": 0, "stop": 10, "n_files": 0}'
    """
    return json.dumps(
        {
            "index": partition.index,
            "kind": partition.kind,
            "start": partition.start,
            "stop": partition.stop,
            "n_files": len(partition.files),
        }
    )
