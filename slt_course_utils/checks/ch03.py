"""Checks for chapter 03, the learning coefficient (solutions/03_learning_coefficient.ipynb)."""

from __future__ import annotations

import numbers
import random
from fractions import Fraction

import numpy as np
import torch

from slt_course_utils import theory, volume
from slt_course_utils.checks._core import (
    CheckFailure,
    assert_close,
    call_student,
    exercise_check,
    too_large_or_small,
)


def _k_values(seed: int, n: int) -> torch.Tensor:
    """K(w) = w1² w2⁴ at w ~ U([−1, 1]²): a realistic, heavy-at-zero sample of potential values."""
    w = volume.uniform_prior_sampler(2)(n, torch.Generator().manual_seed(seed))
    return w[:, 0] ** 2 * w[:, 1] ** 4


def _exact_fraction(value, what: str, hint: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, numbers.Rational):
        raise CheckFailure(
            f"{what}: expected an exact fractions.Fraction (or int), got {type(value).__name__} {value!r:.40}."
            f"\nHint: {hint}"
        )
    return Fraction(value)


@exercise_check
def check_volume_fraction(volume_fraction) -> str:
    """V̂(ε) = #{i : K_i < ε}/N for every ε, shape (E,)."""
    for seed, n in [(0, 1000), (1, 100_000)]:
        k = _k_values(seed, n)
        eps = torch.logspace(-8, -0.5, 12, dtype=torch.float64)
        got = call_student(volume_fraction, k, eps)
        expected = volume.volume_curve(k, eps).volume
        # Counting is exact: the only tolerance is float round-off in the division by N.
        assert_close(
            got, expected, what=f"V̂(ε) at 12 values of ε from N = {n} draws", rtol=1e-12, atol=1e-12,
            hint="compare every K value with every ε, (K_values[None, :] < eps[:, None]), and average over "
                 "the draws (axis 1): a FRACTION of draws below ε, not a count and not the fraction above.",
        )
    return "empirical volumes match on 2 samples"


@exercise_check
def check_fit_slope(fit_slope) -> str:
    """Ordinary least-squares slope of log V on log ε."""
    eps = torch.logspace(-10, -1, 15, dtype=torch.float64)
    for lam, c in [(0.5, 1.0), (0.25, 3.0), (1.5, 0.01)]:
        got = call_student(fit_slope, eps, c * eps**lam)
        # An exact power law lies on a straight line in log-log axes: the slope is λ up to round-off.
        assert_close(float(got), lam, what=f"slope for V = {c}·ε^{lam}", rtol=1e-8, atol=1e-10,
                     hint="regress log V (natural log) on log ε: the slope of a power law c·ε^λ is λ, "
                          "whatever c is; fitting V against ε without logs does not give λ.")
    gen = np.random.default_rng(7)
    noisy = eps.numpy() ** 0.7 * np.exp(0.1 * gen.standard_normal(15))
    got = call_student(fit_slope, eps, torch.as_tensor(noisy))
    expected = np.polyfit(np.log(eps.numpy()), np.log(noisy), 1)[0]
    assert_close(float(got), expected, what="slope of a noisy power law (vs numpy.polyfit on the logs)",
                 rtol=1e-8, atol=1e-10,
                 hint="use ordinary (unweighted) least squares with an intercept: "
                      "slope = Σ(x − x̄)(y − ȳ)/Σ(x − x̄)² with x = log ε, y = log V.")
    return "exact on power laws and equal to least squares on noisy data"


def _normal_crossing_cases() -> list[tuple[list[int], list[int]]]:
    cases = [([1, 1], [0, 0]), ([2], [0]), ([1, 2], [0, 0]), ([1, 1, 1], [0, 0, 0]), ([2, 3], [0, 0]),
             ([1], [1]), ([2, 1], [1, 0]), ([1, 1], [1, 1]), ([4, 1], [6, 3]), ([0, 2], [5, 0])]
    rng = random.Random(3)
    while len(cases) < 50:
        d = rng.randint(1, 4)
        k = [rng.randint(0, 4) for _ in range(d)]
        if any(k):
            cases.append((k, [rng.randint(0, 3) for _ in range(d)]))
    return cases


@exercise_check
def check_rlct_normal_crossing(rlct_normal_crossing_answer) -> str:
    """λ = min_{k_j>0} (h_j+1)/(2k_j) and m = #argmin, exactly, on 50 cases."""
    for k, h in _normal_crossing_cases():
        got = call_student(rlct_normal_crossing_answer, list(k), list(h))
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"rlct_normal_crossing_answer should return a tuple (λ, m), got {got!r:.80}.")
        lam_exp, m_exp = theory.rlct_normal_crossing(k, h)
        what = f"K = Π w_j^(2k_j) with k = {k}, prior powers h = {h}"
        lam = _exact_fraction(got[0], f"λ for {what}", "build λ with Fraction(h_j + 1, 2 * k_j), not a float division.")
        if lam != lam_exp:
            raise CheckFailure(
                f"λ for {what}: got {lam}, which is {too_large_or_small(lam, lam_exp)}.\nHint: λ = min over j with k_j > 0 of "
                f"(h_j + 1)/(2k_j) — the prior power h_j belongs in the numerator, coordinates with k_j = 0 "
                f"are skipped, and it is the MINIMUM (the smallest exponent dominates the volume)."
            )
        if got[1] != m_exp:
            raise CheckFailure(
                f"m for {what}: got {got[1]!r}, which is {too_large_or_small(got[1], m_exp)}.\nHint: m counts how many coordinates "
                f"attain the minimum — ties multiply logarithms: V(ε) ≈ c ε^λ (−log ε)^(m−1)."
            )
    return "λ and m exact on 50 normal crossings"


@exercise_check
def check_blowup_chart(blowup_chart) -> str:
    """K = (w1 w2)^{2a} (w1² + w2²)^b in the chart w1 = u, w2 = uv: ((2a+b, a), (1, 0))."""
    for a, b in [(0, 1), (0, 2), (1, 0), (1, 1), (2, 3), (0, 3), (3, 1)]:
        got = call_student(blowup_chart, a, b)
        ok = isinstance(got, tuple) and len(got) == 2 and all(isinstance(x, tuple | list) and len(x) == 2 for x in got)
        if not ok:
            raise CheckFailure(f"blowup_chart should return ((k_u, k_v), (h_u, h_v)), got {got!r:.80}.")
        k, h = (tuple(int(x) for x in got[0]), tuple(int(x) for x in got[1]))
        expected = ((2 * a + b, a), (1, 0))
        if (k, h) != expected:
            raise CheckFailure(
                f"for K = (w1 w2)^{2 * a} (w1² + w2²)^{b}: got (k, h) = {(k, h)}; "
                f"{sum(x != y for x, y in zip(k + h, expected[0] + expected[1]))} of the 4 exponents are wrong.\n"
                f"Hint: substitute w1 = u, w2 = u·v: w1 w2 = u² v and w1² + w2² = u²(1 + v²) with 1 + v² a unit "
                f"(never 0); collect the powers of u and of v. The Jacobian of (u, v) ↦ (u, uv) is |u|, which "
                f"multiplies the prior and gives h_u = 1."
            )
        # Consistency with the original coordinates when a formula is known.
        lam, _ = theory.rlct_normal_crossing(list(k), list(h))
        if b == 0:
            assert lam == theory.rlct_normal_crossing([a, a])[0]
        if a == 0:
            assert lam == theory.rlct_homogeneous_radial(2, b)[0]
    return "exponents after the blow-up correct for 7 potentials"


def _check_potentials():
    uni1, uni2 = volume.uniform_prior_sampler(1), volume.uniform_prior_sampler(2)
    return {
        "w^4": (lambda w: w[:, 0] ** 4, uni1, 1, Fraction(1, 4)),
        "(w1 w2)^2": (lambda w: (w[:, 0] * w[:, 1]) ** 2, uni2, 2, Fraction(1, 2)),
        "(w1^2 + w2^2)^2": (lambda w: (w[:, 0] ** 2 + w[:, 1] ** 2) ** 2, uni2, 1, Fraction(1, 2)),
        "w1^2 + w2^4": (lambda w: w[:, 0] ** 2 + w[:, 1] ** 4, uni2, 1, Fraction(3, 4)),
    }


def reference_estimate(K, prior_sampler, m: int, num_samples: int, seed: int) -> volume.VolumeFit:
    """The reference route: N draws, 16 log-spaced ε between the 200th smallest K and the 5% quantile."""
    kv = volume.volume_samples(K, prior_sampler, num_samples, generator=torch.Generator().manual_seed(seed))
    eps = volume.log_spaced_eps(kv)
    return volume.fit_rlct_from_volume(eps, volume.volume_curve(kv, eps).volume, num_samples, m=m)


@exercise_check
def check_estimate_rlcts(estimate_rlcts) -> str:
    """Monte Carlo λ̂ within 4 standard errors (+ a stated bias budget) of the exact λ, for 4 potentials."""
    pots = _check_potentials()
    num_samples, seed = 1 << 19, 11
    got = call_student(estimate_rlcts, {k: v[:3] for k, v in pots.items()}, num_samples, seed)
    if not isinstance(got, dict) or set(got) != set(pots):
        raise CheckFailure(f"estimate_rlcts should return a dict with keys {sorted(pots)}, got {got!r:.120}.")
    for name, (K, sampler, m, lam) in pots.items():
        est = got[name]
        if not isinstance(est, tuple | list) or len(est) != 2:
            raise CheckFailure(f"estimate_rlcts(...)[{name!r}] should be a pair (λ̂, standard error), got {est!r:.80}.")
        ref = reference_estimate(K, sampler, m, num_samples, seed)
        # Tolerance: 4 Monte Carlo standard errors of the reference fit (se ≈ 0.002–0.006 at N = 2¹⁹),
        # plus 0.02 for the deterministic finite-ε bias. The bias is largest for m = 2: on [−1, 1]² the
        # exact volume of (w1 w2)² is V(ε) = √ε (1 + ½ log(1/ε)), and fitting c ε^λ log(1/ε) to it over
        # the ε range used (V from 4·10⁻⁴ to 0.05) gives λ̂ ≈ 0.512, i.e. +0.012. Fitting that case with
        # m = 1 gives λ̂ ≈ 0.43 and fails, as does any slope taken against log10 or without logs.
        tol = 4 * ref.lam_se + 0.02
        assert_close(
            float(est[0]), float(lam), what=f"λ̂ for K = {name} (exact λ = {lam}, m = {m})", rtol=0, atol=tol,
            hint="draw K at prior samples (volume.volume_samples), choose ε with volume.log_spaced_eps, and fit "
                 "with volume.fit_rlct_from_volume(eps, V, num_samples, m=m) — pass the multiplicity m: fitting "
                 "with m = 1 when m = 2 biases λ̂ low.",
        )
        se = float(est[1])
        # The standard error must be the fit's Monte Carlo standard error, not a placeholder: within a
        # factor 3 of the reference (it depends only mildly on the choice of ε).
        if not (ref.lam_se / 3 <= se <= 3 * ref.lam_se):
            raise CheckFailure(
                f"standard error for K = {name}: got {se:.4g}, not within a factor 3 of the reference fit's Monte Carlo "
                "standard error."
                "\nHint: return fit.lam_se from volume.fit_rlct_from_volume."
            )
    return "4 Monte Carlo estimates agree with the exact λ within 4 standard errors + 0.02"


def _newton_cases() -> list[list[tuple[int, int]]]:
    cases = [[(2, 0), (0, 4)], [(6, 0), (2, 2), (0, 8)], [(2, 0)], [(0, 2)], [(4, 0), (0, 6)],
             [(4, 0), (2, 3), (0, 6)], [(2, 4), (6, 0)], [(4, 2), (6, 0)], [(2, 4), (0, 6)], [(2, 2)],
             [(8, 0), (4, 2), (0, 10)]]
    rng = random.Random(5)
    while len(cases) < 40:
        pts = {(rng.randint(0, 8), rng.randint(0, 8)) for _ in range(rng.randint(1, 5))} - {(0, 0)}
        if pts:
            cases.append(sorted(pts))
    return cases


@exercise_check
def check_newton_distance(newton_distance) -> str:
    """t with (t, t) on the boundary of the Newton polygon Γ₊ = conv(exponents) + R²₊, exactly."""
    for exps in _newton_cases():
        got = call_student(newton_distance, list(exps))
        t = _exact_fraction(got, f"newton_distance({exps})",
                            "work with fractions.Fraction throughout so that the crossing point is exact.")
        expected = 1 / theory.rlct_newton_polygon(exps)[0]
        if t != expected:
            raise CheckFailure(
                f"newton_distance({exps}): got t = {t}, which is {too_large_or_small(t, expected)}.\nHint: (t, t) must lie in "
                f"conv(exponents) + R²₊. Besides the single exponents (t = max(a1, a2)), check where the "
                f"diagonal crosses each segment between two exponents; the answer is the smallest t."
            )
    return "Newton distance exact on 40 exponent sets"


__all__ = [
    "check_blowup_chart", "check_estimate_rlcts", "check_fit_slope", "check_newton_distance",
    "check_rlct_normal_crossing", "check_volume_fraction", "reference_estimate",
]


# Exercise 7: (λ, m) of four models at the zero truth, each derived by reducing K to a normal crossing.
DERIVED_MODELS = {  # name: (k, h) of the normal crossing that K reduces to near 0
    "a·tanh(bx)": ([1, 1], [0, 0]),
    "abc·x": ([1, 1, 1], [0, 0, 0]),
    "a²b·x": ([2, 1], [0, 0]),
    "a·tanh(bx), prior ∝ |a|": ([1, 1], [1, 0]),
}


@exercise_check
def check_derived_rlcts(derived_rlcts) -> str:
    """{name: (λ, m)} for four models; exact, from the normal crossing each K reduces to."""
    got = call_student(derived_rlcts)
    if not isinstance(got, dict):
        raise CheckFailure(f"derived_rlcts() should return a dict {{name: (λ, m)}}, got {type(got).__name__}.")
    missing = [name for name in DERIVED_MODELS if name not in got]
    if missing:
        raise CheckFailure(f"derived_rlcts() should have the keys {list(DERIVED_MODELS)}; missing {missing}.")
    for name, (k, h) in DERIVED_MODELS.items():
        value = got[name]
        if not isinstance(value, tuple) or len(value) != 2:
            raise CheckFailure(f"derived_rlcts()[{name!r}] should be a tuple (λ, m), got {value!r:.60}.")
        lam_exact, m_exact = theory.rlct_normal_crossing(k, h)
        lam = _exact_fraction(value[0], f"λ for {name}", "return λ as fractions.Fraction(1, 2), not 0.5.")
        d = len(k)
        if lam != lam_exact:
            if lam == Fraction(d, 2):
                why = "half the number of parameters is the regular value; this model is singular at the origin."
            elif lam > lam_exact:
                why = "your λ is too large: look for the coordinate with the smallest ratio (h_j + 1)/(2k_j)."
            else:
                why = "your λ is too small: did you count a prior power (or a Jacobian) h_j, or a squared K twice?"
            raise CheckFailure(f"λ for {name} is wrong. {why}\nHint: write K = ½ E_x[f²] near 0 as a monomial "
                               "times a positive function and read off k; the prior gives h.")
        if isinstance(value[1], bool) or not isinstance(value[1], int) or value[1] != m_exact:
            raise CheckFailure(f"λ for {name} is right but the multiplicity m = {value[1]!r} is wrong.\nHint: m is the number "
                               "of coordinates j that attain the minimum of (h_j + 1)/(2k_j) (ties), counted after "
                               "the prior's powers are included.")
    return "λ and m exact for the four models"


# Exercise 8: ζ(z) of the model volume V(ε) = ε^λ (−log ε)^(m−1). The reference (theory.zeta_of_volume) is
# checked against quadrature in tests/test_theory.py; values are O(1)–O(10⁴) and computed in float64, so a
# rtol of 1e-9 only allows rounding, while every wrong closed form we tried is off by > 1e-2 at some point.
ZETA_POINTS = [(0.5, 1, 0.3), (0.5, 2, -0.2), (0.5, 2, 1.0), (0.25, 3, 1.0), (0.25, 3, -0.2), (1.5, 2, -1.0),
               (0.75, 4, -0.5), (1.0, 1, -0.9), (2.0, 3, 0.0)]


@exercise_check
def check_zeta_from_volume(zeta_from_volume) -> str:
    """ζ(z) = λ(m−1)!/(z+λ)^m − (m−1)!/(z+λ)^(m−1) (second term for m ≥ 2) at 9 points."""
    for lam, m, z in ZETA_POINTS:
        got = call_student(zeta_from_volume, lam, m, z)
        try:
            got_f = float(got)
        except (TypeError, ValueError) as err:
            raise CheckFailure(f"zeta_from_volume should return a float, got {got!r:.60}.") from err
        expected = theory.zeta_of_volume(lam, m, z)
        if not (abs(got_f - expected) <= 1e-9 * abs(expected) + 1e-12):
            # Diagnose without printing the value: the pole order is visible in how ζ scales near −λ.
            raise CheckFailure(
                f"zeta_from_volume({lam}, {m}, {z}) is wrong (λ = {lam}, m = {m}).\nHint: substitute ε = e^(−s); "
                "−dV/ds = λe^(−λs)s^(m−1) − (m−1)e^(−λs)s^(m−2) has two terms for m ≥ 2 (product rule), and "
                "∫₀^∞ s^(k−1)e^(−as) ds = Γ(k)/a^k with Γ(k) = (k−1)!."
            )
    return "ζ(z) exact at 9 points (m = 1 to 4): a pole of order m at −λ"
