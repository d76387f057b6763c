"""Loss terms of the equivariant autoencoder: latent decorrelation and a perceptual loss.

- :func:`variance_loss`, :func:`covariance_loss` and :func:`invariance_loss` are the terms of
  VICReg (Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
  Self-Supervised Learning", ICLR 2022). The first two act on one batch of latents: the
  variance term keeps every latent unit spread out across the batch, the covariance term
  decorrelates the units, so the latent space is used in full rather than collapsing onto a
  few directions. The invariance term pulls together the latents of two views of an image.
- :class:`PerceptualLoss` compares images through the features of a frozen, user-supplied
  torch module (e.g. the first blocks of a locally saved ResNet-18); nothing is downloaded.

Torch only: no scikit-learn here.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PerceptualLoss", "covariance_loss", "invariance_loss", "variance_loss"]


def _check_latents(Z, name):
    if Z.ndim != 2:
        raise ValueError(f"{name} expects latents of shape (batch, dim), got {tuple(Z.shape)}")


def variance_loss(Z, *, gamma=1.0, eps=1e-4):
    """VICReg variance term: mean hinge ``max(0, gamma - std)`` of each latent unit.

    Parameters
    ----------
    Z : torch.Tensor of shape (b, d)
        A batch of latents. With fewer than two rows the standard deviation is undefined and
        the term is 0.
    gamma : float, default=1.0
        Target standard deviation.
    eps : float, default=1e-4
        Added to the variance before the square root, for stable gradients at 0.

    Returns
    -------
    torch.Tensor
        Scalar; 0 when every unit has a standard deviation of at least ``gamma``.

    Examples
    --------
    >>> float(variance_loss(torch.zeros(4, 3)))  # collapsed latents: about gamma
    0.99
    >>> float(variance_loss(torch.tensor([[2.0], [-2.0]])))
    0.0
    """
    _check_latents(Z, "variance_loss")
    if len(Z) < 2:
        return Z.sum() * 0.0
    std = torch.sqrt(Z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_loss(Z):
    """VICReg covariance term: squared off-diagonal covariances, summed, divided by ``d``.

    Parameters
    ----------
    Z : torch.Tensor of shape (b, d)
        A batch of latents (fewer than two rows give 0).

    Returns
    -------
    torch.Tensor
        Scalar; 0 for uncorrelated latent units.

    Examples
    --------
    >>> Z = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # two perfectly correlated units
    >>> float(covariance_loss(Z))
    4.0
    >>> float(covariance_loss(torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])))
    0.0
    """
    _check_latents(Z, "covariance_loss")
    n, d = Z.shape
    if n < 2:
        return Z.sum() * 0.0
    centred = Z - Z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d


def invariance_loss(Z, Z_other):
    """VICReg invariance term: mean squared distance between the latents of two views.

    Parameters
    ----------
    Z, Z_other : torch.Tensor of shape (b, d)
        Latents of the same images seen two ways (e.g. original and augmented).

    Returns
    -------
    torch.Tensor
        Scalar; 0 when the latent does not change between the views.

    Examples
    --------
    >>> float(invariance_loss(torch.zeros(2, 3), torch.ones(2, 3)))
    1.0
    """
    _check_latents(Z, "invariance_loss")
    if Z.shape != Z_other.shape:
        raise ValueError(f"latent shapes differ: {tuple(Z.shape)} and {tuple(Z_other.shape)}")
    return F.mse_loss(Z, Z_other)


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
