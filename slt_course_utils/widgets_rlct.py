"""Interactive explorer for chapter 03: normal crossings K = w1^{2k1} w2^{2k2}, prior ∝ |w1|^{h1}|w2|^{h2}.

The explorer shows the sublevel sets {K < ε} in the square [−1, 1]² and the Monte Carlo
volume curve V(ε) = P_φ(K < ε) on log-log axes, next to the exact learning coefficient
λ = min_j (h_j + 1)/(2k_j) and multiplicity m from ``theory.rlct_normal_crossing``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from slt_course_utils import theory, volume
from slt_course_utils.plotting import labelled

#: Monte Carlo draws per redraw of the explorer (fast enough to feel interactive).
EXPLORER_SAMPLES = 1 << 17


def normal_crossing_potential(k1: int, k2: int):
    """K(w) = w1^{2k1} w2^{2k2} as a potential on parameters of shape ``(n, 2)``."""
    return lambda w: w[:, 0] ** (2 * k1) * w[:, 1] ** (2 * k2)


def plot_normal_crossing(k1: int, k2: int, h1: int = 0, h2: int = 0, *, num_samples: int = EXPLORER_SAMPLES,
                         seed: int = 0) -> plt.Figure:
    """Left: sublevel sets of K on [−1, 1]²; right: V̂(ε) with the fitted and the exact slope λ."""
    if k1 == 0 and k2 == 0:
        raise ValueError("at least one of k1, k2 must be positive, otherwise K ≡ 1 has no zero.")
    lam, m = theory.rlct_normal_crossing([k1, k2], [h1, h2])
    K = normal_crossing_potential(k1, k2)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))

    axis = np.linspace(-1, 1, 301)
    W1, W2 = np.meshgrid(axis, axis, indexing="ij")
    k_grid = W1 ** (2 * k1) * W2 ** (2 * k2)
    levels = [1e-6, 1e-4, 1e-2]
    colours = ["#0173b2", "#029e73", "#de8f05"]
    for level, colour in zip(levels[::-1], colours[::-1]):
        ax0.contourf(W1, W2, (k_grid < level).astype(float), levels=[0.5, 1.5], colors=[colour], alpha=0.55)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.55) for c in colours]
    ax0.legend(handles, [f"K < {lv:g}" for lv in levels], loc="upper right", frameon=True, framealpha=0.9)
    ax0.set_aspect("equal")
    labelled(ax0, f"Sublevel sets of $K = w_1^{{{2 * k1}}}\\, w_2^{{{2 * k2}}}$", "$w_1$", "$w_2$")

    gen = torch.Generator().manual_seed(seed)
    k_values = volume.volume_samples(K, volume.power_prior_sampler([h1, h2]), num_samples, generator=gen)
    eps = volume.log_spaced_eps(k_values, num=14, min_count=100)
    curve = volume.volume_curve(k_values, eps)
    fit = volume.fit_rlct_from_volume(eps, curve.volume, num_samples, m=m)
    e = eps.numpy()
    ax1.loglog(e, curve.volume.numpy(), "o", label="Monte Carlo V(ε)")
    ax1.loglog(e, np.exp(fit.log_c) * e ** fit.lam * np.log(1 / e) ** (m - 1), "-",
               label=f"fit: λ̂ = {fit.lam:.3f} ± {fit.lam_se:.3f}")
    anchor = curve.volume[-1].item() / (e[-1] ** float(lam) * np.log(1 / e[-1]) ** (m - 1))
    ax1.loglog(e, anchor * e ** float(lam) * np.log(1 / e) ** (m - 1), "k--", lw=1,
               label=f"theory: λ = {lam}, m = {m}")
    ax1.legend(loc="lower right")
    labelled(ax1, f"Volume scaling, prior $\\propto |w_1|^{{{h1}}} |w_2|^{{{h2}}}$", "ε", "V(ε) = P(K < ε)")
    fig.tight_layout()
    return fig


def normal_crossing_explorer():
    """Sliders for k1, k2 (exponents of K) and h1, h2 (powers of the prior); redraws both panels."""
    import ipywidgets as widgets

    def draw(k1: int, k2: int, h1: int, h2: int) -> None:
        if k1 == 0 and k2 == 0:
            print("Set k1 or k2 above 0: with both zero, K ≡ 1 has no zero.")
            return
        plt.show(plot_normal_crossing(k1, k2, h1, h2))

    return widgets.interactive(
        draw,
        k1=widgets.IntSlider(value=1, min=0, max=4, description="k1"),
        k2=widgets.IntSlider(value=2, min=0, max=4, description="k2"),
        h1=widgets.IntSlider(value=0, min=0, max=3, description="h1 (prior)"),
        h2=widgets.IntSlider(value=0, min=0, max=3, description="h2 (prior)"),
    )
