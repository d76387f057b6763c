"""A perceptual loss: images compared through the features of a frozen network.

:class:`PerceptualLoss` compares images through the features of a frozen, user-supplied torch
module (e.g. the first blocks of a locally saved ResNet-18); nothing is downloaded. The
equivariant autoencoder offers it next to its pixel losses.

Torch only: no scikit-learn here.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PerceptualLoss"]


def _first_conv_channels(module):
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            return sub.in_channels
    return None


class PerceptualLoss(nn.Module):
    """Mean squared distance between the features of two images under a frozen network.

    The network is copied, set to eval mode and frozen (its weights get no gradients); the
    gradient flows to the prediction only. Images with fewer channels than the network's first
    ``Conv2d`` expects (grayscale into an RGB network) have their channels repeated.

    Parameters
    ----------
    features : torch.nn.Module
        Maps ``(b, C, H, W)`` images to feature maps (or vectors), e.g. the first blocks of a
        ResNet-18 saved locally with ``torch.save``.

    Examples
    --------
    >>> features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    >>> loss = PerceptualLoss(features)
    >>> x = torch.rand(2, 1, 16, 16)
    >>> float(loss(x, x))
    0.0
    """

    def __init__(self, features):
        super().__init__()
        if not isinstance(features, nn.Module):
            raise TypeError(
                f"the perceptual network must be a torch.nn.Module, got {type(features).__name__}"
            )
        self.features = copy.deepcopy(features).eval()
        self.features.requires_grad_(False)
        self.in_channels = _first_conv_channels(self.features)

    def train(self, mode=True):
        # the feature network stays in eval mode (frozen batch-norm statistics, no dropout)
        super().train(mode)
        self.features.eval()
        return self

    def _prepare(self, X):
        channels = X.shape[1]
        if self.in_channels is not None and channels != self.in_channels:
            if self.in_channels % channels:
                raise ValueError(
                    f"the perceptual network expects {self.in_channels} input channels and "
                    f"cannot take images with {channels}"
                )
            X = X.repeat(1, self.in_channels // channels, 1, 1)
        return X

    def forward(self, prediction, target):
        with torch.no_grad():
            target_features = self.features(self._prepare(target))
        return F.mse_loss(self.features(self._prepare(prediction)), target_features)
