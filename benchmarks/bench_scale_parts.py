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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_scale as bs
from _common import machine_line, markdown_table


def _knn_row(workdir, label, size, algorithm, index):
    result, _ = bs.run_child(bs._KNN, HERE, size, algorithm, index, workdir / "scores.npy")
    return {
        "backend": label, "n": size, "fit_s": result["fit"], "score_s": result["score"],
        "total_s": result["fit"] + result["score"], "peak_rss_gib": result["peak_rss"] / bs.GIB,
        "how": "measured",
    }  # fmt: skip


def _extrapolated(rows, label, n):
    measured = {r["n"]: r["total_s"] for r in rows if r["backend"] == label}
    a, b = bs._power_law(list(measured), list(measured.values()))
    row = {"backend": label, "n": n, "total_s": a * n**b,
           "how": f"extrapolated: {a:.3g} n^{b:.2f} fitted to its rows above"}  # fmt: skip
    return row, b


def neighbours(workdir, n, exact_sizes, queries=5000, sklearn_at_n=False):
    """KNN rows and notes: exact searches measured small and extrapolated, IVF at ``n``;
    with ``sklearn_at_n``, scikit-learn's exact search measured at ``n`` too (50 minutes at
    10^6 here)."""
    from skastro.distributed._neighbors import FaissNeighbors

    rows = [_knn_row(workdir, "scikit-learn exact", s, "sklearn", "-") for s in exact_sizes]
    sklearn_row, sklearn_power = _extrapolated(rows, "scikit-learn exact", n)
    rows.append(sklearn_row)
    predicted = sklearn_row["total_s"]
    if sklearn_at_n:
        sklearn_row = _knn_row(workdir, "scikit-learn exact", n, "sklearn", "-")
        rows.append(sklearn_row)
    rows += [_knn_row(workdir, "FAISS flat (exact)", s, "faiss", "flat") for s in exact_sizes[-2:]]
    flat_row, flat_power = _extrapolated(rows, "FAISS flat (exact)", n)
    rows.append(flat_row)
    ivf_row = _knn_row(workdir, "FAISS ivf", n, "faiss", "ivf")
    rows.append(ivf_row)
    Z, _ = bs.make_embeddings(n, seed=0)
    Q, _ = bs.make_embeddings(queries, seed=2)
    _, exact = FaissNeighbors(index="flat").fit(Z).kneighbors(Q, 5)
    _, approx = FaissNeighbors(index="ivf").fit(Z).kneighbors(Q, 5)
    recall = float(np.mean([len(set(e) & set(a)) / 5 for e, a in zip(exact, approx)]))
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
    from sklearn.metrics import adjusted_rand_score

    _, truth = bs.make_embeddings(n, seed=0)
    rows = []
    for method, workers in (("hdbscan", 2), ("kmeans", 0)):
        stem = workdir / f"cluster_{method}_{workers}"
        result, _ = bs.run_child(bs._CLUSTER, HERE, n, method, sample, workers, stem)
        labels = np.load(str(stem) + "_labels.npy")
        rows.append({
            "method": f"{method} on a sample of {sample:,}",
            "assigned": "2 local workers" if workers else "this process",
            "n": n, "fit_s": result["fit"], "assign_s": result["assign"],
            "total_s": result["seconds"], "clusters": result["n_clusters"],
            "noise_fraction": result["noise"],
            "ARI_vs_truth": adjusted_rand_score(truth, labels),
            "peak_rss_gib": result["peak_rss"] / bs.GIB,
        })  # fmt: skip
    return rows


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
