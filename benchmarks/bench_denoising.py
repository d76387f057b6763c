"""Denoising + clustering benchmark of ContrastiveDenoiser (the Galaxy Zoo Hubble method).

Both data sets get the same synthetic detector noise: Poisson with ``NOISE_GAIN`` counts per
unit flux plus Gaussian with standard deviation ``NOISE_SIGMA`` (images are in [0, 1]-like
units: make_galaxies peaks at 0.6-1, the Hubble cutouts are 8-bit values / 255).

Denoising rows (``task="denoising"``), one per method on the same held-out noisy images:

* ``fg_ssim``: SSIM (11 px Gaussian window) averaged over the foreground pixels, against the
  clean image. Foreground: the masks of make_galaxies (3% of each image's peak); for the
  Hubble cutouts, sigma-clipped masks of the clean cutouts (``skastro.masks``).
* ``psnr``: peak signal-to-noise ratio in dB, per image with the clean image's range as peak,
  averaged over images.
* The classical denoisers from scikit-image (Gaussian filter, non-local means with a
  per-image noise estimate, total variation) get their main parameter tuned on a held-out
  validation set, separately for each figure (``param_ssim``, ``param_psnr``): the best of
  five values each, a generous baseline.
* ``ContrastiveDenoiser`` is fitted on clean training images (``target="clean"``) with a
  cosine learning-rate schedule. On the Hubble field it is trained on real cutouts from a
  different strip of the field than the test cutouts (no shared pixels), only a few hundred,
  with random rotations/flips and fresh noise in every epoch. On make_galaxies a second row
  (``target="noisy"``) is fitted on noisy training images only.

Clustering rows (``task="clustering"``) on held-out clean make_galaxies, for the
ContrastiveDenoiser representation, a ConvAutoencoder and PCA (all 16-D, standardised):
KMeans(8) silhouette (in the 16-D space) and ARI against the 4 true morphology labels;
HDBSCAN (min_cluster_size = n/20) on a 2-D UMAP of the embedding, as in the source write-up:
number of clusters, noise fraction, silhouette in the UMAP plane (noise points left out) and
ARI (noise points count as one more cluster).

Run: ``python benchmarks/bench_denoising.py [--quick]``.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from skimage.filters import gaussian
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, Timer, machine_line, markdown_table

from skastro import ContrastiveDenoiser, ConvAutoencoder
from skastro.augment import add_noise
from skastro.datasets import load_hubble_cutouts, make_galaxies
from skastro.masks import foreground_mask
from skastro.metrics import ssim

NOISE_GAIN = 50.0
NOISE_SIGMA = 0.03
N_COMPONENTS = 16


def _settings(quick):
    if quick:
        return dict(
            size=32, n_train=64, n_val=16, n_test=48, epochs=2, hubble_epochs=2, widths=(8, 16),
            n_noisy=32, n_hubble=120,
        )  # fmt: skip
    # 32 px cutouts (64 px costs 4x per epoch). Foreground SSIM on make_galaxies keeps rising
    # with training (measured with these settings otherwise: 400 images x 15 epochs 0.945,
    # 400 x 60 0.957, 1600 x 30 0.961), and so does the KMeans ARI of the representation
    # (0.06, 0.26, 0.26): a denoiser trained for minutes is not a trained denoiser.
    return dict(
        size=32, n_train=1600, n_val=100, n_test=400, epochs=30, hubble_epochs=60,
        widths=(16, 32, 64), n_noisy=800, n_hubble=None,
    )  # fmt: skip


# ------------------------------------------------------------------------------- metrics
def psnr(denoised, clean):
    """Mean over images of the PSNR (dB), each with its clean image's range as the peak."""
    peak = clean.max(axis=(1, 2, 3)) - clean.min(axis=(1, 2, 3))
    mse = ((denoised - clean) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean(10.0 * np.log10(peak**2 / mse)))


def fg_ssim(denoised, clean, masks):
    return float(ssim(clean, denoised, mask=masks))


# ------------------------------------------------------------------------------- classical
def _per_image(function):
    def apply(X, parameter):
        out = np.empty_like(X)
        for i, image in enumerate(X):
            out[i, 0] = function(image[0].astype(np.float64), parameter)
        return out

    return apply


def _noise_sigma(image):
    """Robust noise estimate: MAD of the differences of horizontally adjacent pixels.

    (scikit-image's estimate_sigma needs PyWavelets, which skastro does not depend on.)
    """
    differences = np.diff(image, axis=-1).ravel()
    mad = np.median(np.abs(differences - np.median(differences)))
    return 1.4826 * mad / np.sqrt(2.0)


def _nl_means(image, h):
    # h in units of the image's own noise estimate: the detector noise varies with the flux
    sigma = float(_noise_sigma(image))
    return denoise_nl_means(
        image, h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True
    )


CLASSICAL = {
    "gaussian filter": (
        _per_image(lambda image, s: gaussian(image, sigma=s, preserve_range=True)),
        (0.5, 0.75, 1.0, 1.5, 2.0),
    ),
    "non-local means": (_per_image(_nl_means), (0.4, 0.6, 0.8, 1.0, 1.3)),
    "total variation": (
        _per_image(lambda image, w: denoise_tv_chambolle(image, weight=w)),
        (0.005, 0.01, 0.02, 0.04, 0.08),
    ),
}


def _classical_rows(dataset, val, test):
    """Tune each classical denoiser's parameter on ``val``, report it on ``test``."""
    rows = []
    for name, (denoise, grid) in CLASSICAL.items():
        with Timer() as timer:
            scores = []
            for parameter in grid:
                out = denoise(val["noisy"], parameter)
                scores.append(
                    (fg_ssim(out, val["clean"], val["masks"]), psnr(out, val["clean"]), parameter)
                )
            best_ssim = max(scores, key=lambda s: s[0])[2]
            best_psnr = max(scores, key=lambda s: s[1])[2]
            row_ssim = fg_ssim(denoise(test["noisy"], best_ssim), test["clean"], test["masks"])
            row_psnr = psnr(denoise(test["noisy"], best_psnr), test["clean"])
        row = dict(
            task="denoising", dataset=dataset, method=name, fg_ssim=row_ssim, psnr=row_psnr,
            param_ssim=best_ssim, param_psnr=best_psnr, fit_s=timer.seconds,
        )  # fmt: skip
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- deep models
def _denoiser(epochs, widths, device, **params):
    return ContrastiveDenoiser(
        n_components=N_COMPONENTS,
        widths=widths,
        noise_gain=NOISE_GAIN,
        noise_sigma=NOISE_SIGMA,
        max_epochs=epochs,
        callbacks=[LRScheduler(policy=CosineAnnealingLR, T_max=epochs)],
        device=device,
        random_state=0,
        **params,
    )


def _deep_row(dataset, method, model, X_fit, test):
    with Timer() as timer:
        model.fit(X_fit)
    denoised = model.denoise(test["noisy"])
    return dict(
        task="denoising", dataset=dataset, method=method,
        fg_ssim=fg_ssim(denoised, test["clean"], test["masks"]),
        psnr=psnr(denoised, test["clean"]), fit_s=timer.seconds,
    )  # fmt: skip


def _noisy_row(dataset, test):
    return dict(
        task="denoising", dataset=dataset, method="noisy input",
        fg_ssim=fg_ssim(test["noisy"], test["clean"], test["masks"]),
        psnr=psnr(test["noisy"], test["clean"]),
    )  # fmt: skip


def _split(clean, masks, seed):
    return dict(
        clean=clean, masks=masks, noisy=add_noise(clean, NOISE_GAIN, NOISE_SIGMA, generator=seed)
    )


# ------------------------------------------------------------------------------- clustering
def _clustering_row(method, Z, labels, min_cluster_size):
    import umap

    Z = StandardScaler().fit_transform(Z)
    kmeans = KMeans(8, n_init=10, random_state=0).fit_predict(Z)
    plane = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.0, random_state=0)
    plane = plane.fit_transform(Z)
    hdbscan = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(plane)
    clustered = hdbscan >= 0
    n_clusters = int(hdbscan.max() + 1)
    return dict(
        task="clustering", dataset="make_galaxies", method=method,
        kmeans8_silhouette=float(silhouette_score(Z, kmeans)),
        kmeans8_ari=adjusted_rand_score(labels, kmeans),
        hdbscan_clusters=n_clusters, hdbscan_noise=float(1.0 - clustered.mean()),
        hdbscan_silhouette=(
            float(silhouette_score(plane[clustered], hdbscan[clustered]))
            if n_clusters >= 2 else float("nan")
        ),
        hdbscan_ari=adjusted_rand_score(labels, hdbscan),
    )  # fmt: skip


# ------------------------------------------------------------------------------- the run
def run(quick=False):
    """Run the benchmark and return one dict per table row."""
    s = _settings(quick)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []

    # make_galaxies: train, validation (for the classical parameters) and test sets
    train = make_galaxies(s["n_train"], image_size=s["size"], random_state=0)
    val_set = make_galaxies(s["n_val"], image_size=s["size"], random_state=2)
    test_set = make_galaxies(s["n_test"], image_size=s["size"], random_state=1)
    val = _split(val_set.images, val_set.masks, seed=1)
    test = _split(test_set.images, test_set.masks, seed=0)
    rows.append(_noisy_row("make_galaxies", test))
    rows += _classical_rows("make_galaxies", val, test)
    denoiser = _denoiser(s["epochs"], s["widths"], device)
    rows.append(_deep_row("make_galaxies", "ContrastiveDenoiser", denoiser, train.images, test))
    noisy_train = add_noise(train.images[: s["n_noisy"]], NOISE_GAIN, NOISE_SIGMA, generator=5)
    noisy_model = _denoiser(s["epochs"], s["widths"], device, target="noisy")
    rows.append(
        _deep_row(
            "make_galaxies", 'ContrastiveDenoiser (target="noisy")', noisy_model, noisy_train, test
        )
    )
    rows[-1]["method"] += f", {len(noisy_train)} noisy images only"

    # real Hubble cutouts: three vertical strips of the field whose cutouts share no pixel
    # (cutout centres of neighbouring strips are at least one cutout width apart)
    cutouts = load_hubble_cutouts(s["size"], n_max=s["n_hubble"])
    column = cutouts.metadata["col"].to_numpy()
    images, size = cutouts.images, s["size"]
    hubble_train = images[column < 488]
    hubble_val = images[(column >= 488 + size) & (column < 680)]
    hubble_test = images[column >= 680 + size]
    val = _split(hubble_val, foreground_mask(hubble_val, "sigma_clip")[:, 0], seed=1)
    test = _split(hubble_test, foreground_mask(hubble_test, "sigma_clip")[:, 0], seed=0)
    rows.append(_noisy_row("hubble_cutouts", test))
    rows += _classical_rows("hubble_cutouts", val, test)
    hubble_model = _denoiser(s["hubble_epochs"], s["widths"], device)
    rows.append(
        _deep_row("hubble_cutouts", "ContrastiveDenoiser", hubble_model, hubble_train, test)
    )
    rows[-1]["method"] += f", {len(hubble_train)} training cutouts"

    # clustering of held-out clean galaxies
    labels = test_set.target
    min_cluster_size = max(5, len(labels) // 20)
    flat_train = train.images.reshape(len(train.images), -1)
    flat_test = test_set.images.reshape(len(labels), -1)
    embeddings = {"ContrastiveDenoiser": denoiser.transform(test_set.images)}
    autoencoder = ConvAutoencoder(
        n_components=N_COMPONENTS, widths=s["widths"], max_epochs=s["epochs"], device=device,
        random_state=0,
    )  # fmt: skip
    autoencoder.fit(train.images)
    embeddings["ConvAutoencoder"] = autoencoder.transform(test_set.images)
    pca = PCA(N_COMPONENTS, random_state=0).fit(flat_train)
    embeddings["PCA"] = pca.transform(flat_test)
    for method, Z in embeddings.items():
        rows.append(_clustering_row(method, Z, labels, min_cluster_size))
    return rows


DENOISING_COLUMNS = ["dataset", "method", "fg_ssim", "psnr", "param_ssim", "param_psnr", "fit_s"]
CLUSTERING_COLUMNS = [
    "dataset", "method", "kmeans8_silhouette", "kmeans8_ari", "hdbscan_clusters",
    "hdbscan_noise", "hdbscan_silhouette", "hdbscan_ari",
]  # fmt: skip


def _notes(rows):
    lines = []
    for dataset in ("make_galaxies", "hubble_cutouts"):
        denoising = [r for r in rows if r["task"] == "denoising" and r["dataset"] == dataset]
        ours = next(r for r in denoising if r["method"].startswith("ContrastiveDenoiser"))
        classical = [r for r in denoising if r["method"] in CLASSICAL]
        best_ssim = max(classical, key=lambda r: r["fg_ssim"])
        best_psnr = max(classical, key=lambda r: r["psnr"])
        noisy = next(r for r in denoising if r["method"] == "noisy input")
        lines.append(
            f"- {dataset}: ContrastiveDenoiser foreground SSIM {ours['fg_ssim']:.3f} vs best "
            f"classical {best_ssim['fg_ssim']:.3f} ({best_ssim['method']}) and noisy "
            f"{noisy['fg_ssim']:.3f}: it removes {_gain(ours, best_ssim, 'fg_ssim')} of "
            f"the SSIM deficit the best classical denoiser leaves; PSNR {ours['psnr']:.2f} dB "
            f"vs {best_psnr['psnr']:.2f} dB ({best_psnr['method']}), "
            f"{ours['psnr'] - best_psnr['psnr']:+.2f} dB (noisy {noisy['psnr']:.2f} dB)."
        )
    clustering = {r["method"]: r for r in rows if r["task"] == "clustering"}
    ours = clustering["ContrastiveDenoiser"]
    for other in ("ConvAutoencoder", "PCA"):
        ratio = ours["kmeans8_ari"] / max(clustering[other]["kmeans8_ari"], 1e-9)
        lines.append(
            f"- KMeans(8) ARI: ContrastiveDenoiser {ours['kmeans8_ari']:.3f} vs {other} "
            f"{clustering[other]['kmeans8_ari']:.3f} ({ratio:.1f}x); HDBSCAN ARI "
            f"{ours['hdbscan_ari']:.3f} vs {clustering[other]['hdbscan_ari']:.3f}."
        )
    return "\n".join(lines)


def _gain(ours, classical, key):
    """Share of the gap between the best classical result and 1 that the model closes."""
    gap = 1.0 - classical[key]
    return f"{100 * (ours[key] - classical[key]) / gap:.0f}%" if gap > 0 else "n/a"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    with Timer() as timer:
        rows = run(quick=args.quick)
    denoising = [r for r in rows if r["task"] == "denoising"]
    clustering = [r for r in rows if r["task"] == "clustering"]
    text = (
        "## Denoising and clustering (ContrastiveDenoiser)\n\n"
        f"{machine_line()}\n\n"
        f"Noise: Poisson with {NOISE_GAIN:g} counts per unit flux + Gaussian sigma "
        f"{NOISE_SIGMA:g}. Total run time {timer.seconds:.0f} s"
        f"{' (--quick: tiny sizes, figures not meaningful)' if args.quick else ''}.\n\n"
        "### Denoising (held-out images)\n\n"
        f"{markdown_table(denoising, DENOISING_COLUMNS)}\n"
        "### Clustering of held-out make_galaxies (4 morphology classes)\n\n"
        f"{markdown_table(clustering, CLUSTERING_COLUMNS)}\n"
        f"{_notes(rows)}\n"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "denoising.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
