"""``lr="auto"``: choose the step size ε from the sampler's own behaviour during an adaptation phase.

The rule (SGLD and RMSProp-SGLD): keep the first-order discretisation bias of
E[nβ(L − L*)] at ``tol`` (2%). For a Gaussian target the stationary law of the discretised
chain is known exactly: per direction the variance is 1/(a(1 − εa/4)), so

    E_ε[nβ(L − L*)] − E[nβ(L − L*)] = (ε/8)·tr(nβ∇²L) + O(ε²),

i.e. a relative bias b(ε) ≈ ε·T/(8λ) with T = E_π[tr(P nβ∇²L)] (P = 1 for SGLD, the RMSProp
preconditioner otherwise). T is estimated for free from the chains' own gradients, by the
identity E_π[∇Uᵀ P∇U] = E_π[tr(P∇²U)] (integration by parts; P held fixed):
T ≈ mean over steps and chains of ∇UᵀP∇U − γ·tr P, and λ from the window's nβ(L − L*).
Then ε = 8·tol·λ/T. Both use the sampler's positions, so a singular posterior's high
curvature away from w* (e.g. along the arms of K ∝ w₁⁴w₂⁴) is what sets ε, not the flat Hessian at w*.

Adaptation runs :data:`WINDOWS` windows of full-batch steps from w* with ε moved at most ×4 up
or ÷10 down per window (up to :data:`MAX_WINDOWS` while the last window is unsettled: T ≤ 0, or
the rule wanted more than ×4); a window in which any chain diverges restarts from w* with ε ÷ 10.

The first ε is 4·tol/(nβ·h + γ) with h from :func:`probe_curvature`: the largest |eigenvalue|
of the Hessian at w* (exact when d²·n ≤ :data:`HESSIAN_BUDGET`, else power iteration), and
where nβh < γ (a purely singular w*, whose Hessian is 0) also the top curvature at points
around w* that the posterior reaches. Before, 4·tol/γ = 0.08 (γ = 1) diverged in the first
window at every purely singular normal crossing tried (restart ÷10).

The final ε uses T and λ pooled over the later half of the windows, keeping only those with
T > 0: at equilibrium T = E[tr(P nβ∇²L)] > 0 near a minimum, and T ≤ 0 marks chains that have
not left w* (a 4-layer DLN at 0: pooling such windows gave an ε at which every chain diverged).

Short runs at small γ (measured, ``benchmarks/calibrate_llc_results.md``): on singular
posteriors at γ = 1, 8 chains × 800 draws scatter by ±40% from seed to seed (R̂ 1.06–1.12 flags
it), so single runs read 10–37% high or low. That is mixing, not the step: for K ∝ w₁²w₂⁴ at the
ε the rule picks (5.3e-4), three seeds read +32%, −11%, −11% (mean +3%; +1% at 3000 draws),
while smaller steps read *low* at short runs (2.5e-4: −23%; 1e-4: −67%). Run longer.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from slt_course_utils.llc.driver import LLCDivergenceError, run_chains
from slt_course_utils.llc.kernels import Hyper, Kernel
from slt_course_utils.llc.problem import MAX_HESSIAN_DIM, GradFn, Problem

#: Relative ε-bias the rule aims for.
TARGET_BIAS = 0.02
#: Number and minimum length of the adaptation windows; up to MAX_WINDOWS while unsettled (see auto_lr).
WINDOWS = 6
MAX_WINDOWS = 12
MIN_WINDOW = 50


#: The exact Hessian at w* (d×d) is built only when d²·n ≤ HESSIAN_BUDGET: its cost grows as d²·n
#: (measured on one CPU thread: d = 1200, n = 1000 took 4.1–4.8 s, ~80% of an lr="auto" run of 200
#: draws); above it the curvature comes from Hessian-vector products (:func:`probe_curvature`).
HESSIAN_BUDGET = 3e8
#: Power-iteration steps and off-centre probe points of :func:`probe_curvature`.
PROBE_ITERS = 10
PROBE_POINTS = 4


def hessian_affordable(d: int, n: int) -> bool:
    """True when the exact d×d Hessian of L_n at w* is cheap enough to build: d ≤ 2000 and d²·n ≤ HESSIAN_BUDGET."""
    return d <= MAX_HESSIAN_DIM and d * d * n <= HESSIAN_BUDGET


def initial_lr(nbeta: float, localization: float, curvature: float, tol: float = TARGET_BIAS) -> float:
    """ε₀ = 4·tol/(nβ·curvature + γ): within ``tol`` for the stiffest direction seen."""
    a = nbeta * abs(curvature) + localization
    if not a > 0:
        return 1e-4
    return 4 * tol / a


def _hvp(prob: Problem, points: Tensor, vecs: Tensor) -> Tensor:
    """∇²L_n(w_j)·v_j for every row j (forward-over-reverse, summed over data chunks)."""
    loss = prob._reduced_loss()  # the sampled coordinates only (``restrict``)

    def hv(w: Tensor, v: Tensor, xb: Any, yb: Tensor | None) -> Tensor:
        return torch.func.jvp(lambda u: torch.func.grad(loss)(u, xb, yb), (w,), (v,))[1]

    batched = torch.func.vmap(hv, in_dims=(0, 0, None, None))
    out = torch.zeros_like(points)
    for xb, yb, m in prob._chunks():
        out = out + batched(points, vecs, xb, yb) * m
    return out / prob.n_data


def _top_curvature(prob: Problem, points: Tensor, generator: torch.Generator, iters: int) -> Tensor:
    """|largest-magnitude eigenvalue| of ∇²L_n at each row of ``points``, by power iteration (≥ a lower bound)."""
    v = torch.randn(points.shape, generator=generator, dtype=points.dtype, device=points.device)
    v = v / v.norm(dim=1, keepdim=True)
    rq = torch.zeros(points.shape[0], dtype=torch.float64, device=points.device)
    for _ in range(iters):
        hv = _hvp(prob, points, v)
        rq = (v * hv).sum(1).double().abs()
        norm = hv.norm(dim=1, keepdim=True)
        v = torch.where(norm > 0, hv / norm.clamp(min=1e-30), v)
    return rq.nan_to_num(nan=0.0, posinf=0.0)


def probe_curvature(prob: Problem, nbeta: float, localization: float, eigs: Tensor | None, seed: int, *,
                    points: int = PROBE_POINTS, iters: int = PROBE_ITERS) -> dict[str, Any]:
    """The curvature that sets ε₀: the Hessian at w*, and — where it does not set the scale — around w*.

    h₀ = max|eig ∇²L_n(w*)| (exact when ``eigs`` is given, else power iteration). When nβh₀ ≥ γ the
    Hessian at w* sets the posterior's scale and ε₀ uses h₀ (as before). Otherwise (a purely or nearly
    purely singular w*: K ∝ w₁²w₂², w⁴, RRR at 0, where ∇²L_n(w*) = 0 and ε₀ = 4·tol/γ diverged in the
    first window) the posterior spreads towards the localisation scale σ = 1/√(nβh₀ + γ) per coordinate, so
    the top curvature is also measured at ``points`` points w* + σξ (ξ ~ N(0, I)), σ halved until their
    mean nβ(L − L*) is at most d/2 (the equipartition energy; the posterior does not go further on
    average), and the largest is used. Random numbers come from a private generator seeded with ``seed`` (the sampling stream is
    untouched). Returns {"curvature", "curvature_at_center", "probe_radius", "probe_curvatures", "method"}.
    """
    w0 = prob.w_star
    gen = torch.Generator(device=w0.device).manual_seed(int(seed) + 7919)
    if eigs is not None and eigs.numel():
        h0, method = float(eigs.abs().max()), "exact Hessian at w*"
    else:
        h0, method = float(_top_curvature(prob, w0[None], gen, iters)[0]), "power iteration at w*"
    info: dict[str, Any] = {"curvature_at_center": h0, "curvature": h0, "method": method}
    if nbeta * h0 >= localization or points == 0:
        return info
    a = nbeta * h0 + localization
    sigma = 1.0 / math.sqrt(a) if a > 0 else 1.0
    xi = torch.randn((points, w0.numel()), generator=gen, dtype=w0.dtype, device=w0.device)
    # shrink σ (halving, at most 12 times) until the probes' mean energy nβ(L − L*) is at most d/2,
    # the equipartition value (λ ≤ d/2): points the posterior actually reaches, not the prior's tail
    energy = math.nan
    for _ in range(12):
        energy = nbeta * float((prob.full_loss(w0[None] + sigma * xi) - prob.loss_star).mean())
        if math.isfinite(energy) and energy <= w0.numel() / 2:  # NaN/inf counts as too far
            break
        sigma /= 2
    info["probe_energy"] = energy
    probes = _top_curvature(prob, w0[None] + sigma * xi, gen, iters)
    info.update(probe_radius=sigma, probe_curvatures=probes.tolist(), curvature=max(h0, float(probes.max())),
                method=method + f" + power iteration at {points} points w* + σξ")
    return info


def auto_lr(kernel: Kernel, state0: Any, grad_fn: GradFn, hyper: Hyper, generator: torch.Generator, *,
            lr0: float, window: int, threshold: float | Tensor, loss_star: float,
            tol: float = TARGET_BIAS) -> tuple[float, Any, dict[str, Any]]:
    """(ε, the adapted state, evidence) after :data:`WINDOWS` full-batch windows; see the module docstring."""
    lr = lr0
    state = state0
    nbeta = float(hyper.nbeta)
    history: list[dict[str, float]] = []
    restarts = 0
    i = 0
    unsettled = False
    while i < WINDOWS or (unsettled and i < MAX_WINDOWS):
        h = hyper._replace(lr=lr)
        try:
            run = run_chains(kernel, state, grad_fn, h, generator, num_burnin_steps=0, num_draws=window,
                             num_steps_bw_draws=1, threshold=threshold, loss_star=loss_star,
                             track_curvature=True, freeze=False, progress=False, desc="adapting ε")
        except LLCDivergenceError:
            restarts += 1
            if restarts > 8:
                raise LLCDivergenceError(
                    "lr='auto' could not find a stable step size (chains diverged even at "
                    f"ε = {lr:.3g}); check that w* is a minimum, or pass lr explicitly.") from None
            lr /= 10
            state = kernel.init(state0.position, grad_fn, hyper._replace(lr=lr))
            history.append({"lr": lr * 10, "diverged": 1.0})
            continue
        state = run.state
        half = run.loss_trace[:, window // 2:]
        lam = nbeta * float((half - loss_star).mean())
        T = float(run.sq_grad_sum.mean()) / window
        entry = {"lr": lr, "lambda_window": lam, "curvature_T": T}
        if kernel.name == "mala":
            entry["acceptance"] = float(run.acc_sum.sum() / run.acc_cnt.sum().clamp(min=1))
        lam_eff = max(lam, 0.01)
        rule = 8 * tol * lam_eff / T if T > 0 else 4 * lr
        entry["rule_lr"] = rule
        entry["predicted_bias"] = lr * T / (8 * lam_eff) if T > 0 else 0.0
        new = rule
        history.append(entry)
        # unsettled: the chains have not left w* yet (T ≤ 0: |∇U|² below its equilibrium value) or
        # the rule still wants more than the ×4 growth per window; then run another window
        unsettled = not T > 0 or rule > 4 * lr
        lr = min(max(new, lr / 10), 4 * lr)
        i += 1
    done = [h for h in history if "curvature_T" in h]
    # the later half of the windows (chains closer to equilibrium), without those whose T ≤ 0: at
    # equilibrium T = E[tr(P nβ∇²L)] > 0 near a minimum, so T ≤ 0 marks chains still sitting at w*
    # (e.g. a 4-layer DLN at 0: windows 1–5 had T < 0 and, pooled, gave an ε at which every chain diverged)
    pooled = [h for h in done[len(done) // 2:] if h["curvature_T"] > 0]
    if pooled:
        lam_p = max(sum(h["lambda_window"] for h in pooled) / len(pooled), 0.01)
        T_p = sum(h["curvature_T"] for h in pooled) / len(pooled)
        lr = 8 * tol * lam_p / T_p
    else:  # no window reached equilibrium: keep the last step that ran without diverging
        lr = done[-1]["lr"]
        lam_p, T_p = max(done[-1]["lambda_window"], 0.01), done[-1]["curvature_T"]
    evidence = {
        "rule": f"ε = 8·tol·λ/T, T = E[∇UᵀP∇U] − γ·trP (tol = {tol})",
        "target_bias": tol,
        "windows": history,
        "window_length": window,
        "restarts": restarts,
        "lambda_pooled": lam_p,
        "curvature_T_pooled": T_p,
        "predicted_bias": lr * T_p / (8 * lam_p) if T_p > 0 else float("nan"),
        "pooled_windows": len(pooled),
    }
    return lr, state, evidence


def as_float(v: float | Tensor) -> float:
    return float(v) if not isinstance(v, Tensor) else float(v.mean())
