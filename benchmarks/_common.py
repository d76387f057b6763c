"""Helpers shared by the benchmark scripts: machine description, timing, tables."""

import os
import platform
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_line():
    """One line describing the machine the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"Machine: {platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPU cores, "
        f"{gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads; {time.strftime('%Y-%m-%d')}"
    )


def markdown_table(rows, columns=None, floatfmt="{:.3g}"):
    """Format a list of dicts as a markdown table (missing cells are blank)."""
    if not rows:
        return "(no rows)\n"
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]

    def cell(value):
        if isinstance(value, float):
            return floatfmt.format(value)
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_result(topic, title, rows, notes="", columns=None):
    """Print a result table and write it to ``benchmarks/results/<topic>.md``."""
    RESULTS_DIR.mkdir(exist_ok=True)
    text = f"## {title}\n\n{machine_line()}\n\n{markdown_table(rows, columns)}"
    if notes:
        text += f"\n{notes.strip()}\n"
    (RESULTS_DIR / f"{topic}.md").write_text(text)
    print(text)
    return text


def write_section(topic, title, rows, notes="", columns=None):
    """Like :func:`write_result`, but replace only the section ``## title`` of
    ``benchmarks/results/<topic>.md`` (or add it), keeping the file's other sections: for
    benchmarks that share a results file."""
    RESULTS_DIR.mkdir(exist_ok=True)
    text = f"## {title}\n\n{machine_line()}\n\n{markdown_table(rows, columns)}"
    if notes:
        text += f"\n{notes.strip()}\n"
    path = RESULTS_DIR / f"{topic}.md"
    body = path.read_text() if path.exists() else ""
    # the file's sections, each starting at a "## " line
    sections = [part.strip() + "\n" for part in ("\n" + body).split("\n## ") if part.strip()]
    sections = ["## " + part for part in sections]
    mine = [i for i, part in enumerate(sections) if part.startswith(f"## {title}\n")]
    if mine:
        sections[mine[0]] = text
    else:
        sections.append(text)
    path.write_text("\n".join(sections))
    print(text)
    return text


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def write_blob_images(path, n, seed=0, size=64, chunk=5000):
    """Write ``n`` noisy 1 x size x size float32 blobs of various widths to a ``.npy`` file.

    Written ``chunk`` images at a time with plain writes, so files larger than memory can be
    made; the same data for a given seed whatever the chunk.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - size / 2
    widths = np.linspace(3, 12, 64, dtype=np.float32)[:, None, None]
    templates = np.exp(-(xx**2 + yy**2) / (2 * widths**2)).astype(np.float32)
    with open(path, "wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": (n, 1, size, size)}
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, chunk):
            k = min(start + chunk, n) - start
            images = templates[rng.integers(0, len(templates), k)]
            images += 0.05 * rng.standard_normal(images.shape, dtype=np.float32)
            f.write(images.tobytes())
