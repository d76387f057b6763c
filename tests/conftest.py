"""Seeded fixtures and tiny shared data sets for the whole suite."""

import os

import numpy as np
import pytest

# Headless plotting everywhere in the suite.
os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on two cores: one torch thread each, so they
    # do not oversubscribe the cores (and the results do not depend on the thread count).
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_images():
    """48 one-band 16x16 images: Gaussian blobs of two widths on a noisy sky, and labels."""
    rng = np.random.default_rng(0)
    n, size = 48, 16
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    widths = np.where(np.arange(n) % 2 == 0, 1.5, 4.0)
    images = np.exp(-(xx**2 + yy**2)[None] / (2 * widths[:, None, None] ** 2))
    images = images + 0.02 * rng.standard_normal((n, size, size))
    return images[:, None].astype(np.float32), (np.arange(n) % 2).astype(int)


@pytest.fixture(scope="session")
def tiny_multiband():
    """24 three-band 16x16 images with band-dependent brightness."""
    rng = np.random.default_rng(1)
    return (
        rng.random((24, 3, 16, 16), dtype=np.float32)
        * np.array([1, 2, 3], "f4")[None, :, None, None]
    )


@pytest.fixture(scope="session")
def fitted_tiny_ae(tiny_images):
    """A ConvAutoencoder fitted for two epochs on ``tiny_images`` (shared, do not refit)."""
    from skastro import ConvAutoencoder

    X, _ = tiny_images
    return ConvAutoencoder(
        n_components=4, widths=(8, 16), max_epochs=2, batch_size=16, random_state=0
    ).fit(X)
