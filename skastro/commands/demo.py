"""Show what skastro is for, on built-in data: find artefacts among galaxies, and find the
protoplanetary disks with planets, each next to PCA.

1. Anomalies: a VICReg embedder learns galaxy images (make_galaxies) without labels;
   KNNOutlierDetector scores held-out galaxies into which satellite trails, cosmic rays,
   saturated stars and blank frames were injected (make_anomalies). The table gives the
   anomaly AUROC and how many of the most anomalous images are artefacts.
2. Disks: each disk minus its axisymmetric model (AxisymmetricResidual), soft-thresholded at
   3 sigma (SoftThreshold), embedded by the D8-equivariant autoencoder, whose latent ignores
   how a disk is turned on the sky; KMeans(2) and a linear probe against the planet label.

Both run on the CPU in a few minutes and need no data or network. The demo writes figures,
an explorer HTML file (offline, self-contained) of the galaxies in both embeddings side by
side, the galaxies and the fitted VICReg model (so that ``skastro explore`` opens them), and
ends by saying what to open and what to run next.
"""

import time
from pathlib import Path

from skastro.commands._errors import CommandError

# Defaults sized to run in about 2 minutes on 2 free CPU cores (docs/user_guide/cli.rst).
N_GALAXIES = 600
N_DISKS = 240
VICREG_EPOCHS = 6
DISK_EPOCHS = 10
PARTS = ("anomalies", "disks")


def add_arguments(parser):
    """Add the demo's options to ``parser``."""
    parser.add_argument("--out", default="demo_output", help="folder for the results")
    parser.add_argument(
        "--n-galaxies", type=int, default=N_GALAXIES, help="galaxies the VICReg model learns"
    )
    parser.add_argument("--n-disks", type=int, default=N_DISKS, help="disks the autoencoder learns")
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs of both models (default 6, 10)"
    )
    parser.add_argument(
        "--model",
        choices=["equivariant", "conv"],
        default="equivariant",
        help="the disks' autoencoder: the D8-equivariant one, or the plain baseline",
    )
    parser.add_argument("--only", choices=PARTS, default=None, help="run one part of the demo only")
    parser.add_argument("--random-state", type=int, default=0)


# ----------------------------------------------------------------------------- part 1
def _galaxy_data(n_galaxies, random_state):
    """Training galaxies; held-out galaxies with artefacts mixed in, and each one's kind."""
    import numpy as np

    from skastro.datasets import make_anomalies, make_galaxies

    common = dict(image_size=32, noise_sigma=0.02)
    train = make_galaxies(n_galaxies, random_state=random_state, **common)
    test = make_galaxies(max(8, n_galaxies // 2), random_state=random_state + 1, **common)
    sources = make_galaxies(max(8, n_galaxies // 4), random_state=random_state + 2, **common)
    per_kind = max(2, n_galaxies // 60)
    anomalies = make_anomalies(sources.images, per_kind, noise_sigma=0.02, random_state=0)
    images = np.concatenate([test.images, anomalies.images])
    morphology = np.asarray(test.target_names)[test.target]
    kind = np.r_[morphology, anomalies.kind].astype(str)
    is_artefact = np.r_[np.zeros(len(test.images), bool), np.ones(len(anomalies.images), bool)]
    return train.images, images, kind, is_artefact


def _vicreg(epochs, random_state):
    from skastro import VICRegEmbedder

    # the benchmark's network (benchmarks/bench_vicreg.py), trained for a few epochs
    return VICRegEmbedder(
        n_components=64,
        widths=(16, 32, 64),
        stem_stride=2,
        max_epochs=epochs or VICREG_EPOCHS,
        batch_size=128,
        random_state=random_state,
        verbose=0,
    )


def _anomaly_scores(Z_train, Z):
    """KNNOutlierDetector fitted on the training galaxies: higher = more anomalous."""
    from skastro import KNNOutlierDetector

    return -KNNOutlierDetector(n_neighbors=5).fit(Z_train).score_samples(Z)


def _anomaly_row(method, scores, is_artefact, fit_seconds):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    top = np.argsort(-scores, kind="stable")[: int(is_artefact.sum())]
    return {
        "method": method,
        "anomaly AUROC": float(roc_auc_score(is_artefact, scores)),
        "artefacts in top k": f"{int(is_artefact[top].sum())}/{len(top)}",
        "fit s": fit_seconds,
    }


def anomalies_part(args, out, figures):
    """Fit PCA and VICReg, score the held-out images; rows, and what the explorer shows."""
    from sklearn.decomposition import PCA

    X_train, X, kind, is_artefact = _galaxy_data(args.n_galaxies, args.random_state)
    print(
        f"\n1. Artefacts among galaxies: learning {len(X_train)} galaxies of 32x32 without "
        f"labels, then ranking {len(X)} held-out images, {int(is_artefact.sum())} of them "
        "with a satellite trail, cosmic rays, a saturated star or nothing but sky."
    )
    flat = X_train.reshape(len(X_train), -1)
    t0 = time.perf_counter()
    pca = PCA(min(32, len(flat)), random_state=args.random_state).fit(flat)
    pca_seconds = time.perf_counter() - t0
    Z_pca_train, Z_pca = pca.transform(flat), pca.transform(X.reshape(len(X), -1))
    model = _vicreg(args.epochs, args.random_state)
    print(f"   fitting VICRegEmbedder for {model.max_epochs} epochs ...", flush=True)
    t0 = time.perf_counter()
    model.fit(X_train)
    vicreg_seconds = time.perf_counter() - t0
    Z_train, Z = model.transform(X_train), model.transform(X)
    scores = {"PCA(32)": _anomaly_scores(Z_pca_train, Z_pca)}
    scores["VICReg"] = _anomaly_scores(Z_train, Z)
    rows = [
        _anomaly_row("PCA(32) + KNNOutlierDetector", scores["PCA(32)"], is_artefact, pca_seconds),
        _anomaly_row(
            "VICRegEmbedder + KNNOutlierDetector", scores["VICReg"], is_artefact, vicreg_seconds
        ),
    ]
    figures["anomalies_ranked.png"] = lambda: _ranked_gallery(X, scores["VICReg"], kind)
    figures["anomalies_roc.png"] = lambda: _roc(is_artefact, scores)
    figures["vicreg_training.png"] = lambda: _history(model)
    _save_for_explore(out, X, kind, scores["VICReg"], model)
    return rows, dict(images=X, kind=kind, Z=Z, Z_pca=Z_pca, score=scores["VICReg"])


def _ranked_gallery(X, scores, kind, n=16):
    import matplotlib.pyplot as plt
    import numpy as np

    from skastro import plotting

    order = np.argsort(-scores, kind="stable")[:n]
    fig, axes = plt.subplots(2, n // 2, figsize=(1.5 * n / 2, 3.6))
    for rank, (ax, index) in enumerate(zip(axes.ravel(), order), start=1):
        plotting.plot_image(X[index], ax=ax)
        ax.set_title(f"#{rank} {kind[index].replace('_', ' ')}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("The most anomalous held-out images, VICReg + KNNOutlierDetector", fontsize=10)
    return fig


def _roc(is_artefact, scores):
    from skastro import plotting

    ax = plotting.plot_roc(is_artefact, scores)
    ax.set_title("Finding the artefacts: kNN outlier score")
    return ax


def _history(model):
    from skastro import plotting

    ax = plotting.plot_history(model)
    ax.set_title(f"{type(model).__name__}: loss terms per epoch")
    return ax


def _save_for_explore(out, X, kind, scores, model):
    """The held-out images, a metadata table and the fitted model, for ``skastro explore``."""
    import numpy as np
    import pandas as pd

    np.save(out / "galaxies.npy", X)
    pd.DataFrame(
        {"id": np.arange(len(X)), "kind": kind, "anomaly_score": np.round(scores, 5)}
    ).to_csv(out / "galaxies.csv", index=False)
    model.save(out / "vicreg_model")


# ----------------------------------------------------------------------------- part 2
def _disk_model(name, epochs, random_state):
    if name == "equivariant":
        from skastro import EquivariantAutoencoder

        # benchmarks/bench_disks.py's recipe (MSE + half MS-SSIM) on 32x32 disks, with larger
        # batches and step for speed
        return EquivariantAutoencoder(
            n_components=16,
            max_epochs=epochs or DISK_EPOCHS,
            batch_size=32,
            lr=3e-3,
            ms_ssim_weight=0.5,
            random_state=random_state,
            verbose=0,
        )
    from skastro import ConvAutoencoder

    return ConvAutoencoder(
        n_components=16,
        max_epochs=epochs or 2 * DISK_EPOCHS,
        batch_size=32,
        lr=2e-3,
        augment=True,
        random_state=random_state,
        verbose=0,
    )


def _probe_and_clusters(Z_train, y_train, Z, y, random_state):
    """Linear-probe accuracy (trained on the training disks' labels) and KMeans(2) ARI."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import adjusted_rand_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    accuracy = float(probe.fit(Z_train, y_train).score(Z, y))
    scaler = StandardScaler().fit(Z_train)
    kmeans = KMeans(2, n_init=10, random_state=random_state).fit(scaler.transform(Z_train))
    clusters = kmeans.predict(scaler.transform(Z))
    return accuracy, float(adjusted_rand_score(y, clusters)), clusters


def disks_part(args, out, figures):
    """Residuals of disks, embedded by PCA and by the autoencoder; rows of scores."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    from skastro.datasets import make_disks
    from skastro.features import AxisymmetricResidual, SoftThreshold

    common = dict(image_size=32, signature_strength=1.0)
    train = make_disks(args.n_disks, random_state=args.random_state, **common)
    test = make_disks(max(8, 5 * args.n_disks // 3), random_state=args.random_state + 1, **common)
    print(
        f"\n2. Disks with planets: {len(train.images)} training and {len(test.images)} "
        "held-out protoplanetary disks of 32x32, half with a planet's signature (a spiral, a "
        "kink, a gap or a point source); each disk minus its axisymmetric model, "
        "soft-thresholded at 3 sigma."
    )
    residual = make_pipeline(AxisymmetricResidual(), SoftThreshold(3.0))
    R_train = residual.fit_transform(train.images).astype(np.float32)
    R = residual.transform(test.images).astype(np.float32)
    rows = []
    t0 = time.perf_counter()
    pca = PCA(min(16, len(R_train)), random_state=args.random_state)
    pca.fit(R_train.reshape(len(R_train), -1))
    pca_seconds = time.perf_counter() - t0
    accuracy, ari, _ = _probe_and_clusters(
        pca.transform(R_train.reshape(len(R_train), -1)),
        train.target,
        pca.transform(R.reshape(len(R), -1)),
        test.target,
        args.random_state,
    )
    rows.append({"method": "PCA(16)", "probe accuracy": accuracy, "KMeans ARI": ari,
                 "fit s": pca_seconds})  # fmt: skip
    model = _disk_model(args.model, args.epochs, args.random_state)
    name = type(model).__name__
    print(f"   fitting {name} for {model.max_epochs} epochs ...", flush=True)
    t0 = time.perf_counter()
    model.fit(R_train)
    seconds = time.perf_counter() - t0
    Z = model.transform(R)
    accuracy, ari, clusters = _probe_and_clusters(
        model.transform(R_train), train.target, Z, test.target, args.random_state
    )
    rows.append({"method": name, "probe accuracy": accuracy, "KMeans ARI": ari,
                 "fit s": seconds})  # fmt: skip
    figures["disks_embedding.png"] = lambda: _disk_scatter(Z, test.target, name)
    figures["disks_clusters.png"] = lambda: _disk_clusters(test.images, clusters, test.target)
    figures["disks_training.png"] = lambda: _history(model)
    return rows


def _disk_scatter(Z, y, name):
    import numpy as np

    from skastro import plotting

    return plotting.plot_embedding(
        Z,
        np.where(y == 1, "planet", "smooth"),
        method="tsne",
        title=f"{name} latent (t-SNE), coloured by the true label",
    )


def _disk_clusters(images, clusters, y):
    import numpy as np

    from skastro import plotting

    fig = plotting.plot_cluster_examples(images, clusters, n_per_cluster=8)
    # each row says how many of its disks have a planet
    for cluster, row_start in zip(np.unique(clusters), range(0, len(fig.axes), 8)):
        members = clusters == cluster
        fig.axes[row_start].set_ylabel(
            f"cluster {cluster}\n{members.sum()} disks\n{y[members].mean():.0%} planets",
            fontsize=8,
        )
    fig.suptitle("Held-out disks in each KMeans cluster of the latent", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- report
def format_table(rows, columns):
    """A plain-text table of ``rows`` (dicts), floats to 3 decimals (1 for seconds)."""

    def cell(column, value):
        if isinstance(value, float):
            return f"{value:.1f}" if column.endswith(" s") else f"{value:.3f}"
        return str(value)

    cells = [[cell(c, row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _write_explorer(out, shown):
    """explorer.html: the held-out galaxies in VICReg's and PCA's embeddings side by side."""
    import pandas as pd

    from skastro.explorer import Explorer

    metadata = pd.DataFrame({"kind": shown["kind"], "anomaly score": shown["score"]})
    explorer = Explorer(
        shown["images"],
        embedding={"VICReg": shown["Z"], "PCA(32)": shown["Z_pca"]},
        metadata=metadata,
    )
    views = [explorer.compute(name, projection="tsne") for name in ("VICReg", "PCA(32)")]
    return explorer.save_html(out / "explorer.html", views=views, color_by="meta:0")


def run(args):
    """Run the demo; returns the exit status."""
    from skastro.commands._figures import save_figure

    for flag, value, least in (
        ("--n-galaxies", args.n_galaxies, 1),
        ("--n-disks", args.n_disks, 1),
        ("--epochs", args.epochs, 1),
    ):
        if value is not None and value < least:
            raise CommandError(f"{flag} must be at least {least}, got {value}", status=2)
    start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; the demo writes into a folder", status=2)
    out.mkdir(parents=True, exist_ok=True)
    figures, shown = {}, None
    tables = []
    if args.only in (None, "anomalies"):
        rows, shown = anomalies_part(args, out, figures)
        tables.append(
            ("Finding injected artefacts among held-out galaxies (k = number of artefacts):",
             rows, ["method", "anomaly AUROC", "artefacts in top k", "fit s"])
        )  # fmt: skip
    if args.only in (None, "disks"):
        rows = disks_part(args, out, figures)
        tables.append(
            ("Telling disks with a planet from smooth ones (held-out disks):",
             rows, ["method", "probe accuracy", "KMeans ARI", "fit s"])
        )  # fmt: skip
    for title, rows, columns in tables:
        print(f"\n{title}\n{format_table(rows, columns)}")
    print(
        "\nPCA is the reference row. AUROC 0.5 is chance, 1 a perfect ranking; the probe is a "
        "logistic regression trained on the training disks' labels (0.5 is chance); ARI 0 "
        "means clusters unrelated to the label."
    )
    written = [name for name, draw in figures.items() if save_figure(draw, out / name, "demo")]
    html = _write_explorer(out, shown) if shown is not None else None
    print(f"\nWrote {len(written)} figures to {out}/ ({', '.join(written)}).")
    print(f"Finished in {time.perf_counter() - start:.0f} s.")
    if html is not None:
        print(f"\nOpen {html} in a browser (it works offline): hover a point to see its image.")
        print("Then rank the galaxies by how odd they are and label them, in the explorer app:")
        print(
            f"  skastro explore {out}/galaxies.npy --model {out}/vicreg_model "
            f"--metadata {out}/galaxies.csv"
        )
    return 0
