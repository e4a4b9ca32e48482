"""The Fisher-eigenvalue viewer of chapter 01: ranks, the quadratic approximation of K, the plot, the widget."""

import pytest
import torch

from slt_course_utils import widgets_fisher as wf


@pytest.mark.parametrize(("a", "b", "rank"), [(1.0, 1.0, 2), (-0.5, 1.5, 2), (0.0, 1.0, 1), (1.0, 0.0, 1), (0.0, 0.0, 0)])
def test_rank_drops_exactly_at_a_zero_or_b_zero(a, b, rank):
    view = wf.fisher_view(a, b, size=11)
    assert view.rank == rank
    assert view.eigenvalues.shape == (2,)
    assert (view.eigenvalues > -1e-12).all()


def test_kl_vanishes_at_the_truth_and_matches_the_quadratic_nearby():
    view = wf.fisher_view(1.0, 1.0, half_width=0.02, size=21)
    centre = view.kl[10, 10].item()
    assert abs(centre) < 1e-14
    # K − ½ΔᵀIΔ = O(|Δ|³): at |Δ| ≤ 0.02·√2 the relative error is a few percent at most
    mask = view.quadratic > 0
    rel = ((view.kl - view.quadratic).abs()[mask] / view.quadratic[mask]).max().item()
    assert rel < 0.05
    # and K is exactly flat in b along a = 0 when the truth is a = 0
    flat = wf.fisher_view(0.0, 1.0, size=11)
    assert torch.allclose(flat.kl[5, :], torch.zeros(11, dtype=torch.float64), atol=1e-14)


def test_plot_has_titles_and_labels():
    fig = wf.plot_fisher_view(0.0, 1.0)
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles[0] == "Fisher eigenvalues (rank 1)"
    assert titles[1].startswith("K (filled)")
    for ax in fig.axes[:2]:
        assert ax.get_xlabel() and ax.get_ylabel()


def test_bad_input_and_widget():
    with pytest.raises(ValueError, match="finite"):
        wf.fisher_view(float("nan"), 1.0)
    with pytest.raises(ValueError, match="size"):
        wf.fisher_view(1.0, 1.0, size=2)
    ui = wf.fisher_viewer()
    assert len(ui.children) >= 2
