"""The ``skastro fit / embed / cluster`` command line, run as users run it: a subprocess.

The files (a FITS folder with one corrupt file, a plain .npy array, a PNG folder, an HDF5
file) are written by the tests. Failure paths that need no real training run in-process
through :func:`skastro.cli.main`, which is the same code without the start-up cost.
"""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import skastro
from skastro.cli import main

# one torch thread per process: the test machine is small and shared
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TINY = ["--param", "widths=[4,8]", "--param", "n_components=3", "--param", "random_state=0"]
N_FITS = 24


def skastro_cli(*args, timeout=300):
    """Run ``python -m skastro ARGS`` and return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "skastro", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def _blobs(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    width = rng.uniform(1.5, 5, size=(n, 1, 1))
    images = np.exp(-(xx**2 + yy**2) / (2 * width**2)) + 0.05 * rng.normal(size=(n, size, size))
    return images.astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from astropy.io import fits
    from PIL import Image

    root = tmp_path_factory.mktemp("cli")
    fits_dir = root / "fits"
    fits_dir.mkdir()
    for i, image in enumerate(_blobs(N_FITS)):
        fits.PrimaryHDU(image.astype(">f4")).writeto(fits_dir / f"obj{i:02d}.fits")
    (fits_dir / "broken.fits").write_bytes(b"SIMPLE  = this is not a FITS file" * 4)
    npy = root / "images.npy"
    np.save(npy, _blobs(64, seed=1)[:, None])
    png_dir = root / "png"
    png_dir.mkdir()
    for i, image in enumerate(_blobs(12, seed=2)):
        pixels = np.clip(image * 255, 0, 255).astype(np.uint8)
        Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(png_dir / f"g{i}.png")
    return {"root": root, "fits": fits_dir, "npy": npy, "png": png_dir}


@pytest.fixture(scope="module")
def fits_model(files):
    """A model fitted from the FITS folder with --skip-bad (the corrupt file is skipped)."""
    out = files["root"] / "fits_model"
    result = skastro_cli("fit", "convautoencoder", files["fits"], "--out", out, "--skip-bad",
                         "--epochs", 2, "--device", "cpu", *TINY)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result


# ----------------------------------------------------------------------------- FITS
def test_corrupt_fits_file_is_reported_and_nothing_is_trained(files, capsys):
    out = files["root"] / "not_trained"
    status = main(["fit", "convautoencoder", str(files["fits"]), "--out", str(out), *TINY])
    err = capsys.readouterr().err
    assert status == 1
    assert "broken.fits" in err and "--skip-bad" in err
    assert not (out / "model.json").exists()


def test_fit_with_skip_bad_skips_the_corrupt_file_and_saves_a_model(fits_model):
    out, result = fits_model
    assert "broken.fits" in result.stderr
    assert f"read {N_FITS} images of shape 1x16x16 (FITS)" in result.stdout
    assert "1 unreadable file(s) skipped" in result.stdout
    # an epoch table with one row per epoch, without colour codes (stdout is not a terminal)
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [row[0] for row in rows] == ["1", "2"]
    assert "\x1b[" not in result.stdout
    assert (out / "model.json").is_file() and (out / "weights.safetensors").is_file()
    info = json.loads((out / "model.json").read_text())
    assert info["class"] == "ConvAutoencoder" and info["network"]["epochs"] == 2
    assert info["params"]["callbacks"] is None


def test_embed_and_cluster_a_fits_folder(files, fits_model):
    out, _ = fits_model
    embeddings = files["root"] / "fits_embeddings.npz"
    result = skastro_cli("embed", out, files["fits"], "--out", embeddings, "--skip-bad")
    assert result.returncode == 0, result.stderr
    with np.load(embeddings) as saved:
        Z, ids = saved["embeddings"], saved["ids"]
    assert Z.shape == (N_FITS, 3) and Z.dtype == np.float32
    assert ids.tolist() == [f"obj{i:02d}" for i in range(N_FITS)]

    # save/load equality: the embeddings made in a fresh process are the in-process ones
    from skastro.datasets import load_fits

    images = load_fits(sorted(files["fits"].glob("obj*.fits"))).images
    np.testing.assert_array_equal(Z, skastro.load(out).transform(images))

    labels = files["root"] / "labels.csv"
    result = skastro_cli("cluster", embeddings, "--method", "kmeans", "--n-clusters", 2,
                         "--out", labels)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(r"silhouette: -?\d\.\d{3}", result.stdout)
    assert re.search(r"DBCV: (-?\d\.\d{3}|n/a)", result.stdout)
    lines = labels.read_text().splitlines()
    assert lines[0] == "id,label" and len(lines) == N_FITS + 1
    assert lines[1].split(",")[0] == "obj00"
    assert {line.split(",")[1] for line in lines[1:]} == {"0", "1"}

    # parquet: an "id" column and the embedding columns, the same numbers
    import pandas as pd

    parquet = files["root"] / "fits_embeddings.parquet"
    result = skastro_cli("embed", out, files["fits"], "--out", parquet, "--skip-bad")
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(parquet)
    assert frame.iloc[:, 0].tolist() == ids.tolist()
    np.testing.assert_array_equal(frame.iloc[:, 1:].to_numpy(np.float32), Z)


# ----------------------------------------------------------------------------- npy, PNG, HDF5
def test_npy_file_is_fitted_and_embedded_in_chunks(files, capsys):
    out = files["root"] / "npy_model"
    status = main(["fit", "convautoencoder", str(files["npy"]), "--out", str(out), "--epochs",
                   "1", *TINY])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert "read 64 images of shape 1x16x16 (npy)" in capsys.readouterr().out
    embeddings = files["root"] / "npy_embeddings.npy"
    result = skastro_cli("embed", out, files["npy"], "--out", embeddings, "--batch-size", 10)
    assert result.returncode == 0, result.stderr
    assert "embedding: 64/64 images" in result.stderr
    Z = np.load(embeddings)
    ids = (files["root"] / "npy_embeddings.ids.txt").read_text().split()
    assert ids == [str(i) for i in range(64)]
    expected = skastro.load(out).transform(np.load(files["npy"]))
    np.testing.assert_allclose(Z, expected, atol=1e-6)


def test_png_folder(files, capsys):
    out = files["root"] / "png_model"
    status = main(["fit", "convautoencoder", str(files["png"]), "--out", str(out), "--quiet",
                   "--epochs", "1", *TINY])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert "read 12 images of shape 3x16x16 (images)" in capsys.readouterr().out
    csv = files["root"] / "png.csv"
    assert main(["embed", str(out), str(files["png"]), "--out", str(csv)]) == 0
    lines = csv.read_text().splitlines()
    assert lines[0] == "id,z0,z1,z2" and lines[1].startswith("g0,") and len(lines) == 13


def test_hdf5_file_with_key(files, capsys):
    import h5py

    path = files["root"] / "cutouts.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("cutouts", data=_blobs(20, seed=3))
    out = files["root"] / "h5_model"
    args = ["fit", "convautoencoder", str(path), "--out", str(out), "--quiet", "--epochs", "1"]
    assert main([*args, *TINY]) == 1
    assert "no dataset 'images'" in capsys.readouterr().err
    assert main([*args, "--key", "cutouts", *TINY]) == 0
    assert "read 20 images of shape 1x16x16 (HDF5)" in capsys.readouterr().out


# ----------------------------------------------------------------------------- usage errors
def test_unknown_parameter_lists_the_valid_names(files, capsys):
    status = main(["fit", "convautoencoder", str(files["npy"]), "--out",
                   str(files["root"] / "x"), "--param", "n_component=3"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert "unknown parameter 'n_component'" in err and "n_components" in err and "lr" in err


def test_invalid_parameter_value_and_unknown_model(files, capsys):
    out = str(files["root"] / "x")
    assert main(["fit", "convautoencoder", str(files["npy"]), "--out", out,
                 "--param", "lr=-1"]) == 2  # fmt: skip
    assert "'lr' parameter of ConvAutoencoder" in capsys.readouterr().err
    assert main(["fit", "autoencoder", str(files["npy"]), "--out", out]) == 2
    assert "convautoencoder" in capsys.readouterr().err


def test_unwritable_out_is_reported_before_training(files, capsys):
    blocker = files["root"] / "a_file"
    blocker.write_text("")
    status = main(["fit", "convautoencoder", str(files["npy"]), "--out",
                   str(blocker / "model"), *TINY])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 2
    assert "cannot write to --out" in captured.err
    assert "training" not in captured.out


def test_existing_model_needs_resume_or_overwrite(files, fits_model, capsys):
    out, _ = fits_model
    status = main(["fit", "convautoencoder", str(files["npy"]), "--out", str(out), *TINY])
    assert status == 2
    assert "--resume" in capsys.readouterr().err and (out / "model.json").is_file()


def test_resume_refuses_other_parameters(files, fits_model, capsys):
    out, _ = fits_model
    status = main(["fit", "convautoencoder", str(files["fits"]), "--out", str(out),
                   "--resume", "--skip-bad", "--param", "widths=[8,16]"])  # fmt: skip
    assert status == 2
    assert "widths is (4, 8), not (8, 16)" in capsys.readouterr().err


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(files, capsys):
    out = files["root"] / "nan_model"
    # one batch per epoch and an absurd learning rate: epoch 1 ends with huge but finite
    # weights, epoch 2 overflows
    status = main(["fit", "convautoencoder", str(files["npy"]), "--out", str(out), "--quiet",
                   "--epochs", "5", "--param", "batch_size=64", "--param", "lr=1e30",
                   *TINY])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert "the training loss became nan" in err
    assert "last good checkpoint (1 epoch(s))" in err
    assert json.loads((out / "checkpoint" / "model.json").read_text())["network"]["epochs"] == 1
    assert not (out / "model.json").exists()


# ----------------------------------------------------------------------------- Ctrl+C
def _read_until(process, pattern, timeout):
    """Read the child's stdout until a line matches ``pattern``; return all text read."""
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        line = process.stdout.readline()
        if not line:
            break
        text += line
        if re.search(pattern, line):
            return text
    raise AssertionError(f"{pattern!r} never appeared; output so far:\n{text}")


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(files, capsys):
    out = files["root"] / "interrupted"
    command = [sys.executable, "-m", "skastro", "fit", "convautoencoder", str(files["npy"]),
               "--out", str(out), "--epochs", "500", "--param", "batch_size=4", *TINY]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        _read_until(process, r"^\s+1\s", timeout=240)  # the first epoch has been logged
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 130, err
    match = re.search(r"interrupted at epoch (\d+): (\d+) of 500 epochs completed", err)
    assert match, err
    completed = int(match.group(2))
    assert completed >= 1
    checkpoint = json.loads((out / "checkpoint" / "model.json").read_text())
    assert checkpoint["network"]["epochs"] == completed
    assert not (out / "model.json").exists()

    total = completed + 2
    result = skastro_cli("fit", "convautoencoder", files["npy"], "--out", out, "--resume",
                         "--epochs", total, "--param", "batch_size=4", *TINY)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"resuming ConvAutoencoder at epoch {completed + 1} of {total}" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [int(row[0]) for row in rows] == list(range(completed + 1, total + 1))
    model = skastro.load(out)
    assert [row["epoch"] for row in model.history_] == list(range(1, total + 1))
    assert not model.interrupted_

    # resuming a finished fit with the same total has nothing to do
    status = main(["fit", "convautoencoder", str(files["npy"]), "--out", str(out), "--resume",
                   "--epochs", str(total), "--param", "batch_size=4", *TINY])  # fmt: skip
    assert status == 0
    assert "nothing to resume" in capsys.readouterr().out
