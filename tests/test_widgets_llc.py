"""The chapter 06 explorer and figure helpers (slt_course_utils.widgets_llc)."""

import matplotlib.pyplot as plt
import pytest

from slt_course_utils import widgets_llc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_plot_llc_run_draws_traces_and_running_estimate():
    fig = widgets_llc.plot_llc_run(1, 0, lr=5e-4, localization=1.0, num_chains=2, num_draws=20)
    assert len(fig.axes) == 2
    assert all(ax.get_title() and ax.get_xlabel() == "draw" for ax in fig.axes)
    plt.close(fig)


def test_plot_llc_run_reports_total_divergence_and_rejects_an_empty_model():
    fig = widgets_llc.plot_llc_run(1, 0, lr=1.0, num_chains=2, num_draws=20)
    assert any("diverged" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    with pytest.raises(ValueError, match="k1, k2"):
        widgets_llc.plot_llc_run(0, 0)


def test_explorer_builds():
    ui = widgets_llc.llc_explorer()
    assert len(ui.children) >= 5  # four sliders, the run button, the output
