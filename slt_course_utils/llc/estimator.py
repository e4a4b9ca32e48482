"""``estimate_llc``: validate, build the flat problem, pick ε, run one kernel on all chains, summarise."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from slt_course_utils.device import get_device
from slt_course_utils.llc import adapt
from slt_course_utils.llc.convergence import convergence_diagnostics
from slt_course_utils.llc.driver import Run, run_chains
from slt_course_utils.llc.kernels import KERNELS, Hyper, Kernel
from slt_course_utils.llc.observables import Observable, make_observer
from slt_course_utils.llc.problem import (
    Batch,
    EvaluateFn,
    LossFn,
    Problem,
    as_batch,
    as_tensors,
    batch_len,
    build_problem,
    is_int,
)
from slt_course_utils.llc.quadratic import BIAS_WARN, predicted_sgld_bias
from slt_course_utils.llc.quadratic import check_localization as localization_check
from slt_course_utils.llc.result import LLCResult

__all__ = ["default_nbeta", "estimate_llc"]

HyperArg = float | str | Tensor | np.ndarray


def default_nbeta(n: int) -> float:
    """nβ* = n / log n (β* = 1/log n, the WBIC temperature of Lau et al.)."""
    if n <= 1:
        raise ValueError(f"n must be > 1 for nβ = n/log n (log 1 = 0), got {n}; pass n > 1 or nbeta.")
    return n / math.log(n)


def _per_chain(v: Any, name: str, chains: int, *, positive: bool, hint: str) -> float | Tensor:
    """A real scalar (Python, NumPy or 0-d tensor) as a float, or a (chains,) tensor; else ValueError/TypeError."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        raise TypeError(f"{name} must be a real number or a tensor of shape ({chains},), got {v!r}; {hint}.")
    if isinstance(v, (np.ndarray, Tensor)) and np.ndim(v) == 1:
        t = torch.as_tensor(np.asarray(v, dtype=np.float64) if isinstance(v, np.ndarray) else v.detach().cpu())
        t = t.double()
        if t.shape != (chains,):
            raise ValueError(f"a per-chain {name} must have shape (num_chains,) = ({chains},), got {tuple(t.shape)}.")
        ok = torch.isfinite(t).all() and ((t > 0).all() if positive else (t >= 0).all())
        if not ok:
            raise ValueError(f"every entry of {name} must be finite and {'> 0' if positive else '≥ 0'}; {hint}.")
        return t
    try:
        f = float(v) if np.ndim(v) == 0 else None
    except (TypeError, ValueError):
        f = None
    if f is None or isinstance(v, complex):
        raise TypeError(f"{name} must be a real number (or a tensor of shape ({chains},)), got "
                        f"{type(v).__name__}; {hint}.")
    if not (math.isfinite(f) and (f > 0 if positive else f >= 0)):
        raise ValueError(f"{name} must be finite and {'positive' if positive else '≥ 0'}, got {v!r}; {hint}.")
    return f


def _validate_counts(*, n: Any, n_data: int, num_chains: Any, num_draws: Any, num_burnin_steps: Any,
                     num_steps_bw_draws: Any, batch_size: Any, draw_loss: Any, divergence_factor: Any,
                     seed: Any, sampler: Any, eval_batch_size: Any) -> None:
    if not is_int(num_chains) or num_chains < 1:
        raise ValueError(f"num_chains must be an integer ≥ 1, got {num_chains!r}; use e.g. 4–10 chains.")
    if not is_int(num_draws) or num_draws < 1:
        raise ValueError(f"num_draws must be an integer ≥ 1, got {num_draws!r}; a few hundred is typical.")
    if not is_int(num_burnin_steps) or num_burnin_steps < 0:
        raise ValueError(f"num_burnin_steps must be an integer ≥ 0, got {num_burnin_steps!r}.")
    if not is_int(num_steps_bw_draws) or num_steps_bw_draws < 1:
        raise ValueError(f"num_steps_bw_draws must be an integer ≥ 1, got {num_steps_bw_draws!r}.")
    if not is_int(n) or n <= 1:
        raise ValueError(
            f"n (the number of samples in nβ) must be an integer > 1, got {n!r}: nβ = n/log n "
            "needs log n > 0. Pass more data or set n explicitly."
        )
    if batch_size is not None and (not is_int(batch_size) or not 1 <= batch_size <= n_data):
        raise ValueError(
            f"batch_size must be None (full batch) or an integer in [1, {n_data}] (the dataset "
            f"size), got {batch_size!r}."
        )
    if draw_loss not in ("batch", "full"):
        raise ValueError(f"draw_loss must be 'batch' or 'full', got {draw_loss!r}.")
    if not (isinstance(divergence_factor, (int, float)) and divergence_factor > 0):
        raise ValueError(f"divergence_factor must be positive (math.inf disables it), got {divergence_factor!r}.")
    if not is_int(seed) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}.")
    if sampler not in KERNELS:
        raise ValueError(f"sampler must be one of {sorted(KERNELS)}, got {sampler!r}.")
    if eval_batch_size is not None and (not is_int(eval_batch_size) or eval_batch_size < 1):
        raise ValueError(f"eval_batch_size must be None or a positive integer, got {eval_batch_size!r}.")


def _as_device(device: Any) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ('auto', 'cpu', 'cuda', 'mps') or a torch.device, got "
                        f"{type(device).__name__}.")
    return get_device(device)


def _hyper_tensor(v: float | Tensor, like: Tensor) -> float | Tensor:
    return v.to(dtype=like.dtype, device=like.device) if isinstance(v, Tensor) else v


def split_data(data: Any, loss_fn: LossFn | None, evaluate: EvaluateFn | None) -> tuple[Batch, Tensor | None]:
    """(inputs, targets) for ``loss_fn``, or (the batch structure, None) for ``evaluate``."""
    if evaluate is not None and loss_fn is not None:
        raise TypeError("pass either loss_fn(output, target) or evaluate=(model, batch) -> loss, not both.")
    if evaluate is None and loss_fn is None:
        raise TypeError("estimate_llc needs a loss: loss_fn(output, target) (the mean loss over the batch), or "
                        "evaluate=(model, batch) -> mean loss for dict batches and multi-input models.")
    if evaluate is None:
        return as_tensors(data)
    if isinstance(data, DataLoader):
        raise TypeError("with evaluate=, pass the data as a tensor or a tuple/list/dict of tensors (not a "
                        "DataLoader); minibatches are drawn by the sampler (batch_size=).")
    return as_batch(data), None


def estimate_llc(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | DataLoader | Batch,
    loss_fn: LossFn | None = None,
    *,
    evaluate: EvaluateFn | None = None,
    restrict: list[str] | dict[str, Tensor] | None = None,
    observables: dict[str, Observable] | None = None,
    sampler: str = "sgld",
    n: int | None = None,
    num_chains: int = 8,
    num_draws: int = 200,
    num_burnin_steps: int | None = None,
    num_steps_bw_draws: int = 1,
    lr: HyperArg = "auto",
    localization: HyperArg = 1.0,
    nbeta: HyperArg | None = None,
    batch_size: int | None = None,
    draw_loss: str = "batch",
    eval_batch_size: int | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool | None = None,
    strict: bool = False,
    divergence_factor: float = 100.0,
    check_localization: bool = True,
    compile: bool = False,
) -> LLCResult:
    """λ̂(w*) = nβ (mean over draws of L(w) − L_n(w*)), all chains advanced together.

    ``model`` is evaluated at its current weights w* (it is not modified); ``data`` is a pair
    ``(inputs, targets)`` or a DataLoader (iterated once, in this process, and concatenated);
    ``loss_fn(model(inputs), targets)`` is the mean loss over the batch (a 0-d tensor; no
    ``.item()``). To leading order λ̂ does not depend on rescaling the loss by a constant c:
    c changes nβ·L and the curvature alike, and nβ·E[L − L*] stays ½·rank for a quadratic (the
    localisation term γ shifts this slightly). Use the per-sample negative log likelihood
    (e.g. MSE/(2σ²)) to compare λ̂ with an exact learning coefficient at a stated temperature.

    Samplers (``sampler``), all on the localised tempered posterior ∝ exp(−nβL − γ/2|w − w*|²):
    ``"sgld"`` (default), ``"rmsprop_sgld"`` (diagonal RMSProp preconditioning as devinterp
    1.3, α = 0.99, eps = 0.1, adapted during the burn-in (throughout if num_burnin_steps=0) and
    then frozen, so that the draws come from a fixed-preconditioner Langevin chain whose law is
    the target up to the ε-bias; devinterp keeps adapting and read +7–19% high, see
    benchmarks/calibrate_llc_results.md), ``"mala"`` (SGLD proposal with a Metropolis correction:
    exact at any ε, full batches only; costs one extra gradient evaluation per rejected proposal's
    worth of mixing). See :mod:`slt_course_utils.llc.kernels`.

    Defaults and what they cost:

    - ``lr="auto"``: ε chosen by :func:`slt_course_utils.llc.adapt.auto_lr` so that SGLD's
      discretisation bias is ≈ 2% (MALA uses the same ε and removes the rest); costs 6 (up to 12) windows of ≥ 50
      *full-batch* steps before the burn-in. A float (or a (chains,) tensor) fixes ε.
    - ``localization=1.0`` (γ): modest; the quadratic γ-bias is ½Σγ/(nβh + γ) (≪ 1 when
      nβh ≫ 1). Smaller γ lets chains wander further along flat directions (slower mixing).
    - ``nbeta=None`` → n/log n (β* = 1/log n, Lau et al.), n the dataset size (not the batch).
    - ``num_burnin_steps=None`` → ⌈¼ · num_draws · num_steps_bw_draws⌉ steps discarded.
    - ``batch_size=None`` → full-batch gradients; an integer draws per-chain minibatch indices
      (with replacement) at every step.
    - ``draw_loss="batch"`` records the loss computed for the gradient at the pre-step w;
      ``"full"`` evaluates L_n on all data at each draw (``eval_batch_size`` chunks it).
    - ``lr``, ``localization`` and ``nbeta`` also accept tensors of shape (num_chains,): one value
      per chain (this is how :func:`calibration_sweep` runs a whole grid as one call); the
      Hessian-based checks (localisation, predicted ε-bias) are then skipped.
    - Std over chains uses ddof = 1; stderr = std/√(chains). Both are NaN with one chain.
    - Diagnostics: Metropolis acceptance of the Langevin proposals (``mala_acceptance``; for
      SGLD computed on every 4th transition, never used to reject), R̂ and ESS of the loss
      traces and a drift test (:mod:`slt_course_utils.llc.convergence`), the predicted
      relative ε-bias of the quadratic model (``predicted_lr_bias``, when the Hessian at w* is
      computed: d ≤ 2000, d²·n ≤ 3e8 and ``check_localization``), and the ``lr="auto"`` evidence.
    - ``compile=True`` compiles the per-step gradient with ``torch.compile`` (a few seconds once,
      then faster per step for small models; falls back to eager with a warning).
    - Random numbers come from one ``torch.Generator`` seeded with ``seed`` (the global RNG is
      never touched). Order per step: minibatch indices (chains, B) when minibatching, then the
      noise (chains, d) (then MALA's uniforms (chains,)).

    Refined LLCs and observables (Wang et al. arXiv 2410.02984; Baker et al. 2504.18274):

    - ``restrict``: parameter names (or module prefixes) or a dict name → bool mask. Only those
      coordinates are sampled; every other one stays exactly at w* (no noise, no localisation), so
      λ̂ is the weight-refined LLC of that component. For the data-refined LLC pass the other data set.
    - ``evaluate(model, batch) -> mean loss`` replaces ``loss_fn`` (``data`` is then a tensor or a
      tuple/list/dict of tensors sharing dim 0): dict batches, multi-input models, extra terms.
    - ``observables``: dict name → f(params) recorded at every draw (``result.observables[name]``,
      (chains, draws, *S)); :func:`~slt_course_utils.llc.observables.sample_losses` gives the
      per-sample losses of a probe set.

    Failures: a chain whose loss is NaN/inf or exceeds L(w*) + ``divergence_factor``·(|L(w*)|
    + d/nβ) is frozen, named in a warning and excluded; if all chains diverge, or any with
    ``strict=True``, :class:`LLCDivergenceError` is raised. A negative mean warns that w* may
    not be a local minimum. With ``check_localization`` the Hessian at w* (d ≤ 2000 and
    d²·n ≤ 3e8, ``llc.adapt.HESSIAN_BUDGET``; a Hutchinson trace above) warns when γ dominates nβ·curvature.
    """
    x, y = split_data(data, loss_fn, evaluate)
    n_data = batch_len(x)
    n = n_data if n is None else n
    if num_burnin_steps is None:
        valid_sizes = is_int(num_draws) and is_int(num_steps_bw_draws)
        num_burnin_steps = math.ceil(0.25 * num_draws * num_steps_bw_draws) if valid_sizes else 0
    _validate_counts(n=n, n_data=n_data, num_chains=num_chains, num_draws=num_draws,
                     num_burnin_steps=num_burnin_steps, num_steps_bw_draws=num_steps_bw_draws,
                     batch_size=batch_size, draw_loss=draw_loss, divergence_factor=divergence_factor,
                     seed=seed, sampler=sampler, eval_batch_size=eval_batch_size)
    C = int(num_chains)
    auto = isinstance(lr, str)
    if auto and lr != "auto":
        raise ValueError(f"lr must be 'auto', a positive number or a tensor of shape ({C},), got {lr!r}.")
    lr_v = None if auto else _per_chain(lr, "lr (the step size ε)", C, positive=True, hint="try 1e-4 or 'auto'")
    loc_v = _per_chain(localization, "localization (γ)", C, positive=False, hint="try 1–100")
    nb_v = (default_nbeta(n) if nbeta is None
            else _per_chain(nbeta, "nbeta", C, positive=True, hint="leave it None for n/log n"))
    kernel = KERNELS[sampler]
    minibatch = batch_size is not None and batch_size < n_data
    if kernel.full_batch_only and minibatch:
        raise ValueError(f"sampler={sampler!r} needs full batches (its accept/reject step compares exact "
                         "potentials); use batch_size=None, or sampler='sgld' with minibatches.")
    per_chain_hyper = any(isinstance(v, Tensor) for v in (lr_v, loc_v, nb_v))
    if auto and per_chain_hyper:
        raise ValueError("lr='auto' needs one localization and one nbeta for all chains; pass lr explicitly "
                         "with per-chain hyperparameters.")

    dev = _as_device(device)
    chunk = eval_batch_size or n_data
    prob = build_problem(model, x, y, loss_fn, dev, chunk, evaluate=evaluate, restrict=restrict)
    observe_fn, obs_star = make_observer(prob, observables, dev)
    loss_star, d, w_star = prob.loss_star, prob.d, prob.w_star
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    diagnostics: dict[str, Any] = {}
    eigs = None
    if (check_localization or auto) and adapt.hessian_affordable(d, prob.n_data) and not per_chain_hyper:
        eigs = prob.hessian_eigenvalues()
    if check_localization and not per_chain_hyper:
        diagnostics.update(localization_check(prob, float(nb_v), float(loc_v), gen, eigs))
        gen.manual_seed(int(seed))  # sampling stream independent of the check

    nb_t, loc_t = _hyper_tensor(nb_v, w_star), _hyper_tensor(loc_v, w_star)
    threshold = loss_star + divergence_factor * (abs(loss_star) + d / nb_v)
    if isinstance(threshold, Tensor):
        threshold = threshold.to(dev)
    grad_fn, warm_up = prob.grad_fn(batch_size, gen, compile=compile)
    hp: dict[str, Any] = {
        "sampler": sampler, "n": n, "nbeta": _plain(nb_v), "lr": None if auto else _plain(lr_v),
        "localization": _plain(loc_v), "num_chains": C, "num_draws": num_draws,
        "num_burnin_steps": num_burnin_steps, "num_steps_bw_draws": num_steps_bw_draws,
        "batch_size": batch_size, "draw_loss": draw_loss, "seed": int(seed), "device": str(dev),
        "dtype": str(w_star.dtype), "num_params": d, "divergence_factor": divergence_factor,
        "divergence_threshold": _plain(threshold), "lr_auto": auto,
        "restrict": _describe_restrict(restrict), "num_params_total": sum(prob.numels),
    }
    if compile:  # compile outside the timed loop, without touching the random stream
        hp["compile_time_s"] = warm_up(C)
    position = w_star.unsqueeze(0).repeat(C, 1)
    t0 = time.perf_counter()
    if auto:
        lr_v, state, evidence = choose_lr(prob, kernel, float(nb_v), float(loc_v), eigs, gen, position,
                                          num_burnin_steps=num_burnin_steps, threshold=threshold,
                                          grad_fn=grad_fn, minibatch=minibatch)
        hp["lr"] = lr_v
        diagnostics["lr_auto"] = evidence
    lr_t = _hyper_tensor(lr_v, w_star)
    hyper = Hyper(lr_t, nb_t, loc_t, w_star)
    if not auto:
        state = kernel.init(position, grad_fn, hyper)
    if kernel.name == "rmsprop_sgld" and num_burnin_steps > 0:  # V adapts during the burn-in only, then P is
        state = state._replace(adapt_steps=num_burnin_steps)  # fixed; without burn-in it adapts throughout
    if eigs is not None and kernel.name == "sgld":
        bias = predicted_sgld_bias(eigs, float(nb_v), float(loc_v), float(lr_v))
        diagnostics["predicted_lr_bias"] = bias
        if bias > BIAS_WARN:
            warnings.warn(
                f"At lr={float(lr_v):.3g} the quadratic model at w* predicts that SGLD overestimates λ̂ by "
                f"{bias:.1%} (factor 1/(1 − εa/4) per direction, a = nβh + γ). Lower lr (about "
                f"{float(lr_v) * 0.02 / bias:.2g} for 2%), use lr='auto', or sampler='mala'.", stacklevel=2)
    record = prob.full_loss if (draw_loss == "full" and minibatch) else None
    run = run_chains(kernel, state, grad_fn, hyper, gen, num_burnin_steps=num_burnin_steps,
                     num_draws=num_draws, num_steps_bw_draws=num_steps_bw_draws, threshold=threshold,
                     loss_star=loss_star, record_fn=record, observe_fn=observe_fn, strict=strict,
                     progress=progress, desc=kernel.name.upper())
    elapsed = time.perf_counter() - t0
    res = summarize_run(run, nb_v, loss_star, hp, diagnostics, elapsed)
    res.observables, res.observables_star = run.observables, obs_star
    return res


def choose_lr(prob: Problem, kernel: Kernel, nbeta: float, localization: float, eigs: Tensor | None,
              gen: torch.Generator, position: Tensor, *, num_burnin_steps: int, threshold: float,
              grad_fn: Any, minibatch: bool) -> tuple[float, Any, dict[str, Any]]:
    """``lr="auto"``: (ε, the adapted state for ``grad_fn``, evidence) from :func:`adapt.auto_lr` on full batches."""
    probe = adapt.probe_curvature(prob, nbeta, localization, eigs, int(gen.initial_seed()))
    lr0 = adapt.initial_lr(nbeta, localization, probe["curvature"])
    full_grad, _ = prob.grad_fn(None, gen) if minibatch else (grad_fn, None)
    center = prob.w_star
    hyper0 = Hyper(lr0, _hyper_tensor(nbeta, center), _hyper_tensor(localization, center), center)
    window = max(adapt.MIN_WINDOW, num_burnin_steps // adapt.WINDOWS)
    lr_v, state, evidence = adapt.auto_lr(kernel, kernel.init(position, full_grad, hyper0), full_grad,
                                          hyper0, gen, lr0=lr0, window=window, threshold=threshold,
                                          loss_star=prob.loss_star)
    if minibatch:
        state = kernel.init(state.position, grad_fn, hyper0)
    return lr_v, state, {**evidence, "initial_lr": lr0, "initial_curvature": probe}


def _describe_restrict(restrict: Any) -> Any:
    if restrict is None:
        return None
    if isinstance(restrict, dict):
        return {k: int(torch.as_tensor(m).sum()) for k, m in restrict.items()}
    return list(restrict)


def _plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, Tensor) else v


def lambda_draws(run: Run, nbeta: float | Tensor, loss_star: float) -> Tensor:
    """nβ(L − L*) at every draw, (chains, draws), float64."""
    nb = nbeta.double().cpu()[:, None] if isinstance(nbeta, Tensor) else nbeta
    return nb * (run.loss_trace - loss_star)


def summarize_run(run: Run, nbeta: float | Tensor, loss_star: float, hp: dict[str, Any],
                  diagnostics: dict[str, Any], elapsed: float, *, warn: bool = True) -> LLCResult:
    """λ̂ per chain, mean/std/stderr over the finite chains, traces and diagnostics."""
    lam = lambda_draws(run, nbeta, loss_star)
    D = lam.shape[1]
    llc_trace = torch.cumsum(lam, dim=1) / torch.arange(1, D + 1, dtype=torch.float64)
    per_chain = llc_trace[:, -1].clone()
    valid = per_chain[torch.isfinite(per_chain)]
    mean = float(valid.mean())
    if len(valid) >= 2:
        std = float(valid.std(unbiased=True))
        stderr = std / math.sqrt(len(valid))
    else:
        std = stderr = math.nan
        if warn:
            warnings.warn(
                "Only one chain contributed, so the std and standard error over chains are "
                "undefined (reported as NaN); use num_chains ≥ 2 for an error bar.", stacklevel=3)
    finite = torch.isfinite(run.loss_trace)
    acc_total = float(run.acc_cnt.sum())
    diagnostics.update({
        "mala_acceptance": float(run.acc_sum.sum() / run.acc_cnt.sum()) if acc_total > 0 else math.nan,
        "mala_acceptance_per_chain": (run.acc_sum / run.acc_cnt.clamp(min=1)).cpu().tolist(),
        "fraction_negative_draws": float((run.loss_trace[finite] < loss_star).double().mean()),
        "diverged_chains": run.diverged,
        "num_valid_chains": len(valid),
        "wall_time_s": elapsed,
    })
    diagnostics.update(convergence_diagnostics(lam.numpy(), warn=warn))
    if warn and mean < 0:
        warnings.warn(
            f"The mean λ̂ = {mean:.3g} is negative: the sampler found lower loss than L(w*), so w* "
            "may not be a local minimum (train longer) or lr is too large.", stacklevel=3)
    return LLCResult(mean=mean, std=std, stderr=stderr, per_chain=per_chain, loss_trace=run.loss_trace,
                     llc_trace=llc_trace, loss_star=loss_star, hyperparameters=hp, diagnostics=diagnostics)
