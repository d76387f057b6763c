"""The labels file: saved atomically on every change, loaded back, other rows kept."""

import csv
import os

import numpy as np
import pytest

from skastro.explorer._labels import (
    INTERESTING,
    NOT_INTERESTING,
    LabelStore,
    clean_label,
    default_label_file,
)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_every_change_is_saved_and_loaded_back(tmp_path):
    path = tmp_path / "labels.csv"
    store = LabelStore(["a", "b", "c", "d"], path)
    assert not path.exists() and store.labels().tolist() == ["", "", "", ""]
    assert store.set([1], INTERESTING) == 1
    assert [(r["id"], r["label"]) for r in _rows(path)] == [("b", INTERESTING)]
    assert store.set([0, 3], "  merger \n") == 2  # class names are cleaned
    assert store.set([1], INTERESTING) == 0  # unchanged: nothing written again
    assert store.set([3], None) == 1  # cleared
    reloaded = LabelStore(["a", "b", "c", "d"], path)
    assert reloaded.labels().tolist() == ["merger", INTERESTING, "", ""]
    assert reloaded.get(0) == "merger" and reloaded.get(2) is None
    assert reloaded.counts() == {INTERESTING: 1, "merger": 1}
    assert all(row["updated"] for row in _rows(path))
    # no temporary file is left beside it
    assert sorted(os.listdir(tmp_path)) == ["labels.csv"]


def test_images_sharing_an_id_share_its_label(tmp_path):
    # labels are kept by id: a label must never land on another image than the one labelled
    with pytest.warns(UserWarning, match=r"1 id\(s\) name more than one image \(e.g. 'x'"):
        store = LabelStore(["x", "x", "y", "z"], tmp_path / "labels.csv")
    store.set([0], INTERESTING)
    assert store.labels().tolist() == [INTERESTING, INTERESTING, "", ""]
    store.set([3], NOT_INTERESTING)
    assert store.labels().tolist() == [INTERESTING, INTERESTING, "", NOT_INTERESTING]


def test_the_explorer_needs_three_images():
    from skastro.explorer import Explorer

    images = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="at least 3 images, got 2"):
        Explorer(images, embedding=images.reshape(2, -1))


def test_rows_of_other_images_are_kept(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label,updated\nzzz,not interesting,2020-01-01\nb,interesting,\n")
    store = LabelStore(["a", "b"], path)
    assert store.labels().tolist() == ["", INTERESTING]
    store.set([0], NOT_INTERESTING)
    assert {r["id"]: r["label"] for r in _rows(path)} == {
        "zzz": NOT_INTERESTING,
        "b": INTERESTING,
        "a": NOT_INTERESTING,
    }


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "labels.csv"
    store = LabelStore(["a", "b"], path)
    store.set([0], INTERESTING)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.set([1], INTERESTING)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["labels.csv"]


def test_bad_input_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\nx,1\n")
    with pytest.raises(ValueError, match="id,label"):
        LabelStore(["a"], bad)
    store = LabelStore(["a"])  # in memory
    with pytest.raises(IndexError):
        store.set([5], INTERESTING)
    with pytest.raises(ValueError, match="at most"):
        clean_label("x" * 100)
    assert clean_label("   ") is None and store.path is None


def test_default_label_file_sits_beside_the_data(tmp_path):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    assert default_label_file(folder) == tmp_path / "cutouts.labels.csv"
    assert default_label_file(str(folder) + "/") == tmp_path / "cutouts.labels.csv"
    assert default_label_file(tmp_path / "sdss.npy") == tmp_path / "sdss.labels.csv"


def test_labels_for_many_images_are_fast(tmp_path):
    ids = np.arange(50_000).astype(str)
    store = LabelStore(ids, tmp_path / "labels.csv")
    store.set(np.arange(0, 50_000, 7), INTERESTING)
    labels = store.labels()
    assert (labels == INTERESTING).sum() == len(range(0, 50_000, 7))
