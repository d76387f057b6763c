"""Serving the explorer's Dash app over HTTP, from this thread or a background one."""

import threading
import warnings

__all__ = ["ExplorerServer", "serve"]

_LOCALHOSTS = ("127.0.0.1", "localhost", "::1")


class ExplorerServer:
    """A running explorer server, returned by ``Explorer.serve(block=False)``.

    Attributes
    ----------
    url : str
        Address to open in a browser.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro.explorer import Explorer
    >>> images = np.random.default_rng(0).random((10, 1, 8, 8), dtype=np.float32)
    >>> explorer = Explorer(images, embedding=images.reshape(10, -1))
    >>> with explorer.serve(port=0, block=False) as server:  # port 0: any free port
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, server):
        self._server = server
        host = server.host if server.host not in ("0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{server.server_port}/"
        self._thread = threading.Thread(
            target=server.serve_forever, name="skastro-explorer", daemon=True
        )

    def _start(self):
        self._thread.start()
        return self

    def shutdown(self):
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()


def serve(app, host="127.0.0.1", port=8050, *, block=True):
    """Serve a Dash ``app``; see :meth:`skastro.explorer.Explorer.serve`."""
    import logging

    from werkzeug.serving import make_server

    if host not in _LOCALHOSTS:
        warnings.warn(
            f"serving on {host}: anyone who can reach this address sees the images and "
            "can run computations; the explorer has no authentication",
            UserWarning,
            stacklevel=3,
        )
    # The default request log prints a line per thumbnail and poll: noise in a terminal.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Threaded, so that progress polls and clicks are answered while a view computes.
    handle = ExplorerServer(make_server(host, int(port), app.server, threaded=True))
    if not block:
        return handle._start()
    print(f"skastro explorer running on {handle.url} (press Ctrl+C to stop)", flush=True)
    try:
        handle._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        handle._server.server_close()
    return None
