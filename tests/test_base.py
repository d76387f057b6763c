"""The shared estimator machinery, exercised through ConvAutoencoder (the reference estimator)."""

import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

from skastro import ConvAutoencoder
from skastro.base import resolve_device
from skastro.exceptions import NonFiniteLossError


def tiny_ae(**params):
    defaults = dict(n_components=3, widths=(4, 8), max_epochs=1, batch_size=16, random_state=0)
    return ConvAutoencoder(**{**defaults, **params})


# ----------------------------------------------------------------------------- bad input
def test_nan_pixels_error_names_count_and_indices(tiny_images):
    X = tiny_images[0].copy()
    X[[3, 7, 11], 0, 2, 2] = np.nan
    X[20, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"4 image\(s\) \(first indices: 3, 7, 11, 20\)"):
        tiny_ae().fit(X)


def test_nan_policy_fill_fits_and_transforms(tiny_images):
    X = tiny_images[0].copy()
    X[:5, 0, 4:8, 4:8] = np.nan
    ae = tiny_ae(nan_policy="fill").fit(X)
    Z = ae.transform(X)
    assert np.isfinite(Z).all()
    # filling with the channel mean is the same as passing those pixels at that value
    filled = np.where(np.isfinite(X), X, ae.channel_mean_[0])
    np.testing.assert_allclose(Z, ae.transform(filled), rtol=1e-5, atol=1e-6)


def test_nan_policy_fill_never_writes_into_the_users_images(tiny_images):
    # float32 in C order is read as views of the user's array; the fill must go into copies
    X = tiny_images[0].copy()
    assert X.dtype == np.float32 and X.flags.c_contiguous
    X[:5, 0, 4:8, 4:8] = np.nan
    X[5, 0, 0, 0] = -np.inf
    before = X.copy()
    ae = tiny_ae(nan_policy="fill").fit(X)
    ae.transform(X)
    ae.reconstruct(X)
    ae.score(X)
    np.testing.assert_array_equal(X, before)  # NaN where there was NaN, -inf where -inf


def test_nan_policy_fill_fills_inf_pixels_at_transform_too(tiny_images):
    X = tiny_images[0].copy()
    X[0, 0, 3, 3] = np.inf
    ae = tiny_ae(nan_policy="fill").fit(X.copy())  # fit fills the inf pixel
    Z = ae.transform(X)  # ... and so does transform, instead of calling it a scale error
    filled = np.where(np.isfinite(X), X, ae.channel_mean_[0])
    np.testing.assert_allclose(Z, ae.transform(filled), rtol=1e-5, atol=1e-6)
    # a finite pixel far off the training scale is still refused
    X[1, 0, 0, 0] = 1e30
    with pytest.raises(ValueError, match="standard deviations from the mean"):
        ae.transform(X)


def test_nan_in_transform_after_clean_fit_raises(fitted_tiny_ae, tiny_images):
    X = tiny_images[0].copy()
    X[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        fitted_tiny_ae.transform(X)


def test_float64_beyond_float32_range_is_an_error(tiny_images):
    X = tiny_images[0].astype(np.float64)
    X[0, 0, 0, 0] = 1e300
    with pytest.raises(ValueError, match="beyond the float32 range"):
        tiny_ae().fit(X)


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 5, 6)])
def test_wrong_ndim(shape):
    with pytest.raises(ValueError, match=r"2-D \(n, F\), 3-D \(n, H, W\) or 4-D"):
        tiny_ae().fit(np.zeros(shape, dtype=np.float32))


def test_empty_input():
    with pytest.raises(ValueError, match="0 sample"):
        tiny_ae().fit(np.zeros((0, 1, 8, 8), dtype=np.float32))


def test_channel_mismatch_between_fit_and_transform(fitted_tiny_ae, tiny_multiband):
    with pytest.raises(ValueError, match="mismatch in channels"):
        fitted_tiny_ae.transform(tiny_multiband)


def test_size_mismatch_between_fit_and_transform(fitted_tiny_ae):
    with pytest.raises(ValueError, match="mismatch in pixels"):
        fitted_tiny_ae.transform(np.zeros((2, 1, 20, 20), dtype=np.float32))


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        tiny_ae().transform(np.zeros((2, 1, 8, 8), dtype=np.float32))


def test_non_square_flat_input_needs_image_shape():
    X = np.zeros((4, 50), dtype=np.float32)
    with pytest.raises(ValueError, match="pass image_shape"):
        tiny_ae().fit(X)


def test_image_shape_wildcard_and_mismatch():
    X = np.random.default_rng(0).random((8, 2 * 6 * 5), dtype=np.float32)
    ae = tiny_ae(image_shape=(2, -1, 5)).fit(X)
    assert ae.image_shape_ == (2, 6, 5)
    assert ae.reconstruct(X).shape == X.shape
    with pytest.raises(ValueError, match="needs 48"):
        tiny_ae(image_shape=(3, 4, 4)).fit(X)


def test_sparse_input_is_refused():
    from scipy import sparse

    with pytest.raises(TypeError, match="Sparse data"):
        tiny_ae().fit(sparse.random(4, 16, format="csr"))


def test_fewer_images_than_batch_size(tiny_images):
    X = tiny_images[0][:5]
    ae = tiny_ae(batch_size=64).fit(X)
    assert ae.transform(X).shape == (5, 3)
    assert ae.history_[-1]["train_batch_count"] == 1


def test_big_endian_input_equals_native(tiny_images):
    X = tiny_images[0]
    big = X.astype(">f4")
    assert not big.dtype.isnative
    np.testing.assert_array_equal(tiny_ae().fit(X).transform(X), tiny_ae().fit(big).transform(big))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64, ">f8", ">i2"])
def test_any_real_dtype(dtype):
    X = (np.random.default_rng(0).random((6, 1, 8, 8)) * 100).astype(dtype)
    Z = tiny_ae().fit(X).transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()


@pytest.mark.parametrize("device", ["cuda", "tpu-zero"])
def test_bad_device(device, tiny_images):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="device"):
        tiny_ae(device=device).fit(tiny_images[0])


def test_auto_device_resolves():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------- layouts
def test_layouts_round_trip(fitted_tiny_ae, tiny_images):
    X = tiny_images[0]
    Z = fitted_tiny_ae.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (len(X), 4)
    np.testing.assert_array_equal(fitted_tiny_ae.transform(X[:, 0]), Z)
    np.testing.assert_array_equal(fitted_tiny_ae.transform(X.reshape(len(X), -1)), Z)
    assert fitted_tiny_ae.reconstruct(X[:, 0]).shape == X[:, 0].shape
    assert fitted_tiny_ae.reconstruct(X.reshape(len(X), -1)).shape == (len(X), 256)
    assert fitted_tiny_ae.reconstruct(X).dtype == np.float32


def test_rotated_and_flipped_views_are_accepted(fitted_tiny_ae, tiny_images):
    X = tiny_images[0]
    for view in (np.rot90(X, 1, axes=(2, 3)), X[..., ::-1], X[::-1]):
        expected = fitted_tiny_ae.transform(np.ascontiguousarray(view))
        np.testing.assert_array_equal(fitted_tiny_ae.transform(view), expected)


def test_multiband_reconstruction_in_user_units(tiny_multiband):
    ae = tiny_ae(max_epochs=3).fit(tiny_multiband)
    rec = ae.reconstruct(tiny_multiband)
    # per-band means survive the standardise -> network -> de-standardise round trip
    np.testing.assert_allclose(
        rec.mean(axis=(0, 2, 3)), tiny_multiband.mean(axis=(0, 2, 3)), rtol=0.2
    )


class _CountingLazyArray:
    """A lazily loaded array that records how many images each read returns."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.largest_read = 0

    def __len__(self):
        return len(self.array)

    def __getitem__(self, index):
        block = self.array[index]
        self.largest_read = max(self.largest_read, len(np.atleast_1d(block)))
        return block


def test_lazy_arrays_are_read_batch_by_batch(fitted_tiny_ae):
    X = np.random.default_rng(0).random((600, 1, 16, 16), dtype=np.float32)
    lazy = _CountingLazyArray(X)
    Z = fitted_tiny_ae.transform(lazy)
    np.testing.assert_array_equal(Z, fitted_tiny_ae.transform(X))
    assert lazy.largest_read <= fitted_tiny_ae._inference_batch_size < len(X)


def test_memmap_input(tmp_path, tiny_images):
    X = tiny_images[0]
    path = tmp_path / "images.npy"
    np.save(path, X.astype(">f4"))
    mm = np.load(path, mmap_mode="r")
    ae = tiny_ae().fit(mm)
    np.testing.assert_array_equal(ae.transform(mm), ae.transform(X))


# ----------------------------------------------------------------------------- determinism
def test_same_random_state_same_output(tiny_images):
    X = tiny_images[0]
    a = tiny_ae(max_epochs=2, augment=True).fit(X)
    b = tiny_ae(max_epochs=2, augment=True).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = tiny_ae(max_epochs=2, augment=True, random_state=1).fit(X)
    assert not np.allclose(a.transform(X), c.transform(X))


def test_fit_leaves_global_rng_untouched(tiny_images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_ae(augment=True).fit(tiny_images[0])
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("dumps, loads", [(pickle.dumps, pickle.loads), ("joblib", "joblib")])
def test_pickle_round_trip(fitted_tiny_ae, tiny_images, tmp_path, dumps, loads):
    X = tiny_images[0]
    if dumps == "joblib":
        joblib.dump(fitted_tiny_ae, tmp_path / "model.joblib")
        clone = joblib.load(tmp_path / "model.joblib")
    else:
        clone = loads(dumps(fitted_tiny_ae))
    np.testing.assert_array_equal(clone.transform(X), fitted_tiny_ae.transform(X))
    np.testing.assert_array_equal(clone.reconstruct(X), fitted_tiny_ae.reconstruct(X))


# ----------------------------------------------------------------------------- training loop
def test_history_logs_each_loss_term(tiny_images):
    ae = tiny_ae(max_epochs=3, ssim_weight=0.5).fit(tiny_images[0])
    assert len(ae.history_) == 3
    for row in ae.history_:
        assert {"loss_mse", "loss_ssim", "train_loss"} <= set(row)
        np.testing.assert_allclose(
            row["train_loss"], row["loss_mse"] + 0.5 * row["loss_ssim"], rtol=1e-4
        )


def test_training_reduces_the_loss(tiny_images):
    ae = tiny_ae(max_epochs=15, lr=3e-3).fit(tiny_images[0])
    assert ae.history_[-1]["loss_mse"] < 0.7 * ae.history_[0]["loss_mse"]


def test_score_is_negative_standardised_mse(fitted_tiny_ae, tiny_images):
    X = tiny_images[0]
    rec = fitted_tiny_ae.reconstruct(X)
    std = fitted_tiny_ae.channel_std_[None, :, None, None]
    expected = -np.mean(((rec - X) / std) ** 2)
    assert fitted_tiny_ae.score(X) == pytest.approx(expected, rel=1e-3)


def test_verbose_prints_epoch_table(tiny_images, capsys):
    tiny_ae(verbose=1, ssim_weight=0.1).fit(tiny_images[0])
    out = capsys.readouterr().out
    assert re.search(r"epoch\s+loss_mse\s+loss_ssim\s+train_loss", out)


def test_silent_by_default(tiny_images, capsys):
    tiny_ae().fit(tiny_images[0])
    assert capsys.readouterr().out == ""


class _NanAfter(Callback):
    """Poison the weights at the end of an epoch so the next batch's loss is NaN."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            with torch.no_grad():
                next(net.module_.parameters()).fill_(float("nan"))


def test_non_finite_loss_stops_training_and_leaves_unfitted(tiny_images):
    ae = tiny_ae(max_epochs=4, callbacks=[_NanAfter(2)])
    with pytest.raises(NonFiniteLossError, match="at epoch 3"):
        ae.fit(tiny_images[0])
    with pytest.raises(NotFittedError):
        ae.transform(tiny_images[0])


def test_failed_refit_keeps_the_earlier_fit(tiny_images):
    X = tiny_images[0]
    ae = tiny_ae(max_epochs=2).fit(X)
    before, history = ae.transform(X), len(ae.history_)
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        ae.fit(bad)  # refused while validating
    np.testing.assert_array_equal(ae.transform(X), before)
    ae.set_params(max_epochs=4, callbacks=[_NanAfter(2)])
    with pytest.raises(NonFiniteLossError, match="left as it was before this fit"):
        ae.fit(X)  # fails while training a new network
    np.testing.assert_array_equal(ae.transform(X), before)
    assert len(ae.history_) == history
    assert ae.get_params()["max_epochs"] == 4  # parameters are the user's, not rolled back


def test_failed_warm_start_restores_previous_weights(tiny_images):
    X = tiny_images[0]
    ae = tiny_ae(max_epochs=2, warm_start=True).fit(X)
    before = ae.transform(X)
    ae.set_params(callbacks=[_NanAfter(3)])
    with pytest.raises(NonFiniteLossError):
        ae.fit(X)
    np.testing.assert_array_equal(ae.transform(X), before)
    assert len(ae.history_) == 2


def test_warm_start_and_partial_fit_continue_training(tiny_images):
    X = tiny_images[0]
    ae = tiny_ae(max_epochs=2, warm_start=True).fit(X)
    ae.fit(X)
    assert len(ae.history_) == 4
    ae.partial_fit(X, epochs=1)
    assert len(ae.history_) == 5
    cold = tiny_ae(max_epochs=2).fit(X)
    cold.fit(X)
    assert len(cold.history_) == 2


class _InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_is_recorded(tiny_images):
    ae = tiny_ae(max_epochs=5, callbacks=[_InterruptAt(3)])
    with pytest.warns(RuntimeWarning, match="interrupted at epoch 3"):
        ae.fit(tiny_images[0])
    assert ae.interrupted_
    assert ae.transform(tiny_images[0]).shape == (48, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        finished = tiny_ae().fit(tiny_images[0])
    assert not finished.interrupted_


def test_skorch_callbacks_run(tiny_images):
    seen = []

    class Record(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(net.history[-1]["loss_mse"])

    tiny_ae(max_epochs=3, callbacks=[Record()]).fit(tiny_images[0])
    assert len(seen) == 3


def test_get_feature_names_out(fitted_tiny_ae):
    names = fitted_tiny_ae.get_feature_names_out()
    assert list(names) == [f"convautoencoder{i}" for i in range(4)]
