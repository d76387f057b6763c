"""Tiny, fast settings for every estimator, in one place, for the test suite.

``tests/test_common.py`` runs scikit-learn's estimator checks over every entry of
:data:`TINY_SETTINGS`, declaring the checks listed in :data:`EXPECTED_FAILED_CHECKS` as
expected failures (strict: a check that starts passing must be removed from the list).

To add an estimator: one entry in each dict, keyed by the class name.
"""

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
    # --- new estimators: add their tiny settings above this line ---
}

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
    # --- new estimators: add their expected failures above this line ---
}
