"""Chapter 07 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import torch

from slt_course_utils import tms
from slt_course_utils.checks import ch07

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("07_toy_models_of_superposition")




def _kgon_no_positive(k, c, length, bias, positive_biases=0):
    return SOL["kgon"](k, c, length, bias, 0)


def _classify_dead_last(W, b):
    k = int((W.norm(dim=0) > 0.5).sum())
    return k, int((b[k:] > 0).sum())


def _loss_monte_carlo(W, b, num=200_000):
    g = torch.Generator().manual_seed(0)
    c = W.shape[1]
    x = torch.zeros(num, c, dtype=torch.float64)
    x[torch.arange(num), torch.randint(c, (num,), generator=g)] = torch.rand(num, generator=g, dtype=torch.float64)
    return float((torch.relu(x @ (W.T @ W) + b) - x).pow(2).sum(-1).mean())


def _loss_mean_over_outputs(W, b):
    return SOL["high_sparsity_loss"](W, b) / W.shape[1]


def _hessian_rank_over_W_only(W, b, rel_tol=1e-9):
    hess = torch.autograd.functional.hessian(lambda w: tms.population_loss(w, b), W.double())
    eig = torch.linalg.eigvalsh(hess.reshape(W.numel(), W.numel()))
    return int((eig > rel_tol * eig.abs().max()).sum()) / 2


def _hessian_rank_absolute_tolerance(W, b, rel_tol=1e-9):
    return int((tms.hessian_eigenvalues(W, b) > 1e-2).sum()) / 2


CASES = {
    "check_tms_forward": (
        SOL["tms_forward_batched"],
        {
            "bias outside the ReLU": lambda W, b, x: torch.relu(x @ (W.transpose(-1, -2) @ W)) + b[:, None, :],
            "W Wᵀ instead of Wᵀ W": lambda W, b, x: torch.relu(x[..., :2] @ (W @ W.transpose(-1, -2))),
        },
    ),
    "check_high_sparsity_loss": (
        SOL["high_sparsity_loss"],
        {"mean over outputs instead of sum": _loss_mean_over_outputs,
         "ReLU forgotten": lambda W, b: SOL["high_sparsity_loss"](W, b - 10) * 0 + 1.0,
         "Monte Carlo with 2·10⁵ samples (the exercise asks for quadrature)": _loss_monte_carlo},
    ),
    "check_kgon": (
        SOL["kgon"],
        {
            "positive biases ignored": _kgon_no_positive,
            "angles 2πj/c instead of 2πj/k": lambda k, c, length, bias, s=0: SOL["kgon"](c, c, length, bias, 0),
        },
    ),
    "check_classify": (
        SOL["classify"],
        {
            "counts all positive biases": lambda W, b: (int((W.norm(dim=0) > 0.5).sum()), int((b > 0).sum())),
            "threshold zero": lambda W, b: SOL["classify"](W, b, threshold=0.0),
            "assumes the dead columns come last": _classify_dead_last,
        },
    ),
    "check_critical_sample_size": (
        SOL["critical_sample_size"],
        {
            "log ignored: n = Δλ/ΔL": lambda la, ka, lb, kb: (kb - ka) / (la - lb),
            "BIC-style d/2 instead of λ": lambda la, ka, lb, kb: SOL["critical_sample_size"](la, 9.0, lb, 9.0 + 2 * (kb - ka)),
        },
    ),
    "check_llc_from_hessian": (
        SOL["llc_from_hessian"],
        {
            "d/2, as for a regular model": lambda W, b, rel_tol=1e-9: 3 * W.shape[1] / 2,
            "Hessian in W only (biases forgotten)": _hessian_rank_over_W_only,
            "absolute tolerance 1e-2": _hessian_rank_absolute_tolerance,
            "rank + 1 (flat rotation counted)": lambda W, b, rel_tol=1e-9: SOL["llc_from_hessian"](W, b) + 0.5,
        },
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch07, CASES)
)
