"""Interactive explorers (ipywidgets): look at a posterior while n, β and the truth change."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from slt_course_utils import models, posterior
from slt_course_utils.plotting import annotate_free_energy, finish_2d_posterior, labelled

EXPLORER_MODELS = ("gaussian mean (1-D)", "line y = w1 + w2·x (2-D, regular)", "product y = a·b·x (2-D, singular)")
N_MAX = 100_000


def _prefix_stats(x: Tensor, y: Tensor) -> Tensor:
    """Running sums [k, Σx, Σx², Σy, Σxy, Σy²] over the first k samples, shape ``(n + 1, 6)``."""
    feats = torch.stack([torch.ones_like(x), x, x * x, y, x * y, y * y], dim=-1)
    return torch.cat([torch.zeros(1, 6, dtype=x.dtype), feats.cumsum(0)])


def _line_loss(u: Tensor, v: Tensor, s: Tensor) -> Tensor:
    """L_n for mean u + v·x from sums s = [n, Σx, Σx², Σy, Σxy, Σy²] (σ = 1)."""
    n, sx, sxx, sy, sxy, syy = s
    sq = syy - 2 * (u * sy + v * sxy) + u * u * n + 2 * u * v * sx + v * v * sxx
    return 0.5 * models.LOG_2PI + sq / (2 * n)


def explorer_posterior(model: str, n: int, beta: float, truth: float, *, size: int = 161, seed: int = 0) -> posterior.GridPosterior:
    """The grid posterior the explorer shows (prior N(0, 2²) per coordinate, data from ``seed``)."""
    if model not in EXPLORER_MODELS:
        raise ValueError(f"model must be one of {EXPLORER_MODELS}, got {model!r}.")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= N_MAX:
        raise ValueError(f"n must be an integer in [1, {N_MAX}], got {n!r}.")
    gen = torch.Generator().manual_seed(seed)
    if model.startswith("gaussian"):
        x = models.sample_gaussian(n, truth, generator=gen)
        w = torch.linspace(-3, 3, 20 * size, dtype=torch.float64)
        loss = models.gaussian_mean_loss(w, x)
        return posterior.grid_posterior(w, posterior.log_normal_prior(w, 0.0, 2.0), loss, n, beta)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    eps = torch.randn(n, generator=gen, dtype=torch.float64)
    axis = torch.linspace(-2.5, 2.5, size, dtype=torch.float64)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    if model.startswith("line"):
        y = truth + truth * x + eps  # true (w1, w2) = (truth, truth)
        loss = _line_loss(a, b, _prefix_stats(x, y)[n])
    else:
        y = truth * x + eps  # true a·b = truth
        loss = _line_loss(torch.zeros_like(a), a * b, _prefix_stats(x, y)[n])
    log_prior = posterior.log_normal_prior(a, 0, 2) + posterior.log_normal_prior(b, 0, 2)
    return posterior.grid_posterior((axis, axis), log_prior, loss, n, beta)


def plot_explorer(model: str, log10_n: float, beta: float, truth: float) -> plt.Figure:
    """Draw the posterior for one setting of the explorer's sliders."""
    n = int(round(10**log10_n))
    post = explorer_posterior(model, n, beta, truth)
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    if len(post.axes) == 1:
        ax.plot(post.axes[0].numpy(), post.density.numpy(), lw=2)
        ax.axvline(truth, color="k", ls="--", lw=1, label="true w0")
        ax.legend()
        labelled(ax, f"Posterior, n = {n}, β = {beta:.2f}", "w", "density p(w | D_n)")
    else:
        axis = post.axes[0].numpy()
        ax.contourf(axis, axis, post.density.numpy().T, levels=20, cmap="viridis")
        if model.startswith("product"):
            a = torch.linspace(-2.5, 2.5, 400)
            if truth != 0:
                with torch.no_grad():
                    b = truth / a
                keep = b.abs() <= 2.5
                ax.plot(a[keep & (a > 0)], b[keep & (a > 0)], "w--", lw=1, label="true set a·b = truth")
                ax.plot(a[keep & (a < 0)], b[keep & (a < 0)], "w--", lw=1)
            else:
                ax.axhline(0, color="w", ls="--", lw=1, label="true set a·b = 0")
                ax.axvline(0, color="w", ls="--", lw=1)
        else:
            ax.plot([truth], [truth], "w+", ms=12, mew=2, label="true (w1, w2)")
        finish_2d_posterior(ax, f"Posterior, n = {n}, β = {beta:.2f}", "first parameter", "second parameter",
                            post.free_energy)
    if len(post.axes) == 1:
        annotate_free_energy(ax, post.free_energy)
    fig.tight_layout()
    return fig


def posterior_explorer():
    """Sliders for log10 n, β and the truth, and a model menu; redraws the grid posterior."""
    import ipywidgets as widgets

    def draw(model: str, log10_n: float, beta: float, truth: float) -> None:
        fig = plot_explorer(model, log10_n, beta, truth)
        plt.show(fig)

    return widgets.interactive(
        draw,
        model=widgets.Dropdown(options=EXPLORER_MODELS, description="model"),
        log10_n=widgets.FloatSlider(value=1.0, min=0.0, max=math.log10(N_MAX), step=0.25, description="log₁₀ n"),
        beta=widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=1, step=0.1, description="β"),
        truth=widgets.FloatSlider(value=0.5, min=-1.5, max=1.5, step=0.1, description="truth"),
    )
