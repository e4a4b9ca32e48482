"""Fisher information: autograd against closed forms, and rank drops where theory says.

Monte Carlo tolerances: the autograd Fisher is a sample mean of s_i s_iᵀ, so each entry has
standard error SE = std(s_i s_iᵀ)/√n, computed from the same samples; we allow 5 SE (a false
failure has probability < 1e-5 per entry under a normal approximation). Closed forms use the
trapezoid rule over x ~ N(0,1), accurate to ~1e-15, so they are compared at 1e-10.
"""

import pytest
import torch

from slt_course_utils import fisher as fi
from slt_course_utils import models as m

F64 = torch.float64
N = 100_000


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_within_mc_error(log_lik, w, data, exact, k: float = 5.0):
    s = fi.scores(log_lik, w, *data)
    outer = s[:, :, None] * s[:, None, :]
    est, se = outer.mean(0), outer.std(0) / outer.shape[0] ** 0.5
    torch.testing.assert_close(est, fi.fisher_information(log_lik, w, *data), rtol=1e-12, atol=1e-14)
    bad = (est - exact).abs() > k * se + 1e-12
    assert not bad.any(), f"autograd Fisher {est} vs exact {exact}, 5·SE = {k * se}"


def regression_log_lik(model):
    return lambda w, x, y: -model.nll(w, x, y)


def test_line_model_fisher_is_identity():
    w = torch.tensor([0.3, -1.2], dtype=F64)
    exact = fi.fisher_gaussian_regression(m.LINE, w)
    torch.testing.assert_close(exact, torch.eye(2, dtype=F64), rtol=0, atol=1e-12)
    x, y = m.LINE.sample(w, N, generator=gen(0))
    assert_within_mc_error(regression_log_lik(m.LINE), w, (x, y), exact)
    # the expected-Hessian form: −∇² log p = ψψᵀ with ψ = (1, x), so it is exactly the mean of ψψᵀ
    hess = fi.fisher_information(regression_log_lik(m.LINE), w, x, y, method="hessian")
    psi = torch.stack([torch.ones_like(x), x], -1)
    torch.testing.assert_close(hess, psi.T @ psi / N, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("a, b", [(1.0, 2.0), (-0.7, 0.5), (2.0, -1.5), (0.0, 1.5), (1.5, 0.0), (0.0, 0.0)])
def test_tanh_fisher_autograd_vs_closed_form_and_rank(a, b):
    w = torch.tensor([a, b], dtype=F64)
    closed = fi.fisher_tanh(a, b)
    # hand-derived entries vs autograd of the mean function under the same quadrature
    torch.testing.assert_close(fi.fisher_gaussian_regression(m.TANH, w), closed, rtol=1e-10, atol=1e-14)
    x, y = m.TANH.sample(w, N, generator=gen(1))
    assert_within_mc_error(regression_log_lik(m.TANH), w, (x, y), closed)
    # ∂f/∂a = tanh(bx), ∂f/∂b = a·x·sech²(bx): rank 2 iff a·b ≠ 0; rank 1 if exactly one is 0; 0 at (0,0)
    want = 2 if a * b != 0 else (0 if a == b == 0 else 1)
    assert fi.fisher_rank(closed) == want
    assert fi.fisher_rank(fi.fisher_information(regression_log_lik(m.TANH), w, x, y)) == want


@pytest.mark.parametrize("a, b, rank", [(1.0, 2.0, 1), (1.3, 0.0, 1), (0.0, -0.8, 1), (0.0, 0.0, 0)])
def test_product_model_rank(a, b, rank):
    # ∇f = (b·x, a·x) is always a multiple of x: rank ≤ 1 everywhere, 0 at the origin
    w = torch.tensor([a, b], dtype=F64)
    info = fi.fisher_gaussian_regression(m.PRODUCT, w)
    torch.testing.assert_close(info, torch.tensor([[b * b, a * b], [a * b, a * a]], dtype=F64), rtol=1e-12, atol=1e-14)
    assert fi.fisher_rank(info) == rank
    x, y = m.PRODUCT.sample(w, 2000, generator=gen(2))
    assert fi.fisher_rank(fi.fisher_information(regression_log_lik(m.PRODUCT), w, x, y)) == rank


@pytest.mark.parametrize("w", [[1.0, -0.5, 2.0], [0.0, 0.0, 0.0], [0.3, 0.0, 0.0]])
def test_logistic_fisher(w):
    model = m.LogisticRegression(3)
    w = torch.tensor(w, dtype=F64)
    exact = fi.fisher_logistic(w)
    x, y = model.sample(w, N, generator=gen(3))
    log_lik = lambda v, x, y: -model.nll(v, x, y)  # noqa: E731
    assert_within_mc_error(log_lik, w, (x, y), exact)
    # the Hessian form does not involve y: −∇² log p = σ'(w·x) x xᵀ exactly
    p = torch.sigmoid(x @ w)
    torch.testing.assert_close(
        fi.fisher_information(log_lik, w, x, y, method="hessian"), (x * (p * (1 - p))[:, None]).T @ x / N, rtol=1e-10, atol=1e-12
    )
    if (w == 0).all():
        torch.testing.assert_close(exact, torch.eye(3, dtype=F64) / 4)
    assert fi.fisher_rank(exact) == 3  # logistic regression is regular


def test_tanh_network_with_dead_unit_has_zero_eigenvalues():
    net = m.tanh_network(3)  # w = (a1..a3, b1..b3, c1..c3)
    log_lik = regression_log_lik(net)
    generic = torch.tensor([1.0, -2.0, 0.5, 0.2, -0.3, 1.5, 1.0, 0.8, -1.2], dtype=F64)
    x, y = net.sample(generic, 5000, generator=gen(4))
    # full rank but "sloppy": eigenvalues spread over ~6 decades, so a relative tol of 1e-10
    assert fi.fisher_rank(fi.fisher_information(log_lik, generic, x, y), tol=1e-10) == 9
    # unit 3 dead (c3 = 0): ∂f/∂a3 = c3·x·sech² = 0 and ∂f/∂b3 = 0, so two zero eigenvalues
    dead = generic.clone()
    dead[8] = 0.0
    x, y = net.sample(dead, 5000, generator=gen(5))
    info = fi.fisher_information(log_lik, dead, x, y)
    eig = fi.fisher_eigenvalues(info)
    assert (eig[:2].abs() < 1e-12).all() and eig[2] > 1e-6
    assert fi.fisher_rank(info, tol=1e-10) == 7
    torch.testing.assert_close(fi.fisher_gaussian_regression(net, dead)[[2, 5]], torch.zeros(2, 9, dtype=F64))
    # two identical units (a1, b1) = (a2, b2): ∂f/∂c1 = ∂f/∂c2, ∂f/∂a1 ∝ ∂f/∂a2, ∂f/∂b1 ∝ ∂f/∂b2: 3 zeros
    twin = generic.clone()
    twin[1], twin[4] = twin[0], twin[3]
    assert fi.fisher_rank(fi.fisher_gaussian_regression(net, twin), tol=1e-10) == 6


def test_fisher_bad_input():
    with pytest.raises(ValueError, match="square"):
        fi.fisher_eigenvalues(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="tol"):
        fi.fisher_rank(torch.eye(2), tol=0.0)
    with pytest.raises(ValueError, match="method"):
        fi.fisher_information(lambda w, x: -x * w[0], torch.zeros(1), torch.ones(3), method="nope")
    with pytest.raises(ValueError, match=r"shape \(d,\)"):
        fi.scores(lambda w, x: x, torch.zeros(2, 2), torch.ones(3))
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        fi.scores(lambda w, x: x.sum(), torch.zeros(2), torch.ones(3))
    with pytest.raises(ValueError, match="sigma"):
        fi.fisher_tanh(1.0, 1.0, sigma=float("nan"))
    assert fi.fisher_rank(torch.zeros(3, 3)) == 0


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_fisher_scales_as_one_over_sigma_squared(sigma):
    """I(w) = E[∇f ∇fᵀ]/σ²: with σ ≠ 1 the closed forms must divide by σ², not σ (a σ = 1 test cannot tell)."""
    line = m.GaussianRegression("line", m.LINE.mean_fn, d=2, sigma=sigma)
    w = torch.tensor([0.3, -1.2], dtype=F64)
    torch.testing.assert_close(fi.fisher_gaussian_regression(line, w), torch.eye(2, dtype=F64) / sigma**2,
                               rtol=0, atol=1e-12)
    x, y = line.sample(w, N, generator=gen(3))
    assert_within_mc_error(regression_log_lik(line), w, (x, y), torch.eye(2, dtype=F64) / sigma**2)
    torch.testing.assert_close(fi.fisher_tanh(1.0, 2.0, sigma), fi.fisher_tanh(1.0, 2.0) / sigma**2, rtol=1e-14, atol=0)
