"""The chapter 10 explorer (slt_course_utils.widgets_refined): exact targets and response matrix."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from slt_course_utils import influence, refined, widgets_refined

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_plot_refined_draws_both_panels_with_titles_and_labels():
    for point in widgets_refined.POINTS:
        fig = widgets_refined.plot_refined(2.0, 1.0, point)
        axes = [ax for ax in fig.axes if ax.get_title()]
        assert len(axes) == 2 and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
        plt.close(fig)
    with pytest.raises(ValueError, match="point"):
        widgets_refined.plot_refined(2.0, 1.0, "nowhere")
    with pytest.raises(ValueError, match="localization"):
        widgets_refined.plot_refined(2.0, -1.0)


def test_targets_tend_to_lambda_and_susceptibility_is_the_gaussian_covariance():
    """At nβ = 10⁶ every target is within 0.1% of λ_C (a_i ≫ γ); χ equals the general closed form."""
    H, HP, lam = widgets_refined._hessians("most singular")
    assert lam == [5.0, 2.0, 5.0]
    for h, lam_c in zip(H, lam, strict=True):
        assert refined.localized_quadratic_target(h, 1e6, 1.0) == pytest.approx(lam_c, rel=1e-3)
    Sigma = torch.linalg.inv(263.0 * H[0] + torch.eye(25, dtype=torch.float64))
    z = torch.zeros(25, dtype=torch.float64)
    ref = -influence.gaussian_quadratic_covariance(H[0], z, HP[0][2] - H[0], z, Sigma)
    assert float(influence.gaussian_susceptibility(H[0], HP[0][2], 263.0, 1.0)) == pytest.approx(float(ref), rel=1e-12)
    assert not math.isnan(float(ref))


def test_explorer_builds():
    ui = widgets_refined.refined_explorer()
    assert len(ui.children) >= 4  # three controls and the output
