"""The skorch net behind every deep estimator, and how it iterates over images.

Training runs through :class:`skorch.NeuralNet` (callbacks, ``history``, checkpointing,
``warm_start`` and ``partial_fit``), overriding only skorch's documented hooks: batches come
from :class:`~skastro._loading.TrainingBatches` (seeded shuffling, no per-sample collate, a GPU
copy of in-memory data, worker processes for lazily read data), the estimator computes named
loss terms (each logged per epoch), optionally under autocast mixed precision, and a non-finite
loss stops training with :class:`~skastro.exceptions.NonFiniteLossError`.

On a GPU nothing in the loop waits for the GPU after each batch: the per-batch numbers skorch
records (the loss and each term) stay on the device and are read back every
:data:`SYNC_EVERY_GPU` batches in one copy. Reading a number back makes the host wait until
the GPU has caught up, and the GPU then idles while the host prepares the next batch (about a
tenth of the training time of a small network).
"""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from skastro._hardware import autocast, grad_scaler
from skastro._loading import CHUNK_BYTES, TrainingBatches
from skastro.exceptions import NonFiniteLossError

__all__ = ["SYNC_EVERY_GPU", "SkastroNet"]

# batches between two reads of the recorded numbers from the GPU (and finiteness checks)
SYNC_EVERY_GPU = 64


def _sync_every(device):
    """Batches between two reads of the recorded numbers: 1 on a CPU, where reading is free."""
    return SYNC_EVERY_GPU if str(device).startswith("cuda") else 1


class _BatchRecords:
    """The per-batch numbers of one epoch, kept as tensors and written to ``history`` in groups.

    Each batch's loss and terms are stacked into one tensor; :meth:`flush` copies all pending
    batches to the host in one transfer, writes them into their ``history`` rows and checks
    that every loss is finite.
    """

    def __init__(self, net, prefix, every):
        self.net = net
        self.prefix = prefix
        self.every = every
        self.pending = []  # (history row, names, stacked values)

    def add(self, row, terms):
        names = [f"{self.prefix}_loss", *(k for k in terms if k != "loss")]
        values = [terms["loss"], *(v for k, v in terms.items() if k != "loss")]
        stacked = torch.stack([v.detach().float().reshape(()) for v in values])
        self.pending.append((row, names, stacked))
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        values = torch.stack([stacked for _, _, stacked in self.pending]).tolist()
        pending, self.pending = self.pending, []
        for (row, names, _), numbers in zip(pending, values):
            row.update(zip(names, numbers))
            if not math.isfinite(numbers[0]):
                epoch = len(self.net.history)
                details = ", ".join(
                    f"{name.removeprefix(self.prefix + '_')}={value:.4g}"
                    for name, value in zip(names, numbers)
                )
                raise NonFiniteLossError(
                    f"the training loss became {numbers[0]} at epoch {epoch} ({details}). "
                    "Training was stopped and the estimator left as it was before this fit. "
                    "Try a lower lr, check the input scaling (e.g. ImageScaler), or lower the "
                    "loss weights."
                )


class _LogLossTerms(Callback):
    """Average every per-batch loss term over the epoch and record it in the epoch row.

    Terms are recorded per batch by :meth:`SkastroNet.run_single_epoch`; skorch averages only
    ``train_loss`` itself, so this puts ``loss_mse``, ``loss_ssim``, ... next to it.
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

    It overrides skorch's hooks only: the iterator (:class:`~skastro._loading.TrainingBatches`),
    the training/validation steps (the estimator computes named loss terms under the chosen
    precision), the epoch loop (per-batch numbers read back in groups, a non-finite loss stops
    training), and the default callbacks (loss terms are averaged per epoch before the epoch
    table is printed).
    """

    def __init__(
        self,
        *args,
        plan=None,
        drop_last=False,
        shuffle_seed=0,
        num_workers=0,
        precision="32",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.drop_last = drop_last
        self.shuffle_seed = shuffle_seed
        self.num_workers = num_workers
        self.precision = precision

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
        self.grad_scaler_ = grad_scaler(self.precision, self.device)
        return self

    def _set_training(self, training=True):
        # skorch sets every module's mode before every batch; walking the module tree to set
        # the mode it already has costs about half a millisecond per batch for nothing
        if getattr(self.module_, "training", None) is not bool(training):
            super()._set_training(training)

    def get_dataset(self, X, y=None):
        # skastro hands skorch an already validated ImageBatches; use it as it is.
        return X

    def _device_cache(self, dataset):
        """The training images as one tensor on the GPU, when they are in memory and fit.

        Copying each batch from host memory costs a GPU a quarter of its training speed on
        small images; in-memory data sets that take under a quarter of the free GPU memory are
        copied once per fit instead (chunk by chunk, so the host never holds a float32 copy of
        the whole set). Lazily loaded data (memmaps, HDF5, FITS folders) stay on the host.
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
            cache = torch.empty((len(dataset), *dataset.image_shape), device=self.device)
            rows = max(1, CHUNK_BYTES // (4 * int(np.prod(dataset.image_shape))))
            for start in range(0, len(dataset), rows):
                stop = min(start + rows, len(dataset))
                cache[start:stop] = torch.from_numpy(dataset.read(slice(start, stop)))
            self._cached_for_ = dataset
            self.cache_ = cache
        return self.cache_

    def get_iterator(self, dataset, training=False):
        batch_size = min(self.batch_size, len(dataset))
        if training:
            return TrainingBatches(
                dataset,
                batch_size,
                drop_last=self.drop_last,
                rng=self.shuffle_rng_,
                device=self.device,
                device_cache=self._device_cache(dataset),
                num_workers=self.num_workers,
            )
        return TrainingBatches(
            dataset, batch_size, drop_last=False, rng=np.random.default_rng(0), device=self.device
        )

    def check_data(self, X, y=None):
        pass  # validated by the estimator before training starts

    def _loss_terms(self, batch, training):
        Xi, index = unpack_data(batch)
        Xi = Xi.to(self.device, non_blocking=True)
        index = None if index is None else index.numpy()
        with autocast(self.precision, self.device):
            return self.plan._training_terms(self.module_, Xi, training=training, index=index)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch loop, with the per-batch numbers read back in groups on a GPU.

        The same callbacks run with the same arguments; on a GPU a batch's ``train_loss`` and
        loss terms appear in its ``history`` row up to :data:`SYNC_EVERY_GPU` batches later
        (every row is complete before ``on_epoch_end``).
        """
        if iterator is None:
            return
        records = _BatchRecords(self, prefix, _sync_every(self.device))
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            row = self.history[-1]["batches"][-1]
            row[prefix + "_batch_size"] = len(batch[0])
            records.add(row, step.pop("terms"))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        records.flush()
        self.history.record(prefix + "_batch_count", batch_count)

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step(batch, **fit_params)
        # float16: the loss was scaled before the backward pass; unscale the gradients (so
        # callbacks see the true ones), then let the scaler skip steps with inf/NaN gradients
        scaler = self.grad_scaler_
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        scaler.unscale_(self.optimizer_)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        scaler.step(self.optimizer_)
        scaler.update()
        return step

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        terms = self._loss_terms(batch, training=True)
        loss = terms["loss"]
        (loss if self.grad_scaler_ is None else self.grad_scaler_.scale(loss)).backward()
        return {"loss": loss, "y_pred": None, "terms": terms}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            terms = self._loss_terms(batch, training=False)
        return {"loss": terms["loss"], "y_pred": None, "terms": terms}

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch swallows KeyboardInterrupt in partial_fit and returns normally; remember it so
        # the estimator (and the command line) can tell an interrupted fit from a finished one.
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = True
            raise
