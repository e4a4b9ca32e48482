"""Chapter 04 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import pytest
import torch

from slt_course_utils.checks import ch04

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("04_free_energy")




def _slope(x, y):
    xc = x - x.mean()
    return ((xc * (y - y.mean())).sum() / (xc * xc).sum()).item()


def _gibbs_waic(ll):
    return (-ll.mean() + ll.var(0, unbiased=False).sum() / ll.shape[1]).item()


def _plug_in_g(t0, draws):
    tb = draws.mean().item()
    return (t0 - tb) ** 2 / 2  # KL(N(t0 x, 1) ‖ N(t̄ x, 1)) averaged over x


def _fluctuation_no_prior_factor(lam, one_sided=True):
    return SOL["singular_fluctuation"](0.5, one_sided)  # |u|^{2λ−1} dropped: every λ reads like λ = ½


CASES = {
    "check_fit_lambda": (
        SOL["fit_lambda"],
        {
            "multiplicity ignored": lambda ns, ex, m: SOL["fit_lambda"](ns, ex, 1),
            "slope against n, not log n": lambda ns, ex, m: _slope(torch.as_tensor(ns, dtype=torch.float64), ex + (m - 1) * torch.log(torch.log(ns))),
            "sign of the log log term": lambda ns, ex, m: _slope(torch.log(ns), ex - (m - 1) * torch.log(torch.log(ns))),
        },
    ),
    "check_log_state_density": (
        SOL["log_state_density"],
        {
            "p forgotten": lambda s, k, p: SOL["log_state_density"](s, k, 1) if p != 1 else SOL["log_state_density"](s, k, 1) + 1,
            "unnormalised": lambda s, k, p: (k - 1) * torch.log(s) - s / p,
        },
    ),
    "check_wbic_on_grid": (
        SOL["wbic_on_grid"],
        {
            "beta = 1": lambda lp, loss, n, dw: (n * (torch.softmax(lp - n * loss, 0) * loss).sum()).item(),
            "missing factor n": lambda lp, loss, n, dw: SOL["wbic_on_grid"](lp, loss, n, dw) / n,
        },
    ),
    "check_waic": (
        SOL["waic_from_log_lik"],
        {
            "Gibbs training loss (mean of log p)": _gibbs_waic,
            "unbiased variance (torch's default)": lambda ll: (-(torch.logsumexp(ll, 0) - math.log(ll.shape[0])).mean()
                                                               + ll.var(0).sum() / ll.shape[1]).item(),
            "functional variance forgotten": lambda ll: (-(torch.logsumexp(ll, 0) - math.log(ll.shape[0])).mean()).item(),
        },
    ),
    "check_generalisation_error": (
        SOL["generalisation_error"],
        {
            "plug-in at the posterior mean": _plug_in_g,
            "returns a tensor of shape (S,)": lambda t0, draws: torch.zeros_like(draws),
        },
    ),
    "check_singular_fluctuation": (
        SOL["singular_fluctuation"],
        {
            "2ν instead of ν": lambda lam, one_sided=True: 2 * SOL["singular_fluctuation"](lam, one_sided),
            "prior factor |u|^{2λ−1} dropped": _fluctuation_no_prior_factor,
            "support ignored (always two-sided)": lambda lam, one_sided=True: SOL["singular_fluctuation"](lam, False),
            "plug-in ν = λ": lambda lam, one_sided=True: lam,
        },
    ),
    "check_bic_overestimate": (
        SOL["bic_overestimate"],
        {
            "sign of the log log term": lambda n, d, lam, m: (d / 2 - lam) * math.log(n) - (m - 1) * math.log(math.log(n)),
            "log log term forgotten": lambda n, d, lam, m: (d / 2 - lam) * math.log(n),
        },
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch04, CASES)
)


def test_waic_unbiased_variance_gets_its_own_hint():
    def unbiased(ll):
        S, n = ll.shape
        return (-(torch.logsumexp(ll, 0) - math.log(S)).mean() + ll.var(0).sum() / n).item()

    with pytest.raises(AssertionError) as err:
        ch04.check_waic(unbiased)
    assert "unbiased=False" in str(err.value)
