"""Command-line options for a DATA argument, and one-line messages for data errors.

DATA itself is opened by :func:`skastro.datasets.open_data`.
"""

import sys
from pathlib import Path

__all__ = ["add_data_arguments", "data_options", "describe_error", "open_images"]


def add_data_arguments(parser):
    """Add ``--key``, ``--id-key``, ``--channels-last`` and ``--skip-bad`` (``open_data``'s)."""
    parser.add_argument(
        "--key",
        default="images",
        help="dataset holding the images in an HDF5 file (default: images)",
    )
    parser.add_argument(
        "--id-key",
        default=None,
        help="dataset holding one identifier per image in an HDF5 file (default: row numbers)",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="the HDF5 images are stored (n, H, W, C), e.g. RGB cutouts such as Galaxy10's "
        "(default: (n, C, H, W) or (n, H, W))",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip files that cannot be read (listed on stderr) instead of stopping",
    )


def data_options(args):
    """The keyword arguments of :func:`skastro.datasets.open_data` given on the command line."""
    return {
        "key": args.key,
        "id_key": args.id_key,
        "skip_bad": args.skip_bad,
        "channels_last": args.channels_last,
    }


def describe_error(exc, skip_bad=False, folder=True):
    """One line for a data error, with a hint when unreadable files could be skipped.

    A :class:`~skastro.exceptions.DataLoadError` names every file that could not be read.
    ``folder``: DATA is a folder, whose other files ``--skip-bad`` would keep (a single file
    has none, so the hint would not help).
    """
    from skastro.exceptions import DataLoadError

    if isinstance(exc, DataLoadError):
        text = str(exc)  # every unreadable file, when several are
        if skip_bad or not folder:
            return text
        return text + " (pass --skip-bad to skip unreadable files)"
    from skastro.commands._errors import describe

    return describe(exc)


def open_images(args):
    """Open ``args.data`` with :func:`skastro.datasets.open_data` and the data options.

    Warnings (e.g. skipped files) go to stderr; data that cannot be opened is a
    :class:`~skastro.commands._errors.CommandError` whose one line names every bad file.
    """
    from skastro.commands._errors import CommandError
    from skastro.datasets import open_data
    from skastro.exceptions import DataLoadError

    def report(line):
        print(line, file=sys.stderr)

    try:
        return open_data(args.data, report=report, **data_options(args))
    except (DataLoadError, FileNotFoundError, KeyError, ValueError) as exc:
        folder = Path(args.data).is_dir()
        raise CommandError(describe_error(exc, args.skip_bad, folder=folder)) from exc
