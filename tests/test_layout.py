"""The layout shows the design: no import cycles, torch code free of scikit-learn.

The import graph is read from the source (every ``import`` statement, at module level or
inside functions), so a cycle that only closes at run time is found too.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import skastro

PACKAGE = Path(skastro.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, name):
    """Names of the skastro modules that ``path`` imports (any ``import`` statement)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "skastro" or m.startswith("skastro.")}


@pytest.fixture(scope="module")
def graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_module_imports_one_that_imports_it_back(graph):
    pairs = sorted(
        (a, b) for a, targets in graph.items() for b in targets if a < b and a in graph[b]
    )
    assert pairs == []


def test_serialization_and_base_do_not_know_each_other_both_ways(graph):
    assert "skastro.base" not in graph["skastro.serialization"]
    assert "skastro.serialization" not in graph["skastro._registry"]


def test_torch_code_never_imports_scikit_learn():
    # torch-only code (losses, augmentations, masks, networks) imports without scikit-learn,
    # blocked here in a fresh interpreter; escnn itself imports scikit-learn, so nn.equivariant
    # is left out
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoSklearn(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "sklearn" or name.startswith("sklearn."):
                    raise ModuleNotFoundError(name)

        sys.meta_path.insert(0, NoSklearn())
        import skastro.losses, skastro.augment, skastro.masks, skastro._device
        import skastro.nn.conv, skastro.nn.unet, skastro.nn.resnet, skastro.nn.vae
        import skastro.nn.residual
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_every_public_name_is_exported_once_from_its_subpackage():
    import skastro.features
    import skastro.losses
    import skastro.metrics
    import skastro.plotting

    for package in (skastro.features, skastro.losses, skastro.metrics, skastro.plotting):
        assert len(set(package.__all__)) == len(package.__all__)
        for name in package.__all__:
            assert getattr(package, name).__module__.startswith(package.__name__), name
