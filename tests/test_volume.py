"""Volume scaling V(ε) = P_φ(K < ε) ≈ c ε^λ (−log ε)^(m−1) recovers the exact λ of theory.py.

How the tolerances are justified. For each potential the fitted λ̂ differs from λ by
(a) Monte Carlo noise, whose standard deviation ``lam_se`` is the delta-method sandwich
    error of the correlated counts (checked to be calibrated: over 200 seeds with N = 2¹⁶
    the spread of λ̂ matched the mean ``lam_se`` within 1 %), and
(b) a deterministic finite-ε bias, because V(ε) only *asymptotically* has the fitted form.
For quasi-homogeneous K with the prior's box containing {K < ε} (w², w⁴, w1² + w2²,
w1² + w2⁴, (w1² + w2²)², w² with φ ∝ |w|) the scaling w ↦ (ε^{1/(2a)} u, ...) makes
V(ε) = c ε^λ *exactly* for ε < 1, so (b) = 0. For w1²w2² and w1²w2² + w3² (m = 2) we know
V(ε) in closed form and compute (b) by fitting the exact curve; it is a relative
O(1/log ε) effect (about +0.01 and +0.06 on the ε ranges used). The test asserts
|λ̂ − λ| ≤ |bias| + 4·se: a 4σ band fails by chance with probability 6e-5 per test.
"""

from __future__ import annotations

import math

import pytest
import torch

from slt_course_utils.theory import (
    rlct_homogeneous_radial,
    rlct_newton_polygon,
    rlct_normal_crossing,
    rlct_regular,
    rlct_sum_disjoint,
)
from slt_course_utils.volume import (
    VolumeFit,
    fit_rlct_from_volume,
    log_spaced_eps,
    power_prior_sampler,
    uniform_prior_sampler,
    volume_curve,
    volume_samples,
)

N = 1 << 19  # 524 288 draws: about 0.3 s per potential on one core


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fit(K, sampler, *, m=1, fit_m=False, seed=0):
    k = volume_samples(K, sampler, N, generator=torch.Generator().manual_seed(seed))
    eps = log_spaced_eps(k, num=16, min_count=200, max_fraction=0.05)
    curve = volume_curve(k, eps)
    return fit_rlct_from_volume(curve.eps, curve.volume, N, m=m, fit_m=fit_m)


# Exact volumes for uniform φ on [−1, 1]^d (the same as for |w_j| uniform on [0, 1]):
# P(|w1 w2| < s) = s(1 − log s), s = √ε; and for w1²w2² + w3², integrating over w3 = √ε sin θ,
# V(ε) = ε[(π/4)(1 + L/2) − ∫₀^{π/2} cos²θ log cos θ dθ] = (π/8) ε (L + 1 + 2 log 2), L = −log ε.
def _exact_v_w1w2(eps):
    return eps.sqrt() * (1 - 0.5 * eps.log())


def _exact_v_w1w2_plus_w3(eps):
    return math.pi / 8 * eps * (-eps.log() + 1 + 2 * math.log(2))


def _bias(fit: VolumeFit, exact_v, lam_true: float) -> float:
    """Finite-ε bias: the same fit applied to the exact V(ε) on the same ε (no noise)."""
    exact = fit_rlct_from_volume(fit.eps, exact_v(fit.eps), 1 << 40, m=round(fit.m_used))
    return exact.lam - lam_true


CASES = [
    # name, K, prior sampler, exact (λ, m) from theory.py, exact V(ε) if not a pure power
    ("w² (regular, d=1)", lambda w: w[:, 0] ** 2, uniform_prior_sampler(1), rlct_regular(1), None),
    ("w⁴", lambda w: w[:, 0] ** 4, uniform_prior_sampler(1), rlct_normal_crossing([2]), None),
    ("w1² + w2² (regular, d=2)", lambda w: (w**2).sum(1), uniform_prior_sampler(2), rlct_regular(2), None),
    ("w1² + w2⁴", lambda w: w[:, 0] ** 2 + w[:, 1] ** 4, uniform_prior_sampler(2),
     rlct_newton_polygon([(2, 0), (0, 4)]), None),
    ("(w1² + w2²)²", lambda w: (w**2).sum(1) ** 2, uniform_prior_sampler(2), rlct_homogeneous_radial(2, 2), None),
    ("w² with φ ∝ |w|", lambda w: w[:, 0] ** 2, power_prior_sampler([1]), rlct_normal_crossing([1], [1]), None),
    ("w1²w2² (m=2)", lambda w: (w[:, 0] * w[:, 1]) ** 2, uniform_prior_sampler(2),
     rlct_normal_crossing([1, 1]), _exact_v_w1w2),
    ("w1²w2² + w3² (m=2)", lambda w: (w[:, 0] * w[:, 1]) ** 2 + w[:, 2] ** 2, uniform_prior_sampler(3),
     rlct_sum_disjoint(rlct_normal_crossing([1, 1]), rlct_regular(1)), _exact_v_w1w2_plus_w3),
]


CASE_IDS = ["w2", "w4", "w1^2+w2^2", "w1^2+w2^4", "(w1^2+w2^2)^2", "w2_prior_abs_w", "w1^2w2^2", "w1^2w2^2+w3^2"]


@pytest.mark.parametrize("name, K, sampler, exact, exact_v", CASES, ids=CASE_IDS)
def test_volume_fit_recovers_rlct(name, K, sampler, exact, exact_v):
    lam, m = float(exact[0]), exact[1]
    fit = _fit(K, sampler, m=m)
    bias = 0.0 if exact_v is None else _bias(fit, exact_v, lam)
    assert abs(bias) < 0.08, f"{name}: finite-ε bias {bias:.3f} is larger than expected"
    assert fit.lam_se < 0.01, f"{name}: standard error {fit.lam_se:.4f} too large; more samples?"
    assert abs(fit.lam - lam) <= abs(bias) + 4 * fit.lam_se, (
        f"{name}: λ̂ = {fit.lam:.4f} ± {fit.lam_se:.4f}, exact λ = {lam}, bias {bias:.4f}"
    )
    assert fit.m_used == m and fit.m_se is None


def test_exact_volume_formulas_match_monte_carlo():
    """The closed forms used for the bias agree with the empirical V̂ within 4 binomial se."""
    g = torch.Generator().manual_seed(1)
    eps = torch.tensor([1e-6, 1e-4, 1e-2], dtype=torch.float64)
    for K, d, exact_v in [
        (lambda w: (w[:, 0] * w[:, 1]) ** 2, 2, _exact_v_w1w2),
        (lambda w: (w[:, 0] * w[:, 1]) ** 2 + w[:, 2] ** 2, 3, _exact_v_w1w2_plus_w3),
    ]:
        curve = volume_curve(volume_samples(K, uniform_prior_sampler(d), N, generator=g), eps)
        assert ((curve.volume - exact_v(eps)).abs() <= 4 * curve.std_error).all()


def _cusp_volume(eps: float) -> float:
    """V(ε) for K = (w1² − w2³)², uniform on [−1, 1]²: exact in w1, trapezoid rule in w2."""
    r = math.sqrt(eps)
    s = r ** (1 / 3)  # the width of the interesting region in w2
    total = 0.0
    for lo, hi, n in ((-1.0, -50 * s, 20_001), (-50 * s, 50 * s, 400_001), (50 * s, 1.0, 20_001)):
        w2 = torch.linspace(lo, hi, n, dtype=torch.float64)
        upper, lower = (w2**3 + r).clamp(0, 1), (w2**3 - r).clamp(0, 1)
        total += torch.trapezoid((upper.sqrt() - lower.sqrt()) / 2, w2).item()
    return total


def test_cusp_volume_slope_is_five_twelfths():
    """Degenerate cusp: the local slope d log V / d log ε tends to 5/12 with m = 1.

    With m = 2 the local slope would be λ − 1/(−log ε) ≈ 0.399 at ε = 1e-24, not 0.416.
    """
    eps, h = 1e-24, 1.01
    slope = (math.log(_cusp_volume(eps * h)) - math.log(_cusp_volume(eps / h))) / (2 * math.log(h))
    assert abs(slope - 5 / 12) < 2e-3


def test_wrong_rlct_is_rejected():
    """K = w⁴ has λ = 1/4: the fit excludes the regular value 1/2 by a wide margin."""
    fit = _fit(lambda w: w[:, 0] ** 4, uniform_prior_sampler(1))
    lo, hi = fit.interval(z=4.0)
    assert lo <= 0.25 <= hi
    assert not lo <= 0.5 <= hi
    assert abs(fit.lam - 0.5) > 50 * fit.lam_se


def test_ignoring_multiplicity_biases_low():
    """w1²w2² fitted with m = 1 instead of 2: the log term masquerades as a smaller slope."""
    K = lambda w: (w[:, 0] * w[:, 1]) ** 2
    naive = _fit(K, uniform_prior_sampler(2), m=1)
    right = _fit(K, uniform_prior_sampler(2), m=2)
    assert naive.lam < 0.5 - 0.04 and naive.lam < right.lam - 10 * naive.lam_se


def test_fit_m_recovers_multiplicity_roughly():
    """Fitting m too: λ and m are strongly correlated, so only a loose check (4σ plus bias)."""
    K = lambda w: (w[:, 0] * w[:, 1]) ** 2
    fit = _fit(K, uniform_prior_sampler(2), fit_m=True)
    exact = fit_rlct_from_volume(fit.eps, _exact_v_w1w2(fit.eps), 1 << 40, fit_m=True)
    assert fit.m_se is not None and fit.m_se > 0
    assert abs(fit.m_used - 2) <= abs(exact.m_used - 2) + 4 * fit.m_se
    assert abs(fit.lam - 0.5) <= abs(exact.lam - 0.5) + 4 * fit.lam_se


def test_volume_curve_counts_and_errors():
    k = torch.tensor([0.0, 0.1, 0.2, 0.2, 0.5], dtype=torch.float64)
    c = volume_curve(k, [0.2, 0.05, 1.0])
    assert c.counts.tolist() == [2, 1, 5]  # strict inequality K < ε
    assert torch.allclose(c.volume, torch.tensor([0.4, 0.2, 1.0], dtype=torch.float64))
    assert torch.allclose(c.std_error, (c.volume * (1 - c.volume) / 5).sqrt())


def test_power_prior_sampler_moments():
    """φ ∝ |w|^h on [−1, 1]: E|w| = (h+1)/(h+2)."""
    w = power_prior_sampler([0, 1, 3])(200_000, torch.Generator().manual_seed(2))
    expected = torch.tensor([1 / 2, 2 / 3, 4 / 5], dtype=torch.float64)
    assert torch.allclose(w.abs().mean(0), expected, atol=0.005)
    assert w.abs().max() <= 1 and (w < 0).any()


# --- Bad input ---------------------------------------------------------------------------

EPS = torch.tensor([1e-4, 1e-3, 1e-2], dtype=torch.float64)
V = torch.tensor([0.01, 0.03, 0.1], dtype=torch.float64)


@pytest.mark.parametrize(
    "eps, v, n, kwargs, match",
    [
        (torch.tensor([0.0, 1e-3, 1e-2]), V, 10_000, {}, "0 < ε < 1"),
        (torch.tensor([-1e-4, 1e-3, 1e-2]), V, 10_000, {}, "0 < ε < 1"),
        (torch.tensor([1e-4, 1e-3, 2.0]), V, 10_000, {}, "0 < ε < 1"),
        (EPS, V[:2], 10_000, {}, "same shape"),
        (EPS, V, 1_000, {}, "only 10 of 1000 samples"),
        (EPS, torch.tensor([0.0, 0.03, 0.1]), 10_000, {}, "only 0 of"),
        (EPS, torch.tensor([0.1, 0.03, 0.2]), 10_000, {}, "non-decreasing"),
        (EPS[:2], V[:2], 10_000, {"fit_m": True}, "at least 3 distinct"),
        (EPS, V, 0, {}, "num_samples"),
        (EPS, V, 10_000, {"m": 0}, "m must be"),
        (EPS, torch.tensor([0.01, 0.03, float("nan")]), 10_000, {}, "NaN"),
    ],
)
def test_fit_bad_input(eps, v, n, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_rlct_from_volume(eps, v, n, **kwargs)


def test_curve_and_sampling_bad_input():
    k = torch.rand(100, dtype=torch.float64)
    with pytest.raises(ValueError, match="positive"):
        volume_curve(k, [0.0, 0.1])
    with pytest.raises(ValueError, match="1-D"):
        volume_curve(k.reshape(10, 10), [0.1])
    with pytest.raises(ValueError, match="≥ 0"):
        volume_curve(-k, [0.1])
    with pytest.raises(ValueError, match="draw more samples"):
        log_spaced_eps(k, min_count=200)
    with pytest.raises(ValueError, match="shape \\(n,\\)"):
        volume_samples(lambda w: w, uniform_prior_sampler(2), 10)
    with pytest.raises(ValueError, match="num_samples"):
        volume_samples(lambda w: w[:, 0], uniform_prior_sampler(1), 0)
    with pytest.raises(ValueError, match="exponents > −1"):
        power_prior_sampler([-1])


# --- The fit on exact curves, and its standard error against a Monte Carlo spread ---------------

@pytest.mark.parametrize(("lam", "m", "c"), [(0.7, 1, 1.0), (0.5, 2, 0.3), (1.25, 3, 2.0)])
def test_fit_recovers_lambda_and_m_from_an_exact_curve(lam, m, c):
    """V(ε) = c ε^λ (−log ε)^(m−1) exactly: the fit must return λ, m and log c to rounding error,
    so an off-by-one in m (or a dropped log c, a log base) cannot hide in a tolerance."""
    eps = torch.logspace(-9, -2, 12, dtype=torch.float64)
    V = c * eps**lam * (-eps.log()) ** (m - 1)
    known = fit_rlct_from_volume(eps, V, 1 << 50, m=m)
    assert known.lam == pytest.approx(lam, abs=1e-9) and known.m_used == m
    assert known.log_c == pytest.approx(math.log(c), abs=1e-8)
    joint = fit_rlct_from_volume(eps, V, 1 << 50, fit_m=True)
    assert joint.lam == pytest.approx(lam, abs=1e-8)
    assert joint.m_used == pytest.approx(m, abs=1e-7)
    assert joint.log_c == pytest.approx(math.log(c), abs=1e-6)
    if m > 1:  # a wrong m moves λ̂ by far more than rounding
        wrong = fit_rlct_from_volume(eps, V, 1 << 50, m=m - 1)
        assert wrong.lam < lam - 0.02


def test_lam_se_matches_the_spread_over_seeds():
    """lam_se is a computed uncertainty: check it against the spread of λ̂ over 300 independent
    data sets (K = w², uniform prior on [0, 1]: V(ε) = √ε exactly, so λ̂ has no bias). With 300
    replicates the sample sd has relative s.e. 1/√600 ≈ 4%; we require the ratio within ±15%
    (≈ 3.7 s.e.): an se off by √2, a missing 1/N or a dropped covariance term fails."""
    gen = torch.Generator().manual_seed(0)
    N, R = 20_000, 300
    eps = torch.logspace(-4, -1.5, 8, dtype=torch.float64)
    u = torch.rand(R, N, generator=gen, dtype=torch.float64)
    counts = (u[:, :, None] ** 2 < eps).sum(1).double()  # (R, E)
    lams, ses = [], []
    for r in range(R):
        fit = fit_rlct_from_volume(eps, counts[r] / N, N, min_count=1)
        lams.append(fit.lam)
        ses.append(fit.lam_se)
    lams_t = torch.tensor(lams)
    ratio = lams_t.std().item() / torch.tensor(ses).mean().item()
    assert 0.85 < ratio < 1.15, ratio  # measured 1.04
    # and the mean is unbiased: |mean − ½| below 4 standard errors of the mean
    assert abs(lams_t.mean().item() - 0.5) < 4 * lams_t.std().item() / math.sqrt(R)
