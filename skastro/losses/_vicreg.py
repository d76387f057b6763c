"""VICReg loss terms (invariance, variance, covariance) and the RankMe collapse monitor.

VICReg is from Bardes, Ponce & LeCun (2022), "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning", ICLR. Each term is a pure function of the
embeddings of a batch, so it can be tested and ablated on its own; :class:`VICRegLoss`
combines them exactly as the authors' reference implementation does. RankMe is from Garrido
et al. (2023), "RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
Representations by Their Rank", ICML.

Torch only: no scikit-learn here.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VICRegLoss", "covariance_loss", "invariance_loss", "rankme", "variance_loss"]


def _check_embeddings(Z, name="Z", min_samples=2):
    if Z.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (batch, dim) tensor of embeddings, got shape {tuple(Z.shape)}"
        )
    if Z.shape[0] < min_samples:
        raise ValueError(
            f"{name} holds {Z.shape[0]} sample(s); the variance and covariance of an embedding "
            f"need a batch of at least {min_samples}"
        )


def invariance_loss(Z_a, Z_b):
    """Mean squared distance between the embeddings of the two views of each image.

    Parameters
    ----------
    Z_a, Z_b : torch.Tensor of shape (b, d)
        Embeddings of the two branches, row ``i`` of each coming from the same image.

    Returns
    -------
    loss : torch.Tensor
        A scalar; 0 when both branches agree.

    Examples
    --------
    >>> Z = torch.randn(8, 4)
    >>> float(invariance_loss(Z, Z))
    0.0
    """
    if Z_a.shape != Z_b.shape:
        raise ValueError(
            f"the two branches must have the same shape, got {tuple(Z_a.shape)} and "
            f"{tuple(Z_b.shape)}"
        )
    return F.mse_loss(Z_a, Z_b)


def variance_loss(Z, *, gamma=1.0, eps=1e-4):
    """Hinge on the standard deviation of each embedding dimension over the batch.

    ``mean_j max(0, gamma - sqrt(Var(Z[:, j]) + eps))``. The hinge is on the standard
    deviation, not the variance: the gradient of the variance vanishes as it goes to zero and
    lets the embedding collapse, while that of the standard deviation grows (``eps`` keeps it
    finite).

    Parameters
    ----------
    Z : torch.Tensor of shape (b, d), b >= 2
        Embeddings of one branch.
    gamma : float, default=1.0
        Target standard deviation.
    eps : float, default=1e-4
        Added to the variance for numerical stability.

    Returns
    -------
    loss : torch.Tensor
        A scalar in ``[0, gamma - sqrt(eps)]``; the maximum is reached by a constant
        (collapsed) embedding.

    Examples
    --------
    >>> round(float(variance_loss(torch.ones(8, 4))), 4)
    0.99
    >>> float(variance_loss(torch.tensor([[-2.0], [2.0]])))
    0.0
    """
    _check_embeddings(Z)
    std = torch.sqrt(Z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def _off_diagonal(M):
    d = M.shape[0]
    return M.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def covariance_loss(Z):
    """Sum of squared off-diagonal covariances of the embedding, divided by its size ``d``.

    Pushes the dimensions of the embedding to be decorrelated, so they carry different
    information.

    Parameters
    ----------
    Z : torch.Tensor of shape (b, d), b >= 2
        Embeddings of one branch.

    Returns
    -------
    loss : torch.Tensor
        A scalar; 0 when the dimensions are uncorrelated over the batch.

    Examples
    --------
    >>> Z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    >>> float(covariance_loss(Z))
    0.0
    >>> round(float(covariance_loss(torch.cat([Z[:, :1], Z[:, :1]], dim=1))), 4)  # 2 (4/3)^2 / 2
    1.7778
    """
    _check_embeddings(Z)
    b, d = Z.shape
    Z = Z - Z.mean(dim=0)
    cov = (Z.T @ Z) / (b - 1)
    return _off_diagonal(cov).pow(2).sum() / d


def rankme(Z, *, eps=1e-7):
    """Effective rank of a batch of embeddings (RankMe), a label-free collapse monitor.

    ``exp(-sum_k p_k log p_k)`` with ``p_k = sigma_k / ||sigma||_1 + eps`` over the singular
    values ``sigma_k`` of ``Z``. It is 1 for a rank-one (collapsed) embedding and at most
    ``min(b, d)``; Garrido et al. (2023) show it tracks downstream accuracy.

    Parameters
    ----------
    Z : torch.Tensor of shape (b, d)
        Embeddings (not centred, as in the paper).
    eps : float, default=1e-7
        Keeps the logarithm finite for zero singular values.

    Returns
    -------
    rank : torch.Tensor
        A scalar (no gradient).

    Examples
    --------
    >>> round(float(rankme(torch.eye(4))), 3)
    4.0
    >>> round(float(rankme(torch.ones(8, 3))), 3)
    1.0
    """
    with torch.no_grad():
        sigma = torch.linalg.svdvals(Z.float())
        p = sigma / sigma.sum().clamp_min(torch.finfo(sigma.dtype).tiny) + eps
        return torch.exp(-(p * torch.log(p)).sum())


class VICRegLoss(nn.Module):
    """The VICReg loss: weighted invariance + variance + covariance terms.

    As in the authors' reference implementation, the variance term is the mean of the two
    branches' terms and the covariance term is their sum.

    Parameters
    ----------
    sim_weight : float, default=25.0
        Weight of the invariance term (lambda in the paper).
    var_weight : float, default=25.0
        Weight of the variance term (mu).
    cov_weight : float, default=1.0
        Weight of the covariance term (nu).
    eps : float, default=1e-4
        Stabiliser of the standard deviation in the variance term.

    Examples
    --------
    >>> loss = VICRegLoss()
    >>> terms = loss(torch.randn(16, 8), torch.randn(16, 8))
    >>> sorted(terms)
    ['loss', 'loss_covariance', 'loss_invariance', 'loss_variance']
    """

    def __init__(self, sim_weight=25.0, var_weight=25.0, cov_weight=1.0, eps=1e-4):
        super().__init__()
        self.sim_weight = sim_weight
        self.var_weight = var_weight
        self.cov_weight = cov_weight
        self.eps = eps

    def forward(self, Z_a, Z_b):
        """Return a dict with ``"loss"`` (the weighted total) and the three unweighted terms."""
        _check_embeddings(Z_a, "Z_a")
        _check_embeddings(Z_b, "Z_b")
        invariance = invariance_loss(Z_a, Z_b)
        variance = 0.5 * (variance_loss(Z_a, eps=self.eps) + variance_loss(Z_b, eps=self.eps))
        covariance = covariance_loss(Z_a) + covariance_loss(Z_b)
        total = (
            self.sim_weight * invariance + self.var_weight * variance + self.cov_weight * covariance
        )
        return {
            "loss": total,
            "loss_invariance": invariance,
            "loss_variance": variance,
            "loss_covariance": covariance,
        }
