"""Chapter 08 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import numpy as np
import torch

from slt_course_utils.checks import ch08

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("08_llc_at_scale")




def _forward_reversed(weights, x):
    h = x
    for W in reversed(weights):
        h = h @ W.T if h.shape[-1] == W.shape[1] else h
    return h


def _half_rank_first_layer_only(weights):
    after = weights[-1]
    for W in reversed(weights[1:-1]):
        after = after @ W
    block = torch.kron(after, torch.eye(weights[0].shape[1], dtype=after.dtype))
    return int(torch.linalg.matrix_rank(block)) / 2


CASES = {
    "check_dln_forward": (
        SOL["dln_forward"],
        {"layers in reverse order": _forward_reversed,
         "first layer only": lambda weights, x: x @ weights[0].T},
    ),
    "check_dln_num_parameters": (
        SOL["dln_num_parameters"],
        {"sum of widths": lambda widths: sum(widths),
         "with biases": lambda widths: sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))},
    ),
    "check_llc_from_trace": (
        SOL["llc_from_trace"],
        {"beta = 1 (n instead of n/log n)": lambda t, ls, n: n * (t.mean(1) - ls),
         "nβ from the batch size 200": lambda t, ls, n: 200 / math.log(200) * (t.mean(1) - ls)},
    ),
    "check_scaling_exponent": (
        SOL["scaling_exponent"],
        {"ratio of the end points, not a fit": lambda d, t: float(np.log(t[-1] / t[0]) / np.log(d[-1] / d[0])) + 0.05,
         "slope of t against d": lambda d, t: float(np.polyfit(d, t, 1)[0])},
    ),
    "check_half_rank_dmu": (
        SOL["half_rank_dmu"],
        {"first layer only": _half_rank_first_layer_only,
         "H_1·H_{L+1}/2 everywhere (the generic value)": lambda ws: ws[0].shape[1] * ws[-1].shape[0] / 2,
         "d/2": lambda ws: sum(w.numel() for w in ws) / 2},
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch08, CASES)
)
