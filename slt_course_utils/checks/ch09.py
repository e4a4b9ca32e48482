"""Checks for chapter 09, development over training (solutions/09_development.ipynb)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from slt_course_utils import development, tms
from slt_course_utils.checks._core import (
    CheckFailure,
    _as_array,
    assert_close,
    call_student,
    call_unchanged,
    exercise_check,
)


def _array(got: object, what: str) -> np.ndarray:
    try:
        return _as_array(got, what)
    except CheckFailure:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. a list of tensors of different shapes
        raise CheckFailure(f"{what}: could not read your result as an array of numbers ({err}).") from None


def _call_unchanged(fn, what: str, *args):
    """call_unchanged with this chapter's examples: the notebook reuses ``noisy`` and ``eig`` after these calls."""
    return call_unchanged(fn, *args, what=what, mistake="`x -= x.mean(0)`, `h *= nbeta`", fix="`X = X - X.mean(0)`")


# ------------------------------------------------------------------------------------------------
# Exercise 1: log-spaced checkpoint steps (exact integers)
# ------------------------------------------------------------------------------------------------

@exercise_check
def check_log_spaced_steps(log_spaced_steps) -> str:
    """Distinct integers ≈ geomspace(1, total, num) rounded to the nearest integer, sorted."""
    for total, num in [(8000, 40), (100, 10), (5000, 25), (30, 50), (2, 2)]:
        got = call_student(log_spaced_steps, total, num)
        if isinstance(got, (str, bytes, dict)) or not hasattr(got, "__iter__"):
            raise CheckFailure(f"log_spaced_steps({total}, {num}): should return a list of ints, got "
                               f"{type(got).__name__}.")
        got = list(got.tolist() if isinstance(got, (np.ndarray, torch.Tensor)) else got)  # a generator is read once
        expected = development.log_spaced_steps(total, num)
        what = f"log_spaced_steps({total}, {num})"
        try:
            values = [int(s) for s in got]
        except (TypeError, ValueError):
            raise CheckFailure(f"{what}: should return a list of ints, got {type(got).__name__}.") from None
        if any(float(s) != int(s) for s in got):
            raise CheckFailure(f"{what}: every step should be a whole number (a training step), got {list(got)[:5]}…\n"
                               "Hint: round with np.rint and convert with int().")
        if not values:
            raise CheckFailure(f"{what}: should return the checkpoint steps, got an empty list.")
        if values != sorted(set(values)):
            raise CheckFailure(f"{what}: the steps should be sorted and distinct (rounding makes early steps "
                               "coincide: keep each once).\nHint: sorted(set(...)).")
        if values[0] != 1 or values[-1] != total:
            raise CheckFailure(f"{what}: the steps should start at step one (the first checkpoint) and end at `total` "
                               f"(the end of training); yours start at {values[0]} and end at {values[-1]}.")
        if values != expected:
            extra = sorted(set(values) - set(expected))[:3]  # the learner's own steps only (never the missing ones)
            which = (f"some of them not on the rounded geometric grid (e.g. {extra})" if extra else
                     "but some steps of the rounded geometric grid are missing")
            raise CheckFailure(f"{what}: your steps are sorted and distinct, {which}.\nHint: np.geomspace(1, total, num) "
                               "gives evenly spaced log t; round to the *nearest* integer (np.rint), not down, and "
                               "keep every distinct value.")
    return "steps evenly spaced in log t, rounded and de-duplicated."


# ------------------------------------------------------------------------------------------------
# Exercise 2: smoothing in log time (exact formula)
# ------------------------------------------------------------------------------------------------

@exercise_check
def check_smooth_log_time(smooth_log_time) -> str:
    """Nadaraya–Watson smoothing with a Gaussian kernel of ``width`` decades in u = log10(1 + t)."""
    rng = np.random.default_rng(3)
    for steps, width in [(np.array(development.log_spaced_steps(8000, 30)), 0.15),
                         (np.array([0, 3, 10, 50, 51, 300, 2000]), 0.3),
                         (np.array(development.log_spaced_steps(500, 12)), 0.05)]:
        values = rng.normal(5.0, 2.0, len(steps)) + np.log10(1 + steps)
        expected = development.smooth_log_time(steps, values, width)
        got = _call_unchanged(smooth_log_time, "smooth_log_time", steps, values, width)
        assert_close(_array(got, "smooth_log_time"), expected, what=f"smooth_log_time (width {width} decades)",
                     rtol=1e-9, atol=1e-9,
                     hint="u = log10(1 + t) (t = 0 is allowed); K_kj = exp(-½((u_k − u_j)/width)²); divide by "
                          "Σ_j K_kj (a weighted mean: a constant curve must stay constant).")
    return "a weighted mean over neighbouring checkpoints, with the kernel in decades of training time."


# ------------------------------------------------------------------------------------------------
# Exercise 3: essential dynamics (PCA across checkpoints)
# ------------------------------------------------------------------------------------------------

def _outputs(seed: int, K: int, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, K, dtype=torch.float64)[:, None]
    D = int(np.prod(shape))
    dirs = torch.linalg.qr(torch.randn(D, 3, generator=g, dtype=torch.float64))[0].T
    path = (torch.tanh(8 * (t - 0.3)) * 3 * dirs[0] + torch.sin(5 * t) * 1.2 * dirs[1] + t**2 * 0.5 * dirs[2]
            + 2.0 + 0.05 * torch.randn(K, D, generator=g, dtype=torch.float64))  # far from centred
    return path.reshape(K, *shape)


@exercise_check
def check_essential_dynamics(essential_dynamics) -> str:
    """(projections (K, k), explained (k,)) of the centred PCA, each component up to its sign."""
    for seed, K, shape, k in [(0, 30, (8, 3), 2), (1, 12, (40,), 3), (2, 25, (6, 6), 1)]:
        out = _outputs(seed, K, shape)
        ref = development.essential_dynamics(out, k)
        got = _call_unchanged(essential_dynamics, "essential_dynamics", out, k)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"essential_dynamics on outputs of shape {tuple(out.shape)}: should return a pair "
                               f"(projections, explained), got {type(got).__name__}.")
        proj, expl = _array(got[0], "projections"), _array(got[1], "explained")
        what = f"essential_dynamics on outputs of shape {tuple(out.shape)} with k = {k}"
        if proj.shape != ref.projections.shape:
            raise CheckFailure(f"{what}: projections should have shape (checkpoints, k) = {ref.projections.shape}, "
                               f"got {proj.shape}.\nHint: flatten each checkpoint's outputs to one row first.")
        assert_close(expl, ref.explained, what=f"{what}: explained variance ratios", rtol=1e-6, atol=1e-9,
                     hint="centre the rows (subtract the mean over checkpoints) before the SVD; the ratio of "
                          "component i is S_i² / Σ_j S_j² over *all* singular values, not only the first k.")
        signs = np.sign(np.sum(proj * ref.projections, 0))
        signs[signs == 0] = 1
        assert_close(proj * signs, ref.projections, what=f"{what}: projections (up to each component's sign)",
                     rtol=1e-6, atol=1e-8 * float(np.abs(ref.projections).max()),
                     hint="with X − X̄ = U S Vᵀ, checkpoint k's coordinates are row k of U S (equivalently "
                          "(X − X̄) Vᵀ[:, :k]).")
    return "each checkpoint's position in function space on the top principal components."


# ------------------------------------------------------------------------------------------------
# Exercise 4: turning angles of a path
# ------------------------------------------------------------------------------------------------

def _angles(P: np.ndarray) -> np.ndarray:
    a, b = P[1:-1] - P[:-2], P[2:] - P[1:-1]
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@exercise_check
def check_turning_angles(turning_angles) -> str:
    """Angle in degrees at each interior checkpoint between the incoming and the outgoing step."""
    corner = np.array([[0, 0], [1, 0], [2, 0], [2, 1], [2, 2], [1, 2.0]])
    rng = np.random.default_rng(4)
    walk = np.cumsum(rng.normal(size=(15, 3)), 0) + 10.0
    # collinear with uneven steps, then back along itself: rounding puts cos a hair above 1 (below −1), where
    # an unclipped arccos gives NaN
    t = np.array([0, 1, 2.5, 3, 4.2, 7, 7.3, 5.0])[:, None]
    line = t * np.array([0.3, 0.1, 0.2]) + np.array([0.2, 0.3, 0.1])
    for name, P in [("a path that turns left twice", corner), ("a random walk in 3 dimensions", walk),
                    ("a straight line in 3 dimensions that finally turns back", line)]:
        got = _call_unchanged(turning_angles, "turning_angles", P)
        # atol 1e-5 degrees: near 0° and 180° arccos turns a rounding of 2e-16 in cos into ~1e-6°, so a correct
        # formula other than the reference's (atan2(|a×b|, a·b), normalising a and b first) differs by that much
        assert_close(_array(got, "turning_angles"), _angles(P), what=f"turning_angles on {name}", rtol=1e-7,
                     atol=1e-5, hint="one angle per *interior* checkpoint (K − 2 of them), between the steps "
                                     "P[k] − P[k−1] and P[k+1] − P[k], in degrees (0 = straight on, 180 = back); "
                                     "clip the cosine to [−1, 1] before arccos (rounding can push it just past ±1).")
    return "0° straight on, 90° at a corner, 180° turning back."


# ------------------------------------------------------------------------------------------------
# Exercise 5: what SGLD reads at a quadratic critical point, saddles included
# ------------------------------------------------------------------------------------------------

def _quadratic(h: np.ndarray, nbeta: float, gamma: float) -> float:
    a = nbeta * h
    return float(0.5 * np.sum(a / (a + gamma)))


@exercise_check
def check_quadratic_llc(quadratic_llc) -> str:
    """½ Σ nβh_i/(nβh_i + γ); a ValueError when some nβh_i + γ ≤ 0 (the localised posterior is improper)."""
    eig = tms.kgon_hessian_eigenvalues(5, 6, 1).numpy()
    cases = [("the 5+-gon's Hessian eigenvalues", eig, 5000.0, 20.0),
             ("curvatures (2, 0, 0, −0.001)", np.array([2.0, 0.0, 0.0, -0.001]), 1000.0, 5.0),
             ("curvatures (−0.3, 0.5, 1)", np.array([-0.3, 0.5, 1.0]), 10.0, 4.0)]
    for name, h, nbeta, gamma in cases:
        what = f"quadratic_llc for {name} at nβ = {nbeta:g}, γ = {gamma:g}"
        try:
            got = _call_unchanged(quadratic_llc, "quadratic_llc", torch.as_tensor(h), nbeta, gamma)
        except CheckFailure as err:
            if not isinstance(err.__cause__, ValueError):
                raise
            raise CheckFailure(f"{what}: your function raised ValueError ({err.__cause__}), but here every direction "
                               "has nβh + γ > 0, so the localised posterior is a proper Gaussian.\nHint: raise only "
                               "where nβh + γ ≤ 0; a zero or slightly negative h (a flat direction, a round-off "
                               "eigenvalue like −1e-16, a shallow saddle) is fine while γ outweighs it."
                               ) from err.__cause__
        assert_close(_array(got, "quadratic_llc"), _quadratic(h, nbeta, gamma),
                     # rtol 1e-6: a sum in float32 is also right (the wrong answers are off by 1e-3 or more)
                     what=what, rtol=1e-6, atol=1e-9,
                     hint="each direction is a Gaussian of precision nβh + γ; nβ·E[½hδ²] = ½·nβh/(nβh + γ). "
                          "A negative h gives a negative term (keep its sign).")
    for h, nbeta, gamma in [(np.array([1.0, -0.01]), 1000.0, 5.0), (np.array([-0.5]), 10.0, 5.0)]:
        try:
            got = quadratic_llc(torch.as_tensor(h.copy()), nbeta, gamma)
        except NotImplementedError:
            raise CheckFailure("quadratic_llc is not implemented yet: it still raises NotImplementedError.",
                               not_implemented=True) from None
        except ValueError:
            continue
        except Exception as err:  # noqa: BLE001
            raise CheckFailure(f"quadratic_llc with a curvature nβh + γ ≤ 0 should raise ValueError, it raised "
                               f"{type(err).__name__}: {err}") from err
        raise CheckFailure(f"quadratic_llc(curvatures {h.tolist()}, nβ = {nbeta:g}, γ = {gamma:g}): some direction has "
                           f"nβh + γ ≤ 0, where the localised posterior is not a probability distribution (the "
                           f"sampler runs away); it should raise ValueError, it returned {got!r:.40}.")
    return "the quadratic prediction, and where a saddle breaks it."


# ------------------------------------------------------------------------------------------------
# Exercise 6: the LLC curve in one batched call
# ------------------------------------------------------------------------------------------------

def _kgon_models(kgons: list[tuple[int, int]]) -> list[torch.nn.Module]:
    out = []
    for k, sigma in kgons:
        W, b = tms.kgon_parameters(k, 6, sigma)
        out.append(tms.ToyModelOfSuperposition(6, W=W.float(), b=b.float()))
    return out


LLC_CURVE_SETTINGS = {"num_chains": 8, "num_draws": 300, "localization": 1.0, "batch_size": 200, "seed": 0}
# The notebook's three k-gons, then a second, shorter list in another order with a 3-gon, whose λ̂ (≈ 4) is far
# from the 6-gon's (≈ 8) next to the tolerance below: a function that ignores `models` (constants, or the first
# list's numbers copied from the notebook's output) cannot pass both.
LLC_CURVE_CASES = [[(5, 0), (5, 1), (6, 0)], [(6, 0), (3, 0)]]


def _parameters(models: list[torch.nn.Module]) -> list[torch.Tensor]:
    return [p.detach().clone() for m in models for p in m.parameters()]


@exercise_check
def check_llc_curve(llc_curve) -> str:
    """(means, stderrs) over checkpoints, against the package's batched call with the same settings.

    Tolerance: the exercise's call (seed=0) repeats the reference run exactly, so λ̂ equal to the reference
    within rtol 1e-6 pass, provided the stderrs are equal too (this rejects r.std = √8 × stderr exactly).
    Any other λ̂ (another seed, a loop of estimate_llc) are judged as a second run of the estimator: each
    checkpoint within 4 combined standard errors plus 3%, the learner's stderr counted at most as large as
    the reference's (so inflated error bars cannot widen the window), and the stderrs within a factor 4
    (between seeds the 8-chain stderr varied by up to ×3 in our runs). The estimator's tails are heavy at
    8 chains (the 3-gon's λ̂ varied by up to 6 of its standard errors between seeds), so a run with another
    seed than the exercise's usually passes (7 of seeds 1–8 in our runs) but need not: seed=0 is part of the
    exercise.
    A constant curve cannot pass: the second list's 3-gon (λ̂ ≈ 3) and the first list's 5+-gon (≈ 10) are
    further apart than their two windows together (checked on a grid of constants and stderrs).
    The wrong answers this rejects are a different β (nβ = n: λ̂ ×1.3–1.8 here), a summed loss (×batch:
    the chains diverge), the wrong lr, stderrs and means swapped, r.std for r.stderr, and results that
    ignore ``models``.
    """
    from slt_course_utils.llc import estimate_llc_trajectory

    x = tms.sample_high_sparsity(10_000, 6, generator=torch.Generator().manual_seed(7))
    lr = 1.4e-4
    for kgons in LLC_CURVE_CASES:
        models = _kgon_models(kgons)
        labels = [f"{tms.kgon_label(k, s)}-gon" for k, s in kgons]
        K = len(models)
        on = f"llc_curve on {K} checkpoints ({', '.join(labels)})"
        before = _parameters(models)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = estimate_llc_trajectory(models, (x, x), tms.tms_loss, lr=lr, progress=False, **LLC_CURVE_SETTINGS)
            got = _call_unchanged(llc_curve, "llc_curve", models, x, lr)
        if any(not torch.equal(a, b) for a, b in zip(before, _parameters(models), strict=True)):
            raise CheckFailure(f"{on}: your function changed the models' parameters in place; estimating λ̂ should "
                               "leave the checkpoints as they were (the sampler works on copies).")
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailure(f"{on}: should return a pair (means, stderrs), got {type(got).__name__}.")
        mean, se = _array(got[0], "means"), _array(got[1], "stderrs")
        if mean.shape != (K,) or se.shape != (K,):
            raise CheckFailure(f"{on}: means and stderrs should have one entry per model in `models`, shape ({K},); "
                               f"got {mean.shape} and {se.shape}.\nHint: one LLCResult per checkpoint: "
                               "[r.mean for r in results], for the models you were given.")
        if not (np.isfinite(mean).all() and np.isfinite(se).all()):
            raise CheckFailure(f"{on}: some λ̂ are NaN or infinite (the chains diverged): use the lr you were given.")
        ref_mean = np.array([r.mean for r in ref])
        ref_se = np.array([r.stderr for r in ref])
        if (se <= 0).any() or (se > 0.5 * np.abs(mean)).any():
            raise CheckFailure(f"{on}: the standard errors should be positive and small next to λ̂ (a few %); did "
                               "you swap means and stderrs?")
        if np.allclose(mean, ref_mean, rtol=1e-6, atol=1e-9):  # the exercise's call (seed=0): the same run
            if not np.allclose(se, ref_se, rtol=1e-6, atol=1e-9):
                raise CheckFailure(
                    f"{on}: your λ̂ are those of the run with the exercise's settings, but your standard errors "
                    f"({', '.join(f'{v:.3g}' for v in se)}) are not its standard errors.\nHint: return each result's "
                    "standard error of the mean over chains, r.stderr (not r.std, the spread of the chains).")
            continue
        # another run (another seed, a loop of estimate_llc): agreement within the estimator's noise
        for i, label in enumerate(labels):
            # the learner's stderr enters the window at most as large as the reference's (a correct run with another
            # seed has about the same): inflated error bars cannot widen it
            window = 4 * math.hypot(ref_se[i], min(se[i], ref_se[i])) + 0.03 * abs(ref_mean[i])
            if abs(mean[i] - ref_mean[i]) > window:
                raise CheckFailure(
                    f"{on}: at the {label} (checkpoint {i}) your λ̂ = {mean[i]:.2f} ± {se[i]:.2f} is not within 4 "
                    f"combined standard errors of the estimator's value with the settings of the exercise.\nHint: "
                    "estimate_llc_trajectory(models, (x, x), tms.tms_loss, lr=lr, num_chains=8, num_draws=300, "
                    "localization=1.0, batch_size=200, seed=0) on the `models`, `x` and `lr` you were given; nβ is "
                    "left at its default n/log n.")
        for i, label in enumerate(labels):
            ratio = se[i] / ref_se[i]
            if not 1 / 4 <= ratio <= 4:
                raise CheckFailure(
                    f"{on}: at the {label} (checkpoint {i}) your standard error {se[i]:.3g} is "
                    f"{'larger' if ratio > 1 else 'smaller'} than the estimator's by a factor of more than 4.\n"
                    "Hint: return each result's standard error of the mean over chains, r.stderr (not r.std, the "
                    "spread of the chains), from the run with the exercise's settings (seed=0).")
    return "one batched run over checkpoints × chains."
