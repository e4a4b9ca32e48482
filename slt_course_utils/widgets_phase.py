"""The phase-transition explorer (ipywidgets): the posterior of the two-phase potential and its local free energies as n grows."""

from __future__ import annotations

import functools
import math

import matplotlib.pyplot as plt
import numpy as np

from slt_course_utils import phase_transitions as pt
from slt_course_utils.plotting import labelled

LOG10_N_RANGE = (1.0, 4.5)


@functools.cache
def local_free_energy_curves(points: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log10 n, F_simple(n), F_accurate(n)) for the course potential ``TWO_PHASE``, ``points`` values of n (cached)."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer ≥ 2, got {points!r}.")
    log10_n = np.linspace(*LOG10_N_RANGE, points)
    f = {ph: np.array([pt.TWO_PHASE.local_free_energy(10**x, ph) for x in log10_n]) for ph in pt.PHASES}
    return log10_n, f["simple"], f["accurate"]


def plot_phase_explorer(log10_n: float) -> plt.Figure:
    """Left: the posterior at n = 10^log10_n; right: the two local free energies, the current n and the predicted n_c."""
    lo, hi = LOG10_N_RANGE
    if not lo <= log10_n <= hi:
        raise ValueError(f"log10_n must lie in [{lo}, {hi}], got {log10_n!r}.")
    n = 10**log10_n
    P = pt.TWO_PHASE
    post = P.posterior_grid(n, size=161, limit=2.0)
    mass = P.posterior_mass(n)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.3))
    axis = post.axes[0].numpy()
    log_d = post.log_density.numpy()
    top = log_d.max()
    cs = ax0.contourf(axis, axis, np.clip(log_d, top - 15, None).T, levels=np.linspace(top - 15, top, 16), cmap="viridis")
    fig.colorbar(cs, ax=ax0, label="log posterior density (top 15 nats)")
    ax0.axvline(P.ridge, color="w", ls="--", lw=1)
    for (a, b), name in zip(P.minima.values(), ("simple", "accurate")):
        ax0.plot([a], [b], "w+", ms=10, mew=2)
        ax0.text(a, b + 0.25, name, color="w", ha="center", fontsize=9)
    ax0.set_aspect("equal")
    labelled(ax0, f"Log posterior, n = {n:,.0f}: P(accurate) = {mass:.2f}", "a", "b")
    log10_ns, fs, fa = local_free_energy_curves()
    ax1.plot(log10_ns, fs, "o-", ms=3, label="simple phase (λ = ½, L = ΔL)")
    ax1.plot(log10_ns, fa, "o-", ms=3, label="accurate phase (λ = 1, L = 0)")
    ax1.axvline(log10_n, color="k", lw=1, label="current n")
    n_c = pt.critical_n(P.loss_gap, 0.5)
    ax1.axvline(math.log10(n_c), color="grey", ls=":", lw=1.5, label=f"predicted n_c ≈ {n_c:.0f}")
    ax1.set_ylim(0, min(60.0, float(max(fs.max(), fa.max())) + 2))
    ax1.legend(fontsize=8, loc="upper left")
    labelled(ax1, "Local free energies: the smaller one wins", "log₁₀ n", "F_n(phase) (nats)")
    fig.tight_layout()
    return fig


def phase_explorer():
    """A slider on log10 n; redraws the posterior and marks n on the local free-energy curves."""
    import ipywidgets as widgets

    def draw(log10_n: float) -> None:
        plt.show(plot_phase_explorer(log10_n))

    return widgets.interactive(
        draw,
        log10_n=widgets.FloatSlider(value=2.0, min=LOG10_N_RANGE[0], max=LOG10_N_RANGE[1], step=0.1, description="log₁₀ n"),
    )
