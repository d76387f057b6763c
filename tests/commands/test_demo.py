"""The ``skastro demo`` command and the console entry point."""

import re
import subprocess
import sys

from skastro.cli import main


def test_demo_runs_and_writes_figures_html_and_next_steps(tmp_path, capsys):
    # tiny sizes: the default run takes minutes (its figures are in docs/user_guide/cli.rst)
    status = main(["demo", "--out", str(tmp_path), "--n-galaxies", "40", "--n-disks", "16",
                   "--epochs", "1"])  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    # both tables, each with PCA as the reference row
    assert "PCA(32) + KNNOutlierDetector" in out and "VICRegEmbedder + KNNOutlierDetector" in out
    assert "PCA(16)" in out and "EquivariantAutoencoder" in out
    assert re.search(r"VICRegEmbedder \+ KNNOutlierDetector\s+[01]\.\d{3}\s+\d+/\d+", out)
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures == [
        "anomalies_ranked.png",
        "anomalies_roc.png",
        "disks_clusters.png",
        "disks_embedding.png",
        "disks_training.png",
        "vicreg_training.png",
    ]
    assert all((tmp_path / name).stat().st_size > 5000 for name in figures)
    # the explorer file is self-contained (no script fetched) and shows both embeddings
    page = (tmp_path / "explorer.html").read_text(encoding="utf-8")
    assert not re.findall(r"<script[^>]*\bsrc=", page)
    assert "VICReg · t-SNE 2-D" in page and "PCA(32) · t-SNE 2-D" in page
    # what skastro explore needs, and the last lines say what to open and what to run
    for name in ("galaxies.npy", "galaxies.csv", "vicreg_model/model.json"):
        assert (tmp_path / name).is_file()
    last = out.strip().splitlines()[-3:]
    assert "explorer.html" in last[0] and last[-1].strip().startswith("skastro explore")


def test_demo_one_part_and_the_baseline_model(tmp_path, capsys):
    from skastro import ConvAutoencoder, EquivariantAutoencoder
    from skastro.commands.demo import _disk_model

    assert isinstance(_disk_model("conv", 2, 0), ConvAutoencoder)
    model = _disk_model("equivariant", None, 0)
    assert isinstance(model, EquivariantAutoencoder) and model.max_epochs == 10
    assert main(["demo", "--out", str(tmp_path), "--only", "disks", "--n-disks", "12",
                 "--epochs", "1", "--model", "conv"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "ConvAutoencoder" in out and "VICReg" not in out
    assert not (tmp_path / "explorer.html").exists()


def test_python_dash_m_entry_point_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "skastro", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: skastro" in capsys.readouterr().out


def test_demo_checks_its_options_before_working(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv, message in (
        (["--n-galaxies", "0"], "--n-galaxies must be at least 1, got 0"),
        (["--epochs", "-1"], "--epochs must be at least 1, got -1"),
        (["--out", str(afile)], "is a file; the demo writes into a folder"),
    ):
        assert main(["demo", "--out", str(tmp_path / "out"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("skastro demo: error: ") and message in err
        assert "fitting" not in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    assert afile.read_text() == "x"
