"""Views computed in background threads, polled by the page for their progress."""

import dataclasses
import threading
import time
import uuid

from skastro.explorer._compute import ViewSpec

__all__ = ["Jobs"]

# Finished jobs kept for the page to read (each is read once).
_KEEP_FINISHED = 16


@dataclasses.dataclass
class _Job:
    """A view computed by a worker thread, polled by the page."""

    spec: ViewSpec
    fraction: float = 0.0
    message: str = "queued"
    view_key: str | None = None
    error: str | None = None
    started: float = dataclasses.field(default_factory=time.perf_counter)
    finished: float | None = None

    @property
    def done(self):
        return self.finished is not None


class Jobs:
    """Run ``compute(spec, progress)`` in a daemon thread per job; look jobs up by id.

    ``compute`` returns the finished view; its ``key`` is recorded in the job. An exception
    is recorded as the job's error, shown on the page (the user can change the settings).

    Examples
    --------
    >>> import types
    >>> jobs = Jobs(lambda spec, progress: types.SimpleNamespace(key="view-1"))
    >>> job_id = jobs.start(spec=None)
    >>> jobs.get(job_id).spec is None
    True
    """

    def __init__(self, compute):
        self._compute = compute
        self._lock = threading.Lock()
        self._jobs = {}

    def start(self, spec):
        """Start computing ``spec`` in the background; return the job id."""
        job = _Job(spec=spec)
        job_id = uuid.uuid4().hex

        def progress(fraction, message):
            job.fraction, job.message = float(fraction), message

        def work():
            try:
                job.view_key = self._compute(spec, progress).key
                job.fraction, job.message = 1.0, "done"
            except Exception as exc:  # shown on the page: the user can change the settings
                job.error = f"{type(exc).__name__}: {exc}"
            finally:
                job.finished = time.perf_counter()

        with self._lock:
            for old_id in [i for i, j in self._jobs.items() if j.done][:-_KEEP_FINISHED]:
                del self._jobs[old_id]
            self._jobs[job_id] = job
        threading.Thread(target=work, name=f"skastro-job-{job_id[:8]}", daemon=True).start()
        return job_id

    def get(self, job_id):
        """The job with this id, or None."""
        with self._lock:
            return self._jobs.get(job_id)
