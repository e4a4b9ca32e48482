"""The local learning coefficient estimator λ̂(w*) of Lau et al. (arXiv 2308.12108), by SGLD.

    λ̂(w*) = nβ (E^β_{w|w*,γ}[L_n(w)] − L_n(w*)),   β* = 1/log n,

where the expectation is over the localised tempered posterior
∝ exp(−nβ L_n(w) − (γ/2)|w − w*|²), sampled by stochastic-gradient Langevin dynamics

    w ← w − (ε/2)(nβ ∇L_batch(w) + γ(w − w*)) + N(0, ε)        (ε = ``lr``, γ = ``localization``).

All chains advance together: every parameter gets a leading chain dimension and one
``torch.func.vmap`` of ``torch.func.grad_and_value`` over ``torch.func.functional_call``
computes every chain's loss and gradient in one call (no Python loop over chains).

Four choices that devinterp conflates are explicit arguments of :func:`estimate_llc`:

1. the gradient batch: ``batch_size=None`` uses the full data, an integer draws minibatches;
2. the loss recorded at draws: ``draw_loss="batch"`` (the loss already computed for the
   gradient: the minibatch loss when minibatching, the full loss otherwise) or ``"full"``
   (an extra full-data evaluation at every draw: slower, less noisy);
3. L_n(w*): always the full data (devinterp once used one minibatch, which correlated chains);
4. the n in nβ: ``n`` (default: the dataset size), never the batch size.

Random numbers come from one ``torch.Generator`` seeded with ``seed`` (the global RNG is
never touched). Order per SGLD step: minibatch indices of shape ``(chains, batch)`` (only
when minibatching), then the noise of shape ``(chains, d)`` for all d parameters at once
(flattened in ``named_parameters()`` order and concatenated). Tests replay this order to check the vectorised sampler against a plain loop.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap
from torch.utils.data import DataLoader

from slt_course_utils.device import get_device
from slt_course_utils.progress import progress as _progress_bar

__all__ = [
    "LLCDivergenceError",
    "LLCResult",
    "calibration_sweep",
    "default_nbeta",
    "estimate_llc",
    "expected_llc_quadratic",
    "plot_calibration",
    "sgld_step",
]

LossFn = Callable[[Tensor, Tensor], Tensor]
Params = dict[str, Tensor]

#: The MALA acceptance diagnostic is evaluated on every MALA_EVERY-th SGLD transition.
MALA_EVERY = 4
#: Largest parameter count for which the exact Hessian at w* is computed (localisation check).
MAX_HESSIAN_DIM = 2000


class LLCDivergenceError(RuntimeError):
    """Raised when every SGLD chain diverged (or any did, with ``strict=True``)."""


# --------------------------------------------------------------------------------------
# The SGLD step: a pure tensor function, for teaching and for the estimator
# --------------------------------------------------------------------------------------


def sgld_step(
    params: Tensor | Mapping[str, Tensor],
    grads: Tensor | Mapping[str, Tensor],
    params_star: Tensor | Mapping[str, Tensor],
    *,
    lr: float,
    nbeta: float,
    localization: float,
    generator: torch.Generator | None = None,
    noise: bool = True,
) -> Tensor | Params:
    """w ← w − (ε/2)(nβ ∇L(w) + γ(w − w*)) + N(0, ε), on a tensor or a dict of (stacked) tensors.

    ``params`` may carry a leading chain dimension; ``params_star`` broadcasts against it.
    Noise is drawn from ``generator`` with the shape of each entry of ``params``, in the
    dict's order. Returns new tensors (inputs are not modified).
    """
    if not lr > 0:
        raise ValueError(f"lr (the SGLD step size ε) must be positive, got {lr}.")
    if isinstance(params, Tensor):
        out = sgld_step({"w": params}, {"w": grads}, {"w": params_star}, lr=lr, nbeta=nbeta,
                        localization=localization, generator=generator, noise=noise)
        return out["w"]
    new: Params = {}
    scale = math.sqrt(lr)
    for name, w in params.items():
        drift = nbeta * grads[name] + localization * (w - params_star[name])
        w_new = w - 0.5 * lr * drift
        if noise:
            xi = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
            w_new = w_new + scale * xi
        new[name] = w_new
    return new


def default_nbeta(n: int) -> float:
    """nβ* = n / log n (β* = 1/log n, the WBIC temperature of Lau et al.)."""
    if n <= 1:
        raise ValueError(f"n must be > 1 for nβ = n/log n (log 1 = 0), got {n}; pass n > 1 or nbeta.")
    return n / math.log(n)


# --------------------------------------------------------------------------------------
# Data and model plumbing
# --------------------------------------------------------------------------------------


def _as_tensors(data: Any) -> tuple[Tensor, Tensor]:
    """(inputs, targets) from a pair of tensors or a DataLoader (iterated once, in this process)."""
    if isinstance(data, DataLoader):
        xs, ys = [], []
        for batch in data:  # workers (if any) are the loader's own; nothing is pickled by us
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(
                    "Each batch of the DataLoader must be a pair (inputs, targets), e.g. from a "
                    f"TensorDataset(X, Y); got {type(batch).__name__}."
                )
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise ValueError("The DataLoader yielded no batches; the LLC needs at least two samples.")
        x, y = torch.cat(xs), torch.cat(ys)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise ValueError("data must be a pair of torch tensors (inputs, targets) or a DataLoader.")
    else:
        raise ValueError(
            "data must be a pair of tensors (inputs, targets) or a torch DataLoader yielding such "
            f"pairs; got {type(data).__name__}."
        )
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("inputs and targets need a leading sample dimension (got a 0-d tensor).")
    if len(x) != len(y):
        raise ValueError(
            f"inputs have {len(x)} samples but targets have {len(y)}; they must match along dim 0."
        )
    if len(x) == 0:
        raise ValueError("data is empty; the LLC needs at least two samples.")
    return x, y


def _split_model(model: nn.Module, device: torch.device) -> tuple[Params, Params]:
    """(sampled parameters, fixed tensors): trainable parameters vs frozen ones and buffers."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    params = {k: v.detach().to(device).clone() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True); nothing to sample.")
    fixed = {k: v.detach().to(device) for k, v in model.named_parameters() if not v.requires_grad}
    fixed.update({k: v.detach().to(device) for k, v in model.named_buffers()})
    return params, fixed


def _loss_fn_one(model: nn.Module, loss_fn: LossFn, fixed: Params) -> Callable[[Params, Tensor, Tensor], Tensor]:
    def loss_one(p: Params, x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (p, fixed), (x,)), y)

    return loss_one


def _chunked_full_loss(
    loss_one: Callable, params: Params, x: Tensor, y: Tensor, chunk: int, *, stacked: bool
) -> Tensor:
    """L_n(w) on all data, in chunks of ``chunk`` samples; shape (chains,) if ``stacked``."""
    f = vmap(loss_one, in_dims=(0, None, None), randomness="different") if stacked else loss_one
    total = None
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            part = f(params, x[s : s + chunk], y[s : s + chunk]) * len(x[s : s + chunk])
            total = part if total is None else total + part
    return total / len(x)


def _sq_norm(tensors: Mapping[str, Tensor]) -> Tensor:
    """Σ over parameters of the squared norm, per chain: (chains,)."""
    return sum(t.reshape(t.shape[0], -1).pow(2).sum(1) for t in tensors.values())


# --------------------------------------------------------------------------------------
# The quadratic prediction and the localisation check
# --------------------------------------------------------------------------------------


def _hessian_eigenvalues(loss_one: Callable, params: Params, x: Tensor, y: Tensor, chunk: int) -> Tensor:
    names = list(params)
    shapes = [params[k].shape for k in names]
    sizes = [params[k].numel() for k in names]
    flat = torch.cat([params[k].reshape(-1) for k in names])

    def f(v: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        parts = torch.split(v, sizes)
        return loss_one({k: p.reshape(s) for k, p, s in zip(names, parts, shapes)}, xb, yb)

    hess = torch.zeros(flat.numel(), flat.numel(), dtype=flat.dtype, device=flat.device)
    for s in range(0, len(x), chunk):
        xb, yb = x[s : s + chunk], y[s : s + chunk]
        hess = hess + torch.func.hessian(f)(flat, xb, yb) * len(xb)
    hess = (hess / len(x)).double().cpu()
    return torch.linalg.eigvalsh(0.5 * (hess + hess.T))


def _positive_eigs(eigs: Tensor, nbeta: float) -> Tensor:
    """Eigenvalues that are clearly positive: > 1e-6·max|h| and nβh > 1e-2 (else numerically flat)."""
    scale = float(eigs.abs().max()) if eigs.numel() else 0.0
    return eigs[(eigs > 1e-6 * scale) & (nbeta * eigs > 1e-2)]


def _quadratic_llc(eigs: Tensor, nbeta: float, localization: float) -> tuple[float, int]:
    """(½ Σ nβh/(nβh + γ) over h > 0, number of clearly positive eigenvalues)."""
    pos = _positive_eigs(eigs, nbeta)
    if localization == 0:
        return 0.5 * pos.numel(), pos.numel()
    return float(0.5 * (nbeta * pos / (nbeta * pos + localization)).sum()), pos.numel()


def expected_llc_quadratic(
    model: nn.Module,
    data: Any,
    loss_fn: LossFn,
    nbeta: float,
    localization: float,
    *,
    device: str = "cpu",
) -> float:
    """λ_quad = ½ Σ_i nβh_i/(nβh_i + γ) over eigenvalues h_i > 0 of the Hessian of L_n at w*.

    This is λ̂ for the quadratic approximation of L_n at w* (exact for a Gaussian). Without
    localisation it is ½·rank(H); when γ ≫ nβh_i it is ≈ ½ Σ nβh_i/γ, which grows with nβ —
    the signature of an estimate that measures the localisation, not the loss.
    Builds the full d×d Hessian: meant for small models (d ≲ 2000).
    """
    if not nbeta > 0:
        raise ValueError(f"nbeta must be positive, got {nbeta}.")
    if localization < 0:
        raise ValueError(f"localization must be ≥ 0, got {localization}.")
    dev = get_device(device)
    x, y = _as_tensors(data)
    x, y = x.to(dev), y.to(dev)
    params, fixed = _split_model(model, dev)
    d = sum(p.numel() for p in params.values())
    if d > 4 * MAX_HESSIAN_DIM:
        raise ValueError(f"model has d = {d} parameters; a dense d×d Hessian is too large here.")
    eigs = _hessian_eigenvalues(_loss_fn_one(model, loss_fn, fixed), params, x, y, len(x))
    return _quadratic_llc(eigs, nbeta, localization)[0]


def _mean_curvature_hutchinson(
    loss_one: Callable, params: Params, x: Tensor, y: Tensor, generator: torch.Generator, probes: int = 4
) -> float:
    """tr(H)/d by Hutchinson's estimator, E[vᵀHv] with Rademacher v (cheap proxy for big d)."""
    d = sum(p.numel() for p in params.values())

    def g(p: Params) -> Params:
        return torch.func.grad(loss_one)(p, x, y)

    acc = 0.0
    for _ in range(probes):
        v = {k: (torch.randint(0, 2, p.shape, generator=generator, device=p.device) * 2 - 1).to(p.dtype)
             for k, p in params.items()}
        _, hv = torch.func.jvp(g, (params,), (v,))
        acc += float(sum((hv[k] * v[k]).sum() for k in params))
    return acc / probes / d


def _check_localization(
    loss_one: Callable, params: Params, x: Tensor, y: Tensor, chunk: int, nbeta: float,
    localization: float, generator: torch.Generator,
) -> dict[str, Any]:
    """Warn when γ dominates nβ·curvature; return what was computed (for the diagnostics)."""
    if localization == 0:
        return {}
    d = sum(p.numel() for p in params.values())
    if d <= MAX_HESSIAN_DIM:
        eigs = _hessian_eigenvalues(loss_one, params, x, y, chunk)
        lam_q, n_pos = _quadratic_llc(eigs, nbeta, localization)
        info = {"lambda_quadratic": lam_q, "lambda_quadratic_no_localization": 0.5 * n_pos}
        if n_pos and lam_q < 0.25 * n_pos:  # less than half of the unlocalised ½·rank
            pos = _positive_eigs(eigs, nbeta)
            suggest = 0.1 * nbeta * float(pos.median())
            warnings.warn(
                f"The localization term dominates: the Hessian of L at w* has {n_pos} directions "
                f"of positive curvature, and with nbeta={nbeta:.4g}, localization={localization:.4g} "
                f"a quadratic model predicts λ̂ ≈ {lam_q:.3g} instead of {0.5 * n_pos:.3g} without "
                f"localisation. Such an estimate measures γ, not the loss (it scales with nbeta). "
                f"Lower `localization` (e.g. to ≲ {suggest:.3g}) or raise `nbeta`; note that a loss "
                "averaged over many outputs has a proportionally smaller curvature.",
                stacklevel=3,
            )
        return info
    curv = _mean_curvature_hutchinson(loss_one, params, x, y, generator)
    info = {"mean_curvature": curv}
    if nbeta * curv < localization:
        warnings.warn(
            f"The localization term may dominate: nbeta × mean Hessian eigenvalue = "
            f"{nbeta * curv:.3g} < localization = {localization:.3g}, so λ̂ would mostly measure "
            "γ rather than the loss. Lower `localization` or raise `nbeta`.",
            stacklevel=3,
        )
    return info


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


@dataclass
class LLCResult:
    """λ̂ over chains: mean, std, stderr; per-chain values; traces (chains × draws); diagnostics."""

    mean: float
    std: float
    stderr: float
    per_chain: Tensor
    loss_trace: Tensor
    llc_trace: Tensor
    loss_star: float
    hyperparameters: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python/NumPy dict: ``mean, std, stderr, per_chain, loss_trace, llc_trace, ...``."""
        out = asdict(self)
        for k in ("per_chain", "loss_trace", "llc_trace"):
            out[k] = getattr(self, k).numpy()
        return out

    def __repr__(self) -> str:
        c = self.hyperparameters.get("num_chains")
        return f"LLCResult(λ̂ = {self.mean:.4g} ± {self.stderr:.2g} (se over {c} chains), std {self.std:.3g})"

    def plot(self, axes: Sequence[Any] | None = None, *, title: str | None = None):
        """Loss trace and running-λ̂ trace: one thin line per chain, the mean and a ±std band."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        else:
            fig = axes[0].figure
        draws = np.arange(self.loss_trace.shape[1])
        for ax, trace, name in ((axes[0], self.loss_trace, "L(w)"), (axes[1], self.llc_trace, "running λ̂")):
            arr = trace.numpy()
            for row in arr:
                ax.plot(draws, row, lw=0.6, alpha=0.4, color="C0")
            if np.isfinite(arr).any(axis=0).all():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mu, sd = np.nanmean(arr, axis=0), np.nanstd(arr, axis=0)
                ax.plot(draws, mu, lw=2, color="C1", label="mean over chains")
                ax.fill_between(draws, mu - sd, mu + sd, color="C1", alpha=0.2, label="± std")
            ax.set_xlabel("draw")
            ax.set_ylabel(name)
        axes[0].axhline(self.loss_star, color="k", ls="--", lw=1, label="L(w*)")
        axes[0].set_title("Loss at the draws")
        axes[1].set_title(f"Running λ̂ (final {self.mean:.3g} ± {self.stderr:.2g})")
        axes[0].legend(loc="best", fontsize="small")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig


def _compiled_step(loss_flat: Callable, in_dims: tuple, eager: Callable) -> Callable:
    """``torch.compile`` of vmap(grad_and_value(loss)) over chains, falling back to ``eager``.

    Compilation costs a few seconds once per (model, chains, batch) shape and then removes the
    per-step framework overhead (measured 3× fewer seconds per step for a 64-chain TMS on one
    CPU thread). If compilation fails (no C++ compiler, an unsupported model), a warning says so
    and the eager step is used. Compiling resets torch's compile caches (``torch._dynamo.reset``).
    """
    # torch.compile caches by code object, and every run builds the same functorch wrapper:
    # without a reset, earlier runs' entries pile up until dynamo's recompile limit silently
    # sends later runs back to eager.
    torch._dynamo.reset()
    compiled = torch.compile(vmap(grad_and_value(loss_flat), in_dims=in_dims), dynamic=False)
    state = {"fn": compiled}

    def step(flat: Tensor, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        if state["fn"] is compiled:
            try:
                return compiled(flat, xb, yb)
            except Exception as err:  # noqa: BLE001 - any compiler failure falls back to eager
                warnings.warn(f"compile=True failed ({type(err).__name__}: {str(err)[:200]}); "
                              "running the eager sampler instead.", stacklevel=3)
                state["fn"] = eager
        return state["fn"](flat, xb, yb)

    return step


def _levelled_off(lam_draws: np.ndarray) -> tuple[bool | None, float, float]:
    """Did λ̂ level off? Per chain δ_c = mean(last quarter) − mean(third quarter) of nβ(L − L*).

    Returns (levelled, drift, t): drift = mean δ_c, t = drift/(std δ_c/√chains) (a paired
    test across chains, robust to autocorrelation within chains). Not levelled when the
    drift is both significant (|t| > 3) and material (> 5% of |λ̂|, or > 0.01).
    With one chain, t uses the chain's second-half std instead.
    """
    rows = lam_draws[np.isfinite(lam_draws).all(axis=1)]
    d = lam_draws.shape[1]
    if d < 8 or len(rows) == 0:
        return None, math.nan, math.nan
    q = d // 4
    deltas = rows[:, d - q :].mean(1) - rows[:, d - 2 * q : d - q].mean(1)
    drift = float(deltas.mean())
    if len(rows) >= 2:
        sd = float(deltas.std(ddof=1)) / math.sqrt(len(rows))
    else:
        sd = float(rows[0, d - 2 * q :].std())
    t = drift / sd if sd > 0 else (0.0 if drift == 0 else math.inf)
    material = abs(drift) > max(0.05 * abs(float(rows.mean())), 0.01)
    return not (abs(t) > 3 and material), drift, t


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------


def _validate(
    *, n: int, n_data: int, num_chains: int, num_draws: int, num_burnin_steps: int,
    num_steps_bw_draws: int, lr: float, localization: float, nbeta: float | None,
    batch_size: int | None, draw_loss: str, divergence_factor: float, seed: int,
) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(num_chains) or num_chains < 1:
        raise ValueError(f"num_chains must be an integer ≥ 1, got {num_chains!r}; use e.g. 4–10 chains.")
    if not is_int(num_draws) or num_draws < 1:
        raise ValueError(f"num_draws must be an integer ≥ 1, got {num_draws!r}; a few hundred is typical.")
    if not is_int(num_burnin_steps) or num_burnin_steps < 0:
        raise ValueError(f"num_burnin_steps must be an integer ≥ 0, got {num_burnin_steps!r}.")
    if not is_int(num_steps_bw_draws) or num_steps_bw_draws < 1:
        raise ValueError(f"num_steps_bw_draws must be an integer ≥ 1, got {num_steps_bw_draws!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr (the SGLD step size ε) must be positive and finite, got {lr!r}; try 1e-4.")
    if not (isinstance(localization, (int, float)) and localization >= 0 and math.isfinite(localization)):
        raise ValueError(f"localization (γ) must be finite and ≥ 0, got {localization!r}; try 1–100.")
    if not is_int(n) or n <= 1:
        raise ValueError(
            f"n (the number of samples in nβ) must be an integer > 1, got {n!r}: nβ = n/log n "
            "needs log n > 0. Pass more data or set n explicitly."
        )
    if nbeta is not None and not (isinstance(nbeta, (int, float)) and math.isfinite(nbeta) and nbeta > 0):
        raise ValueError(f"nbeta must be positive and finite, got {nbeta!r}; leave it None for n/log n.")
    if batch_size is not None and (not is_int(batch_size) or not 1 <= batch_size <= n_data):
        raise ValueError(
            f"batch_size must be None (full batch) or an integer in [1, {n_data}] (the dataset "
            f"size), got {batch_size!r}."
        )
    if draw_loss not in ("batch", "full"):
        raise ValueError(f"draw_loss must be 'batch' or 'full', got {draw_loss!r}.")
    if not divergence_factor > 0:
        raise ValueError(f"divergence_factor must be positive (math.inf disables it), got {divergence_factor!r}.")
    if not is_int(seed):
        raise ValueError(f"seed must be an integer, got {seed!r}.")


def estimate_llc(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | DataLoader,
    loss_fn: LossFn,
    *,
    n: int | None = None,
    num_chains: int = 8,
    num_draws: int = 200,
    num_burnin_steps: int | None = None,
    num_steps_bw_draws: int = 1,
    lr: float = 1e-3,
    localization: float = 100.0,
    nbeta: float | None = None,
    batch_size: int | None = None,
    draw_loss: str = "batch",
    eval_batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool | None = None,
    strict: bool = False,
    divergence_factor: float = 100.0,
    check_localization: bool = True,
    compile: bool = False,
) -> LLCResult:
    """λ̂(w*) = nβ (mean over SGLD draws of L(w) − L_n(w*)), all chains advanced together.

    ``model`` is evaluated at its current weights w* (it is not modified); ``data`` is a pair
    ``(inputs, targets)`` or a DataLoader (iterated once, in this process, and concatenated,
    so ``num_workers > 0`` is fine); ``loss_fn(model(inputs), targets)`` is the mean loss
    over the batch and must be vmap-friendly (no ``.item()``). For λ̂ to be an LLC, nβ·L_n
    must be the negative log likelihood (up to a constant), e.g. MSE/(2σ²) for Gaussian noise.

    Defaults and choices:

    - ``n``: dataset size. ``nbeta``: n/log n (β* = 1/log n, Lau et al.). devinterp 1.x
      instead defaults nβ to B/log B with B the *batch size* (NaN/inf at B = 1) and its
      localization to 0; here n is the dataset size whatever the batch.
    - ``num_burnin_steps=None`` → ⌈¼ · num_draws · num_steps_bw_draws⌉ steps discarded
      (chains start at w* where L is lowest, so early draws bias λ̂ low); devinterp uses 0.
    - ``batch_size=None`` → full-batch gradients. Otherwise every chain draws its own
      minibatch indices (uniformly, with replacement) at every step; the data are gathered
      to shape (chains, batch, ...) and vmapped over, so chains stay independent.
    - ``draw_loss``: ``"batch"`` records the loss already computed for the gradient at the
      pre-step w (as devinterp does); ``"full"`` evaluates L_n on all data at each draw.
    - L_n(w*) is always the full-data loss; ``eval_batch_size`` chunks full-data passes.
    - Std over chains uses ddof = 1; stderr = std/√(chains). Both are NaN with one chain.
    - Diagnostics: ``mala_acceptance`` is the mean Metropolis-adjusted-Langevin acceptance
      probability of the proposals actually made (never used to reject); it uses the
      potential nβL + γ/2|w − w*|² on consecutive steps' batches, so it is exact for full
      batches and a noisier proxy with minibatches. ``levelled_off`` compares the last two
      quarters of the draws across chains; ``fraction_negative_draws`` counts L(w) < L(w*).
      The progress bar runs over SGLD steps (burn-in included); ``progress=None`` follows
      ``$SLT_PROGRESS`` (on unless it is 0, as in tests and stored notebook outputs).
    - ``compile=True`` compiles the per-step gradient with ``torch.compile`` (a few seconds once,
      then about 3× faster per step for small models; falls back to eager with a warning).
    - Parameters keep the model's dtype (float32 usually); frozen parameters and buffers
      are passed unchanged. Dropout in train mode uses torch's global RNG (call ``eval()``).

    Failures: a chain whose loss is NaN/inf or exceeds L(w*) + ``divergence_factor``·(|L(w*)|
    + d/nβ) (d/nβ is the scale of the expected excess loss, d the parameter count) is frozen,
    named in a warning and excluded; if all chains diverge, or any with ``strict=True``,
    :class:`LLCDivergenceError` is raised. A negative mean warns that w* may not be a local
    minimum. With ``check_localization`` the Hessian at w* (d ≤ 2000; a Hutchinson trace
    proxy above) warns when γ dominates nβ·curvature: e.g. a TMS model with a loss averaged
    over outputs, lr=1e-3, γ=100 and nβ≈20–150 gave λ̂ ≈ 0.1–0.5 growing with nβ — that
    measured γ, not an LLC (see :func:`expected_llc_quadratic`).
    """
    x, y = _as_tensors(data)
    n_data = len(x)
    n = n_data if n is None else n
    if num_burnin_steps is None:
        valid_sizes = isinstance(num_draws, int) and isinstance(num_steps_bw_draws, int)
        num_burnin_steps = math.ceil(0.25 * num_draws * num_steps_bw_draws) if valid_sizes else 0
    _validate(n=n, n_data=n_data, num_chains=num_chains, num_draws=num_draws,
              num_burnin_steps=num_burnin_steps, num_steps_bw_draws=num_steps_bw_draws, lr=lr,
              localization=localization, nbeta=nbeta, batch_size=batch_size, draw_loss=draw_loss,
              divergence_factor=divergence_factor, seed=seed)
    if eval_batch_size is not None and (not isinstance(eval_batch_size, int) or eval_batch_size < 1):
        raise ValueError(f"eval_batch_size must be None or a positive integer, got {eval_batch_size!r}.")
    nbeta = float(default_nbeta(n) if nbeta is None else nbeta)
    dev = get_device(device)
    x, y = x.to(dev), y.to(dev)
    chunk = eval_batch_size or n_data
    params_star, fixed = _split_model(model, dev)
    names = list(params_star)
    d = sum(p.numel() for p in params_star.values())
    loss_one = _loss_fn_one(model, loss_fn, fixed)

    loss_star_t = _chunked_full_loss(loss_one, params_star, x, y, chunk, stacked=False)
    if loss_star_t.ndim != 0:
        raise ValueError(
            f"loss_fn must return the mean loss over the batch (a scalar); got shape "
            f"{tuple(loss_star_t.shape)}. Use reduction='mean'."
        )
    loss_star = float(loss_star_t)
    if not math.isfinite(loss_star):
        raise ValueError(f"L(w*) = {loss_star} is not finite; check the model, data and loss_fn.")

    gen = torch.Generator(device=dev).manual_seed(int(seed))
    diagnostics: dict[str, Any] = {}
    if check_localization:
        diagnostics.update(_check_localization(loss_one, params_star, x, y, chunk, nbeta,
                                               float(localization), gen))
        gen.manual_seed(int(seed))  # sampling stream independent of the check

    C, D, k = num_chains, num_draws, num_steps_bw_draws
    total_steps = num_burnin_steps + D * k
    threshold = loss_star + divergence_factor * (abs(loss_star) + d / nbeta)
    minibatch = batch_size is not None and batch_size < n_data
    # All chains live in one (chains, d) tensor: every per-step operation is one tensor op,
    # whatever the number of parameter tensors; the model sees views of it.
    shapes = [params_star[k_].shape for k_ in names]
    numels = [params_star[k_].numel() for k_ in names]
    w_star = torch.cat([params_star[k_].reshape(-1) for k_ in names])

    def loss_flat(flat: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        parts = torch.split(flat, numels)
        return loss_one({k_: t.view(s) for k_, t, s in zip(names, parts, shapes, strict=True)}, xb, yb)

    in_dims = (0, 0, 0) if minibatch else (0, None, None)
    forward = vmap(loss_flat, in_dims=in_dims, randomness="different")

    def step_fn(flat: Tensor, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        """Per-chain gradients and losses: one batched forward, one backward of the sum.

        The chains' losses depend on disjoint rows of ``flat``, so ∇ Σ_c L_c has row c = ∇L_c;
        this is cheaper than ``vmap(grad(...))`` for small models in eager mode.
        """
        with torch.enable_grad():
            flat = flat.detach().requires_grad_(True)
            losses = forward(flat, xb, yb)
            (grads,) = torch.autograd.grad(losses.sum(), flat)
        return grads, losses.detach()

    if compile:
        step_fn = _compiled_step(loss_flat, in_dims, step_fn)
    w = w_star.unsqueeze(0).repeat(C, 1)
    loss_trace = torch.full((C, D), math.nan, dtype=torch.float64)
    active = torch.ones(C, dtype=torch.bool, device=dev)
    all_active = True
    diverged: list[dict[str, Any]] = []
    acc_sum = torch.zeros(C, dtype=torch.float64, device=dev)
    acc_cnt = torch.zeros(C, dtype=torch.float64, device=dev)
    prev: tuple[Tensor, Tensor, Tensor] | None = None  # (w_t, G_t, U_t) of the previous step
    sqrt_lr = math.sqrt(lr)
    hp = {
        "n": n, "nbeta": nbeta, "lr": lr, "localization": float(localization), "num_chains": C,
        "num_draws": D, "num_burnin_steps": num_burnin_steps, "num_steps_bw_draws": k,
        "batch_size": batch_size, "draw_loss": draw_loss, "seed": int(seed), "device": str(dev),
        "dtype": str(w_star.dtype), "num_params": d,
        "divergence_factor": divergence_factor, "divergence_threshold": threshold,
    }
    if compile:  # compile outside the timed loop, without touching the random stream
        t_compile = time.perf_counter()
        if minibatch:  # gathered like the real minibatches, so the compiled guards match them
            idx0 = torch.arange(batch_size, device=dev).expand(C, batch_size)
            step_fn(w, x[idx0], y[idx0])
        else:
            step_fn(w, x, y)
        hp["compile_time_s"] = time.perf_counter() - t_compile
    t0 = time.perf_counter()
    bar = _progress_bar(range(total_steps), desc=f"SGLD ({C} chains)", enabled=progress)
    for step in bar:
        if minibatch:
            idx = torch.randint(0, n_data, (C, batch_size), generator=gen, device=dev)
            grads, losses = step_fn(w, x[idx], y[idx])
        else:
            grads, losses = step_fn(w, x, y)

        if not bool((losses <= threshold).all()):  # NaN compares False: NaN/inf count as bad
            bad = active & ~(losses <= threshold)
        else:
            bad = None
        if bad is not None and bool(bad.any()):
            for c in torch.nonzero(bad).flatten().tolist():
                draw = (step - num_burnin_steps) // k if step >= num_burnin_steps else None
                diverged.append({"chain": c, "step": step, "draw": draw, "loss": float(losses[c])})
                where = f"draw {draw} (step {step})" if draw is not None else f"burn-in step {step}"
                msg = (f"SGLD chain {c} diverged at {where}: loss {float(losses[c]):.4g} vs "
                       f"L(w*) = {loss_star:.4g} (threshold {threshold:.4g}).")
                if strict:
                    raise LLCDivergenceError(msg + " strict=True: lower lr or raise localization.")
                warnings.warn(msg + " The chain is frozen and excluded from λ̂; try a smaller lr "
                              "or a larger localization.", stacklevel=2)
            active = active & ~bad
            all_active = False
            if not bool(active.any()):
                raise LLCDivergenceError(
                    f"All {C} SGLD chains diverged (lr={lr}, localization={localization}, "
                    f"nbeta={nbeta:.4g}). Lower lr (e.g. ÷10) or raise localization, and check "
                    "that w* is a (local) minimum and that the loss is a mean over samples."
                )
            w = torch.where(bad[:, None], w_star, w)  # frozen chains sit at w*, finite
            grads = torch.where(bad[:, None], torch.zeros_like(grads), grads)
            prev = None
        if not all_active:
            losses = torch.where(active, losses, torch.full_like(losses, loss_star))

        dw = w - w_star
        G = grads.mul(nbeta).add_(dw, alpha=localization)  # ∇U for U = nβL + γ/2|w − w*|²
        # MALA diagnostic on every MALA_EVERY-th transition (it never rejects; sampling it
        # keeps its cost small): log α = U_t − U_{t+1} + (|fwd|² − |bwd|²)/(2ε).
        if prev is not None:
            w_t, G_t, U_t = prev
            U = nbeta * losses.double() + 0.5 * localization * (dw * dw).sum(1).double()
            fwd = (w - w_t + 0.5 * lr * G_t).pow(2).sum(1)
            bwd = (w_t - w + 0.5 * lr * G).pow(2).sum(1)
            log_a = U_t - U + (fwd.double() - bwd.double()) / (2 * lr)
            a = torch.exp(torch.clamp(log_a, max=0.0))
            ok = active & torch.isfinite(a)
            acc_sum += torch.where(ok, a, torch.zeros_like(a))
            acc_cnt += ok.double()
            prev = None

        if step >= num_burnin_steps and (step - num_burnin_steps) % k == 0:
            draw = (step - num_burnin_steps) // k
            if draw_loss == "batch" or not minibatch:
                rec = losses
            else:
                rec = _chunked_full_loss(loss_flat, w, x, y, chunk, stacked=True)
            loss_trace[:, draw] = rec if all_active else torch.where(active, rec, torch.nan)

        # The SGLD step (as sgld_step): w ← w − (ε/2)G + √ε ξ, with ξ ~ N(0, I) of shape (C, d).
        noise = torch.randn(w.shape, generator=gen, dtype=w.dtype, device=dev)
        w_new = w.add(G, alpha=-0.5 * lr).add_(noise, alpha=sqrt_lr)
        if step >= num_burnin_steps and step % MALA_EVERY == 0:
            prev = (w, G, nbeta * losses.double() + 0.5 * localization * (dw * dw).sum(1).double())
        w = w_new if all_active else torch.where(active[:, None], w_new, w)

    elapsed = time.perf_counter() - t0
    # Diverged chains: their whole trace is dropped.
    for item in diverged:
        loss_trace[item["chain"]] = math.nan
    lam_draws = nbeta * (loss_trace - loss_star)
    counts = torch.arange(1, D + 1, dtype=torch.float64)
    llc_trace = torch.cumsum(lam_draws, dim=1) / counts
    per_chain = llc_trace[:, -1].clone()
    valid = per_chain[torch.isfinite(per_chain)]
    mean = float(valid.mean())
    if len(valid) >= 2:
        std = float(valid.std(unbiased=True))
        stderr = std / math.sqrt(len(valid))
    else:
        std = stderr = math.nan
        warnings.warn(
            "Only one chain contributed, so the std and standard error over chains are "
            "undefined (reported as NaN); use num_chains ≥ 2 for an error bar.", stacklevel=2)

    levelled, drift, t_drift = _levelled_off(lam_draws.numpy())
    finite = torch.isfinite(loss_trace)
    diagnostics.update({
        "mala_acceptance": float(acc_sum.sum() / acc_cnt.sum()) if float(acc_cnt.sum()) > 0 else math.nan,
        "mala_acceptance_per_chain": (acc_sum / acc_cnt.clamp(min=1)).cpu().tolist(),
        "levelled_off": levelled,
        "drift_last_quarters": drift,
        "drift_t": t_drift,
        "fraction_negative_draws": float((loss_trace[finite] < loss_star).double().mean()),
        "diverged_chains": diverged,
        "num_valid_chains": len(valid),
        "wall_time_s": elapsed,
    })
    if levelled is False:
        warnings.warn(
            f"The λ̂ traces have not levelled off: nβ(L − L*) changed by {drift:.3g} between the "
            f"third and last quarter of the draws (t = {t_drift:.1f} across chains). Run more "
            "draws or burn-in, or raise lr (within stability).", stacklevel=2)
    if mean < 0:
        warnings.warn(
            f"The mean λ̂ = {mean:.3g} is negative: the sampler found lower loss than L(w*), so w* "
            "may not be a local minimum (train longer) or lr is too large.", stacklevel=2)
    return LLCResult(mean=mean, std=std, stderr=stderr, per_chain=per_chain, loss_trace=loss_trace,
                     llc_trace=llc_trace, loss_star=loss_star, hyperparameters=hp,
                     diagnostics=diagnostics)


# --------------------------------------------------------------------------------------
# Calibration: sweep (lr × nβ or γ), look for a flat region
# --------------------------------------------------------------------------------------


def calibration_sweep(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | DataLoader,
    loss_fn: LossFn,
    lrs: Iterable[float],
    values: Iterable[float],
    *,
    vary: str = "localization",
    progress: bool | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """λ̂ on the grid lrs × values (values are γ or nβ, per ``vary``): mean, stderr, diverged.

    Returns ``{"lr", vary, "mean", "stderr", "diverged", "levelled_off"}`` with arrays of
    shape (len(lrs), len(values)); a run whose chains all diverged gives NaN. Keyword
    arguments go to :func:`estimate_llc`. Look for a region where λ̂ is flat in both axes.
    """
    if vary not in ("localization", "nbeta"):
        raise ValueError(f"vary must be 'localization' or 'nbeta', got {vary!r}.")
    if vary in kwargs:
        raise ValueError(f"{vary} is swept; do not also pass it as a keyword argument.")
    lrs, values = [float(v) for v in lrs], [float(v) for v in values]
    if not lrs or not values:
        raise ValueError("lrs and values must both be non-empty.")
    shape = (len(lrs), len(values))
    mean, se, div = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    lev = np.zeros(shape, dtype=object)
    kwargs.setdefault("check_localization", False)
    cells = [(i, j) for i in range(len(lrs)) for j in range(len(values))]
    for i, j in _progress_cells(cells, progress):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = estimate_llc(model, data, loss_fn, lr=lrs[i], progress=False,
                                   **{vary: values[j]}, **kwargs)
        except LLCDivergenceError:
            div[i, j] = 1.0
            lev[i, j] = None
            continue
        mean[i, j], se[i, j] = res.mean, res.stderr
        div[i, j] = len(res.diagnostics["diverged_chains"]) / res.hyperparameters["num_chains"]
        lev[i, j] = res.diagnostics["levelled_off"]
    return {"lr": np.array(lrs), vary: np.array(values), "vary": vary, "mean": mean,
            "stderr": se, "diverged": div, "levelled_off": lev}


def _progress_cells(cells: list, enabled: bool | None) -> Iterable:
    return _progress_bar(cells, desc="calibration", enabled=enabled)


def plot_calibration(table: Mapping[str, Any], ax: Any = None, *, title: str | None = None):
    """Heat map of λ̂ over (lr, γ or nβ), each cell annotated 'mean ± se'; diverged cells grey."""
    import matplotlib.pyplot as plt

    vary = table["vary"]
    mean = np.asarray(table["mean"], dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.3 * mean.shape[1] + 2.5, 0.8 * mean.shape[0] + 2))
    else:
        fig = ax.figure
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, aspect="auto", origin="lower")
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            text = "diverged" if not np.isfinite(mean[i, j]) else f"{mean[i, j]:.3g}\n±{table['stderr'][i, j]:.2g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="k" if not np.isfinite(mean[i, j]) else "w")
    ax.set_xticks(range(mean.shape[1]), [f"{v:.3g}" for v in table[vary]])
    ax.set_yticks(range(mean.shape[0]), [f"{v:.0e}" for v in table["lr"]])
    ax.set_xlabel("γ (localization)" if vary == "localization" else "nβ")
    ax.set_ylabel("ε (lr)")
    ax.set_title(title or "λ̂ over the calibration grid")
    fig.colorbar(im, ax=ax, label="λ̂")
    fig.tight_layout()
    return fig
