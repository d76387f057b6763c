"""StarGalaxyClassifier: label-free star-galaxy separation from the light profile in one band.

No deep network: photometry, a mixture model and boosted trees. The point-spread function
(PSF) is never given; the data say what a point source looks like.
"""

import itertools
import numbers

import numpy as np
from scipy import ndimage
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from skastro._validation import check_images

__all__ = ["StarGalaxyClassifier"]

# Robust standard deviation of a Gaussian from its median absolute deviation.
_MAD_TO_SIGMA = 1.4826
# Aperture radii (pixels) of the curve-of-growth ratios: (inner, outer) pairs spanning the
# seeing disk of typical surveys (FWHM 2.5-6 px) and the sizes of small galaxies.
_APERTURE_PAIRS = (
    (1.0, 2.0),
    (1.0, 3.0),
    (1.0, 6.0),
    (1.5, 3.0),
    (1.5, 4.0),
    (2.0, 4.0),
    (2.0, 6.0),
)
# Widths (pixels) of the Gaussian weights whose successive ratios describe the profile's core.
_WEIGHT_WIDTHS = (0.75, 1.0, 1.5, 2.0, 3.0)
# Widths (sigma, pixels) of the Gaussian templates fitted for size and S/N, and the sub-pixel
# offsets they are tried at (objects of survey cutouts sit within half a pixel of the centre).
_TEMPLATE_WIDTHS = np.geomspace(0.5, 8.0, 48)
_TEMPLATE_SHIFTS = (-0.34, 0.0, 0.34)
# The fit and the moments see pixels within this radius of the centre.
_FIT_RADIUS = 8.0
# A mixture's split of the bright objects is accepted when their fitted widths separate its
# two sides with at least this AUC (stars and galaxies differ by size first).
_MIN_SIZE_SPLIT = 0.9
# Fewest bright images the mixture and the trees are learnt from.
_MIN_BRIGHT = 20
# Boosted trees on the profile features; no early stopping, so the fit is deterministic.
_TREES = dict(max_iter=200, learning_rate=0.05, early_stopping=False)
# Probabilities are kept this far from 0 and 1 before taking log-odds.
_EPS = 1e-6


class StarGalaxyClassifier(ClassifierMixin, BaseEstimator):
    """Separate stars from galaxies without labels, from the light profile in one band.

    Placeholder docstring, completed below.
    """

    _parameter_constraints = {
        "band": [numbers.Integral],
        "bright_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_levels": [Interval(numbers.Integral, 1, None, closed="left")],
        "mask_neighbours": ["boolean"],
        "border": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        band=0,
        *,
        bright_fraction=0.5,
        n_levels=8,
        mask_neighbours=True,
        border=None,
        random_state=None,
    ):
        self.band = band
        self.bright_fraction = bright_fraction
        self.n_levels = n_levels
        self.mask_neighbours = mask_neighbours
        self.border = border
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn what stars look like in these images, then how faint ones should score.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Cutouts with the object at the centre, in linear flux units (not rescaled per
            image); a residual sky is allowed.
        y : None
            Ignored: no labels are used.

        Returns
        -------
        self : StarGalaxyClassifier
            The fitted classifier.
        """
        self._validate_params()
        cubes = self._check_X(X, reset=True)
        image, sigma, masked = self._prepare(cubes)
        features, snr = _measure(image, sigma)
        cut = float(np.quantile(snr, 1.0 - self.bright_fraction))
        bright = np.flatnonzero(snr > cut)
        if len(bright) < _MIN_BRIGHT:
            raise ValueError(
                f"Only {len(bright)} training images lie above the S/N cut ({cut:.3g}); "
                f"StarGalaxyClassifier needs at least {_MIN_BRIGHT}. Pass more images or a "
                "larger bright_fraction."
            )
        rng = check_random_state(self.random_state)
        galaxy_probability, mixture, scaler = _bright_modes(features[bright], rng)

        levels = np.geomspace(max(np.quantile(snr, 0.02), 1.0), cut, self.n_levels)
        rows, weights = [features[bright]], [galaxy_probability]
        for level in levels:
            faded = _fade(image[bright], sigma[bright], snr[bright], level, masked[bright], rng)
            rows.append(_measure(faded, sigma[bright])[0])
            weights.append(galaxy_probability)
        rows, weights = np.concatenate(rows), np.concatenate(weights)
        # soft labels: every row once as a galaxy and once as a star, weighted by the
        # mixture's probabilities
        trees = HistGradientBoostingClassifier(
            **_TREES, random_state=rng.randint(np.iinfo(np.int32).max)
        )
        trees.fit(
            np.concatenate([rows, rows]),
            np.r_[np.ones(len(rows)), np.zeros(len(rows))],
            sample_weight=np.r_[weights, 1.0 - weights],
        )

        self.image_shape_ = cubes.shape[1:]
        self.n_features_in_ = int(np.prod(self.image_shape_))
        self.snr_cut_ = cut
        self.snr_levels_ = levels
        self.mixture_ = mixture
        self.scaler_ = scaler
        self.classifier_ = trees
        self.galaxy_fraction_ = float(galaxy_probability.mean())
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X):
        """Log-odds that each object is a galaxy (positive: galaxy).

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Cutouts with the shape seen in :meth:`fit`.

        Returns
        -------
        scores : ndarray of shape (n,), float64
        """
        check_is_fitted(self)
        cubes = self._check_X(X, reset=False)
        image, sigma, _ = self._prepare(cubes)
        features, _ = _measure(image, sigma)
        probability = np.clip(self.classifier_.predict_proba(features)[:, 1], _EPS, 1 - _EPS)
        return np.log(probability) - np.log1p(-probability)

    def predict_proba(self, X):
        """Probabilities ``[P(star), P(galaxy)]``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Cutouts with the shape seen in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n, 2), float64
        """
        galaxy = expit(self.decision_function(X))
        return np.column_stack([1.0 - galaxy, galaxy])

    def predict(self, X):
        """0 (star) or 1 (galaxy), as the ``target`` of :func:`~skastro.datasets.make_star_galaxy`.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Cutouts with the shape seen in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n,), int
        """
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    # ------------------------------------------------------------------------------------
    def _check_X(self, X, *, reset):
        batches = check_images(
            X,
            expected_shape=None if reset else self.image_shape_,
            estimator_name=type(self).__name__,
        )
        if batches.layout == "flat":
            raise ValueError(
                "StarGalaxyClassifier measures light profiles around the image centre, so it "
                "needs images as (n, H, W) or (n, C, H, W) arrays, not flat (n, F) rows."
            )
        n_bands, height, width = batches.image_shape
        if not -n_bands <= self.band < n_bands:
            raise ValueError(
                f"band={self.band} is out of range for images with {n_bands} band(s); pass "
                "the index of the band to measure (e.g. 2 for r in ugriz)."
            )
        if min(height, width) < 2 * _FIT_RADIUS + 1:
            raise ValueError(
                f"Images of {height} x {width} pixels are too small: the light profile is "
                f"measured within {_FIT_RADIUS:g} px of the centre, so at least "
                f"{int(2 * _FIT_RADIUS + 1)} x {int(2 * _FIT_RADIUS + 1)} pixels are needed."
            )
        return batches.read(slice(None)).reshape((len(batches), *batches.image_shape))

    def _prepare(self, cubes):
        """The band, residual sky plane subtracted, its noise, and the masked neighbours."""
        image = cubes[:, self.band].astype(np.float64)
        border = self.border if self.border is not None else max(2, image.shape[-1] // 10)
        image, sigma = _subtract_sky(image, border)
        masked = np.zeros(image.shape, dtype=bool)
        if self.mask_neighbours:
            masked = _neighbour_mask(image, sigma)
            image[masked] = 0.0
        return image, sigma, masked


# ------------------------------------------------------------------------------ measurements
def _centred_grid(shape):
    height, width = shape
    y, x = np.mgrid[:height, :width].astype(np.float64)
    return y - (height - 1) / 2, x - (width - 1) / 2


def _subtract_sky(image, border):
    """Subtract a plane fitted to the border pixels (3-sigma clipped); return the sky noise."""
    n, height, width = image.shape
    y, x = _centred_grid((height, width))
    frame = np.zeros((height, width), dtype=bool)
    frame[:border] = frame[-border:] = True
    frame[:, :border] = frame[:, -border:] = True
    design = np.stack([np.ones(frame.sum()), x[frame] / width, y[frame] / height], axis=1)
    values = image[:, frame]
    keep = np.ones(values.shape, dtype=bool)
    coef = np.zeros((n, 3))
    for _ in range(3):
        for i in range(n):
            coef[i] = np.linalg.lstsq(design[keep[i]], values[i, keep[i]], rcond=None)[0]
        residual = values - coef @ design.T
        sigma = _MAD_TO_SIGMA * np.median(np.abs(residual), axis=1) + 1e-12
        keep = np.abs(residual) < 3.0 * sigma[:, None]
    plane = coef[:, :1, None] + coef[:, 1:2, None] * (x / width) + coef[:, 2:3, None] * (y / height)
    return image - plane, sigma


def _neighbour_mask(image, sigma, threshold=2.0, grow=2):
    """Pixels of detected sources that do not touch the centre.

    Sources are connected regions above ``threshold`` sky sigmas of the image smoothed by a
    1-pixel Gaussian (whose noise is about a quarter of the raw one); the central object's
    region is the one covering the centre. The others are grown by ``grow`` pixels.
    """
    smooth = ndimage.gaussian_filter(image, sigma=(0, 1.0, 1.0))
    # a 1-px Gaussian lowers white noise by 1 / (2 sqrt(pi)) per pixel
    detected = smooth > threshold * sigma[:, None, None] / (2.0 * np.sqrt(np.pi))
    height, width = image.shape[1:]
    cy, cx = (height - 1) // 2, (width - 1) // 2
    masked = np.zeros(image.shape, dtype=bool)
    structure = np.ones((3, 3), dtype=bool)
    for i in range(len(image)):
        labels, count = ndimage.label(detected[i], structure=structure)
        if count == 0:
            continue
        centre_labels = np.unique(labels[cy : cy + 2, cx : cx + 2])
        others = (labels > 0) & ~np.isin(labels, centre_labels[centre_labels > 0])
        if others.any():
            masked[i] = ndimage.binary_dilation(others, iterations=grow)
            # never mask the central object's own pixels
            masked[i] &= ~np.isin(labels, centre_labels[centre_labels > 0])
    return masked


def _measure(image, sigma):
    """Profile features of the central object of each image, and its S/N.

    Features: ratios of aperture fluxes (the curve of growth), ratios of Gaussian-weighted
    fluxes (the core), and the width of the best-fitting circular Gaussian (log).
    """
    y, x = _centred_grid(image.shape[1:])
    radius = np.hypot(y, x)
    columns = []
    apertures = {r: image[:, radius <= r].sum(axis=1) for r in sorted({*np.ravel(_APERTURE_PAIRS)})}
    for inner, outer in _APERTURE_PAIRS:
        columns.append(apertures[inner] / _safe(apertures[outer]))
    weighted = [(image * np.exp(-0.5 * (radius / w) ** 2)).sum(axis=(1, 2)) for w in _WEIGHT_WIDTHS]
    for inner, outer in itertools.pairwise(weighted):
        columns.append(inner / _safe(outer))
    width, snr = _template_fit(image, sigma, y, x)
    columns.append(np.log(width))
    columns.append(np.arcsinh(snr))
    return np.column_stack(columns), snr


def _safe(denominator):
    """Keep ratios finite when a noise-dominated denominator is near zero."""
    return np.where(np.abs(denominator) > 1e-12, denominator, 1e-12)


def _template_fit(image, sigma, y, x):
    """Width (sigma, px) of the best-fitting circular Gaussian and the fit's S/N.

    Least squares with a free positive amplitude, over a grid of widths and sub-pixel
    offsets: for a unit-norm template ``t`` the squared residual falls by ``(image . t)**2``,
    so the best template is the one with the largest positive projection, and that
    projection over the sky noise is the matched-filter S/N.
    """
    inside = np.hypot(y, x) <= _FIT_RADIUS
    ys, xs = y[inside], x[inside]
    templates, widths = [], []
    for w in _TEMPLATE_WIDTHS:
        for dx in _TEMPLATE_SHIFTS:
            for dy in _TEMPLATE_SHIFTS:
                t = np.exp(-0.5 * ((xs - dx) ** 2 + (ys - dy) ** 2) / w**2)
                templates.append(t / np.linalg.norm(t))
                widths.append(w)
    projection = image[:, inside] @ np.stack(templates, axis=1)
    best = projection.argmax(axis=1)
    return np.asarray(widths)[best], projection.max(axis=1) / sigma


def _bright_modes(features, rng):
    """Galaxy probability of each bright object from a two-component mixture.

    The profile features (all but the S/N) are standardised and modelled by two Gaussians
    with full covariances. Stars are the component with the smaller mean fitted width: the
    point sources. Such a mixture can also split the galaxies among themselves (seen on a
    development variant), so the split is checked without labels: it must be a split by
    size, the fitted widths of its two sides separating with an AUC of at least
    ``_MIN_SIZE_SPLIT``. If it is not, diagonal covariances are used, which never failed
    that check.
    """
    scaler = StandardScaler().fit(features[:, :-1])
    Z = scaler.transform(features[:, :-1])
    width = features[:, -2]
    seed = rng.randint(np.iinfo(np.int32).max)
    for covariance_type in ("full", "diag"):
        mixture = GaussianMixture(
            2, covariance_type=covariance_type, n_init=3, random_state=seed
        ).fit(Z)
        responsibility = mixture.predict_proba(Z)
        mean_width = (responsibility * width[:, None]).sum(axis=0) / responsibility.sum(axis=0)
        star = int(np.argmin(mean_width))
        galaxy_probability = 1.0 - responsibility[:, star]
        if _size_split(galaxy_probability > 0.5, width) >= _MIN_SIZE_SPLIT:
            break
    return galaxy_probability, mixture, scaler


def _size_split(is_galaxy, width):
    """AUC with which ``width`` separates the two sides of a split (0.5 if one is empty)."""
    n_galaxies = int(is_galaxy.sum())
    if n_galaxies in (0, len(is_galaxy)):
        return 0.5
    ranks = np.argsort(np.argsort(width)) + 1.0
    n_stars = len(is_galaxy) - n_galaxies
    return (ranks[is_galaxy].sum() - n_galaxies * (n_galaxies + 1) / 2) / (n_galaxies * n_stars)


def _fade(image, sigma, snr, target_snr, masked, rng):
    """Copies of ``image`` at ``target_snr`` under the same sky noise ``sigma``."""
    scale = np.minimum(target_snr / snr, 1.0)[:, None, None]
    extra = sigma[:, None, None] * np.sqrt(1.0 - scale**2)
    faded = scale * image + extra * rng.standard_normal(image.shape)
    faded[masked] = 0.0
    return faded
