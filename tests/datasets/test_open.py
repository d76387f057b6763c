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
