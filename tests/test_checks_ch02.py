"""Chapter 02 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import torch

from slt_course_utils import models
from slt_course_utils.checks import ch02

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("02_singular_models")


def _mask_product_approx(a, b, a0, b0, tol):
    """K ≈ ½(ab − a0b0)²: right at the origin, wrong once tanh saturates."""
    return 0.5 * (a * b - a0 * b0) ** 2 < tol


def _mask_no_half(a, b, a0, b0, tol):
    xs, ws = models.trapezoid_normal(0.05)
    diff = a[..., None] * torch.tanh(b[..., None] * xs) - a0 * torch.tanh(b0 * xs)
    return (diff**2 * ws).sum(-1) < tol


def _fisher_no_x(a, b):
    xs, ws = models.trapezoid_normal(0.02)
    t = torch.tanh(b * xs)
    grad = torch.stack([t, a * (1 - t * t)], dim=-1)
    return (grad * ws[:, None]).T @ grad


def _rank_absolute(cut):
    return lambda points, fisher: [int((torch.linalg.eigvalsh(fisher(a, b)) > cut).sum()) for a, b in points.tolist()]


def _rank_positive_eigenvalues(points, fisher):
    return [int((torch.linalg.eigvalsh(fisher(a, b)) > 0).sum()) for a, b in points.tolist()]


def _rank_nonzero_diagonal(points, fisher):
    return [int((torch.diagonal(fisher(a, b)).abs() > 1e-8 * fisher(a, b).abs().max().clamp_min(1e-300)).sum())
            for a, b in points.tolist()]


def _rank_own_fisher_absolute(points, fisher):
    """Ignores the matrices it is given and uses the analytic I with an absolute cut-off."""
    return _rank_absolute(1e-10)(points, lambda a, b: SOL["fisher_tanh_answer"](a, b))


def _fisher_gauss_hermite(nodes):
    def fisher_tanh(a, b):
        xs, ws = models.gauss_hermite_normal(nodes)
        t = torch.tanh(b * xs)
        grad = torch.stack([t, a * xs * (1 - t * t)], dim=-1)
        return (grad * ws[:, None]).T @ grad

    return fisher_tanh


def test_fisher_tanh_accepts_gauss_hermite_100_nodes(capsys):
    """The notation cell offers gauss_hermite_normal() (100 nodes, error 1.5e-5 at b = 2): it must pass."""
    ch02.check_fisher_tanh(_fisher_gauss_hermite(100))
    assert "passed" in capsys.readouterr().out


def test_rank_along_accepts_matrix_rank_with_relative_tolerance(capsys):
    ch02.check_rank_along(lambda points, fisher: [int(torch.linalg.matrix_rank(fisher(a, b), rtol=1e-8).item())
                                                  for a, b in points.tolist()])
    assert "passed" in capsys.readouterr().out


def _flip_a_only(w, perm, signs):
    H = len(perm)
    s = torch.tensor(signs, dtype=torch.float64)
    return torch.cat([s * w[:H][list(perm)], w[H:][list(perm)]])


def _permute_a_only(w, perm, signs):
    H = len(perm)
    s = torch.tensor(signs, dtype=torch.float64)
    return torch.cat([s * w[:H][list(perm)], s * w[H:]])


def _inverse_perm(w, perm, signs):
    inv = [perm.index(h) for h in range(len(perm))]
    return SOL["apply_symmetry"](w, inv, signs)


def _gap_log10(ns, F, nL, d):
    gap, _ = SOL["free_energy_gap"](ns, F, nL, d)
    log_n = torch.log10(torch.as_tensor(ns, dtype=torch.float64))
    gap = 0.5 * d * log_n - (torch.as_tensor(F) - torch.as_tensor(nL))
    xc = log_n - log_n.mean()
    return gap, ((xc * (gap - gap.mean())).sum() / (xc * xc).sum()).item()


def _gap_slope_on_n(ns, F, nL, d):
    gap, _ = SOL["free_energy_gap"](ns, F, nL, d)
    n = torch.as_tensor(ns, dtype=torch.float64)
    xc = n - n.mean()
    return gap, ((xc * (gap - gap.mean())).sum() / (xc * xc).sum()).item()


CASES = {
    "check_true_parameter_set_tanh": (
        SOL["true_parameter_set_tanh"],
        {"K ≈ ½(ab − a0b0)²": _mask_product_approx, "factor ½ forgotten": _mask_no_half,
         "only the exact axes": lambda a, b, a0, b0, tol: (a * b == a0 * b0)},
    ),
    "check_fisher_tanh": (
        SOL["fisher_tanh_answer"],
        {"x missing in ∂f/∂b": _fisher_no_x, "only the diagonal": lambda a, b: torch.diag(torch.diag(SOL["fisher_tanh_answer"](a, b)))},
    ),
    "check_rank_along": (
        SOL["rank_along"],
        {"absolute threshold 1e-6": _rank_absolute(1e-6), "absolute threshold 1e-10": _rank_absolute(1e-10),
         "counts positive eigenvalues": _rank_positive_eigenvalues, "counts non-zero diagonal entries": _rank_nonzero_diagonal,
         "ignores the given matrices": _rank_own_fisher_absolute, "always full rank": lambda p, f: [2] * len(p)},
    ),
    "check_count_symmetries": (
        SOL["count_symmetries"],
        {"permutations only": lambda H: math.factorial(H), "sign flips only": lambda H: 2**H, "one global flip": lambda H: 2 * math.factorial(H)},
    ),
    "check_apply_symmetry": (
        SOL["apply_symmetry"],
        {"flips a but not c": _flip_a_only, "permutes a but not c": _permute_a_only, "inverse permutation": _inverse_perm},
    ),
    "check_rrr_fisher_rank": (
        SOL["rrr_fisher_rank"],
        {"intersection forgotten": lambda M, N, ra, rb: N * ra + M * rb, "d = H(M+N)": lambda M, N, ra, rb: 2 * (M + N),
         "rows and columns swapped": lambda M, N, ra, rb: M * ra + N * rb - ra * rb},
    ),
    "check_free_energy_gap": (
        SOL["free_energy_gap"],
        {"log10 instead of ln": _gap_log10, "slope against n": _gap_slope_on_n,
         "sign reversed": lambda ns, F, nL, d: tuple(-v for v in SOL["free_energy_gap"](ns, F, nL, d)),
         "returns the gap only": lambda ns, F, nL, d: SOL["free_energy_gap"](ns, F, nL, d)[0]},
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch02, CASES)
)
