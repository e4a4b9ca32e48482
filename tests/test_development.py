"""Exact tests of ``slt_course_utils.development`` (chapter 9: development over training).

Each test says in a comment which wrong implementation it rejects. Synthetic curves use the checkpoint
schedule ``log_spaced_steps(8000, 40)`` of the chapter; stage boundaries follow Hoogland et al.
(arXiv 2402.02364): critical points of the smoothed LLC curve in log t.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slt_course_utils._validate import InputTypeError
from slt_course_utils.development import (
    EssentialDynamics,
    essential_dynamics,
    log_spaced_steps,
    loss_plateaus,
    outputs_on_probe,
    smooth_log_time,
    stage_boundaries,
    turning_points,
)

STEPS = np.array(log_spaced_steps(8000, 40))
LOGT = np.log10(STEPS)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# --- log_spaced_steps ----------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "num"), [(8000, 40), (10, 10), (1000, 2), (5, 100), (1, 3)])
def test_log_spaced_steps_is_the_rounded_geomspace_set(total, num):
    # Rejects: linspace instead of geomspace, floor/ceil instead of rint, duplicates kept, unsorted output,
    # a start at 0 (log t undefined) or an end short of ``total``.
    steps = log_spaced_steps(total, num)
    assert steps == sorted({int(s) for s in np.rint(np.geomspace(1, total, num))})
    assert all(type(s) is int for s in steps)
    assert steps == sorted(set(steps))
    assert steps[0] == 1 and steps[-1] == total
    assert len(steps) <= num


def test_log_spaced_steps_values():
    # Rejects an off-by-one in num (geomspace(1, total, num - 1)) and the early merge being dropped.
    assert log_spaced_steps(1000, 4) == [1, 10, 100, 1000]
    assert log_spaced_steps(1000, 2) == [1, 1000]
    assert log_spaced_steps(8, 4) == [1, 2, 4, 8]
    assert len(STEPS) == 37  # 40 requested, three merged at the start (1, 1, 1, 2, ... rounded)


@pytest.mark.parametrize(("total", "num", "err"), [
    (100, 1, ValueError), (100, 0, ValueError), (0, 5, ValueError), (-5, 5, ValueError),
    (100.0, 5, InputTypeError), (100, 5.0, InputTypeError), ("100", 5, InputTypeError), (100, "5", InputTypeError),
    (True, 5, InputTypeError),
])
def test_log_spaced_steps_rejects_bad_arguments(total, num, err):
    # Rejects silently rounding floats/strings to counts and accepting num < 2 (no last step).
    with pytest.raises(err):
        log_spaced_steps(total, num)


def test_input_type_error_is_both_type_and_value_error():
    with pytest.raises(TypeError):
        log_spaced_steps(10.0, 3)
    with pytest.raises(ValueError):
        log_spaced_steps(10.0, 3)


# --- smooth_log_time -----------------------------------------------------------------------------

def test_smooth_log_time_matches_the_closed_formula_by_hand():
    # Rejects: log10(t) instead of log10(1 + t), width as variance instead of sd, a missing or wrong
    # normalisation (e.g. by the number of checkpoints instead of the kernel's row sum).
    t = np.array([0.0, 1.0, 3.0, 9.0, 99.0])
    v = np.array([1.0, -2.0, 0.5, 4.0, 3.0])
    w = 0.3
    u = np.log10(1 + t)
    expected = np.empty(5)
    for k in range(5):
        kern = np.array([np.exp(-0.5 * ((u[k] - u[j]) / w) ** 2) for j in range(5)])
        expected[k] = (kern * v).sum() / kern.sum()
    out = smooth_log_time(t, v, width=w)
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-14)
    # the first entry by hand: u = (0, log 2, log 4, 1, 2)
    k0 = np.exp(-0.5 * (np.log10([1, 2, 4, 10, 100]) / w) ** 2)
    assert out[0] == pytest.approx((k0 @ v) / k0.sum(), rel=1e-13)


def test_smooth_log_time_constant_and_tiny_width():
    # Rejects an unnormalised kernel (a constant would change) and a width floor that still mixes neighbours.
    np.testing.assert_allclose(smooth_log_time(STEPS, np.full(len(STEPS), 2.5)), 2.5, rtol=1e-14)
    v = np.random.default_rng(0).normal(size=len(STEPS))
    np.testing.assert_array_equal(smooth_log_time(STEPS, v, width=1e-6), v)
    # accepts tensors and lists alike
    np.testing.assert_allclose(smooth_log_time(torch.tensor(STEPS), torch.tensor(v)), smooth_log_time(list(STEPS), list(v)))


def test_smooth_log_time_errors():
    # Rejects broadcasting mismatched inputs, unsorted steps, NaN passing through silently, too few points.
    with pytest.raises(ValueError, match="same length"):
        smooth_log_time([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        smooth_log_time([1, 3, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        smooth_log_time([1, 2, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        smooth_log_time([-1, 2, 3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="position 2"):
        smooth_log_time([1, 2, 3, 4], [1.0, 2.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="position 1"):
        smooth_log_time([1, np.inf, 3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 3"):
        smooth_log_time([1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        smooth_log_time([1, 2, 3], [1.0, 2.0, 3.0], width=0.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        smooth_log_time(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(InputTypeError):
        smooth_log_time([1, 2, 3], ["1", "2", "3"])  # strings are not parsed as numbers


# --- essential_dynamics --------------------------------------------------------------------------

def _two_component_data(K: int = 12, D: int = 6, a: float = 3.0, b: float = 1.25):
    rng = np.random.default_rng(1)
    tk = np.linspace(-1, 1, K)
    Q, _ = np.linalg.qr(np.stack([np.ones(K), tk, tk**2], 1))
    u1, u2 = Q[:, 1], Q[:, 2]  # orthonormal, orthogonal to 1 (centred)
    V, _ = np.linalg.qr(rng.normal(size=(D, 2)))
    v1, v2 = V[:, 0], V[:, 1]
    mean = rng.normal(size=D) * 5
    X = mean + a * np.outer(u1, v1) + b * np.outer(u2, v2)
    return X, mean, (u1, u2), (v1, v2), (a, b)


def test_essential_dynamics_recovers_a_constructed_rank_two_path_exactly():
    # Rejects: no centring (the mean would be the first component), projections U instead of U S,
    # explained S / ΣS instead of S² / ΣS², components as columns of U, ordering by smallest variance.
    X, mean, (u1, u2), (v1, v2), (a, b) = _two_component_data()
    ed = essential_dynamics(X, num_components=2)
    assert isinstance(ed, EssentialDynamics)
    assert ed.projections.shape == (12, 2) and ed.components.shape == (2, 6) and ed.explained.shape == (2,)
    np.testing.assert_allclose(ed.mean, mean, atol=1e-12)
    np.testing.assert_allclose(ed.explained, [a**2 / (a**2 + b**2), b**2 / (a**2 + b**2)], rtol=1e-12)
    for i, (u, v, s) in enumerate([(u1, v1, a), (u2, v2, b)]):
        sign = np.sign(ed.components[i] @ v)
        np.testing.assert_allclose(ed.components[i], sign * v, atol=1e-12)
        np.testing.assert_allclose(ed.projections[:, i], sign * s * u, atol=1e-12)
    # reconstruction: mean + projections @ components is X (rank 2)
    np.testing.assert_allclose(ed.mean + ed.projections @ ed.components, X, atol=1e-12)


def test_essential_dynamics_sign_convention_and_clipped_components():
    # Rejects the raw SVD signs (flipping the data's sign would flip the result) and a sign rule on U.
    X, *_ = _two_component_data()
    for data in (X, -X, X[::-1]):
        ed = essential_dynamics(data, num_components=5)
        assert ed.components.shape[0] == 5  # min(5, K=12, D=6)
        for c in ed.components:
            assert c[np.argmax(np.abs(c))] > 0
    ed_pos, ed_neg = essential_dynamics(X, 2), essential_dynamics(-X, 2)
    np.testing.assert_allclose(ed_neg.components, ed_pos.components * np.sign(ed_neg.components @ ed_pos.components.T).diagonal()[:, None],
                               atol=1e-12)
    # num_components is clipped to min(K, D)
    assert essential_dynamics(X[:, :2], num_components=3).components.shape == (2, 2)
    assert essential_dynamics(X[:3], num_components=5).components.shape == (3, 6)


def test_essential_dynamics_matches_torch_svd_on_random_data():
    # Rejects any PCA that differs from the textbook one (e.g. a covariance eigendecomposition in float32).
    X = torch.randn(15, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ed = essential_dynamics(X, num_components=4)
    Xc = X.reshape(15, -1) - X.reshape(15, -1).mean(0)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    np.testing.assert_allclose(ed.explained, (S[:4] ** 2 / (S**2).sum()).numpy(), rtol=1e-10)
    for i in range(4):
        sign = float(np.sign(ed.components[i] @ Vh[i].numpy()))
        np.testing.assert_allclose(ed.components[i], sign * Vh[i].numpy(), atol=1e-10)
        np.testing.assert_allclose(ed.projections[:, i], sign * (U[:, i] * S[i]).numpy(), atol=1e-10)
    # torch.pca_lowrank (centred; q = K so its randomised range finder is exact) agrees on the variances
    _, S_lr, _ = torch.pca_lowrank(X.reshape(15, -1), q=15, niter=4)
    np.testing.assert_allclose(ed.explained * float((S**2).sum()), (S_lr[:4] ** 2).numpy(), rtol=1e-8)


def test_essential_dynamics_flattens_extra_output_dimensions():
    # Rejects PCA over only the first output dimension or reshaping in the wrong (checkpoint-mixing) order.
    X = np.random.default_rng(2).normal(size=(7, 3, 4))
    a, b = essential_dynamics(X, 3), essential_dynamics(X.reshape(7, 12), 3)
    for f in ("projections", "explained", "components", "mean"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.components.shape == (3, 12)
    c = essential_dynamics(torch.tensor(X, dtype=torch.float32), 3)  # float32 tensors are promoted to float64
    np.testing.assert_allclose(c.explained, a.explained, rtol=1e-5)


def test_essential_dynamics_errors():
    # Rejects returning NaN explained variance (0/0) for a constant path and accepting diverged checkpoints.
    with pytest.raises(ValueError, match="identical"):
        essential_dynamics(np.ones((5, 3)))
    bad = np.ones((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        essential_dynamics(bad)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        essential_dynamics(np.arange(5.0))
    with pytest.raises(ValueError, match="2 or more checkpoints"):
        essential_dynamics(np.ones((1, 4)))
    with pytest.raises(ValueError):
        essential_dynamics(np.random.default_rng(0).normal(size=(4, 3)), num_components=0)
    with pytest.raises(InputTypeError):
        essential_dynamics(np.random.default_rng(0).normal(size=(4, 3)), num_components=2.0)


# --- turning_points ------------------------------------------------------------------------------

def _polygon():
    # (0,0)…(5,0) [0–5], up to (5,5) [6–10], back along −x to (0,5) [11–15]: corners at 5 and 10.
    east = [(x, 0.0) for x in range(6)]
    north = [(5.0, y) for y in range(1, 6)]
    west = [(x, 5.0) for x in range(4, -1, -1)]
    return np.array(east + north + west, dtype=float)


def test_turning_points_of_a_polygon_are_its_corners():
    # Rejects: an off-by-one index (the corner's neighbour), keeping every candidate of a run, comparing
    # the angle with the wrong threshold (90° corners vs min_angle) or using degrees/radians inconsistently.
    P = _polygon()
    assert turning_points(P) == [5, 10]
    assert turning_points(torch.tensor(P)) == [5, 10]
    assert turning_points(P, min_angle=89.0) == [5, 10]
    assert turning_points(P, min_angle=91.0) == []
    # in 3 components (a zero third coordinate) the answer is the same
    assert turning_points(np.c_[P, np.zeros(len(P))]) == [5, 10]


def test_turning_points_straight_line_and_reversal():
    # Rejects reporting every checkpoint on a straight path and missing a 180° reversal.
    line = np.c_[np.linspace(0, 1, 20), 2 * np.linspace(0, 1, 20)]
    assert turning_points(line) == []
    there_and_back = np.r_[np.c_[np.arange(6.0), np.zeros(6)], np.c_[np.arange(4.0, -1, -1), np.zeros(5)]]
    assert turning_points(there_and_back) == [5]


def test_turning_points_ignores_jitter_on_a_plateau():
    # Rejects taking directions from the immediate neighbours: tiny moves on a plateau then look like turns.
    rng = np.random.default_rng(0)
    before = np.c_[np.arange(6.0), np.zeros(6)]
    plateau = np.array([5.0, 0.0]) + rng.uniform(-1e-3, 1e-3, size=(6, 2))
    after = np.c_[np.arange(6.0, 11.0), np.zeros(5)]
    P = np.r_[before, plateau, after]
    assert turning_points(P) == []
    assert turning_points(P, min_step=1e-6) != []  # without the min_step rule the jitter is full of "turns"
    # a real corner on a jittery plateau is found once, inside the plateau
    after_up = np.c_[np.full(5, 5.0), np.arange(1.0, 6.0)]
    Q = np.r_[before, plateau, after_up]
    corners = turning_points(Q)
    assert len(corners) == 1 and 5 <= corners[0] <= 11


def test_turning_points_validation():
    # Rejects min_angle ≥ 180 (nothing can turn more) and short or non-finite paths.
    P = _polygon()
    for angle in (180.0, 200.0):
        with pytest.raises(ValueError, match="180"):
            turning_points(P, min_angle=angle)
    with pytest.raises(ValueError):
        turning_points(P, min_angle=0.0)
    with pytest.raises(ValueError):
        turning_points(P, min_step=-0.1)
    with pytest.raises(ValueError, match="shape"):
        turning_points(P[:2])
    with pytest.raises(ValueError, match="shape"):
        turning_points(P[:, 0])
    Q = P.copy()
    Q[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        turning_points(Q)
    assert turning_points(np.zeros((5, 2))) == []  # a path that never moves has no turns


# --- stage_boundaries ----------------------------------------------------------------------------

STAIRCASE = _sigmoid(25 * (LOGT - 2.2)) + _sigmoid(25 * (LOGT - 3.05))  # steps of height 1 at 2.2, 3.05 decades
PEAK = np.exp(-0.5 * ((LOGT - 2.5) / 0.3) ** 2)


def test_stage_boundaries_staircase_has_one_boundary_on_the_middle_plateau():
    # Rejects: reporting the flat start and end as boundaries, reporting the two steep rises, or
    # reporting every checkpoint of the middle plateau instead of its flattest one.
    b = stage_boundaries(STEPS, STAIRCASE)
    assert b == [23]
    assert 200 <= STEPS[b[0]] <= 900  # between the two rises (10^2.2 ≈ 158 and 10^3.05 ≈ 1122)
    # exactly the index of the flattest smoothed slope on the middle plateau
    s = smooth_log_time(STEPS, STAIRCASE)
    g = np.gradient(s, np.log10(1 + STEPS))
    middle = np.flatnonzero((STEPS > 200) & (STEPS < 900))
    assert b[0] == middle[np.argmin(np.abs(g[middle]))]


def test_stage_boundaries_single_peak_and_trough():
    # Rejects a sign-change rule that picks the wrong side of the extremum, or ignores troughs.
    peak = int(np.argmax(PEAK))
    b = stage_boundaries(STEPS, PEAK)
    assert len(b) == 1 and abs(b[0] - peak) <= 1
    assert stage_boundaries(STEPS, -PEAK) == b
    assert stage_boundaries(STEPS, 3 * PEAK + 7) == b  # invariant under affine rescaling of λ̂


def test_stage_boundaries_monotone_line_has_none():
    # Rejects treating a constant (never-zero) slope as critical (e.g. thresholding |g| against its mean).
    assert stage_boundaries(STEPS, LOGT) == []
    assert stage_boundaries(STEPS, 5 - 2 * LOGT) == []
    assert stage_boundaries(STEPS, np.full(len(STEPS), 3.0)) == []  # a constant curve: no stage at all


def test_stage_boundaries_is_unchanged_by_modest_noise():
    # Rejects a detector with no min_change filter: wiggles of the noise on the flat start/end become stages.
    # Noise sd = 10% of the step height, fixed seed. (At this level the defaults, flat = 0.3, miss or misplace
    # the middle plateau for 4 of 200 seeds and add a spurious boundary to the peak for 7 of 200; with
    # flat = 0.15 it was 82 and 7 of 200 — measured 2026-12-02.)
    rng = np.random.default_rng(0)
    noisy = STAIRCASE + rng.normal(0, 0.1, len(STEPS))
    assert stage_boundaries(STEPS, noisy) == [23]
    noisy_peak = PEAK + np.random.default_rng(0).normal(0, 0.1, len(STEPS))
    b = stage_boundaries(STEPS, noisy_peak)
    assert len(b) == 1 and abs(b[0] - int(np.argmax(PEAK))) <= 1
    noisy_line = LOGT + np.random.default_rng(0).normal(0, 0.1, len(STEPS))
    assert stage_boundaries(STEPS, noisy_line) == []
    # min_change is what removes the wiggles: at noise sd 30% a wiggle on the flat start becomes a candidate
    # (step 13 here), which the default min_change rejects and a tiny one keeps
    louder = STAIRCASE + np.random.default_rng(0).normal(0, 0.3, len(STEPS))
    assert len(stage_boundaries(STEPS, louder, min_change=1e-6)) > len(stage_boundaries(STEPS, louder)) == 1


def test_stage_boundaries_flat_start_and_end_are_not_boundaries():
    # Rejects dropping the "touches the first or last checkpoint" rule: a single rise has no boundary.
    rise = _sigmoid(25 * (LOGT - 2.5))
    assert stage_boundaries(STEPS, rise) == []
    s = smooth_log_time(STEPS, rise)
    g = np.abs(np.gradient(s, np.log10(1 + STEPS)))
    assert g[0] <= 0.15 * g.max() and g[-1] <= 0.15 * g.max()  # both ends are flat stretches
    # A slow drift on the flat start (slope below the flat threshold, not zero) moves λ̄ by more than a
    # small min_change: only the "touches the first/last checkpoint" rule keeps it from being a boundary.
    drift = rise + 0.05 * LOGT
    assert stage_boundaries(STEPS, drift, min_change=0.01) == []


def test_stage_boundaries_validation():
    for kw in ({"flat": 1.0}, {"flat": 1.5}, {"min_change": 1.0}, {"flat": 0.0}, {"width": -1.0}):
        with pytest.raises(ValueError):
            stage_boundaries(STEPS, STAIRCASE, **kw)
    with pytest.raises(ValueError, match="position 4"):
        stage_boundaries(STEPS, np.r_[STAIRCASE[:4], np.nan, STAIRCASE[5:]])
    with pytest.raises(ValueError, match="same length"):
        stage_boundaries(STEPS, STAIRCASE[:-1])


# --- loss_plateaus -------------------------------------------------------------------------------

def _two_drop_loss():
    steps = np.array(log_spaced_steps(10**4, 200))
    u = np.log10(1 + steps)
    ramp = lambda x, a: np.clip((x - a) / 0.1, 0, 1)  # noqa: E731 — a drop over 0.1 decade
    loss = 2.0 * 3.0 ** -(ramp(u, 1.6) + ramp(u, 2.6))  # constant, ÷3, constant (0.9 decades), ÷3, constant
    return steps, u, loss


def test_loss_plateaus_cover_the_constant_stretches():
    # Rejects: plateaus running through a drop, using the loss instead of log L (slope scale-dependent),
    # an off-by-one last index, dropping the final plateau that runs to the end of training.
    steps, u, loss = _two_drop_loss()
    plats = loss_plateaus(steps, loss)
    assert len(plats) == 3
    constant = [(u[0], 1.6), (1.7, 2.6), (2.7, u[-1])]
    for (i, j), (lo, hi) in zip(plats, constant, strict=True):
        assert lo <= u[i] and u[j] <= hi  # inside the constant stretch
        # covers it up to the smoothing margin (3 kernel widths of 0.05 decades) near each drop
        assert u[i] <= max(lo, u[0]) + 0.15 and u[j] >= min(hi, u[-1]) - 0.15
    assert plats[0][0] == 0 and plats[-1][1] == len(steps) - 1
    # scale invariance: multiplying the loss by a constant changes nothing
    assert loss_plateaus(steps, 1000 * loss) == plats


def test_loss_plateaus_min_decades_rule():
    # Rejects measuring the length in checkpoints or in steps instead of decades of log t.
    steps, u, loss = _two_drop_loss()
    plats = loss_plateaus(steps, loss)
    lengths = [u[j] - u[i] for i, j in plats]
    assert 0.3 <= lengths[1] < 0.9 < min(lengths[0], lengths[2])
    assert loss_plateaus(steps, loss, min_decades=0.9) == [plats[0], plats[2]]
    assert loss_plateaus(steps, loss, min_decades=lengths[1]) == plats  # ≥, not >
    assert loss_plateaus(steps, loss, min_decades=10.0) == []


def test_loss_plateaus_validation():
    steps, _, loss = _two_drop_loss()
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="positive"):
            loss_plateaus(steps, np.r_[loss[:5], bad, loss[6:]])
    with pytest.raises(ValueError):
        loss_plateaus(steps, loss, max_slope=0.0)
    with pytest.raises(ValueError):
        loss_plateaus(steps, loss, min_decades=-0.3)


# --- outputs_on_probe ----------------------------------------------------------------------------

def test_outputs_on_probe_stacks_outputs_without_gradients():
    # Rejects: keeping the autograd graph (checkpoints would stay alive), concatenating instead of
    # stacking, evaluating on a different batch per model.
    torch.manual_seed(0)
    models = [torch.nn.Linear(3, 2) for _ in range(4)]
    probe = torch.randn(5, 3)
    out = outputs_on_probe(models, probe)
    assert out.shape == (4, 5, 2)
    assert not out.requires_grad and out.grad_fn is None
    for k, m in enumerate(models):
        torch.testing.assert_close(out[k], probe @ m.weight.detach().T + m.bias.detach())
    ed = essential_dynamics(out, 2)
    assert ed.components.shape == (2, 10)


def test_outputs_on_probe_runs_under_no_grad():
    # Rejects evaluating with autograd on (a detach() afterwards hides it but the graph is still built).
    seen = []

    class Recorder(torch.nn.Linear):
        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return super().forward(x)

    outputs_on_probe([Recorder(3, 2), Recorder(3, 2)], torch.zeros(4, 3))
    assert seen == [False, False]


def test_outputs_on_probe_errors():
    with pytest.raises(ValueError, match="empty"):
        outputs_on_probe([], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        outputs_on_probe([torch.nn.Linear(3, 2)], torch.tensor([[0.0, float("nan"), 1.0]]))


def test_true_runs_lists_every_run_with_inclusive_ends():
    # Rejects an off-by-one end (exclusive last index) and dropping runs that touch either end of the array.
    from slt_course_utils.development import true_runs

    assert true_runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], bool)) == [(0, 1), (3, 3), (6, 8)]
    assert true_runs(np.zeros(4, bool)) == [] and true_runs(np.ones(3, bool)) == [(0, 2)]
