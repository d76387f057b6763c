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
skastro's own public estimators, looked up in :data:`skastro._registry.PUBLIC`. Everything is
checked before anything large is allocated: every file named in ``model.json`` must resolve
(symbolic links followed) to a regular file inside the folder; JSON files have size and depth
limits (:data:`MAX_MODEL_BYTES`, :data:`MAX_HISTORY_BYTES`, :data:`MAX_JSON_DEPTH`); parameters
go through the estimator's own constraints; the network's size is estimated and refused above
:data:`skastro._limits.MAX_PARAMETERS` before it is built; input statistics and weights must be
finite; and only the fitted attributes the estimator itself saves are restored. Every failure
is a :class:`~skastro.exceptions.ModelFormatError` naming the file and the field. This module
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
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

from skastro._limits import MAX_PARAMETERS, check_image_shape, check_network_size
from skastro._permissions import match_permissions
from skastro._registry import public_class
from skastro._validation import check_widths
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

# Limits on what a model folder may hold, checked before a file is read (documented in
# docs/user_guide/saving.rst, "What loading checks").
MAX_MODEL_BYTES = 16 * 2**20
MAX_HISTORY_BYTES = 256 * 2**20
MAX_JSON_DEPTH = 64
# a safetensors file holds at most MAX_PARAMETERS values of at most 8 bytes, plus its header
_MAX_SAFETENSORS_HEADER = 100 * 2**20
_MAX_TENSOR_FILE_BYTES = 8 * MAX_PARAMETERS + _MAX_SAFETENSORS_HEADER
_MAX_STRING_BYTES = 2**20
_FLOAT32_MAX = float(np.finfo(np.float32).max)

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

    def decode(self, value, field="value"):
        """Decode ``value``; ``field`` names it in error messages (``params.widths``)."""
        try:
            return self._decode(value, field)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            raise _invalid(self.folder / MODEL_FILE, field, f"cannot be decoded ({exc})") from exc

    def _decode(self, value, field):
        if isinstance(value, list):
            return [self._decode(v, field) for v in value]
        if not isinstance(value, dict):
            return value
        tags = [tag for tag in _TAGS if tag in value]
        if len(tags) != 1:
            raise _invalid(
                self.folder / MODEL_FILE, field, f"holds an unexpected JSON object {value!r:.200}"
            )
        tag = tags[0]
        inner = value[tag]
        if tag == _TUPLE:
            if not isinstance(inner, list):
                raise TypeError(f"a tuple must be stored as a list, got {inner!r:.100}")
            return tuple(self._decode(v, field) for v in inner)
        if tag == _FLOAT:
            if not isinstance(inner, str):
                raise TypeError(f"a tagged float must be text, got {inner!r:.100}")
            return float(inner)
        if tag == _DICT:
            if not isinstance(inner, dict):
                raise TypeError(f"a dict must be stored as an object, got {inner!r:.100}")
            return {k: self._decode(v, f"{field}.{k}") for k, v in inner.items()}
        if tag == _STRINGS:
            dtype = np.dtype(str(value.get("dtype", "U")))
            if dtype.kind not in "US" or dtype.itemsize > _MAX_STRING_BYTES:
                raise ValueError(f"unexpected string array dtype {dtype}")
            return np.asarray(inner, dtype=dtype)
        if tag == _ARRAY:
            if not isinstance(inner, str) or inner not in self.arrays:
                raise _invalid(
                    self.folder / MODEL_FILE,
                    field,
                    f"names an array {inner!r:.100} that {ARRAYS_FILE} does not hold",
                )
            return self.arrays[inner]
        if self.depth >= _MAX_DEPTH:
            raise _invalid(
                self.folder / MODEL_FILE,
                field,
                f"nests estimators more than {_MAX_DEPTH} deep",
            )
        part = _inside(self.folder, inner, field=field, kind="folder")
        return _read_estimator(part, device=self.device, depth=self.depth + 1)


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


def _invalid(file, field, problem):
    """The error for a bad value in a model file: the file, the field, what is wrong."""
    return ModelFormatError(f"{file}: '{field}' {problem}")


def _file_kind(mode):
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _inside(folder, relative, *, field="files", kind="file", max_bytes=None):
    """``folder / relative`` resolved, refusing anything that is not inside ``folder``.

    Symbolic links are followed before the check (``Path.resolve``), so neither ``..`` nor a
    link can make a model file read something elsewhere on the machine. The target must exist
    and be a regular file (or a folder for ``kind="folder"``), of at most ``max_bytes``: a
    named pipe or a device is never opened.
    """
    folder = Path(folder)
    model_file = folder / MODEL_FILE
    if (
        not isinstance(relative, str)
        or not relative
        or "\x00" in relative
        or os.path.isabs(relative)
        or ".." in Path(relative).parts
    ):
        raise _invalid(model_file, field, f"names {relative!r:.200}: refusing the path")
    try:
        root = folder.resolve(strict=True)
        target = (folder / relative).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise _invalid(
            model_file, field, f"names {relative!r}, which cannot be resolved ({exc})"
        ) from None
    if target != root and root not in target.parents:
        raise _invalid(
            model_file,
            field,
            f"names {relative!r}, which leads outside the model folder (to {target}); "
            "refusing the path",
        )
    try:
        mode = target.stat()
    except OSError as exc:
        raise _invalid(
            model_file, field, f"names {relative!r}, which cannot be read ({exc.strerror or exc})"
        ) from exc
    wanted = stat.S_ISDIR if kind == "folder" else stat.S_ISREG
    if not wanted(mode.st_mode):
        raise _invalid(
            model_file,
            field,
            f"names {relative!r}, which is {_file_kind(mode.st_mode)}, not a {kind}",
        )
    if max_bytes is not None and mode.st_size > max_bytes:
        raise _invalid(
            model_file,
            field,
            f"names {relative!r}, a file of {mode.st_size:,} bytes, more than the "
            f"{max_bytes:,} this file can hold",
        )
    return target


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
        # after writing (some writers replace the file): not mkstemp's 0600, which would
        # hide the model from the user's group
        match_permissions(tmp, like=target)
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

    The file is read only if it is a regular file inside the folder, of at most
    :data:`MAX_MODEL_BYTES`, nested at most :data:`MAX_JSON_DEPTH` deep, and its top-level
    fields have the types skastro writes.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    info : dict

    Raises
    ------
    skastro.exceptions.ModelFormatError
        No model in the folder, or a damaged or unreadable ``model.json``.
    """
    folder = Path(path)
    model_file = folder / MODEL_FILE
    if not folder.is_dir() or not os.path.lexists(model_file):
        what = "folder" if folder.is_dir() else "path"
        raise ModelFormatError(
            f"no skastro model in {folder}: the {what} has no {MODEL_FILE} "
            "(save one with estimator.save(path) or `skastro fit ... --out PATH`)"
        )
    resolved = _inside(folder, MODEL_FILE, field=MODEL_FILE, max_bytes=MAX_MODEL_BYTES)
    meta = _read_json(resolved, model_file, allow_nan=False)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{model_file} is not a skastro model file")
    versions = meta.get("versions", {})
    if not isinstance(versions, dict):
        raise _invalid(model_file, "versions", f"must be an object, got {versions!r:.100}")
    version = meta.get("format_version")
    if isinstance(version, bool) or version not in _READABLE_VERSIONS:
        written_by = versions.get("skastro", "an unknown version")
        import skastro

        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            advice = "upgrade skastro to load it"
        else:
            advice = "load it with the skastro version that wrote it and save it again"
        raise ModelFormatError(
            f"{model_file} holds a model in format version {version!r:.50} (written by skastro "
            f"{written_by!s:.50}), but skastro {skastro.__version__} reads format version(s) "
            f"{', '.join(map(str, _READABLE_VERSIONS))}; {advice}"
        )
    expected = {
        "class": (str,),
        "params": (dict,),
        "fitted": (bool,),
        "files": (dict,),
        "network": (dict,),
        "fitted_state": (dict, type(None)),
    }
    for field, types in expected.items():
        if field in meta and not isinstance(meta[field], types):
            names = " or ".join("null" if t is type(None) else _JSON_TYPES[t] for t in types)
            raise _invalid(model_file, field, f"must be {names}, got {meta[field]!r:.100}")
    for name, value in meta.get("files", {}).items():
        if not isinstance(value, str):
            raise _invalid(model_file, f"files.{name}", f"must be a file name, got {value!r:.100}")
    return meta


_JSON_TYPES = {str: "text", dict: "an object", bool: "true or false", list: "a list"}


def _read_json(resolved, shown, *, allow_nan):
    """Parse a JSON file already checked by :func:`_inside`; ``shown`` names it in errors."""
    try:
        text = resolved.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{shown} is damaged: {exc}") from exc

    def refuse_constant(name):
        raise ValueError(f"{name} is not allowed in strict JSON")

    try:
        value = json.loads(text, parse_constant=None if allow_nan else refuse_constant)
    except RecursionError:
        raise ModelFormatError(
            f"{shown} is damaged: it nests lists or objects more than {MAX_JSON_DEPTH} deep"
        ) from None
    except ValueError as exc:  # json.JSONDecodeError too
        raise ModelFormatError(f"{shown} is damaged: {exc}") from exc
    _check_depth(value, shown)
    return value


def _check_depth(value, shown):
    """Refuse JSON nested deeper than :data:`MAX_JSON_DEPTH` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ModelFormatError(
                f"{shown} is damaged: it nests lists or objects more than {MAX_JSON_DEPTH} deep"
            )
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _read_safetensors(folder, relative, field, *, framework):
    """Tensors of a safetensors file inside ``folder``, its header checked before any data.

    The header must describe tensors of known dtypes that together hold at most
    :data:`~skastro._limits.MAX_PARAMETERS` values and end exactly where the file does.
    """
    from safetensors import SafetensorError

    resolved = _inside(folder, relative, field=field, max_bytes=_MAX_TENSOR_FILE_BYTES)
    shown = Path(folder) / relative
    _check_safetensors_header(resolved, shown)
    try:
        if framework == "torch":
            from safetensors.torch import load_file

            return load_file(resolved, device="cpu")
        from safetensors.numpy import load_file

        return load_file(resolved)
    except (OSError, SafetensorError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"cannot read {shown}: {exc}") from exc


_SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def _check_safetensors_header(resolved, shown):
    size = resolved.stat().st_size
    try:
        with open(resolved, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"it has {len(head)} bytes, fewer than a safetensors header")
            length = int.from_bytes(head, "little")
            if length > min(size - 8, _MAX_SAFETENSORS_HEADER):
                raise ValueError(f"its header claims {length:,} bytes; the file has {size:,}")
            header = json.loads(f.read(length).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("its header is not a JSON object")
        total, end = 0, 0
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            if not isinstance(entry, dict):
                raise ValueError(f"tensor {name!r} has no description")
            dtype, shape, offsets = (
                entry.get("dtype"),
                entry.get("shape"),
                entry.get("data_offsets"),
            )
            if dtype not in _SAFETENSORS_DTYPES:
                raise ValueError(f"tensor {name!r} has the unknown dtype {dtype!r}")
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                raise ValueError(f"tensor {name!r} has the invalid shape {shape!r:.100}")
            count = math.prod(shape)
            total += count
            if total > MAX_PARAMETERS:
                raise ValueError(
                    f"its tensors hold more than {MAX_PARAMETERS:,} values "
                    "(skastro._limits.MAX_PARAMETERS)"
                )
            if (
                not isinstance(offsets, list)
                or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or offsets[1] - offsets[0] != count * _SAFETENSORS_DTYPES[dtype]
                or offsets[0] < 0
            ):
                raise ValueError(f"tensor {name!r} has inconsistent data offsets {offsets!r:.100}")
            end = max(end, offsets[1])
        if 8 + length + end != size:
            raise ValueError(
                f"its tensors end at byte {8 + length + end:,} but the file has {size:,} bytes "
                "(truncated or padded)"
            )
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFormatError(
            f"cannot read {shown}: not a valid safetensors file ({exc})"
        ) from None


def _check_finite_tensors(tensors, shown):
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFormatError(
                f"{shown}: tensor {name!r} holds NaN or inf values; the model is damaged (or "
                "was saved after training diverged): fit it again"
            )


def _check_params(estimator, values, model_file):
    """Every parameter read from a file, through the estimator's own constraints."""
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    constraints = getattr(estimator, "_parameter_constraints", {})
    name = type(estimator).__name__
    for key, value in values.items():
        if key == "callbacks" and value is not None:
            raise _invalid(
                model_file,
                f"params.{key}",
                f"is {value!r:.100}: callbacks are code and are never saved in a model file; "
                "the file is damaged or was not written by skastro",
            )
        if key == "device" and value is not None and not _is_device_name(value):
            raise _invalid(
                model_file,
                f"params.{key}",
                f"is {value!r:.100}, not a device skastro runs on ('auto', 'cpu', 'cuda', "
                "'cuda:N', 'mps')",
            )
        if key not in constraints:
            continue
        try:
            validate_parameter_constraints({key: constraints[key]}, {key: value}, name)
        except (InvalidParameterError, ValueError, TypeError) as exc:
            raise _invalid(model_file, f"params.{key}", f"is invalid: {exc}") from exc
    for key in getattr(estimator, "_width_parameters", ()):
        if key in values:
            try:
                check_widths(values[key], key)
            except ValueError as exc:
                raise _invalid(model_file, f"params.{key}", f"is invalid: {exc}") from exc


def _is_device_name(value):
    return isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d{1,3})?", value)


def _check_network_info(info, model_file):
    """The ``network`` block of a fitted deep estimator's ``model.json``, checked field by field."""

    def bad(field, problem):
        return _invalid(model_file, f"network.{field}", problem)

    def is_int(value):
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(value):
        return isinstance(value, int | float) and not isinstance(value, bool)

    missing = [k for k in ("image_shape", "n_features_in", "channel_mean", "channel_std", "seed")
               if k not in info]  # fmt: skip
    if missing:
        raise _invalid(model_file, "network", f"lacks the field(s) {missing}")
    try:
        image_shape = check_image_shape(info["image_shape"], "image_shape")
    except ValueError as exc:
        raise bad("image_shape", f"is invalid: {exc}") from None
    if not is_int(info["n_features_in"]) or info["n_features_in"] != math.prod(image_shape):
        raise bad(
            "n_features_in",
            f"must be {math.prod(image_shape)} (the size of image_shape {image_shape}), got "
            f"{info['n_features_in']!r:.100}",
        )
    n_channels = image_shape[0]
    for field, positive in (("channel_mean", False), ("channel_std", True)):
        values = info[field]
        if (
            not isinstance(values, list)
            or len(values) != n_channels
            or not all(is_number(v) and math.isfinite(v) for v in values)
            or (positive and not all(v > 0 for v in values))
            or not all(abs(v) <= _FLOAT32_MAX for v in values)
        ):
            kind = "finite positive numbers" if positive else "finite numbers"
            raise bad(
                field, f"must hold {n_channels} {kind} (one per channel), got {values!r:.200}"
            )
    seed = info["seed"]
    if not is_int(seed) or not 0 <= seed < 2**63:
        raise bad("seed", f"must be an int in [0, 2**63), got {seed!r:.100}")
    for field, check, what in (
        ("epochs", lambda v: is_int(v) and v >= 0, "a non-negative int"),
        ("interrupted", lambda v: isinstance(v, bool), "true or false"),
        ("checkpoint", lambda v: isinstance(v, bool), "true or false"),
        ("device", lambda v: isinstance(v, str), "text"),
    ):
        if field in info and not check(info[field]):
            raise bad(field, f"must be {what}, got {info[field]!r:.100}")
    return image_shape


def _check_history(history, shown):
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise ModelFormatError(f"{shown} is damaged: it must be a list of epoch rows (objects)")
    for row in history:
        batches = row.get("batches", [])
        if not isinstance(batches, list) or not all(isinstance(b, dict) for b in batches):
            raise ModelFormatError(
                f"{shown} is damaged: 'batches' of epoch {row.get('epoch')!r:.20} must be a list "
                "of objects"
            )


def _read_estimator(folder, device=None, params=None, depth=0):
    folder = Path(folder)
    meta = read_model_info(folder)
    model_file = folder / MODEL_FILE
    files = meta.get("files", {})
    name = meta.get("class")
    cls = public_class(name)
    if cls is None:
        raise ModelFormatError(
            f"{model_file} names the class {name!r:.100}, which is not one of skastro's "
            "public estimators (only those are built when loading)"
        )
    arrays = {}
    if "arrays" in files:
        arrays = _read_safetensors(folder, files["arrays"], "files.arrays", framework="numpy")
    decoder = _Decoder(folder, arrays, depth, device)
    values = {k: decoder.decode(v, f"params.{k}") for k, v in meta.get("params", {}).items()}
    known = cls._get_param_names()  # (cls() would fail for a class with required parameters)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ModelFormatError(
            f"{folder} sets parameter(s) {unknown} that {name} does not have (written by "
            f"skastro {meta.get('versions', {}).get('skastro')!s:.50}); load it with that version"
        )
    try:
        estimator = cls(**values)
    except TypeError as exc:  # e.g. a required parameter missing from a hand-edited file
        raise ModelFormatError(
            f"{model_file}: cannot build {name} from its params ({exc})"
        ) from exc
    _check_params(estimator, values, model_file)
    overrides = dict(params or {})
    if device is not None and "device" in known:
        # estimators without a network (KFoldEnsemble, the feature transformers) have no
        # device; their members get it through the decoder
        overrides["device"] = device
    if overrides:
        estimator.set_params(**overrides)
    if not meta.get("fitted", False):
        return estimator
    deep = _is_deep(estimator)
    if deep and "network" not in meta:
        raise _invalid(
            model_file, "fitted", "is true but the file describes no network ('network' missing)"
        )
    state = meta.get("fitted_state")
    if not deep and state is None:
        raise ModelFormatError(f"{folder} is marked fitted but holds no fitted state")
    if state is not None:
        if not hasattr(estimator, "_restore_fitted_state"):
            raise _invalid(model_file, "fitted", f"is true, but a fitted {name} cannot be loaded")
        allowed = set(getattr(estimator, "_fitted_state_keys", ()))
        for key in state:
            if key not in allowed:
                raise _invalid(
                    model_file,
                    f"fitted_state.{key}",
                    f"is not a fitted attribute of {name} (known: {sorted(allowed)})",
                )
    if deep:
        _restore_network(estimator, meta["network"], folder, files, explicit=device is not None)
    if state is not None:
        decoded = {k: decoder.decode(v, f"fitted_state.{k}") for k, v in state.items()}
        try:
            estimator._restore_fitted_state(decoded)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            detail = f"lacks {exc}" if isinstance(exc, KeyError) else f"is invalid: {exc}"
            raise _invalid(model_file, "fitted_state", detail) from exc
    if deep:
        try:
            estimator._check_restored_network()
        except ModelFormatError as exc:
            raise ModelFormatError(f"{model_file}: {exc}") from exc
    return estimator


def _restore_network(estimator, network, folder, files, explicit):
    model_file = folder / MODEL_FILE
    image_shape = _check_network_info(network, model_file)
    try:
        # before a byte of the weights is read: a crafted size never reaches the allocator
        check_network_size(estimator, image_shape, training=False)
    except ValueError as exc:
        raise _invalid(model_file, "params", f"describe a network that is refused: {exc}") from exc
    weights_name = files.get("weights", WEIGHTS_FILE)
    weights = _read_safetensors(folder, weights_name, "files.weights", framework="torch")
    _check_finite_tensors(weights, folder / weights_name)
    history = None
    history_name = files.get("history", HISTORY_FILE)
    if "history" in files or os.path.lexists(folder / history_name):
        resolved = _inside(folder, history_name, field="files.history", max_bytes=MAX_HISTORY_BYTES)
        history = _read_json(resolved, folder / history_name, allow_nan=True)
        _check_history(history, folder / history_name)
    optimizer_state = None
    if "optimizer" in files:
        import torch

        optimizer_file = _inside(
            folder, files["optimizer"], field="files.optimizer", max_bytes=_MAX_TENSOR_FILE_BYTES
        )
        try:
            # weights_only=True: a restricted unpickler that only builds tensors and containers
            optimizer_state = torch.load(optimizer_file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelFormatError(
                f"cannot read the optimizer state {folder / files['optimizer']}: {exc}"
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
        raise ModelFormatError(f"{model_file}: {exc}") from exc
