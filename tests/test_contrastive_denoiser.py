"""ContrastiveDenoiser, its masks and its loss terms, on hand-made images with known answers."""

import math

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skastro import ContrastiveDenoiser
from skastro.augment import add_noise
from skastro.datasets import make_galaxies
from skastro.losses import (
    background_tv_loss,
    darkening_loss,
    foreground_ssim_loss,
    nt_xent_loss,
    ssim_map,
)
from skastro.masks import foreground_mask, otsu_threshold, sigma_clip_threshold
from skastro.metrics import ssim

GAIN, SIGMA = 50.0, 0.03


def _square_on_sky(sky=0.2, value=3.0, size=12):
    """One image: a flat sky with a bright 4x4 square in the middle, and its true mask."""
    image = np.full((1, 1, size, size), sky)
    truth = np.zeros((1, 1, size, size), dtype=bool)
    truth[..., 4:8, 4:8] = True
    image[truth] = value
    return image, truth


# ---------------------------------------------------------------------------------- masks
def test_otsu_two_levels_gives_midpoint():
    X = np.zeros((2, 6, 6))
    X[0, :3] = 10.0
    X[1, :, :2] = -4.0
    assert np.allclose(otsu_threshold(X), [5.0, -2.0])


def test_otsu_matches_scikit_image():
    from skimage.filters import threshold_otsu

    X = np.random.default_rng(0).gamma(2.0, 1.0, (4, 32, 32))
    ours = otsu_threshold(X)
    # scikit-image works on a 256-bin histogram, so agree to within about one bin
    bins = (X.max(axis=(1, 2)) - X.min(axis=(1, 2))) / 256
    reference = np.array([threshold_otsu(x) for x in X])
    assert np.all(np.abs(ours - reference) <= 2 * bins)


def test_sigma_clip_matches_astropy():
    astropy_stats = pytest.importorskip("astropy.stats")
    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 1.0, (5, 48, 48))
    X[:, 20:28, 20:28] += rng.gamma(1.0, 5.0, (5, 8, 8))
    reference = []
    for x in X:
        _, median, std = astropy_stats.sigma_clipped_stats(x, sigma=3.0, maxiters=5)
        reference.append(median + 3.0 * std)
    assert np.allclose(sigma_clip_threshold(X), reference, atol=1e-9)


@pytest.mark.parametrize("method", ["otsu", "sigma_clip"])
def test_mask_of_square_on_flat_sky_is_the_square(method):
    image, truth = _square_on_sky()
    np.testing.assert_array_equal(foreground_mask(image, method), truth)


@pytest.mark.parametrize("method", ["otsu", "sigma_clip"])
def test_mask_is_unchanged_by_linear_rescaling_and_works_on_tensors(method):
    X = np.random.default_rng(1).gamma(2.0, 1.0, (3, 2, 16, 16)).astype(np.float32)
    mask = foreground_mask(X, method)
    assert mask.shape == (3, 1, 16, 16) and mask.dtype == bool
    np.testing.assert_array_equal(foreground_mask(100.0 * X + 7.0, method), mask)
    tensor_mask = foreground_mask(torch.from_numpy(X), method)
    assert isinstance(tensor_mask, torch.Tensor)
    np.testing.assert_array_equal(tensor_mask.numpy(), mask)
    assert foreground_mask(X[:, 0], method).shape == (3, 16, 16)


def test_smoothing_removes_isolated_noise_spikes():
    image, _ = _square_on_sky(sky=0.0, value=1.0, size=24)
    image[..., 1, 20] = 1.0  # a single hot pixel far from the source
    assert foreground_mask(image, "otsu")[..., 1, 20].all()
    assert not foreground_mask(image, "otsu", smooth=1.0)[..., 1, 20].any()


def test_mask_errors():
    X = np.zeros((1, 4, 4))
    with pytest.raises(ValueError, match="mask method must be one of"):
        foreground_mask(X, "kmeans")
    with pytest.raises(ValueError, match="smooth must be >= 0"):
        foreground_mask(X, smooth=-1.0)
    with pytest.raises(ValueError, match=r"\(n, H, W\) or \(n, C, H, W\)"):
        foreground_mask(np.zeros((4, 4)))


# ---------------------------------------------------------------------------------- losses
def test_background_tv_is_zero_on_flat_background_with_a_source():
    image, truth = _square_on_sky()
    X = torch.from_numpy(image)
    assert float(background_tv_loss(X, torch.from_numpy(~truth))) == 0.0


def test_background_tv_of_a_ramp():
    # a horizontal ramp: every horizontal pair differs by 1, every vertical pair by 0
    h, w = 5, 7
    X = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w)
    everywhere = torch.ones(1, 1, h, w, dtype=torch.bool)
    expected = h * (w - 1) / (h * (w - 1) + w * (h - 1))
    assert float(background_tv_loss(X, everywhere)) == pytest.approx(expected)


def test_darkening_known_values():
    X = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])
    background = torch.tensor([[[[True, True], [False, False]]]])
    assert float(darkening_loss(X, background)) == pytest.approx(2.0)  # mean(|1|, |3|)
    assert float(darkening_loss(X, background, level=1.0)) == pytest.approx(1.0)
    level = torch.tensor([2.0]).view(1, 1, 1, 1)  # per-image sky levels broadcast
    assert float(darkening_loss(X, background, level)) == pytest.approx(1.0)


def test_ssim_map_matches_torchmetrics():
    from torchmetrics.functional.image import structural_similarity_index_measure

    rng = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 20, 24, generator=rng)
    y = x + 0.3 * torch.randn(x.shape, generator=rng)
    _, reference = structural_similarity_index_measure(
        y, x, gaussian_kernel=True, sigma=1.5 * 7 / 11, kernel_size=7, data_range=1.0,
        reduction="none", return_full_image=True,
    )  # fmt: skip
    assert torch.allclose(ssim_map(y, x, kernel_size=7, data_range=1.0), reference, atol=1e-5)


def test_foreground_ssim_ignores_the_far_background():
    image, truth = _square_on_sky(size=24)
    target = torch.from_numpy(image)
    mask = torch.from_numpy(truth)
    assert float(foreground_ssim_loss(target, target, mask)) == pytest.approx(0.0, abs=1e-6)
    changed = target.clone()
    changed[..., 18:, 18:] += 5.0  # farther from the source than the 7 px window reaches
    assert float(foreground_ssim_loss(changed, target, mask, data_range=3.0)) == pytest.approx(
        0.0, abs=1e-6
    )
    blurred = target.clone()
    blurred[..., 4:8, 4:8] = 1.0
    assert float(foreground_ssim_loss(blurred, target, mask)) > 0.05
    empty = torch.zeros_like(mask)
    assert float(foreground_ssim_loss(blurred, target, empty)) == 0.0


def test_loss_mask_errors():
    X = torch.zeros(2, 1, 8, 8)
    with pytest.raises(TypeError, match="boolean"):
        background_tv_loss(X, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="does not match"):
        darkening_loss(X, torch.zeros(2, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="same"):
        foreground_ssim_loss(X, X[:1], torch.zeros(2, 1, 8, 8, dtype=torch.bool))


def _nt_xent_brute_force(z1, z2, t):
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        positive = (i + b) % n
        denominator = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total -= math.log(math.exp(float(z[i] @ z[positive]) / t) / denominator)
    return total / n


def test_nt_xent_matches_brute_force_reference():
    rng = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=rng), torch.randn(6, 5, generator=rng)
    for t in (0.1, 0.5, 2.0):
        assert float(nt_xent_loss(z1, z2, t)) == pytest.approx(_nt_xent_brute_force(z1, z2, t))
    # symmetric in the two views
    assert float(nt_xent_loss(z1, z2)) == pytest.approx(float(nt_xent_loss(z2, z1)))


def test_identical_views_give_the_minimum_for_their_batch():
    b, t = 4, 0.5
    z = torch.eye(b)  # identical views, negatives orthogonal
    minimum = math.log(1 + (2 * b - 2) * math.exp(-1 / t))
    assert float(nt_xent_loss(z, z, t)) == pytest.approx(minimum)
    assert _nt_xent_brute_force(z, z, t) == pytest.approx(minimum)
    rng = torch.Generator().manual_seed(1)
    for _ in range(20):  # moving the second views away from the first only costs
        perturbed = z + 0.3 * torch.randn(z.shape, generator=rng)
        assert float(nt_xent_loss(z, perturbed, t)) > minimum


def test_nt_xent_errors_and_single_pair():
    with pytest.raises(ValueError, match=r"shape \(b, d\)"):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(3, 2), temperature=0.0)
    z = torch.ones(1, 3, requires_grad=True)
    loss = nt_xent_loss(z, z)
    loss.backward()  # no negatives: a constant, but still part of the graph
    assert float(loss.detach()) == 0.0


def test_add_noise_statistics():
    X = torch.full((4, 1, 64, 64), 2.0)
    noisy = add_noise(X, noise_gain=10.0, noise_sigma=0.1, generator=0)
    # Poisson: variance flux / gain; plus the Gaussian variance
    assert float(noisy.mean()) == pytest.approx(2.0, abs=0.01)
    assert float(noisy.var()) == pytest.approx(2.0 / 10.0 + 0.01, rel=0.05)
    array = add_noise(np.zeros((2, 1, 8, 8)), None, 0.0, generator=0)
    assert isinstance(array, np.ndarray) and not array.any()
    np.testing.assert_array_equal(
        add_noise(np.ones((2, 1, 8, 8)), GAIN, SIGMA, generator=3),
        add_noise(np.ones((2, 1, 8, 8)), GAIN, SIGMA, generator=3),
    )


# ---------------------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def galaxies():
    train = make_galaxies(64, image_size=32, random_state=0).images
    test = make_galaxies(24, image_size=32, random_state=1)
    noisy = add_noise(test.images, GAIN, SIGMA, generator=0)
    return train, test, noisy


def _model(**params):
    settings = dict(
        n_components=4, widths=(8, 16), noise_gain=GAIN, noise_sigma=SIGMA, max_epochs=10,
        batch_size=16, lr=3e-3, random_state=0,
    )  # fmt: skip
    settings.update(params)
    return ContrastiveDenoiser(**settings)


@pytest.fixture(scope="module")
def fitted_clean(galaxies):
    train, _, _ = galaxies
    return _model().fit(train)


def test_denoise_improves_foreground_ssim(galaxies, fitted_clean):
    _, test, noisy = galaxies
    before = ssim(test.images, noisy, mask=test.masks)
    after = ssim(test.images, fitted_clean.denoise(noisy), mask=test.masks)
    assert after > before + 0.03, (before, after)


def test_noisy_target_mode_trains_on_noisy_images_only(galaxies):
    train, test, noisy = galaxies
    noisy_train = add_noise(train, GAIN, SIGMA, generator=1)
    model = _model(target="noisy").fit(noisy_train)
    before = ssim(test.images, noisy, mask=test.masks)
    after = ssim(test.images, model.denoise(noisy), mask=test.masks)
    assert after > before + 0.03, (before, after)


def test_outputs_layout_units_and_logged_terms(galaxies, fitted_clean):
    _, test, noisy = galaxies
    Z = fitted_clean.transform(noisy)
    assert Z.shape == (24, 4) and Z.dtype == np.float32
    assert fitted_clean.denoise(noisy[:, 0]).shape == (24, 32, 32)
    np.testing.assert_array_equal(fitted_clean.reconstruct(noisy), fitted_clean.denoise(noisy))
    # outputs are in the user's flux units, not standardised ones
    assert abs(float(fitted_clean.denoise(noisy).mean() - test.images.mean())) < 0.01
    row = fitted_clean.history_[-1]
    for term in ("loss_ssim", "loss_tv", "loss_darkening", "loss_nt_xent", "loss_mse"):
        assert np.isfinite(row[term])
    score = fitted_clean.score(test.images)
    assert score == fitted_clean.score(test.images) and score < 0


def test_same_random_state_same_output(galaxies):
    train, _, noisy = galaxies
    a = _model(max_epochs=1).fit(train[:32])
    b = _model(max_epochs=1).fit(train[:32])
    np.testing.assert_array_equal(a.transform(noisy), b.transform(noisy))


def test_zero_weights_drop_their_terms(galaxies):
    train, _, _ = galaxies
    model = _model(max_epochs=1, ssim_weight=0, tv_weight=0, darkening_weight=0).fit(train[:16])
    row = model.history_[-1]
    assert "loss_mse" in row and "loss_nt_xent" in row
    assert not any(k in row for k in ("loss_ssim", "loss_tv", "loss_darkening"))


def test_parameter_errors(galaxies):
    train, _, _ = galaxies
    with pytest.raises(ValueError, match=r"target=.noisy. .* needs a noise model"):
        _model(target="noisy", noise_gain=None, noise_sigma=0.0).fit(train[:8])
    with pytest.raises(InvalidParameterError, match="mask_method"):
        _model(mask_method="kmeans").fit(train[:8])
    with pytest.raises(InvalidParameterError, match="target"):
        _model(target="both").fit(train[:8])
    with pytest.raises(InvalidParameterError, match="noise_gain"):
        _model(noise_gain=0.0).fit(train[:8])
    with pytest.raises(ValueError, match="widths"):
        _model(widths=()).fit(train[:8])


def test_save_load_and_pickle_round_trips(galaxies, fitted_clean, tmp_path):
    import pickle

    import skastro

    _, _, noisy = galaxies
    expected = fitted_clean.denoise(noisy)
    loaded = skastro.load(fitted_clean.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.denoise(noisy), expected)
    np.testing.assert_array_equal(loaded.transform(noisy), fitted_clean.transform(noisy))
    restored = pickle.loads(pickle.dumps(fitted_clean))
    np.testing.assert_array_equal(restored.denoise(noisy), expected)


def test_zero_correction_returns_the_input_in_its_own_units(galaxies):
    # With residual=True and a zeroed output layer the network is the identity, so denoise
    # must give back exactly what it was given: the standardisation going in and the
    # de-standardisation coming out are the same transform.
    train, _, noisy = galaxies
    model = _model(max_epochs=0).fit(100.0 * train[:8] + 3.0)  # units far from unit scale
    torch.nn.init.zeros_(model.module_.out.weight)
    torch.nn.init.zeros_(model.module_.out.bias)
    X = 100.0 * noisy[:4] + 3.0
    np.testing.assert_allclose(model.denoise(X), X, rtol=1e-5, atol=1e-3)


def test_training_pairs_of_both_modes():
    X = torch.full((2, 1, 16, 16), 0.5)
    clean = _model(target="clean")
    target, noisy_input = clean._pair(X, torch.Generator().manual_seed(0))
    assert torch.equal(target, X)  # the clean image is the target
    variance = 0.5 / GAIN + SIGMA**2
    assert float((noisy_input - X).var()) == pytest.approx(variance, rel=0.15)
    recorrupted = _model(target="noisy")
    target, noisy_input = recorrupted._pair(X, torch.Generator().manual_seed(0))
    # Recorrupted-to-Recorrupted: the added noise enters input and target with opposite signs
    assert torch.allclose(0.5 * (target + noisy_input), X, atol=1e-6)
    assert float((noisy_input - X).var()) == pytest.approx(variance, rel=0.15)
