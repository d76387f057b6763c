"""The re-ranking from labels (``skastro.explorer._ranking.rerank``) on hand-made embeddings."""

import time

import numpy as np

from skastro.explorer._labels import INTERESTING, NOT_INTERESTING
from skastro.explorer._ranking import knn_anomaly_score, rank_positions, rerank


def _embedding(seed=0):
    """A dense blob of normal points and two loose groups far from it and from each other:
    a wanted kind and a dull kind of anomaly, 5 each (loose: a tight group would be dense,
    and dense is normal to a kNN score)."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(0, 1, (200, 6))
    wanted = rng.normal(0, 1.0, (5, 6)) + np.eye(6)[0] * 10
    dull = rng.normal(0, 1.0, (5, 6)) + np.eye(6)[1] * 10
    embedding = np.r_[normal, wanted, dull].astype(np.float32)
    kind = np.r_[["normal"] * 200, ["wanted"] * 5, ["dull"] * 5]
    return embedding, kind


def _no_labels(n):
    return np.full(n, "", dtype=object)


def test_without_labels_the_order_is_the_score_order():
    embedding, kind = _embedding()
    score = knn_anomaly_score(embedding)
    ranking = rerank(embedding, score, _no_labels(len(kind)))
    np.testing.assert_array_equal(ranking.order, np.argsort(-score, kind="stable"))
    np.testing.assert_array_equal(ranking.after, rank_positions(score))
    assert ranking.model == "anomaly score only"
    # other class names are not labels for the ranking
    labels = _no_labels(len(kind))
    labels[[3, 205]] = "merger"
    np.testing.assert_array_equal(rerank(embedding, score, labels).order, ranking.order)


def test_interesting_labels_lift_their_unlabelled_neighbours():
    embedding, kind = _embedding()
    score = knn_anomaly_score(embedding)
    # make the wanted group the less anomalous of the two, so that it has to rise
    score[kind == "wanted"] *= 0.6
    plain = rerank(embedding, score, _no_labels(len(kind)))
    assert set(kind[plain.order[:5]]) == {"dull"}
    labels = _no_labels(len(kind))
    labelled = np.flatnonzero(kind == "wanted")[:3]
    labels[labelled] = INTERESTING
    ranking = rerank(embedding, score, labels)
    assert (ranking.n_interesting, ranking.n_not_interesting) == (3, 0)
    assert "positive-unlabelled logistic regression" in ranking.model
    # the labelled images first, then their unlabelled group ahead of the dull one
    assert set(ranking.order[:3]) == set(labelled)
    assert set(kind[ranking.order[3:5]]) == {"wanted"}
    others = (kind == "wanted") & (labels == "")
    assert np.all(ranking.after[others] < plain.after[others])
    # no normal point overtakes an anomaly
    assert ranking.after[kind == "normal"].min() >= 10


def test_dull_labels_push_their_neighbours_down():
    embedding, kind = _embedding(seed=1)
    score = knn_anomaly_score(embedding)
    plain = rerank(embedding, score, _no_labels(len(kind)))
    labels = _no_labels(len(kind))
    labelled = np.flatnonzero(kind == "dull")[:2]
    labels[labelled] = NOT_INTERESTING
    ranking = rerank(embedding, score, labels)
    assert "not interesting" in ranking.model
    assert set(ranking.order[-2:]) == set(labelled)
    dull = (kind == "dull") & (labels == "")
    assert np.all(ranking.after[dull] > plain.after[dull])
    # the wanted group, far from the labels, rises and now leads
    wanted = kind == "wanted"
    assert np.all(ranking.after[wanted] <= plain.after[wanted])
    assert (kind[ranking.order[:5]] == "wanted").sum() >= 4


def test_labels_far_away_leave_the_order_alone():
    """Where the labels say little, the score's order mostly holds: labelling points of the
    far groups reorders the normal blob among itself only partly (the relevance returns to
    1 away from the labels, but not all the way within the blob)."""
    embedding, kind = _embedding(seed=2)
    score = knn_anomaly_score(embedding)
    labels = _no_labels(len(kind))
    labels[np.flatnonzero(kind == "dull")[:2]] = NOT_INTERESTING
    labels[np.flatnonzero(kind == "wanted")[:2]] = INTERESTING
    ranking = rerank(embedding, score, labels)
    normal = kind == "normal"
    from scipy.stats import spearmanr

    assert spearmanr(score[normal], -ranking.after[normal]).statistic > 0.75


def test_a_score_with_negative_values():
    embedding, kind = _embedding()
    score = knn_anomaly_score(embedding) - 3.0
    assert score.min() < 0 < score.max()
    labels = _no_labels(len(kind))
    labels[np.flatnonzero(kind == "wanted")[0]] = INTERESTING
    labels[np.flatnonzero(kind == "dull")[0]] = NOT_INTERESTING
    ranking = rerank(embedding, score, labels)
    assert np.isfinite(ranking.final).all()
    assert set(kind[ranking.order[:5]]) == {"wanted"}


def test_rerank_is_cheap():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(50_000, 64)).astype(np.float32)
    score = rng.gamma(2.0, size=50_000)
    labels = _no_labels(50_000)
    labels[rng.choice(50_000, 30, replace=False)] = INTERESTING
    labels[:10] = NOT_INTERESTING
    rerank(embedding[:1000], score[:1000], labels[:1000])  # imports
    start = time.perf_counter()
    rerank(embedding, score, labels)
    # < 1 s on a desktop; generous for a busy test machine
    assert time.perf_counter() - start < 5.0
