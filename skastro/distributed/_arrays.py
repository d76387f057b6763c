"""Run a fitted estimator's inference methods on dask arrays, block by block, lazily.

The fitted estimator enters the task graph once, as a single key that every block's task
depends on: a future scattered to every worker when a dask.distributed client is in use
(``client.scatter(estimator, broadcast=True)``), else a ``dask.delayed`` value. Each worker
therefore receives the model once, not once per block, and the graph stays small whatever
the model's size.
"""

import functools
import warnings

import numpy as np

from skastro.distributed._client import current_client, import_dask, is_dask_array

__all__ = ["INFERENCE_METHODS", "accepts_dask", "dispatch", "map_estimator"]

# Methods that map each input row to one output row independently of the others, which is
# what makes block-by-block evaluation give the in-memory answer.
INFERENCE_METHODS = (
    "transform",
    "score_samples",
    "decision_function",
    "denoise",
    "reconstruct",
    "predict_proba",
    "predict_log_proba",
    "predict",
    "inverse_transform",
)


def dispatch(estimator, method, X):
    """``estimator.<method>(X)`` as a lazy dask array when ``X`` is one, else None.

    This is the one line a skastro inference method starts with, so that passing a dask
    array returns a dask array and everything else goes on as before::

        def transform(self, X):
            lazy = dispatch(self, "transform", X)
            if lazy is not None:
                return lazy
            ...

    dask is not imported unless ``X`` is a dask array (which cannot exist without it).

    Parameters
    ----------
    estimator : fitted estimator
    method : str
        One of :data:`INFERENCE_METHODS`.
    X : object
        The method's input.

    Returns
    -------
    result : dask.array.Array or None
        None when ``X`` is not a dask array.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> scaler = StandardScaler().fit(np.arange(6.0).reshape(3, 2))
    >>> dispatch(scaler, "transform", np.zeros((2, 2))) is None
    True
    >>> import dask.array as da
    >>> lazy = dispatch(scaler, "transform", da.zeros((4, 2), chunks=2))
    >>> lazy.shape, lazy.compute()[0].round(3).tolist()
    ((4, 2), [-1.225, -1.837])
    """
    if not is_dask_array(X):
        return None
    return map_estimator(estimator, method, X)


def accepts_dask(method):
    """Decorate an inference method ``method(self, X)`` so that a dask ``X`` gives a dask array.

    The decorated method runs as before on everything else; on a dask array it returns
    :func:`dispatch`'s lazy result, which calls the undecorated method on each block.

    Examples
    --------
    >>> class Doubler:
    ...     @accepts_dask
    ...     def transform(self, X):
    ...         return 2 * np.asarray(X)
    >>> Doubler().transform([1.0, 2.0]).tolist()
    [2.0, 4.0]
    """

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if not args and not kwargs:
            lazy = dispatch(self, method.__name__, X)
            if lazy is not None:
                return lazy
        return method(self, X, *args, **kwargs)

    return wrapper


def map_estimator(estimator, method, X, *, client=None):
    """Apply a fitted estimator's ``method`` to a dask array, block by block, lazily.

    Works with any fitted estimator whose ``method`` treats rows independently: skastro's deep
    estimators (``transform``, ``reconstruct``, ``denoise``, ``decision_function``,
    ``predict_proba``), :class:`~skastro.KNNOutlierDetector` (``score_samples``,
    ``decision_function``, ``predict``), :class:`~skastro.ImageScaler`, the feature
    transformers, :class:`~skastro.KFoldEnsemble`, ``FaintCalibratedClassifier`` and
    scikit-learn ``Pipeline`` objects made of them (the whole pipeline is shipped as one object,
    so its steps run back to back on each block).

    The model is shipped once per worker: with a dask.distributed client, it is scattered to
    every worker (``broadcast=True``) and each block's task refers to that one future; without
    one, it is a single ``dask.delayed`` key shared by all tasks. The output's shape and dtype
    come from running ``method`` on one image here, which also reports a shape or fitting error
    at once rather than when the graph is computed.

    Parameters
    ----------
    estimator : fitted estimator
    method : str
        One of :data:`INFERENCE_METHODS` that ``estimator`` has.
    X : dask.array.Array of shape (n, ...)
        Images (``(n, C, H, W)``, ``(n, H, W)``, ``(n, F)``) or embeddings ``(n, d)``, in
        blocks of rows; blocks along other axes are merged first.
    client : distributed.Client or None, default=None
        Where to scatter the model; None takes the client in use, if any.

    Returns
    -------
    result : dask.array.Array
        Lazy; one block of rows per block of ``X`` (same row chunks), computed where and when
        the caller computes it. Its values are those of ``getattr(estimator, method)`` on
        the same rows in memory.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skastro import KNNOutlierDetector
    >>> train = np.array([[0.0], [0.1], [0.2], [0.3], [5.0]])
    >>> detector = KNNOutlierDetector(n_neighbors=2).fit(train)
    >>> scores = map_estimator(detector, "score_samples", da.from_array(train, chunks=2))
    >>> scores.chunks
    ((2, 2, 1),)
    >>> np.round(scores.compute(), 3).tolist()
    [-0.15, -0.1, -0.1, -0.15, -4.75]
    """
    da = import_dask("map_estimator")
    import dask

    if not is_dask_array(X):
        raise TypeError(f"X must be a dask array, got {type(X).__name__}; call the method directly")
    if method not in INFERENCE_METHODS:
        raise ValueError(
            f"method must be one of {list(INFERENCE_METHODS)} (methods that treat each row on "
            f"its own), got {method!r}"
        )
    if not callable(getattr(estimator, method, None)):
        raise AttributeError(f"{type(estimator).__name__} has no method {method!r}")
    _check_fitted(estimator)
    if X.ndim < 1:
        raise ValueError(f"X must hold one row per sample, got a dask array of shape {X.shape}")
    if X.ndim > 1 and any(len(c) > 1 for c in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    probe = _probe(estimator, method, X)
    trailing = probe.shape[1:]
    client = client if client is not None else current_client()
    if client is not None:
        # hash=False: a fresh key per call. With a content hash, a second call on the same
        # model reuses the key of a future the first call's array may be releasing at that
        # moment, and the scheduler then deletes the new data ("lost dependencies").
        model = client.scatter(estimator, broadcast=True, hash=False)
    else:
        model = dask.delayed(estimator, pure=True)
    meta = np.empty((0,) * (1 + len(trailing)), dtype=probe.dtype)
    kwargs = {}
    if len(trailing) + 1 < X.ndim:
        kwargs["drop_axis"] = list(range(1 + len(trailing), X.ndim))
    elif len(trailing) + 1 > X.ndim:
        kwargs["new_axis"] = list(range(X.ndim, 1 + len(trailing)))
    chunks = (X.chunks[0], *((size,) for size in trailing))
    name = f"{type(estimator).__name__.lower()}-{method}-{dask.base.tokenize(X, model, method)}"
    return da.map_blocks(
        _apply,
        X,
        model,
        method,
        trailing,
        probe.dtype,
        chunks=chunks,
        meta=meta,
        name=name,
        **kwargs,
    )


def _check_fitted(estimator):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)


def _probe(estimator, method, X):
    """Run ``method`` on one image to learn the output's shape and dtype.

    A zero image is tried first, which reads nothing; estimators that cannot take one (a
    scaler dividing by the image's range, say) get the first image of ``X`` instead.
    """
    zero = np.zeros((1, *X.shape[1:]), dtype=X.dtype)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return np.asarray(getattr(estimator, method)(zero))
    except Exception:  # any failure on a blank image: try a real one
        pass
    first = np.asarray(X[:1].compute())
    return np.asarray(getattr(estimator, method)(first))


def _apply(block, model, method, trailing, dtype):
    """The task run on each block (a worker's copy of ``model`` is shared by its tasks)."""
    if len(block) == 0:
        return np.empty((0, *trailing), dtype=dtype)
    return np.asarray(getattr(model, method)(block), dtype=dtype)
