"""Chapter 01 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import numpy as np
import torch
from torch.func import hessian, jacfwd

from slt_course_utils.checks import ch01

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("01_fisher_information")




def _hessian_form(log_lik, w, x, y):
    return -hessian(lambda v: log_lik(v, x, y).mean())(w)


def _outer_of_mean_gradient(log_lik, w, x, y):
    g = jacfwd(lambda v: log_lik(v, x, y))(w).mean(0)
    return torch.outer(g, g)


def _sum_not_mean(log_lik, w, x, y):
    return SOL["fisher_autograd"](log_lik, w, x, y) * x.shape[0]


def _eigen_rank(criterion):
    def rank(info, tol=1e-8):
        eig = torch.linalg.eigvalsh(info)
        return int(criterion(eig, tol).sum().item())

    return rank


CASES = {
    "check_score_gaussian_regression": (
        SOL["score_gaussian_regression"],
        {
            "sign flipped": lambda w, x, y: -SOL["score_gaussian_regression"](w, x, y),
            "factor x forgotten": lambda w, x, y: (y - w[0] - w[1] * x)[:, None].expand(-1, 2),
            "transposed (2, n)": lambda w, x, y: SOL["score_gaussian_regression"](w, x, y).T,
        },
    ),
    "check_fisher_from_scores": (
        SOL["fisher_from_scores"],
        {
            "covariance (centred)": lambda s: torch.cov(s.T, correction=0).reshape(s.shape[1], s.shape[1]),
            "divides by n − 1": lambda s: s.T @ s / (s.shape[0] - 1),
            "n × n Gram matrix": lambda s: s @ s.T / s.shape[0],
        },
    ),
    "check_fisher_autograd": (
        SOL["fisher_autograd"],
        {
            "Hessian form (agrees only in expectation)": _hessian_form,
            "outer product of the mean gradient": _outer_of_mean_gradient,
            "sum instead of mean": _sum_not_mean,
        },
    ),
    "check_laplace_free_energy": (
        SOL["laplace_free_energy_answer"],
        {
            "2π dropped": lambda L, H, n, lp: n * L - lp + 0.5 * H.shape[0] * math.log(n) + 0.5 * torch.logdet(H).item(),
            "log det sign flipped": lambda L, H, n, lp: n * L - lp + 0.5 * H.shape[0] * math.log(n / (2 * math.pi)) - 0.5 * torch.logdet(H).item(),
            "prior forgotten": lambda L, H, n, lp: n * L + 0.5 * H.shape[0] * math.log(n / (2 * math.pi)) + 0.5 * torch.logdet(H).item(),
        },
    ),
    "check_bic": (
        SOL["bic_answer"],
        {
            "d log n (no ½)": lambda n, L, d: n * L + d * math.log(n),
            "L_n not multiplied by n": lambda n, L, d: L + 0.5 * d * math.log(n),
            "log10": lambda n, L, d: n * L + 0.5 * d * math.log10(n),
        },
    ),
    "check_slope_of_free_energy": (
        SOL["slope_of_free_energy"],
        {
            "log10 n": lambda ns, v: float(np.polyfit(np.log10(ns), np.asarray(v, dtype=float), 1)[0]),
            "against n, not log n": lambda ns, v: float(np.polyfit(np.asarray(ns, dtype=float), np.asarray(v, dtype=float), 1)[0]),
            "no intercept": lambda ns, v: float((np.log(ns) @ np.asarray(v, dtype=float)) / (np.log(ns) @ np.log(ns))),
        },
    ),
    "check_fisher_rank": (
        SOL["fisher_rank_answer"],
        {
            "torch.linalg.matrix_rank (machine-precision threshold)": lambda info, tol=1e-8: int(torch.linalg.matrix_rank(info)),
            "absolute threshold": _eigen_rank(lambda eig, tol: eig > tol),
            "counts non-zero eigenvalues": _eigen_rank(lambda eig, tol: eig != 0),
        },
    ),
}




def _lin(sign=1.0, log_n=False, half_d=True, ratio=True):
    def fn(n, w0):
        w0 = torch.as_tensor(w0, dtype=torch.float64)
        d = w0.numel()
        log_term = (0.5 * d if half_d else 1.0) * (math.log(n) if log_n else math.log(1 + n))
        return log_term + sign * 0.5 * float(w0 @ w0) * (n / (1 + n) if ratio else 1.0)
    return fn


LIN_CASES = {
    "check_linear_excess_free_energy": (
        SOL["linear_excess_free_energy"],
        {"minus sign on the |w0|² term": _lin(sign=-1.0), "log n instead of log(1 + n)": _lin(log_n=True),
         "log(1 + n) without d/2": _lin(half_d=False), "|w0|²/2 without n/(1 + n)": _lin(ratio=False)},
    ),
}

CASES.update(LIN_CASES)

test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch01, CASES)
)
