"""The skorch net behind every deep estimator, and how it iterates over images.

Training runs through :class:`skorch.NeuralNet` (callbacks, ``history``, checkpointing,
``warm_start`` and ``partial_fit``), overriding only skorch's documented hooks: batches are
sliced from an :class:`~skastro._validation.ImageBatches` (seeded shuffling, no per-sample
collate), the estimator computes named loss terms (each logged per epoch), and a non-finite
loss stops training with :class:`~skastro.exceptions.NonFiniteLossError`.
"""

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from skastro.exceptions import NonFiniteLossError

__all__ = ["SkastroNet"]


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


class SkastroNet(NeuralNet):
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
