"""Poisson + Gaussian detector noise: its statistics."""

import numpy as np
import pytest
import torch

from skastro.augment import add_noise

GAIN, SIGMA = 50.0, 0.03


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


@pytest.mark.parametrize("gain", [0, 0.0, -1.0])
def test_a_gain_that_is_not_positive_is_refused(gain):
    with pytest.raises(ValueError, match="noise_gain must be positive"):
        add_noise(np.ones((1, 1, 4, 4), np.float32), noise_gain=gain, noise_sigma=0.0)
