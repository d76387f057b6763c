"""The one place that imports escnn and patches its known incompatibilities.

Import escnn through this module (``from skastro._escnn import escnn_nn, gspaces``), never
directly, so the shims below are always applied first.

**Installing escnn.** escnn 1.0.11 (the current release) declares a dependency on lie_learn,
whose only wheels are built against numpy 1 and whose only source release does not build. So
escnn is installed without its declared dependencies, and its other needs come from skastro's
``equivariant`` extra::

    pip install "skastro[equivariant]"
    pip install --no-deps "escnn==1.0.11"

(:data:`INSTALL_COMMAND`). escnn imports lie_learn's ``wigner_D_matrix`` on every
``import escnn``, but only its SO(3), O(3), octahedral and icosahedral groups call it; the
planar groups skastro uses (C_N, D_N) never do. When lie_learn is not importable, a stand-in
module supplies that one name, and calling it raises an ImportError that says so. escnn's
optional py3nj (a Fortran build) is not needed for planar groups either.

**randomized_svd.** escnn passes an ``np.matrix`` to
:func:`sklearn.utils.extmath.randomized_svd` when it builds the bases of some groups; current
scikit-learn rejects matrices (``TypeError: np.matrix is not supported``). Wrapping the call
with ``np.asarray`` restores the behaviour escnn was written against.

The same call asks for ``random_state=None``: the null-space bases it returns (and so the
Clebsch-Gordan coefficients escnn builds its kernel bases from, which it caches on disk inside
its own package folder) were a random choice among equivalent bases, different in every
installation. The same ``random_state`` then trained different filters on different machines
(a test of ours measured 0.057 here and 0.075 in CI). The wrapper fixes the seed, so a fresh
installation builds the same bases everywhere. A cache written before this fix keeps its old
bases until it is deleted (``escnn/group/_cache`` in site-packages).
"""

import importlib.util
import sys
import types
import warnings

import numpy as np

__all__ = ["INSTALL_COMMAND", "escnn", "escnn_nn", "gspaces", "lie_learn_stand_in"]

ESCNN_VERSION = "1.0.11"
INSTALL_COMMAND = (
    f'pip install "skastro[equivariant]" && pip install --no-deps "escnn=={ESCNN_VERSION}"'
)
_WIGNER_MODULE = "lie_learn.representations.SO3.wigner_d"


def _wigner_d_unavailable(*args, **kwargs):
    raise ImportError(
        "escnn asked for lie_learn's wigner_D_matrix, which only its 3-D groups (SO(3), O(3), "
        "octahedral, icosahedral) use. lie_learn is not installed: its wheels need numpy<2, "
        "and skastro's equivariant models only use planar groups (C_N, D_N), which do not "
        "need it. For 3-D groups, install lie_learn in an environment with numpy<2."
    )


def _lie_learn_importable():
    """Whether the real lie_learn imports here (its wheels break under numpy 2)."""
    if importlib.util.find_spec("lie_learn") is None:
        return False
    try:
        importlib.import_module(_WIGNER_MODULE)
    except Exception:  # ImportError, or numpy's "compiled using NumPy 1.x" error
        for name in [n for n in sys.modules if n == "lie_learn" or n.startswith("lie_learn.")]:
            del sys.modules[name]
        return False
    return True


def lie_learn_stand_in():
    """Register a stand-in for ``lie_learn.representations.SO3.wigner_d`` if lie_learn is absent.

    Returns
    -------
    installed : bool
        True when the stand-in was registered (lie_learn is missing or does not import),
        False when the real lie_learn is used.

    Examples
    --------
    >>> isinstance(lie_learn_stand_in(), bool)
    True
    """
    existing = sys.modules.get(_WIGNER_MODULE)
    if existing is not None:
        return bool(getattr(existing, "_skastro_stand_in", False))
    if _lie_learn_importable():
        return False
    parts = _WIGNER_MODULE.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        module = types.ModuleType(name)
        module.__path__ = []  # a package, so that the next level can be imported from it
        module._skastro_stand_in = True
        sys.modules[name] = module
        if i > 1:
            setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], module)
    sys.modules[_WIGNER_MODULE].wigner_D_matrix = _wigner_d_unavailable
    return True


if importlib.util.find_spec("escnn") is None:
    raise ImportError(
        "skastro's equivariant models (EquivariantAutoencoder) need escnn, which is not "
        f"installed. Install it with:\n    {INSTALL_COMMAND}\n(escnn is installed without "
        "its declared dependencies because one of them, lie_learn, cannot install under "
        "numpy 2; the 'equivariant' extra brings the others.)"
    )

lie_learn_stand_in()
with warnings.catch_warnings():
    # escnn warns at import that the optional py3nj is missing; only its SO(3) code uses it
    warnings.filterwarnings("ignore", message=".*py3nj.*")
    try:
        import escnn
        import escnn.group._numerical as _numerical
        from escnn import gspaces
        from escnn import nn as escnn_nn
    except ImportError as exc:
        raise ImportError(
            f"escnn is installed but does not import ({exc}). Reinstall it with:\n"
            f"    {INSTALL_COMMAND}"
        ) from exc

if getattr(_numerical, "randomized_svd", None) is not None and not getattr(
    _numerical.randomized_svd, "_skastro_patched", False
):
    _original_randomized_svd = _numerical.randomized_svd

    def _randomized_svd_on_arrays(M, *args, **kwargs):
        if kwargs.get("random_state") is None:
            kwargs["random_state"] = 0  # the same bases in every installation (see above)
        return _original_randomized_svd(np.asarray(M), *args, **kwargs)

    _randomized_svd_on_arrays._skastro_patched = True
    _numerical.randomized_svd = _randomized_svd_on_arrays
