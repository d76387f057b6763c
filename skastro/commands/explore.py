"""Open the latent space explorer on a set of images.

``skastro explore DATA [--model M ...] [--metadata CSV] [--port P]`` reads DATA with the loader
its kind calls for, embeds it with each fitted model M (the raw pixels without one; repeat
--model to compare several) and serves the explorer on http://127.0.0.1:P/ until Ctrl+C;
``--save-html PATH`` writes a shareable, self-contained HTML file of the view chosen by
--projection, --dims and --clustering (one plot per model, side by side) instead. A model
fitted with ``skastro fit --stretch`` sees its images stretched the same way. The labels given
in the app are saved to ``<DATA>.labels.csv`` beside the data (or --labels). An existing HTML
file is replaced only with ``--overwrite``; unreadable files are all named in one error line
(or skipped with ``--skip-bad``).
"""

# All that lives here is reading the inputs; the rest is Explorer.

import os
import sys
from pathlib import Path

import numpy as np

from skastro.commands._data import add_data_arguments, data_options, describe_error
from skastro.commands._errors import CommandError, reports_errors
from skastro.commands._output import check_output_file
from skastro.commands._preprocessing import add_stretch_argument

PROJECTIONS = ("pca", "tsne", "umap", "none")
CLUSTERINGS = ("none", "kmeans", "hdbscan", "spectral")

# Metadata columns that may hold the images' ids, tried in this order to align rows by id.
_ID_COLUMNS = ("id", "ids", "objid", "object_id", "identifier", "filename", "name")


def add_arguments(parser):
    """Add the ``explore`` subcommand's arguments to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument(
        "data",
        metavar="DATA",
        help="images: a FITS file or folder, an SDSS-style .npy, a folder of PNG/JPEG files, "
        "or an HDF5 file (with --key)",
    )
    parser.add_argument(
        "--model",
        metavar="M",
        action="append",
        help="fitted model that embeds the images: a folder saved by `skastro fit` or a "
        "joblib file; repeat to compare several models; without it the raw pixels are the "
        "embedding",
    )
    parser.add_argument(
        "--metadata",
        metavar="CSV",
        help="CSV with one row per image (in order, or with an id column matching the ids)",
    )
    parser.add_argument("--port", type=int, default=8050, help="port to serve on (default 8050)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1, this machine only; the app has no "
        "authentication)",
    )
    add_stretch_argument(parser, saved_default=True)
    add_data_arguments(parser)
    parser.add_argument(
        "--labels",
        metavar="CSV",
        help="file the labels given in the app are saved to and read from (default: "
        "<DATA>.labels.csv beside the data)",
    )
    view = parser.add_argument_group(
        "the view opened (and exported by --save-html)",
    )
    view.add_argument("--projection", choices=PROJECTIONS, default=None, help="default: PCA")
    view.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2-D or 3-D")
    view.add_argument("--clustering", choices=CLUSTERINGS, default="none")
    view.add_argument("--n-clusters", type=int, default=8, help="kmeans and spectral")
    view.add_argument(
        "--min-cluster-size", type=int, default=None, help="hdbscan (default: from the data size)"
    )
    view.add_argument(
        "--color-by",
        metavar="COLUMN",
        default=None,
        help="colouring of the export: cluster, label, or a metadata column name",
    )
    parser.add_argument(
        "--save-html",
        metavar="PATH",
        help="write a self-contained HTML file of the chosen view (one plot per model) and "
        "exit without serving",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the --save-html file if it exists"
    )
    return parser


def load_model(path):
    """A fitted model from a folder saved by the CLI (``skastro.load``) or a joblib file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model: {path}")
    if path.is_dir():
        from skastro import load

        return load(path)
    import joblib

    return joblib.load(path)


def align_metadata(frame, ids):
    """Rows of ``frame`` in the images' order: matched on an id column when one holds
    every id, else taken in order when the row count matches.
    """
    ids = [str(i) for i in ids]
    unmatched = None
    for column in frame.columns:
        if str(column).lower() not in _ID_COLUMNS:
            continue
        keys = frame[column].astype(str)
        present = set(keys)
        if set(ids) <= present:
            return (
                frame.drop_duplicates(subset=column).set_index(keys).loc[ids].reset_index(drop=True)
            )
        unmatched = unmatched or (column, [i for i in ids if i not in present])
    if unmatched is not None:
        # rows taken in order would put one object's catalogue values on another's image
        column, missing = unmatched
        raise ValueError(
            f"the metadata's {column!r} column lacks {len(missing)} of the {len(ids)} image ids "
            f"(first: {', '.join(missing[:3])}); give it a row for every image"
        )
    if len(frame) == len(ids):
        return frame.reset_index(drop=True)
    raise ValueError(
        f"the metadata has {len(frame)} rows for {len(ids)} images and no id column "
        f"({', '.join(_ID_COLUMNS)}) that holds every image id"
    )


# Bunch entries that are not per-image metadata.
_NOT_METADATA = {"images", "target", "target_names", "ids", "filenames", "skipped", "DESCR",
                 "metadata", "frame", "band_names", "class_names"}  # fmt: skip


def labels_and_metadata(bunch, n_images):
    """Labels (class names when the loader gives them) and a metadata table from a Bunch.

    Every other 1-D entry with one value per image (``objID``, ``z``, ...) becomes a metadata
    column, after the loader's own ``metadata`` table if it has one.
    """
    import pandas as pd

    labels = bunch.get("class_names")
    target = bunch.get("target")
    if labels is None and target is not None:
        labels = np.asarray(target)
        names = bunch.get("target_names")
        if names is not None and labels.dtype.kind in "iu":
            labels = np.asarray(names)[labels]
    metadata = bunch.get("metadata")
    metadata = None if metadata is None else pd.DataFrame(metadata).reset_index(drop=True)
    columns = {}
    for key, value in bunch.items():
        if key in _NOT_METADATA or isinstance(value, str | bytes) or not hasattr(value, "__len__"):
            continue
        value = np.asarray(value)
        if value.ndim == 1 and len(value) == n_images:
            columns[key] = value
    if columns:
        extra = pd.DataFrame(columns)
        metadata = extra if metadata is None else metadata.join(extra, rsuffix=" (loader)")
    return labels, metadata


def _same_values(first, second):
    return (
        first.astype(str).reset_index(drop=True).equals(second.astype(str).reset_index(drop=True))
    )


def _models(args):
    """``{name: model}`` of every --model, each stretching its input as it was fitted."""
    from skastro.commands._preprocessing import StretchedModel, resolve_stretch

    models = {}
    for path in getattr(args, "model", None) or []:
        model = load_model(path)
        stretch = resolve_stretch(getattr(args, "stretch", None), path, "explore")
        # the folder (or file) name tells models of one class apart: "vicreg: VICRegEmbedder"
        name = f"{Path(path).stem if Path(path).is_file() else Path(path).name}: "
        name += type(model).__name__ + (f", {stretch}" if stretch is not None else "")
        if stretch is not None:
            model = StretchedModel(model, stretch)
        while name in models:
            name += "'"
        models[name] = model
    return models


class _Pixels:
    """The raw pixels as an embedding (what the explorer shows without a model)."""

    def transform(self, X):
        X = np.asarray(X, dtype=np.float32)
        return X.reshape(len(X), -1)


def build_explorer(args):
    """The :class:`Explorer` that parsed ``explore`` arguments describe."""

    from skastro.commands._preprocessing import NONE, StretchedModel
    from skastro.datasets import open_data
    from skastro.explorer import Explorer
    from skastro.explorer._labels import default_label_file

    def report(line):
        print(line, file=sys.stderr)

    bunch = open_data(args.data, report=report, **data_options(args))
    images = bunch["images"]
    ids = bunch.get("ids")
    if ids is None:
        ids = bunch.get("filenames")
    labels, metadata = labels_and_metadata(bunch, len(images))
    if getattr(args, "metadata", None):
        from skastro._embedding_files import read_csv_with_text_ids

        extra = align_metadata(
            read_csv_with_text_ids(args.metadata, lambda name: str(name).lower() in _ID_COLUMNS),
            ids if ids is not None else range(len(images)),
        )
        if metadata is not None:
            # The id column the rows were matched on is already there: keep one copy.
            same = [
                c for c in extra.columns if c in metadata and _same_values(metadata[c], extra[c])
            ]
            extra = extra.drop(columns=same)
        metadata = extra if metadata is None else metadata.join(extra, rsuffix=" (csv)")
    estimators = _models(args)
    stretch = getattr(args, "stretch", None)
    if not estimators and stretch not in (None, NONE):
        estimators = {f"pixels ({stretch})": StretchedModel(_Pixels(), stretch)}
    label_file = getattr(args, "labels", None) or default_label_file(args.data)
    return Explorer(
        images,
        estimator=estimators or None,
        metadata=metadata,
        labels=labels,
        ids=ids,
        band_names=bunch.get("band_names"),
        label_file=label_file,
    )


def view_settings(args, n_images):
    """The :meth:`Explorer.compute` settings that --projection, --dims and --clustering ask
    for; HDBSCAN's smallest cluster grows with the data (as in ``skastro cluster``)."""
    from skastro.commands.cluster import default_min_cluster_size

    settings = dict(n_dims=getattr(args, "dims", 2), clustering=getattr(args, "clustering", "none"))
    projection = getattr(args, "projection", None)
    if projection is not None:
        settings["projection"] = projection
    if settings["clustering"] in ("kmeans", "spectral"):
        settings["n_clusters"] = args.n_clusters
    if settings["clustering"] == "hdbscan":
        settings["min_cluster_size"] = args.min_cluster_size or default_min_cluster_size(n_images)
    return settings


def _color_by(explorer, view, wanted):
    """The colouring value for a --color-by name (a metadata column, cluster or label)."""
    if wanted is None:
        return None
    for value, label in explorer.color_options(view):
        if wanted in (value, label):
            return value
    names = ", ".join(label for _, label in explorer.color_options(view))
    raise CommandError(
        f"--color-by {wanted!r} is not a colouring of this view; choose {names}", status=2
    )


@reports_errors("explore")
def run(args):
    """Run ``skastro explore`` with parsed arguments; return the exit status.

    Serves the explorer until interrupted, or with ``--save-html`` writes the HTML file and
    returns. Unreadable data or models print one error line and return 1; a bad option, 2.
    """
    from skastro.exceptions import DataLoadError, ModelFormatError

    save_html = getattr(args, "save_html", None)
    if save_html:
        check_output_file(
            save_html, overwrite=getattr(args, "overwrite", False), flag="--save-html"
        )
    elif not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be in 0..65535, got {args.port}", status=2)
    try:
        explorer = build_explorer(args)
        settings = view_settings(args, len(explorer))
        if save_html:
            views = [explorer.compute(name, **settings) for name in explorer.embedding_names]
            color_by = _color_by(explorer, views[0], getattr(args, "color_by", None))
            # written beside the target and renamed: an existing file stays whole on failure
            path = Path(save_html)
            partial = path.with_name(f".{path.name}.partial")
            try:
                explorer.save_html(partial, views=views, color_by=color_by)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            print(f"wrote {os.path.abspath(path)}")
            return 0
    except (DataLoadError, ModelFormatError, FileNotFoundError, KeyError, ValueError) as exc:
        # the data, the model or the metadata (the options were checked above): status 1
        folder = Path(args.data).is_dir()
        raise CommandError(describe_error(exc, args.skip_bad, folder=folder), status=1) from exc
    try:
        # the view the app opens with: the first model's, as the options ask
        explorer.compute(explorer.embedding_names[0], **settings)
    except ValueError as exc:
        raise CommandError(str(exc), status=1) from exc
    if explorer.label_file is not None:
        print(f"labels you give in the app are saved to {explorer.label_file}")
    try:
        explorer.serve(host=args.host, port=args.port)
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc}", status=2) from exc
    return 0
