"""Read embeddings larger than memory, block by block: ``.npy`` files and parquet folders.

:func:`open_embeddings` gives an :class:`EmbeddingSource`: random access to rows
(``read(start, stop)``, ``take(indices)``) that reads only those rows, and the ids in order
(``iter_ids``). A source holds paths, not data, so it is cheap to send to dask workers, each
of which then reads its own blocks.
"""

import abc
import bisect
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingSource", "open_embeddings"]


def open_embeddings(path):
    """Open embeddings for reading in blocks, without loading them.

    Parameters
    ----------
    path : str, path-like, ndarray or EmbeddingSource
        - a plain ``.npy`` array ``(n, d)`` (read in row ranges with plain file reads; the
          ids from ``<name>.ids.txt`` beside it when present, as ``skastro embed`` writes,
          else row numbers);
        - a ``.parquet`` file or a folder of ``.parquet`` files (``skastro embed
          --scheduler`` and :func:`embed_to_parquet` write ``part-*.parquet``): an ``id``
          column (else row numbers) and one column per component, read file by file;
        - a ``.npz`` or ``.csv`` file written by ``skastro embed`` (loaded in memory);
        - an array (kept as it is).

    Returns
    -------
    source : EmbeddingSource

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "z.npy")
    >>> np.save(path, np.arange(12, dtype=np.float32).reshape(6, 2))
    >>> source = open_embeddings(path)
    >>> source.n_samples, source.n_features, source.read(2, 4).tolist()
    (6, 2, [[4.0, 5.0], [6.0, 7.0]])
    """
    if isinstance(path, EmbeddingSource):
        return path
    if not isinstance(path, str | Path):
        return ArrayEmbeddings(path)
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(
                f"no .parquet files in folder {path}; expected the output of "
                "`skastro embed --scheduler ...` (part-*.parquet files)"
            )
        return ParquetEmbeddings(files)
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return NpyEmbeddings(path)
    if suffix == ".parquet":
        return ParquetEmbeddings([path])
    if suffix in (".npz", ".csv"):
        from skastro._embedding_files import read_embeddings

        Z, ids = read_embeddings(path)
        return ArrayEmbeddings(Z, ids)
    raise ValueError(
        f"cannot read embeddings from {path.name}: use a .npy, .parquet, .npz or .csv file, or "
        "a folder of .parquet files"
    )


class EmbeddingSource(abc.ABC):
    """Embeddings read in blocks of rows (see :func:`open_embeddings`).

    Attributes
    ----------
    n_samples, n_features : int
    """

    n_samples = 0
    n_features = 0

    @abc.abstractmethod
    def read(self, start, stop):
        """Rows ``start:stop`` as a float32 array ``(stop - start, n_features)``."""

    @abc.abstractmethod
    def take(self, indices):
        """Rows ``indices`` (sorted, unique) as float32, reading only what is needed."""

    def iter_ids(self, block_size):
        """The ids in order, ``block_size`` at a time."""
        for start in range(0, self.n_samples, block_size):
            yield np.arange(start, min(start + block_size, self.n_samples))

    def blocks(self, block_size):
        """``(start, stop)`` of consecutive blocks of at most ``block_size`` rows."""
        block_size = max(1, int(block_size))
        return [
            (start, min(start + block_size, self.n_samples))
            for start in range(0, self.n_samples, block_size)
        ]

    def _check(self, Z, where):
        if not np.isfinite(Z).all():
            bad = np.flatnonzero(~np.isfinite(Z).all(axis=1))
            raise ValueError(
                f"{where} holds NaN or inf in {len(bad)} embedding(s) (first rows of the block: "
                f"{', '.join(map(str, bad[:5]))})"
            )
        return Z


class ArrayEmbeddings(EmbeddingSource):
    """Embeddings already in an array (or an array-like read by slicing, e.g. a memmap)."""

    def __init__(self, Z, ids=None):
        if getattr(Z, "ndim", None) != 2:
            Z = np.asarray(Z)
        if Z.ndim != 2 or Z.shape[0] == 0:
            raise ValueError(f"embeddings must be a non-empty (n, d) array, got shape {Z.shape}")
        self.Z = Z
        self.ids = None if ids is None else np.asarray(ids)
        self.n_samples, self.n_features = (int(s) for s in Z.shape)
        if self.ids is not None and len(self.ids) != self.n_samples:
            raise ValueError(f"{len(self.ids)} ids for {self.n_samples} embeddings")

    def read(self, start, stop):
        return self._check(np.asarray(self.Z[start:stop], dtype=np.float32), "the embeddings")

    def take(self, indices):
        return self._check(np.asarray(self.Z[np.asarray(indices)], dtype=np.float32), "the data")

    def iter_ids(self, block_size):
        if self.ids is None:
            yield from super().iter_ids(block_size)
            return
        for start in range(0, self.n_samples, block_size):
            yield self.ids[start : start + block_size]


class NpyEmbeddings(EmbeddingSource):
    """A ``.npy`` file of shape ``(n, d)``, read in row ranges (never loaded whole)."""

    def __init__(self, path):
        from skastro.datasets import NpyArray

        self.path = Path(path)
        self._array = NpyArray(self.path)
        if self._array.ndim != 2 or len(self._array) == 0:
            raise ValueError(
                f"{self.path} holds an array of shape {self._array.shape}, not (n, d) embeddings"
            )
        self.n_samples, self.n_features = self._array.shape

    def read(self, start, stop):
        return self._check(np.asarray(self._array[start:stop], dtype=np.float32), self.path)

    def take(self, indices):
        return self._check(np.asarray(self._array[np.asarray(indices)], np.float32), self.path)

    def iter_ids(self, block_size):
        from skastro._embedding_files import ids_path

        sidecar = ids_path(self.path)
        if not sidecar.is_file():
            yield from super().iter_ids(block_size)
            return
        with open(sidecar) as f:
            for start in range(0, self.n_samples, block_size):
                count = min(block_size, self.n_samples - start)
                ids = [f.readline().rstrip("\n") for _ in range(count)]
                if ids and ids[-1] == "" and count:
                    raise ValueError(f"{sidecar} holds fewer ids than {self.path} has rows")
                if start + count == self.n_samples and f.readline():
                    # a stale file (or ids with line breaks) would pair rows with wrong ids
                    raise ValueError(f"{sidecar} holds more ids than {self.path} has rows")
                yield np.asarray(ids)


class ParquetEmbeddings(EmbeddingSource):
    """Parquet files read as one table: an ``id`` column and one column per component."""

    def __init__(self, files):
        import pyarrow.parquet as pq

        self.files = [Path(f) for f in files]
        counts, columns = [], None
        for f in self.files:
            try:
                schema = pq.read_schema(f)
                counts.append(pq.read_metadata(f).num_rows)
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read {f} as parquet ({exc})") from exc
            names = list(schema.names)
            if columns is None:
                columns = names
            elif names != columns:
                raise ValueError(f"{f} has columns {names}, unlike {self.files[0]} ({columns})")
        self.has_ids = "id" in columns
        self.columns = [c for c in columns if c != "id"]
        if not self.columns:
            raise ValueError(f"{self.files[0]} has no embedding columns")
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.n_samples, self.n_features = int(self.offsets[-1]), len(self.columns)
        if self.n_samples == 0:
            raise ValueError(f"{self.files[0].parent} holds no embeddings (all files are empty)")
        self._cache = (None, None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = (None, None)
        return state

    def _file_values(self, i):
        import pyarrow.parquet as pq

        if self._cache[0] != i:
            table = pq.read_table(self.files[i], columns=self.columns)
            Z = np.column_stack([table.column(c).to_numpy() for c in self.columns])
            self._cache = (i, self._check(Z.astype(np.float32, copy=False), self.files[i]))
        return self._cache[1]

    def read(self, start, stop):
        start, stop = int(start), min(int(stop), self.n_samples)
        parts = []
        i = bisect.bisect_right(self.offsets, start) - 1
        while start < stop:
            first, last = self.offsets[i], self.offsets[i + 1]
            end = min(stop, last)
            if end > start:
                parts.append(self._file_values(i)[start - first : end - first])
            start = max(start, end)
            i += 1
        if not parts:
            return np.empty((0, self.n_features), np.float32)
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.n_features), dtype=np.float32)
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        for i in np.unique(which):
            rows = which == i
            out[rows] = self._file_values(i)[indices[rows] - self.offsets[i]]
        return out

    def iter_ids(self, block_size):
        if not self.has_ids:
            yield from super().iter_ids(block_size)
            return
        import pyarrow.parquet as pq

        pending = np.empty(0)
        for f in self.files:
            # (to_pandas: ChunkedArray.to_numpy takes no options before pyarrow 13)
            ids = pq.read_table(f, columns=["id"]).column("id").to_pandas().to_numpy()
            pending = np.concatenate([pending, ids]) if len(pending) else ids
            start = 0
            while len(pending) - start >= block_size:
                yield pending[start : start + block_size]
                start += block_size
            pending = pending[start:]
        if len(pending):
            yield pending
