"""Experiment: calibrate CondVAEClassifier's decisions on faint images, without labels.

Not part of ``make bench`` (its file name does not start with ``bench_``); it reproduces the
figures written by hand in ``results/star_galaxy.md``.

Why: CondVAEClassifier is fitted on the brighter half of the training images. Every run ranks
bright test images well (AUC 0.97), but in some runs nearly every faint image, star or galaxy,
lands in the star mode, so faint galaxies rank below bright stars and the AUC over all test
images drops (0.77-0.90 between seeds).

How, with no labels: each fitted image is made fainter at 8 signal-to-noise levels between the
faintest test image's and the fit set's cut, ``a * image + noise`` with the noise chosen so
that the sky noise stays what it was (a fainter copy of the same object under the same sky).
Within each S/N bin, an isotonic regression maps a degraded copy's decision value to its clean
original's. A faint test image's decision value goes through the map of its own S/N bin; test
images above the cut keep theirs. Within a bin the map is monotone; what changes is how faint
images rank against bright ones: an image whose degraded look is ambiguous gets the clean
decision value such images had on average, instead of a value deep in one mode.

Run: ``python benchmarks/star_galaxy_noise_calibration.py --seeds 20,21,22`` (about 35 s a
seed on 2 cores). It prints, per seed, the AUC over all / bright / faint test images with and
without the calibration, then means and standard deviations.
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_star_galaxy as bench

from skastro.datasets import make_star_galaxy

N_TRAIN, N_TEST, EPOCHS = 2000, 1000, 30
N_LEVELS = 8
# fixed, so every seed's calibration sees the same degraded copies
DEGRADATION_SEED = 12345
MIN_PER_BIN = 50


def degrade(images, snr, sigma, target_snr, rng):
    """Copies of ``images`` (n, 1, H, W) scaled to ``target_snr`` under the same sky noise."""
    scale = np.minimum(target_snr / snr, 1.0)
    extra = sigma * np.sqrt(1.0 - scale**2)
    noise = rng.standard_normal(images.shape) * extra[:, None, None, None]
    return scale[:, None, None, None] * images + noise, scale * snr


def calibrate(d_test, snr_test, d_clean, d_degraded, snr_degraded, source, levels, cut):
    """Map faint test images' decisions to the clean decisions of degraded look-alikes."""
    calibrated = d_test.copy()
    # bin edges halfway (in log S/N) between the degradation levels, up to the fit set's cut
    edges = np.log(np.concatenate([[1e-9], np.sqrt(levels[1:] * levels[:-1]), [cut]]))
    log_degraded, log_test = np.log(snr_degraded), np.log(snr_test)
    for low, high in itertools.pairwise(edges):
        in_bin = (log_degraded > low) & (log_degraded <= high)
        to_map = (log_test > low) & (log_test <= high)
        if in_bin.sum() < MIN_PER_BIN or not to_map.any():
            continue
        iso = IsotonicRegression(out_of_bounds="clip")
        iso.fit(d_degraded[in_bin], d_clean[source[in_bin]])
        calibrated[to_map] = iso.predict(d_test[to_map])
    return calibrated


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="20,21,22", help="comma-separated seeds")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    sky = make_star_galaxy(N_TRAIN + N_TEST, random_state=bench.DATA_SEED)
    data = bench.classification_data(sky, N_TRAIN, N_TEST)
    A_fit, y_fit, A_test, y_test = data["A_fit"], data["y_fit"], data["A_test"], data["y_test"]
    bright, cut, test_bright = data["fit_index"], data["snr_cut"], data["test_bright"]
    snr, snr_test = data["snr"][:N_TRAIN], data["snr"][N_TRAIN:]
    r_band = sky.images[:N_TRAIN, [bench.MORPHOLOGY_BAND]]
    sigma = bench.sky_sigma(r_band)[bright, 0]

    rng = np.random.default_rng(DEGRADATION_SEED)
    levels = np.geomspace(max(snr_test.min(), 1.0), cut, N_LEVELS)
    copies = [degrade(r_band[bright], snr[bright], sigma, level, rng) for level in levels]
    A_degraded = bench.MORPHOLOGY_INPUT.fit_transform(
        np.concatenate([images for images, _ in copies]).astype(np.float32)
    )
    snr_degraded = np.concatenate([level_snr for _, level_snr in copies])
    source = np.tile(np.arange(len(bright)), N_LEVELS)

    subsets = {"all": slice(None), "bright": test_bright, "faint": ~test_bright}
    table = []
    for seed in seeds:
        clf = bench._cond_vae_classifier("wasserstein", seed, EPOCHS, "cpu")
        clf.fit(A_fit, y_fit)  # y only names the modes
        d_test = clf.decision_function(A_test)
        d_calibrated = calibrate(
            d_test,
            snr_test,
            clf.decision_function(A_fit),
            clf.decision_function(A_degraded),
            snr_degraded,
            source,
            levels,
            cut,
        )
        row = [
            roc_auc_score(y_test[index], scores[index])
            for scores in (d_test, d_calibrated)
            for index in subsets.values()
        ]
        table.append(row)
        print(
            f"seed {seed}: plain {row[0]:.4f} (bright {row[1]:.4f}, faint {row[2]:.4f}); "
            f"calibrated {row[3]:.4f} (bright {row[4]:.4f}, faint {row[5]:.4f})",
            flush=True,
        )
    table = np.array(table)
    for name, column in (("plain", 0), ("calibrated", 3)):
        scores = table[:, column : column + 3]
        mean, std = scores.mean(0), scores.std(0)
        print(
            f"{name}: all {mean[0]:.4f} ± {std[0]:.4f}, bright {mean[1]:.4f} ± {std[1]:.4f}, "
            f"faint {mean[2]:.4f} ± {std[2]:.4f} over {len(seeds)} seeds"
        )


if __name__ == "__main__":
    main()
