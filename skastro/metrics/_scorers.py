"""Scorers with the scikit-learn signature ``scorer(estimator, X, y=None) -> float``.

:func:`silhouette_scorer`, :func:`dbcv_scorer`, :func:`auc_scorer` and the factories
:func:`make_clustering_scorer`, :func:`make_auc_scorer` plug into
``GridSearchCV(scoring=...)``, into a multi-metric ``scoring={...}`` dict, and, being plain
callables with that signature, into skorch's ``EpochScoring(scoring=...)`` too.
"""

import math
import numbers
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

# The score given when a clustering cannot be scored: the bottom of both the silhouette and
# the DBCV range, so a degenerate candidate always loses a hyperparameter search.
_WORST_SCORE = -1.0


# --------------------------------------------------------------------------------------------
# clustering scorers
# --------------------------------------------------------------------------------------------


def _silhouette(Z, labels):
    return silhouette_score(Z, labels)


def _dbcv(Z, labels):
    from hdbscan.validity import validity_index

    # DBCV raises powers of inverse distances to the embedding dimension, which over- and
    # underflows for close points in high dimensions, and divides by zero for duplicate points
    # or single-point clusters; all of these end as an exception or a non-finite value, which
    # the caller turns into the worst score with a warning.
    clusters, sizes = np.unique(labels, return_counts=True)
    if (sizes < 2).any():
        # hdbscan's validity_index fails on these with "Invalid shape in axis 0: 0."
        alone = ", ".join(str(c) for c in clusters[sizes < 2][:5])
        warnings.warn(
            f"DBCV is undefined when a cluster has a single point (cluster {alone} here): "
            f"this candidate scores {_WORST_SCORE}, the worst",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return _WORST_SCORE
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(validity_index(np.ascontiguousarray(Z, dtype=np.float64), labels))
        except (ValueError, ZeroDivisionError, FloatingPointError, IndexError) as exc:
            warnings.warn(
                f"DBCV cannot be computed for this clustering (hdbscan: {exc}): this candidate "
                f"scores {_WORST_SCORE}, the worst",
                UndefinedMetricWarning,
                stacklevel=3,
            )
            return _WORST_SCORE


_CLUSTERING_METRICS = {"silhouette": _silhouette, "dbcv": _dbcv}


def _predict_clusters(clusterer, Z):
    """Label ``Z`` with an already fitted clusterer, the way the Scorers contract says."""
    if type(clusterer).__module__.split(".")[0] == "hdbscan" and hasattr(
        clusterer, "prediction_data_"
    ):
        import hdbscan

        labels, _ = hdbscan.approximate_predict(clusterer, Z)
        return labels
    if hasattr(clusterer, "predict"):
        return clusterer.predict(Z)
    # No way to label new points (DBSCAN, AgglomerativeClustering, HDBSCAN without prediction
    # data): cluster the scored data afresh with the same hyperparameters.
    return clone(clusterer).fit_predict(Z)


def _embed_and_label(estimator, X, clusterer=None):
    if clusterer is not None:
        Z = estimator.transform(X)
        return Z, clone(clusterer).fit_predict(Z)
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        Z = estimator[:-1].transform(X) if len(estimator.steps) > 1 else X
    else:
        final, Z = estimator, X
    return Z, _predict_clusters(final, Z)


class _ClusteringScorer:
    """Callable made by :func:`make_clustering_scorer`; a class so that it pickles."""

    def __init__(self, metric, noise_penalty, sample_size, random_state, clusterer):
        self.metric = metric
        self.noise_penalty = noise_penalty
        self.sample_size = sample_size
        self.random_state = random_state
        self.clusterer = clusterer

    def __call__(self, estimator, X, y=None):
        Z, labels = _embed_and_label(estimator, X, self.clusterer)
        return self._score(Z, labels)

    def _score(self, Z, labels):
        Z = np.asarray(Z, dtype=np.float64)
        Z = Z.reshape(len(Z), -1)
        labels = np.asarray(labels).ravel()
        if len(labels) != len(Z):
            raise ValueError(f"got {len(labels)} labels for {len(Z)} samples")
        # -1 is noise for (H)DBSCAN; sklearn's HDBSCAN also uses -2 and -3 for special points.
        noise = labels < 0 if labels.dtype.kind in "iuf" else np.zeros(len(labels), bool)
        noise_fraction = float(noise.mean()) if len(labels) else 1.0
        Z, labels = Z[~noise], labels[~noise]

        if self.sample_size is not None and len(labels) > self.sample_size:
            rng = check_random_state(self.random_state)
            keep = np.sort(rng.choice(len(labels), self.sample_size, replace=False))
            Z, labels = Z[keep], labels[keep]

        # silhouette and DBCV need integer labels 0..k-1, at least two clusters and fewer
        # clusters than points
        _, labels = np.unique(labels, return_inverse=True)
        n_clusters = labels.max() + 1 if len(labels) else 0
        if n_clusters < 2 or n_clusters >= len(labels):
            return _WORST_SCORE
        if not np.isfinite(Z).all():
            warnings.warn(
                f"the embedding has non-finite values; scoring it {_WORST_SCORE}",
                UndefinedMetricWarning,
                stacklevel=3,
            )
            return _WORST_SCORE

        metric = _CLUSTERING_METRICS.get(self.metric, self.metric)
        score = float(metric(Z, labels))
        if not math.isfinite(score):
            warnings.warn(
                f"the clustering metric returned {score}; scoring it {_WORST_SCORE}",
                UndefinedMetricWarning,
                stacklevel=3,
            )
            return _WORST_SCORE
        if self.noise_penalty:
            weight = 1.0 if self.noise_penalty is True else float(self.noise_penalty)
            # the noise points count as the worst score (weight 1) instead of being dropped
            score -= weight * noise_fraction * (score - _WORST_SCORE)
        return score

    def __repr__(self):
        name = getattr(self.metric, "__name__", self.metric)
        return (
            f"make_clustering_scorer({name!r}, noise_penalty={self.noise_penalty!r}, "
            f"sample_size={self.sample_size!r}, random_state={self.random_state!r}, "
            f"clusterer={self.clusterer!r})"
        )


def make_clustering_scorer(
    metric="silhouette", *, noise_penalty=False, sample_size=5000, random_state=0, clusterer=None
):
    """Make a scorer that rates the clustering done by a fitted pipeline.

    The scorer has the scikit-learn signature ``scorer(estimator, X, y=None) -> float`` and
    "higher is better". Given a fitted :class:`~sklearn.pipeline.Pipeline` whose last step is
    a clusterer (or a bare clusterer, and then ``X`` is already the embedding) it:

    1. embeds ``X`` with the steps before the last (``pipeline[:-1].transform(X)``);
    2. labels the embedding with the clusterer's ``predict``; for an ``hdbscan.HDBSCAN`` fitted
       with ``prediction_data=True``, with ``hdbscan.approximate_predict``; a clusterer with
       neither (DBSCAN, agglomerative, HDBSCAN without prediction data) is re-fitted on the
       scored embedding with ``clone(clusterer).fit_predict``, so the score then rates a
       fresh clustering of the scored data with the same hyperparameters;
    3. drops noise points (negative labels) and, above ``sample_size`` points, a seeded random
       subsample of the rest;
    4. returns ``metric(embedding, labels)``, or -1.0 (the worst score) when fewer than two
       clusters remain, when there are as many clusters as points, or, with an
       :class:`~sklearn.exceptions.UndefinedMetricWarning`, when the embedding or the metric
       is not finite.

    Parameters
    ----------
    metric : {"silhouette", "dbcv"} or callable, default="silhouette"
        ``"silhouette"``: :func:`sklearn.metrics.silhouette_score`. ``"dbcv"``: density-based
        cluster validity, ``hdbscan.validity.validity_index`` on float64 data. A callable is
        called as ``metric(Z, labels)`` with noise removed and labels recoded to ``0..k-1``;
        it should return a "higher is better" float whose worst value is -1.
    noise_penalty : bool or float in [0, 1], default=False
        Dropping HDBSCAN's noise points flatters the score (label everything hard as noise and
        the rest looks clean). With a weight ``w`` (``True`` means 1), a fraction ``f`` of
        noise points turns a score ``s`` into ``s - w * f * (s + 1)``: with ``w=1`` it is the
        average over all points when every noise point scores the worst value -1. (Multiplying
        by ``1 - f`` was rejected: it would raise a negative score.)
    sample_size : int or None, default=5000
        Score at most this many (non-noise) points; silhouette and DBCV cost O(n^2) time and
        memory. ``None`` scores all points.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsample. An int gives the same subsample, hence the same score, on
        every call.
    clusterer : estimator or None, default=None
        If given, the scored estimator is an embedder rather than a clustering pipeline: the
        scorer computes ``estimator.transform(X)`` and labels it with
        ``clone(clusterer).fit_predict``. This is the form for skorch's ``EpochScoring``,
        which passes the network itself.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``; picklable.

    See Also
    --------
    silhouette_scorer, dbcv_scorer : the two scorers made with the defaults.

    Notes
    -----
    The same scorer serves skorch during training, e.g.
    ``EpochScoring(make_clustering_scorer(clusterer=KMeans(3)), lower_is_better=False)``.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.pipeline import make_pipeline
    >>> X, _ = make_blobs(n_samples=60, centers=3, n_features=5, random_state=0)
    >>> pipe = make_pipeline(PCA(2), KMeans(3, n_init=3, random_state=0)).fit(X)
    >>> scorer = make_clustering_scorer("silhouette", noise_penalty=True)
    >>> round(scorer(pipe, X), 2)
    0.84
    """
    if not (callable(metric) or metric in _CLUSTERING_METRICS):
        raise ValueError(
            f"metric must be one of {sorted(_CLUSTERING_METRICS)} or a callable, got {metric!r}"
        )
    if not isinstance(noise_penalty, bool | numbers.Real) or not 0 <= noise_penalty <= 1:
        raise ValueError(
            f"noise_penalty must be a bool or a float in [0, 1], got {noise_penalty!r}"
        )
    if sample_size is not None and (
        not isinstance(sample_size, numbers.Integral)
        or isinstance(sample_size, bool)
        or sample_size < 2
    ):
        raise ValueError(f"sample_size must be None or an int >= 2, got {sample_size!r}")
    return _ClusteringScorer(metric, noise_penalty, sample_size, random_state, clusterer)


silhouette_scorer = make_clustering_scorer("silhouette")
silhouette_scorer.__doc__ = """Silhouette score of a fitted clustering pipeline, noise ignored.

``silhouette_scorer(estimator, X, y=None) -> float`` in [-1, 1]; -1.0 when fewer than two
clusters remain. Made by ``make_clustering_scorer("silhouette")``, which documents how the
points are embedded and labelled; at most 5000 points are scored (seeded subsample).
"""

dbcv_scorer = make_clustering_scorer("dbcv")
dbcv_scorer.__doc__ = """Density-based cluster validity (DBCV) of a fitted clustering pipeline.

``dbcv_scorer(estimator, X, y=None) -> float`` in [-1, 1], computed by
``hdbscan.validity.validity_index`` on the non-noise points; -1.0 when fewer than two clusters
remain or when DBCV is not finite (with a warning). Made by ``make_clustering_scorer("dbcv")``.
"""


# --------------------------------------------------------------------------------------------
# AUC scorer
# --------------------------------------------------------------------------------------------


def _continuous_scores(estimator, X):
    if hasattr(estimator, "decision_function"):
        scores = np.asarray(estimator.decision_function(X))
    elif hasattr(estimator, "predict_proba"):
        scores = np.asarray(estimator.predict_proba(X))
        scores = scores[:, 1] if scores.ndim == 2 else scores
    elif hasattr(estimator, "score_samples"):
        scores = np.asarray(estimator.score_samples(X))
    else:
        raise TypeError(
            f"{type(estimator).__name__} has none of decision_function, predict_proba and "
            "score_samples, so it gives no continuous score to rank by"
        )
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        raise ValueError(f"expected one score per sample, got an array of shape {scores.shape}")
    return scores


class _AUCScorer:
    """Callable made by :func:`make_auc_scorer`; a class so that it pickles."""

    def __init__(self, sign_invariant):
        self.sign_invariant = sign_invariant

    def __call__(self, estimator, X, y=None):
        if y is None:
            raise ValueError("the AUC scorer needs held-out labels y")
        classes = np.unique(np.asarray(y))
        if len(classes) != 2:
            raise ValueError(
                f"the AUC scorer ranks two classes, but y holds {len(classes)}: "
                f"{classes[:5].tolist()}; pass binary labels (e.g. y == the class of interest)"
            )
        auc = float(roc_auc_score(y, _continuous_scores(estimator, X)))
        if self.sign_invariant:
            auc = max(auc, 1.0 - auc)
        return auc

    def __repr__(self):
        return f"make_auc_scorer(sign_invariant={self.sign_invariant!r})"


def make_auc_scorer(*, sign_invariant=False):
    """Make a ROC AUC scorer for an unsupervised binary classifier.

    The scorer ``scorer(estimator, X, y) -> float`` ranks ``X`` by the estimator's
    ``decision_function``, else ``predict_proba(X)[:, 1]``, else ``score_samples``, and
    returns :func:`sklearn.metrics.roc_auc_score` against the held-out labels ``y``. As in
    scikit-learn, the positive class is the greater label (``1``, or ``'STAR'`` against
    ``'GALAXY'``), and higher scores should mean "more positive".

    Parameters
    ----------
    sign_invariant : bool, default=False
        An unsupervised classifier names its two classes arbitrarily, so the same model can
        score 0.9 or 0.1 depending on a random seed. With ``True`` the scorer returns
        ``max(auc, 1 - auc)``: how well the score separates the classes, whichever way round.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float`` in [0, 1]; picklable, usable with
        ``GridSearchCV`` and skorch's ``EpochScoring``.

    See Also
    --------
    auc_scorer : the plain (sign-sensitive) scorer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> reversed_clf = LogisticRegression().fit(X, 1 - y)
    >>> auc_scorer(reversed_clf, X, y), make_auc_scorer(sign_invariant=True)(reversed_clf, X, y)
    (0.0, 1.0)
    """
    return _AUCScorer(bool(sign_invariant))


auc_scorer = make_auc_scorer()
auc_scorer.__doc__ = """ROC AUC of an unsupervised binary classifier against held-out labels.

``auc_scorer(estimator, X, y) -> float``: ranks by ``decision_function``, else
``predict_proba[:, 1]``, else ``score_samples``. Sign-sensitive; see :func:`make_auc_scorer`
for the ``sign_invariant`` variant.
"""
