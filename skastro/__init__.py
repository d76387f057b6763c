"""skastro: unsupervised deep learning on astronomical images as scikit-learn estimators.

Every deep model is a ``fit``/``transform`` estimator built on skorch, so it drops into a
:class:`sklearn.pipeline.Pipeline` in front of any clusterer, manifold learner, outlier
detector or linear probe.

The public names are imported lazily: ``import skastro`` is fast, and torch or escnn are only
loaded when an estimator that needs them is first used. Their list is
:data:`skastro._registry.PUBLIC`.
"""

import importlib

from skastro._registry import PUBLIC

__version__ = "0.1.0"

__all__ = [*sorted(PUBLIC), "__version__"]


def __getattr__(name):
    try:
        module_name = PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'skastro' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__():
    return __all__
