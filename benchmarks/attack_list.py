"""The attack list of issue 27: skastro used as a hostile or careless user would use it.

About 450 cases against the loaders, the estimators, model folders, the command line and the
explorer's callbacks: malformed and special files, absurd parameters, crafted model folders
(paths leaving the folder, symbolic links, huge sizes, NaN statistics and weights, unknown
fitted attributes), outputs that already exist, interrupted and failing fits, and callback
requests whose JSON has the wrong structure. Every case is run in-process (a Ctrl+C case in a
subprocess) and its outcome is classified, worst first:

``data lost``
    A file that existed before the case (an input, a saved model, an output) was changed or
    removed although the case should have left it alone.
``read outside``
    Something outside the model folder (or the data) was opened: a named pipe planted there is
    opened (caught even from C and Rust code), or Python opened a path there.
``hung``
    The case did not finish within its time limit.
``silently wrong``
    No error, but a wrong result: bad input accepted, an output of NaN, a value ignored.
``traceback``
    An exception of an undocumented type, or raised inside a dependency rather than by
    skastro's own checks (the user sees a traceback from deep inside a library); on the
    command line, a traceback or an "internal error" line; in the explorer, HTTP 500.
``refused valid input``
    A valid input refused (a regression guard for the cases that must succeed).
``clean``
    A documented exception raised by skastro with a clear message, or the expected success.

Usage::

    python benchmarks/attack_list.py                      # writes results/reliability.md
    python benchmarks/attack_list.py --json before.json   # raw outcomes, e.g. of an old tree
    python benchmarks/attack_list.py --baseline benchmarks/results/reliability_before.json
                                                          # adds the "before" tables
    python benchmarks/attack_list.py --only model --verbose

The process limits its address space (``--memory-gb``, default 8) so that a case that makes an
old version allocate terabytes fails at once instead of exhausting a shared machine.
"""

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CATEGORIES = (
    "data lost",
    "read outside",
    "hung",
    "silently wrong",
    "traceback",
    "refused valid input",
    "clean",
)
BAD = CATEGORIES[:-1]
CASE_SECONDS = 90


class Hung(BaseException):
    """Raised by the alarm when a case runs past its time limit."""


# ============================================================================ the harness
class Watch:
    """Detects reads outside the allowed places: a planted FIFO, and Python-level opens."""

    active = None  # the Ctx whose outside folder is watched

    @staticmethod
    def hook(event, args):
        ctx = Watch.active
        if ctx is None or event != "open" or not args or not isinstance(args[0], str | bytes):
            return
        path = os.fsdecode(args[0])
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError):
            return
        if real.startswith(str(ctx.outside_real) + os.sep):
            ctx.outside_reads.append(f"open({path})")


sys.addaudithook(Watch.hook)


class Ctx:
    """One case's sandbox: a work folder, an 'outside' folder with a FIFO, protected files."""

    def __init__(self, root):
        self.root = Path(root)
        self.work = self.root / "work"
        self.work.mkdir()
        self.outside = self.root / "outside"
        self.outside.mkdir()
        self.outside_real = self.outside.resolve()
        self.fifo = self.outside / "secret.fifo"
        os.mkfifo(self.fifo)
        self.protected = {}
        self.outside_reads = []
        self.pipes = []  # named pipes inside the sandbox: opening one would block forever
        self.pipes_opened = []
        self.result = None
        self.exc = None
        self.stdout = self.stderr = ""
        self.status = None
        self.kind = "api"
        self.expect = "error"
        self.note = None
        self.warnings = []

    def pipe(self, path):
        """Make a named pipe at ``path``; a read of it is recorded (it would never end)."""
        os.mkfifo(path)
        self.pipes.append(Path(path))
        return Path(path)

    def protect(self, *paths):
        """Remember files whose content must not change (folders: every file inside)."""
        for path in paths:
            path = Path(path)
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            for file in files:
                self.protected[file] = _digest(file)

    def changed(self):
        lost = []
        for file, digest in self.protected.items():
            if not file.exists():
                lost.append(f"{file.name} removed")
            elif _digest(file) != digest:
                lost.append(f"{file.name} changed")
        return lost

    # -- running the attack ------------------------------------------------------------------
    @contextlib.contextmanager
    def watching(self):
        # The pipes are watched from another process: code that opens a pipe may block in
        # native code while holding the GIL (safetensors does), where no thread of this
        # process could run to unblock it.
        stop = self.root / "stop-watching"
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-S",
                "-c",
                PIPE_WATCHER,
                str(stop),
                str(self.fifo),
                *map(str, self.pipes),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        Watch.active = self
        try:
            yield
        finally:
            Watch.active = None
            stop.touch()
            output, _ = watcher.communicate(timeout=30)
            for line in output.splitlines():
                if line == str(self.fifo):
                    self.outside_reads.append("the FIFO outside was opened for reading")
                elif line:
                    self.pipes_opened.append(f"{Path(line).name}, a named pipe, was opened")

    def act(self, action, expect="error"):
        """Run the attack ``action()``; ``expect``: "error", "ok", "either" or a check."""
        self.expect = expect
        with self.watching(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.result = action()
            except Hung:
                raise
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.exc = exc
        self.warnings = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        return self.result

    def cli(self, *argv, expect="error"):
        """Run ``skastro ARGV`` in-process, as a user sees it (stdout, stderr, status)."""
        from skastro.cli import main

        self.kind = "cli"
        self.command = argv[0]
        out, err = io.StringIO(), io.StringIO()

        def run():
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    return main([str(a) for a in argv])
                except SystemExit as exc:  # argparse's own usage errors
                    return exc.code if isinstance(exc.code, int) else 2

        self.act(run, expect=expect)
        self.status, self.stdout, self.stderr = self.result, out.getvalue(), err.getvalue()
        return self.status


# Opens each named pipe given for writing, without blocking: that succeeds only while
# something has it open for reading, which it then unblocks (the reader sees end-of-file).
PIPE_WATCHER = """
import os, sys, time
stop, pipes = sys.argv[1], sys.argv[2:]
while not os.path.exists(stop):
    for pipe in pipes:
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue
        print(pipe, flush=True)
        os.close(fd)
    time.sleep(0.002)
"""


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _origin(exc):
    """``(file, line)`` where an exception was raised (the innermost traceback frame)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?", 0
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def _in_skastro(filename):
    return f"{os.sep}skastro{os.sep}" in filename and "site-packages" not in filename.replace(
        f"site-packages{os.sep}skastro", ""
    )


def _api_clean(exc):
    """Whether an exception is one skastro documents, raised by skastro's own checks."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils._param_validation import InvalidParameterError

    from skastro.exceptions import DataLoadError, ModelFormatError, NonFiniteLossError

    if isinstance(exc, InvalidParameterError | NotFittedError):
        return True  # the estimators' own parameter checks, through scikit-learn
    documented = (
        DataLoadError,
        ModelFormatError,
        NonFiniteLossError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    )
    return isinstance(exc, documented) and _in_skastro(_origin(exc)[0])


def classify(ctx):
    """``(category, detail)`` of a finished case."""
    lost = ctx.changed()
    if lost:
        return "data lost", ", ".join(lost[:3])
    if ctx.outside_reads:
        return "read outside", ctx.outside_reads[0]
    if ctx.pipes_opened:
        return "hung", f"{ctx.pipes_opened[0]}: reading it blocks until something writes to it"
    if ctx.kind == "http":
        code = ctx.result
        if code is None or code >= 500:
            return "traceback", f"HTTP {code}"
        return "clean", f"HTTP {code}"
    if ctx.kind == "cli":
        return _classify_cli(ctx)
    if ctx.exc is not None:
        exc = ctx.exc
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        if _api_clean(exc):
            return ("refused valid input", text) if ctx.expect == "ok" else ("clean", text)
        where = "{}:{}".format(*_origin(exc))
        return "traceback", f"{text} (raised at {_short(where)})"
    if ctx.expect == "error":
        if ctx.warnings:  # not silent: the user was told what was changed
            return "clean", f"warned: {' '.join(ctx.warnings[0].split())[:160]}"
        return "silently wrong", f"accepted; returned {_summary(ctx.result)}"
    if callable(ctx.expect):
        problem = ctx.expect(ctx.result)
        if problem:
            return "silently wrong", problem
    return "clean", f"returned {_summary(ctx.result)}"


def _classify_cli(ctx):
    if ctx.exc is not None:
        exc = ctx.exc
        where = "{}:{}".format(*_origin(exc))
        return "traceback", f"{type(exc).__name__} escaped main() at {_short(where)}"
    err = ctx.stderr
    if "Traceback (most recent call last)" in err or "internal error" in err:
        last = [line for line in err.splitlines() if line.strip()][-1:]
        return "traceback", f"status {ctx.status}: {' '.join(last)[:200]}"
    if ctx.expect == "ok":
        if ctx.status == 0:
            return "clean", "status 0"
        return "refused valid input", f"status {ctx.status}: {_last_line(err)}"
    if ctx.status == 0:
        if callable(ctx.expect):
            problem = ctx.expect(ctx)
            return ("silently wrong", problem) if problem else ("clean", "status 0")
        if ctx.expect == "either":
            return "clean", "status 0"
        return "silently wrong", f"status 0: {_last_line(ctx.stdout)}"
    lines = [line for line in err.splitlines() if line.strip()]
    prefix = f"skastro {ctx.command}: error:"
    usage = any(line.startswith("usage:") for line in lines)
    if not any(line.startswith(prefix) for line in lines) and not usage:
        return "traceback", f"status {ctx.status} without an error line: {_last_line(err)}"
    return "clean", f"status {ctx.status}: {_last_line(err)}"


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[-1].split())[:220] if lines else ""


def _short(path):
    path = path.replace(str(Path(sys.prefix)), "<venv>")
    return path.replace(str(HERE.parent), "<repo>")


def _summary(value):
    if isinstance(value, np.ndarray):
        return f"array {value.shape} {value.dtype}"
    text = repr(value)
    return text[:80] + ("..." if len(text) > 80 else "")


def run_case(case, root, verbose=False):
    area, name, fn = case
    folder = Path(tempfile.mkdtemp(dir=root))
    ctx = Ctx(folder)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    started = time.perf_counter()
    try:
        fn(ctx)
        category, detail = classify(ctx)
    except Hung:
        category, detail = "hung", f"still running after {CASE_SECONDS} s"
    except Exception as exc:
        category = "harness error"
        detail = f"{type(exc).__name__}: {exc}"
        if verbose:
            traceback.print_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - started
    return {"area": area, "case": name, "category": category, "detail": detail, "s": seconds}


def _alarm(signum, frame):
    raise Hung


# ============================================================================ shared inputs
def blobs(n=24, size=16, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    width = rng.uniform(1.5, 5, size=(n, 1, 1, 1))
    images = np.exp(-(xx**2 + yy**2) / (2 * width**2)) + 0.05 * rng.normal(
        size=(n, channels, size, size)
    )
    return images.astype(np.float32)


TINY = {"n_components": 2, "widths": (4,), "max_epochs": 1, "batch_size": 8, "device": "cpu"}
TINY_CLI = ["--param", "widths=[4]", "--param", "n_components=2", "--param", "random_state=0"]
_MODELS = {}


def saved_model(kind):
    """A model folder saved once per run, copied into each case that needs it."""
    if kind not in _MODELS:
        import skastro

        folder = Path(tempfile.mkdtemp(prefix=f"attack-{kind}-"))
        X = blobs()
        if kind == "conv":
            model = skastro.ConvAutoencoder(random_state=0, **TINY).fit(X)
        elif kind == "kfold":
            member = skastro.ConvAutoencoder(random_state=0, **TINY)
            model = skastro.KFoldEnsemble(member, n_splits=2, random_state=0).fit(X)
        elif kind == "condvae":
            model = skastro.CondVAEClassifier(random_state=0, **TINY).fit(X)
        else:  # pragma: no cover
            raise ValueError(kind)
        model.save(folder)
        _MODELS[kind] = folder
    return _MODELS[kind]


def copy_model(ctx, kind="conv", name="model"):
    target = ctx.work / name
    shutil.copytree(saved_model(kind), target, symlinks=True)
    return target


def edit_json(path, change):
    info = json.loads(Path(path).read_text())
    result = change(info)
    Path(path).write_text(json.dumps(result if result is not None else info))


def finite_output(result):
    if (
        isinstance(result, np.ndarray)
        and result.dtype.kind == "f"
        and not np.isfinite(result).all()
    ):
        return "returned NaN or inf values"
    return None


# ============================================================================ loaders
def _fits_bytes(data=None, header_extra=()):
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.zeros((8, 8), ">f4") if data is None else data)
    for key, value in header_extra:
        hdu.header[key] = value
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def _png_bytes(shape=(8, 8), mode="L"):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes():
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _h5_file(path, **datasets):
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)


def _sdss(n=2, image_dtype="f4", shape=(5, 8, 8), fields=("objID", "image", "class", "z")):
    dtypes = {"objID": ("i8",), "image": (image_dtype, shape), "class": ("U6",), "z": ("f8",)}
    array = np.zeros(n, dtype=[(f, *dtypes[f]) for f in fields])
    if "class" in fields:
        array["class"] = "STAR"
    return array


def _truncate(data, fraction):
    return data[: max(1, int(len(data) * fraction))]


def _hdf5_bytes(**datasets):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.h5"
        _h5_file(path, **datasets)
        return path.read_bytes()


def _bad_crc_png():
    data = bytearray(_png_bytes())
    data[-20] ^= 0xFF  # inside the IDAT chunk: its CRC no longer matches
    return bytes(data)


def _bomb_png():
    """A PNG whose header claims 60000 x 60000 pixels (Pillow's decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, payload):
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )


def loader_cases():
    from astropy.io import fits

    cases = []
    good_fits = _fits_bytes()
    fits_files = {
        "empty file": b"",
        "random bytes": np.random.default_rng(0).bytes(2880),
        "text": b"hello, this is not FITS\n" * 200,
        "truncated in the header": good_fits[:1000],
        "truncated in the data": good_fits[:3000],
        "missing padding": good_fits[: 2880 + 256],
        "NAXIS1 huge, data short": _fits_bytes(header_extra=[]).replace(
            b"NAXIS1  =                    8", b"NAXIS1  =           1000000000"
        ),
        "NAXIS=5": _fits_bytes(np.zeros((1, 2, 1, 4, 4), ">f4")),
        "1-D data": _fits_bytes(np.zeros(16, ">f4")),
        "bad BITPIX": good_fits.replace(
            b"BITPIX  =                  -32", b"BITPIX  =                  -17"
        ),
        "NaN pixels (valid)": _fits_bytes(np.full((8, 8), np.nan, ">f4")),
        "valid image": good_fits,
        "gzip garbage": b"\x1f\x8b" + b"\x00" * 100,
    }
    expect_ok = {"NaN pixels (valid)", "valid image"}
    for label, data in fits_files.items():
        suffix = ".fits.gz" if label == "gzip garbage" else ".fits"
        expect = "ok" if label in expect_ok else "error"
        for via in ("load_fits", "open_data"):
            cases.append(
                ("loaders", f"FITS {label} via {via}", _file_case(data, suffix, via, expect))
            )
    # a table only, a bad checksum
    table = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="E", array=np.zeros(3))])])  # fmt: skip
    buffer = io.BytesIO()
    table.writeto(buffer)
    cases.append(
        (
            "loaders",
            "FITS with a table and no image",
            _file_case(buffer.getvalue(), ".fits", "load_fits"),
        )
    )
    checked = fits.PrimaryHDU(np.zeros((8, 8), ">f4"))
    buffer = io.BytesIO()
    checked.writeto(buffer, checksum=True)
    damaged = bytearray(buffer.getvalue())
    damaged[2880 + 10] ^= 0x01
    cases.append(
        ("loaders", "FITS failing its CHECKSUM", _file_case(bytes(damaged), ".fits", "load_fits"))
    )

    npy_files = {
        "empty file": b"",
        "text": b"this is text, not an array\n",
        "truncated data": _npy_bytes(np.zeros((10, 8, 8), "f4"))[:300],
        "header claims 10**12 rows": _npy_bytes(np.zeros((1, 8, 8), "f4")).replace(
            b"(1, 8, 8)", b"(1000000000000, 8, 8)"
        ),
        "object dtype (a pickle)": _npy_bytes(np.array([{"a": 1}, None], dtype=object)),
        "complex64": _npy_bytes(np.ones((4, 8, 8), np.complex64)),
        "Fortran order": _npy_bytes(np.asfortranarray(np.zeros((4, 8, 8), "f4"))),
        "a single number": _npy_bytes(np.float32(1.0)),
        "strings": _npy_bytes(np.array(["a", "b"])),
        "valid (n, H, W)": _npy_bytes(np.zeros((4, 8, 8), "f4")),
        "valid big-endian": _npy_bytes(np.zeros((4, 8, 8), ">f4")),
        "bad header dict": b"\x93NUMPY\x01\x00\x10\x00{'descr': ~~~}\n",
    }
    for label, data in npy_files.items():
        expect = "ok" if label.startswith("valid") else "error"
        cases.append(
            (
                "loaders",
                f".npy {label} via open_data",
                _file_case(data, ".npy", "open_data", expect),
            )
        )
    sdss_files = {
        "text": b"objID,image\n1,2\n",
        "empty": b"",
        "plain array": _npy_bytes(np.zeros((2, 5, 8, 8), "f4")),
        "no image field": _npy_bytes(np.zeros(2, dtype=[("objID", "i8")])),
        "complex image field": _npy_bytes(_sdss(image_dtype="c8")),
        "1-D image field": _npy_bytes(_sdss(shape=(8,))),
        "object class field": _npy_bytes(
            np.array([(1, "STAR")], dtype=[("objID", "i8"), ("image", "O")])
        ),
        "truncated": _npy_bytes(_sdss())[:400],
        "valid labelled": _npy_bytes(_sdss()),
        "valid unlabelled": _npy_bytes(_sdss(fields=("image",))),
    }
    for label, data in sdss_files.items():
        expect = "ok" if label.startswith("valid") else "error"
        cases.append(
            (
                "loaders",
                f"SDSS .npy {label} via load_sdss_npy",
                _file_case(data, ".npy", "load_sdss_npy", expect),
            )
        )
    h5 = {
        "text": b"not an HDF5 file",
        "empty": b"",
        "truncated": _hdf5_bytes(images=np.zeros((4, 8, 8), "f4"))[:1500],
        "complex images": _hdf5_bytes(images=np.ones((4, 8, 8), np.complex64)),
        "string images": _hdf5_bytes(images=np.array([b"a", b"b"])),
        "compound images": _hdf5_bytes(images=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])),
        "2-D images": _hdf5_bytes(images=np.zeros((4, 64), "f4")),
        "5-D images": _hdf5_bytes(images=np.zeros((2, 1, 1, 4, 4), "f4")),
        "no 'images' dataset": _hdf5_bytes(other=np.zeros((4, 8, 8), "f4")),
        "valid": _hdf5_bytes(images=np.zeros((4, 8, 8), "f4")),
    }
    for label, data in h5.items():
        expect = "ok" if label == "valid" else "error"
        for via in ("load_hdf5", "open_data"):
            if via == "open_data" or label in ("complex images", "text", "valid", "truncated"):
                cases.append(("loaders", f"HDF5 {label} via {via}", _hdf5_case(data, via, expect)))
    pngs = {
        "empty": (b"", ".png"),
        "text": (b"hello", ".png"),
        "truncated PNG": (_png_bytes()[:40], ".png"),
        "PNG with a bad CRC": (_bad_crc_png(), ".png"),
        "truncated JPEG": (_jpeg_bytes()[:200], ".jpg"),
        "GIF named .png": (b"GIF89a" + b"\x00" * 40, ".png"),
        "decompression bomb": (_bomb_png(), ".png"),
        "valid grey PNG": (_png_bytes(), ".png"),
        "valid JPEG": (_jpeg_bytes(), ".jpg"),
    }
    for label, (data, suffix) in pngs.items():
        expect = "ok" if label.startswith("valid") else "error"
        for via in ("load_image_folder", "open_data"):
            cases.append(
                ("loaders", f"image {label} via {via}", _file_case(data, suffix, via, expect))
            )
    # special files, for every loader
    special_targets = (
        ("load_fits", ".fits"), ("load_sdss_npy", ".npy"), ("load_hdf5", ".h5"),
        ("load_image_folder", ".png"), ("open_data", ".fits"), ("open_data", ".npy"),
    )  # fmt: skip
    for via, suffix in special_targets:
        for special in ("/dev/zero", "/dev/null", "FIFO", "symlink loop", "dangling symlink",
                        "folder named like a file", "missing"):  # fmt: skip
            cases.append(("loaders", f"{special} via {via}", _special_case(special, suffix, via)))
    # folders with several bad files
    sdss, png = _npy_bytes(_sdss()), _png_bytes()
    folder_targets = (
        ("load_fits", ".fits", good_fits), ("load_sdss_npy", ".npy", sdss),
        ("load_image_folder", ".png", png), ("open_data", ".fits", good_fits),
        ("open_data", ".npy", sdss), ("open_data", ".png", png),
    )  # fmt: skip
    for via, suffix, good in folder_targets:
        cases.append(
            (
                "loaders",
                f"folder with 3 bad files via {via} ({suffix})",
                _bad_folder_case(via, suffix, good, skip_bad=False),
            )
        )
        cases.append(
            (
                "loaders",
                f"folder with 3 bad files, skip_bad, via {via} ({suffix})",
                _bad_folder_case(via, suffix, good, skip_bad=True),
            )
        )
    cases.append(("loaders", "FITS folder with two image sizes", _mixed_shapes_case()))
    return cases


def _load(via, path, skip_bad=False):
    from skastro import datasets

    if via == "open_data":
        return datasets.open_data(path, skip_bad=skip_bad)
    if via == "load_hdf5":
        return datasets.load_hdf5(path)
    return getattr(datasets, via)(path, skip_bad=skip_bad)


def _touch_images(bunch):
    """Read every image (lazy loaders read on access) and return them."""
    images = bunch["images"] if isinstance(bunch, dict) else bunch
    return np.asarray(images[: len(images)])


def _file_case(data, suffix, via, expect="error"):
    def case(ctx):
        path = ctx.work / f"input{suffix}"
        path.write_bytes(data)
        if via == "load_image_folder":
            folder = ctx.work / "images"
            folder.mkdir()
            path = path.rename(folder / path.name)
        ctx.protect(path)
        ctx.act(lambda: _touch_images(_load(via, path)), expect=expect)

    return case


def _hdf5_case(data, via, expect):
    def case(ctx):
        path = ctx.work / "input.h5"
        path.write_bytes(data)
        ctx.protect(path)
        ctx.act(lambda: _touch_images(_load(via, path)), expect=expect)

    return case


def _special_case(special, suffix, via):
    def case(ctx):
        if special in ("/dev/zero", "/dev/null"):
            path = Path(special)
        elif special == "FIFO":
            path = ctx.pipe(ctx.work / f"pipe{suffix}")  # must be refused without being opened
        elif special == "symlink loop":
            path = ctx.work / f"loop{suffix}"
            os.symlink(path, path)
        elif special == "dangling symlink":
            path = ctx.work / f"gone{suffix}"
            os.symlink(ctx.work / "nothing", path)
        elif special == "folder named like a file":
            path = ctx.work / f"folder{suffix}"
            path.mkdir()
        else:
            path = ctx.work / f"missing{suffix}"
        ctx.act(lambda: _touch_images(_load(via, path)))

    return case


def _bad_folder_case(via, suffix, good, skip_bad):
    # every good FITS or PNG file holds one image, every good SDSS file two
    expected = 4 if suffix == ".npy" else 2

    def check(result):
        return None if len(result) == expected else f"{len(result)} images, not {expected}"

    def case(ctx):
        folder = ctx.work / "data"
        folder.mkdir()
        for i in range(2):
            (folder / f"good{i}{suffix}").write_bytes(good)
        for i in range(3):
            (folder / f"bad{i}{suffix}").write_bytes(b"garbage " * (i + 1))
        ctx.protect(folder)
        if skip_bad:
            ctx.act(lambda: _touch_images(_load(via, folder, skip_bad=True)), expect=check)
            return
        ctx.act(lambda: _load(via, folder))
        if ctx.exc is not None and not all(f"bad{i}" in str(ctx.exc) for i in range(3)):
            ctx.exc = None
            ctx.result = "an error naming only some of the 3 bad files"

    return case


def _mixed_shapes_case():
    def case(ctx):
        folder = ctx.work / "data"
        folder.mkdir()
        (folder / "a.fits").write_bytes(_fits_bytes(np.zeros((8, 8), ">f4")))
        (folder / "b.fits").write_bytes(_fits_bytes(np.zeros((9, 9), ">f4")))
        ctx.protect(folder)
        ctx.act(lambda: _load("load_fits", folder))

    return case


# ============================================================================ estimators
def estimator_cases():
    import skastro

    cases = []
    X = blobs()
    deep = ["ConvAutoencoder", "VariationalAutoencoder", "VICRegEmbedder", "CondVAEClassifier",
            "ContrastiveDenoiser", "HypercolumnSegmenter"]  # fmt: skip
    bad_params = {
        "batch_size=True": {"batch_size": True},
        "batch_size=0": {"batch_size": 0},
        "batch_size='8'": {"batch_size": "8"},
        "n_components=10**7": {"n_components": 10**7},
        "n_components=0": {"n_components": 0},
        "n_components=2.5": {"n_components": 2.5},
        "widths=()": {"widths": ()},
        "widths='16,32'": {"widths": "16,32"},
        "widths=(10**6,)": {"widths": (10**6,)},
        "widths=('a',)": {"widths": ("a",)},
        "widths=(4,)*40": {"widths": (4,) * 40},
        "lr=nan": {"lr": float("nan")},
        "lr=True": {"lr": True},
        "max_epochs=-1": {"max_epochs": -1},
        "device='meta'": {"device": "meta"},
        "random_state=2**80": {"random_state": 2**80},
        "callbacks='print'": {"callbacks": "print"},
        "image_shape=(3,8,8) for (n,1,16,16)": {"image_shape": (3, 8, 8)},
        "nan_policy='zero'": {"nan_policy": "zero"},
    }
    for name in deep:
        cls = getattr(skastro, name)
        for label, params in bad_params.items():
            if name == "VICRegEmbedder" and "widths" in params:
                params = {**params}
            settings = {**TINY, **params}
            if name == "HypercolumnSegmenter":
                settings.setdefault("n_pixels", 200)
                settings["layers"] = ("input", "enc0")
            cases.append(("estimators", f"{name}({label}).fit", _fit_case(cls, settings, X)))
    # inputs, on the plain autoencoder
    conv = skastro.ConvAutoencoder
    nan = X.copy()
    nan[3, 0, 4, 4] = np.nan
    inf = X.copy()
    inf[5, 0, 1, 1] = np.inf
    inputs = {
        "NaN pixels": (nan, "error"),
        "inf pixels": (inf, "error"),
        "complex images": (X.astype(np.complex64), "error"),
        "strings": (np.full((4, 8, 8), "a"), "error"),
        "object array of numbers": (X.astype(object), "ok"),
        "no images": (X[:0], "error"),
        "one pixel per image": (X[:, :, :1, :1], "either"),
        "1-D array": (X.ravel(), "error"),
        "5-D array": (X[:, None], "error"),
        "float64 beyond float32 (4e38)": (np.full((8, 1, 8, 8), 4e38), "error"),
        "a list of lists": (X[:8, 0].tolist(), "ok"),
        "big-endian float32": (X.astype(">f4"), "ok"),
        "flat rows, not square": (X.reshape(len(X), -1)[:, :200], "error"),
    }
    for label, (data, expect) in inputs.items():
        cases.append(
            ("estimators", f"ConvAutoencoder.fit({label})", _fit_case(conv, TINY, data, expect))
        )
    cases.append(
        ("estimators", "transform before fit", _call_case(lambda: conv(**TINY).transform(X)))
    )
    cases.append(
        (
            "estimators",
            "transform with other channels",
            _fitted_call(lambda m: m.transform(blobs(channels=2))),
        )
    )
    cases.append(
        (
            "estimators",
            "transform with other sizes",
            _fitted_call(lambda m: m.transform(blobs(size=8))),
        )
    )
    cases.append(("estimators", "transform with NaN", _fitted_call(lambda m: m.transform(nan))))
    cases.append(
        (
            "estimators",
            "partial_fit with other shapes",
            _fitted_call(lambda m: m.partial_fit(blobs(size=8))),
        )
    )
    cases.append(
        (
            "estimators",
            "transform of 3e38 images",
            _fitted_call(
                lambda m: m.transform(np.full((4, 1, 16, 16), 3e38, np.float32)),
                expect=finite_output,
            ),
        )
    )
    # ImageScaler
    scaler = skastro.ImageScaler
    huge = np.random.default_rng(0).uniform(-3.4e38, 3.4e38, (6, 1, 8, 8)).astype(np.float32)
    scaler_inputs = {
        "finite values near 3e38": (
            lambda: scaler().fit_transform(np.full((4, 1, 8, 8), 3e38, np.float32)),
            finite_output,
        ),
        "finite values in +-3.4e38": (lambda: scaler().fit_transform(huge), finite_output),
        "+-3.4e38, per_image=False": (
            lambda: scaler(per_image=False).fit_transform(huge),
            finite_output,
        ),
        "+-3.4e38, percentile=None": (
            lambda: scaler(percentile=None).fit_transform(huge),
            finite_output,
        ),
        "+-3.4e38, inverse_transform": (
            lambda: (
                scaler(per_image=False)
                .fit(huge)
                .inverse_transform(scaler(per_image=False).fit_transform(huge))
            ),
            finite_output,
        ),
        "complex images": (lambda: scaler().fit_transform(X.astype(np.complex64)), "error"),
        "softening=True": (lambda: scaler(softening=True).fit(X), "error"),
        "percentile=(90, 10)": (lambda: scaler(percentile=(90, 10)).fit(X), "error"),
        "percentile='x'": (lambda: scaler(percentile="x").fit(X), "error"),
        "5-D images": (lambda: scaler().fit(X[:, None]), "error"),
        "all-NaN images": (lambda: scaler().fit_transform(np.full((2, 1, 4, 4), np.nan)), "either"),
    }
    for label, (action, expect) in scaler_inputs.items():
        cases.append(("estimators", f"ImageScaler: {label}", _call_case(action, expect)))
    # meta-estimators and the rest
    member = conv(**TINY)
    others = {
        "KFoldEnsemble(n_splits=True)": lambda: skastro.KFoldEnsemble(member, n_splits=True).fit(X),
        "KFoldEnsemble(n_splits=1)": lambda: skastro.KFoldEnsemble(member, n_splits=1).fit(X),
        "KFoldEnsemble(n_splits=10**6)": lambda: skastro.KFoldEnsemble(member, n_splits=10**6).fit(
            X
        ),
        "KFoldEnsemble(estimator='conv')": lambda: skastro.KFoldEnsemble("conv").fit(X),
        "KNNOutlierDetector(n_neighbors=True)": lambda: skastro.KNNOutlierDetector(
            n_neighbors=True
        ).fit(X.reshape(24, -1)),
        "KNNOutlierDetector(n_neighbors=0)": lambda: skastro.KNNOutlierDetector(n_neighbors=0).fit(
            X.reshape(24, -1)
        ),
        "KNNOutlierDetector(n_neighbors=10**6)": lambda: skastro.KNNOutlierDetector(
            n_neighbors=10**6
        ).fit(X.reshape(24, -1)),
        "KNNOutlierDetector(contamination=2)": lambda: skastro.KNNOutlierDetector(
            contamination=2
        ).fit(X.reshape(24, -1)),
        "PeakScaler on NaN": lambda: skastro.PeakScaler().fit_transform(nan),
    }
    for label, action in others.items():
        expect = "either" if label == "PeakScaler on NaN" else "error"
        cases.append(("estimators", label, _call_case(action, expect)))
    from skastro import features

    feature_params = {
        "RadialProfile(n_bins=True)": lambda: features.RadialProfile(n_bins=True).fit_transform(X),
        "RadialProfile(n_bins=0)": lambda: features.RadialProfile(n_bins=0).fit_transform(X),
        "BlobCounter(min_area=True)": lambda: features.BlobCounter(min_area=True).fit_transform(X),
        "DifferenceOfGaussians(sigma_low=-1)": lambda: features.DifferenceOfGaussians(
            sigma_low=-1
        ).fit_transform(X),
        "FourierLaplacian(sigma='x')": lambda: features.FourierLaplacian(sigma="x").fit_transform(
            X
        ),
        "RadialProfile(image_shape=(3,8,8)) for (n,1,16,16)": lambda: features.RadialProfile(
            image_shape=(3, 8, 8)
        ).fit_transform(X),
    }
    for label, action in feature_params.items():
        cases.append(("estimators", label, _call_case(action)))
    return cases


def _fit_case(cls, settings, X, expect="error"):
    def case(ctx):
        def fit():
            model = cls(**settings).fit(X)
            return model.transform(X if not isinstance(X, list) else np.asarray(X))

        ctx.act(fit, expect=expect if expect != "ok" else _ok_and_finite)

    return case


def _ok_and_finite(result):
    return finite_output(result)


def _call_case(action, expect="error"):
    def case(ctx):
        ctx.act(action, expect=expect)

    return case


def _fitted_call(action, expect="error"):
    def case(ctx):
        import skastro

        model = skastro.load(saved_model("conv"))
        ctx.act(lambda: action(model), expect=expect)

    return case


# ============================================================================ model folders
def model_cases():
    cases = []
    param_values = {
        "true": True,
        "text": "8",
        "a list": [1],
        "null": None,
        "-1": -1,
        "10**9": 10**9,
        "NaN": {"__float__": "nan"},
        "an object": {"a": 1},
    }
    params = ("n_components", "batch_size", "widths", "lr", "max_epochs", "device", "random_state",
              "image_shape", "nan_policy", "mse_weight", "weight_decay")  # fmt: skip
    for param in params:
        for label, value in param_values.items():
            valid = (param, label) in {
                ("random_state", "null"), ("image_shape", "null"), ("max_epochs", "10**9"),
                ("batch_size", "10**9"), ("lr", "10**9"), ("mse_weight", "10**9"),
                ("weight_decay", "10**9"), ("random_state", "10**9"), ("device", "null"),
            }  # fmt: skip

            cases.append(
                (
                    "model files",
                    f"params.{param} = {label}",
                    _model_edit_case(
                        lambda info, p=param, v=value: info["params"].__setitem__(p, v),
                        "ok" if valid else "error",
                    ),
                )
            )
    extra = {
        "params.callbacks = ['print']": lambda info: info["params"].__setitem__(
            "callbacks", ["print"]
        ),
        "params.callbacks = 'print'": lambda info: info["params"].__setitem__("callbacks", "print"),
        "params.device = 'meta'": lambda info: info["params"].__setitem__("device", "meta"),
        "params.random_state = 2**80": lambda info: info["params"].__setitem__(
            "random_state", 2**80
        ),
        "params.n_components = 10**9": lambda info: info["params"].__setitem__(
            "n_components", 10**9
        ),
        "params.widths = [10**5, 10**5]": lambda info: info["params"].__setitem__(
            "widths", {"__tuple__": [10**5, 10**5]}
        ),
        "params.widths = ['16']": lambda info: info["params"].__setitem__(
            "widths", {"__tuple__": ["16"]}
        ),
        "params nested 100000 deep": None,  # written as text below
        "network.image_shape = [1, 100000, 100000]": lambda info: info["network"].__setitem__(
            "image_shape", [1, 100000, 100000]
        ),
        "network.image_shape = [3, 10**6, 10**6]": lambda info: info["network"].__setitem__(
            "image_shape", [3, 10**6, 10**6]
        ),
        "network.image_shape = [1, -16, 16]": lambda info: info["network"].__setitem__(
            "image_shape", [1, -16, 16]
        ),
        "network.image_shape = [0, 16, 16]": lambda info: info["network"].__setitem__(
            "image_shape", [0, 16, 16]
        ),
        "network.image_shape = 'abc'": lambda info: info["network"].__setitem__(
            "image_shape", "abc"
        ),
        "network.image_shape = [1, 16]": lambda info: info["network"].__setitem__(
            "image_shape", [1, 16]
        ),
        "network.n_features_in = 7": lambda info: info["network"].__setitem__("n_features_in", 7),
        "network.channel_std = [0]": lambda info: info["network"].__setitem__("channel_std", [0.0]),
        "network.channel_std = [-1]": lambda info: info["network"].__setitem__(
            "channel_std", [-1.0]
        ),
        "network.channel_std = [1e300]": lambda info: info["network"].__setitem__(
            "channel_std", [1e300]
        ),
        "network.channel_std = ['x']": lambda info: info["network"].__setitem__(
            "channel_std", ["x"]
        ),
        "network.channel_std = [1, 1]": lambda info: info["network"].__setitem__(
            "channel_std", [1.0, 1.0]
        ),
        "network.channel_mean = [1e39]": lambda info: info["network"].__setitem__(
            "channel_mean", [1e39]
        ),
        "network.channel_mean = null": lambda info: info["network"].__setitem__(
            "channel_mean", None
        ),
        "network.seed = 2**80": lambda info: info["network"].__setitem__("seed", 2**80),
        "network.seed = -1": lambda info: info["network"].__setitem__("seed", -1),
        "network.seed = 'x'": lambda info: info["network"].__setitem__("seed", "x"),
        "network.seed = true": lambda info: info["network"].__setitem__("seed", True),
        "network.epochs = -1": lambda info: info["network"].__setitem__("epochs", -1),
        "network = []": lambda info: info.__setitem__("network", []),
        "network = {}": lambda info: info.__setitem__("network", {}),
        "fitted = true, no network": lambda info: info.pop("network"),
        "fitted = 'yes'": lambda info: info.__setitem__("fitted", "yes"),
        "fitted = false (valid)": lambda info: info.__setitem__("fitted", False),
        "fitted_state.__dict__": lambda info: info.__setitem__(
            "fitted_state", {"__dict__": {"__dict__": {"a": 1}}}
        ),
        "fitted_state.transform": lambda info: info.__setitem__("fitted_state", {"transform": 1}),
        "fitted_state = []": lambda info: info.__setitem__("fitted_state", []),
        "format_version = true": lambda info: info.__setitem__("format_version", True),
        "format_version = '1'": lambda info: info.__setitem__("format_version", "1"),
        "format_version = 2": lambda info: info.__setitem__("format_version", 2),
        "format_version missing": lambda info: info.pop("format_version"),
        "class = 'os.system'": lambda info: info.__setitem__("class", "os.system"),
        "class = 'load'": lambda info: info.__setitem__("class", "load"),
        "class = 123": lambda info: info.__setitem__("class", 123),
        "class = 'ImageScaler' with a network": lambda info: info.__setitem__(
            "class", "ImageScaler"
        ),
        "params = []": lambda info: info.__setitem__("params", []),
        "params.future_option": lambda info: info["params"].__setitem__("future_option", 1),
        "versions = []": lambda info: (
            info.__setitem__("versions", []),
            info.__setitem__("format_version", 9),
        )[-1],
        "files = []": lambda info: info.__setitem__("files", []),
        "files.weights = 123": lambda info: info["files"].__setitem__("weights", 123),
        "files.weights missing file": lambda info: info["files"].__setitem__(
            "weights", "nothing.safetensors"
        ),
        "files.weights = '../outside/secret.fifo'": lambda info: info["files"].__setitem__(
            "weights", "../outside/secret.fifo"
        ),
        "files.history = '../outside/secret.fifo'": lambda info: info["files"].__setitem__(
            "history", "../outside/secret.fifo"
        ),
        "files.arrays = '../outside/secret.fifo'": lambda info: info["files"].__setitem__(
            "arrays", "../outside/secret.fifo"
        ),
        "files.optimizer = '../outside/secret.fifo'": lambda info: info["files"].__setitem__(
            "optimizer", "../outside/secret.fifo"
        ),
        "files.history = absolute path outside": "ABS_HISTORY",
        "files.weights = absolute path outside": "ABS_WEIGHTS",
        "files.history = '.'": lambda info: info["files"].__setitem__("history", "."),
        "files.weights = ''": lambda info: info["files"].__setitem__("weights", ""),
        "params.n_components = {'__estimator__': '../outside'}": lambda info: info[
            "params"
        ].__setitem__("n_components", {"__estimator__": "../outside"}),
        "params.n_components = {'__array__': 'a0'} (no arrays file)": lambda info: info[
            "params"
        ].__setitem__("n_components", {"__array__": "a0"}),
        "params.widths = {'__strings__': ['a'], 'dtype': 'U999999999'}": lambda info: info[
            "params"
        ].__setitem__("widths", {"__strings__": ["a"], "dtype": "U999999999"}),
        "params.lr = {'__tuple__': 'abc'}": lambda info: info["params"].__setitem__(
            "lr", {"__tuple__": "abc"}
        ),
        "params.lr = {'__float__': [1]}": lambda info: info["params"].__setitem__(
            "lr", {"__float__": [1]}
        ),
        "params.lr = {'__dict__': 5}": lambda info: info["params"].__setitem__(
            "lr", {"__dict__": 5}
        ),
        "params.lr = two tags": lambda info: info["params"].__setitem__(
            "lr", {"__float__": "1", "__tuple__": []}
        ),
    }
    for label, change in extra.items():
        expect = "ok" if "(valid)" in label else "error"
        if change is None:
            cases.append(
                (
                    "model files",
                    label,
                    _model_text_case(
                        '{"format": "skastro-model", "params": ' + "[" * 100000 + "]" * 100000 + "}"
                    ),
                )
            )
        elif change == "ABS_HISTORY":
            cases.append(("model files", label, _model_edit_case("ABS_HISTORY", expect)))
        elif change == "ABS_WEIGHTS":
            cases.append(("model files", label, _model_edit_case("ABS_WEIGHTS", expect)))
        else:
            cases.append(("model files", label, _model_edit_case(change, expect)))
    head = '{"format": "skastro-model", "format_version": 1, "class": "ConvAutoencoder", '
    texts = {
        "model.json not JSON": "{not json",
        "model.json empty": "",
        "model.json a list": "[1, 2]",
        "model.json with NaN": head + '"params": {"lr": NaN}}',
        "model.json nested 1000 deep": head + '"params": {"lr": ' + "[" * 1000 + "]" * 1000 + "}}",
        "model.json latin-1 bytes": b'{"format": "\xe9"}',
    }
    for label, text in texts.items():
        cases.append(("model files", label, _model_text_case(text)))
    files = {
        "weights truncated": ("weights.safetensors", lambda p: p.write_bytes(p.read_bytes()[:200])),
        "weights empty": ("weights.safetensors", lambda p: p.write_bytes(b"")),
        "weights header claims 10**12 values": ("weights.safetensors", _huge_header),
        "weights with NaN": (
            "weights.safetensors",
            lambda p: _rewrite_weights(
                p,
                lambda w: {
                    k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in w.items()
                },
            ),
        ),
        "weights with inf": (
            "weights.safetensors",
            lambda p: _rewrite_weights(
                p,
                lambda w: {
                    k: v.fill_(float("inf")) if v.is_floating_point() else v for k, v in w.items()
                },
            ),
        ),
        "weights with an extra tensor": (
            "weights.safetensors",
            lambda p: _rewrite_weights(p, lambda w: {**w, "extra": w[next(iter(w))].clone()}),
        ),
        "weights missing a tensor": (
            "weights.safetensors",
            lambda p: _rewrite_weights(p, lambda w: dict(list(w.items())[1:])),
        ),
        "weights as int64": (
            "weights.safetensors",
            lambda p: _rewrite_weights(p, lambda w: {k: v.long() for k, v in w.items()}),
        ),
        "weights huge but finite (1e30)": (
            "weights.safetensors",
            lambda p: _rewrite_weights(
                p,
                lambda w: {k: v.fill_(1e30) if v.is_floating_point() else v for k, v in w.items()},
            ),
        ),
        "weights symlink to the FIFO outside": ("weights.safetensors", "LINK_FIFO"),
        "weights symlink to /etc/passwd": ("weights.safetensors", "LINK_PASSWD"),
        "weights symlink to /dev/zero": ("weights.safetensors", "LINK_ZERO"),
        "weights are a folder": ("weights.safetensors", "FOLDER"),
        "weights are a FIFO": ("weights.safetensors", "MKFIFO"),
        "history symlink to the FIFO outside": ("history.json", "LINK_FIFO"),
        "history not a list": ("history.json", lambda p: p.write_text('{"a": 1}')),
        "history rows not objects": ("history.json", lambda p: p.write_text("[1, 2, 3]")),
        "history batches not a list": (
            "history.json",
            lambda p: p.write_text('[{"epoch": 1, "batches": 5}]'),
        ),
        "history nested 100000 deep": (
            "history.json",
            lambda p: p.write_text("[" * 100000 + "]" * 100000),
        ),
        "history not JSON": ("history.json", lambda p: p.write_text("{nope")),
        "history is a FIFO": ("history.json", "MKFIFO"),
        "history missing (valid)": ("history.json", lambda p: p.unlink()),
        "model.json symlink to the FIFO outside": ("model.json", "LINK_FIFO"),
        "model.json symlink outside (a copy)": ("model.json", "LINK_COPY"),
        "model.json is a FIFO": ("model.json", "MKFIFO"),
        "model.json is a folder": ("model.json", "FOLDER"),
        "folder is a file": (None, "FOLDER_IS_FILE"),
        "folder is missing": (None, "FOLDER_MISSING"),
        "folder is the FIFO": (None, "FOLDER_IS_FIFO"),
    }
    for label, (name, change) in files.items():
        expect = "ok" if "(valid)" in label else "error"
        if label == "weights huge but finite (1e30)":
            expect = finite_output
        cases.append(("model files", label, _model_file_case(name, change, expect)))
    # KFoldEnsemble and CondVAEClassifier fitted state
    kfold = {
        "fitted_state.__dict__": lambda info: info["fitted_state"].__setitem__(
            "__dict__", {"__dict__": {"x": 1}}
        ),
        "fitted_state.transform": lambda info: info["fitted_state"].__setitem__("transform", 1),
        "fitted_state.__class__": lambda info: info["fitted_state"].__setitem__("__class__", "x"),
        "fitted_state.estimators_ = 5": lambda info: info["fitted_state"].__setitem__(
            "estimators_", 5
        ),
        "fitted_state.estimators_ = []": lambda info: info["fitted_state"].__setitem__(
            "estimators_", []
        ),
        "fitted_state.estimators_ missing": lambda info: info["fitted_state"].pop("estimators_"),
        "fitted_state.centers_ = NaN": lambda info: info["fitted_state"].__setitem__(
            "centers_", [[{"__float__": "nan"}] * 2] * 2
        ),
        "fitted_state.rotations_ wrong shape": lambda info: info["fitted_state"].__setitem__(
            "rotations_", [1, 2]
        ),
        "fitted_state.fold_indices_ = 'x'": lambda info: info["fitted_state"].__setitem__(
            "fold_indices_", "x"
        ),
        "fitted_state._n_features_out = -1": lambda info: info["fitted_state"].__setitem__(
            "_n_features_out", -1
        ),
        "member path leaves the folder": lambda info: info["fitted_state"][
            "estimators_"
        ].__setitem__(0, {"__estimator__": "../outside"}),
        "member path absolute": lambda info: info["fitted_state"]["estimators_"].__setitem__(
            0, {"__estimator__": "/tmp"}
        ),
        "params.n_splits = true": lambda info: info["params"].__setitem__("n_splits", True),
        "member symlinked outside": "LINK_MEMBER",
    }
    for label, change in kfold.items():
        cases.append(
            (
                "model files",
                f"KFoldEnsemble {label}",
                _model_edit_case(change, "error", kind="kfold"),
            )
        )
    condvae = {
        "fitted_state.threshold = NaN": lambda info: info["fitted_state"].__setitem__(
            "threshold", {"__float__": "nan"}
        ),
        "fitted_state.classes has 3 labels": lambda info: info["fitted_state"].__setitem__(
            "classes", [0, 1, 2]
        ),
        "fitted_state.sign = 0": lambda info: info["fitted_state"].__setitem__("sign", 0.0),
        "fitted_state.classes missing": lambda info: info["fitted_state"].pop("classes"),
        "fitted_state.__dict__": lambda info: info["fitted_state"].__setitem__(
            "__dict__", {"__dict__": {}}
        ),
    }
    for label, change in condvae.items():
        cases.append(
            (
                "model files",
                f"CondVAEClassifier {label}",
                _model_edit_case(change, "error", kind="condvae"),
            )
        )
    cases.append(
        ("model files", "valid model loads (valid)", _model_edit_case(lambda info: None, "ok"))
    )
    cases.append(
        (
            "model files",
            "valid KFoldEnsemble loads (valid)",
            _model_edit_case(lambda info: None, "ok", kind="kfold"),
        )
    )
    return cases


def _check_loaded(model):
    X = blobs(4)
    if hasattr(model, "transform"):
        Z = model.transform(X)
        return Z
    return model


def _loaded_and_finite(result):
    return finite_output(result)


def _model_edit_case(change, expect, kind="conv"):
    def case(ctx):
        folder = copy_model(ctx, kind)
        model_json = folder / "model.json"
        if change == "ABS_HISTORY":
            edit_json(model_json, lambda info: info["files"].__setitem__("history", str(ctx.fifo)))
        elif change == "ABS_WEIGHTS":
            edit_json(model_json, lambda info: info["files"].__setitem__("weights", str(ctx.fifo)))
        elif change == "LINK_MEMBER":
            part = next(p for p in (folder / "parts").iterdir() if "estimators_0" in p.name)
            moved = ctx.outside / "member"
            shutil.move(part, moved)
            os.symlink(moved, part)
        else:
            edit_json(model_json, change)
        ctx.protect(folder)
        ctx.act(
            lambda: _check_loaded(_skastro_load(folder)),
            expect=_loaded_and_finite if expect == "ok" else expect,
        )
        if expect == "ok" and ctx.exc is None:
            ctx.expect = "ok"

    return case


def _skastro_load(folder):
    import skastro

    return skastro.load(folder)


def _model_text_case(text):
    def case(ctx):
        folder = copy_model(ctx)
        model_json = folder / "model.json"
        if isinstance(text, bytes):
            model_json.write_bytes(text)
        else:
            model_json.write_text(text)
        ctx.protect(folder)
        ctx.act(lambda: _check_loaded(_skastro_load(folder)))

    return case


def _huge_header(path):
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    ).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 64)


def _rewrite_weights(path, change):
    from safetensors.torch import load_file, save_file

    weights = load_file(path)
    save_file(change({k: v.clone() for k, v in weights.items()}), path)


def _model_file_case(name, change, expect):
    def case(ctx):
        folder = copy_model(ctx)
        target = folder / name if name else folder
        if change == "LINK_FIFO":
            target.unlink()
            os.symlink(ctx.fifo, target)
        elif change == "LINK_PASSWD":
            target.unlink()
            os.symlink("/etc/passwd", target)
        elif change == "LINK_ZERO":
            target.unlink()
            os.symlink("/dev/zero", target)
        elif change == "LINK_COPY":
            copy = ctx.outside / "model.json"
            shutil.copy(target, copy)
            target.unlink()
            os.symlink(copy, target)
        elif change == "FOLDER":
            target.unlink()
            target.mkdir()
        elif change == "MKFIFO":
            target.unlink()
            ctx.pipe(target)
        elif change == "FOLDER_IS_FILE":
            shutil.rmtree(folder)
            folder.write_text("not a folder")
        elif change == "FOLDER_MISSING":
            shutil.rmtree(folder)
        elif change == "FOLDER_IS_FIFO":
            shutil.rmtree(folder)
            folder = ctx.pipe(folder)
        else:
            change(target)
        if folder.is_dir():
            ctx.protect(*[p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()])
        expected = _loaded_and_finite if expect == "ok" else expect
        ctx.act(lambda: _check_loaded(_skastro_load(folder)), expect=expected)
        if expect == "ok" and ctx.exc is None:
            ctx.expect = "ok"

    return case


# ============================================================================ command line
def cli_cases():
    cases = []
    add = cases.append
    # fit --overwrite must never lose the model already in --out
    for label, data_kind, extra in (
        ("mistyped DATA", "missing", []),
        ("NaN data", "nan", []),
        (
            "diverging lr",
            "good",
            ["--param", "lr=1e30", "--param", "batch_size=24", "--epochs", "4"],
        ),
        ("invalid parameter value", "good", ["--param", "batch_size=true"]),
        ("huge n_components", "good", ["--param", "n_components=10000000"]),
        ("DATA a folder of bad files", "badfolder", []),
        ("DATA is /dev/zero", "/dev/zero", []),
    ):
        add(
            (
                "cli",
                f"fit --overwrite with {label} keeps the old model",
                _fit_overwrite_case(data_kind, extra),
            )
        )
    add(("cli", "fit --overwrite interrupted by Ctrl+C keeps the old model", _ctrl_c_case))
    add(
        (
            "cli",
            "fit --overwrite that succeeds replaces the model (valid)",
            _fit_overwrite_case("good", [], expect="ok"),
        )
    )
    add(("cli", "fit into an existing model without --overwrite", _fit_existing_case))
    simple_fit = {
        "--out is a file": lambda c: ["fit", "convautoencoder", _npy(c), "--out", _file(c)],
        "unknown model": lambda c: ["fit", "autoencoderx", _npy(c), "--out", c.work / "m"],
        "--param without =": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            "lr",
        ],
        "--param widths=abc": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            "widths=abc",
        ],
        "--param widths=[10**6]": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            "widths=[1000000]",
        ],
        "--param device=meta": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            'device="meta"',
        ],
        "--param image_shape=[3,8,8]": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            "image_shape=[3,8,8]",
            *TINY_CLI,
        ],
        "--param random_state=2**80": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            f"random_state={2**80}",
        ],
        "--param callbacks=print": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--param",
            "callbacks=print",
        ],
        "--epochs 0": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--epochs",
            "0",
        ],
        "--resume without a checkpoint": lambda c: [
            "fit",
            "convautoencoder",
            _npy(c),
            "--out",
            c.work / "m",
            "--resume",
        ],
        "DATA is a FIFO": lambda c: [
            "fit",
            "convautoencoder",
            c.pipe(c.work / "d.npy"),
            "--out",
            c.work / "m",
        ],
        "DATA has an unknown suffix": lambda c: [
            "fit",
            "convautoencoder",
            _file(c, "x.txt"),
            "--out",
            c.work / "m",
        ],
        "HDF5 DATA without the key": lambda c: [
            "fit",
            "convautoencoder",
            _h5(c),
            "--out",
            c.work / "m",
            "--key",
            "nope",
        ],
        "HDF5 DATA with complex images": lambda c: [
            "fit",
            "convautoencoder",
            _h5(c, complex_=True),
            "--out",
            c.work / "m",
            *TINY_CLI,
        ],
    }
    for label, argv in simple_fit.items():
        add(("cli", f"fit: {label}", _cli_case(argv)))
    add(("cli", "fit --resume from a damaged checkpoint", _resume_damaged_case))
    add(
        (
            "cli",
            "fit --skip-bad on a folder with bad files (valid)",
            _cli_case(
                lambda c: [
                    "fit",
                    "convautoencoder",
                    _bad_fits_folder(c),
                    "--out",
                    c.work / "m",
                    "--skip-bad",
                    "--epochs",
                    "1",
                    *TINY_CLI,
                ],
                expect="ok",
            ),
        )
    )
    # embed
    embed = {
        "a broken model folder (not JSON)": lambda c: [
            "embed",
            _broken_model(c, "json"),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "a model with NaN weights": lambda c: [
            "embed",
            _broken_model(c, "nan"),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "a model with channel_std 0": lambda c: [
            "embed",
            _broken_model(c, "std0"),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "a model missing its weights": lambda c: [
            "embed",
            _broken_model(c, "noweights"),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "a model folder that is a file": lambda c: [
            "embed",
            _file(c),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "a model whose outputs overflow": lambda c: [
            "embed",
            _broken_model(c, "huge"),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "a model reading outside its folder": lambda c: [
            "embed",
            _broken_model(c, "outside"),
            _npy(c),
            "--out",
            c.work / "z.npz",
        ],
        "--out x.npz is a folder": lambda c: [
            "embed",
            copy_model(c),
            _npy(c),
            "--out",
            _folder(c, "x.npz"),
        ],
        "--out with a bad suffix": lambda c: [
            "embed",
            copy_model(c),
            _npy(c),
            "--out",
            c.work / "z.txt",
        ],
        "--batch-size 0": lambda c: [
            "embed",
            copy_model(c),
            _npy(c),
            "--out",
            c.work / "z.npz",
            "--batch-size",
            "0",
        ],
        "images of another size": lambda c: [
            "embed",
            copy_model(c),
            _npy(c, size=8),
            "--out",
            c.work / "z.npz",
        ],
        "DATA folder with bad files": lambda c: [
            "embed",
            copy_model(c),
            _bad_fits_folder(c),
            "--out",
            c.work / "z.npz",
        ],
        "DATA is /dev/zero": lambda c: [
            "embed",
            copy_model(c),
            "/dev/zero",
            "--out",
            c.work / "z.npz",
        ],
    }
    for label, argv in embed.items():
        add(("cli", f"embed: {label}", _cli_case(argv)))
    for suffix in (".npz", ".npy", ".csv"):
        add(
            (
                "cli",
                f"embed over an existing {suffix} without --overwrite",
                _existing_output_case("embed", suffix),
            )
        )
    add(
        (
            "cli",
            "embed .npy over an existing .ids.txt without --overwrite",
            _existing_output_case("embed", ".ids"),
        )
    )
    add(
        (
            "cli",
            "embed a good model (valid)",
            _cli_case(
                lambda c: ["embed", copy_model(c), _npy(c), "--out", c.work / "z.npz"], expect="ok"
            ),
        )
    )
    # cluster
    cluster = {
        "--min-cluster-size 1": ["--min-cluster-size", "1"],
        "--min-cluster-size 0": ["--min-cluster-size", "0"],
        "--min-cluster-size -5": ["--min-cluster-size", "-5"],
        "--min-samples 0": ["--min-samples", "0"],
        "--n-clusters 1 (kmeans)": ["--method", "kmeans", "--n-clusters", "1"],
        "--n-clusters 10**6 (kmeans)": ["--method", "kmeans", "--n-clusters", "1000000"],
        "--score-sample 0": ["--score-sample", "0"],
        "--random-state -1 (kmeans)": ["--method", "kmeans", "--random-state", "-1"],
        "--out with a bad suffix": "BADSUFFIX",
        "--out is a folder": "OUTDIR",
    }
    for label, extra in cluster.items():
        add(("cli", f"cluster: {label}", _cluster_case(extra)))
    embeddings = {
        "NaN embeddings": lambda p: np.savez(
            p, embeddings=np.full((10, 2), np.nan, np.float32), ids=np.arange(10)
        ),
        "text named .npz": lambda p: p.write_text("hello"),
        "no 'embeddings' array": lambda p: np.savez(p, other=np.zeros(3)),
        "1-D embeddings": lambda p: np.savez(p, embeddings=np.zeros(10, np.float32)),
        "object ids (a pickle)": lambda p: np.savez(
            p, embeddings=np.zeros((4, 2), np.float32), ids=np.array([{}, {}, {}, {}], dtype=object)
        ),
        "ids of the wrong length": lambda p: np.savez(
            p, embeddings=np.zeros((4, 2), np.float32), ids=np.arange(3)
        ),
        "one point": lambda p: np.savez(p, embeddings=np.zeros((1, 2), np.float32)),
        "a missing file": None,
    }
    for label, write in embeddings.items():
        add(("cli", f"cluster: {label}", _cluster_input_case(write)))
    add(("cli", "cluster: garbage CSV", _cluster_csv_case))
    add(
        (
            "cli",
            "cluster over an existing labels file without --overwrite",
            _existing_output_case("cluster", ".csv"),
        )
    )
    add(("cli", "cluster good embeddings (valid)", _cluster_case([], expect="ok")))
    # explore (always with --save-html: nothing serves)
    explore = {
        "DATA folder with 3 bad files": lambda c: [
            "explore",
            _bad_fits_folder(c, good=0),
            "--save-html",
            c.work / "e.html",
        ],
        "DATA is /dev/zero": lambda c: ["explore", "/dev/zero", "--save-html", c.work / "e.html"],
        "--model a broken folder": lambda c: [
            "explore",
            _npy(c),
            "--model",
            _broken_model(c, "json"),
            "--save-html",
            c.work / "e.html",
        ],
        "--model a model reading outside": lambda c: [
            "explore",
            _npy(c),
            "--model",
            _broken_model(c, "outside"),
            "--save-html",
            c.work / "e.html",
        ],
        "--metadata missing": lambda c: [
            "explore",
            _npy(c),
            "--metadata",
            c.work / "none.csv",
            "--save-html",
            c.work / "e.html",
        ],
        "--metadata garbage": lambda c: [
            "explore",
            _npy(c),
            "--metadata",
            _file(c, "m.csv", b"a,b\n1,2,3,4\n\x00\x01"),
            "--save-html",
            c.work / "e.html",
        ],
        "--metadata with too few rows": lambda c: [
            "explore",
            _npy(c),
            "--metadata",
            _file(c, "m.csv", b"x\n1\n2\n"),
            "--save-html",
            c.work / "e.html",
        ],
        "--save-html is a folder": lambda c: [
            "explore",
            _npy(c),
            "--save-html",
            _folder(c, "e.html"),
        ],
        "--port 70000": lambda c: ["explore", _npy(c), "--port", "70000"],
        "--key on a .npy": lambda c: [
            "explore",
            _npy(c),
            "--key",
            "x",
            "--save-html",
            c.work / "e.html",
        ],
    }
    for label, argv in explore.items():
        add(
            (
                "cli",
                f"explore: {label}",
                _cli_case(argv, expect="either" if label == "--key on a .npy" else "error"),
            )
        )
    add(
        (
            "cli",
            "explore --save-html over an existing file without --overwrite",
            _existing_output_case("explore", ".html"),
        )
    )
    add(
        (
            "cli",
            "explore --skip-bad (valid)",
            _cli_case(
                lambda c: [
                    "explore",
                    _bad_fits_folder(c),
                    "--skip-bad",
                    "--save-html",
                    c.work / "e.html",
                ],
                expect="ok",
            ),
        )
    )
    return cases


def _npy(ctx, size=16):
    path = ctx.work / f"images{size}.npy"
    if not path.exists():
        np.save(path, blobs(size=size))
        ctx.protect(path)
    return path


def _h5(ctx, complex_=False):
    path = ctx.work / "images.h5"
    images = blobs()
    _h5_file(path, images=images.astype(np.complex64) if complex_ else images)
    ctx.protect(path)
    return path


def _file(ctx, name="file.txt", data=b"some text\n"):
    path = ctx.work / name
    path.write_bytes(data)
    ctx.protect(path)
    return path


def _folder(ctx, name):
    path = ctx.work / name
    path.mkdir()
    (path / "keep.txt").write_text("keep me")
    ctx.protect(path)
    return path


def _bad_fits_folder(ctx, good=12):
    folder = ctx.work / "fits"
    if not folder.exists():
        folder.mkdir()
        for i, image in enumerate(blobs(good)):
            (folder / f"g{i:02d}.fits").write_bytes(_fits_bytes(image[0].astype(">f4")))
        for i in range(3):
            (folder / f"bad{i}.fits").write_bytes(b"SIMPLE  = garbage" * (i + 2))
        ctx.protect(folder)
    return folder


def _broken_model(ctx, how):
    folder = copy_model(ctx, name=f"broken-{how}")
    if how == "json":
        (folder / "model.json").write_text("{oops")
    elif how == "nan":
        _rewrite_weights(
            folder / "weights.safetensors",
            lambda w: {k: v.fill_(float("nan")) for k, v in w.items()},
        )
    elif how == "huge":
        _rewrite_weights(
            folder / "weights.safetensors", lambda w: {k: v.fill_(1e30) for k, v in w.items()}
        )
    elif how == "std0":
        edit_json(
            folder / "model.json", lambda info: info["network"].__setitem__("channel_std", [0.0])
        )
    elif how == "noweights":
        (folder / "weights.safetensors").unlink()
    elif how == "outside":
        edit_json(
            folder / "model.json",
            lambda info: info["files"].__setitem__("history", "../../outside/secret.fifo"),
        )
    ctx.protect(folder)
    return folder


def _cli_case(argv, expect="error"):
    def case(ctx):
        ctx.cli(*argv(ctx), expect=expect)

    return case


def _fit_overwrite_case(data_kind, extra, expect="error"):
    def case(ctx):
        out = copy_model(ctx, name="out")
        (out / "notes.txt").write_text("the user's own notes")
        if expect == "error":
            ctx.protect(out)
        else:
            ctx.protect(out / "notes.txt")
        if data_kind == "missing":
            data = ctx.work / "imgaes.npy"
        elif data_kind == "nan":
            data = ctx.work / "nan.npy"
            images = blobs()
            images[2, 0, 3, 3] = np.nan
            np.save(data, images)
        elif data_kind == "badfolder":
            data = _bad_fits_folder(ctx, good=0)
        elif data_kind == "/dev/zero":
            data = "/dev/zero"
        else:
            data = _npy(ctx)
        ctx.cli(
            "fit",
            "convautoencoder",
            data,
            "--out",
            out,
            "--overwrite",
            "--quiet",
            *TINY_CLI,
            *extra,
            expect=expect,
        )
        if ctx.exc is None:
            try:
                _skastro_load(out)
            except Exception as exc:
                ctx.protected[out / "model.json (loads)"] = "x"
                ctx.note = f"the model in --out no longer loads: {exc}"

    return case


def _fit_existing_case(ctx):
    out = copy_model(ctx, name="out")
    ctx.protect(out)
    ctx.cli("fit", "convautoencoder", _npy(ctx), "--out", out, *TINY_CLI)


def _resume_damaged_case(ctx):
    out = ctx.work / "m"
    checkpoint = out / "checkpoint"
    checkpoint.parent.mkdir()
    shutil.copytree(saved_model("conv"), checkpoint)
    edit_json(
        checkpoint / "model.json",
        lambda info: info["network"].__setitem__("image_shape", [1, 10**6, 10**6]),
    )
    ctx.protect(out)
    ctx.cli("fit", "convautoencoder", _npy(ctx), "--out", out, "--resume", *TINY_CLI)


def _ctrl_c_case(ctx):
    """``skastro fit --overwrite`` in a subprocess, interrupted once training has started."""
    out = copy_model(ctx, name="out")
    ctx.protect(out)
    data = _npy(ctx)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "skastro", "fit", "convautoencoder", str(data),
               "--out", str(out), "--overwrite", "--epochs", "1000", "--param", "batch_size=4",
               *TINY_CLI]  # fmt: skip

    def run():
        # run from the sandbox: `python -m skastro` from the repository would import the
        # repository's skastro even when PYTHONPATH points at another tree
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ctx.work,
        )
        try:
            deadline = time.monotonic() + 120
            seen = ""
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                seen += line
                if not line or line.strip().startswith("2 "):
                    break
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        _skastro_load(out)  # the old model must still load
        return process.returncode, err

    ctx.act(
        run,
        expect=lambda result: (
            None if result[0] == 130 else f"status {result[0]}: {result[1][-300:]}"
        ),
    )


def _existing_output_case(command, suffix):
    def case(ctx):
        model = copy_model(ctx)
        data = _npy(ctx)
        if command == "embed":
            out = ctx.work / f"z{suffix if suffix != '.ids' else '.npy'}"
            target = out if suffix != ".ids" else out.with_name("z.ids.txt")
            target.write_text("precious earlier results\n")
            ctx.protect(target)
            ctx.cli("embed", model, data, "--out", out)
        elif command == "cluster":
            z = ctx.work / "z.npz"
            np.savez(z, embeddings=np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32))
            out = ctx.work / "labels.csv"
            out.write_text("precious earlier labels\n")
            ctx.protect(out)
            ctx.cli("cluster", z, "--out", out, "--method", "kmeans", "--n-clusters", "2")
        else:
            out = ctx.work / "e.html"
            out.write_text("<html>precious</html>")
            ctx.protect(out)
            ctx.cli("explore", data, "--save-html", out)

    return case


def _cluster_case(extra, expect="error"):
    def case(ctx):
        z = ctx.work / "z.npz"
        rng = np.random.default_rng(0)
        np.savez(
            z,
            embeddings=np.concatenate(
                [rng.normal(0, 1, (30, 2)), rng.normal(9, 1, (30, 2))]
            ).astype(np.float32),
        )
        ctx.protect(z)
        out = ctx.work / "labels.csv"
        if extra == "BADSUFFIX":
            extra_args, out = [], ctx.work / "labels.txt"
        elif extra == "OUTDIR":
            extra_args, out = [], _folder(ctx, "labels.csv")
        else:
            extra_args = extra
        ctx.cli("cluster", z, "--out", out, *extra_args, expect=expect)

    return case


def _cluster_input_case(write):
    def case(ctx):
        z = ctx.work / "z.npz"
        if write is not None:
            write(z)
            ctx.protect(z)
        ctx.cli("cluster", z, "--out", ctx.work / "labels.csv")

    return case


def _cluster_csv_case(ctx):
    z = _file(ctx, "z.csv", b'id,z0\n1,"unterminated\n2,3,4,5\n')
    ctx.cli("cluster", z, "--out", ctx.work / "labels.csv")


# ============================================================================ explorer
def explorer_cases():
    cases = []
    bad_values = {
        "null": None,
        "text": "x",
        "a number": 5,
        "a huge number": 10**30,
        "true": True,
        "a list": [1, [2]],
        "an object": {"a": {"b": 1}},
        "points not a list": {"points": "x"},
        "points of numbers": {"points": [1, 2]},
        "customdata text": {"points": [{"customdata": "abc", "bbox": "x"}]},
        "customdata nested": {"points": [{"customdata": [[{}]]}]},
        "index text": {"index": "abc"},
    }
    targets = [
        ("show_parameters", "clustering", "value"),
        ("computation", "compute", "n_clicks"),
        ("computation", "poll", "n_intervals"),
        ("color_menu", "view-key", "data"),
        ("scatter", "view-key", "data"),
        ("scatter", "color-by", "value"),
        ("instance", "scatter", "clickData"),
        ("instance", "stretch", "value"),
        ("instance", "k", "value"),
        ("summary", "scatter", "selectedData"),
        ("export", "export", "n_clicks"),
        ("tooltip", "scatter", "hoverData"),
    ]
    for callback, component, prop in targets:
        for label in ("null", "text", "a list", "an object", "points of numbers", "customdata text",
                      "index text", "a huge number"):  # fmt: skip
            cases.append(("explorer", f"{callback}: {component}.{prop} = {label}",
                          _dash_case(component, prop, bad_values[label])))  # fmt: skip
    envelopes = {
        "body null": None,
        "body a list": [],
        "body text": "x",
        "output not text": {"output": 5},
        "unknown output": {"output": "nope.x", "inputs": [], "state": []},
        "inputs not a list": {"output": "scatter.figure", "inputs": "x"},
        "inputs of numbers": {
            "output": "scatter.figure",
            "outputs": {"id": "scatter", "property": "figure"},
            "inputs": [1, 2],
            "state": [3],
        },
        "browser-side callback": {
            "output": "ring-drawn.data",
            "outputs": {"id": "ring-drawn", "property": "data"},
            "inputs": [{"id": "selected-index", "property": "data", "value": 1}],
            "state": [],
            "changedPropIds": ["selected-index.data"],
        },
        "not JSON": "NOTJSON",
    }
    for label, body in envelopes.items():
        cases.append(("explorer", f"callback request: {label}", _dash_envelope_case(body)))
    for query in ("?size=100000", "?size=abc", "?band=7", "?stretch=x", "?size=-1"):
        cases.append(("explorer", f"thumbnail {query}", _thumbnail_case(query)))
    return cases


_APP = {}


def _app():
    if "client" not in _APP:
        from skastro.explorer import Explorer

        explorer = Explorer(blobs(40, size=8), labels=np.arange(40) % 2)
        app = explorer.make_app()
        _APP["app"], _APP["client"] = app, app.server.test_client()
    return _APP["app"], _APP["client"]


def _dash_case(component, prop, value):
    def case(ctx):
        import logging

        ctx.kind = "http"
        app, client = _app()
        output, spec = next(
            (output, spec)
            for output, spec in app.callback_map.items()
            if any(i["id"] == component and i["property"] == prop for i in spec["inputs"])
        )
        outputs = [
            {"id": o.split(".")[0], "property": o.split(".")[1]}
            for o in output.strip(".").split("...")
        ]

        def entry(item, v):
            return {"id": item["id"], "property": item["property"], "value": v}

        body = {
            "output": output,
            "outputs": outputs if output.startswith("..") else outputs[0],
            "inputs": [entry(i, value if i["id"] == component else None) for i in spec["inputs"]],
            "changedPropIds": [f"{component}.{prop}"],
            "state": [entry(s, value) for s in spec["state"]],
        }
        logging.disable(logging.CRITICAL)
        try:
            ctx.act(
                lambda: client.post("/_dash-update-component", json=body).status_code,
                expect="either",
            )
        finally:
            logging.disable(logging.NOTSET)

    return case


def _dash_envelope_case(body):
    def case(ctx):
        import logging

        ctx.kind = "http"
        _, client = _app()
        logging.disable(logging.CRITICAL)
        try:
            if body == "NOTJSON":

                def post():
                    return client.post(
                        "/_dash-update-component",
                        data="{not json",
                        content_type="application/json",
                    )
            else:
                post = lambda: client.post("/_dash-update-component", json=body)  # noqa: E731
            ctx.act(lambda: post().status_code, expect="either")
        finally:
            logging.disable(logging.NOTSET)

    return case


def _thumbnail_case(query):
    def case(ctx):
        ctx.kind = "http"
        _, client = _app()
        ctx.act(
            lambda: client.get(f"/_skastro/thumbnail/3.png{query}").status_code, expect="either"
        )

    return case


# ============================================================================ report
AREAS = {
    "loaders": loader_cases,
    "estimators": estimator_cases,
    "model files": model_cases,
    "cli": cli_cases,
    "explorer": explorer_cases,
}


def all_cases(only=None):
    cases = []
    for area, make in AREAS.items():
        if only and not any(o in area for o in only):
            continue
        cases.extend(make())
    return cases


def counts(results):
    table = {}
    for row in results:
        table.setdefault(row["area"], dict.fromkeys((*CATEGORIES, "harness error"), 0))
        table[row["area"]][row["category"]] = table[row["area"]].get(row["category"], 0) + 1
    return table


def _table(results, title):
    columns = [*CATEGORIES, "harness error"]
    lines = [
        f"| {title} | cases | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 2),
    ]
    sums = dict.fromkeys(columns, 0)
    for area, row in counts(results).items():
        cells = " | ".join(str(row.get(c, 0)) for c in columns)
        lines.append(f"| {area} | {sum(row.values())} | {cells} |")
        for c in columns:
            sums[c] += row.get(c, 0)
    cells = " | ".join(f"**{sums[c]}**" for c in columns)
    lines.append(f"| **all** | **{len(results)}** | {cells} |")
    return lines


def _tidy(text):
    """Case details without the sandbox's temporary paths."""
    import re

    return re.sub(r"/tmp/skastro-attack-\w+/tmp\w+/", "<case>/", text)


def report(results, baseline=None, machine=None):
    """The markdown of benchmarks/results/reliability.md."""
    lines = [
        "# Reliability: the attack list of issue 27\n",
        "Produced by `python benchmarks/attack_list.py` (see its docstring): "
        f"{len(results)} cases against the loaders, the estimators, model folders, the command "
        "line and the explorer's callbacks, each run and classified as *data lost* (a file "
        "that existed was changed or removed), *read outside* (a named pipe planted outside the "
        "model folder was opened, or Python opened a path there), *hung*, *silently wrong* (no "
        "error but a wrong result), *traceback* (an undocumented exception or one raised inside "
        "a dependency; on the command line a traceback or an internal error; in the explorer "
        "HTTP 500), *refused valid input*, or *clean*. Goal: 0 data lost, 0 reads outside, "
        "0 hung, 0 silently wrong, at most 5 tracebacks, each listed with why it stays.\n",
    ]
    if machine:
        lines.append(f"{machine}\n")
    lines += ["## After\n", *_table(results, "area"), ""]
    bad = [row for row in results if row["category"] != "clean"]
    lines.append("Cases that are not clean:\n")
    if not bad:
        lines.append("None: no traceback remains, so none needs a reason to stay.\n")
    for row in bad:
        lines.append(
            f"- **{row['category']}** ({row['area']}) {row['case']}: {_tidy(row['detail'])}"
        )
        why = WHY_IT_STAYS.get(row["case"])
        if why:
            lines.append(f"  - Why it stays: {why}")
    if baseline:
        lines += [
            "\n## Before\n",
            "The same cases run on the tree before the fixes (commit f297e03: "
            "`git archive f297e03 skastro | tar -x -C /tmp/before`, then "
            "`PYTHONPATH=/tmp/before python benchmarks/attack_list.py --json before.json`; the "
            "outcomes are kept in `results/reliability_before.json`, which `--baseline` reads):\n",
            *_table(baseline, "area"),
            "",
        ]
        before_bad = [row for row in baseline if row["category"] != "clean"]
        order = {c: i for i, c in enumerate(CATEGORIES)}
        before_bad.sort(key=lambda r: (order.get(r["category"], 99), r["area"], r["case"]))
        lines.append(f"The {len(before_bad)} cases that were not clean:\n")
        for row in before_bad:
            lines.append(
                f"- {row['category']} ({row['area']}) {row['case']}: {_tidy(row['detail'])}"
            )
    return "\n".join(lines) + "\n"


# Tracebacks that remain on purpose, with the reason (filled in from the last run).
WHY_IT_STAYS = {}


def _worker(args):
    """Run cases ``args.start`` onwards, appending one JSON line per case to ``args.rows``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.memory_gb:
        import resource

        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="skastro-attack-"))
    try:
        cases = all_cases(args.only)
        with open(args.rows, "a") as rows:
            for i in range(args.start, len(cases)):
                row = run_case(cases[i], root, verbose=args.verbose)
                rows.write(json.dumps(row) + "\n")
                rows.flush()
                if args.verbose or row["category"] != "clean":
                    where = f"[{i + 1}/{len(cases)}] {row['category']:>19} | {row['area']}"
                    print(f"{where} | {row['case']} | {row['detail'][:200]}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for folder in _MODELS.values():
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _supervise(args):
    """Run the cases in a worker process, restarted after any case that never returns.

    A case can block inside native code that holds the GIL (then no alarm or thread of the
    worker can act): after ``CASE_SECONDS + 60`` seconds without a result the worker is killed,
    the case recorded as hung, and a new worker continues with the next case.
    """
    import skastro

    cases = all_cases(args.only)
    print(
        f"{len(cases)} cases (skastro {skastro.__version__} from {Path(skastro.__file__).parent})"
    )
    rows_file = Path(tempfile.mkstemp(prefix="attack-rows-", suffix=".jsonl")[1])
    base = [sys.executable, __file__, "--worker", "--rows", str(rows_file)]
    base += ["--memory-gb", str(args.memory_gb)] + (["--verbose"] if args.verbose else [])
    base += ["--only", *args.only] if args.only else []

    def done():
        return [json.loads(line) for line in rows_file.read_text().splitlines() if line]

    try:
        while len(done()) < len(cases):
            start = len(done())
            worker = subprocess.Popen([*base, "--start", str(start)])
            last, count = time.monotonic(), start
            while worker.poll() is None:
                time.sleep(1)
                now = len(done())
                if now != count:
                    last, count = time.monotonic(), now
                elif time.monotonic() - last > CASE_SECONDS + 60:
                    worker.kill()
                    worker.wait()
                    area, name, _ = cases[count]
                    detail = "blocked in native code; the worker was killed"
                    row = {"area": area, "case": name, "category": "hung", "detail": detail}
                    with open(rows_file, "a") as rows:
                        rows.write(json.dumps(row) + "\n")
                    print(f"[{count + 1}/{len(cases)}] hung | {area} | {name}", flush=True)
            if worker.returncode not in (0, -9) and len(done()) == count:
                area, name, _ = cases[count]
                detail = f"the worker died (status {worker.returncode})"
                row = {"area": area, "case": name, "category": "hung", "detail": detail}
                with open(rows_file, "a") as rows:
                    rows.write(json.dumps(row) + "\n")
        return done()
    finally:
        rows_file.unlink(missing_ok=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "reliability.md"))
    parser.add_argument("--json", help="also write the raw outcomes to this file")
    parser.add_argument("--baseline", help="raw outcomes (--json) of a run before the fixes")
    parser.add_argument(
        "--only", nargs="*", help="areas to run (loaders, estimators, model, cli, explorer)"
    )
    parser.add_argument("--memory-gb", type=float, default=8.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--results", help="render the report from outcomes saved with --json")
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    results = json.loads(Path(args.results).read_text()) if args.results else _supervise(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    try:
        sys.path.insert(0, str(HERE))
        from _common import machine_line

        machine = machine_line()
    except Exception:
        machine = None
    text = report(results, baseline, machine)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    summary = {c: sum(r["category"] == c for r in results) for c in (*CATEGORIES, "harness error")}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
