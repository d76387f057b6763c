"""Writing a command's output without ever losing what was there before.

* :func:`check_output_file`: an output file (``--out``, ``--save-html``) is refused when it
  already exists, unless ``--overwrite`` was given, and when it is a folder; its folder is
  checked for writing before any work starts.
* :func:`replace_folder`: a model folder trained into a temporary folder is swapped in at the
  end, in one atomic rename where the system allows it, so a failed or interrupted command
  leaves the previous folder exactly as it was.
"""

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from skastro.commands._errors import CommandError

__all__ = ["check_output_file", "exchange_paths", "replace_folder"]


def _kind(path):
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file (pipe, device or socket)"


def check_output_file(path, *, overwrite, flag="--out", companions=()):
    """Check that ``path`` (and ``companions`` written with it) may be written.

    Parameters
    ----------
    path : str or path-like
        The output file.
    overwrite : bool
        Whether the user passed ``--overwrite``.
    flag : str, default="--out"
        The option that named the file, for the message.
    companions : sequence of path-like
        Files written together with ``path`` (e.g. the ``.ids.txt`` beside a ``.npy``).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    CommandError
        With status 2: the path is a folder or a special file, it exists and ``overwrite`` is
        False, or its folder cannot be created or written.
    """
    path = Path(path)
    for target in (path, *map(Path, companions)):
        if not os.path.lexists(target):
            continue
        kind = _kind(target) if target.exists() else "a broken symbolic link"
        if kind != "a file":
            raise CommandError(
                f"{flag} {target} is {kind}; give the name of a file to write", status=2
            )
        if not overwrite:
            raise CommandError(
                f"{target} already exists; pass --overwrite to replace it, or choose another "
                f"{flag}",
                status=2,
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".skastro-probe-"):
            pass
    except OSError as exc:
        raise CommandError(f"cannot write {flag} {path}: {exc.strerror or exc}", status=2) from exc
    return path


def exchange_paths(first, second):
    """Swap two paths in one atomic step; return False where the system cannot.

    Uses Linux's ``renameat2(..., RENAME_EXCHANGE)``: at every instant each path holds either
    its old or its new content, never nothing.

    Parameters
    ----------
    first, second : path-like
        Existing paths on one filesystem.

    Returns
    -------
    exchanged : bool
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def replace_folder(new, target):
    """Put folder ``new`` in place of ``target``, then delete what ``target`` held.

    One atomic exchange where the system allows it (Linux); elsewhere two renames, with the
    old folder put back if the second fails. ``new`` must lie on the same filesystem as
    ``target`` (e.g. beside it).

    Parameters
    ----------
    new, target : path-like
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        return
    if exchange_paths(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the old folder
        return
    backup = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, backup)
    try:
        os.rename(new, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
