"""Metrics and scorers: clustering quality, AUC, reconstruction quality and equivariance.

Three kinds of function live here:

- **Scorers** with the scikit-learn signature ``scorer(estimator, X, y=None) -> float``
  (:func:`silhouette_scorer`, :func:`dbcv_scorer`, :func:`auc_scorer` and the factories
  :func:`make_clustering_scorer`, :func:`make_auc_scorer`). They plug into
  ``GridSearchCV(scoring=...)``, into a multi-metric ``scoring={...}`` dict, and, being plain
  callables with that signature, into skorch's ``EpochScoring(scoring=...)`` too.
- **Image metrics** (:func:`reconstruction_mse`, :func:`ssim`, :func:`ms_ssim`) that take numpy
  arrays (and return floats) or torch tensors (and return differentiable tensors, so they
  double as loss terms).
- :func:`equivariance_error`, which measures how much an embedding moves when the images are
  rotated or flipped.
"""

import math
import numbers
import re
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

__all__ = [
    "auc_scorer",
    "dbcv_scorer",
    "equivariance_error",
    "make_auc_scorer",
    "make_clustering_scorer",
    "ms_ssim",
    "reconstruction_mse",
    "silhouette_scorer",
    "ssim",
]

# The score given when a clustering cannot be scored: the bottom of both the silhouette and
# the DBCV range, so a degenerate candidate always loses a hyperparameter search.
_WORST_SCORE = -1.0

# Wang, Simoncelli & Bovik (2003): weights of the five MS-SSIM scales, finest first.
_MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


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
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(validity_index(np.ascontiguousarray(Z, dtype=np.float64), labels))
        except (ValueError, ZeroDivisionError, FloatingPointError, IndexError) as exc:
            warnings.warn(
                f"DBCV failed ({type(exc).__name__}: {exc}); scoring it {_WORST_SCORE}",
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


# --------------------------------------------------------------------------------------------
# image metrics
# --------------------------------------------------------------------------------------------


def _as_tensor_pair(X_true, X_pred):
    """Both inputs as (n, C, H, W) torch tensors, and whether the caller gave tensors."""
    import torch

    is_torch = isinstance(X_true, torch.Tensor) or isinstance(X_pred, torch.Tensor)
    like = X_true if isinstance(X_true, torch.Tensor) else X_pred

    def to_tensor(x):
        if isinstance(x, torch.Tensor):
            return x if x.is_floating_point() else x.float()
        # numpy arrays are taken in float64 (native byte order); a tensor partner dictates
        # dtype and device
        tensor = torch.from_numpy(np.asarray(x, dtype=np.float64))
        if is_torch:
            dtype = like.dtype if like.is_floating_point() else torch.float32
            tensor = tensor.to(device=like.device, dtype=dtype)
        return tensor

    X_true, X_pred = to_tensor(X_true), to_tensor(X_pred)
    if X_true.shape != X_pred.shape:
        raise ValueError(f"shapes differ: {tuple(X_true.shape)} and {tuple(X_pred.shape)}")
    if X_true.ndim == 3:
        X_true, X_pred = X_true.unsqueeze(1), X_pred.unsqueeze(1)
    elif X_true.ndim != 4:
        raise ValueError(
            f"expected images of shape (n, H, W) or (n, C, H, W), got {tuple(X_true.shape)}"
        )
    return X_true, X_pred, is_torch


def _finish(value, is_torch):
    if is_torch:
        return value
    value = value.detach().cpu().numpy()
    return float(value) if value.ndim == 0 else value


def _data_range(X_true, data_range):
    if data_range is not None:
        return tuple(data_range) if isinstance(data_range, tuple | list) else float(data_range)
    # from the target only, detached: a loss must not get gradients through its constants
    span = float((X_true.max() - X_true.min()).detach())
    return span if span > 0 else 1.0


def _gaussian_sigma(kernel_size, sigma):
    # 1.5 px for an 11 px window is the standard SSIM ratio; torchmetrics sizes its Gaussian
    # window from sigma alone, and this ratio makes that window exactly kernel_size wide.
    return 1.5 * kernel_size / 11 if sigma is None else sigma


def _check_reduction(reduction):
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def reconstruction_mse(X_true, X_pred, *, reduction="mean"):
    """Mean squared error per image, averaged over images.

    Parameters
    ----------
    X_true, X_pred : array-like or torch.Tensor of the same shape (n, ...)
        Original and reconstructed images, any layout with the images on the first axis.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns the per-image errors (useful as anomaly scores).

    Returns
    -------
    mse : float, ndarray of shape (n,), or torch.Tensor
        A tensor (differentiable) when either input is a tensor.

    Examples
    --------
    >>> import numpy as np
    >>> reconstruction_mse(np.zeros((2, 4, 4)), np.full((2, 4, 4), 0.5))
    0.25
    """
    import torch

    _check_reduction(reduction)
    is_torch = isinstance(X_true, torch.Tensor) or isinstance(X_pred, torch.Tensor)
    if is_torch:
        like = X_true if isinstance(X_true, torch.Tensor) else X_pred
        X_true = torch.as_tensor(X_true, dtype=like.dtype, device=like.device)
        X_pred = torch.as_tensor(X_pred, dtype=like.dtype, device=like.device)
    else:
        X_true = np.asarray(X_true, dtype=np.float64)
        X_pred = np.asarray(X_pred, dtype=np.float64)
    if X_true.shape != X_pred.shape:
        raise ValueError(f"shapes differ: {tuple(X_true.shape)} and {tuple(X_pred.shape)}")
    per_image = ((X_true - X_pred) ** 2).reshape(len(X_true), -1).mean(1)
    if reduction == "none":
        return per_image
    return per_image.mean() if is_torch else float(per_image.mean())


def ssim(
    X_true,
    X_pred,
    *,
    data_range=None,
    mask=None,
    kernel_size=11,
    sigma=None,
    k1=0.01,
    k2=0.03,
    reduction="mean",
):
    """Structural similarity (SSIM) between two batches of images, optionally masked.

    Built on :func:`torchmetrics.functional.image.structural_similarity_index_measure` with a
    Gaussian window. With torch tensors it returns a tensor and is differentiable, so
    ``1 - ssim(target, output)`` is a loss; with numpy arrays it returns a float.

    Parameters
    ----------
    X_true, X_pred : array-like or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Target and prediction. SSIM is symmetric except that the default ``data_range`` comes
        from ``X_true``.
    data_range : float, (min, max) tuple or None, default=None
        Dynamic range of the pixel values, which sets SSIM's stabilising constants. ``None``:
        ``X_true.max() - X_true.min()`` over the whole batch (detached), or 1.0 for a constant
        target. A tuple also clips both inputs to it.
    mask : array-like or torch.Tensor of bool, shape (n, H, W), (n, 1, H, W) or (n, C, H, W)
        If given, SSIM is averaged over the masked pixels only (from the full SSIM map), e.g.
        the "foreground SSIM" of a denoiser. With ``reduction="mean"`` every masked pixel of
        the batch weighs the same. A mask selecting no pixel raises a ``ValueError``.
    kernel_size : int, default=11
        Width of the Gaussian window, odd.
    sigma : float or None, default=None
        Width of the Gaussian; ``None`` uses ``1.5 * kernel_size / 11`` (the standard ratio).
    k1, k2 : float, default=0.01, 0.03
        SSIM's stabilising constants, relative to ``data_range``.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns one value per image (NaN for an image whose mask is empty).

    Returns
    -------
    ssim : float, ndarray of shape (n,), or torch.Tensor
        1 for identical images; lower is less similar.

    See Also
    --------
    ms_ssim : the multi-scale version.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((2, 32, 32))
    >>> ssim(x, x)
    1.0
    >>> bool(ssim(x, x + 0.3 * rng.standard_normal(x.shape)) < 0.9)
    True
    """
    import torch
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check_reduction(reduction)
    X_true, X_pred, is_torch = _as_tensor_pair(X_true, X_pred)
    _, ssim_map = structural_similarity_index_measure(
        X_pred,
        X_true,
        gaussian_kernel=True,
        sigma=_gaussian_sigma(kernel_size, sigma),
        kernel_size=kernel_size,
        data_range=_data_range(X_true, data_range),
        k1=k1,
        k2=k2,
        reduction="none",
        return_full_image=True,
    )
    if mask is None:
        per_image = ssim_map.reshape(len(ssim_map), -1).mean(1)
        return _finish(per_image.mean() if reduction == "mean" else per_image, is_torch)

    mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    mask = mask.to(device=ssim_map.device, dtype=torch.bool)
    if mask.ndim == 3:
        mask = mask.unsqueeze(1)
    n, n_channels, height, width = ssim_map.shape
    if (
        mask.ndim != 4
        or mask.shape[0] != n
        or mask.shape[1] not in (1, n_channels)
        or (mask.shape[2:] != (height, width))
    ):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match images of shape "
            f"{tuple(ssim_map.shape)}"
        )
    weights = mask.expand_as(ssim_map).to(ssim_map.dtype)
    if reduction == "none":
        value = (ssim_map * weights).sum((1, 2, 3)) / weights.sum((1, 2, 3))
    else:
        if not mask.any():
            raise ValueError("the mask selects no pixel")
        value = (ssim_map * weights).sum() / weights.sum()
    return _finish(value, is_torch)


def _ms_ssim_settings(height, width, kernel_size, betas):
    """Number of scales and window size that torchmetrics' MS-SSIM accepts for this size."""
    side = min(height, width)
    if betas is None:
        # as many scales (at most the standard five) as keep the coarsest one >= 8 px
        n_scales = int(np.clip(math.floor(math.log2(max(side, 1) / 8)) + 1, 1, 5))
        weights = np.asarray(_MS_SSIM_BETAS[:n_scales])
        betas = tuple(float(b) for b in weights / weights.sum())
    n_scales = len(betas)
    if kernel_size is None:
        coarsest = side // 2 ** (n_scales - 1)
        # torchmetrics checks side // (n_scales - 1)**2 > kernel_size - 1; the reflection
        # padding of the coarsest scale needs kernel_size <= coarsest
        limit = min(11, coarsest, side // max(1, n_scales - 1) ** 2)
        kernel_size = limit if limit % 2 else limit - 1
        if kernel_size < 3:
            raise ValueError(
                f"images of {height}x{width} px are too small for MS-SSIM with {n_scales} scales"
            )
    return kernel_size, betas


def ms_ssim(
    X_true,
    X_pred,
    *,
    data_range=None,
    kernel_size=None,
    sigma=None,
    betas=None,
    k1=0.01,
    k2=0.03,
    normalize="relu",
    reduction="mean",
):
    """Multi-scale structural similarity (MS-SSIM), usable on small images.

    Built on :func:`torchmetrics.functional.image.multiscale_structural_similarity_index_measure`,
    whose defaults (five scales, an 11 px window) need images of more than 160 px. Here the
    number of scales and the window follow the image size unless given:

    - scales: as many as keep the coarsest scale at least 8 px wide, at most five
      (``floor(log2(side / 8)) + 1``): 4 scales at 64 px, 3 at 32 px, 5 from 128 px. The
      weights are the first standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
      rescaled to sum to 1;
    - window: the largest odd size up to 11 px that fits the coarsest scale and torchmetrics'
      size check: 7 px at 32 and 64 px, 11 px from 256 px.

    Parameters
    ----------
    X_true, X_pred : array-like or torch.Tensor of shape (n, H, W) or (n, C, H, W)
        Target and prediction. Tensors give a differentiable tensor; arrays give a float.
    data_range : float, (min, max) tuple or None, default=None
        As in :func:`ssim`: ``None`` uses the target's range over the batch.
    kernel_size : int or None, default=None
        Gaussian window width (odd); ``None`` picks it as above.
    sigma : float or None, default=None
        Gaussian width; ``None`` uses ``1.5 * kernel_size / 11``.
    betas : tuple of float or None, default=None
        Weight of each scale, finest first; its length is the number of scales. ``None``
        picks them as above.
    k1, k2 : float, default=0.01, 0.03
        Stabilising constants.
    normalize : {"relu", "simple"} or None, default="relu"
        How torchmetrics keeps negative contrast terms from breaking the product of powers.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns one value per image.

    Returns
    -------
    ms_ssim : float, ndarray of shape (n,), or torch.Tensor
        1 for identical images.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((2, 1, 32, 32))
    >>> round(ms_ssim(x, x), 6)
    1.0
    """
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    _check_reduction(reduction)
    X_true, X_pred, is_torch = _as_tensor_pair(X_true, X_pred)
    kernel_size, betas = _ms_ssim_settings(X_true.shape[-2], X_true.shape[-1], kernel_size, betas)
    per_image = multiscale_structural_similarity_index_measure(
        X_pred,
        X_true,
        gaussian_kernel=True,
        sigma=_gaussian_sigma(kernel_size, sigma),
        kernel_size=kernel_size,
        data_range=_data_range(X_true, data_range),
        k1=k1,
        k2=k2,
        betas=tuple(betas),
        normalize=normalize,
        reduction="none",
    )
    return _finish(per_image.mean() if reduction == "mean" else per_image, is_torch)


# --------------------------------------------------------------------------------------------
# equivariance
# --------------------------------------------------------------------------------------------

_ROTATION = re.compile(r"rot(-?\d+(?:\.\d+)?)$")


def _image_transform(name):
    """The (n, C, H, W) -> (n, C, H', W') function a transform name stands for."""
    if name == "fliplr":
        return lambda X: X[..., ::-1]
    if name == "flipud":
        return lambda X: X[..., ::-1, :]
    match = _ROTATION.match(name)
    if match is None:
        raise ValueError(
            f"unknown transform {name!r}: use 'rot<degrees>', 'fliplr', 'flipud' or a callable"
        )
    angle = float(match.group(1))
    if angle % 90 == 0:
        # exact: no interpolation for the rotations of the square's symmetry group
        return lambda X: np.rot90(X, int(angle // 90) % 4, axes=(-2, -1))

    def rotate(X):
        from scipy import ndimage

        # counter-clockwise like np.rot90 (scipy sorts the axes); corners filled with 0, the
        # usual zero padding of rotation augmentations
        return ndimage.rotate(X, angle, axes=(-2, -1), reshape=False, order=1, mode="constant")

    return rotate


def _images_nchw(X, image_shape):
    X = np.asarray(X)
    if X.ndim == 4:
        return X
    if X.ndim == 3:
        return X[:, None]
    if X.ndim == 2:
        n_features = X.shape[1]
        if image_shape is None:
            side = math.isqrt(n_features)
            if side * side != n_features:
                raise ValueError(
                    f"flat images of {n_features} features are not square: pass image_shape"
                )
            image_shape = (1, side, side)
        image_shape = tuple(image_shape)
        if len(image_shape) == 2:
            image_shape = (1, *image_shape)
        if math.prod(image_shape) != n_features:
            raise ValueError(f"image_shape {image_shape} does not hold {n_features} features")
        return X.reshape(len(X), *image_shape)
    raise ValueError(f"expected (n, H, W), (n, C, H, W) or flat (n, F) images, got {X.shape}")


def _restore_layout(X_nchw, ndim):
    if ndim == 4:
        return np.ascontiguousarray(X_nchw)
    if ndim == 3:
        return np.ascontiguousarray(X_nchw[:, 0])
    return np.ascontiguousarray(X_nchw).reshape(len(X_nchw), -1)


def equivariance_error(
    estimator,
    X,
    transforms=("rot90", "rot180", "rot270", "fliplr", "flipud"),
    *,
    reduce=None,
    image_shape=None,
):
    """Relative change of an embedding when the images are rotated or flipped.

    For each transform ``T``::

        error_T = mean_i ||z(T x_i) - z(x_i)|| / mean_i ||z(x_i) - mean_j z(x_j)||

    where ``z`` is ``estimator.transform``. The denominator is the embedding's spread, so an
    embedding cannot look invariant by adding a large constant offset; 0 means invariant and
    about 1.4 is what an embedding unrelated to the original one would give.

    Parameters
    ----------
    estimator : fitted estimator with ``transform``
        The embedder (e.g. an autoencoder, or a pipeline ending in a transformer).
    X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
        Images. They are transformed as (n, C, H, W) and handed to the estimator in the layout
        given; flat images need a square ``F`` (one channel) or ``image_shape``.
    transforms : sequence or dict, default=("rot90", "rot180", "rot270", "fliplr", "flipud")
        Names or callables. ``"rot<degrees>"`` rotates counter-clockwise about the image
        centre, exactly (``np.rot90``) for multiples of 90 and otherwise bilinearly with the
        corners filled with 0 (``scipy.ndimage.rotate(reshape=False, order=1)``, e.g.
        ``"rot45"``); ``"fliplr"`` / ``"flipud"`` flip the columns / the rows. A callable maps
        an (n, C, H, W) array to another. A dict maps result names to either.
    reduce : {None, "mean", "max"}, default=None
        ``None`` returns one error per transform; otherwise the mean or max over transforms.
    image_shape : tuple of int or None, default=None
        (C, H, W) or (H, W) of flat images.

    Returns
    -------
    errors : dict of {str: float} or float
        Keys are the transform names (a callable's ``__name__``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> total_flux = FunctionTransformer(lambda X: X.sum(axis=(1, 2))[:, None])
    >>> X = np.random.default_rng(0).random((10, 8, 8))
    >>> errors = equivariance_error(total_flux, X, ["rot90", "fliplr"])
    >>> {name: round(error, 6) for name, error in errors.items()}
    {'rot90': 0.0, 'fliplr': 0.0}
    """
    if reduce not in (None, "mean", "max"):
        raise ValueError(f"reduce must be None, 'mean' or 'max', got {reduce!r}")
    if isinstance(transforms, str) or callable(transforms):
        transforms = [transforms]
    if not isinstance(transforms, dict):
        named = {}
        for transform in transforms:
            name = (
                transform
                if isinstance(transform, str)
                else getattr(transform, "__name__", repr(transform))
            )
            if name in named:
                raise ValueError(f"two transforms are named {name!r}: pass a dict")
            named[name] = transform
        transforms = named
    if not transforms:
        raise ValueError("no transform given")

    X = np.asarray(X)
    ndim = X.ndim
    X_nchw = _images_nchw(X, image_shape)
    n = len(X_nchw)

    def embed(images_nchw):
        Z = np.asarray(estimator.transform(_restore_layout(images_nchw, ndim)), dtype=np.float64)
        return Z.reshape(n, -1)

    Z = embed(X_nchw)
    spread = np.linalg.norm(Z - Z.mean(0), axis=1).mean()
    errors = {}
    for name, transform in transforms.items():
        function = _image_transform(transform) if isinstance(transform, str) else transform
        moved = np.linalg.norm(embed(np.asarray(function(X_nchw))) - Z, axis=1).mean()
        if spread > 0:
            errors[name] = float(moved / spread)
        else:
            warnings.warn(
                "the embedding is constant, so its equivariance error is undefined (NaN)",
                UndefinedMetricWarning,
                stacklevel=2,
            )
            errors[name] = math.nan
    if reduce is None:
        return errors
    values = list(errors.values())
    return float(np.mean(values) if reduce == "mean" else np.max(values))
