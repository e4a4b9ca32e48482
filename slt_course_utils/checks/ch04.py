"""Checks for chapter 04, free-energy asymptotics and Occam's razor (solutions/04_free_energy.ipynb)."""

from __future__ import annotations

import math

import torch

from slt_course_utils import free_energy, models, posterior
from slt_course_utils.checks._core import (
    CheckFailure,
    as_float,
    assert_close,
    call_student,
    exercise_check,
)


@exercise_check
def check_fit_lambda(fit_lambda) -> str:
    """OLS slope of F_n − nL_n(w0) + (m−1) log log n against log n."""
    ns = torch.tensor([10.0, 100.0, 1e3, 1e4, 1e5, 1e6], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for lam, m in [(0.5, 1), (0.5, 2), (0.25, 1), (1.5, 3)]:
        excess = lam * ns.log() - (m - 1) * ns.log().log() + 0.7 + 0.1 * torch.randn(6, generator=gen, dtype=torch.float64)
        got = call_student(fit_lambda, ns, excess, m)
        expected = free_energy.fit_learning_coefficient(ns, excess, multiplicity=m).lam
        assert_close(
            as_float(got, "fit_lambda"), expected, what=f"fitted λ (true λ = {lam}, m = {m})", rtol=1e-6, atol=1e-8,
            hint="regress y = excess + (m−1)·log(log n) on x = log n (not on n) and return the slope "
                 "Σ(x − x̄)(y − ȳ)/Σ(x − x̄)².",
        )
    return "slopes exact for m = 1, 2, 3"


@exercise_check
def check_log_state_density(log_state_density) -> str:
    """log density of s = −log|t| for t = (a_1⋯a_k)^p, a_j ~ U[−1, 1]: (k−1) log s − s/p − log Γ(k) − k log p."""
    s = torch.linspace(0.05, 30.0, 50, dtype=torch.float64)
    for k, p in [(1, 1), (2, 1), (1, 2), (3, 1), (2, 3)]:
        got = call_student(log_state_density, s, k, p)
        expected = (k - 1) * torch.log(s) - s / p - math.lgamma(k) - k * math.log(p)
        assert_close(
            got, expected, what=f"log density of s = −log|t| (k = {k}, p = {p})", rtol=1e-8, atol=1e-8,
            hint="−log|a_j| ~ Exp(1), a sum of k of them is Gamma(k, 1), and s = p·(that sum): "
                 "rescaling by p divides the density by p and turns e^{−u} into e^{−s/p}.",
        )
    return "the Gamma density of s, for five (k, p)"


def _gaussian_wbic(x: torch.Tensor, n: int) -> float:
    beta = 1 / math.log(n)
    post = models.gaussian_mean_conjugate(x, beta=beta)
    # E^β[nL_n(w)] = n[½ log 2π + ½ mean((X − μ)²) + ½ v] for the N(μ, v) tempered posterior.
    return n * (0.5 * models.LOG_2PI + 0.5 * ((x - post.mean) ** 2).mean().item() + 0.5 * post.var)


@exercise_check
def check_wbic_on_grid(wbic_on_grid) -> str:
    """WBIC = E^β[nL_n] at β = 1/log n, as a grid average, against the Gaussian mean model's exact value."""
    w = torch.linspace(-3.0, 3.0, 6001, dtype=torch.float64)
    dw = (w[1] - w[0]).item()
    for seed, n in [(1, 20), (2, 500), (3, 20_000)]:
        x = models.sample_gaussian(n, 0.3, generator=torch.Generator().manual_seed(seed))
        got = call_student(wbic_on_grid, posterior.log_normal_prior(w), models.gaussian_mean_loss(w, x), n, dw)
        assert_close(
            as_float(got, "wbic_on_grid"), _gaussian_wbic(x, n), what=f"WBIC at n = {n}", rtol=1e-6, atol=1e-6,
            hint="weights ∝ φ(w) exp(−nβL_n(w)) with β = 1/log n (not β = 1), normalised with logsumexp/softmax; "
                 "then average n·L_n(w) (with the factor n).",
        )
    return "WBIC exact for the conjugate model at 3 sample sizes"


@exercise_check
def check_waic(waic_from_log_lik) -> str:
    """WAIC = −mean_i log mean_s p(y_i|w_s) + (1/n) Σ_i Var_s log p(y_i|w_s)."""
    gen = torch.Generator().manual_seed(4)
    for S, n, scale in [(200, 50, 0.1), (1000, 20, 1.0), (50, 300, 0.01)]:
        ll = -1.4 + scale * torch.randn(S, n, generator=gen, dtype=torch.float64) - torch.rand(n, generator=gen, dtype=torch.float64)
        got = call_student(waic_from_log_lik, ll)
        got = as_float(got, "waic_from_log_lik")
        unbiased = (-(torch.logsumexp(ll, 0) - math.log(S)).mean() + ll.var(0, correction=1).sum() / n).item()
        if abs(got - unbiased) <= 1e-10 + 1e-10 * abs(unbiased):
            raise CheckFailure(f"WAIC from log-likelihoods of shape ({S}, {n}): your V_n uses the unbiased variance "
                               "(divisor S − 1, torch's default). Hint: V_n is the population variance over draws: "
                               "log_lik.var(dim=0, unbiased=False) (or correction=0).")
        assert_close(
            got, free_energy.waic(ll).waic, what=f"WAIC from log-likelihoods of shape ({S}, {n})",
            rtol=1e-8, atol=1e-10,
            hint="T_n uses the log of the posterior MEAN of p (logsumexp − log S), not the mean of log p; "
                 "V_n is the variance over draws (axis 0) summed over data points, and WAIC = T_n + V_n/n.",
        )
    return "WAIC exact on 3 random log-likelihood tables"


@exercise_check
def check_generalisation_error(generalisation_error) -> str:
    """G_n = E_x E_{y|x} [log q(y|x) − log (1/S)Σ_s N(y; t_s x, 1)] for the model y = t·x + N(0, 1)."""
    gen = torch.Generator().manual_seed(5)
    for t0, centre, spread, S in [(0.5, 0.52, 0.05, 400), (0.0, 0.1, 0.2, 300), (1.0, 0.7, 0.01, 50)]:
        draws = centre + spread * torch.randn(S, generator=gen, dtype=torch.float64)
        got = call_student(generalisation_error, t0, draws)
        expected = free_energy.bayes_generalisation_error(free_energy.SLOPE, [t0], draws[:, None], nodes=40)
        assert_close(
            as_float(got, "generalisation_error"), expected, what=f"G_n (truth t0 = {t0}, {S} draws around {centre})",
            rtol=1e-4, atol=1e-7,
            hint="the predictive is the MIXTURE (1/S)Σ_s N(y; t_s x, 1) — average densities, not parameters — and "
                 "G_n = KL(truth ‖ predictive) with the truth first; integrate over x and y by Gauss–Hermite.",
        )
    return "KL(truth ‖ predictive mixture) correct"


@exercise_check
def check_bic_overestimate(bic_overestimate) -> str:
    """BIC − (nL_n(w0) + λ log n − (m−1) log log n) = (d/2 − λ) log n + (m−1) log log n."""
    for n, d, lam, m in [(1000, 2, 0.5, 2), (10**6, 3, 0.5, 3), (100, 1, 0.25, 1), (5000, 4, 2.0, 1)]:
        got = call_student(bic_overestimate, n, d, lam, m)
        expected = (d / 2 - lam) * math.log(n) + (m - 1) * math.log(math.log(n))
        assert_close(
            as_float(got, "bic_overestimate"), expected, what=f"BIC's overestimate (n = {n}, d = {d}, λ = {lam}, m = {m})",
            rtol=1e-9,
            hint="subtract Watanabe's formula from BIC = nL_n + (d/2) log n; mind the sign of −(m−1) log log n.",
        )
    return "(d/2 − λ) log n + (m − 1) log log n"


@exercise_check
def check_singular_fluctuation(singular_fluctuation) -> str:
    """ν = ½ E_Z[Var(u)], u ∝ |u|^{2λ−1} e^{−u²/2 + Zu} (on u > 0 when one_sided), against free_energy's quadrature."""
    # rtol 2e-3: a learner's quadrature (e.g. 60 Gauss–Hermite nodes in Z, 2000 trapezoid nodes in v = |u|^{2λ})
    # is good to ~1e-5; the wrong answers tested differ by ≥ 10% (factor 2, ignoring |u|^{2λ−1}, wrong support).
    for lam, one_sided in [(0.25, True), (0.5, False), (0.5, True), (1 / 6, True), (1.0, False)]:
        got = call_student(singular_fluctuation, lam, one_sided)
        expected = free_energy.singular_fluctuation_limit(lam, one_sided=one_sided)
        assert_close(
            as_float(got, "singular_fluctuation"), expected,
            what=f"ν for λ = {lam:.4g}, {'u > 0' if one_sided else 'u on the whole line'}", rtol=2e-3,
            hint="for each Z the posterior of u has density ∝ |u|^{2λ−1} exp(−u²/2 + Z·u) (support u > 0 when "
                 "one_sided); ν is HALF the Z-average of its variance. Substitute v = |u|^{2λ} (then |u|^{2λ−1}du ∝ dv) "
                 "to remove the singularity at 0, and average over Z with models.gauss_hermite_normal.",
        )
    return "ν matches at 5 (λ, support) pairs, including the regular ν = ½"
