"""Tests for skastro.features: known answers on drawn images, layouts, errors, sklearn checks."""

import numpy as np
import pytest
from _sklearn_checks import parametrize_with_checks
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skastro.features import (
    AxisymmetricResidual,
    BlobCounter,
    DifferenceOfGaussians,
    FourierLaplacian,
    RadialProfile,
    SoftThreshold,
)

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


# ----------------------------------------------------------------------------- RadialProfile
@pytest.mark.parametrize("radius", [7.0, 13.0, 21.0])
@pytest.mark.parametrize("elliptical", [True, False])
def test_radial_profile_ring_peaks_at_its_radius(radius, elliptical):
    profile = RadialProfile(elliptical=elliptical).fit_transform(_ring(radius)[None])
    # 16 bins over 32 px: each bin is 2 px wide
    assert profile.shape == (1, 16)
    assert profile.dtype == np.float32
    assert int(profile.argmax()) == int(radius // 2)
    np.testing.assert_allclose(profile.sum(), 1.0, rtol=1e-5)


def test_radial_profile_inclined_ring_is_sharp_only_when_elliptical():
    ring = _ring(19.0, ratio=0.5, angle=30.0)[None]
    elliptical = RadialProfile(elliptical=True).fit(ring)
    circular_profile = RadialProfile(elliptical=False).fit_transform(ring)[0]
    profile = elliptical.transform(ring)[0]
    assert int(profile.argmax()) == 9  # 19 px along the major axis, 2 px bins
    # most of the normalised profile sits in the ring's bin; the circular one smears it out
    assert profile.max() > 0.6
    assert profile.max() > 2 * circular_profile.max()
    row, col, ratio, angle = elliptical.measure_ellipse(ring)[0]
    np.testing.assert_allclose([row, col], [31.5, 31.5], atol=1e-6)
    np.testing.assert_allclose(ratio, 0.5, atol=0.01)
    np.testing.assert_allclose(angle, 30.0, atol=0.5)
    # sky noise does not pull the ellipse towards a circle
    noisy = ring + np.random.default_rng(0).normal(0, 0.1, ring.shape)
    _, _, ratio, angle = elliptical.measure_ellipse(noisy)[0]
    np.testing.assert_allclose(ratio, 0.5, atol=0.05)
    np.testing.assert_allclose(angle, 30.0, atol=3.0)
    assert int(elliptical.transform(noisy)[0].argmax()) == 9


def test_radial_profile_follows_an_off_centre_object():
    ring = _ring(11.0, centre=(5.0, -4.0))[None]
    profile = RadialProfile().fit_transform(ring)[0]
    assert int(profile.argmax()) == 5
    row, col, _, _ = RadialProfile().fit(ring).measure_ellipse(ring)[0]
    np.testing.assert_allclose([row, col], [36.5, 27.5], atol=0.05)


def test_radial_profile_normalize_removes_brightness():
    images = np.stack([_disk(12.0), 40.0 * _disk(12.0)])
    normalised = RadialProfile().fit_transform(images)
    np.testing.assert_allclose(normalised[0], normalised[1], rtol=1e-5)
    raw = RadialProfile(normalize=False).fit_transform(images)
    np.testing.assert_allclose(raw[1], 40.0 * raw[0], rtol=1e-5)
    np.testing.assert_allclose(raw[0, 0], 1.0, atol=1e-3)  # mean intensity inside the disk


def test_radial_profile_channels_are_concatenated_channel_major():
    images = np.stack([_ring(13.0), _disk(20.0)])[None]  # one image, two bands
    estimator = RadialProfile(n_bins=8, max_radius=24.0).fit(images)
    profile = estimator.transform(images)[0]
    assert profile.shape == (16,)
    np.testing.assert_allclose(estimator.bin_edges_, np.arange(0, 25, 3.0))
    assert int(profile[:8].argmax()) == 4  # ring band: 13 px in [12, 15)
    assert np.all(profile[8:14] > 0.1)  # disk band: flat out to 20 px
    names = estimator.get_feature_names_out()
    assert list(names[[0, 7, 8, 15]]) == [
        "radial_ch0_bin0",
        "radial_ch0_bin7",
        "radial_ch1_bin0",
        "radial_ch1_bin7",
    ]


def test_ellipse_ignores_zero_filled_corners_of_a_rotated_cutout():
    # a rotated cutout has constant (zero) corners: they are not sky, and must not make the
    # noise look smaller than it is (which lets noise into the moments and rounds the ellipse)
    from scipy.ndimage import rotate

    rng = np.random.default_rng(0)
    disk = _disk(12.0, ratio=0.5, angle=20.0) + rng.normal(0, 0.02, (SIZE, SIZE))
    zero_corners = rotate(disk, 37.0, reshape=False, order=1, mode="constant", cval=0.0)
    reflected = rotate(disk, 37.0, reshape=False, order=1, mode="reflect")
    assert (zero_corners[0] == 0).mean() > 0.25
    radial = RadialProfile().fit(disk[None])
    ratio, reference = radial.measure_ellipse(np.stack([zero_corners, reflected]))[:, 2]
    # with the corners taken as sky the ratio was 0.72
    assert abs(ratio - reference) < 0.01
    assert abs(ratio - 0.5) < 0.03


def test_radial_profile_fills_empty_annuli_on_tiny_images():
    images = np.random.default_rng(0).random((5, 3, 3))
    profile = RadialProfile(n_bins=16).fit_transform(images)
    assert profile.shape == (5, 16)
    assert np.isfinite(profile).all()


def test_pipeline_separates_rings_from_filled_disks():
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(40):
        draw = _ring if i % 2 else _disk
        kwargs = {
            "ratio": rng.uniform(0.5, 1.0),
            "angle": rng.uniform(-90, 90),
            "centre": tuple(rng.uniform(-3, 3, size=2)),
        }
        # Similar sizes: rings of very different radii peak in different bins, and k-means
        # would then split the rings by radius before splitting rings from disks.
        radius = rng.uniform(12.2, 13.8)
        images.append(draw(radius, **kwargs) + rng.normal(0, 0.1, (SIZE, SIZE)))
        labels.append(i % 2)
    pipeline = Pipeline([("radial", RadialProfile()), ("km", KMeans(2, n_init=10, random_state=0))])
    predicted = pipeline.fit_predict(np.stack(images))
    assert adjusted_rand_score(labels, predicted) == 1.0


# ----------------------------------------------------------------------------- AxisymmetricResidual
def _smooth_disk(ratio=1.0, angle=0.0, centre=(0.0, 0.0)):
    """An exponential disk with a broad ring: axisymmetric, seen at axis ratio ``ratio``."""
    radius = _elliptical_radius(ratio=ratio, angle=angle, centre=centre)
    return np.exp(-radius / 6.0) + 0.5 * np.exp(-((radius - 14.0) ** 2) / (2 * 2.0**2))


@pytest.mark.parametrize(
    ("ratio", "angle", "centre"),
    [(1.0, 0.0, (0.0, 0.0)), (0.6, 30.0, (0.0, 0.0)), (0.5, -70.0, (3.0, -2.0))],
)
def test_axisymmetric_residual_cancels_inclined_smooth_disks(ratio, angle, centre):
    disk = _smooth_disk(ratio, angle, centre)
    residual = AxisymmetricResidual().fit_transform(disk[None])[0]
    assert np.abs(residual).max() < 0.05 * disk.max()
    # the circular model cannot follow an inclined disk
    if ratio < 1:
        circular = AxisymmetricResidual(elliptical=False).fit_transform(disk[None])[0]
        assert np.abs(circular).max() > 4 * np.abs(residual).max()


def test_axisymmetric_residual_keeps_point_sources_and_spiral_arms():
    disk = _smooth_disk(0.7, 20.0)
    planet = _gaussian(1.0, centre=(4.5, -11.5))  # on the centre of pixel (36, 20)
    residual = AxisymmetricResidual().fit_transform((disk + 0.3 * planet)[None])[0]
    assert np.unravel_index(residual.argmax(), residual.shape) == (36, 20)
    np.testing.assert_allclose(residual.max(), 0.3, atol=0.06)

    # a three-armed pattern: its azimuthal mean is the disk's, so the residual is the pattern
    # (a two-armed one would also stretch the moment ellipse, which takes part of it in)
    d_row, d_col = _offsets()
    arms = 0.2 * np.exp(-np.hypot(d_row, d_col) / 10.0) * np.cos(3 * np.arctan2(d_row, d_col))
    residual = AxisymmetricResidual().fit_transform((_smooth_disk() + arms)[None])[0]
    assert np.corrcoef(residual.ravel(), arms.ravel())[0, 1] > 0.95


def test_axisymmetric_residual_is_equivariant_and_zero_on_flat_images():
    rng = np.random.default_rng(0)
    images = np.stack([_smooth_disk(0.6, 25.0) + 0.05 * rng.normal(size=(SIZE, SIZE))] * 2)
    images[1] += 0.3 * _gaussian(1.5, centre=(-8.0, 6.0))
    residual = AxisymmetricResidual()
    out = residual.fit_transform(images)
    np.testing.assert_allclose(
        residual.transform(np.rot90(images, axes=(1, 2))), np.rot90(out, axes=(1, 2)), atol=1e-5
    )
    np.testing.assert_allclose(residual.transform(images[:, :, ::-1]), out[:, :, ::-1], atol=1e-5)
    # each image is modelled on its own: the batch does not matter
    np.testing.assert_allclose(residual.transform(images[1:]), out[1:], atol=1e-6)
    flat = AxisymmetricResidual().fit_transform(np.full((2, SIZE, SIZE), 3.0))
    np.testing.assert_allclose(flat, 0.0, atol=1e-6)


def test_axisymmetric_residual_finds_planets_that_radial_profiles_miss():
    # smooth disks and disks with a point source, at random inclinations and orientations:
    # the residual's power separates them; the radial profile barely changes
    rng = np.random.default_rng(1)
    images, labels = [], []
    for i in range(40):
        image = _smooth_disk(rng.uniform(0.5, 1.0), rng.uniform(-90, 90))
        if i % 2:
            angle = rng.uniform(-np.pi, np.pi)
            image = image + 0.2 * _gaussian(1.5, centre=(9 * np.sin(angle), 9 * np.cos(angle)))
        images.append(image + 0.01 * rng.normal(size=(SIZE, SIZE)))
        labels.append(i % 2)
    power = FunctionTransformer(lambda r: (r.reshape(len(r), -1) ** 2).mean(axis=1)[:, None])
    pipeline = Pipeline(
        [
            ("residual", AxisymmetricResidual()),
            ("power", power),
            ("km", KMeans(2, n_init=10, random_state=0)),
        ]
    )
    assert adjusted_rand_score(labels, pipeline.fit_predict(np.stack(images))) == 1.0


# ----------------------------------------------------------------------------- SoftThreshold
def test_soft_threshold_known_answer():
    # 31 pixels at +1, 31 at -1 and two at +-10: sky (median) 0, MAD 1, noise 1.4826
    values = np.array([1.0] * 31 + [-1.0] * 31 + [10.0, -10.0])
    image = np.random.default_rng(0).permutation(values).reshape(1, 8, 8) + 5.0  # sky 5
    out = SoftThreshold(n_sigma=1.0).fit_transform(image)[0]
    expected = np.where(np.abs(values) > 5, np.sign(values) * (10.0 - 1.4826), 0.0)
    np.testing.assert_allclose(np.sort(out.ravel()), np.sort(expected), rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(out) == 2
    # n_sigma=0 only subtracts the sky
    np.testing.assert_allclose(SoftThreshold(0.0).fit_transform(image), image - 5.0, atol=1e-5)


def test_soft_threshold_keeps_sources_and_removes_noise_per_image_and_band():
    rng = np.random.default_rng(2)
    noise_levels = (0.01, 1.0)  # very different noise in the two bands
    images = np.stack(
        [
            np.stack(
                [
                    level * (rng.normal(size=(SIZE, SIZE)) + 8 * _gaussian(1.5))
                    for level in noise_levels
                ]
            )
            for _ in range(3)
        ]
    )
    out = SoftThreshold(n_sigma=4.0).fit_transform(images)
    assert out.shape == images.shape
    far = np.hypot(*_offsets()) > 8  # pixels well away from the source
    for band, level in enumerate(noise_levels):
        # the source's centre survives in every image, almost all noise pixels do not
        assert np.all(out[:, band, 32, 32] > 2 * level)
        assert np.mean(out[:, band][:, far] != 0) < 1e-3
    # equivariant under rotations and flips, and each image is thresholded on its own
    threshold = SoftThreshold(n_sigma=4.0).fit(images)
    np.testing.assert_allclose(
        threshold.transform(np.rot90(images, axes=(2, 3))), np.rot90(out, axes=(2, 3)), atol=1e-6
    )
    np.testing.assert_allclose(threshold.transform(images[:, :, ::-1]), out[:, :, ::-1])
    np.testing.assert_allclose(threshold.transform(images[1:]), out[1:])


# ----------------------------------------------------------------------------- DoG
def test_dog_of_flat_image_is_zero():
    out = DifferenceOfGaussians().fit_transform(np.full((2, SIZE, SIZE), 7.0))
    np.testing.assert_allclose(out, 0.0, atol=1e-5)


def test_dog_responds_most_to_blobs_of_matching_scale():
    sigmas = [0.7, 1.0, 1.3, np.sqrt(3.0), 2.3, 3.0, 5.0]
    blobs = np.stack([_gaussian(s, centre=(0.5, 0.5)) for s in sigmas])  # centred on a pixel
    out = DifferenceOfGaussians(1.0, 3.0).fit_transform(blobs)
    centre_response = out[:, 32, 32]
    # for unit-peak blobs the centre response peaks at sqrt(sigma_low * sigma_high)
    assert int(centre_response.argmax()) == 3
    assert np.unravel_index(out[3].argmax(), out[3].shape) == (32, 32)


# ----------------------------------------------------------------------------- Laplacian
@pytest.mark.parametrize("sigma", [None, 1.5])
def test_fourier_laplacian_of_constant_and_ramp(sigma):
    d_row, d_col = _offsets()
    images = np.stack([np.full((SIZE, SIZE), 3.0), 0.3 * d_col - 0.2 * d_row + 5.0])
    out = FourierLaplacian(sigma=sigma).fit_transform(images)
    np.testing.assert_allclose(out[0], 0.0, atol=1e-5)
    # the mirror extension keeps the ramp continuous; only its kinks at the border respond
    np.testing.assert_allclose(out[1, 12:-12, 12:-12], 0.0, atol=1e-3)


def test_fourier_laplacian_of_gaussian_matches_analytic_log():
    s = 3.0
    image = _gaussian(s)[None]
    d_row, d_col = _offsets()
    r2 = d_row**2 + d_col**2
    analytic = np.exp(-r2 / (2 * s**2)) * (r2 - 2 * s**2) / s**4
    np.testing.assert_allclose(FourierLaplacian().fit_transform(image)[0], analytic, atol=1e-5)
    # with a low-pass of width sigma, it is the Laplacian of the blob smoothed to sqrt(s^2+sigma^2)
    sigma = 2.0
    wide = np.hypot(s, sigma)
    smoothed = (s / wide) ** 2 * np.exp(-r2 / (2 * wide**2))
    analytic_log = smoothed * (r2 - 2 * wide**2) / wide**4
    out = FourierLaplacian(sigma=sigma).fit_transform(image)[0]
    np.testing.assert_allclose(out, analytic_log, atol=1e-5)
    assert np.corrcoef(out.ravel(), analytic_log.ravel())[0, 1] > 0.9999


# ----------------------------------------------------------------------------- layouts, dtypes
@pytest.mark.parametrize(
    "filter_",
    [
        DifferenceOfGaussians(),
        FourierLaplacian(sigma=1.0),
        AxisymmetricResidual(),
        SoftThreshold(0.5),
    ],
)
def test_image_filters_round_trip_layouts(filter_):
    rng = np.random.default_rng(0)
    images = rng.random((3, 16, 24))  # (n, H, W), not square
    out = filter_.fit_transform(images)
    assert out.shape == images.shape and out.dtype == np.float32
    out4 = filter_.fit_transform(images[:, None])
    assert out4.shape == (3, 1, 16, 24)
    np.testing.assert_array_equal(out4[:, 0], out)
    flat = filter_.set_params(image_shape=(1, 16, 24)).fit_transform(images.reshape(3, -1))
    assert flat.shape == (3, 16 * 24)
    np.testing.assert_array_equal(flat.reshape(images.shape), out)
    # several bands are filtered independently
    bands = np.stack([images, 2 * images], axis=1)
    out_bands = filter_.set_params(image_shape=None).fit_transform(bands)
    assert out_bands.shape == (3, 2, 16, 24)
    np.testing.assert_allclose(out_bands[:, 1], 2 * out, rtol=1e-5, atol=1e-6)
    names = filter_.get_feature_names_out()
    assert len(names) == 2 * 16 * 24 and names[0].endswith("_x0")


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
