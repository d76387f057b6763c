"""ContrastiveDenoiser, its masks and its loss terms, on hand-made images with known answers."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skastro import ContrastiveDenoiser
from skastro.augment import add_noise
from skastro.datasets import make_galaxies
from skastro.metrics import ssim

GAIN, SIGMA = 50.0, 0.03


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
