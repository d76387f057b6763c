"""EquivariantAutoencoder, its escnn blocks, loss terms and affine augmentation."""

import pickle

import numpy as np
import pytest
import torch
from scipy.ndimage import rotate as scipy_rotate

from skastro import EquivariantAutoencoder
from skastro.metrics import equivariance_error
from skastro.nn import equivariant
from skastro.nn.equivariant import (
    EquivariantAutoencoderModule,
)

SIZE = 24


def _ellipses(n, size=SIZE, seed=0, noise=0.01):
    """Elongated Gaussian blobs of random orientation, size and brightness, well inside the
    frame (so rotations do not cut them)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    angle = rng.uniform(0, np.pi, n)[:, None, None]
    major = rng.uniform(2.0, 4.5, n)[:, None, None]
    minor = rng.uniform(1.2, 2.0, n)[:, None, None]
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    brightness = np.exp(rng.uniform(np.log(0.2), np.log(2.0), n))[:, None, None]
    images = brightness * np.exp(-0.5 * ((u / major) ** 2 + (v / minor) ** 2))
    images += noise * rng.standard_normal(images.shape)
    return images[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def images():
    return _ellipses(48)


@pytest.fixture(scope="module")
def fitted(images):
    ae = EquivariantAutoencoder(
        n_components=4,
        group="D8",
        widths=(32, 64),
        max_epochs=2,
        batch_size=16,
        random_state=0,
    )
    return ae.fit(images)


# ---------------------------------------------------------------------------- estimator
def test_fit_transform_shapes_and_logged_terms(fitted, images):
    assert fitted.transform(images).shape == (len(images), 4)
    assert fitted.transform(images).dtype == np.float32
    assert fitted.reconstruct(images).shape == images.shape
    row = fitted.history_[-1]
    for term in ("loss_mse", "loss_variance", "loss_covariance"):
        assert term in row
    assert "loss_ssim" not in row


def test_latent_is_invariant_to_exact_rotations_and_flips(fitted, images):
    errors = equivariance_error(fitted, images, ("rot90", "rot180", "rot270", "fliplr", "flipud"))
    assert max(errors.values()) <= 1e-4, errors


def _feature_error_at_45_degrees(group, seed):
    """Relative error of the group-pooled first-level features of the encoder when the input
    is rotated by 45 degrees, compared with rotating the features (away from the borders)."""
    size = 65  # first-level features at 33 px (the level downsamples first)
    torch.manual_seed(seed)
    module = EquivariantAutoencoderModule(
        (1, size, size), group=group, widths=(32,), n_components=2, kernel_size=5
    ).eval()
    # the first level: downsampling, convolution, nonlinearity
    first_level = [module.encoder[i] for i in range(3)]
    assert isinstance(first_level[1], equivariant.escnn_nn.R2Conv)
    pool = equivariant.escnn_nn.GroupPooling(first_level[-1].out_type)
    images = _ellipses(4, size=size, seed=1, noise=0.0)
    rotated = scipy_rotate(images, 45, axes=(2, 3), reshape=False, order=3)

    def features(X):
        x = equivariant.escnn_nn.GeometricTensor(
            torch.from_numpy(X.astype(np.float32)), first_level[0].in_type
        )
        with torch.no_grad():
            for layer in first_level:
                x = layer(x)
            return pool(x).tensor.numpy()

    expected = scipy_rotate(features(images), 45, axes=(2, 3), reshape=False, order=3)
    actual = features(rotated)
    inner = slice(8, -8)
    diff = np.abs(expected - actual)[..., inner, inner].mean()
    return diff / np.abs(actual)[..., inner, inner].mean()


def test_d8_features_follow_45_degree_rotations_unlike_an_ordinary_cnn():
    # D8 contains the rotation by 45 degrees: its feature maps rotate with the image up to
    # the pixel grid's discretisation. The same-shape ordinary CNN has no such structure.
    # One random initialisation gives 0.04 to 0.12 for D8 (the same seed once gave 0.057
    # here and 0.075 in CI, whose escnn had built other, equivalent kernel bases: see
    # skastro._escnn), so the test averages four initialisations.
    seeds = range(4)
    d8 = np.mean([_feature_error_at_45_degrees("D8", seed) for seed in seeds])
    trivial = np.mean([_feature_error_at_45_degrees("trivial", seed) for seed in seeds])
    assert d8 < 0.1, d8
    assert d8 * 5 <= trivial, (d8, trivial)


def test_training_does_not_stall_at_unlucky_seeds():
    # With ReLU, the few regular fields of the first level could all die at some seeds and
    # the reconstruction stayed near the mean image: with these exact settings, ReLU ended at
    # a training MSE of 0.85 at seed 2 (and 0.21 at seed 5); ELU reaches 0.06.
    from skastro.datasets import make_disks

    X = make_disks(160, image_size=32, random_state=0).images
    ae = EquivariantAutoencoder(
        n_components=8, widths=(32, 64), max_epochs=5, batch_size=16, random_state=2
    ).fit(X)
    assert ae.history_[-1]["loss_mse"] < 0.15, ae.history_[-1]["loss_mse"]


def test_same_seed_same_latents(images):
    params = dict(n_components=2, group="C4", widths=(8,), max_epochs=1, batch_size=16)
    Z1 = EquivariantAutoencoder(random_state=3, **params).fit(images).transform(images)
    Z2 = EquivariantAutoencoder(random_state=3, **params).fit(images).transform(images)
    np.testing.assert_array_equal(Z1, Z2)


def test_pickle_round_trip_and_continued_training(fitted, images):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(images), fitted.transform(images))
    np.testing.assert_array_equal(restored.reconstruct(images), fitted.reconstruct(images))
    # the unpickled escnn modules train again (their optimizer state came along)
    restored.partial_fit(images, epochs=1)
    assert len(restored.history_) == len(fitted.history_) + 1
    assert not np.allclose(restored.transform(images), fitted.transform(images))


def test_state_dict_holds_parameters_only_and_round_trips(fitted, images):
    state = fitted.module_.state_dict()
    assert set(state) == {name for name, _ in fitted.module_.named_parameters()}
    clone = EquivariantAutoencoderModule(
        (1, SIZE, SIZE), group="D8", widths=(32, 64), n_components=4
    ).eval()
    clone.load_state_dict(state)
    X = torch.rand(3, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(clone.encode(X), fitted.module_.encode(X))


def test_all_loss_terms_are_logged(images):
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    before = [p.detach().clone() for p in features.parameters()]
    ae = EquivariantAutoencoder(
        n_components=2,
        group="C4",
        widths=(8,),
        ssim_weight=0.5,
        ms_ssim_weight=0.5,
        perceptual_weight=0.5,
        perceptual_module=features,
        max_epochs=1,
        batch_size=16,
        random_state=0,
    ).fit(images)
    row = ae.history_[-1]
    terms = ["loss_mse", "loss_ssim", "loss_ms_ssim", "loss_perceptual"]
    terms += ["loss_variance", "loss_covariance"]
    for term in terms:
        assert np.isfinite(row[term]), term
    # the perceptual network is frozen and the user's copy untouched
    for p, q in zip(before, features.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"perceptual_weight": 1.0}, "needs a perceptual_module"),
        ({"ms_ssim_weight": 1.0}, "at least 16 px"),
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"widths": ()}, "widths must be"),
        ({"scale_range": (1.2, 0.8)}, "scale_range"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, message):
    X = np.random.default_rng(0).random((8, 1, 12, 12), dtype=np.float32)
    ae = EquivariantAutoencoder(**{"group": "C4", "widths": (4,), "max_epochs": 1, **params})
    with pytest.raises(ValueError, match=message):
        ae.fit(X)


def test_unknown_group_is_rejected_by_parameter_validation():
    X = np.zeros((4, 1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="group"):
        EquivariantAutoencoder(group="D5").fit(X)
