"""The GPU and disk-training benchmarks run end to end (on the CPU, with tiny sizes).

Their figures mean nothing here; these tests only keep the scripts working, so that the run
on a GPU machine (bench_gpu.py) or on a large disk (bench_disk_training.py) does not fail on a
path nobody tried.
"""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def benchmarks():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_disk_training
        import bench_gpu

        yield bench_gpu, bench_disk_training
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_bench_gpu_runs_on_the_cpu(benchmarks, tmp_path):
    bench_gpu, _ = benchmarks
    out = tmp_path / "gpu.md"
    assert (
        bench_gpu.main(
            [
                "--quick",
                "--device",
                "cpu",
                "--only",
                "ConvAutoencoder",
                "EquivariantAutoencoder",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "Not a GPU run" in text
    for section in ("by batch size", "same widths", "### Goals", "pickle round trip"):
        assert section in text
    # every inference method ran for both estimators
    assert text.count("| ok |") == 2


def test_bench_gpu_without_a_gpu_says_so(benchmarks, capsys, monkeypatch):
    bench_gpu, _ = benchmarks
    monkeypatch.setattr(bench_gpu.torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main([]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out


def test_bench_disk_training_runs(benchmarks, tmp_path, monkeypatch):
    _, bench_disk = benchmarks
    monkeypatch.setattr(bench_disk, "write_result", lambda *args, **kwargs: None)
    rows = bench_disk.run(n_images=96, in_memory=96, folder=tmp_path / "data", widths=(4,))
    assert [row["data"].split(",")[0] for row in rows] == (
        ["in memory", ".npy file", "HDF5 file"] + [".npy file"] * 2 + ["HDF5 file"] * 2
    )
    for row in rows:
        assert row["images_per_s"] > 0 and row["peak_pss_gib"] > 0
    assert not (tmp_path / "data").exists()  # the files are removed unless --keep
