"""Toy statistical models: samplers for synthetic data and negative log-likelihoods.

Conventions: parameters ``w`` carry their coordinates in the last dimension (shape
``(..., d)``), so one call evaluates a whole grid or a batch of chains; data are tensors
with the sample index first. Losses are per-sample negative log-likelihoods, and the
empirical loss is their mean, L_n(w) = −(1/n) Σ_i log p(y_i | x_i, w).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of samples) must be a positive integer, got {n!r}.")


def _check_sigma(sigma: float) -> None:
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"the noise scale sigma must be positive and finite, got {sigma!r}.")


# --- The Gaussian mean model: p(x|w) = N(x; w, σ²) ---------------------------------------

def sample_gaussian(n: int, mean: float = 0.0, sigma: float = 1.0, *, generator: torch.Generator | None = None) -> Tensor:
    """n i.i.d. draws X_i ~ N(mean, σ²), float64, shape ``(n,)``."""
    _check_n(n)
    _check_sigma(sigma)
    return mean + sigma * torch.randn(n, generator=generator, dtype=torch.float64)


def gaussian_mean_loss(w: Tensor, x: Tensor, sigma: float = 1.0) -> Tensor:
    """L_n(w) = ½ log(2πσ²) + (1/2nσ²) Σ_i (X_i − w)², for any shape of ``w`` (data ``x`` 1-D).

    Uses the sufficient statistics mean(X) and mean(X²), so it costs O(n + |w|) and is exact
    for n up to millions.
    """
    _check_sigma(sigma)
    if x.ndim != 1 or x.numel() < 1:
        raise ValueError(f"x must be a non-empty 1-D tensor of observations, got shape {tuple(x.shape)}.")
    x = x.double()
    m1, m2 = x.mean(), (x * x).mean()
    return 0.5 * (LOG_2PI + 2 * math.log(sigma)) + (m2 - 2 * w * m1 + w * w) / (2 * sigma**2)


def gaussian_mean_population_loss(w: Tensor, w0: float, sigma: float = 1.0) -> Tensor:
    """L(w) = E_q[−log p(X|w)] with q = N(w0, σ²): ½ log(2πσ²) + ½ + (w − w0)²/(2σ²)."""
    _check_sigma(sigma)
    return 0.5 * (LOG_2PI + 2 * math.log(sigma)) + 0.5 + (w - w0) ** 2 / (2 * sigma**2)


@dataclass(frozen=True)
class ConjugatePosterior:
    """N(mean, var) posterior of the Gaussian mean, and the exact free energy F_n(β)."""

    mean: float
    var: float
    free_energy: float


def gaussian_mean_conjugate(
    x: Tensor, *, prior_mean: float = 0.0, prior_std: float = 1.0, sigma: float = 1.0, beta: float = 1.0
) -> ConjugatePosterior:
    """Exact tempered posterior and F_n(β) for p(x|w) = N(w, σ²), φ = N(μ0, s0²).

    With a = 1/s0² + nβ/σ² and b = μ0/s0² + βΣX_i/σ²: the posterior is N(b/a, 1/a) and
    F_n(β) = (nβ/2) log 2πσ² + βΣX_i²/(2σ²) + μ0²/(2s0²) − b²/(2a) + ½ log(s0² a).
    """
    _check_sigma(sigma)
    _check_sigma(prior_std)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be positive and finite, got {beta!r}.")
    if x.ndim != 1 or x.numel() < 1:
        raise ValueError(f"x must be a non-empty 1-D tensor, got shape {tuple(x.shape)}.")
    x = x.double()
    n = x.numel()
    s2, v0 = sigma**2, prior_std**2
    a = 1 / v0 + n * beta / s2
    b = prior_mean / v0 + beta * x.sum().item() / s2
    free = (
        0.5 * n * beta * math.log(2 * math.pi * s2)
        + beta * (x * x).sum().item() / (2 * s2)
        + prior_mean**2 / (2 * v0)
        - b * b / (2 * a)
        + 0.5 * math.log(v0 * a)
    )
    return ConjugatePosterior(mean=b / a, var=1 / a, free_energy=free)


def kl_gaussians(mean_q: float, var_q: float, mean_p: float, var_p: float) -> float:
    """KL(N(m_q, v_q) ‖ N(m_p, v_p)) = ½[log(v_p/v_q) + (v_q + (m_q − m_p)²)/v_p − 1]."""
    if var_q <= 0 or var_p <= 0:
        raise ValueError("variances must be positive.")
    return 0.5 * (math.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)


# --- Gaussian regression with a parameterised mean: y = f(x; w) + N(0, σ²) ---------------

MeanFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class GaussianRegression:
    """y = f(x; w) + N(0, σ²) with x ~ N(0, 1); ``mean_fn(w, x)`` maps (..., d), (n,) → (..., n)."""

    name: str
    mean_fn: MeanFn
    d: int
    sigma: float = 1.0

    def sample(self, w0: Tensor | list[float], n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(x, y) with x_i ~ N(0,1), y_i = f(x_i; w0) + σ·ε_i; float64 tensors of shape ``(n,)``."""
        _check_n(n)
        w0 = self._check_w(torch.as_tensor(w0, dtype=torch.float64))
        x = torch.randn(n, generator=generator, dtype=torch.float64)
        y = self.mean_fn(w0, x) + self.sigma * torch.randn(n, generator=generator, dtype=torch.float64)
        return x, y

    def _check_w(self, w: Tensor) -> Tensor:
        if w.shape[-1:] != (self.d,):
            raise ValueError(
                f"{self.name}: parameters must have last dimension d = {self.d}, got shape {tuple(w.shape)}."
            )
        return w

    def nll(self, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample −log p(y_i|x_i, w), shape ``w.shape[:-1] + (n,)``."""
        self._check_w(w)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"x and y must be 1-D of equal length, got {tuple(x.shape)} and {tuple(y.shape)}.")
        r = y - self.mean_fn(w, x)
        return 0.5 * (LOG_2PI + 2 * math.log(self.sigma)) + r * r / (2 * self.sigma**2)

    def empirical_loss(self, w: Tensor, x: Tensor, y: Tensor, *, chunk: int = 1 << 22) -> Tensor:
        """L_n(w) = mean_i −log p(y_i|x_i, w), shape ``w.shape[:-1]``; data processed in chunks."""
        self._check_w(w)
        n = x.numel()
        if n < 1:
            raise ValueError("need at least one data point.")
        per = max(1, chunk // max(1, w[..., 0].numel()))
        total = torch.zeros(w.shape[:-1], dtype=torch.float64)
        for s in range(0, n, per):
            total = total + self.nll(w, x[s : s + per], y[s : s + per]).sum(-1)
        return total / n


def _linear_mean(w: Tensor, x: Tensor) -> Tensor:
    return w[..., 0:1] + w[..., 1:2] * x


def _product_mean(w: Tensor, x: Tensor) -> Tensor:
    return (w[..., 0:1] * w[..., 1:2]) * x


#: y = w1 + w2·x + noise: a regular model (d = 2, λ = 1).
LINE = GaussianRegression("line y = w1 + w2·x", _linear_mean, d=2)
#: y = a·b·x + noise: a singular model (d = 2; at truth a·b = 0, λ = 1/2, m = 2).
PRODUCT = GaussianRegression("product y = a·b·x", _product_mean, d=2)
