"""KFoldEnsemble: fold bookkeeping, latent alignment, reconstruction, sklearn compatibility."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_random_state, validate_data

from skastro import ConvAutoencoder, EquivariantAutoencoder, KFoldEnsemble
from skastro.meta import generalized_procrustes
from tests._sklearn_checks import parametrize_with_checks


class RotatedProjection(TransformerMixin, BaseEstimator):
    """A transformer whose latent basis is an arbitrary rotation picked by its seed: every
    member sees the same points, in a different basis, like autoencoders trained apart."""

    def __init__(self, n_components=3, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        validate_data(self, X)
        rng = check_random_state(self.random_state)
        self.rotation_, _ = np.linalg.qr(rng.normal(size=(self.n_components,) * 2))
        self.offset_ = rng.normal(size=self.n_components) * 10
        return self

    def transform(self, X):
        X = validate_data(self, X, reset=False)
        return X[:, : self.n_components] @ self.rotation_ + self.offset_


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:12, :12] - 5.5
    radius = rng.uniform(1.5, 4.0, 40)[:, None, None]
    disks = np.exp(-0.5 * (x**2 + y**2) / radius**2)
    return (disks + 0.02 * rng.standard_normal(disks.shape))[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def conv_ensemble(images):
    member = ConvAutoencoder(n_components=3, widths=(8,), max_epochs=2, batch_size=16)
    return KFoldEnsemble(member, n_splits=4, random_state=0).fit(images)


def test_each_member_is_trained_without_its_fold(conv_ensemble, images):
    folds = conv_ensemble.fold_indices_
    assert len(conv_ensemble.estimators_) == len(folds) == 4
    held_out = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(held_out, np.arange(len(images)))  # a partition
    for member in conv_ensemble.estimators_:
        assert len(member.history_) == 2
        assert member.n_features_in_ == 144
    seeds = {m.random_state for m in conv_ensemble.estimators_}
    assert len(seeds) == 4  # members start from different weights


def test_reconstruct_is_the_mean_of_the_members(conv_ensemble, images):
    expected = np.mean([m.reconstruct(images) for m in conv_ensemble.estimators_], axis=0)
    np.testing.assert_allclose(conv_ensemble.reconstruct(images), expected, rtol=1e-5, atol=1e-6)
    # averaging helps: the ensemble is at least as good as its average member
    member_scores = [m.score(images) for m in conv_ensemble.estimators_]
    assert conv_ensemble.score(images) >= np.mean(member_scores) - 1e-6
    assert conv_ensemble.score(images) <= 0


def test_procrustes_undoes_arbitrary_member_bases():
    X = np.random.default_rng(1).normal(size=(50, 6))
    ensemble = KFoldEnsemble(RotatedProjection(3), n_splits=5, random_state=0).fit(X)
    Z = ensemble.transform(X)
    # every member maps the same points; aligned they agree exactly, in member 0's basis
    first = ensemble.estimators_[0].transform(X)
    np.testing.assert_allclose(Z, first - first.mean(0), atol=1e-4)
    np.testing.assert_allclose(ensemble.alignment_residuals_, 0, atol=1e-6)
    # whereas a naive average of the members' latents would scramble the geometry
    naive = np.mean([m.transform(X) for m in ensemble.estimators_], axis=0)
    distances = np.linalg.norm(Z[:, None] - Z[None], axis=-1)
    naive_distances = np.linalg.norm(naive[:, None] - naive[None], axis=-1)
    true_distances = np.linalg.norm(X[:, None, :3] - X[None, :, :3], axis=-1)
    np.testing.assert_allclose(distances, true_distances, atol=1e-4)
    assert not np.allclose(naive_distances, true_distances, atol=1e-2)


def test_concatenate_stacks_member_latents():
    X = np.random.default_rng(1).normal(size=(20, 4))
    ensemble = KFoldEnsemble(RotatedProjection(2), n_splits=3, combine="concatenate").fit(X)
    assert ensemble.transform(X).shape == (20, 6)
    assert len(ensemble.get_feature_names_out()) == 6


def test_pca_members_are_aligned_despite_sign_flips():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)) * np.array([5.0, 3.0, 1.0, 0.1, 0.1])
    ensemble = KFoldEnsemble(PCA(2), n_splits=3, random_state=0).fit(X)
    reference = PCA(2).fit(X).transform(X)
    Z = ensemble.transform(X)
    # same subspace as PCA on all data, up to the signs of the axes
    for k in range(2):
        assert abs(np.corrcoef(Z[:, k], reference[:, k])[0, 1]) > 0.99
    assert not hasattr(ensemble, "reconstruct")  # PCA members cannot reconstruct


def test_generalized_procrustes_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="common shape"):
        generalized_procrustes([np.zeros((4, 2)), np.zeros((4, 3))])


def test_too_few_images_for_the_folds():
    with pytest.raises(ValueError, match="n_samples = 3"):
        KFoldEnsemble(PCA(1), n_splits=5).fit(np.zeros((3, 2)))


def test_parallel_fit_matches_sequential(images):
    member = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, batch_size=16)
    sequential = KFoldEnsemble(member, n_splits=2, random_state=0).fit(images)
    parallel = KFoldEnsemble(member, n_splits=2, random_state=0, n_jobs=2).fit(images)
    np.testing.assert_allclose(parallel.transform(images), sequential.transform(images), atol=1e-5)
    restored = pickle.loads(pickle.dumps(parallel))
    np.testing.assert_array_equal(restored.transform(images), parallel.transform(images))


def test_fitted_ensemble_saves_without_pickle_and_loads_identical(conv_ensemble, images, tmp_path):
    from skastro import load

    folder = conv_ensemble.save(tmp_path / "ensemble")
    # a model folder for the unfitted template and one per fitted member; nothing pickled
    parts = sorted(p.name for p in (folder / "parts").iterdir())
    assert len(parts) == 5 and all((folder / "parts" / p / "model.json").is_file() for p in parts)
    assert sum(name.startswith("fitted_state_estimators_") for name in parts) == 4
    assert not [p for p in folder.rglob("*") if p.suffix in {".pkl", ".pickle", ".pt"}]

    loaded = load(folder, device="cpu")
    assert type(loaded) is KFoldEnsemble
    assert loaded.get_params(deep=False).keys() == conv_ensemble.get_params(deep=False).keys()
    np.testing.assert_array_equal(loaded.transform(images), conv_ensemble.transform(images))
    np.testing.assert_array_equal(loaded.reconstruct(images), conv_ensemble.reconstruct(images))
    np.testing.assert_array_equal(loaded.rotations_, conv_ensemble.rotations_)
    for got, expected in zip(loaded.fold_indices_, conv_ensemble.fold_indices_):
        np.testing.assert_array_equal(got, expected)
    assert [str(m.device_) for m in loaded.estimators_] == ["cpu"] * 4


def test_a_loaded_ensemble_whose_pieces_do_not_fit_together_is_refused(conv_ensemble, tmp_path):
    import json

    from skastro import load
    from skastro.exceptions import ModelFormatError

    folder = conv_ensemble.save(tmp_path / "ensemble")
    model_file = folder / "model.json"
    saved = json.loads(model_file.read_text())
    for edit, message in (
        (lambda meta: meta["fitted_state"].update(_n_features_out=99), "'_n_features_out' is 99"),
        (lambda meta: meta["params"].update(combine="concatenate"), "combined by 'concatenate'"),
    ):
        meta = json.loads(json.dumps(saved))
        edit(meta)
        model_file.write_text(json.dumps(meta))
        with pytest.raises(ModelFormatError, match=message):
            load(folder)


def test_concatenating_ensemble_round_trips_unfitted_and_fitted(images, tmp_path):
    from skastro import load

    member = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, batch_size=16)
    ensemble = KFoldEnsemble(member, n_splits=2, combine="concatenate", random_state=0)
    unfitted = load(ensemble.save(tmp_path / "unfitted"))
    assert not hasattr(unfitted, "estimators_")
    assert unfitted.estimator.get_params() == member.get_params()
    ensemble.fit(images)
    loaded = load(ensemble.save(tmp_path / "fitted"))
    np.testing.assert_array_equal(loaded.transform(images), ensemble.transform(images))
    assert loaded.get_feature_names_out().tolist() == ensemble.get_feature_names_out().tolist()


def test_ensemble_of_scikit_learn_members_is_refused_when_saved(tmp_path):
    ensemble = KFoldEnsemble(PCA(1), n_splits=2).fit(np.random.default_rng(0).normal(size=(8, 3)))
    with pytest.raises(TypeError, match=r"parameter 'estimator': PCA objects.*pickle/joblib"):
        ensemble.save(tmp_path)
    assert not (tmp_path / "model.json").exists()


def test_default_member_is_the_equivariant_autoencoder():
    assert isinstance(KFoldEnsemble()._member_template(), EquivariantAutoencoder)


@parametrize_with_checks(
    [KFoldEnsemble(RotatedProjection(1), n_splits=2, random_state=0)],
    expected_failed_checks=lambda est: {},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------- two-class labellers


class SignedScore(TransformerMixin, BaseEstimator):
    """A two-class labeller whose score is the first feature times a sign its seed picks, like
    unsupervised classifiers trained apart, which call either mode class 1."""

    def __init__(self, random_state=None, class_prior=None):
        self.random_state = random_state
        self.class_prior = class_prior

    def fit(self, X, y=None):
        validate_data(self, X)
        self.n_seen_ = len(X)
        self.sign_ = check_random_state(self.random_state).choice([-1.0, 1.0])
        self.classes_ = np.array([0, 1]) if y is None else np.unique(y)
        return self

    def transform(self, X):
        return validate_data(self, X, reset=False)[:, :1] * self.sign_

    def decision_function(self, X):
        return self.transform(X)[:, 0]

    def predict_proba(self, X):
        positive = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - positive, positive])


@pytest.fixture(scope="module")
def scores_data():
    X = np.random.default_rng(1).normal(size=(40, 3))
    return X


def test_labeller_members_are_turned_to_agree_with_the_first(scores_data):
    X = scores_data
    ensemble = KFoldEnsemble(SignedScore(), n_splits=6, random_state=0).fit(X)
    member_signs = np.array([m.sign_ for m in ensemble.estimators_])
    assert len(set(member_signs)) == 2  # the seeds gave both orientations
    np.testing.assert_array_equal(ensemble.signs_, member_signs * member_signs[0])
    # every turned member agrees with the first, so the mean is the first member's score
    np.testing.assert_allclose(ensemble.decision_function(X), member_signs[0] * X[:, 0])
    expected = np.mean(
        [s * m.decision_function(X) for m, s in zip(ensemble.estimators_, ensemble.signs_)], 0
    )
    np.testing.assert_allclose(ensemble.decision_function(X), expected)
    proba = ensemble.predict_proba(X)
    np.testing.assert_allclose(proba, ensemble.estimators_[0].predict_proba(X))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ensemble.threshold_ == 0.0
    np.testing.assert_array_equal(ensemble.predict(X), (ensemble.decision_function(X) > 0) * 1)


def test_labeller_ensemble_passes_y_and_keeps_its_class_names(scores_data):
    X = scores_data
    y = np.where(X[:, 0] > 0, "GALAXY", "STAR")
    ensemble = KFoldEnsemble(SignedScore(class_prior=0.25), n_splits=3, random_state=0)
    ensemble.fit(X, y)
    np.testing.assert_array_equal(ensemble.classes_, ["GALAXY", "STAR"])
    assert set(ensemble.predict(X)) == {"GALAXY", "STAR"}
    # class_prior: the share of the training images called classes_[1]
    assert np.mean(ensemble.predict(X) == "STAR") == pytest.approx(0.25, abs=1 / len(X))
    with pytest.raises(ValueError, match="one label per image"):
        ensemble.fit(X, y[:5])


def test_autoencoder_ensembles_do_not_label(conv_ensemble):
    for name in ("decision_function", "predict_proba", "predict"):
        assert not hasattr(conv_ensemble, name)
        assert not hasattr(KFoldEnsemble(PCA(1)), name)
    assert hasattr(KFoldEnsemble(SignedScore()), "decision_function")


def test_cond_vae_ensemble_labels_and_round_trips(tmp_path):
    from skastro import CondVAEClassifier, load

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16] - 7.5
    labels = np.arange(48) % 2
    width = np.where(labels == 1, 3.0, 0.8)[:, None, None]
    X = 3 * np.exp(-(yy**2 + xx**2)[None] / (2 * width**2)) + rng.normal(0, 0.05, (48, 16, 16))
    X = X[:, None].astype(np.float32)
    member = CondVAEClassifier(n_components=2, widths=(4,), max_epochs=2, batch_size=16)
    names = np.array(["STAR", "GALAXY"])[labels]
    ensemble = KFoldEnsemble(member, n_splits=2, random_state=0).fit(X, names)
    scores = ensemble.decision_function(X)
    assert scores.shape == (48,) and np.isfinite(scores).all()
    proba = ensemble.predict_proba(X)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(ensemble.classes_, ["GALAXY", "STAR"])
    loaded = load(ensemble.save(tmp_path / "ensemble"), device="cpu")
    np.testing.assert_array_equal(loaded.signs_, ensemble.signs_)
    np.testing.assert_array_equal(loaded.classes_, ensemble.classes_)
    np.testing.assert_allclose(loaded.decision_function(X), scores, rtol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), ensemble.predict(X))


def test_seed_ensemble_trains_every_member_on_all_images(scores_data):
    X = scores_data
    ensemble = KFoldEnsemble(SignedScore(), n_splits=4, train_on="all", random_state=0).fit(X)
    assert [m.n_seen_ for m in ensemble.estimators_] == [len(X)] * 4
    assert all(len(fold) == 0 for fold in ensemble.fold_indices_)
    assert len({m.random_state for m in ensemble.estimators_}) == 4
    folds = KFoldEnsemble(SignedScore(), n_splits=4, random_state=0).fit(X)
    assert [m.n_seen_ for m in folds.estimators_] == [30] * 4


def test_train_on_all_needs_no_more_images_than_members(images):
    # no folds are made, so three images can train five members
    member = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, batch_size=16)
    ensemble = KFoldEnsemble(member, n_splits=5, train_on="all", random_state=0).fit(images[:3])
    assert len(ensemble.estimators_) == 5 and ensemble.transform(images[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match="needs at least that many images"):
        KFoldEnsemble(member, n_splits=5, random_state=0).fit(images[:3])


def test_folds_keep_every_class_when_labels_are_given(images):
    # a catalogue sorted by class: plain folds would train a member on one class only
    y = np.repeat([0, 1], len(images) // 2)
    X = images[: len(y)].reshape(len(y), -1)
    ensemble = KFoldEnsemble(SignedScore(), n_splits=2, shuffle=False, random_state=0).fit(X, y)
    for fold in ensemble.fold_indices_:
        training = np.setdiff1d(np.arange(len(y)), fold)
        assert set(y[training]) == {0, 1}
