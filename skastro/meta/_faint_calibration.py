"""FaintCalibratedClassifier: bright-image decisions of a label-free classifier, for faint ones."""

import numbers

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.mixture import GaussianMixture
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from skastro._constraints import refuse_bools
from skastro._validation import check_cutouts
from skastro.distributed._arrays import accepts_dask
from skastro.photometry import aperture_snr, flux_fractions, sky_noise

__all__ = ["FaintCalibratedClassifier"]

# Fewest bright images the calibration is learnt from: below this the mode fit and the
# regression have too little to go on.
_MIN_BRIGHT = 10
# Probabilities are kept this far from 0 and 1 before taking log-odds.
_EPS = 1e-6
# The regression of clean-image probabilities on faint-image features: boosted trees need no
# feature scaling and rank-transform every feature, so the S/N may enter on any monotone scale.
_REGRESSOR = dict(max_iter=200, learning_rate=0.05, early_stopping=False)


class FaintCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A label-free two-class classifier whose faint-image decisions are learnt from bright ones.

    Unsupervised classifiers such as :class:`~skastro.CondVAEClassifier` are fitted on the
    brighter images, where stars and galaxies look different; on faint images their decision
    values are unreliable and, between training runs, can put nearly every faint image in one
    mode. That ruins the ranking of faint against bright images, and with it the AUC over all
    images. This meta-estimator fixes that without labels:

    1. ``estimator`` is fitted on the images above the S/N cut (the brightest
       ``bright_fraction``; S/N from :func:`~skastro.photometry.aperture_snr`).
    2. A two-component Gaussian mixture (shared variance) on the fitted images' decision
       values turns each into the probability of the class-1 mode.
    3. Each fitted image is made fainter at ``n_levels`` signal-to-noise levels between the
       faintest training image's and the cut: ``a * image + noise``, the noise chosen so that
       the sky noise stays what it was (the same object, fainter, under the same sky).
    4. A boosted-tree regression learns, from a faded copy's decision value, its S/N and its
       flux fractions in apertures of ``profile_radii`` (its light profile), the class-1
       probability of its bright original.

    :meth:`decision_function` returns log-odds of class 1: for images above the cut, those of
    the mixture at the estimator's decision value (so their ranking among themselves is the
    estimator's); for the others, those of the regression. A faint image that looks like a
    blend of both classes thus lands between confident bright stars and confident bright
    galaxies, where it belongs in a ranking, not deep in one mode.

    Labels are never used: ``y``, when given, is passed to ``estimator.fit`` with the bright
    images, where it only names the two modes (see :class:`~skastro.CondVAEClassifier`).

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``decision_function``
        Unfitted classifier that takes the raw images given here, e.g.
        ``make_pipeline(PeakScaler(crop=24), CondVAEClassifier())``. It is cloned.
    bright_fraction : float in (0, 1), default=0.5
        Fraction of the training images, the brightest, that ``estimator`` is fitted on. The
        S/N cut (``snr_cut_``) is the S/N below which images are calibrated.
    n_levels : int, default=8
        Number of S/N levels each bright image is faded to.
    band : int, default=0
        Band in which S/N and flux fractions are measured.
    aperture_radius : float, default=6.0
        Radius in pixels of the S/N aperture.
    profile_radii : tuple of float, default=(1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
        Aperture radii in pixels of the flux fractions; pick radii that span the seeing disk
        and the typical galaxy.
    total_radius : float, default=8.0
        Radius in pixels of the aperture whose flux the fractions are taken of.
    border : int, default=8
        Rows at the top and bottom of each image whose spread is its sky noise
        (:func:`~skastro.photometry.sky_noise`).
    random_state : int, RandomState instance or None, default=None
        Seeds the added noise and the regression.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    snr_cut_ : float
        Aperture S/N at or below which :meth:`decision_function` uses the regression.
    snr_levels_ : ndarray of shape (n_levels,)
        S/N levels the bright images were faded to.
    mode_log_odds_ : tuple of float
        ``(slope, intercept)``: class-1 log-odds of a bright image are
        ``slope * decision + intercept``.
    regressor_ : HistGradientBoostingRegressor
        Maps faded-copy features to class-1 probabilities.
    classes_ : ndarray of shape (2,)
        The fitted estimator's classes (``[0, 1]`` if it has none).
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in ``fit``.

    See Also
    --------
    skastro.CondVAEClassifier : the classifier this was designed around.
    skastro.photometry : the S/N and flux-fraction measurements.

    Notes
    -----
    The faded copies keep the bright images' object mix, so the regression answers "what
    would this faint image's bright look have said?" for objects like the fitted ones. Test
    images fainter than every training image get the regression's prediction for the
    faintest level.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skastro.datasets import make_star_galaxy
    >>> from skastro.meta import FaintCalibratedClassifier
    >>> sky = make_star_galaxy(200, image_size=32, random_state=0)
    >>> flat = make_pipeline(FunctionTransformer(lambda X: X.reshape(len(X), -1)),
    ...                      LogisticRegression(max_iter=200))
    >>> model = FaintCalibratedClassifier(flat, n_levels=3, border=4, random_state=0)
    >>> model = model.fit(sky.images, sky.target)  # a supervised stand-in, for brevity
    >>> model.decision_function(sky.images).shape
    (200,)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "decision_function"])],
        "bright_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_levels": [Interval(numbers.Integral, 1, None, closed="left")],
        "band": [numbers.Integral],
        "aperture_radius": [Interval(numbers.Real, 0, None, closed="neither")],
        "profile_radii": [tuple, list],
        "total_radius": [Interval(numbers.Real, 0, None, closed="neither")],
        "border": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _parameter_constraints = refuse_bools(_parameter_constraints)

    def __init__(
        self,
        estimator,
        *,
        bright_fraction=0.5,
        n_levels=8,
        band=0,
        aperture_radius=6.0,
        profile_radii=(1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
        total_radius=8.0,
        border=8,
        random_state=None,
    ):
        self.estimator = estimator
        self.bright_fraction = bright_fraction
        self.n_levels = n_levels
        self.band = band
        self.aperture_radius = aperture_radius
        self.profile_radii = profile_radii
        self.total_radius = total_radius
        self.border = border
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit ``estimator`` on the bright images and learn the faint images' calibration.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Raw training images (sky subtracted, not rescaled per image: the S/N is measured
            on them), the object at the centre.
        y : array-like of shape (n,) or None, default=None
            Passed to ``estimator.fit`` with the bright images; label-free estimators only
            name their modes with it.

        Returns
        -------
        self : object
        """
        self._validate_params()
        X, cubes = self._check_X(X, reset=True)
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(X):
                raise ValueError(
                    f"y has {len(y)} labels but X has {len(X)} images; pass one label per "
                    "image, or no y"
                )
        snr = self._snr(cubes)  # also refuses a band the images do not have
        cut = float(np.quantile(snr, 1.0 - self.bright_fraction))
        bright = np.flatnonzero(snr > cut)
        if cut <= 1.0:
            raise ValueError(
                f"The S/N cut is {cut:.3g}: the brightest {self.bright_fraction:.0%} of the "
                "training images are noise-dominated, so there is nothing to fade. Check that "
                "the objects are centred and the sky subtracted, that band selects a band "
                "with signal, or pass a smaller bright_fraction."
            )
        if len(bright) < _MIN_BRIGHT:
            raise ValueError(
                f"Only {len(bright)} training images lie above the S/N cut ({cut:.3g}); "
                f"FaintCalibratedClassifier needs at least {_MIN_BRIGHT}. Pass more images or "
                "a larger bright_fraction."
            )
        estimator = clone(self.estimator)
        estimator.fit(X[bright], None if y is None else y[bright])
        clean = np.asarray(estimator.decision_function(X[bright]), dtype=np.float64)
        slope, intercept = _mode_log_odds(clean)
        target = expit(slope * clean + intercept)

        rng = check_random_state(self.random_state)
        levels = np.geomspace(max(snr.min(), 1.0), cut, self.n_levels)
        bright_cubes = cubes[bright]
        sigma = sky_noise(bright_cubes, border=self.border)
        features = []
        for level in levels:
            faded, faded_snr = _fade(bright_cubes, snr[bright], sigma, level, rng)
            # the estimator sees faded images in the layout it was fitted on
            decision = estimator.decision_function(faded.reshape((len(faded), *X.shape[1:])))
            features.append(self._features(faded, decision, faded_snr))
        regressor = HistGradientBoostingRegressor(
            **_REGRESSOR, random_state=rng.randint(np.iinfo(np.int32).max)
        )
        regressor.fit(np.concatenate(features), np.tile(target, self.n_levels))

        self.image_shape_ = cubes.shape[1:]
        self.estimator_ = estimator
        self.snr_cut_ = cut
        self.snr_levels_ = levels
        self.mode_log_odds_ = (slope, intercept)
        self.regressor_ = regressor
        self.classes_ = np.asarray(getattr(estimator, "classes_", [0, 1]))
        return self

    @accepts_dask
    def decision_function(self, X):
        """Class-1 log-odds: the estimator's above the S/N cut, the calibration's below it.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Raw images with the shape seen in :meth:`fit`.

        Returns
        -------
        scores : ndarray of shape (n,), float64
            Higher means more likely ``classes_[1]``; 0 is even odds.
        """
        check_is_fitted(self)
        X, cubes = self._check_X(X, reset=False)
        snr = self._snr(cubes)
        decision = np.asarray(self.estimator_.decision_function(X), dtype=np.float64)
        slope, intercept = self.mode_log_odds_
        scores = slope * decision + intercept
        faint = snr <= self.snr_cut_
        if faint.any():
            features = self._features(cubes[faint], decision[faint], snr[faint])
            probability = np.clip(self.regressor_.predict(features), _EPS, 1.0 - _EPS)
            scores[faint] = logit(probability)
        return scores

    @accepts_dask
    def predict_proba(self, X):
        """Class probabilities ``[P(classes_[0]), P(classes_[1])]``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Raw images with the shape seen in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n, 2), float64
        """
        positive = expit(self.decision_function(X))
        return np.column_stack([1.0 - positive, positive])

    @accepts_dask
    def predict(self, X):
        """``classes_[1]`` where the decision function is positive, else ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Raw images with the shape seen in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n,)
        """
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a classifier to scikit-learn (cross-validation splits y by class; score is the
        # accuracy), though it never learns from y and does not need one
        tags.target_tags.required = False
        tags.classifier_tags = ClassifierTags(multi_class=False, poor_score=True)
        return tags

    def _check_X(self, X, *, reset):
        """The images as an array in the user's layout, and as ``(n, C, H, W)`` float32."""
        batches = check_cutouts(
            X,
            expected_shape=None if reset else self.image_shape_,
            estimator_name=type(self).__name__,
            measures="measures S/N in apertures",
        )
        cubes = batches.read(slice(None)).reshape((len(batches), *batches.image_shape))
        return np.asarray(X), cubes

    def _snr(self, cubes):
        return aperture_snr(cubes, radius=self.aperture_radius, band=self.band, border=self.border)

    def _features(self, cubes, decision, snr):
        """What the regression sees: decision value, S/N and light profile."""
        fractions = flux_fractions(
            cubes, self.profile_radii, total_radius=self.total_radius, band=self.band
        )
        # arcsinh: a log scale for bright images that stays finite for negative fluxes
        return np.column_stack([decision, np.arcsinh(snr), fractions])


def _mode_log_odds(decision):
    """Slope and intercept of the class-1 log-odds of a two-Gaussian fit to ``decision``.

    The two components share one variance, so the log-odds are linear in the decision value
    and increase with it: bright images keep the estimator's ranking.
    """
    if np.ptp(decision) == 0:
        raise ValueError(
            "The estimator gave every bright training image the same decision value: it found "
            "no split to calibrate. Check that it was trained (e.g. more epochs)."
        )
    mixture = GaussianMixture(2, covariance_type="tied", random_state=0).fit(decision[:, None])
    means = mixture.means_[:, 0]
    low, high = np.argsort(means)
    variance = float(mixture.covariances_[0, 0])
    slope = (means[high] - means[low]) / variance
    intercept = np.log(mixture.weights_[high] / mixture.weights_[low]) - (
        means[high] ** 2 - means[low] ** 2
    ) / (2.0 * variance)
    return float(slope), float(intercept)


def _fade(cubes, snr, sigma, target_snr, rng):
    """Copies of ``cubes`` at ``target_snr`` under the same sky noise ``sigma`` (n, C)."""
    scale = np.minimum(target_snr / snr, 1.0)
    extra = sigma * np.sqrt(1.0 - scale[:, None] ** 2)
    noise = rng.standard_normal(cubes.shape) * extra[:, :, None, None]
    faded = scale[:, None, None, None] * cubes + noise
    return faded.astype(np.float32), scale * snr
