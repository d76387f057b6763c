"""AxisymmetricResidual: smooth disks cancel, point sources and arms stay, equivariance."""

import numpy as np
import pytest

from skastro.features import (
    AxisymmetricResidual,
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


def _gaussian(sigma, centre=(0.0, 0.0), size=SIZE):
    d_row, d_col = _offsets(size, centre)
    return np.exp(-(d_row**2 + d_col**2) / (2 * sigma**2))


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
