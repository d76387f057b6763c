"""Reading images for training and inference: order, windows, workers, chunks."""

import h5py
import numpy as np
import pytest

from skastro import ConvAutoencoder, _loading
from skastro._loading import (
    TrainingBatches,
    block_size,
    inference_batches,
    read_rows,
    windowed_order,
)
from skastro._validation import check_images
from skastro.datasets import NpyArray, load_hdf5


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """600 16x16 images in memory, in a .npy file (NpyArray) and in a chunked HDF5 file."""
    folder = tmp_path_factory.mktemp("stored")
    X = np.random.default_rng(0).normal(size=(600, 1, 16, 16)).astype(np.float32)
    np.save(folder / "images.npy", X)
    with h5py.File(folder / "images.h5", "w") as f:
        f.create_dataset("images", data=X, chunks=(8, 1, 16, 16))
    return {
        "memory": X,
        "npy": NpyArray(folder / "images.npy"),
        "hdf5": load_hdf5(folder / "images.h5").images,
        "memmap": np.load(folder / "images.npy", mmap_mode="r"),
    }


@pytest.fixture
def small_windows(monkeypatch):
    # blocks of 16 images (1 KiB each), 4 blocks per window: 600 images make 10 windows
    monkeypatch.setattr(_loading, "BLOCK_BYTES", 16 * 1024)
    monkeypatch.setattr(_loading, "BLOCKS_PER_WINDOW", 4)


def test_windowed_order_is_a_seeded_permutation_of_sequential_blocks():
    windows = windowed_order(1000, np.random.default_rng(0), block=16, blocks_per_window=4)
    order = np.concatenate(windows)
    assert sorted(order.tolist()) == list(range(1000))
    assert [len(w) for w in windows[:-1]] == [64] * (len(windows) - 1) or len(windows[-1]) < 64
    for window in windows:
        # a window is a few runs of consecutive images (its blocks), read sequentially
        ordered = np.sort(window)
        assert np.count_nonzero(np.diff(ordered) != 1) < 4
    again = windowed_order(1000, np.random.default_rng(0), block=16, blocks_per_window=4)
    np.testing.assert_array_equal(np.concatenate(again), order)


def test_one_window_is_the_in_memory_permutation():
    (order,) = windowed_order(50, np.random.default_rng(3), block=16, blocks_per_window=4)
    np.testing.assert_array_equal(order, np.random.default_rng(3).permutation(50))


def test_block_size_follows_hdf5_chunks(stored, small_windows):
    assert block_size(check_images(stored["npy"])) == 16
    with_chunks = check_images(stored["hdf5"])
    assert block_size(with_chunks) % 8 == 0


@pytest.mark.parametrize("kind", ["memory", "npy", "hdf5", "memmap"])
def test_read_rows_any_order(stored, kind):
    data = check_images(stored[kind])
    index = np.array([5, 3, 4, 100, 2, 599, 0])
    np.testing.assert_array_equal(read_rows(data, index), stored["memory"][index])


def _epochs(data, *, num_workers, epochs=2, batch_size=32, drop_last=False):
    batches = TrainingBatches(
        data, batch_size, drop_last=drop_last, rng=np.random.default_rng(7), num_workers=num_workers
    )
    return [[(b.numpy().copy(), i.numpy().copy()) for b, i in batches] for _ in range(epochs)]


@pytest.mark.parametrize("kind", ["npy", "hdf5", "memmap"])
def test_training_batches_do_not_depend_on_the_workers(stored, kind, small_windows):
    data = check_images(stored[kind])
    without = _epochs(data, num_workers=0)
    with_workers = _epochs(data, num_workers=2)
    for epoch_a, epoch_b in zip(without, with_workers):
        assert len(epoch_a) == len(epoch_b) == -(-600 // 32)
        for (images_a, index_a), (images_b, index_b) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(index_a, index_b)
            np.testing.assert_array_equal(images_a, images_b)
            np.testing.assert_array_equal(images_a, stored["memory"][index_a])
    # each epoch visits every image once, in a new order
    for epoch in without:
        assert sorted(np.concatenate([i for _, i in epoch]).tolist()) == list(range(600))
    assert not np.array_equal(without[0][0][1], without[1][0][1])


def test_training_batches_drop_last_across_windows(stored, small_windows):
    data = check_images(stored["npy"])
    (epoch,) = _epochs(data, num_workers=0, epochs=1, batch_size=64, drop_last=True)
    assert [len(i) for _, i in epoch] == [64] * (600 // 64)


def test_in_memory_chunks_with_workers_keep_the_in_memory_order(stored):
    data = check_images(stored["memory"])
    (plain,) = _epochs(data, num_workers=0, epochs=1)
    (chunked,) = _epochs(data, num_workers=2, epochs=1)
    for (images_a, index_a), (images_b, index_b) in zip(plain, chunked):
        np.testing.assert_array_equal(index_a, index_b)
        np.testing.assert_array_equal(images_a, images_b)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_inference_batches_in_order(stored, num_workers, monkeypatch):
    monkeypatch.setattr(_loading, "CHUNK_BYTES", 64 * 1024)
    data = check_images(stored["hdf5"])
    seen = list(inference_batches(data, 100, "cpu", num_workers=num_workers))
    assert [(start, stop) for start, stop, _ in seen] == [
        (s, min(s + 100, 600)) for s in range(0, 600, 100)
    ]
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in seen]), stored["memory"])


class _Reads:
    """A lazily read array that remembers the largest read (to show memory stays bounded)."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.largest = 0

    def __len__(self):
        return len(self.array)

    def __getitem__(self, index):
        block = self.array[index]
        self.largest = max(self.largest, len(np.atleast_1d(block)))
        return block


def test_fit_reads_lazy_data_a_window_at_a_time(small_windows):
    # 5000 images of 8x8: blocks of 64 images, windows of 256
    reads = _Reads(np.random.default_rng(0).normal(size=(5000, 1, 8, 8)).astype(np.float32))
    ae = ConvAutoencoder(2, widths=(4,), max_epochs=1, batch_size=32, random_state=0, num_workers=0)
    ae.fit(reads)
    # the statistics sample (4096 images) is read in runs too, never the whole array
    assert reads.largest <= 256


@pytest.mark.parametrize("kind", ["npy", "hdf5", "memmap"])
def test_fit_on_lazy_data_does_not_depend_on_the_workers(stored, kind, small_windows):
    params = dict(n_components=2, widths=(4,), max_epochs=2, batch_size=32, random_state=0)
    a = ConvAutoencoder(**params, num_workers=0).fit(stored[kind])
    b = ConvAutoencoder(**params, num_workers=2).fit(stored[kind])
    np.testing.assert_array_equal(a.transform(stored[kind]), b.transform(stored["memory"]))
