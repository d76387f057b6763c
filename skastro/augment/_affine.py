"""Batched affine augmentation with kornia: rotation, flip, scale, shear, perspective, blur.

These mimic the ways one object can appear on the sky: any orientation (rotation, flip), a
different distance (scale), a different viewing angle (shear, and optionally perspective), and
a different resolution (Gaussian blur, which also smooths very grainy images). Every image of
a batch gets its own random draw from torch's default generator, so a fit seeded with
:func:`skastro.base.seeded` is reproducible.

Torch and kornia only: no scikit-learn here.
"""

import math

from torch import nn

__all__ = ["affine_augmentation", "random_affine"]


def _blur_kernel_size(image_size, max_sigma):
    # three standard deviations either side, but the window must fit the image (kornia pads by
    # reflection, which needs a padding smaller than the image)
    wanted = 2 * math.ceil(3.0 * max_sigma) + 1
    largest = min(image_size)
    largest = largest if largest % 2 else largest - 1
    size = min(wanted, largest)
    return size if size >= 3 else None


def affine_augmentation(
    image_size,
    *,
    max_rotation=180.0,
    scale_range=(0.9, 1.1),
    max_shear=10.0,
    perspective=0.0,
    blur_sigma=(0.1, 1.0),
    blur_probability=0.5,
    flip=True,
    padding_mode="border",
):
    """Build a kornia augmentation pipeline for batches of ``(b, C, H, W)`` images.

    Parameters
    ----------
    image_size : (int, int)
        ``(H, W)`` of the images (sets the largest blur window that fits).
    max_rotation : float, default=180.0
        Rotation angle drawn uniformly in ``[-max_rotation, max_rotation]`` degrees.
    scale_range : (float, float) or None, default=(0.9, 1.1)
        Zoom factor range; ``None`` or ``(1, 1)`` disables scaling.
    max_shear : float, default=10.0
        Shear angle drawn in ``[-max_shear, max_shear]`` degrees; 0 disables it.
    perspective : float, default=0.0
        Distortion scale of a random perspective warp applied to half of the images; 0
        disables it (at low resolution its interpolation blurs fine structure).
    blur_sigma : (float, float) or None, default=(0.1, 1.0)
        Range of the Gaussian blur width in pixels; ``None`` disables blurring.
    blur_probability : float, default=0.5
        Fraction of images that are blurred.
    flip : bool, default=True
        Mirror half of the images (with rotations this gives every orientation).
    padding_mode : {"border", "zeros", "reflection"}, default="border"
        How pixels that come from outside the image are filled. ``"border"`` extends the
        edge, i.e. the sky background of a cutout.

    Returns
    -------
    augmentation : torch.nn.Module
        Call it on a batch to get augmented copies (same shape).

    Examples
    --------
    >>> import torch
    >>> augment = affine_augmentation((16, 16), perspective=0.2)
    >>> augment(torch.rand(4, 1, 16, 16)).shape
    torch.Size([4, 1, 16, 16])
    """
    import kornia.augmentation as K

    steps = []
    if flip:
        steps.append(K.RandomHorizontalFlip(p=0.5))
    scale = None if scale_range is None else tuple(float(s) for s in scale_range)
    if scale == (1.0, 1.0):
        scale = None
    if max_rotation or scale is not None or max_shear:
        steps.append(
            K.RandomAffine(
                degrees=float(max_rotation),
                scale=scale,
                shear=float(max_shear) if max_shear else None,
                padding_mode=padding_mode,
                p=1.0,
            )
        )
    if perspective:
        steps.append(K.RandomPerspective(distortion_scale=float(perspective), p=0.5))
    if blur_sigma is not None and blur_probability > 0:
        low, high = (float(s) for s in blur_sigma)
        kernel = _blur_kernel_size(tuple(image_size), high)
        if kernel is not None:
            steps.append(K.RandomGaussianBlur((kernel, kernel), (low, high), p=blur_probability))
    if not steps:
        return nn.Identity()
    return K.AugmentationSequential(*steps)


def random_affine(X, **kwargs):
    """Augment one batch; shorthand for ``affine_augmentation(X.shape[-2:], **kwargs)(X)``.

    Build the pipeline once with :func:`affine_augmentation` when augmenting many batches.

    Parameters
    ----------
    X : torch.Tensor of shape (b, C, H, W)
    **kwargs
        Options of :func:`affine_augmentation`.

    Returns
    -------
    torch.Tensor of shape (b, C, H, W)

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> random_affine(torch.rand(2, 1, 8, 8), blur_sigma=None).shape
    torch.Size([2, 1, 8, 8])
    """
    if X.ndim != 4:
        raise ValueError(f"expected a batch of images (b, C, H, W), got shape {tuple(X.shape)}")
    return affine_augmentation(tuple(X.shape[-2:]), **kwargs)(X)
