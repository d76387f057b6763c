"""Images: one image, originals next to reconstructions, examples per cluster."""

import numpy as np
from sklearn.utils import check_random_state

from skastro._images import as_nchw
from skastro.plotting._common import (
    _display_array,
    _is_noise,
    _new_axes,
    _new_figure,
    _show,
)


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
    image = as_nchw(image[None])[0] if image.ndim in (1, 2) else image
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (H, W) or (C, H, W), got {image.shape}")
    ax = _new_axes(ax)
    _show(ax, _display_array(image, band, stretch, percentile), cmap, origin)
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
    originals, reconstructions = as_nchw(X[:n]), as_nchw(X_rec[:n])
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
    images = as_nchw(images)
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
