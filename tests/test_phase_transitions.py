"""The two-phase potential: its phases' (L, λ), local free energies, the critical n, and gradient descent."""

import functools
import math

import pytest
import torch

from slt_course_utils import phase_transitions as pt

P = pt.TWO_PHASE


def test_phases_have_the_stated_losses_and_minima():
    for phase, (a, b) in P.minima.items():
        w = torch.tensor([a, b], dtype=torch.float64, requires_grad=True)
        loss = P.loss(w)
        (grad,) = torch.autograd.grad(loss, w)
        assert loss.item() == pytest.approx(P.phase_losses[phase], abs=1e-12)
        assert grad.abs().max() < 1e-12
    assert -1 < P.ridge < 1
    assert P.h(torch.tensor(P.ridge)).item() > P.loss_gap  # a barrier separates the phases
    a = torch.linspace(-4, 4, 2001, dtype=torch.float64)
    assert (P.h(a) >= -1e-12).all()


def test_local_free_energy_slopes_are_the_phases_lambdas():
    # F_i(n) − nL_i = λ_i log n + c_i + o(1): slopes between n = 10⁴ and 10⁶ within 0.03 of ½ and 1
    # (the quartic phase's next correction is O(n^{-1/4})·const, ≈ 0.02 in slope here).
    for phase, (lam, _) in P.learning_coefficients.items():
        f = [P.local_free_energy(n, phase) - n * P.phase_losses[phase] for n in (1e4, 1e6)]
        slope = (f[1] - f[0]) / math.log(100)
        assert slope == pytest.approx(float(lam), abs=0.03), phase


def test_predicted_critical_n():
    n = pt.critical_n(0.005, 0.5)
    assert 0.005 * n == pytest.approx(0.5 * math.log(n), rel=1e-9)
    assert n > 100  # the larger root
    # A multiplicity gap moves it: with m_accurate − m_simple = 1 the accurate phase needs more data.
    assert pt.critical_n(0.005, 0.5, multiplicity_gap=-1) > n
    with pytest.raises(ValueError, match="no transition"):
        pt.critical_n(1.0, 0.5)
    with pytest.raises(ValueError, match="positive"):
        pt.critical_n(-0.1, 0.5)


@functools.cache
def observed() -> float:
    return pt.observed_critical_n(P, rtol=1e-3)


def test_observed_critical_n_is_within_a_factor_of_the_prediction():
    # The leading-order prediction n·ΔL = Δλ·log n ignores the O(1) terms c_i of the local free
    # energies, which move n_c by ≈ (c_simple − c_accurate)/ΔL; for this potential that is a ~20%
    # shift (647 → 758), so we require a factor 1.5. With the constants measured at n = 10⁶ the
    # prediction must be within 5%.
    pred = pt.critical_n(P.loss_gap, 0.5)
    obs = observed()
    assert pred / 1.5 < obs < pred * 1.5, (pred, obs)
    c = pt.local_free_energy_constants(P)
    refined = pt.critical_n(P.loss_gap, 0.5, constant_gap=c["simple"] - c["accurate"])
    assert refined == pytest.approx(obs, rel=0.05)


def test_posterior_mass_moves_from_the_simple_to_the_accurate_phase():
    assert P.posterior_mass(100) < 0.2
    assert P.posterior_mass(3000) > 0.99
    post = P.posterior_grid(3000, size=121)
    assert post.free_energy == pytest.approx(min(P.local_free_energy(3000, ph) for ph in pt.PHASES), abs=0.5)


def test_gradient_descent_plateaus_near_the_saddle_then_jumps():
    init = pt.saddle_plateau_init(P)
    traj = pt.gradient_descent(P.loss, list(init), lr=0.05, steps=3000)
    assert traj.w.shape == (3001, 2) and traj.loss.shape == (3001,)
    assert traj.loss[-1] < 1e-6  # ends in the accurate phase
    barrier = P.h(torch.tensor(P.ridge)).item()
    near = (traj.loss - barrier).abs() < 0.01
    assert near.sum() > 100  # a plateau at the saddle's loss
    stuck = pt.gradient_descent(P.loss, [-1.2, 0.3], lr=0.05, steps=2000)
    assert stuck.w[-1, 0] < P.ridge  # GD never leaves the simple phase
    with pytest.raises(ValueError, match="lr"):
        pt.gradient_descent(P.loss, [0.0, 0.0], lr=0.0, steps=5)


def test_bad_input():
    with pytest.raises(ValueError, match="loss_gap"):
        pt.TwoPhasePotential(loss_gap=0.0)
    with pytest.raises(ValueError, match="phase"):
        P.phase_bounds("middle")
    with pytest.raises(ValueError, match="last dimension 2"):
        P.loss(torch.zeros(3))


def test_phase_explorer_draws_and_checks_its_input():
    from slt_course_utils import widgets_phase

    fig = widgets_phase.plot_phase_explorer(3.0)
    assert len(fig.axes) == 3 and all(ax.get_title() for ax in fig.axes[:2])  # two panels and a colorbar
    with pytest.raises(ValueError, match="log10_n"):
        widgets_phase.plot_phase_explorer(9.0)
    ui = widgets_phase.phase_explorer()
    assert ui.children


def test_exact_local_constants_are_the_large_n_limit_of_the_quadrature():
    # F_i(n) − nL_i − λ_i log n → c_i: the quadrature reading at n = 10⁸ agrees to its o(1) remainder
    # (O(n^{-1/4}) ≈ 1e-2 relative in the quartic phase, times a small prefactor; measured 4e-5).
    for potential in (pt.TWO_PHASE, pt.TwoPhasePotential(loss_gap=0.01, alpha=0.2, prior_std=1.5)):
        exact = pt.exact_local_constants(potential)
        read = pt.local_free_energy_constants(potential, n=1e8)
        assert exact["accurate"] == pytest.approx(read["accurate"], abs=1e-6)
        assert exact["simple"] == pytest.approx(read["simple"], abs=2e-4)
    c = pt.exact_local_constants(pt.TWO_PHASE)
    assert pt.critical_n(0.005, 0.5, constant_gap=c["simple"] - c["accurate"]) == pytest.approx(757.4, abs=0.5)


def test_gradient_descent_is_the_exact_recursion_on_a_quadratic():
    """L(w) = ½ Σ a_k w_k²: w_t = (1 − lr·a)^t w_0 exactly, and the recorded losses are L(w_t);
    with Gaussian noise the step is −lr·(∇L + σξ), so the noise enters with factor lr."""
    a = torch.tensor([1.0, 3.0], dtype=torch.float64)
    loss = lambda w: 0.5 * (a * w * w).sum(-1)  # noqa: E731
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    traj = pt.gradient_descent(loss, w0, lr=0.1, steps=5)
    expected = torch.stack([w0 * (1 - 0.1 * a) ** t for t in range(6)])
    torch.testing.assert_close(traj.w, expected, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(traj.loss, loss(expected), rtol=1e-14, atol=1e-15)
    noisy = pt.gradient_descent(loss, w0, lr=0.1, steps=1, noise_std=2.0, generator=torch.Generator().manual_seed(0))
    xi = torch.randn(2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(noisy.w[1], w0 - 0.1 * (a * w0 + 2.0 * xi), rtol=1e-14, atol=1e-15)
