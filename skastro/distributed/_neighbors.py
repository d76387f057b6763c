"""Nearest-neighbour search backends: scikit-learn's exact search or a FAISS index.

One place decides which library answers a neighbour query, so that
:class:`~skastro.KNNOutlierDetector` and the explorer's similar-image search behave the same:

``"sklearn"``
    :class:`sklearn.neighbors.NearestNeighbors`, exact, any metric.
``"faiss"``
    :class:`FaissNeighbors`, Euclidean only, from the ``faiss-cpu`` package: an exact flat
    index (``index="flat"``) or an inverted-file index (``index="ivf"``) that searches only the
    ``n_probe`` cells nearest to each query, which is approximate but scales to 10^7 points.
``"auto"``
    FAISS from :data:`AUTO_FAISS_MIN_SAMPLES` training points on, when faiss imports and the
    metric is Euclidean; scikit-learn otherwise.

FAISS computes squared distances in float32 with ``|a|^2 - 2 a.b + |b|^2``, which loses
precision for near neighbours; :class:`FaissNeighbors` therefore re-ranks a few more candidates
than asked for with exact float64 differences, so the distances it returns are those of an
exact search (to rounding) and ties are broken by index.

A FAISS index is never pickled or saved: :class:`FaissNeighbors` keeps the training array and,
for an IVF index, its cell centroids, and rebuilds the index from them when unpickled.
"""

import math

import numpy as np

__all__ = [
    "ALGORITHMS",
    "AUTO_FAISS_MIN_SAMPLES",
    "FAISS_INDEXES",
    "FaissNeighbors",
    "faiss_available",
    "import_faiss",
    "make_neighbors",
    "resolve_algorithm",
]

ALGORITHMS = ("auto", "sklearn", "faiss")
FAISS_INDEXES = ("flat", "ivf")
# Below this many training points scikit-learn's exact float64 search takes well under a
# second (measured on 2 cores: 3.4 s at 50,000 32-D points, fit and score each), and FAISS
# gains little; above it, FAISS is the faster exact search and the only route to IVF.
AUTO_FAISS_MIN_SAMPLES = 20_000
# Euclidean metrics FAISS can compute (sklearn spells the same metric several ways).
_EUCLIDEAN = ("euclidean", "l2")
# Extra candidates fetched and re-ranked with exact distances, beyond those asked for.
_RERANK_EXTRA = 8
# Candidate distances computed at once during re-ranking (float64 values).
_RERANK_CHUNK_VALUES = 2**22
# FAISS warns when an IVF cell gets fewer than 39 training points.
_MIN_POINTS_PER_LIST = 39
_MAX_TRAINING_POINTS_PER_LIST = 256
# IVF cells searched per query. Recall of the 5 nearest neighbours measured on 200,000 32-D
# embeddings (20 Gaussian clusters, n_lists = 1789; a hard case, real embeddings have a lower
# intrinsic dimension): 0.67, 0.80, 0.92, 0.96 with 16, 32, 64, 128 cells, at 0.04, 0.07,
# 0.12, 0.22 ms per query on one core (the flat index: 1.6 ms).
_DEFAULT_N_PROBE = 64


def import_faiss():
    """Import and return the ``faiss`` module, or raise an ImportError saying how to install it.

    Examples
    --------
    >>> faiss = import_faiss()
    >>> faiss.IndexFlatL2(4).d
    4
    """
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "FAISS nearest-neighbour search needs the faiss-cpu package, which does not import "
            f"here ({exc}); install it with `pip install faiss-cpu` or "
            '`pip install "skastro[distributed]"`, or use algorithm="sklearn"'
        ) from exc
    return faiss


def faiss_available():
    """True when ``faiss`` imports.

    Examples
    --------
    >>> isinstance(faiss_available(), bool)
    True
    """
    try:
        import_faiss()
    except ImportError:
        return False
    return True


def resolve_algorithm(algorithm, metric, n_samples, index="flat"):
    """The backend, ``"sklearn"`` or ``"faiss"``, that ``algorithm="auto"`` and friends mean.

    Parameters
    ----------
    algorithm : {"auto", "sklearn", "faiss"}
    metric : str or callable
        FAISS computes Euclidean distances only.
    n_samples : int
        Points in the index.
    index : {"flat", "ivf"}, default="flat"
        An IVF index exists in FAISS only, so ``"auto"`` with ``"ivf"`` means FAISS.

    Returns
    -------
    backend : str

    Examples
    --------
    >>> resolve_algorithm("auto", "euclidean", 100)
    'sklearn'
    >>> resolve_algorithm("auto", "manhattan", 10**7)
    'sklearn'
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {algorithm!r}")
    if index not in FAISS_INDEXES:
        raise ValueError(f"index must be one of {list(FAISS_INDEXES)}, got {index!r}")
    euclidean = isinstance(metric, str) and metric in _EUCLIDEAN
    if algorithm == "sklearn":
        if index != "flat":
            raise ValueError(
                f'index={index!r} exists in FAISS only; use algorithm="faiss" (or "auto"), '
                'or index="flat" with algorithm="sklearn"'
            )
        return "sklearn"
    if algorithm == "faiss" or index != "flat":
        if not euclidean:
            raise ValueError(
                f"FAISS searches Euclidean distances only, got metric={metric!r}; use "
                'metric="euclidean" or algorithm="sklearn"'
            )
        import_faiss()
        return "faiss"
    if euclidean and n_samples >= AUTO_FAISS_MIN_SAMPLES and faiss_available():
        return "faiss"
    return "sklearn"


def make_neighbors(
    algorithm, metric, X, *, index="flat", n_lists=None, n_probe=None, seed=0, centroids=None
):
    """A neighbour searcher fitted on ``X`` with a ``kneighbors(X, n_neighbors)`` method.

    Parameters
    ----------
    algorithm : {"auto", "sklearn", "faiss"}
    metric : str or callable
    X : ndarray of shape (n_samples, n_features)
    index, n_lists, n_probe, seed
        FAISS settings (see :class:`FaissNeighbors`).
    centroids : ndarray or None
        IVF cell centres of an index built before (a saved detector): the same index again.

    Returns
    -------
    searcher : sklearn.neighbors.NearestNeighbors or FaissNeighbors

    Examples
    --------
    >>> import numpy as np
    >>> nn = make_neighbors("sklearn", "euclidean", np.array([[0.0], [1.0], [3.0]]))
    >>> nn.kneighbors([[2.5]], n_neighbors=1)[1].tolist()
    [[2]]
    """
    backend = resolve_algorithm(algorithm, metric, len(X), index)
    if backend == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(metric=metric).fit(X)
    searcher = FaissNeighbors(index=index, n_lists=n_lists, n_probe=n_probe, seed=seed)
    return searcher.fit(X, centroids=centroids if index == "ivf" else None)


def default_n_lists(n_samples):
    """IVF cells for ``n_samples`` points: ``4 sqrt(n)``, at least 39 training points per cell.

    Examples
    --------
    >>> default_n_lists(1_000_000)
    4000
    """
    return int(max(1, min(round(4 * math.sqrt(n_samples)), n_samples // _MIN_POINTS_PER_LIST)))


class FaissNeighbors:
    """Euclidean nearest neighbours from a FAISS index, with exact re-ranked distances.

    Parameters
    ----------
    index : {"flat", "ivf"}, default="flat"
        ``"flat"`` compares each query with every point (exact). ``"ivf"`` groups the points
        into ``n_lists`` cells by k-means and compares a query with the points of its
        ``n_probe`` nearest cells only (approximate; see the recall in the user guide).
    n_lists : int or None, default=None
        IVF cells; None gives ``4 sqrt(n)`` (at least 39 points per cell).
    n_probe : int or None, default=None
        IVF cells searched per query; None gives 64 (all cells when there are fewer).
    seed : int, default=0
        Seed of FAISS's k-means (IVF only), so the same data give the same index.

    Attributes
    ----------
    n_samples_fit_ : int
    centroids_ : ndarray of shape (n_lists, n_features) or None
        The IVF cells' centres (None for a flat index); with the data they rebuild the index.

    Examples
    --------
    >>> import numpy as np
    >>> nn = FaissNeighbors().fit(np.array([[0.0], [1.0], [3.0]]))
    >>> distances, indices = nn.kneighbors(np.array([[2.5]]), n_neighbors=2)
    >>> distances.tolist(), indices.tolist()
    ([[0.5, 1.5]], [[2, 1]])
    """

    def __init__(self, index="flat", n_lists=None, n_probe=None, seed=0):
        self.index = index
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.seed = seed

    # ------------------------------------------------------------------ building
    def fit(self, X, centroids=None):
        """Index the rows of ``X`` (kept by reference for the exact re-ranking).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        centroids : ndarray of shape (n_lists, n_features) or None
            IVF cell centres found earlier (rebuilding a saved index); None trains them.

        Returns
        -------
        self
        """
        if self.index not in FAISS_INDEXES:
            raise ValueError(f"index must be one of {list(FAISS_INDEXES)}, got {self.index!r}")
        X = np.asarray(X)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"expected a non-empty (n_samples, n_features) array, got {X.shape}")
        self._fit_X = X
        self.n_samples_fit_ = len(X)
        self.centroids_ = None if centroids is None else np.asarray(centroids, dtype=np.float32)
        self._build()
        return self

    def _build(self):
        faiss = import_faiss()
        X = self._fit_X
        d = X.shape[1]
        data = np.ascontiguousarray(X, dtype=np.float32)
        if self.index == "flat":
            self._index = faiss.IndexFlatL2(d)
            self._index.add(data)
            self.n_lists_ = self.n_probe_ = None
            return
        n_lists = default_n_lists(len(X)) if self.n_lists is None else int(self.n_lists)
        if not 1 <= n_lists <= len(X):
            raise ValueError(f"n_lists must be between 1 and {len(X)} (the points), got {n_lists}")
        self._quantizer = faiss.IndexFlatL2(d)
        if self.centroids_ is not None:
            if self.centroids_.shape != (n_lists, d):
                raise ValueError(
                    f"centroids of shape {self.centroids_.shape} do not match n_lists={n_lists} "
                    f"and {d} features"
                )
            self._quantizer.add(np.ascontiguousarray(self.centroids_))
            index = faiss.IndexIVFFlat(self._quantizer, d, n_lists)
        else:
            index = faiss.IndexIVFFlat(self._quantizer, d, n_lists)
            index.cp.seed = int(self.seed)
            n_train = min(len(X), _MAX_TRAINING_POINTS_PER_LIST * n_lists)
            rng = np.random.default_rng(self.seed)
            sample = np.sort(rng.choice(len(X), n_train, replace=False))
            index.train(np.ascontiguousarray(data[sample]))
            self.centroids_ = self._quantizer.reconstruct_n(0, n_lists)
        index.add(data)
        n_probe = _DEFAULT_N_PROBE if self.n_probe is None else int(self.n_probe)
        if n_probe < 1:
            raise ValueError(f"n_probe must be at least 1, got {n_probe}")
        self.n_lists_, self.n_probe_ = n_lists, min(n_probe, n_lists)
        index.nprobe = self.n_probe_
        self._index = index

    def __getstate__(self):
        # the FAISS index is rebuilt from the data (and IVF centroids), never pickled
        state = dict(self.__dict__)
        state.pop("_index", None)
        state.pop("_quantizer", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_fit_X" in state:
            self._build()

    # ------------------------------------------------------------------ searching
    def _search_params(self, selector=None, exhaustive=False):
        faiss = import_faiss()
        if self.index == "flat":
            return None if selector is None else faiss.SearchParameters(sel=selector)
        n_probe = self.n_lists_ if exhaustive else self.n_probe_
        if selector is None:
            return faiss.SearchParametersIVF(nprobe=n_probe)
        return faiss.SearchParametersIVF(sel=selector, nprobe=n_probe)

    def search(self, X, n_candidates, selector=None):
        """Raw FAISS candidates: squared float32 distances and indices (-1 where none).

        Queries for which an IVF search found fewer than ``n_candidates`` points (cells too
        small) are searched again over every cell.

        Parameters
        ----------
        X : ndarray of shape (n_queries, n_features)
        n_candidates : int
        selector : faiss.IDSelector or None
            Restrict the search to some points (e.g. one cluster).

        Returns
        -------
        squared_distances : ndarray of shape (n_queries, n_candidates), float32
        indices : ndarray of shape (n_queries, n_candidates), int64
        """
        queries = np.ascontiguousarray(X, dtype=np.float32)
        params = self._search_params(selector)
        distances, indices = self._index.search(queries, n_candidates, params=params)
        if self.index == "ivf":
            short = np.flatnonzero((indices < 0).any(axis=1))
            if len(short):
                params = self._search_params(selector, exhaustive=True)
                distances[short], indices[short] = self._index.search(
                    queries[short], n_candidates, params=params
                )
        return distances, indices

    def kneighbors(self, X, n_neighbors):
        """The ``n_neighbors`` nearest indexed points of each query, with exact distances.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
        n_neighbors : int

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), float64
        indices : ndarray of shape (n_queries, n_neighbors), intp
            Nearest first; equal distances in index order.
        """
        X = np.asarray(X)
        n_fit = self.n_samples_fit_
        if not 1 <= n_neighbors <= n_fit:
            raise ValueError(f"n_neighbors must be between 1 and {n_fit}, got {n_neighbors}")
        n_candidates = min(n_fit, n_neighbors + _RERANK_EXTRA + n_neighbors // 2)
        distances = np.empty((len(X), n_neighbors))
        indices = np.empty((len(X), n_neighbors), dtype=np.intp)
        chunk = max(1, _RERANK_CHUNK_VALUES // (n_candidates * max(1, X.shape[1])))
        for start in range(0, len(X), chunk):
            stop = min(start + chunk, len(X))
            _, candidates = self.search(X[start:stop], n_candidates)
            d, i = self._rerank(X[start:stop], candidates, n_neighbors)
            distances[start:stop], indices[start:stop] = d, i
        return distances, indices

    def _rerank(self, X, candidates, n_neighbors):
        """Exact distances to the candidates (-1 = none), sorted by (distance, index)."""
        missing = candidates < 0
        safe = np.where(missing, 0, candidates)
        dtype = np.result_type(X.dtype, self._fit_X.dtype, np.float32)
        diff = self._fit_X[safe].astype(dtype, copy=False) - X[:, None, :].astype(dtype)
        exact = np.sqrt(np.einsum("qcf,qcf->qc", diff, diff)).astype(np.float64)
        exact[missing] = np.inf
        order = np.lexsort((safe, exact), axis=1)[:, :n_neighbors]
        return np.take_along_axis(exact, order, 1), np.take_along_axis(safe, order, 1)
