"""Open the latent space explorer on a set of images.

``skastro explore DATA [--model M] [--metadata CSV] [--port P]`` reads DATA with the loader its
kind calls for, embeds it with the fitted model M (the raw pixels without one) and serves the
explorer on http://127.0.0.1:P/ until Ctrl+C; ``--save-html PATH`` writes a shareable,
self-contained HTML file instead (an existing one is replaced only with ``--overwrite``).
Unreadable files are all named in one error line (or skipped with ``--skip-bad``).
"""

# All that lives here is reading the inputs; the rest is Explorer.

import os
import sys
from pathlib import Path

import numpy as np

from skastro.commands._data import add_data_arguments, describe_error
from skastro.commands._errors import CommandError, reports_errors
from skastro.commands._output import check_output_file

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
        help="fitted model that embeds the images: a folder saved by `skastro fit` or a "
        "joblib file; without it the raw pixels are the embedding",
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
    add_data_arguments(parser)
    parser.add_argument(
        "--save-html",
        metavar="PATH",
        help="write a self-contained HTML file of the default view and exit without serving",
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
    for column in frame.columns:
        if str(column).lower() not in _ID_COLUMNS:
            continue
        keys = frame[column].astype(str)
        if set(ids) <= set(keys):
            return (
                frame.drop_duplicates(subset=column).set_index(keys).loc[ids].reset_index(drop=True)
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


def build_explorer(args):
    """The :class:`Explorer` that parsed ``explore`` arguments describe."""
    import pandas as pd

    from skastro.datasets import open_data
    from skastro.explorer import Explorer

    def report(line):
        print(line, file=sys.stderr)

    bunch = open_data(
        args.data, key=args.key, id_key=args.id_key, skip_bad=args.skip_bad, report=report
    )
    images = bunch["images"]
    ids = bunch.get("ids")
    if ids is None:
        ids = bunch.get("filenames")
    labels, metadata = labels_and_metadata(bunch, len(images))
    if getattr(args, "metadata", None):
        extra = align_metadata(
            pd.read_csv(args.metadata), ids if ids is not None else range(len(images))
        )
        if metadata is not None:
            # The id column the rows were matched on is already there: keep one copy.
            same = [
                c for c in extra.columns if c in metadata and _same_values(metadata[c], extra[c])
            ]
            extra = extra.drop(columns=same)
        metadata = extra if metadata is None else metadata.join(extra, rsuffix=" (csv)")
    estimator = load_model(args.model) if getattr(args, "model", None) else None
    return Explorer(
        images,
        estimator=estimator,
        metadata=metadata,
        labels=labels,
        ids=ids,
        band_names=bunch.get("band_names"),
    )


@reports_errors("explore")
def run(args):
    """Run ``skastro explore`` with parsed arguments; return the exit status.

    Serves the explorer until interrupted, or with ``--save-html`` writes the HTML file and
    returns. Unreadable inputs print one error line and return 2.
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
        if save_html:
            # written beside the target and renamed: an existing file stays whole on failure
            path = Path(save_html)
            partial = path.with_name(f".{path.name}.partial")
            try:
                explorer.save_html(partial)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            print(f"wrote {os.path.abspath(path)}")
            return 0
    except (DataLoadError, ModelFormatError, FileNotFoundError, KeyError, ValueError) as exc:
        raise CommandError(describe_error(exc, args.skip_bad), status=2) from exc
    try:
        explorer.serve(host=args.host, port=args.port)
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc}", status=2) from exc
    return 0
