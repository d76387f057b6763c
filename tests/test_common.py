"""scikit-learn's estimator checks over every skastro estimator, with tiny settings.

The settings and the checks that cannot apply (with a one-line reason each) live in
``skastro/_registry.py``; expected failures are strict, so a check that starts passing fails
the suite until it is removed from the list.
"""

import importlib

import pytest

import skastro
from skastro._registry import EXPECTED_FAILED_CHECKS, PUBLIC, TINY_SETTINGS
from tests._sklearn_checks import parametrize_with_checks


def _instances():
    instances = []
    for name, params in TINY_SETTINGS.items():
        module = importlib.import_module(PUBLIC[name])
        estimator = getattr(module, name)(**params)
        if hasattr(estimator, "set_params") and "random_state" in estimator.get_params():
            estimator.set_params(random_state=0)
        instances.append(estimator)
    return instances


def _expected_failures(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(_instances(), expected_failed_checks=_expected_failures, xfail_strict=True)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_public_estimator_has_tiny_settings():
    # A new public estimator must be registered for the common checks.
    estimators = {
        "ConvAutoencoder",
        "EquivariantAutoencoder",
        "ContrastiveDenoiser",
        "VICRegEmbedder",
        "VariationalAutoencoder",
        "CondVAEClassifier",
        "HypercolumnSegmenter",
        "KNNOutlierDetector",
        "StarGalaxyClassifier",
    }
    available = set()
    for name in estimators:
        try:
            getattr(skastro, name)
        except (ImportError, AttributeError):
            continue
        available.add(name)
    missing = available - set(TINY_SETTINGS)
    assert not missing, f"add tiny settings for {sorted(missing)} in skastro/_registry.py"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
