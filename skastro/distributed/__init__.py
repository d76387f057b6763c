"""Scale-out: dask for inference, embedding and clustering, FAISS for neighbours.

Everything here needs the ``skastro[distributed]`` extra (dask, distributed, faiss-cpu),
imported only when used: ``import skastro.distributed`` itself imports none of them, and
:func:`dispatch` never imports dask unless it is handed a dask array.

Lazy arrays
    :func:`map_estimator` applies a fitted estimator's ``transform``, ``score_samples``,
    ``decision_function``, ``reconstruct``, ``denoise``, ``predict_proba``, ... to a dask
    array block by block, with the model shipped once per worker; :func:`dispatch` is the
    one-line hook skastro's estimators call so that ``estimator.transform(dask_array)``
    returns a dask array.
Files to embeddings
    :func:`embed_to_parquet` embeds FITS / PNG / SDSS folders, ``.npy`` and HDF5 files on a
    cluster into partitioned parquet, and resumes after an interruption.
Clustering
    :func:`cluster_embeddings` clusters embeddings larger than memory: HDBSCAN or k-means on
    a sample, every point then assigned in blocks (on the workers when a client is given);
    :func:`open_embeddings` reads ``.npy`` (memory-mapped) and parquet folders in blocks.
Clusters
    :func:`connect` turns ``"local:N"`` or ``"tcp://HOST:PORT"`` into a client.
Hyper-parameter searches
    ``GridSearchCV`` over skastro pipelines runs on the workers with scikit-learn's joblib
    backend: ``with joblib.parallel_backend("dask"): search.fit(X)`` (see the user guide).
"""

import importlib

# public name -> private module defining it; imported on first use
_EXPORTS = {
    "INFERENCE_METHODS": "_arrays",
    "accepts_dask": "_arrays",
    "dispatch": "_arrays",
    "map_estimator": "_arrays",
    "connect": "_client",
    "is_dask_array": "_client",
    "embed_to_parquet": "_embed",
    "partition_files": "_embed",
    "cluster_embeddings": "_cluster",
    "open_embeddings": "_embeddings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
