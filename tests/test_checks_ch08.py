"""Chapter 08 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import numpy as np
import pytest

from slt_course_utils.checks import CheckFailure, ch08

from .conftest import solution_namespace

SOL = solution_namespace("08_llc_at_scale")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise not done yet: replace this line with your solution.")


def _forward_reversed(weights, x):
    h = x
    for W in reversed(weights):
        h = h @ W.T if h.shape[-1] == W.shape[1] else h
    return h


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
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_passes_on_the_solution(name, capsys):
    getattr(ch08, name)(CASES[name][0])
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_fails_on_the_stub(name):
    with pytest.raises(CheckFailure, match="not implemented yet") as info:
        getattr(ch08, name)(stub)
    assert info.value.not_implemented


@pytest.mark.parametrize(
    ("name", "wrong"), [(name, wrong) for name in sorted(CASES) for wrong in sorted(CASES[name][1])]
)
def test_check_rejects_a_plausible_wrong_answer(name, wrong):
    with pytest.raises(CheckFailure) as info:
        getattr(ch08, name)(CASES[name][1][wrong])
    assert not info.value.not_implemented
