"""The numbers chapter 06 claims, against exact values (llc_toys, the AR(1) factor, locality, loss scale)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slt_course_utils import llc
from slt_course_utils.llc.quadratic import predicted_sgld_bias
from slt_course_utils.llc_models import (
    gaussian_nll,
    linear_regression,
    normal_crossing_data,
    normal_crossing_finite_n_target,
)
from slt_course_utils.llc_toys import (
    LinePlusDot,
    finite_n_target_2d,
    langevin_traces,
    line_plus_dot_g,
    line_plus_dot_lambda,
    sgld_quadratic_variance,
)

FAST = dict(device="cpu", progress=False)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_line_plus_dot_exact_values_and_bad_points():
    assert line_plus_dot_lambda((0.0, 0.0)) == 0.25
    assert line_plus_dot_lambda((0.7, 1.0)) == 0.5
    with pytest.raises(ValueError, match="not a true parameter"):
        line_plus_dot_lambda((0.5, 0.5))
    with pytest.raises(ValueError, match="two entries"):
        LinePlusDot((0.0, 0.0, 0.0))
    # g vanishes exactly on the dot and the line, nowhere else on a grid
    t = np.linspace(-2, 2, 81)
    w1, w2 = np.meshgrid(t, t, indexing="ij")
    zero = np.isclose(line_plus_dot_g(w1, w2), 0.0, atol=1e-14)
    assert zero.sum() == 81 + 1 and zero[40, 40] and zero[:, 60].all()


@pytest.mark.parametrize(("w_star", "lam", "half_width"), [((0.0, 0.0), 0.25, 0.5), ((0.0, 1.0), 0.5, 2e-3)])
def test_quadrature_target_tends_to_the_local_lambda(w_star, lam, half_width):
    # γ = 0 on a box around w* that excludes the other component of the true set: as nβ → ∞ the
    # target tends to the local λ. At the dot the correction is O(r²) with r ~ (nβa)^(−1/8) ≈ 0.05 at
    # nβa = 1e10 (≤ 1%); on the line the box is 40 posterior widths across, the width along the
    # line enters at O(half_width²). Tolerance 2%.
    target = finite_n_target_2d(line_plus_dot_g, 1.0, 1e10, 0.0, w_star, half_width=half_width, num=1201)
    assert target == pytest.approx(lam, rel=0.02)


def test_quadrature_matches_the_normal_crossing_target():
    # The general 2-D quadrature agrees with llc_models' normal-crossing one (different grids: 0.5%).
    x, y = normal_crossing_data(1000)
    a, nb = float(x @ x) / 1000 / 0.25, llc.default_nbeta(1000)
    ours = finite_n_target_2d(lambda u, v: u * v**2, a, nb, 1.0, half_width=8.0, num=2001)
    assert ours == pytest.approx(normal_crossing_finite_n_target([1, 2], a, nb, 1.0), rel=5e-3)


def test_finite_n_target_rejects_bad_input():
    with pytest.raises(ValueError, match="a > 0"):
        finite_n_target_2d(line_plus_dot_g, -1.0, 10.0, 1.0)
    with pytest.raises(ValueError, match="num"):
        finite_n_target_2d(line_plus_dot_g, 1.0, 10.0, 1.0, num=10)


@pytest.mark.parametrize("eps_a", [0.2, 1.0, 2.0, 3.0])
def test_sgld_stationary_variance_is_the_ar1_factor(eps_a):
    # Chapter 06 section 2: a·Var = 1/(1 − εa/4). 20 000 chains: the sample variance has relative
    # standard error √(2/20000) = 1%; tolerance 4%.
    sim = sgld_quadratic_variance(lr=eps_a, a=1.0, num_chains=20_000, seed=0)
    assert sim == pytest.approx(1 / (1 - eps_a / 4), rel=0.04)
    # and the package's predicted bias for one direction (γ = 0) is the same factor minus 1
    h = torch.tensor([2.0], dtype=torch.float64)
    assert predicted_sgld_bias(h, 10.0, 0.0, eps_a / 20.0) == pytest.approx(1 / (1 - eps_a / 4) - 1, rel=1e-9)


def test_sgld_quadratic_variance_rejects_unstable_steps():
    with pytest.raises(ValueError, match="diverges"):
        sgld_quadratic_variance(lr=5.0, a=1.0)


def test_loss_scale_does_not_change_lambda_hat():
    # Section 1 remark (i): NLL, MSE (= NLL/2 at σ = 0.5) and 100·NLL give the same λ̂ (MALA, exact at
    # any ε; ε = 3e-3/c). Exact: ½Σ c nβh/(c nβh + γ) ∈ [2.49, 2.50]. Tolerance: 4 se + 2%.
    model, x, y = linear_regression()
    for c, loss_fn in [(1.0, gaussian_nll), (0.5, F.mse_loss), (100.0, lambda o, t: 100 * gaussian_nll(o, t))]:
        res = llc.estimate_llc(model, (x, y), loss_fn, sampler="mala", lr=3e-3 / c, num_chains=8, num_draws=800,
                               seed=0, **FAST)
        exact = llc.expected_llc_quadratic(model, (x, y), loss_fn, res.hyperparameters["nbeta"], 1.0)
        assert 2.49 <= exact <= 2.5
        assert abs(res.mean - exact) <= 4 * res.stderr + 0.02 * exact, (c, res)


@pytest.mark.parametrize(("w_star", "lr"), [((0.0, 0.0), 5e-3), ((0.0, 1.0), 6e-4)])
def test_locality_mala_hits_the_finite_n_target_at_each_point(w_star, lr):
    # Section 6: n = 10⁴, γ = 10, MALA (no ε-bias). Tolerance 4 se + 3% (se over 8 chains is itself
    # uncertain by ~25%). The two targets differ by a factor 3, far beyond the tolerance.
    x, y = normal_crossing_data(10_000)
    a, nb = float(x @ x) / len(x) / 0.25, llc.default_nbeta(10_000)
    target = finite_n_target_2d(line_plus_dot_g, a, nb, 10.0, w_star)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = llc.estimate_llc(LinePlusDot(w_star), (x, y), gaussian_nll, sampler="mala", lr=lr, localization=10.0,
                               num_chains=8, num_draws=800, seed=0, **FAST)
    assert abs(res.mean - target) <= 4 * res.stderr + 0.03 * target, (res, target)
    assert (target < 0.2) if w_star == (0.0, 0.0) else (target > 0.5)


def test_minibatch_reads_higher_than_full_batch_as_predicted():
    # Section 7: at ε = 1e-4, B = 20 inflates λ̂ by ≈ (εa/4)(nβ/B) ≈ 11% over full batch.
    # Tolerance: 4 se of the difference around the predicted ratio.
    model, x, y = linear_regression()
    kw = dict(lr=1e-4, num_chains=32, num_draws=800, seed=1, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = llc.estimate_llc(model, (x, y), gaussian_nll, **kw)
        mini = llc.estimate_llc(model, (x, y), gaussian_nll, batch_size=20, **kw)
    nb = full.hyperparameters["nbeta"]
    a = nb * float(torch.linalg.eigvalsh(x.T @ x / len(x) / 0.25).max()) + 1.0
    predicted = full.mean * (1 + 1e-4 * a / 4 * nb / 20)
    se = math.hypot(full.stderr, mini.stderr)
    assert abs(mini.mean - predicted) <= 4 * se, (full, mini, predicted)


def test_langevin_traces_keep_the_diverged_chains():
    # Section 3's divergence panel: plain SGLD at ε = 1e-2 on y = w1 w2² x blows up in some chains
    # (the estimator froze 5 of 16) and stays finite in others.
    from slt_course_utils.llc_models import NormalCrossing

    x, y = normal_crossing_data(1000)
    tr = langevin_traces(NormalCrossing([1, 2]), (x, y), gaussian_nll, lr=1e-2, nbeta=llc.default_nbeta(1000),
                         localization=1.0, num_chains=16, num_steps=500, seed=0)
    gone = ~(tr.abs() < 1e12).all(dim=1)
    assert tr.shape == (16, 500) and 1 <= int(gone.sum()) < 16
    assert torch.isfinite(tr[~gone]).all()
