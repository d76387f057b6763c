"""The one place that imports escnn and patches its known incompatibilities.

Import escnn through this module (``from skastro._escnn import escnn_nn, gspaces``), never
directly, so the shim below is always applied first.

escnn 1.0.11 passes an ``np.matrix`` to :func:`sklearn.utils.extmath.randomized_svd` when it
builds the bases of some groups; current scikit-learn rejects matrices
(``TypeError: np.matrix is not supported``). Wrapping the call with ``np.asarray`` restores the
behaviour escnn was written against.

The same call asks for ``random_state=None``: the null-space bases it returns (and so the
Clebsch-Gordan coefficients escnn builds its kernel bases from, which it caches on disk inside
its own package folder) were a random choice among equivalent bases, different in every
installation. The same ``random_state`` then trained different filters on different machines
(a test of ours measured 0.057 here and 0.075 in CI). The wrapper fixes the seed, so a fresh
installation builds the same bases everywhere. A cache written before this fix keeps its old
bases until it is deleted (``escnn/group/_cache`` in site-packages).
"""

import numpy as np

try:
    import escnn
    import escnn.group._numerical as _numerical
except ImportError as exc:  # pragma: no cover - escnn is a hard dependency
    raise ImportError(
        "skastro's equivariant models need escnn: pip install 'escnn>=1.0.11' "
        "(it needs gfortran to build py3nj and numpy<2)."
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

from escnn import gspaces
from escnn import nn as escnn_nn

__all__ = ["escnn", "escnn_nn", "gspaces"]
