"""Latent space explorer: an interactive web app and a shareable HTML export.

:class:`Explorer` takes images and an embedding (a precomputed array or any fitted estimator
with ``transform``), projects it with PCA, t-SNE or UMAP in 2-D or 3-D, clusters it, and shows
it as a WebGL scatter beside an instance panel of images and their nearest neighbours.
The web app needs the ``explorer`` extra (``pip install skastro[explorer]``: Dash).
"""

from skastro.explorer._compute import View, ViewSpec
from skastro.explorer._explorer import Explorer
from skastro.explorer._server import ExplorerServer

__all__ = ["Explorer", "ExplorerServer", "View", "ViewSpec"]
