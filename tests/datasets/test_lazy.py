"""Lazily loaded folders: load_fits / load_image_folder with lazy=True, and open_data on folders."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from skastro.datasets import LazyImageFiles, load_fits, load_image_folder, open_data
from skastro.exceptions import DataLoadError


@pytest.fixture
def fits_folder(tmp_path):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        pixels = rng.normal(100 + i, 5, size=(2, 8, 8)).astype(">f4")
        fits.PrimaryHDU(pixels).writeto(folder / f"c{i}.fits", checksum=True)
    return folder


@pytest.fixture
def png_folder(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_lazy_fits_equals_eager(fits_folder):
    eager = load_fits(fits_folder)
    lazy = load_fits(fits_folder, lazy=True)
    assert isinstance(lazy.images, LazyImageFiles)
    assert lazy.images.shape == eager.images.shape == (7, 2, 8, 8)
    assert lazy.images.dtype == np.float32 and lazy.images.ndim == 4 and len(lazy.images) == 7
    np.testing.assert_array_equal(np.asarray(lazy.images), eager.images)
    np.testing.assert_array_equal(lazy.images[[5, 1, 5]], eager.images[[5, 1, 5]])
    np.testing.assert_array_equal(lazy.images[-1], eager.images[-1])
    np.testing.assert_array_equal(lazy.images[2:6:2, 1], eager.images[2:6:2, 1])
    mask = np.arange(7) % 3 == 0
    np.testing.assert_array_equal(lazy.images[mask], eager.images[mask])
    assert lazy.ids == eager.ids and lazy.filenames == eager.filenames and lazy.hdus == eager.hdus
    assert len(lazy.headers) == 7
    assert lazy.headers[3]["NAXIS1"] == eager.headers[3]["NAXIS1"] == 8


def test_lazy_fits_checks_every_file_at_load_like_an_eager_load(fits_folder):
    content = (fits_folder / "c0.fits").read_bytes()
    (fits_folder / "bad.fits").write_bytes(content[:3000])
    with pytest.raises(DataLoadError, match=r"bad\.fits"):
        load_fits(fits_folder, lazy=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = load_fits(fits_folder, lazy=True, skip_bad=True)
    assert len(data.images) == 7
    assert [name for name, _ in data.skipped] == [str(fits_folder / "bad.fits")]
    fits.PrimaryHDU(np.zeros((9, 8), dtype=">f4")).writeto(fits_folder / "odd.fits")
    (fits_folder / "bad.fits").unlink()
    with pytest.raises(ValueError, match=r"odd\.fits"):
        load_fits(fits_folder, lazy=True)


def test_lazy_images_name_a_file_that_changed_after_loading(fits_folder):
    data = load_fits(fits_folder, lazy=True)
    (fits_folder / "c2.fits").write_bytes(b"not FITS any more")
    data.images[[0, 1]]  # other files still read
    with pytest.raises(DataLoadError, match=r"c2\.fits"):
        data.images[1:4]
    fits.PrimaryHDU(np.zeros((4, 4), dtype=">f4")).writeto(fits_folder / "c2.fits", overwrite=True)
    with pytest.raises(DataLoadError, match="replaced"):
        data.images[2]


def test_lazy_images_pickle_as_file_names(fits_folder):
    images = load_fits(fits_folder, lazy=True).images
    payload = pickle.dumps(images)
    assert len(payload) < 2000  # names, not pixels
    np.testing.assert_array_equal(pickle.loads(payload)[3], images[3])


def test_lazy_index_errors(fits_folder):
    images = load_fits(fits_folder, lazy=True).images
    for bad in (7, -8, [0, 9]):
        with pytest.raises(IndexError):
            images[bad]
    with pytest.raises(IndexError):
        images[np.ones(3, dtype=bool)]
    with pytest.raises(IndexError):
        images[np.array([0.5])]


def test_lazy_image_folder_equals_eager(png_folder):
    eager = load_image_folder(png_folder)
    lazy = load_image_folder(png_folder, lazy=True)
    assert isinstance(lazy.images, LazyImageFiles)
    np.testing.assert_array_equal(np.asarray(lazy.images), eager.images)
    assert lazy.ids == eager.ids
    (png_folder / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        assert len(load_image_folder(png_folder, lazy=True, skip_bad=True).images) == 5


def test_open_data_opens_folders_lazily_and_files_eagerly(fits_folder, png_folder):
    assert isinstance(open_data(fits_folder).images, LazyImageFiles)
    assert isinstance(open_data(png_folder).images, LazyImageFiles)
    single = open_data(fits_folder / "c0.fits")
    assert isinstance(single.images, np.ndarray) and single.images.shape == (1, 2, 8, 8)


def test_estimator_fits_and_embeds_a_lazy_fits_folder(fits_folder):
    from skastro import ConvAutoencoder

    data = load_fits(fits_folder, lazy=True)
    eager = load_fits(fits_folder).images
    params = dict(n_components=2, widths=(4,), max_epochs=1, batch_size=4, random_state=0)
    ae = ConvAutoencoder(**params, num_workers=0).fit(data.images)
    reference = ConvAutoencoder(**params).fit(eager)
    # the folder fits in one shuffling window: the same order as in memory, the same network
    np.testing.assert_allclose(ae.transform(data.images), reference.transform(eager), atol=1e-6)
    np.testing.assert_allclose(ae.transform(data.images), ae.transform(eager), atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files in /proc")
def test_npy_array_closes_its_file(tmp_path):
    import gc

    from skastro.datasets import NpyArray

    def open_files():
        return len(list(Path("/proc/self/fd").iterdir()))

    path = tmp_path / "x.npy"
    np.save(path, np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8))
    before = open_files()
    array = NpyArray(path)
    np.testing.assert_array_equal(array[1:3], np.load(path)[1:3])
    assert open_files() == before + 1
    array.close()
    assert open_files() == before
    np.testing.assert_array_equal(array[3], np.load(path)[3])  # re-opened on the next read
    del array
    gc.collect()
    assert open_files() == before  # and closed when collected
