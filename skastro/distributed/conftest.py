"""Leave out the doctests of modules whose optional dependencies are not installed.

The ``skastro[distributed]`` extra brings dask, distributed and faiss-cpu; without them these
modules still import (nothing optional is imported at module level) but their Examples cannot
run.
"""

import importlib.util


def _missing(*names):
    return any(importlib.util.find_spec(name) is None for name in names)


collect_ignore = []
if _missing("faiss"):
    collect_ignore += ["_neighbors.py"]
if _missing("dask", "distributed"):
    collect_ignore += ["_arrays.py", "_client.py", "_embed.py"]
