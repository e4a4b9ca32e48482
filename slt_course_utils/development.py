"""Development over training: checkpoint schedules, stages of an LLC curve, essential dynamics.

After Hoogland, Wang, Farrugia-Roberts, Carroll, Wei & Murfet, *The developmental landscape of in-context
learning* (arXiv 2402.02364): stage boundaries are the critical points of the (smoothed) LLC curve against
training time, and *essential dynamics* is a PCA of the model's outputs on a fixed probe batch across
checkpoints, whose low-dimensional path turns where development changes direction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from slt_course_utils._validate import InputTypeError, finite_tensor, positive_float, positive_int

__all__ = ["EssentialDynamics", "essential_dynamics", "log_spaced_steps", "loss_plateaus", "outputs_on_probe",
           "smooth_log_time", "stage_boundaries", "true_runs", "turning_points"]


def _as_1d(name: str, values: object) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    elif isinstance(values, Iterator):  # a generator is read once, like a list
        values = list(values)
    try:
        if np.asarray(values).dtype.kind in "USb":  # np.asarray(["1", "2"], dtype=float) would parse the strings
            raise TypeError
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}.") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per checkpoint), got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} has a non-finite value at position {bad} ({arr[bad]}): drop that checkpoint or "
                         "rerun its estimate (a NaN λ̂ means its chains diverged: lower the step size).")
    return arr


def _steps_and_values(steps: object, values: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    t, v = _as_1d("steps", steps), _as_1d(what, values)
    if t.shape != v.shape:
        raise ValueError(f"steps and {what} must have the same length, got {len(t)} and {len(v)}.")
    if len(t) < 3:
        raise ValueError(f"need at least 3 checkpoints to find stages, got {len(t)}.")
    if (t < 0).any() or (np.diff(t) <= 0).any():
        raise ValueError("steps must be non-negative and strictly increasing (one entry per checkpoint, in order).")
    return t, v


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of consecutive True entries of a 1-d boolean array."""
    m = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    return [(int(a), int(b) - 1) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def log_spaced_steps(total: int, num: int) -> list[int]:
    """Distinct integer steps ≈ geomspace(1, total, num), rounded, with 1 and ``total`` included.

    Early training changes fastest, so checkpoints are spread evenly in log t; rounding merges the
    first few, so the list can be shorter than ``num``.
    """
    total, num = positive_int("total", total), positive_int("num", num)
    if num < 2:
        raise ValueError(f"num must be at least 2 (the first and the last step), got {num}.")
    return sorted({int(s) for s in np.rint(np.geomspace(1, total, num))})


def smooth_log_time(steps: object, values: object, width: float = 0.15) -> np.ndarray:
    """Gaussian kernel smoothing in log t: v̄_k = Σ_j K(u_k − u_j) v_j / Σ_j K(u_k − u_j), u = log10(1 + t).

    ``width`` is the kernel's standard deviation in decades (0.15: a factor 1.4 in steps).
    """
    t, v = _steps_and_values(steps, values, "values")
    width = positive_float("width (decades)", width)
    u = np.log10(1 + t)
    K = np.exp(-0.5 * ((u[:, None] - u[None, :]) / width) ** 2)
    return (K @ v) / K.sum(1)


def stage_boundaries(steps: object, llc: object, *, width: float = 0.15, flat: float = 0.3,
                     min_change: float = 0.2) -> list[int]:
    """Checkpoint indices where the smoothed LLC curve is critical: dλ̄/dlog t ≈ 0 between two stages.

    Hoogland et al. (2402.02364, §3) divide training into stages at the critical points of the LLC curve,
    where its slope vanishes: a peak or a trough (the slope changes sign) or a pause on the way up or down
    (a plateau of λ̂). Here λ̂ is smoothed in log t (:func:`smooth_log_time`, ``width`` decades), the slope
    g = dλ̄/d log10(1 + t) is taken by finite differences, and a boundary is (a) each stretch of checkpoints
    with |g| ≤ ``flat`` × max|g| (its flattest checkpoint, or the extremum of λ̄ when g changes sign in it or
    next to it) and (b) each sign change of g between two steep checkpoints (the extremum of λ̄ there). Flat
    stretches that touch the first or the last checkpoint are the start and the end of training, not boundaries. A candidate is kept only when λ̄ moves by at least
    ``min_change`` × (max λ̄ − min λ̄) both from the previous boundary (or the start) to it and from it
    to somewhere later: noise wiggles on a plateau are not stages.
    """
    t, lam = _steps_and_values(steps, llc, "llc")
    flat, min_change = positive_float("flat", flat), positive_float("min_change", min_change)
    if flat >= 1 or min_change >= 1:
        raise ValueError(f"flat and min_change are fractions and must be below 1, got {flat} and {min_change}.")
    s = smooth_log_time(t, lam, width)
    g = np.gradient(s, np.log10(1 + t))
    gmax = float(np.abs(g).max())
    if gmax == 0 or float(s.max() - s.min()) <= 1e-12 * float(np.abs(s).max()):
        return []  # a constant curve (its smoothed slope is rounding error only): no stages
    small = np.abs(g) <= flat * gmax
    K = len(s)
    cand: list[int] = []
    for k, j in true_runs(small):  # (a) flat stretches
        if k > 0 and j < K - 1:
            lo, hi = k - 1, j + 2  # the stretch and one neighbour on each side
            run = g[lo:hi]
            if run.min() < 0 < run.max():  # the slope changes sign here: the extremum of λ̄ (peak or trough)
                seg = s[lo:hi]
                cand.append(int(lo + (np.argmax(seg) if run[0] > 0 else np.argmin(seg))))
            else:  # a pause on the way up or down: the flattest checkpoint
                cand.append(int(k + np.argmin(np.abs(g[k:j + 1]))))
    for k in range(K - 1):  # (b) sign changes between checkpoints k and k + 1, both steep
        if g[k] * g[k + 1] < 0 and not (small[k] or small[k + 1]):
            i = k if (s[k] - s[k + 1]) * np.sign(g[k]) > 0 else k + 1  # the higher one at a peak, lower at a trough
            cand.append(i)
    h = min_change * float(s.max() - s.min())
    out: list[int] = []
    for i in sorted(set(cand)):
        last = s[out[-1]] if out else s[0]
        if abs(s[i] - last) >= h and np.abs(s[i + 1:] - s[i]).max(initial=0.0) >= h:
            out.append(i)
    return out


def loss_plateaus(steps: object, loss: object, *, max_slope: float = 0.1, min_decades: float = 0.3,
                  width: float = 0.05) -> list[tuple[int, int]]:
    """Runs of checkpoints (first, last index) where |d log L / d log t| < ``max_slope`` for ≥ ``min_decades``.

    log10 L is smoothed in log t (``width`` decades, :func:`smooth_log_time`: SGD noise between densely
    logged steps is not a slope) and differentiated against log10(1 + t); a plateau lasts at least
    ``min_decades`` decades of training time (0.3: a factor 2 in steps).
    """
    t, L = _steps_and_values(steps, loss, "loss")
    if (L <= 0).any():
        raise ValueError("loss must be positive (its logarithm is taken).")
    max_slope, min_decades = positive_float("max_slope", max_slope), positive_float("min_decades", min_decades)
    u, logL = np.log10(1 + t), smooth_log_time(t, np.log10(L), width)
    flat = np.abs(np.gradient(logL, u)) < max_slope
    return [(k, j) for k, j in true_runs(flat) if u[j] - u[k] >= min_decades]


@dataclass
class EssentialDynamics:
    """PCA of outputs across checkpoints: X − mean = U S Vᵀ, projections U S, explained variance S²/ΣS²."""

    projections: np.ndarray  # (K, k): checkpoint k's coordinates on the top principal components
    explained: np.ndarray  # (k,): fraction of the total variance along each component
    components: np.ndarray  # (k, D): unit principal directions in output space
    mean: np.ndarray  # (D,): the mean output over checkpoints


def essential_dynamics(outputs: object, num_components: int = 3) -> EssentialDynamics:
    """PCA of the (K, ...) stack of a model's outputs on one fixed probe batch, one row per checkpoint.

    Each checkpoint's outputs are flattened to a row of X ∈ R^{K×D}; X is centred over checkpoints and
    X − X̄ = U S Vᵀ; row k of U S is checkpoint k's position in function space. Signs follow the
    convention that each component's largest |loading| is positive (so results are reproducible).
    """
    if isinstance(outputs, Tensor):
        outputs = outputs.detach().cpu().double().numpy()
    try:
        X = np.asarray(outputs, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(f"outputs must be an array or tensor of numbers, got {type(outputs).__name__}.") from None
    if X.ndim < 2:
        raise ValueError(f"outputs must have shape (checkpoints, ...) with at least 2 dimensions, got {X.shape}.")
    X = X.reshape(X.shape[0], -1)
    if X.shape[0] < 2:
        raise ValueError(f"need outputs at 2 or more checkpoints, got {X.shape[0]}.")
    if not np.isfinite(X).all():
        raise ValueError("outputs contain NaN or inf: a checkpoint diverged; drop it before the PCA.")
    k = positive_int("num_components", num_components)
    k = min(k, X.shape[0], X.shape[1])
    mean = X.mean(0)
    U, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    total = float((S**2).sum())
    if total == 0:
        raise ValueError("the outputs are identical at every checkpoint: there is no development to analyse.")
    U, S, Vt = U[:, :k], S[:k], Vt[:k]
    sign = np.sign(Vt[np.arange(k), np.abs(Vt).argmax(1)])
    sign[sign == 0] = 1
    U, Vt = U * sign, Vt * sign[:, None]
    return EssentialDynamics(projections=U * S, explained=S**2 / total, components=Vt, mean=mean)


def turning_points(projections: object, *, min_angle: float = 60.0, min_step: float = 0.02) -> list[int]:
    """Checkpoint indices where the path in PC space turns by more than ``min_angle`` degrees.

    The direction at checkpoint k is taken from the last checkpoint before k and the first after k that
    are at least ``min_step`` × (the path's diameter) away (tiny jittery moves on a plateau do not count);
    the angle between the incoming and outgoing directions is compared with ``min_angle``. Of consecutive
    candidates, the sharpest turn is kept.
    """
    if isinstance(projections, Tensor):
        projections = projections.detach().cpu().numpy()
    P = np.asarray(projections, dtype=float)
    if P.ndim != 2 or P.shape[0] < 3:
        raise ValueError(f"projections must have shape (checkpoints ≥ 3, components), got {P.shape}.")
    if not np.isfinite(P).all():
        raise ValueError("projections contain NaN or inf.")
    min_angle, min_step = positive_float("min_angle (degrees)", min_angle), positive_float("min_step", min_step)
    if min_angle >= 180:
        raise ValueError(f"min_angle must be below 180 degrees, got {min_angle}.")
    D = np.linalg.norm(P[:, None] - P[None], axis=-1)  # pairwise distances between checkpoints
    diam = float(D.max())
    if diam == 0:
        return []
    r = min_step * diam
    K = len(P)
    angles = np.zeros(K)
    for k in range(1, K - 1):
        before, after = np.flatnonzero(D[k, :k] >= r), np.flatnonzero(D[k, k + 1:] >= r)
        if not len(before) or not len(after):
            continue
        a, b = P[k] - P[before[-1]], P[k + 1 + after[0]] - P[k]  # the nearest far-enough checkpoints
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        angles[k] = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return [int(k + np.argmax(angles[k:j + 1])) for k, j in true_runs(angles > min_angle)]


def outputs_on_probe(models: list[torch.nn.Module], probe: Tensor) -> Tensor:
    """(K, *output shape) stack of each model's outputs on the same probe batch (no gradients)."""
    models = list(models)
    if not models:
        raise ValueError("models is empty: pass the checkpoints (modules) to evaluate.")
    finite_tensor("probe", probe)  # a NaN in the probe batch would give NaN outputs, not an error
    with torch.no_grad():
        return torch.stack([m(probe).detach().cpu() for m in models])

