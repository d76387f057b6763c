"""CondVAEClassifier and its bimodal-prior terms."""

import numpy as np
import pytest
import torch

from skastro import CondVAEClassifier, ConvAutoencoder


def _two_populations(n=64, size=16, seed=0):
    """Point-like and extended blobs on noise, with labels 0 (point) and 1 (extended)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r2 = yy**2 + xx**2
    labels = np.arange(n) % 2
    width = np.where(labels == 1, 3.0, 0.8)
    flux = rng.uniform(2.0, 4.0, n)
    X = flux[:, None, None] * np.exp(-r2[None] / (2 * width[:, None, None] ** 2))
    X = X + rng.normal(0, 0.05, X.shape)
    return X[:, None].astype(np.float32), labels


@pytest.fixture(scope="module")
def data():
    return _two_populations()


SMALL = dict(n_components=2, widths=(4, 8), max_epochs=3, batch_size=16, random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    return CondVAEClassifier(**SMALL).fit(X)


def test_outputs_have_the_documented_shapes_and_bounds(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = fitted.decision_function(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), atol=1e-12)
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert set(np.unique(fitted.predict(X))) <= {0, 1}
    np.testing.assert_array_equal(fitted.predict(X), (scores > 0).astype(int))
    assert fitted.threshold_ == 0.0


def test_transform_holds_the_oriented_class_unit_then_the_free_units(fitted, data):
    X, _ = data
    Z = fitted.transform(X)
    assert Z.shape == (len(X), 3) and Z.dtype == np.float32
    m, s = fitted.prior_mean, fitted.prior_std
    np.testing.assert_allclose(fitted.decision_function(X), 2 * m * Z[:, 0] / s**2, rtol=1e-5)
    assert list(fitted.get_feature_names_out()) == [f"condvaeclassifier{i}" for i in range(3)]


def test_history_logs_the_prior_term(fitted):
    # the default prior distance is the Wasserstein one
    assert {"loss_mse", "loss_wasserstein"} <= set(fitted.history_[-1])


@pytest.mark.parametrize("class_prior", [0.25, 0.5, 0.8])
def test_class_prior_sets_the_fraction_predicted_as_class_one(data, class_prior):
    X, _ = data
    clf = CondVAEClassifier(**{**SMALL, "max_epochs": 1}, class_prior=class_prior).fit(X)
    share = np.mean(clf.predict(X) == clf.classes_[1])
    assert share == pytest.approx(class_prior, abs=1.5 / len(X))
    assert np.mean(clf.decision_function(X) > clf.threshold_) == share


def test_class_prior_orients_the_modes_without_y(data):
    X, _ = data
    low = CondVAEClassifier(**{**SMALL, "max_epochs": 1}, class_prior=0.01).fit(X)
    high = CondVAEClassifier(**{**SMALL, "max_epochs": 1}, class_prior=0.99).fit(X)
    # same training (same seed): only the naming differs, so the scores are mirrored
    np.testing.assert_allclose(
        np.abs(low.decision_function(X)), np.abs(high.decision_function(X)), rtol=1e-6
    )
    raw = low.sign_ * low.decision_function(X)
    if np.mean(raw > 0) != 0.5:
        assert low.sign_ == -high.sign_


def test_y_only_names_the_modes(data):
    X, y = data
    names = np.array(["STAR", "GALAXY"])[y]
    shuffled = np.random.default_rng(0).permutation(names)
    a = CondVAEClassifier(**SMALL).fit(X, names)
    b = CondVAEClassifier(**SMALL).fit(X, shuffled)
    c = CondVAEClassifier(**SMALL).fit(X)
    da, db, dc = (est.decision_function(X) for est in (a, b, c))
    assert np.allclose(da, db) or np.allclose(da, -db)
    assert np.allclose(da, dc) or np.allclose(da, -dc)
    np.testing.assert_array_equal(a.classes_, ["GALAXY", "STAR"])
    assert set(np.unique(a.predict(X))) <= {"GALAXY", "STAR"}
    # the kept naming is the one that agrees best with y
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(names == "STAR", da) >= 0.5
    assert roc_auc_score(names == "STAR", -da) <= 0.5


@pytest.mark.parametrize(
    "y, message",
    [
        (np.arange(64) % 3, "3 classes"),
        (np.zeros(64), "one class"),
        (np.arange(10) % 2, "one label per image"),
        (np.linspace(0.0, 1.0, 64), "Unknown label type: continuous"),
    ],
)
def test_bad_labels_raise(data, y, message):
    X, _ = data
    with pytest.raises(ValueError, match=message):
        CondVAEClassifier(**SMALL).fit(X, y)


def test_cross_validation_splits_by_class_so_sorted_labels_work(data):
    # catalogues often list one class after the other; unstratified folds would then train
    # on a single class, which cannot name two modes
    from sklearn.base import is_classifier
    from sklearn.model_selection import GridSearchCV, cross_val_score

    from skastro.metrics import make_auc_scorer

    X, y = data
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    model = CondVAEClassifier(**{**SMALL, "max_epochs": 1})
    assert is_classifier(model)
    search = GridSearchCV(
        model, {"prior_distance": ["kl", "wasserstein"]}, cv=2, error_score="raise",
        scoring=make_auc_scorer(sign_invariant=True),
    ).fit(X, y)  # fmt: skip
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    auc = cross_val_score(model, X, y, cv=2, scoring="roc_auc", error_score="raise")
    assert np.all((auc >= 0) & (auc <= 1))


def test_partial_fit_takes_scikit_learns_classes(data):
    X, y = data
    labels = np.where(y == 1, "GALAXY", "STAR")
    model = CondVAEClassifier(**{**SMALL, "max_epochs": 1})
    model.partial_fit(X, classes=["STAR", "GALAXY"])
    np.testing.assert_array_equal(model.classes_, ["GALAXY", "STAR"])
    model.partial_fit(X, labels, classes=["STAR", "GALAXY"])
    assert len(model.history_) == 2
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(X, labels, classes=["STAR", "QSO"])
    with pytest.raises(ValueError, match="two labels"):
        model.partial_fit(X, classes=["STAR", "GALAXY", "QSO"])


@pytest.mark.parametrize(("prior_distance", "weight"), [("wasserstein", 2.0), ("kl", 0.01)])
def test_each_prior_distance_logs_its_own_term(data, prior_distance, weight):
    X, _ = data
    clf = CondVAEClassifier(**SMALL, prior_distance=prior_distance).fit(X)
    other = {"wasserstein": "loss_kl", "kl": "loss_wasserstein"}[prior_distance]
    assert f"loss_{prior_distance}" in clf.history_[-1] and other not in clf.history_[-1]
    assert clf._prior_weight() == weight
    assert np.isfinite(clf.decision_function(X)).all()


def test_separates_point_like_from_extended_blobs():
    # two very different populations: the class unit should find them
    X, y = _two_populations(n=128, seed=1)
    clf = CondVAEClassifier(
        n_components=2,
        widths=(4, 8),
        prior_distance="wasserstein",
        max_epochs=15,
        batch_size=32,
        lr=3e-3,
        random_state=0,
    ).fit(X, y)
    assert np.mean(clf.predict(X) == y) > 0.9


def test_score_is_deterministic(fitted, data):
    X, _ = data
    assert fitted.score(X) == fitted.score(X)


def test_fitted_state_round_trips(fitted):
    state = fitted._fitted_state()
    other = CondVAEClassifier(**SMALL)
    other._restore_fitted_state(state)
    np.testing.assert_array_equal(other.classes_, fitted.classes_)
    assert (other.threshold_, other.sign_) == (fitted.threshold_, fitted.sign_)


def test_hierarchical_feature_extractor(data):
    X, _ = data
    extractor = ConvAutoencoder(n_components=4, widths=(4,), max_epochs=1)
    clf = CondVAEClassifier(**SMALL, feature_extractor=extractor, hidden_units=8).fit(X)
    assert clf.feature_extractor_ is not extractor
    assert clf.transform(X).shape == (len(X), 3)
    # the extractor stays frozen: its weights inside the module are the fitted clone's
    fitted_encoder = clf.feature_extractor_.module_.encoder.state_dict()
    for name, value in clf.module_.extractor.state_dict().items():
        torch.testing.assert_close(value, fitted_encoder[name])
    # and it sees the images exactly as it did when it was fitted
    codes = clf.module_.raw_codes(clf._to_net(torch.from_numpy(X)))
    np.testing.assert_allclose(
        codes.numpy(), clf.feature_extractor_.transform(X), rtol=1e-4, atol=1e-5
    )


def test_end_to_end_on_sdss_npy_files_in_the_write_up_layout(tmp_path):
    # labelled files: structured arrays (objID, image (5, 64, 64), class, z), several objects
    # per file or one; and the unlabelled variant, one object per file with only "image"
    from skastro.datasets import load_sdss_npy, make_star_galaxy

    sky = make_star_galaxy(12, random_state=0)
    labelled = [("objID", "i8"), ("image", "f4", (5, 64, 64)), ("class", "U6"), ("z", "f8")]
    objects = np.zeros(12, dtype=labelled)
    objects["objID"] = 1237650000000000000 + np.arange(12)
    objects["image"] = sky.images
    objects["class"] = np.array(sky.target_names)[sky.target]
    objects["z"] = sky.metadata["z"].to_numpy()
    (tmp_path / "labelled").mkdir()
    for k, (start, stop) in enumerate([(0, 5), (5, 6), (6, 12)]):
        np.save(tmp_path / "labelled" / f"{k:05d}.npy", objects[start:stop])
    (tmp_path / "unlabelled").mkdir()
    for k in range(4):
        single = np.zeros((), dtype=[("image", "f4", (5, 64, 64))])
        single["image"] = sky.images[k]
        np.save(tmp_path / "unlabelled" / f"{k:05d}.npy", single)

    data = load_sdss_npy(tmp_path / "labelled")
    np.testing.assert_array_equal(data.images, sky.images)
    np.testing.assert_array_equal(data.class_names, objects["class"])
    clf = CondVAEClassifier(n_components=2, widths=(4,), max_epochs=1, random_state=0)
    clf.fit(data.images, data.class_names)
    np.testing.assert_array_equal(clf.classes_, ["GALAXY", "STAR"])

    unlabelled = load_sdss_npy(tmp_path / "unlabelled")
    assert unlabelled.target is None
    assert set(clf.predict(unlabelled.images)) <= {"GALAXY", "STAR"}
    assert clf.predict_proba(unlabelled.images).shape == (4, 2)


def test_feature_extractor_must_be_a_skastro_autoencoder(data):
    from sklearn.decomposition import PCA

    X, _ = data
    with pytest.raises(ValueError, match="skastro autoencoder"):
        CondVAEClassifier(**SMALL, feature_extractor=PCA(2)).fit(X)


def test_save_and_load_round_trip(fitted, data, tmp_path):
    from skastro import load

    X, _ = data
    fitted.save(tmp_path / "model")
    loaded = load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.decision_function(X), fitted.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
