"""VICRegEmbedder, its loss terms, backbone, view augmentations and kNN pairs."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skastro import KNNOutlierDetector, VICRegEmbedder
from skastro.datasets import ANOMALY_KINDS, make_anomalies
from skastro.nn.resnet import ResNetBackbone, VICRegModule

TINY = dict(
    n_components=6,
    widths=(4, 8),
    expander_widths=(16,),
    max_epochs=1,
    batch_size=16,
    random_state=0,
    device="cpu",
)


@pytest.fixture(scope="module")
def images():
    """40 hand-made 16x16 two-band images: Gaussian blobs of random position and width."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:16]
    out = np.empty((40, 2, 16, 16), dtype=np.float32)
    for i in range(40):
        y0, x0, s = rng.uniform(5, 11), rng.uniform(5, 11), rng.uniform(1, 3)
        blob = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * s**2))
        out[i, 0], out[i, 1] = blob, 0.5 * blob
    return out + rng.normal(0, 0.01, out.shape).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(images):
    return VICRegEmbedder(**{**TINY, "max_epochs": 2}).fit(images)


# ---------------------------------------------------------------------- backbone, views
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 9), (3, 32, 32)])
def test_backbone_takes_any_bands_and_size(shape):
    backbone = ResNetBackbone(shape[0], widths=(4, 8, 8), n_blocks=2, n_components=3)
    assert backbone(torch.zeros(2, *shape)).shape == (2, 3)
    blocks = sum(1 for m in backbone.modules() if type(m).__name__ == "BasicBlock")
    assert blocks == 6


def test_module_returns_representation_and_embedding():
    module = VICRegModule((2, 16, 16), widths=(4,), n_components=5, expander_widths=(7, 9))
    representation, embedding = module(torch.zeros(3, 2, 16, 16))
    assert representation.shape == (3, 5) and embedding.shape == (3, 9)


# ---------------------------------------------------------------------- estimator
def test_transform_returns_the_backbone_representation(fitted, images):
    Z = fitted.transform(images)
    assert Z.shape == (40, 6) and Z.dtype == np.float32
    with torch.no_grad():
        expected = fitted.module_.backbone(fitted._to_net(torch.from_numpy(images)))
    np.testing.assert_allclose(Z, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert fitted.get_feature_names_out()[0] == "vicregembedder0"


def test_each_loss_term_and_rankme_are_logged_per_epoch(fitted):
    assert len(fitted.history_) == 2
    for row in fitted.history_:
        for key in ("loss_invariance", "loss_variance", "loss_covariance", "rankme"):
            assert np.isfinite(row[key])
        assert 0 <= row["loss_variance"] <= 1
        assert 1 <= row["rankme"] <= 6  # at most n_components
        total = 25 * row["loss_invariance"] + 25 * row["loss_variance"] + row["loss_covariance"]
        assert row["train_loss"] == pytest.approx(total, rel=1e-4)


def test_training_uses_full_batches_only(fitted, images):
    # 40 images in batches of 16: two full batches per epoch, the last 8 images are dropped
    assert all(len(row["batches"]) == 2 for row in fitted.history_)
    assert all(b["train_batch_size"] == 16 for row in fitted.history_ for b in row["batches"])
    # fewer images than batch_size: one batch of all of them
    small = VICRegEmbedder(**{**TINY, "batch_size": 64}).fit(images[:10])
    assert [b["train_batch_size"] for b in small.history_[0]["batches"]] == [10]


def test_same_seed_same_embedding_and_pickle_round_trip(fitted, images):
    again = VICRegEmbedder(**{**TINY, "max_epochs": 2}).fit(images)
    np.testing.assert_array_equal(again.transform(images), fitted.transform(images))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(images), fitted.transform(images))


def test_score_is_deterministic(fitted, images):
    score = fitted.score(images)
    assert np.isfinite(score) and score == fitted.score(images)
    with pytest.raises(ValueError, match="at least 2 images"):
        fitted.score(images[:1])


def test_parameter_errors(images):
    with pytest.raises(ValueError, match="at least 2 training images"):
        VICRegEmbedder(**TINY).fit(images[:1])
    with pytest.raises(ValueError, match="needs augment=True"):
        VICRegEmbedder(**TINY, augment=False).fit(images)
    with pytest.raises(ValueError, match="crop_scale"):
        VICRegEmbedder(**TINY, crop_scale=(0.0, 1.0)).fit(images)
    with pytest.raises(ValueError, match="pairs"):
        VICRegEmbedder(**TINY, pairs="views").fit(images)
    with pytest.raises(ValueError, match="expander_widths"):
        VICRegEmbedder(**{**TINY, "expander_widths": ()}).fit(images)
    with pytest.raises(NotFittedError):
        VICRegEmbedder(**TINY).transform(images)


# ---------------------------------------------------------------------- kNN pairs
@pytest.fixture(scope="module")
def twins(images):
    """Every image twice (exact duplicates), so each one's nearest neighbour is its twin."""
    return np.concatenate([images[:16], images[:16]])


def test_knn_pairs_each_image_with_its_nearest_other_image(twins):
    model = VICRegEmbedder(**TINY, pairs="knn", n_neighbors=1, augment=False).fit(twins)
    np.testing.assert_array_equal(model.neighbors_[:, 0], np.r_[np.arange(16, 32), np.arange(16)])
    # without augmentation each image is paired with an identical twin: zero invariance
    assert all(row["loss_invariance"] == 0.0 for row in model.history_)
    assert not hasattr(model, "_train_data")  # the images are not kept after training


def test_knn_neighbours_match_a_brute_force_search(images):
    model = VICRegEmbedder(**TINY, pairs="knn", n_neighbors=3, augment=False).fit(images)
    flat = (images - model.channel_mean_[:, None, None]) / model.channel_std_[:, None, None]
    flat = flat.reshape(len(images), -1).astype(np.float64)
    distances = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_array_equal(model.neighbors_, np.argsort(distances, axis=1)[:, :3])
    assert model.history_[-1]["loss_invariance"] > 0


@pytest.mark.parametrize("kind", ["pca", "array", "estimator", "frozen clone"])
def test_knn_reference_embeddings(images, kind):
    flat = images.reshape(len(images), -1)
    if kind == "pca":
        reference = "pca"
    elif kind == "array":
        reference = flat[:, :5]
    else:
        reference = make_pipeline(
            FunctionTransformer(lambda X: X.reshape(len(X), -1)), PCA(4, random_state=0)
        ).fit(images)
    model = VICRegEmbedder(**TINY, pairs="knn", reference=reference, n_neighbors=2)
    if kind == "frozen clone":  # a frozen reference survives cloning (e.g. in GridSearchCV)
        model = clone(model.set_params(reference=FrozenEstimator(reference)))
    model.fit(images)
    assert model.neighbors_.shape == (40, 2)
    assert not (model.neighbors_ == np.arange(40)[:, None]).any()
    if kind == "array":
        distances = ((flat[:, None, :5] - flat[None, :, :5]) ** 2).sum(-1)
        np.fill_diagonal(distances, np.inf)
        np.testing.assert_array_equal(model.neighbors_, np.argsort(distances, axis=1)[:, :2])


def test_continued_training_finds_new_neighbours_when_asked_for_other_ones(twins):
    model = VICRegEmbedder(**TINY, pairs="knn", n_neighbors=1, augment=False, warm_start=True)
    model.fit(twins)
    np.testing.assert_array_equal(model.neighbors_[:, 0], np.r_[np.arange(16, 32), np.arange(16)])
    model.fit(twins)  # the same images and settings: the neighbours are kept
    reference = np.random.default_rng(0).normal(size=(len(twins), 4))
    model.set_params(n_neighbors=2, reference=reference).fit(twins)
    assert model.neighbors_.shape == (len(twins), 2)
    distances = ((reference[:, None] - reference[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_array_equal(model.neighbors_, np.argsort(distances, axis=1)[:, :2])


def test_knn_reference_errors(images):
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        VICRegEmbedder(**TINY, pairs="knn", reference=PCA(2)).fit(images)
    with pytest.raises(ValueError, match="one row per training image"):
        VICRegEmbedder(**TINY, pairs="knn", reference=np.zeros((3, 2))).fit(images)


def test_knn_neighbours_follow_the_training_data_in_partial_fit(images):
    model = VICRegEmbedder(**TINY, pairs="knn", n_neighbors=2).fit(images)
    before = model.neighbors_
    model.partial_fit(images, epochs=1)
    assert model.neighbors_ is before  # same images: not searched again
    model.partial_fit(images[:20], epochs=1)
    assert model.neighbors_.shape == (20, 2)


def test_pipeline_with_outlier_detector_flags_anomalies(fitted, images):
    anomalies = make_anomalies(images, 2, noise_sigma=0.01, random_state=0)
    assert sorted(set(anomalies.kind)) == sorted(ANOMALY_KINDS)
    pipe = make_pipeline(
        VICRegEmbedder(**{**TINY, "max_epochs": 2}), KNNOutlierDetector(n_neighbors=3)
    ).fit(images)
    labels = pipe.predict(np.concatenate([images, anomalies.images]))
    assert set(np.unique(labels)) <= {-1, 1}
    scores = pipe.score_samples(images)
    np.testing.assert_allclose(scores, pipe[-1].training_scores_, rtol=1e-5)
