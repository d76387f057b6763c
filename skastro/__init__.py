"""skastro: unsupervised deep learning on astronomical images as scikit-learn estimators.

Every deep model is a ``fit``/``transform`` estimator built on skorch, so it drops into a
:class:`sklearn.pipeline.Pipeline` in front of any clusterer, manifold learner, outlier
detector or linear probe.

The public names are imported lazily: ``import skastro`` is fast, and torch or escnn are only
loaded when an estimator that needs them is first used.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "ConvAutoencoder": "skastro.estimators.conv_autoencoder",
    "EquivariantAutoencoder": "skastro.estimators.equivariant_autoencoder",
    "ContrastiveDenoiser": "skastro.estimators.contrastive_denoiser",
    "VICRegEmbedder": "skastro.estimators.vicreg_embedder",
    "VariationalAutoencoder": "skastro.estimators.variational_autoencoder",
    "CondVAEClassifier": "skastro.estimators.cond_vae_classifier",
    "KFoldEnsemble": "skastro.ensemble",
    "FaintCalibratedClassifier": "skastro.faint_calibration",
    "HypercolumnSegmenter": "skastro.segmentation",
    "KNNOutlierDetector": "skastro.anomaly",
    "ImageScaler": "skastro.preprocessing",
    "PeakScaler": "skastro.cutouts",
    "StarGalaxyClassifier": "skastro.star_galaxy",
    "load": "skastro.serialization",
}

__all__ = [*sorted(_PUBLIC), "__version__"]


def __getattr__(name):
    try:
        module_name = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'skastro' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__():
    return __all__
