"""Fits and estimators on exact synthetic data: a wrong formula must fail, whatever its tolerance.

Free-energy curves F_n − nL_n(w0) = λ log n − (m−1) log log n + c with known λ, m, c (Watanabe's
formula without the O_p(1) noise) must be fitted to rounding error; the standard errors the fits
report are compared with the spread of the estimate over many noisy replicates; and WBIC on a
grid is compared with its closed form for a conjugate Gaussian model.
"""

from __future__ import annotations

import math

import pytest
import torch

from slt_course_utils import free_energy as fe
from slt_course_utils import posterior as p

NS = torch.tensor([10.0, 30, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5, 1e6], dtype=torch.float64)


def watanabe_curve(lam: float, m: int, c: float, ns: torch.Tensor = NS) -> torch.Tensor:
    return lam * ns.log() - (m - 1) * ns.log().log() + c


@pytest.mark.parametrize(("lam", "m"), [(0.5, 1), (0.5, 2), (0.37, 3), (1.25, 4)])
def test_fit_learning_coefficient_on_exact_curves(lam, m):
    curves = torch.stack([watanabe_curve(lam, m, c) for c in (0.0, 1.5, -2.0)])  # three "seeds"
    known = fe.fit_learning_coefficient(NS, curves, multiplicity=m)
    assert known.lam == pytest.approx(lam, abs=1e-10) and known.multiplicity == m
    assert known.lam_stderr == pytest.approx(0.0, abs=1e-10)
    joint = fe.fit_learning_coefficient(NS, curves, multiplicity=None)
    assert joint.lam == pytest.approx(lam, abs=1e-8)
    assert joint.multiplicity == pytest.approx(m, abs=1e-7)  # an off-by-one in m̂ = 1 + coef fails
    one = fe.fit_learning_coefficient(NS, curves[0], multiplicity=m)  # a single curve: OLS
    assert one.lam == pytest.approx(lam, abs=1e-10) and one.lam_stderr < 1e-10
    if m > 1:
        wrong = fe.fit_learning_coefficient(NS, curves, multiplicity=m - 1)
        assert wrong.lam < lam - 0.03


@pytest.mark.parametrize(("lam", "m"), [(0.5, 1), (0.5, 2), (0.37, 3)])
def test_free_energy_slope_on_exact_curves(lam, m):
    fit = p.free_energy_slope(NS, watanabe_curve(lam, m, 0.8), multiplicity=m)
    assert fit.slope == pytest.approx(lam, abs=1e-10)
    assert fit.intercept == pytest.approx(0.8, abs=1e-9)
    assert fit.stderr < 1e-10


def _noisy_replicates(R: int, sd: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return watanabe_curve(0.5, 2, 0.0)[None] + sd * torch.randn(R, NS.numel(), generator=gen, dtype=torch.float64)


def test_slope_standard_errors_match_the_spread_over_replicates():
    """The OLS standard error of λ̂ (one curve) and the across-seed standard error (S curves) are
    computed uncertainties: compare them with the spread of λ̂ over 400 replicates with i.i.d.
    N(0, 0.3²) noise. 400 replicates give the sample sd to ±3.5% (1 s.e.); ratio within ±15%."""
    R = 400
    reps = _noisy_replicates(R, 0.3)
    single = [fe.fit_learning_coefficient(NS, reps[r], multiplicity=2) for r in range(R)]
    lam = torch.tensor([f.lam for f in single])
    # OLS se: exact under i.i.d. Gaussian noise up to the noise in each replicate's RSS.
    ratio = lam.std().item() / torch.tensor([f.lam_stderr for f in single]).mean().item()
    assert 0.85 < ratio < 1.15, ratio  # measured 1.01
    slopes = [p.free_energy_slope(NS, reps[r], multiplicity=2) for r in range(R)]
    assert torch.allclose(torch.tensor([s.slope for s in slopes], dtype=torch.float64), lam.double(), atol=1e-10)
    ratio = lam.std().item() / torch.tensor([s.stderr for s in slopes]).mean().item()
    assert 0.85 < ratio < 1.15, ratio
    # Across seeds: groups of S = 8 curves, lam_stderr = sd/√S; compare with the spread of the group means.
    S = 8
    groups = [fe.fit_learning_coefficient(NS, reps[g * S : (g + 1) * S], multiplicity=2) for g in range(R // S)]
    means = torch.tensor([g.lam for g in groups])
    ratio = means.std().item() / torch.tensor([g.lam_stderr for g in groups]).mean().item()
    # 50 groups: sd known to ±10%, and E[sd] is ≈ 3% below σ for S = 8; allow ±30%.
    assert 0.7 < ratio < 1.3, ratio  # measured 0.97


# --- WBIC against its closed form ------------------------------------------------------------------

def test_wbic_grid_equals_the_closed_form_for_a_conjugate_model():
    """y = w·x + N(0, 1), prior N(0, s²): the tempered posterior at β is N(βc/a, 1/a) with
    a = 1/s² + βg (g = Σx², c = Σxy), so E^β[nL_n] = (n/2) log 2π + (Σy² − 2c·μ + g(μ² + 1/a))/2.
    WBIC uses β = 1/log n; β = 1/log₁₀ n or β = 1 change it by O(1) nats, far above 1e-6."""
    s = 2.0
    prior = lambda w: p.log_normal_prior(w, 0.0, s).sum(-1)  # noqa: E731
    for n, seed in ((100, 0), (3_000, 1), (100_000, 2)):
        x, y = fe.SLOPE.sample([0.3], n, generator=torch.Generator().manual_seed(seed))
        stats = fe.SLOPE.statistics(x, y)
        g, c, yy = stats.gram.item(), stats.cross.item(), stats.yy
        beta = 1 / math.log(n)
        a = 1 / s**2 + beta * g
        mu = beta * c / a
        exact = 0.5 * n * math.log(2 * math.pi) + 0.5 * (yy - 2 * c * mu + g * (mu * mu + 1 / a))
        loss = lambda w, st=stats: fe.SLOPE.loss_from_statistics(w, st)  # noqa: E731
        got = fe.wbic_grid(loss, prior, [(-6.0, 6.0)], n, points=513)
        assert got == pytest.approx(exact, abs=1e-6 * max(1.0, abs(exact))), (n, got, exact)
        # The same at β = 1/log₁₀ n is visibly different: the test can tell the two apart.
        a10 = 1 / s**2 + g / math.log10(n)
        mu10 = c / math.log10(n) / a10
        wrong = 0.5 * n * math.log(2 * math.pi) + 0.5 * (yy - 2 * c * mu10 + g * (mu10 * mu10 + 1 / a10))
        assert abs(wrong - exact) > 0.3


def test_wbic_minus_the_minimum_is_half_log_n_for_a_regular_model():
    """For a regular model E^β[nL_n] − nL_n(ŵ) = ½g/a + ½g(μ − ŵ)² → (d/2)/β = ½ log n (d = 1) at
    β = 1/log n. At the expected statistics with n = 10⁶ the correction is O(1/(s²βg)) ≈ 1e-5;
    measured (WBIC − nL_n(ŵ))/log n = 0.499998. Tolerance 0.001: β = 1/log₁₀ n gives 0.217."""
    n = 1_000_000
    stats = fe.SLOPE.population_statistics([0.3], n)
    prior = lambda w: p.log_normal_prior(w, 0.0, 2.0).sum(-1)  # noqa: E731
    loss = lambda w: fe.SLOPE.loss_from_statistics(w, stats)  # noqa: E731
    w_hat = torch.tensor([[stats.cross.item() / stats.gram.item()]], dtype=torch.float64)
    gap = fe.wbic_grid(loss, prior, [(-6.0, 6.0)], n, points=513) - n * loss(w_hat).item()
    assert gap / math.log(n) == pytest.approx(0.5, abs=0.001)


def test_ols_standard_errors_equal_the_textbook_formula():
    """se(λ̂) = √(σ̂² [(XᵀX)⁻¹]₁₁), σ̂² = RSS/(k − p): computed here in matrix form, independently of the
    centred formula in the package; k = 10 points, p = 2 (free_energy_slope) or 3 (joint fit)."""
    y = _noisy_replicates(1, 0.3, seed=5)[0]
    logn = NS.log()
    for design, fit_se in (
        (torch.stack([logn, torch.ones_like(logn)], -1),
         p.free_energy_slope(NS, y + logn.log(), multiplicity=1).stderr),
        (torch.stack([logn, -logn.log(), torch.ones_like(logn)], -1),
         fe.fit_learning_coefficient(NS, y, multiplicity=None).lam_stderr),
    ):
        target = y + logn.log() if design.shape[1] == 2 else y
        coef = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]
        rss = ((target - design @ coef) ** 2).sum()
        cov = rss / (NS.numel() - design.shape[1]) * torch.linalg.inv(design.T @ design)
        assert fit_se == pytest.approx(cov[0, 0].sqrt().item(), rel=1e-9)
