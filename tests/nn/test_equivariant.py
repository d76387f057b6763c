"""The escnn blocks: invariance for every group, export, BlurPool, cached bases."""

import numpy as np
import pytest
import torch

from skastro import EquivariantAutoencoder
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
