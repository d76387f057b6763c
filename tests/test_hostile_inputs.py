"""Property-based tests of hostile inputs (issue 27): whatever a file or a request holds,
skastro fails with its documented exceptions, reads nothing outside, and changes no input.

hypothesis generates malformed FITS, HDF5, ``.npy`` and PNG files (valid files truncated,
with bytes flipped or inserted, or random bytes), model folders (``model.json`` fields replaced
by values of the wrong type, huge sizes, paths with ``..``, symbolic links to a place outside,
truncated or damaged safetensors), estimator parameters, command lines and explorer callback
requests, and checks:

* only the documented exception types escape (``DataLoadError``, ``ModelFormatError``, and
  ``ValueError`` / ``TypeError`` / ``KeyError`` / ``FileNotFoundError`` where documented);
* nothing outside the model folder is opened: the outside target is a named pipe (FIFO), so
  an open from any language (safetensors is Rust, h5py is C) is seen by a thread that opens it
  for writing, and Python-level opens are seen by an audit hook;
* the input files are byte-for-byte unchanged (hashed before and after).

Every property is bounded (``max_examples``, no per-example deadline but small inputs) so the
whole module runs in well under a minute.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skastro.exceptions import DataLoadError, ModelFormatError  # noqa: E402

BOUNDED = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


# ----------------------------------------------------------------------------- the watch
# Opens each named pipe for writing without blocking: that succeeds only while something has
# it open for reading, which it then unblocks (the reader sees end-of-file). It runs in its own
# process: a reader may block in native code that holds the GIL (safetensors does), where no
# thread of the test process could run.
PIPE_WATCHER = """
import os, sys, time
stop, pipes = sys.argv[1], sys.argv[2:]
while not os.path.exists(stop):
    for pipe in pipes:
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue
        print(pipe, flush=True)
        os.close(fd)
    time.sleep(0.001)
"""


class OutsideWatch:
    """Records any open of a place outside: a FIFO there (any language) or a Python open."""

    _active = None

    def __init__(self, outside):
        self.outside = Path(outside).resolve()
        self.fifo = self.outside / "secret.fifo"
        if not self.fifo.exists():
            os.mkfifo(self.fifo)
        self.opened = []

    @classmethod
    def _hook(cls, event, args):
        watch = cls._active
        if watch is None or event != "open" or not args or not isinstance(args[0], str | bytes):
            return
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(str(watch.outside) + os.sep):
            watch.opened.append(path)

    @contextlib.contextmanager
    def watching(self, pipes=()):
        """Watch the FIFO outside, and ``pipes`` (which must not be opened either)."""
        stop = self.outside.parent / "stop-watching"
        stop.unlink(missing_ok=True)
        watcher = subprocess.Popen(
            [sys.executable, "-S", "-c", PIPE_WATCHER, str(stop), str(self.fifo), *map(str, pipes)],
            stdout=subprocess.PIPE,
            text=True,
        )
        OutsideWatch._active = self
        try:
            yield self
        finally:
            OutsideWatch._active = None
            stop.touch()
            output, _ = watcher.communicate(timeout=30)
            self.opened += [line for line in output.splitlines() if line]


sys.addaudithook(OutsideWatch._hook)


def digests(folder):
    """sha256 of every regular file under ``folder`` (symbolic links not followed)."""
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def sandbox(tmp_path):
    """``(work, watch)``: a work folder and a watch over an 'outside' folder beside it."""
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    return work, OutsideWatch(outside)


def fresh(folder):
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# ----------------------------------------------------------------------------- files
def _fits_bytes():
    from astropy.io import fits

    buffer = io.BytesIO()
    image = np.arange(64, dtype=">f4").reshape(8, 8)
    fits.HDUList([fits.PrimaryHDU(image), fits.ImageHDU(image, name="R")]).writeto(buffer)
    return buffer.getvalue()


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _hdf5_bytes(tmp):
    import h5py

    path = Path(tmp) / "seed.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.arange(4 * 64, dtype="f4").reshape(4, 8, 8))
        f.create_dataset("labels", data=np.array([b"a", b"b", b"a", b"b"]))
    return path.read_bytes()


def _png_bytes():
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _sdss_bytes():
    dtype = [("objID", "i8"), ("image", "f4", (2, 8, 8)), ("class", "U6"), ("z", "f8")]
    objects = np.zeros(3, dtype=dtype)
    objects["class"] = ["STAR", "GALAXY", "STAR"]
    return _npy_bytes(objects)


@st.composite
def damaged(draw, seed):
    """A valid file's bytes, damaged: truncated, bytes flipped or inserted, or replaced."""
    data = bytearray(seed)
    how = draw(st.sampled_from(["truncate", "flip", "insert", "random", "header"]))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= draw(st.integers(1, 255))
        return bytes(data)
    if how == "insert":
        position = draw(st.integers(0, len(data)))
        return bytes(data[:position] + draw(st.binary(min_size=1, max_size=64)) + data[position:])
    if how == "header":  # damage only the first kilobyte, where sizes and types are declared
        position = draw(st.integers(0, min(1023, len(data) - 1)))
        data[position] = draw(st.integers(0, 255))
        return bytes(data)
    return draw(st.binary(max_size=4096))


LOADER_ERRORS = (DataLoadError, ValueError, KeyError, FileNotFoundError)


def _load_everything(loader, path):
    """Call a loader and read every image it returns (lazy arrays included)."""
    data = loader(path)
    images = data["images"]
    return np.asarray(images[: len(images)])


def _check_loader(loader, path, watch):
    before = digests(path.parent)
    with watch.watching():
        try:
            images = _load_everything(loader, path)
        except LOADER_ERRORS as exc:
            assert str(exc), f"{type(exc).__name__} without a message"
            if isinstance(exc, DataLoadError):
                assert str(path.name) in str(exc)
        else:
            # (n, C, H, W), or (n, H, W) from a plain .npy array, of real numbers
            assert images.ndim in (3, 4) and images.dtype.kind in "biuf"
    assert digests(path.parent) == before, "a loader changed its input"
    assert not watch.opened


@BOUNDED
@given(data=st.data())
def test_damaged_fits_files_fail_cleanly(sandbox, data):
    from skastro.datasets import load_fits, open_data

    work, watch = sandbox
    path = fresh(work / "fits") / "image.fits"
    path.write_bytes(data.draw(damaged(_fits_bytes())))
    _check_loader(load_fits, path, watch)
    _check_loader(open_data, path, watch)


@BOUNDED
@given(data=st.data())
def test_damaged_npy_files_fail_cleanly(sandbox, data):
    from skastro.datasets import load_sdss_npy, open_data

    work, watch = sandbox
    plain = fresh(work / "plain") / "images.npy"
    plain.write_bytes(data.draw(damaged(_npy_bytes(np.ones((4, 8, 8), "f4")))))
    _check_loader(open_data, plain, watch)
    sdss = fresh(work / "sdss") / "objects.npy"
    sdss.write_bytes(data.draw(damaged(_sdss_bytes())))
    _check_loader(load_sdss_npy, sdss, watch)


@BOUNDED
@given(data=st.data())
def test_damaged_hdf5_files_fail_cleanly(sandbox, data, tmp_path_factory):
    from skastro.datasets import load_hdf5, open_data

    work, watch = sandbox
    seed = _hdf5_bytes(tmp_path_factory.mktemp("seed"))
    path = fresh(work / "h5") / "images.h5"
    path.write_bytes(data.draw(damaged(seed)))
    _check_loader(load_hdf5, path, watch)
    _check_loader(open_data, path, watch)


@BOUNDED
@given(data=st.data())
def test_damaged_png_files_fail_cleanly(sandbox, data):
    from skastro.datasets import load_image_folder, open_data

    work, watch = sandbox
    path = fresh(work / "png") / "image.png"
    path.write_bytes(data.draw(damaged(_png_bytes())))
    _check_loader(load_image_folder, path, watch)
    _check_loader(open_data, path, watch)


@BOUNDED
@given(
    n_bad=st.integers(1, 4),
    kind=st.sampled_from([".fits", ".npy", ".png"]),
    link=st.booleans(),
)
def test_folders_report_every_bad_file_and_never_open_special_files(sandbox, n_bad, kind, link):
    from skastro.datasets import open_data

    work, watch = sandbox
    folder = fresh(work / "folder")
    good = {".fits": _fits_bytes(), ".npy": _sdss_bytes(), ".png": _png_bytes()}[kind]
    (folder / f"good{kind}").write_bytes(good)
    for i in range(n_bad):
        (folder / f"bad{i}{kind}").write_bytes(b"damaged" * (i + 1))
    if link:  # a link to a pipe outside: never a data file, never opened
        os.symlink(watch.fifo, folder / f"pipe{kind}")
    before = digests(folder)
    with watch.watching():
        with pytest.raises(DataLoadError) as error:
            open_data(folder)
        assert [Path(name).name for name, _ in error.value.failures] == [
            f"bad{i}{kind}" for i in range(n_bad)
        ]
        with pytest.warns(UserWarning, match=f"skipped {n_bad} unreadable"):
            skipped = open_data(folder, skip_bad=True)
    assert len(skipped.skipped) == n_bad
    assert digests(folder) == before
    assert not watch.opened


# ----------------------------------------------------------------------------- model folders
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from skastro import ConvAutoencoder

    X = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    model = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, random_state=0)
    folder = model.fit(X).save(tmp_path_factory.mktemp("saved") / "model")
    return folder, X


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([0, -1, 1, 2, 7, 2**31, 2**63, 2**80, 10**9, 10**12, -(10**9)])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [
            "",
            "x",
            "meta",
            "cuda:99",
            "..",
            "../outside/secret.fifo",
            "/etc/passwd",
            "weights.safetensors",
            "history.json",
            "__dict__",
            "os.system",
        ]
    )
    | st.sampled_from(
        [
            {"__float__": "nan"},
            {"__float__": "inf"},
            {"__tuple__": [10**6]},
            {"__estimator__": "../outside"},
            {"__array__": "a9"},
            {"__strings__": ["a"], "dtype": "U999999"},
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "__dict__", "__tuple__", "x"]), children, max_size=3
        )
    ),
    max_leaves=8,
)

# where a mutation of model.json lands
FIELDS = [
    ("params", "n_components"), ("params", "widths"), ("params", "batch_size"),
    ("params", "lr"), ("params", "device"), ("params", "random_state"), ("params", "callbacks"),
    ("params", "image_shape"), ("params", "max_epochs"), ("params", "nan_policy"),
    ("network", "image_shape"), ("network", "n_features_in"), ("network", "channel_mean"),
    ("network", "channel_std"), ("network", "seed"), ("network", "epochs"),
    ("files", "weights"), ("files", "history"), ("files", "arrays"), ("files", "optimizer"),
    ("fitted_state", "__dict__"), ("fitted_state", "transform"),
    (None, "class"), (None, "fitted"), (None, "format_version"), (None, "network"),
    (None, "params"), (None, "files"), (None, "fitted_state"), (None, "versions"),
]  # fmt: skip


def _mutate_json(folder, section, key, value):
    model_json = folder / "model.json"
    info = json.loads(model_json.read_text())
    target = info if section is None else info.setdefault(section, {})
    if not isinstance(target, dict):
        return
    if value is _DELETE:
        target.pop(key, None)
    else:
        target[key] = value
    model_json.write_text(json.dumps(info))


_DELETE = object()


def _damage_file(folder, outside_fifo, name, how, cut):
    path = folder / name
    if how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
    elif how == "flip":
        data = bytearray(path.read_bytes())
        data[int((len(data) - 1) * cut)] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "link outside":
        path.unlink()
        os.symlink(outside_fifo, path)
    elif how == "link /dev/zero":
        path.unlink()
        os.symlink("/dev/zero", path)
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "folder":
        path.unlink()
        path.mkdir()


def _load_and_use(folder, X):
    """``skastro.load``; when it succeeds the model must give finite embeddings."""
    import skastro

    model = skastro.load(folder)
    try:
        Z = model.transform(X)
    except ValueError:  # e.g. a valid image_shape that does not match X: a clear refusal
        return
    assert np.isfinite(Z).all(), "a loaded model returned NaN or inf"


def _check_model_folder(folder, X, watch, pipes=()):
    before = digests(folder)
    with watch.watching():
        try:
            _load_and_use(folder, X)
        except ModelFormatError as exc:
            # the file at fault is named
            assert any(name in str(exc) for name in ("model.json", ".safetensors", "history"))
    assert digests(folder) == before, "loading changed the model folder"
    assert not watch.opened, f"opened outside the model folder: {watch.opened}"


@BOUNDED
@given(
    field=st.sampled_from(FIELDS),
    value=JSON_VALUES | st.just(_DELETE),
)
def test_mutated_model_json_fails_with_model_format_error(sandbox, saved_model, field, value):
    work, watch = sandbox
    source, X = saved_model
    folder = work / "model"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    _mutate_json(folder, *field, value)
    _check_model_folder(folder, X, watch)


@BOUNDED
@given(
    name=st.sampled_from(["weights.safetensors", "history.json", "model.json"]),
    how=st.sampled_from(["truncate", "flip", "link outside", "link /dev/zero", "folder"]),
    cut=st.floats(0.0, 1.0),
)
def test_damaged_model_files_fail_with_model_format_error(sandbox, saved_model, name, how, cut):
    work, watch = sandbox
    source, X = saved_model
    folder = work / "model"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    _damage_file(folder, watch.fifo, name, how, cut)
    _check_model_folder(folder, X, watch)


def test_named_pipes_inside_a_model_folder_are_never_opened(sandbox, saved_model):
    work, watch = sandbox
    source, X = saved_model
    for name in ("weights.safetensors", "history.json", "model.json"):
        folder = work / name
        shutil.copytree(source, folder)
        _damage_file(folder, watch.fifo, name, "fifo", 0)
        # reading a pipe would block for ever: the watcher unblocks it and records the open
        with watch.watching(pipes=[folder / name]), pytest.raises(ModelFormatError, match="pipe"):
            _load_and_use(folder, X)
        assert not watch.opened, f"{name}, a named pipe, was opened"


# ----------------------------------------------------------------------------- estimators
PARAMETER_VALUES = st.sampled_from(
    [
        True,
        False,
        0,
        -1,
        2.5,
        float("nan"),
        float("inf"),
        10**7,
        10**12,
        2**80,
        "8",
        "",
        [],
        [4],
        (),
        ("a",),
        (10**6,),
        None,
        {"a": 1},
        "meta",
    ]
)


@BOUNDED
@given(
    name=st.sampled_from(
        [
            "n_components",
            "widths",
            "batch_size",
            "max_epochs",
            "lr",
            "weight_decay",
            "device",
            "random_state",
            "image_shape",
            "nan_policy",
            "callbacks",
            "mse_weight",
        ]
    ),
    value=PARAMETER_VALUES,
)
def test_absurd_parameters_fail_fast_with_a_clear_error(name, value):
    from sklearn.utils._param_validation import InvalidParameterError

    from skastro import ConvAutoencoder

    X = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    params = {"n_components": 2, "widths": (4,), "max_epochs": 1, "batch_size": 8, name: value}
    started = time.perf_counter()
    try:
        Z = ConvAutoencoder(**params).fit(X).transform(X)
    except (InvalidParameterError, ValueError, TypeError) as exc:
        assert str(exc)
    else:
        assert np.isfinite(Z).all()
        if isinstance(value, bool):
            pytest.fail(f"{name}={value!r} was accepted")
    assert time.perf_counter() - started < 30, "refusing a parameter took too long"


# ----------------------------------------------------------------------------- command line
@BOUNDED
@given(data=st.data())
def test_cli_reports_garbage_inputs_in_one_line(sandbox, saved_model, data, capsys):
    from skastro.cli import main

    work, watch = sandbox
    source, _ = saved_model
    root = fresh(work / "cli")
    garbage = root / data.draw(st.sampled_from(["z.npz", "z.npy", "z.csv", "d.fits", "d.h5"]))
    garbage.write_bytes(data.draw(st.binary(max_size=512)))
    model = root / "model"
    shutil.copytree(source, model)
    if data.draw(st.booleans()):
        _mutate_json(model, *data.draw(st.sampled_from(FIELDS)), data.draw(JSON_VALUES))
    command = data.draw(st.sampled_from(["embed", "cluster", "explore"]))
    out = root / "out"
    argv = {
        "embed": ["embed", model, garbage, "--out", out.with_suffix(".npz")],
        "cluster": ["cluster", garbage, "--out", out.with_suffix(".csv")],
        "explore": ["explore", garbage, "--save-html", out.with_suffix(".html")],
    }[command]
    before = digests(root)
    capsys.readouterr()
    with watch.watching():
        status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    if status != 0:
        lines = [line for line in err.splitlines() if line.startswith(f"skastro {command}: ")]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"skastro {command}: error: ")
        assert "internal error" not in err and "Traceback" not in err, err
    after = {p: d for p, d in digests(root).items() if p in before}
    assert after == before, "an input changed"
    assert not watch.opened


# ----------------------------------------------------------------------------- explorer
@pytest.fixture(scope="module")
def explorer_client():
    from skastro.explorer import Explorer

    images = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    app = Explorer(images, labels=np.arange(30) % 2).make_app()
    return app, app.server.test_client()


@BOUNDED
@given(data=st.data())
def test_explorer_callbacks_never_answer_500(explorer_client, data):
    import logging

    app, client = explorer_client
    output = data.draw(st.sampled_from(sorted(app.callback_map)))
    spec = app.callback_map[output]

    def entry(item):
        return {"id": item["id"], "property": item["property"], "value": data.draw(JSON_VALUES)}

    declared = [
        dict(zip(("id", "property"), name.rsplit(".", 1)))
        for name in (output.strip(".").split("...") if output.startswith("..") else [output])
    ]
    body = {
        "output": output,
        "outputs": declared if output.startswith("..") else declared[0],
        "inputs": [entry(i) for i in spec["inputs"]],
        "state": [entry(s) for s in spec["state"]],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in spec["inputs"][:1]],
    }
    if data.draw(st.booleans()):  # or break the envelope itself
        body = data.draw(JSON_VALUES)
    logging.disable(logging.CRITICAL)
    try:
        status = client.post("/_dash-update-component", json=body).status_code
    finally:
        logging.disable(logging.NOTSET)
    assert status < 500
