"""Fit a model on generated protoplanetary disks, cluster its latent space and write a report.

The demo makes disks with and without planet signatures, fits an autoencoder (by default the
D8-equivariant one of the protoplanetary-disk write-up, whose latent ignores the orientation
of a disk on the sky; ``--model conv`` for the plain baseline), embeds held-out
disks, clusters them with UMAP + HDBSCAN and with KMeans, prints a table next to PCA (the
reference row) and writes PNG figures to the output folder. It runs on the CPU in a few
minutes and needs no data or network.
"""

import time
from pathlib import Path

DEFAULT_MODEL = "equivariant"


def add_arguments(parser):
    """Add the demo's options to ``parser``."""
    parser.add_argument("--out", default="demo_output", help="folder for the figures")
    parser.add_argument("--n-samples", type=int, default=480, help="disks to generate")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument(
        "--model",
        choices=["conv", "equivariant"],
        default=DEFAULT_MODEL,
        help="the autoencoder to fit",
    )
    parser.add_argument("--random-state", type=int, default=0)


def _make_model(name, epochs, random_state):
    if name == "equivariant":
        from skastro import EquivariantAutoencoder

        # the benchmark's training recipe (benchmarks/bench_disks.py): batch 8 and half an
        # MS-SSIM term; 8 epochs of the default widths on 360 disks
        return EquivariantAutoencoder(
            n_components=16,
            max_epochs=epochs or 8,
            batch_size=8,
            ms_ssim_weight=0.5,
            random_state=random_state,
            verbose=1,
        )
    from skastro import ConvAutoencoder

    return ConvAutoencoder(
        n_components=16,
        max_epochs=epochs or 25,
        # smaller batches and a larger step than the defaults: a few hundred disks give few
        # optimiser steps per epoch (this halved the test MSE in benchmarks/bench_foundation.py)
        batch_size=32,
        lr=2e-3,
        augment=True,
        random_state=random_state,
        verbose=1,
    )


def _cluster_scores(Z, y, random_state):
    """KMeans(2) and UMAP + HDBSCAN on an embedding: labels, silhouettes and ARIs."""
    import hdbscan
    import numpy as np
    import umap
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(Z)
    kmeans = KMeans(2, n_init=10, random_state=random_state).fit_predict(Z)
    U = umap.UMAP(n_components=2, random_state=random_state, n_jobs=1).fit_transform(Z)
    hd = hdbscan.HDBSCAN(min_cluster_size=max(10, len(Z) // 15)).fit_predict(U)
    keep = hd >= 0
    hd_sil = float(silhouette_score(U[keep], hd[keep])) if len(np.unique(hd[keep])) > 1 else -1.0
    return {
        "kmeans_silhouette": float(silhouette_score(Z, kmeans)),
        "kmeans_ari": float(adjusted_rand_score(y, kmeans)),
        "hdbscan_clusters": len(np.unique(hd[keep])),
        "hdbscan_silhouette": hd_sil,
        "hdbscan_ari": float(adjusted_rand_score(y, hd)),
        "_umap": U,
        "_hdbscan": hd,
        "_kmeans": kmeans,
    }


def _format_table(rows):
    columns = [
        ("method", "{}"),
        ("mse", "{:.4f}"),
        ("ssim", "{:.3f}"),
        ("kmeans_silhouette", "{:.3f}"),
        ("kmeans_ari", "{:.3f}"),
        ("hdbscan_clusters", "{}"),
        ("hdbscan_silhouette", "{:.3f}"),
        ("hdbscan_ari", "{:.3f}"),
        ("fit_seconds", "{:.1f}"),
    ]
    header = " | ".join(name for name, _ in columns)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" | ".join(fmt.format(row[name]) for name, fmt in columns))
    return "\n".join(lines)


def run(args):
    """Run the demo; returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")  # a file-only backend: the demo never needs a display
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.decomposition import PCA

    from skastro import plotting
    from skastro.datasets import make_disks
    from skastro.metrics import reconstruction_mse, ssim

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_disks(args.n_samples, image_size=64, random_state=args.random_state)
    X, y = data.images, data.target
    n_train = int(0.75 * len(X))
    X_train, X_test, y_test = X[:n_train], X[n_train:], y[n_train:]
    print(
        f"Generated {len(X)} disks of 64x64 ({int(y.sum())} with planet signatures); "
        f"training on {n_train}, evaluating on {len(X_test)}."
    )

    rows = []
    t0 = time.perf_counter()
    pca = PCA(16, random_state=args.random_state).fit(X_train.reshape(n_train, -1))
    Z_pca = pca.transform(X_test.reshape(len(X_test), -1))
    rec_pca = pca.inverse_transform(Z_pca).reshape(X_test.shape).astype(np.float32)
    pca_fit = time.perf_counter() - t0
    pca_scores = _cluster_scores(Z_pca, y_test, args.random_state)
    rows.append(
        {
            "method": "PCA (reference)",
            "mse": reconstruction_mse(X_test, rec_pca),
            "ssim": ssim(X_test, rec_pca),
            "fit_seconds": pca_fit,
            **pca_scores,
        }
    )

    model = _make_model(args.model, args.epochs, args.random_state)
    name = type(model).__name__
    print(f"Fitting {name} ...")
    t0 = time.perf_counter()
    model.fit(X_train)
    fit_seconds = time.perf_counter() - t0
    Z = model.transform(X_test)
    rec = model.reconstruct(X_test)
    scores = _cluster_scores(Z, y_test, args.random_state)
    rows.append(
        {
            "method": name,
            "mse": reconstruction_mse(X_test, rec),
            "ssim": ssim(X_test, rec),
            "fit_seconds": fit_seconds,
            **scores,
        }
    )

    print()
    print(_format_table(rows))
    print(
        "\nARI compares clusters with the true label (planet signatures or not); "
        "silhouette is measured in the space each clusterer saw."
    )

    figures = {
        "reconstructions.png": lambda: plotting.plot_reconstructions(X_test, rec, n=8),
        "embedding_umap_hdbscan.png": lambda: plotting.plot_embedding(
            scores["_umap"],
            scores["_hdbscan"],
            method=None,
            title=f"{name}: UMAP coloured by HDBSCAN cluster",
        ),
        "embedding_true_labels.png": lambda: plotting.plot_embedding(
            scores["_umap"],
            np.where(y_test == 1, "planet", "smooth"),
            method=None,
            title=f"{name}: UMAP coloured by the true label",
        ),
        "cluster_examples.png": lambda: plotting.plot_cluster_examples(
            X_test, scores["_hdbscan"], n_per_cluster=8
        ),
        "training_history.png": lambda: plotting.plot_history(model),
    }
    for filename, draw in figures.items():
        result = draw()
        figure = result.get_figure() if hasattr(result, "get_figure") else result
        figure = getattr(figure, "figure", figure)
        figure.savefig(out / filename, dpi=100, bbox_inches="tight")
        plt.close(figure)
    print(f"\nWrote {len(figures)} figures to {out}/ in {time.perf_counter() - start:.0f} s.")
    return 0
