"""Checks for chapter 05, Bayesian phase transitions (solutions/05_phase_transitions.ipynb)."""

from __future__ import annotations

import math

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
    # n = 3·10⁵: e^{−nL} ≤ e^{−1500} underflows to 0 in float64 everywhere in the simple phase, as the exercise warns.
    for n in (30, 300, 1000, 300_000):
        for name, mask in (("simple", w[..., 0] < P.ridge), ("accurate", w[..., 0] >= P.ridge)):
            try:
                got = call_student(local_free_energy, log_prior, loss, n, mask, volume)
            except CheckFailure as err:
                if err.not_implemented or n < 300_000:
                    raise
                raise CheckFailure(f"{err}\nAt n = {n} the weights e^(log φ − nL) can underflow to 0 (e^(−1500) is 0 in "
                                   "float64), and log 0 fails: stay in logs with torch.logsumexp.") from err
            log_u = (log_prior - n * loss)[mask]
            expected = -(torch.logsumexp(log_u, 0).item() + math.log(volume))
            assert_close(
                as_float(got, "local_free_energy"), expected, what=f"local free energy of the {name} phase at n = {n}",
                rtol=1e-8, atol=1e-8,
                hint="restrict log φ − nL to the grid points where mask is True (log_u[mask]), logsumexp them and "
                     "add log(volume); do not renormalise over the whole grid. Exponentiating first underflows at "
                     "large n: stay in logs.",
            )
    return "local free energies of both phases at 3 sample sizes"


@exercise_check
def check_phase_probability(phase_probability) -> str:
    """P(phase 2) = 1/(1 + exp(F_2 − F_1)), stable for large gaps."""
    for f1, f2 in [(10.0, 12.0), (5.0, 3.5), (1e4, 10.0), (10.0, 1e4), (7.0, 7.0), (1000.0, 1001.5)]:
        got = call_student(phase_probability, f1, f2)
        expected = 1.0 / (1.0 + math.exp(min(f2 - f1, 700.0)))
        # rtol 1e-6: float32 arithmetic (torch's default dtype) is a right answer, good to ~1e-7.
        assert_close(
            as_float(got, "phase_probability"), expected, what=f"P(phase 2) for F_1 = {f1}, F_2 = {f2}", rtol=1e-6, atol=1e-12,
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


# (λ, m) of each phase, derived in the exercise: the reading's two phases, and the simple phase of a variant
# whose well is sextic along a, K = r u⁶ + ¼u²b² + b⁴ (u = a + 1). Its Newton polygon has vertices (6, 0), (2, 2),
# (0, 4); the diagonal meets it AT the vertex (2, 2), so λ = 1/2 and m = 2 (V(ε) ≍ ε^½ log 1/ε, chapter 03).
PHASE_COEFFICIENTS = {**{k: (float(v[0]), int(v[1])) for k, v in phase_transitions.TWO_PHASE.learning_coefficients.items()},
                      "sextic": (0.5, 2)}
_PHASE_HINTS = {
    "simple": "near (−1, 0) every term of K is of degree 4 in (u, b) = (a+1, b) and together they are positive "
              "definite: homogeneous of degree 2k in d variables gives λ = d/(2k), m = 1.",
    "accurate": "near (1, 0) the Hessian is positive definite: a regular point, λ = d/2, m = 1.",
    "sextic": "u⁶ + u²b² + b⁴ is not homogeneous. Draw its Newton polygon (exponents (6,0), (2,2), (0,4)) and find "
              "where the diagonal (t, t) first meets it: λ = 1/t, and m counts how many faces meet there (an edge "
              "interior: 1; a vertex: 2). Or bound the volume {K < ε} by hand, splitting at |u| ≈ ε^{1/4}.",
}


@exercise_check
def check_phase_coefficients(phase_coefficients) -> str:
    """(λ, m) of the reading's two phases and of the sextic variant's simple phase."""
    got = call_student(phase_coefficients)
    if not isinstance(got, dict) or set(got) != set(PHASE_COEFFICIENTS):
        raise CheckFailure(f"phase_coefficients() should return a dict with keys {sorted(PHASE_COEFFICIENTS)}, got "
                           f"keys {sorted(map(str, got)) if isinstance(got, dict) else type(got).__name__}.")
    for phase, (lam, m) in PHASE_COEFFICIENTS.items():
        value = got[phase]
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
            raise CheckFailure(f"{phase}: expected a pair (λ, m), got {type(value).__name__} {value!r:.60}.")
        lam_got, m_got = as_float(value[0], f"{phase}: λ"), as_float(value[1], f"{phase}: m")
        wrong = [name for name, ok in (("λ", abs(lam_got - lam) < 1e-9), ("m", m_got == m)) if not ok]
        if wrong:
            raise CheckFailure(f"{phase} phase: your {' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not "
                               f"right (got {value}).\nHint: {_PHASE_HINTS[phase]}")
    return "λ and m of both phases, and of the sextic well (λ = ½ with m = 2)"


@exercise_check
def check_phase_constants(phase_constants) -> str:
    """The O(1) constants c_i (Laplace for the quadratic phase, the quartic scaling integral for the other), exactly."""
    # atol 1e-5: the exact constants are a closed form plus one smooth 2-D integral (good to 1e-12 with a fine
    # trapezoid rule); reading them off a quadrature at finite n misses by O(n^{-1/4}) (4e-4 at n = 10⁶), and the
    # wrong answers tested are off by ≥ 0.1.
    potentials = [phase_transitions.TWO_PHASE,
                  phase_transitions.TwoPhasePotential(loss_gap=0.01, alpha=0.2, prior_std=1.5),
                  phase_transitions.TwoPhasePotential(loss_gap=0.003, alpha=0.05, prior_std=0.7)]
    for P in potentials:
        got = call_student(phase_constants, P)
        if not isinstance(got, dict) or set(got) != set(phase_transitions.PHASES):
            raise CheckFailure(f"phase_constants(P) should return a dict with keys {list(phase_transitions.PHASES)}.")
        expected = phase_transitions.exact_local_constants(P)
        label = f"(ΔL = {P.loss_gap}, α = {P.alpha}, prior sd {P.prior_std})"
        assert_close(as_float(got["accurate"], "c_accurate"), expected["accurate"], what=f"c of the accurate phase {label}",
                     rtol=0, atol=1e-5,
                     hint="Laplace at (1, 0): ∫φe^{−nK} ≈ φ(1,0)·(2π/n)^{d/2}·det(∇²L)^{−1/2}, so "
                          "c = −log φ(1,0) − log 2π + ½ log det ∇²L(1,0); the prior's sd enters φ.")
        assert_close(as_float(got["simple"], "c_simple"), expected["simple"], what=f"c of the simple phase {label}",
                     rtol=0, atol=1e-5,
                     hint="K ≈ r u⁴ + ¼u²b² + b⁴ is homogeneous of degree 4: substitute (u, b) = n^{−1/4}(u', b') to get "
                          "∫e^{−nK} = n^{−1/2}∫∫e^{−K(u',b')}du'db', so c = −log φ(−1,0) − log ∫∫e^{−K}; r = r(−1) is "
                          "the coefficient of (a+1)⁴ in h(a) − ΔL at a = −1. Compute the 2-D integral on a fine grid.")
    return "both constants exact for 3 potentials"
