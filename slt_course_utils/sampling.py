"""Random-walk Metropolis–Hastings and Hamiltonian Monte Carlo for low-dimensional posteriors, vectorised over chains.

All chains advance together: the state has shape ``(num_chains, d)`` and ``log_density``
must map a ``(num_chains, d)`` tensor to ``(num_chains,)`` log densities (unnormalised).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from slt_course_utils.diagnostics import ess_per_chain
from slt_course_utils.progress import progress

LogDensity = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class MHResult:
    """Samples ``(num_chains, num_samples, d)``, per-chain acceptance rates ``(num_chains,)``."""

    samples: Tensor
    acceptance_rate: Tensor

    def flat(self) -> Tensor:
        """All chains' samples pooled, shape ``(num_chains * num_samples, d)``."""
        return self.samples.reshape(-1, self.samples.shape[-1])


def _validated_start(init: Tensor, step_size: float, **counts: tuple[int, int]) -> Tensor:
    """Check the step size and the integer ``counts`` (name → (value, minimum)); return init as (chains, d)."""
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive finite number, got {step_size!r}.")
    for name, (value, low) in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}.")
    w = init.detach().clone().double()
    if w.ndim == 1:
        w = w.unsqueeze(0)
    if w.ndim != 2:
        raise ValueError(f"init must have shape (num_chains, d) or (d,), got {tuple(init.shape)}.")
    return w


def metropolis_hastings(
    log_density: LogDensity,
    init: Tensor,
    *,
    step_size: float,
    num_samples: int,
    num_burnin: int = 0,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> MHResult:
    """Random-walk MH: propose w' = w + step_size·N(0, I), accept with prob min(1, p(w')/p(w)).

    ``init`` has shape ``(num_chains, d)`` (or ``(d,)`` for one chain). Raises ``ValueError``
    for a non-positive step size or sample count and for a non-finite log density at the start.
    """
    w = _validated_start(init, step_size, num_samples=(num_samples, 1), num_burnin=(num_burnin, 0))
    logp = log_density(w)
    if logp.shape != (w.shape[0],):
        raise ValueError(
            f"log_density must return one value per chain, shape ({w.shape[0]},); got {tuple(logp.shape)}."
        )
    if not torch.isfinite(logp).all():
        raise ValueError(
            "log_density is not finite at the initial state (outside the prior's support, or NaN); "
            "start the chains where the density is positive."
        )
    samples = torch.empty(w.shape[0], num_samples, w.shape[1], dtype=torch.float64)
    accepted = torch.zeros(w.shape[0], dtype=torch.float64)
    for t in progress(range(num_burnin + num_samples), desc="MH", enabled=show_progress):
        proposal = w + step_size * torch.randn(w.shape, generator=generator, dtype=torch.float64)
        logp_new = log_density(proposal)
        if torch.isnan(logp_new).any():
            raise ValueError("log_density returned NaN for a proposal; check the model for invalid operations.")
        log_u = torch.log(torch.rand(w.shape[0], generator=generator, dtype=torch.float64))
        accept = log_u < (logp_new - logp)
        w = torch.where(accept[:, None], proposal, w)
        logp = torch.where(accept, logp_new, logp)
        if t >= num_burnin:
            samples[:, t - num_burnin] = w
            accepted += accept.double()
    return MHResult(samples=samples, acceptance_rate=accepted / num_samples)


def effective_sample_size(x: Tensor) -> Tensor:
    """ESS = T/τ̂ per chain and coordinate, Geyer's initial monotone sequence (``diagnostics.ess_per_chain``).

    ``x`` has shape ``(chains, draws, d)``; returns ``(chains, d)`` (float64). For R̂ and the
    rank-normalised bulk/tail ESS of one coordinate, see :mod:`slt_course_utils.diagnostics`.
    """
    if x.ndim != 3 or x.shape[1] < 4:
        raise ValueError(f"need samples of shape (chains, draws ≥ 4, d), got {tuple(x.shape)}.")
    a = x.detach().cpu().double().numpy()
    return torch.from_numpy(np.stack([ess_per_chain(a[:, :, j]) for j in range(a.shape[2])], axis=1))


def hamiltonian_monte_carlo(
    log_density: LogDensity,
    init: Tensor,
    *,
    step_size: float,
    num_leapfrog: int,
    num_samples: int,
    num_burnin: int = 0,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> MHResult:
    """HMC: momenta p ~ N(0, I), ``num_leapfrog`` leapfrog steps of H = −log π(w) + |p|²/2, accept w.p. min(1, e^{−ΔH}).

    Vectorised over chains like ``metropolis_hastings`` (``init`` of shape ``(num_chains, d)`` or
    ``(d,)``); gradients of ``log_density`` come from autograd. A trajectory that reaches a
    non-finite log density or gradient (a divergence, or outside the support) is rejected.
    Raises ``ValueError`` for a non-positive step size or counts and a non-finite density at the start.
    """
    w = _validated_start(init, step_size, num_leapfrog=(num_leapfrog, 1), num_samples=(num_samples, 1),
                         num_burnin=(num_burnin, 0))

    def logp_and_grad(x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            lp = log_density(x)
            if lp.shape != (x.shape[0],):
                raise ValueError(f"log_density must return one value per chain, shape ({x.shape[0]},); got {tuple(lp.shape)}.")
            (grad,) = torch.autograd.grad(lp.sum(), x, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
        return lp.detach(), grad.detach()

    logp, grad = logp_and_grad(w)
    if not (torch.isfinite(logp).all() and torch.isfinite(grad).all()):
        raise ValueError(
            "log_density (or its gradient) is not finite at the initial state (outside the support, or NaN); "
            "start the chains where the density is positive and smooth."
        )
    samples = torch.empty(w.shape[0], num_samples, w.shape[1], dtype=torch.float64)
    accepted = torch.zeros(w.shape[0], dtype=torch.float64)
    for t in progress(range(num_burnin + num_samples), desc="HMC", enabled=show_progress):
        p0 = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        q, p, lp_q, g_q = w, p0 + 0.5 * step_size * grad, logp, grad
        ok = torch.ones(w.shape[0], dtype=torch.bool)
        for k in range(num_leapfrog):
            q = q + step_size * p
            lp_q, g_q = logp_and_grad(q)
            bad = ~(torch.isfinite(lp_q) & torch.isfinite(g_q).all(-1))
            ok &= ~bad
            g_q = torch.where(bad[:, None], torch.zeros_like(g_q), g_q)
            p = p + (step_size if k < num_leapfrog - 1 else 0.5 * step_size) * g_q
        h_old = -logp + 0.5 * (p0 * p0).sum(-1)
        h_new = -lp_q + 0.5 * (p * p).sum(-1)
        log_u = torch.log(torch.rand(w.shape[0], generator=generator, dtype=torch.float64))
        finite = ok & torch.isfinite(h_new)
        accept = finite & (log_u < (h_old - torch.where(finite, h_new, torch.zeros_like(h_new))))
        w = torch.where(accept[:, None], q, w)
        logp = torch.where(accept, lp_q, logp)
        grad = torch.where(accept[:, None], g_q, grad)
        if t >= num_burnin:
            samples[:, t - num_burnin] = w
            accepted += accept.double()
    return MHResult(samples=samples, acceptance_rate=accepted / num_samples)
