"""skastro explore: arguments, metadata alignment, the HTML export from the command line."""

import argparse

import numpy as np
import pandas as pd
import pytest

N_IMAGES = 48


def _blobs(n_images=N_IMAGES, n_bands=1, size=16, seed=0):
    """Images of three kinds (small, wide, off-centre blob) whose flat pixels cluster."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    kinds = np.arange(n_images) % 3
    widths, shifts = np.array([1.5, 4.0, 2.0]), np.array([0.0, 0.0, 4.0])
    images = np.empty((n_images, n_bands, size, size), np.float32)
    for i, kind in enumerate(kinds):
        blob = np.exp(-((x - shifts[kind]) ** 2 + y**2) / (2 * widths[kind] ** 2))
        images[i] = blob + rng.normal(0, 0.02, (n_bands, size, size))
    return images, kinds


class TransformOnly:
    """A stand-in for a fitted deep embedder: only ``transform``, recording its batches."""

    def __init__(self, n_components=4):
        self.n_components = n_components
        self.batches = []

    def transform(self, images):
        images = np.asarray(images)
        self.batches.append(len(images))
        flat = images.reshape(len(images), -1)
        return flat[:, : self.n_components * 8 : 8].astype(np.float64)


@pytest.fixture(scope="module")
def data():
    images, kinds = _blobs(n_bands=3)
    flat = images.reshape(len(images), -1)
    embedding = (flat - flat.mean(0)) @ np.random.default_rng(1).normal(size=(flat.shape[1], 6))
    metadata = pd.DataFrame(
        {"redshift": np.linspace(0, 1, N_IMAGES), "survey": np.where(kinds == 0, "A", "B")}
    )
    return images, embedding.astype(np.float32), kinds, metadata


def _parse(argv):
    from skastro.commands.explore import add_arguments as add_explore_arguments

    return add_explore_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_explore_arguments():
    args = _parse(["cutouts.npy"])
    assert (args.data, args.model, args.metadata, args.port, args.host) == (
        "cutouts.npy", None, None, 8050, "127.0.0.1",
    )  # fmt: skip
    args = _parse(["c.h5", "--key", "images", "--model", "m", "--port", "9000", "--save-html", "o"])
    assert (args.key, args.model, args.port, args.save_html) == ("images", ["m"], 9000, "o")


def test_align_metadata():
    from skastro.commands.explore import align_metadata

    frame = pd.DataFrame({"objID": [3, 1, 2, 9], "z": [0.3, 0.1, 0.2, 0.9]})
    aligned = align_metadata(frame, ["1", "2", "3"])
    assert aligned["z"].tolist() == [0.1, 0.2, 0.3]
    in_order = align_metadata(pd.DataFrame({"z": [1, 2]}), ["a", "b"])
    assert in_order["z"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="rows"):
        align_metadata(pd.DataFrame({"z": [1, 2, 3]}), ["a", "b"])
    # an id column that misses ids is an error, never a fall-back to the row order
    with pytest.raises(ValueError, match=r"'objID' column lacks 1 of the 2 image ids \(first: 8"):
        align_metadata(pd.DataFrame({"objID": [7, 1], "z": [0.7, 0.1]}), ["1", "8"])


def test_metadata_ids_are_matched_as_written(tmp_path):
    # "00001" must not become 1, nor "NA" a missing value, or rows land on the wrong images
    from skastro._embedding_files import read_csv_with_text_ids
    from skastro.commands.explore import _ID_COLUMNS, align_metadata

    path = tmp_path / "catalogue.csv"
    path.write_text("id,mag\nNA,21.5\n00002,22.5\n00001,20.5\n")
    frame = read_csv_with_text_ids(path, lambda name: name.lower() in _ID_COLUMNS)
    aligned = align_metadata(frame, ["00001", "00002", "NA"])
    assert aligned["mag"].tolist() == [20.5, 22.5, 21.5]


def test_labels_and_metadata_from_a_loader_bunch():
    from sklearn.utils import Bunch

    from skastro.commands.explore import labels_and_metadata

    bunch = Bunch(
        images=np.zeros((3, 1, 4, 4)),
        target=np.array([1, 0, 1]),
        target_names=np.array(["STAR", "GALAXY"]),
        objID=np.array([7, 8, 9]),
        z=np.array([0.1, 0.2, 0.3]),
        ids=["7", "8", "9"],
        filenames=["a", "b", "c"],
        skipped=[],
    )
    labels, metadata = labels_and_metadata(bunch, 3)
    assert labels.tolist() == ["GALAXY", "STAR", "GALAXY"]
    assert list(metadata.columns) == ["objID", "z"]
    bunch["class_names"] = np.array(["g", "s", "g"])
    assert labels_and_metadata(bunch, 3)[0].tolist() == ["g", "s", "g"]


def test_run_explore_writes_html_with_a_joblib_model(tmp_path, data, capsys):
    import joblib

    from skastro.commands.explore import run as run_explore

    images = data[0]
    np.save(tmp_path / "cutouts.npy", images)  # plain numbers: ids are the row numbers
    joblib.dump(TransformOnly(), tmp_path / "model.joblib")
    pd.DataFrame({"id": [str(i) for i in range(N_IMAGES)][::-1], "mag": range(N_IMAGES)}).to_csv(
        tmp_path / "meta.csv", index=False
    )
    out = tmp_path / "out.html"
    args = _parse([str(tmp_path / "cutouts.npy"), "--model", str(tmp_path / "model.joblib"),
                   "--metadata", str(tmp_path / "meta.csv"), "--save-html", str(out)])  # fmt: skip
    assert run_explore(args) == 0
    assert out.exists() and "TransformOnly" in out.read_text(encoding="utf-8")
    assert "wrote" in capsys.readouterr().out
    assert run_explore(_parse([str(tmp_path / "nothing.npy")])) == 1  # data, not an option
    assert "no such file" in capsys.readouterr().err
