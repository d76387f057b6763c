"""mse_loss: the mean squared error every autoencoder starts from."""

import torch

from skastro.losses import mse_loss


def test_mse_known_value_and_gradient():
    prediction = torch.zeros(2, 1, 3, 3, requires_grad=True)
    target = torch.full((2, 1, 3, 3), 2.0)
    loss = mse_loss(prediction, target)
    assert float(loss.detach()) == 4.0
    loss.backward()
    # d/dp mean((p - t)^2) = 2 (p - t) / n
    assert torch.allclose(prediction.grad, torch.full_like(prediction, -4.0 / 18))
