"""Train an estimator on image files and save it as a model folder that loads without pickle.

Example: skastro fit convautoencoder cutouts/ --out model/ --param n_components=8 --epochs 30.
MODEL is the lowercase class name of an estimator (convautoencoder, vicregembedder, ...);
--param NAME=VALUE sets any of its parameters (values are read as JSON or Python literals,
e.g. widths=[16,32] or lr=3e-4, else as text). MODEL_DIR receives model.json,
weights.safetensors and history.json (load them with skastro.load(MODEL_DIR)) and a
checkpoint/ folder rewritten after every epoch. Ctrl+C saves a checkpoint and exits with
status 130; the same command with --resume continues from it. --epochs is the TOTAL number of
epochs: with --resume, training continues until the model has been trained for --epochs
epochs in all (so --resume with a larger --epochs also extends a finished fit). A loss that
becomes NaN or infinite stops training with an error and keeps the last good checkpoint.
--stretch asinh trains on images scaled as skastro.ImageScaler(stretch="asinh") does and
records it in MODEL_DIR/preprocessing.json, which embed and explore apply too. The loss
curves go to MODEL_DIR/history.png, and for an autoencoder, reconstructions.png.

Nothing already in MODEL_DIR is lost to a failed fit: training runs in a temporary folder
beside it, which replaces MODEL_DIR in one rename once the model is saved. With --overwrite,
a fit that fails (unreadable DATA, NaN pixels, a diverging loss) leaves the previous model
and checkpoint as they were; one that is interrupted keeps the previous model and puts its
own checkpoint in MODEL_DIR/checkpoint, for --resume.
"""

import ast
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import warnings
from pathlib import Path

from skastro._permissions import match_permissions
from skastro.commands._data import add_data_arguments
from skastro.commands._errors import CommandError, error_line, reports_errors
from skastro.commands._figures import FIT_FIGURES, write_fit_figures
from skastro.commands._output import replace_folder
from skastro.commands._preprocessing import PREPROCESSING_FILE, add_stretch_argument

CHECKPOINT_DIR = "checkpoint"
EXIT_INTERRUPTED = 130
# parameters that the command line manages itself
_MANAGED = ("callbacks",)
# parameters that may differ between a checkpoint and the command that resumes it
_FREE_ON_RESUME = ("max_epochs", "verbose", "device", "callbacks", "warm_start")


class UsageError(CommandError):
    """A problem with the command line itself (exit status 2)."""

    def __init__(self, message):
        super().__init__(message, status=2)


def add_arguments(parser):
    """Add the ``fit`` options to ``parser``."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="estimator to train: lowercase class name, e.g. convautoencoder, vicregembedder",
    )
    parser.add_argument(
        "data",
        metavar="DATA",
        help="FITS file or folder, .npy file (SDSS layout or plain array), folder of "
        "PNG/JPEG images, or HDF5 file (with --key)",
    )
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="folder to save into")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an estimator parameter (repeatable), e.g. --param n_components=8",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="total number of training epochs (sets max_epochs); with --resume, training "
        "continues until the model has been trained for this many epochs in all",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="where to train (default: the estimator's, 'auto' = CUDA when available)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh even if MODEL_DIR already holds a model or a checkpoint (they are "
        "replaced only once the new model is saved)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the epoch table")
    add_stretch_argument(parser)
    add_data_arguments(parser)


def _error(message):
    error_line("fit", message)


# ----------------------------------------------------------------------------- estimators
def fittable_models():
    """Return ``{lowercase name: class}`` of the estimators ``skastro fit`` can train.

    Those are skastro's public estimators that import here and can be fitted on images,
    embed them (``transform``) and be saved (``save``): estimators added later appear here
    without changes to the command line.

    Examples
    --------
    >>> "convautoencoder" in fittable_models()
    True
    """
    from skastro._registry import estimator_classes

    return {
        name.lower(): cls
        for name, cls in estimator_classes().items()
        if all(callable(getattr(cls, method, None)) for method in ("fit", "transform", "save"))
    }


def resolve_model(name):
    """The estimator class for a ``MODEL`` argument (case-insensitive), or a UsageError."""
    from skastro._registry import PUBLIC, public_class

    wanted = name.lower().replace("-", "").replace("_", "")
    for public in PUBLIC:
        if public.lower() == wanted:
            cls = public_class(public)
            if cls is not None and all(
                callable(getattr(cls, m, None)) for m in ("fit", "transform", "save")
            ):
                return cls
    available = ", ".join(sorted(fittable_models()))
    raise UsageError(f"unknown model {name!r}; choose one of: {available}")


def parse_value(text):
    """Read a ``--param`` value: JSON, else a Python literal, else the text itself.

    Examples
    --------
    >>> parse_value("8"), parse_value("[16, 32]"), parse_value("(4, 8)"), parse_value("pca")
    (8, [16, 32], (4, 8), 'pca')
    >>> parse_value("true"), parse_value("None")
    (True, None)
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _coerce(value, default):
    # JSON has no tuples: a list given for a parameter whose default is a tuple becomes one
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def parse_params(pairs, cls):
    """Turn ``NAME=VALUE`` strings into parameters of ``cls``; unknown names are an error.

    Examples
    --------
    >>> from skastro import ConvAutoencoder
    >>> parse_params(["n_components=4", "widths=[8,16]"], ConvAutoencoder)
    {'n_components': 4, 'widths': (8, 16)}
    """
    defaults = cls().get_params(deep=False)
    valid = sorted(name for name in defaults if name not in _MANAGED)
    params = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--param takes NAME=VALUE, got {pair!r}")
        if name not in valid:
            raise UsageError(
                f"unknown parameter {name!r} for {cls.__name__}; valid names: {', '.join(valid)}"
            )
        params[name] = _coerce(parse_value(text.strip()), defaults[name])
    return params


def _check_params(cls, params):
    from sklearn.utils._param_validation import InvalidParameterError

    estimator = cls(**params)
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise UsageError(str(exc)) from exc
    return estimator


# ----------------------------------------------------------------------------- files
def _check_writable(folder):
    """Create ``folder`` and write a probe file in it, so a bad --out fails before training.

    Returns the folders it created, outermost first (:func:`_remove_created` takes them back
    when the command fails).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"--out {folder} is a file; MODEL_DIR must be a folder (a new one, or one that "
            "holds a model)"
        )
    created = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".skastro-probe-"):
            pass
    except OSError as exc:
        _remove_created(created)
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write to --out {folder}: {reason}") from exc
    return created


def _remove_created(created):
    """Remove the folders :func:`_check_writable` made, innermost first, while empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return  # something was written there (e.g. a checkpoint): keep it


def find_checkpoint(folder):
    """The checkpoint folder in a MODEL_DIR, or None (an interrupted swap leaves ``.old``)."""
    from skastro.serialization import MODEL_FILE

    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        candidate = Path(folder) / name
        if (candidate / MODEL_FILE).is_file():
            return candidate
    return None


def write_checkpoint(estimator, net, folder, params):
    """Write a checkpoint next to the old one, then swap them, so one is always complete."""
    from skastro.serialization import save_training_state

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save_training_state(estimator, net, tmp, params=params)
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _model_entries():
    """Names in a MODEL_DIR that belong to a saved model (replaced by a new fit)."""
    from skastro import serialization as s

    return {
        s.MODEL_FILE,
        s.WEIGHTS_FILE,
        s.HISTORY_FILE,
        s.ARRAYS_FILE,
        s.OPTIMIZER_FILE,
        s.PARTS_DIR,
        PREPROCESSING_FILE,
        *FIT_FIGURES,
        f"{CHECKPOINT_DIR}.old",
        f"{CHECKPOINT_DIR}.tmp",
    }


def _staging_folder(out):
    """A new empty folder for the fit, on the same filesystem as ``out`` (beside it)."""
    out = out.resolve()
    parent = out.parent
    try:
        here = Path.cwd().resolve()
    except OSError:
        here = None
    if os.stat(parent).st_dev != os.stat(out).st_dev or (
        here is not None and (here == out or out in here.parents)
    ):
        # MODEL_DIR is a mount point, or the working folder (--out .) or one holding it:
        # stage inside it and replace its files (see commit_model); swapping the folder
        # itself would leave the shell in a deleted folder
        parent = out
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.fit-", dir=parent))
    match_permissions(staging, like=out)  # it becomes `out`: keep out's mode, not 0700
    return staging


def commit_model(staging, out, keep_checkpoint):
    """Make ``staging`` (a saved model, maybe a checkpoint) the content of ``out``.

    Entries of ``out`` that are not part of a model (files the user keeps there) move along;
    so does ``out``'s checkpoint when ``keep_checkpoint`` (a resumed fit, whose checkpoint
    lives there). Then the folders are swapped in one rename (:func:`replace_folder`), so
    ``out`` holds the old model or the new one at every instant.
    """
    from skastro.serialization import MODEL_FILE

    out = out.resolve()
    model_entries = _model_entries()
    if not keep_checkpoint:
        model_entries.add(CHECKPOINT_DIR)
    for entry in sorted(out.iterdir()):
        if entry.name in model_entries or entry.resolve() == staging.resolve():
            continue
        if entry.name == CHECKPOINT_DIR and (staging / CHECKPOINT_DIR).exists():
            continue
        os.rename(entry, staging / entry.name)
    if staging.parent == out:
        # out is a mount point: no folder swap; replace the files, model.json last and only
        # once every file it names is in place (the old one is removed first)
        with contextlib.suppress(FileNotFoundError):
            (out / MODEL_FILE).unlink()
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == MODEL_FILE):
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
        shutil.rmtree(staging, ignore_errors=True)
        return
    replace_folder(staging, out)


def install_checkpoint(staged, out):
    """Move a checkpoint written during training into ``out/checkpoint`` (swap-safe)."""
    target = out / CHECKPOINT_DIR
    old = out / f"{CHECKPOINT_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- interruption
class InterruptGuard:
    """Turn Ctrl+C into KeyboardInterrupt, except while a checkpoint is being written.

    A checkpoint cut in half would be worse than none, so an interrupt that arrives while one
    is written is held back until the write has finished. The interrupt is also remembered:
    Python runs a signal handler wherever the main thread happens to be, and a
    KeyboardInterrupt raised inside a finalizer or a logging lock's release is printed as
    "Exception ignored" and lost, so training would go on. :meth:`check`, called after every
    batch, raises it again at a safe point.
    """

    def __init__(self):
        self.count = 0
        self._shielded = False
        self._pending = False
        self._previous = None

    def _handler(self, signum, frame):
        self.count += 1
        if self._shielded:
            self._pending = True
            return
        raise KeyboardInterrupt

    @property
    def requested(self):
        """Whether Ctrl+C has been pressed since the guard was made."""
        return self.count > 0

    def check(self):
        """Raise KeyboardInterrupt if Ctrl+C was pressed (outside a checkpoint write)."""
        if self.requested and not self._shielded:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        self._previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, self._previous)

    @contextlib.contextmanager
    def shield(self, reraise=True):
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False
            pending, self._pending = self._pending, False
        if pending and reraise:
            raise KeyboardInterrupt


def _make_checkpoint_callback(folder, saved_params, guard):
    import torch
    from skorch.callbacks import Callback

    class EpochCheckpoint(Callback):
        """Save weights, optimizer state and history after every epoch with finite weights;
        stop after the batch in which Ctrl+C was pressed, if its interrupt was lost."""

        def on_batch_end(self, net, **kwargs):
            guard.check()

        def on_epoch_end(self, net, **kwargs):
            finite = all(bool(torch.isfinite(p).all()) for p in net.module_.parameters())
            if not finite:  # keep the last good checkpoint; the NaN guard stops training next
                return
            with guard.shield():
                write_checkpoint(net.plan, net, folder, saved_params)

    return EpochCheckpoint()


def _make_plain_log_callback():
    """Strip the colour codes of skorch's epoch table when stdout is not a terminal."""
    import re

    from skorch.callbacks import Callback, PrintLog

    ansi = re.compile(r"\x1b\[[0-9;]*m")

    def plain_print(text, *args, **kwargs):
        print(ansi.sub("", str(text)), *args, **kwargs)

    class PlainLog(Callback):
        def on_train_begin(self, net, **kwargs):
            for _, callback in net.callbacks_:
                if isinstance(callback, PrintLog) and callback.sink is print:
                    callback.sink = plain_print

    return PlainLog()


def _completed_epochs(history):
    return sum(1 for row in history if "dur" in row)


# ----------------------------------------------------------------------------- command
@reports_errors("fit")
def run(args):
    """Run ``skastro fit``; returns the exit status."""
    # epoch lines must reach logs and pipes as they are printed, not at exit
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)
    guard = InterruptGuard()
    with guard.installed(), warnings.catch_warnings():
        # the command prints its own, more useful, message when training is interrupted
        warnings.filterwarnings("ignore", message="training of .* was interrupted")
        return _fit(args, guard)


def _fit(args, guard):
    cls = resolve_model(args.model)
    params = parse_params(args.param, cls)
    if args.device is not None:
        params["device"] = args.device
    if args.epochs is not None:
        if args.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
        params["max_epochs"] = args.epochs
    estimator = _check_params(cls, params)
    if args.device is not None:
        from skastro.base import resolve_device

        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    out = Path(args.out)
    created = _check_writable(out)
    try:
        status = _fit_into(args, guard, cls, params, estimator, out)
    except BaseException:
        _remove_created(created)  # a failed command leaves no new empty folders behind
        raise
    if status != 0:
        _remove_created(created)
    return status


def _fit_into(args, guard, cls, params, estimator, out):
    from skastro.exceptions import ModelFormatError
    from skastro.serialization import read_model_info

    checkpoint_dir = out / CHECKPOINT_DIR

    checkpoint = find_checkpoint(out)
    previous = checkpoint is not None or os.path.lexists(out / "model.json")
    info = None
    if args.resume:
        if checkpoint is None:
            raise UsageError(f"--resume: no checkpoint in {checkpoint_dir} to continue from")
        try:
            info = read_model_info(checkpoint)
        except ModelFormatError as exc:
            raise UsageError(f"--resume: {exc}") from exc
        _check_resumable(info, cls, params)
    elif previous and not args.overwrite:
        raise UsageError(
            f"{out} already holds a model or a checkpoint; pass --resume to continue "
            "training it, or --overwrite to start afresh"
        )
    # nothing in `out` is touched before this point, nor after it until the new model is saved

    data = _open(args)
    staging = _staging_folder(out)
    try:
        return _train(args, guard, cls, estimator, data, out, staging, previous, info)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _train(args, guard, cls, estimator, data, out, staging, previous, info):
    from skastro.exceptions import NonFiniteLossError
    from skastro.serialization import read_model_info

    user_verbose = estimator.get_params()["verbose"]
    checkpoint_dir = out / CHECKPOINT_DIR
    # a new fit writes its checkpoints into the staging folder; a resumed one continues its own
    train_checkpoints = checkpoint_dir if args.resume else staging / CHECKPOINT_DIR
    images = data.images
    shape = "x".join(str(s) for s in images.shape[1:])
    skipped = f", {len(data.skipped)} unreadable file(s) skipped" if data.skipped else ""
    print(f"read {len(images)} images of shape {shape} ({data.kind}) from {args.data}{skipped}")
    images = _stretched(images, args, out, staging)

    saved_params = {"callbacks": None, "verbose": user_verbose}
    callbacks = [("checkpoint", _make_checkpoint_callback(train_checkpoints, saved_params, guard))]
    if not sys.stdout.isatty() and not args.quiet:
        # (skorch prints through any sink but print() even at verbose=0, so not when quiet)
        callbacks.append(("plain_log", _make_plain_log_callback()))
    train_verbose = 0 if args.quiet else max(1, int(user_verbose))
    try:
        if args.resume:
            estimator, total, done = _resume(args, info, out, callbacks, train_verbose)
            if done >= total:
                print(f"already trained for {done} epochs (--epochs {total}); nothing to resume")
                estimator.interrupted_ = False  # the checkpoint's own stop is not this run's
            else:
                print(f"resuming {cls.__name__} at epoch {done + 1} of {total}")
                estimator.partial_fit(images, epochs=total - done)
        else:
            total = estimator.max_epochs
            estimator.set_params(callbacks=callbacks, verbose=train_verbose)
            print(f"training {cls.__name__} for {total} epochs")
            estimator.fit(images)
    except NonFiniteLossError as exc:
        _error(str(exc))
        staged = find_checkpoint(staging)
        if args.resume or (staged is not None and not previous):
            with guard.shield(reraise=False):
                if staged is not None:
                    install_checkpoint(staged, out)
            kept = find_checkpoint(out)
            if kept is not None:
                epochs = read_model_info(kept)["network"]["epochs"]
                print(
                    f"the last good checkpoint ({epochs} epoch(s)) is kept in {kept}",
                    file=sys.stderr,
                )
        elif previous:
            print(f"the previous model and checkpoint in {out} are unchanged", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        with guard.shield(reraise=False):
            staged = find_checkpoint(staging)
            if staged is not None:
                install_checkpoint(staged, out)
        kept = find_checkpoint(out) if args.resume or staged is not None else None
        where = (
            f"; the checkpoint in {kept} holds {read_model_info(kept)['network']['epochs']} "
            "epoch(s), continue with --resume"
            if kept is not None
            else "; no epoch had finished, nothing was saved"
        )
        unchanged = f" (the previous model in {out} is unchanged)" if previous else ""
        print(f"interrupted before training finished{where}{unchanged}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # e.g. NaN pixels, or images too small for the network
        _error(str(exc))
        if previous:
            print(f"the previous model and checkpoint in {out} are unchanged", file=sys.stderr)
        return 1

    net = estimator.net_
    completed = _completed_epochs(net.history)
    if estimator.interrupted_ or completed < total:
        with guard.shield(reraise=False):
            write_checkpoint(estimator, net, train_checkpoints, saved_params)
            if not args.resume:
                install_checkpoint(train_checkpoints, out)
        unchanged = (
            f"; the previous model in {out} is unchanged" if previous and not args.resume else ""
        )
        print(
            f"interrupted at epoch {len(net.history)}: {completed} of {total} epochs completed; "
            f"checkpoint saved to {checkpoint_dir} (run the same command with --resume to "
            f"continue){unchanged}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED

    estimator.set_params(**saved_params)
    # drawn into the staging folder, so they arrive with the model and never alone
    figures = write_fit_figures(estimator, images, staging)
    with guard.shield(reraise=False):
        # the new model is complete in the staging folder before `out` changes at all
        estimator.save(staging)
        commit_model(staging, out, keep_checkpoint=args.resume)
    loss = net.history[-1].get("train_loss")
    loss_text = f", final train_loss {loss:.4g}" if isinstance(loss, float) else ""
    print(f"saved {cls.__name__} trained for {completed} epochs{loss_text} to {out}")
    if figures:
        print(f"wrote {' and '.join(figures)} to {out}")
    print(f"embed images with: skastro embed {out} DATA --out embeddings.npz")
    return 0


def _open(args):
    from skastro.commands._data import open_images

    return open_images(args)


def _stretched(images, args, out, staging):
    """The images as the model trains on them (``--stretch``), recorded in the staging
    folder that becomes MODEL_DIR (``out`` itself is not touched here)."""
    from skastro.commands._preprocessing import read_stretch, stretch_images, write_stretch

    stretch = None if args.stretch == "none" else args.stretch
    if args.resume:
        saved = read_stretch(out)
        if args.stretch is not None and stretch != saved:
            raise UsageError(
                f"--resume continues a fit made with --stretch {saved or 'none'}, not "
                f"{args.stretch}; drop --stretch or start afresh with --overwrite"
            )
        stretch = saved
    write_stretch(staging, stretch)
    if stretch is not None:
        print(f"scaling every image with the {stretch} stretch (skastro.ImageScaler)")
    return stretch_images(images, stretch)


def _check_resumable(info, cls, params):
    """A checkpoint continues only the fit that wrote it: same class and parameters."""
    from skastro.serialization import decode_parameter

    if info.get("class") != cls.__name__:
        raise UsageError(f"--resume: the checkpoint is a {info.get('class')}, not a {cls.__name__}")
    if not info.get("network"):
        raise UsageError("--resume: the checkpoint holds no trained network")
    for name, value in params.items():
        if name in _FREE_ON_RESUME or name not in info.get("params", {}):
            continue
        try:
            saved = decode_parameter(info["params"][name])
        except Exception:  # an array or estimator parameter: not settable from here anyway
            continue
        if saved != value:
            raise UsageError(
                f"--resume continues the saved fit, whose {name} is {saved!r}, not {value!r}; "
                "drop --resume and pass --overwrite to start a new fit with other parameters"
            )


def _resume(args, info, out, callbacks, train_verbose):
    from skastro.serialization import load_training_state

    checkpoint = find_checkpoint(out)
    done = int(info["network"]["epochs"])
    total = args.epochs
    if total is None:  # the total the interrupted command asked for
        saved_max = info.get("params", {}).get("max_epochs")
        total = saved_max if isinstance(saved_max, int) else done
    estimator = load_training_state(
        checkpoint,
        device=args.device,
        params={
            "callbacks": callbacks,
            "verbose": train_verbose,
            "max_epochs": total,
        },
    )
    return estimator, total, done
