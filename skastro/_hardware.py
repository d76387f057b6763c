"""What the machine offers a fit: the batch size, mixed precision and data-loading workers.

Three of the common parameters of every deep estimator are resolved here, once per ``fit``:

``batch_size="auto"``
    On a CPU, the estimator's reference batch size (its ``_default_batch_size``, the value its
    defaults were tuned with). On a GPU, the largest size of :data:`BATCH_LADDER` that fits in
    a fraction of the GPU's memory (measured with one forward and backward pass at two sizes,
    on a copy of the network) and that still leaves :data:`MIN_STEPS_PER_EPOCH` optimizer
    steps per epoch; never below the reference size. The learning rate is then scaled by
    ``sqrt(batch_size / reference)``, the square-root rule for Adam-type optimizers (Malladi et
    al. 2022, "On the SDEs and scaling rules for adaptive gradient algorithms"), so that a
    learning rate tuned at the reference size stays tuned.
``precision``
    ``"32"`` (float32, the default), ``"bf16"`` or ``"16"``: autocast mixed precision.
    ``"bf16"`` autocasts on CUDA GPUs and on CPUs (measured on the development machine's Xeon,
    which has AMX and AVX-512 BF16 units: about 1.3x the float32 training speed, the same
    loss; CPUs without them emulate bfloat16 and are slower). ``"16"`` (float16, with a
    gradient scaler) autocasts on CUDA only; elsewhere it falls back to float32 with a
    warning.
``num_workers="auto"``
    Worker processes that read and convert batches ahead of the training loop: none for
    in-memory arrays (slicing them is faster than sending them between processes), and for
    lazily read data (memmaps, HDF5, FITS folders) one per four CPU cores, between 1 and 4.

Torch only: no scikit-learn here.
"""

import contextlib
import math
import multiprocessing
import os
import warnings

import torch

__all__ = [
    "BATCH_LADDER",
    "MIN_STEPS_PER_EPOCH",
    "PRECISIONS",
    "autocast",
    "batch_size_candidates",
    "choose_batch_size",
    "grad_scaler",
    "resolve_num_workers",
    "resolve_precision",
    "scaled_lr",
]

BATCH_LADDER = (32, 64, 128, 256, 512, 1024)
# "does not hurt convergence": a larger batch means fewer optimizer steps per epoch; below this
# many, a fixed number of epochs no longer trains the network as far (see
# benchmarks/bench_gpu.py, which reports the final loss at each batch size)
MIN_STEPS_PER_EPOCH = 32
# share of the GPU memory free at the start of a fit that one training step may use
MEMORY_FRACTION = 0.5
PRECISIONS = ("32", "bf16", "16")
# devices on which each mixed precision autocasts (elsewhere: float32, with a warning); the
# tests add "cpu" for "16" to exercise the float16 code path on machines without a GPU
AUTOCAST_DEVICES = {"bf16": ("cuda", "cpu"), "16": ("cuda",)}
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16}


def _device_type(device):
    return torch.device(device).type


def resolve_precision(precision, device, *, warn=True):
    """The precision a fit on ``device`` really uses: ``precision``, or ``"32"`` on a CPU.

    Parameters
    ----------
    precision : {"32", "bf16", "16"}
    device : str or torch.device
    warn : bool, default=True
        Warn when a mixed precision is asked for on a device that does not autocast.

    Returns
    -------
    precision : str

    Examples
    --------
    >>> resolve_precision("32", "cpu"), resolve_precision("bf16", "cpu")
    ('32', 'bf16')
    """
    precision = str(precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "32":
        return precision
    kind = _device_type(device)
    if kind not in AUTOCAST_DEVICES[precision]:
        if warn:
            warnings.warn(
                f"precision={precision!r} applies on {' and '.join(AUTOCAST_DEVICES[precision])} "
                f"devices only; on the {kind} device the network trains and infers in float32"
                + (" (use precision='bf16' there)" if "cpu" in AUTOCAST_DEVICES["bf16"] else ""),
                UserWarning,
                stacklevel=4,  # the estimator's fit
            )
        return "32"
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            "precision='bf16' needs a GPU with bfloat16 support (NVIDIA Ampere or newer); "
            "use precision='16' or '32'"
        )
    return precision


def autocast(precision, device):
    """A context that runs the enclosed forward passes in ``precision`` on ``device``.

    ``precision`` is an already resolved value (:func:`resolve_precision`); for ``"32"`` the
    context does nothing.
    """
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=_device_type(device), dtype=_AUTOCAST_DTYPES[precision])


def grad_scaler(precision, device):
    """A :class:`torch.amp.GradScaler` for float16 training, else None.

    float16 has a narrow exponent range: small gradients underflow to zero unless the loss is
    scaled up before the backward pass (bfloat16 has float32's range and needs no scaler).
    """
    if precision != "16":
        return None
    return torch.amp.GradScaler(_device_type(device))


def batch_size_candidates(reference, n_samples):
    """Batch sizes ``batch_size="auto"`` may choose for ``n_samples`` images, smallest first.

    The sizes of :data:`BATCH_LADDER` from ``reference`` up that leave at least
    :data:`MIN_STEPS_PER_EPOCH` optimizer steps per epoch; ``[reference]`` when none does.

    Examples
    --------
    >>> batch_size_candidates(64, 100_000)
    [64, 128, 256, 512, 1024]
    >>> batch_size_candidates(64, 4096)
    [64, 128]
    >>> batch_size_candidates(32, 100)
    [32]
    """
    sizes = [b for b in BATCH_LADDER if b > reference and n_samples >= MIN_STEPS_PER_EPOCH * b]
    return [int(reference), *sizes]


def choose_batch_size(candidates, peak_bytes, budget_bytes):
    """The largest of ``candidates`` whose training step fits in ``budget_bytes``.

    Parameters
    ----------
    candidates : list of int
        Batch sizes, smallest first (:func:`batch_size_candidates`).
    peak_bytes : callable
        ``peak_bytes(batch_size)``: the memory one training step takes at that size, or None
        when it does not fit at all (out of memory).
    budget_bytes : float
        What a step may use.

    Returns
    -------
    batch_size : int
        Memory grows linearly with the batch size (activations), so it is measured at the two
        smallest candidates and extrapolated; the chosen size is then measured once to confirm
        it, stepping down when it does not fit.

    Examples
    --------
    >>> choose_batch_size([32, 64, 128, 256], lambda b: 1000 + 10 * b, 2500)
    128
    """
    if len(candidates) == 1:
        return candidates[0]
    first, second = candidates[0], candidates[1]
    small, large = peak_bytes(first), peak_bytes(second)
    if small is None or large is None or large > budget_bytes:
        return first
    per_image = max((large - small) / (second - first), 0.0)
    fixed = small - per_image * first
    chosen = second
    for size in candidates[2:]:
        if fixed + per_image * size <= budget_bytes:
            chosen = size
    while chosen > second:
        measured = peak_bytes(chosen)
        if measured is not None and measured <= budget_bytes:
            break
        chosen = candidates[candidates.index(chosen) - 1]
    return chosen


def scaled_lr(lr, batch_size, reference):
    """``lr * sqrt(batch_size / reference)``: the square-root scaling rule for Adam.

    Examples
    --------
    >>> scaled_lr(1e-3, 256, 64)
    0.002
    """
    return float(lr) * math.sqrt(batch_size / reference)


def resolve_num_workers(num_workers, *, lazy, memmap=False):
    """Worker processes for reading batches: ``num_workers``, or the ``"auto"`` choice.

    Parameters
    ----------
    num_workers : int or "auto"
    lazy : bool
        Whether the images are read lazily (memmap, HDF5, FITS folder) rather than sliced
        from an in-memory array.
    memmap : bool
        Whether they are a ``np.memmap``, which only a forked worker can share without
        copying it whole; with another start method no worker is used.

    Returns
    -------
    num_workers : int

    Examples
    --------
    >>> resolve_num_workers("auto", lazy=False)
    0
    >>> resolve_num_workers(2, lazy=False)
    2
    """
    if memmap and multiprocessing.get_start_method(allow_none=True) not in (None, "fork"):
        return 0
    if num_workers != "auto":
        return int(num_workers)
    if not lazy:
        return 0
    return min(4, max(1, (os.cpu_count() or 1) // 4))


def free_memory(device):
    """Bytes of memory free on a CUDA ``device`` (the allocator's cached blocks count as free)."""
    device = torch.device(device)
    free, _ = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return free + cached
