"""Toy models: reproducible samplers, shapes, hand-computed NLLs, closed forms, clear errors."""

import math

import pytest
import torch

from slt_course_utils import models as m

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def normal_logpdf(x: float, mean: float = 0.0) -> float:
    return -0.5 * math.log(2 * math.pi) - 0.5 * (x - mean) ** 2


RRR = m.ReducedRankRegression(3, 2, 2)
LOGISTIC = m.LogisticRegression(3)
NET = m.tanh_network(2)

# (model, true parameter, expected data shapes for n = 7)
CASES = [
    (m.TANH, [1.0, 2.0], [(7,), (7,)]),
    (m.TRIPLE_PRODUCT, [1.0, 2.0, 0.5], [(7,), (7,)]),
    (m.SQUARE, [0.7], [(7,), (7,)]),
    (NET, [1.0, -1.0, 0.0, 0.5, 2.0, 1.0], [(7,), (7,)]),
    (RRR, RRR.true_parameter(1, gen(3)).tolist(), [(7, 3), (7, 2)]),
    (LOGISTIC, [1.0, 0.0, -2.0], [(7, 3), (7,)]),
    (m.MIXTURE_WEIGHT, [0.3, 2.0], [(7,)]),
    (m.MIXTURE_SYMMETRIC, [1.5], [(7,)]),
]


@pytest.mark.parametrize("model, w0, shapes", CASES, ids=lambda c: getattr(c, "name", None) or type(c).__name__)
def test_samplers_reproducible_and_shaped(model, w0, shapes):
    a, b = model.sample(w0, 7, generator=gen(1)), model.sample(w0, 7, generator=gen(1))
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    assert [tuple(t.shape) for t in a] == shapes
    assert all(t.dtype == F64 for t in a)
    assert all(torch.equal(s, t) for s, t in zip(a, b))
    c = model.sample(w0, 7, generator=gen(2))
    c = c if isinstance(c, tuple) else (c,)
    assert not torch.equal(a[-1], c[-1])
    # a whole grid of parameters in one call: loss has the grid's shape
    grid = torch.as_tensor(w0, dtype=F64).expand(4, 5, len(w0)) * 0.9
    assert model.empirical_loss(grid, *a).shape == (4, 5)
    assert model.nll(grid, *a).shape == (4, 5, 7)


def test_nll_hand_computed():
    x1, y1 = torch.tensor([1.0], dtype=F64), torch.tensor([0.5], dtype=F64)
    lp = lambda r: -normal_logpdf(r)  # noqa: E731
    assert m.TANH.nll(torch.tensor([2.0, 0.5], dtype=F64), x1, y1).item() == pytest.approx(lp(0.5 - 2 * math.tanh(0.5)), rel=1e-14)
    net1 = m.tanh_network(1)
    assert net1.nll(torch.tensor([1.0, 0.5, 2.0], dtype=F64), x1, y1).item() == pytest.approx(lp(0.5 - 2 * math.tanh(1.5)), rel=1e-14)
    net_nb = m.tanh_network(2, bias=False)  # w = (a1, a2, c1, c2)
    f = 3 * math.tanh(1.0) - math.tanh(-2.0)
    assert net_nb.nll(torch.tensor([1.0, -2.0, 3.0, -1.0], dtype=F64), x1, y1).item() == pytest.approx(lp(0.5 - f), rel=1e-14)
    assert m.TRIPLE_PRODUCT.nll(torch.tensor([1.0, 2.0, 3.0], dtype=F64), x1, y1).item() == pytest.approx(lp(0.5 - 6.0))
    assert m.SQUARE.nll(torch.tensor([3.0], dtype=F64), x1, y1).item() == pytest.approx(lp(0.5 - 9.0))
    rr = m.ReducedRankRegression(1, 1, 1, sigma=2.0)  # w = (a, b), y = b·a·x
    got = rr.nll(torch.tensor([2.0, 3.0], dtype=F64), x1[:, None], y1[:, None]).item()
    assert got == pytest.approx(0.5 * math.log(2 * math.pi * 4) + (0.5 - 6.0) ** 2 / 8, rel=1e-14)
    lr = m.LogisticRegression(2)
    got = lr.nll(torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([[1.0, 1.0]], dtype=F64), torch.tensor([1.0], dtype=F64))
    assert got.item() == pytest.approx(math.log1p(math.exp(-3.0)), rel=1e-14)
    got = lr.nll(torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([[1.0, 1.0]], dtype=F64), torch.tensor([0.0], dtype=F64))
    assert got.item() == pytest.approx(math.log1p(math.exp(3.0)), rel=1e-14)
    x0 = torch.tensor([0.5], dtype=F64)
    want = -math.log(0.7 * math.exp(normal_logpdf(0.5)) + 0.3 * math.exp(normal_logpdf(0.5, 2.0)))
    assert m.MIXTURE_WEIGHT.nll(torch.tensor([0.3, 2.0], dtype=F64), x0).item() == pytest.approx(want, rel=1e-14)
    want = -math.log(0.5 * math.exp(normal_logpdf(0.5, 1.2)) + 0.5 * math.exp(normal_logpdf(0.5, -1.2)))
    assert m.MIXTURE_SYMMETRIC.nll(torch.tensor([1.2], dtype=F64), x0).item() == pytest.approx(want, rel=1e-14)
    # the edges a = 0 and a = 1 of the mixture weight are fine (log 0 handled by logaddexp)
    assert torch.isfinite(m.MIXTURE_WEIGHT.nll(torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=F64), x0)).all()


def test_reduced_rank_structure():
    rr = m.ReducedRankRegression(4, 3, 3)
    assert rr.d == 21
    for r in range(4):
        w0 = rr.true_parameter(r, gen(r))
        assert torch.linalg.matrix_rank(rr.product(w0)).item() == r
    A, B = rr.unflatten(torch.arange(21, dtype=F64))
    assert A.shape == (3, 4) and B.shape == (3, 3)
    assert torch.equal(rr.flatten(A, B), torch.arange(21, dtype=F64))
    w0 = rr.true_parameter(2, gen(0))
    assert rr.kl(w0, w0).item() == 0.0


def test_linear_feature_statistics_match_data():
    for model, w0 in [(m.LINE_STATS, [0.3, -1.0]), (m.PRODUCT_STATS, [1.0, 0.5]), (m.TRIPLE_PRODUCT, [1.0, 0.5, 2.0]), (m.SQUARE, [0.8])]:
        x, y = model.sample(w0, 500, generator=gen(4))
        grid = torch.randn(6, 5, model.d, generator=gen(5), dtype=F64)
        stats = model.statistics(x, y)
        torch.testing.assert_close(model.loss_from_statistics(grid, stats), model.empirical_loss(grid, x, y), rtol=1e-12, atol=1e-12)
        # closed-form K agrees with the quadrature K
        torch.testing.assert_close(model.kl(grid, w0), m.gaussian_regression_kl(model, grid, w0), rtol=1e-10, atol=1e-12)
        # with statistics at their expectations, nL_n(w) − nL_n(w0) = nK(w) exactly
        pop = model.population_statistics(w0, 1000)
        diff = 1000 * (model.loss_from_statistics(grid, pop) - model.loss_from_statistics(torch.tensor(w0, dtype=F64), pop))
        torch.testing.assert_close(diff, 1000 * model.kl(grid, w0), rtol=1e-9, atol=1e-9)
    # LINE_STATS is the same model as LINE
    x, y = m.LINE.sample([1.0, 2.0], 50, generator=gen(6))
    w = torch.randn(3, 2, generator=gen(7), dtype=F64)
    torch.testing.assert_close(m.LINE_STATS.empirical_loss(w, x, y), m.LINE.empirical_loss(w, x, y))
    # closed forms at a glance: K = (ab − a0b0)²/2 for the product and |w − w0|²/2 for the line
    assert m.PRODUCT_STATS.kl(torch.tensor([2.0, 3.0], dtype=F64), [0.0, 0.0]).item() == pytest.approx(18.0)
    assert m.LINE_STATS.kl(torch.tensor([1.0, 1.0], dtype=F64), [0.0, 0.0]).item() == pytest.approx(1.0)


def test_population_loss_mc_agrees_with_closed_forms():
    n = 200_000
    w = torch.tensor([[0.5, 1.0], [1.0, 2.0], [0.0, 0.0]], dtype=F64)
    exact = m.gaussian_regression_population_loss(m.TANH, w, [1.0, 2.0])
    est = m.population_loss_mc(m.TANH, w, [1.0, 2.0], n=n, generator=gen(8))
    # per-sample NLL has standard deviation ≤ ~2 here, so 5 standard errors ≤ 0.025
    assert torch.allclose(est, exact, atol=5 * 2 / math.sqrt(n))
    rr = m.ReducedRankRegression(2, 2, 1)
    w0 = rr.true_parameter(1, gen(9))
    ws = torch.stack([w0 * 0.5, w0, torch.zeros_like(w0)])
    k = m.kl_mc(rr, ws, w0, n=n, generator=gen(10))
    assert torch.allclose(k, rr.kl(ws, w0), rtol=0.05, atol=1e-12)
    assert m.kl_mc(m.MIXTURE_SYMMETRIC, torch.tensor([0.0]), [0.0], n=1000, generator=gen(0)).item() == 0.0


def test_bad_input_raises_clear_errors():
    x, y = m.TANH.sample([1.0, 1.0], 5, generator=gen(0))
    with pytest.raises(ValueError, match="last dimension d = 2"):
        m.TANH.nll(torch.zeros(3), x, y)
    with pytest.raises(ValueError, match="positive integer"):
        m.TANH.sample([1.0, 1.0], 0)
    with pytest.raises(ValueError, match="equal length"):
        m.TANH.nll(torch.zeros(2), x, y[:3])
    with pytest.raises(ValueError, match="sigma"):
        m.tanh_network(2, sigma=float("nan"))
    with pytest.raises(ValueError, match="sigma"):
        m.ReducedRankRegression(2, 2, 1, sigma=float("inf"))
    with pytest.raises(ValueError, match="d = 6"):
        m.tanh_network(2).nll(torch.zeros(5), x, y)
    with pytest.raises(ValueError, match="rank"):
        RRR.true_parameter(3)
    with pytest.raises(ValueError, match="d = 10"):
        RRR.nll(torch.zeros(9), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="same"):
        RRR.nll(torch.zeros(10), torch.zeros(4, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="positive integer"):
        LOGISTIC.sample([0.0, 0.0, 0.0], -3)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        LOGISTIC.nll(torch.zeros(3), torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.MIXTURE_WEIGHT.sample([1.5, 0.0], 10)
    with pytest.raises(ValueError, match="1-D"):
        m.MIXTURE_SYMMETRIC.nll(torch.zeros(1), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="equal length"):
        m.LINE_STATS.statistics(x, y[:2])
    with pytest.raises(ValueError, match="step"):
        m.trapezoid_normal(step=-1.0)


# --- Closed forms against independent computations (σ ≠ 1 and s0 ≠ 1, so factors of σ and s0 show) ---

def test_gaussian_mean_loss_equals_the_mean_nll():
    x = m.sample_gaussian(50, 0.4, 1.5, generator=torch.Generator().manual_seed(0))
    w = torch.tensor([-0.5, 0.0, 0.7], dtype=torch.float64)
    direct = (0.5 * math.log(2 * math.pi * 1.5**2) + (x[None] - w[:, None]) ** 2 / (2 * 1.5**2)).mean(-1)
    torch.testing.assert_close(m.gaussian_mean_loss(w, x, 1.5), direct, rtol=1e-13, atol=0)


@pytest.mark.parametrize(("prior_std", "beta"), [(2.0, 1.0), (0.5, 0.3)])
def test_conjugate_free_energy_equals_quadrature(prior_std, beta):
    """F_n(β) = −log ∫ φ(w) exp(−nβL_n(w)) dw by adaptive quadrature (tol 1e-9) vs the closed form."""
    from slt_course_utils import posterior

    x = m.sample_gaussian(40, 0.3, 1.0, generator=torch.Generator().manual_seed(1))
    exact = m.gaussian_mean_conjugate(x, prior_mean=0.2, prior_std=prior_std, beta=beta)
    quad = posterior.free_energy_adaptive(
        lambda w: m.gaussian_mean_loss(w[..., 0], x), lambda w: posterior.log_normal_prior(w[..., 0], 0.2, prior_std),
        [(-10.0, 10.0)], 40, beta, tol=1e-9)
    assert exact.free_energy == pytest.approx(quad.free_energy, abs=1e-7)


@pytest.mark.parametrize(("mq", "vq", "mp", "vp"), [(1.0, 2.0, 0.0, 1.0), (0.0, 0.5, 0.3, 3.0), (0.2, 1.0, 0.2, 1.0)])
def test_kl_gaussians_equals_the_expected_log_ratio(mq, vq, mp, vp):
    xs, ws = m.trapezoid_normal(0.01)
    y = mq + math.sqrt(vq) * xs  # y ~ N(mq, vq)
    log_q = -0.5 * math.log(2 * math.pi * vq) - (y - mq) ** 2 / (2 * vq)
    log_p = -0.5 * math.log(2 * math.pi * vp) - (y - mp) ** 2 / (2 * vp)
    assert m.kl_gaussians(mq, vq, mp, vp) == pytest.approx((ws * (log_q - log_p)).sum().item(), abs=1e-12)


def test_linear_feature_population_loss_equals_entropy_plus_kl_by_quadrature():
    """LinearFeatureRegression.population_loss (sufficient statistics) vs the generic quadrature route."""
    model = m.LinearFeatureRegression("line, σ = 2", m.LINE.mean_fn, d=2, sigma=2.0, coef_fn=lambda w: w,
                                      features_fn=m.LINE_STATS.features_fn)
    w = torch.tensor([[0.1, 0.4], [1.0, -1.0]], dtype=torch.float64)
    w0 = [0.3, -0.5]
    torch.testing.assert_close(model.population_loss(w, w0), m.gaussian_regression_population_loss(model, w, w0),
                               rtol=1e-12, atol=0)
