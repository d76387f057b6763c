"""weighted_sum: the total an estimator minimises, and each term kept for the history."""

import pytest
import torch

from skastro.losses import weighted_sum


def test_total_is_the_weighted_sum_in_order_and_terms_are_unweighted():
    terms = {"mse": torch.tensor(2.0), "ssim": torch.tensor(0.5), "tv": torch.tensor(4.0)}
    out = weighted_sum(terms, {"mse": 3.0, "tv": 0.25})
    assert list(out) == ["loss", "loss_mse", "loss_ssim", "loss_tv"]
    assert float(out["loss"]) == 3.0 * 2.0 + 0.5 + 0.25 * 4.0  # missing weight: 1
    assert float(out["loss_tv"]) == 4.0


def test_gradients_flow_through_the_total():
    x = torch.tensor(3.0, requires_grad=True)
    weighted_sum({"a": x * x}, {"a": 0.5})["loss"].backward()
    assert float(x.grad) == 3.0


def test_no_terms_needs_an_explicit_empty_total():
    with pytest.raises(ValueError, match="empty="):
        weighted_sum({}, {})
    zero = torch.ones(3, requires_grad=True).sum() * 0.0
    assert weighted_sum({}, {"mse": 0.0}, empty=zero) == {"loss": zero}
