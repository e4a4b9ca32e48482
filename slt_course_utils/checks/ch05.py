"""Checks for chapter 05, Bayesian phase transitions (solutions/05_phase_transitions.ipynb)."""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from slt_course_utils import phase_transitions, posterior
from slt_course_utils.checks._core import (
    CheckFailure,
    as_float,
    assert_close,
    call_student,
    exercise_check,
)


@exercise_check
def check_local_free_energy(local_free_energy) -> str:
    """F(W_i) = −log Σ_{grid ∩ W_i} φ(w) e^{−nL(w)} Δ, on the two-phase potential's grid."""
    P = phase_transitions.TWO_PHASE
    axis = torch.linspace(-3.0, 3.0, 481, dtype=torch.float64)
    w = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
    log_prior, loss = P.log_prior(w), P.loss(w)
    volume = posterior.cell_volume(axis, axis)
    for n in (30, 300, 1000):
        for name, mask in (("simple", w[..., 0] < P.ridge), ("accurate", w[..., 0] >= P.ridge)):
            got = call_student(local_free_energy, log_prior, loss, n, mask, volume)
            log_u = (log_prior - n * loss)[mask]
            expected = -(torch.logsumexp(log_u, 0).item() + math.log(volume))
            assert_close(
                as_float(got, "local_free_energy"), expected, what=f"local free energy of the {name} phase at n = {n}",
                rtol=1e-8, atol=1e-8,
                hint="restrict log φ − nL to the grid points where mask is True (log_u[mask]), logsumexp them and "
                     "add log(volume); do not renormalise over the whole grid.",
            )
    return "local free energies of both phases at 3 sample sizes"


@exercise_check
def check_phase_probability(phase_probability) -> str:
    """P(phase 2) = 1/(1 + exp(F_2 − F_1)), stable for large gaps."""
    for f1, f2 in [(10.0, 12.0), (5.0, 3.5), (1e4, 10.0), (10.0, 1e4), (7.0, 7.0), (1000.0, 1001.5)]:
        got = call_student(phase_probability, f1, f2)
        expected = 1.0 / (1.0 + math.exp(min(f2 - f1, 700.0)))
        assert_close(
            as_float(got, "phase_probability"), expected, what=f"P(phase 2) for F_1 = {f1}, F_2 = {f2}", rtol=1e-9, atol=1e-12,
            hint="Z_i = e^{−F_i}, so P(2) = Z_2/(Z_1 + Z_2) = 1/(1 + e^{F_2 − F_1}); use torch.sigmoid(F_1 − F_2) "
                 "(or math) so that a gap of 10⁴ nats does not overflow. The smaller free energy wins.",
        )
    return "posterior masses correct, also for huge gaps"


@exercise_check
def check_critical_n(critical_n) -> str:
    """The larger root of n·ΔL = Δλ·log n."""
    for dl, dlam in [(0.005, 0.5), (0.01, 1.0), (0.001, 0.25), (0.02, 1.5)]:
        got = call_student(critical_n, dl, dlam)
        expected = phase_transitions.critical_n(dl, dlam)
        assert_close(
            as_float(got, "critical_n"), expected, what=f"critical n for ΔL = {dl}, Δλ = {dlam}", rtol=1e-4,
            hint="g(n) = n·ΔL − Δλ·log n is negative between its two roots; the transition is the LARGER root, "
                 "above n = Δλ/ΔL (where g is smallest). Bisect in log n (natural log).",
        )
    return "n_c solves n·ΔL = Δλ·log n (the larger root)"


@exercise_check
def check_gradient_descent(gradient_descent) -> str:
    """w_{t+1} = w_t − lr ∇L(w_t), trajectory of shape (steps + 1, d) including the start."""
    P = phase_transitions.TWO_PHASE
    for init, lr, steps in [([0.9, 0.4], 0.05, 200), ([-1.5, -0.2], 0.02, 300), ([0.3, 0.0], 0.1, 50)]:
        got = call_student(gradient_descent, P.loss, torch.tensor(init, dtype=torch.float64), lr, steps)
        expected = phase_transitions.gradient_descent(P.loss, init, lr=lr, steps=steps).w
        assert_close(
            got, expected, what=f"GD trajectory from {init} (lr = {lr}, {steps} steps)", rtol=1e-8, atol=1e-10,
            hint="compute the gradient with torch.autograd.grad(loss_fn(w), w) on a leaf tensor with requires_grad, "
                 "step DOWNHILL (w − lr·grad), and store the initial point as row 0 (steps + 1 rows).",
        )
    return "trajectories match to 1e-8"


@exercise_check
def check_phase_coefficients(phase_coefficients) -> str:
    """(λ, m) of the two phases of the potential: a positive definite quartic (½, 1) and a regular point (1, 1)."""
    got = call_student(phase_coefficients)
    if not isinstance(got, dict) or set(got) != {"simple", "accurate"}:
        raise CheckFailure(f"phase_coefficients() should return a dict with keys 'simple' and 'accurate', got {got!r:.120}.")
    for phase, (lam, m) in phase_transitions.TWO_PHASE.learning_coefficients.items():
        value = got[phase]
        if not isinstance(value, tuple) or len(value) != 2:
            raise CheckFailure(f"{phase}: expected a pair (λ, m), got {value!r}.")
        if Fraction(value[0]).limit_denominator(1000) != lam or int(value[1]) != m:
            raise CheckFailure(
                f"{phase} phase: expected (λ, m) = ({lam}, {m}), got {value}.\nHint: near (−1, 0) every term of K is "
                "of degree 4 in (a+1, b) and together they are positive definite: homogeneous of degree 2k = 4 in "
                "d = 2 variables gives λ = d/(2k). Near (1, 0) the Hessian is positive definite: λ = d/2."
            )
    return "λ = ½ (simple) and λ = 1 (accurate), both with m = 1"
