"""Documented size limits, checked before anything large is allocated.

A mistyped parameter (``n_components=10**7``, ``widths=(10**6,)``) or a crafted model file
(``"image_shape": [3, 100000, 100000]``) would otherwise make torch try to allocate gigabytes
or terabytes: the process then hangs, is killed, or fails deep inside the allocator. The checks
here estimate what a network would need *before* it is built, and refuse it with the size it
would need and how to make it smaller.

The limits (module constants, documented in the user guide's "Saving and loading" page):

:data:`MAX_PARAMETERS`
    Weights and buffers of one network: 2**30 (about 1.07e9 values, 4 GiB of float32;
    training holds about four times that with gradients and AdamW's two moments).
:data:`MAX_IMAGE_VALUES`
    ``C * H * W`` of one image: 2**31 - 1 (torch indexes a tensor's elements with int32 in
    places).
:data:`MAX_LEVELS`
    Entries of a ``widths`` tuple: 32 (each level at least halves the image).

A network is also refused when its weights, or the activations of one training batch, need
more memory than the machine (or GPU) has in all.

Torch only (no scikit-learn), so the loading code can use it freely.
"""

import itertools
import math
import numbers
import os

import numpy as np

__all__ = [
    "MAX_IMAGE_VALUES",
    "MAX_LEVELS",
    "MAX_PARAMETERS",
    "check_image_shape",
    "check_network_size",
    "count_parameters",
]

MAX_PARAMETERS = 2**30
MAX_IMAGE_VALUES = 2**31 - 1
MAX_LEVELS = 32
# Bytes per weight while training: the weight, its gradient and AdamW's two moments (float32).
_TRAINING_BYTES_PER_WEIGHT = 16


def _gib(n_bytes):
    return f"{n_bytes / 2**30:,.1f} GiB"


def _is_int(value):
    return isinstance(value, numbers.Integral | np.integer) and not isinstance(
        value, bool | np.bool_
    )


def physical_memory(device="cpu"):
    """Bytes of memory of ``device`` in all (RAM for the CPU), or None when unknown.

    Parameters
    ----------
    device : str

    Returns
    -------
    n_bytes : int or None
    """
    if str(device).startswith("cuda"):
        try:
            import torch

            index = torch.device(device).index or 0
            return int(torch.cuda.get_device_properties(index).total_memory)
        except Exception:  # no GPU, or a driver that cannot say: do not guess
            return None
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_image_shape(image_shape, what="image_shape"):
    """Return ``image_shape`` as a tuple of 3 positive ints within :data:`MAX_IMAGE_VALUES`.

    Parameters
    ----------
    image_shape : sequence
        ``(C, H, W)``.
    what : str
        Names the value in the error message.

    Returns
    -------
    image_shape : tuple of int

    Raises
    ------
    ValueError
        Not three positive integers, or more values per image than the limit.

    Examples
    --------
    >>> check_image_shape([1, 16, 16])
    (1, 16, 16)
    """
    try:
        sizes = list(image_shape)
    except TypeError:
        raise ValueError(f"{what} must be (C, H, W), got {image_shape!r}") from None
    if len(sizes) != 3 or not all(_is_int(s) and s >= 1 for s in sizes):
        raise ValueError(f"{what} must be three positive ints (C, H, W), got {image_shape!r}")
    sizes = tuple(int(s) for s in sizes)
    if math.prod(sizes) > MAX_IMAGE_VALUES:
        raise ValueError(
            f"{what}={sizes} holds {math.prod(sizes):,} values per image, more than the "
            f"limit of {MAX_IMAGE_VALUES:,} (skastro._limits.MAX_IMAGE_VALUES); cut the images "
            "into smaller cutouts"
        )
    return sizes


def _group_order(group):
    """Channels per regular field of an escnn group name (``"D8"`` -> 16), 1 if unknown."""
    if not isinstance(group, str) or len(group) < 2 or not group[1:].isdigit():
        return 1
    order = int(group[1:])
    return 2 * order if group[0] == "D" else order


def _widths(estimator):
    """Every ``widths``-like parameter of an estimator, as lists of ints (checked)."""
    found = []
    for name in getattr(estimator, "_width_parameters", ("widths",)):
        value = getattr(estimator, name, None)
        if value is None:
            continue
        if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
            raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}")
        if len(value) > MAX_LEVELS:
            raise ValueError(
                f"{name} has {len(value)} entries, more than the limit of {MAX_LEVELS} "
                "(skastro._limits.MAX_LEVELS): each entry is a level that at least halves the "
                "image"
            )
        if not all(_is_int(w) and w >= 1 for w in value):
            raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {value!r}")
        found.append((name, [int(w) for w in value]))
    return found


def _dense_estimate(estimator, image_shape):
    """A cheap estimate of a network's weights, from its sizes alone.

    Counts ``kernel_size`` (default 3) convolutions between consecutive channel counts (the
    image's channels, each width, the latent size), once for the encoder and once for the
    decoder, and the dense layers that connect the last width to the latent vector. An
    autoencoder has about these (escnn's networks hold their expanded filters as buffers of
    this size), so the estimate stands in for the exact count of networks that cannot be
    built on the ``meta`` device (an escnn network takes seconds to build for real, and longer
    with huge widths).
    """
    order = _group_order(getattr(estimator, "group", None))
    kernel = getattr(estimator, "kernel_size", 3)
    kernel = int(kernel) if _is_int(kernel) and kernel >= 1 else 3
    n_components = getattr(estimator, "n_components", 1)
    n_components = int(n_components) if _is_int(n_components) else 1
    channels = image_shape[0]
    total = 0
    for _, widths in _widths(estimator):
        # escnn rounds each width up to whole regular fields of |G| channels
        sizes = [channels] + [-(-w // order) * order for w in widths]
        total += 2 * sum(kernel * kernel * a * b for a, b in itertools.pairwise(sizes))
        # the latent: a dense layer, or for escnn a 3x3 convolution to n_components fields
        latent = n_components * order * (9 if order > 1 else 1)
        total += 2 * sizes[-1] * latent
        channels = sizes[-1]
    return max(total, n_components)


def count_parameters(estimator, image_shape):
    """Weights and buffers of the estimator's network for images of ``image_shape``.

    The network is built on torch's ``meta`` device, which records shapes but allocates no
    memory, so even a network of a trillion weights is counted in milliseconds. Networks that
    cannot be built there (escnn's compute their filter bases from real numbers) give None.

    Parameters
    ----------
    estimator : DeepEstimator
    image_shape : tuple of int

    Returns
    -------
    n_parameters : int or None
    """
    if not getattr(estimator, "_builds_on_meta", True):
        return None
    import torch

    try:
        with torch.device("meta"):
            module = estimator._build_module(tuple(image_shape))
    except Exception:  # invalid settings: the real build reports them in its own words
        return None
    tensors = list(module.parameters()) + list(module.buffers())
    return int(sum(t.numel() for t in tensors))


def _describe(estimator):
    params = estimator.get_params(deep=False)
    shown = [
        f"{name}={params[name]!r}"
        for name in ("n_components", *getattr(estimator, "_width_parameters", ("widths",)))
        if name in params
    ]
    return f"{type(estimator).__name__}({', '.join(shown)})"


def check_network_size(estimator, image_shape, *, device="cpu", batch_size=None, training=True):
    """Refuse a network that cannot fit in memory, before it is built.

    Parameters
    ----------
    estimator : DeepEstimator
        Its parameters give the network (``n_components``, ``widths``, ...).
    image_shape : tuple of int
        ``(C, H, W)`` of the images.
    device : str, default="cpu"
        Where the network would live; its memory bounds what fits.
    batch_size : int or None, default=None
        Images per training batch, to estimate the activations of the first layer (anything
        but an int skips that estimate).
    training : bool, default=True
        True when the network is about to be trained (weights, gradients and optimizer
        moments), False when it is only loaded.

    Returns
    -------
    n_parameters : int
        The exact count when the network could be built on the ``meta`` device, else an
        estimate.

    Raises
    ------
    ValueError
        The network would have more than :data:`MAX_PARAMETERS` weights, or need more memory
        than the device has; the message gives the size it would need and what to lower.
    """
    image_shape = check_image_shape(image_shape)
    estimate = _dense_estimate(estimator, image_shape)
    exact = count_parameters(estimator, image_shape)
    n_parameters = estimate if exact is None else exact
    name = _describe(estimator)
    hint = (
        "lower n_components or the widths, or use smaller images (see 'Size limits' in the "
        "user guide)"
    )
    if n_parameters > MAX_PARAMETERS:
        approx = "at least " if exact is None else ""
        raise ValueError(
            f"{name} on images of shape {image_shape} would have {approx}{n_parameters:,} "
            f"weights ({_gib(4 * n_parameters)} as float32), more than the limit of "
            f"{MAX_PARAMETERS:,} (skastro._limits.MAX_PARAMETERS); {hint}"
        )
    memory = physical_memory(device)
    per_weight = _TRAINING_BYTES_PER_WEIGHT if training else 8  # loading: file + module
    if memory is not None and n_parameters * per_weight > memory:
        raise ValueError(
            f"{name} on images of shape {image_shape} has {n_parameters:,} weights and needs "
            f"about {_gib(n_parameters * per_weight)} to "
            f"{'train' if training else 'load'}, more than the {_gib(memory)} of memory of "
            f"{device}; {hint}"
        )
    if _is_int(batch_size) and training:  # e.g. batch_size="auto" is sized elsewhere
        activations = _first_layer_bytes(estimator, image_shape, batch_size)
        if memory is not None and activations > memory:
            raise ValueError(
                f"{name} on images of shape {image_shape} needs at least "
                f"{_gib(activations)} for the first layer's activations of one batch of "
                f"{batch_size} images, more than the {_gib(memory)} of memory of {device}; "
                f"lower batch_size or the first width, or use smaller images"
            )
    return n_parameters


def _first_layer_bytes(estimator, image_shape, batch_size):
    """float32 bytes of the first convolution's output for one batch (kept for backprop)."""
    widths = _widths(estimator)
    if not widths:
        return 0
    order = _group_order(getattr(estimator, "group", None))
    first = -(-widths[0][1][0] // order) * order
    stride = getattr(estimator, "stem_stride", 1)
    stride = int(stride) if _is_int(stride) and stride >= 1 else 1
    pixels = -(-image_shape[1] // stride) * -(-image_shape[2] // stride)
    return 4 * int(batch_size) * first * pixels
