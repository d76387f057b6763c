"""Fresh-seed check of FaintCalibratedClassifier around the Wasserstein CondVAEClassifier.

Not part of ``make bench`` (its file name does not start with ``bench_``); it gives the
fresh-seed figures written by hand in ``results/star_galaxy.md``.

Why: the bench table's recipe (input, widths, epochs, batch) was tuned while looking at seeds
0-9. Seeds never looked at tell how a user's single run will do. Each seed fits one
:class:`~skastro.meta.FaintCalibratedClassifier` exactly as the bench row does,
and scores the test images twice: with its fitted CondVAEClassifier alone ("plain", the
same model as the bench's plain Wasserstein row) and with the calibration of faint images.

Run: ``python benchmarks/star_galaxy_noise_calibration.py --seeds 40-69`` (about 40 s a seed
on 2 cores). It prints, per seed, the AUC over all / bright / faint test images with and
without the calibration, then means and standard deviations.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_star_galaxy as bench

from skastro.datasets import make_star_galaxy

N_TRAIN, N_TEST, EPOCHS = 2000, 1000, 30


def parse_seeds(text):
    """``"40-69"`` or ``"20,25,30"`` -> list of int."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="40-42", help="a range 40-69 or a list 20,25")
    args = parser.parse_args(argv)

    sky = make_star_galaxy(N_TRAIN + N_TEST, random_state=bench.DATA_SEED)
    data = bench.classification_data(sky, N_TRAIN, N_TEST)
    band = [bench.MORPHOLOGY_BAND]
    X_train, X_test = data["X_train"][:, band], data["X_test"][:, band]
    y_test = data["y_test"]
    subsets = {"all": slice(None), "bright": data["test_bright"], "faint": ~data["test_bright"]}

    table = []
    for seed in parse_seeds(args.seeds):
        model = bench.faint_calibrated(seed, EPOCHS, "cpu").fit(X_train, data["y_train"])
        plain = model.estimator_.decision_function(X_test)
        calibrated = model.decision_function(X_test)
        row = [
            roc_auc_score(y_test[index], scores[index])
            for scores in (plain, calibrated)
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
            f"{name}: all {mean[0]:.4f} ± {std[0]:.4f} (min {scores[:, 0].min():.4f}, max "
            f"{scores[:, 0].max():.4f}), bright {mean[1]:.4f} ± {std[1]:.4f}, "
            f"faint {mean[2]:.4f} ± {std[2]:.4f} over {len(table)} seeds"
        )


if __name__ == "__main__":
    main()
