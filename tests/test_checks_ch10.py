"""Chapter 10 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import torch

from slt_course_utils.checks import ch10

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("10_refined_llc")


def _mask_startswith(model, names):
    return {k: torch.full(p.shape, any(k.startswith(s) for s in names), dtype=torch.bool)
            for k, p in model.named_parameters()}


def _mask_selected_only(model, names):
    return {k: m for k, m in SOL["restrict_mask"](model, names).items() if m.any()}


def _mask_inverted(model, names):
    return {k: ~m for k, m in SOL["restrict_mask"](model, names).items()}


def _target_schur(H, mask, nbeta, gamma):
    C, N = mask, ~mask
    S = H[C][:, C] - H[C][:, N] @ torch.linalg.solve(H[N][:, N], H[N][:, C])
    a = nbeta * torch.linalg.eigvalsh(S)
    return float(0.5 * (a / (a + gamma)).sum())


def _target_full(H, mask, nbeta, gamma):
    a = nbeta * torch.linalg.eigvalsh(H)
    return float(0.5 * (a / (a + gamma)).sum())


def _target_no_nbeta(H, mask, nbeta, gamma):
    a = torch.linalg.eigvalsh(H[mask][:, mask])
    return float(0.5 * (a / (a + gamma)).sum())


def _cov_ddof0(a, b):
    N = a.shape[0] * a.shape[1]
    return SOL["draws_covariance"](a, b) * (N - 1) / N


def _cov_per_chain(a, b):
    A = a.reshape(a.shape[0], a.shape[1], -1).double()
    B = b.reshape(b.shape[0], b.shape[1], -1).double()
    A = A - A.mean(1, keepdim=True)
    B = B - B.mean(1, keepdim=True)
    N = a.shape[0] * a.shape[1]
    return (torch.einsum("cda,cdb->ab", A, B) / (N - 1)).reshape(*a.shape[2:], *b.shape[2:])


def _cov_transposed(a, b):
    return SOL["draws_covariance"](b, a)


def _corr(a, b):
    C = SOL["draws_covariance"](a, b)
    va = a.reshape(a.shape[0] * a.shape[1], -1).double().var(0)
    vb = b.reshape(b.shape[0] * b.shape[1], -1).double().var(0)
    return (C.reshape(len(va), len(vb)) / (va[:, None] * vb[None, :]).sqrt()).reshape(C.shape)


def _mask_one_level(model, names):  # a prefix only one module up: misses 'layers' → 'layers.0.weight'
    return {k: torch.full(p.shape, k in names or k.rsplit(".", 1)[0] in names, dtype=torch.bool)
            for k, p in model.named_parameters()}


def _cov_flatten_all(a, b):  # flatten(2) breaks on a scalar observable (chains, draws)
    A, B = a.flatten(2).flatten(0, 1).double(), b.flatten(2).flatten(0, 1).double()
    A, B = A - A.mean(0), B - B.mean(0)
    return (A.T @ B / (len(A) - 1)).reshape(*a.shape[2:], *b.shape[2:])


def _cov_in_place(a, b):  # centres the caller's tensors (reshape and .double() of float64 are views)
    A, B = a.reshape(a.shape[0] * a.shape[1], -1).double(), b.reshape(b.shape[0] * b.shape[1], -1).double()
    A -= A.mean(0)
    B -= B.mean(0)
    return (A.T @ B / (len(A) - 1)).reshape(*a.shape[2:], *b.shape[2:])


def _cov_numpy(a, b):
    return SOL["draws_covariance"](a, b).numpy()


def _gauss_halve_in_place(A, a, B, b, S):  # ¼tr(AΣBΣ): wrong, and it also halves the caller's A
    A *= 0.5
    return 0.5 * torch.trace(A @ S @ B @ S) + a @ S @ b


CASES = {
    "check_restrict_mask": (
        SOL["restrict_mask"],
        {"startswith without the dot ('1' selects '11')": _mask_startswith,
         "masks only for the selected parameters": _mask_selected_only,
         "True = frozen (inverted)": _mask_inverted,
         "a prefix only one module up ('layers' misses 'layers.0.weight')": _mask_one_level},
    ),
    "check_restricted_llc_target": (
        SOL["restricted_llc_target"],
        {"marginal (Schur complement) instead of the frozen block": _target_schur,
         "the full Hessian, mask ignored": _target_full,
         "a_i = h_i (nβ forgotten)": _target_no_nbeta},
    ),
    "check_draws_covariance": (
        SOL["draws_covariance"],
        {"ddof = 0": _cov_ddof0,
         "centred per chain": _cov_per_chain,
         "arguments swapped (transposed result)": _cov_transposed,
         "flatten(2) (breaks on a scalar observable)": _cov_flatten_all,
         "centres its inputs in place": _cov_in_place,
         "returns a NumPy array": _cov_numpy},
    ),
    "check_bayesian_influence": (
        SOL["bayesian_influence"],
        {"+Cov (wrong sign)": lambda losses, phi: SOL["draws_covariance"](losses, phi),
         "minus the correlation": lambda losses, phi: -_corr(losses, phi)},
    ),
    "check_loss_kernel": (
        SOL["loss_kernel"],
        {"correlation flag ignored (always covariance)":
             lambda losses, correlation=False: SOL["draws_covariance"](losses, losses),
         "correlation flag inverted":
             lambda losses, correlation=False: SOL["loss_kernel"](losses, correlation=not correlation),
         "no default for correlation": lambda losses, correlation: SOL["loss_kernel"](losses, correlation=correlation),
         "ddof = 0": lambda losses, correlation=False: (
             SOL["loss_kernel"](losses, correlation=correlation)
             * (1 if correlation else (losses.shape[0] * losses.shape[1] - 1) / (losses.shape[0] * losses.shape[1])))},
    ),
    "check_susceptibility": (
        SOL["susceptibility"],
        {"−Cov(φ, ℓ_P): sampling loss not subtracted":
             lambda phi, probe, L: -SOL["draws_covariance"](phi, probe),
         "+Cov (wrong sign)": lambda phi, probe, L: -SOL["susceptibility"](phi, probe, L),
         "φ subtracted instead of L": lambda phi, probe, L: -SOL["draws_covariance"](phi, probe - phi[..., None]),
         "φ ignored (L in its place)": lambda phi, probe, L: -SOL["draws_covariance"](L, probe - L[..., None])},
    ),
    "check_gaussian_quadratic_cov": (
        SOL["gaussian_quadratic_cov"],
        {"tr(AΣBΣ) without the ½": lambda A, a, B, b, S: torch.trace(A @ S @ B @ S) + a @ S @ b,
         "linear terms forgotten": lambda A, a, B, b, S: 0.5 * torch.trace(A @ S @ B @ S),
         "¼tr(AΣ)tr(BΣ) (product of the means)":
             lambda A, a, B, b, S: 0.25 * torch.trace(A @ S) * torch.trace(B @ S) + a @ S @ b,
         "¼tr(AΣBΣ), halving A in place": _gauss_halve_in_place},
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch10, CASES)
)
