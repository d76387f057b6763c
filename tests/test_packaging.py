"""The declared dependencies: lower bounds that CI tests, no needless upper bounds.

CI runs two legs: ``make test`` on the newest release of every dependency, and
``make test-oldest`` on the lower bounds, installed from ``.ci/lower-bounds.txt``. The
Makefile tells each run which leg it is (``SKASTRO_STACK``), so these tests can check that the
environment really is the stack that leg promises.
"""

import configparser
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STACK = os.environ.get("SKASTRO_STACK")
# bounds CI cannot exercise: no other torch CPU build is reachable from CI (see setup.cfg)
UNTESTED_LOWER_BOUNDS = {"torch"}
# the versions the issue asks the main leg to reach
NEWEST_AT_LEAST = {"numpy": (2,), "astropy": (8,)}


def _requirements():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    extras = config["options.extras_require"]
    for extra in ("equivariant", "explorer"):
        lines += extras[extra].splitlines()
    requirements = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", line).groups()
            requirements[name.lower()] = spec.strip()
    return requirements


def _lower_bounds_file():
    pins = {}
    for line in (ROOT / ".ci" / "lower-bounds.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def _version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_every_lower_bound_is_pinned_for_the_oldest_leg():
    requirements = _requirements()
    pins = _lower_bounds_file()
    for name, spec in requirements.items():
        if name in UNTESTED_LOWER_BOUNDS:
            continue
        bound = re.fullmatch(r">=([0-9.]+)", spec)
        assert bound, f"{name}: expected a plain lower bound '>=X', got {spec!r}"
        assert name in pins, f"{name} is missing from .ci/lower-bounds.txt"
        # "1.3" and "1.3.0" are the same release
        assert _version_tuple(pins[name]) == _version_tuple(bound.group(1)) + (0,) * (
            len(_version_tuple(pins[name])) - len(_version_tuple(bound.group(1)))
        ), f"{name}: setup.cfg says {spec}, .ci/lower-bounds.txt pins {pins[name]}"
    assert set(pins) <= set(requirements), "lower-bounds.txt pins a package setup.cfg lacks"


def test_no_upper_bounds_on_the_astronomy_stack():
    requirements = _requirements()
    for name in ("numpy", "astropy", "pyarrow", "pandas", "scipy"):
        assert "<" not in requirements[name], f"{name} is capped: {requirements[name]}"
    # escnn is installed in a separate step (its lie_learn dependency needs numpy<2)
    assert "escnn" not in requirements


@pytest.mark.skipif(STACK != "newest", reason="only on the main CI leg (make test)")
def test_main_leg_runs_the_newest_stack():
    for name, minimum in NEWEST_AT_LEAST.items():
        assert _version_tuple(metadata.version(name)) >= minimum, (name, metadata.version(name))
    # the real lie_learn cannot import under numpy 2: escnn runs on skastro's stand-in
    from skastro import _escnn

    assert sys.modules["lie_learn.representations.SO3.wigner_d"]._skastro_stand_in
    assert _escnn.escnn.__version__ == "1.0.11"


@pytest.mark.skipif(STACK != "oldest", reason="only on the oldest CI leg (make test-oldest)")
def test_oldest_leg_runs_the_lower_bounds():
    for name, version in _lower_bounds_file().items():
        assert _version_tuple(metadata.version(name)) == _version_tuple(version), name
    # with numpy 1 the real lie_learn wheel imports, and escnn uses it
    import skastro._escnn  # noqa: F401

    wigner = sys.modules["lie_learn.representations.SO3.wigner_d"]
    assert not getattr(wigner, "_skastro_stand_in", False)
