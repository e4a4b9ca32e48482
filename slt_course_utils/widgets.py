"""Interactive explorers (ipywidgets): look at a posterior while n, β and the truth change."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from slt_course_utils import models, posterior
from slt_course_utils.plotting import labelled

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


# The grid resolves a posterior when the Riemann sum does not care which grid points it uses: the free
# energy from every other point (both parities, along every axis) must agree with the full grid's to within
# RESOLUTION_TOL nats. A posterior a few cells wide passes by orders of magnitude; one thinner than a cell falls
# between grid points, the picture goes blank and the two half-grids disagree by nats (the bug of issue 16:
# 9 nats at n = 10⁴, β = 10).
RESOLUTION_TOL = 0.02


def grid_resolves(post: posterior.GridPosterior, tol: float = RESOLUTION_TOL) -> bool:
    """True when F_n from each half-grid (every other point, per axis and parity) is within ``tol`` of F_n."""
    mass = post.density * post.volume  # Σ mass = 1 on the full grid
    for dim in range(mass.dim()):
        for parity in (0, 1):
            half = mass.narrow(dim, parity, mass.shape[dim] - parity)[(slice(None),) * dim + (slice(None, None, 2),)]
            total = 2 * half.sum().item()  # the half-grid's Riemann sum of the same density, cell twice as wide
            if total <= 0 or abs(math.log(total)) > tol:
                return False
    return True


def wbic_on_grid(post: posterior.GridPosterior, loss: Tensor) -> float:
    """E_β[nL_n(w)] under the grid posterior; at β = 1/log n this is WBIC (Watanabe 2013)."""
    weights = post.density * post.volume
    return float((weights * post.n * loss).sum())


def product_free_energy(n: int, beta: float, truth: float, *, seed: int = 0, points: int = 200_001) -> float:
    """Exact F_n(β) of y = a·b·x + N(0, 1) with prior N(0, 2²)², by reducing to c = ab: ∫ g(c) e^{−nβL_n(c)} dc.

    The product c = ab of two independent N(0, σ²) has density g(c) = K₀(|c|/σ²)/(πσ²) (K₀ the modified Bessel
    function); L_n depends on (a, b) only through c, so the 2-D integral is a 1-D one, done on ĉ ± 15 sd.
    Unlike the explorer's grid (a box [−2.5, 2.5]², which truncates the prior) this is the untruncated F_n.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    y = truth * x + torch.randn(n, generator=gen, dtype=torch.float64)
    sxx, sxy, syy = (x * x).sum(), (x * y).sum(), (y * y).sum()
    centre, sd = (sxy / sxx).item(), (beta * sxx).item() ** -0.5
    c = torch.linspace(centre - 15 * sd, centre + 15 * sd, points, dtype=torch.float64)
    dc = (c[1] - c[0]).item()
    c = c + 0.5 * dc  # a midpoint rule never evaluates K₀'s integrable log singularity at c = 0
    log_g = torch.log(torch.special.modified_bessel_k0(c.abs() / 4) / (4 * math.pi))
    n_loss = 0.5 * n * models.LOG_2PI + (syy - 2 * c * sxy + c * c * sxx) / 2
    return -(torch.logsumexp(log_g - beta * n_loss, 0).item() + math.log(dc))


def _gaussian_box(mean: Tensor, sd: float, half_widths: float) -> tuple[float, float]:
    return mean.item() - half_widths * sd, mean.item() + half_widths * sd


def explorer_posterior(model: str, n: int, beta: float, truth: float, *, size: int = 161, seed: int = 0,
                       return_loss: bool = False, zoom: bool = True):
    """The grid posterior the explorer shows (prior N(0, 2²) per coordinate, data from ``seed``).

    The two Gaussian posteriors (the 1-D mean and the line) are computed on a grid zoomed to ±10 (±7)
    posterior standard deviations around the exact posterior mean, so they are resolved at every n and β.
    The product's posterior lies along the hyperbola ab = ĉ and cannot be zoomed: use ``grid_resolves``.
    With ``return_loss`` also return L_n on the grid (for E_β[nL_n]); ``zoom=False`` puts the line on the
    product's fixed box [−2.5, 2.5]² (for side-by-side figures; check ``grid_resolves``).
    """
    if model not in EXPLORER_MODELS:
        raise ValueError(f"model must be one of {EXPLORER_MODELS}, got {model!r}.")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= N_MAX:
        raise ValueError(f"n must be an integer in [1, {N_MAX}], got {n!r}.")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive number, got {beta!r}.")
    gen = torch.Generator().manual_seed(seed)
    if model.startswith("gaussian"):
        x = models.sample_gaussian(n, truth, generator=gen)
        precision = 1 / 4 + n * beta  # prior N(0, 2²), tempered likelihood N(x̄, 1/(nβ)): precisions add
        lo, hi = _gaussian_box(beta * x.sum() / precision, precision**-0.5, 10.0)
        w = torch.linspace(lo, hi, 20 * size, dtype=torch.float64)
        loss = models.gaussian_mean_loss(w, x)
        post = posterior.grid_posterior(w, posterior.log_normal_prior(w, 0.0, 2.0), loss, n, beta)
        return (post, loss) if return_loss else post
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    eps = torch.randn(n, generator=gen, dtype=torch.float64)
    if model.startswith("line"):
        y = truth + truth * x + eps  # true (w1, w2) = (truth, truth)
        stats = _prefix_stats(x, y)[n]
        _, sx, sxx, sy, sxy, _ = stats
        P = beta * torch.stack([torch.stack([sx.new_tensor(float(n)), sx]), torch.stack([sx, sxx])]) + 0.25 * torch.eye(2, dtype=sx.dtype)
        mean = torch.linalg.solve(P, beta * torch.stack([sy, sxy]))
        sd = torch.linalg.eigvalsh(P).min().item() ** -0.5  # the widest direction sets one square box
        if zoom:
            axes = [torch.linspace(*_gaussian_box(m, sd, 7.0), size, dtype=torch.float64) for m in mean]
        else:
            axes = [torch.linspace(-2.5, 2.5, 2 * size - 1, dtype=torch.float64)] * 2
        a, b = torch.meshgrid(*axes, indexing="ij")
        loss = _line_loss(a, b, stats)
    else:
        y = truth * x + eps  # true a·b = truth
        axis = torch.linspace(-2.5, 2.5, 2 * size - 1, dtype=torch.float64)  # twice as fine: the band is thin
        axes = [axis, axis]
        a, b = torch.meshgrid(axis, axis, indexing="ij")
        loss = _line_loss(torch.zeros_like(a), a * b, _prefix_stats(x, y)[n])
    log_prior = posterior.log_normal_prior(a, 0, 2) + posterior.log_normal_prior(b, 0, 2)
    post = posterior.grid_posterior(tuple(axes), log_prior, loss, n, beta)
    return (post, loss) if return_loss else post


def plot_explorer(model: str, log10_n: float, beta: float | None, truth: float) -> plt.Figure:
    """Draw the posterior for one setting of the explorer's sliders; ``beta=None`` means β = 1/log n (WBIC).

    The box shows F_n(β) = −log ∫ φ e^{−nβL_n}, and E_β[nL_n] (= WBIC at β = 1/log n, next to F_n at β = 1).
    When the grid cannot resolve the posterior it says so instead of printing a wrong F_n.
    """
    n = int(round(10**log10_n))
    wbic_mode = beta is None
    if wbic_mode:
        beta = 1 / math.log(n) if n > 1 else 1.0
    post, loss = explorer_posterior(model, n, beta, truth, return_loss=True)
    resolved = grid_resolves(post)
    fig, ax = plt.subplots(figsize=(5.8, 4.4))
    title = f"Posterior, n = {n}, β = {beta:.3g}" + (" = 1/log n" if wbic_mode and n > 1 else "")
    if len(post.axes) == 1:
        ax.plot(post.axes[0].numpy(), post.density.numpy(), lw=2)
        ax.axvline(truth, color="k", ls="--", lw=1, label="true w0")
        ax.legend(loc="upper right")
        labelled(ax, title, "w", "density p(w | D_n)")
    else:
        first, second = (post.axes[0].numpy(), post.axes[1].numpy())
        ax.contourf(first, second, post.density.numpy().T, levels=20, cmap="viridis")
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
            names = ("a", "b")
        else:
            if first[0] <= truth <= first[-1] and second[0] <= truth <= second[-1]:
                ax.plot([truth], [truth], "w+", ms=12, mew=2, label="true (w1, w2)")
            else:
                ax.plot([], [], "w+", label="true (w1, w2): outside the zoomed box")
            names = ("w1 (intercept)", "w2 (slope)")
        ax.legend(loc="upper right", frameon=True, framealpha=0.85)
        ax.set_aspect("equal")
        labelled(ax, title, *names)
    product = model.startswith("product")

    def free_energy(b: float, grid: posterior.GridPosterior) -> str:
        if product:  # exact at any n, from the 1-D reduction to c = ab
            return f"{product_free_energy(n, b, truth):.2f}"
        return f"{grid.free_energy:.2f}" if grid_resolves(grid) else "(grid too coarse)"

    if wbic_mode:
        lines = [f"WBIC = E_β[nL_n] = {wbic_on_grid(post, loss):.2f}" if resolved else "WBIC: grid too coarse",
                 f"F_n at β = 1: {free_energy(1.0, explorer_posterior(model, n, 1.0, truth))}"]
    else:
        lines = [f"F_n(β) = {free_energy(beta, post)}",
                 f"E_β[nL_n] = {wbic_on_grid(post, loss):.2f}" if resolved else "E_β[nL_n]: grid too coarse"]
    colour = "white"
    if not resolved:
        lines.append(f"picture unresolved at n·β = {n * beta:.3g}: the\nposterior is thinner than a grid cell")
        colour = "#fdd"
    text = "\n".join(lines)
    ax.text(0.02, 0.97, text, transform=ax.transAxes, fontsize=8.5, va="top",
            bbox={"facecolor": colour, "alpha": 0.9, "edgecolor": "none"})
    fig.tight_layout()
    return fig


def posterior_explorer():
    """Sliders for log10 n, β and the truth, a model menu and a β = 1/log n (WBIC) switch; redraws the grid posterior."""
    import ipywidgets as widgets

    def draw(model: str, log10_n: float, beta: float, wbic: bool, truth: float) -> None:
        fig = plot_explorer(model, log10_n, None if wbic else beta, truth)
        plt.show(fig)

    return widgets.interactive(
        draw,
        model=widgets.Dropdown(options=EXPLORER_MODELS, description="model"),
        log10_n=widgets.FloatSlider(value=1.0, min=0.0, max=math.log10(N_MAX), step=0.25, description="log₁₀ n"),
        beta=widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=1, step=0.1, description="β"),
        wbic=widgets.Checkbox(value=False, description="β = 1/log n (WBIC)"),
        truth=widgets.FloatSlider(value=0.5, min=-1.5, max=1.5, step=0.1, description="truth"),
    )
