"""Tests for skastro.datasets: synthetic generators and file loaders."""

import gzip
import pickle
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from PIL import Image
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from skastro.datasets import (
    HDF5Array,
    load_fits,
    load_hdf5,
    load_hubble_cutouts,
    load_image_folder,
    load_sdss_npy,
    make_disks,
    make_galaxies,
    make_star_galaxy,
)
from skastro.exceptions import DataLoadError

GENERATORS = {
    "disks": (make_disks, {"image_size": 32}),
    "galaxies": (make_galaxies, {"image_size": 32, "n_bands": 2}),
    "star_galaxy": (make_star_galaxy, {"image_size": 32}),
}


def concentration(images):
    """r-band flux within 2 px of the centre over flux within 6 px (SDSS-like index)."""
    size = images.shape[-1]
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    r_band = images[:, 2]
    return r_band[:, radius <= 2].sum(axis=1) / r_band[:, radius <= 6].sum(axis=1)


def snapshot(folder):
    """Bytes and modification times of every file under ``folder``."""
    return {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------------------------------------
# generators: shared contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_is_deterministic(name):
    make, kwargs = GENERATORS[name]
    first = make(12, random_state=3, **kwargs)
    again = make(12, random_state=3, **kwargs)
    other = make(12, random_state=4, **kwargs)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.target, again.target)
    pd.testing.assert_frame_equal(first.metadata, again.metadata)
    if "masks" in first:
        np.testing.assert_array_equal(first.masks, again.masks)
    assert not np.array_equal(first.images, other.images)
    # a seeded legacy RandomState is repeatable too
    legacy = make(12, random_state=np.random.RandomState(0), **kwargs).images
    np.testing.assert_array_equal(
        legacy, make(12, random_state=np.random.RandomState(0), **kwargs).images
    )


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_bunch_layout(name):
    make, kwargs = GENERATORS[name]
    data = make(10, random_state=0, **kwargs)
    n_channels = {"disks": 1, "galaxies": 2, "star_galaxy": 5}[name]
    assert data.images.shape == (10, n_channels, 32, 32)
    assert data.images.dtype == np.float32
    assert data.images.flags.c_contiguous
    assert np.isfinite(data.images).all()
    assert data.target.shape == (10,)
    assert data.target.dtype.kind == "i"
    assert set(data.target) <= set(range(len(data.target_names)))
    assert isinstance(data.metadata, pd.DataFrame) and len(data.metadata) == 10
    assert isinstance(data.DESCR, str) and len(data.DESCR) > 100
    images, target = make(10, random_state=0, return_X_y=True, **kwargs)
    np.testing.assert_array_equal(images, data.images)
    np.testing.assert_array_equal(target, data.target)


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (make_disks, {"n_samples": 0}),
        (make_disks, {"planet_fraction": 1.5}),
        (make_disks, {"signatures": ("wobble",)}),
        (make_galaxies, {"noise_sigma": -1.0}),
        (make_galaxies, {"size_range": (5.0, 2.0)}),
        (make_star_galaxy, {"galaxy_fraction": -0.1}),
        (make_star_galaxy, {"random_state": "seed"}),
    ],
)
def test_generator_rejects_bad_parameters(make, kwargs):
    with pytest.raises(ValueError):
        make(**{"n_samples": 4, **kwargs})


# ---------------------------------------------------------------------------------------------
# make_disks
# ---------------------------------------------------------------------------------------------


def test_disks_labels_and_metadata():
    data = make_disks(40, random_state=0)
    assert data.target.sum() == 20  # planet_fraction=0.5, exact counts
    meta = data.metadata
    assert {"inclination", "position_angle", "signature", "n_rings"} <= set(meta.columns)
    assert ((meta["signature"] == "none") == (data.target == 0)).all()
    assert set(meta["signature"][data.target == 1]) <= {"gap", "spiral", "kink", "point_source"}
    assert meta["inclination"].between(0, 70).all()
    # natural rings in both classes, so "has a ring" is not the label
    assert (meta["n_rings"][data.target == 0] > 0).any()
    # peak ~1, dark corners
    peaks = data.images.reshape(40, -1).max(axis=1)
    assert np.all((peaks > 0.9) & (peaks < 1.3))
    corners = data.images[:, 0, :6, :6]
    assert np.abs(corners).mean() < 0.03

    only_gaps = make_disks(20, signatures=("gap",), planet_fraction=0.25, random_state=0)
    assert set(only_gaps.metadata["signature"]) == {"none", "gap"}
    assert only_gaps.target.sum() == 5


def test_disk_signatures_only_change_planet_disks():
    # the random stream does not depend on the strength: with the same seed, smooth disks are
    # identical and every planet disk differs
    weak = make_disks(16, signature_strength=0.0, random_state=1)
    strong = make_disks(16, signature_strength=1.0, random_state=1)
    changed = np.abs(weak.images - strong.images).reshape(16, -1).max(axis=1) > 1e-3
    np.testing.assert_array_equal(changed, weak.target == 1)


def test_disk_signatures_are_subtle_for_pixel_pca():
    data = make_disks(200, random_state=0)
    embedding = PCA(10, random_state=0).fit_transform(data.images.reshape(200, -1))
    labels = KMeans(2, n_init=4, random_state=0).fit_predict(embedding)
    assert adjusted_rand_score(data.target, labels) < 0.1


# ---------------------------------------------------------------------------------------------
# make_galaxies
# ---------------------------------------------------------------------------------------------


def test_galaxies_classes_masks_and_brightness():
    data = make_galaxies(40, random_state=0)
    assert list(data.target_names) == ["elliptical", "spiral", "edge_on", "irregular"]
    np.testing.assert_array_equal(np.bincount(data.target), [10, 10, 10, 10])
    assert data.masks.shape == (40, 64, 64) and data.masks.dtype == bool
    # clean: zero sky, peak in peak_range
    assert data.images.min() >= 0.0
    peaks = data.images.reshape(40, -1).max(axis=1)
    np.testing.assert_allclose(peaks, data.metadata["peak"], rtol=1e-5)
    assert np.all((peaks >= 0.6) & (peaks <= 1.0))
    # masks cover the galaxy: every masked pixel is brighter than every unmasked one
    for image, mask in zip(data.images[:, 0], data.masks):
        assert 0 < mask.sum() < mask.size
        assert image[mask].min() >= image[~mask].max()
    assert set(data.metadata["subtype"][data.target == 3]) <= {"clumpy", "merger"}


def test_galaxies_noise_leaves_masks_alone():
    clean = make_galaxies(8, image_size=32, random_state=5)
    noisy = make_galaxies(8, image_size=32, noise_sigma=0.05, random_state=5)
    np.testing.assert_array_equal(clean.masks, noisy.masks)
    residual = noisy.images - clean.images
    assert 0.04 < residual.std() < 0.06


def test_galaxy_colours_ellipticals_redder_than_irregulars():
    data = make_galaxies(40, image_size=32, n_bands=3, random_state=0)
    flux = data.images.sum(axis=(2, 3))
    red_over_blue = flux[:, 2] / flux[:, 0]
    assert red_over_blue[data.target == 0].mean() > red_over_blue[data.target == 3].mean()


# ---------------------------------------------------------------------------------------------
# make_star_galaxy
# ---------------------------------------------------------------------------------------------


def test_star_galaxy_layout_and_masks():
    data = make_star_galaxy(60, galaxy_fraction=0.3, random_state=0)
    assert data.images.shape == (60, 5, 64, 64)
    assert list(data.target_names) == ["STAR", "GALAXY"]
    assert data.target.sum() == 18
    assert list(data.bands) == ["u", "g", "r", "i", "z"]
    meta = data.metadata
    assert (meta["class"] == np.where(data.target == 1, "GALAXY", "STAR")).all()
    assert meta["sersic_n"][data.target == 0].isna().all()
    assert meta["r_eff"][data.target == 1].between(0.3, 30).all()
    assert meta["seeing_px"].between(1.0 / 0.396, 2.0 / 0.396).all()

    masks = data.masks
    assert masks.shape == (60, 64, 64)
    assert set(np.unique(masks)) <= {0, 1, 2}
    assert not (masks[~meta["has_neighbour"].to_numpy()] == 2).any()
    # the central object is in the mask at the centre for all but the faintest objects
    bright = meta["snr_r"].to_numpy() > 10
    assert (masks[bright, 32, 32] == 1).all()
    r_band = data.images[:, 2]
    assert r_band[masks == 1].mean() > 5 * r_band[masks == 0].mean()


def test_star_galaxy_stars_are_more_concentrated():
    data = make_star_galaxy(200, random_state=1)
    index = concentration(data.images)
    stars, galaxies = data.target == 0, data.target == 1
    assert index[stars].mean() > index[galaxies].mean()
    # hard, but not hopeless: the defaults are tuned to an AUC of about 0.85
    assert 0.7 < roc_auc_score(stars, index) < 0.95


def test_star_galaxy_knobs_change_difficulty():
    easy = make_star_galaxy(150, faint_fraction=0.0, magnitude_range=(15, 18), random_state=2)
    hard = make_star_galaxy(150, faint_fraction=1.0, random_state=2)
    auc_easy = roc_auc_score(easy.target == 0, concentration(easy.images))
    auc_hard = roc_auc_score(hard.target == 0, concentration(hard.images))
    assert auc_easy > auc_hard
    assert hard.metadata["snr_r"].median() < easy.metadata["snr_r"].median()


# ---------------------------------------------------------------------------------------------
# load_fits
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def scaled_fits(tmp_path):
    """A big-endian int16 image with BSCALE, BZERO and BLANK, and its expected values."""
    raw = (np.arange(12 * 10).reshape(12, 10) - 60).astype(">i2")
    raw[3, 4] = raw[7, 1] = -32768
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 1000.0
    hdu.header["BLANK"] = -32768
    hdu.header["OBJECT"] = "test field"
    path = tmp_path / "scaled.fits"
    hdu.writeto(path, checksum=True)
    expected = raw.astype(np.float64) * 0.5 + 1000.0
    expected[raw == -32768] = np.nan
    return path, expected.astype(np.float32)


def test_load_fits_scaling_and_blank(scaled_fits):
    path, expected = scaled_fits
    data = load_fits(path)
    assert data.images.shape == (1, 1, 12, 10)
    assert data.images.dtype == np.float32 and data.images.dtype.isnative
    np.testing.assert_array_equal(data.images[0, 0], expected)  # NaN == NaN here
    assert np.isnan(data.images).sum() == 2
    assert data.filenames == [str(path)] and data.ids == ["scaled"]
    assert data.headers[0]["OBJECT"] == "test field"


def test_load_fits_big_endian_float_cube_and_radio_axes(tmp_path):
    cube = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(">f4")
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube.fits")
    fits.PrimaryHDU(cube[None, :1]).writeto(tmp_path / "radio.fits")  # (1, 1, 8, 8)
    data = load_fits(tmp_path / "cube.fits")
    assert data.images.shape == (1, 3, 8, 8) and data.images.dtype.isnative
    np.testing.assert_array_equal(data.images[0], cube.astype(np.float32))
    assert load_fits(tmp_path / "radio.fits").images.shape == (1, 1, 8, 8)


def test_load_fits_multi_extension(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "SDSS"
    bands = [fits.ImageHDU(np.full((8, 8), i, dtype=">f4"), name=b) for i, b in enumerate("ugriz")]
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.ones(3))])
    small = fits.ImageHDU(np.zeros((4, 4), dtype=">f4"), name="THUMB")
    fits.HDUList([primary, *bands, table, small]).writeto(tmp_path / "mef.fits")

    data = load_fits(tmp_path / "mef.fits")
    assert data.images.shape == (1, 5, 8, 8)
    np.testing.assert_array_equal(data.images[0, :, 0, 0], np.arange(5))
    assert data.hdus == [[1, 2, 3, 4, 5]]
    assert data.headers[0]["EXTNAME"] == "U" and data.headers[0]["TELESCOP"] == "SDSS"

    r_only = load_fits(tmp_path / "mef.fits", hdu="R")
    assert r_only.images.shape == (1, 1, 8, 8) and r_only.images[0, 0, 0, 0] == 2
    with pytest.raises(DataLoadError, match=r"mef\.fits") as info:
        load_fits(tmp_path / "mef.fits", hdu="Q")
    assert "no HDU" in info.value.reason
    with pytest.raises(DataLoadError) as info:
        load_fits(tmp_path / "mef.fits", hdu=6)
    assert "no image data" in info.value.reason


def test_load_fits_gzip_and_folder(tmp_path):
    for i in range(3):
        fits.PrimaryHDU(np.full((6, 6), i, dtype=">i4")).writeto(tmp_path / f"f{i}.fits")
    (tmp_path / "f3.fits.gz").write_bytes(gzip.compress((tmp_path / "f0.fits").read_bytes()))
    (tmp_path / "notes.txt").write_text("not a FITS file")
    data = load_fits(tmp_path)
    assert data.images.shape == (4, 1, 6, 6)
    assert data.ids == ["f0", "f1", "f2", "f3"]
    np.testing.assert_array_equal(data.images[:, 0, 0, 0], [0, 1, 2, 0])
    assert data.skipped == []


@pytest.mark.parametrize("cut", [0, 100, 2880, 2900, 4000, -500, -1])
def test_load_fits_truncated(scaled_fits, tmp_path, cut):
    path, _ = scaled_fits
    content = path.read_bytes()
    broken = tmp_path / "broken.fits"
    broken.write_bytes(content[:cut] if cut >= 0 else content[: len(content) + cut])
    with pytest.raises(DataLoadError) as info:
        load_fits(broken)
    assert info.value.filename == str(broken)
    assert "broken.fits" in str(info.value)
    assert isinstance(info.value, OSError)


def test_load_fits_checksum_failure(scaled_fits, tmp_path):
    path, _ = scaled_fits
    content = bytearray(path.read_bytes())
    content[2880 + 10] ^= 0xFF  # one flipped data byte: astropy only warns about it
    broken = tmp_path / "flipped.fits"
    broken.write_bytes(bytes(content))
    with pytest.raises(DataLoadError, match=r"flipped\.fits") as info:
        load_fits(broken)
    assert "checksum" in info.value.reason.lower() or "datasum" in info.value.reason.lower()


def test_load_fits_folder_with_corrupt_file(tmp_path):
    for i in range(3):
        fits.PrimaryHDU(np.full((6, 6), i, dtype=">f4")).writeto(tmp_path / f"ok{i}.fits")
    content = (tmp_path / "ok0.fits").read_bytes()
    (tmp_path / "bad.fits").write_bytes(content[:3000])
    with pytest.raises(DataLoadError, match=r"bad\.fits"):
        load_fits(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = load_fits(tmp_path, skip_bad=True)
    assert data.images.shape == (3, 1, 6, 6)
    assert [name for name, _ in data.skipped] == [str(tmp_path / "bad.fits")]
    assert "bad.fits" not in " ".join(data.filenames)


def test_load_fits_shape_mismatch_names_both(tmp_path):
    fits.PrimaryHDU(np.zeros((6, 6), dtype=">f4")).writeto(tmp_path / "a.fits")
    fits.PrimaryHDU(np.zeros((7, 6), dtype=">f4")).writeto(tmp_path / "b.fits")
    with pytest.raises(ValueError, match=r"a\.fits.*\(1, 6, 6\).*b\.fits.*\(1, 7, 6\)"):
        load_fits(tmp_path)


def test_load_fits_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_fits(tmp_path / "nowhere.fits")
    with pytest.raises(FileNotFoundError, match="no FITS files"):
        load_fits(tmp_path)


# ---------------------------------------------------------------------------------------------
# load_sdss_npy
# ---------------------------------------------------------------------------------------------

SDSS_DTYPE = [("objID", ">i8"), ("image", ">f4", (5, 64, 64)), ("class", "U6"), ("z", "<f8")]


def sdss_objects(classes, first_id):
    objects = np.zeros(len(classes), dtype=SDSS_DTYPE)
    objects["objID"] = np.arange(first_id, first_id + len(classes)) + 1237650000000000000
    objects["class"] = classes
    objects["z"] = np.linspace(0.0, 0.1, len(classes))
    objects["image"] = np.arange(len(classes))[:, None, None, None] + first_id
    return objects


def test_load_sdss_npy_labelled(tmp_path):
    np.save(tmp_path / "a.npy", sdss_objects(["STAR", "GALAXY", "GALAXY"], 0))
    np.save(tmp_path / "b.npy", sdss_objects(["GALAXY"], 10)[0])  # shape (): one object
    np.save(tmp_path / "c.npy", sdss_objects(["STAR", "QSO"], 20))
    data = load_sdss_npy(tmp_path)
    assert data.images.shape == (6, 5, 64, 64) and data.images.dtype.isnative
    np.testing.assert_array_equal(data.images[:, 0, 0, 0], [0, 1, 2, 10, 20, 21])
    np.testing.assert_array_equal(data.target, [0, 1, 1, 1, 0, -1])
    assert list(data.class_names) == ["STAR", "GALAXY", "GALAXY", "GALAXY", "STAR", "QSO"]
    assert data.objID.dtype == np.int64 and data.objID[3] == 1237650000000000010
    assert data.ids[0] == "1237650000000000000"
    assert data.filenames[:4] == [str(tmp_path / "a.npy")] * 3 + [str(tmp_path / "b.npy")]
    assert data.z.shape == (6,)


def test_load_sdss_npy_unlabelled(tmp_path):
    image_only = np.zeros((), dtype=[("image", "<f8", (5, 64, 64))])
    for i in range(2):
        np.save(tmp_path / f"u{i}.npy", image_only)
    data = load_sdss_npy(tmp_path)
    assert data.images.shape == (2, 5, 64, 64) and data.images.dtype == np.float32
    assert data.target is None and data.objID is None and data.class_names is None
    assert data.ids == ["u0[0]", "u1[0]"]


def test_load_sdss_npy_bad_files(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, sdss_objects(["STAR", "GALAXY"], 0))
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DataLoadError, match=r"truncated\.npy"):
        load_sdss_npy(truncated)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(DataLoadError, match=r"garbage\.npy"):
        load_sdss_npy(garbage)

    no_image = tmp_path / "no_image.npy"
    np.save(no_image, np.zeros(2, dtype=[("objID", "i8"), ("pixels", "f4", (5, 8, 8))]))
    with pytest.raises(DataLoadError) as info:
        load_sdss_npy(no_image)
    assert "objID" in info.value.reason and "pixels" in info.value.reason

    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"image": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataLoadError, match=r"pickled\.npy") as info:
        load_sdss_npy(pickled)
    assert "unpickled" in info.value.reason

    with pytest.warns(UserWarning, match="skipped 4"):
        data = load_sdss_npy(tmp_path, skip_bad=True)
    assert len(data.images) == 2 and len(data.skipped) == 4


def test_load_sdss_npy_mixed_labels_is_an_error(tmp_path):
    np.save(tmp_path / "a.npy", sdss_objects(["STAR"], 0))
    np.save(tmp_path / "b.npy", np.zeros(1, dtype=[("image", "f4", (5, 64, 64))]))
    with pytest.raises(ValueError, match="mixed"):
        load_sdss_npy(tmp_path)


# ---------------------------------------------------------------------------------------------
# load_image_folder
# ---------------------------------------------------------------------------------------------


def test_load_image_folder_labels_from_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("spiral", "elliptical"):
        (tmp_path / label).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{label}{i}.png")
    Image.fromarray(np.zeros((16, 12, 3), np.uint8)).save(tmp_path / "elliptical" / "x.jpg")
    data = load_image_folder(tmp_path, labels_from_subfolders=True)
    assert data.images.shape == (5, 3, 16, 12) and data.images.dtype == np.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert list(data.target_names) == ["elliptical", "spiral"]
    np.testing.assert_array_equal(data.target, [0, 0, 0, 1, 1])
    assert data.ids[0] == "elliptical/elliptical0"
    # exact values: channels first, 8-bit / 255
    first = np.asarray(Image.open(tmp_path / "elliptical" / "elliptical0.png"))
    np.testing.assert_allclose(data.images[0], first.transpose(2, 0, 1) / 255.0, atol=1e-7)

    grey = load_image_folder(tmp_path, labels_from_subfolders=True, grayscale=True)
    assert grey.images.shape == (5, 1, 16, 12)


def test_load_image_folder_modes_and_errors(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "a16.png")
    Image.fromarray(np.full((8, 8), 51, np.uint8)).save(tmp_path / "b8.png")
    data = load_image_folder(tmp_path)
    assert data.images.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(data.images[:, 0, 0, 0], [1.0, 0.2])

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "c_rgb.png")
    with pytest.raises(ValueError, match="grayscale=True"):
        load_image_folder(tmp_path)
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "d_big.png")
    with pytest.raises(ValueError, match=r"d_big\.png"):
        load_image_folder(tmp_path, grayscale=True)
    (tmp_path / "d_big.png").unlink()

    noisy = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "e_cut.png")
    content = (tmp_path / "e_cut.png").read_bytes()
    (tmp_path / "e_cut.png").write_bytes(content[: len(content) // 2])
    with pytest.raises(DataLoadError, match=r"e_cut\.png"):
        load_image_folder(tmp_path, grayscale=True)
    with pytest.warns(UserWarning, match="skipped 1"):
        data = load_image_folder(tmp_path, grayscale=True, skip_bad=True)
    assert len(data.images) == 3 and data.skipped[0][0].endswith("e_cut.png")


# ---------------------------------------------------------------------------------------------
# load_hdf5
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def hdf5_file(tmp_path):
    path = tmp_path / "cutouts.h5"
    images = np.arange(10 * 2 * 4 * 4, dtype=">i2").reshape(10, 2, 4, 4)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["meta/labels"] = np.array([b"spiral", b"elliptical"] * 5)
        f["meta/ids"] = np.arange(10) * 11
        f["flat"] = images[:, 0]
        f["last"] = images.transpose(0, 2, 3, 1)
    return path, images.astype(np.float32)


def test_load_hdf5_is_lazy_and_indexable(hdf5_file):
    path, expected = hdf5_file
    data = load_hdf5(path, label_key="meta/labels", id_key="meta/ids")
    images = data.images
    assert isinstance(images, HDF5Array) and not isinstance(images, np.ndarray)
    assert images.shape == (10, 2, 4, 4) and images.ndim == 4 and len(images) == 10
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images[3], expected[3])
    np.testing.assert_array_equal(images[-1], expected[-1])
    np.testing.assert_array_equal(images[2:7:2], expected[2:7:2])
    np.testing.assert_array_equal(images[::-3], expected[::-3])
    np.testing.assert_array_equal(images[[7, 2, 2, 9]], expected[[7, 2, 2, 9]])
    np.testing.assert_array_equal(images[np.arange(10) % 3 == 0], expected[::3])
    np.testing.assert_array_equal(images[1:3, 1], expected[1:3, 1])
    np.testing.assert_array_equal(np.asarray(images), expected)
    with pytest.raises(IndexError):
        images[10]
    np.testing.assert_array_equal(data.target, [1, 0] * 5)
    assert list(data.target_names) == ["elliptical", "spiral"]
    np.testing.assert_array_equal(data.ids, np.arange(10) * 11)
    assert data.filenames == [str(path)] * 10


def test_hdf5_array_pickles_without_a_file_handle(hdf5_file):
    path, expected = hdf5_file
    images = load_hdf5(path).images
    images[0]  # opens the file
    restored = pickle.loads(pickle.dumps(images))
    assert restored._file is None
    np.testing.assert_array_equal(restored[4:6], expected[4:6])
    images.close()


def test_load_hdf5_layouts_and_errors(hdf5_file, tmp_path):
    path, expected = hdf5_file
    assert load_hdf5(path, key="flat").images.shape == (10, 1, 4, 4)
    last = load_hdf5(path, key="last", channels_last=True).images
    np.testing.assert_array_equal(last[:], expected)
    with pytest.raises(KeyError, match=r"'cubes'.*'images'.*'meta/labels'"):
        load_hdf5(path, key="cubes")
    # h5py's absolute names work too
    absolute = load_hdf5(path, key="/last", channels_last=True, label_key="/meta/labels")
    np.testing.assert_array_equal(absolute.images[:], expected)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataLoadError, match=r"broken\.h5"):
        load_hdf5(broken)


# ---------------------------------------------------------------------------------------------
# loaders never modify files
# ---------------------------------------------------------------------------------------------


def test_loaders_do_not_modify_files(tmp_path, scaled_fits, hdf5_file):
    np.save(tmp_path / "objects.npy", sdss_objects(["STAR", "GALAXY"], 0))
    (tmp_path / "pngs").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "pngs" / "a.png")
    before = snapshot(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_fits(scaled_fits[0])
        load_sdss_npy(tmp_path / "objects.npy")
        load_image_folder(tmp_path / "pngs")
        data = load_hdf5(hdf5_file[0])
        np.asarray(data.images)
        data.images.close()
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# load_hubble_cutouts
# ---------------------------------------------------------------------------------------------


def test_load_hubble_cutouts():
    data = load_hubble_cutouts()
    n = len(data.images)
    assert n >= 100
    assert data.images.shape == (n, 1, 64, 64) and data.images.dtype == np.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert len(data.metadata) == len(data.ids) == len(data.filenames) == n
    # brightest first, and the centre of each cutout is on its source
    assert data.metadata["flux"].is_monotonic_decreasing
    centre = data.images[:, 0, 30:34, 30:34].mean(axis=(1, 2))
    border = data.images[:, 0, :4, :].mean(axis=(1, 2))
    assert (centre > border).mean() > 0.9
    colour = load_hubble_cutouts(32, n_max=7, color=True)
    assert colour.images.shape == (7, 3, 32, 32)
