"""Exact learning coefficients reproduce every table of shared/GROUND_TRUTHS.md."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction as F

import pytest

from slt_course_utils import theory
from slt_course_utils.theory import (
    DEEP_LINEAR_EXAMPLES,
    REDUCED_RANK_EXAMPLES,
    SIMPLE_MODEL_RLCTS,
    _dln_sigma_ok,
    dln_sigma,
    num_parameters_deep_linear_network,
    rlct_deep_linear_network,
    rlct_homogeneous_radial,
    rlct_newton_polygon,
    rlct_normal_crossing,
    rlct_reduced_rank_regression,
    rlct_regular,
    rlct_sum_disjoint,
)

# --- Regular models ----------------------------------------------------------------------


def test_regular():
    assert rlct_regular(1) == (F(1, 2), 1)  # Gaussian mean
    assert rlct_regular(5) == (F(5, 2), 1)  # linear regression, x ∈ R^5, no bias


# --- Normal crossings --------------------------------------------------------------------

NORMAL_CROSSING_TABLE = [  # (k, h, λ, m): K = Π w_j^{2k_j}, φ ∝ Π |w_j|^{h_j}
    ((1, 1), None, F(1, 2), 2),
    ((2,), None, F(1, 4), 1),
    ((1, 2), None, F(1, 4), 1),
    ((1, 1, 1), None, F(1, 2), 3),
    ((2, 3), None, F(1, 6), 1),
    ((1,), (1,), F(1), 1),
    ((2, 1), (1, 0), F(1, 2), 2),
    ((1, 1), (1, 1), F(1), 2),
    ((4, 1), (6, 3), F(7, 8), 1),
]


@pytest.mark.parametrize("k, h, lam, m", NORMAL_CROSSING_TABLE)
def test_normal_crossing_table(k, h, lam, m):
    assert rlct_normal_crossing(k, h) == (lam, m)


def test_normal_crossing_ignores_absent_coordinates():
    assert rlct_normal_crossing([1, 0, 0]) == (F(1, 2), 1)


@pytest.mark.parametrize(
    "k, h, match",
    [
        ([1, -1], None, "non-negative"),
        ([1, 1], [0, -2], "non-negative"),
        ([0, 0], None, "K ≡ 1"),
        ([1, 1], [0], "same length"),
        ([], None, "at least one"),
        ([1.5], None, "non-negative integers"),
    ],
)
def test_normal_crossing_bad_input(k, h, match):
    with pytest.raises(ValueError, match=match):
        rlct_normal_crossing(k, h)


# --- Other polynomials -------------------------------------------------------------------

NC = rlct_normal_crossing


def test_other_polynomials_table():
    # (w1² + w2²)²: radial with d = 2, k = 2, and by its Newton polygon ((2,2) is inside an edge).
    assert rlct_homogeneous_radial(2, 2) == (F(1, 2), 1)
    assert rlct_newton_polygon({(4, 0): 1, (2, 2): 2, (0, 4): 1}) == (F(1, 2), 1)
    # w1² + w2⁴: disjoint sum 1/2 + 1/4, and Newton polygon.
    assert rlct_sum_disjoint(NC([1]), NC([2])) == (F(3, 4), 1)
    assert rlct_newton_polygon({(2, 0): 1, (0, 4): 1}) == (F(3, 4), 1)
    # w1⁴ + w2⁶: 1/4 + 1/6.
    assert rlct_sum_disjoint(NC([2]), NC([3])) == (F(5, 12), 1)
    assert rlct_newton_polygon([(4, 0), (0, 6)]) == (F(5, 12), 1)
    # (w1 w2)² + w3²: (1/2, 2) ⊕ (1/2, 1).
    assert rlct_sum_disjoint(NC([1, 1]), NC([1])) == (F(1), 2)
    # Cusp (w1² − w2³)² = w1⁴ − 2w1²w2³ + w2⁶: degenerate, but the polygon value is the true
    # one, 5/12 with m = 1 (weighted blow-up, see the docstring of rlct_newton_polygon).
    assert rlct_newton_polygon({(4, 0): 1, (2, 3): -2, (0, 6): 1}) == (F(5, 12), 1)
    # a²(b² + c²): polar coordinates (b, c) = ρ(cos θ, sin θ), db dc = ρ dρ dθ, give
    # K = a²ρ² with prior ∝ |ρ|¹: normal crossing k = (1, 1), h = (0, 1).
    assert NC([1, 1], [0, 1]) == (F(1, 2), 1)


def test_radial_matches_regular():
    for d in range(1, 6):
        assert rlct_homogeneous_radial(d, 1) == rlct_regular(d)


def test_newton_polygon_vertex_and_edge_multiplicity():
    assert rlct_newton_polygon([(2, 2)]) == (F(1, 2), 2)  # vertex
    assert rlct_newton_polygon([(2, 2), (6, 0), (0, 6)]) == (F(1, 2), 2)  # (2,2) still a vertex
    assert rlct_newton_polygon([(2, 2), (3, 0)]) == (F(1, 2), 2)  # vertex with a vertical ray
    assert rlct_newton_polygon([(2, 0), (0, 2)]) == (F(1), 1)  # regular, inside an edge
    assert rlct_newton_polygon([(0, 2)]) == (F(1, 2), 1)  # K = w2²: unbounded horizontal edge
    assert rlct_newton_polygon([(2, 0)]) == (F(1, 2), 1)  # K = w1²: unbounded vertical edge
    assert rlct_newton_polygon([(2, 4), (4, 2)]) == (F(1, 3), 1)  # edge through (3, 3)
    # Dominated monomials do not change Γ₊.
    assert rlct_newton_polygon([(2, 0), (0, 4), (4, 4), (2, 4)]) == (F(3, 4), 1)


def test_newton_polygon_matches_normal_crossing_for_monomials():
    for k1, k2, h1, h2 in itertools.product(range(4), range(4), range(3), range(3)):
        if k1 == k2 == 0:
            continue
        got = rlct_newton_polygon([(2 * k1, 2 * k2)], h=(h1, h2))
        assert got == rlct_normal_crossing([k1, k2], [h1, h2]), (k1, k2, h1, h2)


def _brute_newton_distance(points):
    """t = min over conv(points) of max(x, y), from all vertices and segment crossings."""
    best = F(min(max(p) for p in points))
    for (xa, ya), (xb, yb) in itertools.combinations(points, 2):
        da, db = xa - ya, xb - yb
        if da * db < 0:
            s = F(da, da - db)
            best = min(best, xa + s * (xb - xa))
    return best


def test_newton_polygon_distance_random():
    rng = random.Random(0)
    for _ in range(300):
        pts = {(rng.randrange(9), rng.randrange(9)) for _ in range(rng.randrange(1, 6))} - {(0, 0)}
        if not pts:
            continue
        lam, _ = rlct_newton_polygon(pts)
        assert lam == 1 / _brute_newton_distance(list(pts)), pts


@pytest.mark.parametrize(
    "monomials, match",
    [
        ([], "at least one"),
        ({(2, 0): 0.0}, "all coefficients are zero"),
        ([(-1, 2)], "non-negative"),
        ([(2, 0), (0, 0)], "constant term"),
        ([(1, 2, 3)], "pair of integers"),
        ([(1.0, 2)], "pair of integers"),
    ],
)
def test_newton_polygon_bad_input(monomials, match):
    with pytest.raises(ValueError, match=match):
        rlct_newton_polygon(monomials)


def test_combination_helpers_bad_input():
    with pytest.raises(ValueError, match="λ > 0"):
        rlct_sum_disjoint((F(1, 2), 0), (F(1, 2), 1))
    with pytest.raises(ValueError, match="positive integer"):
        rlct_homogeneous_radial(0, 1)
    with pytest.raises(ValueError, match="positive integer"):
        rlct_homogeneous_radial(2, 0)
    with pytest.raises(ValueError, match="positive integer"):
        rlct_regular(0)


# --- Reduced-rank regression -------------------------------------------------------------

RRR_TABLE = {  # (M, N, H, r): (λ, m), literally from GROUND_TRUTHS
    (3, 3, 2, 1): (F(7, 2), 2),
    (3, 3, 2, 0): (F(5, 2), 1),
    (5, 5, 3, 0): (F(13, 2), 2),
    (5, 5, 4, 0): (F(8), 1),
    (4, 8, 3, 0): (F(6), 1),
    (8, 4, 3, 0): (F(6), 1),
    (3, 4, 8, 0): (F(6), 1),
    (1, 1, 1, 0): (F(1, 2), 2),
    (1, 1, 1, 1): (F(1, 2), 1),
    # r > 0 in each of Aoyagi & Watanabe's four cases, computed by hand from the formulas of
    # GROUND_TRUTHS (not from the code): see the comments in theory.REDUCED_RANK_EXAMPLES.
    (4, 4, 2, 1): (F(5), 2),
    (4, 3, 2, 1): (F(4), 1),
    (2, 6, 3, 1): (F(9, 2), 1),
    (6, 2, 3, 1): (F(9, 2), 1),
    (2, 2, 5, 1): (F(2), 1),
    (5, 3, 2, 2): (F(6), 1),
}


def _rrr_case(M, N, H, r):
    if M + H < N + r:
        return 2
    if N + H < M + r:
        return 3
    if M + N < H + r:
        return 4
    return 1


def test_reduced_rank_table_has_a_positive_rank_entry_in_every_case():
    cases = {_rrr_case(*key) for key in RRR_TABLE if key[3] > 0}
    assert cases == {1, 2, 3, 4}
    # case 1 with both parities of M + H + N + r (m = 1 and m = 2)
    assert {RRR_TABLE[k][1] for k in RRR_TABLE if k[3] > 0 and _rrr_case(*k) == 1} == {1, 2}


def test_reduced_rank_at_full_rank_is_the_regular_count():
    """Truth of rank r = H ≤ min(M, N): the true set {BA = C0} is a manifold of dimension H²
    (the GL(H) orbit), transversal to a regular model of dimension H(M+N) − H²; so λ = H(M+N−H)/2,
    m = 1, independently of Aoyagi–Watanabe's case split (cases 1–3 all occur below)."""
    seen = set()
    for M, N, H in itertools.product(range(1, 8), repeat=3):
        if H <= min(M, N):
            assert rlct_reduced_rank_regression(M, N, H, H) == (F(H * (M + N - H), 2), 1), (M, N, H)
            seen.add(_rrr_case(M, N, H, H))
    assert seen == {1, 2, 3}


def test_reduced_rank_with_a_huge_hidden_layer_is_regular_in_the_product():
    """H > M + N − r puts every true rank in case 4, λ = MN/2: the count of the product BA's entries,
    reached (never exceeded: λ ≤ MN/2 since K depends on w only through the N × M matrix BA)."""
    for M, N in itertools.product(range(1, 5), repeat=2):
        for r in range(min(M, N) + 1):
            assert rlct_reduced_rank_regression(M, N, M + N + 1, r) == (F(M * N, 2), 1), (M, N, r)


def test_reduced_rank_table():
    assert REDUCED_RANK_EXAMPLES == RRR_TABLE
    for (M, N, H, r), expected in RRR_TABLE.items():
        assert rlct_reduced_rank_regression(M, N, H, r) == expected, (M, N, H, r)


@pytest.mark.parametrize(
    "args, match",
    [((0, 1, 1, 0), "M must be"), ((1, 0, 1, 0), "N must be"), ((1, 1, 0, 0), "H must be"),
     ((2, 3, 2, 3), "true rank"), ((2, 2, 2, -1), "true rank")],
)
def test_reduced_rank_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        rlct_reduced_rank_regression(*args)


# --- Deep linear networks ----------------------------------------------------------------

DLN_TABLE = {  # (widths, r): (λ, m), literally from GROUND_TRUTHS
    ((1, 1, 1, 1), 0): (F(1, 2), 3),
    ((2, 2, 2, 2, 2), 0): (F(3, 2), 5),
    ((3, 2, 2, 3), 0): (F(2), 3),
    ((5, 5, 5, 5), 0): (F(17, 2), 3),
    ((5, 5, 5, 5), 2): (F(11), 1),
    ((5, 5, 5, 5), 5): (F(25, 2), 1),
    ((4, 3, 5, 2), 1): (F(7, 2), 1),
}


def test_deep_linear_table():
    assert DEEP_LINEAR_EXAMPLES == DLN_TABLE
    for (widths, r), expected in DLN_TABLE.items():
        assert rlct_deep_linear_network(widths, r) == expected, (widths, r)


def test_deep_linear_two_layers_equals_reduced_rank():
    """Widths [M, H, N] (input M, hidden H, output N) ↔ RRR(M, N, H, r): value and multiplicity."""
    count = 0
    for M, N, H in itertools.product(range(1, 8), repeat=3):
        for r in range(min(M, N, H) + 1):
            assert rlct_deep_linear_network([M, H, N], r) == rlct_reduced_rank_regression(M, N, H, r), (M, N, H, r)
            count += 1
    assert count > 1000


def test_deep_linear_one_layer_is_regular():
    for h1, h2 in itertools.product(range(1, 7), repeat=2):
        for r in range(min(h1, h2) + 1):
            assert rlct_deep_linear_network([h1, h2], r) == (F(h1 * h2, 2), 1)


def test_dln_sigma_is_the_unique_subset_satisfying_i_to_iii():
    """Brute force over *all* subsets of size ≥ 2, ties included (values in 0..4 force many)."""
    rng = random.Random(1)
    for _ in range(400):
        widths = [rng.randint(1, 5) for _ in range(rng.randint(2, 6))]
        r = rng.randint(0, min(widths))
        Ms = [w - r for w in widths]
        subsets = [
            s for k in range(2, len(Ms) + 1) for s in itertools.combinations(range(len(Ms)), k)
            if _dln_sigma_ok(Ms, s)
        ]
        assert subsets == [dln_sigma(widths, r)], (widths, r)


def test_deep_linear_symmetric_under_transpose():
    rng = random.Random(2)
    for _ in range(200):
        widths = [rng.randint(1, 7) for _ in range(rng.randint(2, 6))]
        r = rng.randint(0, min(widths))
        assert rlct_deep_linear_network(widths, r) == rlct_deep_linear_network(widths[::-1], r)


def test_rlct_at_most_half_the_dimension():
    """λ ≤ d/2 (K ≤ C|w − w0|² near w0, so V(ε) ≥ c ε^{d/2}); and λ > 0."""
    rng = random.Random(3)
    for _ in range(300):
        M, N, H = (rng.randint(1, 9) for _ in range(3))
        r = rng.randint(0, min(M, N, H))
        lam, m = rlct_reduced_rank_regression(M, N, H, r)
        assert 0 < lam <= F(H * (M + N), 2) and m in (1, 2)
    for _ in range(300):
        widths = [rng.randint(1, 8) for _ in range(rng.randint(2, 7))]
        r = rng.randint(0, min(widths))
        lam, m = rlct_deep_linear_network(widths, r)
        assert 0 < lam <= F(num_parameters_deep_linear_network(widths), 2) and m >= 1


def test_deep_linear_rlct_increases_with_true_rank():
    """More true rank = fewer degenerate directions: λ is non-decreasing in r (on these widths)."""
    for widths in ([5, 5, 5, 5], [4, 3, 5, 2], [2, 6, 3, 4, 2]):
        lams = [rlct_deep_linear_network(widths, r)[0] for r in range(min(widths) + 1)]
        assert lams == sorted(lams)


@pytest.mark.parametrize(
    "widths, r, match",
    [([3], 0, "at least 2 entries"), ([3, 0, 2], 0, "integers ≥ 1"),
     ([3, 2.0, 2], 0, "must be integers"), ([3, 2, 4], 3, "true rank"), ([3, 2, 4], -1, "true rank")],
)
def test_deep_linear_bad_input(widths, r, match):
    with pytest.raises(ValueError, match=match):
        rlct_deep_linear_network(widths, r)


# --- Simple models for the notebooks -----------------------------------------------------


def test_simple_models_table():
    expected = {
        "tanh_at_zero": (F(1, 2), 2),
        "tanh_regular": (F(1), 1),
        "abc_product": (F(1, 2), 3),
        "a_squared": (F(1, 4), 1),
        "mixture_weight_location": (F(1, 2), 2),
        "symmetric_mixture": (F(1, 4), 1),
    }
    assert {key: v[:2] for key, v in SIMPLE_MODEL_RLCTS.items()} == expected
    assert all(isinstance(v[2], str) and v[2] for v in SIMPLE_MODEL_RLCTS.values())
    # ... and each agrees with the helper its source string names.
    assert NC([1, 1]) == expected["tanh_at_zero"] == expected["mixture_weight_location"]
    assert rlct_regular(2) == expected["tanh_regular"]
    assert NC([1, 1, 1]) == expected["abc_product"]
    assert NC([2]) == expected["a_squared"] == expected["symmetric_mixture"]


def test_numpy_integers_accepted():
    np = pytest.importorskip("numpy")
    assert rlct_reduced_rank_regression(*np.array([3, 3, 2, 1])) == (F(7, 2), 2)
    assert rlct_deep_linear_network(np.array([5, 5, 5, 5]), np.int64(2)) == (F(11), 1)


@pytest.mark.parametrize(("lam", "m", "z"), [(0.5, 1, 0.3), (0.5, 2, -0.2), (0.25, 3, 1.0), (1.5, 2, -1.0)])
def test_zeta_of_volume_is_the_mellin_transform(lam, m, z):
    """ζ(z) = ∫₀^∞ e^{−zs}(−dV/ds) ds for V = e^{−λs}s^{m−1}, by the trapezoid rule (step 2e-4: error < 1e-7)."""
    import numpy as np

    s = np.linspace(0, 400, 2_000_001)
    dV = -np.gradient(np.exp(-lam * s) * s ** (m - 1), s)
    assert theory.zeta_of_volume(lam, m, z) == pytest.approx(np.trapezoid(np.exp(-z * s) * dV, s), rel=1e-7)
    with pytest.raises(ValueError, match="converges only"):
        theory.zeta_of_volume(lam, m, -lam - 0.1)


@pytest.mark.parametrize("m", [1, 2])
def test_free_energy_leading_terms_is_the_laplace_asymptotics(m):
    """−log ∫ e^{−nε} dV against λ log n − (m−1) log log n − log Γ(λ+1): exact for m = 1, O(1/log n) for m = 2."""
    import numpy as np

    s = np.linspace(0, 400, 2_000_001)
    dV = -np.gradient(np.exp(-0.5 * s) * s ** (m - 1), s)
    for n in (1e3, 1e12):
        F_quad = -math.log(np.trapezoid(np.exp(-n * np.exp(-s)) * dV, s))
        tol = 1e-6 if m == 1 else 1.0 / math.log(n)  # the O(1/log n) correction, bounded by 1/log n here
        assert theory.free_energy_leading_terms(0.5, m, 1.0, n) == pytest.approx(F_quad, abs=tol)
