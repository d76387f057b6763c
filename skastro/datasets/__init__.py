"""Synthetic astronomical image sets and loaders for the file formats astronomers use.

Generators (``make_*``) follow scikit-learn's ``make_*`` conventions: deterministic given
``random_state``, channels-first float32 images, a :class:`~sklearn.utils.Bunch` with
``images``, ``target``, ``target_names``, ``metadata`` (one row per image) and ``DESCR``, or
``(images, target)`` with ``return_X_y=True``.

Loaders (``load_*``) return a Bunch with ``images`` (n, C, H, W) float32, ``filenames`` and
``ids``, and raise :class:`skastro.exceptions.DataLoadError`, naming the file, for any
corrupt or unreadable input. They never modify the files they read. :func:`open_data`
picks the loader from what a path holds; every command opens its data with it.

:func:`make_anomalies` turns normal cutouts into anomalous ones (satellite trails, cosmic
rays, saturated stars, blank frames), for anomaly-detection experiments.
"""

from ._anomalies import ANOMALY_KINDS, make_anomalies
from ._disks import make_disks
from ._fits import load_fits
from ._galaxies import make_galaxies
from ._hdf5 import HDF5Array, load_hdf5
from ._hubble import load_hubble_cutouts
from ._image_folder import load_image_folder
from ._lazy import LazyImageFiles
from ._npy import NpyArray
from ._open import open_data
from ._sdss import load_sdss_npy
from ._star_galaxy import make_star_galaxy

__all__ = [
    "ANOMALY_KINDS",
    "HDF5Array",
    "LazyImageFiles",
    "NpyArray",
    "load_fits",
    "load_hdf5",
    "load_hubble_cutouts",
    "load_image_folder",
    "load_sdss_npy",
    "make_anomalies",
    "make_disks",
    "make_galaxies",
    "make_star_galaxy",
    "open_data",
]
