"""Chapter 09 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import warnings

import numpy as np
import pytest
import torch

from slt_course_utils import tms
from slt_course_utils.checks import ch09
from slt_course_utils.llc import estimate_llc_trajectory

from .check_suite import check_suite
from .conftest import solution_namespace

SOL = solution_namespace("09_development")
# llc_curve's solution uses `tms`, which the notebook imports in an ordinary cell (the quadratic-prediction demo
# before exercise 6) that solution_namespace does not run
SOL.setdefault("tms", tms)


# ---- Exercise 1: log_spaced_steps ----------------------------------------------------------------------------------

def _steps_linspace(total, num):
    return sorted({int(s) for s in np.rint(np.linspace(1, total, num))})


def _steps_floor(total, num):
    return sorted({int(s) for s in np.floor(np.geomspace(1, total, num))})


def _steps_duplicates(total, num):
    return [int(s) for s in np.rint(np.geomspace(1, total, num))]


def _steps_no_last(total, num):
    return SOL["log_spaced_steps"](total, num)[:-1]


def _steps_halves(total, num):  # rounded to halves, not to whole steps
    return sorted(set(np.rint(2 * np.geomspace(1, total, num)) / 2))


def _steps_no_endpoint(total, num):
    return sorted({int(s) for s in np.rint(np.geomspace(1, total, num, endpoint=False))})


def _steps_from_zero(total, num):  # geomspace(1, total + 1) − 1: starts at step 0
    return sorted({int(s) for s in np.rint(np.geomspace(1, total + 1, num) - 1)})


def _steps_empty(total, num):
    return []


# ---- Exercise 2: smooth_log_time -----------------------------------------------------------------------------------

def _smooth(u, values, width, half=0.5, normalise=True):
    K = np.exp(-half * ((u[:, None] - u[None, :]) / width) ** 2)
    v = np.asarray(values, dtype=float)
    return (K @ v) / K.sum(1) if normalise else K @ v


def _smooth_ln(steps, values, width):
    return _smooth(np.log(1 + np.asarray(steps, dtype=float)), values, width)


def _smooth_log10_eps(steps, values, width):
    return _smooth(np.log10(np.asarray(steps, dtype=float) + 1e-9), values, width)


def _smooth_log10_zero(steps, values, width):  # log10(t), with t = 0 mapped to 0
    t = np.asarray(steps, dtype=float)
    return _smooth(np.log10(np.where(t > 0, t, 1.0)), values, width)


def _smooth_unnormalised(steps, values, width):
    return _smooth(np.log10(1 + np.asarray(steps, dtype=float)), values, width, normalise=False)


def _smooth_width_in_steps(steps, values, width):
    return _smooth(np.asarray(steps, dtype=float), values, width)


def _smooth_no_half(steps, values, width):
    return _smooth(np.log10(1 + np.asarray(steps, dtype=float)), values, width, half=1.0)


def _smooth_in_place(steps, values, width):  # right numbers, but it overwrites the caller's values
    values[:] = SOL["smooth_log_time"](steps, values, width)
    return values


# ---- Exercise 3: essential_dynamics --------------------------------------------------------------------------------

def _svd(outputs, centre="rows"):
    X = outputs.reshape(outputs.shape[0], -1).double()
    if centre == "rows":
        X = X - X.mean(0)
    elif centre == "features":
        X = X - X.mean(1, keepdim=True)
    return torch.linalg.svd(X, full_matrices=False)


def _ed_not_centred(outputs, k):
    U, S, _ = _svd(outputs, centre=None)
    return U[:, :k] * S[:k], S[:k] ** 2 / (S**2).sum()


def _ed_centred_per_checkpoint(outputs, k):
    U, S, _ = _svd(outputs, centre="features")
    return U[:, :k] * S[:k], S[:k] ** 2 / (S**2).sum()


def _ed_explained_S(outputs, k):
    U, S, _ = _svd(outputs)
    return U[:, :k] * S[:k], S[:k] / S.sum()


def _ed_explained_first_k(outputs, k):
    U, S, _ = _svd(outputs)
    return U[:, :k] * S[:k], S[:k] ** 2 / (S[:k] ** 2).sum()


def _ed_variances(outputs, k):  # the variances along the components, not their fractions
    U, S, _ = _svd(outputs)
    return U[:, :k] * S[:k], S[:k] ** 2 / (outputs.shape[0] - 1)


def _ed_U_only(outputs, k):
    U, S, _ = _svd(outputs)
    return U[:, :k], S[:k] ** 2 / (S**2).sum()


def _ed_transpose(outputs, k):  # PCA of Xᵀ: one row per output coordinate
    X = outputs.reshape(outputs.shape[0], -1).double().T
    U, S, _ = torch.linalg.svd(X - X.mean(0), full_matrices=False)
    return U[:, :k] * S[:k], S[:k] ** 2 / (S**2).sum()


def _ed_centres_in_place(outputs, k):  # reshape and .double() of a float64 tensor are views of the caller's
    X = outputs.reshape(outputs.shape[0], -1).double()
    X -= X.mean(0)
    U, S, _ = torch.linalg.svd(X, full_matrices=False)
    return U[:, :k] * S[:k], S[:k] ** 2 / (S**2).sum()


# ---- Exercise 4: turning_angles ------------------------------------------------------------------------------------

def _cos_angles(a, b, clip=True):
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.arccos(np.clip(cos, -1.0, 1.0) if clip else cos)


def _ta_radians(P):
    return _cos_angles(P[1:-1] - P[:-2], P[2:] - P[1:-1])


def _ta_positions(P):  # the angle between the position vectors, not the steps
    return np.degrees(_cos_angles(P[1:-1], P[2:]))


def _ta_padded(P):  # K entries: 0 at both ends
    return np.concatenate([[0.0], SOL["turning_angles"](P), [0.0]])


def _ta_supplement(P):
    return 180.0 - SOL["turning_angles"](P)


def _ta_unclipped(P):  # NaN where rounding puts cos a hair past ±1 (a straight stretch)
    with np.errstate(invalid="ignore"):
        return np.degrees(_cos_angles(P[1:-1] - P[:-2], P[2:] - P[1:-1], clip=False))


def _ta_first_two_coordinates(P):
    return SOL["turning_angles"](P[:, :2])


# ---- Exercise 5: quadratic_llc -------------------------------------------------------------------------------------

def _q_terms(h, nbeta, gamma):
    a = nbeta * torch.as_tensor(h, dtype=torch.float64)
    return a, a / (a + gamma)


def _q_raising(h, nbeta, gamma, bad):
    a, terms = _q_terms(h, nbeta, gamma)
    if bad(a, torch.as_tensor(h, dtype=torch.float64)).any():
        raise ValueError("improper")
    return terms


def _q_no_half(h, nbeta, gamma):
    return float(_q_raising(h, nbeta, gamma, lambda a, h: a + gamma <= 0).sum())


def _q_rank(h, nbeta, gamma):
    _q_raising(h, nbeta, gamma, lambda a, h: a + gamma <= 0)
    return 0.5 * int((torch.as_tensor(h) > 0).sum())


def _q_abs(h, nbeta, gamma):
    return SOL["quadratic_llc"](torch.as_tensor(h).abs(), nbeta, gamma)


def _q_never_raises(h, nbeta, gamma):
    return float(0.5 * _q_terms(h, nbeta, gamma)[1].sum())


def _q_raises_for_negative_h(h, nbeta, gamma):
    return float(0.5 * _q_raising(h, nbeta, gamma, lambda a, h: h < 0).sum())


def _q_raises_for_h_le_0(h, nbeta, gamma):
    return float(0.5 * _q_raising(h, nbeta, gamma, lambda a, h: h <= 0).sum())


def _q_strict(h, nbeta, gamma):  # raises only for nβh + γ < 0: at = 0 the term is infinite
    return float(0.5 * _q_raising(h, nbeta, gamma, lambda a, h: a + gamma < 0).sum())


def _q_scales_in_place(h, nbeta, gamma):
    h *= nbeta  # the caller's eigenvalues are now nβh
    if (h + gamma <= 0).any():
        raise ValueError("improper")
    return float(0.5 * (h / (h + gamma)).sum())


# ---- Exercise 6: llc_curve -----------------------------------------------------------------------------------------

def _curve(models, x, lr, loss=tms.tms_loss, attr="stderr", **changes):
    settings = dict(ch09.LLC_CURVE_SETTINGS, **changes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = estimate_llc_trajectory(models, (x, x), loss, lr=lr, progress=False, **settings)
    return np.array([r.mean for r in results]), np.array([getattr(r, attr) for r in results])


def _llc_swapped(models, x, lr):
    means, ses = _curve(models, x, lr)
    return ses, means


def _llc_hard_coded(models, x, lr):  # the notebook's printed λ̂ of the three k-gons, whatever `models` is
    return np.array([7.70, 9.59, 7.78]), np.array([0.66, 0.46, 0.72])


def _llc_constant(models, x, lr):  # ignores the checkpoints: one typical value for each, large error bars
    return np.full(len(models), 8.0), np.full(len(models), 1.0)


def _llc_constant_between(models, x, lr):  # between the k-gons' λ̂, with plausible error bars
    return np.full(len(models), 6.0), np.full(len(models), 0.6)


def _llc_inflated_stderr(models, x, lr):  # a constant curve whose error bars make the tolerance window huge
    return np.full(len(models), 8.0), np.full(len(models), 3.9)


def _llc_moves_models(models, x, lr):  # right numbers, then the checkpoints' weights are overwritten
    out = _curve(models, x, lr)
    with torch.no_grad():
        for m in models:
            for p in m.parameters():
                p.add_(0.01)
    return out


CASES = {
    "check_log_spaced_steps": (
        SOL["log_spaced_steps"],
        {"np.linspace (evenly spaced in t)": _steps_linspace,
         "floor instead of rint": _steps_floor,
         "duplicates kept": _steps_duplicates,
         "last step dropped": _steps_no_last,
         "rounded to halves (floats with .5)": _steps_halves,
         "endpoint=False (never reaches total)": _steps_no_endpoint,
         "geomspace(1, total + 1) − 1 (starts at step 0)": _steps_from_zero,
         "empty list": _steps_empty},
    ),
    # not listed, equivalent: K.sum(0) for K.sum(1) and Kᵀv for Kv (K is symmetric)
    "check_smooth_log_time": (
        SOL["smooth_log_time"],
        {"natural log instead of log10": _smooth_ln,
         "u = log10(t + 1e-9)": _smooth_log10_eps,
         "u = log10(t), with t = 0 mapped to 0": _smooth_log10_zero,
         "kernel sum not normalised": _smooth_unnormalised,
         "kernel width in steps, not decades": _smooth_width_in_steps,
         "no ½ in the exponent": _smooth_no_half,
         "overwrites the caller's values": _smooth_in_place},
    ),
    "check_essential_dynamics": (
        SOL["essential_dynamics"],
        {"not centred": _ed_not_centred,
         "each checkpoint centred (mean over features)": _ed_centred_per_checkpoint,
         "explained = S / ΣS": _ed_explained_S,
         "explained normalised over the first k only": _ed_explained_first_k,
         "explained = variances S²/(K − 1), not fractions": _ed_variances,
         "projections = U (without S)": _ed_U_only,
         "PCA of the transpose": _ed_transpose,
         "centres the caller's outputs in place": _ed_centres_in_place},
    ),
    "check_turning_angles": (
        SOL["turning_angles"],
        {"radians": _ta_radians,
         "angles between positions, not steps": _ta_positions,
         "length K (zeros padded at the ends)": _ta_padded,
         "180° − angle": _ta_supplement,
         "arccos not clipped (NaN on a straight stretch)": _ta_unclipped,
         "only the first two coordinates": _ta_first_two_coordinates},
    ),
    "check_quadratic_llc": (
        SOL["quadratic_llc"],
        {"no ½": _q_no_half,
         "rank/2, γ ignored": _q_rank,
         "abs(h): negative curvature made positive": _q_abs,
         "never raises": _q_never_raises,
         "raises for any negative h": _q_raises_for_negative_h,
         "raises for any h ≤ 0": _q_raises_for_h_le_0,
         "raises only for nβh + γ < 0 (not at = 0)": _q_strict,
         "scales the caller's h in place": _q_scales_in_place},
    ),
    # not listed, statistically equivalent: lr="auto" (its adaptation picks ε ≈ 1.4e-4 at these k-gons, the lr the
    # check passes, so λ̂ agrees within noise) and a hard-coded lr = 1.4e-4 (the check's lr; λ̂ hardly depends on
    # ε between 1.4e-4 and 4e-4, so varying it cannot expose the learner) — "lr × 10" is the lr mistake it rejects
    "check_llc_curve": (
        SOL["llc_curve"],
        {"nβ = n": lambda models, x, lr: _curve(models, x, lr, nbeta=10_000),
         "summed loss (× batch size)": lambda models, x, lr: _curve(models, x, lr, lambda p, t: tms.tms_loss(p, t) * 200),
         "lr × 10": lambda models, x, lr: _curve(models, x, 10 * lr),
         "(stderrs, means) swapped": _llc_swapped,
         "r.std instead of r.stderr": lambda models, x, lr: _curve(models, x, lr, attr="std"),
         "num_draws = 30": lambda models, x, lr: _curve(models, x, lr, num_draws=30),
         "localization γ = 100": lambda models, x, lr: _curve(models, x, lr, localization=100.0),
         "hard-coded λ̂ of the notebook's three k-gons": _llc_hard_coded,
         "a constant curve, models ignored": _llc_constant,
         "a constant curve between the k-gons' λ̂": _llc_constant_between,
         "a constant curve with inflated stderrs": _llc_inflated_stderr,
         "moves the models' parameters in place": _llc_moves_models},
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch09, CASES)
)


# Answers that differ from the solution's code but are right: the checks must accept them.
EQUIVALENT = {
    "check_log_spaced_steps": {
        "a NumPy int array": lambda total, num: np.unique(np.rint(np.geomspace(1, total, num)).astype(int)),
        "whole floats": lambda total, num: sorted(set(np.rint(np.geomspace(1, total, num)))),
        "10 ** linspace in log10": lambda total, num: sorted(
            {int(s) for s in np.rint(10 ** np.linspace(0, np.log10(total), num))}),
    },
    "check_smooth_log_time": {
        "a torch tensor": lambda steps, values, width: torch.as_tensor(SOL["smooth_log_time"](steps, values, width)),
        "a list": lambda steps, values, width: list(SOL["smooth_log_time"](steps, values, width)),
    },
    "check_essential_dynamics": {
        "(X − X̄) Vᵀ[:, :k], NumPy": lambda outputs, k: (
            lambda X: (X @ np.linalg.svd(X, full_matrices=False)[2][:k].T,
                       (np.linalg.svd(X, compute_uv=False) ** 2 / (np.linalg.svd(X, compute_uv=False) ** 2).sum())[:k])
        )(outputs.reshape(len(outputs), -1).numpy() - outputs.reshape(len(outputs), -1).numpy().mean(0)),
        "signs flipped": lambda outputs, k: (-SOL["essential_dynamics"](outputs, k)[0],
                                             SOL["essential_dynamics"](outputs, k)[1]),
    },
    "check_turning_angles": {
        "atan2(|a × b|, a · b)": lambda P: np.degrees(np.arctan2(
            np.sqrt(np.maximum(0.0, (np.linalg.norm(P[1:-1] - P[:-2], axis=1) * np.linalg.norm(P[2:] - P[1:-1], axis=1)) ** 2
                               - ((P[1:-1] - P[:-2]) * (P[2:] - P[1:-1])).sum(1) ** 2)),
            ((P[1:-1] - P[:-2]) * (P[2:] - P[1:-1])).sum(1))),
        "normalised steps, np.diff": lambda P: (lambda d: np.degrees(np.arccos(np.clip(
            (d[:-1] * d[1:]).sum(1), -1, 1))))(np.diff(P, axis=0) / np.linalg.norm(np.diff(P, axis=0), axis=1)[:, None]),
    },
    "check_quadratic_llc": {
        "a 0-d tensor": lambda h, nbeta, gamma: torch.tensor(SOL["quadratic_llc"](h, nbeta, gamma)),
    },
    "check_llc_curve": {
        "lists": lambda models, x, lr: tuple(v.tolist() for v in SOL["llc_curve"](models, x, lr)),
        "torch tensors": lambda models, x, lr: tuple(torch.as_tensor(v) for v in SOL["llc_curve"](models, x, lr)),
    },
}


@pytest.mark.parametrize(("name", "variant"), [(n, v) for n in sorted(EQUIVALENT) for v in sorted(EQUIVALENT[n])])
def test_check_accepts_an_equivalent_answer(name, variant, capsys):
    getattr(ch09, name)(EQUIVALENT[name][variant])
    assert "passed" in capsys.readouterr().out
