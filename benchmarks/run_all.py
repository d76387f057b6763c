"""Run every benchmark and assemble benchmarks/RESULTS.md.

Each ``benchmarks/bench_<topic>.py`` runs as its own process (so one failing or slow benchmark
does not take the others down), prints its table and writes ``benchmarks/results/<topic>.md``.
This script then concatenates those files, in a fixed order, into ``RESULTS.md``.

Usage: ``python benchmarks/run_all.py [--quick] [--only TOPIC ...]`` (``make bench``).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "foundation", "disks", "denoising", "vicreg", "star_galaxy", "cli_memory", "explorer",
    "disk_training", "loop_overhead", "gpu",
]  # fmt: skip


def _topics():
    found = [p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py")]
    return sorted(found, key=lambda t: (ORDER.index(t) if t in ORDER else len(ORDER), t))


def assemble():
    """Write RESULTS.md from every results/<topic>.md present."""
    parts = [
        "# Benchmark results\n",
        "Produced by `make bench` (`python benchmarks/run_all.py`). Each section names the "
        "machine it ran on. These machines are shared and noisy: compare rows within one "
        "section (measured side by side in one run) and read ratios rather than absolute "
        "speeds.\n",
    ]
    for topic in _topics():
        path = HERE / "results" / f"{topic}.md"
        if path.exists():
            parts.append(path.read_text().strip() + "\n")
    (HERE / "RESULTS.md").write_text("\n".join(parts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--only", nargs="*", help="topics to run (default: all)")
    args = parser.parse_args(argv)
    failures = []
    for topic in args.only or _topics():
        script = HERE / f"bench_{topic}.py"
        print(f"\n=== {topic} ===", flush=True)
        start = time.perf_counter()
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        if subprocess.call(command) != 0:
            failures.append(topic)
        print(f"=== {topic}: {time.perf_counter() - start:.0f} s", flush=True)
    assemble()
    print(f"\nWrote {HERE / 'RESULTS.md'}")
    if failures:
        print(f"benchmarks that failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
