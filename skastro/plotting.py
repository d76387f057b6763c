"""Matplotlib figures for embeddings, reconstructions, clusters, training curves and ROC.

Every function takes data or a fitted estimator, draws on the ``ax`` (or ``fig``) it is given
or on a new pyplot figure, and returns the axes (or figure). matplotlib is imported inside
the functions, so ``import skastro`` does not need it, and nothing here selects a backend:
on a machine without a display matplotlib falls back to its non-interactive Agg backend.

Images are shown through :class:`~skastro.preprocessing.ImageScaler`, by default with the
asinh stretch astronomers use for galaxies.
"""

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from skastro.metrics import _images_nchw
from skastro.preprocessing import ImageScaler

__all__ = [
    "plot_cluster_examples",
    "plot_embedding",
    "plot_history",
    "plot_image",
    "plot_reconstructions",
    "plot_retrieval",
    "plot_roc",
]

_NOISE_COLOR = "0.7"


def _new_axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _new_figure(fig, figsize):
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _display_array(image, band, stretch, percentile, reference=None):
    """A (C, H, W) image as a 2-D (one band) or (H, W, 3) (three bands) array in [0, 1].

    With ``reference`` the limits come from that image, so a reconstruction is shown on the
    same scale as its original.
    """
    bands = [band] if isinstance(band, numbers.Integral) else list(band)
    if len(bands) not in (1, 3):
        raise ValueError(f"band must be one channel index or three (RGB), got {band!r}")
    scaler = ImageScaler(stretch, percentile=percentile, per_image=False)
    scaler.fit((image if reference is None else reference)[bands][None])
    shown = scaler.transform(image[bands][None])[0]
    return shown[0] if len(bands) == 1 else np.moveaxis(shown, 0, -1)


def _show(ax, shown, cmap, origin="lower"):
    ax.imshow(shown, cmap=cmap, vmin=0, vmax=1, origin=origin, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image(
    image,
    *,
    stretch="asinh",
    band=0,
    percentile=(0.5, 99.5),
    cmap="gray",
    origin="lower",
    title=None,
    ax=None,
):
    """Display one astronomical image with an asinh (or other) stretch.

    Parameters
    ----------
    image : array-like of shape (H, W), (C, H, W) or (F,) with F a square
        The image, channels first.
    stretch : {"asinh", "log", "linear", "sqrt"}, default="asinh"
        Stretch of :class:`~skastro.preprocessing.ImageScaler`.
    band : int or tuple of three ints, default=0
        Channel to show, or three channels shown as red, green and blue.
    percentile : tuple of two floats or None, default=(0.5, 99.5)
        Clip limits, as in :class:`~skastro.preprocessing.ImageScaler`.
    cmap : str, default="gray"
        Colour map of a single band.
    origin : {"lower", "upper"}, default="lower"
        Where row 0 goes: at the bottom as in FITS viewers (every skastro image grid draws
        it so), or at the top as in PNG/JPEG files.
    title : str or None, default=None
        Axes title.
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    ax : matplotlib Axes
        The axes, holding one image.

    Examples
    --------
    >>> import numpy as np
    >>> ax = plot_image(np.random.default_rng(0).gamma(1.0, size=(16, 16)))
    >>> len(ax.images)
    1
    """
    image = np.asarray(image)
    image = _images_nchw(image[None], None)[0] if image.ndim in (1, 2) else image
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (H, W) or (C, H, W), got {image.shape}")
    ax = _new_axes(ax)
    _show(ax, _display_array(image, band, stretch, percentile), cmap, origin)
    if title is not None:
        ax.set_title(title)
    return ax


def _reduce_to_2d(Z, method, random_state):
    if hasattr(method, "fit_transform"):
        return np.asarray(clone(method).fit_transform(Z))
    n = len(Z)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(Z)
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


def _label_colors(n_labels):
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n_labels <= 10 else "tab20" if n_labels <= 20 else "turbo"]
    if n_labels <= 20:
        return [cmap(i) for i in range(n_labels)]
    return [cmap(x) for x in np.linspace(0, 1, n_labels)]


def _is_noise(labels):
    return labels < 0 if labels.dtype.kind in "iuf" else np.zeros(len(labels), dtype=bool)


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


def plot_reconstructions(
    X, X_rec=None, *, estimator=None, n=8, stretch="asinh", band=0, cmap="gray", fig=None
):
    """Originals (top row) over their reconstructions (bottom row).

    Each reconstruction is shown with the clip limits of its original, so differences in
    brightness are visible.

    Parameters
    ----------
    X : array-like of shape (n_images, H, W), (n_images, C, H, W) or (n_images, F)
        Original images (flat ones need a square F).
    X_rec : array-like of the same shape or None, default=None
        Reconstructions of ``X``; if None they come from ``estimator.reconstruct(X[:n])``.
    estimator : fitted estimator with ``reconstruct`` or None, default=None
        Used when ``X_rec`` is None.
    n : int, default=8
        Number of images shown (the first ``n``).
    stretch : {"asinh", "log", "linear", "sqrt"}, default="asinh"
        Display stretch.
    band : int or tuple of three ints, default=0
        Channel shown, or three channels as RGB.
    cmap : str, default="gray"
        Colour map of a single band.
    fig : matplotlib Figure or None, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    fig : matplotlib Figure
        The figure, with a 2 x n grid of image axes.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).gamma(1.0, size=(3, 16, 16))
    >>> fig = plot_reconstructions(X, 0.9 * X, n=3)
    >>> len(fig.axes)
    6
    """
    X = np.asarray(X)
    n = min(int(n), len(X))
    if X_rec is None:
        if estimator is None:
            raise ValueError("pass the reconstructions X_rec or a fitted estimator")
        X_rec = estimator.reconstruct(X[:n])
    X_rec = np.asarray(X_rec)
    if X_rec.shape[1:] != X.shape[1:] or len(X_rec) < n:
        raise ValueError(f"X_rec of shape {X_rec.shape} does not match X of shape {X.shape}")
    originals, reconstructions = _images_nchw(X[:n], None), _images_nchw(X_rec[:n], None)
    fig = _new_figure(fig, (1.2 * n, 2.6))
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        _show(axes[0, i], _display_array(originals[i], band, stretch, (0.5, 99.5)), cmap)
        shown = _display_array(reconstructions[i], band, stretch, (0.5, 99.5), originals[i])
        _show(axes[1, i], shown, cmap)
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    return fig


def plot_cluster_examples(
    images,
    labels,
    *,
    n_per_cluster=8,
    stretch="asinh",
    band=0,
    random_state=0,
    cmap="gray",
    fig=None,
):
    """A grid of example images, one row per cluster (noise last).

    Parameters
    ----------
    images : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
        The clustered images (flat ones need a square F).
    labels : array-like of shape (n,)
        Cluster labels; negative labels are noise and get the last row.
    n_per_cluster : int, default=8
        Images per row, drawn at random (without replacement) from the cluster; a smaller
        cluster leaves empty cells.
    stretch : {"asinh", "log", "linear", "sqrt"}, default="asinh"
        Display stretch.
    band : int or tuple of three ints, default=0
        Channel shown, or three channels as RGB.
    random_state : int, RandomState instance or None, default=0
        Seed of the choice of examples.
    cmap : str, default="gray"
        Colour map of a single band.
    fig : matplotlib Figure or None, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    fig : matplotlib Figure
        The figure, with a (n_clusters) x ``n_per_cluster`` grid of axes.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).gamma(1.0, size=(10, 16, 16))
    >>> fig = plot_cluster_examples(images, [0] * 6 + [1] * 4, n_per_cluster=3)
    >>> sum(len(ax.images) for ax in fig.axes)
    6
    """
    images = _images_nchw(np.asarray(images), None)
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"expected {len(images)} labels, got an array of shape {labels.shape}")
    noise = _is_noise(labels)
    rows = [(str(cluster), labels == cluster) for cluster in np.unique(labels[~noise])]
    if noise.any():
        rows.append(("noise", noise))
    if not rows:
        raise ValueError("no labels to show")
    rng = check_random_state(random_state)
    fig = _new_figure(fig, (1.2 * n_per_cluster, 1.3 * len(rows)))
    axes = fig.subplots(len(rows), n_per_cluster, squeeze=False)
    for row, (name, members) in zip(axes, rows):
        indices = np.flatnonzero(members)
        chosen = rng.choice(indices, min(n_per_cluster, len(indices)), replace=False)
        for ax, index in zip(row, np.sort(chosen)):
            _show(ax, _display_array(images[index], band, stretch, (0.5, 99.5)), cmap)
        for ax in row[len(chosen) :]:
            ax.axis("off")
        row[0].set_ylabel(name if name == "noise" else f"cluster {name}\n({len(indices)})")
    return fig


def _history_rows(history_or_estimator):
    history = history_or_estimator
    if hasattr(history, "history_"):
        history = history.history_
    elif hasattr(history, "history") and not isinstance(history, list):
        history = history.history  # a skorch NeuralNet
    rows = list(history)
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ValueError("expected a non-empty history: a list of dicts, one per epoch")
    return rows


def plot_history(history_or_estimator, *, keys=None, ax=None, log=False):
    """Loss terms per epoch, one line each.

    Parameters
    ----------
    history_or_estimator : skorch History, list of dict, or estimator
        The training history (one dict per epoch, e.g.
        ``[{"epoch": 1, "train_loss": 0.3, "loss_mse": 0.2}, ...]``), or an estimator whose
        ``history_`` (or skorch ``history``) holds it.
    keys : list of str or None, default=None
        Entries to draw. None: ``train_loss``, ``valid_loss`` when recorded, and every entry
        whose name starts with ``loss_`` (the loss terms skastro's estimators log).
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure if None.
    log : bool, default=False
        Logarithmic loss axis.

    Returns
    -------
    ax : matplotlib Axes
        The axes, with one line per key.

    Examples
    --------
    >>> history = [{"epoch": 1, "train_loss": 1.0, "loss_mse": 0.6},
    ...            {"epoch": 2, "train_loss": 0.5, "loss_mse": 0.3}]
    >>> ax = plot_history(history)
    >>> [line.get_label() for line in ax.lines]
    ['train_loss', 'loss_mse']
    """
    rows = _history_rows(history_or_estimator)
    recorded = list(dict.fromkeys(key for row in rows for key in row))
    if keys is None:
        keys = [key for key in ("train_loss", "valid_loss") if key in recorded]
        keys += [key for key in recorded if key.startswith("loss_")]
        if not keys:
            raise ValueError(f"no loss in the history; recorded entries: {recorded}")
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        missing = [key for key in keys if key not in recorded]
        if missing:
            raise ValueError(f"{missing} not in the history; recorded entries: {recorded}")
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(rows)]
    ax = _new_axes(ax)
    for key in keys:
        values = [row.get(key) for row in rows]
        values = [v if isinstance(v, numbers.Real) else np.nan for v in values]
        ax.plot(epochs, values, marker=".", label=key)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.25
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax


def plot_roc(y_true, scores, *, pos_label=None, ax=None):
    """ROC curves of one or several scores, with their AUC in the legend.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True binary labels.
    scores : array-like of shape (n,) or dict of {str: array-like}
        Scores (higher = more positive), or several named ones to compare, e.g.
        ``{"VAE": ..., "CondVAE": ...}``.
    pos_label : int, str or None, default=None
        The positive class, as in :func:`sklearn.metrics.roc_curve`.
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    ax : matplotlib Axes
        The axes: one line per curve plus the dashed chance diagonal.

    Examples
    --------
    >>> ax = plot_roc([0, 0, 1, 1], {"model": [0.1, 0.4, 0.35, 0.8]})
    >>> ax.get_legend().get_texts()[0].get_text()
    'model (AUC = 0.750)'
    """
    from sklearn.metrics import auc, roc_curve

    if not isinstance(scores, dict):
        scores = {None: scores}
    ax = _new_axes(ax)
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(y_true, np.asarray(values), pos_label=pos_label)
        area = f"AUC = {auc(fpr, tpr):.3f}"
        ax.plot(fpr, tpr, label=area if name is None else f"{name} ({area})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    return ax


# A query with its nearest and farthest images; it lives in its own module (it needs
# pairwise distances, the other plots do not) and is part of this public namespace.
from skastro.plotting_retrieval import plot_retrieval  # noqa: E402
