"""Embedding files keep their ids exactly, and refuse ids that would pair with wrong rows."""

import numpy as np
import pytest

from skastro._embedding_files import read_embeddings
from skastro.distributed._embeddings import NpyEmbeddings


def test_csv_ids_are_read_as_written(tmp_path):
    # file names such as 00000.fits, NA.fits or 1e5.fits give ids pandas would change
    path = tmp_path / "z.csv"
    path.write_text("id,z0,z1\n00000,0.5,1.0\nNA,1.5,2.0\n1e5,2.5,3.0\n")
    Z, ids = read_embeddings(path)
    assert ids.tolist() == ["00000", "NA", "1e5"]
    np.testing.assert_array_equal(Z, [[0.5, 1.0], [1.5, 2.0], [2.5, 3.0]])


def test_npy_ids_file_must_hold_one_id_per_row(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((6, 2), np.float32))
    (tmp_path / "z.ids.txt").write_text("".join(f"{c}\n" for c in "abcdefgh"))  # 8 for 6
    source = NpyEmbeddings(tmp_path / "z.npy")
    with pytest.raises(ValueError, match=r"holds more ids than .*z\.npy has rows"):
        list(source.iter_ids(4))
    (tmp_path / "z.ids.txt").write_text("".join(f"{c}\n" for c in "abcdef"))
    assert np.concatenate(list(source.iter_ids(4))).tolist() == list("abcdef")
