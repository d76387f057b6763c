"""Shared skorch-based machinery for every deep estimator in skastro.

A skastro estimator is a scikit-learn estimator that *owns* a :class:`skorch.NeuralNet`
(composition rather than inheritance: scikit-learn's cloning, parameter checks and tags then
work exactly as for any other estimator, while training runs through skorch, so skorch
callbacks, ``history_``, checkpointing, ``warm_start`` and ``partial_fit`` work).

A new estimator is mostly its torch module, its loss and its defaults. It subclasses
:class:`DeepEstimator` and implements three hooks:

``_build_module(image_shape)``
    Return the torch module (called under the seeded RNG, by :meth:`_initialize_net`, both
    when fitting and when loading a saved model).
``_compute_loss(module, X, training, **inputs)``
    Return ``weighted_sum(terms, weights)`` (:func:`skastro.losses.weighted_sum`): the total
    that is minimised under ``"loss"`` and each term under ``"loss_<term>"``, each logged per
    epoch in ``history_``. ``inputs`` are extra per-batch tensors that the estimator's own
    :meth:`_training_terms` passes on (the denoiser's targets and masks); the base passes none.
``_encode(module, X)``
    Return the ``(b, n_components)`` representation used by :meth:`DeepEstimator.transform`.

``X`` in these hooks is a float32 tensor ``(b, C, H, W)`` on the estimator's device, already
standardised per channel with the training images' statistics (see :meth:`_to_net`).

Optional hooks, each with a no-op default: ``_check_params(data)`` (parameters that depend on
the data; call ``super()`` so the shared checks run), ``_augment(X)`` (training views),
``_training_terms(module, X, training, index)`` (when a method needs the raw batch, e.g. to
add photon noise), ``_on_net_initialized(net, data)`` (helper models before training),
``_check_y(X, y)`` (labels that only *name* an unsupervised output) and ``_after_fit(X, y)``
(fitted state computed from the trained network, after both ``fit`` and ``partial_fit``),
and ``_fitted_state`` / ``_restore_fitted_state`` (extra fitted state in saved models).
"""

import copy
import functools
import itertools
import numbers
import sys
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import ProgressBar
from skorch.history import History

from skastro import _hardware
from skastro._constraints import refuse_bools
from skastro._device import resolve_device, seeded
from skastro._limits import check_network_size
from skastro._loading import inference_batches, read_rows
from skastro._net import SkastroNet
from skastro._validation import (
    NAN_POLICIES,
    check_images,
    check_input_scale,
    check_widths,
    is_lazy_array,
)
from skastro.distributed._arrays import accepts_dask
from skastro.exceptions import ModelFormatError

__all__ = ["AutoencoderMixin", "DeepEstimator", "resolve_device", "seeded"]

# Images used to estimate the per-channel statistics; enough for 4 significant digits.
_STATS_MAX_IMAGES = 4096


class DeepEstimator(TransformerMixin, BaseEstimator):
    """Base class of skastro's deep estimators (not used directly).

    Subclasses define ``__init__`` with their parameters (all of ``_common_params`` among
    them), ``_build_module``, ``_compute_loss`` and ``_encode``; see the module docstring.
    """

    # numeric intervals refuse bools (batch_size=True is not a batch of one); subclasses'
    # constraints get the same treatment in __init_subclass__
    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "augment": ["boolean"],
        "device": [str, None],
        "precision": [StrOptions(set(_hardware.PRECISIONS))],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "image_shape": [tuple, list, None],
        "nan_policy": [StrOptions(set(NAN_POLICIES))],
        "warm_start": ["boolean"],
    }
    _parameter_constraints = refuse_bools(_parameter_constraints)

    # skorch's train/valid split is off: unsupervised training uses every image.
    _train_split = None
    # Set True by estimators whose loss needs full batches (e.g. a covariance term).
    _drop_last = False
    # The batch size the defaults were tuned with: batch_size="auto" on a CPU, and the reference
    # size that batch_size="auto" scales the learning rate from on a GPU (see _hardware).
    _default_batch_size = 64

    # Parameters holding the channel widths of a network: each is checked by _check_params.
    _width_parameters = ("widths",)

    # Names of the extra fitted state (_fitted_state) a saved model may hold; loading refuses
    # any other name, so a model file can only set what the estimator itself would save.
    _fitted_state_keys = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_parameter_constraints" in cls.__dict__:
            cls._parameter_constraints = refuse_bools(cls.__dict__["_parameter_constraints"])

    # ------------------------------------------------------------------ hooks for subclasses
    # The three hooks below are abstract by design: every estimator defines them (see
    # CONTRIBUTING.md); the base class only says which one is missing.
    def _build_module(self, image_shape):  # pragma: no cover - abstract
        """Return the torch module for images of shape ``(C, H, W)``."""
        raise NotImplementedError(f"{type(self).__name__} must define _build_module(image_shape)")

    def _compute_loss(self, module, X, training, **inputs):  # pragma: no cover - abstract
        """Return ``{"loss": total, "loss_<term>": value, ...}`` for a standardised batch."""
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
        ``_compute_loss``) when a method needs the raw images, e.g. to add photon noise, and
        pass what the loss needs besides the network's input as keyword ``inputs``.
        """
        X = self._to_net(X)
        if training and self.augment:
            X = self._augment(X)
        return self._compute_loss(module, X, training)

    def _check_params(self, data):
        """Check parameters once the data's shape is known; subclasses call ``super()`` first.

        Besides the widths, the size of the network is checked here, before anything is built:
        one that would not fit in memory (e.g. ``n_components=10**7``) is refused with the size
        it would need (:func:`skastro._limits.check_network_size`).
        """
        for name in self._width_parameters:
            check_widths(getattr(self, name), name)
        try:
            device = resolve_device(self.device)
        except ValueError:
            device = "cpu"  # reported when the device is resolved for training
        check_network_size(self, data.image_shape, device=device, batch_size=self.batch_size)

    def _on_net_initialized(self, net, data):
        """Hook run once the net exists, before training (e.g. to fit helper models)."""

    def _check_y(self, X, y):
        """Validate ``y`` given to ``fit``; the default ignores it (unsupervised training)."""
        return None

    def _after_fit(self, X, y):
        """Fitted state computed from the trained network, after ``fit`` and ``partial_fit``.

        ``y`` is what :meth:`_check_y` returned. An exception here fails the fit: a new fit
        leaves the estimator as it was before the call, as every failed fit does.
        """

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

        def read():
            if isinstance(index, np.ndarray) and is_lazy_array(data.X):
                return read_rows(data, index)  # lazily read data: one read per run of images
            return data.read(index)

        sample = read() if data.nan_policy == "raise" else None
        if sample is None:
            raw = np.asarray(data.X[index]).reshape(-1, *data.image_shape).astype(np.float64)
            mean = np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=(0, 2, 3))
            mean = np.nan_to_num(mean)
            data.fill_values = mean.astype(np.float32)
            sample = read()
        sample = sample.astype(np.float64)
        mean = sample.mean(axis=(0, 2, 3))
        std = sample.std(axis=(0, 2, 3))
        # A constant channel has no scale; leave it unscaled rather than divide by zero.
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return mean.astype(np.float32), std.astype(np.float32)

    def _channel_stats(self, X):
        """``channel_mean_`` and ``channel_std_`` as ``(1, C, 1, 1)`` tensors like ``X``.

        They take ``X``'s device and dtype (a module moved with ``.to(...)`` or ``.double()``
        is followed), and are kept per device and dtype: a host-to-GPU copy of a few bytes per
        batch would wait for the GPU to finish its queued work every time.
        """
        key = (X.device, X.dtype)
        cache = self.__dict__.get("_stats_tensors")
        if cache is None or cache[0] is not self.channel_mean_ or cache[1] is not self.channel_std_:
            cache = self.__dict__["_stats_tensors"] = (self.channel_mean_, self.channel_std_, {})
        tensors = cache[2].get(key)
        if tensors is None:
            tensors = cache[2][key] = tuple(
                torch.as_tensor(v, device=X.device, dtype=X.dtype).view(1, -1, 1, 1)
                for v in (self.channel_mean_, self.channel_std_)
            )
        return tensors

    def _to_net(self, X):
        mean, std = self._channel_stats(X)
        return (X - mean) / std

    def _from_net(self, X):
        mean, std = self._channel_stats(X)
        return X * std + mean

    def _placement(self):
        """``(device, dtype)`` of the fitted network's tensors.

        Inference builds its batches to match the module rather than ``device_``, so a module
        moved after fitting (``module_.to("cuda")``, ``module_.double()``) keeps working.
        """
        for tensor in itertools.chain(self.module_.parameters(), self.module_.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
        return torch.device(self.device_), torch.float32

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
        check_input_scale(data, self.channel_mean_, self.channel_std_, name)
        return data

    # ------------------------------------------------------------------ fitting
    def _net_callbacks(self):
        callbacks = list(self.callbacks or [])
        if self.verbose and (self.verbose >= 2 or sys.stderr.isatty()):
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _initialize_net(self, image_shape):
        """Build the module and the initialised skorch net for images of ``image_shape``.

        The one way a network comes to exist, used by :meth:`fit` and when a saved model is
        loaded (:meth:`_restore_network`), so both build exactly the same network. Call it
        under :func:`seeded` with ``self._seed_``: it draws the initial weights.
        """
        module = self._build_module(tuple(image_shape))
        callbacks = self._net_callbacks()
        self._callbacks_param_ = self.callbacks
        net = SkastroNet(
            module=module,
            criterion=torch.nn.Identity,  # the loss lives in _compute_loss
            optimizer=torch.optim.AdamW,
            lr=getattr(self, "lr_", self.lr),
            optimizer__weight_decay=self.weight_decay,
            **_fused_optimizer(self.device_),
            max_epochs=self.max_epochs,
            batch_size=getattr(self, "batch_size_", None) or self._reference_batch_size(),
            train_split=self._train_split,
            callbacks=callbacks or None,
            device=self.device_,
            verbose=int(self.verbose),
            plan=self,
            drop_last=self._drop_last,
            shuffle_seed=self._seed_,
            precision=getattr(self, "precision_", "32"),
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pass an initialized.*")
            net.initialize()
        return net

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
        y = self._check_y(X, y)
        if self.warm_start and self._is_fitted():
            return self._continue_training(X, y, epochs=None)
        return self._fit_new(X, y, epochs=None)

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
            return self._fit_new(X, self._check_y(X, y), epochs=epochs)
        return self._continue_training(X, self._check_y(X, y), epochs=epochs)

    def _continue_training(self, X, y, epochs):
        data = self._check_images(X, reset=False)
        # the checks fit makes (a loaded model's parameters were only checked one by one)
        self._check_params(data)
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
        self._after_fit(X, y)
        return self

    def _fit_new(self, X, y, epochs):
        fitted_before = {k: v for k, v in vars(self).items() if k.endswith("_")}
        for key in fitted_before:
            delattr(self, key)
        try:
            data = self._check_images(X, reset=True)
            self._check_params(data)
            self.device_ = resolve_device(self.device)
            self.precision_ = _hardware.resolve_precision(self.precision, self.device_)
            self._seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            self.channel_mean_, self.channel_std_ = self._fit_input_stats(data)
            with seeded(self._seed_, self.device_):
                net = self._initialize_net(data.image_shape)
                self._on_net_initialized(net, data)
                self._choose_batch_size(net, data)
                self._train(net, data, epochs)
            self.net_ = net
            self._after_training(net)
            self._after_fit(X, y)
        except BaseException:
            # A failed fit leaves the estimator as it was before the call: unfitted, or fitted
            # as before (as scikit-learn's estimators do); what this fit set is dropped.
            for key in [k for k in vars(self) if k.endswith("_")]:
                delattr(self, key)
            vars(self).update(fitted_before)
            raise
        return self

    # ------------------------------------------------------------------ hardware
    def _reference_batch_size(self):
        """``batch_size``, or for ``"auto"`` the size this estimator's defaults were tuned at."""
        if self.batch_size == "auto":
            return int(self._default_batch_size)
        return int(self.batch_size)

    def _choose_batch_size(self, net, data):
        """Set ``batch_size_`` and ``lr_`` (``batch_size="auto"``: see :mod:`skastro._hardware`)."""
        reference = self._reference_batch_size()
        self.batch_size_, self.lr_ = reference, float(self.lr)
        if self.batch_size == "auto" and str(self.device_).startswith("cuda"):
            candidates = _hardware.batch_size_candidates(reference, len(data))
            budget = _hardware.MEMORY_FRACTION * _hardware.free_memory(self.device_)
            peak = functools.partial(self._step_memory, net, data)
            self.batch_size_ = _hardware.choose_batch_size(candidates, peak, budget)
            self.lr_ = _hardware.scaled_lr(self.lr, self.batch_size_, reference)
        net.batch_size = self.batch_size_
        net.lr = self.lr_
        for group in net.optimizer_.param_groups:
            group["lr"] = self.lr_

    def _step_memory(self, net, data, batch_size):
        """GPU memory one training step takes at ``batch_size``, or None when it does not fit.

        Measured with a forward and backward pass on a copy of the network (its batch-norm
        statistics are left alone) under a forked random generator (the seeded stream is not
        consumed), plus AdamW's two moments per parameter.
        """
        device = torch.device(self.device_)
        module = copy.deepcopy(net.module_).train()
        images = read_rows(data, np.arange(min(batch_size, len(data))))
        optimizer_state = 2 * sum(p.numel() * p.element_size() for p in module.parameters())
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        try:
            with torch.random.fork_rng(devices=[device.index or 0]):
                X = torch.from_numpy(images).to(device)
                with _hardware.autocast(self.precision_, device):
                    terms = self._training_terms(module, X, training=True)
                terms["loss"].backward()
                del terms, X
            return torch.cuda.max_memory_allocated(device) - base + optimizer_state
        except torch.cuda.OutOfMemoryError:
            return None
        finally:
            del module
            torch.cuda.empty_cache()

    def _num_workers(self, data):
        return _hardware.resolve_num_workers(
            self.num_workers, lazy=is_lazy_array(data.X), memmap=isinstance(data.X, np.memmap)
        )

    def _train(self, net, data, epochs):
        net.num_workers = self._num_workers(data)
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
                stacklevel=4,
            )
        self.module_.eval()

    def _is_fitted(self):
        return hasattr(self, "net_")

    def __getstate__(self):
        state = super().__getstate__()
        # device copies of the channel statistics are rebuilt on demand, where they are used
        state.pop("_stats_tensors", None)
        return state

    def __sklearn_is_fitted__(self):
        return self._is_fitted()

    # ------------------------------------------------------------------ inference
    @property
    def _inference_batch_size(self):
        batch_size = getattr(self, "batch_size_", None) or self._reference_batch_size()
        size = max(batch_size, 256)
        if self._placement()[0].type == "cuda":
            # a GPU runs big batches faster: about 16 MiB of input per batch, up to 1024
            rows = (16 << 20) // (4 * int(np.prod(self.image_shape_)))
            size = max(size, min(1024, 1 << max(rows, 1).bit_length() - 1))
        return size

    def _inference_context(self, device):
        """Autocast for inference in ``precision`` where it applies (see ``_hardware``)."""
        precision = _hardware.resolve_precision(self.precision, device, warn=False)
        return _hardware.autocast(precision, device)

    def _inference_batches(self, data, batch_size=None):
        """Yield ``(start, stop, batch)``: consecutive batches on the network's device and dtype.

        Lazily read data are read ahead by worker processes (``num_workers``); on a GPU the
        batches come from pinned memory and are copied asynchronously.
        """
        device, dtype = self._placement()
        batches = inference_batches(
            data,
            batch_size or self._inference_batch_size,
            device,
            num_workers=self._num_workers(data),
        )
        for start, stop, batch in batches:
            yield start, stop, batch.to(device=device, dtype=dtype, non_blocking=True)

    def _map_batches(self, data, fn, out_shape):
        """Apply ``fn`` to standardised batches of ``data`` and collect float32 outputs."""
        out = np.empty((len(data), *out_shape), dtype=np.float32)
        module = self.module_
        module.eval()
        pending = None
        with torch.no_grad(), self._inference_context(self._placement()[0]):
            for start, stop, batch in self._inference_batches(data):
                result = fn(module, batch)
                # the previous batch's result is copied back only now, while the GPU already
                # works on this one (reading a result makes the host wait for the GPU)
                if pending is not None:
                    _store(out, *pending)
                pending = start, stop, result
            if pending is not None:
                _store(out, *pending)
        return out

    @accepts_dask
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
        self.module_.eval()
        losses, sizes = [], []
        with torch.no_grad(), self._inference_context(self._placement()[0]):
            for start, stop, batch in self._inference_batches(data):
                terms = self._training_terms(self.module_, batch, training=False)
                losses.append(terms["loss"].detach().double().reshape(()))
                sizes.append(stop - start)
        # one read-back for all batches
        total = float(sum(loss * size for loss, size in zip(torch.stack(losses).tolist(), sizes)))
        return -total / sum(sizes)

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

    def _network_state(self, net=None, *, checkpoint=False):
        """What a saved model holds of the network: ``(info, weights, history)``.

        ``info`` is JSON data (image shape, input statistics, seed, device, epochs), ``weights``
        the module's ``state_dict`` on the CPU and ``history`` skorch's rows. ``net`` is the
        net being trained for a checkpoint (``self.net_`` otherwise); a checkpoint leaves out
        the epoch in progress.
        """
        net = self.net_ if net is None else net
        history = [row for row in net.history if not checkpoint or _epoch_done(row)]
        # clone: safetensors refuses tensors that share memory (tied weights)
        weights = {
            k: v.detach().cpu().contiguous().clone() for k, v in net.module_.state_dict().items()
        }
        info = {
            "image_shape": [int(s) for s in self.image_shape_],
            "n_features_in": int(self.n_features_in_),
            "channel_mean": [float(v) for v in self.channel_mean_],
            "channel_std": [float(v) for v in self.channel_std_],
            "seed": int(self._seed_),
            "device": str(self.device_),
            "epochs": len(history),
            # in a checkpoint, whether the epoch in progress was cut short; else the estimator's
            "interrupted": bool(getattr(net if checkpoint else self, "interrupted_", False)),
            "checkpoint": bool(checkpoint),
            "batch_size": int(net.batch_size),
            "lr": float(net.lr),
            "precision": str(getattr(self, "precision_", "32")),
        }
        return info, weights, history

    def _restore_network(
        self, info, weights, *, history=None, optimizer_state=None, device_given=False
    ):
        """Rebuild the fitted network from :meth:`_network_state`'s pieces (loading a model).

        The network is built by :meth:`_initialize_net` under the saved seed, as in
        :meth:`fit`, then the weights (and, for a checkpoint, the optimizer state) are loaded.
        Raises :class:`~skastro.exceptions.ModelFormatError` for pieces that do not fit (the
        caller adds the file they came from), and ``ValueError`` for a ``device`` given by the
        caller that this machine does not have.
        """
        try:
            self.device_ = resolve_device(self.device)
        except ValueError:
            if device_given:
                raise
            warnings.warn(
                f"the model was saved with device={self.device!r}, which is not available "
                "here; loading it on the CPU",
                RuntimeWarning,
                stacklevel=5,
            )
            self.device_ = "cpu"
        try:
            image_shape = tuple(int(s) for s in info["image_shape"])
            self.image_shape_ = image_shape
            self.n_features_in_ = int(info["n_features_in"])
            self.channel_mean_ = np.asarray(info["channel_mean"], dtype=np.float32)
            self.channel_std_ = np.asarray(info["channel_std"], dtype=np.float32)
            self._seed_ = int(info["seed"])
            # what the fit chose (batch_size="auto"); models saved before had none
            self.batch_size_ = int(info.get("batch_size") or self._reference_batch_size())
            self.lr_ = float(info.get("lr") or self.lr)
            self.precision_ = _hardware.resolve_precision(
                info.get("precision", "32"), self.device_, warn=False
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"the network description is damaged: {exc!r}") from exc
        # built under the saved seed, as in fit, so the user's global RNG is left untouched
        with seeded(self._seed_):
            try:
                net = self._initialize_net(image_shape)
            except (ValueError, TypeError, RuntimeError) as exc:  # e.g. an even kernel_size
                raise ModelFormatError(
                    f"the saved parameters cannot build {type(self).__name__}'s network: {exc}"
                ) from exc
        _load_weights(net.module_, weights)
        if history is not None:
            net.history = History(history)
        if optimizer_state is not None:
            try:
                net.optimizer_.load_state_dict(optimizer_state)
            except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
                raise ModelFormatError(
                    f"the optimizer state does not fit the network: {exc!r:.300}"
                ) from exc
        self.net_ = net
        self._after_training(net)
        self.interrupted_ = bool(info.get("interrupted", False))

    def _check_restored_network(self):
        """Refuse restored weights that turn an ordinary image into NaN or inf.

        Weights can be finite and still absurd (a damaged or crafted file, e.g. every weight
        1e30): the image at the training mean (zeros once standardised) must embed to finite
        values, or the model is refused at load rather than returning NaN later. Called once
        the whole model (network and fitted state) is restored.
        """
        probe = torch.zeros((1, *self.image_shape_), device=self.device_)
        try:
            with torch.no_grad():
                Z = self._encode(self.module_, probe)
        except RuntimeError as exc:
            raise ModelFormatError(f"the network cannot embed an image: {exc!r:.300}") from exc
        if not bool(torch.isfinite(Z).all()):
            raise ModelFormatError(
                "the network turns an image at the training mean into NaN or inf values: its "
                "weights are damaged (finite but absurd); fit the model again"
            )

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

    @accepts_dask
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


def _store(out, start, stop, result):
    result = result.detach()
    if result.dtype in (torch.float16, torch.bfloat16):
        result = result.float()  # numpy has no bfloat16; outputs are float32 anyway
    # numpy casts to float32 on assignment: no float32 copy is made on the device
    out[start:stop] = result.cpu().numpy()


def _fused_optimizer(device):
    """``{"optimizer__fused": True}`` where PyTorch has a fused AdamW for ``device``.

    The fused step is one kernel for all parameters instead of several per parameter tensor:
    measured here, 2.6x (small ConvAutoencoder) to 3.2x (default widths) faster on the CPU.
    """
    kind = torch.device(device).type
    if kind == "cuda" or (kind == "cpu" and torch.__version__ >= "2.4"):
        return {"optimizer__fused": True}
    return {}


def _epoch_done(row):
    # skorch's EpochTimer records "dur" at the end of an epoch; an interrupted epoch has none
    return "dur" in row


def _load_weights(module, state):
    """Load a state dict; ``ValueError`` when it does not fit the module."""
    # Some modules (escnn's) hold extra cached buffers in eval mode only; the module is built
    # in train mode, so a state saved in eval mode is loaded after switching to eval mode.
    expected = module.state_dict()
    for key, tensor in state.items():
        if key in expected and tensor.dtype != expected[key].dtype:
            raise ModelFormatError(
                f"the weight {key!r} is stored as {tensor.dtype}, but the network holds "
                f"{expected[key].dtype}; the file is damaged or was not written by skastro"
            )
    try:
        result = module.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            module.eval()
            module.load_state_dict(state, strict=True)
            module.train()
    except RuntimeError as exc:
        raise ModelFormatError(
            f"the weights do not fit the network built from the saved parameters: {exc}"
        ) from exc
