"""as_nchw / restore_layout: the one way images become (n, C, H, W) and back."""

import numpy as np
import pytest

from skastro._images import as_nchw, restore_layout


@pytest.mark.parametrize(
    ("shape", "image_shape", "expected"),
    [
        ((3, 2, 4, 5), None, (3, 2, 4, 5)),
        ((3, 4, 5), None, (3, 1, 4, 5)),
        ((3, 16), None, (3, 1, 4, 4)),
        ((3, 40), (2, 4, 5), (3, 2, 4, 5)),
        ((3, 20), (4, 5), (3, 1, 4, 5)),
    ],
)
def test_layouts_are_views_that_restore_exactly(shape, image_shape, expected):
    X = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    nchw = as_nchw(X, image_shape=image_shape)
    assert nchw.shape == expected
    assert np.shares_memory(nchw, X)
    np.testing.assert_array_equal(restore_layout(nchw, X.ndim), X)


def test_memmaps_are_not_read_whole(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 6, 6), dtype=np.float32))
    mapped = np.load(path, mmap_mode="r")
    assert np.shares_memory(as_nchw(mapped), mapped)


def test_errors_say_what_was_wrong():
    with pytest.raises(ValueError, match="not square: pass image_shape"):
        as_nchw(np.zeros((2, 15)))
    with pytest.raises(ValueError, match=r"\(2, 3, 5\) does not hold 20"):
        as_nchw(np.zeros((2, 20)), image_shape=(2, 3, 5))
    with pytest.raises(ValueError, match=r"3-D \(n, H, W\) or 4-D"):
        as_nchw(np.zeros((2, 16)), allow_flat=False)
    with pytest.raises(ValueError, match="numeric"):
        as_nchw(np.array([["a"]]), numeric=True)
    with pytest.raises(ValueError, match=r"got an array of shape \(1, 1, 1, 1, 1\)"):
        as_nchw(np.zeros((1, 1, 1, 1, 1)))
