"""Checks for chapter 02, singular models (solutions/02_singular_models.ipynb)."""

from __future__ import annotations

import math

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
        # Reference: a trapezoid rule over x whose error is far below 1e-10. Gauss–Hermite converges slowly
        # here (tanh has poles at ±iπ/2b): measured max error at (−0.7, 2.0) is 1.5e-5 with the 100 nodes of
        # models.gauss_hermite_normal() and 4.9e-4 with 50. rtol = atol = 1e-4 accepts 100 nodes with a 6×
        # margin and the trapezoid rule by far; every wrong formula we tried is off by > 1e-2.
        assert_close(
            got, fisher.fisher_tanh(a, b), what=f"Fisher information at (a, b) = ({a}, {b})", rtol=1e-4, atol=1e-4,
            hint="the score is (y − a tanh(bx))·(tanh(bx), a·x·sech²(bx)); I = E_x[∇f ∇fᵀ] with ∇f = "
                 "(tanh(bx), a·x·sech²(bx)). Note the x in ∂/∂b, and that it is E over x ~ N(0, 1).",
        )
    return "I(a, b) correct at 6 points, including the degenerate ones"


# Points and their Fisher ranks for y = a·tanh(bx): rank 2 off the axes (however close), 1 on one axis, 0 at 0.
RANK_POINTS = [((0.0, 0.0), 0), ((0.0, 1.0), 1), ((0.0, -2.0), 1), ((1.5, 0.0), 1), ((-0.3, 0.0), 1),
               ((1.0, 1.0), 2), ((-1.0, 0.5), 2), ((0.05, 0.05), 2), ((0.0, 0.05), 1)]


def _rotated(scale: float, angle: float):
    """(a, b) ↦ scale · Q I(a, b) Qᵀ with Q the rotation by ``angle``: same rank as I(a, b), other entries."""
    c, s = torch.cos(torch.tensor(angle, dtype=torch.float64)), torch.sin(torch.tensor(angle, dtype=torch.float64))
    Q = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
    return lambda a, b: scale * (Q @ fisher.fisher_tanh(a, b) @ Q.T)


@exercise_check
def check_rank_along(rank_along) -> str:
    """Fisher rank of y = a·tanh(bx) at points on and off the cross W0 = {ab = 0}, also for c·Q I Qᵀ."""
    points = torch.tensor([p for p, _ in RANK_POINTS], dtype=torch.float64)
    # Rank is invariant under I ↦ c·Q I Qᵀ. The rescaled and rotated copies defeat the two shortcuts the
    # analytic I allows: an absolute eigenvalue cut-off (at c = 1e-12 every eigenvalue is below 1e-11) and
    # counting non-zero eigenvalues or diagonal entries (after a rotation the zero eigenvalue is rounding noise
    # of either sign, ~1e-17 of the largest, and the diagonal is full). At (0.05, 0.05) the small eigenvalue is
    # 4e-6 of the largest, far above the 1e-8 rule and far above rounding, so every case is decisive.
    cases = [("I(a, b)", fisher.fisher_tanh), ("1e-12 · Q I Qᵀ (Q a rotation by 0.7)", _rotated(1e-12, 0.7)),
             ("1e8 · Q I Qᵀ (Q a rotation by 2.1)", _rotated(1e8, 2.1)), ("Q I Qᵀ (Q a rotation by π/4)", _rotated(1.0, math.pi / 4))]
    # And matrices that are not the tanh Fisher at all: s·Q diag(1, r) Qᵀ, whose rank under the 1e-8 rule is
    # 2 for r = 1e-6 and 1 for r = 1e-10 (two decades either side of the rule), 0 for s = 0. A function that
    # ignores `fisher` and recomputes I(a, b) itself gets these wrong.
    synthetic = [(0.0, 1.0, 0), (1e-12, 1e-6, 2), (1e5, 1e-10, 1), (1.0, 1e-10, 1), (3e-9, 1e-6, 2), (1.0, 1.0, 2),
                 (1e-14, 1e-10, 1), (2.0, 1e-6, 2), (1e-3, 0.0, 1)]
    table = {tuple(p): (sc, r) for (p, _), (sc, r, _) in zip(RANK_POINTS, synthetic)}
    rot = _rotated(1.0, 0.3)(1.0, 1.0)  # any fixed rotation will do: take Q from a symmetric eigendecomposition
    Q = torch.linalg.eigh(rot)[1]

    def synthetic_fn(a: float, b: float) -> torch.Tensor:
        sc, r = table[(a, b)]
        return sc * (Q @ torch.diag(torch.tensor([1.0, r], dtype=torch.float64)) @ Q.T)

    cases.append(("a matrix s·Q diag(1, r) Qᵀ that is not a tanh Fisher", synthetic_fn))
    for label, fisher_fn in cases:
        expected = [r for _, r in RANK_POINTS] if fisher_fn is not synthetic_fn else [k for _, _, k in synthetic]
        got = call_student(rank_along, points.clone(), fisher_fn)
        try:
            got_list = [int(v) for v in torch.as_tensor(got).reshape(-1).tolist()]
        except (TypeError, ValueError) as err:
            raise CheckFailure(f"rank_along should return one integer rank per point, got {got!r:.80}.") from err
        if len(got_list) != len(expected):
            raise CheckFailure(f"rank_along should return {len(expected)} ranks (one per row of points), got {len(got_list)}.")
        bad = [(tuple(p), e, g) for (p, _), e, g in zip(RANK_POINTS, expected, got_list) if e != g]
        if bad:
            (p, e, g) = bad[0]
            raise CheckFailure(
                f"with fisher(a, b) = {label}: {len(bad)} of {len(expected)} ranks wrong; e.g. at (a, b) = {p} "
                f"your rank {g} is wrong (it should be {'higher' if e > g else 'lower'}). Rank does not change when a matrix is rescaled or rotated."
                "\nHint: use the `fisher` you are given, and count eigenvalues above a RELATIVE threshold, "
                "1e-8 × (largest eigenvalue) — not above a fixed number, and not merely non-zero ones."
            )
    return "ranks 0 at the crossing, 1 on the arms, 2 off the set — also for rescaled and rotated matrices"


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
