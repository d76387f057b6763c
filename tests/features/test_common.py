"""What every feature transformer shares: dtypes, memmaps, NaN, errors, scikit-learn's checks."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skastro.features import (
    AxisymmetricResidual,
    BlobCounter,
    DifferenceOfGaussians,
    FourierLaplacian,
    RadialProfile,
    SoftThreshold,
)
from tests._sklearn_checks import parametrize_with_checks

SIZE = 64


# ----------------------------------------------------------------------------- drawing helpers
def _offsets(size=SIZE, centre=(0.0, 0.0)):
    """Row and column offsets of pixel centres from the image centre shifted by ``centre``."""
    rows, cols = np.mgrid[:size, :size].astype(float)
    middle = (size - 1) / 2
    return rows - middle - centre[0], cols - middle - centre[1]


def _elliptical_radius(ratio=1.0, angle=0.0, centre=(0.0, 0.0), size=SIZE):
    """Radius along the major axis; ``angle`` in degrees from +column towards +row."""
    d_row, d_col = _offsets(size, centre)
    theta = np.radians(angle)
    along = d_col * np.cos(theta) + d_row * np.sin(theta)
    across = (d_row * np.cos(theta) - d_col * np.sin(theta)) / ratio
    return np.hypot(along, across)


def _ring(radius, width=1.0, **kwargs):
    return np.exp(-((_elliptical_radius(**kwargs) - radius) ** 2) / (2 * width**2))


def _disk(radius, **kwargs):
    # a filled disk with a soft (half-pixel) edge
    return 1.0 / (1.0 + np.exp((_elliptical_radius(**kwargs) - radius) / 0.5))


def _gaussian(sigma, centre=(0.0, 0.0), size=SIZE):
    d_row, d_col = _offsets(size, centre)
    return np.exp(-(d_row**2 + d_col**2) / (2 * sigma**2))


# Well separated blob positions (pixel offsets from the image centre).
BLOB_CENTRES = [(-12.0, -12.0), (12.0, 12.0), (-12.0, 12.0), (12.0, -12.0), (0.0, 0.0)]


def _blobs(k, sigma=1.5, noise=0.0, seed=0):
    image = sum((_gaussian(sigma, c) for c in BLOB_CENTRES[:k]), np.zeros((SIZE, SIZE)))
    return image + noise * np.random.default_rng(seed).normal(size=image.shape)


@pytest.mark.parametrize("dtype", [">f4", "<f8", np.int16, np.uint8])
def test_any_real_dtype_and_byte_order(dtype):
    images = (100 * _blobs(3)).astype(dtype)[None]
    reference = (100 * _blobs(3)).astype(dtype).astype(np.float64)[None]
    for estimator in [RadialProfile(), BlobCounter(threshold=50.0), FourierLaplacian()]:
        np.testing.assert_allclose(
            estimator.fit_transform(images), estimator.fit_transform(reference), rtol=1e-6
        )


def test_memmap_input_gives_the_same_result(tmp_path):
    images = np.stack([_ring(9.0), _disk(14.0), _blobs(3)]).astype(">f4")
    stored = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=">f4", shape=(3, 64, 64)
    )
    stored[:] = images
    stored.flush()
    lazy = np.load(tmp_path / "x.npy", mmap_mode="r")
    for estimator in [RadialProfile(), DifferenceOfGaussians(), BlobCounter(threshold=0.5)]:
        np.testing.assert_array_equal(
            estimator.fit(lazy).transform(lazy), estimator.fit(images).transform(images)
        )


def test_flat_rows_from_a_dataframe_keep_feature_names():
    pd = pytest.importorskip("pandas")
    images = np.random.default_rng(0).random((4, 8, 8))
    frame = pd.DataFrame(images.reshape(4, -1), columns=[f"p{i}" for i in range(64)])
    dog = DifferenceOfGaussians().fit(frame)
    assert list(dog.feature_names_in_[:2]) == ["p0", "p1"]
    assert dog.get_feature_names_out()[63] == "dog_p63"
    radial = RadialProfile(n_bins=4).set_output(transform="pandas").fit(images)
    out = radial.transform(images)
    assert list(out.columns) == [f"radial_ch0_bin{k}" for k in range(4)]


# ----------------------------------------------------------------------------- errors
def test_nan_pixels_raise_naming_images_unless_filled():
    images = np.random.default_rng(0).random((10, 16, 16))
    images[3, 2, 2] = np.nan
    images[7, 0, 5] = np.inf
    with pytest.raises(ValueError, match=r"2 image.*3, 7"):
        RadialProfile().fit(images)
    clean = images.copy()
    clean[[3, 7]] = 0.5
    fitted = BlobCounter(threshold=0.5).fit(clean)
    with pytest.raises(ValueError, match=r"2 image.*3, 7"):
        fitted.transform(images)
    filled = DifferenceOfGaussians(nan_policy="fill").fit(images)
    assert np.isfinite(filled.transform(images)).all()
    assert filled.fill_values_.shape == (1,)


def test_shape_errors_and_unfitted_use():
    images = np.random.default_rng(0).random((2, 16, 16))
    with pytest.raises(NotFittedError):
        RadialProfile().transform(images)
    with pytest.raises(NotFittedError):
        BlobCounter().get_feature_names_out()
    fitted = RadialProfile().fit(images)
    with pytest.raises(ValueError, match="shape"):
        fitted.transform(images[:, :8, :8])
    with pytest.raises(ValueError, match="channels"):
        fitted.transform(np.stack([images, images], axis=1))
    with pytest.raises(ValueError, match="image_shape"):
        RadialProfile().fit(images.reshape(2, -1)[:, :200])


@pytest.mark.parametrize(
    "estimator",
    [
        DifferenceOfGaussians(sigma_low=3.0, sigma_high=1.0),
        BlobCounter(threshold=("mad", 3)),
        BlobCounter(threshold="triangle"),
        RadialProfile(n_bins=0),
        FourierLaplacian(sigma=-1.0),
        AxisymmetricResidual(bin_width=0.0),
        SoftThreshold(n_sigma=-1.0),
    ],
)
def test_invalid_parameters_raise_in_fit(estimator):
    with pytest.raises(ValueError):
        estimator.fit(np.zeros((2, 8, 8)))


# ----------------------------------------------------------------------------- sklearn checks
def _default_estimators():
    return [
        RadialProfile(),
        DifferenceOfGaussians(),
        FourierLaplacian(),
        AxisymmetricResidual(),
        SoftThreshold(),
        BlobCounter(),
    ]


def _row_image_estimators():
    # image_shape=(1, 1, -1) reads any flat row as a 1-pixel-high image, so every check applies
    row = {"image_shape": (1, 1, -1)}
    return [
        RadialProfile(**row),
        RadialProfile(n_bins=3, elliptical=False, normalize=False, **row),
        DifferenceOfGaussians(**row),
        FourierLaplacian(sigma=1.0, **row),
        AxisymmetricResidual(**row),
        SoftThreshold(**row),
        BlobCounter(**row),
        BlobCounter(threshold=("sigma", 1.0), min_area=1, **row),
    ]


_NOT_SQUARE = "sklearn fits flat rows of 2, 3, 5 or 10 features, not square images: ValueError"


_EXPECTED_FAILED_CHECKS = {
    "check_dict_unchanged": _NOT_SQUARE,
    "check_dont_overwrite_parameters": _NOT_SQUARE,
    "check_dtype_object": _NOT_SQUARE,
    "check_estimators_dtypes": _NOT_SQUARE,
    "check_estimators_fit_returns_self": _NOT_SQUARE,
    "check_estimators_overwrite_params": _NOT_SQUARE,
    "check_estimators_pickle": _NOT_SQUARE,
    "check_f_contiguous_array_estimator": _NOT_SQUARE,
    "check_fit_check_is_fitted": _NOT_SQUARE,
    "check_fit_idempotent": _NOT_SQUARE,
    "check_fit_score_takes_y": _NOT_SQUARE,
    "check_fit2d_predict1d": _NOT_SQUARE,
    "check_methods_sample_order_invariance": _NOT_SQUARE,
    "check_methods_subset_invariance": _NOT_SQUARE,
    "check_n_features_in": _NOT_SQUARE,
    "check_pipeline_consistency": _NOT_SQUARE,
    "check_readonly_memmap_input": _NOT_SQUARE,
    "check_transformer_data_not_an_array": _NOT_SQUARE,
    "check_transformer_general": _NOT_SQUARE,
    "check_transformer_preserve_dtypes": _NOT_SQUARE,
    "check_estimators_nan_inf": "NaN/inf is rejected, then the finite 3-feature rows are too",
    "check_fit2d_1sample": "10-feature rows fail as not square before the one-sample message",
}


@parametrize_with_checks(
    _default_estimators(),
    expected_failed_checks=lambda estimator: _EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_checks_default(estimator, check):
    if getattr(check, "func", check).__name__ not in _EXPECTED_FAILED_CHECKS:
        check(estimator)
        return
    try:
        check(estimator)
    except Exception as exc:
        # pytest formats a traceback even for an expected failure, re-parsing sklearn's
        # 5000-line check module for every frame in it (~0.2 s a check): keep this frame only.
        raise exc.with_traceback(None) from None


@parametrize_with_checks(_row_image_estimators(), xfail_strict=True)
def test_sklearn_checks_row_images(estimator, check):
    check(estimator)
