"""The chapter 09 explorer (slt_course_utils.widgets_development): panels, labels and input checks."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from slt_course_utils import tms, widgets_development


def _run(K=5):
    W = torch.stack([tms.kgon_parameters(5, 6, 1)[0].float() * s for s in np.linspace(0.1, 1, K)])
    b = torch.stack([tms.kgon_parameters(5, 6, 1)[1].float()] * K)
    steps = [1, 10, 100, 1000, 5000][:K]
    return steps, W, b, steps, np.linspace(0.3, 0.06, K), [-3.0, 1.0, 4.0, 8.0, 8.5][:K], np.random.default_rng(0).normal(size=(K, 2))


def test_plot_development_draws_three_labelled_panels_and_marks_the_checkpoint():
    args = _run()
    fig = widgets_development.plot_development(3, *args)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in titled)
    assert "step 1000" in titled[0].get_title() and "5+" in titled[0].get_title()
    assert "8.0" in titled[1].get_title()
    plt.close(fig)


def test_bad_inputs_say_what_to_change():
    steps, W, b, ls, loss, llc, P = _run()
    with pytest.raises(ValueError, match="index"):
        widgets_development.plot_development(5, steps, W, b, ls, loss, llc, P)
    with pytest.raises(ValueError, match="W must have shape"):
        widgets_development.plot_development(0, steps, W[:3], b, ls, loss, llc, P)
    with pytest.raises(ValueError, match="one entry"):
        widgets_development.plot_development(0, steps, W, b, ls, loss, llc[:2], P)


def test_explorer_builds():
    ui = widgets_development.development_explorer(*_run())
    assert ui.children[0].max == 4
    plt.close("all")
