"""Posteriors and free energies on grids, computed in log space.

The tempered posterior at inverse temperature β is

    p_β(w | D_n) = φ(w) exp(−nβ L_n(w)) / Z_n(β),   Z_n(β) = ∫ φ(w) exp(−nβ L_n(w)) dw,

and the free energy is F_n(β) = −log Z_n(β). On a grid with cell volume Δ the integral is a
sum, and every step is done with ``logsumexp`` so that nothing under- or overflows even
when nβL_n is in the millions. Grids may be 1-D (shape ``(G,)``) or 2-D (``(G1, G2)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from slt_course_utils._validate import (
    InputTypeError,
    finite_float,
    finite_tensor,
    float64_tensor,
    int_in_range,
    positive_float,
    positive_int,
    real_scalar,
)


def _check_grid_values(log_prior: Tensor, loss: Tensor) -> None:
    if not isinstance(log_prior, Tensor) or not isinstance(loss, Tensor):
        raise InputTypeError("log_prior and loss must be torch tensors evaluated on the same grid.")
    if not (log_prior.is_floating_point() and loss.is_floating_point()):
        raise InputTypeError(f"log_prior and loss must be floating-point tensors, got {log_prior.dtype} and {loss.dtype}.")
    if log_prior.shape != loss.shape:
        raise ValueError(
            f"log_prior has shape {tuple(log_prior.shape)} but loss has shape "
            f"{tuple(loss.shape)}; evaluate both on the same grid."
        )
    if torch.isnan(loss).any() or torch.isnan(log_prior).any():
        raise ValueError("loss or log_prior contains NaN; check the model and the grid range.")
    if (log_prior == math.inf).any():
        raise ValueError("log_prior contains +inf: a prior density is finite; check the prior.")
    if torch.isinf(loss).any() and (loss == -math.inf).any():
        raise ValueError("loss contains −inf; an empirical loss is bounded below.")


def _check_n_beta(n: float, beta: float) -> tuple[float, float]:
    return positive_float("n (the number of samples)", n), positive_float("beta (the inverse temperature)", beta)


def _checked_logsumexp(log_u: Tensor) -> Tensor:
    """log Σ exp(log u) over the whole grid, refusing a grid on which the integrand is zero everywhere."""
    total = torch.logsumexp(log_u.reshape(-1).double(), dim=0)
    if total == -math.inf:
        raise ValueError(
            "φ(w)·exp(−nβL_n(w)) is zero at every grid point (the prior is zero on the whole grid, or the loss is "
            "+inf everywhere): widen the grid to cover the prior's support, or check the loss."
        )
    return total


def _axis_spacing(ax: Tensor) -> float:
    """h of a uniformly spaced, increasing 1-D axis; the tolerance fits its dtype (float32 linspace passes)."""
    if not isinstance(ax, Tensor):
        raise InputTypeError(f"each grid axis must be a 1-D torch tensor, got {type(ax).__name__}.")
    if ax.ndim != 1 or ax.numel() < 2:
        raise ValueError(f"each grid axis must be 1-D with ≥ 2 points, got shape {tuple(ax.shape)}.")
    if ax.is_complex() or ax.dtype == torch.bool:
        raise InputTypeError(f"grid axes must be real tensors, got dtype {ax.dtype}.")
    finite_tensor("a grid axis", ax)
    x = ax.detach().double()
    h = (x[-1] - x[0]).item() / (ax.numel() - 1)
    # Each entry of an axis stored in dtype has an absolute rounding error ≤ eps·max|x|/2, so a step
    # is exact to eps·max|x|; allow 8× that (linspace itself rounds once or twice per entry), and
    # never less than 1e-6·h (the tolerance float64 grids always had).
    eps = torch.finfo(ax.dtype).eps if ax.is_floating_point() else torch.finfo(torch.float64).eps
    tol = max(8 * eps * x.abs().max().item(), 1e-6 * abs(h))
    if not h > 0 or (torch.diff(x) - h).abs().max().item() > tol:
        raise ValueError("grid axes must be increasing and uniformly spaced (e.g. torch.linspace(lo, hi, G)).")
    return h


def cell_volume(*axes: Tensor) -> float:
    """Δ = Π_k (spacing of axis k), for uniformly spaced 1-D grid axes."""
    if not axes:
        raise ValueError("give at least one grid axis.")
    return math.prod(_axis_spacing(ax) for ax in axes)


def log_unnormalised_posterior(log_prior: Tensor, loss: Tensor, n: float, beta: float = 1.0) -> Tensor:
    """log φ(w) − nβ L_n(w) at every grid point."""
    n, beta = _check_n_beta(n, beta)
    _check_grid_values(log_prior, loss)
    return log_prior.double() - n * beta * loss.double()


def free_energy_grid(
    log_prior: Tensor, loss: Tensor, n: float, beta: float = 1.0, *, volume: float
) -> float:
    """F_n(β) = −log Σ_grid φ(w) exp(−nβ L_n(w)) Δ   (quadrature, in log space)."""
    volume = positive_float("volume", volume)
    log_u = log_unnormalised_posterior(log_prior, loss, n, beta)
    return -(_checked_logsumexp(log_u).item() + math.log(volume))


def log_posterior_grid(
    log_prior: Tensor, loss: Tensor, n: float, beta: float = 1.0, *, volume: float
) -> Tensor:
    """log p_β(w|D_n) = log φ(w) − nβL_n(w) + F_n(β): a log density, Σ exp(·)Δ = 1."""
    volume = positive_float("volume", volume)
    log_u = log_unnormalised_posterior(log_prior, loss, n, beta).double()
    return log_u - (_checked_logsumexp(log_u) + math.log(volume))


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
    vol = cell_volume(*axes)
    _check_grid_values(log_prior, loss)
    expected = tuple(len(a) for a in axes)
    if tuple(loss.shape) != expected:
        raise ValueError(
            f"loss has shape {tuple(loss.shape)} but the grid axes give {expected}; evaluate the loss "
            f"on torch.meshgrid(*axes, indexing='ij')."
        )
    return GridPosterior(
        axes=axes,
        log_density=log_posterior_grid(log_prior, loss, n, beta, volume=vol),
        free_energy=free_energy_grid(log_prior, loss, n, beta, volume=vol),
        n=n,
        beta=beta,
    )


def log_normal_prior(w: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """log N(w; mean, std²) elementwise (a Gaussian prior, per coordinate)."""
    mean, std = finite_float("prior mean", mean), positive_float("prior std", std)
    return -0.5 * ((w - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def log_uniform_prior(w: Tensor, low: float, high: float) -> Tensor:
    """log of the uniform density on [low, high] (−inf outside)."""
    low, high = finite_float("low", low), finite_float("high", high)
    if not high > low:
        raise ValueError(f"need low < high for a uniform prior, got [{low}, {high}].")
    inside = (w >= low) & (w <= high)
    return torch.where(inside, torch.full_like(w, -math.log(high - low)), torch.full_like(w, -math.inf))


# --- Adaptive quadrature for large n -------------------------------------------------------

@dataclass(frozen=True)
class AdaptiveFreeEnergy:
    """Result of ``free_energy_adaptive``: F_n(β), the final box, points per axis, and whether it converged."""

    free_energy: float
    box: tuple[tuple[float, float], ...]
    points: int
    iterations: int
    converged: bool
    change: float


def _evaluate_log_u(
    loss_fn: Callable[[Tensor], Tensor],
    log_prior_fn: Callable[[Tensor], Tensor],
    axes: list[Tensor],
    nbeta: float,
    block: int,
) -> Tensor:
    """log φ(w) − nβL_n(w) on the mesh of ``axes``, evaluated in row blocks of ≤ ``block`` points."""
    shape = tuple(len(a) for a in axes)
    out = torch.empty(shape, dtype=torch.float64)
    rest = math.prod(shape[1:])
    rows = max(1, block // max(1, rest))
    for s in range(0, shape[0], rows):
        mesh = torch.meshgrid(axes[0][s : s + rows], *axes[1:], indexing="ij")
        w = torch.stack(mesh, dim=-1)
        loss = loss_fn(w)
        prior = log_prior_fn(w)
        if loss.shape != w.shape[:-1] or prior.shape != w.shape[:-1]:
            raise ValueError(
                f"loss_fn and log_prior_fn must map parameters of shape (..., d) to shape (...); got "
                f"{tuple(loss.shape)} and {tuple(prior.shape)} for input {tuple(w.shape)}."
            )
        out[s : s + rows] = prior.double() - nbeta * loss.double()
    if torch.isnan(out).any():
        raise ValueError("log φ(w) − nβL_n(w) is NaN somewhere on the grid; check the model and the bounds.")
    if (out == math.inf).any():
        raise ValueError("log φ(w) − nβL_n(w) is +inf somewhere; the loss must be bounded below and the prior finite.")
    return out


def free_energy_adaptive(
    loss_fn: Callable[[Tensor], Tensor],
    log_prior_fn: Callable[[Tensor], Tensor],
    bounds: Sequence[tuple[float, float]],
    n: float,
    beta: float = 1.0,
    *,
    points: int | None = None,
    window: float = 40.0,
    tol: float = 1e-6,
    max_points: int | None = None,
    max_iter: int = 40,
    block: int = 1 << 20,
) -> AdaptiveFreeEnergy:
    """F_n(β) = −log ∫ φ(w) exp(−nβL_n(w)) dw over the box ``bounds`` (1-D or 2-D), by zooming and refining grids.

    Each step evaluates log u = log φ − nβL_n on a uniform grid with ``points`` per axis and sums
    with trapezoid weights (logsumexp throughout). The box is then shrunk to where log u ≥ max − ``window`` (padded by two cells): far
    from the peak the integrand is below e^{−window} of its maximum and contributes nothing visible.
    Once the box is stable the grid is refined (points → 2·points − 1, so old nodes are reused)
    until F changes by less than ``tol`` nats. The rectangle rule is spectrally accurate for a
    smooth integrand that vanishes at the box edge, so convergence is fast once the posterior
    width is resolved.

    Cost is (number of grid points) × (cost of one loss evaluation): pass a ``loss_fn`` that uses
    sufficient statistics (e.g. ``LinearFeatureRegression.loss_from_statistics``), so n = 10⁶ costs
    no more than n = 10; a generic ``model.empirical_loss`` works too but costs O(n) per point.
    ``loss_fn`` and ``log_prior_fn`` map (..., d) → (...). Mass outside ``bounds`` is ignored.
    """
    n, beta = _check_n_beta(n, beta)
    bounds = tuple((real_scalar("a lower bound", lo), real_scalar("an upper bound", hi)) for lo, hi in bounds)
    d = len(bounds)
    if d not in (1, 2):
        raise ValueError(f"free_energy_adaptive handles 1-D or 2-D parameters, got {d} bounds.")
    if any(not (math.isfinite(lo) and math.isfinite(hi) and hi > lo) for lo, hi in bounds):
        raise ValueError(f"each bound must be a finite interval (low, high) with low < high, got {bounds}.")
    points = positive_int("points", points) if points is not None else (401 if d == 1 else 129)
    max_points = positive_int("max_points", max_points) if max_points is not None else (1 << 18 if d == 1 else 4097)
    if points < 5 or max_points < points:
        raise ValueError(f"need 5 ≤ points ≤ max_points, got points={points}, max_points={max_points}.")
    window, tol = positive_float("window", window), positive_float("tol", tol)
    max_iter, block = positive_int("max_iter", max_iter), positive_int("block", block)
    nbeta = n * beta
    box = bounds
    previous: float | None = None
    change = math.inf
    free = math.nan
    for it in range(1, max_iter + 1):
        axes = [torch.linspace(lo, hi, points, dtype=torch.float64) for lo, hi in box]
        log_u = _evaluate_log_u(loss_fn, log_prior_fn, axes, nbeta, block)
        peak = log_u.max()
        if peak == -math.inf:
            raise ValueError("the prior is zero everywhere in the box; check bounds and log_prior_fn.")
        log_vol = sum(math.log((hi - lo) / (points - 1)) for lo, hi in box)
        # Trapezoid weights (½ on the edges): O(h²) where the box edge cuts through mass (a
        # uniform prior's support), spectrally accurate where the integrand has died out.
        log_w = log_u.clone()
        for k in range(d):
            log_w.narrow(k, 0, 1).add_(-math.log(2.0))
            log_w.narrow(k, points - 1, 1).add_(-math.log(2.0))
        free = -(torch.logsumexp(log_w.reshape(-1), 0).item() + log_vol)
        # Where is the integrand within `window` nats of its max? Its bounding box, padded by two cells.
        keep = log_u >= peak - window
        new_box = []
        for k, (lo, hi) in enumerate(box):
            other = tuple(j for j in range(d) if j != k)
            hit = keep.any(dim=other) if other else keep
            idx = torch.nonzero(hit).flatten()
            h = (hi - lo) / (points - 1)
            a = axes[k][idx[0]].item() - 2 * h
            b = axes[k][idx[-1]].item() + 2 * h
            new_box.append((max(a, bounds[k][0]), min(b, bounds[k][1])))
        grows = any(a < lo - 1e-12 * (hi - lo) or b > hi + 1e-12 * (hi - lo) for (a, b), (lo, hi) in zip(new_box, box))
        shrinks = math.prod((b - a) / (hi - lo) for (a, b), (lo, hi) in zip(new_box, box)) < 0.5
        if grows or shrinks:
            box = tuple((min(a, lo), max(b, hi)) if grows else (a, b) for (a, b), (lo, hi) in zip(new_box, box))
            previous = None
            continue
        if previous is not None:
            change = abs(free - previous)
            if change < tol:
                return AdaptiveFreeEnergy(free, box, points, it, True, change)
        if 2 * points - 1 > max_points:
            break
        previous = free
        points = 2 * points - 1
    warnings.warn(
        f"free_energy_adaptive did not reach tol={tol} (last change {change:.3g} nats at {points} points per axis); "
        "raise max_points, narrow the bounds, or loosen tol.",
        RuntimeWarning,
        stacklevel=2,
    )
    return AdaptiveFreeEnergy(free, box, points, it, False, change)


def laplace_free_energy(
    loss_at_w0: float, hessian: Tensor, n: float, log_prior_at_w0: float, *, beta: float = 1.0
) -> float:
    """F_n ≈ nβL_n(ŵ) − log φ(ŵ) + (d/2) log(nβ/2π) + ½ log det H, H = ∇²L_n(ŵ) (d × d, positive definite)."""
    n, beta = _check_n_beta(n, beta)
    loss_at_w0 = finite_float("loss_at_w0", loss_at_w0)
    log_prior_at_w0 = finite_float("log_prior_at_w0 (log φ at the minimum: φ(ŵ) > 0)", log_prior_at_w0)
    hessian = torch.as_tensor(hessian, dtype=torch.float64)
    if hessian.ndim == 0:
        hessian = hessian.reshape(1, 1)
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1] or hessian.shape[0] < 1:
        raise ValueError(f"hessian must be a square d × d matrix, got shape {tuple(hessian.shape)}.")
    finite_tensor("hessian", hessian)
    if not torch.allclose(hessian, hessian.T, rtol=1e-8, atol=1e-12 * hessian.abs().max().item()):
        raise ValueError("the Hessian is not symmetric; pass ∇²L_n(ŵ) (symmetrise it if it came from finite differences).")
    # Positive definite ⇔ a Cholesky factor exists (slogdet's sign is +1 for diag(−1, −1) too).
    chol, info = torch.linalg.cholesky_ex(hessian)
    if info.item() != 0:
        raise ValueError(
            "the Hessian is not positive definite (smallest eigenvalue "
            f"{torch.linalg.eigvalsh(hessian)[0].item():.3g}): the Laplace approximation needs a regular minimum."
        )
    logdet = 2 * torch.log(chol.diagonal()).sum().item()
    d = hessian.shape[0]
    nb = n * beta
    return nb * loss_at_w0 - log_prior_at_w0 + 0.5 * d * math.log(nb / (2 * math.pi)) + 0.5 * logdet


def bic(n: float, loss_min: float, d: int) -> float:
    """BIC = nL_n(ŵ) + (d/2) log n (Schwarz 1978): F_n up to O_p(1) for a regular model."""
    n, _ = _check_n_beta(n, 1.0)
    d = int_in_range("d (the number of parameters)", d, 0)
    return n * finite_float("loss_min", loss_min) + 0.5 * d * math.log(n)


@dataclass(frozen=True)
class SlopeFit:
    """OLS fit value ≈ slope·log n + intercept, with the standard error of the slope."""

    slope: float
    stderr: float
    intercept: float


def free_energy_slope(ns: Sequence[float] | Tensor, F_minus_nLn: Sequence[float] | Tensor, *, multiplicity: int = 1) -> SlopeFit:
    """OLS slope of F_n − nL_n(w0) + (m−1) log log n against log n (≈ λ), with its standard error.

    With the default m = 1 this is the plain regression on log n (regular models: slope d/2).
    Passing the known multiplicity m removes the −(m−1) log log n term of Watanabe's formula
    before fitting. The standard error is the usual OLS one, √(RSS/(k−2) / Σ(log n − mean)²).
    """
    ns_t, vals = float64_tensor("ns", ns), float64_tensor("F_minus_nLn", F_minus_nLn)
    if ns_t.ndim != 1 or vals.shape != ns_t.shape:
        raise ValueError(f"ns and F_minus_nLn must be 1-D of equal length, got {tuple(ns_t.shape)} and {tuple(vals.shape)}.")
    if ns_t.numel() < 3:
        raise ValueError("need at least 3 values of n to fit a slope with a standard error.")
    if not (ns_t > 0).all():
        raise ValueError(f"every n must be positive (the fit is on log n), got min n = {ns_t.min().item():g}.")
    logn = torch.log(ns_t)
    multiplicity = positive_int("multiplicity", multiplicity)
    if multiplicity > 1 and (logn <= 0).any():
        raise ValueError("with multiplicity > 1 every n must exceed 1 (log log n is needed).")
    vals = vals + (multiplicity - 1) * torch.log(logn)
    xc = logn - logn.mean()
    sxx = (xc * xc).sum()
    if sxx <= 0:
        raise ValueError("the values of n must not all be equal.")
    slope = (xc * (vals - vals.mean())).sum() / sxx
    intercept = vals.mean() - slope * logn.mean()
    resid = vals - (slope * logn + intercept)
    stderr = torch.sqrt((resid * resid).sum() / (logn.numel() - 2) / sxx)
    return SlopeFit(slope=slope.item(), stderr=stderr.item(), intercept=intercept.item())

