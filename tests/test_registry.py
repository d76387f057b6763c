"""The registry: one list of public names, used by the package, the loader and the tests."""

import pytest

import skastro
from skastro._registry import (
    EXPECTED_FAILED_CHECKS,
    PUBLIC,
    TINY_SETTINGS,
    estimator_classes,
    public_class,
)


def test_every_public_name_imports_from_skastro_and_is_listed_in_all():
    assert set(PUBLIC) <= set(skastro.__all__)
    for name in PUBLIC:
        assert getattr(skastro, name) is not None


def test_every_estimator_has_tiny_settings_and_an_expected_failures_entry():
    classes = estimator_classes()
    # StarGalaxyClassifier measures light profiles on cutouts of at least 17x17 pixels, which
    # scikit-learn's checks (1-10 features) cannot give: its own tests cover clone, pickling,
    # determinism and errors on real cutouts
    assert set(classes) == set(TINY_SETTINGS) | {"ImageScaler", "PeakScaler"} | {
        "KFoldEnsemble",
        "FaintCalibratedClassifier",
    }
    assert set(TINY_SETTINGS) == set(EXPECTED_FAILED_CHECKS)
    for name, settings in TINY_SETTINGS.items():
        classes[name](**settings)  # the settings are valid parameters


@pytest.mark.parametrize("name", ["load", "os.system", "__import__", None, 3, "skastro.base"])
def test_public_class_builds_only_public_estimators(name):
    assert public_class(name) is None
