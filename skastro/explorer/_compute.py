"""Projection to 2-D/3-D, clustering and the nearest-neighbour index behind the explorer.

Everything here is plain numpy/scikit-learn, with no Dash, so it is tested and reused by
:meth:`Explorer.compute`, the web app's worker thread and the HTML export alike.
"""

import dataclasses
import time

import numpy as np

from skastro._validation import check_spread

# value -> label shown in the app
PROJECTIONS = {"none": "As is", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
CLUSTERINGS = {"none": "None", "kmeans": "KMeans", "hdbscan": "HDBSCAN", "spectral": "Spectral"}
CLUSTER_SPACES = {"latent": "embedding", "projection": "projection"}

# t-SNE's cost grows with the input dimension; reducing to 50 components with PCA first is
# the usual practice (scikit-learn's and openTSNE's documentation) and barely changes the map.
_TSNE_MAX_INPUT_DIMS = 50


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """What to compute for one view of an embedding: projection and clustering settings.

    Frozen and hashable, so it keys the cache of computed views.

    Parameters
    ----------
    embedding : str
        Name of the embedding (a precomputed array or a fitted estimator's output).
    projection : {"none", "pca", "tsne", "umap"}, default="pca"
        ``"none"`` plots the first ``n_dims`` columns as they are (an embedding that is
        already 2-D or 3-D, such as a saved UMAP).
    n_dims : {2, 3}, default=2
    clustering : {"none", "kmeans", "hdbscan", "spectral"}, default="none"
    cluster_space : {"latent", "projection"}, default="latent"
        Cluster the full embedding, or the 2-D/3-D projection (HDBSCAN on UMAP is common).
    perplexity : float, default=30.0
        t-SNE perplexity (lowered to ``(n - 1) / 3`` for tiny data sets).
    umap_n_neighbors : int, default=15
    min_dist : float, default=0.1
        UMAP parameters.
    n_clusters : int, default=8
        KMeans and Spectral.
    min_cluster_size : int, default=10
    min_samples : int or None, default=None
        HDBSCAN parameters.
    random_state : int, default=0

    Examples
    --------
    >>> spec = ViewSpec("latent", projection="umap", clustering="hdbscan", min_cluster_size=20)
    >>> spec == ViewSpec("latent", projection="umap", clustering="hdbscan", min_cluster_size=20)
    True
    >>> spec.n_dims, spec.cluster_space
    (2, 'latent')
    """

    embedding: str
    projection: str = "pca"
    n_dims: int = 2
    clustering: str = "none"
    cluster_space: str = "latent"
    perplexity: float = 30.0
    umap_n_neighbors: int = 15
    min_dist: float = 0.1
    n_clusters: int = 8
    min_cluster_size: int = 10
    min_samples: int | None = None
    random_state: int = 0

    def validate(self):
        """Raise ValueError naming the first invalid setting; return self."""
        if self.projection not in PROJECTIONS:
            raise ValueError(
                f"projection must be one of {list(PROJECTIONS)}, got {self.projection!r}"
            )
        if self.n_dims not in (2, 3):
            raise ValueError(f"n_dims must be 2 or 3, got {self.n_dims!r}")
        if self.clustering not in CLUSTERINGS:
            raise ValueError(
                f"clustering must be one of {list(CLUSTERINGS)}, got {self.clustering!r}"
            )
        if self.cluster_space not in CLUSTER_SPACES:
            raise ValueError(
                f"cluster_space must be one of {list(CLUSTER_SPACES)}, got {self.cluster_space!r}"
            )
        if not self.perplexity > 0:
            raise ValueError(f"perplexity must be > 0, got {self.perplexity!r}")
        if self.umap_n_neighbors < 2:
            raise ValueError(f"umap_n_neighbors must be >= 2, got {self.umap_n_neighbors!r}")
        if not 0 <= self.min_dist <= 1:
            raise ValueError(f"min_dist must be in [0, 1], got {self.min_dist!r}")
        if self.n_clusters < 2:
            raise ValueError(f"n_clusters must be >= 2, got {self.n_clusters!r}")
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be >= 2, got {self.min_cluster_size!r}")
        if self.min_samples is not None and self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1 or None, got {self.min_samples!r}")
        return self

    def describe(self):
        """A one-line human description, used as the plot title."""
        text = f"{self.embedding} · {PROJECTIONS[self.projection]} {self.n_dims}-D"
        if self.clustering != "none":
            text += f" · {CLUSTERINGS[self.clustering]}"
            if self.cluster_space == "projection":
                text += " on the projection"
        return text


@dataclasses.dataclass(frozen=True)
class View:
    """A computed view: point coordinates and cluster labels.

    Attributes
    ----------
    spec : ViewSpec
    coords : ndarray of shape (n, n_dims), float32
    clusters : ndarray of shape (n,), int, or None
        Cluster of each point, -1 for noise (HDBSCAN); None without clustering.
    seconds : float
        Wall time it took to compute.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.explorer import Explorer
    >>> images = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    >>> explorer = Explorer(images, embedding=images.reshape(30, -1))
    >>> view = explorer.compute(projection="pca", clustering="kmeans", n_clusters=3)
    >>> view.coords.shape, sorted(set(view.clusters.tolist()))
    ((30, 2), [0, 1, 2])
    """

    spec: ViewSpec
    coords: np.ndarray
    clusters: np.ndarray | None
    seconds: float

    @property
    def key(self):
        """A short string that names this view in the browser (a Dash store holds it)."""
        return format(abs(hash(self.spec)), "x")


def project(
    embedding,
    method="pca",
    n_dims=2,
    *,
    perplexity=30.0,
    n_neighbors=15,
    min_dist=0.1,
    random_state=0,
):
    """Project an ``(n, k)`` embedding to ``(n, n_dims)`` float32 coordinates.

    Parameters
    ----------
    embedding : ndarray of shape (n, k)
    method : {"none", "pca", "tsne", "umap"}, default="pca"
    n_dims : {2, 3}, default=2
    perplexity, n_neighbors, min_dist, random_state
        t-SNE and UMAP settings, clipped to what a small data set allows.

    Returns
    -------
    ndarray of shape (n, n_dims), float32
    """
    embedding = np.asarray(embedding, dtype=np.float32)
    n_samples, n_features = embedding.shape
    if method == "none":
        if n_features < n_dims:
            raise ValueError(
                f"the embedding has {n_features} dimension(s); choose a projection to show "
                f"it in {n_dims}-D"
            )
        return np.ascontiguousarray(embedding[:, :n_dims])
    if n_samples <= n_dims:
        raise ValueError(f"need more than {n_dims} points to project, got {n_samples}")
    check_spread(embedding, method)
    if method == "pca":
        from sklearn.decomposition import PCA

        if n_features < n_dims:
            raise ValueError(
                f"PCA cannot make {n_dims} components from a {n_features}-D embedding; "
                "use t-SNE or UMAP, or 2-D"
            )
        coords = PCA(n_components=n_dims, random_state=random_state).fit_transform(embedding)
    elif method == "tsne":
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if n_features > _TSNE_MAX_INPUT_DIMS and n_samples > _TSNE_MAX_INPUT_DIMS:
            embedding = PCA(
                n_components=_TSNE_MAX_INPUT_DIMS, random_state=random_state
            ).fit_transform(embedding)
        # t-SNE needs perplexity < n_samples; a third of n keeps the neighbourhoods meaningful.
        perplexity = float(min(perplexity, max(1.0, (n_samples - 1) / 3)))
        coords = TSNE(
            n_components=n_dims,
            perplexity=perplexity,
            init="pca",
            random_state=random_state,
        ).fit_transform(embedding)
    elif method == "umap":
        try:
            import umap
        except ImportError as exc:  # pragma: no cover - umap-learn is a dependency
            raise ImportError("UMAP needs the umap-learn package: pip install umap-learn") from exc
        coords = umap.UMAP(
            n_components=n_dims,
            n_neighbors=int(min(n_neighbors, n_samples - 1)),
            min_dist=float(min_dist),
            random_state=random_state,
            # with random_state set UMAP runs single-threaded anyway; say so to avoid its warning
            n_jobs=1,
        ).fit_transform(embedding)
    else:
        raise ValueError(f"projection must be one of {list(PROJECTIONS)}, got {method!r}")
    return np.ascontiguousarray(coords, dtype=np.float32)


def cluster(
    points, method="none", *, n_clusters=8, min_cluster_size=10, min_samples=None, random_state=0
):
    """Cluster labels of ``points`` (``(n,)`` int, -1 = noise), or None for ``"none"``.

    Parameters
    ----------
    points : ndarray of shape (n, k)
    method : {"none", "kmeans", "hdbscan", "spectral"}, default="none"
    n_clusters : int, default=8
        KMeans and Spectral; lowered to ``n - 1`` for tiny data sets.
    min_cluster_size, min_samples : int
        HDBSCAN settings.
    random_state : int, default=0
    """
    if method == "none":
        return None
    points = np.asarray(points, dtype=np.float32)
    n_samples = len(points)
    if n_samples < 3:
        raise ValueError(f"need at least 3 points to cluster, got {n_samples}")
    n_clusters = int(min(n_clusters, n_samples - 1))
    if method == "kmeans":
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=n_clusters, n_init="auto", random_state=random_state)
    elif method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        # copy=True: without it HDBSCAN may overwrite the input, which is the cached embedding.
        model = HDBSCAN(
            copy=True,
            min_cluster_size=int(min(min_cluster_size, n_samples)),
            min_samples=None if min_samples is None else int(min(min_samples, n_samples - 1)),
        )
    elif method == "spectral":
        from sklearn.cluster import SpectralClustering

        # A sparse k-nearest-neighbour affinity keeps memory linear in n, where the default
        # dense RBF kernel would need n^2 floats (20 GB at 50,000 points).
        model = SpectralClustering(
            n_clusters=n_clusters,
            affinity="nearest_neighbors",
            n_neighbors=int(min(10, n_samples - 1)),
            assign_labels="cluster_qr",
            random_state=random_state,
        )
    else:
        raise ValueError(f"clustering must be one of {list(CLUSTERINGS)}, got {method!r}")
    return np.asarray(model.fit_predict(points), dtype=np.int64)


def compute_view(spec, embedding, progress=None):
    """Project and cluster ``embedding`` as ``spec`` says.

    Parameters
    ----------
    spec : ViewSpec
    embedding : ndarray of shape (n, k)
    progress : callable(fraction, message), default=None
        Told when each stage starts, so the app can show it.

    Returns
    -------
    View
    """
    spec.validate()
    progress = progress or (lambda fraction, message: None)
    start = time.perf_counter()
    progress(0.1, f"projecting with {PROJECTIONS[spec.projection]}")
    coords = project(
        embedding,
        spec.projection,
        spec.n_dims,
        perplexity=spec.perplexity,
        n_neighbors=spec.umap_n_neighbors,
        min_dist=spec.min_dist,
        random_state=spec.random_state,
    )
    clusters = None
    if spec.clustering != "none":
        progress(0.6, f"clustering with {CLUSTERINGS[spec.clustering]}")
        points = embedding if spec.cluster_space == "latent" else coords
        clusters = cluster(
            points,
            spec.clustering,
            n_clusters=spec.n_clusters,
            min_cluster_size=spec.min_cluster_size,
            min_samples=spec.min_samples,
            random_state=spec.random_state,
        )
    progress(1.0, "done")
    return View(spec=spec, coords=coords, clusters=clusters, seconds=time.perf_counter() - start)


class NeighbourIndex:
    """Exact nearest neighbours in an embedding, split into same-cluster and other-cluster lists.

    Two backends, chosen as for :class:`~skastro.KNNOutlierDetector` (``algorithm``):

    ``"sklearn"`` (the exact search in memory)
        The float32 matrix and its squared row norms, so that a click costs one
        matrix-vector product (``|a - b|^2 = |a|^2 - 2 a.b + |b|^2``). At 50,000 points that
        is under a millisecond in 16-D and about 10 ms in 128-D, faster here than a
        scikit-learn tree or brute-force query (whose per-query set-up costs about 300 ms on a
        busy 2-core machine), and exact for any cluster split without a fallback.
    ``"faiss"``
        A FAISS index (``faiss-cpu``, part of ``skastro[distributed]``) searched with the
        cluster split as an ID filter. A flat index is exact like the above (a single query
        costs about as much); ``index="ivf"`` searches only the ``n_probe`` nearest k-means
        cells and answers in well under a millisecond at 10^7 points, at the price of
        sometimes missing a true neighbour.

    ``"auto"`` (default) takes FAISS from 20,000 points on when it imports, the exact search in
    memory otherwise. Either way the candidates are re-ranked with exact differences, so the
    same points come back in the same order (ties broken by index).

    Parameters
    ----------
    embedding : ndarray of shape (n, k)
    algorithm : {"auto", "sklearn", "faiss"}, default="auto"
    index : {"flat", "ivf"}, default="flat"
        FAISS index (``"ivf"`` implies FAISS).
    n_probe : int or None, default=None
        IVF cells searched per query (see :class:`~skastro.KNNOutlierDetector`).

    Examples
    --------
    >>> import numpy as np
    >>> index = NeighbourIndex(np.array([[0.0], [1.0], [1.5], [9.0]]))
    >>> same, other = index.similar(1, clusters=np.array([0, 0, 1, 1]), k=1)
    >>> same.tolist(), other.tolist()
    ([0], [2])
    """

    # Candidates re-ranked with exact differences, per neighbour wanted: the expanded
    # formula loses precision for near-duplicates, the differences do not.
    _RERANK_FACTOR = 4

    def __init__(self, embedding, *, algorithm="auto", index="flat", n_probe=None):
        from skastro.distributed._neighbors import FaissNeighbors, resolve_algorithm

        self.embedding = np.ascontiguousarray(embedding, dtype=np.float32)
        self.algorithm = algorithm
        backend = resolve_algorithm(algorithm, "euclidean", len(self.embedding), index)
        self.backend_ = backend
        self._faiss = None
        self._squared_norms = None
        if backend == "faiss":
            self._faiss = FaissNeighbors(index=index, n_probe=n_probe).fit(self.embedding)
        else:
            self._squared_norms = np.einsum("ij,ij->i", self.embedding, self.embedding)

    def _nearest(self, index, distances, candidates, k):
        """The k candidates nearest to point ``index``, nearest first."""
        candidates = candidates[candidates != index]
        if len(candidates) == 0 or k <= 0:
            return np.empty(0, dtype=np.int64)
        n_rerank = min(len(candidates), self._RERANK_FACTOR * k)
        if n_rerank < len(candidates):
            approx = distances[candidates]
            candidates = candidates[np.argpartition(approx, n_rerank - 1)[:n_rerank]]
        return self._exact_order(index, candidates, k)

    def _exact_order(self, index, candidates, k):
        diff = self.embedding[candidates] - self.embedding[index]
        exact = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((candidates, exact))[:k]  # ties broken by index: deterministic
        return candidates[order].astype(np.int64)

    def _faiss_nearest(self, index, members, k):
        """The k nearest points among ``members`` (a boolean mask), from the FAISS index."""
        from skastro.distributed._neighbors import import_faiss

        members = members.copy()
        members[index] = False
        n_members = int(members.sum())
        if n_members == 0 or k <= 0:
            return np.empty(0, dtype=np.int64)
        faiss = import_faiss()
        bitmap = np.packbits(members, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(members), faiss.swig_ptr(bitmap))
        n_candidates = min(n_members, self._RERANK_FACTOR * k)
        query = self.embedding[index : index + 1]
        candidates = self._faiss.search(query, n_candidates, selector)[1][0]
        return self._exact_order(index, candidates[candidates >= 0], k)

    def similar(self, index, clusters=None, k=6):
        """The k nearest points in the same cluster and the k nearest in other clusters.

        Noise points (cluster -1) count as one group of their own for ``same`` and are
        never in ``other``.

        Parameters
        ----------
        index : int
        clusters : ndarray of shape (n,) or None
            Without clusters every point is in one group and ``other`` is empty.
        k : int, default=6

        Returns
        -------
        same, other : ndarray of int
            Indices, nearest first; ``index`` itself is never included.
        """
        index = int(index)
        if self._faiss is not None:
            if clusters is None:
                everyone = np.ones(len(self.embedding), dtype=bool)
                return self._faiss_nearest(index, everyone, k), np.empty(0, dtype=np.int64)
            in_cluster = np.asarray(clusters) == clusters[index]
            return (
                self._faiss_nearest(index, in_cluster, k),
                self._faiss_nearest(index, ~in_cluster, k),
            )
        point = self.embedding[index]
        distances = self._squared_norms - 2 * (self.embedding @ point)
        everyone = np.arange(len(self.embedding))
        if clusters is None:
            return self._nearest(index, distances, everyone, k), np.empty(0, dtype=np.int64)
        clusters = np.asarray(clusters)
        in_cluster = clusters == clusters[index]
        # noise belongs to no cluster: it is never offered as "from other clusters"
        elsewhere = ~in_cluster & (clusters >= 0)
        return (
            self._nearest(index, distances, everyone[in_cluster], k),
            self._nearest(index, distances, everyone[elsewhere], k),
        )
