"""The VICReg terms and RankMe against a reference implementation, invariants and errors."""

import numpy as np
import pytest
import torch

from skastro.losses import (
    VICRegLoss,
    covariance_loss,
    invariance_loss,
    rankme,
    variance_loss,
)


# ---------------------------------------------------------------------- loss terms
def reference_vicreg(x, y, sim=25.0, var=25.0, cov=1.0):
    """The authors' reference implementation (facebookresearch/vicreg, main_vicreg.py)."""
    repr_loss = torch.nn.functional.mse_loss(x, y)
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 0.0001), torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(torch.relu(1 - std_x)) / 2 + torch.mean(torch.relu(1 - std_y)) / 2
    n, d = x.shape
    cov_x, cov_y = (x.T @ x) / (n - 1), (y.T @ y) / (n - 1)
    off = ~torch.eye(d, dtype=bool)
    cov_loss = cov_x[off].pow(2).sum() / d + cov_y[off].pow(2).sum() / d
    return sim * repr_loss + var * std_loss + cov * cov_loss


def test_identical_branches_have_zero_invariance():
    Z = torch.randn(8, 5)
    assert float(invariance_loss(Z, Z.clone())) == 0.0
    assert float(invariance_loss(torch.zeros(4, 3), torch.full((4, 3), 2.0))) == 4.0


def test_constant_embedding_gets_the_maximal_variance_penalty():
    eps = 1e-4
    assert float(variance_loss(torch.full((16, 8), 3.0), eps=eps)) == pytest.approx(1 - eps**0.5)
    # a standard deviation above 1 is not penalised; one of 0.5 costs 1 - sqrt(0.25 + eps)
    spread = torch.tensor([[-1.0], [1.0]]) * 2**-0.5  # unbiased std = 1
    assert float(variance_loss(2 * spread)) == 0.0
    assert float(variance_loss(0.5 * spread)) == pytest.approx(1 - (0.25 + eps) ** 0.5)


def test_variance_hinge_on_the_std_keeps_a_gradient_near_collapse():
    # near a collapsed embedding the gradient of the std hinge is large, while that of a
    # hinge on the variance would vanish: this is what prevents collapse
    Z = (1e-3 * torch.randn(32, 4)).requires_grad_()
    variance_loss(Z).backward()
    std_grad = Z.grad.norm()
    Z.grad = None
    torch.relu(1 - Z.var(dim=0)).mean().backward()
    assert std_grad > 10 * Z.grad.norm()


def test_decorrelated_features_have_zero_covariance():
    hadamard = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    assert float(covariance_loss(hadamard[:, 1:])) == pytest.approx(0.0, abs=1e-7)
    # two identical columns of variance 4/3: off-diagonal (4/3)^2 twice, divided by d = 2
    doubled = torch.stack([hadamard[:, 1], hadamard[:, 1]], 1)
    assert float(covariance_loss(doubled)) == pytest.approx(16 / 9)


def test_vicreg_loss_matches_the_reference_implementation_and_is_symmetric():
    torch.manual_seed(0)
    a, b = torch.randn(32, 10), torch.randn(32, 10) * 0.3
    terms = VICRegLoss()(a, b)
    assert float(terms["loss"]) == pytest.approx(float(reference_vicreg(a, b)), rel=1e-5)
    assert float(VICRegLoss()(b, a)["loss"]) == pytest.approx(float(terms["loss"]), rel=1e-6)
    weighted = VICRegLoss(sim_weight=2.0, var_weight=3.0, cov_weight=0.5)(a, b)
    assert float(weighted["loss"]) == pytest.approx(
        float(reference_vicreg(a, b, 2.0, 3.0, 0.5)), rel=1e-5
    )


def test_loss_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 2"):
        variance_loss(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="2-D"):
        covariance_loss(torch.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        invariance_loss(torch.zeros(4, 3), torch.zeros(4, 2))


def test_rankme_counts_effective_dimensions():
    assert float(rankme(torch.eye(5))) == pytest.approx(5.0, rel=1e-4)
    assert float(rankme(torch.ones(10, 4))) == pytest.approx(1.0, rel=1e-4)
    Z = torch.randn(50, 8)
    assert 1.0 < float(rankme(Z)) <= 8.0
    assert float(rankme(3 * Z)) == pytest.approx(float(rankme(Z)), rel=1e-4)


# ---------------------------------------------------------------------------- losses
def _reference_vicreg(Z, gamma=1.0, eps=1e-4):
    Z = np.asarray(Z, dtype=np.float64)
    std = np.sqrt(Z.var(axis=0, ddof=1) + eps)
    cov = np.cov(Z, rowvar=False)
    off = cov - np.diag(np.diag(cov))
    return np.maximum(0, gamma - std).mean(), (off**2).sum() / Z.shape[1]


def test_vicreg_terms_match_a_reference_implementation():
    Z = torch.randn(32, 5) * torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0])
    Z[:, 1] += Z[:, 0] * 3
    variance, covariance = _reference_vicreg(Z.numpy())
    assert float(variance_loss(Z)) == pytest.approx(variance, rel=1e-5)
    assert float(covariance_loss(Z)) == pytest.approx(covariance, rel=1e-5)


def test_vicreg_terms_invariants_and_errors():
    Z = torch.randn(16, 4)
    permuted = Z[:, torch.randperm(4)]
    assert float(covariance_loss(permuted)) == pytest.approx(float(covariance_loss(Z)), rel=1e-5)
    assert float(variance_loss(Z * 100)) == 0.0  # spread enough: no penalty
    with pytest.raises(ValueError, match="at least 2"):  # one sample: no spread to measure
        variance_loss(Z[:1])
    with pytest.raises(ValueError, match="batch, dim"):
        covariance_loss(torch.zeros(4))
