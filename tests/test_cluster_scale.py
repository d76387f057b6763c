"""Clustering embeddings larger than memory: fit on a sample, assign in blocks, from files."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from skastro.cli import main
from skastro.commands import cluster as cluster_command
from skastro.distributed import cluster_embeddings, open_embeddings

hdbscan = pytest.importorskip("hdbscan")


@pytest.fixture(scope="module")
def embeddings():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [6, 0, 0, 0], [0, 6, 0, 0]], dtype=np.float32)
    Z = np.vstack([c + rng.normal(scale=0.7, size=(400, 4)) for c in centres])
    return rng.permutation(Z).astype(np.float32)


@pytest.fixture(scope="module")
def files(embeddings, tmp_path_factory):
    root = tmp_path_factory.mktemp("embeddings")
    np.save(root / "z.npy", embeddings)
    (root / "z.ids.txt").write_text("".join(f"obj{i}\n" for i in range(len(embeddings))))
    folder = root / "parts"
    folder.mkdir()
    for k, start in enumerate(range(0, len(embeddings), 500)):  # 500 + 500 + 200 rows
        frame = pd.DataFrame(embeddings[start : start + 500], columns=["z0", "z1", "z2", "z3"])
        frame.insert(0, "id", [f"obj{i}" for i in range(start, start + len(frame))])
        frame.to_parquet(folder / f"part-{k:05d}.parquet", index=False)
    return root


def test_sampling_every_point_is_plain_hdbscan(embeddings):
    result = cluster_embeddings(embeddings, sample_size=10**6, min_cluster_size=20)
    expected = hdbscan.HDBSCAN(min_cluster_size=20).fit_predict(embeddings)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.n_clusters == 3 and len(result.sample_index) == len(embeddings)


@pytest.mark.parametrize("method", ["hdbscan", "kmeans"])
def test_a_sample_finds_the_clusters_of_all_points(embeddings, method):
    full = hdbscan.HDBSCAN(min_cluster_size=20).fit_predict(embeddings)
    result = cluster_embeddings(embeddings, method=method, n_clusters=3, sample_size=300,
                                min_cluster_size=10, block_size=128)  # fmt: skip
    assert adjusted_rand_score(full, result.labels) > 0.95
    assert len(result.sample_index) == 300 and np.all(np.diff(result.sample_index) > 0)
    # points of the sample keep the label the fit gave them
    fitted = result.assigner.clusterer.labels_
    np.testing.assert_array_equal(result.labels[result.sample_index], fitted)
    # and the assigner labels new points like the others
    assert adjusted_rand_score(result.labels, result.assigner.predict(embeddings)) > 0.95


def test_files_give_the_labels_of_the_array(embeddings, files):
    expected = cluster_embeddings(embeddings, sample_size=300, block_size=128).labels
    for path in (files / "z.npy", files / "parts"):
        labels = cluster_embeddings(path, sample_size=300, block_size=128).labels
        np.testing.assert_array_equal(labels, expected)


def test_open_embeddings_reads_blocks_across_files(embeddings, files):
    for path in (files / "z.npy", files / "parts", files / "parts" / "part-00001.parquet"):
        source = open_embeddings(path)
        offset = 500 if path.name == "part-00001.parquet" else 0
        Z = embeddings[offset : offset + source.n_samples]
        assert source.n_features == 4 and source.n_samples in (500, 1200)
        np.testing.assert_array_equal(source.read(480, 520), Z[480:520])
        index = np.array([0, 499, 500, 1199]) if source.n_samples == 1200 else np.array([3, 7])
        np.testing.assert_array_equal(source.take(index), Z[index])
        ids = np.concatenate(list(source.iter_ids(333)))
        assert ids.tolist() == [f"obj{i}" for i in range(offset, offset + source.n_samples)]
    assert [len(ids) for ids in open_embeddings(embeddings).iter_ids(500)] == [500, 500, 200]


def test_bad_embeddings_are_named(files, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no \.parquet files"):
        open_embeddings(tmp_path)
    pd.DataFrame({"id": [1], "a": [1.0]}).to_parquet(tmp_path / "x.parquet")
    pd.DataFrame({"id": [1], "b": [1.0]}).to_parquet(tmp_path / "y.parquet")
    with pytest.raises(ValueError, match="has columns"):
        open_embeddings(tmp_path)
    bad = np.zeros((10, 2), np.float32)
    bad[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="NaN or inf in 1 embedding"):
        cluster_embeddings(tmp_path / "nan.npy", sample_size=5)
    with pytest.raises(ValueError, match="method must be one of"):
        cluster_embeddings(bad, method="spectral")


def test_cli_clusters_a_parquet_folder_on_a_sample(files, embeddings, tmp_path, capsys):
    out = tmp_path / "labels.parquet"
    status = main(["cluster", str(files / "parts"), "--sample-size", "300", "--block-size",
                   "128", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "random sample of 300 of 1,200 points" in captured.err
    assert "hdbscan: 3 clusters in 1200 points" in captured.out
    labels = pd.read_parquet(out)
    assert labels["id"].tolist() == [f"obj{i}" for i in range(1200)]
    expected = cluster_embeddings(embeddings, sample_size=300, block_size=128).labels
    np.testing.assert_array_equal(labels["label"].to_numpy(), expected)


def test_cli_samples_large_files_by_itself(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster_command, "IN_MEMORY_MAX_POINTS", 1000)
    out = tmp_path / "labels.csv"
    status = main(["cluster", str(files / "z.npy"), "--method", "kmeans", "--n-clusters", "3",
                   "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "random sample of 1,200 of 1,200" not in captured.err  # never "sample" everything
    lines = out.read_text().splitlines()
    assert lines[0] == "id,label" and lines[1].startswith("obj0,") and len(lines) == 1201
    monkeypatch.setattr(cluster_command, "IN_MEMORY_MAX_POINTS", 100)
    status = main(["cluster", str(files / "z.npy"), "--method", "kmeans", "--n-clusters", "3",
                   "--out", str(out), "--overwrite"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0 and "random sample of 1,200" not in captured.err
    assert "kmeans: 3 clusters in 1200 points" in captured.out


def test_cli_refuses_what_cannot_scale(files, tmp_path, capsys):
    args = ["cluster", str(files / "z.npy"), "--out", str(tmp_path / "l.csv")]
    assert main([*args, "--method", "spectral", "--sample-size", "100"]) == 2
    assert "spectral clustering needs every point in memory" in capsys.readouterr().err
    assert main([*args, "--block-size", "1"]) == 2
    assert "--block-size must be at least 2" in capsys.readouterr().err
    assert main(["cluster", str(files / "z.npy"), "--out", str(tmp_path / "l.txt")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
