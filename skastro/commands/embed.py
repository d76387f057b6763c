"""Embed image files with a saved model, streaming them in chunks.

Example: skastro embed model/ cutouts/ --out embeddings.npz. The output format follows the
suffix of --out: .npz (arrays "embeddings" and "ids"), .parquet (an "id" column and one column
per latent component), .csv (the same as text), or .npy (the embeddings only, written as they
are computed, with the ids in a <name>.ids.txt file beside it). Images are read and embedded
--batch-size at a time, so memory does not grow with the number of images read from a .npy
or HDF5 file. With --scheduler local[:N] or tcp://HOST:PORT the images are embedded on dask
workers instead, into a folder of parquet partitions that a rerun completes after an
interruption (skastro.distributed.embed_to_parquet). An existing --out is replaced only with
--overwrite, and only once every embedding has been written; embeddings that come out NaN or
infinite (a broken model) are an error and nothing is written. A model fitted with --stretch
gets its images scaled the same way, on dask workers too (--stretch overrides it).
"""

from pathlib import Path

import numpy as np

from skastro._embedding_files import ids_path
from skastro.commands._data import add_data_arguments, open_images
from skastro.commands._errors import CommandError, reports_errors
from skastro.commands._output import check_output_file
from skastro.commands._preprocessing import add_stretch_argument

OUTPUT_SUFFIXES = (".npz", ".npy", ".parquet", ".csv")
# default chunk: as many images as fit in this many bytes as float32 (at least 1)
_CHUNK_BYTES = 64 * 2**20


def add_arguments(parser):
    """Add the ``embed`` options to ``parser``."""
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="a folder saved by skastro fit")
    parser.add_argument("data", metavar="DATA", help="images, as for skastro fit")
    parser.add_argument(
        "--out",
        required=True,
        help="output file: embeddings.npz, .parquet, .csv or .npy (ids in <name>.ids.txt)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images read and embedded at a time (default: about 64 MiB of images)",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="where to run the network (default: the saved model's device, else the CPU)",
    )
    add_stretch_argument(parser, saved_default=True)
    add_data_arguments(parser)
    from skastro.distributed._command import add_embed_arguments

    add_embed_arguments(parser)


@reports_errors("embed")
def run(args):
    """Run ``skastro embed``; returns the exit status."""
    if args.scheduler:  # on dask workers, into a folder of parquet partitions
        from skastro.distributed._command import run_embed

        return run_embed(args)
    from skastro.exceptions import ModelFormatError
    from skastro.serialization import load

    out = Path(args.out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CommandError(
            f"--out must end in one of {', '.join(OUTPUT_SUFFIXES)}, got {out.name!r}", status=2
        )
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1, got {args.batch_size}", status=2)
    companions = [ids_path(out)] if out.suffix.lower() == ".npy" else []
    check_output_file(out, overwrite=args.overwrite, companions=companions)
    try:
        writer = _open_writer(out)
    except (OSError, ImportError) as exc:
        raise CommandError(f"cannot write {out}: {exc}", status=2) from exc
    try:
        try:
            estimator = _with_stretch(load(args.model_dir, device=args.device), args)
        except (ModelFormatError, ValueError) as exc:
            raise CommandError(f"cannot load the model {args.model_dir}: {exc}") from exc
        data = open_images(args)
        _embed(estimator, data, writer, args.batch_size, args.model_dir)
        writer.close()
    finally:
        writer.abort()
    print(f"wrote {writer.n_written} embeddings of size {writer.n_components} to {out}")
    return 0


def _with_stretch(estimator, args):
    """The model, scaling its input as ``fit --stretch`` did (or as ``--stretch`` says)."""
    from skastro.commands._preprocessing import StretchedModel, resolve_stretch

    stretch = resolve_stretch(getattr(args, "stretch", None), args.model_dir, "embed")
    return estimator if stretch is None else StretchedModel(estimator, stretch)


def default_chunk(image_shape):
    """Images per chunk so that one chunk of float32 images is about 64 MiB."""
    return int(max(1, min(65536, _CHUNK_BYTES // (4 * int(np.prod(image_shape))))))


def _embed(estimator, data, writer, batch_size, model_dir):
    from skastro.commands._progress import Progress

    images = data.images
    n = len(images)
    chunk = batch_size or default_chunk(images.shape[1:])
    with Progress(n, "embedding", unit="image") as progress:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            block = np.asarray(images[start:stop])
            try:
                Z = estimator.transform(block)
            except ValueError as exc:
                raise CommandError(f"images {start}..{stop - 1}: {exc}") from exc
            finite = np.isfinite(Z).all(axis=1)
            if not finite.all():
                bad = start + np.flatnonzero(~finite)
                raise CommandError(
                    f"the model {model_dir} gave NaN or inf embeddings for {len(bad)} of images "
                    f"{start}..{stop - 1} (first: image {bad[0]}, id {data.ids[bad[0]]}); "
                    "nothing was written. The model is broken (e.g. its training diverged) or "
                    "these images lie far outside the range it was trained on: check their "
                    "scale, or fit the model again"
                )
            writer.write(Z, data.ids[start:stop], total=n)
            progress.update(stop - start)


# ----------------------------------------------------------------------------- writers
def _open_writer(path):
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _NpyWriter(path)
    if suffix == ".csv":
        return _CsvWriter(path)
    if suffix == ".parquet":
        return _ParquetWriter(path)
    return _NpzWriter(path)


class _Writer:
    """Collects chunks of embeddings; ``close`` makes the file, ``abort`` cleans up on error."""

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.tmp.touch()  # fails now, not after an hour of work, if the folder is read-only
        self.n_written = 0
        self.n_components = None
        self.closed = False

    def write(self, Z, ids, total):
        self.n_components = Z.shape[1]
        self._write(np.asarray(Z, dtype=np.float32), np.asarray(ids), total)
        self.n_written += len(Z)

    def close(self):
        self._close()
        self.tmp.replace(self.path)
        self.closed = True

    def abort(self):
        if not self.closed:
            self._abort()
            self.tmp.unlink(missing_ok=True)

    def _abort(self):
        pass


class _NpyWriter(_Writer):
    """Streams embeddings into a ``.npy`` file as they are computed (constant memory)."""

    def __init__(self, path):
        super().__init__(path)
        self._file = None
        self._ids = None

    def _write(self, Z, ids, total):
        if self._file is None:
            self._file = open(self.tmp, "wb")
            header = {"descr": "<f4", "fortran_order": False, "shape": (total, Z.shape[1])}
            np.lib.format.write_array_header_1_0(self._file, header)
            self._ids = open(self._ids_tmp, "w")
        self._file.write(Z.astype("<f4", copy=False).tobytes())
        for i in ids:
            if "\n" in str(i) or "\r" in str(i):
                # one id per line: a line break would shift every later id onto another row
                raise ValueError(
                    f"the id {str(i)!r} holds a line break, which a .ids.txt file cannot keep; "
                    "write .npz, .csv or .parquet embeddings instead"
                )
        self._ids.writelines(f"{i}\n" for i in ids)

    @property
    def _ids_tmp(self):
        return self.tmp.with_name(self.tmp.name + ".ids")

    def _close(self):
        if self._file is None:
            raise ValueError("no images were embedded")
        self._file.close()
        self._ids.close()
        Path(self._ids_tmp).replace(ids_path(self.path))

    def _abort(self):
        for handle in (self._file, self._ids):
            if handle is not None:
                handle.close()
        Path(self._ids_tmp).unlink(missing_ok=True)


class _CsvWriter(_Writer):
    """Streams ``id,z0,z1,...`` rows as they are computed."""

    def __init__(self, path):
        super().__init__(path)
        self._file = open(self.tmp, "w")

    def _write(self, Z, ids, total):
        if self.n_written == 0:
            self._file.write(",".join(["id"] + [f"z{i}" for i in range(Z.shape[1])]) + "\n")
        for i, row in zip(ids, Z):
            self._file.write(f"{_csv_field(i)}," + ",".join(f"{v:.9g}" for v in row) + "\n")

    def _close(self):
        self._file.close()

    def _abort(self):
        self._file.close()


def _csv_field(value):
    text = str(value)
    if any(c in text for c in ',"\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


class _MemoryWriter(_Writer):
    """Keeps the (small) embeddings in memory and writes them at the end."""

    def __init__(self, path):
        super().__init__(path)
        self.Z, self.ids = [], []

    def _write(self, Z, ids, total):
        self.Z.append(Z)
        self.ids.append(ids)

    def _arrays(self):
        if not self.Z:
            raise ValueError("no images were embedded")
        return np.concatenate(self.Z), np.concatenate(self.ids)


class _NpzWriter(_MemoryWriter):
    def _close(self):
        Z, ids = self._arrays()
        if ids.dtype.kind == "O":
            ids = ids.astype(str)
        with open(self.tmp, "wb") as f:
            np.savez(f, embeddings=Z, ids=ids)


class _ParquetWriter(_MemoryWriter):
    def __init__(self, path):
        import pandas as pd

        try:
            pd.io.parquet.get_engine("auto")
        except ImportError as exc:
            raise ImportError(
                f"writing .parquet needs pyarrow or fastparquet, which do not import here "
                f"({exc}); write .npz or .csv instead"
            ) from exc
        super().__init__(path)

    def _close(self):
        import pandas as pd

        Z, ids = self._arrays()
        frame = pd.DataFrame(Z, columns=[f"z{i}" for i in range(Z.shape[1])])
        frame.insert(0, "id", ids)
        frame.to_parquet(self.tmp, index=False)
