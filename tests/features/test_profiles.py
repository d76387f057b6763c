"""RadialProfile and its moment ellipse: known answers on hand-made rings and disks."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skastro.features import (
    AxisymmetricResidual,
    RadialProfile,
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
