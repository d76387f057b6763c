"""Reading images for training and inference: batch order, prefetching workers, pinned memory.

Training reads an :class:`~skastro._validation.ImageBatches` in one of three ways, chosen by
:class:`TrainingBatches`:

* **GPU copy** (``device_cache``): in-memory images that fit on the GPU are copied there once
  per fit, and each batch is gathered on the GPU;
* **in memory**: batches are fancy-indexed from the array in the training process (faster than
  a :class:`torch.utils.data.DataLoader`'s per-image ``__getitem__`` and collate);
* **chunks** (lazily read data: ``np.memmap``, HDF5, NpyArray, FITS folders; or any data when
  ``num_workers > 0``): a DataLoader whose worker processes each read one *chunk* of images
  ahead of the training loop (``pin_memory`` on CUDA), which the loop cuts into batches. On a
  GPU each chunk is copied whole, asynchronously, and batches are cut on the device.

The order is drawn from the net's seeded generator in the training process, never in a worker,
so it does not depend on the number of workers. In-memory data are shuffled with one
permutation per epoch. Lazily read data are shuffled by *windows* (:func:`windowed_order`): the
images are split into blocks of consecutive images (about 1 MiB each, aligned to HDF5 chunks),
the blocks are permuted, and each window of :data:`BLOCKS_PER_WINDOW` blocks (from all over the
file) is read block by block, with sequential I/O, and permuted as a whole. Memory then holds a
few windows whatever the number of images. Data that fit in one window are shuffled exactly
like in-memory data.

Torch and numpy only: no scikit-learn here.
"""

import math
import mmap

import numpy as np
import torch

from skastro._validation import is_lazy_array

__all__ = [
    "BLOCKS_PER_WINDOW",
    "BLOCK_BYTES",
    "TrainingBatches",
    "inference_batches",
    "read_rows",
    "windowed_order",
]

# a block of consecutive images is read with one sequential read
BLOCK_BYTES = 1 << 20
# a window of this many blocks (from anywhere in the data) is shuffled as a whole: 32 MiB,
# 2048 images of 64x64 float32
BLOCKS_PER_WINDOW = 32
# chunks that workers read for in-memory data and for inference: about this many bytes
CHUNK_BYTES = 16 << 20


def _image_bytes(data):
    return 4 * math.prod(data.image_shape)


def _chunk_rows(X):
    """Rows per storage chunk of an HDF5 dataset (h5py's or skastro's HDF5Array), else 1."""
    chunks = getattr(X, "chunks", None)
    if chunks is None and hasattr(X, "_dataset") and hasattr(X, "key"):
        try:
            chunks = X._dataset().chunks
        except Exception:  # an unreadable file fails later, with the reader's own message
            chunks = None
    return int(chunks[0]) if chunks else 1


def block_size(data):
    """Images per block: about :data:`BLOCK_BYTES`, a whole number of HDF5 storage chunks."""
    rows = max(1, BLOCK_BYTES // _image_bytes(data))
    unit = _chunk_rows(data.X)
    return max(unit, rows // unit * unit)


def windowed_order(n, rng, block, blocks_per_window=BLOCKS_PER_WINDOW):
    """A seeded order of ``n`` images that reads blocks of ``block`` consecutive images.

    Parameters
    ----------
    n : int
    rng : numpy.random.Generator
    block : int
        Images per block.
    blocks_per_window : int
        Blocks shuffled together.

    Returns
    -------
    windows : list of ndarray of int64
        The epoch's order, window by window (concatenated, a permutation of ``range(n)``):
        ``[rng.permutation(n)]`` when ``n`` fits in one window; else the blocks are permuted,
        grouped into windows, and each window's images permuted.

    Examples
    --------
    >>> windows = windowed_order(10, np.random.default_rng(0), block=2, blocks_per_window=2)
    >>> [len(w) for w in windows], sorted(np.concatenate(windows).tolist()) == list(range(10))
    ([4, 4, 2], True)
    """
    window = block * blocks_per_window
    if n <= window:
        return [rng.permutation(n)]
    starts = rng.permutation(np.arange(0, n, block))
    windows = []
    for first in range(0, len(starts), blocks_per_window):
        runs = [np.arange(s, min(s + block, n)) for s in starts[first : first + blocks_per_window]]
        windows.append(rng.permutation(np.concatenate(runs)))
    return windows


def read_rows(data, index):
    """Images at ``index`` (any order) as float32, lazily read arrays in runs of rows.

    A lazily read array is read with one slice per run of consecutive rows (the fastest access
    for every format: one ``read`` for a .npy file, one hyperslab for HDF5), then put in the
    order of ``index``; an in-memory array is fancy-indexed.
    """
    index = np.asarray(index, dtype=np.int64)
    if not is_lazy_array(data.X) or len(index) == 0:
        return data.read(index)
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
    runs = np.split(ordered, breaks)
    out = np.empty((len(index), *data.image_shape), dtype=np.float32)
    done = 0
    for run in runs:
        out[done : done + len(run)] = read_slice(data, int(run[0]), int(run[-1]) + 1)
        done += len(run)
    out[order] = out.copy()
    return out


def read_slice(data, start, stop):
    """Images ``start:stop`` as a float32 array of their own (never a view of a memmap)."""
    images = data.read(slice(start, stop))
    if isinstance(data.X, np.memmap):
        images = np.array(images)  # a copy: the pages of the map can then be released
        _release_pages(data.X, start, stop)
    return images


def _release_pages(X, start, stop):
    """Drop rows ``start:stop`` of a read-only memmap from this process's resident memory.

    Pages of a memory map that have been read stay mapped into the process and count as its
    resident memory, so streaming a memmap larger than RAM would show a resident size that
    grows to the file's size. The data stay in the page cache (and are read again from the file
    if touched again). Best effort: only read-only maps on systems with ``madvise``.
    """
    mapping = getattr(X, "_mmap", None)
    if mapping is None or getattr(X, "mode", None) != "r" or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if X.ndim == 0 or X.strides[0] <= 0 or not X[start:stop].flags.c_contiguous:
        return
    try:
        base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        first = X[start:stop].ctypes.data - base
        length = (stop - start) * X.strides[0]
        page = mmap.PAGESIZE
        lo = first // page * page
        hi = min(-(-(first + length) // page) * page, len(mapping))
        if hi > lo:
            mapping.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    except (AttributeError, OSError, TypeError, ValueError):
        pass


class _ChunkReader(torch.utils.data.Dataset):
    """A dataset whose item ``i`` is chunk ``i``: ``(images, index)`` of the given rows."""

    def __init__(self, data, chunks):
        self.data = data
        self.chunks = chunks

    def __len__(self):
        return len(self.chunks)

    def __getitem__(self, i):
        chunk = self.chunks[i]
        if isinstance(chunk, slice):
            index = np.arange(chunk.start, chunk.stop)
            images = read_slice(self.data, chunk.start, chunk.stop)
        else:
            index = chunk
            images = read_rows(self.data, chunk)
        if not images.flags.writeable:  # a view of a read-only array: copy it out
            images = images.copy()
        return torch.from_numpy(images), torch.from_numpy(index)


def _loader(data, chunks, num_workers, pin_memory):
    return torch.utils.data.DataLoader(
        _ChunkReader(data, chunks),
        batch_size=None,  # each item is already a chunk of images
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if num_workers else None,
    )


def _is_cuda(device):
    return torch.device(device).type == "cuda"


class TrainingBatches:
    """The training batches of one fit: ``(images, index)`` pairs, a new order each epoch.

    ``images`` is a float32 tensor ``(b, C, H, W)`` (on the GPU when a GPU copy is used or the
    chunks are copied there, else on the host, pinned when the device is a GPU); ``index`` is
    a CPU int64 tensor of the images' positions in the data (skorch's ``y``), for losses that
    look up per-image information.

    Parameters
    ----------
    data : ImageBatches
    batch_size : int
    drop_last : bool
        Leave out the last, incomplete batch of each epoch.
    rng : numpy.random.Generator
        Draws each epoch's order.
    device : str
        Where training runs.
    device_cache : torch.Tensor or None
        All images on the GPU, in data order.
    num_workers : int
        Reader processes (chunked reading); 0 reads chunks in the training process.
    """

    def __init__(
        self, data, batch_size, *, drop_last, rng, device="cpu", device_cache=None, num_workers=0
    ):
        self.data = data
        self.batch_size = int(batch_size)
        self.drop_last = drop_last
        self.rng = rng
        self.device = device
        self.device_cache = device_cache
        self.num_workers = int(num_workers)
        self.lazy = is_lazy_array(data.X)

    def __len__(self):
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self):
        """This epoch's order of the images, as a list of chunks (draws from ``rng``)."""
        n = len(self.data)
        if self.lazy and self.device_cache is None:
            return windowed_order(n, self.rng, block_size(self.data))
        order = self.rng.permutation(n)
        if not self.num_workers:
            return [order]
        # whole batches per chunk, so no batch straddles two chunks
        per_chunk = max(1, CHUNK_BYTES // (_image_bytes(self.data) * self.batch_size))
        rows = per_chunk * self.batch_size
        return [order[s : s + rows] for s in range(0, n, rows)]

    def __iter__(self):
        chunks = self.order()
        if self.device_cache is not None:
            yield from self._from_device_cache(chunks[0])
        elif self.lazy or self.num_workers:
            yield from self._from_chunks(chunks)
        else:
            yield from self._from_memory(chunks[0])

    def _batch_bounds(self, n):
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                return
            yield start, stop

    def _from_device_cache(self, order):
        # one host-to-GPU copy of the order per epoch: a small copy per batch would wait for
        # the GPU to finish its queued work each time
        on_device = torch.from_numpy(order).to(self.device_cache.device)
        index = torch.from_numpy(order)
        for start, stop in self._batch_bounds(len(order)):
            yield self.device_cache[on_device[start:stop]], index[start:stop]

    def _from_memory(self, order):
        pin = _is_cuda(self.device)
        for start, stop in self._batch_bounds(len(order)):
            index = order[start:stop]
            batch = torch.from_numpy(self.data.read(index))
            # pinned host memory lets the copy to the GPU run asynchronously
            yield (batch.pin_memory() if pin else batch), torch.from_numpy(index)

    def _from_chunks(self, chunks):
        on_gpu = _is_cuda(self.device)
        loader = _loader(self.data, chunks, self.num_workers, pin_memory=on_gpu)
        carry = None
        for images, index in loader:
            if on_gpu:
                images = images.to(self.device, non_blocking=True)
            if carry is not None:
                images = torch.cat([carry[0], images])
                index = torch.cat([carry[1], index])
                carry = None
            full = len(images) // self.batch_size * self.batch_size
            for start in range(0, full, self.batch_size):
                stop = start + self.batch_size
                yield images[start:stop], index[start:stop]
            if full < len(images):
                carry = images[full:], index[full:]
        if carry is not None and not self.drop_last:
            yield carry


def inference_batches(data, batch_size, device, *, num_workers=0):
    """Yield ``(start, stop, images)`` for consecutive batches of ``data``, in order.

    ``images`` is a float32 host tensor, pinned when ``device`` is a GPU (copy it with
    ``non_blocking=True``). Lazily read data, or any data with ``num_workers > 0``, are read by
    a DataLoader in contiguous chunks of several batches, ahead of the caller.
    """
    n = len(data)
    pin = _is_cuda(device)
    if not (is_lazy_array(data.X) or num_workers):
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch = torch.from_numpy(data.read(slice(start, stop)))
            yield start, stop, (batch.pin_memory() if pin else batch)
        return
    rows = max(1, CHUNK_BYTES // (_image_bytes(data) * batch_size)) * batch_size
    chunks = [slice(s, min(s + rows, n)) for s in range(0, n, rows)]
    for images, index in _loader(data, chunks, num_workers, pin_memory=pin):
        first = int(index[0])
        for start in range(0, len(images), batch_size):
            stop = min(start + batch_size, len(images))
            yield first + start, first + stop, images[start:stop]
