"""Metrics and scorers: clustering quality, AUC, image quality and equivariance.

- **Scorers** with the scikit-learn signature ``scorer(estimator, X, y=None) -> float``
  (:func:`silhouette_scorer`, :func:`dbcv_scorer`, :func:`auc_scorer` and the factories
  :func:`make_clustering_scorer`, :func:`make_auc_scorer`). They plug into
  ``GridSearchCV(scoring=...)``, into a multi-metric ``scoring={...}`` dict, and, being plain
  callables with that signature, into skorch's ``EpochScoring(scoring=...)`` too.
- **Image quality** (:func:`reconstruction_mse`, :func:`ssim`, :func:`ms_ssim`) that take
  numpy arrays (and return floats) or torch tensors (and return differentiable tensors).
- :func:`equivariance_error`, which measures how much an embedding moves when the images are
  rotated or flipped.
"""

from skastro.metrics._equivariance import equivariance_error
from skastro.metrics._image_quality import ms_ssim, reconstruction_mse, ssim
from skastro.metrics._scorers import (
    auc_scorer,
    dbcv_scorer,
    make_auc_scorer,
    make_clustering_scorer,
    silhouette_scorer,
)

__all__ = [
    "auc_scorer",
    "dbcv_scorer",
    "equivariance_error",
    "make_auc_scorer",
    "make_clustering_scorer",
    "ms_ssim",
    "reconstruction_mse",
    "silhouette_scorer",
    "ssim",
]
