"""Sampler kernels, BlackJAX style: ``init(position, ...) -> State`` and
``step(state, grad_fn, hyper, generator) -> (State, Info)``, pure functions on (chains, d) tensors.

All three target the localised tempered posterior ∝ exp(−U(w)) with the potential

    U(w) = nβ L(w) + (γ/2)|w − w*|²,   ∇U = nβ ∇L + γ(w − w*),

where ``hyper`` holds ε (``lr``), nβ, γ and the centre w* — each a Python float (shared by all
chains) or a tensor of shape (chains,) (one value per chain; the centre (d,) or (chains, d)).
``grad_fn(w) -> (L (chains,), ∇L (chains, d))`` evaluates every chain at once (full batch or a
fresh minibatch per call). Random numbers are drawn from ``generator`` in a fixed order:
whatever ``grad_fn`` draws (minibatch indices), then the noise (chains, d), then (MALA only)
one uniform per chain.

- :data:`sgld`: w ← w − (ε/2)∇U(w) + √ε ξ (Welling & Teh 2011; Lau et al. 2308.12108).
- :data:`rmsprop_sgld`: V ← αV + (1 − α)(∇L)², P = 1/(√V + eps),
  w ← w − (ε/2) P∇U(w) + √(εP) ξ (Li et al. 2016; devinterp 1.3's ``rmsprop_sgld``, α = 0.99,
  eps = 0.1; Hitchcock & Hoogland arXiv 2507.21449). V is updated for the state's
  ``adapt_steps`` steps and then **frozen** (``estimate_llc`` sets it to the burn-in length, if > 0): with
  P fixed the chain is preconditioned Langevin, whose stationary law is the target up to the
  O(ε) discretisation bias. While V moves, P depends on the chain's recent path and the law
  is not the target (Li et al.'s Γ term is only one part of that): measured +7% (d = 5
  regression, 3.9σ) with V adapting throughout as devinterp does, vs within 2σ frozen
  (``benchmarks/calibrate_llc_results.md``). ``adapt_steps`` defaults to ∞ (devinterp's behaviour).
- :data:`mala`: the SGLD move as a proposal, accepted with probability
  min(1, exp(U(w) − U(w') + log q(w|w') − log q(w'|w))), per chain — exact for the target at any ε
  (full batches only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from slt_course_utils.llc.problem import GradFn

__all__ = ["Hyper", "Kernel", "mala", "rmsprop_sgld", "sgld", "sgld_step", "KERNELS"]

Scalar = float | Tensor  # a float for all chains, or a (chains,) tensor


class Hyper(NamedTuple):
    """ε, nβ, γ (floats or (chains,) tensors) and the localisation centre w* ((d,) or (chains, d))."""

    lr: Scalar
    nbeta: Scalar
    localization: Scalar
    center: Tensor


class Kernel(NamedTuple):
    """A sampler: ``init(position, grad_fn, hyper) -> state``, ``step(state, grad_fn, hyper, gen)``."""

    name: str
    init: Callable[..., Any]
    step: Callable[..., tuple[Any, Any]]
    full_batch_only: bool = False


def col(v: Scalar) -> Scalar:
    """A per-chain (chains,) tensor as a column (chains, 1) that broadcasts over d; floats unchanged."""
    return v[:, None] if isinstance(v, Tensor) else v


def _axpy(y: Tensor, x: Tensor, a: Scalar) -> Tensor:
    """y + a·x (a float or per-chain); with a float exactly ``y.add(x, alpha=a)`` (the original op order)."""
    return y.add(x, alpha=a) if not isinstance(a, Tensor) else y + col(a) * x


def grad_potential(w: Tensor, grad: Tensor, hyper: Hyper) -> Tensor:
    """∇U = nβ∇L + γ(w − w*), per chain."""
    return _axpy(grad.mul(col(hyper.nbeta)), w - hyper.center, hyper.localization)


def potential(w: Tensor, loss: Tensor, hyper: Hyper) -> Tensor:
    """U = nβL + (γ/2)|w − w*|², per chain, in float64."""
    dw = w - hyper.center
    nb, loc = hyper.nbeta, hyper.localization
    nb = nb.double() if isinstance(nb, Tensor) else nb
    loc = loc.double() if isinstance(loc, Tensor) else loc
    return nb * loss.double() + 0.5 * loc * (dw * dw).sum(1).double()


# ------------------------------------------------------------------------------ SGLD


class SGLDState(NamedTuple):
    position: Tensor  # (chains, d)


class SGLDInfo(NamedTuple):
    loss: Tensor  # L at the pre-step position (minibatch or full), (chains,)
    position: Tensor  # the pre-step position (chains, d)
    grad_potential: Tensor  # ∇U at the pre-step position (chains, d)


def _sgld_init(position: Tensor, grad_fn: GradFn | None = None, hyper: Hyper | None = None) -> SGLDState:
    return SGLDState(position)


def _sgld_step(state: SGLDState, grad_fn: GradFn, hyper: Hyper,
               generator: torch.Generator) -> tuple[SGLDState, SGLDInfo]:
    w = state.position
    loss, grad = grad_fn(w)
    G = grad_potential(w, grad, hyper)
    noise = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
    lr = hyper.lr
    half, root = (-0.5 * lr, math.sqrt(lr)) if not isinstance(lr, Tensor) else (-0.5 * lr, lr.sqrt())
    w_new = _axpy(w, G, half)
    w_new = w_new.add_(noise, alpha=root) if not isinstance(root, Tensor) else w_new + col(root) * noise
    return SGLDState(w_new), SGLDInfo(loss, w, G)


sgld = Kernel("sgld", _sgld_init, _sgld_step)


# ------------------------------------------------------------------------------ RMSProp-SGLD

RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 0.1


class RMSPropState(NamedTuple):
    position: Tensor  # (chains, d)
    square_avg: Tensor  # V, (chains, d)
    adapt_steps: float = math.inf  # V is updated while this is > 0 (one less per step), then frozen


class RMSPropInfo(NamedTuple):
    loss: Tensor
    position: Tensor
    grad_potential: Tensor
    preconditioner: Tensor  # P = 1/(√V + eps) used for this step, (chains, d)


def _rmsprop_init(position: Tensor, grad_fn: GradFn | None = None, hyper: Hyper | None = None) -> RMSPropState:
    return RMSPropState(position, torch.zeros_like(position))


def _rmsprop_step(state: RMSPropState, grad_fn: GradFn, hyper: Hyper, generator: torch.Generator,
                  alpha: float = RMSPROP_ALPHA, eps: float = RMSPROP_EPS) -> tuple[RMSPropState, RMSPropInfo]:
    w = state.position
    loss, grad = grad_fn(w)
    if state.adapt_steps > 0:  # devinterp: V of ∇L, updated first
        V = state.square_avg.mul(alpha).addcmul_(grad, grad, value=1 - alpha)
    else:  # frozen: a fixed-preconditioner Langevin chain
        V = state.square_avg
    P = 1.0 / (V.sqrt() + eps)
    G = grad_potential(w, grad, hyper)
    noise = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
    lr = col(hyper.lr)
    root = math.sqrt(lr) if not isinstance(lr, Tensor) else lr.sqrt()
    w_new = w - 0.5 * lr * P * G + root * P.sqrt() * noise
    return RMSPropState(w_new, V, state.adapt_steps - 1), RMSPropInfo(loss, w, G, P)


rmsprop_sgld = Kernel("rmsprop_sgld", _rmsprop_init, _rmsprop_step)


# ------------------------------------------------------------------------------ MALA


class MALAState(NamedTuple):
    position: Tensor  # (chains, d)
    loss: Tensor  # L(position), full batch, (chains,)
    U: Tensor  # potential, float64, (chains,)
    grad_potential: Tensor  # ∇U(position), (chains, d)


class MALAInfo(NamedTuple):
    loss: Tensor  # L at the pre-step position
    position: Tensor
    grad_potential: Tensor
    acceptance: Tensor  # min(1, α) of this proposal, float64 (chains,)
    accepted: Tensor  # bool (chains,)


def _mala_init(position: Tensor, grad_fn: GradFn, hyper: Hyper) -> MALAState:
    loss, grad = grad_fn(position)
    return MALAState(position, loss, potential(position, loss, hyper), grad_potential(position, grad, hyper))


def log_langevin_acceptance(w: Tensor, U: Tensor, G: Tensor, w_new: Tensor, U_new: Tensor, G_new: Tensor,
                            lr: Scalar) -> Tensor:
    """log α = U(w) − U(w') + (|w' − w + (ε/2)∇U(w)|² − |w − w' + (ε/2)∇U(w')|²)/(2ε), per chain."""
    half = col(lr) * 0.5 if isinstance(lr, Tensor) else 0.5 * lr
    fwd = (w_new - w + half * G).pow(2).sum(1)
    bwd = (w - w_new + half * G_new).pow(2).sum(1)
    lr64 = lr.double() if isinstance(lr, Tensor) else lr
    return U - U_new + (fwd.double() - bwd.double()) / (2 * lr64)


def _mala_step(state: MALAState, grad_fn: GradFn, hyper: Hyper,
               generator: torch.Generator) -> tuple[MALAState, MALAInfo]:
    w, G = state.position, state.grad_potential
    noise = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
    lr = col(hyper.lr)
    root = math.sqrt(lr) if not isinstance(lr, Tensor) else lr.sqrt()
    prop = w - 0.5 * lr * G + root * noise
    loss_p, grad_p = grad_fn(prop)
    U_p = potential(prop, loss_p, hyper)
    G_p = grad_potential(prop, grad_p, hyper)
    log_a = log_langevin_acceptance(w, state.U, G, prop, U_p, G_p, hyper.lr)
    u = torch.rand(w.shape[0], generator=generator, dtype=torch.float64, device=w.device)
    accept = torch.log(u) < log_a  # NaN (a non-finite proposal) compares False: rejected
    a = accept[:, None]
    new = MALAState(torch.where(a, prop, w), torch.where(accept, loss_p, state.loss),
                    torch.where(accept, U_p, state.U), torch.where(a, G_p, G))
    acc = torch.exp(torch.clamp(torch.nan_to_num(log_a, nan=-math.inf), max=0.0))
    return new, MALAInfo(state.loss, w, G, acc, accept)


mala = Kernel("mala", _mala_init, _mala_step, full_batch_only=True)

KERNELS: dict[str, Kernel] = {k.name: k for k in (sgld, rmsprop_sgld, mala)}


# ------------------------------------------------------------------------------ teaching step


def sgld_step(
    params: Tensor | dict[str, Tensor],
    grads: Tensor | dict[str, Tensor],
    params_star: Tensor | dict[str, Tensor],
    *,
    lr: float,
    nbeta: float,
    localization: float,
    generator: torch.Generator | None = None,
    noise: bool = True,
) -> Tensor | dict[str, Tensor]:
    """w ← w − (ε/2)(nβ ∇L(w) + γ(w − w*)) + N(0, ε), on a tensor or a dict of (stacked) tensors.

    ``params`` may carry a leading chain dimension; ``params_star`` broadcasts against it.
    Noise is drawn from ``generator`` with the shape of each entry of ``params``, in the
    dict's order. Returns new tensors (inputs are not modified).
    """
    for name, v in (("lr", lr), ("nbeta", nbeta), ("localization", localization)):
        if not math.isfinite(float(v)):
            raise ValueError(f"{name} must be finite, got {v}.")
    if not lr > 0:
        raise ValueError(f"lr (the SGLD step size ε) must be positive, got {lr}.")
    if isinstance(params, Tensor):
        out = sgld_step({"w": params}, {"w": grads}, {"w": params_star}, lr=lr, nbeta=nbeta,
                        localization=localization, generator=generator, noise=noise)
        return out["w"]
    new: dict[str, Tensor] = {}
    scale = math.sqrt(lr)
    for name, w in params.items():
        drift = nbeta * grads[name] + localization * (w - params_star[name])
        w_new = w - 0.5 * lr * drift
        if noise:
            xi = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
            w_new = w_new + scale * xi
        new[name] = w_new
    return new
