"""Load SDSS-style ``.npy`` files of structured arrays (objID, image, class, z)."""

import numpy as np
from sklearn.utils import Bunch

from skastro.exceptions import DataLoadError

from ._common import check_same_shape, list_files, read_each, reading
from ._npy import npy_header

SDSS_CLASSES = ("STAR", "GALAXY")


def load_sdss_npy(path, *, skip_bad=False):
    """Load SDSS cutouts stored as ``.npy`` structured arrays.

    Each file holds a structured array, of shape ``()`` for one object or ``(k,)`` for
    several, with the fields ``objID`` (int), ``image`` (5, 64, 64: u, g, r, i, z),
    ``class`` (``'STAR'`` / ``'GALAXY'``) and ``z`` (redshift) - the layout of the labelled
    SDSS data of Kim & Brunner -, or only ``image`` (their unlabelled variant).

    Parameters
    ----------
    path : str, path-like, or list of them
        An ``.npy`` file, a folder (its ``*.npy`` files in sorted order, not recursively) or
        a list of files and folders.
    skip_bad : bool, default=False
        If True, files that cannot be read are skipped with a warning and listed in
        ``skipped`` instead of raising.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, C, H, W) float32 (a 2-D ``image`` field gives one channel);
        ``target`` (n,) int64 - 0 STAR, 1 GALAXY, -1 any other class - or None when the files
        are unlabelled; ``target_names`` ``['STAR', 'GALAXY']``; ``class_names`` (n,) str or
        None; ``objID`` (n,) int64 or None; ``z`` (n,) float64 or None (missing values are
        -1 and NaN when only some files have the field); ``filenames`` (one per object);
        ``ids`` (the objID as text, else ``<file stem>[<index>]``); ``skipped``, a list of
        ``(filename, reason)``.

    Raises
    ------
    DataLoadError
        A file is not a readable ``.npy`` file, holds Python objects (loading them would
        mean unpickling, which is never done), or has no ``image`` field (the fields it has
        are named).
    ValueError
        Images differ in shape between files, or labelled and unlabelled files are mixed.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skastro.datasets import load_sdss_npy
    >>> dtype = [("objID", "i8"), ("image", "f4", (5, 64, 64)), ("class", "U6"), ("z", "f8")]
    >>> objects = np.zeros(3, dtype=dtype)
    >>> objects["class"] = ["STAR", "GALAXY", "GALAXY"]
    >>> path = os.path.join(tempfile.mkdtemp(), "objects.npy")
    >>> np.save(path, objects)
    >>> data = load_sdss_npy(path)
    >>> data.images.shape, data.target.tolist()
    ((3, 5, 64, 64), [0, 1, 1])
    """
    files = list_files(path, (".npy",), "SDSS .npy")
    results, kept, skipped = read_each(files, _read_npy, skip_bad)
    check_same_shape([r["image"].shape[1:] for r in results], kept)

    labelled = ["class" in r for r in results]
    if any(labelled) and not all(labelled):
        with_class = kept[labelled.index(True)]
        without = kept[labelled.index(False)]
        raise ValueError(
            f"labelled and unlabelled files are mixed: {with_class} has a 'class' field but "
            f"{without} does not; load them separately"
        )
    counts = [len(r["image"]) for r in results]
    filenames = [str(f) for f, k in zip(kept, counts) for _ in range(k)]
    class_names = target = None
    if all(labelled):
        class_names = np.concatenate([r["class"] for r in results])
        target = np.full(class_names.shape, -1, dtype=np.int64)
        for code, name in enumerate(SDSS_CLASSES):
            target[class_names == name] = code
    obj_id = _optional(results, "objID", -1, np.int64)
    redshift = _optional(results, "z", np.nan, np.float64)
    if obj_id is not None:
        ids = [str(i) for i in obj_id]
    else:
        ids = [f"{_stem(f)}[{i}]" for f, k in zip(kept, counts) for i in range(k)]
    return Bunch(
        images=np.concatenate([r["image"] for r in results]),
        target=target,
        target_names=np.asarray(SDSS_CLASSES),
        class_names=class_names,
        objID=obj_id,
        z=redshift,
        filenames=filenames,
        ids=ids,
        skipped=skipped,
    )


def _stem(filename):
    name = filename.name
    return name[:-4] if name.lower().endswith(".npy") else name


def _optional(results, field, missing, dtype):
    """Concatenate an optional field; None if no file has it, ``missing`` where absent."""
    if not any(field in r for r in results):
        return None
    parts = [
        r[field] if field in r else np.full(len(r["image"]), missing, dtype=dtype) for r in results
    ]
    return np.concatenate(parts).astype(dtype)


def _read_npy(filename):
    # numpy takes anything without its magic bytes for a pickle: say what the file is instead
    npy_header(filename)
    with reading(filename, fatal_warnings=(), what=".npy file"):
        try:
            # never unpickle: a .npy file from elsewhere could run arbitrary code
            array = np.load(filename, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise DataLoadError(
                    filename,
                    "it holds Python objects, which would have to be unpickled - never done "
                    "for safety; store 'class' as a fixed-width string field (e.g. 'U6')",
                ) from exc
            raise
        if not isinstance(array, np.ndarray):
            raise DataLoadError(filename, f"it holds a {type(array).__name__}, not an array")
        fields = array.dtype.names
        if fields is None:
            raise DataLoadError(
                filename,
                f"it holds a plain {array.dtype} array of shape {array.shape}, not a "
                "structured array with an 'image' field",
            )
        if "image" not in fields:
            raise DataLoadError(
                filename, f"it has no 'image' field; its fields are {', '.join(fields)}"
            )
        array = array.reshape(-1)  # shape () -> (1,), (k,) unchanged
        kind = array.dtype["image"].base.kind
        if kind not in "biuf":
            what = "complex numbers" if kind == "c" else f"{array.dtype['image'].base} values"
            raise DataLoadError(
                filename,
                f"its 'image' field holds {what}; images must be real numbers"
                + (" (store np.abs(x) or x.real)" if kind == "c" else ""),
            )
        images = np.asarray(array["image"], dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise DataLoadError(
                filename,
                f"its 'image' field has shape {array.dtype['image'].shape}; expected "
                "(C, H, W) or (H, W)",
            )
        out = {"image": images}
        if "class" in fields:
            out["class"] = np.array([_class_name(c) for c in array["class"]], dtype=str)
        if "objID" in fields:
            out["objID"] = np.asarray(array["objID"]).astype(np.int64)
        if "z" in fields:
            out["z"] = np.asarray(array["z"], dtype=np.float64)
    return out


def _class_name(value):
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).strip().upper()
