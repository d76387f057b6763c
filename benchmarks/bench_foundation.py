"""Foundation benchmark: ConvAutoencoder vs PCA on generated disks, and the wrapper's overhead.

Rows: quality (reconstruction MSE/SSIM on held-out images, silhouette and ARI of KMeans and
HDBSCAN on the embedding against the true labels) and speed (train and transform images/s)
for PCA (the reference) and ConvAutoencoder; plus the training throughput of the very same
torch module in a plain PyTorch loop, so the estimator's overhead is visible (goal: >= 90%).

Run: ``python benchmarks/bench_foundation.py [--quick]``.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timer, write_result


def _plain_loop_epoch_seconds(X, module_factory, batch_size, epochs, seed=0):
    """Per-epoch wall time of the idiomatic hand-written loop on the same module."""
    torch.manual_seed(seed)
    module = module_factory()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    data = torch.from_numpy(X)
    data = (data - data.mean()) / data.std()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(data))
        for i in range(0, len(data), batch_size):
            batch = data[order[i : i + batch_size]]
            optimizer.zero_grad()
            reconstruction, _ = module(batch)
            loss = torch.nn.functional.mse_loss(reconstruction, batch)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def _clustering_rows(name, Z, y, random_state=0):
    import hdbscan
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(Z)
    out = {}
    km = KMeans(len(np.unique(y)), n_init=10, random_state=random_state).fit_predict(Z)
    out["kmeans_silhouette"] = float(silhouette_score(Z, km))
    out["kmeans_ari"] = float(adjusted_rand_score(y, km))
    import umap

    U = umap.UMAP(n_components=5, random_state=random_state, n_jobs=1).fit_transform(Z)
    hd = hdbscan.HDBSCAN(min_cluster_size=max(10, len(Z) // 20)).fit_predict(U)
    keep = hd >= 0
    if len(np.unique(hd[keep])) >= 2:
        out["umap_hdbscan_silhouette"] = float(silhouette_score(U[keep], hd[keep]))
    else:
        out["umap_hdbscan_silhouette"] = -1.0
    out["umap_hdbscan_ari"] = float(adjusted_rand_score(y, hd))
    out["hdbscan_noise_fraction"] = float(1 - keep.mean())
    return out


def run(quick=False):
    """Measure and return the result rows (one dict per method)."""
    from sklearn.decomposition import PCA

    from skastro import ConvAutoencoder
    from skastro.datasets import make_disks
    from skastro.metrics import ssim
    from skastro.nn.conv import ConvAutoencoderModule

    n_train, n_test, epochs = (300, 150, 3) if quick else (600, 300, 20)
    size = 64
    data = make_disks(n_train + n_test, image_size=size, random_state=0)
    X, y = data.images, data.target
    X_train, X_test, y_test = X[:n_train], X[n_train:], y[n_train:]
    n_components = 16
    rows = []

    # --- PCA, the reference row
    flat_train, flat_test = X_train.reshape(n_train, -1), X_test.reshape(n_test, -1)
    with Timer() as t_fit:
        pca = PCA(n_components, random_state=0).fit(flat_train)
    with Timer() as t_tr:
        Z = pca.transform(flat_test)
    rec = pca.inverse_transform(Z).reshape(X_test.shape).astype(np.float32)
    rows.append(
        {
            "method": "PCA (reference)",
            "train_img_per_s": n_train / t_fit.seconds,
            "transform_img_per_s": n_test / t_tr.seconds,
            "test_mse": float(((rec - X_test) ** 2).mean()),
            "test_ssim": ssim(rec, X_test),
            **_clustering_rows("PCA", Z, y_test),
        }
    )

    # --- ConvAutoencoder
    ae = ConvAutoencoder(n_components, max_epochs=epochs, batch_size=32, lr=2e-3, random_state=0)
    with Timer() as t_fit:
        ae.fit(X_train)
    epoch_times = [row["dur"] for row in ae.history_]
    with Timer() as t_tr:
        Z = ae.transform(X_test)
    rec = ae.reconstruct(X_test)
    rows.append(
        {
            "method": "ConvAutoencoder",
            "train_img_per_s": n_train / statistics.median(epoch_times),
            "transform_img_per_s": n_test / t_tr.seconds,
            "test_mse": float(((rec - X_test) ** 2).mean()),
            "test_ssim": ssim(rec, X_test),
            **_clustering_rows("ConvAutoencoder", Z, y_test),
        }
    )

    # --- wrapper overhead: the same module, interleaved runs so machine load hits both alike
    def factory():
        return ConvAutoencoderModule((1, size, size), (16, 32, 64), n_components)

    plain, wrapped = [], []
    for repeat in range(2 if quick else 3):
        plain += _plain_loop_epoch_seconds(X_train, factory, 64, 2, seed=repeat)
        est = ConvAutoencoder(n_components, max_epochs=2, batch_size=64, random_state=repeat)
        est.fit(X_train)
        wrapped += [row["dur"] for row in est.history_]
    plain_rate = n_train / statistics.median(plain)
    wrapped_rate = n_train / statistics.median(wrapped)
    rows.append(
        {
            "method": "same module, plain PyTorch loop",
            "train_img_per_s": plain_rate,
        }
    )
    rows.append(
        {
            "method": "ConvAutoencoder / plain loop (train speed ratio)",
            "train_img_per_s": wrapped_rate / plain_rate,
        }
    )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    notes = (
        "make_disks 64x64, 1 band; held-out test images; n_components=16. KMeans uses k = number "
        "of classes (2: smooth vs planet signatures); HDBSCAN runs on a 5-D UMAP of the "
        "standardised embedding and its silhouette is computed on that UMAP space without noise "
        "points. ConvAutoencoder: batch_size=32, lr=2e-3. train_img_per_s of ConvAutoencoder is "
        "the median epoch (skorch 'dur'); the overhead ratio interleaves plain-loop and "
        "estimator epochs on the same data."
    )
    write_result("foundation", "Foundation: ConvAutoencoder vs PCA on make_disks", rows, notes)


if __name__ == "__main__":
    main()
