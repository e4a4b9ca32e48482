"""Free-energy asymptotics: λ recovered from quadrature free energies, WBIC, WAIC and n·E[G_n] → λ."""

import functools
import math

import pytest
import torch

from slt_course_utils import free_energy as fe
from slt_course_utils import models as m
from slt_course_utils import posterior as p

NS = [10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]


def uniform_box(w: torch.Tensor) -> torch.Tensor:
    """log of the uniform prior on [−1, 1]^d."""
    return torch.full(w.shape[:-1], -w.shape[-1] * math.log(2.0), dtype=torch.float64)


def normal_prior(w: torch.Tensor) -> torch.Tensor:
    return p.log_normal_prior(w).sum(-1)


@functools.cache
def curves(name: str) -> fe.FreeEnergyCurves:
    seeds = range(12)
    if name == "slope":
        fn = fe.quadrature_free_energy(fe.SLOPE, normal_prior, [(-6, 6)], points=None)
        return fe.free_energy_curves(fe.SLOPE, [0.5], NS, seeds=seeds, free_energy_fn=fn)
    model, k, power = {"product": (m.PRODUCT_STATS, 2, 1), "square": (m.SQUARE, 1, 2), "triple": (m.TRIPLE_PRODUCT, 3, 1)}[name]
    return fe.free_energy_curves(model, [0.0] * model.d, NS, seeds=seeds, free_energy_fn=fe.monomial_free_energy(k, power))


def test_monomial_free_energy_matches_2d_quadrature():
    # The 1-D integral over s = −log|ab| must equal the 2-D quadrature of the product model.
    x, y = m.PRODUCT_STATS.sample([0.0, 0.0], 300, generator=torch.Generator().manual_seed(0))
    stats = m.PRODUCT_STATS.statistics(x, y)
    two_d = fe.quadrature_free_energy(m.PRODUCT_STATS, uniform_box, [(-1, 1)] * 2, tol=1e-6, points=65)(stats)
    assert fe.monomial_free_energy(2, 1)(stats) == pytest.approx(two_d, abs=1e-4)
    # SQUARE: t = a², 1-D quadrature in a directly.
    x, y = m.SQUARE.sample([0.0], 1000, generator=torch.Generator().manual_seed(1))
    stats = m.SQUARE.statistics(x, y)
    direct = fe.quadrature_free_energy(m.SQUARE, uniform_box, [(-1, 1)], tol=1e-8, points=None)(stats)
    assert fe.monomial_free_energy(1, 2)(stats) == pytest.approx(direct, abs=1e-5)


@pytest.mark.parametrize(
    ("name", "lam", "mult", "tol"),
    [("slope", 0.5, 1, 0.06), ("product", 0.5, 2, 0.05), ("square", 0.25, 1, 0.05), ("triple", 0.5, 3, 0.08)],
)
def test_fitted_lambda_matches_exact_value(name, lam, mult, tol):
    """Per-seed OLS slopes, mean over 12 seeds, n from 10 to 10⁶.

    The regular model is y = w·x (d = 1, λ = ½). Tolerances: 3 standard errors across seeds
    (measured s.e. ≈ 0.015 slope, 0.007 product, 0.012 square, 0.006 triple) plus the deterministic O(1/log n) bias of singular models, whose slope
    over log n ∈ [2.3, 13.8] is ≈ +0.02 for m = 2 and ≈ +0.05 for m = 3 (measured at the expected
    statistics). The fit's standard error is reported in the failure message.
    """
    c = curves(name)
    fit = fe.fit_learning_coefficient(c.ns, c.excess, multiplicity=mult)
    assert abs(fit.lam - lam) < tol, f"{name}: {fit} vs exact λ = {lam}"
    assert 0 < fit.lam_stderr < 0.05, str(fit)
    # Ignoring the multiplicity biases the product and triple slopes low by (m−1)·d(log log n)/d(log n).
    if mult > 1:
        naive = fe.fit_learning_coefficient(c.ns, c.excess, multiplicity=1)
        assert naive.lam < lam - 0.05


def test_joint_fit_of_lambda_and_multiplicity_is_consistent_but_noisy():
    c = curves("product")
    fit = fe.fit_learning_coefficient(c.ns, c.excess, multiplicity=None)
    # λ and m are nearly collinear over six decades: m's standard error is ≈ 0.25, so allow 4 s.e.
    assert abs(fit.lam - 0.5) < 4 * fit.lam_stderr + 0.05, str(fit)
    assert abs(fit.multiplicity - 2) < 4 * fit.multiplicity_stderr + 0.1, str(fit)
    one = fe.fit_learning_coefficient(c.ns, c.excess[0], multiplicity=2)  # a single curve: OLS s.e.
    assert one.lam_stderr > 0


@pytest.mark.parametrize(
    ("model", "w0", "prior", "bounds"),
    [(m.LINE_STATS, [0.3, -0.5], normal_prior, [(-6, 6)] * 2), (m.PRODUCT_STATS, [0.0, 0.0], uniform_box, [(-1, 1)] * 2)],
    ids=["line", "product"],
)
def test_wbic_is_close_to_the_free_energy(model, w0, prior, bounds):
    # WBIC = F_n + O_p(√log n) (Watanabe 2013): we require |WBIC − F_n| < √log n on 3 seeds and
    # 3 sample sizes (measured: ≈ 0.2 for the line; ≈ 0.3–1.0 for the product, whose gap grows like
    # (m−1) log log n because WBIC has no log log n term).
    for n in (100, 3_000, 100_000):
        for seed in range(3):
            x, y = model.sample(w0, n, generator=torch.Generator().manual_seed(seed))
            stats = model.statistics(x, y)
            loss = lambda w, s=stats: model.loss_from_statistics(w, s)
            free = p.free_energy_adaptive(loss, prior, bounds, n, tol=1e-5, points=65).free_energy
            wbic = fe.wbic_grid(loss, prior, bounds, n)
            assert abs(wbic - free) < math.sqrt(math.log(n)), (n, seed, wbic, free)
    # WBIC from MH samples at β = 1/log n agrees with the grid value (n = 1000).
    n = 1000
    x, y = model.sample(w0, n, generator=torch.Generator().manual_seed(9))
    stats = model.statistics(x, y)
    loss = lambda w: model.loss_from_statistics(w, stats)
    from slt_course_utils.sampling import metropolis_hastings

    target = fe.tempered_log_density(loss, prior, n, fe.wbic_beta(n))
    init = torch.tensor(w0, dtype=torch.float64).expand(16, -1) + 0.1
    res = metropolis_hastings(target, init, step_size=0.15, num_samples=3000, num_burnin=500,
                              generator=torch.Generator().manual_seed(1))
    # WBIC's sampling noise: sd of nL_n under the tempered posterior ≈ √(d/2)/β ≈ 7 here; with
    # ESS ≳ 2000 the standard error is ≲ 0.2, so 1.0 is 5 s.e.
    assert fe.wbic_samples(loss, res.flat(), n) == pytest.approx(fe.wbic_grid(loss, prior, bounds, n), abs=1.0)


def test_wbic_and_waic_errors():
    with pytest.raises(ValueError, match="n > 1"):
        fe.wbic_beta(1)
    with pytest.raises(ValueError, match="shape"):
        fe.waic(torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        fe.waic(torch.full((3, 4), math.nan))
    with pytest.raises(ValueError, match="weights"):
        fe.waic(torch.zeros(3, 4), weights=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="seeds"):
        fe.free_energy_curves(m.SQUARE, [0.0], [10, 100, 1000], seeds=[0], free_energy_fn=fe.monomial_free_energy(1, 2))
    with pytest.raises(ValueError, match="increasing"):
        fe.free_energy_curves(m.SQUARE, [0.0], [100, 10, 1000], seeds=[0, 1], free_energy_fn=fe.monomial_free_energy(1, 2))
    with pytest.raises(ValueError, match="shape"):
        fe.fit_learning_coefficient([10, 100, 1000], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="positive integer"):
        fe.monomial_free_energy(0)


def test_waic_of_a_point_mass_is_the_training_loss():
    # One parameter value repeated: V_n = 0 and WAIC = T_n = −mean log p.
    ll = torch.tensor([[-1.0, -2.0, -0.5]]).expand(4, -1)
    res = fe.waic(ll)
    assert res.functional_variance == pytest.approx(0.0, abs=1e-12)
    assert res.waic == pytest.approx(3.5 / 3)
    # Weighted and sampled versions agree when the weights are uniform.
    ll = torch.randn(5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert fe.waic(ll, torch.ones(5)).waic == pytest.approx(fe.waic(ll).waic)


@functools.cache
def simulation(name: str) -> fe.GeneralisationSimulation:
    model = fe.SLOPE if name == "slope" else m.SQUARE
    w0 = [0.5] if name == "slope" else [0.0]
    prior, bounds = (normal_prior, [(-6, 6)]) if name == "slope" else (uniform_box, [(-1, 1)])
    return fe.simulate_generalisation(model, w0, 1000, seeds=range(200), log_prior_fn=prior, bounds=bounds, points=65)


@pytest.mark.parametrize(("name", "lam"), [("slope", 0.5), ("square", 0.25)])
def test_n_times_generalisation_error_approaches_lambda(name, lam):
    """n·E[G_n] at n = 1000 over 200 data sets: n·G_n has sd ≈ λ√2 (½χ²₁ for the regular slope), so the
    standard error is ≈ 0.04–0.05 (slope) and ≈ 0.03 (square); we allow 3 s.e. The O(1/n) corrections
    are ≲ 0.01 at n = 1000 for m = 1."""
    mean, se = simulation(name).n_mean_error()
    assert se < 0.06
    assert abs(mean - lam) < 3 * se, (mean, se)


@pytest.mark.parametrize("name", ["slope", "square"])
def test_waic_agrees_with_the_bayes_generalisation_loss(name):
    # E[WAIC] = E[G'_n] + o(1/n) (Watanabe 2010): the mean difference over 200 data sets is within 3 s.e.
    sim = simulation(name)
    diff, se = sim.waic_minus_loss()
    assert abs(diff) < 3 * se, (diff, se)
    # ... and n(WAIC − S_n) estimates λ on average (S_n the empirical entropy of the truth).
    lam = 0.5 if name == "slope" else 0.25
    est = sim.n * (sim.waic - sim.empirical_entropy)
    assert abs(est.mean().item() - lam) < 3 * est.std().item() / math.sqrt(est.numel())


def test_generalisation_error_of_the_truth_is_zero_and_positive_otherwise():
    draws = torch.zeros(10, 1, dtype=torch.float64)
    assert fe.bayes_generalisation_error(m.SQUARE, [0.0], draws) == pytest.approx(0.0, abs=1e-12)
    # Predictive = N(0.3x, 1) vs truth N(0, 1): KL = E[(0.3x)²]/2 = 0.045 (a² = 0.3).
    draws = torch.full((10, 1), math.sqrt(0.3), dtype=torch.float64)
    assert fe.bayes_generalisation_error(m.SQUARE, [0.0], draws) == pytest.approx(0.045, rel=1e-10)


def test_singular_fluctuation_limit_regular_is_half_and_square_model_is_exact():
    # Regular one-parameter model: the limiting posterior is N(Z, 1), Var = 1, ν = d/2 = ½ exactly.
    assert fe.singular_fluctuation_limit(0.5, one_sided=False) == pytest.approx(0.5, abs=1e-6)
    # One-sided flat prior on t ≥ 0 (λ = ½, a half-normal limit): ν < ½, the boundary removes fluctuation.
    half = fe.singular_fluctuation_limit(0.5, one_sided=True)
    assert 0.2 < half < 0.5
    # y = a²x, a ~ U[−1, 1]: density of t = a² ∝ t^{−½} on t > 0, λ = ¼. Converged in nodes and points.
    nu = fe.singular_fluctuation_limit(0.25)
    assert nu == pytest.approx(fe.singular_fluctuation_limit(0.25, nodes=200, points=16001), abs=1e-5)
    with pytest.raises(ValueError, match="lam"):
        fe.singular_fluctuation_limit(0.0)


def test_waic_parts_match_lambda_and_the_singular_fluctuation_for_the_square_model():
    # Chapter 04, section 5 (Watanabe's theorem, green book ch. 3): E[V_n] → 2ν and n E[T_n − S_n] → λ − 2ν.
    # y = a²x at truth 0, uniform prior: λ = ¼, ν from the limiting posterior. 30 data sets at n = 500; the
    # bound is 4 standard errors over data sets plus 0.03 for the finite-n remainder (the chapter's 100 data
    # sets read V_n = 0.35 ± 0.03 against 2ν = 0.346).
    uniform = lambda w: torch.full(w.shape[:-1], -math.log(2.0), dtype=torch.float64)
    sim = fe.simulate_generalisation(m.SQUARE, [0.0], 500, seeds=range(30), log_prior_fn=uniform, bounds=[(-1, 1)],
                                     points=65)
    nu = fe.singular_fluctuation_limit(0.25)
    v = sim.functional_variance
    t = sim.n * (sim.training_loss - sim.empirical_entropy)
    se = lambda x: (x.std() / math.sqrt(x.numel())).item()
    assert abs(v.mean().item() - 2 * nu) < 4 * se(v) + 0.03
    assert abs(t.mean().item() - (0.25 - 2 * nu)) < 4 * se(t) + 0.03
    # and the regular value 2ν = d = 1 is excluded: the singular model's fluctuation is measurably smaller
    assert v.mean().item() + 4 * se(v) < 1.0
