"""NT-Xent, the contrastive loss of SimCLR: two views of an image embed close together.

Chen, Kornblith, Norouzi & Hinton (2020), "A Simple Framework for Contrastive Learning of
Visual Representations", ICML. The contrastive denoiser uses it between the projections of
two noisy views of each image.

Torch only: no scikit-learn here.
"""

import torch
import torch.nn.functional as F

__all__ = ["nt_xent_loss"]


def nt_xent_loss(z1, z2, temperature=0.5):
    """NT-Xent: normalised temperature-scaled cross-entropy between two views (SimCLR).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; the other ``2b - 2``
    embeddings of the batch are its negatives. Embeddings are L2-normalised, similarities
    divided by ``temperature``, and the cross-entropy of picking the positive is averaged
    over all ``2b`` anchors.

    Parameters
    ----------
    z1, z2 : torch.Tensor of shape (b, d)
        Projections of the two views.
    temperature : float, default=0.5

    Returns
    -------
    loss : torch.Tensor, scalar
        For one-hot (orthogonal) identical views it is ``log(1 + (2b - 2) exp(-1/t))``.

    Examples
    --------
    >>> import math
    >>> z = torch.eye(4)
    >>> t = 0.5
    >>> round(float(nt_xent_loss(z, z, t)), 6) == round(math.log(1 + 6 * math.exp(-1 / t)), 6)
    True
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must both have shape (b, d), got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    b = z1.shape[0]
    if b < 2:  # no negatives: the loss is constant, keep a zero with a gradient path
        return (z1.sum() + z2.sum()) * 0.0
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    # an embedding is never its own negative
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), -torch.inf)
    positives = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, positives)
