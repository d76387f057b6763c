"""HypercolumnSegmenter: unsupervised pixel-wise segmentation with autoencoder hypercolumns.

The method of the unsupervised star-galaxy write-up (Sun et al. 2017), after Hariharan et al.
(2015, "Hypercolumns for object segmentation and fine-grained localization"): train a residual
convolutional autoencoder on the images, describe every pixel by the stack of the feature maps
of several layers at that position (each upsampled to full resolution: its *hypercolumn*),
and cluster the pixels with k-means. Fine layers carry local intensity and edges, coarse
layers carry context (is this pixel part of an extended object?), so clusters follow objects
rather than single pixel values.
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import MiniBatchKMeans
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skastro.base import AutoencoderMixin, DeepEstimator
from skastro.distributed._arrays import accepts_dask
from skastro.losses import mse_loss, weighted_sum
from skastro.nn.residual import ResidualAutoencoderModule, feature_map_names

__all__ = ["HypercolumnSegmenter"]

# Images per batch when building hypercolumns: they are (b, D, H, W), much larger than images.
_HYPERCOLUMN_BATCH = 32


def _intensity_init(features, intensity, n_segments, sky_fraction):
    """Initial k-means centres from intensity ranks: the faintest pixels are the sky.

    Sky pixels are most of an astronomical image, and k-means started at random tends to
    split that big cloud of noise in two rather than isolate the few object pixels. Starting
    from the mean hypercolumn of the faintest ``sky_fraction`` of the pixels (sky) and of
    equal-count bins of the brighter ones (objects) avoids that; k-means then refines.
    """
    order = np.argsort(intensity, kind="stable")
    n_sky = min(int(sky_fraction * len(order)), len(order) - (n_segments - 1))
    groups = [order[:n_sky], *np.array_split(order[n_sky:], n_segments - 1)]
    centres = [features[g].mean(axis=0) if len(g) else features.mean(axis=0) for g in groups]
    return np.asarray(centres)


class HypercolumnSegmenter(AutoencoderMixin, DeepEstimator):
    """Unsupervised segmentation: residual autoencoder hypercolumns clustered with k-means.

    ``fit`` trains a residual convolutional autoencoder on the images (mean squared error, as
    :class:`ConvAutoencoder`), then builds the hypercolumn of every pixel from the feature
    maps named in ``layers``, each upsampled bilinearly to full resolution, and fits
    :class:`~sklearn.cluster.MiniBatchKMeans` with ``n_segments`` clusters on ``n_pixels``
    pixels drawn at random (seeded) from the training images. Each feature is standardised
    over those pixels, and each layer's block is divided by the square root of its number of
    channels, so every layer weighs the same in the distance however wide it is. K-means
    starts from intensity ranks (the faintest ``sky_fraction`` of the pixels for the sky,
    equal-count bins of the brighter ones for the other segments): started at random it tends
    to split the sky, which is most of the pixels, into noise levels instead of isolating
    the objects.

    :meth:`predict` returns one label map per image. **Label 0 is the background**: with
    ``background="intensity"`` (default) it is the cluster whose pixels have the lowest mean
    intensity (averaged over channels, in standardised units) — sky pixels are the faintest —;
    with ``background="border"`` it is the cluster holding the largest share of the pixels on
    the image borders, which suits centred cutouts whose sky level is not the minimum (e.g.
    over-subtracted sky). The other segments are numbered by increasing mean intensity, so the
    highest label is the brightest segment (e.g. cores of objects).

    Parameters
    ----------
    n_segments : int, default=3
        Number of pixel clusters, the background included: 3 gives sky, faint outskirts and
        bright parts of objects.
    layers : tuple of str, default=("input", "enc0", "enc1", "enc2", "dec0")
        Feature maps stacked into hypercolumns: ``"input"`` (the standardised image),
        ``"enc0"`` (stem, full resolution), ``"enc1"`` ... ``"encL"`` (encoder levels at
        1/2, 1/4, ... resolution, ``L = len(widths)``), ``"decL"`` ... ``"dec0"`` (decoder
        stages, ``"dec0"`` at full resolution).
    n_components : int, default=8
        Size of the autoencoder's latent, returned by :meth:`transform`.
    widths : tuple of int, default=(8, 16, 32)
        Channels of the residual levels.
    n_pixels : int, default=20000
        Pixels sampled from the training images to fit the clustering.
    sky_fraction : float in (0, 1), default=0.95
        Share of the pixels assumed to be sky when k-means is started (see above); only the
        start depends on it. Lower it for crowded fields.
    background : {"intensity", "border"}, default="intensity"
        How the background segment (label 0) is identified; see above.
    max_epochs : int, default=20
        Training epochs of the autoencoder.
    batch_size : int or "auto", default="auto"
        Mini-batch size (capped at the number of images). ``"auto"`` is 64 on a CPU; on
        a GPU it is the largest of 32, 64, ..., 1024 (from 64 up) that fits in half the
        free GPU memory and leaves at least 32 steps per epoch, with ``lr`` scaled by
        ``sqrt(batch_size_ / 64)``; see ``batch_size_`` and ``lr_``.
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=0.0
        AdamW weight decay.
    augment : bool, default=False
        Train on randomly rotated (by 90 degrees) and flipped copies.
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
        Seeds the network, the pixel sample and k-means.
    verbose : int, default=0
        0 is silent; 1 prints the epoch table.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of flat ``(n, F)`` input; one entry may be -1.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them by channel means.
    warm_start : bool, default=False
        When True, calling ``fit`` again continues training (and refits the clustering).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_segments, n_features)
        Cluster centres in the scaled hypercolumn space, ordered by label (0 = background).
    segment_intensity_ : ndarray of shape (n_segments,)
        Mean standardised intensity of each segment's training pixels, by label (NaN for a
        segment that got no training pixel).
    hypercolumn_mean_, hypercolumn_scale_ : ndarray of shape (n_features,)
        Standardisation (and layer weighting) of the hypercolumn features.
    net_ : skorch.NeuralNet
        The skorch net that trained the autoencoder.
    module_ : torch.nn.Module
        The trained :class:`skastro.nn.residual.ResidualAutoencoderModule`.
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``loss_mse``, ``dur``.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in ``fit``.
    n_features_in_ : int
        ``C * H * W``.
    channel_mean_, channel_std_ : ndarray of shape (C,)
        Per-channel statistics used to standardise inputs.
    batch_size_ : int
        The batch size used (``batch_size``, or what ``"auto"`` chose).
    lr_ : float
        The learning rate used (``lr``, scaled when ``"auto"`` chose a larger batch).
    precision_ : str
        The precision used in training: ``precision``, or ``"32"`` where it does not apply.

    See Also
    --------
    ConvAutoencoder : the plain autoencoder.
    sklearn.cluster.MiniBatchKMeans : the pixel clustering.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro import HypercolumnSegmenter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(0, 0.1, (16, 1, 16, 16)).astype(np.float32)
    >>> X[:, :, 4:12, 4:12] += 2.0  # a bright square in every image
    >>> seg = HypercolumnSegmenter(n_segments=2, layers=("input", "enc0"), widths=(4, 8),
    ...                            max_epochs=1, random_state=0).fit(X)
    >>> labels = seg.predict(X)
    >>> labels.shape
    (16, 16, 16)
    >>> int(labels[0, 0, 0]), int(labels[0, 8, 8])  # background corner, object centre
    (0, 1)
    """

    _fitted_state_keys = (
        "cluster_centers",
        "segment_intensity",
        "hypercolumn_mean",
        "hypercolumn_scale",
    )

    _parameter_constraints = {
        **DeepEstimator._parameter_constraints,
        "n_segments": [Interval(numbers.Integral, 2, None, closed="left")],
        "layers": [tuple, list],
        "widths": [tuple, list],
        "n_pixels": [Interval(numbers.Integral, 1, None, closed="left")],
        "sky_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "background": [StrOptions({"intensity", "border"})],
    }

    def __init__(
        self,
        n_segments=3,
        layers=("input", "enc0", "enc1", "enc2", "dec0"),
        *,
        n_components=8,
        widths=(8, 16, 32),
        n_pixels=20000,
        sky_fraction=0.95,
        background="intensity",
        max_epochs=20,
        batch_size="auto",
        lr=1e-3,
        weight_decay=0.0,
        augment=False,
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
        self.n_segments = n_segments
        self.layers = layers
        self.n_components = n_components
        self.widths = widths
        self.n_pixels = n_pixels
        self.sky_fraction = sky_fraction
        self.background = background
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

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``, then cluster the pixels' hypercolumns.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, F)
            Training images, channels first.
        y : None
            Ignored (unsupervised).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return super().fit(X, y)

    def _after_fit(self, X, y):
        # after fit and after each partial_fit: the clustering follows the trained features
        self._fit_segments(X)

    def _check_params(self, data):
        super()._check_params(data)
        known = feature_map_names(len(self.widths))
        unknown = [name for name in self.layers if name not in known]
        if not self.layers or unknown:
            raise ValueError(
                f"layers must name at least one feature map among {known} (for "
                f"widths={tuple(self.widths)}); unknown: {unknown}"
            )
        if self.n_pixels < self.n_segments:
            raise ValueError(
                f"n_pixels={self.n_pixels} is below n_segments={self.n_segments}: the segments "
                "are clusters of the sampled pixels, at least one pixel each"
            )

    def _build_module(self, image_shape):
        return ResidualAutoencoderModule(image_shape, tuple(self.widths), self.n_components)

    def _compute_loss(self, module, X, training):
        reconstruction, _ = module(X)
        return weighted_sum({"mse": mse_loss(reconstruction, X)}, {})

    def _encode(self, module, X):
        return module.encoder(X)

    def _decode_batch(self, module, X):
        return module(X)[0]

    # ------------------------------------------------------------------ hypercolumns
    def _hypercolumns(self, X):
        """``(b, D, H, W)`` raw hypercolumns of standardised images ``X`` (no scaling)."""
        maps = self.module_.feature_maps(X)
        size = X.shape[-2:]
        blocks = []
        unknown = [name for name in self.layers if name not in maps]
        if unknown:
            raise ValueError(
                f"layers {unknown} are not layers of this network; choose among {list(maps)}"
            )
        for name in self.layers:
            block = maps[name]
            if block.shape[-2:] != size:
                block = F.interpolate(block, size=size, mode="bilinear", align_corners=False)
            blocks.append(block)
        return torch.cat(blocks, dim=1)

    def _layer_weights(self):
        device, dtype = self._placement()
        maps = self.module_.feature_maps(
            torch.zeros((1, *self.image_shape_), device=device, dtype=dtype)
        )
        weights = [
            np.full(maps[name].shape[1], 1.0 / np.sqrt(maps[name].shape[1])) for name in self.layers
        ]
        return np.concatenate(weights)

    def _iter_hypercolumns(self, data):
        """Yield ``(start, stop, hypercolumns, intensity)`` for consecutive batches."""
        self.module_.eval()
        with torch.no_grad(), self._inference_context(self._placement()[0]):
            for start, stop, batch in self._inference_batches(data, _HYPERCOLUMN_BATCH):
                X = self._to_net(batch)
                # back to the network's dtype when autocast ran it in lower precision
                yield start, stop, self._hypercolumns(X).to(X.dtype), X.mean(dim=1)

    def _fit_segments(self, X):
        data = self._check_images(X, reset=False)
        n, (_, height, width) = len(data), self.image_shape_
        n_total = n * height * width
        rng = np.random.default_rng(self._seed_)
        size = min(self.n_pixels, n_total)
        chosen = np.sort(rng.choice(n_total, size=size, replace=False))
        image_of = chosen // (height * width)
        features, intensity, border = [], [], []
        for start, stop, columns, mean_intensity in self._iter_hypercolumns(data):
            lo, hi = np.searchsorted(image_of, [start, stop])
            if lo == hi:
                continue
            flat = torch.as_tensor(chosen[lo:hi] - start * height * width, device=columns.device)
            columns = columns.permute(0, 2, 3, 1).reshape(-1, columns.shape[1])
            features.append(columns[flat].cpu().numpy().astype(np.float64))
            intensity.append(mean_intensity.reshape(-1)[flat].cpu().numpy())
            pixel = chosen[lo:hi] % (height * width)
            row, col = pixel // width, pixel % width
            border.append((row == 0) | (row == height - 1) | (col == 0) | (col == width - 1))
        features = np.concatenate(features)
        intensity = np.concatenate(intensity).astype(np.float64)
        border = np.concatenate(border)

        mean = features.mean(axis=0)
        std = features.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        scale = self._layer_weights() / std
        scaled = (features - mean) * scale
        kmeans = MiniBatchKMeans(
            n_clusters=self.n_segments,
            init=_intensity_init(scaled, intensity, self.n_segments, self.sky_fraction),
            n_init=1,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
            batch_size=4096,
        ).fit(scaled)
        raw_labels = kmeans.predict(scaled)

        counts = np.bincount(raw_labels, minlength=self.n_segments)
        sums = np.bincount(raw_labels, weights=intensity, minlength=self.n_segments)
        # an empty cluster can never be predicted; put it last rather than divide by zero
        cluster_intensity = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
        order = list(np.argsort(cluster_intensity, kind="stable"))
        if self.background == "border" and border.any():
            share = np.bincount(raw_labels[border], minlength=self.n_segments) / border.sum()
            background = int(np.argmax(share))
            order.remove(background)
            order.insert(0, background)
        order = np.asarray(order)
        self.cluster_centers_ = kmeans.cluster_centers_[order].astype(np.float32)
        self.segment_intensity_ = np.where(counts > 0, cluster_intensity, np.nan)[order]
        self.hypercolumn_mean_ = mean.astype(np.float32)
        self.hypercolumn_scale_ = scale.astype(np.float32)

    # ------------------------------------------------------------------ inference
    @accepts_dask
    def predict(self, X):
        """Segment images: one label per pixel, 0 for the background.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, F)
            Images with the shape seen in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n, H, W), int64
            Segment of every pixel; 0 is the background, higher labels are brighter segments.
        """
        check_is_fitted(self, "cluster_centers_")
        data = self._check_images(X, reset=False)
        _, height, width = self.image_shape_
        labels = np.empty((len(data), height, width), dtype=np.int64)
        device, dtype = self._placement()
        mean = torch.as_tensor(self.hypercolumn_mean_, device=device, dtype=dtype).view(1, -1, 1, 1)
        scale = torch.as_tensor(self.hypercolumn_scale_, device=device, dtype=dtype)
        scale = scale.view(1, -1, 1, 1)
        centers = torch.as_tensor(self.cluster_centers_, device=device, dtype=dtype)
        for start, stop, columns, _ in self._iter_hypercolumns(data):
            if columns.shape[1] != centers.shape[1]:
                # e.g. set_params(layers=...) after fit: the clusters live in the old space
                raise ValueError(
                    f"layers={tuple(self.layers)} give {columns.shape[1]} features per pixel, "
                    f"but the segments were fitted on {centers.shape[1]}: set layers back to "
                    "what the segmenter was fitted with, or fit it again"
                )
            scaled = ((columns - mean) * scale).permute(0, 2, 3, 1).reshape(-1, centers.shape[1])
            nearest = torch.cdist(scaled, centers).argmin(dim=1)
            labels[start:stop] = nearest.view(stop - start, height, width).cpu().numpy()
        return labels

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and return its label maps (see :meth:`predict`).

        Parameters
        ----------
        X : array-like
            Training images.
        y : None
            Ignored.

        Returns
        -------
        labels : ndarray of shape (n, H, W), int64
        """
        return self.fit(X).predict(X)

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self):
        state = super()._fitted_state()
        state.update(
            cluster_centers=self.cluster_centers_.tolist(),
            # JSON has no NaN: an empty segment's intensity is stored as None
            segment_intensity=[None if np.isnan(v) else float(v) for v in self.segment_intensity_],
            hypercolumn_mean=self.hypercolumn_mean_.tolist(),
            hypercolumn_scale=self.hypercolumn_scale_.tolist(),
        )
        return state

    def _restore_fitted_state(self, state):
        super()._restore_fitted_state(state)
        centers = np.asarray(state["cluster_centers"], dtype=np.float32)
        intensity = np.array(
            [np.nan if v is None else v for v in state["segment_intensity"]], dtype=np.float64
        )
        mean = np.asarray(state["hypercolumn_mean"], dtype=np.float32)
        scale = np.asarray(state["hypercolumn_scale"], dtype=np.float32)
        if centers.ndim != 2 or len(centers) != self.n_segments:
            raise ValueError(
                f"'cluster_centers' must hold {self.n_segments} rows (n_segments), got an "
                f"array of shape {centers.shape}"
            )
        if mean.shape != (centers.shape[1],) or scale.shape != mean.shape:
            raise ValueError(
                f"'hypercolumn_mean' and 'hypercolumn_scale' must hold {centers.shape[1]} "
                f"values each, got shapes {mean.shape} and {scale.shape}"
            )
        if intensity.shape != (self.n_segments,) or np.isinf(intensity).any():
            raise ValueError("'segment_intensity' must hold one number (or null) per segment")
        if not (np.isfinite(centers).all() and np.isfinite(mean).all()):
            raise ValueError("'cluster_centers' and 'hypercolumn_mean' must be finite")
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("'hypercolumn_scale' must be finite and positive")
        self.cluster_centers_, self.segment_intensity_ = centers, intensity
        self.hypercolumn_mean_, self.hypercolumn_scale_ = mean, scale
