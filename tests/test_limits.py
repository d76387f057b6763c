"""Size limits and parameter checks that fail fast, before anything large is allocated."""

import math
import time

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skastro import ConvAutoencoder, ImageScaler
from skastro._constraints import NumberInterval, refuse_bools
from skastro._limits import (
    MAX_IMAGE_VALUES,
    MAX_LEVELS,
    MAX_PARAMETERS,
    check_image_shape,
    check_network_size,
    count_parameters,
)
from skastro._registry import TINY_SETTINGS, estimator_classes


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((16, 1, 16, 16), dtype=np.float32)


def test_count_parameters_builds_nothing_and_is_exact():
    model = ConvAutoencoder(n_components=3, widths=(4, 8))
    module = model._build_module((1, 16, 16))
    expected = sum(p.numel() for p in module.parameters()) + sum(
        b.numel() for b in module.buffers()
    )
    assert count_parameters(model, (1, 16, 16)) == expected
    # half a trillion weights are counted in milliseconds: nothing is allocated
    started = time.perf_counter()
    assert count_parameters(ConvAutoencoder(n_components=10**9), (1, 16, 16)) > 5 * 10**11
    assert time.perf_counter() - started < 5


def test_huge_n_components_fails_fast_with_the_size_it_needs(images):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"would have [\d,]+ weights \(.* GiB as float32\)"):
        ConvAutoencoder(n_components=10**7, max_epochs=1).fit(images)
    assert time.perf_counter() - started < 10
    model = ConvAutoencoder(n_components=10**7, max_epochs=1)
    with pytest.raises(ValueError, match="lower n_components or the widths"):
        model.fit(images)
    assert not hasattr(model, "net_")  # a failed fit leaves the estimator unfitted


@pytest.mark.parametrize("widths", [(10**6,), (4,) * (MAX_LEVELS + 1)])
def test_huge_or_too_many_widths_fail_fast(images, widths):
    with pytest.raises(ValueError, match="widths"):
        ConvAutoencoder(widths=widths, max_epochs=1).fit(images)


def test_equivariant_network_is_estimated_without_building_it(images):
    if "EquivariantAutoencoder" not in estimator_classes():
        pytest.skip("escnn is not installed")
    from skastro import EquivariantAutoencoder

    model = EquivariantAutoencoder(widths=(10**6,), max_epochs=1)
    assert count_parameters(model, (1, 16, 16)) is None  # escnn cannot build on 'meta'
    started = time.perf_counter()
    with pytest.raises(ValueError, match="GiB"):
        check_network_size(model, (1, 16, 16), batch_size=32)
    assert time.perf_counter() - started < 5


def test_image_shape_limits():
    assert check_image_shape((3, 64, 64)) == (3, 64, 64)
    for bad in [(0, 8, 8), (1, -8, 8), (1, 8), "abc", (True, 8, 8), (1.5, 8, 8)]:
        with pytest.raises(ValueError, match=r"three positive ints|must be"):
            check_image_shape(bad)
    with pytest.raises(ValueError, match="MAX_IMAGE_VALUES"):
        check_image_shape((1, MAX_IMAGE_VALUES, 2))
    assert math.prod((1, 46340, 46340)) <= MAX_IMAGE_VALUES


def test_network_size_limit_is_documented_in_the_message():
    with pytest.raises(ValueError, match=f"{MAX_PARAMETERS:,}"):
        check_network_size(ConvAutoencoder(n_components=10**8), (1, 16, 16))


def test_image_shape_that_contradicts_the_images_is_an_error(images):
    with pytest.raises(ValueError, match=r"image_shape=\(3, 8, 8\).*shape \(1, 16, 16\)"):
        ConvAutoencoder(image_shape=(3, 8, 8), max_epochs=1).fit(images)
    # a matching one (with -1) is fine, and so is any for flat rows
    ConvAutoencoder(n_components=2, widths=(4,), image_shape=(1, -1, 16), max_epochs=1).fit(images)
    flat = images.reshape(len(images), -1)
    ConvAutoencoder(n_components=2, widths=(4,), image_shape=(1, 16, 16), max_epochs=1).fit(flat)


def test_device_meta_is_refused(images):
    with pytest.raises(ValueError, match="'meta' cannot run a network"):
        ConvAutoencoder(device="meta", max_epochs=1).fit(images)


def _all_estimators():
    """Every public estimator with at least one numeric parameter, and that parameter."""
    found = []
    for name, cls in sorted(estimator_classes().items()):
        for param, options in cls._parameter_constraints.items():
            if isinstance(options, list) and any(isinstance(c, NumberInterval) for c in options):
                found.append(pytest.param(cls, param, id=f"{name}.{param}"))
                break
    return found


@pytest.mark.parametrize(("cls", "param"), _all_estimators())
def test_every_estimator_refuses_bools_for_numbers(cls, param):
    required = (
        {"estimator": ConvAutoencoder()}
        if "estimator" in cls.__init__.__code__.co_varnames[:2]
        else {}
    )
    estimator = cls(**required, **{param: True})
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter.*Got True"):
        estimator._validate_params()


def test_batch_size_true_is_not_a_batch_of_one(images):
    with pytest.raises(InvalidParameterError, match=r"int in the range \[1, inf\) \(not a bool\)"):
        ConvAutoencoder(batch_size=True, max_epochs=1).fit(images)
    with pytest.raises(InvalidParameterError, match="random_state"):
        ConvAutoencoder(random_state=True, max_epochs=1).fit(images)


def test_every_deep_estimator_has_bool_refusing_constraints():
    for name in TINY_SETTINGS:
        cls = estimator_classes().get(name)
        if cls is None or not hasattr(cls, "_build_module"):
            continue
        batch = cls._parameter_constraints["batch_size"][0]
        assert isinstance(batch, NumberInterval), name
        assert not batch.is_satisfied_by(True) and batch.is_satisfied_by(64)


def test_refuse_bools_keeps_other_constraints():
    constraints = refuse_bools({"a": ["boolean"], "b": "no_validation", "c": [str, None]})
    assert constraints == {"a": ["boolean"], "b": "no_validation", "c": [str, None]}


def test_image_scaler_near_the_float32_limit_gives_finite_values():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3.4e38, 3.4e38, (6, 1, 8, 8)).astype(np.float32)
    for params in ({}, {"per_image": False}, {"percentile": None}):
        scaler = ImageScaler(**params).fit(X)
        Xt = scaler.transform(X)
        assert Xt.dtype == np.float32 and np.isfinite(Xt).all()
        assert Xt.min() >= 0 and Xt.max() <= 1
        back = scaler.inverse_transform(Xt, limits=scaler.image_limits(X))
        assert np.isfinite(back).all()
    # all values 3e38: finite input, finite output, no "contains infinity"
    assert np.isfinite(ImageScaler().fit_transform(np.full((4, 1, 8, 8), 3e38, "f4"))).all()


def test_transform_refuses_images_far_outside_the_training_scale(images):
    model = ConvAutoencoder(n_components=2, widths=(4,), max_epochs=1).fit(images)
    with pytest.raises(ValueError, match="standard deviations from the mean"):
        model.transform(np.full((2, 1, 16, 16), 3e38, np.float32))
    assert np.isfinite(model.transform(images * 1000)).all()
