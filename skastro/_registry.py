"""The one list of skastro's public names, and each estimator's tiny test settings.

Every public name (:data:`PUBLIC`) maps to the module that defines it. ``skastro/__init__.py``
re-exports them lazily, :mod:`skastro.serialization` builds only these classes when loading a
model, the command line offers the fittable ones, and ``tests/test_common.py`` runs
scikit-learn's estimator checks over every entry of :data:`TINY_SETTINGS`, declaring the
checks listed in :data:`EXPECTED_FAILED_CHECKS` as expected failures.

To add an estimator: one entry in :data:`PUBLIC`, one in :data:`TINY_SETTINGS` and one in
:data:`EXPECTED_FAILED_CHECKS` (see CONTRIBUTING.md).
"""

import importlib

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "PUBLIC",
    "TINY_SETTINGS",
    "estimator_classes",
    "public_class",
]

# public name -> module that defines it
PUBLIC = {
    "ConvAutoencoder": "skastro.estimators.conv_autoencoder",
    "EquivariantAutoencoder": "skastro.estimators.equivariant_autoencoder",
    "ContrastiveDenoiser": "skastro.estimators.contrastive_denoiser",
    "VICRegEmbedder": "skastro.estimators.vicreg_embedder",
    "VariationalAutoencoder": "skastro.estimators.variational_autoencoder",
    "CondVAEClassifier": "skastro.estimators.cond_vae_classifier",
    "HypercolumnSegmenter": "skastro.estimators.hypercolumn_segmenter",
    "KFoldEnsemble": "skastro.meta",
    "FaintCalibratedClassifier": "skastro.meta",
    "KNNOutlierDetector": "skastro.anomaly",
    "ImageScaler": "skastro.preprocessing",
    "PeakScaler": "skastro.preprocessing",
    "StarGalaxyClassifier": "skastro.estimators.star_galaxy_classifier",
    "load": "skastro.serialization",
}


def public_class(name):
    """The public skastro estimator class called ``name``, or None.

    The name is looked up in :data:`PUBLIC`, never imported from anywhere else, so a model
    file naming a class can only ever build one of skastro's own estimators.

    Parameters
    ----------
    name : str

    Returns
    -------
    cls : type or None
        None for names that are not public estimators (``"load"``, ``"os.system"``) and for
        estimators whose optional dependencies do not import here.

    Examples
    --------
    >>> public_class("ConvAutoencoder").__name__
    'ConvAutoencoder'
    >>> public_class("os.system") is None
    True
    """
    from sklearn.base import BaseEstimator

    module_name = PUBLIC.get(name) if isinstance(name, str) else None
    if module_name is None:
        return None
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):  # an optional stack that is not installed
        return None
    if isinstance(cls, type) and issubclass(cls, BaseEstimator):
        return cls
    return None


def estimator_classes():
    """``{name: class}`` of the public estimators that import here.

    Examples
    --------
    >>> "ConvAutoencoder" in estimator_classes()
    True
    """
    classes = {name: public_class(name) for name in PUBLIC}
    return {name: cls for name, cls in classes.items() if cls is not None}


# class name -> keyword arguments that make the estimator fit in well under a second on the
# small flat arrays scikit-learn's checks use. image_shape=(1, 1, -1) reads each flat row of
# F features as a one-row image, so every check's data is valid input.
TINY_SETTINGS = {
    "ConvAutoencoder": dict(
        n_components=2, widths=(4,), max_epochs=1, batch_size=16, image_shape=(1, 1, -1)
    ),
    "KNNOutlierDetector": dict(n_neighbors=5),
    "VICRegEmbedder": dict(
        n_components=2,
        widths=(4,),
        expander_widths=(8,),
        max_epochs=1,
        batch_size=16,
        image_shape=(1, 1, -1),
    ),
    "VariationalAutoencoder": dict(
        n_components=2, widths=(4,), max_epochs=1, batch_size=16, image_shape=(1, 1, -1)
    ),
    # prior_std=1: decision_function is 2 m / s² times the float32 class unit, and with the
    # default s=0.2 that factor of 50 lifts the 1e-8 rounding differences between batch sizes
    # above the 1e-7 tolerance of check_methods_subset_invariance
    "CondVAEClassifier": dict(
        n_components=2,
        widths=(4,),
        max_epochs=1,
        batch_size=16,
        image_shape=(1, 1, -1),
        prior_std=1.0,
    ),
    "HypercolumnSegmenter": dict(
        n_segments=2,
        layers=("input", "enc0", "enc1"),
        n_components=2,
        widths=(4,),
        n_pixels=200,
        max_epochs=1,
        batch_size=16,
        image_shape=(1, 1, -1),
    ),
    "EquivariantAutoencoder": dict(
        n_components=2,
        group="C4",
        widths=(4,),
        kernel_size=3,
        max_epochs=1,
        batch_size=16,
        image_shape=(1, 1, -1),
    ),
    "ContrastiveDenoiser": dict(
        n_components=2, widths=(4,), max_epochs=1, batch_size=16, image_shape=(1, 1, -1)
    ),
    "StarGalaxyClassifier": dict(n_levels=2),
}

# StarGalaxyClassifier measures light profiles on cutouts of at least 17 x 17 pixels; the
# checks below give it flat rows of 1 to 10 features, which it refuses with a ValueError
_SMALL_INPUT = "scikit-learn's check fits rows of 1-10 features; it needs cutouts >= 17x17 px"
_LABEL_FREE = "label-free: y is ignored, so a one-class or continuous y is no error"
_STAR_GALAXY_SMALL_INPUT_CHECKS = (
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_classifiers_train",
    "check_decision_proba_consistency",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_estimators_unfitted",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_requires_y_none",
    "check_supervised_y_2d",
)

# class name -> {check name: one-line reason it cannot apply}
EXPECTED_FAILED_CHECKS = {
    "ConvAutoencoder": {},
    "KNNOutlierDetector": {},
    "VICRegEmbedder": {},
    "VariationalAutoencoder": {},
    "CondVAEClassifier": {},
    "HypercolumnSegmenter": {},
    "EquivariantAutoencoder": {},
    "ContrastiveDenoiser": {},
    "StarGalaxyClassifier": {
        **dict.fromkeys(_STAR_GALAXY_SMALL_INPUT_CHECKS, _SMALL_INPUT),
        "check_classifiers_one_label": _LABEL_FREE,
        "check_classifiers_regression_target": _LABEL_FREE,
    },
}
