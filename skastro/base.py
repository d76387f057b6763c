"""Shared skorch-based machinery for every deep estimator in skastro.

A skastro estimator is a scikit-learn estimator that *owns* a :class:`skorch.NeuralNet`
(composition rather than inheritance: scikit-learn's cloning, parameter checks and tags then
work exactly as for any other estimator, while training runs through skorch, so skorch
callbacks, ``history_``, checkpointing, ``warm_start`` and ``partial_fit`` work).

A new estimator is mostly its torch module, its loss and its defaults. It subclasses
:class:`DeepEstimator` and implements three hooks:

``_build_module(image_shape)``
    Return the torch module (called once per fit under the seeded RNG).
``_compute_loss(module, X, training)``
    Return a dict of scalar tensors: ``"loss"`` (the total that is minimised) and one entry per
    loss term named ``"loss_<term>"``, each logged per epoch in ``history_``.
``_encode(module, X)``
    Return the ``(b, n_components)`` representation used by :meth:`DeepEstimator.transform`.

``X`` in these hooks is a float32 tensor ``(b, C, H, W)`` on the estimator's device, already
standardised per channel with the training images' statistics (see :meth:`_to_net`).
"""

import contextlib
import copy
import numbers
import sys
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback, ProgressBar
from skorch.dataset import unpack_data

from skastro._validation import NAN_POLICIES, check_images
from skastro.exceptions import NonFiniteLossError

__all__ = ["AutoencoderMixin", "DeepEstimator", "resolve_device", "seeded"]

# Images used to estimate the per-channel statistics; enough for 4 significant digits.
_STATS_MAX_IMAGES = 4096


def resolve_device(device):
    """Map ``"auto"`` to ``"cuda"`` when a GPU is available, else ``"cpu"``; check the rest.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Returns
    -------
    device : str

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}); use device='cpu' or device='auto'."
        )
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from exc
    return device


@contextlib.contextmanager
def seeded(seed, device="cpu"):
    """Run a block with torch's RNG seeded, leaving the caller's global RNG state untouched.

    Everything inside that draws from torch's default generator (weight initialisation,
    augmentation, dropout, sampling) is then reproducible, and the user's own random streams
    are not disturbed by fitting an estimator. On a GPU, cuDNN is also switched to its
    deterministic algorithms for the block (and PyTorch warns about any operation that has no
    deterministic implementation), so the same seed gives the same result there too.

    Examples
    --------
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    devices = []
    on_gpu = str(device).startswith("cuda") and torch.cuda.is_available()
    if on_gpu:
        devices = [torch.device(device).index or 0]
    saved = (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        if on_gpu:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            if on_gpu:
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[:2]
                torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


class _EpochBatches:
    """Iterate over an :class:`ImageBatches` in mini-batches, like a DataLoader but by slicing.

    Fancy-indexing a whole batch at once avoids the per-sample ``__getitem__`` and collate of a
    :class:`torch.utils.data.DataLoader`, which dominates training time for small images.
    """

    def __init__(self, data, batch_size, shuffle, drop_last, rng, device_cache=None):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = rng
        self.device_cache = device_cache

    def __len__(self):
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.data)
        order = self.rng.permutation(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                break
            index = order[start:stop] if order is not None else np.arange(start, stop)
            index_tensor = torch.from_numpy(index)
            if self.device_cache is not None:
                batch = self.device_cache[index_tensor.to(self.device_cache.device)]
            else:
                batch = torch.from_numpy(self.data.read(index))
            # the dataset positions travel as "y" so loss hooks can look up per-image data
            yield batch, index_tensor


class _LogLossTerms(Callback):
    """Average every per-batch loss term over the epoch and record it in the epoch row.

    Terms are recorded per batch by :meth:`_SkastroNet.train_step_single`; skorch averages
    only ``train_loss`` itself, so this puts ``loss_mse``, ``loss_ssim``, ... next to it.
    """

    _SKORCH_KEYS = ("train_", "valid_")

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1]["batches"]
        totals, weights = {}, {}
        for row in batches:
            size = row.get("train_batch_size")
            if size is None:
                continue
            for key, value in row.items():
                if key.startswith(self._SKORCH_KEYS):
                    continue
                totals[key] = totals.get(key, 0.0) + value * size
                weights[key] = weights.get(key, 0) + size
        for key, total in totals.items():
            net.history.record(key, total / weights[key])


class _SkastroNet(NeuralNet):
    """The skorch net behind every skastro estimator.

    It only overrides skorch's documented hooks: the iterator (batches by slicing, seeded
    shuffling), the training/validation steps (the estimator computes named loss terms, and a
    non-finite loss stops training) and the default callbacks (loss terms are averaged per
    epoch before the epoch table is printed).
    """

    def __init__(self, *args, plan=None, drop_last=False, shuffle_seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.drop_last = drop_last
        self.shuffle_seed = shuffle_seed

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        names = [name for name, _ in callbacks]
        position = names.index("print_log") if "print_log" in names else len(callbacks)
        callbacks.insert(position, ("loss_terms", _LogLossTerms()))
        return callbacks

    def initialize(self):
        super().initialize()
        self.shuffle_rng_ = np.random.default_rng(self.shuffle_seed)
        self.interrupted_ = False
        return self

    def get_dataset(self, X, y=None):
        # skastro hands skorch an already validated ImageBatches; use it as it is.
        return X

    def _device_cache(self, dataset):
        """The training images as one tensor on the GPU, when they are in memory and fit.

        Copying each batch from host memory costs a GPU a quarter of its training speed on
        small images; in-memory data sets that take under a quarter of the free GPU memory are
        copied once per fit instead. Lazily loaded data (memmaps, HDF5) stay on the host.
        """
        if not str(self.device).startswith("cuda") or not isinstance(dataset.X, np.ndarray):
            return None
        if isinstance(dataset.X, np.memmap):
            return None
        nbytes = len(dataset) * 4 * int(np.prod(dataset.image_shape))
        free, _ = torch.cuda.mem_get_info(torch.device(self.device))
        if nbytes > free // 4:
            return None
        if getattr(self, "_cached_for_", None) is not dataset:
            self._cached_for_ = dataset
            self.cache_ = torch.from_numpy(dataset.read(slice(None))).to(self.device)
        return self.cache_

    def get_iterator(self, dataset, training=False):
        batch_size = min(self.batch_size, len(dataset))
        if training:
            return _EpochBatches(
                dataset,
                batch_size,
                shuffle=True,
                drop_last=self.drop_last,
                rng=self.shuffle_rng_,
                device_cache=self._device_cache(dataset),
            )
        return _EpochBatches(dataset, batch_size, shuffle=False, drop_last=False, rng=None)

    def check_data(self, X, y=None):
        pass  # validated by the estimator before training starts

    def _loss_terms(self, batch, training):
        Xi, index = unpack_data(batch)
        Xi = Xi.to(self.device, non_blocking=True)
        index = None if index is None else index.numpy()
        terms = self.plan._training_terms(self.module_, Xi, training=training, index=index)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            epoch = len(self.history)
            details = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items())
            raise NonFiniteLossError(
                f"the training loss became {float(loss.detach())} at epoch {epoch} ({details}). "
                "Training was stopped and the estimator left unfitted. Try a lower lr, "
                "check the input scaling (e.g. ImageScaler), or lower the loss weights."
            )
        return terms

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        terms = self._loss_terms(batch, training=True)
        terms["loss"].backward()
        names = [key for key in terms if key != "loss"]
        if names:
            # one device-to-host copy for all terms, not one synchronisation per term
            values = torch.stack([terms[k].detach().float().reshape(()) for k in names]).tolist()
            for key, value in zip(names, values):
                self.history.record_batch(key, value)
        return {"loss": terms["loss"], "y_pred": None}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            terms = self._loss_terms(batch, training=False)
        return {"loss": terms["loss"], "y_pred": None}

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch swallows KeyboardInterrupt in partial_fit and returns normally; remember it so
        # the estimator (and the command line) can tell an interrupted fit from a finished one.
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = True
            raise


class DeepEstimator(TransformerMixin, BaseEstimator):
    """Base class of skastro's deep estimators (not used directly).

    Subclasses define ``__init__`` with their parameters (all of ``_common_params`` among
    them), ``_build_module``, ``_compute_loss`` and ``_encode``; see the module docstring.
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "augment": ["boolean"],
        "device": [str, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
        "warm_start": ["boolean"],
    }

    # skorch's train/valid split is off: unsupervised training uses every image.
    _train_split = None
    # Set True by estimators whose loss needs full batches (e.g. a covariance term).
    _drop_last = False

    # ------------------------------------------------------------------ hooks for subclasses
    # The three hooks below are abstract by design: every estimator defines them (see
    # CONTRIBUTING.md); the base class only says which one is missing.
    def _build_module(self, image_shape):  # pragma: no cover - abstract
        """Return the torch module for images of shape ``(C, H, W)``."""
        raise NotImplementedError(f"{type(self).__name__} must define _build_module(image_shape)")

    def _compute_loss(self, module, X, training):  # pragma: no cover - abstract
        """Return ``{"loss": total, term_name: value, ...}`` for a standardised batch ``X``."""
        raise NotImplementedError(
            f"{type(self).__name__} must define _compute_loss(module, X, training)"
        )

    def _encode(self, module, X):  # pragma: no cover - abstract
        """Return the latent vectors of a standardised batch ``X``."""
        raise NotImplementedError(f"{type(self).__name__} must define _encode(module, X)")

    def _augment(self, X):
        """Random views for training; the default draws one of the 8 dihedral symmetries.

        Sky images have no preferred orientation, so rotations by 90 degrees and flips are
        always valid augmentations, and they are exact (no interpolation).
        """
        from skastro.augment import random_dihedral

        return random_dihedral(X)

    def _training_terms(self, module, X, training, index=None):
        """Standardise a raw batch, augment it when training, and compute the loss terms.

        ``X`` is the raw float32 batch on the device; ``index`` holds the positions of its
        images in the training data (None outside training), for losses that need per-image
        information such as precomputed neighbours. Override this (rather than
        ``_compute_loss``) when a method needs the raw images, e.g. to add photon noise.
        """
        X = self._to_net(X)
        if training and self.augment:
            X = self._augment(X)
        return self._compute_loss(module, X, training)

    # ------------------------------------------------------------------ input scaling
    def _fit_input_stats(self, data):
        """Per-channel mean and standard deviation of (a seeded sample of) the training images.

        Networks train best on inputs of unit scale, and astronomical images come in any unit
        (counts, nanomaggies, Jy/beam), so every estimator standardises per channel and maps
        outputs back to the user's units.
        """
        n = len(data)
        if n > _STATS_MAX_IMAGES:
            rng = np.random.default_rng(0)
            index = np.sort(rng.choice(n, _STATS_MAX_IMAGES, replace=False))
        else:
            index = slice(None)
        sample = data.read(index) if data.nan_policy == "raise" else None
        if sample is None:
            raw = np.asarray(data.X[index]).reshape(-1, *data.image_shape).astype(np.float64)
            mean = np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=(0, 2, 3))
            mean = np.nan_to_num(mean)
            data.fill_values = mean.astype(np.float32)
            sample = data.read(index)
        sample = sample.astype(np.float64)
        mean = sample.mean(axis=(0, 2, 3))
        std = sample.std(axis=(0, 2, 3))
        # A constant channel has no scale; leave it unscaled rather than divide by zero.
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return mean.astype(np.float32), std.astype(np.float32)

    def _to_net(self, X):
        mean = torch.as_tensor(self.channel_mean_, device=X.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.channel_std_, device=X.device).view(1, -1, 1, 1)
        return (X - mean) / std

    def _from_net(self, X):
        mean = torch.as_tensor(self.channel_mean_, device=X.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.channel_std_, device=X.device).view(1, -1, 1, 1)
        return X * std + mean

    # ------------------------------------------------------------------ validation
    def _check_images(self, X, *, reset):
        name = type(self).__name__
        if reset:
            data = check_images(
                X, image_shape=self.image_shape, nan_policy=self.nan_policy, estimator_name=name
            )
            self.image_shape_ = data.image_shape
            self.n_features_in_ = int(np.prod(data.image_shape))
            return data
        check_is_fitted(self)
        data = check_images(
            X,
            image_shape=self.image_shape,
            nan_policy=self.nan_policy,
            expected_shape=self.image_shape_,
            estimator_name=name,
        )
        if self.nan_policy == "fill":
            data.fill_values = self.channel_mean_
        return data

    def _check_params(self, data):
        """Subclasses validate parameters that depend on the data here (after shapes are known)."""

    # ------------------------------------------------------------------ fitting
    def _net_callbacks(self):
        callbacks = list(self.callbacks or [])
        if self.verbose and (self.verbose >= 2 or sys.stderr.isatty()):
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _make_net(self, module, seed):
        callbacks = self._net_callbacks()
        self._callbacks_param_ = self.callbacks
        return _SkastroNet(
            module=module,
            criterion=torch.nn.Identity,  # the loss lives in _compute_loss
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=self._train_split,
            callbacks=callbacks or None,
            device=self.device_,
            verbose=int(self.verbose),
            plan=self,
            drop_last=self._drop_last,
            shuffle_seed=seed,
        )

    def fit(self, X, y=None):
        """Train the network on images ``X``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, F)
            Training images, channels first; flat rows need ``image_shape`` unless they are
            square one-channel images. ``np.memmap`` and lazily loaded arrays are read batch
            by batch.
        y : None
            Ignored; present for API consistency (unsupervised training).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        if self.warm_start and self._is_fitted():
            return self.partial_fit(X, y)
        return self._fit_new(X, epochs=None)

    def partial_fit(self, X, y=None, epochs=None):
        """Continue training without re-initialising the network (skorch semantics).

        Trains for ``epochs`` more epochs (default ``max_epochs``) on ``X``; on an unfitted
        estimator this is the same as :meth:`fit`. If training fails (e.g. the loss becomes
        NaN), the weights from before the call are restored.

        Parameters
        ----------
        X : array-like
            Images, as for :meth:`fit`.
        y : None
            Ignored.
        epochs : int or None
            Number of epochs to train; ``None`` means ``max_epochs``.

        Returns
        -------
        self : object
        """
        if not self._is_fitted():
            self._validate_params()
            return self._fit_new(X, epochs=epochs)
        data = self._check_images(X, reset=False)
        net = self.net_
        if self.callbacks is not self._callbacks_param_:
            # set_params(callbacks=...) after fit: hand the new callbacks to the skorch net
            net.callbacks = self._net_callbacks() or None
            net.initialize_callbacks()
            self._callbacks_param_ = self.callbacks
        net.max_epochs, net.verbose = self.max_epochs, int(self.verbose)
        snapshot = copy.deepcopy(net.module_.state_dict())
        optimizer_snapshot = copy.deepcopy(net.optimizer_.state_dict())
        n_epochs_before = len(net.history)
        try:
            with seeded(self._seed_ + n_epochs_before, self.device_):
                self._train(net, data, epochs)
        except BaseException:
            net.module_.load_state_dict(snapshot)
            net.optimizer_.load_state_dict(optimizer_snapshot)
            del net.history[n_epochs_before:]
            raise
        self._after_training(net)
        return self

    def _fit_new(self, X, epochs):
        fitted_before = {k: v for k, v in vars(self).items() if k.endswith("_")}
        for key in fitted_before:
            delattr(self, key)
        try:
            data = self._check_images(X, reset=True)
            self._check_params(data)
            self.device_ = resolve_device(self.device)
            self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            self.channel_mean_, self.channel_std_ = self._fit_input_stats(data)
            with seeded(self._seed_, self.device_):
                module = self._build_module(data.image_shape)
                net = self._make_net(module, self._seed_)
                net.initialize()
                self._on_net_initialized(net, data)
                self._train(net, data, epochs)
        except BaseException:
            # A failed fit leaves the estimator as it was before the call: unfitted.
            for key in [k for k in vars(self) if k.endswith("_")]:
                delattr(self, key)
            raise
        self.net_ = net
        self._after_training(net)
        return self

    def _on_net_initialized(self, net, data):
        """Hook run once the net exists, before training (e.g. to fit helper models)."""

    def _train(self, net, data, epochs):
        net.interrupted_ = False
        with warnings.catch_warnings():
            # skorch warns when a module instance is passed together with module__ params.
            warnings.filterwarnings("ignore", message=".*pass an initialized.*")
            net.partial_fit(data, epochs=epochs)

    def _after_training(self, net):
        # the GPU copy of the training images is only needed while training
        net.__dict__.pop("cache_", None)
        net.__dict__.pop("_cached_for_", None)
        self.module_ = net.module_
        self.history_ = net.history
        self.interrupted_ = bool(getattr(net, "interrupted_", False))
        if self.interrupted_:
            warnings.warn(
                f"training of {type(self).__name__} was interrupted at epoch {len(net.history)}; "
                "the estimator keeps the weights reached so far.",
                RuntimeWarning,
                stacklevel=3,
            )
        self.module_.eval()

    def _is_fitted(self):
        return hasattr(self, "net_")

    def __sklearn_is_fitted__(self):
        return self._is_fitted()

    # ------------------------------------------------------------------ inference
    @property
    def _inference_batch_size(self):
        return max(self.batch_size, 256)

    def _map_batches(self, data, fn, out_shape):
        """Apply ``fn`` to standardised batches of ``data`` and collect float32 outputs."""
        out = np.empty((len(data), *out_shape), dtype=np.float32)
        module = self.module_
        module.eval()
        with torch.no_grad():
            for start, stop in data.iter_slices(self._inference_batch_size):
                batch = torch.from_numpy(data.read(slice(start, stop))).to(self.device_)
                out[start:stop] = fn(module, batch).detach().cpu().numpy()
        return out

    def transform(self, X):
        """Embed images into the latent space.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, F)
            Images with the shape seen in :meth:`fit`.

        Returns
        -------
        Z : ndarray of shape (n, n_components), float32
            The latent representation.
        """
        data = self._check_images(X, reset=False)
        return self._map_batches(
            data, lambda m, b: self._encode(m, self._to_net(b)), (self._n_latent(),)
        )

    def _n_latent(self):
        return self.n_components

    def get_feature_names_out(self, input_features=None):
        """Names of the latent components, ``<classname>0``, ``<classname>1``, ...

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self)
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._n_latent())], dtype=object)

    def score(self, X, y=None):
        """Negative mean training loss on ``X`` (higher is better), without augmentation.

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
        total, count = 0.0, 0
        self.module_.eval()
        with torch.no_grad():
            for start, stop in data.iter_slices(self._inference_batch_size):
                batch = torch.from_numpy(data.read(slice(start, stop))).to(self.device_)
                terms = self._training_terms(self.module_, batch, training=False)
                total += float(terms["loss"]) * (stop - start)
                count += stop - start
        return -total / count

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Save the fitted estimator to a directory, safely loadable without pickle.

        Writes ``model.json`` (class, parameters, image shape, input statistics, versions,
        format version) and ``weights.safetensors``; load it with :func:`skastro.load`.

        Parameters
        ----------
        path : str or path-like
            Directory to create (or overwrite the model files in).

        Returns
        -------
        path : pathlib.Path
        """
        from skastro.serialization import save

        return save(self, path)

    def _fitted_state(self):
        """JSON-serialisable fitted state beyond the weights and input statistics.

        Subclasses with extra fitted attributes (thresholds, class names, ...) extend this and
        :meth:`_restore_fitted_state`, so saved models round-trip without pickle.
        """
        return {}

    def _restore_fitted_state(self, state):
        """Inverse of :meth:`_fitted_state`."""

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class AutoencoderMixin:
    """``reconstruct`` and a reconstruction-error ``score`` for autoencoders.

    Subclasses implement ``_decode_batch(module, X) -> Tensor`` returning reconstructions of
    standardised images ``X`` in standardised units.
    """

    def reconstruct(self, X):
        """Reconstruct images through the autoencoder.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, F)
            Images with the shape seen in :meth:`fit`.

        Returns
        -------
        X_rec : ndarray, float32
            Reconstructions in the same layout and units as ``X``.
        """
        data = self._check_images(X, reset=False)
        out = self._map_batches(
            data,
            lambda m, b: self._from_net(self._decode_batch(m, self._to_net(b))),
            data.image_shape,
        )
        return data.to_layout(out)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error per pixel (higher is better).

        The error is measured in units of the per-channel standard deviation of the training
        images, so scores are comparable across data sets and channels.

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
        errors = self._map_batches(
            data,
            lambda m, b: (
                (self._decode_batch(m, self._to_net(b)) - self._to_net(b)).pow(2).mean((1, 2, 3))
            ),
            (),
        )
        return -float(errors.mean())
