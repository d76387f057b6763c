"""FAISS neighbour search against scikit-learn's exact search (KNNOutlierDetector, explorer)."""

import pickle
import sys

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import (
    check_outlier_contamination,
    check_outliers_fit_predict,
    check_outliers_train,
)

from skastro.anomaly import KNNOutlierDetector, kneighbors_excluding_self
from skastro.distributed import _neighbors
from skastro.distributed._neighbors import FaissNeighbors, resolve_algorithm
from skastro.explorer._compute import NeighbourIndex

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(6, 8))
    train = centres[rng.integers(6, size=400)] + rng.normal(size=(400, 8))
    # exact duplicates and a near-duplicate (where float32 |a|^2 - 2ab + |b|^2 fails)
    train[10] = train[11] = train[12]
    train[20] = train[21] + 1e-6
    queries = np.vstack([rng.normal(scale=5, size=(50, 8)), train[:5], train[[10]]])
    return train, queries


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_faiss_gives_sklearns_scores(data, dtype):
    train, queries = (a.astype(dtype) for a in data)
    exact = KNNOutlierDetector(n_neighbors=4, algorithm="sklearn").fit(train)
    fast = KNNOutlierDetector(n_neighbors=4, algorithm="faiss").fit(train)
    assert isinstance(fast.nn_, FaissNeighbors)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(fast.training_scores_, exact.training_scores_, rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(
        fast.score_samples(queries), exact.score_samples(queries), rtol=rtol, atol=1e-7
    )
    assert fast.offset_ == pytest.approx(exact.offset_, rel=1e-5)
    np.testing.assert_array_equal(fast.predict(queries), exact.predict(queries))


def test_excluding_self_agrees_with_sklearn(data):
    train, queries = data
    sk = NearestNeighbors().fit(train)
    fa = FaissNeighbors().fit(train)
    self_index = np.arange(len(train))
    for X, index in [(train, self_index), (queries, None)]:
        d_sk, i_sk = kneighbors_excluding_self(sk, X, 3, train, index)
        d_fa, i_fa = kneighbors_excluding_self(fa, X, 3, train, index)
        np.testing.assert_allclose(d_fa, d_sk, atol=1e-12)

        # same neighbours, up to which copy of the triplicated point is taken in a tie
        def canonical(i):
            return np.sort(np.where(np.isin(i, [11, 12]), 10, i), axis=1)

        np.testing.assert_array_equal(canonical(i_fa), canonical(i_sk))
        if index is not None:
            assert not (i_fa == self_index[:, None]).any()
    # each copy of a duplicated point finds the other two copies, never itself
    _, i_fa = kneighbors_excluding_self(fa, train[[10, 11, 12]], 2, train, np.array([10, 11, 12]))
    np.testing.assert_array_equal(np.sort(i_fa, axis=1), [[11, 12], [10, 12], [10, 11]])
    # a query equal to a training point (no index given) drops one copy of itself
    d_fa, _ = kneighbors_excluding_self(fa, train[[10]], 2, train)
    np.testing.assert_array_equal(d_fa, [[0.0, 0.0]])


def test_ivf_is_exact_when_probing_every_cell_and_close_by_default(data):
    train, queries = data
    exact = KNNOutlierDetector(n_neighbors=4, algorithm="sklearn").fit(train)
    full = KNNOutlierDetector(n_neighbors=4, index="ivf", n_lists=8, n_probe=8).fit(train)
    np.testing.assert_allclose(full.score_samples(queries), exact.score_samples(queries))
    approx = KNNOutlierDetector(n_neighbors=4, index="ivf", n_lists=8, n_probe=2).fit(train)
    assert approx.nn_.n_lists_ == 8 and approx.nn_.n_probe_ == 2
    # a missed neighbour can only make the mean distance larger (the score lower)
    assert (approx.score_samples(queries) <= exact.score_samples(queries) + 1e-12).all()
    _, i_exact = exact.kneighbors(queries)
    _, i_approx = approx.kneighbors(queries)
    recall = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(i_exact, i_approx)])
    assert recall > 0.9


def test_ivf_rebuilds_the_same_index_after_pickle_and_save(data, tmp_path):
    from skastro.serialization import load, save

    train, queries = data
    detector = KNNOutlierDetector(n_neighbors=3, index="ivf", n_lists=10, n_probe=1).fit(train)
    expected = detector.score_samples(queries)
    clone = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(clone.score_samples(queries), expected)
    loaded = load(save(detector, tmp_path / "ivf"))
    np.testing.assert_array_equal(loaded.nn_.centroids_, detector.nn_.centroids_)
    np.testing.assert_array_equal(loaded.score_samples(queries), expected)
    assert "_index" not in detector.nn_.__getstate__()


def test_auto_switches_to_faiss_above_the_threshold(data, monkeypatch):
    train, queries = data
    assert resolve_algorithm("auto", "euclidean", 10) == "sklearn"
    assert resolve_algorithm("auto", "euclidean", 10, index="ivf") == "faiss"
    monkeypatch.setattr(_neighbors, "AUTO_FAISS_MIN_SAMPLES", 100)
    detector = KNNOutlierDetector(n_neighbors=3).fit(train)
    assert isinstance(detector.nn_, FaissNeighbors)
    assert isinstance(KNNOutlierDetector(metric="cosine").fit(train).nn_, NearestNeighbors)
    exact = KNNOutlierDetector(n_neighbors=3, algorithm="sklearn").fit(train)
    np.testing.assert_allclose(detector.score_samples(queries), exact.score_samples(queries))


def test_errors_name_the_fix(data, monkeypatch):
    train, _ = data
    with pytest.raises(ValueError, match="Euclidean distances only"):
        KNNOutlierDetector(algorithm="faiss", metric="manhattan").fit(train)
    with pytest.raises(ValueError, match="n_lists must be between 1 and 400"):
        KNNOutlierDetector(index="ivf", n_lists=1000).fit(train)
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
    with pytest.raises(ImportError, match=r"pip install faiss-cpu.*skastro\[distributed\]"):
        KNNOutlierDetector(algorithm="faiss").fit(train)
    monkeypatch.setattr(_neighbors, "AUTO_FAISS_MIN_SAMPLES", 100)
    assert isinstance(KNNOutlierDetector().fit(train).nn_, NearestNeighbors)


@pytest.mark.parametrize(
    "check",
    [check_outliers_train, check_outliers_fit_predict, check_outlier_contamination],
    ids=lambda check: check.__name__,
)
def test_sklearn_outlier_checks_with_faiss(check):
    check("KNNOutlierDetector", KNNOutlierDetector(algorithm="faiss"))


def _brute_force(embedding, index, members, k):
    candidates = [c for c in np.flatnonzero(members) if c != index]
    dist = ((embedding[candidates] - embedding[index]) ** 2).sum(1)
    return [candidates[i] for i in np.argsort(dist, kind="stable")[:k]]


@pytest.mark.parametrize("index_kind", ["flat", "ivf"])
def test_explorer_similar_images_with_faiss(index_kind):
    rng = np.random.default_rng(1)
    embedding = rng.normal(size=(600, 5)).astype(np.float32)
    embedding[5] = embedding[6]  # a tie, broken by index
    clusters = rng.integers(0, 3, 600)
    clusters[rng.choice(600, 6, replace=False)] = 7  # a tiny, scattered cluster
    clusters[:20] = -1
    # IVF probing every cell is exact: the result must equal the brute force one
    n_probe = None if index_kind == "flat" else 64
    fast = NeighbourIndex(embedding, algorithm="faiss", index=index_kind, n_probe=n_probe)
    exact = NeighbourIndex(embedding, algorithm="sklearn")
    assert fast.backend_ == "faiss" and exact.backend_ == "sklearn"
    for point in [0, 1, 5, 100, *np.flatnonzero(clusters == 7)[:2]]:
        same, other = fast.similar(point, clusters, k=5)
        in_cluster = clusters == clusters[point]
        assert list(same) == _brute_force(embedding, point, in_cluster, 5)
        assert list(other) == _brute_force(embedding, point, ~in_cluster, 5)
        np.testing.assert_array_equal(same, exact.similar(point, clusters, k=5)[0])
    same, other = fast.similar(3, None, k=4)
    assert list(same) == _brute_force(embedding, 3, np.ones(600, bool), 4) and len(other) == 0
