"""The posterior explorer and the plotting house style."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from slt_course_utils import plotting, widgets


def test_set_style_and_labelled():
    plotting.set_style()
    fig, ax = plt.subplots()
    plotting.labelled(ax, "T", "x", "y")
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("T", "x", "y")
    with pytest.raises(ValueError, match="dpi"):
        plotting.set_style(dpi=0)


def test_plot_density_2d_checks_shape(tmp_path):
    fig, ax = plt.subplots()
    x, y = np.linspace(0, 1, 5), np.linspace(0, 1, 4)
    plotting.plot_density_2d(ax, x, y, np.ones((5, 4)))
    with pytest.raises(ValueError, match="expected \\(len\\(grid_x\\)"):
        plotting.plot_density_2d(ax, x, y, np.ones((4, 5)))
    assert plotting.save_figure(fig, tmp_path / "a" / "f.png").exists()


@pytest.mark.parametrize("model", widgets.EXPLORER_MODELS)
def test_explorer_posterior_is_normalised_and_plots(model):
    post = widgets.explorer_posterior(model, 100, 1.0, 0.5)
    assert (post.density.sum() * post.volume).item() == pytest.approx(1.0, rel=1e-9)
    fig = widgets.plot_explorer(model, 2.0, 0.5, 0.0)
    assert fig.axes[0].get_title().startswith("Posterior, n = 100")


def test_explorer_line_statistics_match_direct_loss():
    from slt_course_utils import models

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, generator=gen, dtype=torch.float64)
    y = 0.3 + 0.7 * x + torch.randn(50, generator=gen, dtype=torch.float64)
    w = torch.tensor([[0.1, 0.2], [0.3, 0.7]], dtype=torch.float64)
    direct = models.LINE.empirical_loss(w, x, y)
    via_stats = widgets._line_loss(w[:, 0], w[:, 1], widgets._prefix_stats(x, y)[50])
    assert torch.allclose(direct, via_stats, rtol=1e-12)


def test_explorer_bad_input_and_widget():
    with pytest.raises(ValueError, match="model must be one of"):
        widgets.explorer_posterior("mixture", 10, 1.0, 0.0)
    with pytest.raises(ValueError, match="integer in"):
        widgets.explorer_posterior(widgets.EXPLORER_MODELS[0], 0, 1.0, 0.0)
    ui = widgets.posterior_explorer()
    assert len(ui.children) >= 4


def _exact_line_free_energy(n, beta, truth, seed=0):
    """Closed form of −log ∫ N(w; 0, 4I) e^{−nβL_n(w)} dw for the explorer's line data (Gaussian integral)."""
    import math

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    y = truth + truth * x + torch.randn(n, generator=gen, dtype=torch.float64)
    X = torch.stack([torch.ones_like(x), x], 1)
    P = torch.eye(2, dtype=torch.float64) / 4 + beta * X.T @ X
    b = beta * X.T @ y
    return (n * beta / 2 * math.log(2 * math.pi) + beta / 2 * (y * y).sum().item()
            + 0.5 * torch.logdet(4 * P).item() - 0.5 * (b @ torch.linalg.solve(P, b)).item())


@pytest.mark.parametrize(("n", "beta"), [(10, 1.0), (10_000, 10.0), (100_000, 10.0), (100_000, 0.05)])
def test_explorer_line_is_zoomed_and_exact_at_every_n(n, beta):
    """Issue 16: the fixed grid lost the posterior at large nβ (F_n off by 9 nats at n = 10⁴, β = 10)."""
    post = widgets.explorer_posterior(widgets.EXPLORER_MODELS[1], n, beta, 0.5)
    assert widgets.grid_resolves(post)
    # The zoomed box holds ±7 sd: the truncated mass is < 1e-10, so F_n is exact to rounding (~1e-10 relative).
    assert post.free_energy == pytest.approx(_exact_line_free_energy(n, beta, 0.5), rel=1e-9, abs=1e-6)


def test_grid_resolves_flags_the_thin_product_band_and_the_plot_says_so():
    thin = widgets.explorer_posterior(widgets.EXPLORER_MODELS[2], 10_000, 10.0, 0.5)
    assert not widgets.grid_resolves(thin)
    assert widgets.grid_resolves(widgets.explorer_posterior(widgets.EXPLORER_MODELS[2], 100, 1.0, 0.5))
    fig = widgets.plot_explorer(widgets.EXPLORER_MODELS[2], 4.0, 10.0, 0.5)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "unresolved" in text and "grid too coarse" in text
    # The F_n shown is the exact one from the 1-D reduction, not the grid's.
    assert f"{widgets.product_free_energy(10_000, 10.0, 0.5):.2f}" in text


def test_product_free_energy_matches_a_wide_2d_quadrature():
    """The K₀ reduction against a brute-force grid on [−12, 12]² (prior mass outside < 1e-8) at n = 10."""
    from slt_course_utils import posterior

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, generator=gen, dtype=torch.float64)
    y = 0.5 * x + torch.randn(10, generator=gen, dtype=torch.float64)
    axis = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    loss = widgets._line_loss(torch.zeros_like(a), a * b, widgets._prefix_stats(x, y)[10])
    log_prior = posterior.log_normal_prior(a, 0, 2) + posterior.log_normal_prior(b, 0, 2)
    brute = posterior.grid_posterior((axis, axis), log_prior, loss, 10, 1.0).free_energy
    # The brute grid (cell 0.02, posterior widths ≥ 0.1) is good to ~1e-4 nats; so is the 1-D rule.
    assert widgets.product_free_energy(10, 1.0, 0.5) == pytest.approx(brute, abs=2e-3)


def test_wbic_switch_uses_one_over_log_n_and_reports_the_posterior_mean_of_n_l_n():
    import math

    n = 1000
    post, loss = widgets.explorer_posterior(widgets.EXPLORER_MODELS[0], n, 1 / math.log(n), 0.5, return_loss=True)
    mean, var = post.mean()[0].item(), post.cov()[0, 0].item()
    # nL_n is quadratic in w with curvature n, so E[nL_n] = nL_n(E w) + n·Var(w)/2 exactly.
    n_loss_at_mean = n * widgets.models.gaussian_mean_loss(torch.tensor([mean], dtype=torch.float64),
                                                          widgets.models.sample_gaussian(n, 0.5, generator=torch.Generator().manual_seed(0))).item()
    assert widgets.wbic_on_grid(post, loss) == pytest.approx(n_loss_at_mean + n * var / 2, rel=1e-9)
    fig = widgets.plot_explorer(widgets.EXPLORER_MODELS[0], 3.0, None, 0.5)
    assert "1/log n" in fig.axes[0].get_title()
    assert "WBIC" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_stored_widget_outputs_show_a_note_not_a_repr():
    """Issue 16: a fresh JupyterLab showed `interactive(children=(FloatSlider…` under chapter 01's widget cell."""
    import json
    from pathlib import Path

    from slt_course_utils.execute_notebooks import WIDGET_MIME, WIDGET_NOTE

    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "chapters").glob("0[0-3]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            for output in cell.get("outputs", []):
                text = "".join(output.get("data", {}).get("text/plain", ""))
                assert not text.startswith("interactive("), f"{path.name}: a widget's repr is stored"
                if WIDGET_MIME in output.get("data", {}):
                    assert text == WIDGET_NOTE
