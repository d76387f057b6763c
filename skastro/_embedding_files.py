"""The files embeddings live in: what ``skastro embed`` writes and ``skastro cluster`` reads.

``.npz`` (``embeddings`` and ``ids``), ``.npy`` with the ids in ``<name>.ids.txt`` beside it,
``.csv`` and ``.parquet`` (an ``id`` column, then the components). The distributed path
(:mod:`skastro.distributed`) writes and reads folders of parquet parts as well.
"""

from pathlib import Path

import numpy as np

__all__ = ["ids_path", "read_csv_with_text_ids", "read_embeddings"]

# what pandas reads as missing by default: kept for value columns, never for id columns
_MISSING = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "-nan", "#N/A")


def read_csv_with_text_ids(path, is_id_column):
    """A CSV file as a DataFrame whose id columns hold the file's text exactly.

    pandas would turn ids such as ``00042`` into 42, ``1e5`` into 100000.0 and ``NA`` into a
    missing value, and they would no longer name their images.

    Parameters
    ----------
    path : path-like
    is_id_column : callable
        Called with each column name; True for the columns to keep as text.

    Returns
    -------
    frame : pandas.DataFrame

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "z.csv")
    >>> _ = open(path, "w").write("id,z0\\n00042,0.5\\nNA,1.5\\n")
    >>> frame = read_csv_with_text_ids(path, lambda name: name == "id")
    >>> frame["id"].tolist(), frame["z0"].tolist()
    (['00042', 'NA'], [0.5, 1.5])
    """
    import pandas as pd

    columns = pd.read_csv(path, nrows=0).columns
    ids = [c for c in columns if is_id_column(c)]
    values = {c: list(_MISSING) for c in columns if c not in ids}
    return pd.read_csv(
        path,
        dtype=dict.fromkeys(ids, str),
        keep_default_na=False,
        na_values=values,
    )


def ids_path(npy_path):
    """The ``<name>.ids.txt`` file that holds the ids of ``<name>.npy`` embeddings."""
    npy_path = Path(npy_path)
    return npy_path.with_name(npy_path.stem + ".ids.txt")


def read_embeddings(path):
    """Read embeddings and their ids from a file written by ``skastro embed``.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` (``embeddings`` and ``ids``), ``.npy`` (ids from ``<name>.ids.txt`` when
        present, else row numbers), ``.parquet`` or ``.csv`` (an ``id`` column, the rest are
        components).

    Returns
    -------
    Z : ndarray of shape (n, d), float32
    ids : ndarray of shape (n,)

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "z.npz")
    >>> np.savez(path, embeddings=np.zeros((3, 2), np.float32), ids=np.array(["a", "b", "c"]))
    >>> Z, ids = read_embeddings(path)
    >>> Z.shape, ids.tolist()
    ((3, 2), ['a', 'b', 'c'])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            if "embeddings" not in f:
                raise ValueError(f"{path} has no 'embeddings' array (it has {list(f.keys())})")
            Z = f["embeddings"]
            ids = f["ids"] if "ids" in f else np.arange(len(Z))
    elif suffix == ".npy":
        Z = np.load(path, allow_pickle=False)
        sidecar = ids_path(path)
        ids = (
            np.asarray(sidecar.read_text().splitlines()) if sidecar.is_file() else np.arange(len(Z))
        )
    elif suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = (
            read_csv_with_text_ids(path, lambda name: name == "id")
            if suffix == ".csv"
            else pd.read_parquet(path)
        )
        ids = frame.pop("id").to_numpy() if "id" in frame else np.arange(len(frame))
        Z = frame.to_numpy(dtype=np.float32)
    else:
        raise ValueError(f"cannot read embeddings from {path.name}: use .npz, .npy, .csv, .parquet")
    Z = np.asarray(Z, dtype=np.float32)
    if Z.ndim != 2 or len(Z) == 0:
        raise ValueError(f"{path} holds an array of shape {Z.shape}, not (n, d) embeddings")
    if len(ids) != len(Z):
        raise ValueError(f"{path}: {len(ids)} ids for {len(Z)} embeddings")
    if not np.isfinite(Z).all():
        bad = np.flatnonzero(~np.isfinite(Z).all(axis=1))
        raise ValueError(
            f"{path} holds NaN or inf in {len(bad)} embedding(s) (first rows: "
            f"{', '.join(map(str, bad[:5]))})"
        )
    return Z, np.asarray(ids)
