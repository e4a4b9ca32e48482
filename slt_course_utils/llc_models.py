"""Small models with a known learning coefficient, built for the LLC estimator (chapter 06).

- Normal crossings y = Π_j w_j^{k_j} x + N(0, σ²) at w* = 0 (Lau et al. 2308.12108's validation
  grid): K(w) ∝ Π_j w_j^{2k_j}, so λ = min_{k_j>0} 1/(2k_j) (``theory.rlct_normal_crossing``).
  :func:`normal_crossing_data` residualises the noise against x, so that w* = 0 is the *exact*
  minimum of the empirical loss (not only of the population loss).
- Reduced-rank regression and deep linear networks y = W_L⋯W_1 x at their most singular true
  parameter (unused rows/columns zero), with noiseless targets from a rank-r truth
  (``theory.rlct_reduced_rank_regression``, ``theory.rlct_deep_linear_network``).

Losses are Gaussian negative log likelihoods per sample (up to a constant), so that nβ·L_n is
the tempered negative log likelihood the LLC is defined with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "NormalCrossing",
    "gaussian_nll",
    "linear_chain",
    "linear_regression",
    "linear_chain_data",
    "normal_crossing_data",
    "normal_crossing_finite_n_target",
    "normal_crossing_flat_loss",
    "sum_sq_loss",
]

#: Noise standard deviation of the normal-crossing data (Lau et al.'s grid).
SIGMA = 0.5


class NormalCrossing(nn.Module):
    """f(x) = Π_j w_j^{k_j} · x with one parameter tensor ``w`` of shape (len(k),), at w* = ``w_star``."""

    def __init__(self, k: Sequence[int], w_star: Sequence[float] | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if not k or any(int(kj) != kj or kj < 0 for kj in k):
            raise ValueError(f"k must be a non-empty list of non-negative integers, got {k!r}.")
        self.k = tuple(int(kj) for kj in k)
        start = torch.zeros(len(k), dtype=dtype) if w_star is None else torch.tensor(w_star, dtype=dtype)
        if start.shape != (len(k),):
            raise ValueError(f"w_star must have {len(k)} entries, got {tuple(start.shape)}.")
        self.w = nn.Parameter(start)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for j, kj in enumerate(self.k):
            if kj:
                out = out * self.w[j] ** kj
        return out


def gaussian_nll(out: Tensor, y: Tensor, sigma: float = SIGMA) -> Tensor:
    """Mean of (y − f)²/(2σ²): the Gaussian negative log likelihood per sample, up to a constant."""
    return ((out - y) ** 2).mean() / (2 * sigma**2)


def sum_sq_loss(out: Tensor, y: Tensor) -> Tensor:
    """Mean over samples of ½‖y − f‖² summed over outputs: the NLL per sample for σ = 1."""
    return 0.5 * ((out - y) ** 2).sum(-1).mean()


def normal_crossing_data(n: int = 1000, *, sigma: float = SIGMA, seed: int = 1,
                         dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """(x, y), x ~ N(0, 1), truth y = noise, shapes (n,): noise residualised against x.

    After the projection Σ x_i y_i = 0, so L_n(w) = L_n(0) + (a/2)(Π w_j^{k_j})² with
    a = Σx²/(nσ²): w* = 0 is the exact empirical minimum and the curvature is a ≈ 1/σ².
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}.")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=dtype)
    y = sigma * torch.randn(n, generator=g, dtype=dtype)
    return x, y - (x @ y) / (x @ x) * x


def normal_crossing_flat_loss(k: Sequence[int], sigma: float = SIGMA):
    """loss(w, x, y) = mean (y − Π w_j^{k_j} x)²/(2σ²) for a flat parameter w of shape (len(k),)."""
    k = tuple(int(kj) for kj in k)

    def loss(w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        coef = torch.ones((), dtype=w.dtype, device=w.device)
        for j, kj in enumerate(k):
            if kj:
                coef = coef * w[j] ** kj
        return ((coef * x - y) ** 2).mean() / (2 * sigma**2)

    return loss


def linear_chain(widths: Sequence[int], true_rank: int, *, seed: int = 2) -> nn.Sequential:
    """W_L⋯W_1 (no biases, float32) at the most singular true parameter of a rank-r truth.

    Only the first r hidden units are used (random entries); every other row/column of the
    hidden layers is zero. Two layers ([M, H, N]) are reduced-rank regression.
    """
    if len(widths) < 3:
        raise ValueError(f"widths needs at least input, one hidden and output width, got {widths!r}.")
    if not 0 <= true_rank <= min(widths):
        raise ValueError(f"true_rank must be in [0, {min(widths)}], got {true_rank}.")
    gen = torch.Generator().manual_seed(seed)
    layers = []
    last = len(widths) - 2
    for i, (h_in, h_out) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(h_in, h_out, bias=False)
        w = torch.zeros(h_out, h_in)
        rows = slice(None) if i == last else slice(0, true_rank)
        cols = slice(None) if i == 0 else slice(0, true_rank)
        w[rows, cols] = torch.randn(w[rows, cols].shape, generator=gen)
        with torch.no_grad():
            lin.weight.copy_(w)
        layers.append(lin)
    return nn.Sequential(*layers)


def linear_chain_data(model: nn.Module, n: int, input_dim: int, *, seed: int = 3) -> tuple[Tensor, Tensor]:
    """(x, y) with x ~ N(0, I) of shape (n, input_dim) and noiseless targets y = model(x)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, input_dim, generator=gen)
    with torch.no_grad():
        y = model(x)
    return x, y


def normal_crossing_finite_n_target(k: Sequence[int], a: float, nbeta: float, gamma: float,
                                    points: int = 3001) -> float:
    """E[nβ(a/2)u²], u = w₁^{k₁}w₂^{k₂}, under ∝ exp(−nβ(a/2)u² − γ|w|²/2): the exact finite-n λ̂ target.

    For :func:`normal_crossing_data` L_n(w) − L_n(0) = (a/2)u² exactly, so this 2-D integral
    (a ``points``² grid on [−8/√γ, 8/√γ]², relative error < 1e-3 for the course's cases) is
    what a bias-free sampler estimates at (n, β, γ).
    """
    import numpy as np

    if len(k) != 2 or not gamma > 0:
        raise ValueError(f"need two exponents k and γ > 0 (a bounded 2-D integral), got k={k!r}, γ={gamma}.")
    half = 8 / gamma**0.5
    g = np.linspace(-half, half, points)
    w1, w2 = np.meshgrid(g, g, indexing="ij")
    e = nbeta * a / 2 * (w1 ** int(k[0]) * w2 ** int(k[1])) ** 2
    logp = -e - gamma / 2 * (w1**2 + w2**2)
    p = np.exp(logp - logp.max())
    return float((e * p).sum() / p.sum())


def linear_regression(d: int = 5, n: int = 1000, *, sigma: float = SIGMA, seed: int = 2) -> tuple[nn.Module, Tensor, Tensor]:
    """(model at the MLE, x, y): y = xθ + N(0, σ²), x ~ N(0, I_d), float64, no bias — a regular model, λ = d/2.

    At the MLE the localised tempered posterior of :func:`gaussian_nll` is exactly Gaussian, with
    precisions aᵢ = nβhᵢ + γ (hᵢ the eigenvalues of xᵀx/(nσ²)): E[nβ(L − L*)] = ½Σ nβhᵢ/aᵢ.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.randn(d, 1, generator=g, dtype=torch.float64) + sigma * torch.randn(n, 1, generator=g,
                                                                                      dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T)
    return model, x, y
