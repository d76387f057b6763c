"""The ``skastro demo`` command and the console entry point."""

import subprocess
import sys

from skastro.cli import main


def test_demo_runs_and_writes_figures(tmp_path, capsys):
    status = main(["demo", "--out", str(tmp_path), "--n-samples", "64", "--epochs", "1"])
    assert status == 0
    out = capsys.readouterr().out
    # the default model is the equivariant autoencoder of the protoplanetary-disk method
    assert "PCA (reference)" in out and "EquivariantAutoencoder" in out
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures == [
        "cluster_examples.png",
        "embedding_true_labels.png",
        "embedding_umap_hdbscan.png",
        "reconstructions.png",
        "training_history.png",
    ]
    assert all((tmp_path / name).stat().st_size > 5000 for name in figures)


def test_demo_model_choice():
    from skastro import ConvAutoencoder, EquivariantAutoencoder
    from skastro.commands.demo import _make_model

    assert isinstance(_make_model("conv", 2, 0), ConvAutoencoder)
    model = _make_model("equivariant", None, 0)
    assert isinstance(model, EquivariantAutoencoder) and model.max_epochs == 8
    assert _make_model("equivariant", 3, 0).max_epochs == 3


def test_python_dash_m_entry_point_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "skastro", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: skastro" in capsys.readouterr().out
