"""Toy problems for chapter 06 whose local learning coefficients are known exactly.

- :class:`LinePlusDot`: y = g(w)·x with g(w) = (w₂ − 1)(w₁² + w₂²)². Its true parameters are a
  *dot* (the origin) and a *line* {w₂ = 1}; the local learning coefficient is ¼ at the dot and
  ½ on the line (:func:`line_plus_dot_lambda`), so λ̂ must depend on the point it is measured at.
- :func:`finite_n_target_2d`: the exact finite-n target E[nβ(L_n − L_n(w*))] of the localised
  tempered posterior for any two-parameter model y = g(w)·x, by quadrature.
- :func:`sgld_stationary_variance`: the stationary variance of SGLD on a quadratic, 1/(a(1 − εa/4))
  (an AR(1) calculation), and :func:`sgld_quadratic_variance`: the same simulated.
- :func:`langevin_traces`: plain SGLD with no divergence guard, to look at chains that blow up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from slt_course_utils.llc.kernels import sgld_step

__all__ = [
    "LinePlusDot",
    "finite_n_target_2d",
    "langevin_traces",
    "line_plus_dot_g",
    "line_plus_dot_lambda",
    "sgld_quadratic_variance",
    "sgld_stationary_variance",
]


def line_plus_dot_g(w1: Tensor | np.ndarray, w2: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """g(w) = (w₂ − 1)(w₁² + w₂²)²: zero on the dot w = 0 and on the line w₂ = 1."""
    return (w2 - 1) * (w1**2 + w2**2) ** 2


class LinePlusDot(nn.Module):
    """f(x) = g(w)·x, g(w) = (w₂ − 1)(w₁² + w₂²)², with one parameter ``w`` of shape (2,) set to ``w_star``."""

    def __init__(self, w_star: Sequence[float] = (0.0, 0.0), *, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if len(w_star) != 2:
            raise ValueError(f"w_star must have two entries (w1, w2), got {len(w_star)}.")
        self.w = nn.Parameter(torch.tensor([float(v) for v in w_star], dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return line_plus_dot_g(self.w[0], self.w[1]) * x


def line_plus_dot_lambda(w_star: Sequence[float], *, atol: float = 1e-12) -> float:
    """Exact local λ of :class:`LinePlusDot` at a true parameter: ¼ at the dot 0, ½ on the line w₂ = 1.

    At 0: K ∝ g² ≈ r⁸ (r = |w|), and ∫ r^{8z}·r dr has its largest pole at z = −¼, so λ = 2/8 = ¼.
    On the line: g = (w₂ − 1)·u with u = (w₁² + w₂²)² ≠ 0, so K ∝ (w₂ − 1)²: a smooth codimension-1
    set, λ = ½ (m = 1 at both).
    """
    w1, w2 = (float(v) for v in w_star)
    if math.hypot(w1, w2) <= atol:
        return 0.25
    if abs(w2 - 1) <= atol:
        return 0.5
    raise ValueError(f"w* = ({w1}, {w2}) is not a true parameter of the line-plus-dot model (g(w*) = "
                     f"{line_plus_dot_g(w1, w2):.3g} ≠ 0); use the dot (0, 0) or a point (t, 1) on the line.")


def finite_n_target_2d(
    g: Callable[[np.ndarray, np.ndarray], np.ndarray],
    a: float,
    nbeta: float,
    localization: float,
    w_star: Sequence[float] = (0.0, 0.0),
    *,
    half_width: float = 3.0,
    num: int = 1601,
) -> float:
    """E[nβ(L − L*)] under ∝ exp(−nβL − γ|w − w*|²/2), L − L* = (a/2)(g(w)² − g(w*)²), by quadrature.

    Exact for y = g(w)·x with Σxᵢyᵢ = 0 (``normal_crossing_data``) and a = Σx²/(nσ²): the value
    the sampler targets at this n, β and γ. A (num × num) midpoint grid on the square of side
    2·``half_width`` around w*; the Gaussian localisation makes the tails beyond it negligible for
    γ·half_width² ≫ 1 (the default, γ = 1 and half_width = 3, leaves < 1e-4 of the mass outside).
    """
    if not (a > 0 and nbeta > 0 and localization >= 0):
        raise ValueError(f"need a > 0, nbeta > 0 and localization ≥ 0, got a={a}, nbeta={nbeta}, "
                         f"localization={localization}.")
    if not (isinstance(num, int) and num >= 101):
        raise ValueError(f"num (grid points per axis) must be an integer ≥ 101, got {num!r}.")
    c1, c2 = (float(v) for v in w_star)
    t = np.linspace(-half_width, half_width, num)
    w1, w2 = np.meshgrid(c1 + t, c2 + t, indexing="ij")
    g_star = float(g(np.array(c1), np.array(c2)))
    energy = nbeta * a / 2 * (g(w1, w2) ** 2 - g_star**2)
    logp = -energy - localization / 2 * ((w1 - c1) ** 2 + (w2 - c2) ** 2)
    p = np.exp(logp - logp.max())
    return float((energy * p).sum() / p.sum())


def sgld_stationary_variance(lr: float, a: float) -> float:
    """Var of SGLD's stationary law on U = a w²/2: ε/(1 − ρ²), ρ = 1 − εa/2, i.e. 1/(a(1 − εa/4)); inf if εa ≥ 4."""
    if not (lr > 0 and a > 0):
        raise ValueError(f"need lr > 0 and a > 0, got lr={lr}, a={a}.")
    if lr * a >= 4:
        return math.inf
    rho = 1 - lr * a / 2
    return lr / (1 - rho**2)


def sgld_quadratic_variance(lr: float, a: float, *, num_chains: int = 4000, num_steps: int = 0,
                            seed: int = 0) -> float:
    """Empirical stationary variance of w ← w − (ε/2)a·w + √ε ξ (SGLD on U = a w²/2), all chains from 0.

    The exact value is ε/(1 − (1 − εa/2)²) = 1/(a(1 − εa/4)); the chain's correlation time is
    2/(εa) steps, so ``num_steps=0`` runs 20/(εa) of them (start-up bias < e⁻²⁰).
    """
    if not (lr > 0 and a > 0):
        raise ValueError(f"need lr > 0 and a > 0, got lr={lr}, a={a}.")
    if lr * a >= 4:
        raise ValueError(f"εa = {lr * a:.3g} ≥ 4: |1 − εa/2| ≥ 1 and the chain diverges; lower lr.")
    steps = num_steps or math.ceil(20 / (lr * a))
    gen = torch.Generator().manual_seed(seed)
    w = torch.zeros(num_chains, dtype=torch.float64)
    zero = torch.zeros(num_chains, dtype=torch.float64)
    for _ in range(steps):
        w = sgld_step(w, a * w, zero, lr=lr, nbeta=1.0, localization=0.0, generator=gen)
    return float(w.var())


def langevin_traces(model: nn.Module, data: tuple[Tensor, Tensor], loss_fn: Callable[[Tensor, Tensor], Tensor],
                    *, lr: float, nbeta: float, localization: float, num_chains: int, num_steps: int,
                    seed: int = 0) -> Tensor:
    """nβ(L(w_t) − L(w*)) of plain full-batch SGLD, (chains, steps), with no divergence guard (inf/NaN kept).

    For looking at what a diverging chain does; :func:`~slt_course_utils.llc.estimate_llc` freezes
    such chains and drops their traces.
    """
    x, y = data
    star = {k: v.detach().clone() for k, v in model.named_parameters()}
    params = {k: v.unsqueeze(0).repeat(num_chains, *([1] * v.ndim)) for k, v in star.items()}

    def loss_one(p: dict[str, Tensor]) -> Tensor:
        return loss_fn(torch.func.functional_call(model, p, (x,)), y)

    grad_and_loss = torch.func.vmap(torch.func.grad_and_value(loss_one))
    loss_star = float(loss_one(star))
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(num_chains, num_steps, dtype=torch.float64)
    with torch.no_grad():
        for t in range(num_steps):
            grads, losses = grad_and_loss(params)
            out[:, t] = nbeta * (losses.double() - loss_star)
            params = sgld_step(params, grads, star, lr=lr, nbeta=nbeta, localization=localization,
                               generator=gen)
    return out
