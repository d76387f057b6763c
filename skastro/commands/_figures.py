"""PNG figures the commands write beside their results (``fit``, ``cluster``, ``demo``).

A figure is a by-product: failing to draw one prints a note and never fails the command.
"""

import sys
from pathlib import Path

import numpy as np

__all__ = ["FIT_FIGURES", "save_figure", "write_cluster_figures", "write_fit_figures"]

# what `skastro fit` draws into a model folder (a new fit replaces them with the model)
FIT_FIGURES = ("history.png", "reconstructions.png")

# images drawn per row of the reconstructions and cluster-example figures
N_EXAMPLES = 8
# points drawn in a cluster scatter: beyond this, a random sample (the labels file has all)
MAX_SCATTER_POINTS = 20000


def save_figure(draw, path, command):
    """Call ``draw()`` (a skastro.plotting call), save its figure to ``path``; True on success."""
    import matplotlib

    matplotlib.use("Agg")  # file output only; a command never needs a display
    import matplotlib.pyplot as plt

    try:
        result = draw()
        figure = result.get_figure() if hasattr(result, "get_figure") else result
        figure = getattr(figure, "figure", figure)
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        return True
    except Exception as exc:  # a figure must never cost the user their result
        plt.close("all")
        print(f"skastro {command}: note: could not draw {Path(path).name}: {exc}", file=sys.stderr)
        return False


def write_fit_figures(estimator, images, folder):
    """``history.png`` (the loss terms per epoch) and, for a model that reconstructs,
    ``reconstructions.png`` (the first images over their reconstructions). Returns the names
    written."""
    from skastro import plotting

    folder = Path(folder)
    written = []
    if getattr(estimator, "history_", None):
        if save_figure(lambda: plotting.plot_history(estimator), folder / "history.png", "fit"):
            written.append("history.png")
    if callable(getattr(estimator, "reconstruct", None)):
        sample = np.asarray(images[: min(N_EXAMPLES, len(images))], dtype=np.float32)
        if save_figure(
            lambda: plotting.plot_reconstructions(sample, estimator=estimator, n=len(sample)),
            folder / "reconstructions.png",
            "fit",
        ):
            written.append("reconstructions.png")
    return written


def cluster_figure_paths(out):
    """The figures ``skastro cluster --out OUT`` draws: ``<OUT>_scatter.png`` and
    ``<OUT>_examples.png``."""
    out = Path(out)
    return [out.with_name(out.stem + f"_{name}.png") for name in ("scatter", "examples")]


def write_cluster_figures(Z, labels, out, images=None, random_state=0):
    """``<out>_scatter.png`` (the embedding in 2-D by PCA, coloured by cluster) and, given
    the images, ``<out>_examples.png`` (examples of each cluster). Returns the paths written.
    """
    from skastro import plotting

    out = Path(out)
    written = []
    index = np.arange(len(Z))
    if len(Z) > MAX_SCATTER_POINTS:
        rng = np.random.default_rng(random_state)
        index = np.sort(rng.choice(len(Z), MAX_SCATTER_POINTS, replace=False))
    scatter, examples = cluster_figure_paths(out)
    n_clusters = len(np.unique(labels[labels >= 0]))
    title = f"{n_clusters} clusters" + (
        f", {int((labels < 0).sum())} noise points" if (labels < 0).any() else ""
    )
    if Z.shape[1] >= 2 and save_figure(
        lambda: plotting.plot_embedding(
            Z[index],
            labels[index],
            method="pca" if Z.shape[1] > 2 else None,
            random_state=random_state,
            title=f"{title} (PCA of the embedding)",
            legend=n_clusters <= 20,
        ),
        scatter,
        "cluster",
    ):
        written.append(scatter)
    if images is not None:
        shown = _examples_to_show(labels)
        if save_figure(
            lambda: plotting.plot_cluster_examples(
                _read_rows(images, shown), labels[shown], n_per_cluster=N_EXAMPLES
            ),
            examples,
            "cluster",
        ):
            written.append(examples)
    return written


# at most this many rows of examples (the largest clusters, then noise)
_MAX_EXAMPLE_ROWS = 12


def _examples_to_show(labels, random_state=0):
    """Indices of up to N_EXAMPLES images of each of the largest clusters (and of noise)."""
    rng = np.random.default_rng(random_state)
    clusters = np.unique(labels[labels >= 0])
    sizes = np.array([(labels == c).sum() for c in clusters])
    keep = list(clusters[np.argsort(-sizes, kind="stable")][:_MAX_EXAMPLE_ROWS])
    if (labels < 0).any():
        keep.append(-1)
    chosen = []
    for cluster in keep:
        members = np.flatnonzero(labels == cluster if cluster >= 0 else labels < 0)
        chosen.append(rng.choice(members, min(N_EXAMPLES, len(members)), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, int)


def _read_rows(images, index):
    """The chosen images read into memory (a lazy array is read only at those rows)."""
    return np.stack([np.asarray(images[int(i)], dtype=np.float32) for i in index])
