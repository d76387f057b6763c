"""Domain-shift suite: each method against its classic baseline on variants it was not tuned on.

The variants and their development/judging split live in ``shift_variants.py`` (the split
was drawn and committed before any method ran on any variant). Each suite prints one table
per method, one row per variant, and writes ``results/shift_<suite>_<which>.md``;
``results/shift.md`` collects the judging tables with the notes.

Suites:

* ``star_galaxy``: ROC AUC (galaxy vs star) on held-out images, over all of them and over
  the faint half (aperture S/N in the variant's r band at or below the training images'
  median, as in ``bench_star_galaxy.py``), for ``StarGalaxyClassifier`` (mean +- std over
  seeds), the concentration index (r-band flux within 2 px over flux within 6 px; also
  after the residual sky plane is subtracted), the documented CondVAE recipe
  (``FaintCalibratedClassifier(PeakScaler(crop=24) + CondVAEClassifier)``, r band), and two
  supervised ceilings: boosted trees on ``StarGalaxyClassifier``'s own measurements, and
  the residual CNN of ``bench_star_galaxy.py`` trained with the labels.
* ``galaxies``: linear-probe accuracy (4 morphology classes) and anomaly AUROC of
  ``VICRegEmbedder`` against PCA, with and without ``ImageScaler`` in front.
* ``disks``: probe accuracy and KMeans(2) ARI of the planet label, for
  ``AxisymmetricResidual + SoftThreshold(3) + EquivariantAutoencoder(D8)`` against PCA.
* ``denoising``: foreground SSIM of ``ContrastiveDenoiser`` against the best classical
  denoiser (tuned per variant on validation images), and the clustering of its
  representation (KMeans ARI, 4 morphologies) against PCA.

Run: ``python benchmarks/shift.py SUITE [--which judging|development] [--quick]``
(``--no-deep``: the star-galaxy suite without the CondVAE recipe and the CNN).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import shift_variants as sv
from _common import RESULTS_DIR, machine_line, markdown_table

from skastro import StarGalaxyClassifier
from skastro.estimators.star_galaxy_classifier import _measure, _subtract_sky
from skastro.photometry import aperture_snr, flux_fractions

SG_SIZES = dict(n_train=2000, n_test=1000, seeds=5, epochs=30)
SG_QUICK = dict(n_train=400, n_test=300, seeds=2, epochs=2)


# ---------------------------------------------------------------------------- star-galaxy
def _aucs(y, score, faint):
    return (
        roc_auc_score(y, score),
        roc_auc_score(y[faint], score[faint]),
        roc_auc_score(y[~faint], score[~faint]),
    )


def star_galaxy_variant(v, sizes, device, with_deep=True):
    """All star-galaxy figures on one variant: a dict of method -> list of (all, faint, bright)."""
    import bench_star_galaxy as bsg

    train = sv.star_galaxy(v, sizes["n_train"], seed=0)
    test = sv.star_galaxy(v, sizes["n_test"], seed=1)
    X_train, X_test, y_train, y_test = train.images, test.images, train.target, test.target
    band = v.band
    snr_train = aperture_snr(X_train, band=band)
    cut = np.median(snr_train)
    faint = aperture_snr(X_test, band=band) <= cut
    results, seconds = {}, {}

    ci = flux_fractions(X_test, [2.0], total_radius=6.0, band=band)[:, 0]
    results["concentration index (2/6 px)"] = [_aucs(y_test, -ci, faint)]
    sky_free = _subtract_sky(X_test[:, band].astype(np.float64), max(2, X_test.shape[-1] // 10))[0]
    ci_sky = flux_fractions(sky_free, [2.0], total_radius=6.0)[:, 0]
    results["concentration index, sky plane subtracted"] = [_aucs(y_test, -ci_sky, faint)]

    runs = []
    start = time.perf_counter()
    for seed in range(sizes["seeds"]):
        clf = StarGalaxyClassifier(band=band, random_state=seed).fit(X_train)
        runs.append(_aucs(y_test, clf.decision_function(X_test), faint))
    results["StarGalaxyClassifier"] = runs
    seconds["StarGalaxyClassifier"] = (time.perf_counter() - start) / sizes["seeds"]

    # the same measurements, with the labels: how much the label-free steps lose
    measured = []
    for X in (X_train, X_test):
        image, sigma, _ = clf._prepare(X)
        measured.append(_measure(image, sigma)[0])
    trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    trees.fit(measured[0], y_train)
    results["supervised trees, same measurements (ceiling)"] = [
        _aucs(y_test, trees.predict_proba(measured[1])[:, 1], faint)
    ]

    if with_deep:
        # the documented CondVAE recipe and the supervised CNN of bench_star_galaxy, r band
        A_train = bsg.MORPHOLOGY_INPUT.fit_transform(X_train[:, [band]])
        A_test = bsg.MORPHOLOGY_INPUT.fit_transform(X_test[:, [band]])
        start = time.perf_counter()
        model = bsg.faint_calibrated(0, sizes["epochs"], device)
        model.fit(X_train[:, [band]], y_train)
        decision = model.decision_function(X_test[:, [band]])
        seconds["CondVAE recipe"] = time.perf_counter() - start
        # y only names the modes; orient like bench_star_galaxy (training labels)
        results["CondVAE recipe: FaintCalibrated(PeakScaler + CondVAEClassifier)"] = [
            _aucs(y_test, decision, faint)
        ]
        data = {"A_train": A_train, "y_train": y_train, "A_test": A_test}
        start = time.perf_counter()
        cnn = bsg.supervised_cnn(data, 0, sizes["epochs"], device)
        seconds["supervised CNN"] = time.perf_counter() - start
        results["supervised CNN, bench encoder (ceiling)"] = [_aucs(y_test, cnn, faint)]
    return results, seconds


def run_star_galaxy(which, quick, device, with_deep=True):
    sizes = SG_QUICK if quick else SG_SIZES
    rows, notes = [], []
    for v in sv.variants("star_galaxy", which):
        print(f"--- {v.name}", flush=True)
        results, seconds = star_galaxy_variant(v, sizes, device, with_deep=with_deep)
        for method, runs in results.items():
            runs = np.asarray(runs)
            row = {"variant": v.name, "method": method}
            for k, part in enumerate(("all", "faint", "bright")):
                row[f"AUC {part}"] = float(runs[:, k].mean())
                if len(runs) > 1:
                    row[f"std {part}"] = float(runs[:, k].std())
            row["runs"] = len(runs)
            rows.append(row)
            print(row, flush=True)
        notes.append(f"- {v.name}: seconds per fit {seconds}")
    verdicts = _star_galaxy_verdicts(rows)
    _write(
        f"star_galaxy_{which}" + ("" if with_deep else "_no_deep"),
        f"Star-galaxy separation on the {which} variants",
        rows,
        f"Sizes: {sizes}.\n\n" + "\n".join(verdicts + notes),
    )


def _star_galaxy_verdicts(rows):
    lines = []
    by_variant = {}
    for row in rows:
        by_variant.setdefault(row["variant"], {})[row["method"]] = row
    for variant, methods in by_variant.items():
        ours, ci = methods["StarGalaxyClassifier"], methods["concentration index (2/6 px)"]
        ok_all = ours["AUC all"] > ci["AUC all"]
        ok_faint = ours["AUC faint"] > ci["AUC faint"]
        ok_std = ours.get("std all", 0.0) <= 0.01 and ours.get("std faint", 0.0) <= 0.01
        line = (
            f"- {variant}: StarGalaxyClassifier {ours['AUC all']:.3f} (faint "
            f"{ours['AUC faint']:.3f}) vs concentration index {ci['AUC all']:.3f} (faint "
            f"{ci['AUC faint']:.3f}): overall {'beats' if ok_all else 'DOES NOT beat'}, faint "
            f"{'beats' if ok_faint else 'DOES NOT beat'}, std <= 0.01 "
            f"{'met' if ok_std else 'NOT met'}"
        )
        cnn = methods.get("supervised CNN, bench encoder (ceiling)")
        if cnn:
            gap = cnn["AUC all"] - ours["AUC all"]
            line += f"; supervised CNN {cnn['AUC all']:.3f} (gap {gap:+.3f})"
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------- galaxies
GAL_SIZES = dict(n_train=800, n_test=400, n_per_kind=20, epochs=20)
GAL_QUICK = dict(n_train=160, n_test=80, n_per_kind=5, epochs=1)


def _vicreg(epochs, device, **params):
    """The VICReg benchmark's embedder (``bench_vicreg._vicreg``), with fewer epochs here."""
    import bench_vicreg

    return bench_vicreg._vicreg(epochs, device, **params)


def _brightness_r2(Z_train, b_train, Z_test, b_test):
    """R^2 on held-out images of a linear regression of log peak brightness from the embedding.

    The diagnostic for ImageScaler(per_image=True): scaling each image to its own range turns
    its brightness into the level of its stretched background noise, a feature every view of
    an image shares; an embedding that predicts brightness well has learnt it.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return float(model.fit(Z_train, b_train).score(Z_test, b_test))


def _log_peak(X):
    return np.log(np.maximum(X.reshape(len(X), -1).max(axis=1), 1e-6))


def _probe_and_anomalies(Z_train, y_train, Z_test, y_test, Z_anomalies):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skastro import KNNOutlierDetector

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    accuracy = probe.fit(Z_train, y_train).score(Z_test, y_test)
    detector = KNNOutlierDetector(n_neighbors=5).fit(Z_train)
    scores = -detector.score_samples(np.concatenate([Z_test, Z_anomalies]))
    truth = np.r_[np.zeros(len(Z_test)), np.ones(len(Z_anomalies))]
    return {"probe": float(accuracy), "anomaly AUROC": float(roc_auc_score(truth, scores))}


def galaxy_embeddings(sizes, device):
    """The galaxies suite's embeddings: name -> (preprocessing, embedder factory)."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skastro import ImageScaler

    flat = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    epochs = sizes["epochs"]
    return {
        "PCA(32)": lambda: make_pipeline(flat, PCA(32, random_state=0)),
        "ImageScaler(asinh) + PCA(32)": lambda: make_pipeline(
            ImageScaler(stretch="asinh"), flat, PCA(32, random_state=0)
        ),
        "VICRegEmbedder": lambda: _vicreg(epochs, device),
        "ImageScaler(asinh) + VICRegEmbedder": lambda: make_pipeline(
            ImageScaler(stretch="asinh"), _vicreg(epochs, device)
        ),
        "ImageScaler(asinh, per_image=False) + VICRegEmbedder": lambda: make_pipeline(
            ImageScaler(stretch="asinh", per_image=False), _vicreg(epochs, device)
        ),
    }


def galaxies_variant(v, sizes, device, methods=None):
    from skastro.datasets import make_anomalies

    X_train, y_train, _, noise = sv.galaxies(v, sizes["n_train"], seed=0)
    X_test, y_test, _, _ = sv.galaxies(v, sizes["n_test"], seed=1)
    sources, _, _, _ = sv.galaxies(v, sizes["n_test"], seed=2)
    anomalies = make_anomalies(
        sources, sizes["n_per_kind"], noise_sigma=max(noise, 1e-3), random_state=0
    ).images
    rows = []
    for name, factory in galaxy_embeddings(sizes, device).items():
        if methods is not None and name not in methods:
            continue
        start = time.perf_counter()
        model = factory().fit(X_train)
        seconds = time.perf_counter() - start
        Z = [model.transform(X) for X in (X_train, X_test, anomalies)]
        row = {"variant": v.name, "method": name}
        row.update(_probe_and_anomalies(Z[0], y_train, Z[1], y_test, Z[2]))
        row["brightness R2"] = _brightness_r2(Z[0], _log_peak(X_train), Z[1], _log_peak(X_test))
        row["fit s"] = seconds
        rows.append(row)
        print(row, flush=True)
    return rows


def run_galaxies(which, quick, device, methods=None):
    sizes = GAL_QUICK if quick else GAL_SIZES
    rows = []
    for v in sv.variants("galaxies", which):
        print(f"--- {v.name}", flush=True)
        rows += galaxies_variant(v, sizes, device, methods)
    _write(f"galaxies_{which}", f"VICReg morphology on the {which} variants", rows,
           f"Sizes: {sizes}.")  # fmt: skip


# ---------------------------------------------------------------------------- disks
DISK_SIZES = dict(n_train=240, n_label=600, epochs=10, widths=(32, 64, 128))
DISK_QUICK = dict(n_train=48, n_label=48, epochs=1, widths=(8, 16))


def disks_variant(v, sizes, device):
    """Planet label on AxisymmetricResidual + SoftThreshold(3) residuals: D8 AE vs PCA vs blobs."""
    import bench_disks as bd
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    from skastro import EquivariantAutoencoder
    from skastro.features import AxisymmetricResidual, SoftThreshold

    X_train, y_train = sv.disks(v, sizes["n_train"], seed=0)
    X_label, y_label = sv.disks(v, sizes["n_label"], seed=2)
    clean = make_pipeline(AxisymmetricResidual(), SoftThreshold(3.0))
    R_train, R_label = clean.fit_transform(X_train), clean.transform(X_label)
    flat = lambda X: X.reshape(len(X), -1)  # noqa: E731
    rows = []

    def add(name, Z_train, Z_label, seconds):
        scores, _, _ = bd._cluster_and_probe(Z_train, y_train, Z_label, y_label)
        row = {"variant": v.name, "method": name, "probe": scores["probe_acc"]}
        row.update({"KMeans(2) ARI": scores["ari"], "fit s": seconds})
        rows.append(row)
        print(row, flush=True)

    pca = PCA(16, random_state=0).fit(flat(R_train))
    add("residuals + PCA(16)", pca.transform(flat(R_train)), pca.transform(flat(R_label)), 0.0)
    name, blobs = bd._blob_counter(R_train, y_train)
    blobs.fit(R_train)
    add(f"residuals + {name}", blobs.transform(R_train), blobs.transform(R_label), 0.0)
    d8 = EquivariantAutoencoder(
        n_components=16,
        widths=sizes["widths"],
        max_epochs=sizes["epochs"],
        batch_size=8,
        ms_ssim_weight=0.5,
        device=device,
        random_state=0,
    )
    start = time.perf_counter()
    d8.fit(R_train)
    add(
        "residuals + EquivariantAutoencoder D8",
        d8.transform(R_train),
        d8.transform(R_label),
        time.perf_counter() - start,
    )
    return rows


def run_disks(which, quick, device):
    sizes = DISK_QUICK if quick else DISK_SIZES
    rows = []
    for v in sv.variants("disks", which):
        print(f"--- {v.name}", flush=True)
        rows += disks_variant(v, sizes, device)
    _write(f"disks_{which}", f"Disk planet signatures on the {which} variants", rows,
           f"Sizes: {sizes}; signature_strength=1.")  # fmt: skip


# ---------------------------------------------------------------------------- denoising
DN_SIZES = dict(n_train=400, n_val=40, n_test=200, epochs=15, widths=(16, 32, 64))
DN_QUICK = dict(n_train=32, n_val=8, n_test=24, epochs=1, widths=(8, 16))


def _per_band(function):
    def apply(X, parameter):
        out = np.empty_like(X)
        for i in range(len(X)):
            for b in range(X.shape[1]):
                out[i, b] = function(X[i, b].astype(np.float64), parameter)
        return out

    return apply


def _classical(bdn):
    """bench_denoising's classical denoisers and parameter grids, one 2-D image at a time."""
    from skimage.filters import gaussian
    from skimage.restoration import denoise_tv_chambolle

    single = {
        "gaussian filter": lambda image, s: gaussian(image, sigma=s, preserve_range=True),
        "non-local means": bdn._nl_means,
        "total variation": lambda image, w: denoise_tv_chambolle(image, weight=w),
    }
    return {name: (single[name], grid) for name, (_, grid) in bdn.CLASSICAL.items()}


def denoising_variant(v, sizes, device):
    """Foreground SSIM: ContrastiveDenoiser vs the classical denoisers; KMeans ARI vs PCA."""
    import bench_denoising as bdn
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler
    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import CosineAnnealingLR

    from skastro import ContrastiveDenoiser

    clean_train, _, _ = sv.denoising(v, sizes["n_train"], seed=0)
    val = dict(zip(("clean", "noisy", "masks"), sv.denoising(v, sizes["n_val"], seed=2)))
    test = dict(zip(("clean", "noisy", "masks"), sv.denoising(v, sizes["n_test"], seed=1)))
    masks = lambda m: m if m.ndim == 3 else m[:, 0]  # noqa: E731
    ssim = lambda out, ref: bdn.fg_ssim(out, ref["clean"], masks(ref["masks"]))  # noqa: E731
    rows = [{"variant": v.name, "method": "noisy input", "fg SSIM": ssim(test["noisy"], test)}]
    best = None
    for name, (function, grid) in _classical(bdn).items():
        denoise = _per_band(function)
        scores = [(ssim(denoise(val["noisy"], p), val), p) for p in grid]
        parameter = max(scores)[1]
        row = {
            "variant": v.name,
            "method": name,
            "fg SSIM": ssim(denoise(test["noisy"], parameter), test),
        }
        row["parameter"] = parameter
        rows.append(row)
        best = row if best is None or row["fg SSIM"] > best["fg SSIM"] else best
    gain = np.mean(np.atleast_1d(v.observe.get("gain", 50.0)))
    sigma = np.mean(np.atleast_1d(v.observe.get("sigma", 0.03)))
    model = ContrastiveDenoiser(
        n_components=16,
        widths=sizes["widths"],
        noise_gain=float(gain),
        noise_sigma=float(sigma),
        max_epochs=sizes["epochs"],
        callbacks=[LRScheduler(policy=CosineAnnealingLR, T_max=sizes["epochs"])],
        device=device,
        random_state=0,
    )
    start = time.perf_counter()
    model.fit(clean_train)
    row = {
        "variant": v.name,
        "method": "ContrastiveDenoiser",
        "fg SSIM": ssim(model.denoise(test["noisy"]), test),
    }
    row["fit s"] = time.perf_counter() - start
    rows.append(row)
    for row in rows:
        print(row, flush=True)
    clustering = []
    if not v.observe.get("hubble"):
        # the representation of the held-out clean images, as in bench_denoising
        _, labels, _, _ = sv.galaxies(
            sv.Variant(v.name, "", dict(v.params), {}), sizes["n_test"], seed=1
        )
        flat_train = clean_train.reshape(len(clean_train), -1)
        flat_test = test["clean"].reshape(len(test["clean"]), -1)
        pca = PCA(16, random_state=0).fit(flat_train)
        for name, Z in (
            ("ContrastiveDenoiser representation", model.transform(test["clean"])),
            ("PCA(16)", pca.transform(flat_test)),
        ):
            Z = StandardScaler().fit_transform(Z)
            kmeans = KMeans(8, n_init=10, random_state=0).fit_predict(Z)
            clustering.append(
                {
                    "variant": v.name,
                    "method": name,
                    "KMeans(8) ARI": adjusted_rand_score(labels, kmeans),
                }
            )
            print(clustering[-1], flush=True)
    return rows, best, clustering


def run_denoising(which, quick, device):
    sizes = DN_QUICK if quick else DN_SIZES
    rows, clustering = [], []
    for v in sv.variants("denoising", which):
        print(f"--- {v.name}", flush=True)
        variant_rows, _, variant_clustering = denoising_variant(v, sizes, device)
        rows += variant_rows
        clustering += variant_clustering
    _write(f"denoising_{which}", f"Denoising on the {which} variants", rows, f"Sizes: {sizes}.")
    _write(f"clustering_{which}", f"Clustering the denoiser's representation on the {which} "
           "variants (4 morphologies, KMeans(8) ARI)", clustering, f"Sizes: {sizes}.")  # fmt: skip


# ---------------------------------------------------------------------------- output
def _write(topic, title, rows, notes=""):
    text = f"## {title}\n\n{machine_line()}\n\n{markdown_table(rows, floatfmt='{:.3f}')}"
    if notes:
        text += f"\n{notes.strip()}\n"
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"shift_{topic}.md").write_text(text)
    print(text, flush=True)


def _mean_std(values):
    return statistics.mean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


SUITES = {
    "star_galaxy": run_star_galaxy,
    "galaxies": run_galaxies,
    "disks": run_disks,
    "denoising": run_denoising,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--which", choices=("development", "judging"), default="judging")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--no-deep",
        action="store_true",
        help="star_galaxy only: skip the CondVAE recipe and the supervised CNN (minutes per "
        "variant) and write results/shift_star_galaxy_<which>_no_deep.md",
    )
    args = parser.parse_args(argv)
    if args.no_deep and args.suite != "star_galaxy":
        parser.error("--no-deep applies to the star_galaxy suite only")
    extra = {"with_deep": False} if args.no_deep else {}
    SUITES[args.suite](args.which, args.quick, args.device, **extra)


if __name__ == "__main__":
    main()
