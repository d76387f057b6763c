"""Tests of skastro.plotting: right objects, right number of artists, PNGs written."""

import sys
import types

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from skastro import plotting

plt = pytest.importorskip("matplotlib.pyplot")
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # the test machines have 2 shared cores: OpenMP's spinning threads (t-SNE, KMeans) slow
    # down tenfold when oversubscribed, so these tiny problems run on one thread
    with threadpool_limits(1):
        yield


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _saved(fig_or_ax, path):
    fig = fig_or_ax if isinstance(fig_or_ax, Figure) else fig_or_ax.figure
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return path


@pytest.fixture(scope="module")
def galaxies():
    """Eight (2, 16, 16) images: elliptical blobs of two sizes plus a little noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16] - 7.5
    widths = np.repeat([1.5, 3.5], 4)[:, None, None]
    blobs = np.exp(-(yy**2 / 2 + xx**2) / (2 * widths**2))
    X = np.stack([blobs, blobs**2], axis=1) + 0.02 * rng.standard_normal((8, 2, 16, 16))
    return X


# --------------------------------------------------------------------------------------------
# plot_image
# --------------------------------------------------------------------------------------------


def test_plot_image_one_band_and_rgb(galaxies, tmp_path):
    ax = plotting.plot_image(galaxies[0, 0], title="g band")
    assert isinstance(ax, Axes) and len(ax.images) == 1
    assert ax.get_title() == "g band"
    shown = ax.images[0].get_array()
    assert shown.shape == (16, 16) and shown.min() >= 0 and shown.max() <= 1
    _saved(ax, tmp_path / "image.png")

    _, given = plt.subplots()
    rgb = np.concatenate([galaxies[0], galaxies[0, :1]])  # three bands
    assert plotting.plot_image(rgb, band=(0, 1, 2), ax=given) is given
    assert given.images[0].get_array().shape == (16, 16, 3)
    flat = plotting.plot_image(galaxies[0, 0].ravel())  # a square flat image
    assert flat.images[0].get_array().shape == (16, 16)
    with pytest.raises(ValueError, match="band"):
        plotting.plot_image(galaxies[0], band=(0, 1))


# --------------------------------------------------------------------------------------------
# plot_embedding
# --------------------------------------------------------------------------------------------


def test_plot_embedding_one_collection_per_label_noise_grey(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 2))
    labels = np.repeat([-1, 0, 1, 2], 15)
    ax = plotting.plot_embedding(Z, labels, method=None, title="clusters")
    assert isinstance(ax, Axes) and len(ax.collections) == 4
    texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert texts == ["noise", "0", "1", "2"]
    noise_color = ax.collections[0].get_facecolor()[0]
    assert np.allclose(noise_color[:3], 0.7)
    np.testing.assert_allclose(ax.collections[1].get_offsets(), Z[labels == 0])
    _saved(ax, tmp_path / "embedding.png")

    unlabelled = plotting.plot_embedding(Z, method=None, legend=False)
    assert len(unlabelled.collections) == 1 and unlabelled.get_legend() is None


def test_plot_embedding_reduces_higher_dimensions(tmp_path):
    rng = np.random.default_rng(1)
    Z = np.r_[rng.normal(-4, 1, (20, 6)), rng.normal(4, 1, (20, 6))]
    labels = np.repeat([0, 1], 20)
    ax = plotting.plot_embedding(Z, labels, method="pca")
    assert len(ax.collections) == 2 and ax.get_xlabel() == "PCA 1"
    ax = plotting.plot_embedding(Z, labels, method="tsne")
    assert ax.collections[0].get_offsets().shape == (20, 2) and ax.get_xlabel() == "t-SNE 1"
    _saved(ax, tmp_path / "tsne.png")
    with pytest.raises(ValueError, match="method"):
        plotting.plot_embedding(Z, method=None)
    with pytest.raises(ValueError, match="method"):
        plotting.plot_embedding(Z, method="lle")
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_embedding(Z[:, :2], labels[:5], method=None)


def test_plot_embedding_umap_is_seeded(monkeypatch):
    # umap compiles with numba for ~10 s on first use: check the wiring with a stand-in
    created = []

    class FakeUMAP:
        def __init__(self, **params):
            created.append(params)

        def fit_transform(self, Z):
            return Z[:, :2]

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    Z = np.random.default_rng(2).normal(size=(30, 4))
    ax = plotting.plot_embedding(Z, random_state=7)  # the default method is UMAP
    assert created == [{"n_components": 2, "n_neighbors": 15, "random_state": 7}]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), Z[:, :2])
    assert ax.get_xlabel() == "UMAP 1"


# --------------------------------------------------------------------------------------------
# plot_reconstructions and plot_cluster_examples
# --------------------------------------------------------------------------------------------


def test_plot_reconstructions_grid(galaxies, tmp_path):
    fig = plotting.plot_reconstructions(galaxies, 0.8 * galaxies, n=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 10
    assert all(len(ax.images) == 1 for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "original"
    # the reconstruction is shown with its original's limits: dimmer, not rescaled
    assert fig.axes[5].images[0].get_array().max() < fig.axes[0].images[0].get_array().max()
    _saved(fig, tmp_path / "reconstructions.png")


def test_plot_reconstructions_from_an_estimator(galaxies):
    class Autoencoder:
        def reconstruct(self, X):
            self.seen = X.shape
            return X[..., ::-1]

    estimator = Autoencoder()
    fig = plotting.plot_reconstructions(galaxies[:, 0], estimator=estimator, n=20, band=0)
    assert estimator.seen == (8, 16, 16)  # n is capped at the number of images
    assert len(fig.axes) == 16
    with pytest.raises(ValueError, match="estimator"):
        plotting.plot_reconstructions(galaxies)


def test_plot_reconstructions_on_a_given_figure(galaxies):
    fig = plt.figure()
    assert plotting.plot_reconstructions(galaxies, galaxies, n=2, fig=fig) is fig
    assert len(fig.axes) == 4


def test_plot_cluster_examples_one_row_per_cluster(galaxies, tmp_path):
    images = np.concatenate([galaxies] * 2)  # 16 images
    labels = np.array([0] * 7 + [1] * 6 + [-1] * 3)
    fig = plotting.plot_cluster_examples(images, labels, n_per_cluster=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 3 * 4
    assert sum(len(ax.images) for ax in fig.axes) == 4 + 4 + 3
    rows = [fig.axes[i * 4].get_ylabel() for i in range(3)]
    assert rows == ["cluster 0\n(7)", "cluster 1\n(6)", "noise"]
    assert not fig.axes[-1].axison  # the noise row has only 3 images
    _saved(fig, tmp_path / "clusters.png")
    again = plotting.plot_cluster_examples(images, labels, n_per_cluster=4)
    first = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    second = [ax.images[0].get_array() for ax in again.axes if ax.images]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


# --------------------------------------------------------------------------------------------
# plot_history and plot_roc
# --------------------------------------------------------------------------------------------


HISTORY = [
    {"epoch": 1, "train_loss": 1.0, "valid_loss": 1.1, "loss_mse": 0.6, "loss_ssim": 0.4},
    {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.7, "loss_mse": 0.3, "loss_ssim": 0.2},
    {"epoch": 3, "train_loss": 0.3, "valid_loss": 0.6, "loss_mse": 0.2, "loss_ssim": 0.1},
]


def test_plot_history_default_keys(tmp_path):
    ax = plotting.plot_history(HISTORY)
    assert isinstance(ax, Axes)
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["train_loss", "valid_loss", "loss_mse", "loss_ssim"]
    np.testing.assert_allclose(ax.lines[2].get_xydata(), [[1, 0.6], [2, 0.3], [3, 0.2]])
    _saved(ax, tmp_path / "history.png")


def test_plot_history_of_an_estimator_and_skorch_history():
    estimator = types.SimpleNamespace(history_=HISTORY)
    ax = plotting.plot_history(estimator, keys=["loss_ssim"], log=True)
    assert [line.get_label() for line in ax.lines] == ["loss_ssim"]
    assert ax.get_yscale() == "log"
    skorch_history = pytest.importorskip("skorch.history")
    history = skorch_history.History()
    for epoch, loss in enumerate([0.9, 0.4], start=1):
        history.new_epoch()
        history.record("epoch", epoch)
        history.record("train_loss", loss)
        history.record("loss_kl", loss / 2)
    ax = plotting.plot_history(history)
    assert [line.get_label() for line in ax.lines] == ["train_loss", "loss_kl"]
    with pytest.raises(ValueError, match="not in the history"):
        plotting.plot_history(HISTORY, keys=["loss_vicreg"])
    with pytest.raises(ValueError, match="non-empty"):
        plotting.plot_history([])


def test_plot_roc_several_curves_with_auc(tmp_path):
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 50)
    scores = {"good": y + rng.normal(0, 0.5, 100), "poor": y + rng.normal(0, 2.0, 100)}
    ax = plotting.plot_roc(y, scores)
    assert isinstance(ax, Axes) and len(ax.lines) == 3  # two curves + chance
    texts = [text.get_text() for text in ax.get_legend().get_texts()]
    for text, (name, values) in zip(texts, scores.items(), strict=True):
        assert text == f"{name} (AUC = {roc_auc_score(y, values):.3f})"
    _saved(ax, tmp_path / "roc.png")
    single = plotting.plot_roc(y, scores["good"])
    assert single.get_legend().get_texts()[0].get_text().startswith("AUC = ")


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_a_collapsed_embedding_is_refused_not_a_crash(method):
    # t-SNE started from PCA crashed the interpreter on a constant embedding
    from skastro.explorer._compute import project

    constant = np.ones((20, 4), np.float32)
    with pytest.raises(ValueError, match="every row of the embedding is the same"):
        plotting.plot_embedding(constant, method=method)
    with pytest.raises(ValueError, match="model may have collapsed"):
        project(constant, method)


def test_plot_image_names_a_missing_band_and_shows_a_masked_one_blank():
    with pytest.raises(ValueError, match=r"band=2 is out of range for images with 1 band\(s\)"):
        plotting.plot_image(np.ones((1, 8, 8)), band=2)
    ax = plotting.plot_image(np.full((1, 8, 8), np.nan))  # a fully masked cutout
    assert np.ma.getmaskarray(ax.images[0].get_array()).all()  # matplotlib masks NaN
    plt.close("all")
