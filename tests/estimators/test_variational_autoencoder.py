"""VariationalAutoencoder and the standard-normal KL term."""

import numpy as np
import pytest
import torch

from skastro import VariationalAutoencoder


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 0.1, (48, 2, 16, 16)).astype(np.float32)
    X[:24, :, 5:11, 5:11] += 1.0
    return X


@pytest.fixture(scope="module")
def fitted(images):
    vae = VariationalAutoencoder(n_components=3, widths=(4, 8), max_epochs=2, random_state=0)
    return vae.fit(images)


def test_fit_logs_both_terms_and_transform_returns_posterior_means(fitted, images):
    row = fitted.history_[-1]
    assert {"loss_mse", "loss_kl"} <= set(row)
    n_values = images[0].size
    assert row["train_loss"] == pytest.approx(row["loss_mse"] + row["loss_kl"] / n_values, rel=1e-4)
    Z = fitted.transform(images)
    assert Z.shape == (48, 3) and Z.dtype == np.float32
    # posterior means: no sampling at inference, so repeated calls agree exactly
    np.testing.assert_array_equal(Z, fitted.transform(images))
    mu, _ = fitted.module_.encode(fitted._to_net(torch.from_numpy(images[:5])))
    np.testing.assert_allclose(Z[:5], mu.detach().numpy(), atol=1e-6)


def test_reconstruct_keeps_layout(fitted, images):
    assert fitted.reconstruct(images).shape == images.shape
    flat = images.reshape(len(images), -1)
    vae = VariationalAutoencoder(n_components=2, widths=(4,), max_epochs=1, random_state=0)
    vae.set_params(image_shape=(2, 16, 16)).fit(flat)
    assert vae.reconstruct(flat).shape == flat.shape


def test_same_seed_same_output(images, fitted):
    again = VariationalAutoencoder(n_components=3, widths=(4, 8), max_epochs=2, random_state=0)
    np.testing.assert_array_equal(again.fit(images).transform(images), fitted.transform(images))


def test_beta_zero_leaves_only_the_reconstruction(images):
    vae = VariationalAutoencoder(n_components=2, widths=(4,), beta=0.0, max_epochs=1)
    row = vae.set_params(random_state=0).fit(images).history_[-1]
    assert row["train_loss"] == pytest.approx(row["loss_mse"], rel=1e-5)


def test_larger_beta_pulls_the_posterior_toward_the_prior(images):
    def final_kl(beta):
        vae = VariationalAutoencoder(
            n_components=2, widths=(4,), beta=beta, max_epochs=8, lr=3e-3, random_state=0
        )
        return vae.fit(images).history_[-1]["loss_kl"]

    assert final_kl(200.0) < final_kl(0.0)


def test_bad_widths_raise(images):
    with pytest.raises(ValueError, match="widths"):
        VariationalAutoencoder(widths=(), max_epochs=1).fit(images)
