"""Checks for chapter 08, the LLC at scale (solutions/08_llc_at_scale.ipynb)."""

from __future__ import annotations

import math

import numpy as np
import torch

from slt_course_utils import dln
from slt_course_utils.checks._core import assert_close, call_student, exercise_check


@exercise_check
def check_dln_forward(dln_forward) -> str:
    """f(x) = W_L ⋯ W_1 x on a batch x of shape (n, H_1)."""
    for seed, widths in [(0, [3, 4, 2]), (1, [5, 5, 5, 5]), (2, [2, 7, 1, 3, 4])]:
        g = torch.Generator().manual_seed(seed)
        net = dln.random_true_network(widths, min(widths), generator=g, dtype=torch.float64)
        x = torch.randn(6, widths[0], generator=g, dtype=torch.float64)
        weights = [layer.weight.detach() for layer in net.layers]
        got = call_student(dln_forward, weights, x)
        assert_close(got, net(x).detach(), what=f"dln_forward with widths {widths}", rtol=1e-9, atol=1e-12,
                     hint="apply the layers in order: h = x; for W in weights: h = h @ W.T (W_s has shape (H_{s+1}, H_s)).")
    return "forward pass matches for 3 architectures"


@exercise_check
def check_dln_num_parameters(dln_num_parameters) -> str:
    """d = Σ_s H_s H_{s+1}."""
    for widths in ([5, 5, 5, 5], [4, 3, 5, 2], [100, 100, 100, 100, 100], [784, 1]):
        got = call_student(dln_num_parameters, widths)
        assert_close(got, dln.num_parameters(widths), what=f"dln_num_parameters({widths})", rtol=0, atol=0,
                     hint="one H_s × H_{s+1} matrix per pair of consecutive widths; no biases.")
    return "parameter counts match for 4 architectures"


@exercise_check
def check_llc_from_trace(llc_from_trace) -> str:
    """λ̂ per chain = nβ (mean over draws of L − L(w*)), nβ = n / log n."""
    g = torch.Generator().manual_seed(5)
    for chains, draws, n in [(4, 50, 1000), (1, 10, 10_000), (16, 200, 123_456)]:
        trace = 0.1 + 0.01 * torch.rand(chains, draws, generator=g, dtype=torch.float64)
        loss_star = 0.1
        got = call_student(llc_from_trace, trace, loss_star, n)
        expected = n / math.log(n) * (trace.mean(1) - loss_star)
        assert_close(got, expected, what=f"llc_from_trace for {chains} chains, n = {n}", rtol=1e-9,
                     hint="average over the draws axis (dim 1) per chain, subtract L(w*), multiply by nβ = n/log n "
                          "(n the number of samples, not the batch size).")
    return "per-chain λ̂ matches on 3 traces"


@exercise_check
def check_scaling_exponent(scaling_exponent) -> str:
    """The least-squares slope of log t against log d."""
    rng = np.random.default_rng(6)
    for true_slope in (0.5, 1.0, 1.3):
        d = np.logspace(2, 6, 7)
        t = 1e-3 * d**true_slope * np.exp(0.1 * rng.standard_normal(7))
        got = call_student(scaling_exponent, d, t)
        expected = np.polyfit(np.log(d), np.log(t), 1)[0]
        assert_close(got, expected, what="scaling_exponent(sizes, times)", rtol=1e-6,
                     hint="fit a straight line to (log d, log t) by least squares (np.polyfit(..., 1)) and return "
                          "its slope; the base of the logarithm cancels.")
    return "slopes match for 3 synthetic scaling laws"


@exercise_check
def check_half_rank_dmu(half_rank_dmu) -> str:
    """½ rank dμ at W, μ(W) = W_L⋯W_1: the local λ wherever that rank is locally constant."""
    cases = [([5, 5, 5, 5], 2), ([3, 5, 4], 3), ([4, 6, 6, 3], 2)]
    for seed, (widths, r) in enumerate(cases):
        generic = dln.random_true_network(widths, r, generator=torch.Generator().manual_seed(seed),
                                          dtype=torch.float64)
        for name, net in [("a generic", generic), ("the most singular", dln.most_singular_true_network(
                generic, dtype=torch.float64))]:
            weights = [p.detach().clone() for p in net.parameters()]
            expected = int(torch.linalg.matrix_rank(dln.product_jacobian(weights))) / 2
            got = call_student(half_rank_dmu, [w.clone() for w in weights])
            assert_close(got, expected, what=f"half_rank_dmu at {name} true point of widths {widths}, rank {r}",
                         rtol=0, atol=1e-9,
                         hint="differentiate μ with respect to *every* layer (not only W_1): stack the blocks "
                              "W_L⋯W_{s+1} ⊗ (W_{s−1}⋯W_1)ᵀ (or use torch.autograd.functional.jacobian), then "
                              "take torch.linalg.matrix_rank of the (H_{L+1}·H_1) × d matrix and halve it.")
    return "½ rank dμ matches at 6 true points (generic and most singular)"
