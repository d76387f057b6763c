"""Cluster saved embeddings and write one label per image, with silhouette and DBCV printed.

Example: skastro cluster embeddings.npz --method hdbscan --min-cluster-size 20 --out labels.csv.
EMBEDDINGS is a file written by skastro embed (.npz, .npy with its .ids.txt, .parquet or
.csv) or a folder of part-*.parquet files (skastro embed --scheduler). The labels file
(.csv or .parquet) has the columns id,label; HDBSCAN marks noise with -1. Silhouette and DBCV
are computed on the clustered points (noise left out), on a random sample of at most
--score-sample points. An existing labels file is replaced only with --overwrite.

Larger than memory: above 200,000 points (or with --sample-size), hdbscan and kmeans are
fitted on a random sample of --sample-size points (default 50,000) and every other point is
assigned to a cluster in blocks of --block-size points (hdbscan: approximate prediction;
kmeans: nearest centre), reading .npy files and parquet folders block by block; with
--scheduler local:N or tcp://HOST:PORT the blocks are assigned on dask workers.
HDBSCAN's smallest cluster defaults to a size that grows with the number of points
(default_min_cluster_size); when every point comes out as noise, the command says what to
try. The clusters are drawn to <OUT>_scatter.png and, given --images, examples of each
cluster to <OUT>_examples.png.
"""

import sys
import warnings
from pathlib import Path

import numpy as np

from skastro.commands._data import add_data_arguments
from skastro.commands._errors import CommandError, error_line, reports_errors
from skastro.commands._figures import cluster_figure_paths
from skastro.commands._output import check_output_file

METHODS = ("hdbscan", "kmeans", "spectral")
LABEL_SUFFIXES = (".csv", ".parquet")
# above this many points, hdbscan and kmeans are fitted on a sample unless --sample-size says
# otherwise (HDBSCAN on all of 10^6 points in 32-D takes hours)
IN_MEMORY_MAX_POINTS = 200_000


def add_arguments(parser):
    """Add the ``cluster`` options to ``parser``."""
    parser.add_argument("embeddings", metavar="EMBEDDINGS", help="a file written by skastro embed")
    parser.add_argument("--method", choices=METHODS, default="hdbscan", help="clustering method")
    parser.add_argument("--out", required=True, help="labels file to write (.csv or .parquet)")
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
        "--sample-size",
        type=int,
        default=None,
        help=(
            "fit hdbscan/kmeans on a random sample of this many points and assign the others "
            f"in blocks (default: all points up to {IN_MEMORY_MAX_POINTS:,}, else 50,000)"
        ),
    )
    parser.add_argument(
        "--block-size",
        type=int,
        default=100_000,
        help="points assigned to clusters at a time when sampling (default 100000)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help=(
            "assign the blocks on dask workers: local[:N] (N processes here) or "
            "tcp://HOST:PORT (needs skastro[distributed]); default: in this process"
        ),
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the labels file if it exists"
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
    error_line("cluster", message)


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


def _reading_error(path, exc):
    """One line for an embeddings file that cannot be read, naming the file."""
    reason = " ".join(str(exc.args[0] if isinstance(exc, KeyError) else exc).split())
    if "pickle" in reason:
        reason = "it holds Python objects, or is not a numpy file at all (never unpickled)"
    if str(path) in reason:
        return reason
    return f"cannot read embeddings from {path}: {reason} (write them with skastro embed)"


def _check_options(args):
    """Refuse option values the clusterers would reject with a traceback."""
    limits = (
        ("--min-cluster-size", args.min_cluster_size, 2),
        ("--min-samples", args.min_samples, 1),
        ("--score-sample", args.score_sample, 2),
    )
    for flag, value, minimum in limits:
        if value is not None and value < minimum:
            raise CommandError(f"{flag} must be at least {minimum}, got {value}", status=2)
    if args.random_state is not None and not 0 <= args.random_state < 2**32:
        raise CommandError(
            f"--random-state must be in [0, 2**32), got {args.random_state}", status=2
        )


def _sample_size(args, n):
    """Points to fit on (None: all of them, in memory as before)."""
    from skastro.distributed._cluster import DEFAULT_SAMPLE_SIZE

    if args.sample_size is not None:
        return args.sample_size if args.sample_size < n else None
    if n > IN_MEMORY_MAX_POINTS and args.method != "spectral":
        return DEFAULT_SAMPLE_SIZE
    return None


@reports_errors("cluster")
def run(args):
    """Run ``skastro cluster``; returns the exit status."""
    from skastro.distributed._embeddings import open_embeddings

    out = Path(args.out)
    if out.suffix.lower() not in LABEL_SUFFIXES:
        _error(f"--out must be a .csv or .parquet file, got {out.name!r}")
        return 2
    for name in ("sample_size", "block_size"):
        value = getattr(args, name)
        if value is not None and value < 2:
            _error(f"--{name.replace('_', '-')} must be at least 2, got {value}")
            return 2
    _check_options(args)
    figures = [] if args.no_plots else cluster_figure_paths(out)
    check_output_file(out, overwrite=args.overwrite, companions=figures)
    try:
        source = open_embeddings(args.embeddings)
    except (OSError, EOFError, ValueError, KeyError) as exc:
        raise CommandError(_reading_error(args.embeddings, exc)) from exc
    n = source.n_samples
    if args.method == "hdbscan" and n < 2:
        raise CommandError(f"hdbscan needs at least 2 points, {args.embeddings} has {n}")
    if args.method != "hdbscan" and n < 3:
        raise CommandError(
            f"{args.method} needs at least 3 points to find 2 clusters; {args.embeddings} has {n}"
        )
    if args.method != "hdbscan" and not 2 <= args.n_clusters <= n - 1:
        _error(f"--n-clusters must be between 2 and {n - 1} for {n} points")
        return 2
    sample_size = _sample_size(args, n)
    if sample_size is not None and args.method == "spectral":
        _error("spectral clustering needs every point in memory; use kmeans or hdbscan")
        return 2
    try:
        if sample_size is None:
            labels, score_points, rows = _cluster_in_memory(args, source)
        else:
            labels, score_points, rows = _cluster_sample(args, source, sample_size)
    except (OSError, ValueError, ImportError) as exc:
        _error(str(exc))
        return 1
    scores = cluster_scores(*score_points, args.score_sample, args.random_state)
    _write_labels(out, source, labels)
    n_clusters = len(np.unique(labels[labels >= 0]))
    noise = int((labels < 0).sum())
    sizes = np.bincount(labels[labels >= 0]) if n_clusters else np.array([], int)
    print(f"{args.method}: {n_clusters} clusters in {n} points", end="")
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
        _print_noise_hint(args, n if sample_size is None else None)
    print(f"wrote {len(labels)} labels to {out}")
    if not getattr(args, "no_plots", False):
        # drawn from the points the scores used: all of them, or the score sample
        _write_figures(args, *score_points, source, rows, out)
    return 0


def _cluster_in_memory(args, source):
    """Every point in memory, as the clusterer is given them; returns labels and (Z, labels)."""
    Z = source.read(0, source.n_samples)
    if args.standardize:
        from sklearn.preprocessing import StandardScaler

        Z = StandardScaler().fit_transform(Z).astype(np.float32)
    if args.method == "spectral" and len(Z) > 50000:
        print(
            f"note: spectral clustering of {len(Z)} points is slow; kmeans or hdbscan scale better",
            file=sys.stderr,
        )
    labels = np.asarray(make_clusterer(args, len(Z)).fit_predict(Z), dtype=np.int64)
    return labels, (Z, labels), None


def _cluster_sample(args, source, sample_size):
    """Fit on a sample, assign the rest in blocks; scores on a sample of the labelled points."""
    from skastro.distributed._cluster import cluster_embeddings

    print(
        f"note: fitting {args.method} on a random sample of {sample_size:,} of "
        f"{source.n_samples:,} points and assigning the others in blocks of {args.block_size:,}",
        file=sys.stderr,
    )
    result = cluster_embeddings(
        source,
        method=args.method,
        sample_size=sample_size,
        n_clusters=args.n_clusters,
        min_cluster_size=args.min_cluster_size,
        min_samples=args.min_samples,
        standardize=args.standardize,
        block_size=args.block_size,
        client=args.scheduler,
        random_state=args.random_state,
    )
    labels = result.labels
    rng = np.random.default_rng(args.random_state)
    count = min(args.score_sample, len(labels))
    index = np.sort(rng.choice(len(labels), count, replace=False))
    Z = source.take(index)
    if result.assigner.scaler is not None:
        Z = result.assigner.scaler.transform(Z).astype(np.float32)
    return labels, (Z, labels[index]), index


def _write_labels(out, source, labels, block_size=1_000_000):
    """Write ``id,label`` rows block by block (ids streamed from the embeddings file)."""
    tmp = out.with_name(f".{out.name}.partial")
    try:
        if out.suffix.lower() == ".csv":
            import pandas as pd

            with open(tmp, "w", newline="") as f:
                start = 0
                for ids in source.iter_ids(block_size):
                    stop = start + len(ids)
                    frame = pd.DataFrame({"id": ids, "label": labels[start:stop]})
                    frame.to_csv(f, index=False, header=start == 0)
                    start = stop
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer, start = None, 0
            try:
                for ids in source.iter_ids(block_size):
                    stop = start + len(ids)
                    table = pa.table({"id": ids, "label": labels[start:stop]})
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                    start = stop
            finally:
                if writer is not None:
                    writer.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _print_noise_hint(args, n):
    """What to try when every point is noise (``n``: the points HDBSCAN saw, None for a
    sample fitted with the sampled route's own default)."""
    size = args.min_cluster_size or (default_min_cluster_size(n) if n else None)
    at_least = f"of at least {size} points " if size else ""
    smaller = f"--min-cluster-size {max(2, size // 2)}" if size else "a smaller --min-cluster-size"
    print(
        f"hint: HDBSCAN found no cluster {at_least}here (every point is noise). "
        f"Try {smaller} --min-samples 2"
        + ("" if args.standardize else ", --standardize")
        + ", or --method kmeans; in many dimensions, clustering a 2-D UMAP of the embeddings "
        "(skastro explore, Clustering on: projection) often works better.",
        file=sys.stderr,
    )


def _ids_at(source, rows):
    """The ids of the points at ``rows`` (all of them for None), read block by block."""
    ids = np.concatenate([np.asarray(block) for block in source.iter_ids(1_000_000)])
    return ids if rows is None else ids[rows]


def _write_figures(args, Z, labels, source, rows, out):
    """The scatter of the clusters and, with --images, examples of each; never fatal."""
    from skastro.commands._figures import write_cluster_figures

    images = None
    if getattr(args, "images", None):
        # (the ids are read only here: with 10^7 points they are not small)
        images = _images_in_order(args, _ids_at(source, rows))
    written = write_cluster_figures(Z, labels, out, images, random_state=args.random_state)
    if written:
        print("wrote " + " and ".join(str(path) for path in written))


def _images_in_order(args, ids):
    """The --images rows in the order of the embeddings' ids (None, with a note, if they
    do not match)."""
    from skastro.commands._data import data_options, describe_error
    from skastro.datasets import open_data
    from skastro.exceptions import DataLoadError

    try:
        data = open_data(
            args.images, report=lambda line: print(line, file=sys.stderr), **data_options(args)
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
