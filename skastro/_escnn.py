"""The one place that imports escnn and patches its known incompatibilities.

Import escnn through this module (``from skastro._escnn import escnn_nn, gspaces``), never
directly, so the shim below is always applied first.

escnn 1.0.11 passes an ``np.matrix`` to :func:`sklearn.utils.extmath.randomized_svd` when it
builds the bases of some groups; current scikit-learn rejects matrices
(``TypeError: np.matrix is not supported``). Wrapping the call with ``np.asarray`` restores the
behaviour escnn was written against.
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
        return _original_randomized_svd(np.asarray(M), *args, **kwargs)

    _randomized_svd_on_arrays._skastro_patched = True
    _numerical.randomized_svd = _randomized_svd_on_arrays

from escnn import gspaces
from escnn import nn as escnn_nn

__all__ = ["escnn", "escnn_nn", "gspaces"]
