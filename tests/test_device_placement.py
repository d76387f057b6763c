"""Inference follows the fitted module wherever it is moved (another device, another dtype).

A GPU is not needed to catch tensors that stay behind on the CPU: after ``fit``, the module is
moved to float64 (every inference method must then compute in float64, creating no float32
tensor on the way) or to PyTorch's "meta" device (every tensor an inference hook touches must be
on it). A tensor created on the CPU or in float32 inside the inference path, such as the buffer
that broke ``EquivariantAutoencoder.transform`` on CUDA, fails these tests.

Note that ``torch.utils._python_dispatch.TorchDispatchMode`` is the documented way to observe
every aten operation, though its module is private.
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from skastro._registry import TINY_SETTINGS, estimator_classes
from skastro.base import DeepEstimator

_CLASSES = estimator_classes()
DEEP = sorted(
    name for name in TINY_SETTINGS if name in _CLASSES and issubclass(_CLASSES[name], DeepEstimator)
)
# inference methods beyond transform and score, where an estimator has them
_METHODS = ("reconstruct", "denoise", "decision_function", "predict_proba", "predict")
_LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


class _RecordTensors(TorchDispatchMode):
    """Record every aten operation's tensor inputs and outputs (their dtypes and devices)."""

    def __init__(self):
        super().__init__()
        self.ops = []  # (op name, input (dtype, device) pairs, output (dtype, device) pairs)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)

        def described(values):
            found = tree_flatten(values)[0]
            return [(v.dtype, v.device.type) for v in found if isinstance(v, torch.Tensor)]

        self.ops.append((str(func), described((args, kwargs)), described(out)))
        return out

    def low_precision_meets_float64(self):
        """Operations that mix float64 with a lower-precision tensor, or cast float64 down.

        A float32 tensor left behind (a buffer, a constant, a random draw made in the default
        dtype) shows up where it meets the float64 data; constants that never touch the data
        (escnn hashes its basis descriptions) do not count.
        """
        flagged = set()
        for op, inputs, outputs in self.ops:
            dtypes = {dtype for dtype, _ in inputs}
            if torch.float64 in dtypes and dtypes & set(_LOW_PRECISION):
                flagged.add(op)
            elif torch.float64 in dtypes and {d for d, _ in outputs} & set(_LOW_PRECISION):
                flagged.add(op)
        return sorted(flagged)

    def mixed_devices(self):
        """Operations whose tensor inputs lie on more than one device."""
        return sorted({op for op, inputs, _ in self.ops if len({d for _, d in inputs}) > 1})


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16] - 7.5
    widths = rng.uniform(1.5, 4.0, size=24)
    blobs = np.exp(-(xx**2 + yy**2)[None] / (2 * widths[:, None, None] ** 2))
    return (blobs + 0.05 * rng.standard_normal(blobs.shape))[:, None].astype(np.float32)


def _fit(name, images):
    settings = dict(TINY_SETTINGS[name], device="cpu", random_state=0)
    settings.pop("image_shape", None)
    return _CLASSES[name](**settings).fit(images)


def _outputs(estimator, images):
    results = {"transform": estimator.transform(images), "score": estimator.score(images)}
    for method in _METHODS:
        if hasattr(estimator, method):
            results[method] = getattr(estimator, method)(images)
    return results


@pytest.mark.parametrize("name", DEEP)
def test_inference_follows_a_module_moved_to_float64(name, images):
    estimator = _fit(name, images)
    expected = _outputs(estimator, images)
    estimator.module_.double()
    with _RecordTensors() as record:
        got = _outputs(estimator, images)
    mixed = record.low_precision_meets_float64()
    assert not mixed, f"{name}: float32 tensors meet the float64 data in {mixed}"
    # some scores draw noise (in the data's dtype, so different draws): only check they exist
    assert np.isfinite(got.pop("score"))
    for method, value in got.items():
        # the same network in more precise arithmetic: the same outputs up to float32 rounding
        np.testing.assert_allclose(value, expected[method], rtol=1e-3, atol=1e-4, err_msg=method)


@pytest.mark.parametrize("name", DEEP)
def test_inference_hooks_follow_a_module_moved_to_the_meta_device(name, images):
    estimator = _fit(name, images)
    module = estimator.module_.to("meta")
    batch = torch.empty((4, *estimator.image_shape_), device="meta")
    hooks = [estimator._encode]
    if hasattr(estimator, "_decode_batch"):
        hooks.append(estimator._decode_batch)
    with torch.no_grad(), _RecordTensors() as record:
        for hook in hooks:
            out = hook(module, estimator._to_net(batch))
            assert out.device.type == "meta"
    elsewhere = record.mixed_devices()
    assert not elsewhere, f"{name}: tensors off the module's device used by {elsewhere}"


def test_equivariant_export_after_a_move_builds_on_the_new_device(images):
    # the twin that runs in eval mode is exported lazily, on first use after the move
    estimator = _fit("EquivariantAutoencoder", images)
    twin = estimator.module_.to("meta").export()
    places = {t.device.type for t in [*twin.parameters(), *twin.buffers()]}
    assert places == {"meta"}
