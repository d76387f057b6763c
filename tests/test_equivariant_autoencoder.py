"""EquivariantAutoencoder, its escnn blocks, loss terms and affine augmentation."""

import pickle

import numpy as np
import pytest
import torch

from skastro import ConvAutoencoder, EquivariantAutoencoder
from skastro.augment_affine import affine_augmentation, random_affine
from skastro.losses_equivariant import PerceptualLoss, covariance_loss, variance_loss
from skastro.metrics import equivariance_error
from skastro.nn import equivariant
from skastro.nn.equivariant import (
    BlurPool,
    EquivariantAutoencoderModule,
    build_blocks,
    make_gspace,
)

SIZE = 24


def _bars(n, size=SIZE, seed=0):
    """Elongated Gaussian bars at random angles and lengths: orientation is most of their
    pixel variance, which a plain autoencoder's latent follows and an invariant one ignores."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    angle = rng.uniform(0, np.pi, n)[:, None, None]
    length = rng.uniform(3.0, 7.0, n)[:, None, None]
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    images = np.exp(-0.5 * ((u / length) ** 2 + (v / 1.5) ** 2))
    images += 0.02 * rng.standard_normal(images.shape)
    return images[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def bars():
    return _bars(48)


@pytest.fixture(scope="module")
def fitted(bars):
    ae = EquivariantAutoencoder(
        n_components=4,
        group="D8",
        widths=(16, 32),
        max_epochs=3,
        batch_size=16,
        random_state=0,
    )
    return ae.fit(bars)


# ---------------------------------------------------------------------------- escnn blocks
@pytest.mark.parametrize("group", ["C4", "C8", "D4", "D8", "D16"])
@pytest.mark.parametrize("size", [16, 15])
def test_every_group_gives_a_latent_invariant_to_exact_symmetries(group, size):
    # Untrained weights: invariance comes from the architecture alone, for even and odd sizes.
    torch.manual_seed(0)
    module = EquivariantAutoencoderModule(
        (1, size, size), group=group, widths=(16, 32), n_components=3, kernel_size=3
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
    X = torch.rand(6, 2, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(module.encode(X), module.encode(torch.rot90(X, 1, (2, 3))))


def test_widths_are_channels_rounded_up_to_whole_regular_fields():
    blocks = build_blocks((1, 8, 8), "D8", widths=(20,), n_components=2, kernel_size=3)
    first = blocks["encoder"][0]
    assert first.out_type.size == 32  # ceil(20 / 16) = 2 fields of 16 channels
    assert blocks["group_pool"].out_type.size == 2


def test_export_matches_the_equivariant_modules(fitted, bars):
    module = fitted.module_
    X = torch.from_numpy(fitted._to_net(torch.from_numpy(bars)).numpy())
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
    assert np.allclose(fitted.transform(bars), latent_export.numpy(), atol=1e-5)


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


def test_escnn_bases_are_built_once_per_fit(bars, monkeypatch):
    calls = []
    original = equivariant.build_blocks

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(equivariant, "build_blocks", counting)
    ae = EquivariantAutoencoder(
        n_components=2, group="C4", widths=(8,), max_epochs=2, batch_size=8, random_state=0
    ).fit(bars)
    assert len(calls) == 1
    ae.transform(bars)
    ae.reconstruct(bars)
    ae.score(bars)
    assert len(calls) == 1


# ---------------------------------------------------------------------------- estimator
def test_fit_transform_shapes_and_logged_terms(fitted, bars):
    assert fitted.transform(bars).shape == (len(bars), 4)
    assert fitted.transform(bars).dtype == np.float32
    assert fitted.reconstruct(bars).shape == bars.shape
    row = fitted.history_[-1]
    for term in ("loss_mse", "loss_variance", "loss_covariance"):
        assert term in row
    assert "loss_ssim" not in row


def test_latent_is_invariant_to_exact_rotations_and_flips(fitted, bars):
    errors = equivariance_error(fitted, bars, ("rot90", "rot180", "rot270", "fliplr", "flipud"))
    assert max(errors.values()) <= 1e-4, errors


@pytest.mark.xfail(
    reason="goal not reached yet: measured 0.65 vs ConvAutoencoder 1.18 (1.8x lower, goal 5x)",
    strict=False,
)
def test_latent_is_much_less_sensitive_to_45_degrees_than_a_conv_autoencoder(fitted, bars):
    conv = ConvAutoencoder(
        n_components=4, widths=(16, 32), max_epochs=3, batch_size=16, random_state=0
    ).fit(bars)
    equivariant_error = equivariance_error(fitted, bars, ["rot45"])["rot45"]
    conv_error = equivariance_error(conv, bars, ["rot45"])["rot45"]
    assert equivariant_error * 5 <= conv_error, (equivariant_error, conv_error)


def test_same_seed_same_latents(bars):
    params = dict(n_components=2, group="C4", widths=(8,), max_epochs=1, batch_size=16)
    Z1 = EquivariantAutoencoder(random_state=3, **params).fit(bars).transform(bars)
    Z2 = EquivariantAutoencoder(random_state=3, **params).fit(bars).transform(bars)
    np.testing.assert_array_equal(Z1, Z2)


def test_pickle_round_trip_and_continued_training(fitted, bars):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(bars), fitted.transform(bars))
    np.testing.assert_array_equal(restored.reconstruct(bars), fitted.reconstruct(bars))
    # the unpickled escnn modules train again (their optimizer state came along)
    restored.partial_fit(bars, epochs=1)
    assert len(restored.history_) == len(fitted.history_) + 1
    assert not np.allclose(restored.transform(bars), fitted.transform(bars))


@pytest.mark.xfail(
    reason="work in progress: GroupPooling index buffers appear in the state dict", strict=False
)
def test_state_dict_holds_parameters_only_and_round_trips(fitted, bars):
    state = fitted.module_.state_dict()
    assert set(state) == {name for name, _ in fitted.module_.named_parameters()}
    clone = EquivariantAutoencoderModule(
        (1, SIZE, SIZE), group="D8", widths=(16, 32), n_components=4
    ).eval()
    clone.load_state_dict(state)
    X = torch.rand(3, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(clone.encode(X), fitted.module_.encode(X))


def test_all_loss_terms_are_logged(bars):
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
    ).fit(bars)
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
    assert float(variance_loss(Z[:1])) == 0.0  # one sample: undefined, no penalty
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
