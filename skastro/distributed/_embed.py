"""Embed a data set on a dask cluster into partitioned parquet, resumably.

The output is a folder::

    OUT/
      _skastro_embed.json     what was embedded: data, partitioning, model probe
      part-00000.parquet      one file per partition: an "id" column, then z0, z1, ...
      part-00001.parquet
      ...

Each partition is written to a hidden temporary file in ``OUT`` and renamed when complete,
so a ``part-*.parquet`` file is always whole; after an interruption (a killed job, a lost
worker, Ctrl-C) running the same command again skips the partitions already written.
``pandas.read_parquet(OUT)``, ``pyarrow.dataset.dataset(OUT)``, ``dask.dataframe.read_parquet``
and ``skastro cluster OUT`` read the folder as one table.
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from skastro.distributed._client import connect
from skastro.distributed._partitions import describe, plan_partitions, read_batches

__all__ = ["MANIFEST_NAME", "embed_to_parquet", "partition_files"]

MANIFEST_NAME = "_skastro_embed.json"
_FORMAT = "skastro-embedding-partitions"
_FORMAT_VERSION = 1
# images per partition: one output file, and the unit that is redone after an interruption
DEFAULT_PARTITION_SIZE = 50_000
# images read and embedded at a time inside a partition: this many bytes of float32 images
_BATCH_BYTES = 64 * 2**20
# images embedded on the client to check the model and to recognise it on a resumed run
_PROBE_IMAGES = 4


def _default_batch_size(image_shape):
    return int(max(1, min(65536, _BATCH_BYTES // (4 * int(np.prod(image_shape))))))


def partition_files(out):
    """The complete partition files of an output folder, in partition order.

    Parameters
    ----------
    out : str or path-like

    Returns
    -------
    files : list of pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> partition_files(tempfile.mkdtemp())
    []
    """
    return sorted(Path(out).glob("part-*.parquet"))


def embed_to_parquet(
    model,
    data,
    out,
    *,
    scheduler=None,
    partition_size=DEFAULT_PARTITION_SIZE,
    batch_size=None,
    key="images",
    id_key=None,
    skip_bad=False,
    device=None,
    overwrite=False,
    report=None,
):
    """Embed image files with a fitted model on a dask cluster, into partitioned parquet.

    The client lists the data and plans partitions of ``partition_size`` images from file
    headers only; each worker reads its partitions itself (``batch_size`` images at a time,
    with skastro's loaders), embeds them with its copy of the model (shipped once per worker)
    and writes ``OUT/part-NNNNN.parquet``. Partitions already in ``OUT`` from an earlier,
    interrupted run of the same model on the same data are skipped.

    Parameters
    ----------
    model : str, path-like or fitted estimator
        A model folder saved by ``estimator.save`` / ``skastro fit``, or a fitted estimator
        (or Pipeline) with ``transform``.
    data : str or path-like
        What ``skastro embed`` reads: a plain or SDSS ``.npy`` file, an HDF5 file, a FITS
        file, or a folder of FITS, PNG / JPEG or SDSS ``.npy`` files. Workers must see it at
        the same path (a shared file system on a cluster).
    out : str or path-like
        Output folder (created), on a file system the workers can write.
    scheduler : None, str or distributed.Client, default=None
        ``"local"`` / ``"local:N"`` (N worker processes on this machine), a scheduler address
        ``"tcp://HOST:PORT"``, or a ``Client``; None uses the client in use, else
        ``"local"``. See :func:`skastro.distributed.connect`.
    partition_size : int, default=50000
        Images per partition: per output file, and the most work redone after an
        interruption. Smaller partitions balance better across many workers.
    batch_size : int or None, default=None
        Images read and embedded at a time on a worker (bounds its memory); None gives about
        64 MiB of float32 images.
    key, id_key : str or None
        HDF5 datasets of the images and of their identifiers.
    skip_bad : bool, default=False
        Skip unreadable files (listed in the result) instead of failing.
    device : str or None, default=None
        Where each worker runs the network (``"cpu"``, ``"cuda"``, ``"auto"``); None keeps
        the model's own setting. Only for a model folder.
    overwrite : bool, default=False
        Start afresh when ``out`` holds partitions of another model or data set (they are
        deleted); without it that is an error.
    report : callable or None, default=None
        Called with one line of text per finished partition and for warnings; None prints
        to standard error.

    Returns
    -------
    summary : sklearn.utils.Bunch
        ``out`` (Path), ``n_partitions``, ``n_written`` (partitions written by this call),
        ``n_resumed`` (found complete and skipped), ``n_images`` (rows in all partitions),
        ``n_components``, ``skipped`` (``(file, reason)`` of unreadable files) and
        ``seconds``.

    Raises
    ------
    ValueError
        ``out`` holds partitions of a different run (without ``overwrite``), or the model
        does not accept the images.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import pandas as pd
    >>> from distributed import Client
    >>> from skastro import ConvAutoencoder
    >>> folder = tempfile.mkdtemp()
    >>> images = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32)
    >>> np.save(os.path.join(folder, "images.npy"), images)
    >>> model = ConvAutoencoder(n_components=3, widths=(4,), max_epochs=1).fit(images)
    >>> # scheduler="local:4" starts 4 worker processes; a Client in this process is quicker here
    >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     summary = embed_to_parquet(model, os.path.join(folder, "images.npy"),
    ...                                os.path.join(folder, "emb"), scheduler=client,
    ...                                partition_size=8, report=lambda line: None)
    >>> summary.n_partitions, summary.n_images
    (3, 20)
    >>> table = pd.read_parquet(os.path.join(folder, "emb"))
    >>> list(table.columns), bool(np.allclose(table.iloc[:, 1:], model.transform(images)))
    (['id', 'z0', 'z1', 'z2'], True)
    """
    from sklearn.utils import Bunch

    started = time.perf_counter()
    report = report or _print_to_stderr
    out = Path(out)
    plan = plan_partitions(data, partition_size, key=key, id_key=id_key)
    if not plan.partitions:
        raise ValueError(f"{data} holds no images")
    estimator = _load_model(model, device)
    probe_images, probe_ids = _first_images(plan, skip_bad)
    probe = np.asarray(estimator.transform(probe_images), dtype=np.float32)
    if probe.ndim != 2:
        raise ValueError(
            f"the model's transform returns an array of shape {probe.shape[1:]} per image; "
            "embed_to_parquet writes one vector per image"
        )
    manifest = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "data": plan.path,
        "kind": plan.kind,
        "key": key if plan.kind == "HDF5" else None,
        "id_key": id_key if plan.kind == "HDF5" else None,
        "n_images": plan.n_images,
        "partition_size": int(partition_size),
        "n_partitions": len(plan.partitions),
        "listing_digest": plan.listing_digest,
        "n_components": int(probe.shape[1]),
        "probe_ids": [str(i) for i in probe_ids],
        "probe_embedding": probe.tolist(),
    }
    _prepare_folder(out, manifest, overwrite)
    names = {p.index: _part_name(p.index, len(plan.partitions)) for p in plan.partitions}
    done = _complete_partitions(out, names)
    todo = [p for p in plan.partitions if p.index not in done]
    n_images = sum(done.values())
    skipped = [tuple(s) for index in done for s in _stored_skipped(out / names[index])]
    if done:
        report(f"resuming: {len(done)} of {len(plan.partitions)} partitions already in {out}")
    batch_size = batch_size or _default_batch_size(probe_images.shape[1:])
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if todo:
        with connect(scheduler, what="embed_to_parquet") as client:
            model_future = client.scatter(estimator, broadcast=True, hash=False)
            futures = [
                client.submit(
                    _embed_partition,
                    model_future,
                    partition,
                    str(out),
                    names[partition.index],
                    batch_size,
                    skip_bad,
                    plan.id_type,
                    int(probe.shape[1]),
                    key=f"skastro-embed-{names[partition.index]}-{uuid.uuid4().hex[:8]}",
                    pure=False,
                )
                for partition in todo
            ]
            from distributed import as_completed

            try:
                for finished, future in enumerate(as_completed(futures), 1):
                    result = future.result()
                    n_images += result["n_rows"]
                    skipped.extend(tuple(s) for s in result["skipped"])
                    report(
                        f"partition {result['index']}: {result['n_rows']} images "
                        f"({finished}/{len(todo)} this run)"
                    )
            except BaseException:
                client.cancel(futures)
                raise
    return Bunch(
        out=out,
        n_partitions=len(plan.partitions),
        n_written=len(todo),
        n_resumed=len(done),
        n_images=int(n_images),
        n_components=int(probe.shape[1]),
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def _print_to_stderr(line):
    print(line, file=sys.stderr)


def _part_name(index, n_partitions):
    width = max(5, len(str(n_partitions - 1)))
    return f"part-{index:0{width}d}.parquet"


def _load_model(model, device):
    if isinstance(model, str | os.PathLike):
        from skastro.serialization import load

        return load(model, device=device)
    if not callable(getattr(model, "transform", None)):
        raise TypeError(
            f"model must be a saved model folder or a fitted estimator with transform, got "
            f"{type(model).__name__}"
        )
    if device is not None:
        raise ValueError("device applies to a model folder; set it on the estimator instead")
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    return model


def _first_images(plan, skip_bad):
    """The first few images of the data set (read here, to check and recognise the model)."""
    for partition in plan.partitions:
        for images, ids, _ in read_batches(partition, _PROBE_IMAGES, skip_bad=skip_bad):
            if images is not None and len(images):
                return images[:_PROBE_IMAGES], ids[:_PROBE_IMAGES]
    raise ValueError(f"none of the files of {plan.path} could be read")


def _prepare_folder(out, manifest, overwrite):
    """Create ``out`` or check that it holds partitions of this very run."""
    path = out / MANIFEST_NAME
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; embed_to_parquet writes a folder")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".part-*.tmp"):  # left by a run that was killed mid-write
        stale.unlink(missing_ok=True)
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
        differences = _differences(previous, manifest)
        if not differences:
            return
        if not overwrite:
            raise ValueError(
                f"{out} holds embeddings of another run ({'; '.join(differences)}); choose "
                "another output folder, or pass overwrite=True (--overwrite) to replace them"
            )
        for old in partition_files(out):
            old.unlink()
    elif partition_files(out):
        if not overwrite:
            raise ValueError(
                f"{out} holds part-*.parquet files but no {MANIFEST_NAME}, so they cannot be "
                "resumed; choose another output folder, or pass overwrite=True (--overwrite)"
            )
        for old in partition_files(out):
            old.unlink()
    tmp = out / f".{MANIFEST_NAME}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path)


def _differences(previous, manifest):
    """What differs between the run that wrote ``out`` and this one, in words."""
    if previous.get("format") != _FORMAT:
        return [f"its {MANIFEST_NAME} is not readable"]
    found = []
    for name, label in [
        ("data", "data path"),
        ("kind", "data format"),
        ("key", "HDF5 key"),
        ("id_key", "HDF5 id key"),
        ("n_images", "number of images"),
        ("listing_digest", "files (names, sizes, modification times)"),
        ("partition_size", "partition size"),
        ("n_components", "embedding size"),
    ]:
        if previous.get(name) != manifest[name]:
            found.append(f"{label}: {previous.get(name)!r} then, {manifest[name]!r} now")
    if not found:
        before = np.asarray(previous.get("probe_embedding", []), dtype=np.float64)
        now = np.asarray(manifest["probe_embedding"], dtype=np.float64)
        scale = max(1.0, float(np.abs(now).max(initial=0.0)))
        same_ids = previous.get("probe_ids") == manifest["probe_ids"]
        if (
            not same_ids
            or before.shape != now.shape
            or not np.allclose(before, now, rtol=1e-3, atol=1e-4 * scale)
        ):
            found.append("the model gives other embeddings of the first images")
    return found


def _complete_partitions(out, names):
    """``{index: rows}`` of the partitions whose file is complete (renamed into place)."""
    import pyarrow.parquet as pq

    done = {}
    for index, name in names.items():
        path = out / name
        if not path.is_file():
            continue
        try:
            done[index] = pq.read_metadata(path).num_rows
        except (OSError, ValueError):  # unreadable: written again
            path.unlink(missing_ok=True)
    return done


def _stored_skipped(path):
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(b"skastro.skipped", b"[]"))


def _embed_partition(estimator, partition, out, name, batch_size, skip_bad, id_type, n_components):
    """Read, embed and write one partition (runs on a worker); returns a small summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    latents, ids, skipped = [], [], []
    for images, batch_ids, batch_skipped in read_batches(partition, batch_size, skip_bad=skip_bad):
        skipped.extend(batch_skipped)
        if images is None or len(images) == 0:
            continue
        Z = np.asarray(estimator.transform(images), dtype=np.float32)
        if Z.shape != (len(images), n_components):
            raise ValueError(
                f"partition {partition.index}: the model returned shape {Z.shape} for "
                f"{len(images)} images, expected ({len(images)}, {n_components})"
            )
        latents.append(Z)
        ids.append(np.asarray(batch_ids))
    Z = np.concatenate(latents) if latents else np.empty((0, n_components), np.float32)
    if id_type == "int64":
        id_column = pa.array(np.concatenate(ids) if ids else [], type=pa.int64())
    else:
        id_column = pa.array([str(i) for part in ids for i in part], type=pa.string())
    columns = {"id": id_column}
    columns.update({f"z{j}": pa.array(Z[:, j]) for j in range(n_components)})
    table = pa.table(columns)
    table = table.replace_schema_metadata(
        {"skastro.partition": describe(partition), "skastro.skipped": json.dumps(skipped)}
    )
    target = Path(out) / name
    tmp = Path(out) / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)  # atomic: a part-*.parquet file is always complete
    finally:
        tmp.unlink(missing_ok=True)
    return {"index": partition.index, "n_rows": len(Z), "skipped": skipped}
