"""Batched torch augmentations for training views (torch and kornia only, no scikit-learn).

Geometric augmentations act on a whole batch at once, each image with its own random draw from
torch's default generator, so a fit seeded with :func:`skastro.base.seeded` is reproducible.
Exact symmetries (90-degree rotations, flips) are done by indexing; continuous ones (any
angle, scale, shear, perspective, blur) use kornia rather than hand-written warps.

==============  =============================================================
module          augmentation
==============  =============================================================
``_dihedral``   one of the 8 symmetries of the square per image
``_affine``     rotation, flip, scale, shear, perspective, blur (kornia)
``_views``      crop-rotate-noise-blur views for joint-embedding learning
``_noise``      Poisson + Gaussian detector noise in flux units
==============  =============================================================
"""

from skastro.augment._affine import affine_augmentation, random_affine
from skastro.augment._dihedral import random_dihedral
from skastro.augment._noise import add_noise
from skastro.augment._views import random_blur, random_crop_rotate, random_view

__all__ = [
    "add_noise",
    "affine_augmentation",
    "random_affine",
    "random_blur",
    "random_crop_rotate",
    "random_dihedral",
    "random_view",
]
