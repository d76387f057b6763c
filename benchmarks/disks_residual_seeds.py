"""More seeds for the "residuals" rows of bench_disks.py: probe accuracy and ARI per seed.

The bench fits each deep model with three seeds; the probe accuracies of the D8 model and
ConvAutoencoder on the residuals differ by less than the spread between those seeds. This
script fits both with further seeds, on the bench's data and settings, and prints one
markdown row per seed (PCA, which has no seed, is left out).

Run: ``python benchmarks/disks_residual_seeds.py --seeds 3-7 [--n-sigma 3]`` (with
``--n-sigma``, the rows "residuals, soft-thresholded": each residual also goes through
:class:`~skastro.features.SoftThreshold`).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_disks


def _seeds(text):
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return tuple(range(first, last + 1))
    return tuple(int(part) for part in text.split(","))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=_seeds, default=(3, 4, 5, 6, 7))
    parser.add_argument("--n-sigma", type=float, default=None, help="soft-threshold residuals")
    args = parser.parse_args(argv)
    settings = dict(bench_disks._settings(quick=False), seeds=args.seeds)
    _, per_seed = bench_disks.residual_rows(settings, n_sigma=args.n_sigma)
    names = ("EquivariantAutoencoder D8", "ConvAutoencoder")
    keys = ("probe_acc", "ari", "stability", "stability_reflect")
    print(
        "| seed | D8 probe | conv probe | D8 ARI | conv ARI | D8 stability | conv stability "
        "| D8 stability, reflected | conv stability, reflected |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for i, seed in enumerate(args.seeds):
        cells = [per_seed[name][i][key] for key in keys for name in names]
        print(f"| {seed} | " + " | ".join(f"{value:.3f}" for value in cells) + " |")
    for key in keys:
        means = [np.mean([run[key] for run in per_seed[name]]) for name in names]
        print(f"mean {key}: D8 {means[0]:.3f}, conv {means[1]:.3f}")


if __name__ == "__main__":
    main()
