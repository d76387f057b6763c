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
from skastro.augment import random_blur, random_crop_rotate, random_view
from skastro.datasets import ANOMALY_KINDS, make_anomalies
from skastro.losses import (
    VICRegLoss,
    covariance_loss,
    invariance_loss,
    rankme,
    variance_loss,
)
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


# ---------------------------------------------------------------------- loss terms
def reference_vicreg(x, y, sim=25.0, var=25.0, cov=1.0):
    """The authors' reference implementation (facebookresearch/vicreg, main_vicreg.py)."""
    repr_loss = torch.nn.functional.mse_loss(x, y)
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 0.0001), torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(torch.relu(1 - std_x)) / 2 + torch.mean(torch.relu(1 - std_y)) / 2
    n, d = x.shape
    cov_x, cov_y = (x.T @ x) / (n - 1), (y.T @ y) / (n - 1)
    off = ~torch.eye(d, dtype=bool)
    cov_loss = cov_x[off].pow(2).sum() / d + cov_y[off].pow(2).sum() / d
    return sim * repr_loss + var * std_loss + cov * cov_loss


def test_identical_branches_have_zero_invariance():
    Z = torch.randn(8, 5)
    assert float(invariance_loss(Z, Z.clone())) == 0.0
    assert float(invariance_loss(torch.zeros(4, 3), torch.full((4, 3), 2.0))) == 4.0


def test_constant_embedding_gets_the_maximal_variance_penalty():
    eps = 1e-4
    assert float(variance_loss(torch.full((16, 8), 3.0), eps=eps)) == pytest.approx(1 - eps**0.5)
    # a standard deviation above 1 is not penalised; one of 0.5 costs 1 - sqrt(0.25 + eps)
    spread = torch.tensor([[-1.0], [1.0]]) * 2**-0.5  # unbiased std = 1
    assert float(variance_loss(2 * spread)) == 0.0
    assert float(variance_loss(0.5 * spread)) == pytest.approx(1 - (0.25 + eps) ** 0.5)


def test_variance_hinge_on_the_std_keeps_a_gradient_near_collapse():
    # near a collapsed embedding the gradient of the std hinge is large, while that of a
    # hinge on the variance would vanish: this is what prevents collapse
    Z = (1e-3 * torch.randn(32, 4)).requires_grad_()
    variance_loss(Z).backward()
    std_grad = Z.grad.norm()
    Z.grad = None
    torch.relu(1 - Z.var(dim=0)).mean().backward()
    assert std_grad > 10 * Z.grad.norm()


def test_decorrelated_features_have_zero_covariance():
    hadamard = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    assert float(covariance_loss(hadamard[:, 1:])) == pytest.approx(0.0, abs=1e-7)
    # two identical columns of variance 4/3: off-diagonal (4/3)^2 twice, divided by d = 2
    doubled = torch.stack([hadamard[:, 1], hadamard[:, 1]], 1)
    assert float(covariance_loss(doubled)) == pytest.approx(16 / 9)


def test_vicreg_loss_matches_the_reference_implementation_and_is_symmetric():
    torch.manual_seed(0)
    a, b = torch.randn(32, 10), torch.randn(32, 10) * 0.3
    terms = VICRegLoss()(a, b)
    assert float(terms["loss"]) == pytest.approx(float(reference_vicreg(a, b)), rel=1e-5)
    assert float(VICRegLoss()(b, a)["loss"]) == pytest.approx(float(terms["loss"]), rel=1e-6)
    weighted = VICRegLoss(sim_weight=2.0, var_weight=3.0, cov_weight=0.5)(a, b)
    assert float(weighted["loss"]) == pytest.approx(
        float(reference_vicreg(a, b, 2.0, 3.0, 0.5)), rel=1e-5
    )


def test_loss_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 2"):
        variance_loss(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="2-D"):
        covariance_loss(torch.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        invariance_loss(torch.zeros(4, 3), torch.zeros(4, 2))


def test_rankme_counts_effective_dimensions():
    assert float(rankme(torch.eye(5))) == pytest.approx(5.0, rel=1e-4)
    assert float(rankme(torch.ones(10, 4))) == pytest.approx(1.0, rel=1e-4)
    Z = torch.randn(50, 8)
    assert 1.0 < float(rankme(Z)) <= 8.0
    assert float(rankme(3 * Z)) == pytest.approx(float(rankme(Z)), rel=1e-4)


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


def test_views_keep_flux_ratios_between_bands():
    torch.manual_seed(0)
    X = torch.rand(6, 1, 16, 16)
    X = torch.cat([X, 3 * X], dim=1)
    view = random_view(X, noise_std=0.0)
    assert not torch.allclose(view, X)
    torch.testing.assert_close(view[:, 1], 3 * view[:, 0])


def test_identity_view_settings_and_blur_conserves_flux():
    X = torch.rand(3, 2, 12, 12)
    torch.testing.assert_close(
        random_crop_rotate(X, crop_scale=(1, 1), rotate=False), X, atol=1e-5, rtol=0
    )
    assert random_blur(X, sigma=(0.0, 0.0)) is X
    point = torch.zeros(1, 1, 15, 15)
    point[..., 7, 7] = 1.0
    assert float(random_blur(point, sigma=(1.0, 1.0), p=1.0).sum()) == pytest.approx(1.0)


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
