"""A Fisher-eigenvalue viewer for y = a·tanh(bx) + N(0, 1), x ~ N(0, 1) (chapter 01).

At a true parameter w0 = (a, b) the KL divergence is K(w) ≈ ½ (w − w0)ᵀ I(w0) (w − w0). The viewer
shows the two eigenvalues of I(w0) on a log scale and contours of K near w0 next to those of the
quadratic approximation. When a·b ≠ 0 the model is regular there (rank 2, elliptic contours);
at a = 0 or b = 0 the Fisher matrix drops rank and K is flat along a whole line of true parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from slt_course_utils import fisher, models
from slt_course_utils.plotting import PALETTE, labelled

#: Eigenvalues below this are drawn on the floor of the log-scale axis (they are zero up to round-off).
EIGEN_FLOOR = 1e-6
#: Contour levels (nats) shared by K and its quadratic approximation.
K_LEVELS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
SLIDER_RANGE = 2.0


@dataclass(frozen=True)
class FisherView:
    """What the viewer shows at w0 = (a, b): I(w0), its eigenvalues and rank, K and ½ΔᵀIΔ on a local grid."""

    a: float
    b: float
    info: Tensor
    eigenvalues: Tensor
    rank: int
    axis_a: Tensor
    axis_b: Tensor
    kl: Tensor
    quadratic: Tensor


def fisher_view(a: float, b: float, *, half_width: float = 0.8, size: int = 61, tol: float = 1e-8) -> FisherView:
    """I(a, b) of the tanh model (closed form), and K(w), ½(w − w0)ᵀI(w − w0) on a (size × size) grid around w0."""
    a, b = float(a), float(b)
    if not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f"a and b must be finite numbers, got {a!r}, {b!r}.")
    if not (half_width > 0 and isinstance(size, int) and size >= 3):
        raise ValueError(f"need half_width > 0 and an integer size ≥ 3, got {half_width!r}, {size!r}.")
    info = fisher.fisher_tanh(a, b)
    axis_a = torch.linspace(a - half_width, a + half_width, size, dtype=torch.float64)
    axis_b = torch.linspace(b - half_width, b + half_width, size, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis_a, axis_b, indexing="ij"), dim=-1)  # (size, size, 2)
    kl = models.gaussian_regression_kl(models.TANH, grid, [a, b])
    delta = grid - torch.tensor([a, b], dtype=torch.float64)
    quadratic = 0.5 * ((delta @ info) * delta).sum(-1)
    return FisherView(a, b, info, fisher.fisher_eigenvalues(info), fisher.fisher_rank(info, tol), axis_a, axis_b, kl, quadratic)


def plot_fisher_view(a: float, b: float) -> plt.Figure:
    """Two panels: the Fisher eigenvalues (log scale) and contours of K vs its quadratic approximation."""
    view = fisher_view(a, b)
    fig, (ax_eig, ax_k) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.5]})

    eig = view.eigenvalues.numpy()
    shown = np.maximum(eig, EIGEN_FLOOR)
    colours = [PALETTE[3] if v < EIGEN_FLOOR else PALETTE[0] for v in eig]
    ax_eig.bar([0, 1], shown, color=colours, width=0.6)
    for i, v in enumerate(eig):
        label = "0" if v < EIGEN_FLOOR else f"{v:.3g}"
        ax_eig.text(i, shown[i] * 1.6, label, ha="center", fontsize=10)
    ax_eig.set_yscale("log")
    ax_eig.set_ylim(EIGEN_FLOOR / 2, 10.0)
    ax_eig.set_xticks([0, 1], ["smaller", "larger"])
    labelled(ax_eig, f"Fisher eigenvalues (rank {view.rank})", "eigenvalue of I(a, b)", "eigenvalue (log scale)")

    aa, bb = view.axis_a.numpy(), view.axis_b.numpy()
    kl = view.kl.numpy()
    levels = [0.0, *K_LEVELS, max(float(kl.max()), 1.01 * K_LEVELS[-1])]
    norm = mpl.colors.BoundaryNorm(levels, ncolors=256)
    filled = ax_k.contourf(aa, bb, kl.T, levels=levels, cmap="viridis_r", norm=norm, alpha=0.9)
    ax_k.contour(aa, bb, view.quadratic.numpy().T, levels=list(K_LEVELS), colors="k", linestyles="--", linewidths=1)
    ax_k.plot([view.a], [view.b], marker="+", color="red", ms=12, mew=2, ls="none", label="true (a, b)")
    if view.a == 0 or view.b == 0:
        # the true set {a·tanh(bx) ≡ 0} is the cross a = 0 or b = 0
        ax_k.axvline(0.0, color="red", lw=1.2, label="true set a·b = 0")
        ax_k.axhline(0.0, color="red", lw=1.2)
    ax_k.set_xlim(aa[0], aa[-1])
    ax_k.set_ylim(bb[0], bb[-1])
    ax_k.set_aspect("equal")
    ax_k.legend(loc="upper right", frameon=True, framealpha=0.85, fontsize=9)
    bar = fig.colorbar(filled, ax=ax_k, label="K(a, b) (nats)")
    bar.set_ticks(list(K_LEVELS))
    bar.set_ticklabels([f"{v:g}" for v in K_LEVELS])
    labelled(ax_k, f"K (filled) vs ½ΔᵀIΔ (dashed) at ({view.a:.2g}, {view.b:.2g})", "a", "b")
    fig.tight_layout()
    return fig


def fisher_viewer():
    """Sliders for the true (a, b) of y = a·tanh(bx); redraws eigenvalues and the local shape of K."""
    import ipywidgets as widgets

    def draw(a: float, b: float) -> None:
        fig = plot_fisher_view(a, b)
        plt.show(fig)

    slider = dict(min=-SLIDER_RANGE, max=SLIDER_RANGE, step=0.1, continuous_update=False)
    return widgets.interactive(
        draw,
        a=widgets.FloatSlider(value=1.0, description="true a", **slider),
        b=widgets.FloatSlider(value=1.0, description="true b", **slider),
    )
