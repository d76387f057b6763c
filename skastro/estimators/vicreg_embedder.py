"""VICRegEmbedder: self-supervised image embeddings with the VICReg loss."""

import numbers
import zlib

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skastro._device import seeded
from skastro.anomaly import kneighbors_excluding_self
from skastro.augment import random_view
from skastro.base import DeepEstimator
from skastro.losses import VICRegLoss, rankme
from skastro.nn.resnet import VICRegModule

__all__ = ["VICRegEmbedder"]

# Principal components of the "pca" reference embedding (fewer when the data are smaller).
_PCA_COMPONENTS = 32
# Images read at once when building the reference embedding.
_READ_BATCH = 1024
# What two views of a positive pair may differ by (the ``invariances`` parameter).
INVARIANCES = ("rotation", "flip", "crop", "blur", "noise", "colour")
# Colour jitter: each band of a view scaled by exp(u), u uniform in +-this (about +-20%).
_COLOUR_JITTER = 0.2
# Images hashed to recognise the training set again (partial_fit on the same data).
_FINGERPRINT_IMAGES = 16


class VICRegEmbedder(DeepEstimator):
    """Self-supervised embedding with VICReg (variance-invariance-covariance regularisation).

    A small ResNet backbone maps each image to a representation of ``n_components`` values,
    and an MLP expander maps that to the embedding the loss sees. Two branches (positive
    pairs) are embedded and the loss of Bardes, Ponce & LeCun (2022) is minimised:

    * invariance (``sim_weight``): mean squared distance between the two branches;
    * variance (``var_weight``): a hinge at 1 on the standard deviation of each embedding
      dimension over the batch (with an epsilon), which prevents collapse to a constant;
    * covariance (``cov_weight``): squared off-diagonal covariances, which decorrelate the
      dimensions.

    Each term is logged per epoch in ``history_`` (``loss_invariance``, ``loss_variance``,
    ``loss_covariance``), with ``rankme``, the effective rank of the batch representations
    (Garrido et al. 2023): a label-free collapse monitor that stays near 1 when the
    representation collapses. :meth:`transform` returns the backbone representation, not the
    expander output, as is standard for downstream tasks.

    Positive pairs come from ``pairs="augment"``: two random views of the same image, which
    differ by the transformations named in ``invariances`` (by default flips, rotations by any
    angle, crops rescaled to full size, Gaussian noise and blur; the same warp and blur for
    every band, so colours are kept): the embedding learns to ignore exactly those; or from
    ``pairs="knn"``: each image
    with one of its ``n_neighbors`` nearest neighbours (drawn at random each time) in a
    reference embedding, computed once per training set; with ``augment=True`` both images
    are also randomly augmented.

    Training uses full batches only (the last partial batch of each epoch is dropped, as the
    covariance term assumes a fixed batch size); the batch size is capped at the number of
    training images, so a set smaller than ``batch_size`` trains on one batch of all images.
    At least 2 images are needed.

    Parameters
    ----------
    n_components : int, default=64
        Size of the representation returned by :meth:`transform`.
    widths : tuple of int, default=(16, 32, 64)
        Channels of the ResNet stages; each stage after the first halves the resolution.
    n_blocks : int, default=1
        Residual blocks per stage (depth = ``len(widths) * n_blocks`` blocks).
    expander_widths : tuple of int, default=(256, 256)
        Layer sizes of the expander MLP; the last is the embedding size the loss sees.
    stem_stride : int, default=1
        Stride of the first convolution; 2 makes 64-pixel images about 4x cheaper to train.
    sim_weight : float, default=25.0
        Weight of the invariance term.
    var_weight : float, default=25.0
        Weight of the variance term; 0 lets the embedding collapse (an ablation).
    cov_weight : float, default=1.0
        Weight of the covariance term.
    pairs : {"augment", "knn"}, default="augment"
        Where positive pairs come from: two augmented views of each image, or an image and
        one of its nearest neighbours in the ``reference`` embedding.
    reference : "pixels", "pca", fitted transformer or array-like, default="pixels"
        Reference embedding for ``pairs="knn"``: standardised pixels, their first 32
        principal components, the ``transform`` of a fitted estimator (e.g. another
        VICRegEmbedder or a ``Pipeline``) applied to the training images, or a precomputed
        ``(n_samples, d)`` array for the training images. Ignored for ``pairs="augment"``.
        ``"pixels"`` and ``"pca"`` hold all the training pixels in memory during the
        neighbour search (once per training set). scikit-learn's ``clone`` (used by
        ``GridSearchCV``) replaces a fitted estimator by
        an unfitted copy; wrap it in :class:`sklearn.frozen.FrozenEstimator` to keep it.
    n_neighbors : int, default=5
        Neighbours each image is paired with (``pairs="knn"``); capped at ``n - 1``.
    crop_scale : (float, float), default=(0.6, 1.0)
        Range of the area fraction of the random crops (1 disables cropping).
    noise_std : float, default=0.1
        Largest standard deviation of the Gaussian noise added to views, in units of the
        per-band standard deviation of the training images.
    blur_sigma : (float, float), default=(0.1, 1.0)
        Range of the Gaussian blur width in pixels (half of the views are blurred).
    invariances : tuple of str, default=("rotation", "flip", "crop", "blur", "noise")
        What the two views of a positive pair may differ by, i.e. what the embedding is taught
        to ignore: ``"rotation"`` (any angle), ``"flip"`` (mirror images), ``"crop"``
        (``crop_scale``), ``"blur"`` (``blur_sigma``), ``"noise"`` (``noise_std``) and
        ``"colour"`` (each band scaled by a random factor within about +-20%). The default
        suits sky cutouts, whose orientation means nothing. For oriented data (digits,
        letters, images with a fixed up and down or handedness) leave out ``"rotation"``
        and ``"flip"``: a rotated 6 is a 9, and an embedding taught to ignore rotations
        cannot tell them apart (on scikit-learn's digits:
        ``invariances=("crop", "blur", "noise")``). Leave out ``"colour"`` when colours carry
        the answer (stars against galaxies, photometric redshifts).
    max_epochs : int, default=20
        Training epochs.
    batch_size : int or "auto", default="auto"
        Mini-batch size (capped at the number of images). ``"auto"`` is 64 on a CPU; on
        a GPU it is the largest of 32, 64, ..., 1024 (from 64 up) that fits in half the
        free GPU memory and leaves at least 32 steps per epoch, with ``lr`` scaled by
        ``sqrt(batch_size_ / 64)``; see ``batch_size_`` and ``lr_``.
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=0.0
        AdamW weight decay.
    augment : bool, default=True
        Randomly augment the views; ``pairs="augment"`` requires it.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    precision : {"32", "bf16", "16"}, default="32"
        ``"bf16"`` trains and infers under bfloat16 autocast (mixed precision) on a CUDA GPU
        or a CPU; ``"16"`` under float16 autocast with a gradient scaler, on a CUDA GPU only
        (elsewhere float32, with a warning). ``transform`` output is float32 either way.
    num_workers : int or "auto", default="auto"
        Processes that read batches ahead of training and inference. ``"auto"``: none for
        in-memory arrays; for lazily read data (memmaps, HDF5, FITS folders) one per four
        CPU cores, between 1 and 4.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, pairing and augmentation.
    verbose : int, default=0
        0 is silent; 1 prints the epoch table.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of flat ``(n, F)`` input; one entry may be -1.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``, or are filled with the per-band mean.
    warm_start : bool, default=False
        When True, calling ``fit`` again continues training.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The skorch net that trained the module.
    module_ : VICRegModule
        The trained backbone (``module_.backbone``) and expander (``module_.expander``).
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``loss_invariance``, ``loss_variance``,
        ``loss_covariance``, ``rankme``, ``dur``.
    neighbors_ : ndarray of shape (n_samples, n_neighbors)
        With ``pairs="knn"``: the nearest neighbours of each training image in the reference
        embedding (an image is never its own neighbour; exact duplicates are).
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in ``fit``.
    n_features_in_ : int
        ``C * H * W``.
    channel_mean_, channel_std_ : ndarray of shape (C,)
        Per-band statistics used to standardise inputs.
    batch_size_ : int
        The batch size used (``batch_size``, or what ``"auto"`` chose).
    lr_ : float
        The learning rate used (``lr``, scaled when ``"auto"`` chose a larger batch).
    precision_ : str
        The precision used in training: ``precision``, or ``"32"`` where it does not apply.

    See Also
    --------
    KNNOutlierDetector : anomaly scores on the embedding.
    ConvAutoencoder : reconstruction-based embedding.

    References
    ----------
    A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-Invariance-Covariance Regularization
    for Self-Supervised Learning", ICLR 2022.

    Q. Garrido, R. Balestriero, L. Najman and Y. LeCun, "RankMe: Assessing the Downstream
    Performance of Pretrained Self-Supervised Representations by Their Rank", ICML 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro import VICRegEmbedder
    >>> X = np.random.default_rng(0).random((32, 1, 16, 16), dtype=np.float32)
    >>> embedder = VICRegEmbedder(n_components=8, widths=(8,), expander_widths=(16,),
    ...                           max_epochs=1, batch_size=16, random_state=0).fit(X)
    >>> embedder.transform(X).shape
    (32, 8)
    >>> sorted(k for k in embedder.history_[-1] if k.startswith(("loss_", "rankme")))
    ['loss_covariance', 'loss_invariance', 'loss_variance', 'rankme']
    """

    _width_parameters = ("widths", "expander_widths")

    _parameter_constraints = {
        **DeepEstimator._parameter_constraints,
        "widths": [tuple, list],
        "n_blocks": [Interval(numbers.Integral, 1, None, closed="left")],
        "expander_widths": [tuple, list],
        "stem_stride": [Interval(numbers.Integral, 1, None, closed="left")],
        "sim_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "var_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "cov_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "pairs": [StrOptions({"augment", "knn"})],
        "reference": [StrOptions({"pixels", "pca"}), HasMethods(["transform"]), "array-like"],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "crop_scale": [tuple, list],
        "noise_std": [Interval(numbers.Real, 0, None, closed="left")],
        "blur_sigma": [tuple, list],
        "invariances": [tuple, list],
    }

    # the covariance term assumes a fixed batch size: train on full batches only
    _drop_last = True

    def __init__(
        self,
        n_components=64,
        *,
        widths=(16, 32, 64),
        n_blocks=1,
        expander_widths=(256, 256),
        stem_stride=1,
        sim_weight=25.0,
        var_weight=25.0,
        cov_weight=1.0,
        pairs="augment",
        reference="pixels",
        n_neighbors=5,
        crop_scale=(0.6, 1.0),
        noise_std=0.1,
        blur_sigma=(0.1, 1.0),
        invariances=("rotation", "flip", "crop", "blur", "noise"),
        max_epochs=20,
        batch_size="auto",
        lr=1e-3,
        weight_decay=0.0,
        augment=True,
        device="auto",
        precision="32",
        num_workers="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
        image_shape=None,
        nan_policy="raise",
        warm_start=False,
    ):
        self.n_components = n_components
        self.widths = widths
        self.n_blocks = n_blocks
        self.expander_widths = expander_widths
        self.stem_stride = stem_stride
        self.sim_weight = sim_weight
        self.var_weight = var_weight
        self.cov_weight = cov_weight
        self.pairs = pairs
        self.reference = reference
        self.n_neighbors = n_neighbors
        self.crop_scale = crop_scale
        self.noise_std = noise_std
        self.blur_sigma = blur_sigma
        self.invariances = invariances
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.augment = augment
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.image_shape = image_shape
        self.nan_policy = nan_policy
        self.warm_start = warm_start

    # ------------------------------------------------------------------ validation
    def _check_params(self, data):
        super()._check_params(data)
        n = len(data)
        if n < 2:
            raise ValueError(
                f"VICRegEmbedder needs at least 2 training images, got {n} sample: the "
                "variance and covariance terms are computed over a batch."
            )
        low, high = _pair(self.crop_scale, "crop_scale")
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        low, high = _pair(self.blur_sigma, "blur_sigma")
        if not 0 <= low <= high:
            raise ValueError(f"blur_sigma must satisfy 0 <= low <= high, got {self.blur_sigma}")
        unknown = set(self.invariances) - set(INVARIANCES)
        if unknown or isinstance(self.invariances, str):
            raise ValueError(
                f"invariances must be a tuple of names among {INVARIANCES}, got "
                f"{self.invariances!r}"
            )
        if self.pairs == "augment" and not self.invariances:
            raise ValueError(
                "pairs='augment' makes positive pairs from two views that differ by the "
                "invariances; with invariances=() both views are the same image. Name at "
                "least one (e.g. ('crop', 'noise')), or use pairs='knn'."
            )
        if self.pairs == "augment" and not self.augment:
            raise ValueError(
                "pairs='augment' makes positive pairs from two augmented views, so it needs "
                "augment=True; use pairs='knn' to train without augmentation."
            )
        if self.pairs == "knn" and not isinstance(self.reference, str):
            if hasattr(self.reference, "transform"):
                try:
                    check_is_fitted(self.reference)
                except NotFittedError as exc:
                    raise NotFittedError(
                        "the reference estimator of pairs='knn' must be fitted. If this "
                        "VICRegEmbedder was cloned (GridSearchCV, cross_validate, ...), the "
                        "clone got an unfitted copy: wrap the reference in "
                        "sklearn.frozen.FrozenEstimator so that clones keep it fitted."
                    ) from exc
            elif np.shape(self.reference)[0] != n:
                raise ValueError(
                    f"a precomputed reference embedding must have one row per training image: "
                    f"got {np.shape(self.reference)[0]} rows for {n} images"
                )

    # ------------------------------------------------------------------ hooks
    def _build_module(self, image_shape):
        return VICRegModule(
            image_shape,
            widths=tuple(self.widths),
            n_blocks=self.n_blocks,
            n_components=self.n_components,
            expander_widths=tuple(self.expander_widths),
            stem_stride=self.stem_stride,
        )

    def _loss(self):
        return VICRegLoss(self.sim_weight, self.var_weight, self.cov_weight)

    def _view(self, X):
        if not self.augment:
            return X
        invariances = set(self.invariances)
        return random_view(
            X,
            crop_scale=tuple(self.crop_scale) if "crop" in invariances else (1.0, 1.0),
            rotate="rotation" in invariances,
            flip="flip" in invariances,
            noise_std=self.noise_std if "noise" in invariances else 0.0,
            blur_sigma=tuple(self.blur_sigma) if "blur" in invariances else (0.0, 0.0),
            colour=_COLOUR_JITTER if "colour" in invariances else 0.0,
        )

    def _training_terms(self, module, X, training, index=None):
        """Standardise the batch, build the two branches and compute the VICReg terms.

        With ``pairs="knn"`` in training, the second branch holds a random one of the
        precomputed neighbours of each image, read from the training data by index.
        """
        X = self._to_net(X)
        partner = X
        if training and self.pairs == "knn" and index is not None:
            choice = torch.randint(self.neighbors_.shape[1], (len(index),)).numpy()
            images = self._train_data.read(self.neighbors_[index, choice])
            partner = self._to_net(torch.from_numpy(images).to(X.device, X.dtype))
        return self._compute_loss(module, torch.cat([self._view(X), self._view(partner)]), training)

    def _compute_loss(self, module, X, training):
        """VICReg terms of a batch ``X`` holding the first branch, then the second one."""
        # one forward pass for both branches (cheaper); batch norm normalises them together
        representation, embedding = module(X)
        Z_a, Z_b = embedding.chunk(2)
        terms = self._loss()(Z_a, Z_b)
        terms["rankme"] = rankme(representation[: len(Z_a)])
        return terms

    def _encode(self, module, X):
        return module.backbone(X)

    # ------------------------------------------------------------------ kNN pairs
    def _train(self, net, data, epochs):
        if self.pairs == "knn":
            self._update_neighbors(data)
        # the partner images are read from the data by index during training only; the
        # reference is dropped afterwards so the fitted estimator never holds the images
        self._train_data = data
        try:
            super()._train(net, data, epochs)
        finally:
            del self._train_data

    def _update_neighbors(self, data):
        # the same images, reference and number of neighbours: the neighbours still hold
        key = (_fingerprint(data), _reference_key(self.reference), self.n_neighbors)
        if getattr(self, "_neighbors_key_", None) == key:
            return  # partial_fit on the same images: the neighbours are still valid
        embedding = self._reference_embedding(data)
        k = min(self.n_neighbors, len(data) - 1)
        nn = NearestNeighbors(n_neighbors=k).fit(embedding)
        self_index = np.arange(len(embedding))
        _, self.neighbors_ = kneighbors_excluding_self(nn, embedding, k, embedding, self_index)
        self._neighbors_key_ = key

    def _reference_embedding(self, data):
        reference = self.reference
        if isinstance(reference, str):
            pixels = np.concatenate(
                [
                    self._to_net(torch.from_numpy(data.read(slice(start, stop)))).flatten(1).numpy()
                    for start, stop in data.iter_slices(_READ_BATCH)
                ]
            )
            if reference == "pixels":
                return pixels
            n_components = min(_PCA_COMPONENTS, *pixels.shape)
            return PCA(n_components, random_state=self._seed_).fit_transform(pixels)
        if hasattr(reference, "transform"):
            embedding = reference.transform(data.X)
        else:
            embedding = reference
        embedding = np.asarray(embedding, dtype=np.float64).reshape(len(data), -1)
        if embedding.shape[0] != len(data):
            raise ValueError(
                f"the reference embedding has {embedding.shape[0]} rows for {len(data)} images"
            )
        if not np.isfinite(embedding).all():
            raise ValueError("the reference embedding contains NaN or inf values")
        return embedding

    # ------------------------------------------------------------------ scoring
    def score(self, X, y=None):
        """Negative VICReg loss of two views of every image of ``X`` (higher is better).

        The views are drawn with a fixed seed, so the score is deterministic, and the loss is
        computed over all of ``X`` at once rather than per batch (with ``pairs="knn"`` the
        two branches are views of the same image). ``X`` needs at least 2 images.

        Parameters
        ----------
        X : array-like
            Images.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        data = self._check_images(X, reset=False)
        if len(data) < 2:
            raise ValueError("score needs at least 2 images: the loss has batch statistics")
        module = self.module_
        module.eval()
        branches = ([], [])
        device, _ = self._placement()
        with torch.no_grad(), seeded(self._seed_, device), self._inference_context(device):
            for _, _, batch in self._inference_batches(data):
                batch = self._to_net(batch)
                for views in branches:
                    # back to the network's dtype when autocast ran it in lower precision
                    views.append(module(self._view(batch))[1].to(batch.dtype))
        terms = self._loss()(torch.cat(branches[0]), torch.cat(branches[1]))
        return -float(terms["loss"])


def _pair(value, name):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    return low, high


def _reference_key(reference):
    """What identifies a ``reference``: its name, an array's content, or an object's identity."""
    if isinstance(reference, str):
        return reference
    if isinstance(reference, np.ndarray | list | tuple):
        array = np.ascontiguousarray(reference)
        return (array.shape, str(array.dtype), zlib.crc32(array.tobytes()))
    return id(reference)


def _fingerprint(data):
    """A cheap key that recognises the same training images (count, shape and a sample)."""
    n = len(data)
    index = np.unique(np.linspace(0, n - 1, min(n, _FINGERPRINT_IMAGES)).astype(int))
    return (n, tuple(data.image_shape), zlib.crc32(data.read(index).tobytes()))
