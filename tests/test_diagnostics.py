"""Convergence diagnostics: against ArviZ (a stored table, and the live library when installed),
against exact AR(1) autocorrelation times, and the drift rule's power and false-positive rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slt_course_utils import diagnostics as D
from slt_course_utils.sampling import effective_sample_size


def ar1(phi: float, chains: int, draws: int, seed: int, burn: int = 200) -> np.ndarray:
    """x_t = φ x_{t−1} + ε_t, ε ~ N(0, 1), started in the stationary law N(0, 1/(1 − φ²))."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((chains, draws + burn))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / math.sqrt(1 - phi**2)
    for t in range(1, draws + burn):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x[:, burn:]


def reference_inputs() -> dict[str, np.ndarray]:
    """Three seeded traces: iid, AR(1) with an odd number of draws, heavy tails with one shifted chain."""
    return {
        "iid": np.random.default_rng(1).standard_normal((4, 200)),
        "ar1": ar1(0.8, 4, 301, seed=2),
        "cauchy_shift": np.random.default_rng(3).standard_cauchy((3, 150)) + np.array([[0.0], [0.0], [1.5]]),
    }


# Computed once with arviz-stats 0.8.0 (scipy 1.17.1, numpy 2.4.6):
#   from arviz_stats.base import array_stats as az
#   (az.rhat(x), az.ess(x, method="bulk"), az.ess(x, method="tail", prob=(0.05, 0.95)),
#    tuple(az.ess(x[i:i+1], method="identity") for i in range(len(x))))
ARVIZ_REFERENCE = {
    "iid": (1.0100997205665552, 834.085900151714, 741.2547671184135,
            (236.34952884169098, 311.96772670602576, 145.85752929841576, 168.498001398809)),
    "ar1": (1.0163617697929834, 200.80668042454982, 373.0583905519407,
            (40.37348519662822, 53.689318022098156, 66.27030162564454, 60.70812453982248)),
    "cauchy_shift": (1.055805386653878, 45.85498818393865, 508.4946866951444,
                     (157.35334496945882, 141.07002880546185, 148.1037584240932)),
}
# Same algorithm, same order of operations: only round-off differs (numpy's FFT, and
# Φ⁻¹ from torch.special.ndtri here vs scipy.stats.norm.ppf there), ~1e-14 relative.
REL = 1e-9


@pytest.mark.parametrize("name", sorted(ARVIZ_REFERENCE))
def test_matches_stored_arviz_table(name):
    x = reference_inputs()[name]
    r, bulk, tail, per_chain = ARVIZ_REFERENCE[name]
    assert D.rhat(x) == pytest.approx(r, rel=REL)
    assert D.ess_bulk(x) == pytest.approx(bulk, rel=REL)
    assert D.ess_tail(x) == pytest.approx(tail, rel=REL)
    np.testing.assert_allclose(D.ess_per_chain(x), per_chain, rtol=REL)


def _live_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "iid_long": rng.standard_normal((4, 1000)),
        "ar1_0.95": ar1(0.95, 4, 1001, seed=12),
        "shifted": rng.standard_normal((3, 57)) + np.arange(3)[:, None],
        "scale": rng.standard_normal((4, 400)) * np.array([[1.0], [1.0], [1.0], [3.0]]),
        "ties": rng.integers(0, 5, (4, 200)).astype(float),
        "one_chain": ar1(0.5, 1, 300, seed=13),
        "tiny": rng.standard_normal((2, 5)),
    }


@pytest.mark.parametrize("name", sorted(_live_cases()))
def test_matches_installed_arviz(name):
    az = pytest.importorskip("arviz_stats.base").array_stats
    x = _live_cases()[name]
    if x.shape[0] >= 2:
        assert D.rhat(x) == pytest.approx(float(az.rhat(x)), rel=REL)
    assert D.ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=REL)
    assert D.ess_tail(x) == pytest.approx(float(az.ess(x, method="tail", prob=(0.05, 0.95))), rel=REL)
    ref = [float(az.ess(x[i : i + 1], method="identity")) for i in range(len(x))]
    np.testing.assert_allclose(D.ess_per_chain(x), ref, rtol=REL)


# --------------------------------------------------------------------------------------
# Exact tests that need no library. Each property is a function of the estimator, so the
# same property can be shown to reject stubs.
# --------------------------------------------------------------------------------------


def check_ess_ar1(ess_fn) -> None:
    """AR(1): τ = (1 + φ)/(1 − φ), so ESS = CN(1 − φ)/(1 + φ); and ≈ CN for iid draws.

    4 chains × 25 000 draws. The IAT estimate's relative sd is ≈ √(2(2M + 1)/N_total) with M
    the summation window (Sokal 1997, eq. 3.19): M ≈ 100 at φ = 0.9 gives 4.5%, M ≈ 20 at
    φ = 0.5 gives 2%. Tolerances are ≈ 3 sd (15%, 7%); iid: ±10%.
    """
    n_total = 4 * 25_000
    for phi, rel, seed in ((0.9, 0.15, 21), (0.5, 0.07, 22)):
        exact = n_total * (1 - phi) / (1 + phi)
        assert ess_fn(ar1(phi, 4, 25_000, seed)) == pytest.approx(exact, rel=rel), phi
    iid = np.random.default_rng(23).standard_normal((4, 2000))
    assert ess_fn(iid) == pytest.approx(8000, rel=0.10)


def check_rhat(rhat_fn) -> None:
    """R̂ ≫ 1.01 for shifted means and for one wider chain (only the folded R̂ sees that); ≈ 1 otherwise."""
    rng = np.random.default_rng(31)
    shifted = rng.standard_normal((4, 1000)) + np.array([[0.0], [0.0], [0.0], [1.0]])
    assert rhat_fn(shifted) > 1.05
    wide = rng.standard_normal((4, 1000)) * np.array([[1.0], [1.0], [1.0], [3.0]])
    assert rhat_fn(wide) > 1.05
    for seed in range(10):  # 8 split chains of 1000: R̂ − 1 ≈ (B/W − 1)/2000, B/W ~ χ²₇/7
        same = ar1(0.3, 4, 2000, seed=100 + seed)
        assert rhat_fn(same) < 1.005


def test_ess_bulk_matches_ar1_theory():
    check_ess_ar1(D.ess_bulk)


def test_ess_per_chain_matches_ar1_theory():
    check_ess_ar1(lambda x: D.ess_per_chain(x).sum())
    per = D.ess_per_chain(ar1(0.9, 3, 30_000, seed=24))
    assert per.shape == (3,)
    np.testing.assert_allclose(per, 30_000 / 19, rtol=0.2)  # one chain: sd ≈ 8%


def test_ess_tail_is_an_ess():
    x = ar1(0.9, 4, 25_000, seed=25)
    # indicators of a Gaussian AR(1) decorrelate faster than x, so tail ESS ≥ bulk ESS here,
    # and never more than ~the number of draws
    assert D.ess_bulk(x) * 0.9 < D.ess_tail(x) < 100_000


def test_rhat_shifted_and_identical_chains():
    check_rhat(D.rhat)


def test_stubs_fail_the_checks():
    with pytest.raises(AssertionError):
        check_rhat(lambda x: 1.0)
    with pytest.raises(AssertionError):
        check_rhat(lambda x: 2.0)
    for stub in (lambda x: float(np.size(x)), lambda x: np.size(x) / 2, lambda x: 1.0):
        with pytest.raises(AssertionError):
            check_ess_ar1(stub)
    # R̂ without the folded half (bulk only) misses the wider chain
    bulk_only = lambda x: D._split_rhat(D._z_scale(D._split_chains(np.asarray(x))))
    with pytest.raises(AssertionError):
        check_rhat(bulk_only)
    never = lambda x: D.Drift(0.0, 0.0, 0.0, 0.0, 0.0, False, "")
    always = lambda x: D.Drift(0.0, 0.0, 1.0, 1.0, 10.0, True, "")
    for stub in (never, always):
        with pytest.raises(AssertionError):
            check_drift(stub)


# --------------------------------------------------------------------------------------
# Drift
# --------------------------------------------------------------------------------------


def drifting_trace(seed: int, total: float = 0.10, chains: int = 4, draws: int = 2000) -> np.ndarray:
    """Mean 2.5 rising linearly by ``total`` (a fraction) over the run, plus AR(1) φ = 0.9 noise of sd 0.25."""
    noise = 0.25 * math.sqrt(1 - 0.9**2) * ar1(0.9, chains, draws, seed)
    return 2.5 * (1 + total * np.linspace(0, 1, draws)) + noise


def check_drift(drift_fn) -> None:
    """+10% over the run is flagged (here r ≈ 0.5%, so z ≈ 0.1/(2√3·0.005) ≈ 6); stationary φ = 0.9 is not."""
    for seed in range(10):
        d = drift_fn(drifting_trace(seed))
        assert d.drifting and d.z > 3 and d.relative_change == pytest.approx(0.1 / 1.05, abs=0.04)
    flagged = sum(drift_fn(2.5 + 0.25 * ar1(0.9, 4, 2000, seed=200 + s)).drifting for s in range(50))
    assert flagged <= 2  # rate ≤ 0.7% measured (docstring), so 0.35 expected of 50


def test_drift_flags_a_slow_rise_and_not_a_stationary_chain():
    check_drift(D.drift)


def test_drift_falling_trace_and_message():
    d = D.drift(drifting_trace(3, total=-0.15))
    assert d.drifting and d.change < 0 and d.z < -3
    assert "still moving" in d.message and "fell" in d.message


def test_drift_exact_line():
    n = 101
    x = np.tile(1.0 + 0.1 * np.arange(n) / (n - 1), (2, 1))  # from 1.0 to 1.1, no noise
    d = D.drift(x)
    assert d.change == pytest.approx(0.1, rel=1e-12)
    assert d.relative_change == pytest.approx(0.1 / 1.05, rel=1e-12)
    assert d.first_half == pytest.approx(x[:, :50].mean()) and d.second_half == pytest.approx(x[:, 50:].mean())
    assert d.z > 1e6 and d.drifting  # residuals are pure round-off


def test_drift_ignores_a_tiny_change_at_huge_ess():
    rng = np.random.default_rng(41)
    x = 1.0 + 0.001 * np.linspace(0, 1, 20_000) + 1e-4 * rng.standard_normal((4, 20_000))
    d = D.drift(x)
    assert d.z > 3 and abs(d.relative_change) < 0.02 and not d.drifting
    assert D.drift(x, rel_tol=0.0005).drifting


def test_drift_misses_what_the_run_cannot_resolve():
    # same +10% drift, noise 10× larger: r ≈ 5%, z ≈ 0.6 — the rule must not pretend to see it
    noise = 2.5 * ar1(0.9, 4, 2000, seed=42) * math.sqrt(1 - 0.81)
    d = D.drift(2.5 * (1 + 0.1 * np.linspace(0, 1, 2000)) + noise)
    assert abs(d.z) < 3 and not d.drifting


# --------------------------------------------------------------------------------------
# Input validation, stuck chains, summaries
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [D.rhat, D.ess_bulk, D.ess_tail, D.ess_per_chain, D.drift, D.summarize])
def test_bad_input(fn):
    with pytest.raises(ValueError, match=r"shape \(chains, draws\).*x\[None, :\]"):
        fn(np.zeros(10))
    with pytest.raises(ValueError, match="one parameter at a time"):
        fn(np.zeros((2, 10, 3)))
    with pytest.raises(ValueError, match="at least 4 draws"):
        fn(np.ones((3, 3)))
    x = np.random.default_rng(0).standard_normal((4, 50))
    x[1, 3], x[2, 7], x[2, 8] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match="3 non-finite values.*2 of 4 chains"):
        fn(x)
    with pytest.raises(TypeError, match="numeric array"):
        fn([["a", "b", "c", "d"]])


def test_rhat_needs_two_chains():
    with pytest.raises(ValueError, match="at least 2 chains.*Run several chains"):
        D.rhat(np.random.default_rng(0).standard_normal((1, 100)))


def test_accepts_tensors_and_lists():
    x = np.random.default_rng(5).standard_normal((3, 40))
    assert D.ess_bulk(torch.tensor(x, requires_grad=True)) == D.ess_bulk(x) == D.ess_bulk(x.tolist())


def test_drift_rejects_bad_rel_tol():
    for bad in (-0.1, math.nan, "2%", True):
        with pytest.raises(ValueError, match="rel_tol"):
            D.drift(np.ones((2, 10)) + np.arange(10), rel_tol=bad)


def test_stuck_chain_gives_nan_and_a_warning():
    x = ar1(0.5, 4, 500, seed=51)
    x[2] = 0.7
    assert math.isnan(D.rhat(x)) and math.isnan(D.ess_bulk(x)) and math.isnan(D.ess_tail(x))
    per = D.ess_per_chain(x)
    assert math.isnan(per[2]) and np.isfinite(per[[0, 1, 3]]).all()
    s = D.summarize(x)
    assert any("[2] never moved" in w for w in s["warnings"])


def test_summarize_good_run_has_no_warnings():
    s = D.summarize(ar1(0.5, 4, 2000, seed=61) + 3.0)
    assert s["warnings"] == []
    assert (s["chains"], s["draws"]) == (4, 2000)
    assert s["rhat"] < 1.01 and s["ess_bulk"] > 1000 and s["ess_tail"] > 100
    assert len(s["ess_per_chain"]) == 4 and all(isinstance(v, float) for v in s["ess_per_chain"])
    assert isinstance(s["drift"], D.Drift) and not s["drift"].drifting


def test_summarize_warnings_in_words():
    rng = np.random.default_rng(62)
    shifted = rng.standard_normal((4, 1000)) + np.array([[0.0], [0.0], [0.0], [1.0]])
    w = D.summarize(shifted)["warnings"]  # disagreeing chains also shrink the pooled ESS
    assert w[0].startswith("chains disagree") and "run longer or check step size" in w[0]
    sticky = ar1(0.99, 4, 400, seed=63) + 20.0  # τ ≈ 199: ESS ≈ 8 in total
    assert any(w.startswith("too few effective draws") for w in D.summarize(sticky)["warnings"])
    moving = D.summarize(drifting_trace(0))["warnings"]
    assert any(w.startswith("the trace is still moving") for w in moving)
    one = D.summarize(ar1(0.5, 1, 2000, seed=64))
    assert math.isnan(one["rhat"]) and any("only one chain" in w for w in one["warnings"])


def test_sampling_effective_sample_size_delegates():
    x = torch.tensor(ar1(0.7, 3, 500, seed=71).T.reshape(500, 3, 1).repeat(2, axis=2)).permute(1, 0, 2)
    ess = effective_sample_size(x)
    assert ess.shape == (3, 2) and ess.dtype == torch.float64
    np.testing.assert_allclose(ess[:, 0].numpy(), D.ess_per_chain(x[:, :, 0].numpy()), rtol=1e-12)
