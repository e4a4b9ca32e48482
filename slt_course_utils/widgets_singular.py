"""An explorer for the singular model y = a·tanh(bx): its posterior as n, β and the truth a0·b0 change."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from slt_course_utils import posterior
from slt_course_utils.plotting import annotate_free_energy, labelled
from slt_course_utils.singular import tanh_loss_grid
from slt_course_utils.widgets import grid_resolves

N_MAX = 100_000
BOX = 2.5


def tanh_truth(product: float) -> tuple[float, float]:
    """A true (a0, b0) with a0·b0 = product: a0 = sign·√|product|, b0 = √|product|."""
    root = math.sqrt(abs(product))
    return math.copysign(root, product) if product else 0.0, root


def tanh_posterior(n: int, beta: float, product: float, *, size: int = 201, seed: int = 0) -> posterior.GridPosterior:
    """Grid posterior of y = a·tanh(bx) on [−2.5, 2.5]², prior N(0, 1) per coordinate, truth from ``tanh_truth``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= N_MAX:
        raise ValueError(f"n must be an integer in [1, {N_MAX}], got {n!r}.")
    a0, b0 = tanh_truth(product)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    y = a0 * torch.tanh(b0 * x) + torch.randn(n, generator=gen, dtype=torch.float64)
    axis = torch.linspace(-BOX, BOX, size, dtype=torch.float64)
    loss = tanh_loss_grid(axis, axis, x, y)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    log_prior = posterior.log_normal_prior(a) + posterior.log_normal_prior(b)
    return posterior.grid_posterior((axis, axis), log_prior, loss, n, beta)


def plot_tanh_posterior(log10_n: float, beta: float, product: float) -> plt.Figure:
    """Draw the posterior for one setting of the sliders, with the true set W0 dashed."""
    n = int(round(10**log10_n))
    post = tanh_posterior(n, beta, product)
    axis = post.axes[0].numpy()
    fig, ax = plt.subplots(figsize=(5.5, 4.4))
    ax.contourf(axis, axis, post.density.numpy().T, levels=20, cmap="viridis")
    a0, b0 = tanh_truth(product)
    if product == 0:
        ax.axhline(0, color="w", ls="--", lw=1, label="true set W0: a·b = 0")
        ax.axvline(0, color="w", ls="--", lw=1)
    else:
        ax.plot([a0, -a0], [b0, -b0], "w+", ms=12, mew=2, label="W0: ±(a0, b0)")
    ax.legend(loc="upper right", frameon=True, framealpha=0.85)
    ax.set_aspect("equal")
    labelled(ax, f"y = a·tanh(bx): n = {n}, β = {beta:.2f}", "a", "b")
    if grid_resolves(post):
        annotate_free_energy(ax, post.free_energy)
    else:  # a posterior thinner than a grid cell: a blank picture and an F_n that is off by nats
        ax.text(0.02, 0.97, f"picture unresolved at n·β = {n * beta:.3g}: the posterior is\nthinner than a grid "
                "cell, so no F_n is shown. Lower n or β.", transform=ax.transAxes, fontsize=8.5, va="top",
                bbox={"facecolor": "#fdd", "alpha": 0.9, "edgecolor": "none"})
    fig.tight_layout()
    return fig


def tanh_posterior_explorer():
    """Sliders for log10 n, β and the true a0·b0; redraws the grid posterior of y = a·tanh(bx)."""
    import ipywidgets as widgets

    def draw(log10_n: float, beta: float, product: float) -> None:
        fig = plot_tanh_posterior(log10_n, beta, product)
        plt.show(fig)

    return widgets.interactive(
        draw,
        log10_n=widgets.FloatSlider(value=2.0, min=0.0, max=math.log10(N_MAX), step=0.25, description="log₁₀ n"),
        beta=widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=1, step=0.1, description="β"),
        product=widgets.FloatSlider(value=0.0, min=-1.5, max=1.5, step=0.1, description="true a0·b0"),
    )
