"""Retrieval grid: a query image with its nearest and farthest images in an embedding.

Re-exported by :mod:`skastro.plotting`. matplotlib is imported inside the function.
"""

import numbers

import numpy as np
from sklearn.metrics import pairwise_distances

from skastro._images import as_nchw
from skastro.plotting._common import _display_array

__all__ = ["plot_retrieval"]

# each image gets its own limits (ImageScaler's default percentiles): retrieval compares
# shapes, not brightness
_PER_IMAGE_LIMITS = (0.5, 99.5)


def plot_retrieval(
    images,
    embedding,
    queries=0,
    *,
    n_neighbors=5,
    metric="euclidean",
    stretch="asinh",
    band=0,
    cmap="gray",
    origin="lower",
    fig=None,
):
    """Show each query image with its nearest and farthest images in an embedding.

    One row per query: the query, its ``n_neighbors`` nearest images (closest first) and its
    ``n_neighbors`` farthest images (farthest last), each titled with its distance. The
    query itself is left out of its own neighbours (exact duplicates are not).

    Parameters
    ----------
    images : array-like of shape (n, H, W), (n, C, H, W) or (n, F) with F a square
        The images that were embedded, channels first.
    embedding : array-like of shape (n, d) or fitted transformer
        The embedding of ``images``, or an estimator whose ``transform(images)`` gives it
        (e.g. a fitted :class:`~skastro.VICRegEmbedder`).
    queries : int or sequence of int, default=0
        Indices of the query images.
    n_neighbors : int, default=5
        Images shown on each side.
    metric : str or callable, default="euclidean"
        Distance in the embedding, as in :func:`sklearn.metrics.pairwise_distances`.
    stretch : {"asinh", "log", "linear", "sqrt"}, default="asinh"
        Display stretch (:class:`~skastro.preprocessing.ImageScaler`, per image).
    band : int or tuple of three ints, default=0
        Channel shown, or three channels shown as red, green and blue.
    cmap : str, default="gray"
        Colour map of a single band.
    origin : {"lower", "upper"}, default="lower"
        Where row 0 of each image goes (bottom, as in FITS viewers).
    fig : matplotlib Figure or None, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    axes : ndarray of matplotlib Axes, shape (n_queries, 1 + 2 * n_neighbors)
        Column 0 holds the queries, then the nearest, then the farthest images.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.plotting import plot_retrieval
    >>> images = np.random.default_rng(0).gamma(1.0, size=(12, 16, 16))
    >>> Z = images.reshape(12, -1)[:, :3]
    >>> axes = plot_retrieval(images, Z, queries=[0, 5], n_neighbors=2)
    >>> axes.shape
    (2, 5)
    """
    images = as_nchw(images)
    n = len(images)
    Z = embedding.transform(images) if hasattr(embedding, "transform") else embedding
    Z = np.asarray(Z)
    if Z.ndim != 2 or len(Z) != n:
        raise ValueError(
            f"embedding must have one row per image: got shape {Z.shape} for {n} images"
        )
    queries = np.atleast_1d(np.asarray(queries))
    if queries.dtype.kind not in "iu" or queries.ndim != 1:
        raise ValueError(f"queries must be an index or a sequence of indices, got {queries!r}")
    if ((queries < -n) | (queries >= n)).any():
        raise ValueError(f"query indices must lie in [-{n}, {n - 1}], got {queries.tolist()}")
    queries = queries % n
    if not isinstance(n_neighbors, numbers.Integral) or not 1 <= n_neighbors <= (n - 1) // 2:
        raise ValueError(
            f"n_neighbors must be an int in [1, {(n - 1) // 2}] for {n} images (the nearest "
            f"and the farthest images are distinct), got {n_neighbors!r}"
        )
    distances = pairwise_distances(Z[queries], Z, metric=metric)

    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(
            figsize=(1.1 * (1 + 2 * n_neighbors) + 0.4, 1.3 * len(queries)), layout="constrained"
        )
    axes = fig.subplots(len(queries), 1 + 2 * n_neighbors, squeeze=False)
    for row, query, dist in zip(axes, queries, distances):
        others = np.delete(np.arange(n), query)
        order = others[np.argsort(dist[others], kind="stable")]
        shown = [query, *order[:n_neighbors], *order[-n_neighbors:]]
        for col, (ax, index) in enumerate(zip(row, shown)):
            ax.imshow(
                _display_array(images[index], band, stretch, percentile=_PER_IMAGE_LIMITS),
                cmap=cmap,
                vmin=0,
                vmax=1,
                origin=origin,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if col:
                ax.set_title(f"d={dist[index]:.3g}", fontsize="small")
        row[0].set_ylabel(f"query {query}")
        for spine in row[0].spines.values():
            spine.set_edgecolor("tab:red")
            spine.set_linewidth(2)
    axes[0, 0].set_title("query", fontsize="small")
    axes[0, 1].set_title(f"nearest\n{axes[0, 1].get_title()}", fontsize="small")
    axes[0, -1].set_title(f"farthest\n{axes[0, -1].get_title()}", fontsize="small")
    return axes
