"""``estimate_llc_trajectory``: λ̂ at many checkpoints of one architecture, as ONE batched run.

Row r = k·C + c of the (K·C, d) position tensor is chain c of checkpoint k: it is localised at
checkpoint k's w*_k and its λ̂ uses checkpoint k's L_n(w*_k), so every checkpoint's estimate is
exactly what :func:`estimate_llc` would compute with the same ε, γ, nβ — but the model is
evaluated once per step for all checkpoints × chains (vmap), which on a CPU or GPU costs far
less than K separate runs for small and medium models (``benchmarks/llc_trajectory.py``).

``lr="auto"`` chooses one ε per checkpoint by the rule of :mod:`slt_course_utils.llc.adapt`
(ε = 8·tol·λ/T, an ε-bias ≈ 2%), with the adaptation windows of all checkpoints batched too.
One ε for all would be set by the stiffest checkpoint: an early one far from a minimum can have
gradients so large that the rule's ε there is 10⁴× smaller than at the end of training, and λ̂
elsewhere would then read ≈ 0 after a few hundred steps.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from slt_course_utils.llc import adapt
from slt_course_utils.llc.driver import LLCDivergenceError, Run, run_chains
from slt_course_utils.llc.estimator import (
    _as_device,
    _describe_restrict,
    _per_chain,
    _validate_counts,
    default_nbeta,
    split_data,
    summarize_run,
)
from slt_course_utils.llc.kernels import KERNELS, Hyper
from slt_course_utils.llc.observables import Observable, make_observer
from slt_course_utils.llc.problem import (
    EvaluateFn,
    LossFn,
    batch_len,
    build_problem,
    is_int,
    split_model,
)
from slt_course_utils.llc.result import LLCResult

__all__ = ["estimate_llc_trajectory"]

#: lr="auto" adapts ε on this many chains per checkpoint (full-batch windows are the costly part).
ADAPT_CHAINS = 4


def _checkpoint_modules(checkpoints: Sequence[Any], model: nn.Module | None) -> list[nn.Module]:
    """Modules for every checkpoint (state dicts are loaded into copies of ``model``)."""
    if isinstance(checkpoints, (nn.Module, dict)) or not isinstance(checkpoints, Sequence) or not checkpoints:
        raise TypeError("checkpoints must be a non-empty list of nn.Modules (one architecture) or of state dicts "
                        f"(then pass model= as the template); got {type(checkpoints).__name__}.")
    mods: list[nn.Module] = []
    for i, ck in enumerate(checkpoints):
        if isinstance(ck, nn.Module):
            mods.append(ck)
        elif isinstance(ck, dict):
            if model is None:
                raise TypeError("checkpoints are state dicts: pass model= (a module of the same architecture) "
                                "to load them into.")
            m = copy.deepcopy(model)
            try:
                m.load_state_dict(ck)
            except RuntimeError as err:
                raise ValueError(f"checkpoint {i} does not fit model=: {str(err)[:300]}") from err
            mods.append(m)
        else:
            raise TypeError(f"checkpoint {i} is a {type(ck).__name__}; pass nn.Modules or state dicts.")
    return mods


def estimate_llc_trajectory(
    checkpoints: Sequence[nn.Module | dict[str, Tensor]],
    data: Any,
    loss_fn: LossFn | None = None,
    *,
    model: nn.Module | None = None,
    evaluate: EvaluateFn | None = None,
    restrict: list[str] | dict[str, Tensor] | None = None,
    observables: dict[str, Observable] | None = None,
    sampler: str = "sgld",
    n: int | None = None,
    num_chains: int = 8,
    num_draws: int = 200,
    num_burnin_steps: int | None = None,
    num_steps_bw_draws: int = 1,
    lr: float | str | Sequence[float] | Tensor = "auto",
    localization: float = 1.0,
    nbeta: float | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool | None = None,
    strict: bool = False,
    divergence_factor: float = 100.0,
) -> list[LLCResult]:
    """[λ̂(w*_k) for each checkpoint k]: checkpoints × chains sampled together, each chain at its own w*_k.

    Arguments as :func:`estimate_llc` (same defaults); ``checkpoints`` is a list of modules of one
    architecture, or of state dicts with ``model=`` as the template. ``lr``: one ε for all, a
    sequence with one ε per checkpoint, or ``"auto"`` (one ε per checkpoint, adapted for all checkpoints
    at once before the burn-in; the evidence is in each result's ``diagnostics["lr_auto"]``).
    Buffers and frozen parameters must be equal across checkpoints (they are not sampled).

    Cost of ``lr="auto"``: ≥ 6 windows of ≥ 50 *full-batch* steps on min(chains, 4) chains per
    checkpoint, before sampling (which starts again from each w*_k). With minibatches on a large
    data set this can cost more than the sampling (measured: 16 checkpoints of a d = 1377 MLP,
    n = 1000, batch 100: adaptation ≈ 10× the sampling; benchmarks/llc_trajectory.py); then pass
    the ε it chose (``[r.hyperparameters["lr"] for r in results]``) to later runs.
    The Hessian-based checks of :func:`estimate_llc` are not run; call it at a checkpoint for them.
    """
    mods = _checkpoint_modules(checkpoints, model)
    K = len(mods)
    x, y = split_data(data, loss_fn, evaluate)
    n_data = batch_len(x)
    n = n_data if n is None else n
    if num_burnin_steps is None:
        ok = is_int(num_draws) and is_int(num_steps_bw_draws)
        num_burnin_steps = math.ceil(0.25 * num_draws * num_steps_bw_draws) if ok else 0
    _validate_counts(n=n, n_data=n_data, num_chains=num_chains, num_draws=num_draws,
                     num_burnin_steps=num_burnin_steps, num_steps_bw_draws=num_steps_bw_draws,
                     batch_size=batch_size, draw_loss="batch", divergence_factor=divergence_factor,
                     seed=seed, sampler=sampler, eval_batch_size=None)
    C = int(num_chains)
    loc = float(_per_chain(localization, "localization (γ)", 1, positive=False, hint="try 1–100"))
    nb = default_nbeta(n) if nbeta is None else float(
        _per_chain(nbeta, "nbeta", 1, positive=True, hint="leave it None for n/log n"))
    kernel = KERNELS[sampler]
    minibatch = batch_size is not None and batch_size < n_data
    if kernel.full_batch_only and minibatch:
        raise ValueError(f"sampler={sampler!r} needs full batches; use batch_size=None or sampler='sgld'.")
    dev = _as_device(device)

    prob = build_problem(mods[0], x, y, loss_fn, dev, n_data, evaluate=evaluate, restrict=restrict)
    _, fixed0 = split_model(mods[0], dev)
    bases = []
    for i, m in enumerate(mods):
        params, fixed = split_model(m, dev)
        if list(params) != prob.names or any(params[k].shape != s for k, s in zip(prob.names, prob.shapes)):
            raise ValueError(f"checkpoint {i} has other trainable parameters than checkpoint 0 (names/shapes); "
                             "all checkpoints must share one architecture and the same requires_grad flags.")
        if list(fixed) != list(fixed0) or any(not torch.equal(fixed[k], fixed0[k]) for k in fixed0):
            raise ValueError(f"checkpoint {i}'s buffers or frozen parameters differ from checkpoint 0's; they are not "
                             "sampled, so a trajectory needs them equal (estimate such checkpoints one by one).")
        bases.append(torch.cat([params[k].reshape(-1) for k in prob.names]))
    base_k = torch.stack(bases)  # (K, d_full)
    free = prob.free
    centers_k = base_k if free is None else base_k[:, free]
    if free is not None:
        prob.base = base_k
    stars = prob.full_loss(centers_k).double().cpu()  # (K,)
    if not torch.isfinite(stars).all():
        bad = torch.nonzero(~torch.isfinite(stars)).flatten().tolist()
        raise ValueError(f"L(w*) is not finite at checkpoints {bad}; check those checkpoints.")
    rows = torch.arange(K).repeat_interleave(C)
    centers = centers_k[rows.to(centers_k.device)]
    if free is not None:
        prob.base = base_k[rows.to(base_k.device)]
    prob.w_star = centers
    star_rows = stars[rows]
    d = prob.d
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    grad_fn, _ = prob.grad_fn(batch_size, gen)

    evidence: dict[str, Any] | None = None
    if isinstance(lr, str):
        if lr != "auto":
            raise ValueError(f"lr must be 'auto', a positive number or one per checkpoint, got {lr!r}.")
        # adapted on min(C, ADAPT_CHAINS) chains per checkpoint; sampling then starts from the w*_k
        Ca = min(C, ADAPT_CHAINS)
        rows_a = torch.arange(K).repeat_interleave(Ca)
        if free is not None:
            prob.base = base_k[rows_a.to(base_k.device)]
        full_grad = prob.grad_fn(None, gen)[0]
        window = max(adapt.MIN_WINDOW, num_burnin_steps // adapt.WINDOWS)
        star_a = stars[rows_a].to(dev)
        thr = star_a + divergence_factor * (star_a.abs() + d / nb)
        lr_k, _, evidence = _auto_per_checkpoint(prob, kernel, full_grad, centers_k[rows_a.to(centers_k.device)],
                                                 star_a, thr, nb, loc, K, Ca, window, gen)
        if free is not None:
            prob.base = base_k[rows.to(base_k.device)]
    else:
        lr_k = _per_chain(torch.as_tensor(lr, dtype=torch.float64) if not isinstance(lr, (int, float)) else lr,
                          "lr (one step size, or one per checkpoint)", K, positive=True, hint="try 1e-4 or 'auto'")
        lr_k = lr_k if isinstance(lr_k, Tensor) else torch.full((K,), float(lr_k), dtype=torch.float64)
    lr_rows = lr_k[rows].to(device=dev, dtype=centers.dtype)
    threshold = (star_rows + divergence_factor * (star_rows.abs() + d / nb)).to(dev)
    hyper = Hyper(lr_rows, nb, loc, centers)
    observe_fn, _ = make_observer(prob, observables, dev)
    t0 = time.perf_counter()
    state = kernel.init(centers.clone(), grad_fn, hyper)
    run = run_chains(kernel, state, grad_fn, hyper, gen, num_burnin_steps=num_burnin_steps,
                     num_draws=num_draws, num_steps_bw_draws=num_steps_bw_draws, threshold=threshold,
                     loss_star=star_rows.to(dev), observe_fn=observe_fn, strict=strict, progress=progress,
                     desc=f"{kernel.name.upper()} × {K} checkpoints")
    elapsed = time.perf_counter() - t0
    star_obs = {k: v[::C] for k, v in observe_fn(centers).items()} if observe_fn is not None else {}
    results = []
    for k in range(K):
        sl = slice(k * C, (k + 1) * C)
        sub = Run(None, run.loss_trace[sl], run.active[sl],
                  [dict(item, chain=item["chain"] - k * C) for item in run.diverged if sl.start <= item["chain"] < sl.stop],
                  run.acc_sum[sl], run.acc_cnt[sl], steps=run.steps)
        hp = {"sampler": sampler, "n": n, "nbeta": nb, "lr": float(lr_k[k]), "localization": loc,
              "num_chains": C, "num_draws": num_draws, "num_burnin_steps": num_burnin_steps,
              "num_steps_bw_draws": num_steps_bw_draws, "batch_size": batch_size, "draw_loss": "batch",
              "seed": int(seed), "device": str(dev), "dtype": str(centers.dtype), "num_params": d,
              "num_params_total": sum(prob.numels), "divergence_factor": divergence_factor,
              "divergence_threshold": float(threshold[k * C]), "lr_auto": evidence is not None,
              "restrict": _describe_restrict(restrict), "checkpoint": k, "num_checkpoints": K}
        diag: dict[str, Any] = {"lr_auto": evidence["per_checkpoint"][k]} if evidence is not None else {}
        diag["wall_time_s_all_checkpoints"] = elapsed
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Only one chain")
            res = summarize_run(sub, nb, float(stars[k]), hp, diag, elapsed / K, warn=False)
        res.observables = {name: v[sl] for name, v in run.observables.items()}
        res.observables_star = {name: v[k].detach().double().cpu() for name, v in star_obs.items()}
        results.append(res)
    _warn_summary(results)
    return results


def _auto_per_checkpoint(prob: Any, kernel: Any, grad_fn: Any, centers: Tensor, star_rows: Tensor,
                         threshold: Tensor, nb: float, loc: float, K: int, C: int, window: int,
                         gen: torch.Generator) -> tuple[Tensor, Any, dict[str, Any]]:
    """lr="auto" for every checkpoint at once: :func:`adapt.auto_lr`'s rule ε_k = 8·tol·λ_k/T_k, per checkpoint.

    All checkpoints × chains run the same full-batch windows; λ_k and T_k are pooled over
    checkpoint k's chains. A checkpoint whose chains diverge restarts from its w* with ε_k ÷ 10.
    The first ε_k is 4·tol/(nβ·h̄_k + γ), h̄_k the mean curvature from one Rademacher probe of
    finite-difference Hessian-vector products (chains of a checkpoint share it).
    """
    tol = adapt.TARGET_BIAS
    rows = torch.arange(K, device=centers.device).repeat_interleave(C)
    v = (torch.randint(0, 2, centers.shape, generator=gen, device=centers.device) * 2 - 1).to(centers.dtype)
    h = 1e-3 * (1 + centers.abs().mean(1, keepdim=True))
    _, g_plus = grad_fn(centers + h * v)
    _, g_minus = grad_fn(centers - h * v)
    curv = ((g_plus - g_minus) * v).sum(1).double().cpu() / (2 * h.squeeze(1).double().cpu()) / centers.shape[1]
    curv_k = curv.view(K, C).mean(1).abs()
    lr_k = torch.tensor([adapt.initial_lr(nb, loc, float(c)) for c in curv_k], dtype=torch.float64)
    hist: list[list[dict[str, float]]] = [[] for _ in range(K)]
    restarts = torch.zeros(K, dtype=torch.long)
    state = kernel.init(centers.clone(), grad_fn, Hyper(lr_k[rows.cpu()].to(centers), nb, loc, centers))
    done = torch.zeros(K, dtype=torch.long)
    while int(done.min()) < adapt.WINDOWS:
        hyper = Hyper(lr_k[rows.cpu()].to(centers), nb, loc, centers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                run = run_chains(kernel, state, grad_fn, hyper, gen, num_burnin_steps=0, num_draws=window,
                                 num_steps_bw_draws=1, threshold=threshold, loss_star=star_rows,
                                 track_curvature=True, progress=False, desc="adapting ε")
            except Exception:  # every chain diverged: all checkpoints restart with ε ÷ 10
                restarts += 1
                if int(restarts.max()) > 8:
                    raise
                lr_k /= 10
                state = kernel.init(centers.clone(), grad_fn, hyper._replace(lr=hyper.lr / 10))
                continue
        diverged = {item["chain"] // C for item in run.diverged}
        pos = run.state.position
        reset = torch.zeros(K * C, dtype=torch.bool, device=centers.device)
        for k in range(K):
            sl = slice(k * C, (k + 1) * C)
            if k in diverged:
                restarts[k] += 1
                if int(restarts[k]) > 8:
                    raise LLCDivergenceError(f"lr='auto' found no stable step size at checkpoint {k} (chains "
                                             f"diverged even at ε = {float(lr_k[k]):.3g}); is it a minimum?")
                hist[k].append({"lr": float(lr_k[k]), "diverged": 1.0})
                lr_k[k] /= 10
                reset[sl] = True
                continue
            lam = nb * float((run.loss_trace[sl, window // 2:] - float(star_rows[k * C])).mean())
            T = float(run.sq_grad_sum[sl].mean()) / window
            lam_eff = max(lam, 0.01)
            rule = 8 * tol * lam_eff / T if T > 0 else 4 * float(lr_k[k])
            hist[k].append({"lr": float(lr_k[k]), "lambda_window": lam, "curvature_T": T, "rule_lr": rule})
            if int(done[k]) < adapt.WINDOWS:
                lr_k[k] = min(max(rule, float(lr_k[k]) / 10), 4 * float(lr_k[k]))
                done[k] += 1
        pos = torch.where(reset[:, None], centers, pos)
        state = kernel.init(pos, grad_fn, hyper) if bool(reset.any()) else run.state
    evidence_k = []
    for k in range(K):
        ok = [e for e in hist[k] if "curvature_T" in e]
        # as adapt.auto_lr: the later half of the windows, without those whose T ≤ 0 (chains still at w*)
        pooled = [e for e in ok[len(ok) // 2:] if e["curvature_T"] > 0]
        if pooled:
            lam_p = max(sum(e["lambda_window"] for e in pooled) / len(pooled), 0.01)
            T_p = sum(e["curvature_T"] for e in pooled) / len(pooled)
            lr_k[k] = 8 * tol * lam_p / T_p
        else:  # no window reached equilibrium: keep the last step size that ran without diverging
            lam_p, T_p = max(ok[-1]["lambda_window"], 0.01), ok[-1]["curvature_T"]
            lr_k[k] = ok[-1]["lr"]
        evidence_k.append({"rule": f"ε = 8·tol·λ/T per checkpoint, T = E[∇UᵀP∇U] − γ·trP (tol = {tol})",
                           "target_bias": tol, "windows": hist[k], "window_length": window,
                           "restarts": int(restarts[k]), "lambda_pooled": lam_p, "curvature_T_pooled": T_p,
                           "predicted_bias": float(lr_k[k]) * T_p / (8 * lam_p) if T_p > 0 else float("nan"),
                           "pooled_windows": len(pooled)})
    return lr_k, state, {"per_checkpoint": evidence_k}


def _warn_summary(results: list[LLCResult]) -> None:
    """One warning naming the checkpoints whose chains diverged or did not converge."""
    div = [r.hyperparameters["checkpoint"] for r in results if r.diagnostics.get("diverged_chains")]
    rhat = [r.hyperparameters["checkpoint"] for r in results
            if isinstance(r.diagnostics.get("rhat"), float) and r.diagnostics["rhat"] > 1.01]
    msgs = []
    if div:
        msgs.append(f"chains diverged (frozen, excluded) at checkpoints {div}: lower lr or raise localization")
    if rhat:
        msgs.append(f"R̂ > 1.01 at checkpoints {rhat}: run more draws (num_draws) or check those λ̂ by hand")
    if msgs:
        warnings.warn("estimate_llc_trajectory: " + "; ".join(msgs) + ".", stacklevel=3)
