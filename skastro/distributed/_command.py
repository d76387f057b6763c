"""``skastro embed ... --scheduler``: the command-line side of :func:`embed_to_parquet`.

``skastro/commands/embed.py`` adds these options with :func:`add_embed_arguments` and hands
the run over to :func:`run_embed` when ``--scheduler`` is given; nothing here imports dask
until then.
"""

import sys

__all__ = ["add_embed_arguments", "run_embed"]


def add_embed_arguments(parser):
    """Add ``--scheduler``, ``--partition-size`` and ``--overwrite`` to ``skastro embed``.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_embed_arguments(parser)
    >>> args = parser.parse_args(["--scheduler", "local:4"])
    >>> args.scheduler, args.partition_size, args.overwrite
    ('local:4', 50000, False)
    """
    from skastro.distributed._embed import DEFAULT_PARTITION_SIZE

    group = parser.add_argument_group(
        "on a dask cluster (needs skastro[distributed])",
        "With --scheduler, --out is a folder of part-NNNNN.parquet files (an id column and "
        "z0, z1, ...), written by the workers; running the same command again after an "
        "interruption skips the partitions already written.",
    )
    group.add_argument(
        "--scheduler",
        default=None,
        metavar="local[:N]|tcp://HOST:PORT",
        help=(
            "embed on dask workers: N worker processes on this machine (local, one per core "
            "without N), or a running dask scheduler's address"
        ),
    )
    group.add_argument(
        "--partition-size",
        type=int,
        default=DEFAULT_PARTITION_SIZE,
        help=f"images per partition and output file (default {DEFAULT_PARTITION_SIZE})",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out (and its .ids.txt) if it exists; with --scheduler, replace "
        "partitions of another model or data set found in --out",
    )


def _error(message):
    from skastro.commands._errors import error_line

    error_line("embed", message)


def _model_with_stretch(args):
    """What the workers embed with, and the device to ask for: the model folder itself, or
    (a model fitted with ``skastro fit --stretch``, or --stretch given) a pipeline that
    stretches the images first, on the device asked for."""
    from skastro.commands._preprocessing import resolve_stretch, stretch_images

    stretch = resolve_stretch(getattr(args, "stretch", None), args.model_dir, "embed")
    if stretch is None:
        return args.model_dir, args.device
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skastro.serialization import load

    scaler = FunctionTransformer(stretch_images, kw_args={"stretch": stretch})
    return make_pipeline(scaler, load(args.model_dir, device=args.device)), None


def run_embed(args):
    """Run ``skastro embed MODEL DATA --out FOLDER --scheduler ...``; returns the exit status.

    Reads ``model_dir``, ``data``, ``out``, ``scheduler``, ``partition_size``,
    ``batch_size``, ``key``, ``id_key``, ``skip_bad``, ``device`` and ``overwrite`` from
    ``args`` (the options of ``skastro embed``).
    """
    from pathlib import Path

    from skastro.exceptions import DataLoadError, ModelFormatError

    out = Path(args.out)
    if out.suffix.lower() in (".npz", ".npy", ".csv", ".parquet") and not out.is_dir():
        _error(
            f"with --scheduler, --out is a folder of parquet partitions; got {out.name!r} "
            f"(try --out {out.with_suffix('')})"
        )
        return 2
    if args.partition_size < 1:
        _error(f"--partition-size must be at least 1, got {args.partition_size}")
        return 2
    if args.batch_size is not None and args.batch_size < 1:
        _error(f"--batch-size must be at least 1, got {args.batch_size}")
        return 2
    if getattr(args, "channels_last", False):
        _error(
            "--channels-last is not available with --scheduler yet: embed without "
            "--scheduler, or store the images channels first (n, C, H, W)"
        )
        return 2
    from skastro.distributed._embed import embed_to_parquet

    try:
        model, device = _model_with_stretch(args)
        summary = embed_to_parquet(
            model,
            args.data,
            out,
            scheduler=args.scheduler,
            partition_size=args.partition_size,
            batch_size=args.batch_size,
            key=args.key,
            id_key=args.id_key,
            skip_bad=args.skip_bad,
            device=device,
            overwrite=args.overwrite,
        )
    except DataLoadError as exc:
        text = str(exc)  # every unreadable file, when several are
        _error(text if args.skip_bad else text + " (pass --skip-bad to skip unreadable files)")
        return 1
    except (ModelFormatError, FileNotFoundError, KeyError, ValueError, OSError) as exc:
        _error(exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc))
        return 1
    except ImportError as exc:
        _error(str(exc))
        return 2
    for name, reason in summary.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    resumed = f" ({summary.n_resumed} found complete and kept)" if summary.n_resumed else ""
    print(
        f"wrote {summary.n_images} embeddings of size {summary.n_components} to {out} in "
        f"{summary.n_partitions} partitions{resumed}"
    )
    return 0
