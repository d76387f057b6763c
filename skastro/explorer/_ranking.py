"""Anomaly ranking, and re-ranking from the user's labels (active learning).

The explorer ranks images by an anomaly score (by default the kNN outlier score of
:class:`~skastro.KNNOutlierDetector` in the embedding shown). Once the user has marked some
images *interesting* or *not interesting*, the ranking learns from them what the user is
looking for, as Astronomaly does (Lochner & Bassett 2021): anomaly detectors also find
anomalous but dull objects (artefacts, bright stars), and a few labels are enough to push
those down.

As in Astronomaly's ``NeighbourScore``, the labels do not replace the score: they multiply
it by a *relevance* factor (between 0.05 and 2 for each of two models, 1 = no change) that
goes back to 1 away from the labelled images, so where the labels say nothing the score's
order stands. The two models, on the standardised embedding reduced to 32 principal
components:

* the labels of the nearest labelled images, weighted by how much nearer each is than the
  others (a sharp nearest-neighbour vote, with a pseudo-label of 1/2 worth one label, so a
  single label is weak evidence), trusted less the farther the nearest label is;
* positive-unlabelled learning: a logistic regression of the interesting images against
  the not-interesting ones and a random sample of unlabelled ones, taken as background
  negatives with a total weight equal to the interesting ones' (most images are normal),
  trusted only within about a neighbourhood of the labelled images, and by n / (n + 1)
  for n interesting images.

The labelled images themselves go first (interesting) and last (not interesting). On
injected artefacts in make_galaxies the product did better than rank-averaging the score
with a logistic regression of the labels alone, which had almost no negatives, lifted
normal images and lost the score's order (``benchmarks/bench_explorer_loop.py``). Class
names other than interesting / not interesting do not enter the ranking.

Plain numpy and scikit-learn, no Dash: the app and ``benchmarks/bench_explorer_loop.py`` use
the same functions.
"""

import dataclasses

import numpy as np

from skastro.explorer._labels import INTERESTING, NOT_INTERESTING

__all__ = ["Ranking", "knn_anomaly_score", "rank_positions", "rerank"]

# neighbours averaged by the default anomaly score (KNNOutlierDetector's default)
N_NEIGHBORS = 5
# the embedding is reduced to at most this many principal components before the models
# learn from the labels: a handful of labels cannot pin down hundreds of weights
_MAX_MODEL_DIMS = 32
# the nearest labelled images that vote, and the vote's sharpness: weight (d_1 / d_j) ** 8
_VOTERS, _VOTE_POWER = 10, 8
# the vote is trusted as exp(-_VOTE_REACH * (d / mean d) ** 2), d the distance to the nearest label
_VOTE_REACH = 1.0
_VOTE_PRIOR = 1.0
# unlabelled images sampled as background negatives for the positive-unlabelled model
_BACKGROUND = 200
# each model's relevance factor is clipped to this range (1 = leave the score alone)
_MIN_FACTOR, _MAX_FACTOR = 0.05, 2.0


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
        The score the gallery sorts by: without labels ``score``'s rank quantile; with
        labels the log of the (positive) score plus the log of the relevance, the labelled
        images above (interesting) and below (not interesting) every other.
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
    return Z


def _positive(score):
    """The score made positive, so that a factor can multiply it (kept as is when it is)."""
    if np.all(score > 0):
        return score
    low, middle = float(np.min(score)), float(np.median(score))
    spread = (middle - low) or float(np.ptp(score)) or 1.0
    return score - low + 0.05 * spread


def _factor(probability, trust):
    """Relevance factor from a probability of interest: 2p where trusted, 1 where not."""
    p = trust * probability + (1.0 - trust) * 0.5
    return np.clip(2.0 * p, _MIN_FACTOR, _MAX_FACTOR)


def _relevance(Z, positive, negative, random_state):
    """Each image's relevance factor from the labels (see the module docstring)."""
    from sklearn.neighbors import NearestNeighbors

    labelled = np.r_[positive, negative]
    y = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    k = min(_VOTERS, len(labelled))
    distance, nearest = NearestNeighbors(n_neighbors=k).fit(Z[labelled]).kneighbors(Z)
    d1 = np.maximum(distance[:, :1], 1e-12)
    weight = (d1 / np.maximum(distance, 1e-12)) ** _VOTE_POWER
    # a pseudo-label of 1/2 with the weight of one label: a single label is weak evidence
    vote = ((weight * y[nearest]).sum(1) + 0.5 * _VOTE_PRIOR) / (weight.sum(1) + _VOTE_PRIOR)
    d1 = d1[:, 0]
    factor = _factor(vote, np.exp(-_VOTE_REACH * (d1 / (d1.mean() or 1.0)) ** 2))
    if len(positive) == 0:
        return factor
    from sklearn.linear_model import LogisticRegression

    unlabelled = np.setdiff1d(np.arange(len(Z)), labelled)
    rng = np.random.default_rng(random_state)
    background = rng.choice(unlabelled, min(_BACKGROUND, len(unlabelled)), replace=False)
    X = Z[np.r_[labelled, background]]
    target = np.r_[y, np.zeros(len(background))]
    sample_weight = np.r_[
        np.ones(len(labelled)), np.full(len(background), len(positive) / max(len(background), 1))
    ]
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(X, target, sample_weight=sample_weight)
    probability = model.predict_proba(Z)[:, 1]
    # trusted within about the neighbourhood of the labelled images (their distance to their
    # 5th nearest neighbour in the data)
    n_neighbors = min(6, len(Z))
    scale = NearestNeighbors(n_neighbors=n_neighbors).fit(Z).kneighbors(Z[labelled])[0][:, -1]
    scale = float(np.median(scale)) or 1.0
    # a model of a single interesting image is weak evidence: trusted half as much
    confidence = len(positive) / (len(positive) + 1.0)
    return factor * _factor(probability, confidence * np.exp(-0.5 * (d1 / scale) ** 2))


def rerank(embedding, score, labels, *, random_state=0):
    """Re-rank ``score`` with the user's labels.

    Each image's score is multiplied by its relevance, learnt from the labels: a sharp
    vote of the nearest labelled images and a positive-unlabelled logistic regression (the
    interesting images against the dull ones and a random sample of unlabelled ones, as
    background), each a factor between 0.05 and 2 that returns to 1 away from the labelled
    images, so the score's order holds where the labels say nothing (Astronomaly's
    ``NeighbourScore`` in spirit). The models see the standardised embedding reduced to its
    first 32 principal components. Labelled images go first (interesting) and last (not
    interesting).

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
    positive = np.flatnonzero(labels == INTERESTING)
    negative = np.flatnonzero(labels == NOT_INTERESTING)
    before = rank_positions(score)
    if len(positive) + len(negative) == 0:
        return Ranking(
            score, _quantiles(score), np.argsort(before), before, before, "anomaly score only"
        )

    Z = _reduced(embedding, random_state)
    relevance = _relevance(Z, positive, negative, random_state)
    final = np.log(_positive(np.nan_to_num(score, nan=np.nanmin(score)))) + np.log(relevance)
    if len(positive):
        described = (
            "the anomaly score times a relevance learnt from the labels (a vote of the "
            "nearest labelled images and a positive-unlabelled logistic regression)"
        )
    else:
        described = (
            "the anomaly score times a relevance from the images marked not interesting "
            "(a vote of the nearest labelled images)"
        )
    # the labels themselves are certain: interesting first, not interesting last, each in
    # the score's order
    span = float(np.ptp(final)) + 1.0
    quantile = _quantiles(score)
    final[positive] = final.max() + span + quantile[positive]
    final[negative] = final.min() - span + quantile[negative]
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
