"""Local vs global learning coefficients of deep linear networks (issue 14).

At a generic true point (``dln.random_true_network``: W_1 of rank r, the other layers invertible)
the product map μ is a submersion, so the true set is smooth of codimension H_1·H_{L+1} and the
local λ is H_1·H_{L+1}/2 (Morse–Bott: Hessian rank = 2λ). At the most singular true point
(every layer of rank r) the local λ is Aoyagi's global λ (``dln.exact_llc``).
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import pytest
import torch

from slt_course_utils import dln
from slt_course_utils.llc import default_nbeta, estimate_llc
from slt_course_utils.llc.problem import build_problem
from slt_course_utils.llc.quadratic import quadratic_llc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _teachers(widths, r, seed=0):
    g = torch.Generator().manual_seed(seed)
    generic = dln.random_true_network(widths, r, generator=g, dtype=torch.float64)
    return generic, dln.most_singular_true_network(generic, dtype=torch.float64), g


def _hessian_rank(net, x, y):
    """Rank of the autograd Hessian of L_n (the instrument's own Hessian), threshold 1e-6·max."""
    prob = build_problem(net, x, y, dln.dln_loss, torch.device("cpu"), len(x))
    eigs = prob.hessian_eigenvalues()
    return int((eigs > 1e-6 * eigs.max()).sum()), eigs


def test_product_jacobian_matches_autograd():
    net = dln.random_true_network([4, 3, 5, 2], 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mats = [p.detach() for p in net.parameters()]

    def mu(*ws):
        return dln.product_of(list(ws)).reshape(-1)

    auto = torch.cat([j.reshape(j.shape[0], -1) for j in torch.autograd.functional.jacobian(mu, tuple(mats))], 1)
    assert torch.allclose(dln.product_jacobian(net), auto, atol=1e-12)


@pytest.mark.parametrize(("widths", "r", "local"), [([5, 5, 5, 5], 2, Fraction(25, 2)),
                                                    ([20, 20, 20, 20], 5, Fraction(200)),
                                                    ([3, 5, 4], 3, Fraction(6))])
def test_generic_teacher_is_a_submersion_point(widths, r, local):
    """dμ has full rank H_1·H_{L+1} at the generic teacher (the float32 teacher of the chapter too)."""
    g = torch.Generator().manual_seed(0)
    teacher = dln.random_true_network(widths, r, generator=g)
    J = dln.product_jacobian(teacher)
    assert torch.linalg.matrix_rank(J) == widths[0] * widths[-1] == J.shape[0]
    assert dln.local_llc(teacher, generator=g) == local


def test_local_llc_at_the_generic_point_differs_from_aoyagi():
    assert dln.exact_llc([5, 5, 5, 5], 2) == 11 != dln.local_llc(_teachers([5, 5, 5, 5], 2)[0])


@pytest.mark.parametrize(("widths", "r"), [([4, 3, 5, 2], 2), ([3, 5, 4], 3), ([2, 6, 6, 3], 2)])
def test_local_llc_agrees_with_aoyagi_where_the_rank_is_the_bottleneck(widths, r):
    """r = min(widths): every true point has constant rank, so local = global = Aoyagi's λ —
    an independent exact check of rank(dμ)/2, at both teachers."""
    generic, singular, g = _teachers(widths, r)
    assert dln.local_llc(generic, generator=g) == dln.local_llc(singular, generator=g) == dln.exact_llc(widths, r)


def test_most_singular_teacher_has_the_same_product_and_every_layer_of_rank_r():
    for widths, r in [([5, 5, 5, 5], 2), ([20, 20, 20, 20], 5), ([4, 6, 3, 5], 2)]:
        generic = dln.random_true_network(widths, r, generator=torch.Generator().manual_seed(0))  # float32
        singular = dln.most_singular_true_network(generic)
        assert singular.widths == widths
        assert torch.allclose(singular.product(), generic.product(), atol=1e-5)
        assert [int(torch.linalg.matrix_rank(p.double(), rtol=1e-5)) for p in singular.parameters()] == [r] * 3


@pytest.mark.parametrize(("widths", "r"), [([5, 5, 5, 5], 2), ([20, 20, 20, 20], 5)])
def test_most_singular_point_is_singular(widths, r):
    """The differential drops rank at the most singular point and jumps back nearby: local_llc refuses.

    There the image of dμ is {X : columns in im M₀} + {X : rows in row M₀}, the tangent space of the
    rank-r matrices: dimension r(H_1 + H_{L+1} − r); at the generic point all H_1·H_{L+1} matrices."""
    generic_rank, singular_rank = widths[0] * widths[-1], r * (widths[0] + widths[-1] - r)
    generic, singular, g = _teachers(widths, r)
    assert torch.linalg.matrix_rank(dln.product_jacobian(generic)) == generic_rank
    assert torch.linalg.matrix_rank(dln.product_jacobian(singular)) == singular_rank
    with pytest.raises(ValueError, match="singular at this point"):
        dln.local_llc(singular, generator=g)
    # Aoyagi's λ lies between the quadratic lower bound rank/2 and the generic local λ
    assert Fraction(singular_rank, 2) < dln.exact_llc(widths, r) < Fraction(generic_rank, 2)


def test_hessian_rank_is_twice_the_local_llc_morse_bott():
    """At the generic point the autograd Hessian of L_n has rank 2λ = 25 (Morse–Bott); at the most
    singular point only 16 < 2·11: the quadratic part of K no longer carries the whole λ."""
    generic, singular, g = _teachers([5, 5, 5, 5], 2)
    x, y = dln.sample_dln_data(generic, 2000, generator=g)
    k_gen, eigs = _hessian_rank(generic, x, y)
    assert k_gen == 2 * dln.local_llc(generic) == 25
    assert _hessian_rank(singular, x, y)[0] == 16
    # the kron formula reproduces the autograd spectrum (non-zero part), to float64 rounding
    fast = dln.hessian_eigenvalues_at_truth(generic, x)
    assert torch.allclose(fast[-25:], eigs[-25:], rtol=1e-8, atol=1e-10)


def test_llc_hat_reads_the_local_llc_at_each_point():
    """λ̂ (lr='auto', 4 chains × 2000 draws, minibatch 500, n = 10⁴, x ~ U[−1, 1]) at the two
    teachers of one truth: at the generic point within 10% of its finite-n target ½Σa/(a+γ)
    (11.95 here, the exact local λ 12.5 less the γ-correction of the flattest directions) —
    10% ≈ 2 standard errors of 4 chains plus the ≤2% ε-bias that lr='auto' aims for; at the
    most singular point clearly lower (the point with the smaller local λ) and above its
    quadratic lower bound rank(H)/2 = 8."""
    g = torch.Generator().manual_seed(0)  # the chapter's teachers and data (float32), section 2
    generic = dln.random_true_network([5, 5, 5, 5], 2, generator=g)
    singular = dln.most_singular_true_network(generic)
    x, y = dln.sample_dln_data(generic, 10_000, generator=g)
    nb = default_nbeta(10_000)
    target = quadratic_llc(dln.hessian_eigenvalues_at_truth(generic, x), nb, 1.0)[0]
    assert 11.5 < target < 12.5
    out = {}
    for name, net in [("generic", generic), ("singular", singular)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = estimate_llc(net, (x, y), dln.dln_loss, num_chains=4, num_draws=2000, batch_size=500,
                                     seed=0, progress=False, check_localization=False).mean
    assert abs(out["generic"] / target - 1) < 0.10, out
    assert 8 < out["singular"] < out["generic"] - 1, out


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="list of 2-d weight tensors"):
        dln.product_jacobian([torch.zeros(3)])
    with pytest.raises(ValueError, match="must chain"):
        dln.product_jacobian([torch.zeros(3, 2), torch.zeros(4, 5)])
    with pytest.raises(ValueError, match="rank must be in"):
        dln.most_singular_true_network(dln.DeepLinearNetwork([3, 3, 3]), rank=4)
    with pytest.raises(ValueError, match=r"shape \(n, H_1\)"):
        dln.hessian_eigenvalues_at_truth(dln.DeepLinearNetwork([3, 3, 3]), torch.zeros(5, 4))


def test_quadratic_calibration_target_and_step_size():
    """Finite-n target ½Σa/(a+γ) lies below the exact local λ and tends to it as the curvature grows
    (x ~ U[−a, a]: curvature ∝ a²); the returned ε has predicted SGLD bias 2% (bisection, to 1e-6)."""
    from slt_course_utils.llc.quadratic import predicted_sgld_bias

    generic, _, _ = _teachers([20, 20, 20, 20], 5)
    nb = default_nbeta(10_000)
    gaps = []
    for a in (1.0, 10.0, 100.0):
        x = (2 * torch.rand(10_000, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 1) * a
        target, lr = dln.quadratic_calibration(generic, x, nb, 1.0)
        eigs = dln.hessian_eigenvalues_at_truth(generic, x)
        assert abs(predicted_sgld_bias(eigs, nb, 1.0, lr) - 0.02) < 1e-6
        gaps.append(200 - target)
    assert 0 < gaps[2] < gaps[1] < gaps[0] < 0.2 * 200, gaps
    with pytest.raises(ValueError, match="relative bias"):
        dln.quadratic_calibration(generic, x, nb, 1.0, bias=2.0)
