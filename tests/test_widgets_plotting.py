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
