"""BlobCounter: counts, distances and areas of blobs, and the filter pipelines into it."""

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skastro.features import (
    BlobCounter,
    DifferenceOfGaussians,
    FourierLaplacian,
)

SIZE = 64


# ----------------------------------------------------------------------------- drawing helpers
def _offsets(size=SIZE, centre=(0.0, 0.0)):
    """Row and column offsets of pixel centres from the image centre shifted by ``centre``."""
    rows, cols = np.mgrid[:size, :size].astype(float)
    middle = (size - 1) / 2
    return rows - middle - centre[0], cols - middle - centre[1]


def _gaussian(sigma, centre=(0.0, 0.0), size=SIZE):
    d_row, d_col = _offsets(size, centre)
    return np.exp(-(d_row**2 + d_col**2) / (2 * sigma**2))


# Well separated blob positions (pixel offsets from the image centre).
BLOB_CENTRES = [(-12.0, -12.0), (12.0, 12.0), (-12.0, 12.0), (12.0, -12.0), (0.0, 0.0)]


def _blobs(k, sigma=1.5, noise=0.0, seed=0):
    image = sum((_gaussian(sigma, c) for c in BLOB_CENTRES[:k]), np.zeros((SIZE, SIZE)))
    return image + noise * np.random.default_rng(seed).normal(size=image.shape)


# ----------------------------------------------------------------------------- BlobCounter
@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_blob_counter_counts_well_separated_blobs(k):
    noisy = _blobs(k, noise=0.02)[None]
    assert BlobCounter(threshold=("sigma", 5)).fit_transform(noisy)[0, 0] == k
    # an absolute threshold on noiseless blobs: areas are the pixels above it, blob by blob
    clean = _blobs(k)[None]
    features = BlobCounter(threshold=0.5).fit_transform(clean)[0]
    area = [np.sum(_gaussian(1.5, c) > 0.5) for c in BLOB_CENTRES[:k]]
    expected = [k, sum(area), np.mean(area) if k else 0, max(area, default=0)]
    np.testing.assert_allclose(features[:4], expected)
    if k:
        assert BlobCounter(threshold="otsu").fit_transform(clean)[0, 0] == k


def test_blob_counter_reports_distances_from_centre():
    image = (_gaussian(1.5, centre=(0.0, 12.0)) + _gaussian(1.5, centre=(-5.0, 0.0)))[None]
    names = list(BlobCounter().fit(image).get_feature_names_out())
    features = dict(zip(names, BlobCounter(threshold=0.5).fit_transform(image)[0], strict=True))
    assert features["n_blobs"] == 2
    np.testing.assert_allclose(features["mean_distance"], (12.0 + 5.0) / 2, atol=1e-4)
    np.testing.assert_allclose(features["max_distance"], 12.0, atol=1e-4)


def test_blob_counter_min_area_and_empty_images():
    image = np.zeros((2, 32, 32))
    image[0, 5, 5] = 1.0  # a hot pixel
    image[0, 20:23, 20:23] = 1.0
    assert BlobCounter(threshold=0.5).fit_transform(image)[0, 0] == 1
    assert BlobCounter(threshold=0.5, min_area=1).fit_transform(image)[0, 0] == 2
    # a blank image has no blob, whatever the threshold rule
    for threshold in ["otsu", ("sigma", 3.0), 0.5]:
        np.testing.assert_array_equal(BlobCounter(threshold).fit_transform(image)[1], 0.0)


def test_dog_chains_into_blob_counter_on_flat_rows():
    shape = (1, SIZE, SIZE)
    images = np.stack([_blobs(k, noise=0.01, seed=k) for k in [0, 1, 3, 5]]).reshape(4, -1)
    pipeline = Pipeline(
        [
            ("dog", DifferenceOfGaussians(image_shape=shape)),
            ("blobs", BlobCounter(threshold=("sigma", 6), image_shape=shape)),
        ]
    )
    np.testing.assert_array_equal(pipeline.fit_transform(images)[:, 0], [0, 1, 3, 5])


def test_negated_laplacian_chains_into_blob_counter():
    images = np.stack([_blobs(k, noise=0.01, seed=k) for k in [0, 1, 3, 5]])
    pipeline = Pipeline(
        [
            ("log", FourierLaplacian(sigma=1.5)),
            ("negate", FunctionTransformer(np.negative)),  # the Laplacian is negative on blobs
            ("blobs", BlobCounter(threshold=("sigma", 6))),
        ]
    )
    np.testing.assert_array_equal(pipeline.fit_transform(images)[:, 0], [0, 1, 3, 5])
