"""Every corrupt or special input is a DataLoadError naming the file (issue 27): complex HDF5
data refused, text given as .npy named as such, devices and pipes never opened, every bad file
of a folder reported at once, headers that announce more data than the file holds."""

import io
import os

import h5py
import numpy as np
import pytest
from astropy.io import fits

from skastro.datasets import (
    HDF5Array,
    load_fits,
    load_hdf5,
    load_image_folder,
    load_sdss_npy,
    open_data,
)
from skastro.exceptions import DataLoadError


def test_hdf5_complex_data_is_refused_not_truncated(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.ones((3, 8, 8), np.complex64) * (1 + 2j))
        f.create_dataset("names", data=np.array([b"a", b"b", b"c"]))
    for load in (load_hdf5, open_data):
        with pytest.raises(DataLoadError, match=r"c\.h5: dataset 'images' holds complex numbers"):
            load(path)
    with pytest.raises(DataLoadError, match="plain numbers"):
        HDF5Array(path, "names")


def test_sdss_loader_says_a_text_file_is_not_npy(tmp_path):
    path = tmp_path / "objects.npy"
    path.write_text("objID,class\n1,STAR\n")
    with pytest.raises(DataLoadError, match=r"objects\.npy: it is not a \.npy file") as error:
        load_sdss_npy(path)
    assert "Python objects" not in str(error.value)
    path.write_bytes(b"")
    with pytest.raises(DataLoadError, match="it is empty"):
        load_sdss_npy(path)


def test_sdss_complex_image_field_is_refused(tmp_path):
    objects = np.zeros(2, dtype=[("objID", "i8"), ("image", "c8", (5, 8, 8))])
    np.save(tmp_path / "x.npy", objects)
    with pytest.raises(DataLoadError, match="complex numbers"):
        load_sdss_npy(tmp_path / "x.npy")


@pytest.mark.parametrize(
    "loader", [load_fits, load_sdss_npy, load_hdf5, load_image_folder, open_data]
)
def test_devices_and_pipes_are_named_not_opened(loader, tmp_path):
    with pytest.raises(DataLoadError, match="/dev/zero: it is a character device"):
        loader("/dev/zero")
    pipe = tmp_path / "data.fits"
    os.mkfifo(pipe)  # opening it for reading would block this test for ever
    with pytest.raises(DataLoadError, match=r"named pipe \(FIFO\), not a regular file"):
        loader(pipe)
    with pytest.raises(FileNotFoundError, match="no such file"):
        loader(tmp_path / "missing.fits")
    link = tmp_path / "dangling.fits"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="symbolic link"):
        loader(link)


@pytest.mark.parametrize(
    ("suffix", "loader"),
    [
        (".fits", load_fits),
        (".npy", load_sdss_npy),
        (".png", load_image_folder),
        (".fits", open_data),
    ],
)
def test_every_bad_file_of_a_folder_is_reported_at_once(tmp_path, suffix, loader):
    for i in range(3):
        (tmp_path / f"bad{i}{suffix}").write_bytes(b"garbage" * (i + 1))
    with pytest.raises(DataLoadError) as error:
        loader(tmp_path)
    assert [os.path.basename(name) for name, _ in error.value.failures] == [
        f"bad{i}{suffix}" for i in range(3)
    ]
    assert str(error.value).startswith("cannot read 3 files: ")
    assert error.value.filename.endswith(f"bad0{suffix}")  # the first, for older callers


@pytest.mark.parametrize(
    ("suffix", "loader"),
    [(".fits", load_fits), (".npy", load_sdss_npy), (".png", load_image_folder)],
)
def test_folders_leave_out_hidden_files_but_report_dangling_links(tmp_path, suffix, loader):
    good = tmp_path / f"good{suffix}"
    if suffix == ".fits":
        fits.PrimaryHDU(np.ones((8, 8), np.float32)).writeto(good)
    elif suffix == ".npy":
        np.save(good, np.ones(1, dtype=[("objID", "i8"), ("image", "f4", (5, 8, 8))]))
    else:
        from PIL import Image

        Image.fromarray(np.full((8, 8), 7, np.uint8)).save(good)
    # what macOS leaves on shared drives: "._" resource forks, not images
    (tmp_path / f"._good{suffix}").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert len(loader(tmp_path).images) == 1
    (tmp_path / f"moved{suffix}").symlink_to(tmp_path / "archive" / f"moved{suffix}")
    with pytest.raises(DataLoadError, match=f"moved{suffix}"):
        loader(tmp_path)


def test_fits_header_announcing_more_data_than_the_file_is_refused_before_allocating(tmp_path):
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.zeros((8, 8), ">f4")).writeto(buffer)
    data = buffer.getvalue().replace(
        b"NAXIS1  =                    8", b"NAXIS1  =           1000000000"
    )
    (tmp_path / "big.fits").write_bytes(data)
    with pytest.raises(DataLoadError, match=r"big\.fits: .*(truncated|announces)"):
        load_fits(tmp_path / "big.fits")


def test_npy_header_that_numpy_cannot_parse(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 8, 8), "f4"))
    data = buffer.getvalue().replace(b"(4, 8, 8)", b"\x014, 8, 8)")
    (tmp_path / "x.npy").write_bytes(data)
    with pytest.raises(DataLoadError, match=r"x\.npy: not a readable \.npy file"):
        open_data(tmp_path / "x.npy")


def test_loaders_never_change_their_input(tmp_path):
    import hashlib

    buffer = io.BytesIO()
    fits.PrimaryHDU(np.zeros((8, 8), ">f4")).writeto(buffer)
    (tmp_path / "a.fits").write_bytes(buffer.getvalue())
    (tmp_path / "b.fits").write_bytes(buffer.getvalue()[:1000])
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    with pytest.raises(DataLoadError):
        load_fits(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(load_fits(tmp_path, skip_bad=True).images) == 1
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()} == before


def test_messages_name_what_skastro_can_do(tmp_path):
    (tmp_path / "notes.fits").write_text("a text file named .fits")
    with pytest.raises(DataLoadError, match="not a readable FITS file") as error:
        load_fits(tmp_path)
    assert "ignore_missing_simple" not in str(error.value)  # astropy's option, not ours
    tree = tmp_path / "by_class"
    for name in ("spiral", "elliptical"):
        (tree / name).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"sub-folders \(elliptical, spiral\)"):
        open_data(tree)
