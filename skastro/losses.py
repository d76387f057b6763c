"""Loss terms as small torch functions, one job each.

Every function takes tensors and returns a scalar tensor to *minimise*. Estimators combine
them with ``<term>_weight`` parameters and log each one separately in ``history_``.
Torch only: no scikit-learn here.
"""

import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

__all__ = ["mse_loss", "ssim_loss"]


def mse_loss(prediction, target):
    """Mean squared error over all pixels.

    Examples
    --------
    >>> import torch
    >>> float(mse_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
    1.0
    """
    return F.mse_loss(prediction, target)


def ssim_loss(prediction, target, *, kernel_size=7, data_range=None):
    """``1 - SSIM`` between batches of images (differentiable; 0 for identical images).

    Parameters
    ----------
    prediction, target : torch.Tensor of shape (b, C, H, W)
    kernel_size : int
        Gaussian window; it is shrunk automatically for images smaller than the window.
    data_range : float or None
        Dynamic range of the images; by default the target batch's max - min.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 16, 16)
    >>> float(ssim_loss(x, x)) < 1e-6
    True
    """
    size = min(prediction.shape[-2:])
    kernel_size = max(3, min(kernel_size, size - (1 - size % 2)))
    if kernel_size > size:  # images smaller than 3 px: SSIM is undefined, use MSE instead
        return mse_loss(prediction, target)
    if data_range is None:
        data_range = max(float(target.max() - target.min()), 1e-8)
    # torchmetrics derives the Gaussian window from sigma: int(3.5 * sigma + 0.5) * 2 + 1 px
    ssim = structural_similarity_index_measure(
        prediction, target, data_range=data_range, sigma=(kernel_size - 1) / 7
    )
    return 1.0 - ssim
