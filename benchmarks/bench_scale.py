"""Scale-out: embedding, anomaly scores and clustering of 10^6 cutouts, projected to 10^8.

Goals (issue 24), on a 2-core machine:

* embedding 1,000,000 64x64 cutouts from a ``.npy`` file on disk with ``embed_to_parquet``
  (what ``skastro embed --scheduler local:N`` runs): 2 local workers at least 1.7x as fast
  as 1 worker, peak RSS per worker at most 2 GiB; ``skastro embed`` in one process on the
  same file and model is the reference;
* ``KNNOutlierDetector`` fit + score on 1,000,000 x 32 embeddings with FAISS (flat, exact;
  IVF, approximate, with its measured recall) against scikit-learn's exact search, which is
  quadratic: it is measured at smaller sizes and extrapolated with the fitted power law
  (said so in the table);
* clustering 1,000,000 embeddings (HDBSCAN on a sample + approximate prediction in blocks,
  k-means on a sample + nearest centre), with the agreement with HDBSCAN on all points
  measured where that is affordable;
* a projection of the time for 10^7 and 10^8 cutouts on N CPU workers and N GPUs from the
  measured per-worker rates (GPU rate: the H200 figures in DESIGN.md).

Every timed run is a child process (peak RSS from ``os.wait4``; a worker's own
``ru_maxrss`` read with ``client.run``). The machine these figures come from must be quiet:
on a shared 2-core machine other processes take cores and the speed-up means nothing.

Usage: ``python benchmarks/bench_scale.py [--quick]``; ``--quick`` (about a minute) uses
4,000 cutouts, 20,000 embeddings and small scikit-learn sizes, and checks that everything
runs; its figures are not the issue's.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, markdown_table, write_blob_images

GIB = 2**30
SIZE = 64
N_COMPONENTS = 32
_WRITE_CHUNK = 5000
SPEEDUP_GOAL = 1.7
RSS_GOAL_GIB = 2.0
# DESIGN.md, "Environment facts": ConvAutoencoder on one H200 trains at 34k img/s (batch 256).
# Inference is a forward pass only, so this training rate is a floor for its embedding rate.
GPU_IMAGES_PER_S = 34_000
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


# ---------------------------------------------------------------------------------- data
def write_images(path, n, seed=0):
    """``n`` noisy 1x64x64 float32 blobs of various widths (see ``_common.write_blob_images``)."""
    write_blob_images(path, n, seed=seed, size=SIZE, chunk=_WRITE_CHUNK)


def make_embeddings(n, seed=0):
    """``n`` x 32 float32 embeddings: 20 Gaussian clusters of various sizes and widths."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(20, N_COMPONENTS))
    weights = rng.dirichlet(np.full(20, 2.0))
    which = rng.choice(20, size=n, p=weights)
    scale = rng.uniform(0.5, 1.2, size=20)[which, None]
    Z = centres[which] + scale * rng.standard_normal((n, N_COMPONENTS))
    return Z.astype(np.float32), which


# ---------------------------------------------------------------------------------- children
def run_child(code, *args):
    """Run ``python -c code args``; return (its last stdout line as JSON, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    # RUSAGE_CHILDREN would be a maximum over every child so far: each child reports its own
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return result, seconds


_FIT_MODEL = """
import sys
import numpy as np
from skastro import ConvAutoencoder
images = np.array(np.load(sys.argv[1], mmap_mode="r")[: int(sys.argv[3])])
model = ConvAutoencoder(n_components=32, max_epochs=1, random_state=0, device="cpu")
model.fit(images).save(sys.argv[2])
print("{}")
"""

_IN_PROCESS = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run([sys.executable, "-m", "skastro", "embed", sys.argv[1], sys.argv[2],
                       "--out", sys.argv[3], "--device", "cpu"], capture_output=True, text=True)
seconds = time.perf_counter() - start
if proc.returncode:
    sys.exit(proc.stderr)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_rss": peak}))
"""

_ON_WORKERS = """
import json, resource, sys, time
import distributed
from skastro.distributed import embed_to_parquet

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def warm_up():
    import torch, skastro.estimators  # the import is start-up, not embedding
    return torch.get_num_threads()

if __name__ == "__main__":
    n_workers = int(sys.argv[4])
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    threads = client.run(warm_up)
    start = time.perf_counter()
    summary = embed_to_parquet(sys.argv[1], sys.argv[2], sys.argv[3], scheduler=client,
                               partition_size=int(sys.argv[5]), report=lambda line: None)
    seconds = time.perf_counter() - start
    rss = client.run(peak)
    client.close(); cluster.close()
    print(json.dumps({"seconds": seconds, "n_images": summary.n_images,
                      "worker_peak_rss": sorted(rss.values()),
                      "torch_threads": sorted(threads.values())}))
"""


def bench_embedding(workdir, n_images, partition_size, fit_images):
    data = workdir / "cutouts.npy"
    write_images(data, n_images)
    model = workdir / "model"
    run_child(_FIT_MODEL, data, model, fit_images)
    gib = data.stat().st_size / GIB
    rows = []
    reference, _ = run_child(_IN_PROCESS, model, data, workdir / "in_process.npy")
    rows.append({
        "route": "skastro embed, in one process (2 torch threads)",
        "images": n_images,
        "seconds": reference["seconds"],
        "images_per_s": n_images / reference["seconds"],
        "peak_rss_gib": reference["peak_rss"] / GIB,
    })  # fmt: skip
    rates = {}
    expected = np.load(workdir / "in_process.npy", mmap_mode="r")
    for n_workers in (1, 2):
        out = workdir / f"workers{n_workers}"
        result, _ = run_child(_ON_WORKERS, model, data, out, n_workers, partition_size)
        rates[n_workers] = result["n_images"] / result["seconds"]
        import pandas as pd

        frame = pd.read_parquet(out)
        same = bool(np.allclose(frame.drop(columns="id").to_numpy(np.float32), expected,
                                rtol=1e-5, atol=1e-5))  # fmt: skip
        rows.append({
            "route": f"embed_to_parquet, {n_workers} local worker(s), "
            f"{result['torch_threads'][0]} torch thread each",
            "images": result["n_images"],
            "seconds": result["seconds"],
            "images_per_s": rates[n_workers],
            "peak_rss_gib": max(result["worker_peak_rss"]) / GIB,
            "same_embeddings": "yes" if same else "NO",
        })  # fmt: skip
        shutil.rmtree(out)
    speedup = rates[2] / rates[1]
    worst_rss = max(r["peak_rss_gib"] for r in rows[1:])
    notes = (
        f"Data: {n_images:,} cutouts of 1x64x64 float32 in one .npy file ({gib:.2f} GiB), "
        f"partitions of {partition_size:,} images; model: ConvAutoencoder(n_components=32), "
        "default widths. Seconds count the embedding call on a started cluster whose workers "
        "have imported torch (cluster start-up excluded, model shipping included). "
        "peak_rss_gib: the child process for the in-process route, the largest worker's own "
        f"ru_maxrss for the workers.\n\nGoals: 2 workers >= {SPEEDUP_GOAL}x one worker: "
        f"measured {speedup:.2f}x ({'met' if speedup >= SPEEDUP_GOAL else 'NOT met'}); peak "
        f"RSS per worker <= {RSS_GOAL_GIB} GiB: measured {worst_rss:.2f} GiB "
        f"({'met' if worst_rss <= RSS_GOAL_GIB else 'NOT met'})."
    )
    data.unlink()
    return rows, notes, rates


# ---------------------------------------------------------------------------------- neighbours
_KNN = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from bench_scale import make_embeddings
from skastro import KNNOutlierDetector
n, algorithm, index = int(sys.argv[2]), sys.argv[3], sys.argv[4]
Z, _ = make_embeddings(n, seed=0)
Q, _ = make_embeddings(n, seed=1)
params = dict(n_neighbors=5, algorithm=algorithm)
if index != "-":
    params["index"] = index
start = time.perf_counter()
detector = KNNOutlierDetector(**params).fit(Z)
fit = time.perf_counter() - start
start = time.perf_counter()
scores = detector.score_samples(Q)
score = time.perf_counter() - start
np.save(sys.argv[5], scores)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"fit": fit, "score": score, "peak_rss": peak}))
"""


def _power_law(sizes, seconds):
    """Exponent and prefactor of ``seconds = a n^b`` fitted in log-log space."""
    b, log_a = np.polyfit(np.log(sizes), np.log(seconds), 1)
    return math.exp(log_a), b


def knn_row(workdir, label, size, algorithm, index, scores_path):
    """One measured row: KNNOutlierDetector fit + score of ``size`` points in a child process.

    ``index`` is the FAISS index ("flat", "ivf") or "-" for scikit-learn; the scores are
    saved to ``scores_path``.
    """
    here = str(Path(__file__).resolve().parent)
    result, _ = run_child(_KNN, here, size, algorithm, index, workdir / scores_path)
    return {
        "backend": label, "n": size, "fit_s": result["fit"], "score_s": result["score"],
        "total_s": result["fit"] + result["score"], "peak_rss_gib": result["peak_rss"] / GIB,
        "how": "measured",
    }  # fmt: skip


def extrapolated_row(rows, label, n):
    """A row for ``label`` at ``n`` from the power law fitted to its measured rows; and the
    exponent."""
    measured = {r["n"]: r["total_s"] for r in rows if r["backend"] == label}
    a, b = _power_law(list(measured), list(measured.values()))
    row = {"backend": label, "n": n, "total_s": a * n**b,
           "how": f"extrapolated: {a:.3g} n^{b:.2f} fitted to its rows above"}  # fmt: skip
    return row, b


def bench_neighbours(workdir, n, sklearn_sizes, recall_queries):
    rows = [
        knn_row(workdir, "scikit-learn exact", size, "sklearn", "-", "s.npy")
        for size in sklearn_sizes
    ]
    row, b = extrapolated_row(rows, "scikit-learn exact", n)
    rows.append(row)
    scores = {}
    for index in ("flat", "ivf"):
        label = f"FAISS {index}" + (" (exact)" if index == "flat" else "")
        rows.append(knn_row(workdir, label, n, "faiss", index, f"{index}.npy"))
        scores[index] = np.load(workdir / f"{index}.npy")
    # recall of IVF's 5 neighbours, against the exact ones, on a sample of queries
    recall = _ivf_recall(n, recall_queries)
    score_error = float(np.median(np.abs(scores["ivf"] - scores["flat"]) / np.abs(scores["flat"])))
    speed = {r["backend"]: r["total_s"] for r in rows if r["n"] == n}
    notes = (
        f"Embeddings: {n:,} x 32 float32, a mixture of 20 Gaussian clusters; fit on them, "
        f"score {n:,} new points from the same mixture; n_neighbors=5. scikit-learn's exact "
        "search grows as n^2 and is measured at the sizes shown, then extrapolated "
        f"(exponent {b:.2f}); it was not run at {n:,}. FAISS IVF with the defaults "
        f"(n_lists = 4 sqrt(n), n_probe = 64): recall of the 5 nearest "
        f"neighbours {recall:.3f} on {recall_queries:,} queries; median relative score "
        f"difference from the exact scores {score_error:.2e} (a missed neighbour makes a score "
        f"lower). Speed-up at n = {n:,}: FAISS flat "
        f"{speed['scikit-learn exact'] / speed['FAISS flat (exact)']:.1f}x, FAISS IVF "
        f"{speed['scikit-learn exact'] / speed['FAISS ivf']:.1f}x the extrapolated "
        "scikit-learn time."
    )
    return rows, notes, speed


def _ivf_recall(n, n_queries):
    from skastro.distributed._neighbors import FaissNeighbors

    Z, _ = make_embeddings(n, seed=0)
    Q, _ = make_embeddings(n_queries, seed=2)
    _, exact = FaissNeighbors(index="flat").fit(Z).kneighbors(Q, 5)
    _, approx = FaissNeighbors(index="ivf").fit(Z).kneighbors(Q, 5)
    return float(np.mean([len(set(e) & set(a)) / 5 for e, a in zip(exact, approx)]))


# ---------------------------------------------------------------------------------- clustering
_CLUSTER = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from bench_scale import make_embeddings
from skastro.distributed import cluster_embeddings
n, method, sample, workers = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
Z, truth = make_embeddings(n, seed=0)
np.save(sys.argv[6] + ".npy", Z)
del Z
client = "local:%d" % workers if workers else None
start = time.perf_counter()
result = cluster_embeddings(sys.argv[6] + ".npy", method=method, sample_size=sample,
                            n_clusters=20, client=client, block_size=100_000)
seconds = time.perf_counter() - start
np.save(sys.argv[6] + "_labels.npy", result.labels)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "fit": result.seconds["fit"],
                  "assign": result.seconds["assign"], "n_clusters": result.n_clusters,
                  "noise": float(np.mean(result.labels < 0)), "peak_rss": peak}))
"""


def cluster_row(workdir, n, method, sample, workers, truth):
    """One row: ``cluster_embeddings`` of ``n`` embeddings in a child process (``workers``
    local workers, 0 for this process), scored against ``truth``; its files are removed."""
    from sklearn.metrics import adjusted_rand_score

    here = str(Path(__file__).resolve().parent)
    stem = workdir / f"cluster_{method}_{workers}"
    result, _ = run_child(_CLUSTER, here, n, method, sample, workers, stem)
    labels = np.load(str(stem) + "_labels.npy")
    for suffix in (".npy", "_labels.npy"):
        Path(str(stem) + suffix).unlink()
    return {
        "method": f"{method} on a sample of {sample:,}",
        "assigned": "2 local workers" if workers else "this process",
        "n": n, "fit_s": result["fit"], "assign_s": result["assign"],
        "total_s": result["seconds"], "clusters": result["n_clusters"],
        "noise_fraction": result["noise"],
        "ARI_vs_truth": adjusted_rand_score(truth, labels),
        "peak_rss_gib": result["peak_rss"] / GIB,
    }  # fmt: skip


def bench_clustering(workdir, n, sample, quality_n, quality_sample):
    from sklearn.metrics import adjusted_rand_score

    _, truth = make_embeddings(n, seed=0)
    rows = [
        cluster_row(workdir, n, method, sample, workers, truth)
        for method, workers in [("hdbscan", 0), ("hdbscan", 2), ("kmeans", 0)]
    ]
    # quality: the sample route against HDBSCAN on all points, where that is affordable
    import hdbscan

    from skastro.distributed import cluster_embeddings

    Z, _ = make_embeddings(quality_n, seed=3)
    size = max(5, quality_sample // 100)
    start = time.perf_counter()
    full = hdbscan.HDBSCAN(min_cluster_size=size).fit_predict(Z)
    full_seconds = time.perf_counter() - start
    sampled = cluster_embeddings(Z, sample_size=quality_sample, min_cluster_size=size).labels
    agreement = adjusted_rand_score(full, sampled)
    notes = (
        f"Embeddings: {n:,} x 32 (20 Gaussian clusters, ARI_vs_truth against them), read from "
        "a .npy file in blocks of 100,000. HDBSCAN: min_cluster_size = sample // 100, fitted "
        "on the sample with prediction data, the other points assigned with "
        "hdbscan.approximate_predict; k-means: 20 clusters on the sample, nearest centre for "
        f"the rest. Agreement with HDBSCAN on all points, at {quality_n:,} points (HDBSCAN on "
        f"all of them took {full_seconds:.0f} s): ARI {agreement:.3f} between the labels from "
        f"a sample of {quality_sample:,} and those from all points (same min_cluster_size)."
    )
    return rows, notes


# ---------------------------------------------------------------------------------- projection
def projection(rates, knn_speed, n_measured):
    """Hours for 10^7 and 10^8 cutouts on N workers / GPUs, from the measured rates."""
    per_worker = rates[1]
    efficiency = rates[2] / (2 * rates[1])
    rows = []
    for n in (10**7, 10**8):
        for workers in (8, 64, 512):
            rows.append({
                "cutouts": f"{n:.0e}", "hardware": f"{workers} CPU workers (1 core each)",
                "embed_hours": n / (workers * per_worker * efficiency) / 3600,
            })  # fmt: skip
        for gpus in (1, 8, 64):
            rows.append({
                "cutouts": f"{n:.0e}", "hardware": f"{gpus} H200 GPU(s)",
                "embed_hours": n / (gpus * GPU_IMAGES_PER_S) / 3600,
            })  # fmt: skip
    ivf = knn_speed["FAISS ivf"]
    # n queries, each scanning n_probe cells of n / n_lists = sqrt(n) / 4 points: n^1.5
    ivf_hours = {n: ivf * (n / n_measured) ** 1.5 / 3600 for n in (10**7, 10**8)}
    notes = (
        f"Embedding: the measured rate of one 1-core worker ({per_worker:.0f} img/s) times N "
        f"times the measured 2-worker efficiency ({efficiency:.2f}); that assumes the file "
        "system feeds N workers as it fed two (a shared file system often will not: then "
        "reading, not the network, sets the time). GPUs: 34,000 img/s each, the H200 training "
        "rate of ConvAutoencoder with batch 256 from DESIGN.md, a floor for its inference "
        "rate; at that rate the CPU side reading and decoding cutouts (FITS especially) is "
        "likely the limit, so give each GPU worker several reading threads or processes.\n\n"
        f"Anomaly scores: FAISS IVF measured {ivf:.0f} s for fit + score at {n_measured:,} "
        "points; its cost per query grows as n / n_lists ~ sqrt(n), so about "
        f"{ivf_hours[10**7]:.1f} h at 10^7 and {ivf_hours[10**8]:.0f} h at 10^8 on "
        "this machine's 2 cores, before dividing by the workers (score_samples on a dask "
        "array ships the detector once per worker: 10^8 x 32 float32 is 12.8 GiB per worker, "
        "so at 10^8 score a sample or use a machine per shard). The exact flat index grows as "
        "n^2 (100x per decade) and is not an option there."
    )
    return rows, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--workdir", default=None, help="where the data go (default: a temp dir)")
    parser.add_argument("--n-images", type=int, default=None, help="cutouts to embed")
    parser.add_argument("--n-embeddings", type=int, default=None, help="for KNN and clustering")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = dict(images=2_000, partition=500, fit=500, knn=10_000, sk=[2_000, 4_000],
                     recall=500, cluster=10_000, sample=2_000, quality=3_000,
                     qsample=1_000)  # fmt: skip
    else:
        sizes = dict(images=1_000_000, partition=50_000, fit=4_000, knn=1_000_000,
                     sk=[12_500, 25_000, 50_000], recall=5_000, cluster=1_000_000,
                     sample=100_000, quality=50_000, qsample=10_000)  # fmt: skip
    if args.n_images:
        sizes["images"] = args.n_images
        sizes["partition"] = min(sizes["partition"], max(1, args.n_images // 20))
    if args.n_embeddings:
        sizes["knn"] = sizes["cluster"] = args.n_embeddings
        sizes["sample"] = min(sizes["sample"], args.n_embeddings // 2)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="skastro-bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        embed_rows, embed_notes, rates = bench_embedding(
            workdir, sizes["images"], sizes["partition"], sizes["fit"]
        )
        knn_rows, knn_notes, knn_speed = bench_neighbours(
            workdir, sizes["knn"], sizes["sk"], sizes["recall"]
        )
        cluster_rows, cluster_notes = bench_clustering(
            workdir, sizes["cluster"], sizes["sample"], sizes["quality"], sizes["qsample"]
        )
        projection_rows, projection_notes = projection(rates, knn_speed, sizes["knn"])
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.quick:
        mode = "QUICK MODE: sizes too small for the issue's figures"
    elif args.n_images or args.n_embeddings:
        mode = f"partial run: {sizes['images']:,} cutouts, {sizes['knn']:,} embeddings"
    else:
        mode = "full run"
    text = (
        f"## Scale-out: 10^6 cutouts on dask workers, FAISS, clustering ({mode})\n\n"
        f"{machine_line()}; run took {(time.perf_counter() - started) / 60:.1f} min\n\n"
        "Throughput figures are only meaningful on a quiet machine: on a shared 2-core "
        "machine other processes take cores, and the 1-vs-2-worker speed-up says nothing.\n\n"
        f"### Embedding from disk\n\n{markdown_table(embed_rows)}\n{embed_notes}\n\n"
        f"### KNNOutlierDetector: fit + score\n\n{markdown_table(knn_rows)}\n{knn_notes}\n\n"
        f"### Clustering\n\n{markdown_table(cluster_rows)}\n{cluster_notes}\n\n"
        f"### Projection to 10^7 and 10^8 cutouts\n\n{markdown_table(projection_rows)}\n"
        f"{projection_notes}\n"
    )
    out = Path(__file__).resolve().parent / "results" / "scale.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
