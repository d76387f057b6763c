"""The :class:`Explorer`: data, embeddings and computed views behind the web app and export."""

import collections
import threading

import numpy as np
import pandas as pd

from skastro._images import as_nchw
from skastro.explorer._compute import NeighbourIndex, ViewSpec, compute_view
from skastro.explorer._figure import build_figure, is_categorical
from skastro.explorer._jobs import Jobs
from skastro.explorer._labels import LabelStore
from skastro.explorer._ranking import knn_anomaly_score, rerank
from skastro.explorer._thumbnails import ThumbnailRenderer

_LOCALHOSTS = ("127.0.0.1", "localhost", "::1")
# Computed views kept for the browser: each is a few floats per point, so dozens are cheap,
# but a long session of recomputations must not grow without bound.
_MAX_VIEWS = 32
# Rank-by value of the kNN outlier score in the embedding shown.
KNN_SCORE = "knn"
# Metadata columns that hold the images' ids (not shown twice in the instance panel).
_ID_NAMES = ("id", "ids", "objid", "object_id", "identifier", "filename", "name")


def _check_embedding(name, embedding, n_images):
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim != 2 or len(embedding) != n_images:
        raise ValueError(
            f"embedding {name!r} must have shape ({n_images}, n_components), got {embedding.shape}"
        )
    bad = ~np.isfinite(embedding).all(axis=1)
    if bad.any():
        raise ValueError(
            f"embedding {name!r} has non-finite values in {int(bad.sum())} rows, first "
            f"{np.flatnonzero(bad)[:5].tolist()}"
        )
    return embedding


def _format_value(value):
    if isinstance(value, float | np.floating):
        return "nan" if not np.isfinite(value) else f"{value:.6g}"
    return str(value)


class Explorer:
    """Latent space explorer: an interactive web app and a shareable HTML export.

    The app has three columns. On the left choose the embedding, the projection (PCA, t-SNE,
    UMAP, in 2-D or 3-D) and the clustering (KMeans, HDBSCAN, Spectral), then compute; the
    work runs in a background thread while the page shows its progress. In the centre a WebGL
    scatter coloured by cluster, label or metadata column: zoom, pan, rotate in 3-D, click a
    legend entry to hide a class or double-click it to isolate it, select with the box or
    lasso and export the selection's ids as CSV, save a PNG from the toolbar. On the right
    the instance panel shows the clicked image (stretch and band chosen there), its metadata
    and cluster, the most similar images in its cluster and the nearest from other clusters;
    click any of them to move to it.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, C, H, W)
        The images, channels first; flat ``(n, H*W)`` square images are accepted too. NumPy
        arrays and memory maps are read one image at a time, never copied whole.
    embedding : array-like of shape (n, k) or dict of str to array-like, default=None
        Precomputed embeddings, by name when a dict.
    estimator : fitted estimator or dict of str to estimator, default=None
        Anything with ``transform(images) -> (n, k)``: every skastro embedder, or a
        scikit-learn pipeline. Only ``transform`` is called, in batches of ``batch_size``
        images, when its embedding is first shown. With neither ``embedding`` nor
        ``estimator`` the flattened pixels are the embedding.
    metadata : pandas.DataFrame or dict of array-like, default=None
        One row per image, in the same order; shown in the instance panel and offered as
        colourings.
    labels : array-like of shape (n,), default=None
        Known classes, if any, offered as a colouring.
    ids : array-like of shape (n,), default=None
        Identifiers written in exported selections; default ``0 .. n-1``.
    n_neighbors : int, default=6
        Similar images shown in the instance panel, per list.
    rgb_bands : tuple of 3 int, default=None
        Bands of an RGB composite; default the three bands in order, or i, r, g for 5-band
        SDSS (u, g, r, i, z) images.
    band_names : list of str, default=None
        Names of the bands in the band chooser.
    batch_size : int, default=1024
        Images per ``estimator.transform`` call.
    random_state : int, default=0
        Seed of PCA, t-SNE, UMAP and the clusterers.
    label_file : str or path-like, default=None
        CSV file where the labels you give in the app (interesting, not interesting or a
        class name) are saved after every change, and loaded from when it exists; None
        keeps them in memory only. ``skastro explore`` uses ``<data>.labels.csv`` beside
        the data.

    Attributes
    ----------
    images : ndarray of shape (n, C, H, W)
        A view of the images as given (no copy).
    ids : ndarray of str of shape (n,)
    embedding_names : list of str
        Names offered in the app's embedding chooser.

    See Also
    --------
    skastro.plotting : static matplotlib figures of embeddings.

    Notes
    -----
    The server only ever renders thumbnails by integer index into the in-memory images; no
    request can name a file. It listens on 127.0.0.1 unless told otherwise and has no
    authentication, so share results with :meth:`save_html` rather than by opening it to a
    network.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skastro.explorer import Explorer
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(size=(40, 16, 16)).astype(np.float32)
    >>> latents = PCA(n_components=4).fit_transform(images.reshape(40, -1))
    >>> explorer = Explorer(images, embedding=latents, labels=rng.integers(0, 2, 40))
    >>> view = explorer.compute(projection="pca", clustering="kmeans", n_clusters=3)
    >>> view.coords.shape, len(set(view.clusters))
    ((40, 2), 3)
    >>> same, other = explorer.similar(0, k=3)
    >>> len(same), len(other)
    (3, 3)
    >>> import os, tempfile
    >>> path = explorer.save_html(os.path.join(tempfile.mkdtemp(), "latents.html"))
    >>> explorer.serve(port=8050)  # doctest: +SKIP
    """

    def __init__(
        self,
        images,
        embedding=None,
        estimator=None,
        metadata=None,
        labels=None,
        ids=None,
        *,
        n_neighbors=6,
        rgb_bands=None,
        band_names=None,
        batch_size=1024,
        random_state=0,
        label_file=None,
    ):
        self._raw_images = images if hasattr(images, "shape") else np.asarray(images)
        self.images = as_nchw(self._raw_images)
        n_images = len(self.images)
        if n_images < 3:
            # its 2-D projections (and the neighbours they are checked against) need 3
            raise ValueError(f"the explorer needs at least 3 images, got {n_images}")
        self.n_neighbors = int(n_neighbors)
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.random_state = int(random_state)

        self.ids = np.arange(n_images).astype(str) if ids is None else np.asarray(ids).astype(str)
        if self.ids.shape != (n_images,):
            raise ValueError(f"ids must have shape ({n_images},), got {self.ids.shape}")
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and self.labels.shape != (n_images,):
            raise ValueError(f"labels must have shape ({n_images},), got {self.labels.shape}")
        self.metadata = None
        if metadata is not None:
            self.metadata = pd.DataFrame(metadata).reset_index(drop=True)
            if len(self.metadata) != n_images:
                raise ValueError(
                    f"metadata has {len(self.metadata)} rows for {n_images} images; give one "
                    "row per image, in the same order"
                )

        # name -> (kind, payload): "array" -> float32 array, "estimator" -> estimator,
        # "pixels" -> None. Estimator and pixel embeddings are computed on first use.
        self._sources = {}
        embeddings = embedding if isinstance(embedding, dict) else {"embedding": embedding}
        for name, values in embeddings.items():
            if values is not None:
                self._sources[str(name)] = ("array", _check_embedding(name, values, n_images))
        estimators = (
            estimator
            if isinstance(estimator, dict)
            else {type(estimator).__name__: estimator}
            if estimator is not None
            else {}
        )
        for name, model in estimators.items():
            if not hasattr(model, "transform"):
                raise TypeError(f"estimator {name!r} has no transform method")
            name = str(name)
            while name in self._sources:
                name += "'"
            self._sources[name] = ("estimator", model)
        if not self._sources:
            self._sources["pixels"] = ("pixels", None)
        self.embedding_names = list(self._sources)

        self._thumbnails = ThumbnailRenderer(self.images, rgb_bands=rgb_bands)
        n_bands = self.images.shape[1]
        self.band_names = (
            [str(b) for b in band_names]
            if band_names is not None
            else [f"band {b}" for b in range(n_bands)]
        )
        if len(self.band_names) != n_bands:
            raise ValueError(f"band_names has {len(self.band_names)} names for {n_bands} bands")

        self._lock = threading.Lock()
        self._compute_locks = {}
        self._embeddings = {}
        self._neighbour_indices = {}
        self._views = collections.OrderedDict()
        self._current_key = None
        self._jobs = Jobs(self._compute_spec)
        self._label_store = LabelStore(self.ids, label_file)
        self._anomaly_scores = {}
        self._rankings = {}

    def __len__(self):
        return len(self.images)

    # -- embeddings ---------------------------------------------------------------------------

    def get_embedding(self, name=None, progress=None):
        """The ``(n, k)`` float32 embedding called ``name``, computing it on first use.

        Parameters
        ----------
        name : str, default=None
            One of :attr:`embedding_names`; default the first.
        progress : callable(fraction, message), default=None
            Told after each batch when an estimator's ``transform`` runs.
        """
        name = self.embedding_names[0] if name is None else str(name)
        if name not in self._sources:
            raise KeyError(f"no embedding {name!r}; choose one of {self.embedding_names}")
        with self._lock:
            if name in self._embeddings:
                return self._embeddings[name]
            compute_lock = self._compute_locks.setdefault(("embedding", name), threading.Lock())
        # A per-embedding lock, not self._lock: a long transform must not block the clicks
        # and progress polls that only read finished state.
        with compute_lock:
            with self._lock:
                if name in self._embeddings:
                    return self._embeddings[name]
            kind, payload = self._sources[name]
            if kind == "array":
                values = payload
            elif kind == "pixels":
                values = np.asarray(self.images, dtype=np.float32).reshape(len(self), -1)
                values = _check_embedding(name, values, len(self))
            else:
                values = _check_embedding(name, self._transform(name, payload, progress), len(self))
            with self._lock:
                self._embeddings[name] = values
        return values

    def _transform(self, name, estimator, progress):
        n_images = len(self)
        parts = []
        for start in range(0, n_images, self.batch_size):
            if progress is not None:
                progress(0.5 * start / n_images, f"embedding images {start}/{n_images} with {name}")
            batch = self._raw_images[start : start + self.batch_size]
            parts.append(np.asarray(estimator.transform(batch), dtype=np.float32))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _neighbour_index(self, name):
        with self._lock:
            if name in self._neighbour_indices:
                return self._neighbour_indices[name]
            compute_lock = self._compute_locks.setdefault(("neighbours", name), threading.Lock())
        with compute_lock:
            with self._lock:
                if name in self._neighbour_indices:
                    return self._neighbour_indices[name]
            index = NeighbourIndex(self.get_embedding(name))
            with self._lock:
                self._neighbour_indices[name] = index
        return index

    # -- views --------------------------------------------------------------------------------

    def _make_spec(self, embedding=None, projection=None, n_dims=2, **params):
        name = self.embedding_names[0] if embedding is None else str(embedding)
        if name not in self._sources:
            raise KeyError(f"no embedding {name!r}; choose one of {self.embedding_names}")
        if projection is None:
            kind, payload = self._sources[name]
            # An embedding that is already 2-D/3-D (a saved UMAP, say) is shown as it is.
            as_is = kind == "array" and payload.shape[1] == n_dims
            projection = "none" if as_is else "pca"
        params.setdefault("random_state", self.random_state)
        return ViewSpec(embedding=name, projection=projection, n_dims=n_dims, **params).validate()

    def _compute_spec(self, spec, progress=None):
        progress = progress or (lambda fraction, message: None)
        key = format(abs(hash(spec)), "x")
        with self._lock:
            cached = self._views.get(key)
        if cached is None:
            embedding = self.get_embedding(spec.embedding, progress)

            def scaled(fraction, message):
                progress(0.5 + 0.45 * fraction, message)

            cached = compute_view(spec, embedding, scaled)
            progress(0.95, "building the neighbour index")
            self._neighbour_index(spec.embedding)
            with self._lock:
                self._views[key] = cached
                while len(self._views) > _MAX_VIEWS:
                    self._views.popitem(last=False)
        with self._lock:
            self._views.move_to_end(key)
            self._current_key = key
        return cached

    def compute(self, embedding=None, *, projection=None, n_dims=2, clustering="none", **params):
        """Project and cluster an embedding, and make it the view shown and exported.

        Parameters
        ----------
        embedding : str, default=None
            One of :attr:`embedding_names`; default the first.
        projection : {"none", "pca", "tsne", "umap"}, default=None
            None shows a 2-D (3-D) precomputed embedding as it is and uses PCA otherwise.
        n_dims : {2, 3}, default=2
        clustering : {"none", "kmeans", "hdbscan", "spectral"}, default="none"
        **params
            Further :class:`ViewSpec` settings: ``cluster_space``, ``perplexity``,
            ``umap_n_neighbors``, ``min_dist``, ``n_clusters``, ``min_cluster_size``,
            ``min_samples``, ``random_state``.

        Returns
        -------
        View
            With ``coords`` (n, n_dims) and ``clusters`` (n,) or None. Cached: the same
            settings return the same view at once.
        """
        spec = self._make_spec(embedding, projection, n_dims, clustering=clustering, **params)
        return self._compute_spec(spec)

    @property
    def view(self):
        """The current view: the last computed, or a default PCA (or as-is) view."""
        with self._lock:
            key = self._current_key
            if key is not None and key in self._views:
                return self._views[key]
        return self.compute()

    def _view_for(self, key):
        """The view a page refers to by key, or the current one if it was evicted."""
        with self._lock:
            if key is not None and key in self._views:
                return self._views[key]
        return self.view

    def similar(self, index, k=None, view=None):
        """Nearest images to image ``index`` in the embedding, within and outside its cluster.

        Parameters
        ----------
        index : int
        k : int, default=None
            Images per list; default ``n_neighbors``.
        view : View, default=None
            Supplies the clusters; default the current view.

        Returns
        -------
        same, other : ndarray of int
            Indices, nearest first, of images in the same cluster and in other clusters
            (``other`` is empty without clustering). Noise points (-1) form their own group
            in ``same`` and never appear in ``other``.
        """
        view = self.view if view is None else view
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range [0, {len(self)})")
        k = self.n_neighbors if k is None else int(k)
        return self._neighbour_index(view.spec.embedding).similar(index, view.clusters, k)

    # -- labels and anomalies -----------------------------------------------------------------

    @property
    def label_file(self):
        """The CSV file the labels are saved to, or None (kept in memory)."""
        return self._label_store.path

    @property
    def user_labels(self):
        """The labels given in the app (or :meth:`set_label`), ``""`` for none; shape (n,)."""
        return self._label_store.labels()

    def set_label(self, indices, label):
        """Label images and save the labels file at once.

        Parameters
        ----------
        indices : int or array-like of int
        label : str or None
            ``"interesting"``, ``"not interesting"``, any class name, or None (or ``""``)
            to remove the label.

        Returns
        -------
        int
            How many images changed label.
        """
        return self._label_store.set(indices, label)

    def rank_options(self):
        """Scores the anomaly gallery can rank by, as ``(value, label)`` pairs: the kNN
        outlier score in the embedding, then every numeric metadata column."""
        options = [(KNN_SCORE, "kNN outlier score")]
        if self.metadata is not None:
            for i, column in enumerate(self.metadata.columns):
                values = self.metadata[column]
                if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                    options.append((f"meta:{i}", str(column)))
        return options

    def anomaly_score(self, rank_by=KNN_SCORE, embedding=None):
        """The score the gallery ranks by (higher = more anomalous).

        Parameters
        ----------
        rank_by : str, default="knn"
            ``"knn"``: the mean distance to the 5 nearest neighbours in the embedding (the
            negative :meth:`skastro.KNNOutlierDetector.score_samples`), computed once per
            embedding; ``"meta:<column number>"``: a numeric metadata column as it is
            (missing values rank last).
        embedding : str, default=None
            Default the embedding of the current view.
        """
        if isinstance(rank_by, str) and rank_by.startswith("meta:") and self.metadata is not None:
            try:
                column = self.metadata.iloc[:, int(rank_by[5:])]
            except (ValueError, IndexError) as exc:
                raise KeyError(f"no score {rank_by!r}") from exc
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            return np.where(np.isfinite(values), values, -np.inf)
        if rank_by != KNN_SCORE:
            raise KeyError(f"no score {rank_by!r}; choose one of {self.rank_options()}")
        name = self.view.spec.embedding if embedding is None else str(embedding)
        with self._lock:
            cached = self._anomaly_scores.get(name)
        if cached is None:
            cached = knn_anomaly_score(self.get_embedding(name))
            with self._lock:
                self._anomaly_scores[name] = cached
        return cached

    def ranking(self, rank_by=KNN_SCORE, embedding=None, use_labels=True):
        """The anomaly ranking, re-ranked from the labels (see :func:`rerank`).

        Parameters
        ----------
        rank_by : str, default="knn"
            As in :meth:`anomaly_score`.
        embedding : str, default=None
            The embedding the light model learns on; default the current view's.
        use_labels : bool, default=True
            False ranks by the score alone.

        Returns
        -------
        Ranking
            ``order`` (indices, most anomalous first), ``before`` and ``after`` (each
            image's rank without and with the labels), ``model`` (what re-ranked it).
        """
        name = self.view.spec.embedding if embedding is None else str(embedding)
        score = self.anomaly_score(rank_by, name)
        labels = self.user_labels if use_labels else np.full(len(self), "", dtype=object)
        key = (name, rank_by, self._label_store.version if use_labels else -1)
        with self._lock:
            cached = self._rankings.get(key)
        if cached is None:
            cached = rerank(self.get_embedding(name), score, labels, random_state=self.random_state)
            with self._lock:
                if len(self._rankings) > 8:
                    self._rankings.clear()
                self._rankings[key] = cached
        return cached

    # -- background jobs ----------------------------------------------------------------------

    def _start_job(self, spec):
        return self._jobs.start(spec)

    def _job(self, job_id):
        return self._jobs.get(job_id)

    # -- colourings and instance data ---------------------------------------------------------

    def color_options(self, view=None):
        """Colourings available for a view, as ``(value, label)`` pairs."""
        view = self.view if view is None else view
        options = [("none", "none")]
        if view.clusters is not None:
            options.append(("cluster", "cluster"))
        if self.labels is not None:
            options.append(("label", "label"))
        options.append(("user-label", "your labels"))
        options.append((KNN_SCORE, "kNN outlier score"))
        if self.metadata is not None:
            options += [(f"meta:{i}", str(c)) for i, c in enumerate(self.metadata.columns)]
        return options

    def default_color(self, view=None):
        """The colouring a view opens with: cluster, else label, else none."""
        view = self.view if view is None else view
        if view.clusters is not None:
            return "cluster"
        return "label" if self.labels is not None else "none"

    def color_values(self, view, color_by):
        """``(values, kind, name)`` for ``color_by``, as :func:`build_figure` takes them."""
        if color_by == "cluster" and view.clusters is not None:
            return view.clusters, "cluster", "cluster"
        if color_by == "label" and self.labels is not None:
            kind = "categorical" if is_categorical(self.labels) else "continuous"
            return self.labels, kind, "label"
        if color_by == "user-label":
            labels = self.user_labels
            return np.where(labels == "", "unlabelled", labels), "categorical", "your labels"
        if color_by == KNN_SCORE:
            return self.anomaly_score(KNN_SCORE, view.spec.embedding), "continuous", "kNN score"
        if isinstance(color_by, str) and color_by.startswith("meta:") and self.metadata is not None:
            try:
                column = self.metadata.iloc[:, int(color_by[5:])]
            except (ValueError, IndexError):
                return None, "none", ""
            kind = "categorical" if is_categorical(column) else "continuous"
            return column.to_numpy(), kind, str(column.name)
        return None, "none", ""

    def figure(self, view=None, color_by=None, selected=None):
        """The scatter of a view as a plotly figure dictionary.

        Parameters
        ----------
        view : View, default=None
            Default the current view.
        color_by : str, default=None
            ``"none"``, ``"cluster"``, ``"label"`` or ``"meta:<column number>"`` (see
            :meth:`color_options`); default :meth:`default_color`.
        selected : int, default=None
            Point to ring.
        """
        view = self.view if view is None else view
        color_by = self.default_color(view) if color_by is None else color_by
        values, kind, name = self.color_values(view, color_by)
        return build_figure(
            view.coords,
            values,
            color_kind=kind,
            color_name=name,
            title=view.spec.describe(),
            uirevision=view.key,
            selected=selected,
        )

    def instance_record(self, index, view=None):
        """Fields shown for image ``index``: id, index, label, cluster and metadata.

        Returns
        -------
        list of (str, str)
        """
        view = self.view if view is None else view
        index = int(index)
        record = [("id", self.ids[index]), ("index", str(index))]
        label = self._label_store.get(index)
        record.append(("your label", label if label is not None else "none"))
        if self.labels is not None:
            record.append(("label", _format_value(self.labels[index])))
        if view.clusters is not None:
            cluster = int(view.clusters[index])
            record.append(("cluster", "noise" if cluster < 0 else str(cluster)))
        shape = self.images.shape[1:]
        record.append(("shape", "x".join(str(s) for s in shape)))
        if self.metadata is not None:
            row = self.metadata.iloc[index]
            for column, value in row.items():
                # an id column (from the loader or a --metadata CSV) repeats the id above
                if str(column).lower() in _ID_NAMES and str(value) == self.ids[index]:
                    continue
                record.append((str(column), _format_value(value)))
        return record

    def thumbnail(self, index, *, stretch="asinh", band=None, size=64):
        """PNG bytes of image ``index`` (see :func:`render_png` for the stretches)."""
        return self._thumbnails.png(index, stretch=stretch, band=band, size=size)

    # -- outputs ------------------------------------------------------------------------------

    def make_app(self):
        """Build the Dash app (not started): for embedding in a larger Flask/Dash server.

        Returns
        -------
        dash.Dash
        """
        from skastro.explorer._app import build_app

        return build_app(self)

    def serve(self, host="127.0.0.1", port=8050, *, block=True):
        """Serve the explorer over HTTP.

        Parameters
        ----------
        host : str, default="127.0.0.1"
            Interface to listen on. The app has no authentication: listen on another
            interface (``"0.0.0.0"``) only on a network you trust.
        port : int, default=8050
            0 picks a free port.
        block : bool, default=True
            Serve until interrupted (Ctrl+C). With False, serve from a background thread and
            return at once.

        Returns
        -------
        ExplorerServer or None
            With ``block=False``, a handle with ``url`` and ``shutdown()``.
        """
        from skastro.explorer._server import serve

        return serve(self.make_app(), host, port, block=block)

    def save_html(
        self,
        path,
        *,
        views=None,
        color_by=None,
        thumbnail_size=48,
        max_thumbnails=10000,
        stretch="asinh",
        band=None,
    ):
        """Write views as one self-contained HTML file with hover thumbnails.

        plotly.js and the thumbnails are embedded, so the file opens anywhere without a
        server or a network connection. The hover card shows the image, its id and what it
        is coloured by (its cluster, class or value).

        Parameters
        ----------
        path : str or path-like
        views : list of View, default=None
            The views to show, side by side (two per row): e.g. one per embedding, from
            :meth:`compute`. Default the current view.
        color_by : str, default=None
            As in :meth:`figure`; default each view's own (cluster, else label).
        thumbnail_size : int, default=48
            Longer side of the hover thumbnails in pixels.
        max_thumbnails : int, default=10000
            Every point is plotted, but beyond this many points only a random subset gets a
            thumbnail (about 1 kB each) to keep the file shareable.
        stretch : {"asinh", "log", "sqrt", "linear"}, default="asinh"
        band : int or "rgb", default=None

        Returns
        -------
        str
            The path written.
        """
        from skastro.explorer._html_export import write_html

        return write_html(
            self,
            path,
            views=views,
            color_by=color_by,
            thumbnail_size=thumbnail_size,
            max_thumbnails=max_thumbnails,
            stretch=stretch,
            band=band,
        )
