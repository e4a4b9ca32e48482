"""Chapter 00 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import torch

from slt_course_utils.checks import ch00

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("00_bayesian_learning")




def _mh_variant(kind):
    def sampler(log_density, w_init, step, num_steps, generator):
        w = torch.tensor(float(w_init), dtype=torch.float64)
        logp = log_density(w)
        out = []
        while len(out) < num_steps:
            prop = w + step * torch.randn((), generator=generator, dtype=torch.float64)
            lp = log_density(prop)
            u = torch.log(torch.rand((), generator=generator, dtype=torch.float64))
            accept = {"greedy": lp > logp, "always": True, "accepted_only": u < lp - logp}[kind]
            if accept:
                w, logp = prop, lp
                out.append(w)
            elif kind != "accepted_only":
                out.append(w)
        return torch.stack(out)

    return sampler


CASES = {
    "check_empirical_loss": (
        SOL["empirical_loss"],
        {
            "sum instead of mean": lambda w, x: 0.5 * math.log(2 * math.pi) * len(x) + 0.5 * ((x[None] - w[:, None]) ** 2).sum(1),
            "constant dropped": lambda w, x: 0.5 * ((x[None] - w[:, None]) ** 2).mean(1),
        },
    ),
    "check_log_posterior_on_grid": (
        SOL["log_posterior_on_grid"],
        {
            "beta forgotten": lambda lp, loss, n, beta, dw: SOL["log_posterior_on_grid"](lp, loss, n, 1.0, dw),
            "normalised as probabilities, not a density": lambda lp, loss, n, beta, dw: torch.log_softmax(lp - n * beta * loss, 0),
        },
    ),
    "check_free_energy": (
        SOL["free_energy"],
        {
            "naive exp underflows": lambda lp, loss, n, beta, dw: -math.log(float((lp - n * beta * loss).exp().sum() * dw) or 1e-320),
            "log dw forgotten": lambda lp, loss, n, beta, dw: -torch.logsumexp(lp - n * beta * loss, 0).item(),
        },
    ),
    "check_conjugate_posterior": (
        SOL["conjugate_posterior"],
        {
            "beta ignored": lambda x, m, s, beta: SOL["conjugate_posterior"](x, m, s, 1.0),
            "prior ignored": lambda x, m, s, beta: (x.mean().item(), 1 / (len(x) * beta)),
            "returns a dict": lambda x, m, s, beta: {"mean": 0.0, "var": 1.0},
        },
    ),
    "check_predictive_density": (
        SOL["predictive_density"],
        {
            "plug-in at the MAP": lambda xn, w, lp, dw: torch.exp(-0.5 * (xn - w[lp.argmax()]) ** 2) / math.sqrt(2 * math.pi),
        },
    ),
    "check_generalisation_error": (
        SOL["generalisation_error"],
        {
            "KL reversed": lambda w0, mu, v: 0.5 * math.log(1 / (1 + v)) + (1 + v + (w0 - mu) ** 2) / 2 - 0.5,
            "plug-in variance 1": lambda w0, mu, v: (w0 - mu) ** 2 / 2,
        },
    ),
    "check_metropolis_hastings": (
        SOL["metropolis_hastings_1d"],
        {
            "greedy: only uphill moves": _mh_variant("greedy"),
            "always accept (random walk)": _mh_variant("always"),
            "records only accepted states": _mh_variant("accepted_only"),
        },
    ),
}




def test_free_energy_naive_exp_gets_an_underflow_hint():
    """math.log(0) raises "math domain error"; the failure must say why (underflow) and what to do (log space)."""
    import pytest

    from slt_course_utils.checks import CheckFailure

    naive = lambda lp, loss, n, beta, dw: -math.log(float((lp - n * beta * loss).exp().sum() * dw))  # noqa: E731
    with pytest.raises(CheckFailure, match="underflow") as info:
        ch00.check_free_energy(naive)
    assert "logsumexp" in str(info.value)
    inf_version = lambda lp, loss, n, beta, dw: -torch.log((lp - n * beta * loss).exp().sum() * dw).item()  # noqa: E731
    with pytest.raises(CheckFailure, match="underflow"):
        ch00.check_free_energy(inf_version)


def _egn(bias=True, var=True, pred_var_one=False):
    def fn(n, w0, s0):
        v = 1.0 / (1.0 / s0**2 + n)
        m2 = (w0**2 * (v / s0**2) ** 2 if bias else 0.0) + (v**2 * n if var else 0.0)
        s2 = 1.0 if pred_var_one else 1.0 + v
        return 0.5 * math.log(s2) + (1.0 + m2) / (2 * s2) - 0.5
    return fn


EGN_CASES = {
    "check_expected_generalisation_error": (
        SOL["expected_generalisation_error"],
        {"prior bias forgotten": _egn(bias=False), "sampling variance forgotten": _egn(var=False),
         "predictive variance 1": _egn(pred_var_one=True), "leading term only": lambda n, w0, s0: 0.5 / n,
         "v = 1/n (prior ignored)": lambda n, w0, s0: 0.5 * math.log(1 + 1 / n) + (1 + 1 / n) / (2 * (1 + 1 / n)) - 0.5},
    ),
}
CASES.update(EGN_CASES)

test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch00, CASES)
)
