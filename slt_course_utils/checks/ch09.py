"""Checks for chapter 09, development over training (solutions/09_development.ipynb)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from slt_course_utils import development, tms
from slt_course_utils.checks._core import CheckFailure, _as_array, assert_close, call_student, exercise_check


def _array(got: object, what: str) -> np.ndarray:
    try:
        return _as_array(got, what)
    except CheckFailure:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. a list of tensors of different shapes
        raise CheckFailure(f"{what}: could not read your result as an array of numbers ({err}).") from None


# ------------------------------------------------------------------------------------------------
# Exercise 1: log-spaced checkpoint steps (exact integers)
# ------------------------------------------------------------------------------------------------

@exercise_check
def check_log_spaced_steps(log_spaced_steps) -> str:
    """Distinct integers ≈ geomspace(1, total, num) rounded to the nearest integer, sorted."""
    for total, num in [(8000, 40), (100, 10), (5000, 25), (30, 50), (2, 2)]:
        got = call_student(log_spaced_steps, total, num)
        expected = development.log_spaced_steps(total, num)
        what = f"log_spaced_steps({total}, {num})"
        try:
            values = [int(s) for s in got]
        except (TypeError, ValueError):
            raise CheckFailure(f"{what}: should return a list of ints, got {type(got).__name__}.") from None
        if any(float(s) != int(s) for s in got):
            raise CheckFailure(f"{what}: every step should be a whole number (a training step), got {list(got)[:5]}….\n"
                               "Hint: round with np.rint and convert with int().")
        if values != sorted(set(values)):
            raise CheckFailure(f"{what}: the steps should be sorted and distinct (rounding makes early steps "
                               "coincide: keep each once).\nHint: sorted(set(...)).")
        if values[0] != 1 or values[-1] != total:
            raise CheckFailure(f"{what}: the first step should be 1 and the last {total} (the end of training); "
                               f"yours start at {values[0]} and end at {values[-1]}.")
        if values != expected:
            extra = sorted(set(values) - set(expected))[:3]
            raise CheckFailure(f"{what}: {len(values)} steps, some of them not on the rounded geometric grid "
                               f"(e.g. {extra}).\nHint: np.geomspace(1, total, num) gives evenly spaced log t; "
                               "round to the *nearest* integer (np.rint), not down.")
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
        got = call_student(smooth_log_time, steps.copy(), values.copy(), width)
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
        got = call_student(essential_dynamics, out.clone(), k)
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
    for name, P in [("a path that turns left twice", corner), ("a random walk in 3 dimensions", walk)]:
        got = call_student(turning_angles, P.copy())
        assert_close(_array(got, "turning_angles"), _angles(P), what=f"turning_angles on {name}", rtol=1e-7,
                     atol=1e-6, hint="one angle per *interior* checkpoint (K − 2 of them), between the steps "
                                     "P[k] − P[k−1] and P[k+1] − P[k], in degrees (0 = straight on, 180 = back).")
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
        got = call_student(quadratic_llc, torch.as_tensor(h.copy()), nbeta, gamma)
        assert_close(_array(got, "quadratic_llc"), _quadratic(h, nbeta, gamma),
                     what=f"quadratic_llc for {name} at nβ = {nbeta:g}, γ = {gamma:g}", rtol=1e-9, atol=1e-12,
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

def _kgon_models() -> list[torch.nn.Module]:
    out = []
    for k, sigma in [(5, 0), (5, 1), (6, 0)]:
        W, b = tms.kgon_parameters(k, 6, sigma)
        out.append(tms.ToyModelOfSuperposition(6, W=W.float(), b=b.float()))
    return out


LLC_CURVE_SETTINGS = {"num_chains": 8, "num_draws": 300, "localization": 1.0, "batch_size": 200, "seed": 0}


@exercise_check
def check_llc_curve(llc_curve) -> str:
    """(means, stderrs) over checkpoints, against the package's batched call with the same settings.

    Tolerance: the learner's estimate and the reference are two runs of the same estimator; a different
    seed or a loop of estimate_llc changes λ̂ by about its standard error, so each checkpoint must agree
    within 4 combined standard errors plus 3%. The wrong answers this rejects are a different β (nβ = n:
    λ̂ ×1.3 here), a summed loss (×batch), the wrong lr, and the stderrs returned as means.
    """
    models = _kgon_models()
    x = tms.sample_high_sparsity(10_000, 6, generator=torch.Generator().manual_seed(7))
    lr = 1.4e-4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from slt_course_utils.llc import estimate_llc_trajectory

        ref = estimate_llc_trajectory(models, (x, x), tms.tms_loss, lr=lr, progress=False, **LLC_CURVE_SETTINGS)
        got = call_student(llc_curve, models, x.clone(), lr)
    if not isinstance(got, tuple) or len(got) != 2:
        raise CheckFailure(f"llc_curve: should return a pair (means, stderrs), got {type(got).__name__}.")
    mean, se = _array(got[0], "means"), _array(got[1], "stderrs")
    if mean.shape != (3,) or se.shape != (3,):
        raise CheckFailure(f"llc_curve on 3 checkpoints: means and stderrs should have shape (3,), got {mean.shape} "
                           f"and {se.shape}.\nHint: one LLCResult per checkpoint: [r.mean for r in results].")
    if not (np.isfinite(mean).all() and np.isfinite(se).all()):
        raise CheckFailure("llc_curve: some λ̂ are NaN or infinite (the chains diverged): use the lr you were given.")
    ref_mean = np.array([r.mean for r in ref])
    ref_se = np.array([r.stderr for r in ref])
    if (se <= 0).any() or (se > 0.5 * np.abs(mean)).any():
        raise CheckFailure("llc_curve: the standard errors should be positive and small next to λ̂ (a few %); did you "
                           "swap means and stderrs?")
    for i, label in enumerate(["5-gon", "5+-gon", "6-gon"]):
        window = 4 * math.hypot(ref_se[i], se[i]) + 0.03 * abs(ref_mean[i])
        if abs(mean[i] - ref_mean[i]) > window:
            raise CheckFailure(
                f"llc_curve at the {label} (checkpoint {i}): your λ̂ = {mean[i]:.2f} ± {se[i]:.2f} is not within 4 "
                f"combined standard errors of the estimator's value with the settings of the exercise.\nHint: "
                "estimate_llc_trajectory(models, (x, x), tms.tms_loss, lr=lr, num_chains=8, num_draws=300, "
                "localization=1.0, batch_size=200, seed=0); nβ is left at its default n/log n.")
    return "one batched run over checkpoints × chains."
