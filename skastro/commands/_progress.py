"""Progress reporting for the command line: a bar on a terminal, plain lines otherwise."""

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Report progress through ``total`` items on stderr.

    On a terminal this is a tqdm bar; when stderr is a file or a pipe (batch jobs, logs) it
    prints a plain line every ``every`` of the way (10% by default), which logs keep readable.

    Parameters
    ----------
    total : int
        Number of items.
    desc : str
        What is being counted, e.g. ``"embedding"``.
    unit : str
        Name of one item.
    every : float
        Fraction of ``total`` between plain lines.
    stream : file-like or None
        Where to write (default ``sys.stderr``).

    Examples
    --------
    >>> import io
    >>> stream = io.StringIO()
    >>> with Progress(4, "embedding", unit="image", every=0.5, stream=stream) as bar:
    ...     bar.update(2)
    ...     bar.update(2)
    >>> print(stream.getvalue().splitlines()[-1].split(" (")[0])
    embedding: 4/4 images
    """

    def __init__(self, total, desc, unit="item", every=0.1, stream=None):
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._step = max(1, int(self.total * every))
        self._next = self._step
        self._start = time.perf_counter()
        self._bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=self.stream)

    def update(self, n):
        """Count ``n`` more items as done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.done >= self._next or self.done >= self.total:
            elapsed = time.perf_counter() - self._start
            rate = self.done / elapsed if elapsed > 0 else float("inf")
            units = self.unit if self.total == 1 else f"{self.unit}s"
            print(
                f"{self.desc}: {self.done}/{self.total} {units} ({rate:.0f}/s)",
                file=self.stream,
                flush=True,
            )
            while self._next <= self.done:
                self._next += self._step

    def close(self):
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
