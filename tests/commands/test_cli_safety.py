"""Nothing lost, and every failure one line (issue 27): fit --overwrite never loses the model
already in --out, no command replaces an output without --overwrite, and every expected
failure is one ``skastro CMD: error: ...`` line with a non-zero status.

Runs in-process through :func:`skastro.cli.main`, except Ctrl+C, which needs a real process.
"""

import hashlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import skastro
from skastro.cli import main

TINY = ["--param", "widths=[4]", "--param", "n_components=2", "--param", "random_state=0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16] - 7.5
    width = rng.uniform(1.5, 5, size=(n, 1, 1, 1))
    return (
        np.exp(-(xx**2 + yy**2) / (2 * width**2)) + 0.05 * rng.normal(size=(n, 1, 16, 16))
    ).astype(np.float32)


def _digests(folder):
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    npy = root / "images.npy"
    np.save(npy, _images())
    nan = root / "nan.npy"
    images = _images()
    images[3, 0, 5, 5] = np.nan
    np.save(nan, images)
    return {"root": root, "npy": npy, "nan": nan}


@pytest.fixture(scope="module")
def trained(data):
    """A model folder trained once, copied by the tests that need one."""
    out = data["root"] / "trained"
    status = main(["fit", "convautoencoder", str(data["npy"]), "--out", str(out), "--quiet",
                   "--epochs", "1", *TINY])  # fmt: skip
    assert status == 0
    return out


@pytest.fixture
def old_model(trained, tmp_path):
    import shutil

    out = tmp_path / "model"
    shutil.copytree(trained, out)
    (out / "notes.txt").write_text("the user's own notes")
    return out, _digests(out)


def _one_error_line(err, command):
    lines = [line for line in err.splitlines() if line.startswith(f"skastro {command}: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"skastro {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------- fit --overwrite
@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("mistyped DATA", []),
        ("NaN data", []),
        ("diverging lr", ["--param", "lr=1e30", "--param", "batch_size=24", "--epochs", "4"]),
        ("unloadable network", ["--param", "n_components=10000000"]),
    ],
)
def test_failed_fit_with_overwrite_keeps_the_old_model(data, old_model, case, extra, capsys):
    out, before = old_model
    source = {"mistyped DATA": data["root"] / "imgaes.npy", "NaN data": data["nan"]}.get(
        case, data["npy"]
    )
    status = main(["fit", "convautoencoder", str(source), "--out", str(out), "--overwrite",
                   "--quiet", *TINY, *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    _one_error_line(err, "fit")
    assert _digests(out) == before, "the previous model was changed"
    assert np.isfinite(skastro.load(out).transform(_images(4))).all()
    # no temporary folder is left beside --out
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]


def test_fit_with_overwrite_replaces_the_model_and_keeps_other_files(data, old_model, capsys):
    out, before = old_model
    status = main(["fit", "convautoencoder", str(data["npy"]), "--out", str(out), "--overwrite",
                   "--quiet", "--epochs", "2", *TINY])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "the user's own notes"
    model = skastro.load(out)
    assert len(model.history_) == 2  # the new fit, not the old one-epoch model
    weights = out.relative_to(out) / "weights.safetensors"
    assert _digests(out)[weights] != before[weights]
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]


def _mode(path):
    return path.stat().st_mode & 0o7777


def test_fit_writes_the_model_as_the_umask_says_and_keeps_a_folders_mode(data, old_model):
    # mkstemp/mkdtemp make private entries; a model shared with a group must stay readable
    out, _ = old_model
    os.chmod(out, 0o2775)  # a group folder the user set up
    previous = os.umask(0o022)
    try:
        fresh = out.parent / "fresh"
        for target, extra in ((fresh, []), (out, ["--overwrite"])):
            status = main(["fit", "convautoencoder", str(data["npy"]), "--out", str(target),
                           "--quiet", "--epochs", "1", *TINY, *extra])  # fmt: skip
            assert status == 0
    finally:
        os.umask(previous)
    assert _mode(fresh) == 0o755
    for name in ("model.json", "weights.safetensors", "history.json"):
        assert _mode(fresh / name) == 0o644, name
        assert _mode(out / name) == 0o644, name
    assert _mode(out) == 0o2775
    saved = out.parent / "saved"
    previous = os.umask(0o022)
    try:
        skastro.load(fresh).save(saved)  # the Python API writes through the same helper
    finally:
        os.umask(previous)
    assert _mode(saved / "weights.safetensors") == 0o644


def test_fit_into_the_working_folder_keeps_the_folder(data, tmp_path, monkeypatch):
    work = tmp_path / "project"
    work.mkdir()
    (work / "notes.txt").write_text("kept")
    inode = work.stat().st_ino
    monkeypatch.chdir(work)
    status = main(["fit", "convautoencoder", str(data["npy"]), "--out", ".", "--quiet",
                   "--epochs", "1", *TINY])  # fmt: skip
    assert status == 0
    # the folder was filled in place, not swapped for another one (the shell's cwd survives)
    assert work.stat().st_ino == inode and Path.cwd().samefile(work)
    assert (work / "notes.txt").read_text() == "kept"
    assert skastro.load(work).history_ is not None
    assert not [p.name for p in work.iterdir() if p.name.startswith(".")]


def test_a_failed_fit_leaves_no_new_folder_and_out_must_be_a_folder(data, tmp_path, capsys):
    out = tmp_path / "a" / "b" / "model"
    status = main(["fit", "convautoencoder", str(tmp_path / "missing.npy"), "--out", str(out),
                   "--quiet", *TINY])  # fmt: skip
    assert status == 1
    _one_error_line(capsys.readouterr().err, "fit")
    assert not (tmp_path / "a").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    status = main(["fit", "convautoencoder", str(data["npy"]), "--out", str(afile), "--quiet",
                   *TINY])  # fmt: skip
    assert status == 2
    assert "is a file; MODEL_DIR must be a folder" in _one_error_line(
        capsys.readouterr().err, "fit"
    )
    assert afile.read_text() == "x"


def test_fit_reads_channels_last_hdf5_when_told(tmp_path, capsys):
    import h5py

    rgb = np.moveaxis(np.concatenate([_images(), _images(seed=1), _images(seed=2)], 1), 1, -1)
    with h5py.File(tmp_path / "rgb.h5", "w") as f:
        f.create_dataset("images", data=rgb)  # (n, 16, 16, 3)
    out = str(tmp_path / "model")
    status = main(["fit", "convautoencoder", str(tmp_path / "rgb.h5"), "--channels-last",
                   "--out", out, "--quiet", "--epochs", "1", *TINY])  # fmt: skip
    assert status == 0
    assert "read 24 images of shape 3x16x16" in capsys.readouterr().out
    assert skastro.load(tmp_path / "model").channel_mean_.shape == (3,)


def test_quiet_hides_the_epoch_table_in_logs_too(data, tmp_path, capsys):
    # captured stdout is not a terminal: the plain-text table of a batch job's log
    for flag, table in ((["--quiet"], False), ([], True)):
        status = main(["fit", "convautoencoder", str(data["npy"]), "--out",
                       str(tmp_path / f"m{table}"), "--epochs", "1", *TINY, *flag])  # fmt: skip
        assert status == 0
        words = capsys.readouterr().out.split()
        assert ("epoch" in words and "dur" in words) is table


def _read_until(process, pattern, timeout):
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


def test_ctrl_c_during_fit_with_overwrite_keeps_the_old_model(data, old_model):
    out, before = old_model
    command = [sys.executable, "-m", "skastro", "fit", "convautoencoder", str(data["npy"]),
               "--out", str(out), "--overwrite", "--epochs", "500", "--param", "batch_size=4",
               *TINY]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        _read_until(process, r"^\s+1\s", timeout=240)  # an epoch has finished
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "previous model" in err and "unchanged" in err
    after = _digests(out)
    # the old model is intact; the new fit's checkpoint replaced the old checkpoint
    for name, digest in before.items():
        if name.parts[0] != "checkpoint":
            assert after[name] == digest, name
    assert np.isfinite(skastro.load(out).transform(_images(4))).all()
    checkpoint = skastro.load(out / "checkpoint")
    assert len(checkpoint.history_) >= 1


# ----------------------------------------------------------------------------- outputs
def test_embed_refuses_to_replace_an_output_without_overwrite(trained, data, tmp_path, capsys):
    out = tmp_path / "z.npz"
    out.write_text("earlier results")
    status = main(["embed", str(trained), str(data["npy"]), "--out", str(out)])
    line = _one_error_line(capsys.readouterr().err, "embed")
    assert status == 2 and "already exists; pass --overwrite" in line
    assert out.read_text() == "earlier results"
    assert main(["embed", str(trained), str(data["npy"]), "--out", str(out), "--overwrite"]) == 0
    with np.load(out) as saved:
        assert saved["embeddings"].shape == (24, 2)


def test_embed_npy_checks_its_ids_file_too(trained, data, tmp_path, capsys):
    (tmp_path / "z.ids.txt").write_text("earlier ids")
    status = main(["embed", str(trained), str(data["npy"]), "--out", str(tmp_path / "z.npy")])
    assert status == 2 and "z.ids.txt already exists" in capsys.readouterr().err
    assert not (tmp_path / "z.npy").exists()


def test_embed_output_that_is_a_folder(trained, data, tmp_path, capsys):
    folder = tmp_path / "x.npz"
    folder.mkdir()
    status = main(["embed", str(trained), str(data["npy"]), "--out", str(folder)])
    line = _one_error_line(capsys.readouterr().err, "embed")
    assert status == 2 and "is a folder" in line


def test_embed_reports_a_broken_model_in_one_line(trained, data, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained, model)
    (model / "model.json").write_text("{oops")
    status = main(["embed", str(model), str(data["npy"]), "--out", str(tmp_path / "z.npz")])
    line = _one_error_line(capsys.readouterr().err, "embed")
    assert status == 1 and "cannot load the model" in line and "model.json" in line
    assert not (tmp_path / "z.npz").exists()


def test_embed_refuses_non_finite_embeddings(trained, data, tmp_path, capsys, monkeypatch):
    from skastro import ConvAutoencoder

    def broken(self, X):
        Z = np.zeros((len(X), 2), np.float32)
        Z[1] = np.nan
        return Z

    monkeypatch.setattr(ConvAutoencoder, "transform", broken)
    out = tmp_path / "z.npz"
    status = main(["embed", str(trained), str(data["npy"]), "--out", str(out)])
    line = _one_error_line(capsys.readouterr().err, "embed")
    assert status == 1 and "NaN or inf embeddings" in line and "image 1" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cluster_checks_its_options_and_outputs(tmp_path, capsys):
    z = tmp_path / "z.npz"
    rng = np.random.default_rng(0)
    np.savez(z, embeddings=np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(8, 1, (20, 2))]))
    out = tmp_path / "labels.csv"
    assert main(["cluster", str(z), "--out", str(out), "--min-cluster-size", "1"]) == 2
    assert "--min-cluster-size must be at least 2" in _one_error_line(
        capsys.readouterr().err, "cluster"
    )
    out.write_text("earlier labels")
    assert main(["cluster", str(z), "--out", str(out)]) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err, "cluster")
    assert out.read_text() == "earlier labels"
    assert main(["cluster", str(z), "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("id,label")
    # its figures are outputs too: a scatter from an earlier run is not replaced unasked
    other = tmp_path / "other.csv"
    (tmp_path / "other_scatter.png").write_bytes(b"an earlier figure")
    assert main(["cluster", str(z), "--out", str(other)]) == 2
    assert "other_scatter.png already exists" in capsys.readouterr().err
    assert (tmp_path / "other_scatter.png").read_bytes() == b"an earlier figure"
    assert main(["cluster", str(z), "--out", str(other), "--no-plots"]) == 0
    two = tmp_path / "two.npz"
    np.savez(two, embeddings=np.zeros((2, 2)))
    assert (
        main(["cluster", str(two), "--out", str(tmp_path / "two.csv"), "--method", "kmeans"]) == 1
    )
    assert "kmeans needs at least 3 points" in capsys.readouterr().err
    z.write_text("not numpy")
    assert main(["cluster", str(z), "--out", str(out), "--overwrite"]) == 1
    assert "cannot read embeddings from" in _one_error_line(capsys.readouterr().err, "cluster")


def test_explore_lists_every_bad_file_and_keeps_its_html(data, tmp_path, capsys):
    folder = tmp_path / "fits"
    folder.mkdir()
    for i in range(3):
        (folder / f"bad{i}.fits").write_bytes(b"SIMPLE  = garbage" * (i + 2))
    html = tmp_path / "e.html"
    status = main(["explore", str(folder), "--save-html", str(html)])
    line = _one_error_line(capsys.readouterr().err, "explore")
    assert status == 1 and all(f"bad{i}.fits" in line for i in range(3))
    html.write_text("<html>earlier</html>")
    assert main(["explore", str(data["npy"]), "--save-html", str(html)]) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err, "explore")
    assert html.read_text() == "<html>earlier</html>"
    assert main(["explore", str(data["npy"]), "--save-html", str(html), "--overwrite"]) == 0
    other = str(tmp_path / "other.html")
    assert main(["explore", str(data["npy"]), "--save-html", other, "--color-by", "nope"]) == 2
    assert "--color-by 'nope' is not a colouring" in capsys.readouterr().err
    assert "plotly" in html.read_text().lower()


def test_data_errors_list_every_bad_file(trained, tmp_path, capsys):
    folder = tmp_path / "fits"
    folder.mkdir()
    for i in range(3):
        (folder / f"bad{i}.fits").write_bytes(b"garbage" * (i + 1))
    status = main(["fit", "convautoencoder", str(folder), "--out", str(tmp_path / "m"), *TINY])
    line = _one_error_line(capsys.readouterr().err, "fit")
    assert status == 1 and "cannot read 3 files" in line and "--skip-bad" in line
    for special in ("/dev/zero",):
        status = main(["embed", str(trained), special, "--out", str(tmp_path / "z.npz")])
        assert status == 1
        line = _one_error_line(capsys.readouterr().err, "embed")
        # one file: no "--skip-bad" hint, which could not help
        assert "character device" in line and "--skip-bad" not in line


def test_advice_is_given_in_command_line_terms(data, tmp_path, capsys):
    status = main(["fit", "convautoencoder", str(data["nan"]), "--out", str(tmp_path / "m"),
                   "--quiet", *TINY])  # fmt: skip
    line = _one_error_line(capsys.readouterr().err, "fit")
    assert status == 1 and "NaN or inf" in line
    assert "--param nan_policy=fill" in line and "nan_policy='fill'" not in line
    status = main(["fit", "convautoencoder", str(data["nan"]), "--out", str(tmp_path / "m"),
                   "--quiet", "--param", "nan_policy=fill", "--epochs", "1", *TINY])  # fmt: skip
    assert status == 0


# ----------------------------------------------------------------------------- internal errors
def test_unexpected_errors_are_one_line_too(monkeypatch, capsys, tmp_path):
    from skastro.distributed import _embeddings

    def crash(path):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(_embeddings, "open_embeddings", crash)
    args = ["cluster", str(tmp_path / "z.npz"), "--out", str(tmp_path / "labels.csv")]
    assert main(args) == 1
    line = _one_error_line(capsys.readouterr().err, "cluster")
    assert "internal error (RuntimeError: something nobody expected)" in line
    assert "SKASTRO_TRACEBACK=1" in line
    monkeypatch.setenv("SKASTRO_TRACEBACK", "1")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "crash" in err
