"""Pickle-free model files: round trips, safety of loading, clear errors."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import skastro
from skastro import ConvAutoencoder, load
from skastro._registry import TINY_SETTINGS, estimator_classes
from skastro.base import DeepEstimator
from skastro.exceptions import ModelFormatError
from skastro.serialization import (
    FORMAT_VERSION,
    decode_parameter,
    load_training_state,
    read_model_info,
    save,
)

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16] - 7.5
    width = rng.uniform(2, 5, size=(48, 1, 1, 1))
    blobs = np.exp(-(xx**2 + yy**2) / (2 * width**2)) + 0.05 * rng.normal(size=(48, 2, 16, 16))
    return blobs.astype(np.float32)


@pytest.fixture(scope="module")
def fitted(images):
    model = ConvAutoencoder(
        n_components=3, widths=(4, 8), max_epochs=2, random_state=0, device="cpu"
    )
    return model.fit(images)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    return fitted.save(tmp_path_factory.mktemp("model"))


def test_round_trip_gives_identical_outputs(fitted, saved, images):
    loaded = load(saved)
    assert type(loaded) is ConvAutoencoder
    np.testing.assert_array_equal(loaded.transform(images), fitted.transform(images))
    np.testing.assert_array_equal(loaded.reconstruct(images), fitted.reconstruct(images))
    assert loaded.score(images) == fitted.score(images)


def test_round_trip_restores_parameters_and_fitted_attributes(fitted, saved):
    loaded = load(saved)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.widths == (4, 8)  # a tuple again, not a JSON list
    assert loaded.image_shape_ == fitted.image_shape_ == (2, 16, 16)
    assert loaded.n_features_in_ == fitted.n_features_in_
    np.testing.assert_array_equal(loaded.channel_mean_, fitted.channel_mean_)
    np.testing.assert_array_equal(loaded.channel_std_, fitted.channel_std_)
    assert [row["train_loss"] for row in loaded.history_] == [
        row["train_loss"] for row in fitted.history_
    ]
    assert loaded.interrupted_ is False


def test_model_folder_holds_json_and_safetensors_only(saved):
    assert sorted(p.name for p in saved.iterdir()) == [
        "history.json",
        "model.json",
        "weights.safetensors",
    ]
    info = json.loads((saved / "model.json").read_text())
    assert info["format_version"] == FORMAT_VERSION
    assert info["class"] == "ConvAutoencoder"
    assert info["versions"]["torch"] == torch.__version__
    assert info["versions"]["skastro"] == skastro.__version__
    assert info["network"]["image_shape"] == [2, 16, 16]
    assert len(info["network"]["channel_mean"]) == 2
    # the weights are plain tensors that safetensors reads without any code execution
    from safetensors.torch import load_file

    weights = load_file(saved / "weights.safetensors")
    assert all(isinstance(v, torch.Tensor) for v in weights.values())


def test_loaded_model_keeps_training_and_pickles(saved, images):
    loaded = load(saved)
    loaded.partial_fit(images, epochs=1)
    assert len(loaded.history_) == 3
    again = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(again.transform(images), loaded.transform(images))


def test_loading_leaves_the_global_torch_rng_alone(saved):
    state = torch.random.get_rng_state()
    load(saved)
    assert torch.equal(state, torch.random.get_rng_state())


def test_fresh_process_gives_identical_transform(fitted, saved, images, tmp_path):
    np.save(tmp_path / "X.npy", images)
    code = (
        "import sys, numpy as np, skastro;"
        "m = skastro.load(sys.argv[1]);"
        "np.save(sys.argv[3], m.transform(np.load(sys.argv[2])))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(saved), str(tmp_path / "X.npy"), str(tmp_path / "Z.npy")],
        check=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "Z.npy"), fitted.transform(images))


def test_unfitted_estimator_round_trips(tmp_path):
    model = ConvAutoencoder(n_components=5, widths=(3, 6), lr=3e-4)
    loaded = load(save(model, tmp_path))
    assert loaded.get_params() == model.get_params()
    assert not loaded.__sklearn_is_fitted__()


def test_checkpoint_restores_the_optimizer_state(fitted, tmp_path, images):
    from skastro.serialization import save_training_state

    save_training_state(fitted, fitted.net_, tmp_path)
    assert (tmp_path / "optimizer.pt").is_file()
    loaded = load_training_state(tmp_path)
    expected = fitted.net_.optimizer_.state_dict()["state"]
    restored = loaded.net_.optimizer_.state_dict()["state"]
    assert expected.keys() == restored.keys()
    for key in expected:
        torch.testing.assert_close(restored[key]["exp_avg"], expected[key]["exp_avg"])


def test_non_finite_values_and_arrays_round_trip(tmp_path):
    if "VICRegEmbedder" not in estimator_classes():
        pytest.skip("VICRegEmbedder is not available")
    from skastro import VICRegEmbedder

    reference = np.arange(12, dtype=np.float64).reshape(6, 2)
    model = VICRegEmbedder(reference=reference, noise_std=float("nan"))
    save(model, tmp_path)
    # strict JSON: no bare NaN in the file, but a tagged value that decodes back to NaN
    info = json.loads((tmp_path / "model.json").read_text(), parse_constant=pytest.fail)
    assert np.isnan(decode_parameter(info["params"]["noise_std"]))
    # loading checks every parameter: NaN is not a valid noise_std
    with pytest.raises(ModelFormatError, match=r"model.json: 'params.noise_std' is invalid"):
        load(tmp_path)
    model.set_params(noise_std=0.0)
    loaded = load(save(model, tmp_path))
    np.testing.assert_array_equal(loaded.reference, reference)


def test_estimator_parameter_is_saved_in_a_sub_folder(tmp_path):
    if "CondVAEClassifier" not in estimator_classes():
        pytest.skip("CondVAEClassifier is not available")
    from skastro import CondVAEClassifier

    model = CondVAEClassifier(feature_extractor=ConvAutoencoder(n_components=7, widths=(4,)))
    loaded = load(save(model, tmp_path))
    extractor = loaded.feature_extractor
    assert type(extractor) is ConvAutoencoder
    assert extractor.get_params() == model.feature_extractor.get_params()
    assert (tmp_path / "parts").is_dir()


def _deep_public_estimators():
    names = []
    for name, cls in estimator_classes().items():
        if issubclass(cls, DeepEstimator) and name in TINY_SETTINGS:
            names.append(name)
    return sorted(names)


@pytest.mark.parametrize("name", _deep_public_estimators())
def test_every_deep_estimator_round_trips(name, images, tmp_path):
    cls = estimator_classes()[name]
    params = {**TINY_SETTINGS[name], "image_shape": None, "random_state": 0, "device": "cpu"}
    model = cls(**params).fit(images[:32, :1])
    loaded = load(model.save(tmp_path))
    np.testing.assert_allclose(
        loaded.transform(images[:32, :1]), model.transform(images[:32, :1]), atol=1e-6
    )


# ------------------------------------------------------------------------- refusals
def test_callbacks_are_refused_with_the_parameter_named(fitted, tmp_path):
    from skorch.callbacks import EpochTimer

    model = ConvAutoencoder(callbacks=[EpochTimer()])
    with pytest.raises(TypeError, match=r"parameter 'callbacks'.*set_params\(callbacks=None\)"):
        save(model, tmp_path)


def test_random_state_instance_is_refused(tmp_path):
    model = ConvAutoencoder(random_state=np.random.RandomState(0))
    with pytest.raises(TypeError, match=r"parameter 'random_state'.*int seed"):
        save(model, tmp_path)


def test_foreign_estimator_is_refused(tmp_path):
    from sklearn.decomposition import PCA

    with pytest.raises(TypeError, match="PCA is not one of skastro's public estimators"):
        save(PCA(), tmp_path)

    class MyAutoencoder(ConvAutoencoder):
        pass

    with pytest.raises(TypeError, match="MyAutoencoder"):
        save(MyAutoencoder(), tmp_path)


# ------------------------------------------------------------------------- bad files
def _copy(saved, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


def _edit(folder, change):
    info = json.loads((folder / "model.json").read_text())
    change(info)
    (folder / "model.json").write_text(json.dumps(info))


def test_newer_format_version_is_a_clear_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFormatError, match=r"format version 2 .*upgrade skastro"):
        load(folder)


def test_unknown_old_format_version_is_a_clear_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info.update(format_version=0))
    with pytest.raises(ModelFormatError, match="format version 0"):
        load(folder)


@pytest.mark.parametrize("name", ["os.system", "Popen", "load", "__builtins__"])
def test_only_public_skastro_classes_are_built(saved, tmp_path, name):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info.update({"class": name}))
    with pytest.raises(ModelFormatError, match="not one of skastro's public estimators"):
        load(folder)


def test_paths_in_a_file_cannot_leave_the_folder(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info["params"].update(n_components={"__estimator__": "../x"}))
    with pytest.raises(ModelFormatError, match="refusing the path"):
        load(folder)


def test_missing_folder_and_damaged_files_are_clear_errors(saved, tmp_path):
    with pytest.raises(ModelFormatError, match="no skastro model"):
        load(tmp_path / "nothing")
    folder = _copy(saved, tmp_path)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="damaged"):
        read_model_info(folder)


def test_weights_that_do_not_fit_the_network_are_a_clear_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info["params"].update(n_components=9))
    with pytest.raises(ModelFormatError, match="do not fit the network"):
        load(folder)


def test_unknown_parameter_in_a_file_is_a_clear_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info["params"].update(future_option=1))
    with pytest.raises(ModelFormatError, match="future_option"):
        load(folder)


@pytest.mark.parametrize(
    ("name", "method", "expected"),
    [
        ("conv", "transform", "conv_Z.npy"),
        ("cond_vae", "decision_function", "cond_vae_decision.npy"),
        ("ensemble", "transform", "ensemble_Z.npy"),
    ],
)
def test_models_saved_before_the_layout_change_still_load(name, method, expected):
    # written by skastro 0.1.0 as it was before the package became subpackages (commit 18b66a7)
    folder = Path(__file__).parent / "data" / "models_v0.1.0"
    X = np.load(folder / "X.npy")
    model = load(folder / name)
    np.testing.assert_allclose(getattr(model, method)(X), np.load(folder / expected), atol=1e-6)


# ------------------------------------------------------------------------- issue 27: hostile
def _outside_pipe(tmp_path):
    """A named pipe outside the model folder: opening it for reading would block."""
    pipe = tmp_path / "outside.fifo"
    os.mkfifo(pipe)
    return pipe


@pytest.mark.parametrize("field", ["history", "weights", "arrays", "optimizer"])
def test_every_file_path_must_stay_inside_the_folder(saved, tmp_path, field):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info["files"].__setitem__(field, "../secret.json"))
    with pytest.raises(ModelFormatError, match=rf"'files.{field}' names '../secret.json'"):
        load(folder)
    _edit(folder, lambda info: info["files"].__setitem__(field, str(tmp_path / "x.json")))
    with pytest.raises(ModelFormatError, match="refusing the path"):
        load(folder)


@pytest.mark.parametrize("name", ["weights.safetensors", "history.json", "model.json"])
def test_symbolic_links_out_of_the_folder_are_never_followed(saved, tmp_path, name):
    folder = _copy(saved, tmp_path)
    pipe = _outside_pipe(tmp_path)  # were it opened, load() would block, not fail
    (folder / name).unlink()
    (folder / name).symlink_to(pipe)
    with pytest.raises(ModelFormatError, match="leads outside the model folder"):
        load(folder)


def test_special_files_inside_the_folder_are_never_opened(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "weights.safetensors").unlink()
    os.mkfifo(folder / "weights.safetensors")
    with pytest.raises(ModelFormatError, match=r"'files.weights'.*named pipe \(FIFO\)"):
        load(folder)


def test_deeply_nested_json_is_a_clear_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "history.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFormatError, match="nests lists or objects more than 64 deep"):
        load(folder)
    (folder / "model.json").write_text('{"params": ' + "[" * 500 + "]" * 500 + "}")
    with pytest.raises(ModelFormatError, match="more than 64 deep"):
        load(folder)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_components", 10**9, r"'params' describe a network that is refused.*weights"),
        ("batch_size", True, r"'params.batch_size' is invalid.*not a bool"),
        ("widths", "16", r"'params.widths' is invalid"),
        ("callbacks", ["print"], r"'params.callbacks' .*callbacks are code"),
        ("device", "meta", r"'params.device' is 'meta'"),
        ("random_state", 2**80, r"'params.random_state' is invalid"),
    ],
)
def test_parameters_are_checked_before_anything_is_built(saved, tmp_path, field, value, message):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info["params"].__setitem__(field, value))
    with pytest.raises(ModelFormatError, match=message):
        load(folder)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("image_shape", [2, 10**6, 10**6], r"'network.image_shape' is invalid.*MAX_IMAGE_VALUES"),
        ("image_shape", [2, -16, 16], r"'network.image_shape' is invalid"),
        ("channel_std", [0.0, 1.0], r"'network.channel_std' must hold 2 finite positive"),
        ("channel_mean", [1.0], r"'network.channel_mean' must hold 2 finite numbers"),
        ("seed", 2**80, r"'network.seed' must be an int in \[0, 2\*\*63\)"),
        ("n_features_in", 7, r"'network.n_features_in' must be 512"),
    ],
)
def test_the_network_block_is_checked(saved, tmp_path, field, value, message):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info["network"].__setitem__(field, value))
    with pytest.raises(ModelFormatError, match=message):
        load(folder)


def test_fitted_without_a_network_is_an_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder, lambda info: info.pop("network"))
    with pytest.raises(ModelFormatError, match="'fitted' is true but the file describes no"):
        load(folder)


def _rewrite_weights(folder, change):
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "weights.safetensors")
    save_file(change({k: v.clone() for k, v in weights.items()}), folder / "weights.safetensors")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: {k: v.fill_(float("nan")) for k, v in w.items()}, "holds NaN or inf values"),
        (lambda w: {k: v.fill_(1e30) for k, v in w.items()}, "finite but absurd"),
        (lambda w: {k: v.double() for k, v in w.items()}, "stored as torch.float64"),
    ],
)
def test_weights_must_be_finite_and_sane(saved, tmp_path, change, message):
    folder = _copy(saved, tmp_path)
    _rewrite_weights(folder, change)
    with pytest.raises(ModelFormatError, match=message):
        load(folder)


def test_truncated_or_oversized_safetensors_are_refused_from_their_header(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    data = (folder / "weights.safetensors").read_bytes()
    (folder / "weights.safetensors").write_bytes(data[:-10])
    with pytest.raises(ModelFormatError, match="truncated or padded"):
        load(folder)
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    ).encode()
    (folder / "weights.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ModelFormatError, match="more than 1,073,741,824 values"):
        load(folder)


def test_only_known_fitted_attributes_are_restored(tmp_path, images):
    from skastro import KFoldEnsemble

    member = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, random_state=0)
    folder = KFoldEnsemble(member, n_splits=2, random_state=0).fit(images).save(tmp_path / "e")
    for name in ("__dict__", "transform", "__class__"):
        copy = _copy(folder, tmp_path / name)
        _edit(copy, lambda info, n=name: info["fitted_state"].__setitem__(n, {"a": 1}))
        with pytest.raises(ModelFormatError, match=rf"'fitted_state.{name}' is not a fitted"):
            load(copy)
    copy = _copy(folder, tmp_path / "nan")
    _edit(
        copy,
        lambda info: info["fitted_state"].__setitem__("centers_", [[{"__float__": "nan"}] * 2] * 2),
    )
    with pytest.raises(ModelFormatError, match="'centers_' holds NaN or inf"):
        load(copy)
    copy = _copy(folder, tmp_path / "ok")
    assert load(copy).transform(images).shape == (len(images), 2)


def test_a_network_too_large_for_memory_is_refused_before_it_is_built(saved, tmp_path):
    folder = _copy(saved, tmp_path)

    def huge(info):
        info["network"].update(image_shape=[2, 30000, 30000], n_features_in=2 * 30000**2)

    _edit(folder, huge)
    with pytest.raises(ModelFormatError, match=r"'params' describe a network that is refused"):
        load(folder)


def test_a_class_with_a_required_parameter_loads(tmp_path):
    # FaintCalibratedClassifier(estimator) cannot be built without arguments
    from skastro import CondVAEClassifier
    from skastro.meta import FaintCalibratedClassifier

    wrapped = FaintCalibratedClassifier(CondVAEClassifier(n_components=2, widths=(4,)), band=2)
    folder = save(wrapped, tmp_path / "fcc")
    loaded = load(folder)
    assert loaded.band == 2 and loaded.estimator.get_params()["widths"] == (4,)
    model_file = folder / "model.json"
    meta = json.loads(model_file.read_text())
    del meta["params"]["estimator"]
    model_file.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="cannot build FaintCalibratedClassifier"):
        load(folder)


def test_a_loaded_model_meets_the_fit_checks_before_training_again(tmp_path, monkeypatch):
    from skastro import VICRegEmbedder

    X = np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)
    model = VICRegEmbedder(**{**TINY_SETTINGS["VICRegEmbedder"], "image_shape": None}).fit(X)
    folder = model.save(tmp_path / "vicreg")
    model_file = Path(folder) / "model.json"
    meta = json.loads(model_file.read_text())
    meta["params"]["crop_scale"] = [-3.0, -1.0]  # each number passes its type check
    model_file.write_text(json.dumps(meta))
    loaded = load(folder)
    with pytest.raises(ValueError, match="crop_scale must satisfy"):
        loaded.partial_fit(X)  # fit's checks across parameters run before training again
    # parameters that cannot build the network are a format error, naming the file
    monkeypatch.setattr(
        VICRegEmbedder, "_build_module", lambda self, shape: (_ for _ in ()).throw(ValueError("no"))
    )
    with pytest.raises(ModelFormatError, match="cannot build VICRegEmbedder's network: no"):
        load(folder)
