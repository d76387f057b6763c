"""Training from disk: one epoch of ConvAutoencoder on images in a .npy and in an HDF5 file.

Goal (issue 23): ``skastro fit`` trains on a file larger than memory. Fitting ConvAutoencoder
(on the CPU, small widths: see :data:`WIDTHS`) for one epoch on 1,000,000 images of 64x64
pixels (16 GiB in float32) stored in a ``.npy`` file and in an HDF5 file keeps the peak
resident memory (RSS) of the training process and its reader processes within 2 GiB, and
trains at >= 0.8 of the speed (images per second) of the same kind of images held in memory.

Rows, each a child process, side by side on this machine:

* **in memory**: ``ConvAutoencoder().fit(X)`` on an in-memory array of ``--in-memory`` images
  (as many as fit comfortably; the rate per image is what is compared);
* **.npy** and **HDF5**: ``skastro fit convautoencoder FILE --epochs 1`` on the files (read
  lazily through :func:`skastro.datasets.open_data`: the shuffled windows of
  :mod:`skastro._loading` are read by ``num_workers="auto"`` worker processes);
* **reading only**: one epoch of the same shuffled batches without a network, with no worker
  and with ``num_workers="auto"``: what the reading path can supply.

The rate is the number of images over the epoch's duration as recorded in ``history_``
(``dur``: the training loop, without start-up, statistics or saving); wall seconds are shown
too. Peak memory is polled from ``/proc`` every 0.1 s as the sum over the child and its
descendants (the DataLoader workers), as PSS (shared pages split between the processes that
share them; the goal is judged on it) and as RSS (shared pages counted in every process), so
it may miss short peaks; the child's own ``VmHWM`` is a cross-check.

Usage: ``python benchmarks/bench_disk_training.py [--quick] [--n-images N] [--in-memory M]
[--dtype float32|float16|uint8] [--dir FOLDER] [--keep]``. The full run writes two 16 GiB files
(``--dtype float16`` halves that, ``uint8`` quarters it; the pixels are converted to float32
batch by batch either way). Training speed decides how long it takes: on a quiet 2-core CPU this
network trains at about 950 images/s at 64x64, so the whole run takes about 45 minutes
(``results/disk_training.md``; a machine saturated by other jobs trained fifty times slower);
``--quick`` uses 2,048 images and ``--n-images`` sets any other number.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

GOAL_RSS_GIB = 2.0
GOAL_RATIO = 0.8
SIZE = 64
_WRITE_CHUNK = 8192
_HDF5_CHUNK = 256  # images per HDF5 storage chunk (4 MiB in float32)
# A small network on purpose: the less time a batch spends in the network, the larger the share
# of reading and converting it, so the harder the test of reading from disk (and the default
# widths would make one epoch of 1,000,000 images take hours on a 2-core CPU).
WIDTHS = (4, 8)
N_COMPONENTS = 8
QUICK_IMAGES = 2048

_IN_MEMORY_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from bench_disk_training import make_images
from skastro import ConvAutoencoder
X = make_images(int(sys.argv[2]), sys.argv[3], seed=0)
params = json.loads(sys.argv[4])
model = ConvAutoencoder(max_epochs=1, device="cpu", random_state=0, **params).fit(X)
print(json.dumps({"dur": model.history_[-1]["dur"], "batch_size": model.batch_size_}))
"""


_READER_CHILD = """
import json, sys, time
import numpy as np
from skastro._hardware import resolve_num_workers
from skastro._loading import TrainingBatches
from skastro._validation import check_images
from skastro.datasets import open_data
data = check_images(open_data(sys.argv[1]).images)
workers = resolve_num_workers("auto", lazy=True) if sys.argv[2] == "auto" else int(sys.argv[2])
batches = TrainingBatches(data, 64, drop_last=False, rng=np.random.default_rng(0),
                          num_workers=workers)
start = time.perf_counter()
count = sum(len(index) for _, index in batches)
print(json.dumps({"seconds": time.perf_counter() - start, "images": count, "workers": workers}))
"""


def make_images(n, dtype="float32", seed=0, start=0):
    """``n`` noisy 1x64x64 blob images (blobs of 64 widths, a pool of noise), in ``dtype``."""
    rng = np.random.default_rng(seed + start)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32) - SIZE / 2
    widths = np.linspace(3, 12, 64, dtype=np.float32)[:, None, None]
    templates = np.exp(-(xx**2 + yy**2) / (2 * widths**2)).astype(np.float32)
    noise = 0.05 * np.random.default_rng(1).standard_normal((1024, SIZE, SIZE), np.float32)
    images = templates[rng.integers(0, len(templates), n)] + noise[rng.integers(0, 1024, n)]
    images = images[:, None]
    if dtype == "uint8":
        return np.clip(images * 200 + 20, 0, 255).astype(np.uint8)
    return images.astype(dtype)


def write_files(folder, n, dtype):
    """Write ``images.npy`` and ``images.h5`` (dataset ``images``) with ``n`` images each."""
    import h5py

    folder = Path(folder)
    shape = (n, 1, SIZE, SIZE)
    with open(folder / "images.npy", "wb") as npy, h5py.File(folder / "images.h5", "w") as h5:
        header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(npy, header)
        dataset = h5.create_dataset(
            "images", shape=shape, dtype=dtype, chunks=(min(_HDF5_CHUNK, n), 1, SIZE, SIZE)
        )
        for start in range(0, n, _WRITE_CHUNK):
            block = make_images(min(_WRITE_CHUNK, n - start), dtype, seed=0, start=start)
            npy.write(block.tobytes())
            dataset[start : start + len(block)] = block


def _descendants(pid):
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                children = []
            found += children
            todo += children
    return found


def _status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid):
    """Proportional set size: shared pages (torch's libraries, in every forked worker) are
    split between the processes sharing them instead of counted in each."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _status_kib(pid, "VmRSS")


def run_child(command, log):
    """Run ``command``; return (wall s, peak tree PSS GiB, peak tree RSS GiB, child VmHWM GiB,
    stdout)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    pss = rss = hwm = 0
    with open(log, "w") as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        while child.poll() is None:
            tree = [child.pid, *_descendants(child.pid)]
            pss = max(pss, sum(_pss_kib(p) for p in tree))
            rss = max(rss, sum(_status_kib(p, "VmRSS") for p in tree))
            hwm = max(hwm, _status_kib(child.pid, "VmHWM"))
            time.sleep(0.1)
        out = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(f"{command[:6]} failed:\n{Path(log).read_text()[-3000:]}")
    return time.perf_counter() - start, pss / 2**20, rss / 2**20, hwm / 2**20, out


def _fit_command(path, out, params, extra=()):
    settings = [f"--param={name}={json.dumps(value)}" for name, value in params.items()]
    return [
        sys.executable, "-m", "skastro", "fit", "convautoencoder", str(path), "--out", str(out),
        "--epochs", "1", "--device", "cpu", "--quiet", "--overwrite",
        "--param", "random_state=0", *settings, *extra,
    ]  # fmt: skip


def run(
    quick=False,
    n_images=None,
    in_memory=None,
    dtype="float32",
    folder=None,
    keep=False,
    widths=None,
):
    """Measure the three rows; returns them as dicts."""
    params = {"widths": list(widths or WIDTHS), "n_components": N_COMPONENTS}
    n = n_images or (QUICK_IMAGES if quick else 1_000_000)
    m = min(n, in_memory or (QUICK_IMAGES if quick else 131_072))
    tmp = Path(folder or tempfile.mkdtemp(prefix="skastro-disk-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        start = time.perf_counter()
        write_files(tmp, n, dtype)
        gib = (tmp / "images.npy").stat().st_size / 2**30
        print(f"wrote {n} images ({gib:.2f} GiB per file) in {time.perf_counter() - start:.0f} s")
        here = str(Path(__file__).resolve().parent)
        command = [sys.executable, "-c", _IN_MEMORY_CHILD, here, str(m), dtype, json.dumps(params)]
        seconds, pss, rss, hwm, out = run_child(command, tmp / "memory.log")
        reference = m / json.loads(out.strip().splitlines()[-1])["dur"]
        rows.append(
            {
                "data": f"in memory, {m} images ({dtype})",
                "images_per_s": reference,
                "ratio_to_memory": 1.0,
                "peak_pss_gib": pss,
                "peak_rss_gib": rss,
                "vm_hwm_gib": hwm,
                "wall_s": seconds,
                "goal": "reference",
                "met": "",
            }
        )
        for label, path, extra in [
            (".npy", tmp / "images.npy", ()),
            ("HDF5", tmp / "images.h5", ("--key", "images")),
        ]:
            out_dir = tmp / f"model-{path.suffix[1:]}"
            command = _fit_command(path, out_dir, params, extra)
            seconds, pss, rss, hwm, _ = run_child(command, tmp / f"{path.suffix[1:]}.log")
            history = json.loads((out_dir / "history.json").read_text())
            rate = n / history[-1]["dur"]
            met = pss <= GOAL_RSS_GIB and rate / reference >= GOAL_RATIO
            rows.append(
                {
                    "data": f"{label} file, {n} images ({dtype}, {gib:.2f} GiB), skastro fit",
                    "images_per_s": rate,
                    "ratio_to_memory": rate / reference,
                    "peak_pss_gib": pss,
                    "peak_rss_gib": rss,
                    "vm_hwm_gib": hwm,
                    "wall_s": seconds,
                    "goal": f"memory <= {GOAL_RSS_GIB} GiB, ratio >= {GOAL_RATIO}",
                    "met": "yes" if met else "no",
                }
            )
        # what the reading path alone supplies (shuffled windows, conversion to float32)
        for label, path in [(".npy", tmp / "images.npy"), ("HDF5", tmp / "images.h5")]:
            for workers in ("0", "auto"):
                command = [sys.executable, "-c", _READER_CHILD, str(path), workers]
                seconds, pss, rss, hwm, out = run_child(command, tmp / "reader.log")
                result = json.loads(out.strip().splitlines()[-1])
                rows.append(
                    {
                        "data": f"{label} file, reading only, {result['workers']} worker(s)",
                        "images_per_s": result["images"] / result["seconds"],
                        "ratio_to_memory": None,
                        "peak_pss_gib": pss,
                        "peak_rss_gib": rss,
                        "vm_hwm_gib": hwm,
                        "wall_s": seconds,
                        "goal": "",
                        "met": "",
                    }
                )
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images, a smoke test")
    parser.add_argument("--n-images", type=int, help="images in the files (default 1,000,000)")
    parser.add_argument("--in-memory", type=int, help="images in the in-memory reference")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "uint8"])
    parser.add_argument("--dir", help="folder for the files (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument("--widths", type=int, nargs="+", help=f"network widths (default {WIDTHS})")
    args = parser.parse_args(argv)
    rows = run(
        args.quick, args.n_images, args.in_memory, args.dtype, args.dir, args.keep, args.widths
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    notes = (
        f"One epoch of ConvAutoencoder(widths={tuple(args.widths or WIDTHS)}, n_components="
        f"{N_COMPONENTS}; batch_size='auto' = 64 on a CPU, num_workers='auto') on the CPU. "
        "images_per_s: images over the epoch's training time "
        "(history 'dur'); wall_s includes start-up, the channel statistics and saving. "
        "peak_pss_gib / peak_rss_gib: the training process plus its reader processes, polled "
        "from /proc every 0.1 s; PSS splits the pages that forked readers share with the "
        "training process (torch's libraries), RSS counts them in each process, so the goal "
        "is judged on PSS. vm_hwm_gib: the training process's own high-water mark. "
        "Load average at the end: "
        f"{load:.1f} on {os.cpu_count()} cores (a shared machine makes rates noisy)."
    )
    write_result("disk_training", "Training from disk: .npy and HDF5 files", rows, notes)


if __name__ == "__main__":
    main()
