"""How every ``skastro`` command reports failure: one line on stderr and a non-zero exit.

:func:`run_command` runs a command's ``run(args)`` and turns any exception into a single
``skastro CMD: error: ...`` line: the expected failures (unreadable data, a damaged model
folder, invalid parameters, a file that cannot be written, a loss that became NaN) in their
own words, anything else as an internal error asking for a report. No traceback is printed
unless the environment sets ``SKASTRO_TRACEBACK=1`` (for bug reports).

Exit status: 2 for a problem with the command line itself (:class:`CommandError` with
``status=2``, e.g. an output that exists without ``--overwrite``), 1 for everything else.
"""

import functools
import os
import sys
import traceback

__all__ = ["CommandError", "describe", "error_line", "reports_errors", "run_command"]

TRACEBACK_VARIABLE = "SKASTRO_TRACEBACK"


class CommandError(Exception):
    """An expected failure of a command, with the message to print and the exit status.

    Parameters
    ----------
    message : str
        What went wrong and how to fix it.
    status : int, default=1
        2 for a problem with the command line (a flag, an output path), 1 otherwise.
    """

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def _expected_types():
    from skastro.exceptions import DataLoadError, ModelFormatError, NonFiniteLossError

    # ValueError and TypeError cover invalid parameters (scikit-learn's InvalidParameterError
    # is both) and invalid images; OSError covers files that cannot be read or written
    return (
        CommandError,
        DataLoadError,
        ModelFormatError,
        NonFiniteLossError,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        ImportError,
    )


def describe(exc):
    """One line of text for an exception: what went wrong, in the user's terms.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    text : str

    Examples
    --------
    >>> describe(KeyError("no dataset 'images' in x.h5"))
    "no dataset 'images' in x.h5"
    >>> describe(IsADirectoryError(21, "Is a directory", "out.npz"))
    'out.npz: Is a directory'
    """
    from skastro.exceptions import DataLoadError

    if isinstance(exc, DataLoadError):
        text = str(exc)
    elif isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, MemoryError):
        text = (
            f"out of memory ({exc or 'an allocation failed'}); use fewer or smaller images, "
            "a smaller batch size or a smaller model"
        )
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    # one line, however the message was written
    return " ".join(text.split())


# advice written for Python users, and what it means on the command line
_COMMAND_LINE_ADVICE = (
    ("pass nan_policy='fill'", "pass --param nan_policy=fill"),
    ("pass grayscale=True to load them all as one channel",
     "convert them to one colour mode (e.g. all grayscale) first"),
)  # fmt: skip


def for_command_line(message):
    """``message`` with Python-only advice put in command-line terms.

    Examples
    --------
    >>> for_command_line("X contains NaN pixels: fill them, or pass nan_policy='fill' to ...")
    'X contains NaN pixels: fill them, or pass --param nan_policy=fill to ...'
    """
    for python, command_line in _COMMAND_LINE_ADVICE:
        message = message.replace(python, command_line)
    return message


def error_line(command, message):
    """Print ``skastro COMMAND: error: MESSAGE`` on stderr (advice in command-line terms)."""
    print(f"skastro {command}: error: {for_command_line(message)}", file=sys.stderr)


def report(command, exc):
    """Print the error line for ``exc`` and return the exit status."""
    if isinstance(exc, (*_expected_types(), MemoryError)):
        error_line(command, describe(exc))
        status = getattr(exc, "status", 1)
    else:
        error_line(
            command,
            f"internal error ({type(exc).__name__}: {describe(exc)}); this is a bug: please "
            f"report it, with the traceback that {TRACEBACK_VARIABLE}=1 prints",
        )
        status = 1
    if os.environ.get(TRACEBACK_VARIABLE):
        traceback.print_exception(exc, file=sys.stderr)
    return status


def run_command(command, run, args):
    """Run ``run(args)`` and return its exit status, reporting any failure in one line.

    Parameters
    ----------
    command : str
        The command's name, as typed after ``skastro``.
    run : callable
        The command's ``run(args) -> int``.
    args : argparse.Namespace

    Returns
    -------
    status : int
        ``run``'s status; 1 or 2 after an error (see the module docstring). Ctrl+C is left to
        the caller.
    """
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # every failure (MemoryError included) becomes one error line
        return report(command, exc)


def reports_errors(command):
    """Decorate a command's ``run(args)`` so that it reports failures like :func:`run_command`.

    ``skastro.cli.main`` runs every command through :func:`run_command` already; the
    decorator gives the same behaviour to code that calls a command's ``run`` directly.

    Parameters
    ----------
    command : str
        The command's name.

    Returns
    -------
    decorator : callable
    """

    def decorate(run):
        @functools.wraps(run)
        def wrapper(args):
            return run_command(command, run, args)

        return wrapper

    return decorate
