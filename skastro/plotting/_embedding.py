"""A 2-D scatter of an embedding, coloured by labels or clusters."""

import numpy as np
from sklearn.base import clone

from skastro._validation import check_spread
from skastro.plotting._common import _NOISE_COLOR, _is_noise, _label_colors, _new_axes


def _reduce_to_2d(Z, method, random_state):
    if hasattr(method, "fit_transform"):
        return np.asarray(clone(method).fit_transform(Z))
    n = len(Z)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(Z)
    check_spread(Z, method)
    if method == "tsne":
        from sklearn.manifold import TSNE

        # t-SNE needs perplexity < n; 30 is its usual value for larger sets
        perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=random_state).fit_transform(
            Z
        )
    if method == "umap":
        try:
            import umap
        except ImportError as exc:  # pragma: no cover - umap-learn is a dependency
            raise ImportError("method='umap' needs the umap-learn package") from exc
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=random_state)
        return np.asarray(reducer.fit_transform(Z))
    raise ValueError(f"method must be 'umap', 'tsne', 'pca', None or an estimator, got {method!r}")


def plot_embedding(
    Z,
    labels=None,
    *,
    method="umap",
    ax=None,
    random_state=0,
    title=None,
    legend=True,
    **scatter_kwargs,
):
    """Scatter plot of an embedding in 2-D, coloured by (cluster) labels.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The embedding, e.g. ``estimator.transform(X)``.
    labels : array-like of shape (n,) or None, default=None
        Cluster labels or classes; each gets its own colour and legend entry. Noise
        (negative labels, as from HDBSCAN) is drawn in grey, underneath.
    method : {"umap", "tsne", "pca"}, estimator or None, default="umap"
        How to bring ``Z`` down to two dimensions when it has more: UMAP, t-SNE, PCA, or any
        estimator with ``fit_transform`` (e.g. ``Isomap(n_components=2)``). A ``Z`` with two
        columns is drawn as it is whatever the method; ``None`` requires it.
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure if None.
    random_state : int, default=0
        Seed of UMAP, t-SNE and PCA, so the picture is reproducible.
    title : str or None, default=None
        Axes title.
    legend : bool, default=True
        Draw a legend when there are labels.
    **scatter_kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter` (e.g. ``s``, ``alpha``).

    Returns
    -------
    ax : matplotlib Axes
        The axes: one scatter collection per label (one in all without labels).

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.random.default_rng(0).normal(size=(30, 5))
    >>> ax = plot_embedding(Z, np.repeat([-1, 0, 1], 10), method="pca")
    >>> len(ax.collections)
    3
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise ValueError(f"Z must have shape (n, d) with d >= 2, got {Z.shape}")
    reduced_by = None
    if Z.shape[1] > 2:
        if method is None:
            raise ValueError(
                f"Z has {Z.shape[1]} columns: pass method='umap', 'tsne' or 'pca', or a 2-D Z"
            )
        Z = _reduce_to_2d(Z, method, random_state)
        reduced_by = method
    ax = _new_axes(ax)
    scatter_kwargs.setdefault("s", float(np.clip(3000 / len(Z), 2, 30)))
    if labels is None:
        ax.scatter(Z[:, 0], Z[:, 1], **scatter_kwargs)
    else:
        labels = np.asarray(labels)
        if labels.shape != (len(Z),):
            raise ValueError(f"expected {len(Z)} labels, got an array of shape {labels.shape}")
        noise = _is_noise(labels)
        if noise.any():
            ax.scatter(*Z[noise].T, color=_NOISE_COLOR, label="noise", **scatter_kwargs)
        clusters = np.unique(labels[~noise])
        for cluster, color in zip(clusters, _label_colors(len(clusters))):
            ax.scatter(*Z[labels == cluster].T, color=color, label=str(cluster), **scatter_kwargs)
        if legend:
            ax.legend(markerscale=2, fontsize="small", loc="best")
    names = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}
    name = names.get(reduced_by, "dim") if isinstance(reduced_by, str) else "dim"
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    if title is not None:
        ax.set_title(title)
    return ax
