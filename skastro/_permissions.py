"""Permissions for files and folders written through a temporary name, then renamed into place.

:func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create private entries (0600, 0700)
whatever the umask, and a rename keeps them: a model saved that way could not be read by the
user's group. :func:`match_permissions` gives such an entry the mode (and group) of the one it
replaces, or the mode a plain ``open``/``mkdir`` would have given it under the umask.

Standard library only.
"""

import contextlib
import os
import stat

__all__ = ["current_umask", "match_permissions"]


def current_umask():
    """The process's umask, read without changing it where the system allows (Linux).

    Examples
    --------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (a short race in threaded programs)
    os.umask(mask)
    return mask


def match_permissions(path, like=None):
    """Give ``path`` the permissions of ``like`` if it exists, else those of a new entry.

    Parameters
    ----------
    path : path-like
        A file or folder just created under a temporary name.
    like : path-like or None
        The entry ``path`` is about to replace: its mode bits (setgid included, for folders)
        and, where the user may set it, its group are copied.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> oct(os.stat(folder).st_mode & 0o777)
    '0o700'
    >>> match_permissions(folder)
    >>> os.stat(folder).st_mode & 0o777 == 0o777 & ~current_umask()
    True
    """
    info = None
    if like is not None:
        with contextlib.suppress(OSError):
            info = os.stat(like)
    if info is not None and stat.S_ISDIR(info.st_mode) == os.path.isdir(path):
        if hasattr(os, "chown"):  # (not on Windows)
            with contextlib.suppress(OSError):
                os.chown(path, -1, info.st_gid)  # only to a group the user belongs to
        os.chmod(path, stat.S_IMODE(info.st_mode))
        return
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~current_umask())
