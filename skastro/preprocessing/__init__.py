"""Scaling images before a model: stretches astronomers use, and per-object normalisation.

- :class:`ImageScaler`: asinh / log / sqrt / linear stretch with percentile clipping, per
  image or global, invertible.
- :class:`PeakScaler`: each cutout divided by its central object's peak (brightness out,
  shape and colour kept), an asinh stretch, a central crop.

Photometry of centred cutouts (sky noise, S/N, flux fractions) is :mod:`skastro.photometry`.
"""

from skastro.preprocessing._image_scaler import ImageScaler
from skastro.preprocessing._peak_scaler import PeakScaler

__all__ = ["ImageScaler", "PeakScaler"]
