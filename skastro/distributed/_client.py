"""Optional imports of dask, and the dask cluster a ``scheduler`` argument names."""

import contextlib
import os

__all__ = ["connect", "import_dask", "is_dask_array"]

_INSTALL = 'pip install "skastro[distributed]"'


def import_dask(what="this"):
    """Import ``dask``, ``dask.array`` and ``distributed``, or say how to install them.

    Parameters
    ----------
    what : str
        What needs dask, for the message.

    Returns
    -------
    dask_array : module
        ``dask.array``.

    Examples
    --------
    >>> da = import_dask()
    >>> da.zeros((4, 2), chunks=2).numblocks
    (2, 1)
    """
    try:
        import dask  # noqa: F401
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            f"{what} needs dask, which does not import here ({exc}); install it with `{_INSTALL}`"
        ) from exc
    return da


def _import_distributed(what):
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"{what} needs dask.distributed, which does not import here ({exc}); install it "
            f"with `{_INSTALL}`"
        ) from exc
    return distributed


def is_dask_array(X):
    """True when ``X`` is a dask array; never imports dask.

    A dask array can only exist once dask is imported, so an object whose class does not come
    from ``dask.array`` is not one.

    Examples
    --------
    >>> import numpy as np
    >>> is_dask_array(np.zeros(3))
    False
    """
    module = type(X).__module__ or ""
    return module.startswith("dask.array") and hasattr(X, "__dask_graph__")


def current_client():
    """The dask.distributed client in use (``Client`` or ``get_client``), or None.

    Examples
    --------
    >>> current_client() is None
    True
    """
    import sys

    if "distributed" not in sys.modules:
        return None
    from distributed import get_client

    try:
        return get_client()
    except ValueError:  # no client
        return None


def _local_workers(spec):
    """Workers in ``"local"`` / ``"local:N"``; None means one per core."""
    _, _, count = spec.partition(":")
    if not count:
        return None
    try:
        n = int(count)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"scheduler {spec!r}: the number of local workers must be a positive integer, "
            "e.g. 'local:4'"
        )
    return n


@contextlib.contextmanager
def connect(scheduler=None, *, what="this"):
    """Yield a dask.distributed ``Client`` for ``scheduler``, closing what it started.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``"local"`` or ``"local:N"``: start a cluster of N worker processes on this machine
        (one per core without N), one thread each, closed on exit. ``"tcp://HOST:PORT"``
        (or ``tls://``, ``ucx://``, ``inproc://``): connect to a running scheduler (started
        with ``dask scheduler`` / ``dask worker``, dask-jobqueue, dask-kubernetes, ...), left
        running on exit. A ``Client``: used as it is. None: the client already in use
        (``distributed.get_client``), else ``"local"``.
    what : str
        What needs dask, for error messages.

    Yields
    ------
    client : distributed.Client

    Examples
    --------
    >>> with connect("local:1") as client:
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    distributed = _import_distributed(what)
    if scheduler is None:
        client = current_client()
        if client is not None:
            yield client
            return
        scheduler = "local"
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise TypeError(
            "scheduler must be 'local', 'local:N', an address such as 'tcp://HOST:PORT', or a "
            f"distributed.Client; got {type(scheduler).__name__}"
        )
    if scheduler == "local" or scheduler.startswith("local:"):
        n_workers = _local_workers(scheduler)
        if n_workers is None:
            n_workers = os.cpu_count() or 1
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    if "://" not in scheduler:
        raise ValueError(
            f"scheduler {scheduler!r} is neither 'local', 'local:N' nor an address such as "
            "'tcp://HOST:PORT'"
        )
    try:
        client = distributed.Client(scheduler, timeout="30s")
    except OSError as exc:
        raise OSError(
            f"cannot reach the dask scheduler at {scheduler} ({exc}); is `dask scheduler` "
            "running there, and can this machine reach it?"
        ) from exc
    try:
        yield client
    finally:
        client.close()
