"""Checks for chapter 07, toy models of superposition (solutions/07_toy_models_of_superposition.ipynb)."""

from __future__ import annotations

import math

import torch

from slt_course_utils import tms
from slt_course_utils.checks._core import (
    CheckFailure,
    assert_close,
    call_student,
    exercise_check,
    too_large_or_small,
)


def critical_sample_size(loss_a: float, llc_a: float, loss_b: float, llc_b: float) -> float:
    """The n > Δλ/ΔL solving n L_a + λ_a log n = n L_b + λ_b log n (L_a > L_b, λ_a < λ_b), by bisection."""
    dL, dlam = loss_a - loss_b, llc_b - llc_a
    if dL <= 0 or dlam <= 0:
        raise ValueError("need loss_a > loss_b and llc_a < llc_b (a simple, lossy phase a vs a complex phase b).")
    lo, hi = dlam / dL, dlam / dL
    while hi * dL - dlam * math.log(hi) <= 0:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid * dL - dlam * math.log(mid) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@exercise_check
def check_tms_forward(tms_forward_batched) -> str:
    """ReLU(x WᵀW + b) with a leading seed dimension."""
    g = torch.Generator().manual_seed(0)
    for S, n, c in [(1, 5, 6), (4, 7, 6), (3, 2, 5)]:
        W = torch.randn(S, 2, c, generator=g, dtype=torch.float64)
        b = torch.randn(S, c, generator=g, dtype=torch.float64)
        x = tms.sample_high_sparsity(n, c, generator=g, num_seeds=S).double()
        got = call_student(tms_forward_batched, W, b, x)
        assert_close(got, tms.tms_forward(W, b, x), what=f"tms_forward_batched with {S} seeds, c = {c}",
                     rtol=1e-6, atol=1e-9,
                     hint="the Gram matrix WᵀW of each seed is W.transpose(-1, -2) @ W, shape (S, c, c); "
                          "add b[:, None, :] before the ReLU (the bias is added after WᵀW, inside the ReLU).")
    return "batched forward pass matches on 3 shapes"


@exercise_check
def check_high_sparsity_loss(high_sparsity_loss) -> str:
    """L = (1/c) Σ_i ∫_0^1 ‖ReLU(μ WᵀW e_i + b) − μ e_i‖² dμ."""
    g = torch.Generator().manual_seed(1)
    cases = [tms.kgon_parameters(5, 6, 1), tms.kgon_parameters(4, 5, 0)]
    cases += [(torch.randn(2, 6, generator=g, dtype=torch.float64),
               0.5 * torch.randn(6, generator=g, dtype=torch.float64)) for _ in range(2)]
    for W, b in cases:
        got = call_student(high_sparsity_loss, W, b)
        # Quadrature is allowed: 1e-4 relative is met by a trapezoid rule with ≥ 2000 nodes.
        assert_close(got, tms.population_loss(W, b), what="high_sparsity_loss(W, b)", rtol=1e-4, atol=1e-7,
                     hint="average over the c input features i (1/c) of the integral over μ ∈ [0, 1] of the "
                          "squared error summed over ALL c outputs; e.g. a trapezoid rule on a fine μ grid.")
    return "population loss matches at 2 k-gons and 2 random points"


@exercise_check
def check_kgon(kgon) -> str:
    """(W, b) of the k^{σ+}-gon: k columns of length l at angles 2πj/k, biases b*; dead columns 0."""
    for k, c, sigma in [(5, 6, 0), (5, 6, 1), (4, 6, 2), (6, 6, 0)]:
        length, bias = tms.kgon_optimal_shape(k)
        got = call_student(kgon, k, c, length, bias, sigma)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"kgon({k}, {c}, ...) should return a pair (W, b); got {type(got).__name__}.")
        W, b = (torch.as_tensor(t, dtype=torch.float64) for t in got)
        W_ref, b_ref = tms.kgon_parameters(k, c, sigma)
        hint = ("live columns j = 0..k−1 are l·(cos 2πj/k, sin 2πj/k); the c − k dead columns are zero; the first "
                "σ dead features get bias 1/(2c), the other dead ones a negative bias (e.g. −1).")
        assert_close(W.T @ W, W_ref.T @ W_ref, what=f"the Gram matrix WᵀW of the {k}-gon (c = {c})",
                     rtol=1e-6, atol=1e-9, hint=hint)
        assert_close(b[: k + sigma], b_ref[: k + sigma], what=f"live and positive biases of the {tms.kgon_label(k, sigma)}-gon",
                     rtol=1e-6, atol=1e-9, hint=hint)
        if not bool((b[k + sigma:] < 0).all()):
            raise CheckFailure(f"the remaining c − k − σ = {c - k - sigma} dead biases should be negative; got "
                               f"{b[k + sigma:].tolist()}.\nHint: {hint}")
        assert_close(tms.population_loss(W, b), tms.PAPER_KGON_LOSS.get((k, c, sigma), tms.population_loss(W_ref, b_ref)),
                     what="its population loss (the paper's value)", rtol=0, atol=2e-5, hint=hint)
    return "4 k-gons have the right shape, biases and the paper's losses"


@exercise_check
def check_classify(classify) -> str:
    """(k, σ) for constructed and perturbed k-gons."""
    g = torch.Generator().manual_seed(3)
    for k, sigma in [(4, 0), (4, 2), (5, 0), (5, 1), (6, 0), (3, 1)]:
        W, b = tms.kgon_parameters(k, 6, sigma, rotation=float(torch.rand(1, generator=g)) * 6)
        for scale in (0.0, 0.05):
            # Trained models put their dead features anywhere: shuffle the features (W's columns and b together)
            # so that an answer assuming "the first k columns are the live ones" fails.
            perm = torch.randperm(6, generator=g)
            while bool((perm[:k] == torch.arange(k)).all()):
                perm = torch.randperm(6, generator=g)
            Wp = W[:, perm] + scale * torch.randn(W.shape, generator=g, dtype=W.dtype)
            bp = b[perm] + scale * 0.2 * torch.randn(b.shape, generator=g, dtype=b.dtype)
            got = call_student(classify, Wp, bp)
            try:
                got = (int(got[0]), int(got[1]))
            except (TypeError, ValueError, IndexError) as err:
                raise CheckFailure(f"classify should return a pair of ints (k, σ); got {got!r}.") from err
            if got != (k, sigma):
                raise CheckFailure(
                    f"classify on a {tms.kgon_label(k, sigma)}-gon (perturbation {scale}) returned {got}: "
                    + (f"k is {too_large_or_small(got[0], k)}." if got[0] != k else f"σ is {too_large_or_small(got[1], sigma)}.")
                    + "\nHint: count the columns with norm above a threshold (e.g. 0.5) as live; "
                    "among the OTHER features (wherever they sit: the columns come in any order) count the biases "
                    "that are positive.")
    return "6 k-gon types recognised, exact and perturbed, features in any order"


@exercise_check
def check_critical_sample_size(critical_sample_size_fn) -> str:
    """The n where two phases' free energies n L + λ log n cross."""
    cases = [(tms.PAPER_KGON_LOSS[(5, 6, 0)], 7.0, tms.PAPER_KGON_LOSS[(6, 6, 0)], 8.5),
             (tms.PAPER_KGON_LOSS[(4, 6, 1)], 5.0, tms.PAPER_KGON_LOSS[(5, 6, 1)], 8.5), (0.2, 1.0, 0.1, 3.0)]
    for la, ka, lb, kb in cases:
        got = call_student(critical_sample_size_fn, la, ka, lb, kb)
        assert_close(got, critical_sample_size(la, ka, lb, kb), what=f"critical n for (L, λ) = ({la:.4g}, {ka}) vs "
                     f"({lb:.4g}, {kb})", rtol=1e-3,
                     hint="solve n(L_a − L_b) = (λ_b − λ_a) log n; g(n) = nΔL − Δλ log n is smallest at n = Δλ/ΔL, "
                          "and the crossing you want is the larger root, beyond that point (bisection works).")
    return "critical sample sizes match for 3 pairs of phases"


@exercise_check
def check_llc_from_hessian(llc_from_hessian) -> str:
    """λ = rank(∇²L)/2 at smooth k-gon critical points (Morse–Bott), for 3c parameters (W and b)."""
    cases = [(5, 6, 0), (5, 6, 1), (6, 6, 0), (6, 7, 1), (8, 8, 0), (5, 7, 2)]
    for k, c, sigma in cases:
        W, b = tms.kgon_parameters(k, c, sigma, rotation=0.7)
        got = call_student(llc_from_hessian, W.clone(), b.clone())
        expected = tms.kgon_llc_from_hessian(k, c, sigma)
        assert_close(got, expected, what=f"λ of the {tms.kgon_label(k, sigma)}-gon at c = {c} (d = {3 * c})",
                     rtol=0, atol=1e-9,
                     hint="differentiate twice with respect to ALL 3c parameters (the 2c entries of W and the c "
                          "biases) in float64, count the eigenvalues above a RELATIVE tolerance (e.g. 1e-9 × the "
                          "largest: the 8-gon's smallest curved direction is only 2.7e-3), and return rank/2.")
    return "λ = rank/2 matches at 6 k-gons, c = 6, 7, 8"
