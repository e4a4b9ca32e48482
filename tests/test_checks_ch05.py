"""Chapter 05 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import torch

from slt_course_utils.checks import ch05

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("05_phase_transitions")




def _smaller_root(dl, dlam):
    lo, hi = 0.0, math.log(dlam / dl)  # g(1) = ΔL > 0, g(n*) < 0
    g = lambda t: dl * math.exp(t) - dlam * t
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    return math.exp(lo)


def _gradient_ascent(loss_fn, init, lr, steps):
    return SOL["gradient_descent"](lambda w: -loss_fn(w), init, lr, steps)


CASES = {
    "check_local_free_energy": (
        SOL["local_free_energy"],
        {
            "log volume forgotten": lambda lp, loss, n, mask, vol: -torch.logsumexp((lp - n * loss)[mask], 0).item(),
            "mask ignored": lambda lp, loss, n, mask, vol: SOL["local_free_energy"](lp, loss, n, torch.ones_like(mask), vol),
        },
    ),
    "check_phase_probability": (
        SOL["phase_probability"],
        {
            "sign flipped (larger F wins)": lambda f1, f2: SOL["phase_probability"](f2, f1),
            "naive exp overflows": lambda f1, f2: math.exp(-f2) / (math.exp(-f1) + math.exp(-f2)),
        },
    ),
    "check_critical_n": (
        SOL["critical_n"],
        {
            "the smaller root": _smaller_root,
            "log10 instead of log": lambda dl, dlam: SOL["critical_n"](dl, dlam / math.log(10)),
        },
    ),
    "check_gradient_descent": (
        SOL["gradient_descent"],
        {
            "gradient ascent": _gradient_ascent,
            "initial point not stored": lambda f, w, lr, steps: SOL["gradient_descent"](f, w, lr, steps)[1:],
        },
    ),
    "check_phase_coefficients": (
        SOL["phase_coefficients"],
        {
            "d/2 for both": lambda: {"simple": (1.0, 1), "accurate": (1.0, 1)},
            "quartic in one direction only": lambda: {"simple": (0.75, 1), "accurate": (1.0, 1)},
        },
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch05, CASES)
)
