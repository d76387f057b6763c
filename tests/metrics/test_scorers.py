"""Clustering and AUC scorers: known answers, noise handling, GridSearchCV and skorch."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import DBSCAN, KMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skastro.metrics import (
    auc_scorer,
    dbcv_scorer,
    make_auc_scorer,
    make_clustering_scorer,
    silhouette_scorer,
    ssim,
)


@pytest.fixture(scope="module")
def two_blobs():
    X, _ = make_blobs(200, centers=[[-10, 0], [10, 0]], cluster_std=0.5, random_state=0)
    return X


class ThresholdClusterer(ClusterMixin, BaseEstimator):
    """Labels by the first feature: 0 below -t, 1 above t, noise (-1) in between."""

    def __init__(self, threshold=1.0):
        self.threshold = threshold

    def fit(self, X, y=None):
        self.labels_ = self.predict(X)
        return self

    def predict(self, X):
        x = np.asarray(X)[:, 0]
        return np.where(x < -self.threshold, 0, np.where(x > self.threshold, 1, -1))


class ConstantLabels(ClusterMixin, BaseEstimator):
    def __init__(self, label=-1):
        self.label = label

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.full(len(X), self.label)


class EvenOddLabels(ClusterMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.arange(len(X)) % 2


def noisy_line(n=300, seed=0):
    """Two groups on a line with points in the gap that ThresholdClusterer calls noise."""
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(-5, 1, n // 3), rng.normal(5, 1, n // 3), rng.uniform(-1, 1, n // 3)]
    return np.c_[x, rng.normal(0, 1, len(x))]


def test_two_separated_blobs_score_near_one(two_blobs):
    pipe = make_pipeline(PCA(2), KMeans(2, n_init=3, random_state=0)).fit(two_blobs)
    assert silhouette_scorer(pipe, two_blobs) > 0.9
    assert dbcv_scorer(pipe, two_blobs) > 0.9
    # a bare clusterer scores X itself as the embedding
    kmeans = KMeans(2, n_init=3, random_state=0).fit(two_blobs)
    labels = kmeans.predict(two_blobs)
    assert silhouette_scorer(kmeans, two_blobs) == pytest.approx(
        silhouette_score(two_blobs, labels)
    )


@pytest.mark.parametrize("scorer", [silhouette_scorer, dbcv_scorer])
def test_one_cluster_and_all_noise_score_worst(two_blobs, scorer):
    one = KMeans(1, n_init=1, random_state=0).fit(two_blobs)
    assert scorer(one, two_blobs) == -1.0
    assert scorer(ConstantLabels(-1).fit(two_blobs), two_blobs) == -1.0
    # DBSCAN has no predict: it is re-fitted on the scored data, and this eps finds no core
    dbscan = DBSCAN(eps=1e-9, min_samples=5).fit(two_blobs)
    assert scorer(dbscan, two_blobs) == -1.0


def test_noise_points_are_ignored():
    X = noisy_line()
    clusterer = ThresholdClusterer(1.0).fit(X)
    labels = clusterer.predict(X)
    assert (labels == -1).mean() == pytest.approx(1 / 3, abs=0.05)
    kept = labels >= 0
    expected = silhouette_score(X[kept], labels[kept])
    assert silhouette_scorer(clusterer, X) == pytest.approx(expected)
    # through a pipeline, the embedding is what the steps before the clusterer make
    pipe = make_pipeline(StandardScaler(), ThresholdClusterer(0.2)).fit(X)
    Z = pipe[:-1].transform(X)
    labels = pipe[-1].predict(Z)
    kept = labels >= 0
    assert silhouette_scorer(pipe, X) == pytest.approx(silhouette_score(Z[kept], labels[kept]))


@pytest.mark.parametrize("weight", [True, 1.0, 0.5])
def test_noise_penalty_lowers_the_score_by_the_documented_amount(weight):
    X = noisy_line()
    clusterer = ThresholdClusterer(1.0).fit(X)
    noise_fraction = (clusterer.predict(X) == -1).mean()
    plain = silhouette_scorer(clusterer, X)
    penalised = make_clustering_scorer("silhouette", noise_penalty=weight)(clusterer, X)
    w = float(weight)
    assert penalised == pytest.approx(plain - w * noise_fraction * (plain + 1))
    assert penalised < plain
    # w = 1 is the mean silhouette when every noise point scores -1
    if w == 1:
        assert penalised == pytest.approx((1 - noise_fraction) * plain - noise_fraction)


def test_noise_penalty_changes_nothing_without_noise(two_blobs):
    kmeans = KMeans(2, n_init=3, random_state=0).fit(two_blobs)
    scorer = make_clustering_scorer("dbcv", noise_penalty=True)
    assert scorer(kmeans, two_blobs) == pytest.approx(dbcv_scorer(kmeans, two_blobs))


def test_subsampling_is_reproducible():
    X, _ = make_blobs(600, centers=3, cluster_std=2.0, random_state=1)
    kmeans = KMeans(3, n_init=3, random_state=0).fit(X)
    scorer = make_clustering_scorer("silhouette", sample_size=150, random_state=0)
    first = scorer(kmeans, X)
    assert scorer(kmeans, X) == first
    assert pickle.loads(pickle.dumps(scorer))(kmeans, X) == first
    other_seed = make_clustering_scorer("silhouette", sample_size=150, random_state=1)
    assert other_seed(kmeans, X) != first
    full = make_clustering_scorer("silhouette", sample_size=None)(kmeans, X)
    assert first == pytest.approx(full, abs=0.05)
    assert first != full


def test_hdbscan_scored_by_approximate_predict():
    hdbscan = pytest.importorskip("hdbscan")
    X, _ = make_blobs(300, centers=3, cluster_std=0.6, random_state=2)
    X_train, X_test = X[:200], X[200:]
    pipe = make_pipeline(
        StandardScaler(), hdbscan.HDBSCAN(min_cluster_size=10, prediction_data=True)
    )
    pipe.fit(X_train)
    Z = pipe[:-1].transform(X_test)
    labels, _ = hdbscan.approximate_predict(pipe[-1], Z)
    kept = labels >= 0
    assert silhouette_scorer(pipe, X_test) == pytest.approx(silhouette_score(Z[kept], labels[kept]))

    # without prediction data the clusterer is re-fitted on a clone, the fitted one untouched
    pipe = make_pipeline(StandardScaler(), hdbscan.HDBSCAN(min_cluster_size=10)).fit(X_train)
    fitted_labels = pipe[-1].labels_.copy()
    Z = pipe[:-1].transform(X_test)
    labels = clone(pipe[-1]).fit_predict(Z)
    kept = labels >= 0
    assert silhouette_scorer(pipe, X_test) == pytest.approx(silhouette_score(Z[kept], labels[kept]))
    np.testing.assert_array_equal(pipe[-1].labels_, fitted_labels)


def test_grid_search_multi_metric_finds_the_true_number_of_clusters():
    X, _ = make_blobs(240, centers=3, n_features=6, cluster_std=1.0, random_state=0)
    pipe = make_pipeline(PCA(3), KMeans(n_init=3, random_state=0))
    search = GridSearchCV(
        pipe,
        {"kmeans__n_clusters": [2, 3, 4, 5]},
        scoring={"silhouette": silhouette_scorer, "dbcv": dbcv_scorer},
        refit="silhouette",
        cv=2,
    ).fit(X)
    assert search.best_params_ == {"kmeans__n_clusters": 3}
    dbcv = search.cv_results_["mean_test_dbcv"]
    assert np.all(np.isfinite(dbcv)) and np.argmax(dbcv) == 1
    # the refitted pipeline is scored like any other
    assert search.score(X) == pytest.approx(silhouette_scorer(search.best_estimator_, X))


def test_callable_metric_and_clusterer_for_embedders(two_blobs):
    calls = []

    def spread_ratio(Z, labels):
        calls.append((Z.shape, np.unique(labels)))
        return 0.5

    embedder = PCA(2).fit(two_blobs)
    scorer = make_clustering_scorer(spread_ratio, clusterer=KMeans(2, n_init=3, random_state=0))
    assert scorer(embedder, two_blobs) == 0.5
    assert calls[0][0] == (200, 2)
    np.testing.assert_array_equal(calls[0][1], [0, 1])
    # the same scorer, as skorch's EpochScoring would call it: (net, X_valid, y_valid)
    assert make_clustering_scorer(clusterer=KMeans(2, n_init=3))(embedder, two_blobs) > 0.9


def test_non_finite_embedding_scores_worst_with_a_warning(two_blobs):
    kmeans = KMeans(2, n_init=3, random_state=0).fit(two_blobs)
    broken = make_pipeline(FunctionTransformer(lambda X: X * np.nan), EvenOddLabels())
    broken.fit(two_blobs)
    with pytest.warns(UndefinedMetricWarning, match="non-finite"):
        assert silhouette_scorer(broken, two_blobs) == -1.0
    assert np.isfinite(silhouette_scorer(kmeans, two_blobs))


def test_dbcv_failure_scores_worst_with_a_warning():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(20, 2))
    Z[0] += 100  # a one-point cluster: its minimum spanning tree has no edge
    pipe = make_pipeline(KMeans(2, n_init=3, random_state=0)).fit(Z)
    assert np.bincount(pipe.predict(Z)).min() == 1
    with pytest.warns(UndefinedMetricWarning, match=r"single point \(cluster \d here\)") as caught:
        assert dbcv_scorer(pipe, Z) == -1.0
    # one clear line, not hdbscan's "Invalid shape in axis 0: 0."
    message = str(caught[0].message)
    assert "\n" not in message and "Invalid shape" not in message


def test_grid_search_with_skastro_scorers_shows_progress(two_blobs, capsys):
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(
        make_pipeline(KMeans(n_init=3, random_state=0)),
        {"kmeans__n_clusters": [2, 3]},
        scoring={"silhouette": silhouette_scorer, "dbcv": dbcv_scorer},
        refit="silhouette",
        cv=2,
        verbose=3,
    ).fit(two_blobs)
    out = capsys.readouterr().out
    assert "Fitting 2 folds for each of 2 candidates, totalling 4 fits" in out
    # one line per fit, with its scores and time
    lines = [line for line in out.splitlines() if line.startswith("[CV")]
    assert len(lines) == 4 and all("silhouette: (test=" in line for line in lines)
    assert all("dbcv: (test=" in line and "total time=" in line for line in lines)
    assert search.best_params_ == {"kmeans__n_clusters": 2}


@pytest.mark.parametrize(
    "kwargs",
    [{"metric": "nope"}, {"noise_penalty": 2.0}, {"noise_penalty": "yes"}, {"sample_size": 1}],
)
def test_make_clustering_scorer_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_clustering_scorer(**kwargs)


@pytest.fixture(scope="module")
def separable():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))]
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    return X, y


def test_auc_scorer_perfect_and_reversed_classifier(separable):
    X, y = separable
    perfect = LogisticRegression().fit(X, y)
    reversed_ = LogisticRegression().fit(X, 1 - y)
    assert auc_scorer(perfect, X, y) == 1.0
    assert auc_scorer(reversed_, X, y) == 0.0
    sign_invariant = make_auc_scorer(sign_invariant=True)
    assert sign_invariant(perfect, X, y) == 1.0
    assert sign_invariant(reversed_, X, y) == 1.0


def test_auc_scorer_falls_back_to_predict_proba_then_score_samples(separable):
    X, y = separable
    X_noisy = X + np.random.default_rng(1).normal(0, 2, X.shape)
    naive_bayes = GaussianNB().fit(X_noisy, y)  # predict_proba, no decision_function
    expected = roc_auc_score(y, naive_bayes.predict_proba(X_noisy)[:, 1])
    assert auc_scorer(naive_bayes, X_noisy, y) == pytest.approx(expected)
    density = KernelDensity().fit(X[y == 1])  # score_samples only: dense = positive
    assert auc_scorer(density, X, y) == 1.0
    with pytest.raises(TypeError, match="continuous score"):
        auc_scorer(StandardScaler().fit(X), X, y)
    with pytest.raises(ValueError, match="labels"):
        auc_scorer(density, X)


def test_auc_scorer_with_string_labels_and_grid_search(separable):
    X, y = separable
    names = np.where(y == 1, "STAR", "GALAXY")  # STAR > GALAXY: the positive class
    classifier = LogisticRegression().fit(X, names)
    assert auc_scorer(classifier, X, names) == 1.0
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0]}, scoring=auc_scorer, cv=2)
    assert search.fit(X, y).best_score_ == 1.0


def test_scorers_serve_skorch_epoch_scoring(separable):
    skorch = pytest.importorskip("skorch")
    X, y = separable
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=-1)),
        max_epochs=2,
        lr=0.1,
        callbacks=[skorch.callbacks.EpochScoring(auc_scorer, lower_is_better=False, name="auc")],
        verbose=0,
    )
    net.fit(X.astype(np.float32), y)
    aucs = net.history[:, "auc"]
    # the untrained first epoch may rank either way; training makes it right
    assert len(aucs) == 2 and all(0 <= auc <= 1 for auc in aucs) and aucs[-1] > 0.9


@pytest.fixture(scope="module")
def images():
    """Smooth 'galaxies' (Gaussian blobs) on a 32 x 32 grid."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    centres = rng.uniform(10, 22, (6, 2))
    widths = rng.uniform(2, 5, 6)
    blobs = np.exp(
        -((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2)
        / (2 * widths[:, None, None] ** 2)
    )
    return blobs[:, None]  # (6, 1, 32, 32)


def test_ssim_identity_and_noise(images):
    rng = np.random.default_rng(1)
    assert ssim(images, images) == pytest.approx(1.0, abs=1e-6)
    assert ssim(images[:, 0], images[:, 0]) == pytest.approx(1.0, abs=1e-6)
    scores = [
        ssim(images, images + s * rng.standard_normal(images.shape)) for s in (0.02, 0.1, 0.3)
    ]
    assert 1.0 > scores[0] > scores[1] > scores[2]
    per_image = ssim(images, images + 0.1, reduction="none")
    assert isinstance(per_image, np.ndarray) and per_image.shape == (6,)


def test_auc_scorer_says_it_needs_two_classes():
    from sklearn.neighbors import KNeighborsClassifier

    from skastro.metrics import auc_scorer

    X = np.random.default_rng(0).random((30, 3))
    y = np.arange(30) % 3
    model = KNeighborsClassifier().fit(X, y % 2)
    with pytest.raises(ValueError, match=r"ranks two classes, but y holds 3: \[0, 1, 2\]"):
        auc_scorer(model, X, y)
