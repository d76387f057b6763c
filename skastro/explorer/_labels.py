"""Labels given in the explorer, kept in a CSV file that every change rewrites atomically.

A label is ``interesting``, ``not interesting`` or any class name the user types. The file
has one row per labelled image, ``id,label,updated`` (``updated``: UTC time of the change),
and is rewritten through a temporary file and a rename after every change, so a crash or a
power cut leaves either the old file or the new one, never half of one. Rows whose id is not
among the images (labels of another data set sharing the file) are kept as they are.
"""

import csv
import datetime
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from skastro._permissions import match_permissions

__all__ = ["INTERESTING", "NOT_INTERESTING", "LabelStore", "default_label_file"]

INTERESTING = "interesting"
NOT_INTERESTING = "not interesting"
_COLUMNS = ("id", "label", "updated")
# longest class name accepted (a label is a word or two, not a note)
MAX_LABEL_LENGTH = 60


def default_label_file(data_path):
    """Where the labels of a data path are kept: ``<name>.labels.csv`` beside it.

    Examples
    --------
    >>> default_label_file("cutouts/").name, default_label_file("sdss/galaxies.npy").name
    ('cutouts.labels.csv', 'galaxies.labels.csv')
    """
    path = Path(os.path.abspath(os.fspath(data_path)))
    stem = path.name if path.is_dir() or not path.suffix else path.stem
    return path.with_name(f"{stem}.labels.csv")


def clean_label(label):
    """A label as stored: stripped of surrounding blanks and line breaks; None clears."""
    if label is None:
        return None
    text = " ".join(str(label).split())
    if not text:
        return None
    if len(text) > MAX_LABEL_LENGTH:
        raise ValueError(f"a label has at most {MAX_LABEL_LENGTH} characters, got {len(text)}")
    return text


class LabelStore:
    """The user's labels of a set of images, saved to ``path`` after every change.

    Parameters
    ----------
    ids : array-like of str of shape (n,)
        The images' identifiers, as written in the file.
    path : str or path-like or None
        CSV file to load from (when it exists) and save to; None keeps labels in memory.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.csv")
    >>> store = LabelStore(["a", "b", "c"], path)
    >>> store.set([0, 2], "interesting")
    2
    >>> LabelStore(["a", "b", "c"], path).labels().tolist()
    ['interesting', '', 'interesting']
    """

    def __init__(self, ids, path=None):
        self.ids = np.asarray(ids).astype(str)
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        # id -> its rows: labels are kept per id, so images sharing an id share a label
        self._positions = {}
        for i, key in enumerate(self.ids):
            self._positions.setdefault(key, []).append(i)
        shared = [key for key, rows in self._positions.items() if len(rows) > 1]
        if shared:
            warnings.warn(
                f"{len(shared)} id(s) name more than one image (e.g. {str(shared[0])!r}, rows "
                f"{self._positions[shared[0]][:3]}); labels are stored by id, so a label given "
                "to one of those images applies to all images with its id",
                UserWarning,
                stacklevel=3,
            )
        # id -> (label, updated) for every row of the file, known ids or not
        self._rows = {}
        self.version = 0
        if self.path is not None and self.path.is_file():
            self._rows = _read(self.path)

    def labels(self):
        """Each image's label, ``""`` for none, as an array of str of shape (n,)."""
        out = np.full(len(self.ids), "", dtype=object)
        with self._lock:
            for key, (label, _) in self._rows.items():
                out[self._positions.get(key, [])] = label
        return out

    def get(self, index):
        """The label of image ``index``, or None."""
        with self._lock:
            row = self._rows.get(self.ids[int(index)])
        return None if row is None else row[0]

    def counts(self):
        """``{label: number of images}`` among these images."""
        labels = self.labels()
        values, counts = np.unique(labels[labels != ""], return_counts=True)
        return dict(zip(values.tolist(), counts.tolist()))

    def set(self, indices, label):
        """Label images (``label`` None or empty: remove their labels); save; return how many
        changed."""
        label = clean_label(label)
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        changed = 0
        with self._lock:
            for index in np.atleast_1d(np.asarray(indices, dtype=np.int64)):
                if not 0 <= index < len(self.ids):
                    raise IndexError(f"index {index} out of range [0, {len(self.ids)})")
                key = self.ids[index]
                old = self._rows.get(key)
                if label is None:
                    if old is not None:
                        del self._rows[key]
                        changed += 1
                elif old is None or old[0] != label:
                    self._rows[key] = (label, stamp)
                    changed += 1
            if changed:
                self.version += 1
                if self.path is not None:
                    _write_atomically(self.path, self._rows)
        return changed


def _read(path):
    rows = {}
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames is None or not {"id", "label"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path} is not a labels file: expected the columns id,label "
                f"(found {reader.fieldnames})"
            )
        for row in reader:
            label = clean_label(row.get("label"))
            if row.get("id") is not None and label is not None:
                rows[row["id"]] = (label, row.get("updated") or "")
    return rows


def _write_atomically(path, rows):
    """Write the file next to its final place, flush it to disk, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        match_permissions(tmp, like=path)  # not mkstemp's private 0600
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(_COLUMNS)
            for key, (label, updated) in rows.items():
                writer.writerow((key, label, updated))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
