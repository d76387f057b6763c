"""Tests of skastro.metrics: clustering and AUC scorers, image metrics, equivariance."""

import pickle
import warnings

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
from threadpoolctl import threadpool_limits
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from skastro.losses import ms_ssim_settings as _ms_ssim_settings
from skastro.metrics import (
    auc_scorer,
    dbcv_scorer,
    equivariance_error,
    make_auc_scorer,
    make_clustering_scorer,
    ms_ssim,
    reconstruction_mse,
    silhouette_scorer,
    ssim,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # the test machines have 2 shared cores: OpenMP's spinning threads (t-SNE, KMeans) slow
    # down tenfold when oversubscribed, so these tiny problems run on one thread
    with threadpool_limits(1):
        yield


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# clustering scorers
# --------------------------------------------------------------------------------------------


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
    with pytest.warns(UndefinedMetricWarning, match="DBCV failed"):
        assert dbcv_scorer(pipe, Z) == -1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"metric": "nope"}, {"noise_penalty": 2.0}, {"noise_penalty": "yes"}, {"sample_size": 1}],
)
def test_make_clustering_scorer_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_clustering_scorer(**kwargs)


# --------------------------------------------------------------------------------------------
# AUC scorer
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# image metrics
# --------------------------------------------------------------------------------------------


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


def test_reconstruction_mse_known_values():
    X = np.zeros((2, 3, 4, 4))
    X_rec = np.stack([np.full((3, 4, 4), 0.5), np.full((3, 4, 4), 1.0)])
    assert reconstruction_mse(X, X_rec) == pytest.approx((0.25 + 1.0) / 2)
    np.testing.assert_allclose(reconstruction_mse(X, X_rec, reduction="none"), [0.25, 1.0])
    X_pred = torch.tensor(X_rec, requires_grad=True)
    loss = reconstruction_mse(torch.tensor(X), X_pred)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    loss.backward()
    assert X_pred.grad is not None and X_pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shapes differ"):
        reconstruction_mse(X, X[:1])


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


def test_ssim_default_data_range_comes_from_the_target(images):
    noisy = images + 0.5 * np.random.default_rng(2).standard_normal(images.shape)
    span = images.max() - images.min()
    assert ssim(images, noisy) == pytest.approx(ssim(images, noisy, data_range=span))
    assert ssim(images, noisy) != pytest.approx(ssim(noisy, images))


def test_ssim_is_a_differentiable_loss(images):
    target = torch.tensor(images, dtype=torch.float32)
    output = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    loss = 1 - ssim(target, output)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    loss.backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0
    # a numpy target with a tensor prediction gives a tensor too
    assert isinstance(ssim(images, output), torch.Tensor)


def test_masked_ssim_is_the_mean_of_the_ssim_map_over_the_mask(images):
    noisy = images + 0.1 * np.random.default_rng(3).standard_normal(images.shape)
    mask = images[:, 0] > 0.3  # the bright "foreground"
    _, ssim_map = structural_similarity_index_measure(
        torch.tensor(noisy),
        torch.tensor(images),
        sigma=1.5,
        data_range=float(images.max() - images.min()),
        reduction="none",
        return_full_image=True,
    )
    ssim_map = ssim_map.numpy()[:, 0]
    assert ssim(images, noisy, mask=mask) == pytest.approx(ssim_map[mask].mean())
    per_image = [ssim_map[i][mask[i]].mean() for i in range(len(mask))]
    np.testing.assert_allclose(ssim(images, noisy, mask=mask, reduction="none"), per_image)
    # (n, 1, H, W) masks work alike; an all-True mask is plain SSIM
    assert ssim(images, noisy, mask=mask[:, None]) == pytest.approx(ssim_map[mask].mean())
    full = np.ones_like(mask)
    assert ssim(images, noisy, mask=full) == pytest.approx(ssim(images, noisy))
    with pytest.raises(ValueError, match="no pixel"):
        ssim(images, noisy, mask=np.zeros_like(mask))
    with pytest.raises(ValueError, match="does not match"):
        ssim(images, noisy, mask=mask[:, :16])


@pytest.mark.parametrize("size", [32, 64])
def test_ms_ssim_works_on_small_images(size):
    rng = np.random.default_rng(4)
    X = rng.gamma(2.0, size=(2, 2, size, size))
    X = X.cumsum(-1).cumsum(-2)  # smooth, structured images
    assert ms_ssim(X, X) == pytest.approx(1.0, abs=1e-6)
    scores = [ms_ssim(X, X + s * X.std() * rng.standard_normal(X.shape)) for s in (0.05, 0.3)]
    assert 1.0 > scores[0] > scores[1] > 0
    # torchmetrics' defaults reject these sizes, which is why the settings follow the size
    with pytest.raises(ValueError):
        multiscale_structural_similarity_index_measure(torch.tensor(X), torch.tensor(X))
    target = torch.tensor(X, dtype=torch.float32)
    output = (target * 1.1).requires_grad_(True)
    loss = 1 - ms_ssim(target, output)
    loss.backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0


def test_ms_ssim_settings_rule():
    kernel, betas = _ms_ssim_settings(64, 64, None, None)
    assert kernel == 7 and len(betas) == 4 and sum(betas) == pytest.approx(1)
    kernel, betas = _ms_ssim_settings(32, 32, None, None)
    assert kernel == 7 and len(betas) == 3
    kernel, betas = _ms_ssim_settings(256, 256, None, None)
    assert kernel == 11 and len(betas) == 5
    assert _ms_ssim_settings(64, 64, 5, None)[0] == 5
    with pytest.raises(ValueError, match="too small"):
        _ms_ssim_settings(2, 2, None, None)


def test_image_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        ms_ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="reduction"):
        ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), reduction="sum")


# --------------------------------------------------------------------------------------------
# equivariance
# --------------------------------------------------------------------------------------------


def sorted_pixels(X):
    """Invariant to any permutation of the pixels, so to rotations by 90 degrees and flips."""
    X = np.asarray(X)
    return np.sort(X.reshape(len(X), -1), axis=1)


@pytest.fixture(scope="module")
def square_images(images):
    rng = np.random.default_rng(5)
    return images[:, 0] + 0.05 * rng.standard_normal((6, 32, 32))  # (6, 32, 32)


def test_invariant_embedding_has_zero_error(square_images):
    invariant = FunctionTransformer(sorted_pixels)
    errors = equivariance_error(invariant, square_images)
    assert list(errors) == ["rot90", "rot180", "rot270", "fliplr", "flipud"]
    assert max(errors.values()) < 1e-12


def test_pca_embedding_is_not_invariant(square_images):
    flat = square_images.reshape(6, -1)
    pca = PCA(3).fit(flat)
    errors = equivariance_error(pca, flat)  # flat square images: one channel
    assert min(errors.values()) > 0.1
    assert equivariance_error(pca, flat, reduce="max") == pytest.approx(max(errors.values()))
    assert equivariance_error(pca, flat, reduce="mean") == pytest.approx(
        np.mean(list(errors.values()))
    )


def test_error_is_relative_to_the_spread(square_images):
    identity = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    offset = FunctionTransformer(lambda X: X.reshape(len(X), -1) + 1000.0)
    plain = equivariance_error(identity, square_images, ["rot90"])
    shifted = equivariance_error(offset, square_images, ["rot90"])
    assert plain["rot90"] > 0.1
    assert shifted["rot90"] == pytest.approx(plain["rot90"])


@pytest.mark.parametrize("shape", [(6, 32, 32), (6, 2, 32, 32), (6, 1024)])
def test_estimator_sees_the_layout_it_was_given(square_images, shape):
    X = np.broadcast_to(square_images[:, None], (6, 2, 32, 32))[:, : 2 if len(shape) == 4 else 1]
    X = np.ascontiguousarray(X).reshape(shape)
    seen = []

    def embed(images):
        seen.append(images.shape)
        return images.reshape(len(images), -1)[:, :5]

    equivariance_error(FunctionTransformer(embed), X, ["rot90", "fliplr"])
    assert seen == [shape] * 3


def test_named_rotations_callables_and_dicts(square_images):
    identity = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    errors = equivariance_error(
        identity, square_images, ["rot-90", "rot270", "rot360", "rot45", np.flip]
    )
    assert errors["rot-90"] == pytest.approx(errors["rot270"])
    assert errors["rot360"] == 0.0
    assert 0 < errors["rot45"] < 2
    assert errors["flip"] > 0
    via_dict = equivariance_error(
        identity, square_images, {"quarter": lambda X: np.rot90(X, 1, (-2, -1))}
    )
    assert via_dict["quarter"] == pytest.approx(
        equivariance_error(identity, square_images, "rot90")["rot90"]
    )
    with pytest.raises(ValueError, match="unknown transform"):
        equivariance_error(identity, square_images, ["shear"])


def test_rot45_moves_round_images_little_and_elongated_ones_much():
    yy, xx = np.mgrid[:33, :33] - 16.0
    widths = np.array([3.0, 5.0, 7.0])[:, None, None]
    round_ = np.exp(-(yy**2 + xx**2) / (2 * widths**2))  # centred blobs of three sizes
    elongated = np.exp(-(yy**2 / 4 + xx**2) / (2 * widths**2))
    identity = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    # bilinear interpolation alone moves the round blobs a little
    assert equivariance_error(identity, round_, ["rot45"])["rot45"] < 0.1
    assert equivariance_error(identity, elongated, ["rot45"])["rot45"] > 0.5


def test_constant_embedding_gives_nan_with_a_warning(square_images):
    constant = FunctionTransformer(lambda X: np.zeros((len(X), 2)))
    with pytest.warns(UndefinedMetricWarning, match="constant"):
        errors = equivariance_error(constant, square_images, ["rot90"])
    assert np.isnan(errors["rot90"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="reduce"):
            equivariance_error(constant, square_images, reduce="median")
