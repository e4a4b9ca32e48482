"""Metropolis–Hastings: it samples its target (detailed balance), is vectorised and deterministic, and fails clearly."""

import math

import numpy as np
import pytest
import torch

from slt_course_utils.sampling import effective_sample_size, metropolis_hastings


def _chi_square_statistic(samples: np.ndarray, cdf, bins: np.ndarray) -> tuple[float, int]:
    counts, _ = np.histogram(samples, bins=bins)
    probs = np.diff(cdf(bins))
    expected = probs / probs.sum() * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum()), len(counts) - 1


def test_stationary_distribution_matches_a_1d_target_exactly():
    """Goodness of fit to N(0.5, 0.7²): thinned MH draws vs the exact density, chi-square, fixed seed.

    Thinning every 10th draw of 64 chains makes the draws nearly independent (ESS/draw ≈ 0.9), so the
    chi-square statistic on 20 equiprobable-ish bins is ~ χ²(19): its 99.9% quantile is 43.8.
    A sampler that accepted every proposal, or only uphill ones, gives statistics in the thousands.
    """
    mu, sd = 0.5, 0.7
    log_density = lambda w: -((w[:, 0] - mu) ** 2) / (2 * sd**2)
    result = metropolis_hastings(log_density, torch.zeros(64, 1), step_size=1.5, num_samples=2000,
                                 num_burnin=200, generator=torch.Generator().manual_seed(0))
    draws = result.samples[:, ::10, 0].reshape(-1).numpy()
    cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf((v - mu) / (sd * math.sqrt(2)))))
    bins = np.concatenate([[-10], np.linspace(mu - 2.5 * sd, mu + 2.5 * sd, 19), [10]])
    stat, dof = _chi_square_statistic(draws, cdf, bins)
    assert dof == 19
    assert stat < 43.8, f"chi-square {stat:.1f} on {dof} dof: MH does not sample its target"
    assert 0.3 < result.acceptance_rate.mean() < 0.8


def test_chains_are_vectorised_and_deterministic():
    log_density = lambda w: -0.5 * (w**2).sum(-1)
    run = lambda seed: metropolis_hastings(log_density, torch.zeros(5, 3), step_size=0.8, num_samples=50,
                                           generator=torch.Generator().manual_seed(seed))
    a, b, c = run(1), run(1), run(2)
    assert a.samples.shape == (5, 50, 3) and a.acceptance_rate.shape == (5,)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    assert a.flat().shape == (250, 3)
    assert not torch.equal(a.samples[0], a.samples[1])  # chains get different noise


def test_respects_hard_support_boundaries():
    log_density = lambda w: torch.where((w[:, 0] > 0) & (w[:, 0] < 1), 0.0, -math.inf).double()
    result = metropolis_hastings(log_density, torch.full((4, 1), 0.5), step_size=0.5, num_samples=500,
                                 generator=torch.Generator().manual_seed(3))
    assert ((result.samples > 0) & (result.samples < 1)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_size": 0.0}, "step_size must be positive"),
        ({"step_size": -1.0}, "step_size must be positive"),
        ({"step_size": math.nan}, "step_size must be positive"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_burnin": -1}, "num_burnin"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    args = {"step_size": 0.5, "num_samples": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        metropolis_hastings(lambda w: -(w**2).sum(-1), torch.zeros(2, 1), **args)


def test_non_finite_log_density_is_a_clear_error():
    with pytest.raises(ValueError, match="not finite at the initial state"):
        metropolis_hastings(lambda w: torch.full((w.shape[0],), -math.inf), torch.zeros(2, 1), step_size=0.1, num_samples=5)
    with pytest.raises(ValueError, match="NaN for a proposal"):
        metropolis_hastings(lambda w: torch.where(w[:, 0] == 0, 0.0, math.nan).double(), torch.zeros(2, 1),
                            step_size=0.1, num_samples=5)
    with pytest.raises(ValueError, match="one value per chain"):
        metropolis_hastings(lambda w: w, torch.zeros(2, 2), step_size=0.1, num_samples=5)
    with pytest.raises(ValueError, match="shape"):
        metropolis_hastings(lambda w: w.sum(-1), torch.zeros(2, 2, 2), step_size=0.1, num_samples=5)


def test_effective_sample_size():
    iid = torch.randn(2, 4000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert ((effective_sample_size(iid) > 3000) & (effective_sample_size(iid) < 5000)).all()
    # AR(1) with ρ = 0.9 has τ = (1 + ρ)/(1 − ρ) = 19.
    # Over 100 000 draws the estimate scatters by about ±7% (seeds 0–4 gave 4800–5390 vs 5263).
    noise = np.random.default_rng(0).standard_normal(100_000)
    x = np.zeros(100_000)
    for t in range(1, 100_000):
        x[t] = 0.9 * x[t - 1] + noise[t]
    ess = effective_sample_size(torch.tensor(x)[None, :, None]).item()
    assert ess == pytest.approx(100_000 / 19, rel=0.15)
    with pytest.raises(ValueError, match="chains, draws"):
        effective_sample_size(torch.zeros(10))
