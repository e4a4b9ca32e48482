"""Chapter 09's explorer: step through the checkpoints of a TMS training run.

One slider over checkpoints; three panels: the columns of W at that checkpoint (the polygon), the
population loss and λ̂ against training step with the checkpoint marked, and the essential-dynamics
path (PC1–PC2) with the checkpoint's position.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

from slt_course_utils import tms
from slt_course_utils.plotting import labelled

__all__ = ["development_explorer", "plot_development"]


def _check(steps: Sequence[int], W: Tensor, b: Tensor, llc: Sequence[float], projections: np.ndarray) -> int:
    K = len(steps)
    if K < 2:
        raise ValueError(f"need at least 2 checkpoints, got {K}.")
    if tuple(W.shape[:1]) != (K,) or W.ndim != 3 or W.shape[1] != 2:
        raise ValueError(f"W must have shape (checkpoints = {K}, 2, c), got {tuple(W.shape)}.")
    if tuple(b.shape) != (K, W.shape[2]):
        raise ValueError(f"b must have shape ({K}, {W.shape[2]}), got {tuple(b.shape)}.")
    if len(llc) != K or np.asarray(projections).shape[0] != K or np.asarray(projections).ndim != 2:
        raise ValueError(f"llc and projections need one entry (row) per checkpoint ({K}).")
    return K


def plot_development(index: int, steps: Sequence[int], W: Tensor, b: Tensor, loss_steps: Sequence[int],
                     loss: Sequence[float], llc: Sequence[float], projections: np.ndarray) -> plt.Figure:
    """Checkpoint ``index``: its polygon, its place on the loss/λ̂ curves and on the PC1–PC2 path."""
    K = _check(steps, W, b, llc, projections)
    if not 0 <= int(index) < K:
        raise ValueError(f"index must lie in 0 … {K - 1}, got {index}.")
    i = int(index)
    steps_a, lam, P = np.asarray(steps), np.asarray(llc, dtype=float), np.asarray(projections, dtype=float)
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1, 1.6, 1.3]})
    tms.draw_columns(ax0, W[i], b[i], ms=4)
    lim = 1.15 * max(1.0, float(W.double().norm(dim=1).max()))
    ax0.set_xlim(-lim, lim)
    ax0.set_ylim(-lim, lim)
    ax0.set_aspect("equal")
    label = tms.classify_kgon(W[i], b[i]).label
    labelled(ax0, f"step {steps_a[i]}: {label}-gon", "hidden dim 1", "hidden dim 2")

    ax1.plot(np.maximum(np.asarray(loss_steps), 1), loss, color="k", lw=1.2, label="population loss")
    ax1.axvline(max(steps_a[i], 1), color="C3", lw=1)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1b = ax1.twinx()
    ok = lam >= 0
    ax1b.plot(np.maximum(steps_a[ok], 1), lam[ok], "o", ms=3, color="C0", label="λ̂ ≥ 0")
    ax1b.plot(np.maximum(steps_a[~ok], 1), np.clip(lam[~ok], -5, None), "o", ms=3, mfc="none", color="C0",
              label="λ̂ < 0: not a minimum (clipped at −5)")
    ax1b.plot(max(steps_a[i], 1), np.clip(lam[i], -5, None), "o", ms=9, mfc="none", color="C3")
    ax1b.set_ylim(-6, 12)
    ax1b.set_ylabel("λ̂", color="C0")
    ax1b.legend(loc="upper right", fontsize=8)
    labelled(ax1, f"λ̂ = {lam[i]:.1f} at step {steps_a[i]}", "training step (log scale)", "population loss (log)")

    sc = ax2.scatter(P[:, 0], P[:, 1], c=np.log10(np.maximum(steps_a, 1)), cmap="viridis", s=14)
    ax2.plot(P[:, 0], P[:, 1], color="0.7", lw=0.8, zorder=0)
    ax2.plot(P[i, 0], P[i, 1], "o", ms=11, mfc="none", mec="C3", mew=2)
    fig.colorbar(sc, ax=ax2, label="log10 step")
    labelled(ax2, "essential dynamics", "PC 1 of the outputs", "PC 2 of the outputs")
    fig.tight_layout()
    return fig


def development_explorer(steps: Sequence[int], W: Tensor, b: Tensor, loss_steps: Sequence[int],
                         loss: Sequence[float], llc: Sequence[float], projections: np.ndarray):
    """A slider over the checkpoints of one TMS run; redraws :func:`plot_development`."""
    import ipywidgets as widgets

    K = _check(steps, W, b, llc, projections)

    def draw(checkpoint: int) -> None:
        plt.show(plot_development(checkpoint, steps, W, b, loss_steps, loss, llc, projections))

    return widgets.interactive(draw, checkpoint=widgets.IntSlider(value=K // 2, min=0, max=K - 1,
                                                                   description="checkpoint"))
