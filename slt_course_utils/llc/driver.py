"""One driver for every kernel: advance all chains, freeze diverging ones, record the draws.

:func:`run_chains` calls ``kernel.step`` ``num_burnin_steps + num_draws·num_steps_bw_draws``
times. At each step it checks the loss the kernel evaluated (at the pre-step position): a
chain whose loss is NaN/inf or above ``threshold`` is frozen at w* and excluded (or
:class:`LLCDivergenceError` is raised). After burn-in, every ``num_steps_bw_draws``-th step
records the pre-step loss (or ``record_fn`` of the pre-step position: the full-data loss).

The Metropolis acceptance of the Langevin proposal is tracked as a diagnostic: kernels that
report it (MALA) are averaged; for SGLD it is computed (never used to reject) on every
:data:`MALA_EVERY`-th transition from the consecutive steps' U and ∇U.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from slt_course_utils.llc.kernels import Hyper, Kernel, col, log_langevin_acceptance, potential
from slt_course_utils.llc.problem import GradFn
from slt_course_utils.progress import progress as _progress_bar

#: The SGLD acceptance diagnostic is evaluated on every MALA_EVERY-th transition.
MALA_EVERY = 4


class LLCDivergenceError(RuntimeError):
    """Raised when every chain diverged (or any did, with ``strict=True``)."""


@dataclass
class Run:
    """What the driver returns: the state, the recorded losses and the bookkeeping."""

    state: Any
    loss_trace: Tensor  # (chains, draws) float64, NaN for frozen chains
    active: Tensor  # (chains,) bool
    diverged: list[dict[str, Any]] = field(default_factory=list)
    acc_sum: Tensor | None = None
    acc_cnt: Tensor | None = None
    sq_grad_sum: Tensor | None = None  # Σ_steps (∇U·P∇U − γ ΣP), for the step-size rule
    steps: int = 0
    observables: dict[str, Tensor] = field(default_factory=dict)  # name → (chains, draws, *S) float64


def run_chains(
    kernel: Kernel,
    state: Any,
    grad_fn: GradFn,
    hyper: Hyper,
    generator: torch.Generator,
    *,
    num_burnin_steps: int,
    num_draws: int,
    num_steps_bw_draws: int,
    threshold: float | Tensor,
    loss_star: float | Tensor,
    record_fn: Callable[[Tensor], Tensor] | None = None,
    observe_fn: Callable[[Tensor], dict[str, Tensor]] | None = None,
    strict: bool = False,
    progress: bool | None = None,
    track_curvature: bool = False,
    freeze: bool = True,
    desc: str = "SGLD",
) -> Run:
    """Run ``kernel`` on all chains; see the module docstring. ``freeze=False`` raises on any divergence.

    ``loss_star`` is L_n(w*), one float or one value per chain (a trajectory of checkpoints);
    ``observe_fn(positions) -> {name: (chains, *S)}`` is recorded at every draw (NaN for frozen chains).
    """
    C = state.position.shape[0]
    dev = state.position.device
    D, k = num_draws, num_steps_bw_draws
    total = num_burnin_steps + D * k
    loss_trace = torch.full((C, D), math.nan, dtype=torch.float64)
    active = torch.ones(C, dtype=torch.bool, device=dev)
    all_active = True
    run = Run(state, loss_trace, active, [], torch.zeros(C, dtype=torch.float64, device=dev),
              torch.zeros(C, dtype=torch.float64, device=dev))
    if track_curvature:
        run.sq_grad_sum = torch.zeros(C, dtype=torch.float64, device=dev)
    prev: tuple[Tensor, Tensor, Tensor] | None = None  # (w_t, ∇U_t, U_t) for the SGLD acceptance
    langevin = kernel.name == "sgld"
    center = hyper.center.expand(C, -1) if hyper.center.ndim == 2 else hyper.center
    star_t = loss_star.to(dev) if isinstance(loss_star, Tensor) else None

    def star_like(losses: Tensor) -> Tensor:
        return star_t.to(losses.dtype) if star_t is not None else torch.full_like(losses, loss_star)
    bar = _progress_bar(range(total), desc=f"{desc} ({C} chains)", enabled=progress)
    for step in bar:
        new_state, info = kernel.step(state, grad_fn, hyper, generator)
        losses = info.loss
        bad = active & ~(losses <= threshold) if not bool((losses <= threshold).all()) else None
        if bad is not None and bool(bad.any()):
            for c in torch.nonzero(bad).flatten().tolist():
                draw = (step - num_burnin_steps) // k if step >= num_burnin_steps else None
                run.diverged.append({"chain": c, "step": step, "draw": draw, "loss": float(losses[c])})
                where = f"draw {draw} (step {step})" if draw is not None else f"burn-in step {step}"
                msg = (f"{kernel.name} chain {c} diverged at {where}: loss {float(losses[c]):.4g} vs "
                       f"L(w*) = {_fmt(loss_star, c)} (threshold {_fmt(threshold, c)}).")
                if strict or not freeze:
                    raise LLCDivergenceError(msg + " strict=True: lower lr or raise localization.")
                warnings.warn(msg + " The chain is frozen and excluded from λ̂; try a smaller lr "
                              "or a larger localization.", stacklevel=3)
            active = active & ~bad
            all_active = False
            if not bool(active.any()):
                raise LLCDivergenceError(
                    f"All {C} {kernel.name} chains diverged (lr={_fmt(hyper.lr)}, localization="
                    f"{_fmt(hyper.localization)}, nbeta={_fmt(hyper.nbeta)}). Lower lr (e.g. ÷10) or raise "
                    "localization, and check that w* is a (local) minimum and that the loss is a mean "
                    "over samples."
                )
            prev = None
        if not all_active:
            losses = torch.where(active, losses, star_like(losses))

        if langevin and prev is not None:
            w_t, G_t, U_t = prev
            U = potential(info.position, losses, hyper)
            log_a = log_langevin_acceptance(w_t, U_t, G_t, info.position, U, info.grad_potential, hyper.lr)
            _accumulate(run, active, torch.exp(torch.clamp(log_a, max=0.0)))
            prev = None
        elif hasattr(info, "acceptance") and step >= num_burnin_steps:
            _accumulate(run, active, info.acceptance)
        if track_curvature:
            G = info.grad_potential
            P = getattr(info, "preconditioner", None)
            gpg = (G * G).sum(1) if P is None else (G * P * G).sum(1)
            tr_loc = col(hyper.localization) * (torch.ones_like(G) if P is None else P)
            run.sq_grad_sum += torch.where(active, gpg.double() - tr_loc.sum(1).double(), 0.0)

        if step >= num_burnin_steps and (step - num_burnin_steps) % k == 0:
            draw = (step - num_burnin_steps) // k
            rec = losses if record_fn is None else record_fn(info.position)
            loss_trace[:, draw] = rec if all_active else torch.where(active, rec, torch.nan)
            if observe_fn is not None:
                _observe(run, observe_fn(info.position), draw, D, active, all_active)

        if langevin and step >= num_burnin_steps and step % MALA_EVERY == 0:
            prev = (info.position, info.grad_potential, potential(info.position, losses, hyper))
        if all_active:
            state = new_state
        else:  # frozen chains sit at w*, finite
            state = _freeze(new_state, active, center)
        run.steps += 1
    for item in run.diverged:  # a diverged chain's whole trace is dropped
        loss_trace[item["chain"]] = math.nan
        for trace in run.observables.values():
            trace[item["chain"]] = math.nan
    run.state, run.active = state, active
    return run


def _observe(run: Run, values: dict[str, Tensor], draw: int, D: int, active: Tensor, all_active: bool) -> None:
    """Store one draw of every observable, (chains, *S) → run.observables[name][:, draw]."""
    for name, v in values.items():
        v = v.detach().double().cpu()
        if name not in run.observables:
            run.observables[name] = torch.full((v.shape[0], D, *v.shape[1:]), math.nan, dtype=torch.float64)
        if not all_active:
            keep = active.cpu().view(-1, *([1] * (v.ndim - 1)))
            v = torch.where(keep, v, torch.nan)
        run.observables[name][:, draw] = v


def _accumulate(run: Run, active: Tensor, a: Tensor) -> None:
    ok = active & torch.isfinite(a)
    run.acc_sum += torch.where(ok, a, torch.zeros_like(a))
    run.acc_cnt += ok.double()


def _freeze(state: Any, active: Tensor, center: Tensor) -> Any:
    """The state with inactive chains' positions reset to w* (other fields keep their values)."""
    pos = torch.where(active[:, None], state.position, center)
    return state._replace(position=pos)


def _fmt(v: float | Tensor, c: int | None = None) -> str:
    if isinstance(v, Tensor):
        if c is not None and v.ndim == 1:
            return f"{float(v[c]):.4g}"
        return f"{float(v.min()):.3g}…{float(v.max()):.3g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
