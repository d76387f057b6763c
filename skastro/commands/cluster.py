"""Cluster saved embeddings and write one label per image, with silhouette and DBCV printed.

Example: skastro cluster embeddings.npz --method hdbscan --min-cluster-size 20 --out labels.csv.
EMBEDDINGS is a file written by skastro embed (.npz, .npy with its .ids.txt, .parquet or
.csv). The labels file has the columns id,label; HDBSCAN marks noise with -1. Silhouette and
DBCV are computed on the clustered points (noise left out), on a random sample of at most
--score-sample points. HDBSCAN's smallest cluster defaults to a size that grows with the
number of points (default_min_cluster_size); when every point comes out as noise, the command
says what to try. The clusters are drawn to <OUT>_scatter.png and, given --images, examples
of each cluster to <OUT>_examples.png.
"""

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from skastro.commands._data import add_data_arguments

METHODS = ("hdbscan", "kmeans", "spectral")


def add_arguments(parser):
    """Add the ``cluster`` options to ``parser``."""
    parser.add_argument("embeddings", metavar="EMBEDDINGS", help="a file written by skastro embed")
    parser.add_argument("--method", choices=METHODS, default="hdbscan", help="clustering method")
    parser.add_argument("--out", required=True, help="labels file to write (.csv)")
    parser.add_argument(
        "--n-clusters", type=int, default=8, help="clusters for kmeans and spectral (default 8)"
    )
    parser.add_argument(
        "--min-cluster-size",
        type=int,
        default=None,
        help="hdbscan: smallest cluster size (default: about the square root of the number "
        "of points, at least 5)",
    )
    parser.add_argument("--min-samples", type=int, default=None, help="hdbscan: min_samples")
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="scale every embedding component to zero mean and unit variance first",
    )
    parser.add_argument("--random-state", type=int, default=0, help="seed (kmeans, spectral)")
    parser.add_argument(
        "--score-sample",
        type=int,
        default=5000,
        help="points used to compute silhouette and DBCV (default 5000)",
    )
    parser.add_argument(
        "--images",
        metavar="DATA",
        default=None,
        help="the images the embeddings came from (as for skastro embed), to draw examples of "
        "each cluster",
    )
    parser.add_argument("--no-plots", action="store_true", help="write no figures")
    add_data_arguments(parser)


def _error(message):
    print(f"skastro cluster: error: {message}", file=sys.stderr)


def read_embeddings(path):
    """Read embeddings and their ids from a file written by ``skastro embed``.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` (``embeddings`` and ``ids``), ``.npy`` (ids from ``<name>.ids.txt`` when
        present, else row numbers), ``.parquet`` or ``.csv`` (an ``id`` column, the rest are
        components).

    Returns
    -------
    Z : ndarray of shape (n, d), float32
    ids : ndarray of shape (n,)

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "z.npz")
    >>> np.savez(path, embeddings=np.zeros((3, 2), np.float32), ids=np.array(["a", "b", "c"]))
    >>> Z, ids = read_embeddings(path)
    >>> Z.shape, ids.tolist()
    ((3, 2), ['a', 'b', 'c'])
    """
    from skastro.commands.embed import ids_path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            if "embeddings" not in f:
                raise ValueError(f"{path} has no 'embeddings' array (it has {list(f.keys())})")
            Z = f["embeddings"]
            ids = f["ids"] if "ids" in f else np.arange(len(Z))
    elif suffix == ".npy":
        Z = np.load(path, allow_pickle=False)
        sidecar = ids_path(path)
        ids = (
            np.asarray(sidecar.read_text().splitlines()) if sidecar.is_file() else np.arange(len(Z))
        )
    elif suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        ids = frame.pop("id").to_numpy() if "id" in frame else np.arange(len(frame))
        Z = frame.to_numpy(dtype=np.float32)
    else:
        raise ValueError(f"cannot read embeddings from {path.name}: use .npz, .npy, .csv, .parquet")
    Z = np.asarray(Z, dtype=np.float32)
    if Z.ndim != 2 or len(Z) == 0:
        raise ValueError(f"{path} holds an array of shape {Z.shape}, not (n, d) embeddings")
    if len(ids) != len(Z):
        raise ValueError(f"{path}: {len(ids)} ids for {len(Z)} embeddings")
    if not np.isfinite(Z).all():
        bad = np.flatnonzero(~np.isfinite(Z).all(axis=1))
        raise ValueError(
            f"{path} holds NaN or inf in {len(bad)} embedding(s) (first rows: "
            f"{', '.join(map(str, bad[:5]))})"
        )
    return Z, np.asarray(ids)


def default_min_cluster_size(n):
    """HDBSCAN's smallest cluster for ``n`` points: about sqrt(n), between 5 and n / 20.

    A fixed size suits one data size only: 20 is a large share of 300 cutouts and a speck in
    a million. Growing like sqrt(n) keeps a few dozen candidate clusters at any size.

    Examples
    --------
    >>> [default_min_cluster_size(n) for n in (50, 300, 10_000, 10_000_000)]
    [5, 15, 100, 3162]
    """
    return int(max(5, min(round(np.sqrt(n)), n // 20)))


def make_clusterer(args, n):
    """The clusterer chosen by ``--method`` with its options."""
    if args.method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(args.n_clusters, n_init=10, random_state=args.random_state)
    if args.method == "spectral":
        from sklearn.cluster import SpectralClustering

        return SpectralClustering(
            args.n_clusters,
            affinity="nearest_neighbors",
            n_neighbors=min(10, n - 1),
            assign_labels="cluster_qr",
            random_state=args.random_state,
        )
    import hdbscan

    min_cluster_size = args.min_cluster_size or default_min_cluster_size(n)
    return hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=args.min_samples)


def cluster_scores(Z, labels, sample_size=5000, random_state=0):
    """Silhouette and DBCV of a labelling, noise (-1) left out; None when undefined.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[0.0, 0], [0, 0.1], [5, 5], [5, 5.1]])
    >>> round(cluster_scores(Z, np.array([0, 0, 1, 1]))["silhouette"], 2)
    0.99
    """
    from sklearn.metrics import silhouette_score

    keep = labels >= 0
    Z, labels = np.asarray(Z[keep], dtype=np.float64), labels[keep]
    if len(labels) > sample_size:
        rng = np.random.default_rng(random_state)
        index = np.sort(rng.choice(len(labels), sample_size, replace=False))
        Z, labels = Z[index], labels[index]
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or n_clusters >= len(labels):
        return {"silhouette": None, "dbcv": None}
    scores = {"silhouette": float(silhouette_score(Z, labels))}
    try:
        from hdbscan.validity import validity_index

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dbcv = float(validity_index(Z, labels))
        scores["dbcv"] = dbcv if np.isfinite(dbcv) else None
    except (ValueError, ZeroDivisionError, FloatingPointError, IndexError):
        scores["dbcv"] = None  # duplicates or one-point clusters: DBCV is undefined
    return scores


def run(args):
    """Run ``skastro cluster``; returns the exit status."""
    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        _error(f"--out must be a .csv file, got {out.name!r}")
        return 2
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".skastro-probe-"):
            pass
    except OSError as exc:
        _error(f"cannot write {out}: {exc.strerror or exc}")
        return 2
    try:
        Z, ids = read_embeddings(args.embeddings)
    except (OSError, ValueError, KeyError) as exc:
        _error(str(exc))
        return 1
    if args.method != "hdbscan" and not 2 <= args.n_clusters <= len(Z) - 1:
        _error(f"--n-clusters must be between 2 and {len(Z) - 1} for {len(Z)} points")
        return 2
    if args.standardize:
        from sklearn.preprocessing import StandardScaler

        Z = StandardScaler().fit_transform(Z).astype(np.float32)
    if args.method == "spectral" and len(Z) > 50000:
        print(
            f"note: spectral clustering of {len(Z)} points is slow; kmeans or hdbscan scale better",
            file=sys.stderr,
        )
    labels = np.asarray(make_clusterer(args, len(Z)).fit_predict(Z), dtype=np.int64)
    scores = cluster_scores(Z, labels, args.score_sample, args.random_state)

    import pandas as pd

    pd.DataFrame({"id": ids, "label": labels}).to_csv(out, index=False)
    n_clusters = len(np.unique(labels[labels >= 0]))
    noise = int((labels < 0).sum())
    sizes = np.bincount(labels[labels >= 0]) if n_clusters else np.array([], int)
    print(f"{args.method}: {n_clusters} clusters in {len(Z)} points", end="")
    print(f", {noise} noise points" if args.method == "hdbscan" else "")
    if n_clusters:
        print("cluster sizes: " + ", ".join(f"{k}: {s}" for k, s in enumerate(sizes) if s))
    for name in ("silhouette", "dbcv"):
        value = scores[name]
        label = "DBCV" if name == "dbcv" else name
        text = f"{value:.3f}" if value is not None else "n/a (fewer than two clusters)"
        if value is None and n_clusters >= 2:
            text = "n/a (undefined for this clustering)"
        print(f"{label}: {text}")
    if args.method == "hdbscan" and n_clusters == 0:
        _print_noise_hint(args, len(Z))
    print(f"wrote {len(labels)} labels to {out}")
    if not getattr(args, "no_plots", False):
        _write_figures(args, Z, ids, labels, out)
    return 0


def _print_noise_hint(args, n):
    size = args.min_cluster_size or default_min_cluster_size(n)
    smaller = max(2, size // 2)
    print(
        f"hint: HDBSCAN found no cluster of at least {size} points here (every point is noise). "
        f"Try --min-cluster-size {smaller} --min-samples 2"
        + ("" if args.standardize else ", --standardize")
        + ", or --method kmeans; in many dimensions, clustering a 2-D UMAP of the embeddings "
        "(skastro explore, Clustering on: projection) often works better.",
        file=sys.stderr,
    )


def _write_figures(args, Z, ids, labels, out):
    """The scatter of the clusters and, with --images, examples of each; never fatal."""
    from skastro.commands._figures import write_cluster_figures

    images = None
    if getattr(args, "images", None):
        images = _images_in_order(args, ids)
    written = write_cluster_figures(Z, labels, out, images, random_state=args.random_state)
    if written:
        print("wrote " + " and ".join(str(path) for path in written))


def _images_in_order(args, ids):
    """The --images rows in the order of the embeddings' ids (None, with a note, if they
    do not match)."""
    from skastro.commands._data import describe_error
    from skastro.datasets import open_data
    from skastro.exceptions import DataLoadError

    try:
        data = open_data(
            args.images,
            key=args.key,
            id_key=args.id_key,
            skip_bad=args.skip_bad,
            report=lambda line: print(line, file=sys.stderr),
        )
    except (DataLoadError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"skastro cluster: note: no examples figure: {describe_error(exc)}", file=sys.stderr)
        return None
    position = {str(key): i for i, key in enumerate(data.ids)}
    rows = [position.get(str(key)) for key in ids]
    if any(row is None for row in rows):
        missing = sum(row is None for row in rows)
        print(
            f"skastro cluster: note: no examples figure: {missing} embedding id(s) are not "
            f"among the images of {args.images}",
            file=sys.stderr,
        )
        return None
    return _Rows(data.images, rows)


class _Rows:
    """The images in another order, read only when a row is asked for."""

    def __init__(self, images, rows):
        self._images, self._rows = images, rows

    def __len__(self):
        return len(self._rows)

    def __getitem__(self, i):
        return self._images[self._rows[i]]
