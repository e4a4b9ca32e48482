"""Posteriors and free energies on grids, computed in log space.

The tempered posterior at inverse temperature β is

    p_β(w | D_n) = φ(w) exp(−nβ L_n(w)) / Z_n(β),   Z_n(β) = ∫ φ(w) exp(−nβ L_n(w)) dw,

and the free energy is F_n(β) = −log Z_n(β). On a grid with cell volume Δ the integral is a
sum, and every step is done with ``logsumexp`` so that nothing under- or overflows even
when nβL_n is in the millions. Grids may be 1-D (shape ``(G,)``) or 2-D (``(G1, G2)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def _check_grid_values(log_prior: Tensor, loss: Tensor) -> None:
    if not isinstance(log_prior, Tensor) or not isinstance(loss, Tensor):
        raise ValueError("log_prior and loss must be torch tensors evaluated on the same grid.")
    if log_prior.shape != loss.shape:
        raise ValueError(
            f"log_prior has shape {tuple(log_prior.shape)} but loss has shape "
            f"{tuple(loss.shape)}; evaluate both on the same grid."
        )
    if torch.isnan(loss).any() or torch.isnan(log_prior).any():
        raise ValueError("loss or log_prior contains NaN; check the model and the grid range.")
    if torch.isinf(loss).any() and (loss == -math.inf).any():
        raise ValueError("loss contains −inf; an empirical loss is bounded below.")


def _check_n_beta(n: float, beta: float) -> None:
    if not (isinstance(n, (int, float)) and math.isfinite(n) and n > 0):
        raise ValueError(f"n (the number of samples) must be a positive finite number, got {n!r}.")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta (the inverse temperature) must be positive and finite, got {beta!r}.")


def cell_volume(*axes: Tensor) -> float:
    """Δ = Π_k (spacing of axis k), for uniformly spaced 1-D grid axes."""
    if not axes:
        raise ValueError("give at least one grid axis.")
    vol = 1.0
    for ax in axes:
        if ax.ndim != 1 or ax.numel() < 2:
            raise ValueError(f"each grid axis must be 1-D with ≥ 2 points, got shape {tuple(ax.shape)}.")
        steps = torch.diff(ax.double())
        h = steps.mean().item()
        if h <= 0 or not torch.allclose(steps, torch.full_like(steps, h), rtol=1e-6, atol=0.0):
            raise ValueError("grid axes must be increasing and uniformly spaced.")
        vol *= h
    return vol


def log_unnormalised_posterior(log_prior: Tensor, loss: Tensor, n: float, beta: float = 1.0) -> Tensor:
    """log φ(w) − nβ L_n(w) at every grid point."""
    _check_n_beta(n, beta)
    _check_grid_values(log_prior, loss)
    return log_prior - n * beta * loss


def free_energy_grid(
    log_prior: Tensor, loss: Tensor, n: float, beta: float = 1.0, *, volume: float
) -> float:
    """F_n(β) = −log Σ_grid φ(w) exp(−nβ L_n(w)) Δ   (quadrature, in log space)."""
    if not (volume > 0):
        raise ValueError(f"the grid cell volume must be positive, got {volume}.")
    log_u = log_unnormalised_posterior(log_prior, loss, n, beta)
    return -(torch.logsumexp(log_u.reshape(-1).double(), dim=0).item() + math.log(volume))


def log_posterior_grid(
    log_prior: Tensor, loss: Tensor, n: float, beta: float = 1.0, *, volume: float
) -> Tensor:
    """log p_β(w|D_n) = log φ(w) − nβL_n(w) + F_n(β): a log density, Σ exp(·)Δ = 1."""
    log_u = log_unnormalised_posterior(log_prior, loss, n, beta).double()
    return log_u - (torch.logsumexp(log_u.reshape(-1), dim=0) + math.log(volume))


@dataclass(frozen=True)
class GridPosterior:
    """A posterior on a 1-D or 2-D grid: axes, log density, free energy, moments."""

    axes: tuple[Tensor, ...]
    log_density: Tensor
    free_energy: float
    n: float
    beta: float

    @property
    def density(self) -> Tensor:
        """p_β(w|D_n) on the grid (integrates to 1 against the cell volume)."""
        return self.log_density.exp()

    @property
    def volume(self) -> float:
        return cell_volume(*self.axes)

    def mean(self) -> Tensor:
        """E[w] under the grid posterior, shape ``(d,)``."""
        weights = self.density * self.volume
        mesh = torch.meshgrid(*[a.double() for a in self.axes], indexing="ij")
        return torch.stack([(weights * m).sum() for m in mesh])

    def cov(self) -> Tensor:
        """Cov[w] under the grid posterior, shape ``(d, d)``."""
        weights = self.density * self.volume
        mesh = [m - mu for m, mu in zip(torch.meshgrid(*[a.double() for a in self.axes], indexing="ij"), self.mean(), strict=True)]
        d = len(mesh)
        return torch.stack([torch.stack([(weights * mesh[i] * mesh[j]).sum() for j in range(d)]) for i in range(d)])


def grid_posterior(
    axes: tuple[Tensor, ...] | Tensor,
    log_prior: Tensor,
    loss: Tensor,
    n: float,
    beta: float = 1.0,
) -> GridPosterior:
    """The tempered posterior on the grid spanned by ``axes`` (1 or 2 uniformly spaced axes).

    ``log_prior`` and ``loss`` are log φ(w) and L_n(w) evaluated on the mesh
    ``torch.meshgrid(*axes, indexing="ij")``, shape ``(len(ax0), len(ax1), ...)``.
    """
    if isinstance(axes, Tensor):
        axes = (axes,)
    axes = tuple(axes)
    expected = tuple(len(a) for a in axes)
    if tuple(loss.shape) != expected:
        raise ValueError(
            f"loss has shape {tuple(loss.shape)} but the grid axes give {expected}; evaluate the loss "
            f"on torch.meshgrid(*axes, indexing='ij')."
        )
    vol = cell_volume(*axes)
    return GridPosterior(
        axes=axes,
        log_density=log_posterior_grid(log_prior, loss, n, beta, volume=vol),
        free_energy=free_energy_grid(log_prior, loss, n, beta, volume=vol),
        n=n,
        beta=beta,
    )


def log_normal_prior(w: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """log N(w; mean, std²) elementwise (a Gaussian prior, per coordinate)."""
    if not std > 0:
        raise ValueError(f"prior std must be positive, got {std}.")
    return -0.5 * ((w - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def log_uniform_prior(w: Tensor, low: float, high: float) -> Tensor:
    """log of the uniform density on [low, high] (−inf outside)."""
    if not high > low:
        raise ValueError(f"need low < high for a uniform prior, got [{low}, {high}].")
    inside = (w >= low) & (w <= high)
    return torch.where(inside, torch.full_like(w, -math.log(high - low)), torch.full_like(w, -math.inf))
