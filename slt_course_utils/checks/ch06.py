"""Checks for chapter 06, estimating the local learning coefficient (solutions/06_estimating_llc.ipynb).

References: ``llc.sgld_step``, ``llc.estimate_llc`` (its loss traces are replayed exactly: the
learner's sampler must draw its noise in the estimator's documented order), ``llc.default_nbeta``
and ``llc_diagnostics``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from slt_course_utils import llc, llc_diagnostics
from slt_course_utils.checks._core import (
    CheckFailure,
    as_float,
    assert_close,
    call_student,
    exercise_check,
)
from slt_course_utils.llc_models import (
    NormalCrossing,
    gaussian_nll,
    normal_crossing_data,
    normal_crossing_flat_loss,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@exercise_check
def check_sgld_step(sgld_step) -> str:
    """w ← w − (ε/2)(nβ∇L + γ(w − w*)) + √ε ξ, ξ = torch.randn(w.shape, generator, dtype=w.dtype)."""
    cases = [(0, 3, 1e-3, 144.8, 1.0), (1, 5, 1e-4, 20.0, 100.0), (2, 1, 5e-2, 3.0, 0.0)]
    for seed, d, lr, nbeta, gamma in cases:
        g = _gen(seed)
        w = torch.randn(d, generator=g, dtype=torch.float64)
        grad = torch.randn(d, generator=g, dtype=torch.float64)
        w_star = torch.randn(d, generator=g, dtype=torch.float64)
        got = call_student(sgld_step, w.clone(), grad.clone(), w_star.clone(), lr, nbeta, gamma, None, noise=False)
        expected = llc.sgld_step(w, grad, w_star, lr=lr, nbeta=nbeta, localization=gamma, noise=False)
        # Deterministic part: exact up to float64 rounding.
        assert_close(got, expected, what=f"the drift step without noise (ε = {lr}, nβ = {nbeta}, γ = {gamma})",
                     rtol=1e-10, atol=1e-12,
                     hint="w − (ε/2)·(nβ·grad + γ·(w − w*)): the ½ multiplies both the loss gradient "
                          "and the localisation term.")
    # Noise scale: with grad = 0, γ = 0 the step is pure noise √ε ξ. Over 40 000 coordinates the
    # sample variance has relative standard deviation √(2/40 000) = 0.7%; 5% is 7 of those.
    lr = 4e-3
    w = torch.zeros(40_000, dtype=torch.float64)
    got = call_student(sgld_step, w.clone(), torch.zeros_like(w), w.clone(), lr, 10.0, 0.0, _gen(7), noise=True)
    var = float(torch.as_tensor(got).double().var())
    if not abs(var / lr - 1) < 0.05:
        raise CheckFailure(
            f"the noise has variance {var:.3g} per coordinate; expected ε = {lr:g} (±5%). "
            "Hint: the Langevin noise is N(0, ε), i.e. √ε·ξ with ξ ~ N(0, 1) — not ε·ξ.")
    # Exact replay of the seeded noise (same generator, same shape and dtype): equal to rounding.
    for seed, d, lr, nbeta, gamma in cases:
        g = _gen(seed)
        w = torch.randn(d, generator=g, dtype=torch.float64)
        grad = torch.randn(d, generator=g, dtype=torch.float64)
        w_star = torch.randn(d, generator=g, dtype=torch.float64)
        got = call_student(sgld_step, w.clone(), grad.clone(), w_star.clone(), lr, nbeta, gamma, _gen(100 + seed))
        expected = llc.sgld_step(w, grad, w_star, lr=lr, nbeta=nbeta, localization=gamma,
                                 generator=_gen(100 + seed))
        assert_close(got, expected, what=f"the noisy step with a seeded generator (d = {d})", rtol=1e-10,
                     atol=1e-12,
                     hint="draw the noise once, as torch.randn(w.shape, generator=generator, dtype=w.dtype), "
                          "and add √ε times it.")
    return "drift, noise scale √ε and seeded noise all match llc.sgld_step"


def _trace_case(seed: int) -> tuple[torch.Tensor, float]:
    g = _gen(seed)
    trace = 0.5 + 0.01 * torch.rand(4, 50, generator=g, dtype=torch.float64)
    return trace, 0.5 - 0.002 * seed


@exercise_check
def check_llc_from_trace(llc_from_trace) -> str:
    """λ̂ per chain = nβ (mean over draws of L(w) − L(w*))."""
    # A real run: λ̂ per chain must equal what estimate_llc reports (same formula, float64 rounding).
    x, y = normal_crossing_data(500)
    n = len(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = llc.estimate_llc(NormalCrossing([1, 0]), (x, y), gaussian_nll, num_chains=4, num_draws=60,
                               lr=5e-4, localization=1.0, seed=3, device="cpu", progress=False,
                               check_localization=False)
    got = call_student(llc_from_trace, res.loss_trace.clone(), res.loss_star, n, 1 / math.log(n))
    assert_close(got, res.per_chain, what="λ̂ per chain from an estimate_llc loss trace", rtol=1e-8, atol=1e-10,
                 hint="nβ·(mean over the draws of each chain − L(w*)), with nβ = n·β: average over "
                      "dim=1 (draws), not over chains.")
    # Synthetic traces with β ≠ 1/log n, so β and nβ cannot be confused.
    for seed, n, beta in [(1, 1000, 0.37), (2, 50, 2.0)]:
        trace, loss_star = _trace_case(seed)
        got = call_student(llc_from_trace, trace.clone(), loss_star, n, beta)
        expected = n * beta * (trace.mean(1) - loss_star)
        assert_close(got, expected, what=f"λ̂ per chain (n = {n}, β = {beta})", rtol=1e-8, atol=1e-10,
                     hint="multiply by nβ = n·β (not by β alone), and subtract L(w*) before multiplying.")
    return "λ̂ per chain matches estimate_llc and two synthetic traces"


def _replay(k: tuple[int, ...], w_star: list[float], seed: int, num_chains: int, num_steps: int, lr: float,
            gamma: float):
    x, y = normal_crossing_data(400, seed=seed)
    nbeta = llc.default_nbeta(len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = llc.estimate_llc(NormalCrossing(k, w_star), (x, y), gaussian_nll, num_chains=num_chains,
                               num_draws=num_steps, num_burnin_steps=0, lr=lr, localization=gamma,
                               nbeta=nbeta, seed=seed, device="cpu", progress=False, check_localization=False,
                               divergence_factor=math.inf)
    return x, y, nbeta, res.loss_trace


@exercise_check
def check_sgld_chains(sgld_chains) -> str:
    """All chains advanced together; losses (chains, steps) equal estimate_llc's trace, replayed."""
    # The second case starts away from 0 (not a minimum there: fine for a replay), so that the
    # localisation must pull towards w*, not towards the origin.
    for k, start, seed, chains, steps, lr, gamma in [((1, 2), [0.0, 0.0], 0, 6, 120, 5e-4, 1.0),
                                                     ((1, 1, 1), [0.1, -0.2, 0.3], 1, 4, 80, 1e-3, 10.0)]:
        x, y, nbeta, expected = _replay(k, start, seed, chains, steps, lr, gamma)
        w_star = torch.tensor(start, dtype=torch.float64)
        got = call_student(sgld_chains, normal_crossing_flat_loss(k), w_star, x, y, chains, steps, lr, nbeta,
                           gamma, _gen(seed))
        got_t = torch.as_tensor(got)
        if tuple(got_t.shape) != (chains, steps):
            raise CheckFailure(f"sgld_chains should return losses of shape (num_chains, num_steps) = "
                               f"{(chains, steps)}, got {tuple(got_t.shape)}.")
        if chains > 1 and torch.equal(got_t[0], got_t[1]):
            raise CheckFailure("chains 0 and 1 have identical loss traces; expected independent chains. Hint: "
                               "every chain needs its own noise: draw shape (num_chains, d), not (d,).")
        if chains > 1 and torch.allclose(got_t[0], got_t[1]):
            raise CheckFailure("chains 0 and 1 differ, but only in the last digits: the injected noise is far too "
                               "small. Hint: the SGLD noise is √ε·ξ (torch.sqrt of the step size), not ε·ξ.")
        # Same arithmetic as the estimator up to the order of float64 sums; the SGLD map is
        # contracting near w*, so rounding differences stay ~1e-12 over these few steps.
        assert_close(got_t, expected, what=f"the loss traces for k = {k}, {chains} chains × {steps} steps",
                     rtol=1e-6, atol=1e-9,
                     hint="record L(w_t) of every chain BEFORE the step; then w ← w − (ε/2)(nβ∇L + γ(w − w*)) "
                          "+ √ε ξ with ξ = torch.randn((num_chains, d), generator=generator, dtype=w_star.dtype), "
                          "one draw per step for all chains at once.")
    return "replays estimate_llc's traces to rounding error for 2 models"


@exercise_check
def check_nbeta_defaults(nbeta_defaults) -> str:
    """(n/log n, B/log B): the course's nβ and devinterp 1.x's default (inf at B = 1)."""
    for n, b in [(1000, 100), (60_000, 512), (2, 2), (10_000, 1)]:
        got = call_student(nbeta_defaults, n, b)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"nbeta_defaults should return a tuple (course, devinterp), got {got!r:.80}.")
        course, dev = float(got[0]), float(got[1])
        assert_close(course, llc.default_nbeta(n), what=f"the course's nβ for n = {n}", rtol=1e-10,
                     hint="nβ* = n / log n with the natural logarithm (β* = 1/log n).")
        expected = llc_diagnostics.devinterp_default_nbeta(b)
        if math.isinf(expected):
            if not math.isinf(dev):
                raise CheckFailure(f"devinterp's nβ for batch size 1 is 1/log 1 = 1/0: return math.inf, got {dev!r}.")
            continue
        assert_close(dev, expected, what=f"devinterp's default nβ for batch size B = {b}", rtol=1e-10,
                     hint="devinterp 1.x uses the BATCH size: B / log B.")
    return "n/log n and B/log B, including B = 1"


def _sweep(means, levelled, diverged) -> dict:
    lrs = np.array([1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    lev = np.empty((5, 1), dtype=object)
    lev[:, 0] = levelled
    return {"lr": lrs, "localization": np.array([1.0]), "vary": "localization",
            "mean": np.array(means, dtype=float)[:, None], "stderr": np.full((5, 1), 0.01),
            "diverged": np.array(diverged, dtype=float)[:, None], "levelled_off": lev}


SWEEPS = [  # (sweep, exact λ): each defeats one shortcut
    (_sweep([0.05, 0.2, 0.24, 0.31, math.nan], [False, False, True, True, None], [0, 0, 0, 0, 1]), 0.25),
    (_sweep([0.01, 0.26, 0.21, 0.35, 0.9], [False, False, True, True, True], [0, 0, 0, 0, 0.25]), 0.25),
    (_sweep([0.1, 0.15, 0.2, 0.26, 0.25], [True, True, True, True, True], [0, 0, 0, 0, 0.5]), 0.25),
    (_sweep([0.2, 0.4, 0.45, 0.7, 2.0], [False, True, True, True, True], [0, 0, 0, 0, 0]), 0.5),
    # A NaN mean that no divergence flag caught, first in the list: np.argmin over |λ̂ − λ| and
    # min(..., key=...) both return it when the finiteness test is skipped.
    (_sweep([math.nan, 0.1, 0.32, 0.22, 0.5], [True, True, True, True, True], [0, 0, 0, 0, 0]), 0.25),
]


@exercise_check
def check_pick_lr(pick_lr) -> str:
    """The usable lr (no divergence, levelled off, finite) with λ̂ closest to the exact λ."""
    for i, (sweep, exact) in enumerate(SWEEPS):
        got = call_student(pick_lr, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sweep.items()},
                           exact)
        expected = llc_diagnostics.pick_lr(sweep, exact)
        chosen = as_float(got, "pick_lr")
        if chosen in set(sweep["lr"][~np.isfinite(sweep["mean"][:, 0])].tolist()):
            raise CheckFailure(f"in sweep {i + 1} you chose an lr whose mean λ̂ is not a number. Hint: a NaN "
                               "distance |λ̂ − λ| wins np.argmin and min(); test math.isfinite(mean) before comparing.")
        assert_close(chosen, expected, what=f"the chosen lr in sweep {i + 1} (exact λ = {exact})", rtol=1e-12,
                     hint="drop runs with any diverged chain (diverged > 0), runs whose levelled_off is not True "
                          "(False or None) and NaN means; among the rest take argmin |λ̂ − λ|.")
    return f"picks the right ε in {len(SWEEPS)} sweeps"


class _FakeResult:
    """Just what classify_llc_run reads: ``mean`` and ``diagnostics``."""

    def __init__(self, mean: float, **diagnostics) -> None:
        self.mean = mean
        self.diagnostics = {"diverged_chains": [], "levelled_off": True, **diagnostics}

    def __repr__(self) -> str:
        return f"result(mean={self.mean}, diagnostics={self.diagnostics})"


DIAGNOSE_CASES = [
    _FakeResult(0.48, lambda_quadratic=0.49, lambda_quadratic_no_localization=0.5),
    _FakeResult(0.3, diverged_chains=[{"chain": 2, "step": 40, "draw": 10, "loss": math.inf}]),
    _FakeResult(-2.0, diverged_chains=[{"chain": 0, "step": 5, "draw": None, "loss": 1e9}], levelled_off=False),
    _FakeResult(-0.4, levelled_off=False),
    _FakeResult(0.1, levelled_off=False, lambda_quadratic=0.08, lambda_quadratic_no_localization=0.5),
    _FakeResult(0.09, lambda_quadratic=0.08, lambda_quadratic_no_localization=0.5),
    _FakeResult(0.3, lambda_quadratic=0.3, lambda_quadratic_no_localization=0.5),
    # λ̂ low for another reason while the quadratic prediction is not localisation-dominated: the test is on
    # lambda_quadratic, not on the mean (an answer comparing the mean with ½·no_localization fails here).
    _FakeResult(0.2, lambda_quadratic=0.45, lambda_quadratic_no_localization=0.5),
    _FakeResult(0.25, levelled_off=None),
    _FakeResult(0.2),
]


@exercise_check
def check_diagnose(diagnose) -> str:
    """diverged > not a minimum > not equilibrated > localisation-dominated > ok, from the diagnostics."""
    for case in DIAGNOSE_CASES:
        got = call_student(diagnose, case)
        expected = llc_diagnostics.classify_llc_run(case)
        if got != expected:
            raise CheckFailure(
                f"for {case!r} expected {expected!r}, got {got!r}.\nHint: test in this order — any diverged "
                "chain; a negative mean; levelled_off is False (None means 'too few draws to tell', not a "
                "failure); lambda_quadratic < ½ lambda_quadratic_no_localization (only when both are present).")
    return f"all {len(DIAGNOSE_CASES)} runs classified as llc_diagnostics.classify_llc_run does"


@exercise_check
def check_sgld_stationary_variance(sgld_stationary_variance) -> str:
    """Var of w ← (1 − εa/2)w + √ε ξ at stationarity: 1/(a(1 − εa/4)); math.inf when εa ≥ 4 (unstable)."""
    from slt_course_utils.llc_toys import sgld_stationary_variance as reference

    # εa from tiny (continuous-time limit) to just below the stability edge 4; exact arithmetic: rtol 1e-9.
    cases = [(1e-4, 600.0), (5e-3, 597.0), (0.5, 2.0), (1.5, 2.0), (0.3, 13.0)]
    for lr, a in cases:
        got = call_student(sgld_stationary_variance, lr, a)
        assert_close(got, reference(lr, a), what=f"the stationary variance at ε = {lr}, a = {a}", rtol=1e-9,
                     hint="solve v = ρ²v + ε for the AR(1) coefficient ρ = 1 − εa/2 of one SGLD step.")
    for lr, a in [(2.0, 2.0), (1.0, 5.0)]:
        got = call_student(sgld_stationary_variance, lr, a)
        if not (isinstance(got, (int, float)) and got == math.inf):
            raise CheckFailure(
                f"at ε = {lr}, a = {a} (εa = {lr * a:g} ≥ 4) the chain is unstable and has no stationary law; "
                "return math.inf there. Hint: |ρ| ≥ 1 when εa ≥ 4, and the AR(1) recursion then grows without bound.")
    return "SGLD's stationary variance 1/(a(1 − εa/4)) and its stability edge εa = 4"
