"""The ``skastro`` command line: a thin layer over the estimators.

Each sub-command lives in its own module under :mod:`skastro.commands` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; this module only builds the parser and
dispatches. Heavy imports (torch, escnn) happen inside ``run``, so ``skastro --help`` is fast.
"""

import argparse
import importlib
import sys

import skastro

# sub-command -> (module, one-line help)
COMMANDS = {
    "demo": ("skastro.commands.demo", "fit a model on built-in data and write a report"),
    "fit": ("skastro.commands.fit", "train an estimator on image files and save it"),
    "embed": ("skastro.commands.embed", "embed image files with a saved model"),
    "cluster": ("skastro.commands.cluster", "cluster saved embeddings"),
    "explore": ("skastro.commands.explore", "open the latent space explorer"),
}


def build_parser():
    """Return the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="skastro",
        description="Unsupervised deep learning on astronomical images.",
    )
    parser.add_argument("--version", action="version", version=f"skastro {skastro.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an optional stack (e.g. the explorer's Dash) is not installed
            continue
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    """Entry point of the ``skastro`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from skastro.commands._errors import run_command

    try:
        # every failure becomes one "skastro COMMAND: error: ..." line and a non-zero status
        return run_command(args.command, args._run, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
