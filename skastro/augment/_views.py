"""Random views of a batch of images for joint-embedding self-supervised learning (VICReg).

A view is a random flip, a rotation by any angle, a crop rescaled to the full size (one affine
warp, so one interpolation), Gaussian noise and, half of the time, a Gaussian blur; each can
be turned off (oriented data such as digits must not be rotated or mirrored), and a colour
jitter turned on. Every image of the batch gets its own draw. The geometric warp and the
blur act identically on every band, so flux ratios between bands (colours) are preserved;
the noise is independent per pixel and band, like detector noise. Warps use kornia; random
draws use torch's default generator, so they follow the estimator's seed.
"""

import math

import torch
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

from skastro.augment._dihedral import random_dihedral

__all__ = ["random_blur", "random_crop_rotate", "random_view"]


def _uniform(low, high, n, device, dtype=torch.float32):
    return low + (high - low) * torch.rand(n, device=device, dtype=dtype)


def random_crop_rotate(X, *, crop_scale=(0.6, 1.0), rotate=True):
    """Crop a random square region, rescale it to the full size and rotate it by any angle.

    Parameters
    ----------
    X : torch.Tensor of shape (b, C, H, W)
    crop_scale : (float, float), default=(0.6, 1.0)
        Range of the cropped area as a fraction of the image area; ``(1, 1)`` disables
        cropping.
    rotate : bool, default=True
        Also rotate each image by a uniformly drawn angle.

    Returns
    -------
    torch.Tensor of shape (b, C, H, W)
        Pixels that the warp brings in from outside the frame are reflections of the inside,
        which for sky images looks like more sky.

    Examples
    --------
    >>> X = torch.rand(3, 2, 16, 16)
    >>> random_crop_rotate(X).shape
    torch.Size([3, 2, 16, 16])
    >>> torch.allclose(random_crop_rotate(X, crop_scale=(1, 1), rotate=False), X, atol=1e-5)
    True
    """
    b, _, h, w = X.shape
    # draws in X's dtype: the same as float32 draws for float32 images
    device, dtype = X.device, X.dtype
    area = _uniform(crop_scale[0], crop_scale[1], b, device, dtype)
    side = torch.sqrt(area)  # the crop's side as a fraction of the image's
    if rotate:
        angle = _uniform(0.0, 360.0, b, device, dtype)
    else:
        angle = torch.zeros(b, device=device, dtype=dtype)
    # the crop's centre is drawn so that the (unrotated) crop stays inside the frame
    shift_x = (torch.rand(b, device=device, dtype=dtype) - 0.5) * (1 - side) * (w - 1)
    shift_y = (torch.rand(b, device=device, dtype=dtype) - 0.5) * (1 - side) * (h - 1)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=device, dtype=dtype).expand(b, 2)
    zoom = (1.0 / side).unsqueeze(1).expand(b, 2)
    M = get_rotation_matrix2d(centre + torch.stack([shift_x, shift_y], 1), angle, zoom)
    # move the crop's centre to the centre of the output
    M[:, 0, 2] -= shift_x
    M[:, 1, 2] -= shift_y
    return warp_affine(X, M, dsize=(h, w), mode="bilinear", padding_mode="reflection")


def random_blur(X, *, sigma=(0.1, 1.0), p=0.5):
    """Blur a random subset of the images with Gaussian kernels of random widths.

    Parameters
    ----------
    X : torch.Tensor of shape (b, C, H, W)
    sigma : (float, float), default=(0.1, 1.0)
        Range of the kernel's standard deviation in pixels.
    p : float, default=0.5
        Probability that an image is blurred.

    Returns
    -------
    torch.Tensor of shape (b, C, H, W)
        Images smaller than 3 pixels, or with ``sigma[1] == 0``, are returned unchanged.

    Examples
    --------
    >>> X = torch.zeros(2, 1, 9, 9)
    >>> X[:, :, 4, 4] = 1.0
    >>> Y = random_blur(X, sigma=(1.0, 1.0), p=1.0)
    >>> bool((Y[:, :, 4, 4] < 1).all()), round(float(Y.sum()), 4)
    (True, 2.0)
    """
    b, _, h, w = X.shape
    if sigma[1] <= 0 or p <= 0:
        return X
    # the kernel covers +-3 sigma, within the image (reflect padding needs it)
    size = min(2 * math.ceil(3 * sigma[1]) + 1, min(h, w) - (1 - min(h, w) % 2))
    if size < 3:
        return X
    device, dtype = X.device, X.dtype
    s = _uniform(max(sigma[0], 1e-3), sigma[1], b, device, dtype).clamp_min(1e-3)
    blurred = gaussian_blur2d(X, (size, size), torch.stack([s, s], 1))
    chosen = torch.rand(b, device=device, dtype=dtype) < p
    return torch.where(chosen.view(-1, 1, 1, 1), blurred, X)


def random_view(
    X,
    *,
    crop_scale=(0.6, 1.0),
    rotate=True,
    noise_std=0.1,
    blur_sigma=(0.1, 1.0),
    flip=True,
    colour=0.0,
):
    """One random view of each image: flip, crop + rotation, blur, noise, then colour.

    Parameters
    ----------
    X : torch.Tensor of shape (b, C, H, W)
        Images, standardised per band (noise is in these units).
    crop_scale : (float, float), default=(0.6, 1.0)
        Passed to :func:`random_crop_rotate`; ``(1, 1)`` disables cropping.
    rotate : bool, default=True
        Rotate by any angle (with ``flip``: any of the 8 symmetries of the square too).
    noise_std : float, default=0.1
        Each image gets Gaussian noise with a standard deviation drawn uniformly from
        ``[0, noise_std]``; 0 disables it.
    blur_sigma : (float, float), default=(0.1, 1.0)
        Passed to :func:`random_blur` (half of the images are blurred); ``(0, 0)`` disables
        it.
    flip : bool, default=True
        Mirror images at random.
    colour : float, default=0.0
        Colour jitter: each band of each image is multiplied by ``exp(u)``, ``u`` uniform in
        ``[-colour, colour]``; 0 disables it (the default: colours are physical).

    Returns
    -------
    torch.Tensor of shape (b, C, H, W)

    Examples
    --------
    >>> X = torch.rand(4, 3, 16, 16)
    >>> random_view(X).shape
    torch.Size([4, 3, 16, 16])
    >>> still = random_view(X, crop_scale=(1, 1), rotate=False, noise_std=0.0,
    ...                     blur_sigma=(0, 0), flip=False)
    >>> bool(torch.equal(still, X))
    True
    """
    if rotate and flip:
        X = random_dihedral(X)
    elif flip:
        # without rotations the 8 symmetries are not wanted: one mirror axis, drawn per image
        flipped = torch.rand(X.shape[0], 1, 1, 1, device=X.device) < 0.5
        X = torch.where(flipped, X.flip(-1), X)
    if rotate or tuple(crop_scale) != (1, 1):
        X = random_crop_rotate(X, crop_scale=crop_scale, rotate=rotate)
    X = random_blur(X, sigma=blur_sigma)
    if noise_std > 0:
        level = noise_std * torch.rand(X.shape[0], 1, 1, 1, device=X.device, dtype=X.dtype)
        X = X + level * torch.randn_like(X)
    if colour > 0:
        gain = torch.exp(
            colour * (2.0 * torch.rand(X.shape[0], X.shape[1], 1, 1, device=X.device) - 1.0)
        )
        X = X * gain
    return X
