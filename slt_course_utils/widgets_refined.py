"""Refined-LLC explorer for chapter 10: exact restricted targets and susceptibilities of a DLN's layers.

Everything shown is exact (no sampling): with one layer of chapter 10's deep linear network free, the
localised tempered posterior is the Gaussian N(0, (nβH_C + γI)⁻¹), so the finite-n target
½Σ a_i/(a_i + γ) and the response matrix χ_{C,P} = −½tr(H_CΣ(H_{P,C} − H_C)Σ) are closed forms.
Sliders move nβ and γ and switch between the generic and the most singular point.
"""

from __future__ import annotations

import functools
import math

import matplotlib.pyplot as plt
import torch

from slt_course_utils import dln, influence, refined
from slt_course_utils.plotting import labelled

PROBES = ("row space of W₁", "kernel of W₁", "inputs ×2")
POINTS = ("generic", "most singular")


@functools.lru_cache(maxsize=2)
def _hessians(point: str) -> tuple[list[torch.Tensor], list[list[torch.Tensor]], list[float]]:
    """(H_C per layer, H_{P,C} per layer and probe, λ_C per layer) at chapter 10's teacher."""
    if point not in POINTS:
        raise ValueError(f"point must be one of {POINTS}, got {point!r}.")
    generic, singular, x, y = refined.orthogonal_dln_teacher()
    net = generic if point == "generic" else singular
    Vh = torch.linalg.svd(generic.layers[0].weight.detach())[2]

    def probe(basis: torch.Tensor, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        xs = scale * (2 * torch.rand(500, len(basis), generator=gen, dtype=torch.float64) - 1) @ basis
        return xs, generic(xs).detach()

    probes = [probe(Vh[:2], 1.0, 3), probe(Vh[2:], 1.0, 4), probe(torch.eye(5, dtype=torch.float64), 2.0, 6)]
    names = [f"layers.{s}" for s in range(3)]
    H = [refined.restricted_hessian(net, (x, y), dln.dln_loss, [c]) for c in names]
    HP = [[refined.restricted_hessian(net, d, dln.dln_loss, [c]) for d in probes] for c in names]
    lam = [float(refined.dln_layer_llc(net, s)) for s in range(3)]
    return H, HP, lam


def plot_refined(log10_nbeta: float = math.log10(2000 / math.log(2000)), localization: float = 1.0,
                 point: str = "generic") -> plt.Figure:
    """Left: exact restricted targets per layer against λ_C; right: the exact response matrix nβ²χ."""
    if not localization >= 0 or not math.isfinite(localization):
        raise ValueError(f"localization must be a finite number ≥ 0, got {localization}.")
    nbeta = 10.0 ** float(log10_nbeta)
    H, HP, lam = _hessians(point)
    targets = [refined.localized_quadratic_target(h, nbeta, localization) for h in H]
    chi = torch.tensor([[float(influence.gaussian_susceptibility(H[i], HP[i][j], nbeta, localization))
                         for j in range(len(PROBES))] for i in range(3)])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax0.bar(range(3), targets, color="C0", label="finite-n target ½Σa/(a+γ)")
    ax0.plot(range(3), lam, "k_", ms=40, mew=2, label="λ_C = ½ rank A · rank B")
    ax0.set_xticks(range(3), ["W₁", "W₂", "W₃"])
    ax0.set_ylim(0, 14)
    ax0.legend(fontsize=8, loc="upper right")
    labelled(ax0, f"Restricted λ of each layer, {point} point\nnβ = {nbeta:.3g}, γ = {localization:g}",
             "the one layer that moves", "λ  (dimensionless)")
    resp = (nbeta**2 * chi).numpy()
    vmax = float(abs(resp).max()) or 1.0
    im = ax1.imshow(resp, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    for (i, j), v in zip([(i, j) for i in range(3) for j in range(len(PROBES))], resp.ravel(), strict=True):
        ax1.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9, color="white" if abs(v) > 0.6 * vmax else "k")
    ax1.set_xticks(range(len(PROBES)), [p.replace(" of", "\nof") for p in PROBES], fontsize=8)
    ax1.set_yticks(range(3), ["W₁", "W₂", "W₃"])
    fig.colorbar(im, ax=ax1, label="nβ²χ  (dimensionless)")
    labelled(ax1, "Exact response matrix nβ²χ", "probe distribution P", "component C")
    fig.tight_layout()
    return fig


def refined_explorer():
    """Sliders for log₁₀ nβ and γ, a switch between the generic and the most singular point."""
    import ipywidgets as widgets

    def draw(log10_nbeta: float, localization: float, point: str) -> None:
        plt.show(plot_refined(log10_nbeta, localization, point))

    return widgets.interactive(
        draw,
        log10_nbeta=widgets.FloatSlider(value=round(math.log10(2000 / math.log(2000)), 2), min=0.0, max=5.0, step=0.1,
                                        description="log₁₀ nβ"),
        localization=widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=3, step=0.1, description="γ"),
        point=widgets.Dropdown(options=list(POINTS), value="generic", description="point"),
    )


__all__ = ["plot_refined", "refined_explorer"]
