"""batch_size="auto", precision and num_workers: resolution rules and what estimators do with them.

No GPU here: the rules are tested as functions, the estimators on the CPU (where "auto" keeps
each estimator's reference batch size, bf16 autocasts and float16 falls back to float32), and
the float16 code path (gradient scaler) by letting float16 autocast run on the CPU.
"""

import numpy as np
import pytest
import torch

from skastro import ConvAutoencoder, _hardware, _net
from skastro._hardware import (
    batch_size_candidates,
    choose_batch_size,
    resolve_num_workers,
    resolve_precision,
    scaled_lr,
)
from skastro._registry import TINY_SETTINGS, estimator_classes
from skastro.base import DeepEstimator
from skastro.exceptions import NonFiniteLossError

_CLASSES = estimator_classes()
DEEP = sorted(n for n in TINY_SETTINGS if n in _CLASSES and issubclass(_CLASSES[n], DeepEstimator))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 1, 16, 16)).astype(np.float32)


def tiny_ae(**params):
    settings = dict(n_components=2, widths=(4,), max_epochs=2, batch_size=16, random_state=0)
    return ConvAutoencoder(**{**settings, **params})


# ----------------------------------------------------------------------------- rules
def test_batch_size_candidates_keep_enough_steps_per_epoch():
    assert batch_size_candidates(64, 10**6) == [64, 128, 256, 512, 1024]
    assert batch_size_candidates(32, 32 * 256) == [32, 64, 128, 256]
    assert batch_size_candidates(64, 500) == [64]


def test_choose_batch_size_extrapolates_and_confirms():
    measured = []

    def peak(size):
        measured.append(size)
        return 1000 + 10 * size

    assert choose_batch_size([32, 64, 128, 256, 512], peak, budget_bytes=4000) == 256
    assert measured == [32, 64, 256]
    # the confirmation fails (out of memory): step down
    assert choose_batch_size([32, 64, 128, 256], lambda s: None if s > 64 else s, 1e9) == 128 - 64
    assert choose_batch_size([32, 64], lambda s: 10**9, 100) == 32
    assert choose_batch_size([64], peak, 1) == 64


def test_scaled_lr_is_the_square_root_rule():
    assert scaled_lr(1e-3, 64, 64) == 1e-3
    assert scaled_lr(1e-3, 1024, 64) == pytest.approx(4e-3)


def test_precision_rules():
    assert resolve_precision("32", "cpu") == "32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.warns(UserWarning, match="applies on cuda devices only"):
        assert resolve_precision("16", "cpu") == "32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("64", "cpu")


def test_num_workers_rules():
    assert resolve_num_workers("auto", lazy=False) == 0
    assert 1 <= resolve_num_workers("auto", lazy=True) <= 4
    assert resolve_num_workers(3, lazy=False) == 3


# ----------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("name", DEEP)
def test_every_estimator_takes_the_hardware_parameters(name):
    estimator = _CLASSES[name]()
    params = estimator.get_params()
    assert params["batch_size"] == "auto"
    assert params["precision"] == "32"
    assert params["num_workers"] == "auto"
    assert estimator._default_batch_size in (32, 64)


@pytest.mark.parametrize("name", DEEP)
def test_auto_batch_size_on_a_cpu_is_the_reference_size(name, images):
    settings = dict(TINY_SETTINGS[name], batch_size="auto", device="cpu", random_state=0)
    settings.pop("image_shape")
    estimator = _CLASSES[name](**settings).fit(images)
    assert estimator.batch_size_ == estimator._default_batch_size
    assert estimator.lr_ == estimator.lr
    assert estimator.precision_ == "32"
    assert estimator.net_.batch_size == estimator.batch_size_


def test_invalid_hardware_parameters_are_rejected(images):
    for params in ({"batch_size": "big"}, {"precision": "64"}, {"num_workers": -1}):
        with pytest.raises(ValueError):
            tiny_ae(**params).fit(images)


def test_float16_on_a_cpu_warns_and_trains_in_float32(images):
    reference = tiny_ae().fit(images)
    with pytest.warns(UserWarning, match="applies on cuda devices only"):
        half = tiny_ae(precision="16").fit(images)
    assert half.precision_ == "32"
    np.testing.assert_array_equal(half.transform(images), reference.transform(images))


@pytest.fixture
def cpu_autocast(monkeypatch):
    """Let float16 autocast run on the CPU too, to exercise its code path without a GPU."""
    monkeypatch.setattr(
        _hardware, "AUTOCAST_DEVICES", {"bf16": ("cuda", "cpu"), "16": ("cuda", "cpu")}
    )


@pytest.mark.parametrize("precision", ["bf16", "16"])
def test_mixed_precision_code_path(precision, images, cpu_autocast):
    ae = tiny_ae(precision=precision, ssim_weight=0.5).fit(images)
    assert ae.precision_ == precision
    assert (ae.net_.grad_scaler_ is not None) == (precision == "16")
    assert np.isfinite([row["train_loss"] for row in ae.history_]).all()
    assert {"loss_mse", "loss_ssim"} <= set(ae.history_[-1])
    Z = ae.transform(images)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    assert ae.reconstruct(images).dtype == np.float32
    assert np.isfinite(ae.score(images))
    # the same seed gives the same network in mixed precision too
    np.testing.assert_array_equal(
        tiny_ae(precision=precision, ssim_weight=0.5).fit(images).transform(images), Z
    )


@pytest.mark.parametrize("name", DEEP)
def test_every_estimator_runs_in_bf16(name, images):
    settings = dict(TINY_SETTINGS[name], precision="bf16", device="cpu", random_state=0)
    settings.pop("image_shape")
    estimator = _CLASSES[name](**settings).fit(images)
    Z = estimator.transform(images)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    assert np.isfinite(estimator.score(images))


def test_saved_model_keeps_what_the_fit_chose(images, tmp_path):
    from skastro import load

    ae = tiny_ae(batch_size="auto").fit(images)
    loaded = load(ae.save(tmp_path / "model"))
    assert loaded.batch_size_ == ae.batch_size_ == 64
    assert loaded.lr_ == ae.lr_ and loaded.precision_ == "32"
    np.testing.assert_array_equal(loaded.transform(images), ae.transform(images))


# ----------------------------------------------------------------------------- training loop
def test_numbers_read_back_in_groups_give_the_same_history(images, monkeypatch):
    each = tiny_ae(max_epochs=3, ssim_weight=0.5).fit(images)
    monkeypatch.setattr(_net, "_sync_every", lambda device: 2)
    grouped = tiny_ae(max_epochs=3, ssim_weight=0.5).fit(images)
    for a, b in zip(each.history_, grouped.history_):
        assert [row["train_loss"] for row in a["batches"]] == [
            row["train_loss"] for row in b["batches"]
        ]
        for key in ("train_loss", "loss_mse", "loss_ssim"):
            assert a[key] == b[key]


def test_non_finite_loss_is_caught_when_numbers_are_read_back_in_groups(images, monkeypatch):
    monkeypatch.setattr(_net, "_sync_every", lambda device: 1000)
    with pytest.raises(NonFiniteLossError, match="at epoch 1"):
        tiny_ae(lr=1e30).fit(images * 1e30)


def test_modules_are_not_switched_to_their_own_mode_every_batch(images, monkeypatch):
    calls = []
    original = torch.nn.Module.train

    def train(module, mode=True):
        calls.append(module)
        return original(module, mode)

    monkeypatch.setattr(torch.nn.Module, "train", train)
    ae = tiny_ae(max_epochs=2).fit(images)
    # 40 images, batches of 16: 6 training steps, but only the switch to eval mode at the end
    assert sum(module is ae.module_ for module in calls) < 6
