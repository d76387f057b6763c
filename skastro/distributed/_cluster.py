"""Cluster 10^7 embeddings: fit on a sample, assign every point in blocks.

HDBSCAN's cost grows faster than linearly and its memory with the number of points, so at
10^7 points it is fitted on a random sample (50,000 points by default) and the other points are
given the cluster they would have joined, with ``hdbscan.approximate_predict`` (the same
density estimate, without re-running the clustering); k-means is fitted on the sample and
every point goes to its nearest centre. The assignment runs block by block: in this process,
or on dask workers when a client is given, each worker reading its own blocks from the file.
Points of the sample keep the label the fit gave them.
"""

import numbers
import time

import numpy as np

from skastro.distributed._embeddings import open_embeddings

__all__ = ["SampleAssigner", "cluster_embeddings"]

METHODS = ("hdbscan", "kmeans")
# HDBSCAN on 50,000 32-D points: about 4 minutes on one (busy) core, 2.8 GiB
DEFAULT_SAMPLE_SIZE = 50_000
DEFAULT_BLOCK_SIZE = 100_000


class SampleAssigner:
    """Labels for new points from a clusterer fitted on a sample (picklable, sent to workers).

    Parameters
    ----------
    clusterer : hdbscan.HDBSCAN (fitted with ``prediction_data=True``) or KMeans
    scaler : StandardScaler or None
        Applied to the points first (the clusterer was fitted on scaled points).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> kmeans = KMeans(2, n_init=1, random_state=0).fit([[0.0], [0.1], [5.0], [5.1]])
    >>> labels = SampleAssigner(kmeans).predict(np.array([[0.2], [4.9]]))
    >>> bool(labels[0] != labels[1])
    True
    """

    def __init__(self, clusterer, scaler=None):
        self.clusterer = clusterer
        self.scaler = scaler

    def predict(self, Z):
        """Cluster label of each row of ``Z`` (-1: noise, for HDBSCAN)."""
        Z = np.asarray(Z, dtype=np.float32)
        if len(Z) == 0:
            return np.empty(0, dtype=np.int64)
        if self.scaler is not None:
            Z = self.scaler.transform(Z).astype(np.float32)
        centres = getattr(self.clusterer, "cluster_centers_", None)
        if centres is not None:  # k-means: the nearest centre, in the centres' dtype
            return np.asarray(self.clusterer.predict(Z.astype(centres.dtype)), dtype=np.int64)
        import hdbscan

        labels, _ = hdbscan.approximate_predict(self.clusterer, Z)
        return np.asarray(labels, dtype=np.int64)


def cluster_embeddings(
    embeddings,
    *,
    method="hdbscan",
    sample_size=DEFAULT_SAMPLE_SIZE,
    n_clusters=8,
    min_cluster_size=None,
    min_samples=None,
    standardize=False,
    block_size=DEFAULT_BLOCK_SIZE,
    client=None,
    random_state=0,
):
    """Cluster embeddings that may not fit in memory: fit on a sample, assign in blocks.

    Parameters
    ----------
    embeddings : str, path-like, ndarray or EmbeddingSource
        Anything :func:`open_embeddings` opens: a ``.npy`` file (read in row ranges), a
        parquet file or folder of ``part-*.parquet`` files, or an array.
    method : {"hdbscan", "kmeans"}, default="hdbscan"
    sample_size : int, default=50000
        Points the clusterer is fitted on, drawn at random without replacement (all points
        when there are fewer). With every point in the sample, the labels are those of the
        clusterer fitted on all the data.
    n_clusters : int, default=8
        k-means clusters.
    min_cluster_size, min_samples : int or None
        HDBSCAN settings, for the sample; ``min_cluster_size`` defaults to
        ``max(5, sample_size // 100)``.
    standardize : bool, default=False
        Scale every component to zero mean and unit variance (statistics of the sample).
    block_size : int, default=100000
        Points assigned per task.
    client : distributed.Client, str or None, default=None
        Assign the blocks on dask workers (a ``Client``, or a scheduler for
        :func:`connect`: ``"local:N"``, ``"tcp://HOST:PORT"``); each worker reads its
        blocks from the file itself. None: in this process.
    random_state : int, default=0
        Seed of the sample and of k-means.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``labels`` (n,) int64 (-1 for HDBSCAN noise), ``sample_index`` (sorted positions of
        the sample), ``assigner`` (a :class:`SampleAssigner`, whose ``predict`` labels new
        embeddings), ``n_clusters`` and ``seconds`` (``{"fit": ..., "assign": ...}``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z = np.vstack([rng.normal(0, 0.3, (500, 2)), rng.normal(5, 0.3, (500, 2))])
    >>> result = cluster_embeddings(Z, method="hdbscan", sample_size=200, block_size=300)
    >>> result.n_clusters, bool((result.labels[:500] == result.labels[0]).mean() > 0.95)
    (2, True)
    """
    from sklearn.utils import Bunch

    if method not in METHODS:
        raise ValueError(
            f"method must be one of {list(METHODS)} for clustering at scale, got {method!r} "
            "(spectral clustering needs all points in memory)"
        )
    for name, value in [("sample_size", sample_size), ("block_size", block_size)]:
        if not isinstance(value, numbers.Integral) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    source = open_embeddings(embeddings)
    n = source.n_samples
    started = time.perf_counter()
    rng = np.random.default_rng(random_state)
    if sample_size >= n:
        sample_index = np.arange(n)
    else:
        sample_index = np.sort(rng.choice(n, int(sample_size), replace=False))
    sample = source.take(sample_index)
    scaler = None
    if standardize:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(sample)
        sample = scaler.transform(sample).astype(np.float32)
    clusterer = _fit(method, sample, n_clusters, min_cluster_size, min_samples, random_state)
    fit_seconds = time.perf_counter() - started
    assigner = SampleAssigner(clusterer, scaler)
    labels = np.empty(n, dtype=np.int64)
    if len(sample_index) < n:
        blocks = source.blocks(block_size)
        if client is None:
            for start, stop in blocks:
                labels[start:stop] = assigner.predict(source.read(start, stop))
        else:
            _assign_on_workers(client, assigner, source, blocks, labels)
    labels[sample_index] = np.asarray(clusterer.labels_, dtype=np.int64)
    return Bunch(
        labels=labels,
        sample_index=sample_index,
        assigner=assigner,
        n_clusters=len(np.unique(labels[labels >= 0])),
        seconds={"fit": fit_seconds, "assign": time.perf_counter() - started - fit_seconds},
    )


def _fit(method, sample, n_clusters, min_cluster_size, min_samples, random_state):
    if method == "kmeans":
        from sklearn.cluster import KMeans

        if not 2 <= n_clusters < len(sample):
            raise ValueError(
                f"n_clusters must be between 2 and {len(sample) - 1} for a sample of "
                f"{len(sample)} points, got {n_clusters}"
            )
        return KMeans(n_clusters, n_init=10, random_state=random_state).fit(sample)
    import hdbscan

    size = min_cluster_size or max(5, len(sample) // 100)
    return hdbscan.HDBSCAN(
        min_cluster_size=int(size), min_samples=min_samples, prediction_data=True
    ).fit(sample)


def _assign_block(assigner, source, start, stop):
    """Runs on a worker: read one block of the file and label it."""
    return start, assigner.predict(source.read(start, stop))


def _assign_on_workers(client, assigner, source, blocks, labels):
    from distributed import as_completed

    from skastro.distributed._client import connect

    with connect(client, what="cluster_embeddings") as dask_client:
        # both sent once per worker; the source is paths and offsets (an array source is
        # sent once too, and each task slices its block out of the worker's copy)
        shared = dask_client.scatter([assigner, source], broadcast=True, hash=False)
        futures = [
            dask_client.submit(_assign_block, *shared, start, stop, pure=False)
            for start, stop in blocks
        ]
        try:
            for future in as_completed(futures):
                start, block_labels = future.result()
                labels[start : start + len(block_labels)] = block_labels
        except BaseException:
            dask_client.cancel(futures)
            raise
