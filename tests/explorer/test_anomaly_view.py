"""Anomaly ranking, re-ranking from labels, the gallery and the labelling actions."""

import numpy as np
import pandas as pd
import pytest

from skastro.explorer import Explorer
from skastro.explorer import _anomaly_view as av
from skastro.explorer._labels import INTERESTING, NOT_INTERESTING
from skastro.explorer._ranking import knn_anomaly_score, rank_positions, rerank

N_NORMAL = 200


def _data(seed=0):
    """A dense blob of normal points, two groups of far-out ones: wanted and dull."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(0, 1, (N_NORMAL, 6))
    # loose groups: a tight one would be dense, and dense is normal to a kNN score
    wanted = rng.normal(0, 1.0, (5, 6)) + np.eye(6)[0] * 10
    dull = rng.normal(0, 1.0, (5, 6)) + np.eye(6)[1] * 10
    embedding = np.r_[normal, wanted, dull].astype(np.float32)
    kind = np.r_[["normal"] * N_NORMAL, ["wanted"] * 5, ["dull"] * 5]
    return embedding, kind


def test_knn_score_matches_the_detector():
    from skastro import KNNOutlierDetector

    embedding, _ = _data()
    score = knn_anomaly_score(embedding)
    detector = KNNOutlierDetector(n_neighbors=5).fit(embedding)
    np.testing.assert_allclose(score, -detector.score_samples(embedding), rtol=1e-5)
    assert rank_positions([3.0, 1.0, 3.0]).tolist() == [0, 2, 1]  # ties by index


def test_labels_move_the_wanted_up_and_the_dull_down():
    embedding, kind = _data()
    score = knn_anomaly_score(embedding)
    labels = np.full(len(kind), "", dtype=object)
    plain = rerank(embedding, score, labels)
    assert plain.model == "anomaly score only"
    np.testing.assert_array_equal(plain.before, plain.after)
    # both far-out groups lead the plain ranking, mixed
    assert set(kind[plain.order[:10]]) == {"wanted", "dull"}
    labels[np.flatnonzero(kind == "wanted")[:2]] = INTERESTING
    labels[np.flatnonzero(kind == "dull")[:2]] = NOT_INTERESTING
    ranking = rerank(embedding, score, labels)
    assert "logistic regression" in ranking.model
    assert (ranking.n_interesting, ranking.n_not_interesting) == (2, 2)
    assert set(kind[ranking.order[:5]]) == {"wanted"}
    # the labelled dull ones go last, the others below every wanted one
    assert set(ranking.order[-2:]) == set(np.flatnonzero(labels == NOT_INTERESTING))
    assert ranking.after[kind == "dull"].min() > ranking.after[kind == "wanted"].max()


def test_labels_of_one_kind_only():
    embedding, kind = _data()
    score = knn_anomaly_score(embedding)
    labels = np.full(len(kind), "", dtype=object)
    labels[np.flatnonzero(kind == "dull")[0]] = NOT_INTERESTING
    ranking = rerank(embedding, score, labels)
    assert "not interesting" in ranking.model
    # the dull group, first without labels, falls below the wanted one (a single label is
    # weak evidence: not below every normal image)
    assert set(kind[ranking.order[:5]]) == {"wanted"}
    assert ranking.after[kind == "dull"].min() > ranking.after[kind == "wanted"].max()
    labels[:] = ""
    labels[np.flatnonzero(kind == "wanted")[0]] = INTERESTING
    labels[0] = "merger"  # a class name does not enter the ranking
    ranking = rerank(embedding, score, labels)
    assert "positive-unlabelled" in ranking.model and set(kind[ranking.order[:5]]) == {"wanted"}
    with pytest.raises(ValueError, match="rows"):
        rerank(embedding, score, labels[:5])


@pytest.fixture
def explorer(tmp_path):
    embedding, kind = _data()
    rng = np.random.default_rng(1)
    images = rng.random((len(kind), 1, 8, 8), dtype=np.float32)
    metadata = pd.DataFrame(
        {"id": [f"o{i}" for i in range(len(kind))], "kind": kind, "flux": rng.random(len(kind))}
    )
    return Explorer(
        images,
        embedding={"latent": embedding},
        metadata=metadata,
        ids=metadata["id"],
        label_file=tmp_path / "labels.csv",
    )


def test_explorer_ranks_and_labels(explorer, tmp_path):
    kind = explorer.metadata["kind"].to_numpy()
    assert [v for v, _ in explorer.rank_options()] == ["knn", "meta:2"]  # numeric columns only
    flux = explorer.anomaly_score("meta:2")
    np.testing.assert_array_equal(flux, explorer.metadata["flux"].to_numpy())
    with pytest.raises(KeyError):
        explorer.anomaly_score("nonsense")
    wanted, dull = np.flatnonzero(kind == "wanted"), np.flatnonzero(kind == "dull")
    assert explorer.set_label(wanted[:2], INTERESTING) == 2
    assert explorer.set_label(dull[:2], NOT_INTERESTING) == 2
    ranking = explorer.ranking()
    assert set(kind[ranking.order[:5]]) == {"wanted"}
    assert explorer.ranking() is ranking  # cached until the labels change
    assert explorer.ranking(use_labels=False).model == "anomaly score only"
    # the labels are in the file and come back with a new explorer (a restarted server)
    again = Explorer(
        explorer.images,
        embedding={"latent": explorer.get_embedding("latent")},
        ids=explorer.ids,
        label_file=tmp_path / "labels.csv",
    )
    np.testing.assert_array_equal(again.user_labels, explorer.user_labels)
    # the instance panel shows the label once and the id once
    record = dict(explorer.instance_record(int(wanted[0])))
    assert record["your label"] == INTERESTING
    assert [name for name, _ in explorer.instance_record(0)].count("id") == 1
    # colour by the labels: unlabelled points in grey
    values, color_kind, _ = explorer.color_values(explorer.view, "user-label")
    assert color_kind == "categorical" and set(values) == {
        "unlabelled",
        INTERESTING,
        NOT_INTERESTING,
    }


def test_gallery_and_label_actions(explorer):
    kind = explorer.metadata["kind"].to_numpy()
    view_key = explorer.view.key
    cards, figure, summary = av.gallery(explorer, view_key, "knn", ["rerank"], 10)
    assert len(cards) == 10 and "mark images" in summary
    assert figure["layout"]["title"]["text"].startswith("The ranking by the score alone")
    shown = [int(card.to_plotly_json()["props"]["data-index"]) for card in cards]
    assert set(kind[shown]) <= {"wanted", "dull"}

    status = av.apply_label(explorer, [shown[0], shown[1]], INTERESTING)
    assert status.startswith("Labelled 2 images 'interesting'") and "labels.csv" in status
    assert av.apply_label(explorer, [], INTERESTING).startswith("Nothing to label")
    assert "Not labelled" in av.apply_label(explorer, [0], "x" * 80)
    assert av.label_from_action("label-class-apply", "  spiral ") == "spiral"
    assert av.label_from_action("label-clear", "whatever") is None
    # labelled images leave the gallery unless asked for; the summary names the model
    cards, figure, summary = av.gallery(explorer, view_key, "knn", ["rerank"], 10)
    again = [int(card.to_plotly_json()["props"]["data-index"]) for card in cards]
    assert shown[0] not in again and shown[1] not in again
    assert "2 interesting and 0 not interesting" in summary
    cards, _, _ = av.gallery(explorer, view_key, "knn", ["rerank", "labelled"], 10)
    labelled = [int(card.to_plotly_json()["props"]["data-index"]) for card in cards]
    assert labelled[:2] == sorted(shown[:2], key=lambda i: explorer.ranking().after[i])
    names = {trace["name"] for trace in figure["data"]}
    assert {"unlabelled", "interesting", "unchanged"} <= names
