"""Exact learning coefficients (RLCTs) λ and multiplicities m, as ``fractions.Fraction``.

For a potential K(w) ≥ 0 with K(w0) = 0 and a prior φ, (λ, m) is read off the largest pole
z = −λ (of order m) of the zeta function ζ(z) = ∫ K(w)^z φ(w) dw, equivalently from the
volume scaling V(ε) = P_φ(K(w) < ε) ≈ c ε^λ (−log ε)^(m−1) as ε → 0, and it enters the
free energy F_n = nL_n(w0) + λ log n − (m−1) log log n + O_p(1).

Every function returns ``(λ, m)`` with λ a ``Fraction`` and m an ``int``; each docstring
names its source. References:

- Watanabe, *Algebraic Geometry and Statistical Learning Theory* (2009, "grey book").
- Watanabe, *Mathematical Theory of Bayesian Statistics* (2018, "green book").
- Aoyagi & Watanabe (2005), Stochastic complexities of reduced rank regression in Bayesian
  estimation, Neural Networks 18(7):924–933.
- Aoyagi (2024), Consideration on the learning efficiency of multiple-layered neural
  networks with linear units, Neural Networks 172:106132.
- Arnold, Gusein-Zade & Varchenko (1988), *Singularities of Differentiable Maps* vol. II
  (Newton polyhedra and Varchenko's theorem); Lin (2011), *Algebraic methods for
  evaluating integrals in Bayesian statistics*, PhD thesis, UC Berkeley (the real,
  statistical version with monomial priors).
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from slt_course_utils._validate import int_in_range, int_sequence, positive_int

RLCT = tuple[Fraction, int]


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_rlct(name: str, value: RLCT) -> RLCT:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not _is_int(value[1])
        or value[1] < 1
        or Fraction(value[0]) <= 0
    ):
        raise ValueError(f"{name} must be a pair (λ, m) with λ > 0 and an integer m ≥ 1, got {value!r}.")
    return Fraction(value[0]), value[1]


# --- Regular models and normal crossings -------------------------------------------------

def rlct_regular(d: int) -> RLCT:
    """λ = d/2, m = 1 for a regular model with d parameters (Schwarz 1978; grey book ch. 1)."""
    d = positive_int("d (the number of parameters)", d)
    return Fraction(d, 2), 1


def rlct_normal_crossing(k: Sequence[int], h: Sequence[int] | None = None) -> RLCT:
    """K = Π_j w_j^{2k_j}, φ ∝ Π_j |w_j|^{h_j}: λ = min_{k_j>0} (h_j+1)/(2k_j), m = #argmin.

    Source: grey book ch. 6 and green book ch. 6 (the standard form after resolution of
    singularities); ζ(z) factorises into Π_j ∫ |w_j|^{2k_j z + h_j} dw_j, each with a pole at
    z = −(h_j+1)/(2k_j). Coordinates with k_j = 0 do not appear in K and contribute nothing.
    """
    k = list(k)
    h = [0] * len(k) if h is None else list(h)
    if len(h) != len(k):
        raise ValueError(f"k and h must have the same length, got {len(k)} and {len(h)}.")
    if not k:
        raise ValueError("k must contain at least one exponent.")
    for name, seq in (("k", k), ("h", h)):
        if any(not _is_int(x) or x < 0 for x in seq):
            raise ValueError(f"the exponents {name} must be non-negative integers, got {seq!r}.")
    ratios = [Fraction(hj + 1, 2 * kj) for kj, hj in zip(k, h) if kj > 0]
    if not ratios:
        raise ValueError("all k_j are zero, so K ≡ 1 has no zero and no learning coefficient.")
    lam = min(ratios)
    return lam, ratios.count(lam)


def rlct_sum_disjoint(a: RLCT, b: RLCT) -> RLCT:
    """K = f(w_A) + g(w_B) on disjoint variables: λ = λ_f + λ_g, m = m_f + m_g − 1.

    Why: V_{f+g}(ε) = ∫ V_g(ε − u) dV_f(u), and convolving ε^{λ_f}(−log ε)^{m_f−1} with
    ε^{λ_g}(−log ε)^{m_g−1} gives ε^{λ_f+λ_g}(−log ε)^{m_f+m_g−2}·const (Beta integral). See
    e.g. Lin (2011), the proposition on sums of ideals in disjoint sets of variables.
    """
    (la, ma), (lb, mb) = _check_rlct("a", a), _check_rlct("b", b)
    return la + lb, ma + mb - 1


def rlct_homogeneous_radial(d: int, k: int) -> RLCT:
    """K = (Σ_{i=1}^d w_i²)^k with uniform prior: λ = d/(2k), m = 1 (polar coordinates)."""
    d, k = positive_int("d", d), positive_int("k", k)
    return Fraction(d, 2 * k), 1


# --- Newton polygons (two variables) -----------------------------------------------------

def _newton_vertices(points: list[tuple[Fraction, Fraction]]) -> list[tuple[Fraction, Fraction]]:
    """Vertices of Γ₊ = conv(points) + R²₊, sorted by x increasing (y decreasing)."""
    pts = sorted(set(points))
    # Pareto-minimal points: as x increases, y must strictly decrease.
    stair: list[tuple[Fraction, Fraction]] = []
    for p in pts:
        if not stair or p[1] < stair[-1][1]:
            stair.append(p)
    # Lower convex hull (monotone chain); drop points on or above a chord (collinear too).
    hull: list[tuple[Fraction, Fraction]] = []
    for p in stair:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            cross = (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def rlct_newton_polygon(
    monomials: Mapping[tuple[int, int], float] | Iterable[tuple[int, int]],
    h: tuple[int, int] = (0, 0),
) -> RLCT:
    """K(w1, w2) = Σ c_α w^α non-degenerate, φ ∝ |w1|^{h1}|w2|^{h2}: λ = 1/t, t(h1+1, h2+1) ∈ ∂Γ₊.

    Γ₊ = conv{α : c_α ≠ 0} + R²₊ is the Newton polygon of K itself (not of f with K = f²);
    with a uniform prior (h = 0) (t, t) is where the diagonal meets its boundary. m = 2 if
    that point is a vertex of Γ₊ and m = 1 if it lies inside an edge (bounded or not): the
    order of the pole is the number of facets of Γ₊ through the point. Source: Varchenko's
    theorem (Arnold, Gusein-Zade & Varchenko 1988, vol. II); for real K and monomial priors,
    Lin (2011, PhD thesis, the chapter on Newton polyhedra).

    Hypothesis: K is non-degenerate, i.e. for every compact face τ of Γ₊ the face polynomial
    K_τ = Σ_{α∈τ} c_α w^α has no zero with w1·w2 ≠ 0 (for K ≥ 0 a zero is automatically
    singular). Only exponents are used, so this is *not* checked. Without it the polygon gives
    an upper bound, λ ≤ 1/t: near 0, K ≤ C Σ_α |w^α| so {Σ|w^α| < ε/C} ⊂ {K < ε}.

    Example where the hypothesis fails: the cusp K = (w1² − w2³)², exponents (4,0), (2,3),
    (0,6), all on one edge whose face polynomial is K itself, zero on w1 = s³, w2 = s². The
    polygon gives t = 12/5, 1/t = 5/12, m = 1, and this is nevertheless the true value: the
    weighted blow-up w1 = s³a, w2 = s²b (weights (3, 2), Jacobian ∝ s⁴) turns ζ into
    ∫ s^{12z+4} |a² − b³|^{2z}, whose poles are −5/12 (from s, order 1) and −1/2 (from the
    smooth curve a² = b³, which is transversal), so λ = 5/12, m = 1 (= ½·lct(w1² − w2³) =
    ½(1/2 + 1/3)); a quadrature of V(ε) at ε = 1e-24 confirms the slope 5/12 (see
    tests/test_volume.py). Do not rely on the polygon for degenerate K without such a check.

    Conventions: monomials not involving one variable are fine (K = w2² gives Γ₊ = {y ≥ 2},
    the diagonal meets the unbounded edge at (2, 2): λ = 1/2, m = 1, which is right: K does
    not depend on w1). A constant term (exponent (0, 0)) means K(0) ≠ 0: ValueError.
    """
    if isinstance(monomials, Mapping):
        exps = [tuple(a) for a, c in monomials.items() if c != 0]
        if not exps and monomials:
            raise ValueError("all coefficients are zero, so K ≡ 0: give at least one non-zero monomial.")
    else:
        exps = [tuple(a) for a in monomials]
    if not exps:
        raise ValueError("give at least one monomial exponent (a1, a2) of K.")
    for a in exps:
        if len(a) != 2 or not all(_is_int(x) for x in a):
            raise ValueError(f"each exponent must be a pair of integers (a1, a2), got {a!r}.")
        if a[0] < 0 or a[1] < 0:
            raise ValueError(f"exponents must be non-negative (K is a polynomial), got {a!r}.")
        if a == (0, 0):
            raise ValueError("K has a constant term, so K(0) ≠ 0 and the origin is not a zero of K.")
    if len(h) != 2 or not all(_is_int(x) and x >= 0 for x in h):
        raise ValueError(f"h must be a pair of non-negative integers, got {h!r}.")
    # Rescale so that the ray t(h1+1, h2+1) becomes the diagonal (vertices are preserved).
    pts = [(Fraction(a1, h[0] + 1), Fraction(a2, h[1] + 1)) for a1, a2 in exps]
    v = _newton_vertices(pts)
    x0, y0 = v[0]
    if x0 >= y0:  # the diagonal meets the vertical ray {x = x0, y ≥ y0}
        t, on_vertex = x0, x0 == y0
    elif v[-1][1] >= v[-1][0]:  # ... or the horizontal ray {y = y_last, x ≥ x_last}
        t, on_vertex = v[-1][1], v[-1][0] == v[-1][1]
    else:  # ... or the bounded edge from the last vertex below the diagonal to the next one
        i = max(j for j, (x, y) in enumerate(v) if y > x)
        (xa, ya), (xb, yb) = v[i], v[i + 1]
        if xb == yb:
            t, on_vertex = xb, True
        else:  # solve xa + s(xb − xa) = ya + s(yb − ya)
            s = (ya - xa) / ((xb - xa) - (yb - ya))
            t, on_vertex = xa + s * (xb - xa), False
    return 1 / t, 2 if on_vertex else 1


# --- Reduced-rank regression and deep linear networks -----------------------------------

def rlct_reduced_rank_regression(M: int, N: int, H: int, r: int) -> RLCT:
    """y = BAx, A ∈ R^{H×M}, B ∈ R^{N×H}, true rank r: the four cases of Aoyagi & Watanabe (2005).

    Neural Networks 18(7):924–933. Case 1 (N+r ≤ M+H, M+r ≤ N+H, H+r ≤ M+N): with
    s = 2(H+r)(M+N) − (M−N)² − (H+r)², λ = s/8, m = 1 if M+H+N+r is even, else
    λ = (s+1)/8, m = 2. Case 2 (M+H < N+r): λ = (HM − Hr + Nr)/2. Case 3 (N+H < M+r):
    λ = (HN − Hr + Mr)/2. Case 4 (M+N < H+r): λ = MN/2. Cases 2–4 have m = 1.
    """
    M, N, H = positive_int("M", M), positive_int("N", N), positive_int("H", H)
    r = int_in_range("the true rank r (≤ min(M, N, H))", r, 0, min(M, N, H))
    if M + H < N + r:
        return Fraction(H * M - H * r + N * r, 2), 1
    if N + H < M + r:
        return Fraction(H * N - H * r + M * r, 2), 1
    if M + N < H + r:
        return Fraction(M * N, 2), 1
    s = 2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2
    if (M + H + N + r) % 2 == 0:
        return Fraction(s, 8), 1
    return Fraction(s + 1, 8), 2


def _dln_sigma_ok(Ms: Sequence[int], sigma: Sequence[int]) -> bool:
    """Conditions (i)–(iii) of Aoyagi (2024), Theorem 1, for the index set ``sigma``."""
    inside = [Ms[i] for i in sigma]
    outside = [Ms[i] for i in range(len(Ms)) if i not in sigma]
    ell, total = len(sigma) - 1, sum(inside)
    if ell < 1:
        return False
    if outside and not max(inside) < min(outside):  # (i)
        return False
    if not total >= ell * max(inside):  # (ii)
        return False
    return not outside or total < ell * min(outside)  # (iii)


def dln_sigma(widths: Sequence[int], true_rank: int) -> tuple[int, ...]:
    """The index set Σ of Aoyagi (2024), Theorem 1 (0-based indices into ``widths``).

    With M_s = H_s − r sorted increasingly, (i) forces Σ to be the ℓ+1 smallest M's with no
    tie cut across its boundary; we test every such prefix. (Σ is unique: with
    g(k) = Σ_{i≤k} M_(i) − (k−1)M_(k), non-increasing in k, (ii) is g(ℓ+1) ≥ 0 and (iii) is
    g(ℓ+2) < 0.)
    """
    widths = _check_widths(widths, true_rank)
    Ms = [w - true_rank for w in widths]
    order = sorted(range(len(Ms)), key=lambda i: Ms[i])
    found = [tuple(sorted(order[:k])) for k in range(2, len(Ms) + 1) if _dln_sigma_ok(Ms, order[:k])]
    if len(found) != 1:  # cannot happen by the monotonicity argument above
        raise RuntimeError(f"expected exactly one index set Σ, found {found} for widths {list(widths)}.")
    return found[0]


def _check_widths(widths: Sequence[int], true_rank: int) -> list[int]:
    # Read an iterator once; callers use the returned list. Floats are refused, not truncated.
    widths = int_sequence("widths (input … output sizes, L ≥ 1 layers)", widths, low=1, min_len=2)
    int_in_range("the true rank", true_rank, 0, min(widths))
    return widths


def rlct_deep_linear_network(widths: Sequence[int], true_rank: int) -> RLCT:
    """f(x) = W_L⋯W_1 x, widths H_1 (input) … H_{L+1} (output): Aoyagi (2024), Theorem 1.

    Neural Networks 172:106132. With M_s = H_s − r, Σ from ``dln_sigma`` (|Σ| = ℓ+1),
    S = Σ_Σ M, M̄ = ⌈S/ℓ⌉, a = S − (M̄−1)ℓ:
    λ = (−r² + r(H_1 + H_{L+1}))/2 + a(ℓ−a)/(4ℓ) − (ℓ(ℓ−1)/4)(S/ℓ)² + ½ Σ_{i<j∈Σ} M_i M_j,
    m = a(ℓ−a) + 1. For L = 2 this is ``rlct_reduced_rank_regression`` (widths [M, H, N]).
    For L = 1 (one matrix) Σ = {1, 2}, ℓ = 1, a = 1 and the formula reduces to H_1H_2/2,
    m = 1: the regular value, as it must be (W ↦ W x is identifiable).
    """
    widths = _check_widths(widths, true_rank)
    r = int(true_rank)
    Ms = [w - r for w in widths]
    sigma = dln_sigma(widths, r)
    ell = len(sigma) - 1
    S = sum(Ms[i] for i in sigma)
    m_bar = -(-S // ell)  # ⌈S/ℓ⌉
    a = S - (m_bar - 1) * ell
    pairs = sum(Ms[i] * Ms[j] for i, j in itertools.combinations(sigma, 2))
    lam = (
        Fraction(-r * r + r * (widths[0] + widths[-1]), 2)
        + Fraction(a * (ell - a), 4 * ell)
        - Fraction(ell * (ell - 1), 4) * Fraction(S, ell) ** 2
        + Fraction(pairs, 2)
    )
    return lam, a * (ell - a) + 1


def num_parameters_deep_linear_network(widths: Sequence[int]) -> int:
    """d = Σ_{s=1}^{L} H_s H_{s+1}, the number of weights of a bias-free deep linear network."""
    widths = int_sequence("widths", widths, low=1, min_len=2)
    return sum(a * b for a, b in itertools.pairwise(widths))


# --- Tables from the literature, for notebooks and tests --------------------------------

#: (M, N, H, r) → (λ, m) for reduced-rank regression (Aoyagi & Watanabe 2005).
REDUCED_RANK_EXAMPLES: dict[tuple[int, int, int, int], RLCT] = {
    (3, 3, 2, 1): (Fraction(7, 2), 2),
    (3, 3, 2, 0): (Fraction(5, 2), 1),
    (5, 5, 3, 0): (Fraction(13, 2), 2),
    (5, 5, 4, 0): (Fraction(8), 1),
    (4, 8, 3, 0): (Fraction(6), 1),
    (8, 4, 3, 0): (Fraction(6), 1),
    (3, 4, 8, 0): (Fraction(6), 1),
    (1, 1, 1, 0): (Fraction(1, 2), 2),
    (1, 1, 1, 1): (Fraction(1, 2), 1),
    # r > 0 in each of the four cases, worked by hand from the formulas (docstring above):
    (4, 4, 2, 1): (Fraction(5), 2),  # case 1, M+H+N+r = 11 odd: s = 2·3·8 − 0 − 9 = 39, (s+1)/8
    (4, 3, 2, 1): (Fraction(4), 1),  # case 1, even: s = 2·3·7 − 1 − 9 = 32, s/8
    (2, 6, 3, 1): (Fraction(9, 2), 1),  # case 2 (M+H = 5 < N+r = 7): (6 − 3 + 6)/2
    (6, 2, 3, 1): (Fraction(9, 2), 1),  # case 3 (N+H = 5 < M+r = 7): (6 − 3 + 6)/2
    (2, 2, 5, 1): (Fraction(2), 1),  # case 4 (M+N = 4 < H+r = 6): MN/2
    (5, 3, 2, 2): (Fraction(6), 1),  # case 3 at full rank r = H: H(M+N−H)/2, the regular count
}

#: (widths, true rank) → (λ, m) for deep linear networks (Aoyagi 2024, Theorem 1).
DEEP_LINEAR_EXAMPLES: dict[tuple[tuple[int, ...], int], RLCT] = {
    ((1, 1, 1, 1), 0): (Fraction(1, 2), 3),
    ((2, 2, 2, 2, 2), 0): (Fraction(3, 2), 5),
    ((3, 2, 2, 3), 0): (Fraction(2), 3),
    ((5, 5, 5, 5), 0): (Fraction(17, 2), 3),
    ((5, 5, 5, 5), 2): (Fraction(11), 1),
    ((5, 5, 5, 5), 5): (Fraction(25, 2), 1),
    ((4, 3, 5, 2), 1): (Fraction(7, 2), 1),
}

#: Simple models of the notebooks (σ = 1 noise, x ~ N(0, 1)): key → (λ, m, where it comes from).
SIMPLE_MODEL_RLCTS: dict[str, tuple[Fraction, int, str]] = {
    "tanh_at_zero": (
        Fraction(1, 2), 2,
        "y = a·tanh(bx) + ε, truth a = b = 0: K = (a²/2)E[tanh²(bx)] = a²b²·u(b), u(0) > 0, "
        "a normal crossing a²b² (grey book ch. 6; rlct_normal_crossing([1, 1])).",
    ),
    "tanh_regular": (
        Fraction(1), 1,
        "y = a·tanh(bx) + ε, truth a0·b0 ≠ 0: identifiable with positive definite Fisher "
        "information, regular with d = 2 (rlct_regular(2)).",
    ),
    "abc_product": (
        Fraction(1, 2), 3,
        "y = abc·x + ε, truth 0: K = (abc)²/2, normal crossing a²b²c² (rlct_normal_crossing([1, 1, 1])).",
    ),
    "a_squared": (
        Fraction(1, 4), 1,
        "y = a²x + ε, truth 0: K = a⁴/2, normal crossing a⁴ (rlct_normal_crossing([2])).",
    ),
    "mixture_weight_location": (
        Fraction(1, 2), 2,
        "(1−a)N(0,1) + aN(b,1), a ∈ [0,1], truth N(0,1): K ≍ χ² = a²(e^{b²} − 1) = a²b²·u(b), "
        "a normal crossing a²b² (grey book ch. 7 mixture examples; restricting to a ≥ 0 keeps λ, m).",
    ),
    "symmetric_mixture": (
        Fraction(1, 4), 1,
        "½N(b,1) + ½N(−b,1), truth b = 0: p/q − 1 = e^{−b²/2}cosh(bx) − 1 = b²(x² − 1)/2 + O(b⁴), "
        "so K ≍ b⁴ (rlct_normal_crossing([2])).",
    ),
}



def zeta_of_volume(lam: float, m: int, z: float) -> float:
    """ζ(z) = ∫₀¹ ε^z dV(ε) for V(ε) = ε^λ (−log ε)^{m−1} on (0, 1], Re z > −λ (the Mellin link).

    With ε = e^{−s}: ζ(z) = ∫₀^∞ e^{−zs}(−dV/ds) ds = λ(m−1)!/(z+λ)^m − (m−1)!/(z+λ)^{m−1} (the second
    term only for m ≥ 2): a pole of order m at z = −λ, with leading coefficient λ(m−1)!.
    """
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be an integer ≥ 1, got {m!r}.")
    if not lam > 0:
        raise ValueError(f"lam must be positive, got {lam!r}.")
    if not z > -lam:
        raise ValueError(f"ζ(z) converges only for z > −λ = {-lam}; got z = {z!r}.")
    import math

    value = lam * math.factorial(m - 1) / (z + lam) ** m
    if m >= 2:
        value -= math.factorial(m - 1) / (z + lam) ** (m - 1)
    return value


def free_energy_leading_terms(lam: float, m: int, c: float, n: float) -> float:
    """−log Z_n to leading order for Z_n = ∫₀¹ e^{−nε} dV(ε), V = c ε^λ (−log ε)^{m−1}: the Laplace step.

    Z_n ≈ c Γ(λ+1) n^{−λ} (log n)^{m−1}, so F_n − nL_n(w₀) ≈ λ log n − (m−1) log log n − log(c Γ(λ+1)).
    """
    import math

    if not (lam > 0 and c > 0 and n > 1):
        raise ValueError(f"need lam > 0, c > 0 and n > 1; got lam = {lam!r}, c = {c!r}, n = {n!r}.")
    return lam * math.log(n) - (m - 1) * math.log(math.log(n)) - math.log(c * math.gamma(lam + 1))
