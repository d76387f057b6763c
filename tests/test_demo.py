"""The ``skastro demo`` command and the console entry point."""

import subprocess
import sys

from skastro.cli import main


def test_demo_runs_and_writes_figures(tmp_path, capsys):
    status = main(
        ["demo", "--out", str(tmp_path), "--n-samples", "64", "--epochs", "1", "--model", "conv"]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "PCA (reference)" in out and "ConvAutoencoder" in out
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures == [
        "cluster_examples.png",
        "embedding_true_labels.png",
        "embedding_umap_hdbscan.png",
        "reconstructions.png",
        "training_history.png",
    ]
    assert all((tmp_path / name).stat().st_size > 5000 for name in figures)


def test_python_dash_m_entry_point_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "skastro", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: skastro" in capsys.readouterr().out
