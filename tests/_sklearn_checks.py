"""scikit-learn's ``parametrize_with_checks``, strict wherever the installed version can be.

``xfail_strict`` (a listed expected failure that starts passing fails the test) arrived in
scikit-learn 1.8; the oldest supported stack (CI's second leg) has an older scikit-learn, where
the expected failures are still marked but not strictly.
"""

import inspect

from sklearn.utils.estimator_checks import parametrize_with_checks as _parametrize_with_checks

_HAS_XFAIL_STRICT = "xfail_strict" in inspect.signature(_parametrize_with_checks).parameters


def parametrize_with_checks(estimators, **kwargs):
    """:func:`sklearn.utils.estimator_checks.parametrize_with_checks`, dropping options the
    installed scikit-learn does not have."""
    if not _HAS_XFAIL_STRICT:
        kwargs.pop("xfail_strict", None)
    return _parametrize_with_checks(estimators, **kwargs)
