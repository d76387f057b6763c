"""skastro on dask: lazy inference on dask arrays, resumable embedding to parquet, GridSearchCV.

Everything runs on one LocalCluster of two worker processes (one thread each), shared by the
module; the data are tiny. Values are compared with the in-memory path.
"""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sklearn.pipeline import Pipeline, make_pipeline

from skastro import ConvAutoencoder, ImageScaler, KFoldEnsemble, KNNOutlierDetector
from skastro.features import RadialProfile

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from skastro.distributed import (  # noqa: E402
    dispatch,
    embed_to_parquet,
    map_estimator,
    partition_files,
)
from skastro.distributed._embed import MANIFEST_NAME  # noqa: E402

# one torch thread per process in the subprocess too: the machine is small and shared
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
N_IMAGES, SIZE = 40, 16


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    width = rng.uniform(1.5, 5, size=(n, 1, 1))
    images = np.exp(-(xx**2 + yy**2) / (2 * width**2)) + 0.05 * rng.normal(size=(n, SIZE, SIZE))
    return images.astype(np.float32)[:, None]


@pytest.fixture(scope="module")
def images():
    return _blobs(N_IMAGES)


@pytest.fixture(scope="module")
def model(images):
    return ConvAutoencoder(
        n_components=3, widths=(4, 8), max_epochs=1, batch_size=16, random_state=0
    ).fit(images)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("model"))


def _equal(a, b):
    # the same float32 operations, in other batches: a deep estimator's output can differ in
    # the last bit with the batch size (a block holds fewer images than an in-memory batch)
    b = np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(b).max())))


# ------------------------------------------------------------------------ lazy dask arrays
def test_dispatch_leaves_other_inputs_alone_and_never_imports_dask():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from skastro import KNNOutlierDetector
        from skastro.distributed import dispatch
        X = np.random.default_rng(0).normal(size=(30, 2))
        detector = KNNOutlierDetector().fit(X)
        assert dispatch(detector, "score_samples", X) is None
        assert dispatch(detector, "score_samples", X.tolist()) is None
        detector.score_samples(X)
        assert "dask" not in sys.modules, sorted(m for m in sys.modules if "dask" in m)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr


def test_deep_estimator_methods_match_in_memory(client, model, images):
    X = da.from_array(images, chunks=(16, 1, SIZE, SIZE))
    Z = dispatch(model, "transform", X)
    assert isinstance(Z, da.Array) and Z.shape == (N_IMAGES, 3) and Z.dtype == np.float32
    assert Z.chunks == ((16, 16, 8), (3,))
    _equal(Z.compute(), model.transform(images))
    R = map_estimator(model, "reconstruct", X)
    assert R.shape == images.shape
    _equal(R.compute(), model.reconstruct(images))
    # (n, H, W) and flat (n, F) layouts, and blocks along the pixel axes, come back right
    flat = da.from_array(images.reshape(N_IMAGES, -1), chunks=(10, 100))
    _equal(map_estimator(model, "transform", flat).compute(), model.transform(images))
    hw = da.from_array(images[:, 0], chunks=(7, 8, 8))
    reconstruction = map_estimator(model, "reconstruct", hw)
    assert reconstruction.shape == (N_IMAGES, SIZE, SIZE)
    _equal(reconstruction.compute(), model.reconstruct(images[:, 0]))


def test_pipelines_ensembles_features_and_detectors(client, images):
    new_images = _blobs(30, seed=5)
    X = da.from_array(new_images, chunks=(13, 1, SIZE, SIZE))
    pipe = make_pipeline(ImageScaler(), ConvAutoencoder(
        n_components=2, widths=(4,), max_epochs=1, random_state=0
    ), KNNOutlierDetector(n_neighbors=3)).fit(images)  # fmt: skip
    for method in ("score_samples", "decision_function", "predict"):
        _equal(map_estimator(pipe, method, X).compute(), getattr(pipe, method)(new_images))
    _equal(map_estimator(pipe[:-1], "transform", X).compute(), pipe[:-1].transform(new_images))
    ensemble = KFoldEnsemble(
        ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, random_state=0),
        n_splits=2,
        random_state=0,
    ).fit(images)
    _equal(map_estimator(ensemble, "transform", X).compute(), ensemble.transform(new_images))
    _equal(map_estimator(ensemble, "reconstruct", X).compute(), ensemble.reconstruct(new_images))
    profile = RadialProfile(n_bins=4).fit(images)
    _equal(map_estimator(profile, "transform", X).compute(), profile.transform(new_images))
    # a detector on a lazy embedding: 2-D input, 1-D output
    embedder = pipe[:-1]
    detector = pipe[-1]
    scores = map_estimator(detector, "score_samples", map_estimator(embedder, "transform", X))
    assert scores.shape == (30,) and scores.chunks == ((13, 13, 4),)
    _equal(scores.compute(), detector.score_samples(embedder.transform(new_images)))


def test_the_model_is_one_key_shipped_once_per_worker(client, model, images):
    import dask

    model_bytes = len(pickle.dumps(model))
    X = da.from_array(images, chunks=(5, 1, SIZE, SIZE))
    # with a client: scattered to every worker; no task of the graph holds the model
    Z = map_estimator(model, "transform", X)
    graph = dict(Z.__dask_graph__())
    assert all(len(pickle.dumps(task)) < model_bytes / 4 for task in graph.values())
    blocks = [key for key in graph if isinstance(key, tuple) and key[0] == Z.name]
    (model_key,) = set.union(*(_dependencies(graph, key) for key in blocks)) - set(graph)
    assert all(model_key in _dependencies(graph, key) for key in blocks)
    assert len(client.who_has()[model_key]) == 2  # on both workers
    _equal(Z.compute(), model.transform(images))
    # without a client: one delayed key holds the model, and each of the 8 blocks' tasks
    # refers to it by name
    delayed_Z = _delayed_version(model, X)
    graph = dict(delayed_Z.__dask_graph__())
    holders = [key for key, task in graph.items() if len(pickle.dumps(task)) >= model_bytes / 2]
    assert len(holders) == 1
    blocks = [key for key in graph if isinstance(key, tuple) and key[0] == delayed_Z.name]
    assert len(blocks) == X.numblocks[0] == 8
    assert all(holders[0] in _dependencies(graph, key) for key in blocks)
    _equal(dask.compute(delayed_Z, scheduler="sync")[0], model.transform(images))


def test_each_call_scatters_the_model_under_a_fresh_key(client, model, images):
    # dask/distributed#8576: scattering an object under its content hash while an earlier
    # future with that key is being released loses the new data ("lost dependencies"); this
    # failed CI once when a second method of the same KFoldEnsemble was mapped
    X = da.from_array(images, chunks=(10, 1, SIZE, SIZE))
    keys = []
    for method in ("transform", "reconstruct", "transform"):
        Z = map_estimator(model, method, X)
        graph = dict(Z.__dask_graph__())
        blocks = [key for key in graph if isinstance(key, tuple) and key[0] == Z.name]
        (model_key,) = set.union(*(_dependencies(graph, key) for key in blocks)) - set(graph)
        keys.append(model_key)
        Z.compute()
        del Z
    assert len(set(keys)) == 3


def _dependencies(graph, key):
    task = graph[key]
    if hasattr(task, "dependencies"):  # dask's task spec
        return set(task.dependencies)
    import dask.core

    return set(dask.core.get_dependencies(graph, key))


def _delayed_version(model, X):
    """map_estimator as it builds the graph when no dask.distributed client is in use."""
    from unittest import mock

    from skastro.distributed import _arrays

    with mock.patch.object(_arrays, "current_client", return_value=None):
        return _arrays.map_estimator(model, "transform", X)


def test_errors_are_raised_when_the_graph_is_built(client, model, images):
    from sklearn.exceptions import NotFittedError

    X = da.from_array(images, chunks=(16, 1, SIZE, SIZE))
    with pytest.raises(NotFittedError):
        map_estimator(ConvAutoencoder(), "transform", X)
    with pytest.raises(ValueError, match="method must be one of"):
        map_estimator(model, "fit", X)
    with pytest.raises(AttributeError, match="no method 'denoise'"):
        map_estimator(model, "denoise", X)
    with pytest.raises(ValueError, match="16"):  # a shape mismatch, from the one-image probe
        map_estimator(model, "transform", da.zeros((4, 1, 8, 8), chunks=2))
    with pytest.raises(TypeError, match="dask array"):
        map_estimator(model, "transform", images)


def test_missing_dask_names_the_extra(monkeypatch):
    from skastro.distributed._client import import_dask

    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r'pip install "skastro\[distributed\]"'):
        import_dask("map_estimator")


# ------------------------------------------------------------------------ embed to parquet
@pytest.fixture(scope="module")
def files(tmp_path_factory, images):
    import h5py
    from astropy.io import fits
    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    np.save(root / "images.npy", images)
    with h5py.File(root / "images.h5", "w") as f:
        f.create_dataset("cutouts", data=images[:, 0])
        f.create_dataset("names", data=np.array([f"obj{i}".encode() for i in range(N_IMAGES)]))
    (root / "fits").mkdir()
    for i, image in enumerate(images[:11]):
        fits.PrimaryHDU(image[0].astype(">f4")).writeto(root / "fits" / f"f{i:02d}.fits")
    (root / "fits" / "f05b.fits").write_bytes(b"SIMPLE  = not a FITS file" * 4)
    (root / "png").mkdir()
    for i, image in enumerate(images[:6]):
        pixels = np.clip(image[0] * 255, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(root / "png" / f"p{i}.png")
    dtype = [("objID", "i8"), ("image", "f4", (SIZE, SIZE))]
    (root / "sdss").mkdir()
    start = 0
    for name, count in [("a", 3), ("b", 20), ("c", 4)]:  # b is larger than a partition
        rows = np.zeros(count, dtype=dtype)
        rows["objID"] = 1000 + np.arange(start, start + count)
        rows["image"] = images[start : start + count, 0]
        np.save(root / "sdss" / f"{name}.npy", rows)
        start += count
    return root


def _read(out):
    import pandas as pd

    frame = pd.read_parquet(out)
    return frame["id"].to_numpy(), frame.drop(columns="id").to_numpy(np.float32)


@pytest.mark.parametrize(
    "kind, options",
    [
        ("images.npy", {}),
        ("images.h5", {"key": "cutouts", "id_key": "names"}),
        ("fits", {"skip_bad": True}),
        ("png", {}),
        ("sdss", {}),
    ],
)
def test_embed_to_parquet_equals_the_in_memory_path(client, model_dir, files, tmp_path, kind,
                                                    options):  # fmt: skip
    from skastro import load
    from skastro.datasets import open_data

    data = open_data(
        files / kind, key=options.get("key", "images"), id_key=options.get("id_key"),
        skip_bad=options.get("skip_bad", False), report=lambda line: None,
    )  # fmt: skip
    lines = []
    summary = embed_to_parquet(model_dir, files / kind, tmp_path / "out", scheduler=client,
                               partition_size=8, report=lines.append, **options)  # fmt: skip
    ids, Z = _read(tmp_path / "out")
    assert summary.n_images == len(data.ids) == len(Z)
    assert summary.n_partitions == len(partition_files(tmp_path / "out")) == summary.n_written
    assert ids.astype(str).tolist() == np.asarray(data.ids).astype(str).tolist()
    _equal(Z, load(model_dir).transform(np.asarray(data.images)))
    if kind == "fits":
        assert [name for name, _ in summary.skipped] == [str(files / "fits" / "f05b.fits")]
    if kind == "sdss":  # a.npy (3 rows), b.npy split into 8 + 8 + 4 rows, c.npy (4 rows)
        assert summary.n_partitions == 5


def test_embed_resumes_after_the_job_is_killed(client, model, model_dir, files, images,
                                               tmp_path):  # fmt: skip
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import time
        import distributed
        from skastro.distributed import _embed

        write = _embed._embed_partition

        def slow_write(*args, **kwargs):  # so the job is surely killed half way
            result = write(*args, **kwargs)
            time.sleep(0.4)
            return result

        _embed._embed_partition = slow_write
        if __name__ == "__main__":
            with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                                    dashboard_address=None) as client:
                _embed.embed_to_parquet({str(model_dir)!r}, {str(files / "images.npy")!r},
                                        {str(out)!r}, scheduler=client, partition_size=4)
        """
    )
    job = subprocess.Popen([sys.executable, "-c", script], env=ENV, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while len(partition_files(out)) < 3 and job.poll() is None:
            assert time.monotonic() < deadline, "the job wrote nothing in two minutes"
            time.sleep(0.02)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)  # the job's own process group: nothing else
        job.wait()
        job.stderr.close()
    written = {path.name: path.stat().st_mtime_ns for path in partition_files(out)}
    assert 3 <= len(written) < 10, "the job was not interrupted half way"
    assert (out / MANIFEST_NAME).is_file()
    (out / ".part-00009.parquet.deadbeef.tmp").write_bytes(b"half a file")  # a killed write

    lines = []
    summary = embed_to_parquet(model_dir, files / "images.npy", out, scheduler=client,
                               partition_size=4, report=lines.append)  # fmt: skip
    assert summary.n_resumed == len(written) and summary.n_written == 10 - len(written)
    assert lines[0].startswith(f"resuming: {len(written)} of 10 partitions")
    assert {p.name: p.stat().st_mtime_ns for p in partition_files(out)[: len(written)]} == written
    assert not list(out.glob(".*.tmp"))
    ids, Z = _read(out)
    assert ids.tolist() == list(range(N_IMAGES)) and summary.n_images == N_IMAGES
    _equal(Z, model.transform(images))


def test_embed_refuses_to_mix_runs(client, model, model_dir, files, tmp_path):
    out = tmp_path / "out"
    embed_to_parquet(model_dir, files / "images.npy", out, scheduler=client, partition_size=20,
                     report=lambda line: None)  # fmt: skip
    other = ConvAutoencoder(n_components=3, widths=(4, 8), max_epochs=1, random_state=1)
    other.fit(np.asarray(np.load(files / "images.npy")))
    with pytest.raises(ValueError, match="other embeddings of the first images"):
        embed_to_parquet(other, files / "images.npy", out, scheduler=client, partition_size=20)
    with pytest.raises(ValueError, match=r"partition size: 20 then, 8 now.*overwrite"):
        embed_to_parquet(model_dir, files / "images.npy", out, scheduler=client, partition_size=8)
    summary = embed_to_parquet(other, files / "images.npy", out, scheduler=client,
                               partition_size=20, overwrite=True,
                               report=lambda line: None)  # fmt: skip
    assert summary.n_written == 2 and summary.n_resumed == 0
    _equal(_read(out)[1], other.transform(np.load(files / "images.npy")))


def test_embed_refuses_to_resume_on_images_changed_in_place(client, model_dir, files, tmp_path):
    data, out = tmp_path / "images.npy", tmp_path / "out"
    images = np.load(files / "images.npy")
    np.save(data, images)
    embed_to_parquet(model_dir, data, out, scheduler=client, partition_size=20,
                     report=lambda line: None)  # fmt: skip
    changed = images.copy()
    changed[len(images) // 2 :] *= 2.0  # same name, shape and size; other pixels
    np.save(data, changed)
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match=r"files \(names, sizes, modification times\)"):
        embed_to_parquet(model_dir, data, out, scheduler=client, partition_size=20)


# ------------------------------------------------------------------------ model selection
def test_grid_search_runs_on_the_dask_joblib_backend(client, images):
    import joblib
    from sklearn.model_selection import GridSearchCV

    pipe = Pipeline([
        ("scale", ImageScaler()),
        ("ae", ConvAutoencoder(n_components=2, widths=(4,), max_epochs=2, random_state=0)),
    ])  # fmt: skip
    grid = {"ae__n_components": [2, 4]}
    here = GridSearchCV(pipe, grid, cv=2).fit(images)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = GridSearchCV(pipe, grid, cv=2, n_jobs=-1).fit(images)
    assert len(stream.data) >= 4  # 2 settings x 2 folds ran as tasks on the workers
    assert {task["worker"] for task in stream.data} <= set(client.scheduler_info()["workers"])
    assert remote.best_params_ == here.best_params_
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], here.cv_results_["mean_test_score"], rtol=1e-4
    )


# ------------------------------------------------------------------------ clustering at scale
def test_clusters_are_assigned_on_the_workers(client, tmp_path, capsys):
    import pandas as pd

    from skastro.cli import main
    from skastro.distributed import cluster_embeddings

    rng = np.random.default_rng(0)
    Z = np.vstack([c + rng.normal(scale=0.5, size=(300, 3)) for c in (0.0, 5.0, 10.0)])
    Z = rng.permutation(Z).astype(np.float32)
    np.save(tmp_path / "z.npy", Z)
    here = cluster_embeddings(tmp_path / "z.npy", sample_size=200, block_size=100)
    with distributed.get_task_stream(client) as stream:
        there = cluster_embeddings(tmp_path / "z.npy", sample_size=200, block_size=100,
                                   client=client)  # fmt: skip
    assert len(stream.data) >= 9  # one task per block of 100 points
    np.testing.assert_array_equal(there.labels, here.labels)
    assert here.n_clusters == 3
    # the command line, on a running scheduler given by its address
    out = tmp_path / "labels.csv"
    status = main(["cluster", str(tmp_path / "z.npy"), "--sample-size", "200", "--block-size",
                   "100", "--scheduler", client.scheduler.address, "--out", str(out)])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    np.testing.assert_array_equal(pd.read_csv(out)["label"].to_numpy(), here.labels)
    assert client.status == "running"  # the command left the user's cluster alone


def test_embed_command_on_a_scheduler(client, model, model_dir, files, images, tmp_path, capsys):
    """``skastro embed MODEL DATA --out FOLDER --scheduler ...``, resumable."""
    from skastro.cli import main

    base = ["embed", str(model_dir), str(files / "images.npy"), "--scheduler",
            client.scheduler.address]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "emb"), "--partition-size", "16"]) == 0
    assert "wrote 40 embeddings of size 3" in capsys.readouterr().out
    _equal(_read(tmp_path / "emb")[1], model.transform(images))
    assert main([*base, "--out", str(tmp_path / "emb"), "--partition-size", "16"]) == 0
    assert "(3 found complete and kept)" in capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "emb.npz")]) == 2
    assert "--out is a folder" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "emb"), "--partition-size", "8"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert client.status == "running"  # the command left the user's cluster alone


def test_the_detector_returns_dask_arrays_for_dask_input(client):
    rng = np.random.default_rng(0)
    train, queries = rng.normal(size=(200, 4)), rng.normal(size=(50, 4)) * 2
    detector = KNNOutlierDetector(n_neighbors=4).fit(train)
    lazy_queries = da.from_array(queries, chunks=20)
    for method in ("score_samples", "decision_function", "predict"):
        lazy = getattr(detector, method)(lazy_queries)
        assert isinstance(lazy, da.Array) and lazy.chunks == ((20, 20, 10),)
        np.testing.assert_array_equal(lazy.compute(), getattr(detector, method)(queries))


def test_estimators_own_methods_return_dask_arrays_equal_to_the_in_memory_path(images):
    import dask.array as da

    from skastro import ConvAutoencoder, ImageScaler, KNNOutlierDetector

    X = images[:24]
    lazy_X = da.from_array(X, chunks=(8, *X.shape[1:]))
    ae = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, random_state=0).fit(X)
    scaler = ImageScaler().fit(X)
    detector = KNNOutlierDetector(n_neighbors=3).fit(ae.transform(X))
    for estimator, method, data in (
        (ae, "transform", lazy_X),
        (ae, "reconstruct", lazy_X),
        (scaler, "transform", lazy_X),
        (detector, "score_samples", da.from_array(ae.transform(X), chunks=(8, 2))),
    ):
        result = getattr(estimator, method)(data)
        assert isinstance(result, da.Array), (type(estimator).__name__, method)
        expected = getattr(estimator, method)(np.asarray(data))
        np.testing.assert_allclose(result.compute(), expected, rtol=1e-5, atol=1e-6)
