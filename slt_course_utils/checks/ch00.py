"""Checks for chapter 00, Bayesian learning (solutions/00_bayesian_learning.ipynb)."""

from __future__ import annotations

import math

import torch

from slt_course_utils import models, posterior
from slt_course_utils.checks._core import CheckFailure, assert_close, call_student, exercise_check


def _data(seed: int, n: int, mean: float = 0.3) -> torch.Tensor:
    return models.sample_gaussian(n, mean, generator=torch.Generator().manual_seed(seed))


def _grid(lo: float = -2.0, hi: float = 2.0, size: int = 401) -> tuple[torch.Tensor, float]:
    w = torch.linspace(lo, hi, size, dtype=torch.float64)
    return w, (hi - lo) / (size - 1)


@exercise_check
def check_empirical_loss(empirical_loss) -> str:
    """L_n(w) = −(1/n) Σ log N(X_i; w, 1) on a 1-D grid of w."""
    for seed, n in [(0, 1), (1, 10), (2, 1000)]:
        x = _data(seed, n)
        w, _ = _grid(size=41)
        got = call_student(empirical_loss, w, x)
        assert_close(
            got, models.gaussian_mean_loss(w, x), what=f"empirical_loss(w, x) with n = {n}", rtol=1e-6,
            hint="L_n is the MEAN over data points of −log N(X_i; w, 1) = ½ log 2π + (X_i − w)²/2; "
                 "broadcast x[None, :] against w[:, None] and average over the data axis.",
        )
    return "L_n matches on 3 data sets"


@exercise_check
def check_log_posterior_on_grid(log_posterior_on_grid) -> str:
    """log p_β(w|D_n) normalised so that Σ exp(log p)·Δw = 1."""
    for seed, n, beta in [(3, 20, 1.0), (4, 500, 0.3), (5, 5, 2.0)]:
        x = _data(seed, n)
        w, dw = _grid()
        loss = models.gaussian_mean_loss(w, x)
        log_prior = posterior.log_normal_prior(w, 0.0, 1.0)
        got = call_student(log_posterior_on_grid, log_prior, loss, n, beta, dw)
        expected = posterior.log_posterior_grid(log_prior, loss, n, beta, volume=dw)
        assert_close(
            got, expected, what=f"log posterior (n = {n}, β = {beta})", rtol=1e-6, atol=1e-6,
            hint="start from log φ(w) − nβ L_n(w) and subtract log Σ exp(·)Δw computed with "
                 "torch.logsumexp; don't forget β, and normalise as a density (include Δw).",
        )
    return "normalised log densities match for 3 (n, β)"


@exercise_check
def check_free_energy(free_energy) -> str:
    """F_n(β) = −log Σ φ(w) exp(−nβL_n(w)) Δw, accurate even when nβL_n is huge."""
    for seed, n, beta in [(6, 10, 1.0), (7, 100_000, 1.0), (8, 300, 0.5)]:
        x = _data(seed, n)
        w, dw = _grid(-1.5, 2.0, 3501)
        loss = models.gaussian_mean_loss(w, x)
        log_prior = posterior.log_normal_prior(w, 0.0, 1.0)
        try:
            got = call_student(free_energy, log_prior, loss, n, beta, dw)
        except CheckFailure as err:
            if err.not_implemented:
                raise
            # A naive exp(−nβL_n) underflows to 0 at n = 100 000 and log(0) then fails ("math domain error").
            raise CheckFailure(f"{err}\nHint: at n = {n} the terms exp(log φ − nβL_n) are about e^(−{n * 1.4:.0f}): "
                               "they underflow to 0 in float64 and log(0) fails. Stay in log space: "
                               "F = −(logsumexp(log φ − nβL_n) + log Δw).") from err
        if not math.isfinite(float(got)):
            raise CheckFailure(f"F_n (n = {n}, β = {beta}) came out as {float(got)}: exp(−nβL_n) underflowed to 0."
                               "\nHint: stay in log space with torch.logsumexp, then add log Δw.")
        exact = models.gaussian_mean_conjugate(x, beta=beta).free_energy
        assert_close(
            float(got), exact, what=f"F_n (n = {n}, β = {beta}) vs the exact conjugate value", rtol=1e-6,
            hint="exp(−nβL_n) underflows to 0 for large n: work in log space with torch.logsumexp, "
                 "and remember the + log Δw of the quadrature.",
        )
    return "quadrature agrees with the exact free energy, up to n = 100 000"


@exercise_check
def check_conjugate_posterior(conjugate_posterior) -> str:
    """Tempered posterior of a Gaussian mean: N(b/a, 1/a), a = 1/s0² + nβ, b = μ0/s0² + βΣX."""
    for seed, n, mu0, s0, beta in [(9, 10, 0.0, 1.0, 1.0), (10, 50, 1.0, 2.0, 0.25), (11, 3, -0.5, 0.5, 3.0)]:
        x = _data(seed, n)
        got = call_student(conjugate_posterior, x, mu0, s0, beta)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"conjugate_posterior should return a tuple (mean, variance), got {got!r:.80}.")
        exact = models.gaussian_mean_conjugate(x, prior_mean=mu0, prior_std=s0, beta=beta)
        assert_close(
            [float(got[0]), float(got[1])], [exact.mean, exact.var],
            what=f"(mean, variance) for n = {n}, μ0 = {mu0}, s0 = {s0}, β = {beta}", rtol=1e-8,
            hint="complete the square in log φ(w) − (β/2)Σ(X_i − w)²: precisions add, "
                 "a = 1/s0² + nβ, and the mean is (μ0/s0² + βΣX_i)/a.",
        )
    return "mean and variance exact for 3 priors and temperatures"


@exercise_check
def check_predictive_density(predictive_density) -> str:
    """p(x|D_n) = Σ_w N(x; w, 1) p(w|D_n) Δw, the posterior average of the model."""
    x_new = torch.linspace(-4, 4, 17, dtype=torch.float64)
    for seed, n in [(12, 3), (13, 40)]:
        x = _data(seed, n)
        w, dw = _grid(-3, 3, 1201)
        log_post = posterior.log_posterior_grid(
            posterior.log_normal_prior(w, 0.0, 1.0), models.gaussian_mean_loss(w, x), n, 1.0, volume=dw
        )
        got = call_student(predictive_density, x_new, w, log_post, dw)
        exact = models.gaussian_mean_conjugate(x)
        var = 1.0 + exact.var
        expected = torch.exp(-((x_new - exact.mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)
        assert_close(
            got, expected, what=f"predictive density at 17 points (n = {n})", rtol=1e-4, atol=1e-7,
            hint="average the model density N(x; w, 1) over the posterior: weights exp(log_post)·Δw; "
                 "plugging in a single w (the MAP) is too narrow.",
        )
    return "the predictive is the posterior average N(μ_n, 1 + v_n)"


@exercise_check
def check_generalisation_error(generalisation_error) -> str:
    """G_n = KL(q ‖ p(·|D_n)) with q = N(w0, 1) and predictive N(μ_n, 1 + v_n)."""
    for w0, mu, v in [(0.0, 0.1, 0.05), (0.5, 0.2, 0.5), (-1.0, -1.3, 0.01)]:
        got = call_student(generalisation_error, w0, mu, v)
        expected = models.kl_gaussians(w0, 1.0, mu, 1.0 + v)
        assert_close(
            float(got), expected, what=f"G_n for w0 = {w0}, μ_n = {mu}, v_n = {v}", rtol=1e-8,
            hint="G_n = KL(truth ‖ predictive) — the truth comes first — and the predictive "
                 "variance is 1 + v_n, not 1.",
        )
    return "KL(truth ‖ predictive) correct"


@exercise_check
def check_metropolis_hastings(metropolis_hastings_1d) -> str:
    """Random-walk MH must sample the target: mean and variance of N(1, 0.5²), a truncated target too."""
    gen = torch.Generator().manual_seed(2024)
    # ESS of random-walk MH on N(1, 0.25) with step 1 over 20 000 steps is ≳ 3000, so the standard
    # error of the mean is ≲ 0.5/√3000 ≈ 0.009 and of the variance ≲ 0.25·√(2/3000) ≈ 0.0065:
    # the tolerances below are over 5 standard errors, yet far tighter than any broken sampler.
    target = lambda w: -((w - 1.0) ** 2) / (2 * 0.25)
    samples = call_student(metropolis_hastings_1d, target, 0.0, 1.0, 20_000, gen)
    s = torch.as_tensor(samples, dtype=torch.float64).reshape(-1)
    if s.numel() != 20_000:
        raise CheckFailure(f"expected 20 000 samples (one per step), got {s.numel()}.")
    if s.unique().numel() < 1000:
        raise CheckFailure(
            f"only {s.unique().numel()} distinct values in 20 000 samples: proposals are almost never accepted."
            "\nHint: accept when log(u) < log p(w') − log p(w), with u ~ U(0, 1)."
        )
    assert_close(s.mean(), 1.0, what="sample mean of the N(1, 0.5²) target", atol=0.05, rtol=0,
                 hint="record the current state at every step (also when the proposal is rejected).")
    assert_close(s.var(), 0.25, what="sample variance of the N(1, 0.5²) target", atol=0.04, rtol=0,
                 hint="accept with probability min(1, p(w')/p(w)); accepting only uphill moves collapses "
                      "the samples onto the mode, accepting everything is a random walk.")
    # A target with hard edges: uniform on [0, 1]; outside, log density is -inf.
    box = lambda w: torch.where((w >= 0) & (w <= 1), torch.tensor(0.0, dtype=torch.float64),
                                torch.tensor(-math.inf, dtype=torch.float64))
    s = torch.as_tensor(call_student(metropolis_hastings_1d, box, 0.5, 0.5, 40_000, gen), dtype=torch.float64)
    if not ((s >= 0) & (s <= 1)).all():
        raise CheckFailure("samples left the support of the U(0, 1) target: a proposal with log density −inf "
                           "must always be rejected.")
    assert_close(s.mean(), 0.5, what="sample mean of the U(0, 1) target", atol=0.04, rtol=0)
    # Var U(0,1) = 1/12. Over 40 000 steps the standard error of the sample variance is about 0.001,
    # so 0.005 is 5 standard errors; recording only accepted moves gives ≈ 0.075 and fails.
    assert_close(s.var(), 1 / 12, what="sample variance of the U(0, 1) target", atol=0.005, rtol=0,
                 hint="record the current state after every step, including rejected proposals.")
    return "samples match N(1, 0.5²) and U(0, 1)"


@exercise_check
def check_expected_generalisation_error(expected_generalisation_error) -> str:
    """E[G_n] = ½log(1+v) + (1 + w0²(v/s0²)² + v²n)/(2(1+v)) − ½, v = 1/(1/s0² + n), at 6 settings."""
    # Exact formula against exact formula: rtol 1e-9 allows only rounding. The settings include a far-off
    # truth (w0 = 3) and a tight prior (s0 = 0.3) so that the bias term matters, and small n where the
    # asymptotic 1/(2n) is off by 20%.
    for n, w0, s0 in [(1, 0.3, 1.0), (10, 0.3, 1.0), (10, 3.0, 1.0), (50, 1.0, 0.3), (1000, 0.3, 1.0), (3, -2.0, 2.0)]:
        got = call_student(expected_generalisation_error, n, w0, s0)
        expected = models.gaussian_mean_expected_generalisation_error(n, w0, s0)
        try:
            ok = abs(float(got) - expected) <= 1e-9 * abs(expected)
        except (TypeError, ValueError) as err:
            raise CheckFailure(f"expected_generalisation_error should return a float, got {got!r:.60}.") from err
        if not ok:
            if abs(float(got) - 0.5 / n) <= 1e-9:
                hint = "that is only the leading term λ/n; the question asks for the exact expectation at finite n."
            else:
                hint = ("only μ_n is random: E(w0 − μ_n)² = (w0 − Eμ_n)² + Var μ_n with Eμ_n = v n w0 (a bias toward "
                        "the prior mean 0) and Var μ_n = v² n; the predictive variance is 1 + v.")
            raise CheckFailure(f"E[G_n] for n = {n}, w0 = {w0}, prior_std = {s0} is {'too large' if float(got) > expected else 'too small'}."
                               f"\nHint: {hint}")
    return "E[G_n] exact at 6 (n, w0, s0), including a far-off truth and a tight prior"
