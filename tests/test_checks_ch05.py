"""Chapter 05 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import pytest
import torch

from slt_course_utils import phase_transitions as pt
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


def _naive_exp_free_energy(lp, loss, n, mask, vol):
    return -math.log((torch.exp(lp - n * loss)[mask].sum() * vol).item())


def _laplace(P, sign):
    hess = torch.autograd.functional.hessian(P.loss, torch.tensor([1.0, 0.0], dtype=torch.float64))
    minus_log_prior = -float(P.log_prior(torch.tensor([1.0, 0.0], dtype=torch.float64)))
    return minus_log_prior - math.log(2 * math.pi) + sign * math.log(float(torch.linalg.det(hess)))


def _constants_standard_prior(P):
    got = SOL["phase_constants"](P)
    shift = math.log(P.prior_std**2) + 0.5 / P.prior_std**2 - 0.5  # −log φ(±1, 0) with sd s, minus with sd 1
    return {k: v - shift for k, v in got.items()}


def _gradient_ascent(loss_fn, init, lr, steps):
    return SOL["gradient_descent"](lambda w: -loss_fn(w), init, lr, steps)


CASES = {
    "check_local_free_energy": (
        SOL["local_free_energy"],
        {
            "log volume forgotten": lambda lp, loss, n, mask, vol: -torch.logsumexp((lp - n * loss)[mask], 0).item(),
            "mask ignored": lambda lp, loss, n, mask, vol: SOL["local_free_energy"](lp, loss, n, torch.ones_like(mask), vol),
            "naive exp underflows at large n": _naive_exp_free_energy,
            "renormalised over the whole grid": lambda lp, loss, n, mask, vol: -(
                torch.logsumexp((lp - n * loss)[mask], 0) - torch.logsumexp((lp - n * loss).flatten(), 0)).item(),
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
            "d/2 for both": lambda: {"simple": (1.0, 1), "accurate": (1.0, 1), "sextic": (0.5, 2)},
            "quartic in one direction only": lambda: {"simple": (0.75, 1), "accurate": (1.0, 1), "sextic": (0.5, 2)},
            "sextic: m = 1 (edge, not vertex)": lambda: {"simple": (0.5, 1), "accurate": (1.0, 1), "sextic": (0.5, 1)},
            "sextic: the leading power along u, 1/6 + 1/4": lambda: {"simple": (0.5, 1), "accurate": (1.0, 1),
                                                                   "sextic": (5 / 12, 1)},
            "sextic key missing": lambda: {"simple": (0.5, 1), "accurate": (1.0, 1)},
        },
    ),
    "check_phase_constants": (
        SOL["phase_constants"],
        {
            "prior forgotten": lambda P: {k: v + float(P.log_prior(torch.tensor(P.minima[k], dtype=torch.float64)))
                                          for k, v in SOL["phase_constants"](P).items()},
            "standard normal prior (sd ignored)": _constants_standard_prior,
            "log det with the wrong sign": lambda P: {**SOL["phase_constants"](P), "accurate": _laplace(P, -0.5)},
            "read off the quadrature at n = 10⁶": lambda P: pt.local_free_energy_constants(P, n=1e6),
        },
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch05, CASES)
)


def test_local_free_energy_underflow_gets_a_hint():
    with pytest.raises(AssertionError) as err:
        ch05.check_local_free_energy(_naive_exp_free_energy)
    assert "underflow" in str(err.value) and "logsumexp" in str(err.value)


def test_right_answers_in_other_forms_pass():
    ch05.check_phase_probability(lambda f1, f2: torch.sigmoid(torch.tensor(f1 - f2)).item())  # float32
    ch05.check_phase_coefficients(lambda: {"simple": [0.5, 1], "accurate": [torch.tensor(1.0), 1],
                                           "sextic": (torch.tensor(0.5), 2.0)})


def test_phase_coefficients_message_does_not_print_the_answer():
    with pytest.raises(AssertionError) as err:
        ch05.check_phase_coefficients(lambda: {"simple": (0.5, 1), "accurate": (1.0, 1), "sextic": (0.5, 1)})
    message = str(err.value)
    assert "m is not right" in message and "(0.5, 2)" not in message
