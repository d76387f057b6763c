"""The README's command-line recipe, run exactly as written, on FITS cutouts with a bad file."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
N_CUTOUTS = 24


def _readme_commands():
    """The ``$ skastro ...`` lines of the README's command-line section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## From the command line", 1)[1].split("\n## ", 1)[0]
    return [line[2:].strip() for line in section.splitlines() if line.startswith("$ skastro ")]


@pytest.fixture
def cutouts(tmp_path):
    from astropy.io import fits

    from skastro.datasets import make_galaxies

    folder = tmp_path / "cutouts"
    folder.mkdir()
    galaxies = make_galaxies(N_CUTOUTS, image_size=32, noise_sigma=0.02, random_state=0)
    for i, image in enumerate(galaxies.images):
        # counts, as a survey gives them: the estimators standardise them inside
        fits.writeto(folder / f"galaxy_{i:03d}.fits", (1000 * image[0]).astype(">f4"))
    (folder / "galaxy_999.fits").write_bytes(b"this is not a FITS file")
    return tmp_path


def _skastro(command):
    """The argument list of a README line, run with this Python."""
    words = command.split()
    assert words[0] == "skastro"
    return [sys.executable, "-m", "skastro", *words[1:]]


def _port_free(port):
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_readme_recipe_runs_as_written(cutouts):
    commands = _readme_commands()
    assert [c.split()[1] for c in commands] == ["fit", "embed", "cluster", "explore"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for command in commands[:-1]:
        result = subprocess.run(
            _skastro(command), cwd=cutouts, capture_output=True, text=True, env=env, timeout=900
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        # the corrupt file is skipped and named, never fatal
        assert "galaxy_999.fits" in result.stderr or command.split()[1] == "cluster"
    for name in ("model/model.json", "model/history.png",
                 "model/reconstructions.png", "embeddings.npz", "clusters.csv",
                 "clusters_scatter.png", "clusters_examples.png"):  # fmt: skip
        assert (cutouts / name).is_file(), name
    assert not (cutouts / "model/preprocessing.json").exists()  # no stretch: linear pixels
    with np.load(cutouts / "embeddings.npz") as saved:
        assert len(saved["ids"]) == N_CUTOUTS

    # explore serves until stopped: wait for its address, load the page, stop it. Another
    # process may hold the default port on a shared machine: then any free port.
    explore = _skastro(commands[-1]) + ([] if _port_free(8050) else ["--port", "0"])
    process = subprocess.Popen(
        explore,
        cwd=cutouts,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url, lines, deadline = None, [], time.monotonic() + 600
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        assert url, "".join(lines)
        page = urllib.request.urlopen(url, timeout=60).read().decode()
        assert "skastro explorer" in page
        assert "cutouts.labels.csv" in "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=30)
