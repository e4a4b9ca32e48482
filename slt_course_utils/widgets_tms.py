"""Interactive k-gon explorer for chapter 07: the ideal k^{σ+}-gon of the toy model of superposition.

Sliders for c (features), k (live columns), σ (dead features with positive bias) and a
scale on the column length; the left panel shows the columns of W, the right panel the
per-feature reconstruction ReLU(μ WᵀW e_i + b) against the target μ, with the exact loss.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from slt_course_utils import tms
from slt_course_utils.plotting import labelled


def plot_kgon(k: int, c: int = 6, positive_biases: int = 0, length_scale: float = 1.0) -> plt.Figure:
    """Left: the k^{σ+}-gon's columns (length l*·scale); right: what feature 0 and a dead feature
    reconstruct as μ runs over [0, 1]. The title gives the exact population loss."""
    W, b = tms.kgon_parameters(k, c, positive_biases)
    W = W * length_scale
    loss = float(tms.population_loss(W, b))
    at_opt = float(tms.population_loss(*tms.kgon_parameters(k, c, positive_biases)))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2))
    live = W.norm(dim=0) > 1e-9
    if int(live.sum()) >= 3:
        ang = torch.atan2(W[1, live], W[0, live])
        pts = W[:, live][:, torch.argsort(ang)]
        ax0.fill(pts[0].numpy(), pts[1].numpy(), color="C0", alpha=0.15)
    for i in range(c):
        ax0.plot([0, float(W[0, i])], [0, float(W[1, i])], color="C0" if live[i] else "0.6")
        ax0.plot(float(W[0, i]), float(W[1, i]), "o", color="C0" if live[i] else "0.6")
    if positive_biases:
        ax0.plot([0], [0], "o", ms=9, color="C3", label=f"{positive_biases} dead feature(s), b = 1/(2c)")
        ax0.legend(loc="lower left", fontsize=8)
    lim = 1.15 * max(1.0, float(W.norm(dim=0).max()))
    ax0.set_xlim(-lim, lim)
    ax0.set_ylim(-lim, lim)
    ax0.set_aspect("equal")
    labelled(ax0, f"{tms.kgon_label(k, positive_biases)}-gon, c = {c}: columns of W", "hidden dim 1", "hidden dim 2")
    mu = torch.linspace(0, 1, 201, dtype=W.dtype)
    for i, name in [(0, "live feature 0"), (c - 1, f"feature {c - 1}" + (" (dead)" if k < c else ""))]:
        x = mu[:, None] * torch.eye(c, dtype=W.dtype)[i]
        out = tms.tms_forward(W, b, x)[:, i]
        ax1.plot(mu.numpy(), out.numpy(), label=f"output {i} on input μ e_{i} ({name})")
    ax1.plot(mu.numpy(), mu.numpy(), "k--", lw=1, label="target μ")
    ax1.legend(fontsize=8)
    labelled(ax1, f"Loss {loss:.5f} (at the optimal length: {at_opt:.5f})", "input value μ", "reconstruction")
    fig.tight_layout()
    return fig


def kgon_explorer():
    """Sliders for c, k, σ and the column-length scale; redraws the polygon and its loss."""
    import ipywidgets as widgets

    def draw(c: int, k: int, positive_biases: int, length_scale: float) -> None:
        if k > c:
            print(f"k = {k} > c = {c}: a k-gon needs k ≤ c live features.")
            return
        if positive_biases > c - k:
            print(f"σ = {positive_biases} > c − k = {c - k}: only dead features can carry a positive bias.")
            return
        plt.show(plot_kgon(k, c, positive_biases, length_scale))

    return widgets.interactive(
        draw,
        c=widgets.IntSlider(value=6, min=4, max=8, description="c (features)"),
        k=widgets.IntSlider(value=5, min=2, max=8, description="k (live)"),
        positive_biases=widgets.IntSlider(value=0, min=0, max=4, description="σ (b > 0)"),
        length_scale=widgets.FloatSlider(value=1.0, min=0.5, max=1.5, step=0.05, description="length × l*"),
    )


__all__ = ["kgon_explorer", "plot_kgon"]
