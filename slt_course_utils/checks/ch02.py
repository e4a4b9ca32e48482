"""Checks for chapter 02, singular models (solutions/02_singular_models.ipynb)."""

from __future__ import annotations

import torch

from slt_course_utils import fisher, models, singular
from slt_course_utils.checks._core import (
    CheckFailure,
    assert_close,
    call_student,
    exercise_check,
    too_large_or_small,
)


def _mesh(lo: float = -2.0, hi: float = 2.0, size: int = 81) -> tuple[torch.Tensor, torch.Tensor]:
    axis = torch.linspace(lo, hi, size, dtype=torch.float64)
    return torch.meshgrid(axis, axis, indexing="ij")


@exercise_check
def check_true_parameter_set_tanh(true_parameter_set_tanh) -> str:
    """{K(a, b) < tol} on a grid, for the truth at the origin and away from it."""
    a, b = _mesh()
    for a0, b0, tol in [(0.0, 0.0, 0.01), (0.0, 0.0, 0.05), (1.0, 1.0, 0.01), (-0.5, 1.5, 0.02)]:
        got = call_student(true_parameter_set_tanh, a, b, a0, b0, tol)
        got = torch.as_tensor(got)
        if got.shape != a.shape:
            raise CheckFailure(f"true_parameter_set_tanh should return a mask of shape {tuple(a.shape)}, got {tuple(got.shape)}.")
        got = got.bool()
        K = singular.tanh_kl(a, b, a0, b0)
        expected = K < tol
        # Tolerance: any quadrature over x (Gauss–Hermite with ≥ 50 nodes, a trapezoid rule, even
        # Monte Carlo with 10⁶ draws) gets K to better than 1% where K ≈ tol, so we ignore the grid
        # points whose K lies within 2% of tol, where honest methods may round either way.
        decisive = (K - tol).abs() > 0.02 * tol
        wrong = (got != expected) & decisive
        if wrong.any():
            i, j = torch.nonzero(wrong)[0].tolist()
            raise CheckFailure(
                f"mask for truth (a0, b0) = ({a0}, {b0}), tol = {tol}: {int(wrong.sum())} of {a.numel()} grid points "
                f"disagree; e.g. at (a, b) = ({a[i, j]:.2f}, {b[i, j]:.2f}) K = {K[i, j]:.4g}, expected "
                f"{bool(expected[i, j])}, got {bool(got[i, j])}."
                "\nHint: K(a, b) = ½ E_x[(a tanh(bx) − a0 tanh(b0x))²] with x ~ N(0, 1) — the factor ½ is 1/(2σ²); "
                "tanh saturates, so K is not ½(ab − a0b0)² away from the origin."
            )
    return "masks of {K < tol} agree for the crossing and for a regular truth"


@exercise_check
def check_fisher_tanh(fisher_tanh_answer) -> str:
    """I(a, b) for y = a·tanh(bx) + N(0, 1), x ~ N(0, 1): a 2 × 2 matrix at several points."""
    for a, b in [(0.0, 0.0), (0.0, 1.3), (0.8, 0.0), (1.0, 1.0), (-0.7, 2.0), (1.5, -0.4)]:
        got = call_student(fisher_tanh_answer, a, b)
        # Reference: a trapezoid rule over x whose error is far below 1e-10; Gauss–Hermite with 100
        # nodes is good to ~1e-7 for |b| ≤ 2 (tanh has poles at ±iπ/2b), so rtol = atol = 1e-5 leaves room.
        assert_close(
            got, fisher.fisher_tanh(a, b), what=f"Fisher information at (a, b) = ({a}, {b})", rtol=1e-5, atol=1e-5,
            hint="the score is (y − a tanh(bx))·(tanh(bx), a·x·sech²(bx)); I = E_x[∇f ∇fᵀ] with ∇f = "
                 "(tanh(bx), a·x·sech²(bx)). Note the x in ∂/∂b, and that it is E over x ~ N(0, 1).",
        )
    return "I(a, b) correct at 6 points, including the degenerate ones"


# Points and their Fisher ranks for y = a·tanh(bx): rank 2 off the axes (however close), 1 on one axis, 0 at 0.
RANK_POINTS = [((0.0, 0.0), 0), ((0.0, 1.0), 1), ((0.0, -2.0), 1), ((1.5, 0.0), 1), ((-0.3, 0.0), 1),
               ((1.0, 1.0), 2), ((-1.0, 0.5), 2), ((0.05, 0.05), 2), ((0.0, 0.05), 1)]


@exercise_check
def check_rank_along(rank_along) -> str:
    """Fisher rank of y = a·tanh(bx) at points on and off the cross W0 = {ab = 0}."""
    points = torch.tensor([p for p, _ in RANK_POINTS], dtype=torch.float64)
    got = call_student(rank_along, points)
    expected = [r for _, r in RANK_POINTS]
    try:
        got_list = [int(v) for v in torch.as_tensor(got).reshape(-1).tolist()]
    except (TypeError, ValueError) as err:
        raise CheckFailure(f"rank_along should return one integer rank per point, got {got!r:.80}.") from err
    if len(got_list) != len(expected):
        raise CheckFailure(f"rank_along should return {len(expected)} ranks (one per row of points), got {len(got_list)}.")
    bad = [(tuple(p), e, g) for (p, e), g in zip(RANK_POINTS, got_list) if e != g]
    if bad:
        (p, e, g) = bad[0]
        raise CheckFailure(
            f"{len(bad)} of {len(expected)} ranks wrong; e.g. at (a, b) = {p} you returned rank {g}, which is "
            f"{too_large_or_small(g, e)}."
            "\nHint: count eigenvalues above a RELATIVE threshold, tol × (largest eigenvalue) — e.g. "
            "fisher.fisher_rank(I) — not above a fixed absolute number: near the origin all entries are small."
        )
    return "ranks 0 at the crossing, 1 on the arms, 2 off the set"


@exercise_check
def check_count_symmetries(count_symmetries) -> str:
    """|G| = H!·2^H for y = Σ_h c_h tanh(a_h x), H = 1..7."""
    for H in range(1, 8):
        got = call_student(count_symmetries, H)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or got != singular.tanh_symmetry_count(H):
            raise CheckFailure(
                f"count_symmetries({H}): got {got!r}, which is {too_large_or_small(got, singular.tanh_symmetry_count(H))}."
                "\nHint: the two kinds of symmetry combine: any permutation of the units AND, independently "
                "for each unit, a sign flip (a_h, c_h) → (−a_h, −c_h)."
            )
    return "H!·2^H for H = 1..7"


@exercise_check
def check_apply_symmetry(apply_symmetry) -> str:
    """The image of (a, c) under a permutation and sign flips: exact, and the loss is unchanged."""
    gen = torch.Generator().manual_seed(22)
    for H, perm, signs in [(3, [2, 0, 1], [1, -1, -1]), (4, [0, 1, 2, 3], [-1, 1, 1, 1]), (4, [3, 2, 1, 0], [1, 1, 1, 1])]:
        w = torch.randn(2 * H, generator=gen, dtype=torch.float64)
        got = call_student(apply_symmetry, w.clone(), list(perm), list(signs))
        net = models.tanh_network(H, bias=False)
        x, y = net.sample(torch.randn(2 * H, generator=gen, dtype=torch.float64), 500, generator=gen)
        got_t = torch.as_tensor(got, dtype=torch.float64)
        if got_t.shape != w.shape:
            raise CheckFailure(f"apply_symmetry should return a vector of shape {tuple(w.shape)}, got {tuple(got_t.shape)}.")
        # Loss invariance holds to rounding (1e-15); 1e-10 separates it from any real change.
        assert_close(
            net.empirical_loss(got_t, x, y), net.empirical_loss(w, x, y),
            what=f"L_n at the transformed parameter (H = {H}, perm = {perm}, signs = {signs})", rtol=0, atol=1e-10,
            hint="flip the sign of BOTH a_h and c_h (tanh is odd), and permute a and c with the same permutation.",
        )
        assert_close(
            got_t, singular.apply_tanh_symmetry(w, perm, signs),
            what=f"the transformed parameter (H = {H}, perm = {perm}, signs = {signs})", rtol=0, atol=1e-12,
            hint="convention: new a_h = signs[h]·a[perm[h]], new c_h = signs[h]·c[perm[h]], i.e. a[perm] "
                 "(the sign belongs to the NEW position h).",
        )
    return "images exact and L_n invariant"


@exercise_check
def check_rrr_fisher_rank(rrr_fisher_rank) -> str:
    """rank I(w) of reduced-rank regression from (M, N, rank A, rank B), against autograd Jacobians."""
    gen = torch.Generator().manual_seed(202)
    cases = [(3, 3, 2, 2, 1), (3, 3, 2, 1, 1), (3, 3, 2, 1, 2), (3, 3, 2, 0, 2), (4, 2, 3, 3, 2), (2, 5, 3, 1, 2), (1, 1, 1, 1, 0)]
    for M, N, H, ra, rb in cases:
        got = call_student(rrr_fisher_rank, M, N, ra, rb)
        rrr = models.ReducedRankRegression(M, N, H)
        w = singular.random_factors_with_ranks(rrr, ra, rb, gen)
        numeric = int(torch.linalg.matrix_rank(singular.product_map_jacobian(rrr, w)).item())
        if numeric != singular.product_map_rank(M, N, ra, rb):  # pragma: no cover - guards the reference
            raise RuntimeError("reference rank formula disagrees with the Jacobian")
        if got != numeric:
            raise CheckFailure(
                f"rrr_fisher_rank(M={M}, N={N}, rank_A={ra}, rank_B={rb}): got {got!r}, which is "
                f"{too_large_or_small(got, numeric)} for the rank of the Jacobian of (A, B) ↦ BA at a random such "
                f"point (H = {H})."
                "\nHint: the image of (dA, dB) ↦ dB·A + B·dA is a sum of two subspaces: matrices with rows in "
                "row(A), and matrices with columns in col(B). dim(U + V) = dim U + dim V − dim(U ∩ V)."
            )
    return "rank N·rank A + M·rank B − rank A·rank B matches autograd in 7 cases"


@exercise_check
def check_free_energy_gap(free_energy_gap) -> str:
    """(gap, slope): gap = BIC − F_n = (d/2) log n − (F_n − nL_n(w0)); slope = OLS slope of gap on log n."""
    gen = torch.Generator().manual_seed(7)
    for d, lam, mult in [(2, 0.5, 2), (3, 0.5, 3), (2, 1.0, 1)]:
        ns = torch.logspace(1, 6, 9, dtype=torch.float64)
        logn = torch.log(ns)
        F_minus = lam * logn - (mult - 1) * torch.log(logn) + 0.3 * torch.randn(9, generator=gen, dtype=torch.float64)
        nL = 1.4 * ns
        F = nL + F_minus
        got = call_student(free_energy_gap, ns, F, nL, d)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"free_energy_gap should return a tuple (gap, slope), got {got!r:.80}.")
        gap = singular.bic_gap(ns, F - nL, d)
        xc = logn - logn.mean()
        slope = ((xc * (gap - gap.mean())).sum() / (xc * xc).sum()).item()
        # Exact arithmetic on the same inputs: only rounding (F is up to 1.4e6, so ~1e-9 absolute).
        assert_close(got[0], gap, what=f"gap for d = {d}", rtol=1e-9, atol=1e-6,
                     hint="gap = (d/2) log n − (F_n − nL_n(w0)): BIC minus the free energy; use the natural log.")
        assert_close(float(got[1]), slope, what=f"slope of the gap against log n (d = {d})", rtol=1e-8, atol=1e-8,
                     hint="ordinary least squares of the gap on log n (not on n): np.polyfit(log n, gap, 1)[0].")
    return "gap and its slope against log n correct"
