"""Classic (non-deep) image features as scikit-learn transformers.

These are the baselines every learned embedding should be compared with, and the "other things
tried" of the protoplanetary-disk write-up: elliptical radial intensity profiles, Fourier-domain
Laplacian filtering, difference of Gaussians and threshold + connected-components blob finding,
the residual of an axisymmetric model (the structure a smooth disk cannot have) and soft
thresholding at a multiple of each image's noise (what is left is significant structure).
They are plain NumPy / SciPy / scikit-image code (no torch), work on whole batches of images at
once, and drop into a :class:`~sklearn.pipeline.Pipeline` in front of any clusterer::

    Pipeline([("radial", RadialProfile()), ("km", KMeans(2))])
    Pipeline([("dog", DifferenceOfGaussians()), ("blobs", BlobCounter()), ("km", KMeans(2))])

Images are given as DESIGN.md says (``(n, H, W)``, ``(n, C, H, W)``, or flat ``(n, F)`` with
``image_shape=(C, H, W)`` or ``F`` a perfect square). :class:`RadialProfile` and
:class:`BlobCounter` return feature vectors; :class:`DifferenceOfGaussians`,
:class:`FourierLaplacian`, :class:`AxisymmetricResidual` and :class:`SoftThreshold` return
filtered images in the layout they were given, so they chain into :class:`BlobCounter` or an
autoencoder. Every output is ``float32``.
"""

from skastro.features._blobs import BlobCounter
from skastro.features._filters import DifferenceOfGaussians, FourierLaplacian
from skastro.features._profiles import RadialProfile
from skastro.features._residual import AxisymmetricResidual
from skastro.features._threshold import SoftThreshold

__all__ = [
    "AxisymmetricResidual",
    "BlobCounter",
    "DifferenceOfGaussians",
    "FourierLaplacian",
    "RadialProfile",
    "SoftThreshold",
]
