"""KNNOutlierDetector against a brute-force computation, and sklearn's outlier checks."""

import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import (
    check_outlier_contamination,
    check_outlier_corruption,
    check_outliers_fit_predict,
    check_outliers_train,
)

from skastro import anomaly
from skastro.anomaly import KNNOutlierDetector, kneighbors_excluding_self


def brute_force_scores(train, queries, k, self_index=None, metric=None):
    """Negative mean distance to the k nearest training points; self excluded by index."""
    metric = metric or (lambda a, b: np.sqrt(((a - b) ** 2).sum(-1)))
    distances = metric(queries[:, None, :], train[None, :, :])
    if self_index is not None:
        distances[np.arange(len(queries)), self_index] = np.inf
    return -np.sort(distances, axis=1)[:, :k].mean(axis=1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 4)), rng.normal(size=(25, 4)) * 2


def test_scores_of_new_points_match_brute_force(data):
    train, queries = data
    detector = KNNOutlierDetector(n_neighbors=4).fit(train)
    np.testing.assert_allclose(
        detector.score_samples(queries), brute_force_scores(train, queries, 4), rtol=1e-10
    )


def test_training_points_do_not_count_themselves(data):
    train, _ = data
    detector = KNNOutlierDetector(n_neighbors=3).fit(train)
    expected = brute_force_scores(train, train, 3, self_index=np.arange(len(train)))
    np.testing.assert_allclose(detector.score_samples(train), expected, rtol=1e-10)
    np.testing.assert_allclose(detector.training_scores_, expected, rtol=1e-10)
    # a single training point queried on its own is also recognised
    np.testing.assert_allclose(detector.score_samples(train[7:8]), expected[7:8], rtol=1e-10)


def test_exact_duplicates_count_each_other_but_not_themselves():
    train = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    detector = KNNOutlierDetector(n_neighbors=2).fit(train)
    expected = brute_force_scores(train, train, 2, self_index=np.arange(len(train)))
    np.testing.assert_allclose(detector.score_samples(train), expected)
    # each copy of the origin has the two other copies at distance 0, never itself
    assert detector.score_samples([[0.0, 0.0]])[0] == 0.0
    _, indices = detector.kneighbors(train)
    np.testing.assert_array_equal(np.sort(indices[[0, 1, 4]], axis=1), [[1, 4], [0, 4], [0, 1]])
    # a copy of the origin with itself removed: a single duplicate left, then (1, 0)
    detector = KNNOutlierDetector(n_neighbors=2).fit(train[[0, 1, 2, 3]])
    assert detector.score_samples([[0.0, 0.0]])[0] == pytest.approx(-0.5)


def test_scores_do_not_depend_on_the_order_of_the_training_data(data):
    train, queries = data
    order = np.random.default_rng(1).permutation(len(train))
    a = KNNOutlierDetector(n_neighbors=5).fit(train)
    b = KNNOutlierDetector(n_neighbors=5).fit(train[order])
    np.testing.assert_allclose(a.score_samples(train)[order], b.score_samples(train[order]))
    np.testing.assert_allclose(a.score_samples(queries), b.score_samples(queries))


def test_other_metric_matches_brute_force(data):
    train, queries = data
    detector = KNNOutlierDetector(n_neighbors=2, metric="manhattan").fit(train)

    def manhattan(a, b):
        return np.abs(a - b).sum(-1)

    np.testing.assert_allclose(
        detector.score_samples(queries),
        brute_force_scores(train, queries, 2, metric=manhattan),
        rtol=1e-10,
    )


def test_kneighbors_returns_sorted_neighbours_without_self(data):
    train, _ = data
    detector = KNNOutlierDetector(n_neighbors=3).fit(train)
    distances, indices = detector.kneighbors(train)
    assert indices.shape == (len(train), 3)
    assert not (indices == np.arange(len(train))[:, None]).any()
    assert (np.diff(distances, axis=1) >= 0).all()


def test_chunked_search_gives_the_same_answer(data, monkeypatch):
    train, queries = data
    detector = KNNOutlierDetector(n_neighbors=3).fit(train)
    expected = detector.score_samples(np.concatenate([train, queries]))
    monkeypatch.setattr(anomaly, "_CHUNK_VALUES", 7)  # one query per chunk
    np.testing.assert_allclose(detector.score_samples(np.concatenate([train, queries])), expected)


def test_decision_function_and_predict_follow_the_offset(data):
    train, queries = data
    detector = KNNOutlierDetector(contamination=0.1).fit(train)
    decision = detector.decision_function(queries)
    np.testing.assert_allclose(decision, detector.score_samples(queries) - detector.offset_)
    np.testing.assert_array_equal(detector.predict(queries), np.where(decision < 0, -1, 1))
    assert np.mean(detector.fit_predict(train) == -1) == pytest.approx(0.1, abs=1 / len(train))


def test_auto_contamination_is_tukeys_fence(data):
    train, _ = data
    detector = KNNOutlierDetector().fit(train)
    q25, q75 = np.percentile(detector.training_scores_, [25, 75])
    assert detector.offset_ == pytest.approx(q25 - 1.5 * (q75 - q25))
    # a far-away point is flagged, a central one is not
    assert detector.predict([[50.0, 0, 0, 0], [0.0, 0, 0, 0]]).tolist() == [-1, 1]


def test_a_clear_outlier_gets_the_lowest_score():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(40, 2)), [[8.0, 8.0]]])
    detector = KNNOutlierDetector(n_neighbors=3)
    labels = detector.fit_predict(X)
    assert labels[-1] == -1
    assert np.argmin(detector.training_scores_) == len(X) - 1


def test_too_few_samples():
    with pytest.raises(ValueError, match="at least 2 training samples"):
        KNNOutlierDetector().fit([[1.0, 2.0]])
    with pytest.warns(UserWarning, match="n_neighbors is set to 2"):
        detector = KNNOutlierDetector(n_neighbors=5).fit([[0.0], [1.0], [3.0]])
    assert detector.n_neighbors_ == 2
    np.testing.assert_allclose(detector.score_samples([[0.0], [10.0]]), [-2.0, -8.0])


def test_bad_parameters_and_inputs(data):
    train, _ = data
    with pytest.raises(ValueError, match="contamination"):
        KNNOutlierDetector(contamination=0.7).fit(train)
    with pytest.raises(ValueError, match="n_neighbors"):
        KNNOutlierDetector(n_neighbors=0).fit(train)
    with pytest.raises(ValueError, match="precomputed"):
        KNNOutlierDetector(metric="precomputed").fit(train)
    detector = KNNOutlierDetector().fit(train)
    with pytest.raises(ValueError, match="features"):
        detector.score_samples(train[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        detector.score_samples(np.full((1, 4), np.nan))


def test_kneighbors_excluding_self_rejects_too_many_neighbours():
    from sklearn.neighbors import NearestNeighbors

    X = np.arange(3.0)[:, None]
    with pytest.raises(ValueError, match="smaller than the number of training points"):
        kneighbors_excluding_self(NearestNeighbors().fit(X), X, 3, X)


def test_last_step_of_a_pipeline(data):
    train, queries = data
    pipe = make_pipeline(FunctionTransformer(lambda X: 2 * X), KNNOutlierDetector(3))
    pipe.fit(train)
    direct = KNNOutlierDetector(3).fit(2 * train)
    np.testing.assert_allclose(pipe.score_samples(queries), direct.score_samples(2 * queries))
    np.testing.assert_array_equal(pipe.predict(queries), direct.predict(2 * queries))
    np.testing.assert_array_equal(pipe.fit_predict(train), direct.fit_predict(2 * train))


@pytest.mark.parametrize(
    "check",
    [
        check_outliers_train,
        check_outliers_fit_predict,
        check_outlier_contamination,
        check_outlier_corruption,
    ],
    ids=lambda check: check.__name__,
)
def test_sklearn_outlier_detector_checks(check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if check is check_outlier_corruption:
            # takes (num_outliers, expected_outliers, decision) rather than an estimator
            rng = np.random.default_rng(0)
            X = np.vstack([rng.normal(size=(50, 2)), rng.uniform(6, 8, size=(5, 2))])
            decision = KNNOutlierDetector(contamination=5 / 55).fit(X).decision_function(X)
            check(int((decision < 0).sum()), 5, decision)
        else:
            check(type(KNNOutlierDetector()).__name__, KNNOutlierDetector())


def test_saved_detector_round_trips(data, tmp_path):
    from skastro.serialization import load, save

    train, queries = data
    detector = KNNOutlierDetector(n_neighbors=3, contamination=0.1).fit(train)
    loaded = load(save(detector, tmp_path / "detector"))
    assert loaded.get_params() == detector.get_params()
    np.testing.assert_array_equal(loaded.score_samples(queries), detector.score_samples(queries))
    np.testing.assert_array_equal(loaded.training_scores_, detector.training_scores_)
    assert loaded.offset_ == detector.offset_ and loaded.n_neighbors_ == 3
    np.testing.assert_array_equal(loaded.predict(train), detector.predict(train))


def test_sklearn_backend_needs_a_flat_index(data):
    train, _ = data
    with pytest.raises(ValueError, match="index='ivf' exists in FAISS only"):
        KNNOutlierDetector(algorithm="sklearn", index="ivf").fit(train)
    with pytest.raises(ValueError, match="algorithm"):
        KNNOutlierDetector(algorithm="annoy").fit(train)


def test_auto_uses_sklearn_for_small_data_and_other_metrics(data):
    from sklearn.neighbors import NearestNeighbors

    train, _ = data
    assert isinstance(KNNOutlierDetector().fit(train).nn_, NearestNeighbors)
    assert isinstance(KNNOutlierDetector(metric="manhattan").fit(train).nn_, NearestNeighbors)
