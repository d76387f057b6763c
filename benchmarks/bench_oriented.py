"""VICReg on oriented images: which invariances a positive pair should have (issue 25).

Real handwritten digits (scikit-learn's ``load_digits``: 1797 images of 8 x 8 pixels,
upsampled to 16 x 16), 60% for training and 40% held out (stratified). Rows: the linear
probe (standardised features, logistic regression) on raw pixels, on PCA(32), and on
``VICRegEmbedder`` trained with the default invariances for sky cutouts (rotations, flips,
crops, blur, noise) and with the setting for oriented data (crops, blur, noise: no rotation,
no mirror). A rotated 6 is a 9 and a mirrored 2 is no digit at all, so an embedding taught to
ignore rotations and flips loses what tells the classes apart.

Run: ``python benchmarks/bench_oriented.py [--quick]``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import zoom
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from skastro import VICRegEmbedder

SKY = ("rotation", "flip", "crop", "blur", "noise")
ORIENTED = ("crop", "blur", "noise")


def _probe(Z_train, y_train, Z_test, y_test):
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return float(probe.fit(Z_train, y_train).score(Z_test, y_test))


def run(quick=False):
    X, y = load_digits(return_X_y=True)
    X = zoom(X.reshape(-1, 8, 8).astype(np.float32) / 16.0, (1, 2, 2), order=1)[:, None]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, random_state=0, stratify=y
    )
    flat = lambda A: A.reshape(len(A), -1)  # noqa: E731
    pca = PCA(32, random_state=0).fit(flat(X_train))
    rows = [
        {"method": "raw pixels", "probe_acc": _probe(flat(X_train), y_train, flat(X_test), y_test)},
        {
            "method": "PCA(32)",
            "probe_acc": _probe(
                pca.transform(flat(X_train)), y_train, pca.transform(flat(X_test)), y_test
            ),
        },
    ]
    epochs = 2 if quick else 30
    for name, invariances in (("sky default", SKY), ("oriented", ORIENTED)):
        model = VICRegEmbedder(
            n_components=64,
            widths=(16, 32, 64),
            max_epochs=epochs,
            batch_size=128,
            invariances=invariances,
            device="cuda" if torch.cuda.is_available() else "cpu",
            random_state=0,
        )
        start = time.perf_counter()
        model.fit(X_train)
        rows.append(
            {
                "method": f"VICRegEmbedder, invariances={invariances} ({name})",
                "probe_acc": _probe(
                    model.transform(X_train), y_train, model.transform(X_test), y_test
                ),
                "fit_s": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    return rows, epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows, epochs = run(args.quick)
    pca = rows[1]["probe_acc"]
    notes = [
        f"load_digits upsampled to 16 x 16, 1078 training / 719 held-out images; VICReg "
        f"widths (16, 32, 64), n_components 64, batch 128, {epochs} epochs, seed 0.",
        "",
    ]
    for row in rows[2:]:
        verdict = "beats" if row["probe_acc"] > pca else "does NOT beat"
        notes.append(f"- {row['method']}: {row['probe_acc']:.3f}, {verdict} PCA ({pca:.3f})")
    write_result(
        "oriented" if not args.quick else "oriented_quick",
        "VICReg invariances on oriented images (scikit-learn digits)",
        rows,
        "\n".join(notes),
    )


if __name__ == "__main__":
    main()
