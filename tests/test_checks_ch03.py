"""Chapter 03 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math
from fractions import Fraction

import numpy as np
import torch

from slt_course_utils import volume
from slt_course_utils.checks import ch03

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("03_learning_coefficient")




def _estimate_with_m(force_m=None, scale=1.0):
    def estimate(potentials, num_samples, seed):
        out = {}
        for name, (K, sampler, m) in potentials.items():
            fit = ch03.reference_estimate(K, sampler, force_m or m, num_samples, seed)
            out[name] = (fit.lam * scale, fit.lam_se)
        return out

    return estimate


def _newton_vertices_only(exponents):
    return min(Fraction(max(a, b)) for a, b in exponents)


CASES = {
    "check_volume_fraction": (
        SOL["volume_fraction"],
        {
            "counts instead of fractions": lambda k, e: (k[None, :] < e[:, None]).sum(1).double(),
            "fraction above ε": lambda k, e: (k[None, :] >= e[:, None]).double().mean(1),
        },
    ),
    "check_fit_slope": (
        SOL["fit_slope"],
        {
            "no logs": lambda e, v: float(np.polyfit(np.asarray(e), np.asarray(v), 1)[0]),
            "log10 of V against ln ε": lambda e, v: float(np.polyfit(np.log(np.asarray(e)), np.log10(np.asarray(v)), 1)[0]),
        },
    ),
    "check_rlct_normal_crossing": (
        SOL["rlct_normal_crossing_answer"],
        {
            "prior power forgotten": lambda k, h: SOL["rlct_normal_crossing_answer"](k, [0] * len(k)),
            "multiplicity always 1": lambda k, h: (SOL["rlct_normal_crossing_answer"](k, h)[0], 1),
            "float instead of Fraction": lambda k, h: (float(SOL["rlct_normal_crossing_answer"](k, h)[0]), SOL["rlct_normal_crossing_answer"](k, h)[1]),
            "max instead of min": lambda k, h: (max(Fraction(hj + 1, 2 * kj) for kj, hj in zip(k, h) if kj), 1),
        },
    ),
    "check_blowup_chart": (
        SOL["blowup_chart"],
        {
            "Jacobian forgotten": lambda a, b: ((2 * a + b, a), (0, 0)),
            "u-power of w1 w2 counted once": lambda a, b: ((a + b, a), (1, 0)),
        },
    ),
    "check_estimate_rlcts": (
        SOL["estimate_rlcts"],
        {
            "multiplicity ignored (m = 1)": _estimate_with_m(force_m=1),
            "slope 10% off": _estimate_with_m(scale=1.1),
            "placeholder standard error": lambda p, n, s: {k: (v[0], 1.0) for k, v in _estimate_with_m()(p, n, s).items()},
        },
    ),
    "check_newton_distance": (
        SOL["newton_distance"],
        {
            "vertices only, edges ignored": _newton_vertices_only,
            "returns λ = 1/t": lambda exps: 1 / SOL["newton_distance"](exps),
        },
    ),
}




def test_solution_volume_fraction_agrees_with_the_package():
    k = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(SOL["volume_fraction"](k, eps), volume.volume_curve(k, eps).volume)


def _derived(**changes):
    """The solution's dict with some entries replaced (plausible slips)."""
    def fn():
        out = dict(SOL["derived_rlcts"]())
        out.update(changes)
        return out
    return fn


def _zeta_no_second_term(lam, m, z):
    return lam * math.factorial(m - 1) / (z + lam) ** m


def _zeta_order_m_minus_1(lam, m, z):
    return lam / (z + lam) ** max(m - 1, 1)


def _zeta_no_factorial(lam, m, z):
    return lam / (z + lam) ** m - (1 / (z + lam) ** (m - 1) if m >= 2 else 0.0)


def _zeta_sign(lam, m, z):
    return lam * math.factorial(m - 1) / (z + lam) ** m + (math.factorial(m - 1) / (z + lam) ** (m - 1) if m >= 2 else 0.0)


NEW_CASES = {
    "check_derived_rlcts": (
        SOL["derived_rlcts"],
        {
            "tanh: regular value d/2": _derived(**{"a·tanh(bx)": (Fraction(1), 1)}),
            "tanh: m = 1 (tie missed)": _derived(**{"a·tanh(bx)": (Fraction(1, 2), 1)}),
            "abc: m = 2": _derived(**{"abc·x": (Fraction(1, 2), 2)}),
            "a²b: λ from the b coordinate": _derived(**{"a²b·x": (Fraction(1, 2), 1)}),
            "a²b: λ = 1/8 (K squared twice)": _derived(**{"a²b·x": (Fraction(1, 8), 1)}),
            "prior ignored": _derived(**{"a·tanh(bx), prior ∝ |a|": (Fraction(1, 2), 2)}),
            "prior on the wrong coordinate's ratio": _derived(**{"a·tanh(bx), prior ∝ |a|": (Fraction(1), 1)}),
            "floats": _derived(**{"a·tanh(bx)": (0.5, 2)}),
            "missing key": lambda: {"a·tanh(bx)": (Fraction(1, 2), 2)},
        },
    ),
    "check_zeta_from_volume": (
        SOL["zeta_from_volume"],
        {"second term forgotten": _zeta_no_second_term, "pole of order m − 1": _zeta_order_m_minus_1,
         "(m − 1)! forgotten": _zeta_no_factorial, "sign of the second term": _zeta_sign},
    ),
}

CASES.update(NEW_CASES)

test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch03, CASES)
)
