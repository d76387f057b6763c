"""Matplotlib figures for embeddings, reconstructions, clusters, training curves and ROC.

Every function takes data or a fitted estimator, draws on the ``ax`` (or ``fig``) it is given
or on a new pyplot figure, and returns the axes (or figure). matplotlib is imported inside
the functions, so ``import skastro`` does not need it, and nothing here selects a backend:
on a machine without a display matplotlib falls back to its non-interactive Agg backend.

Images are shown through :class:`~skastro.preprocessing.ImageScaler`, by default with the
asinh stretch astronomers use for galaxies.
"""

from skastro.plotting._curves import plot_history, plot_roc
from skastro.plotting._embedding import plot_embedding
from skastro.plotting._images import plot_cluster_examples, plot_image, plot_reconstructions
from skastro.plotting._retrieval import plot_retrieval

__all__ = [
    "plot_cluster_examples",
    "plot_embedding",
    "plot_history",
    "plot_image",
    "plot_reconstructions",
    "plot_retrieval",
    "plot_roc",
]
