"""The exact symmetries of a square image: 90-degree rotations and flips, drawn per image."""

import torch

__all__ = ["random_dihedral"]


def random_dihedral(X):
    """Apply one of the 8 symmetries of the square to each image, drawn independently.

    Parameters
    ----------
    X : torch.Tensor of shape (b, C, H, W)

    Returns
    -------
    torch.Tensor of shape (b, C, H, W)
        Rotated/flipped copies (square images), or only flipped copies (non-square images,
        where a 90-degree rotation would change the shape).

    Examples
    --------
    >>> import torch
    >>> X = torch.arange(8.0).reshape(2, 1, 2, 2)
    >>> random_dihedral(X).shape
    torch.Size([2, 1, 2, 2])
    """
    b, _, h, w = X.shape
    # drawn in X's dtype: the same draws as float32 for float32 images, and no float32 tensor
    # for images in another precision
    device, dtype = X.device, X.dtype
    flip_h = torch.rand(b, device=device, dtype=dtype) < 0.5
    flip_v = torch.rand(b, device=device, dtype=dtype) < 0.5
    X = torch.where(flip_h.view(-1, 1, 1, 1), X.flip(-1), X)
    X = torch.where(flip_v.view(-1, 1, 1, 1), X.flip(-2), X)
    if h == w:
        # flips + a transpose generate the whole dihedral group D4
        transpose = torch.rand(b, device=device, dtype=dtype) < 0.5
        X = torch.where(transpose.view(-1, 1, 1, 1), X.transpose(-1, -2), X)
    return X
