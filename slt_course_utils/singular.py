"""Structure of singular models: true-parameter sets, symmetries, and where the Fisher information drops rank.

Reference implementations for chapter 02 (``chapters/02_singular_models.ipynb``):

- y = a·tanh(bx) + N(0, σ²): its empirical loss on a 2-D grid in O(G·n) (not O(G²·n)), and its set of
  true parameters W0 = {K = 0} as a mask on a grid;
- the two-layer tanh network y = Σ_h c_h tanh(a_h x) (no biases): the H!·2^H permutations and sign
  flips that leave the function unchanged;
- reduced-rank regression y = BAx: the rank of the differential of (A, B) ↦ BA, which is the rank of
  the Fisher information (x ~ N(0, I_M)), N·rank A + M·rank B − rank A·rank B;
- the gap between BIC's (d/2) log n and the true F_n − nL_n(w0).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.func import jacfwd

from slt_course_utils import models
from slt_course_utils._validate import (
    finite_float,
    finite_tensor,
    float64_tensor,
    int_in_range,
    nonnegative_int,
    positive_float,
    positive_int,
)
from slt_course_utils.models import ReducedRankRegression


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_grid_axis(name: str, axis: Tensor) -> Tensor:
    if not isinstance(axis, Tensor) or axis.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor of grid values.")
    return finite_tensor(name, axis)


# --- y = a·tanh(bx) -----------------------------------------------------------------------

def tanh_loss_grid(a_axis: Tensor, b_axis: Tensor, x: Tensor, y: Tensor, sigma: float = 1.0) -> Tensor:
    """L_n(a, b) for y = a·tanh(bx) + N(0, σ²) on the mesh of ``a_axis`` × ``b_axis``, shape (Ga, Gb).

    For each b only S1(b) = Σ y_i tanh(b x_i) and S2(b) = Σ tanh²(b x_i) are needed:
    nL_n = (n/2) log 2πσ² + (Σy² − 2a S1(b) + a² S2(b))/(2σ²), so the cost is O(Gb·n), not O(Ga·Gb·n).
    """
    _check_grid_axis("a_axis", a_axis)
    _check_grid_axis("b_axis", b_axis)
    if x.ndim != 1 or x.shape != y.shape or x.numel() < 1:
        raise ValueError(f"x and y must be non-empty 1-D of equal length, got {tuple(x.shape)} and {tuple(y.shape)}.")
    finite_tensor("x", x)
    finite_tensor("y", y)
    sigma = positive_float("sigma", sigma)
    x, y = x.double(), y.double()
    a, b = a_axis.double(), b_axis.double()
    n = x.numel()
    s1 = torch.empty_like(b)
    s2 = torch.empty_like(b)
    per = max(1, (1 << 22) // n)
    for s in range(0, b.numel(), per):
        t = torch.tanh(b[s : s + per, None] * x[None, :])  # (chunk, n)
        s1[s : s + per] = (t * y).sum(-1)
        s2[s : s + per] = (t * t).sum(-1)
    yy = (y * y).sum()
    sq = yy - 2 * a[:, None] * s1[None, :] + (a * a)[:, None] * s2[None, :]
    return 0.5 * (models.LOG_2PI + 2 * math.log(sigma)) + sq / (2 * sigma**2 * n)


def tanh_kl(a: Tensor, b: Tensor, a0: float, b0: float) -> Tensor:
    """K(a, b) = E_x[(a tanh(bx) − a0 tanh(b0 x))²]/2 for x ~ N(0, 1), σ = 1, elementwise in (a, b)."""
    a, b = finite_tensor("a", torch.as_tensor(a, dtype=torch.float64)), finite_tensor("b", torch.as_tensor(b, dtype=torch.float64))
    w = torch.stack(torch.broadcast_tensors(a, b), -1)
    return models.gaussian_regression_kl(models.TANH, w, [finite_float("a0", a0), finite_float("b0", b0)])


def tanh_true_set(a: Tensor, b: Tensor, a0: float, b0: float, tol: float) -> Tensor:
    """Boolean mask of {K(a, b) < tol}: a neighbourhood of W0 = {K = 0} on a grid (same shape as a, b)."""
    tol = positive_float("tol", tol)
    return tanh_kl(a, b, a0, b0) < tol


# --- Symmetries of the two-layer tanh network y = Σ_h c_h tanh(a_h x) ------------------------

def tanh_symmetry_count(hidden: int) -> int:
    """|G| = H!·2^H: permutations of the H hidden units times a sign flip (a_h, c_h) → (−a_h, −c_h) per unit."""
    hidden = positive_int("hidden (the number of units H)", hidden)
    return math.factorial(hidden) * 2**hidden


def apply_tanh_symmetry(w: Tensor, perm: Sequence[int], signs: Sequence[float]) -> Tensor:
    """The image of w = (a_1..a_H, c_1..c_H) (no biases): new a_h = s_h a_{perm[h]}, new c_h = s_h c_{perm[h]}.

    tanh is odd, so s_h c_{π(h)} tanh(s_h a_{π(h)} x) = c_{π(h)} tanh(a_{π(h)} x): the function, hence the
    loss, is unchanged. ``w`` has shape (..., 2H), ``perm`` is a permutation of 0..H−1, ``signs`` are ±1.
    """
    w = torch.as_tensor(w, dtype=torch.float64)
    hidden = len(perm)
    if sorted(perm) != list(range(hidden)):
        raise ValueError(f"perm must be a permutation of 0..{hidden - 1}, got {list(perm)!r}.")
    if len(signs) != hidden or any(s not in (1, -1, 1.0, -1.0) for s in signs):
        raise ValueError(f"signs must be {hidden} values ±1, got {list(signs)!r}.")
    if w.shape[-1:] != (2 * hidden,):
        raise ValueError(f"w must have last dimension 2H = {2 * hidden} (a then c), got shape {tuple(w.shape)}.")
    idx = torch.as_tensor(list(perm))
    s = torch.as_tensor([float(v) for v in signs], dtype=torch.float64)
    a, c = w[..., :hidden], w[..., hidden:]
    return torch.cat([s * a[..., idx], s * c[..., idx]], dim=-1)


def tanh_symmetry_orbit(w: Tensor) -> Tensor:
    """All H!·2^H images of w = (a, c) under permutations and sign flips, shape (H!·2^H, 2H)."""
    w = torch.as_tensor(w, dtype=torch.float64)
    if w.ndim != 1 or w.numel() % 2:
        raise ValueError(f"w must be one parameter vector (a, c) of even length 2H, got shape {tuple(w.shape)}.")
    hidden = w.numel() // 2
    return torch.stack([
        apply_tanh_symmetry(w, perm, signs)
        for perm in itertools.permutations(range(hidden))
        for signs in itertools.product((1.0, -1.0), repeat=hidden)
    ])


# --- Reduced-rank regression: the rank of d(BA) ----------------------------------------------

def product_map_rank(M: int, N: int, rank_A: int, rank_B: int) -> int:
    """rank of (dA, dB) ↦ B·dA + dB·A at (A, B): N·rank A + M·rank B − rank A·rank B.

    The image is {dB·A} + {B·dA}: matrices whose row space lies in row(A) (dimension N·rank A) plus
    those whose column space lies in col(B) (dimension M·rank B), meeting in rank A·rank B dimensions.
    For x ~ N(0, I_M) the Fisher information of y = BAx + N(0, σ²I) is JᵀJ/σ², so this is its rank.
    """
    M, N = nonnegative_int("M", M), nonnegative_int("N", N)
    rank_A, rank_B = nonnegative_int("rank_A", rank_A), nonnegative_int("rank_B", rank_B)
    if rank_A > M or rank_B > N:
        raise ValueError(f"need rank_A ≤ M and rank_B ≤ N, got rank_A={rank_A}, M={M}, rank_B={rank_B}, N={N}.")
    return N * rank_A + M * rank_B - rank_A * rank_B


def product_map_jacobian(model: ReducedRankRegression, w: Tensor) -> Tensor:
    """J = ∂ vec(BA)/∂w at one parameter w of shape (d,), shape (N·M, d), by forward-mode autograd."""
    w = torch.as_tensor(w, dtype=torch.float64)
    if w.shape != (model.d,):
        raise ValueError(f"w must have shape ({model.d},), got {tuple(w.shape)}.")
    return jacfwd(lambda v: model.product(v).reshape(-1))(w)


def random_factors_with_ranks(
    model: ReducedRankRegression, rank_A: int, rank_B: int, generator: torch.Generator | None = None
) -> Tensor:
    """A random w = (vec A, vec B) with rank A = rank_A and rank B = rank_B (products of Gaussian factors)."""
    H, M, N = model.H, model.M, model.N
    rank_A = int_in_range("rank_A", rank_A, 0, min(H, M))
    rank_B = int_in_range("rank_B", rank_B, 0, min(N, H))
    g = dict(generator=generator, dtype=torch.float64)
    A = torch.randn(H, rank_A, **g) @ torch.randn(rank_A, M, **g)
    B = torch.randn(N, rank_B, **g) @ torch.randn(rank_B, H, **g)
    return model.flatten(A, B)


# --- Why BIC fails ---------------------------------------------------------------------------

def bic_gap(ns: Sequence[float] | Tensor, F_minus_nL: Sequence[float] | Tensor, d: int) -> Tensor:
    """BIC − F_n = (d/2) log n − (F_n − nL_n(w0)), shape (k,): ≈ (d/2 − λ) log n + (m−1) log log n + O(1)."""
    ns, vals = float64_tensor("ns", ns), float64_tensor("F_minus_nL", F_minus_nL)
    if ns.shape != vals.shape or ns.ndim != 1:
        raise ValueError(f"ns and F_minus_nL must be 1-D of equal length, got {tuple(ns.shape)} and {tuple(vals.shape)}.")
    if not (ns > 0).all():
        raise ValueError("every n must be positive (BIC uses log n).")
    d = nonnegative_int("d (the number of parameters)", d)
    return 0.5 * d * torch.log(ns) - vals
