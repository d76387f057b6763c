"""NT-Xent against a brute-force reference, its minimum and its errors."""

import math

import pytest
import torch

from skastro.losses import (
    nt_xent_loss,
)

GAIN, SIGMA = 50.0, 0.03


def _nt_xent_brute_force(z1, z2, t):
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        positive = (i + b) % n
        denominator = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total -= math.log(math.exp(float(z[i] @ z[positive]) / t) / denominator)
    return total / n


def test_nt_xent_matches_brute_force_reference():
    rng = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=rng), torch.randn(6, 5, generator=rng)
    for t in (0.1, 0.5, 2.0):
        assert float(nt_xent_loss(z1, z2, t)) == pytest.approx(_nt_xent_brute_force(z1, z2, t))
    # symmetric in the two views
    assert float(nt_xent_loss(z1, z2)) == pytest.approx(float(nt_xent_loss(z2, z1)))


def test_identical_views_give_the_minimum_for_their_batch():
    b, t = 4, 0.5
    z = torch.eye(b)  # identical views, negatives orthogonal
    minimum = math.log(1 + (2 * b - 2) * math.exp(-1 / t))
    assert float(nt_xent_loss(z, z, t)) == pytest.approx(minimum)
    assert _nt_xent_brute_force(z, z, t) == pytest.approx(minimum)
    rng = torch.Generator().manual_seed(1)
    for _ in range(20):  # moving the second views away from the first only costs
        perturbed = z + 0.3 * torch.randn(z.shape, generator=rng)
        assert float(nt_xent_loss(z, perturbed, t)) > minimum


def test_nt_xent_errors_and_single_pair():
    with pytest.raises(ValueError, match=r"shape \(b, d\)"):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(3, 2), temperature=0.0)
    z = torch.ones(1, 3, requires_grad=True)
    loss = nt_xent_loss(z, z)
    loss.backward()  # no negatives: a constant, but still part of the graph
    assert float(loss.detach()) == 0.0
