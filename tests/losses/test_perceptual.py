"""PerceptualLoss: the gradient reaches the prediction only."""

import pytest
import torch

from skastro.losses import PerceptualLoss


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
