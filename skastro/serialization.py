"""Pickle-free model files: ``estimator.save(path)`` and ``skastro.load(path)``.

A saved model is a directory:

``model.json``
    The format name and version, the estimator's class, its parameters, whether it is
    fitted, the image shape and per-channel input statistics, the skastro / torch / numpy
    versions that wrote it, and any extra fitted state (``_fitted_state``).
``weights.safetensors``
    The network's ``state_dict`` (tensors only: loading it cannot run code).
``history.json``
    skorch's training history, one row per epoch.
``arrays.safetensors``
    Numeric arrays found in parameters or fitted state (only when there are some).
``optimizer.pt``
    Optimizer state, written for training checkpoints only; read back with
    ``torch.load(weights_only=True)``, whose restricted unpickler only builds tensors and
    plain containers.
``parts/<name>/``
    A skastro estimator passed as a parameter (e.g. ``feature_extractor``), saved the same way.

Loading never unpickles and never imports a class named in a file: the class must be one of
skastro's own public estimators, looked up in :data:`skastro._registry.PUBLIC`. This module
only reads and writes files: the network itself is handed over and rebuilt by the estimator
(``_network_state`` / ``_restore_network`` in :mod:`skastro.base`). Pickle and
joblib keep working for those who prefer them (and for estimators this format cannot hold).
"""

import contextlib
import json
import math
import numbers
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from skastro._registry import public_class
from skastro.exceptions import ModelFormatError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "decode_parameter", "load", "save"]

FORMAT_NAME = "skastro-model"
# Bump when a change makes older readers misread new files; readers accept every version in
# _READABLE_VERSIONS and refuse the rest with a clear message.
FORMAT_VERSION = 1
_READABLE_VERSIONS = (1,)

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
ARRAYS_FILE = "arrays.safetensors"
HISTORY_FILE = "history.json"
OPTIMIZER_FILE = "optimizer.pt"
PARTS_DIR = "parts"
# estimators saved inside estimators (parameters such as feature_extractor), at most this deep
_MAX_DEPTH = 8

# tags of values JSON cannot hold directly
_TUPLE, _FLOAT, _ARRAY, _STRINGS, _DICT, _ESTIMATOR = (
    "__tuple__",
    "__float__",
    "__array__",
    "__strings__",
    "__dict__",
    "__estimator__",
)
_TAGS = (_TUPLE, _FLOAT, _ARRAY, _STRINGS, _DICT, _ESTIMATOR)


# ---------------------------------------------------------------------------------- classes
def _is_saveable_estimator(value):
    cls = public_class(type(value).__name__)
    return cls is not None and type(value) is cls


def _is_deep(estimator):
    # a deep estimator knows how to hand over and rebuild its network (skastro.base)
    return hasattr(estimator, "_network_state") and hasattr(estimator, "_restore_network")


def _is_fitted(estimator):
    if _is_deep(estimator):
        return estimator._is_fitted()
    from sklearn.utils.validation import _is_fitted

    return bool(_is_fitted(estimator))


# ---------------------------------------------------------------------------------- encoding
class _Encoder:
    """Turn parameters and fitted state into JSON, collecting arrays and sub-estimators."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.arrays = {}
        self.part_names = set()

    def encode(self, value, where):
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            value = float(value)
            # strict JSON has no NaN/inf; keep them as tagged strings
            return value if math.isfinite(value) else {_FLOAT: repr(value)}
        if isinstance(value, np.str_):
            return str(value)
        if isinstance(value, tuple):
            return {_TUPLE: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: a dict with keys that are not strings")
            return {_DICT: {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if _is_saveable_estimator(value):
            return {_ESTIMATOR: self._save_part(value, where)}
        raise TypeError(self._refusal(value, where))

    def _encode_array(self, array, where):
        if array.dtype.kind in "biuf":
            key = f"a{len(self.arrays)}"
            self.arrays[key] = np.ascontiguousarray(array)
            return {_ARRAY: key}
        if array.dtype.kind in "US":
            return {_STRINGS: array.astype(str).tolist(), "dtype": array.dtype.str}
        raise TypeError(
            f"cannot save {where}: an array of dtype {array.dtype} (only numbers and strings "
            "are stored without pickle)"
        )

    def _save_part(self, estimator, where):
        # "parameter 'estimator'" -> parameter_estimator, "fitted state 'm'[0]" -> fitted_state_m_0
        base = re.sub(r"[^A-Za-z0-9]+", "_", where).strip("_") or "part"
        name, i = base, 1
        while name in self.part_names:
            i += 1
            name = f"{base}_{i}"
        self.part_names.add(name)
        relative = f"{PARTS_DIR}/{name}"
        _write_estimator(estimator, self.folder / relative, where=where)
        return relative

    @staticmethod
    def _refusal(value, where):
        kind = type(value).__name__
        if where.startswith("parameter 'callbacks'"):
            hint = (
                "callbacks are code and are not saved; call "
                "estimator.set_params(callbacks=None) before saving, or use pickle/joblib"
            )
        elif isinstance(value, np.random.RandomState | np.random.Generator):
            hint = "pass an int seed instead, or use pickle/joblib"
        elif hasattr(value, "get_params"):
            hint = (
                "only skastro's own public estimators can be saved inside a model file; "
                "use pickle/joblib to save this one"
            )
        else:
            hint = "only JSON data, numeric arrays and skastro estimators are stored"
        return (
            f"cannot save {where}: {kind} objects are not stored in the pickle-free format ({hint})"
        )


class _Decoder:
    """Inverse of :class:`_Encoder`; sub-estimators are loaded from their sub-folder."""

    def __init__(self, folder, arrays, depth=0, device=None):
        self.folder = Path(folder)
        self.arrays = arrays
        self.depth = depth
        # an explicit device given to load() applies to every network in the file, e.g. to
        # each member of a KFoldEnsemble
        self.device = device

    def decode(self, value):
        try:
            return self._decode(value)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            raise ModelFormatError(f"{self.folder / MODEL_FILE} is damaged: {exc!r}") from exc

    def _decode(self, value):
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        tags = [tag for tag in _TAGS if tag in value]
        if len(tags) != 1:
            raise ModelFormatError(f"unexpected JSON object in {MODEL_FILE}: {value!r:.200}")
        tag = tags[0]
        inner = value[tag]
        if tag == _TUPLE:
            return tuple(self._decode(v) for v in inner)
        if tag == _FLOAT:
            return float(str(inner))
        if tag == _DICT:
            return {k: self._decode(v) for k, v in inner.items()}
        if tag == _STRINGS:
            dtype = np.dtype(str(value.get("dtype", "U")))
            if dtype.kind not in "US":
                raise ModelFormatError(f"unexpected string array dtype {dtype} in a model file")
            return np.asarray(inner, dtype=dtype)
        if tag == _ARRAY:
            if inner not in self.arrays:
                raise ModelFormatError(f"array {inner!r} is missing from {ARRAYS_FILE}")
            return self.arrays[inner]
        if self.depth >= _MAX_DEPTH:
            raise ModelFormatError(f"estimators nested more than {_MAX_DEPTH} deep in a model file")
        return _read_estimator(
            _inside(self.folder, inner), device=self.device, depth=self.depth + 1
        )


def decode_parameter(value):
    """A parameter value as ``model.json`` stores it, decoded (JSON data and tuples only).

    Arrays and nested estimators live in other files and are refused here with a
    :class:`~skastro.exceptions.ModelFormatError`.

    Examples
    --------
    >>> decode_parameter({"__tuple__": [16, 32]})
    (16, 32)
    """
    return _Decoder(".", {}).decode(value)


def _inside(folder, relative):
    """``folder / relative``, refusing paths that leave ``folder`` (a crafted file)."""
    if not isinstance(relative, str) or os.path.isabs(relative) or ".." in Path(relative).parts:
        raise ModelFormatError(f"refusing the path {relative!r} named in a model file")
    return Path(folder) / relative


# ---------------------------------------------------------------------------------- writing
def save(estimator, path):
    """Save an estimator to a directory, in a format that loads without pickle.

    Parameters
    ----------
    estimator : skastro estimator
        One of skastro's public estimators, fitted or not. Parameters must be JSON data
        (numbers, strings, tuples, lists, dicts), numeric arrays or skastro estimators;
        others (e.g. ``callbacks``) are refused with an error naming the parameter.
    path : str or path-like
        Directory to create, or whose model files are replaced.

    Returns
    -------
    path : pathlib.Path
        The directory.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skastro import ConvAutoencoder, load
    >>> X = np.random.default_rng(0).random((16, 1, 16, 16), dtype=np.float32)
    >>> ae = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1, random_state=0).fit(X)
    >>> folder = tempfile.mkdtemp()
    >>> ae2 = load(save(ae, folder))
    >>> bool(np.array_equal(ae.transform(X), ae2.transform(X)))
    True
    """
    return _write_estimator(estimator, Path(path), where="the estimator")


def save_training_state(estimator, net, path, params=None):
    """Save an estimator in the middle of training, with its optimizer state (a checkpoint).

    Used by the command line's per-epoch checkpoints: ``estimator`` is being fitted, so its
    net is passed explicitly, epochs that did not finish are left out of the history, and
    fitted state that only exists after training (``_fitted_state`` raising
    ``AttributeError``) is skipped. ``params`` overrides parameters in the file (the
    checkpoint callback itself must not be saved as a parameter).

    Parameters
    ----------
    estimator : DeepEstimator
    net : skorch.NeuralNet
        The net being trained (``estimator.net_`` once fitted).
    path : str or path-like
        Directory to write.
    params : dict or None
        Parameter values to store instead of the estimator's own.

    Returns
    -------
    path : pathlib.Path
    """
    return _write_estimator(
        estimator, Path(path), where="the estimator", net=net, params=params, checkpoint=True
    )


def _versions():
    import torch

    import skastro

    return {
        "skastro": skastro.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


def _write_estimator(estimator, folder, *, where, net=None, params=None, checkpoint=False):
    if not _is_saveable_estimator(estimator):
        raise TypeError(
            f"cannot save {where}: {type(estimator).__name__} is not one of skastro's public "
            "estimators; the pickle-free format only builds those when loading (use "
            "pickle/joblib for other objects)"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = _Encoder(folder)
    all_params = estimator.get_params(deep=False)
    all_params.update(params or {})
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "versions": _versions(),
        "params": {k: encoder.encode(v, f"parameter {k!r}") for k, v in all_params.items()},
        "fitted": bool(net is not None or _is_fitted(estimator)),
    }
    files = {}
    if _is_deep(estimator) and meta["fitted"]:
        meta["network"], files = _write_network(estimator, net, folder, checkpoint)
    if meta["fitted"]:
        meta["fitted_state"] = _encode_fitted_state(estimator, encoder, where, checkpoint)
    if encoder.arrays:
        from safetensors.numpy import save_file

        _atomic(folder / ARRAYS_FILE, lambda f: save_file(encoder.arrays, f))
        files["arrays"] = ARRAYS_FILE
    meta["files"] = files
    text = json.dumps(meta, indent=1, allow_nan=False)
    # model.json last: a folder with a model.json always has the files it names
    _atomic(folder / MODEL_FILE, lambda f: Path(f).write_text(text + "\n"))
    return folder


def _encode_fitted_state(estimator, encoder, where, checkpoint):
    if not hasattr(estimator, "_fitted_state"):
        raise TypeError(
            f"cannot save {where}: a fitted {type(estimator).__name__} has no pickle-free "
            "format; save it unfitted (sklearn.base.clone) or use pickle/joblib"
        )
    try:
        state = estimator._fitted_state()
    except AttributeError:
        if not checkpoint:
            raise
        return None  # computed after training; the resumed fit computes it again
    return {k: encoder.encode(v, f"fitted state {k!r}") for k, v in state.items()}


def _write_network(estimator, net, folder, checkpoint):
    import torch
    from safetensors.torch import save_file

    network, weights, history = estimator._network_state(net, checkpoint=checkpoint)
    _atomic(folder / WEIGHTS_FILE, lambda f: save_file(weights, f))
    _atomic(
        folder / HISTORY_FILE,
        lambda f: Path(f).write_text(json.dumps(history, default=_json_default)),
    )
    files = {"weights": WEIGHTS_FILE, "history": HISTORY_FILE}
    if checkpoint:
        optimizer_state = (estimator.net_ if net is None else net).optimizer_.state_dict()
        _atomic(folder / OPTIMIZER_FILE, lambda f: torch.save(optimizer_state, f))
        files["optimizer"] = OPTIMIZER_FILE
    return network, files


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "item"):  # a 0-d tensor
        return value.item()
    return str(value)


def _atomic(target, write):
    """Write through a temporary file in the same folder, then rename it into place."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------- reading
def load(path, *, device=None):
    """Load an estimator saved with ``estimator.save(path)``, without unpickling anything.

    Parameters
    ----------
    path : str or path-like
        The model directory (or its ``model.json``).
    device : str or None, default=None
        Where to put the network: ``"cpu"``, ``"cuda"``, ``"auto"``. None uses the saved
        ``device`` parameter, falling back to the CPU (with a warning) when it names a GPU
        this machine does not have.

    Returns
    -------
    estimator : skastro estimator
        Fitted if it was saved fitted; ``transform`` gives the same output as before saving.

    Raises
    ------
    skastro.exceptions.ModelFormatError
        The folder holds no model, a damaged one, one written in a format version this
        skastro cannot read, or one naming a class that is not a skastro estimator.

    Examples
    --------
    >>> import tempfile
    >>> from skastro import ConvAutoencoder, load
    >>> folder = ConvAutoencoder(n_components=3).save(tempfile.mkdtemp())
    >>> load(folder).n_components
    3
    """
    return load_training_state(path, device=device)


def load_training_state(path, *, device=None, params=None):
    """Load a model or checkpoint, overriding some parameters before its net is rebuilt.

    Like :func:`load`, and the optimizer state is restored when the folder has one, so
    ``partial_fit`` continues training where the checkpoint stopped. ``params`` (e.g.
    ``callbacks``, ``verbose``, ``max_epochs``) are set before the skorch net is built, so
    they take effect in the net too.

    Parameters
    ----------
    path : str or path-like
    device : str or None
    params : dict or None

    Returns
    -------
    estimator : skastro estimator
    """
    path = Path(path)
    if path.name == MODEL_FILE and path.is_file():
        path = path.parent
    return _read_estimator(path, device=device, params=params)


def read_model_info(path):
    """Return the parsed, checked ``model.json`` of a model directory (nothing is built).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    info : dict
    """
    folder = Path(path)
    model_file = folder / MODEL_FILE
    if not model_file.is_file():
        what = "folder" if folder.is_dir() else "path"
        raise ModelFormatError(
            f"no skastro model in {folder}: the {what} has no {MODEL_FILE} "
            "(save one with estimator.save(path) or `skastro fit ... --out PATH`)"
        )
    try:
        meta = json.loads(model_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{model_file} is damaged: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{model_file} is not a skastro model file")
    version = meta.get("format_version")
    if version not in _READABLE_VERSIONS:
        written_by = meta.get("versions", {}).get("skastro", "an unknown version")
        import skastro

        if isinstance(version, int) and version > FORMAT_VERSION:
            advice = "upgrade skastro to load it"
        else:
            advice = "load it with the skastro version that wrote it and save it again"
        raise ModelFormatError(
            f"{folder} holds a model in format version {version!r} (written by skastro "
            f"{written_by}), but skastro {skastro.__version__} reads format version(s) "
            f"{', '.join(map(str, _READABLE_VERSIONS))}; {advice}"
        )
    return meta


def _read_estimator(folder, device=None, params=None, depth=0):
    folder = Path(folder)
    meta = read_model_info(folder)
    files = meta.get("files", {})
    name = meta.get("class")
    cls = public_class(name)
    if cls is None:
        raise ModelFormatError(
            f"{folder / MODEL_FILE} names the class {name!r}, which is not one of skastro's "
            "public estimators (only those are built when loading)"
        )
    arrays = {}
    if "arrays" in files:
        from safetensors.numpy import load_file

        arrays = load_file(_inside(folder, files["arrays"]))
    decoder = _Decoder(folder, arrays, depth, device)
    values = {k: decoder.decode(v) for k, v in meta.get("params", {}).items()}
    known = cls().get_params(deep=False)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ModelFormatError(
            f"{folder} sets parameter(s) {unknown} that {name} does not have (written by "
            f"skastro {meta.get('versions', {}).get('skastro')}); load it with that version"
        )
    values.update(params or {})
    if device is not None and "device" in known:
        # estimators without a network (KFoldEnsemble, the feature transformers) have no
        # device; their members get it through the decoder
        values["device"] = device
    estimator = cls(**values)
    if not meta.get("fitted"):
        return estimator
    if "network" in meta:
        _restore_network(estimator, meta["network"], folder, files, explicit=device is not None)
    state = meta.get("fitted_state")
    if state is not None:
        estimator._restore_fitted_state({k: decoder.decode(v) for k, v in state.items()})
    elif not _is_deep(estimator):
        raise ModelFormatError(f"{folder} is marked fitted but holds no fitted state")
    return estimator


def _restore_network(estimator, network, folder, files, explicit):
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_file = _inside(folder, files.get("weights", WEIGHTS_FILE))
    try:
        weights = load_file(weights_file, device="cpu")
    except (OSError, SafetensorError) as exc:
        raise ModelFormatError(f"cannot read the weights {weights_file}: {exc}") from exc
    history = None
    history_file = folder / files.get("history", HISTORY_FILE)
    if history_file.is_file():
        try:
            history = json.loads(history_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{history_file} is damaged: {exc}") from exc
    optimizer_state = None
    if "optimizer" in files:
        optimizer_file = _inside(folder, files["optimizer"])
        try:
            # weights_only=True: a restricted unpickler that only builds tensors and containers
            optimizer_state = torch.load(optimizer_file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelFormatError(
                f"cannot read the optimizer state {optimizer_file}: {exc}"
            ) from exc
    try:
        estimator._restore_network(
            network,
            weights,
            history=history,
            optimizer_state=optimizer_state,
            device_given=explicit,
        )
    except ModelFormatError as exc:
        raise ModelFormatError(f"{folder / MODEL_FILE}: {exc}") from exc
