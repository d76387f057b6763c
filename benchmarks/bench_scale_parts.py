"""bench_scale.py one part at a time, so that each part can run on a quiet machine.

On a shared 2-core machine the whole of ``bench_scale.py`` (about 1.5 hours at 10^6) rarely
finds the machine quiet from start to end. This script runs one part with the same functions
and prints a markdown section (with the load average at its start and end) that
``results/scale.md`` quotes:

* ``embedding N``: ``bench_scale.bench_embedding`` on N cutouts (1 and 2 workers and the
  in-process reference);
* ``neighbours-clustering N``: KNNOutlierDetector fit + score with scikit-learn's exact
  search and FAISS flat measured up to ``--exact-sizes`` and extrapolated to N, FAISS IVF
  measured at N with its recall on 5,000 queries; then clustering N embeddings (HDBSCAN on
  a sample assigned on 2 local workers, k-means on a sample).

Usage: ``python benchmarks/bench_scale_parts.py embedding 1000000 --out section.md``.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_scale as bs
from _common import machine_line, markdown_table


def neighbours(workdir, n, exact_sizes, queries=5000, sklearn_at_n=False):
    """KNN rows and notes: exact searches measured small and extrapolated, IVF at ``n``;
    with ``sklearn_at_n``, scikit-learn's exact search measured at ``n`` too (50 minutes at
    10^6 here)."""
    rows = [
        bs.knn_row(workdir, "scikit-learn exact", s, "sklearn", "-", "scores.npy")
        for s in exact_sizes
    ]
    sklearn_row, sklearn_power = bs.extrapolated_row(rows, "scikit-learn exact", n)
    rows.append(sklearn_row)
    predicted = sklearn_row["total_s"]
    if sklearn_at_n:
        sklearn_row = bs.knn_row(workdir, "scikit-learn exact", n, "sklearn", "-", "scores.npy")
        rows.append(sklearn_row)
    rows += [
        bs.knn_row(workdir, "FAISS flat (exact)", s, "faiss", "flat", "scores.npy")
        for s in exact_sizes[-2:]
    ]
    flat_row, flat_power = bs.extrapolated_row(rows, "FAISS flat (exact)", n)
    rows.append(flat_row)
    ivf_row = bs.knn_row(workdir, "FAISS ivf", n, "faiss", "ivf", "scores.npy")
    rows.append(ivf_row)
    recall = bs._ivf_recall(n, queries)
    ivf, sklearn_s, flat_s = ivf_row["total_s"], sklearn_row["total_s"], flat_row["total_s"]
    notes = (
        f"Embeddings: {n:,} x 32 float32, a mixture of 20 Gaussian clusters; fit on them, score "
        f"{n:,} new points from the same mixture; n_neighbors=5. The exact searches were "
        f"measured up to {max(exact_sizes):,} points and extrapolated to {n:,} with the fitted "
        f"power laws (exponents {sklearn_power:.2f} and {flat_power:.2f}: about "
        f"{predicted / 60:.0f} and {flat_s / 60:.0f} minutes there)"
        + (f"; scikit-learn's was then run at {n:,}: {sklearn_s:.0f} s. " if sklearn_at_n else ". ")
        + "FAISS IVF with the defaults (n_lists = 4 sqrt(n), n_probe = 64) measured "
        f"at {n:,}: recall of the 5 nearest neighbours {recall:.3f} on {queries:,} queries. "
        f"At n = {n:,} FAISS IVF is {sklearn_s / ivf:.1f}x faster than scikit-learn's exact "
        f"search ({'measured' if sklearn_at_n else 'extrapolated'}) and FAISS flat (extrapolated) "
        f"{sklearn_s / flat_s:.1f}x."
    )
    return rows, notes


def clustering(workdir, n, sample):
    """Rows for HDBSCAN (sample, 2 local workers) and k-means (sample) on ``n`` embeddings."""
    _, truth = bs.make_embeddings(n, seed=0)
    return [
        bs.cluster_row(workdir, n, method, sample, workers, truth)
        for method, workers in (("hdbscan", 2), ("kmeans", 0))
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("embedding", "neighbours-clustering"))
    parser.add_argument("n", type=int, help="cutouts (embedding) or embeddings")
    parser.add_argument("--exact-sizes", default="12500,25000,50000,100000",
                        help="sizes at which the exact searches are measured")  # fmt: skip
    parser.add_argument("--sample", type=int, default=50_000, help="clustering sample")
    parser.add_argument(
        "--sklearn-at-n", action="store_true", help="also run scikit-learn's exact search at n"
    )
    parser.add_argument("--out", default=None, help="also write the section to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="skastro-scale-part-"))
    start, load0 = time.perf_counter(), os.getloadavg()
    try:
        if args.part == "embedding":
            partition = max(1, min(50_000, args.n // 20))
            rows, notes, _ = bs.bench_embedding(workdir, args.n, partition, 4_000)
            title = f"Embedding from disk on a quiet machine ({args.n:,} cutouts)"
            body = f"{markdown_table(rows)}\n{notes}\n"
        else:
            sizes = [int(s) for s in args.exact_sizes.split(",")]
            knn_rows, knn_notes = neighbours(workdir, args.n, sizes, sklearn_at_n=args.sklearn_at_n)
            cluster_rows = clustering(workdir, args.n, args.sample)
            title = f"KNN and clustering at {args.n:,} embeddings, quiet machine"
            body = (
                f"#### KNNOutlierDetector: fit + score\n\n{markdown_table(knn_rows)}\n"
                f"{knn_notes}\n\n#### Clustering\n\n{markdown_table(cluster_rows)}\n"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load1 = os.getloadavg()
    text = (
        f"### {title}\n\n{machine_line()}; {(time.perf_counter() - start) / 60:.1f} min; load "
        f"average (1, 5, 15 min) {load0[0]:.1f}, {load0[1]:.1f}, {load0[2]:.1f} at the start "
        f"and {load1[0]:.1f}, {load1[1]:.1f}, {load1[2]:.1f} at the end\n\n{body}"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
