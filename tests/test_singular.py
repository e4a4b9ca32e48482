"""The chapter 02 reference module (singular) and the y = a·tanh(bx) explorer."""

import math

import pytest
import torch

from slt_course_utils import fisher, models, singular, widgets_singular


def test_tanh_loss_grid_matches_direct_loss():
    x, y = models.TANH.sample([0.5, 1.0], 300, generator=torch.Generator().manual_seed(0))
    axis = torch.linspace(-2, 2, 21, dtype=torch.float64)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    direct = models.TANH.empirical_loss(torch.stack([a, b], -1), x, y)
    assert torch.allclose(singular.tanh_loss_grid(axis, axis, x, y), direct, atol=1e-12)


def test_true_set_is_the_cross_at_truth_zero():
    axis = torch.linspace(-1, 1, 5, dtype=torch.float64)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    mask = singular.tanh_true_set(a, b, 0.0, 0.0, 1e-12)
    assert torch.equal(mask, (a == 0) | (b == 0))
    with pytest.raises(ValueError):
        singular.tanh_true_set(a, b, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("H", [1, 2, 3])
def test_orbit_has_the_counted_size_and_keeps_the_loss(H):
    w = torch.randn(2 * H, generator=torch.Generator().manual_seed(H), dtype=torch.float64)
    orbit = singular.tanh_symmetry_orbit(w)
    assert orbit.shape == (singular.tanh_symmetry_count(H), 2 * H)
    assert torch.unique(orbit, dim=0).shape[0] == math.factorial(H) * 2**H
    net = models.tanh_network(H, bias=False)
    x, y = net.sample(w, 200, generator=torch.Generator().manual_seed(0))
    losses = net.empirical_loss(orbit, x, y)
    assert (losses.max() - losses.min()).item() < 1e-12
    with pytest.raises(ValueError):
        singular.apply_tanh_symmetry(w, [0] * H if H > 1 else [1], [1] * H)


@pytest.mark.parametrize(("M", "N", "H"), [(3, 3, 2), (2, 4, 3), (1, 1, 2)])
def test_product_map_rank_matches_autograd_and_fisher(M, N, H):
    rrr = models.ReducedRankRegression(M, N, H)
    gen = torch.Generator().manual_seed(1)
    for ra in range(min(H, M) + 1):
        for rb in range(min(H, N) + 1):
            w = singular.random_factors_with_ranks(rrr, ra, rb, gen)
            J = singular.product_map_jacobian(rrr, w)
            assert torch.linalg.matrix_rank(J).item() == singular.product_map_rank(M, N, ra, rb)
            if ra and rb:  # the Fisher information J^T J from sampled data has the same rank
                x, y = rrr.sample(w, 4000, generator=gen)
                info = fisher.fisher_information(lambda v, x, y: -rrr.nll(v, x, y), w, x, y)
                assert fisher.fisher_rank(info, tol=1e-8) == singular.product_map_rank(M, N, ra, rb)


def test_bic_gap():
    gap = singular.bic_gap([10.0, 100.0], [1.0, 2.0], 2)
    assert torch.allclose(gap, torch.log(torch.tensor([10.0, 100.0], dtype=torch.float64)) - torch.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        singular.bic_gap([10.0], [1.0, 2.0], 2)


def test_tanh_explorer():
    post = widgets_singular.tanh_posterior(100, 1.0, 0.0, size=61)
    assert (post.density.sum() * post.volume).item() == pytest.approx(1.0, abs=1e-9)
    assert widgets_singular.tanh_truth(-0.25) == (-0.5, 0.5)
    fig = widgets_singular.plot_tanh_posterior(1.0, 0.5, 0.5)
    assert fig.axes[0].get_title()
    with pytest.raises(ValueError):
        widgets_singular.tanh_posterior(0, 1.0, 0.0)
    ui = widgets_singular.tanh_posterior_explorer()
    assert len(ui.children) >= 3
