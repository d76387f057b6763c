"""Small intersphinx inventories for building this site offline, written from the table below.

An intersphinx inventory (``objects.inv``) maps object names to pages of a project's site.
With network access, ``offline_intersphinx`` uses each project's real inventory; without it
(developer and CI machines here), this table keeps the links that the user guide and the
docstrings make to scikit-learn, skorch, PyTorch, escnn, astropy, hdbscan, UMAP, numpy and
matplotlib working. It lists only names this site refers to, each with the page of that
project's site that documents it, as those sites were laid out when the table was written (a
moved anchor still opens the right page; a moved page is found by a build with network, which
uses the real inventories). A name that is not listed renders as plain code, as without any
inventory. Add a line here when a page starts referring to a new external name.
"""

import zlib
from pathlib import Path

# Where each name is documented, relative to the project's URL in conf.py's
# intersphinx_mapping. "{}" stands for the name itself.
_SKLEARN_PAGE = "modules/generated/{}.html#{}"
_NUMPY_PAGE = "reference/generated/{}.html#{}"
_TORCH_PAGE = "generated/{}.html#{}"

# project -> [(name, role, uri)]
ENTRIES = {
    "sklearn": [
        (name, role, _SKLEARN_PAGE)
        for name, role in [
            ("sklearn.base.clone", "function"),
            ("sklearn.cluster.KMeans", "class"),
            ("sklearn.cluster.MiniBatchKMeans", "class"),
            ("sklearn.cluster.SpectralClustering", "class"),
            ("sklearn.decomposition.PCA", "class"),
            ("sklearn.ensemble.IsolationForest", "class"),
            ("sklearn.exceptions.NotFittedError", "exception"),
            ("sklearn.exceptions.UndefinedMetricWarning", "exception"),
            ("sklearn.frozen.FrozenEstimator", "class"),
            ("sklearn.linear_model.LogisticRegression", "class"),
            ("sklearn.manifold.Isomap", "class"),
            ("sklearn.manifold.TSNE", "class"),
            ("sklearn.metrics.pairwise_distances", "function"),
            ("sklearn.metrics.roc_auc_score", "function"),
            ("sklearn.metrics.roc_curve", "function"),
            ("sklearn.metrics.silhouette_score", "function"),
            ("sklearn.model_selection.GridSearchCV", "class"),
            ("sklearn.model_selection.cross_val_score", "function"),
            ("sklearn.neighbors.LocalOutlierFactor", "class"),
            ("sklearn.neighbors.NearestNeighbors", "class"),
            ("sklearn.pipeline.Pipeline", "class"),
            ("sklearn.pipeline.make_pipeline", "function"),
            ("sklearn.preprocessing.StandardScaler", "class"),
            ("sklearn.utils.Bunch", "class"),
        ]
    ],
    "skorch": [
        ("skorch.NeuralNet", "class", "net.html#skorch.net.NeuralNet"),
        ("skorch.net.NeuralNet", "class", "net.html#{}"),
        ("skorch.history.History", "class", "history.html#{}"),
        ("skorch.callbacks.Checkpoint", "class", "callbacks.html#{}"),
        ("skorch.callbacks.EpochScoring", "class", "callbacks.html#{}"),
    ],
    "torch": [
        ("torch.nn.Module", "class", _TORCH_PAGE),
        ("torch.load", "function", _TORCH_PAGE),
        ("torch.Tensor", "class", "tensors.html#{}"),
    ],
    "escnn": [
        ("escnn.nn.R2Conv", "class", "api/escnn.nn.html#{}"),
        ("escnn.nn.GroupPooling", "class", "api/escnn.nn.html#{}"),
        ("escnn.nn.EquivariantModule", "class", "api/escnn.nn.html#{}"),
        ("escnn.gspaces.flipRot2dOnR2", "function", "api/escnn.gspaces.html#{}"),
        ("escnn.gspaces.rot2dOnR2", "function", "api/escnn.gspaces.html#{}"),
    ],
    "astropy": [
        ("astropy.io.fits.open", "function", "io/fits/api/files.html#{}"),
        ("astropy.io.fits.Header", "class", "io/fits/api/headers.html#{}"),
    ],
    "hdbscan": [
        ("hdbscan.HDBSCAN", "class", "api.html#hdbscan.hdbscan_.HDBSCAN"),
        (
            "hdbscan.approximate_predict",
            "function",
            "api.html#hdbscan.prediction.approximate_predict",
        ),
    ],
    "umap": [
        ("umap.UMAP", "class", "api.html#umap.umap_.UMAP"),
    ],
    "numpy": [
        ("numpy.memmap", "class", _NUMPY_PAGE),
        ("numpy.reshape", "function", _NUMPY_PAGE),
    ],
    "matplotlib": [
        ("matplotlib.axes.Axes", "class", "api/axes_api.html#{}"),
        ("matplotlib.axes.Axes.scatter", "method", "api/_as_gen/{}.html#{}"),
        ("matplotlib.figure.Figure", "class", "api/_as_gen/{}.html#{}"),
    ],
}


def write_inventory(project, out_dir):
    """Write ``<out_dir>/<project>.inv`` from :data:`ENTRIES`; return its path, or None."""
    entries = ENTRIES.get(project)
    if not entries:
        return None
    lines = [
        f"{name} py:{role} 1 {uri.format(name, name)} -\n" for name, role, uri in sorted(entries)
    ]
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: \n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{project}.inv"
    path.write_bytes(header.encode() + zlib.compress("".join(lines).encode()))
    return path
