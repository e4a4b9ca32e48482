"""Chapter 06 figures and the ε × γ explorer of the LLC estimator on a normal-crossing model.

:func:`plot_loss_traces` draws one run's excess loss nβ(L(w) − L(w*)) per chain and its mean
(the quantity whose average is λ̂); :func:`plot_llc_run` runs the estimator on
y = w1^{k1} w2^{k2} x + N(0, σ²) and shows the traces next to the running λ̂, the exact λ and
the quadratic prediction; :func:`llc_explorer` puts sliders on (k1, k2, log10 ε, log10 γ).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from slt_course_utils import theory
from slt_course_utils.llc import LLCDivergenceError, estimate_llc
from slt_course_utils.llc_models import NormalCrossing, gaussian_nll, normal_crossing_data
from slt_course_utils.plotting import labelled

#: Chains and draws per redraw of the explorer (about a second on one CPU core).
EXPLORER_CHAINS = 8
EXPLORER_DRAWS = 500


def plot_loss_traces(ax: plt.Axes, result: Any, title: str, *, max_chains: int = 6) -> plt.Axes:
    """nβ(L(w_t) − L(w*)) for the first ``max_chains`` chains (thin) and the mean over all chains (thick)."""
    nbeta = result.hyperparameters["nbeta"]
    excess = nbeta * (result.loss_trace.numpy() - result.loss_star)
    draws = np.arange(excess.shape[1])
    for row in excess[:max_chains]:
        if np.isfinite(row).all():
            ax.plot(draws, row, lw=0.5, color="#9ecae1")  # opaque light blue: keeps the PNG small
    ok = np.isfinite(excess).all(axis=1)
    if ok.any():
        ax.plot(draws, excess[ok].mean(0), lw=2, color="C1", label="mean over chains")
    ax.axhline(0.0, color="k", ls="--", lw=1, label="L(w*)")
    labelled(ax, title, "draw", "nβ (L(w) − L(w*))")
    return ax


def plot_llc_run(k1: int = 1, k2: int = 2, lr: float = 5e-4, localization: float = 1.0, *,
                 n: int = 1000, num_chains: int = EXPLORER_CHAINS, num_draws: int = EXPLORER_DRAWS,
                 seed: int = 0) -> plt.Figure:
    """Estimate λ̂ for y = w1^k1 w2^k2 x + noise at w* = 0; traces, running λ̂, exact λ."""
    if k1 == 0 and k2 == 0:
        raise ValueError("at least one of k1, k2 must be positive, otherwise the model has no parameter in it.")
    lam, m = theory.rlct_normal_crossing([k1, k2])
    x, y = normal_crossing_data(n)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.8))
    caught: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always", UserWarning)
            res = estimate_llc(NormalCrossing([k1, k2]), (x, y), gaussian_nll, lr=lr,
                               localization=localization, num_chains=num_chains, num_draws=num_draws,
                               seed=seed, device="cpu", progress=False)
        caught = [str(w.message).split(". ")[0].split(" — ")[0] for w in record if issubclass(w.category, UserWarning)]
    except LLCDivergenceError:
        for ax in (ax0, ax1):
            ax.text(0.5, 0.5, "all chains diverged:\nlower ε", ha="center", va="center",
                    transform=ax.transAxes, fontsize=13, color="C3")
        labelled(ax0, f"ε = {lr:.1e}, γ = {localization:.3g}", "draw", "nβ (L(w) − L(w*))")
        labelled(ax1, f"exact λ = {lam} (m = {m})", "draw", "running λ̂")
        fig.tight_layout()
        return fig
    plot_loss_traces(ax0, res, f"Loss traces, ε = {lr:.1e}, γ = {localization:.3g}")
    draws = np.arange(res.llc_trace.shape[1])
    for row in res.llc_trace.numpy():
        if np.isfinite(row).all():
            ax1.plot(draws, row, lw=0.6, alpha=0.4, color="C0")
    ax1.axhline(float(lam), color="k", ls="--", lw=1.5, label=f"exact λ = {lam} (m = {m})")
    ax1.axhline(res.mean, color="C1", lw=2, label=f"λ̂ = {res.mean:.3f} ± {res.stderr:.3f}")
    ax1.set_ylim(bottom=min(0.0, float(np.nanmin(res.llc_trace.numpy()))))
    ax1.legend(loc="lower right", fontsize="small")
    labelled(ax1, f"Running λ̂, K ∝ w1^{2 * k1} w2^{2 * k2}", "draw", "running λ̂")
    if caught:
        fig.suptitle("warning: " + "; ".join(sorted(set(caught)))[:110], color="C3", fontsize=10)
    fig.tight_layout()
    return fig


def llc_explorer():
    """Sliders for k1, k2 (the model), log10 ε (lr) and log10 γ (localization); a button reruns the estimator."""
    import ipywidgets as widgets

    def draw(k1: int, k2: int, log10_lr: float, log10_gamma: float) -> None:
        if k1 == 0 and k2 == 0:
            print("Set k1 or k2 above 0.")
            return
        plt.show(plot_llc_run(k1, k2, 10.0**log10_lr, 10.0**log10_gamma))

    return widgets.interactive(
        draw,
        {"manual": True, "manual_name": "Run the sampler"},  # each run takes about a second
        k1=widgets.IntSlider(value=1, min=0, max=3, description="k1"),
        k2=widgets.IntSlider(value=2, min=0, max=3, description="k2"),
        log10_lr=widgets.FloatSlider(value=math.log10(5e-4), min=-6.5, max=-1.5, step=0.25,
                                     description="log10 ε"),
        log10_gamma=widgets.FloatSlider(value=0.0, min=-1.0, max=4.0, step=0.5, description="log10 γ"),
    )
