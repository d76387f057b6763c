"""EquivariantAutoencoder, its escnn blocks, loss terms and affine augmentation."""

import pickle

import numpy as np
import pytest
import torch
from scipy.ndimage import rotate as scipy_rotate

from skastro import EquivariantAutoencoder
from skastro.augment import affine_augmentation, random_affine
from skastro.losses import PerceptualLoss, covariance_loss, variance_loss
from skastro.metrics import equivariance_error
from skastro.nn import equivariant
from skastro.nn.equivariant import (
    BlurPool,
    EquivariantAutoencoderModule,
    build_blocks,
    make_gspace,
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


# ---------------------------------------------------------------------------- escnn blocks
@pytest.mark.parametrize(
    ("group", "size", "widths"),
    [
        ("C4", 16, (16,)),
        ("C8", 16, (16,)),
        ("D4", 16, (16,)),
        ("D8", 16, (16, 32)),
        ("D8", 15, (16, 32)),  # odd sizes keep the centre too
        ("D16", 16, (32,)),
    ],
)
def test_every_group_gives_a_latent_invariant_to_exact_symmetries(group, size, widths):
    # Untrained weights: invariance comes from the architecture alone.
    torch.manual_seed(0)
    module = EquivariantAutoencoderModule(
        (1, size, size), group=group, widths=widths, n_components=3, kernel_size=3
    ).eval()
    X = torch.rand(6, 1, size, size)
    moves = {"rot90": lambda x: torch.rot90(x, 1, (2, 3)), "rot180": lambda x: x.flip(2, 3)}
    if group.startswith("D"):
        moves["flip"] = lambda x: x.flip(-1)
    with torch.no_grad():
        Z = module.encode(X)
        spread = (Z - Z.mean(0)).norm(dim=1).mean()
        for name, move in moves.items():
            relative = float((module.encode(move(X)) - Z).norm(dim=1).mean() / spread)
            assert relative <= 1e-4, (group, size, name, relative)
            # the reconstruction is equivariant: it turns with the image
            expected = move(module(X)[0])
            assert torch.allclose(module(move(X))[0], expected, atol=1e-4), name


def test_rotation_only_groups_are_not_flip_invariant():
    torch.manual_seed(0)
    module = EquivariantAutoencoderModule((1, 16, 16), group="C4", widths=(8,), n_components=3)
    X = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(module.encode(X), module.encode(X.flip(-1)), atol=1e-3)


def test_trivial_group_is_an_ordinary_cnn():
    torch.manual_seed(0)
    module = EquivariantAutoencoderModule((2, 16, 16), group="trivial", widths=(8, 16))
    # one regular field of the trivial group is one channel: widths are channel counts
    convs = [m for m in module.encoder.modules() if isinstance(m, equivariant.escnn_nn.R2Conv)]
    assert [c.out_type.size for c in convs] == [8, 16, 16]
    assert [c.kernel_size for c in convs] == [5, 3, 3]  # kernel_size at full resolution
    X = torch.rand(6, 2, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(module.encode(X), module.encode(torch.rot90(X, 1, (2, 3))))


def test_widths_are_channels_rounded_up_to_whole_regular_fields():
    blocks = build_blocks((1, 8, 8), "D8", widths=(20,), n_components=2, kernel_size=3)
    convolutions = [
        m for m in blocks["encoder"].modules() if isinstance(m, equivariant.escnn_nn.R2Conv)
    ]
    first = convolutions[0]
    assert first.out_type.size == 32  # ceil(20 / 16) = 2 fields of 16 channels
    assert blocks["group_pool"].out_type.size == 2


def test_export_matches_the_equivariant_modules(fitted, images):
    module = fitted.module_
    X = torch.from_numpy(fitted._to_net(torch.from_numpy(images)).numpy())
    exported = fitted.export()
    assert not any(
        isinstance(m, equivariant.escnn_nn.EquivariantModule) for m in exported.modules()
    )
    with torch.no_grad():
        reconstruction, latent = module.equivariant_forward(X)
        reconstruction_export, latent_export = exported(X)
        assert torch.allclose(latent_export, latent, atol=1e-5)
        assert torch.allclose(reconstruction_export, reconstruction, atol=1e-5)
        # the training-mode path (filters expanded on the fly) agrees too
        module.train()
        reconstruction_train, latent_train = module(X)
        module.eval()
    assert torch.allclose(latent_train, latent, atol=1e-5)
    assert torch.allclose(reconstruction_train, reconstruction, atol=1e-5)
    # and the estimator's inference uses the exported twin
    assert np.allclose(fitted.transform(images), latent_export.numpy(), atol=1e-5)


def test_blurpool_keeps_the_centre():
    gspace = make_gspace("C4")
    field = equivariant.escnn_nn.FieldType(gspace, [gspace.trivial_repr])
    for size in (8, 9, 1):
        pool = BlurPool(field, (size, size))
        x = torch.rand(2, 1, size, size)
        out = pool(equivariant.escnn_nn.GeometricTensor(x, field)).tensor
        out_rotated = pool(equivariant.escnn_nn.GeometricTensor(torch.rot90(x, 1, (2, 3)), field))
        assert out.shape[-1] == (size + 1) // 2
        assert torch.allclose(out_rotated.tensor, torch.rot90(out, 1, (2, 3)), atol=1e-6)
        # a constant image stays constant away from the zero-padded border
        ones = pool(equivariant.escnn_nn.GeometricTensor(torch.ones(1, 1, size, size), field))
        if size >= 8:
            assert torch.allclose(ones.tensor[..., 1:-1, 1:-1], torch.ones(1), atol=1e-6)


def test_bad_group_name():
    with pytest.raises(ValueError, match="group must be"):
        make_gspace("E8")


def test_escnn_bases_are_built_once_per_fit(images, monkeypatch):
    calls = []
    original = equivariant.build_blocks

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(equivariant, "build_blocks", counting)
    ae = EquivariantAutoencoder(
        n_components=2, group="C4", widths=(8,), max_epochs=2, batch_size=24, random_state=0
    ).fit(images)
    assert len(calls) == 1
    ae.transform(images)
    ae.reconstruct(images)
    ae.score(images)
    assert len(calls) == 1


def test_escnn_null_space_bases_do_not_depend_on_the_global_random_state():
    # escnn builds (and caches on disk, once per installation) its Clebsch-Gordan
    # coefficients from null-space bases of a randomized SVD; skastro's shim fixes that SVD's
    # seed, so every installation builds the same kernel bases and a random_state trains the
    # same filters everywhere
    from skastro._escnn import _numerical

    A = np.zeros((6, 6))
    A[:2, :2] = np.eye(2)  # a 4-dimensional null space: any rotation of a basis would do
    bases, state = [], np.random.get_state()  # noqa: NPY002 - escnn draws from it
    try:
        for seed in (1, 2):
            np.random.seed(seed)  # noqa: NPY002 - the legacy global state escnn uses
            bases.append(_numerical.null(A, use_sparse=False))
    finally:
        np.random.set_state(state)  # noqa: NPY002
    assert bases[0].shape == (6, 4)
    np.testing.assert_allclose(A @ bases[0], 0, atol=1e-12)
    np.testing.assert_array_equal(bases[0], bases[1])


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


# ---------------------------------------------------------------------------- losses
def _reference_vicreg(Z, gamma=1.0, eps=1e-4):
    Z = np.asarray(Z, dtype=np.float64)
    std = np.sqrt(Z.var(axis=0, ddof=1) + eps)
    cov = np.cov(Z, rowvar=False)
    off = cov - np.diag(np.diag(cov))
    return np.maximum(0, gamma - std).mean(), (off**2).sum() / Z.shape[1]


def test_vicreg_terms_match_a_reference_implementation():
    Z = torch.randn(32, 5) * torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0])
    Z[:, 1] += Z[:, 0] * 3
    variance, covariance = _reference_vicreg(Z.numpy())
    assert float(variance_loss(Z)) == pytest.approx(variance, rel=1e-5)
    assert float(covariance_loss(Z)) == pytest.approx(covariance, rel=1e-5)


def test_vicreg_terms_invariants_and_errors():
    Z = torch.randn(16, 4)
    permuted = Z[:, torch.randperm(4)]
    assert float(covariance_loss(permuted)) == pytest.approx(float(covariance_loss(Z)), rel=1e-5)
    assert float(variance_loss(Z * 100)) == 0.0  # spread enough: no penalty
    with pytest.raises(ValueError, match="at least 2"):  # one sample: no spread to measure
        variance_loss(Z[:1])
    with pytest.raises(ValueError, match="batch, dim"):
        covariance_loss(torch.zeros(4))


def test_perceptual_loss_gradient_reaches_the_prediction_only():
    features = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh())
    loss = PerceptualLoss(features)
    prediction = torch.rand(2, 1, 8, 8, requires_grad=True)
    value = loss(prediction, torch.rand(2, 1, 8, 8))
    value.backward()
    assert prediction.grad is not None
    assert all(p.grad is None for p in loss.features.parameters())
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        PerceptualLoss("resnet18")
    with pytest.raises(ValueError, match="input channels"):
        PerceptualLoss(torch.nn.Conv2d(3, 2, 3))(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))


# ---------------------------------------------------------------------------- augmentation
def test_affine_augmentation_is_seeded_and_shape_preserving():
    X = torch.rand(8, 2, 16, 16)
    augment = affine_augmentation((16, 16), perspective=0.3)
    torch.manual_seed(1)
    a = augment(X)
    torch.manual_seed(1)
    b = augment(X)
    assert a.shape == X.shape
    assert torch.equal(a, b)
    assert not torch.allclose(a, X)


def test_affine_augmentation_with_everything_off_is_the_identity():
    X = torch.rand(4, 1, 8, 8)
    out = random_affine(
        X, max_rotation=0, scale_range=None, max_shear=0, blur_sigma=None, flip=False
    )
    assert torch.equal(out, X)


def test_affine_augmentation_keeps_total_flux_of_a_centred_disk():
    # rotations and flips move pixels but a centred round disk looks the same
    size = 32
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    disk = torch.from_numpy(np.exp(-0.5 * (x**2 + y**2) / 16.0)).float()[None, None]
    out = random_affine(disk.repeat(4, 1, 1, 1), scale_range=None, max_shear=0, blur_sigma=None)
    assert torch.allclose(out, disk.expand_as(out), atol=2e-2)


def test_blur_window_fits_tiny_images():
    out = random_affine(torch.rand(3, 1, 1, 9), blur_sigma=(0.5, 3.0))
    assert out.shape == (3, 1, 1, 9)
    with pytest.raises(ValueError, match="batch of images"):
        random_affine(torch.rand(1, 8, 8))
