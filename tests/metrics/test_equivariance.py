"""equivariance_error: invariant and non-invariant embeddings, transforms, layouts."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.preprocessing import FunctionTransformer

from skastro.metrics import (
    equivariance_error,
)


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
