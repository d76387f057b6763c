"""Helpers shared by the generators and the file loaders of :mod:`skastro.datasets`."""

import contextlib
import numbers
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
import scipy.fft
from sklearn.utils import Bunch

from skastro.exceptions import DataLoadError

# ---------------------------------------------------------------------------------------------
# generators
# ---------------------------------------------------------------------------------------------


def check_generator(random_state):
    """Turn ``random_state`` into a :class:`numpy.random.Generator`.

    ``None`` gives a freshly seeded generator (never numpy's global state); an int seeds one;
    a ``Generator`` is used as is; a legacy ``RandomState`` (what sklearn passes around) seeds a
    new generator from its stream, so a seeded ``RandomState`` still gives repeatable output.
    """
    if random_state is None or isinstance(random_state, numbers.Integral | np.integer):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    raise ValueError(
        f"random_state must be None, an int, a numpy Generator or RandomState; got {random_state!r}"
    )


def check_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def check_fraction(value, name):
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a float in [0, 1]; got {value!r}")
    return float(value)


def check_range(value, name, low=-np.inf, high=np.inf):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair; got {value!r}") from None
    if not low <= lo <= hi <= high:
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}; got {value!r}")
    return lo, hi


def split_labels(n_samples, fractions, rng):
    """Labels ``0..k-1`` in proportions ``fractions``, rounded so the counts are exact.

    Exact counts (rather than independent draws) keep small data sets balanced, which the
    label-balance tests and tiny doctest examples rely on.
    """
    fractions = np.asarray(fractions, dtype=float)
    counts = np.floor(fractions * n_samples).astype(int)
    # hand the rounding remainder to the classes with the largest fractional parts
    remainder = n_samples - counts.sum()
    order = np.argsort(-(fractions * n_samples - counts), kind="stable")
    counts[order[:remainder]] += 1
    labels = np.repeat(np.arange(len(fractions)), counts)
    return rng.permutation(labels)


def pixel_grid(size, dtype=np.float32):
    """Pixel-centre coordinates ``(y, x)`` of a ``size`` x ``size`` image, origin at its centre.

    The centre is ``(size - 1) / 2``, so a 90-degree rotation of the array maps the grid onto
    itself: objects drawn at the origin stay centred under the D4 symmetries of the pixels.
    """
    coords = np.arange(size, dtype=dtype) - dtype((size - 1) / 2)
    return coords[:, None], coords[None, :]


def sersic_b(n):
    """The Sérsic constant ``b_n`` (half the light inside ``r_eff``).

    Ciotti & Bertin (1999) asymptotic series, accurate to < 1e-4 for n >= 0.36.
    """
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)


def fft_frequencies(shape):
    """Squared spatial frequencies ``fy**2 + fx**2`` (cycles/pixel) for an ``rfft2`` image."""
    fy = np.fft.fftfreq(shape[0]).astype(np.float32)
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)
    return fy[:, None] ** 2 + fx[None, :] ** 2


def fourier_gaussian_blur(images, sigma):
    """Blur each image of ``images`` (..., H, W) with its own Gaussian ``sigma`` (pixels).

    Done in Fourier space so every image gets a different kernel in one vectorised call;
    the transform is periodic, which is harmless for sources that fade to zero at the edges.
    """
    images = np.asarray(images, dtype=np.float32)
    sigma = np.asarray(sigma, dtype=np.float32).reshape((-1,) + (1,) * (images.ndim - 1))
    f2 = fft_frequencies(images.shape[-2:])
    transfer = np.exp(np.float32(-2.0 * np.pi**2) * sigma**2 * f2)
    spectrum = scipy.fft.rfft2(images, workers=1) * transfer
    blurred = scipy.fft.irfft2(spectrum, s=images.shape[-2:], workers=1)
    return blurred.astype(np.float32, copy=False)


def wrap_angle(angle):
    """Wrap angles to ``[-pi, pi)``."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def finish_bunch(images, target, target_names, metadata, descr, return_X_y, **extra):
    """Build the ``Bunch`` (or the ``(images, target)`` pair) every generator returns."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    target = np.asarray(target, dtype=np.int64)
    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        target=target,
        target_names=np.asarray(target_names),
        metadata=metadata,
        DESCR=descr,
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# loaders
# ---------------------------------------------------------------------------------------------


def list_files(path, suffixes, what):
    """Expand ``path`` (a file, a folder, or a list of either) into a sorted list of files.

    Folders are read non-recursively and filtered by ``suffixes`` (case-insensitive), leaving
    out hidden files; files named explicitly are taken whatever their suffix or name, since
    the user chose them.
    """
    if isinstance(path, str | Path):
        paths = [path]
    else:
        try:
            paths = list(path)
        except TypeError:
            raise TypeError(
                f"path must be a file, a folder or a list of them; got {type(path).__name__}"
            ) from None
        if not paths:
            raise ValueError(f"no {what} files given: the list of paths is empty")
    files = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            try:
                # hidden files (macOS's "._name.fits" resource forks) are not data; a
                # dangling symbolic link is, and its reader reports it
                found = sorted(
                    p
                    for p in entry.iterdir()
                    if not p.name.startswith(".")
                    and (p.is_file() or (p.is_symlink() and not p.exists()))
                    and p.name.lower().endswith(tuple(suffixes))
                )
            except OSError as exc:
                raise DataLoadError(
                    entry, f"the folder cannot be listed ({_describe(exc)})"
                ) from exc
            if not found:
                raise FileNotFoundError(
                    f"no {what} files ({', '.join(suffixes)}) in folder {entry}"
                )
            files.extend(found)
        else:
            files.append(check_regular_file(entry))
    return files


def describe_file_type(mode):
    """Words for what a non-regular file is, from its ``st_mode``."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class PerProcessFile:
    """Mixin for lazily read arrays holding one open file per process (``_file``, ``_pid``).

    A pickled copy (a worker process, a saved pipeline) carries no handle and opens its own on
    its first read; :meth:`close` closes the handle of this process.
    """

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = state["_pid"] = None
        return state

    def close(self):
        """Close the file handle (it is re-opened on the next access)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None


def check_regular_file(path):
    """Return ``Path(path)`` if it is a readable regular file, else raise a clear error.

    ``FileNotFoundError`` when nothing is there (a dangling symbolic link included), and a
    :class:`DataLoadError` saying what it is for a device (``/dev/zero``), a named pipe or a
    socket: reading one would hang or never end, so it is never opened.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(
                f"no such file: {path} is a symbolic link to {os.readlink(path)}, which does "
                "not exist"
            ) from None
        raise FileNotFoundError(f"no such file or folder: {path}") from None
    except OSError as exc:  # a symbolic link loop, a name too long, no permission...
        raise DataLoadError(path, f"it cannot be opened ({_describe(exc)})") from exc
    if not stat.S_ISREG(mode):
        raise DataLoadError(
            path, f"it is {describe_file_type(mode)}, not a regular file; pass an image file"
        )
    return path


@contextlib.contextmanager
def reading(filename, fatal_warnings=(Warning,), benign_messages=(), what="file"):
    """Turn anything that goes wrong while reading ``filename`` into a :class:`DataLoadError`.

    Readers such as astropy only *warn* about some corruption (a failed checksum, a file cut
    inside its padding) and then hand back plausible-looking data. Warnings are recorded and
    those of a ``fatal_warnings`` category are raised as errors, unless their message contains
    one of ``benign_messages``; the others are re-emitted for the user to see. ``what`` names
    the expected format in the reason ("not a readable FITS file: ...").
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except DataLoadError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            # a recorded warning usually says what went wrong better than the exception that
            # followed it ("file may have been truncated" vs "cannot reshape array")
            reason = _first_fatal(caught, fatal_warnings, benign_messages) or _describe(exc)
            raise DataLoadError(filename, f"not a readable {what} ({reason})") from exc
    reason = _first_fatal(caught, fatal_warnings, benign_messages)
    if reason:
        raise DataLoadError(filename, f"not a readable {what} ({reason})")
    for record in caught:
        warnings.warn_explicit(
            record.message, record.category, record.filename, record.lineno, source=record.source
        )


def _first_fatal(caught, fatal_warnings, benign_messages):
    for record in caught:
        message = str(record.message)
        if issubclass(record.category, fatal_warnings) and not any(
            benign in message for benign in benign_messages
        ):
            return " ".join(message.split())
    return None


# a reader's own advice that does not apply through skastro (it has no such option)
_FOREIGN_ADVICE = re.compile(
    r"\s*If this is really a FITS file, try with ignore_missing_simple=True\.?"
)


def _describe(exc):
    message = _FOREIGN_ADVICE.sub("", " ".join(str(exc).split()))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def read_each(files, read_one, skip_bad):
    """Call ``read_one(file)`` on every file; with ``skip_bad`` skip the ones that fail.

    Without ``skip_bad``, every file is still tried, and one :class:`DataLoadError` lists all
    those that failed, so a folder with several bad files is fixed in one go.

    Returns ``(results, kept_files, skipped)``; ``skipped`` lists ``(filename, reason)``.
    """
    results, kept, skipped = [], [], []
    for filename in files:
        try:
            results.append(read_one(filename))
        except DataLoadError as exc:
            skipped.extend(exc.failures)
            continue
        except FileNotFoundError as exc:  # a dangling link in a folder, or a file just deleted
            skipped.append((str(filename), str(exc)))
            continue
        kept.append(filename)
    if skipped and not skip_bad:
        first, reason = skipped[0]
        raise DataLoadError(first, reason, failures=skipped)
    if skipped:
        listing = "; ".join(f"{name} ({reason})" for name, reason in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        warnings.warn(
            f"skipped {len(skipped)} unreadable file(s): {listing}{more}",
            UserWarning,
            stacklevel=3,
        )
    if not results:
        raise ValueError(
            f"none of the {len(files)} file(s) could be read; "
            f"first failure: {skipped[0][0]} ({skipped[0][1]})"
        )
    return results, kept, skipped


def check_same_shape(shapes, files, what="image"):
    """Raise a ValueError naming two files whose images differ in shape."""
    first_shape = tuple(shapes[0])
    for shape, filename in zip(shapes, files):
        if tuple(shape) != first_shape:
            raise ValueError(
                f"{what}s differ in shape: {files[0]} has {first_shape} but {filename} has "
                f"{tuple(shape)}; load them separately or resample them to one size"
            )
