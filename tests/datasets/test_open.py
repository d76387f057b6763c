"""open_data: the loader is chosen from what the path holds."""

import numpy as np


def test_open_data_dispatches_on_the_kind_of_path(tmp_path, monkeypatch):
    from sklearn.utils import Bunch

    from skastro.datasets import _open, open_data

    calls = []

    def fake(name):
        def loader(path, *args, **kwargs):
            calls.append((name, path.name, args, kwargs))
            return Bunch(images=np.zeros((2, 4, 4)), ids=["a", "b"])

        return loader

    for name in ("load_fits", "load_sdss_npy", "load_image_folder", "load_hdf5"):
        monkeypatch.setattr(_open, name, fake(name))
    (tmp_path / "fits").mkdir()
    (tmp_path / "fits" / "a.fits").touch()
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "a.PNG").touch()
    for name in ("x.fits", "x.fit", "x.h5", "x.hdf5", "x.txt"):
        (tmp_path / name).touch()
    # an SDSS-style structured .npy (a plain numeric one is read lazily, without a loader)
    np.save(tmp_path / "x.npy", np.zeros(2, dtype=[("image", "f4", (1, 4, 4))]))
    open_data(tmp_path / "x.fits")
    open_data(tmp_path / "x.fit")
    open_data(tmp_path / "fits")
    open_data(tmp_path / "png")
    open_data(tmp_path / "x.npy")
    open_data(tmp_path / "x.h5", key="cutouts")
    open_data(tmp_path / "x.hdf5")
    assert [c[0] for c in calls] == [
        "load_fits", "load_fits", "load_fits", "load_image_folder", "load_sdss_npy",
        "load_hdf5", "load_hdf5",
    ]  # fmt: skip
    assert calls[5][2] == ("cutouts",)


def test_channels_last_images_are_read_as_asked_and_flagged_when_not(tmp_path):
    import h5py
    import pytest

    from skastro.datasets import open_data

    rgb = np.random.default_rng(0).random((6, 12, 12, 3)).astype(np.float32)  # (n, H, W, C)
    with h5py.File(tmp_path / "rgb.h5", "w") as f:
        f.create_dataset("images", data=rgb)
    np.save(tmp_path / "rgb.npy", rgb)
    data = open_data(tmp_path / "rgb.h5", channels_last=True)
    np.testing.assert_array_equal(data.images[:], np.moveaxis(rgb, -1, 1))
    lines = []
    assert open_data(tmp_path / "rgb.h5", report=lines.append).images.shape == (6, 12, 12, 3)
    assert len(lines) == 1 and "read as 12 channels of 12x3 pixels" in lines[0]
    assert "--channels-last" in lines[0]
    with pytest.warns(UserWarning, match=r"np\.moveaxis"):
        open_data(tmp_path / "rgb.npy")
    with pytest.raises(ValueError, match=r"channels_last .* is for HDF5 files"):
        open_data(tmp_path / "rgb.npy", channels_last=True)
    # channels-first images of the same size are not flagged
    lines.clear()
    with h5py.File(tmp_path / "first.h5", "w") as f:
        f.create_dataset("images", data=np.moveaxis(rgb, -1, 1))
    open_data(tmp_path / "first.h5", report=lines.append)
    assert lines == []
