"""FaintCalibratedClassifier: which images are fitted, what the calibration repairs, errors."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

from skastro import CondVAEClassifier, PeakScaler
from skastro.meta import FaintCalibratedClassifier
from skastro.photometry import aperture_snr, flux_fractions

SIZE = 24
BORDER = 4


def _stars_and_galaxies(n, rng):
    """Centred point sources (label 0) and extended objects (label 1), S/N about 2 to 200."""
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    label = np.arange(n) % 2
    width = np.where(label == 0, 1.0, 2.2)[:, None, None]
    profile = np.exp(-(xx**2 + yy**2)[None] / (2 * width**2))
    profile /= profile.sum(axis=(1, 2), keepdims=True)
    flux = np.exp(rng.uniform(np.log(20.0), np.log(2000.0), n))[:, None, None]
    images = flux * profile + rng.standard_normal((n, SIZE, SIZE))
    return images[:, None].astype(np.float32), label


class CollapsingConcentration(BaseEstimator):
    """A label-free stand-in that ranks bright images by their light profile, but puts every
    image below ``collapse_snr`` deep in the galaxy mode: the failure the calibration repairs.
    It records what it was fitted on."""

    def __init__(self, collapse_snr=15.0):
        self.collapse_snr = collapse_snr

    def fit(self, X, y=None):
        self.fitted_on_ = np.array(X, copy=True)
        self.y_seen_ = None if y is None else np.array(y, copy=True)
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X):
        X = np.asarray(X)
        if X.ndim == 3:
            X = X[:, None]
        spread = 10.0 * (1.0 - flux_fractions(X, [1.5], total_radius=6.0)[:, 0])
        snr = aperture_snr(X, border=BORDER)
        return np.where(snr < self.collapse_snr, 10.0, spread)


@pytest.fixture(scope="module")
def sky():
    return _stars_and_galaxies(600, np.random.default_rng(0))


@pytest.fixture(scope="module")
def calibrated(sky):
    X, y = sky
    model = FaintCalibratedClassifier(
        CollapsingConcentration(), n_levels=4, border=BORDER, random_state=0
    )
    return model.fit(X, y)


def test_is_a_public_name():
    import skastro

    assert skastro.FaintCalibratedClassifier is FaintCalibratedClassifier
    assert "FaintCalibratedClassifier" in skastro.__all__


def test_estimator_is_fitted_on_the_bright_images_only(calibrated, sky):
    X, y = sky
    snr = aperture_snr(X, border=BORDER)
    bright = snr > np.median(snr)
    np.testing.assert_array_equal(calibrated.estimator_.fitted_on_, X[bright])
    np.testing.assert_array_equal(calibrated.estimator_.y_seen_, y[bright])
    assert calibrated.snr_cut_ == pytest.approx(np.median(snr))
    assert calibrated.snr_levels_[-1] == pytest.approx(calibrated.snr_cut_)
    assert calibrated.snr_levels_.shape == (4,)
    np.testing.assert_array_equal(calibrated.classes_, [0, 1])


def test_bright_images_keep_the_estimators_ranking(calibrated, sky):
    X, _ = sky
    snr = aperture_snr(X, border=BORDER)
    bright = snr > calibrated.snr_cut_
    raw = calibrated.estimator_.decision_function(X[bright])
    slope, intercept = calibrated.mode_log_odds_
    assert slope > 0
    np.testing.assert_allclose(calibrated.decision_function(X[bright]), slope * raw + intercept)


def test_faint_images_collapsed_into_one_mode_are_repaired(calibrated, sky):
    X_test, y_test = _stars_and_galaxies(600, np.random.default_rng(1))
    faint = aperture_snr(X_test, border=BORDER) <= calibrated.snr_cut_
    plain = calibrated.estimator_.decision_function(X_test)
    scores = calibrated.decision_function(X_test)
    # the stand-in sends every very faint image to the galaxy mode; the calibration learns
    # from faded bright images what such images looked like when bright
    assert (
        roc_auc_score(y_test[faint], scores[faint])
        > roc_auc_score(y_test[faint], plain[faint]) + 0.1
    )
    assert roc_auc_score(y_test, scores) > roc_auc_score(y_test, plain) + 0.05
    assert roc_auc_score(y_test, scores) > 0.85


def test_probabilities_and_labels_follow_the_decision_function(calibrated, sky):
    X, _ = sky
    scores = calibrated.decision_function(X)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(proba, axis=1), (scores > 0).astype(int))
    np.testing.assert_array_equal(calibrated.predict(X), (scores > 0).astype(int))


def test_same_random_state_same_calibration_and_pickling_keeps_it(calibrated, sky):
    X, y = sky
    again = FaintCalibratedClassifier(
        CollapsingConcentration(), n_levels=4, border=BORDER, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(again.decision_function(X), calibrated.decision_function(X))
    restored = pickle.loads(pickle.dumps(calibrated))
    np.testing.assert_array_equal(restored.decision_function(X), calibrated.decision_function(X))


def test_fit_leaves_the_images_untouched_and_takes_three_d_input(sky):
    X, y = sky
    X3 = X[:, 0].copy()
    before = X3.copy()
    model = FaintCalibratedClassifier(
        CollapsingConcentration(), n_levels=2, border=BORDER, random_state=0
    ).fit(X3, y)
    np.testing.assert_array_equal(X3, before)
    assert model.estimator_.fitted_on_.ndim == 3  # the estimator sees the user's layout
    assert model.image_shape_ == (1, SIZE, SIZE)
    assert model.decision_function(X3).shape == (len(X3),)


def test_wraps_a_real_cond_vae_pipeline(tiny_images):
    X, y = tiny_images
    X = 20.0 * X  # sky noise 0.4, so the objects stand clearly above it
    classifier = make_pipeline(
        PeakScaler(crop=12),
        CondVAEClassifier(n_components=2, widths=(4, 8), max_epochs=1, random_state=0),
    )
    model = FaintCalibratedClassifier(classifier, n_levels=2, border=2, random_state=0)
    model.fit(X, y)
    assert len(model.estimator_[-1].history_) == 1
    scores = model.decision_function(X)
    assert scores.shape == (len(X),) and np.all(np.isfinite(scores))
    assert set(model.predict(X)) <= {0, 1}


@pytest.mark.parametrize(
    "params, X_change, message",
    [
        ({}, lambda X: X.reshape(len(X), -1), "not flat"),
        ({"band": 1}, None, "band=1 is out of range"),
        ({"bright_fraction": 0.01}, None, "needs at least 10"),
        ({"bright_fraction": 1.0}, None, "bright_fraction"),
        ({}, lambda X: np.where(np.arange(len(X))[:, None, None, None] == 3, np.nan, X), "NaN"),
        ({}, lambda X: np.random.default_rng(0).normal(size=X.shape), "nothing to fade"),
    ],
)
def test_bad_input_is_refused_and_leaves_it_unfitted(sky, params, X_change, message):
    X, _ = sky
    X = X if X_change is None else X_change(X)
    model = FaintCalibratedClassifier(CollapsingConcentration(), border=BORDER, **params)
    with pytest.raises(ValueError, match=message):
        model.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_a_label_count_mismatch_and_a_constant_estimator_are_refused(sky):
    X, y = sky
    model = FaintCalibratedClassifier(CollapsingConcentration(), border=BORDER)
    with pytest.raises(ValueError, match="y has 599 labels but X has 600 images"):
        model.fit(X, y[:-1])
    constant = FaintCalibratedClassifier(CollapsingConcentration(collapse_snr=1e9), border=BORDER)
    with pytest.raises(ValueError, match="same decision value"):
        constant.fit(X)


def test_unfitted_and_mismatched_images_are_refused(calibrated, sky):
    X, _ = sky
    with pytest.raises(NotFittedError):
        FaintCalibratedClassifier(CollapsingConcentration()).decision_function(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        calibrated.decision_function(X[:, :, :20, :20])


def test_is_a_classifier_to_scikit_learn(calibrated, sky):
    # cross-validation then splits y by class, and a search without `scoring` can score it
    from sklearn.base import is_classifier

    X, y = sky
    assert is_classifier(calibrated)
    assert calibrated.score(X, y) == np.mean(calibrated.predict(X) == y)
