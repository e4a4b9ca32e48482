"""Hamiltonian Monte Carlo: it samples its target, is vectorised and deterministic, and fails clearly."""

import math

import numpy as np
import pytest
import torch

from slt_course_utils.sampling import hamiltonian_monte_carlo


def test_stationary_distribution_matches_a_1d_target_exactly():
    """Chi-square goodness of fit of HMC draws to N(0.5, 0.7²), fixed seed (cf. the MH test).

    With step 0.5 and 5 leapfrog steps consecutive HMC draws are nearly independent; keeping every
    2nd draw of 64 chains (32 000 draws) the statistic on 20 bins is ~ χ²(19), 99.9% quantile 43.8.
    A sampler without the accept/reject step or with a wrong momentum refresh fails badly.
    """
    mu, sd = 0.5, 0.7
    log_density = lambda w: -((w[:, 0] - mu) ** 2) / (2 * sd**2)
    res = hamiltonian_monte_carlo(log_density, torch.zeros(64, 1), step_size=0.5, num_leapfrog=5, num_samples=1000,
                                  num_burnin=100, generator=torch.Generator().manual_seed(0))
    draws = res.samples[:, ::2, 0].reshape(-1).numpy()
    cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf((v - mu) / (sd * math.sqrt(2)))))
    bins = np.concatenate([[-10], np.linspace(mu - 2.5 * sd, mu + 2.5 * sd, 19), [10]])
    counts, _ = np.histogram(draws, bins=bins)
    probs = np.diff(cdf(bins))
    expected = probs / probs.sum() * counts.sum()
    stat = float(((counts - expected) ** 2 / expected).sum())
    assert stat < 43.8, f"chi-square {stat:.1f} on 19 dof: HMC does not sample its target"
    assert 0.8 < res.acceptance_rate.mean() <= 1.0


def test_large_steps_are_rejected_but_still_correct_and_support_is_respected():
    # Step 2.5 on a unit Gaussian is unstable for leapfrog (stable only below 2): most proposals are rejected.
    res = hamiltonian_monte_carlo(lambda w: -0.5 * (w**2).sum(-1), torch.zeros(8, 2), step_size=2.5, num_leapfrog=10,
                                  num_samples=200, generator=torch.Generator().manual_seed(1))
    assert res.acceptance_rate.mean() < 0.2
    box = lambda w: torch.where((w[:, 0] > 0) & (w[:, 0] < 1), -((w[:, 0] - 0.3) ** 2), torch.full_like(w[:, 0], -math.inf))
    res = hamiltonian_monte_carlo(box, torch.full((4, 1), 0.5), step_size=0.3, num_leapfrog=3, num_samples=500,
                                  generator=torch.Generator().manual_seed(2))
    assert ((res.samples > 0) & (res.samples < 1)).all()


def test_vectorised_and_deterministic():
    run = lambda seed: hamiltonian_monte_carlo(lambda w: -0.5 * (w**2).sum(-1), torch.zeros(5, 3), step_size=0.3,
                                               num_leapfrog=4, num_samples=20, generator=torch.Generator().manual_seed(seed))
    a, b, c = run(1), run(1), run(2)
    assert a.samples.shape == (5, 20, 3) and a.acceptance_rate.shape == (5,)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    single = hamiltonian_monte_carlo(lambda w: -0.5 * (w**2).sum(-1), torch.zeros(2), step_size=0.3, num_leapfrog=2,
                                     num_samples=3)
    assert single.samples.shape == (1, 3, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_size": 0.0}, "step_size must be positive"),
        ({"step_size": -0.1}, "step_size must be positive"),
        ({"step_size": math.inf}, "step_size must be positive"),
        ({"num_leapfrog": 0}, "num_leapfrog"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_burnin": -1}, "num_burnin"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    args = {"step_size": 0.1, "num_leapfrog": 3, "num_samples": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        hamiltonian_monte_carlo(lambda w: -(w**2).sum(-1), torch.zeros(2, 1), **args)


def test_non_finite_log_density_is_a_clear_error():
    with pytest.raises(ValueError, match="not finite at the initial state"):
        hamiltonian_monte_carlo(lambda w: torch.full((w.shape[0],), -math.inf) + 0 * w.sum(-1), torch.zeros(2, 1),
                                step_size=0.1, num_leapfrog=2, num_samples=5)
    with pytest.raises(ValueError, match="not finite at the initial state"):
        hamiltonian_monte_carlo(lambda w: (w * math.nan).sum(-1), torch.zeros(2, 1), step_size=0.1, num_leapfrog=2,
                                num_samples=5)
    with pytest.raises(ValueError, match="one value per chain"):
        hamiltonian_monte_carlo(lambda w: w, torch.zeros(2, 2), step_size=0.1, num_leapfrog=2, num_samples=5)
    with pytest.raises(ValueError, match="shape"):
        hamiltonian_monte_carlo(lambda w: w.sum(-1), torch.zeros(2, 2, 2), step_size=0.1, num_leapfrog=2, num_samples=5)
