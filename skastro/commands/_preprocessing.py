"""``--stretch``: the same image scaling for ``skastro fit``, ``embed`` and ``explore``.

``skastro fit --stretch asinh`` trains on images scaled by
:class:`~skastro.ImageScaler` (``ImageScaler(stretch="asinh")``) and
writes ``preprocessing.json`` into the model folder; ``skastro embed`` and ``skastro explore
--model`` read it back, so a model always sees its images the way it was trained on them.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from skastro._permissions import match_permissions

__all__ = [
    "PREPROCESSING_FILE",
    "STRETCHES",
    "StretchedModel",
    "add_stretch_argument",
    "make_scaler",
    "read_stretch",
    "resolve_stretch",
    "stretch_images",
    "write_stretch",
]

PREPROCESSING_FILE = "preprocessing.json"
STRETCHES = ("asinh", "log", "sqrt", "linear")
# the word that turns the stretch off (embed/explore: a model saved with one)
NONE = "none"


def add_stretch_argument(parser, *, saved_default=False):
    """Add ``--stretch``; with ``saved_default`` its default is the model's own stretch."""
    default_text = (
        "default: the stretch the model was fitted with, none for raw pixels"
        if saved_default
        else "default: none, the pixels as they are"
    )
    parser.add_argument(
        "--stretch",
        choices=(*STRETCHES, NONE),
        default=None,
        help="scale each image to [0, 1] (clipped at its 0.5 and 99.5 percentiles) and stretch "
        "it, as skastro.ImageScaler does; a stretch lifts the sky noise and usually lowers the "
        f"quality of an embedding, so compare with none before keeping it ({default_text})",
    )


def make_scaler(stretch):
    """The :class:`~skastro.ImageScaler` of a ``--stretch`` value (None for none)."""
    if stretch in (None, NONE):
        return None
    from skastro import ImageScaler

    if stretch not in STRETCHES:
        raise ValueError(f"--stretch must be one of {', '.join(STRETCHES)}, got {stretch!r}")
    return ImageScaler(stretch=stretch)


class _ScaledImages:
    """A lazily scaled view of (lazily read) images: rows are scaled as they are read."""

    def __init__(self, images, scaler):
        self._images = images
        self._scaler = scaler
        self.shape = tuple(images.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        batch = np.asarray(self._images[index], dtype=np.float32)
        if batch.ndim == self.ndim - 1:  # one image
            return self._scaler.transform(batch[None])[0]
        return self._scaler.transform(batch)


def stretch_images(images, stretch, chunk=4096):
    """``images`` scaled by the ``--stretch`` value, float32; lazy inputs stay lazy.

    In-memory arrays are scaled at once (chunk by chunk); memory maps and other lazily read
    arrays are wrapped, so that each batch is scaled when the estimator reads it.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).gamma(1.0, size=(3, 1, 8, 8))
    >>> scaled = stretch_images(images, "asinh")
    >>> scaled.dtype.name, float(scaled.min()), float(scaled.max())
    ('float32', 0.0, 1.0)
    >>> stretch_images(images, None) is images
    True
    """
    scaler = make_scaler(stretch)
    if scaler is None:
        return images
    scaler.fit(np.asarray(images[:1], dtype=np.float32))  # per image: nothing is learnt
    if isinstance(images, np.ndarray) and not isinstance(images, np.memmap):
        out = np.empty(images.shape, dtype=np.float32)
        for start in range(0, len(images), chunk):
            out[start : start + chunk] = scaler.transform(
                np.asarray(images[start : start + chunk], dtype=np.float32)
            )
        return out
    return _ScaledImages(images, scaler)


def read_stretch(model_path):
    """The stretch a model folder was fitted with (None when it has no preprocessing file)."""
    path = Path(model_path)
    file = path / PREPROCESSING_FILE if path.is_dir() else None
    if file is None or not file.is_file():
        return None
    try:
        info = json.loads(file.read_text())
        stretch = info["scaler"]["params"]["stretch"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{file} is not a preprocessing file skastro wrote ({exc})") from exc
    if stretch not in STRETCHES:
        raise ValueError(f"{file} names an unknown stretch {stretch!r}")
    return stretch


def write_stretch(model_dir, stretch):
    """Record the stretch in ``model_dir`` (or remove an old record when there is none)."""
    file = Path(model_dir) / PREPROCESSING_FILE
    if stretch in (None, NONE):
        file.unlink(missing_ok=True)
        return None
    scaler = make_scaler(stretch)
    info = {
        "description": "images are scaled by this before the model sees them "
        "(skastro fit --stretch); skastro embed and explore apply it",
        "scaler": {"class": "ImageScaler", "params": _json_params(scaler)},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    match_permissions(tmp, like=file)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=2)
    os.replace(tmp, file)
    return file


def _json_params(scaler):
    params = scaler.get_params()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def resolve_stretch(requested, model_path=None, command="embed"):
    """The stretch to apply: the one asked for, else the model's own; a mismatch is noted.

    ``requested`` is the ``--stretch`` value (None when not given). Prints a note on stderr
    when it differs from the model's, since the model then sees images unlike its training
    set.
    """
    saved = read_stretch(model_path) if model_path is not None else None
    if requested is None:
        return saved
    chosen = None if requested == NONE else requested
    if model_path is not None and chosen != saved:
        print(
            f"skastro {command}: note: {model_path} was fitted with --stretch "
            f"{saved or NONE}; embedding with --stretch {requested} instead",
            file=sys.stderr,
        )
    return chosen


class StretchedModel:
    """A fitted model whose ``transform`` scales the images first (what ``fit`` trained on).

    Parameters
    ----------
    model : fitted estimator with ``transform``
    stretch : str
        One of :data:`STRETCHES`.
    """

    def __init__(self, model, stretch):
        self.model = model
        self.stretch = stretch

    def transform(self, X):
        """Scale the images, then embed them with the model."""
        return self.model.transform(stretch_images(np.asarray(X), self.stretch))

    def __repr__(self):
        return f"StretchedModel({self.model!r}, stretch={self.stretch!r})"
