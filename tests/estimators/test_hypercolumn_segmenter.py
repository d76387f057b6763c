"""HypercolumnSegmenter on images with a known mask."""

import numpy as np
import pytest

from skastro import HypercolumnSegmenter


def _blobs(n=24, size=24, seed=0):
    """Bright discs of random radius and position on faint noise; the true masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    X = rng.normal(0.0, 0.1, (n, 2, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        cy, cx = rng.uniform(7, size - 7, 2)
        radius = rng.uniform(3, 5)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        masks[i] = disc
        X[i, :, disc] += rng.uniform(1.5, 3.0)
    return X, masks


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


SMALL = dict(
    n_segments=2,
    layers=("input", "enc0", "enc1"),
    widths=(4, 8),
    n_components=4,
    n_pixels=3000,
    max_epochs=2,
    batch_size=8,
    random_state=0,
)


@pytest.fixture(scope="module")
def blobs():
    return _blobs()


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return HypercolumnSegmenter(**SMALL).fit(X)


def test_recovers_a_known_mask_with_background_as_zero(fitted, blobs):
    X, masks = blobs
    labels = fitted.predict(X)
    assert labels.shape == masks.shape and labels.dtype == np.int64
    assert _iou(labels != 0, masks) > 0.8
    # held-out images too
    X_new, masks_new = _blobs(8, seed=1)
    assert _iou(fitted.predict(X_new) != 0, masks_new) > 0.8


def test_segments_are_numbered_by_intensity(fitted):
    assert fitted.cluster_centers_.shape[0] == 2
    assert np.all(np.diff(fitted.segment_intensity_) > 0)


def test_border_rule_also_finds_the_background(blobs):
    X, masks = blobs
    seg = HypercolumnSegmenter(**SMALL, background="border").fit(X)
    assert _iou(seg.predict(X) != 0, masks) > 0.8


def test_more_segments_split_the_objects_not_the_background(blobs):
    X, masks = blobs
    labels = HypercolumnSegmenter(**{**SMALL, "n_segments": 3}).fit_predict(X)
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert np.mean(labels[~masks] == 0) > 0.9


def test_transform_and_reconstruct(fitted, blobs):
    X, _ = blobs
    assert fitted.transform(X).shape == (len(X), 4)
    assert fitted.reconstruct(X).shape == X.shape


def test_same_seed_same_segmentation(fitted, blobs):
    X, _ = blobs
    again = HypercolumnSegmenter(**SMALL).fit(X)
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))


def test_unknown_layer_is_a_clear_error(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="layers must name"):
        HypercolumnSegmenter(**{**SMALL, "layers": ("input", "enc7")}).fit(X)


def test_predict_refuses_layers_changed_after_fit(fitted, blobs):
    import copy

    X, _ = blobs
    changed = copy.deepcopy(fitted).set_params(layers=("input",))
    with pytest.raises(ValueError, match="segments were fitted on"):
        changed.predict(X[:2])  # the clusters live in the space of the fitted layers
    changed.set_params(layers=("input", "enc9"))
    with pytest.raises(ValueError, match=r"\['enc9'\] are not layers of this network"):
        changed.predict(X[:2])


def test_predict_checks_the_image_shape(fitted):
    with pytest.raises(ValueError, match="shape"):
        fitted.predict(np.zeros((2, 2, 20, 20), dtype=np.float32))


def test_fitted_state_round_trips(fitted, blobs):
    X, _ = blobs
    state = fitted._fitted_state()
    other = HypercolumnSegmenter(**SMALL)
    for name in ("net_", "module_", "image_shape_", "n_features_in_", "device_"):
        setattr(other, name, getattr(fitted, name))
    other.channel_mean_, other.channel_std_ = fitted.channel_mean_, fitted.channel_std_
    other._restore_fitted_state(state)
    np.testing.assert_array_equal(other.predict(X), fitted.predict(X))


def test_save_and_load_round_trip(fitted, blobs, tmp_path):
    from skastro import load

    X, _ = blobs
    fitted.save(tmp_path / "model")
    np.testing.assert_array_equal(load(tmp_path / "model").predict(X), fitted.predict(X))


def test_fewer_pixels_than_segments_is_a_clear_error(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_pixels=2 is below n_segments=3"):
        HypercolumnSegmenter(**{**SMALL, "n_segments": 3, "n_pixels": 2}).fit(X)
