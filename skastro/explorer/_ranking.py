"""Anomaly ranking, and re-ranking from the user's labels (active learning).

The explorer ranks images by an anomaly score (by default the kNN outlier score of
:class:`~skastro.KNNOutlierDetector` in the embedding shown). Once the user has marked some
images *interesting* or *not interesting*, a light model learns from them what the user is
looking for and moves similar images up and down the ranking, as Astronomaly does (Lochner &
Bassett 2021): anomaly detectors also find anomalous but dull objects (artefacts, bright
stars), and a few labels are enough to push those down.

The model is a logistic regression on the standardised embedding; the gallery sorts by the
sum of each image's rank quantile by the anomaly score and by the model's probability, so
an image must be both anomalous and like the interesting ones to reach the top (Astronomaly
blends its predicted user score with the anomaly score in the same spirit). On injected
artefacts in make_galaxies this sum did better than the model alone or than a blend
weighted by the distance to the nearest label (``benchmarks/bench_explorer_loop.py``).
Class names other than interesting / not interesting do not enter the ranking.

Plain numpy and scikit-learn, no Dash: the app and ``benchmarks/bench_explorer_loop.py`` use
the same functions.
"""

import dataclasses

import numpy as np

from skastro.explorer._labels import INTERESTING, NOT_INTERESTING

__all__ = ["Ranking", "knn_anomaly_score", "rank_positions", "rerank"]

# neighbours averaged by the default anomaly score (KNNOutlierDetector's default)
N_NEIGHBORS = 5
# the embedding is reduced to at most this many principal components before the logistic
# regression: a handful of labels cannot pin down hundreds of weights
_MAX_MODEL_DIMS = 32


def knn_anomaly_score(embedding, n_neighbors=N_NEIGHBORS):
    """Mean distance of each point to its ``n_neighbors`` nearest others (higher = odder).

    The negative of :meth:`skastro.KNNOutlierDetector.score_samples` on its own training
    set, so each point does not count itself.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[0.0], [0.1], [0.2], [0.3], [5.0]])
    >>> int(np.argmax(knn_anomaly_score(Z, n_neighbors=2)))
    4
    """
    from skastro.anomaly import KNNOutlierDetector

    embedding = np.asarray(embedding, dtype=np.float32)
    k = int(min(n_neighbors, len(embedding) - 1))
    detector = KNNOutlierDetector(n_neighbors=k).fit(embedding)
    return -np.asarray(detector.training_scores_, dtype=np.float64)


def rank_positions(score):
    """Rank of each item when sorted by ``score``, highest first (0 = top); ties by index.

    Examples
    --------
    >>> rank_positions([0.2, 0.9, 0.5]).tolist()
    [2, 0, 1]
    """
    score = np.asarray(score, dtype=np.float64)
    order = np.lexsort((np.arange(len(score)), -np.nan_to_num(score, nan=-np.inf)))
    ranks = np.empty(len(score), dtype=np.int64)
    ranks[order] = np.arange(len(score))
    return ranks


def _quantiles(score):
    """Scores as their rank quantile in (0, 1], 1 for the most anomalous."""
    n = len(score)
    return 1.0 - rank_positions(score) / n


@dataclasses.dataclass
class Ranking:
    """An anomaly ranking before and after learning from labels.

    Attributes
    ----------
    score : ndarray of shape (n,)
        The anomaly score (higher = more anomalous).
    final : ndarray of shape (n,)
        The score the gallery sorts by: ``score``'s rank quantile, moved by the labels.
    order : ndarray of int
        Indices sorted by ``final``, highest first.
    before, after : ndarray of int of shape (n,)
        Rank of each image by ``score`` alone and by ``final`` (0 = top).
    model : str
        What re-ranked it, in words ("anomaly score only" without labels).
    n_interesting, n_not_interesting : int
        Labels used.
    """

    score: np.ndarray
    final: np.ndarray
    order: np.ndarray
    before: np.ndarray
    after: np.ndarray
    model: str
    n_interesting: int = 0
    n_not_interesting: int = 0


def _reduced(embedding, random_state):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(np.asarray(embedding, dtype=np.float64))
    n_components = min(_MAX_MODEL_DIMS, Z.shape[1], len(Z))
    if n_components < Z.shape[1]:
        Z = PCA(n_components, random_state=random_state).fit_transform(Z)
        Z /= Z[:, :1].std() or 1.0
    return Z


def _nearest_distance(Z, indices):
    """Distance of every point to the nearest of ``indices`` (0 for those points)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(Z[indices])
    return nn.kneighbors(Z)[0][:, 0]


def rerank(embedding, score, labels, *, random_state=0):
    """Re-rank ``score`` with the user's labels.

    The score and a light model's prediction count equally: each image's rank quantile by
    the score plus its rank quantile by the model. The model is a logistic regression of
    interesting (1) against not interesting (0) on the standardised embedding (reduced to
    its first 32 principal components); with labels of one kind only, closeness to the
    interesting images, or distance from the dull ones, stands in for it. Labelled images
    go first (interesting) and last (not interesting).

    Parameters
    ----------
    embedding : ndarray of shape (n, k)
    score : array-like of shape (n,)
        Anomaly score, higher = more anomalous.
    labels : array-like of str of shape (n,)
        ``"interesting"``, ``"not interesting"``, another class name (ignored here) or
        ``""`` for none.
    random_state : int, default=0

    Returns
    -------
    Ranking

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(6, 0.3, (5, 2)),
    ...           rng.normal(-6, 0.3, (5, 2))]
    >>> score = knn_anomaly_score(Z)
    >>> labels = np.full(60, "", dtype=object)
    >>> labels[50], labels[55] = "interesting", "not interesting"
    >>> ranking = rerank(Z, score, labels)
    >>> bool(set(ranking.order[:5]) == set(range(50, 55)))
    True
    """
    score = np.asarray(score, dtype=np.float64)
    labels = np.asarray(labels, dtype=object)
    n = len(score)
    if labels.shape != (n,) or len(embedding) != n:
        raise ValueError(f"embedding, score and labels must have {n} rows")
    quantile = _quantiles(score)
    positive = np.flatnonzero(labels == INTERESTING)
    negative = np.flatnonzero(labels == NOT_INTERESTING)
    before = rank_positions(score)
    if len(positive) + len(negative) == 0:
        return Ranking(score, quantile, np.argsort(before), before, before, "anomaly score only")

    Z = _reduced(embedding, random_state)
    if len(positive) and len(negative):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
        model.fit(
            Z[np.r_[positive, negative]], np.r_[np.ones(len(positive)), np.zeros(len(negative))]
        )
        learnt = model.predict_proba(Z)[:, 1]
        described = "a logistic regression on the embedding"
    elif len(positive):
        learnt = -_nearest_distance(Z, positive)
        described = "closeness to the interesting images"
    else:
        learnt = _nearest_distance(Z, negative)
        described = "distance from the images marked not interesting"
    final = quantile + _quantiles(learnt)
    # the labels themselves are certain: interesting first, not interesting last
    final[positive] = 3.0 + quantile[positive]
    final[negative] = -3.0 + quantile[negative]
    after = rank_positions(final)
    return Ranking(
        score,
        final,
        np.argsort(after),
        before,
        after,
        described,
        n_interesting=len(positive),
        n_not_interesting=len(negative),
    )
