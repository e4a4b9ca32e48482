"""A table of bad and edge inputs for every public function outside ``llc``: what each must do.

Each :class:`Case` is one public function with a valid baseline call and the kind of each argument.
:func:`variants` turns it into probes — the baseline with one argument replaced by a bad value
(NaN, ±∞, zero, negative, a float where a count is needed, a string, NaN inside a tensor, a
wrong dtype, an empty tensor, a generator) or by an equivalent good value (a NumPy or 0-d torch
scalar). :func:`run_probe` classifies what happened:

- ``clear``: ``ValueError``/``TypeError`` raised by the package itself (its message is ours);
- ``ok``: a result with no NaN or ±∞ in it;
- ``silent``: a result containing NaN or ±∞, with no error (garbage);
- ``obscure``: any other exception, or one raised from inside torch/NumPy.

A bad value must give ``clear``; a good alternative must give ``ok``. ``tests/test_bad_inputs.py``
asserts this for every probe, and ``benchmarks/probe_inputs.py`` prints the table.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import numpy as np
import torch

import slt_course_utils

PACKAGE_DIR = str(Path(slt_course_utils.__file__).resolve().parent)


@dataclass(frozen=True)
class Case:
    """A public function, a valid call ``fn(*args(), **kwargs())``, and the kind of each probed argument."""

    name: str
    fn: Callable[..., object]
    kwargs: Callable[[], dict]
    kinds: dict[str, str]


@dataclass(frozen=True)
class Probe:
    case: Case
    arg: str
    label: str
    value: object
    should: str  # "clear" or "ok"

    @property
    def id(self) -> str:
        return f"{self.case.name}({self.arg}={self.label})"


def _float_variants(base: float, kind: str) -> Iterator[tuple[str, object, str]]:
    yield "nan", math.nan, "clear"
    yield "inf", math.inf, "clear"
    yield "str", "1", "clear"
    if kind in ("pos_float", "nonneg_float"):
        yield "-1", -1.0, "clear"
    if kind == "pos_float":
        yield "0", 0.0, "clear"
    yield "np.float32", np.float32(base), "ok"
    yield "0-d tensor", torch.tensor(float(base)), "ok"


def _int_variants(base: int, kind: str) -> Iterator[tuple[str, object, str]]:
    yield "float", float(base) + 0.5, "clear"
    yield "int-valued float", float(base), "clear"
    yield "str", str(base), "clear"
    yield "-1", -1, "clear"
    if kind == "pos_int":
        yield "0", 0, "clear"
    yield "np.int64", np.int64(base), "ok"


def _tensor_variants(base: torch.Tensor, kind: str) -> Iterator[tuple[str, object, str]]:
    if base.is_floating_point() and base.numel() > 0:
        bad = base.clone()
        bad.reshape(-1)[0] = math.nan
        yield "NaN entry", bad, "clear"
        if kind != "loss_tensor":  # a loss may be +inf at some grid points (the density is 0 there)
            bad = base.clone()
            bad.reshape(-1)[-1] = math.inf
            yield "inf entry", bad, "clear"
    if kind == "tensor_any_dtype":
        other = torch.float32 if base.dtype == torch.float64 else torch.float64
        yield f"{other}", base.to(other), "ok"


def _seq_variants(base: list, kind: str) -> Iterator[tuple[str, object, str]]:
    yield "generator", (x for x in base), "ok"
    if kind == "int_seq":
        yield "floats", [x + 0.7 for x in base], "clear"
        yield "empty", [], "clear"
    if kind in ("float_seq", "pos_seq"):
        yield "NaN entry", [math.nan] + list(base[1:]), "clear"
    if kind == "pos_seq":
        yield "zero entry", [0] + list(base[1:]), "clear"


def variants(case: Case) -> Iterator[Probe]:
    base = case.kwargs()
    for arg, kind in case.kinds.items():
        value = base[arg]
        if kind in ("pos_float", "nonneg_float", "float"):
            gen = _float_variants(value, kind)
        elif kind in ("pos_int", "nonneg_int"):
            gen = _int_variants(value, kind)
        elif kind in ("tensor", "tensor_any_dtype", "loss_tensor"):
            gen = _tensor_variants(value, kind)
        elif kind in ("int_seq", "float_seq", "pos_seq"):
            gen = _seq_variants(value, kind)
        else:  # an explicit list of (label, value, should)
            raise ValueError(f"unknown kind {kind!r}")
        for label, bad, should in gen:
            yield Probe(case, arg, label, bad, should)


def _non_finite(x: object) -> bool:
    if isinstance(x, torch.Tensor):
        return bool(x.is_floating_point() and not torch.isfinite(x.detach()).all())
    if isinstance(x, np.ndarray):
        return bool(np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all())
    if isinstance(x, float):
        return not math.isfinite(x)
    if isinstance(x, (tuple, list)):
        return any(_non_finite(v) for v in x)
    if isinstance(x, dict):
        return any(_non_finite(v) for v in x.values())
    if is_dataclass(x) and not isinstance(x, type):
        return any(_non_finite(getattr(x, f.name)) for f in fields(x))
    if isinstance(x, torch.nn.Module):
        return any(_non_finite(p) for p in x.parameters())
    return False


def run_probe(probe: Probe) -> tuple[str, str]:
    """(outcome, detail) of calling the case with ``probe.arg`` replaced by ``probe.value``."""
    kwargs = probe.case.kwargs() | {probe.arg: probe.value}
    try:
        out = probe.case.fn(**kwargs)
    except (ValueError, TypeError) as err:
        frames = traceback.extract_tb(err.__traceback__)
        # Ours: raised by a ``raise`` statement in the package (not by a torch/NumPy C call it made).
        ours = bool(frames) and frames[-1].filename.startswith(PACKAGE_DIR) and "raise" in (frames[-1].line or "")
        return ("clear" if ours else "obscure"), f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 — anything else is an obscure error by definition
        return "obscure", f"{type(err).__name__}: {err}"
    if _non_finite(out):
        return "silent", f"returned non-finite {type(out).__name__}"
    return "ok", type(out).__name__


# --- The table -------------------------------------------------------------------------------

def _axes():
    import matplotlib.pyplot as plt

    plt.close("all")
    return plt.subplots()[1]


def _cases() -> list[Case]:  # noqa: PLR0915 — one long table
    from slt_course_utils import (
        development,
        dln,
        fisher,
        free_energy,
        grokking,
        influence,
        models,
        phase_transitions,
        plotting,
        posterior,
        refined,
        sampling,
        singular,
        theory,
        tms,
        volume,
    )

    g = torch.linspace(-2, 2, 21, dtype=torch.float64)
    quad = lambda w: (w * w).sum(-1)  # noqa: E731
    flat = lambda w: torch.zeros(w.shape[:-1], dtype=torch.float64)  # noqa: E731
    kv = torch.rand(5000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cases = [
        # posterior
        Case("posterior.cell_volume", lambda ax: posterior.cell_volume(ax), lambda: {"ax": g.clone()}, {"ax": "tensor_any_dtype"}),
        Case("posterior.free_energy_grid", posterior.free_energy_grid,
             lambda: {"log_prior": torch.zeros(21, dtype=torch.float64), "loss": g * g, "n": 10, "beta": 1.0, "volume": 0.2},
             {"log_prior": "tensor", "loss": "loss_tensor", "n": "pos_float", "beta": "pos_float", "volume": "pos_float"}),
        Case("posterior.log_posterior_grid", posterior.log_posterior_grid,
             lambda: {"log_prior": torch.zeros(21, dtype=torch.float64), "loss": g * g, "n": 10, "beta": 1.0, "volume": 0.2},
             {"n": "pos_float", "beta": "pos_float", "volume": "pos_float"}),
        Case("posterior.grid_posterior", posterior.grid_posterior,
             lambda: {"axes": g.clone(), "log_prior": torch.zeros(21, dtype=torch.float64), "loss": g * g, "n": 10, "beta": 1.0},
             {"axes": "tensor_any_dtype", "log_prior": "tensor", "loss": "loss_tensor", "n": "pos_float", "beta": "pos_float"}),
        Case("posterior.log_normal_prior", posterior.log_normal_prior, lambda: {"w": g.clone(), "mean": 0.0, "std": 1.0},
             {"mean": "float", "std": "pos_float"}),
        Case("posterior.log_uniform_prior", posterior.log_uniform_prior, lambda: {"w": g.clone(), "low": -3.0, "high": 3.0},
             {"low": "float", "high": "float"}),
        Case("posterior.free_energy_adaptive", posterior.free_energy_adaptive,
             lambda: {"loss_fn": quad, "log_prior_fn": flat, "bounds": [(-2.0, 2.0)], "n": 10, "beta": 1.0, "points": 33,
                      "window": 40.0, "tol": 1e-4},
             {"n": "pos_float", "beta": "pos_float", "points": "pos_int", "window": "pos_float", "tol": "pos_float"}),
        Case("posterior.laplace_free_energy", posterior.laplace_free_energy,
             lambda: {"loss_at_w0": 1.0, "hessian": torch.eye(2, dtype=torch.float64), "n": 50, "log_prior_at_w0": 0.0,
                      "beta": 1.0},
             {"loss_at_w0": "float", "hessian": "tensor_any_dtype", "n": "pos_float", "log_prior_at_w0": "float",
              "beta": "pos_float"}),
        Case("posterior.bic", posterior.bic, lambda: {"n": 100, "loss_min": 1.0, "d": 2},
             {"n": "pos_float", "loss_min": "float", "d": "nonneg_int"}),
        Case("posterior.free_energy_slope", posterior.free_energy_slope,
             lambda: {"ns": [10.0, 100.0, 1000.0, 10000.0], "F_minus_nLn": [1.0, 2.1, 3.0, 4.2], "multiplicity": 1},
             {"ns": "pos_seq", "F_minus_nLn": "float_seq", "multiplicity": "pos_int"}),
        # models
        Case("models.sample_gaussian", models.sample_gaussian, lambda: {"n": 5, "mean": 0.0, "sigma": 1.0},
             {"n": "pos_int", "mean": "float", "sigma": "pos_float"}),
        Case("models.gaussian_mean_loss", models.gaussian_mean_loss, lambda: {"w": g.clone(), "x": g.clone(), "sigma": 1.0},
             {"x": "tensor_any_dtype", "sigma": "pos_float"}),
        Case("models.gaussian_mean_population_loss", models.gaussian_mean_population_loss,
             lambda: {"w": g.clone(), "w0": 0.5, "sigma": 1.0}, {"w0": "float", "sigma": "pos_float"}),
        Case("models.gaussian_mean_conjugate", models.gaussian_mean_conjugate,
             lambda: {"x": g.clone(), "prior_mean": 0.0, "prior_std": 1.0, "sigma": 1.0, "beta": 1.0},
             {"x": "tensor_any_dtype", "prior_mean": "float", "prior_std": "pos_float", "sigma": "pos_float",
              "beta": "pos_float"}),
        Case("models.kl_gaussians", models.kl_gaussians, lambda: {"mean_q": 0.0, "var_q": 1.0, "mean_p": 1.0, "var_p": 2.0},
             {"mean_q": "float", "var_q": "pos_float", "mean_p": "float", "var_p": "pos_float"}),
        Case("models.gauss_hermite_normal", models.gauss_hermite_normal, lambda: {"nodes": 10}, {"nodes": "pos_int"}),
        Case("models.trapezoid_normal", models.trapezoid_normal, lambda: {"step": 0.1, "cutoff": 8.0},
             {"step": "pos_float", "cutoff": "pos_float"}),
        Case("models.tanh_network", models.tanh_network, lambda: {"hidden": 2, "sigma": 1.0},
             {"hidden": "pos_int", "sigma": "pos_float"}),
        Case("models.ReducedRankRegression", models.ReducedRankRegression, lambda: {"M": 3, "N": 3, "H": 2, "sigma": 1.0},
             {"M": "pos_int", "N": "pos_int", "H": "pos_int", "sigma": "pos_float"}),
        Case("models.GaussianRegression", models.GaussianRegression,
             lambda: {"name": "line", "mean_fn": lambda w, x: w[..., 0:1] * x, "d": 1, "sigma": 1.0},
             {"d": "pos_int", "sigma": "pos_float"}),
        Case("models.PRODUCT.sample", lambda w0, n: models.PRODUCT.sample(w0, n), lambda: {"w0": torch.tensor([0.5, 0.5]), "n": 5},
             {"w0": "tensor_any_dtype", "n": "pos_int"}),
        Case("models.LINE_STATS.population_statistics", lambda w0, n: models.LINE_STATS.population_statistics(w0, n),
             lambda: {"w0": torch.tensor([0.5, 0.5]), "n": 5}, {"w0": "tensor", "n": "pos_int"}),
        Case("models.ReducedRankRegression.true_parameter",
             lambda rank: models.ReducedRankRegression(3, 3, 2).true_parameter(rank), lambda: {"rank": 1},
             {"rank": "nonneg_int"}),
        Case("models.LogisticRegression", models.LogisticRegression, lambda: {"d": 2}, {"d": "pos_int"}),
        # fisher
        Case("fisher.fisher_tanh", fisher.fisher_tanh, lambda: {"a": 1.0, "b": 0.5, "sigma": 1.0, "step": 0.05},
             {"a": "float", "b": "float", "sigma": "pos_float", "step": "pos_float"}),
        Case("fisher.fisher_logistic", fisher.fisher_logistic, lambda: {"w": torch.tensor([0.5, 0.1]), "step": 0.05},
             {"w": "tensor_any_dtype", "step": "pos_float"}),
        Case("fisher.fisher_eigenvalues", fisher.fisher_eigenvalues, lambda: {"info": torch.eye(2)}, {"info": "tensor_any_dtype"}),
        Case("fisher.fisher_rank", fisher.fisher_rank, lambda: {"info": torch.eye(2), "tol": 1e-8},
             {"info": "tensor_any_dtype", "tol": "pos_float"}),
        # singular
        Case("singular.tanh_loss_grid", singular.tanh_loss_grid,
             lambda: {"a_axis": g.clone(), "b_axis": g.clone(), "x": g.clone(), "y": g.clone(), "sigma": 1.0},
             {"a_axis": "tensor_any_dtype", "b_axis": "tensor", "x": "tensor_any_dtype", "y": "tensor", "sigma": "pos_float"}),
        Case("singular.tanh_kl", singular.tanh_kl, lambda: {"a": g.clone(), "b": g.clone(), "a0": 0.0, "b0": 0.0},
             {"a": "tensor_any_dtype", "a0": "float", "b0": "float"}),
        Case("singular.tanh_true_set", singular.tanh_true_set,
             lambda: {"a": g.clone(), "b": g.clone(), "a0": 0.0, "b0": 0.0, "tol": 0.01}, {"tol": "pos_float"}),
        Case("singular.tanh_symmetry_count", singular.tanh_symmetry_count, lambda: {"hidden": 2}, {"hidden": "pos_int"}),
        Case("singular.product_map_rank", singular.product_map_rank, lambda: {"M": 3, "N": 3, "rank_A": 1, "rank_B": 1},
             {"M": "nonneg_int", "N": "nonneg_int", "rank_A": "nonneg_int", "rank_B": "nonneg_int"}),
        Case("singular.random_factors_with_ranks", singular.random_factors_with_ranks,
             lambda: {"model": models.ReducedRankRegression(3, 3, 2), "rank_A": 1, "rank_B": 1},
             {"rank_A": "nonneg_int", "rank_B": "nonneg_int"}),
        Case("singular.bic_gap", singular.bic_gap, lambda: {"ns": [10.0, 100.0, 1000.0], "F_minus_nL": [1.0, 2.0, 3.0], "d": 2},
             {"ns": "pos_seq", "F_minus_nL": "float_seq", "d": "nonneg_int"}),
        # theory
        Case("theory.rlct_regular", theory.rlct_regular, lambda: {"d": 2}, {"d": "pos_int"}),
        Case("theory.rlct_homogeneous_radial", theory.rlct_homogeneous_radial, lambda: {"d": 2, "k": 2},
             {"d": "pos_int", "k": "pos_int"}),
        Case("theory.rlct_normal_crossing", theory.rlct_normal_crossing, lambda: {"k": [1, 2], "h": [0, 0]},
             {"k": "int_seq", "h": "int_seq"}),
        Case("theory.rlct_reduced_rank_regression", theory.rlct_reduced_rank_regression,
             lambda: {"M": 3, "N": 3, "H": 2, "r": 1}, {"M": "pos_int", "N": "pos_int", "H": "pos_int", "r": "nonneg_int"}),
        Case("theory.rlct_deep_linear_network", theory.rlct_deep_linear_network,
             lambda: {"widths": [3, 2, 2, 3], "true_rank": 1}, {"widths": "int_seq", "true_rank": "nonneg_int"}),
        Case("theory.num_parameters_deep_linear_network", theory.num_parameters_deep_linear_network,
             lambda: {"widths": [3, 2, 2, 3]}, {"widths": "int_seq"}),
        # volume
        Case("volume.uniform_prior_sampler", volume.uniform_prior_sampler, lambda: {"d": 2, "radius": 1.0},
             {"d": "pos_int", "radius": "pos_float"}),
        Case("volume.power_prior_sampler", volume.power_prior_sampler, lambda: {"h": [0.0, 1.0], "radius": 1.0},
             {"h": "float_seq", "radius": "pos_float"}),
        Case("volume.volume_samples", volume.volume_samples,
             lambda: {"K": quad, "prior_sampler": volume.uniform_prior_sampler(2), "num_samples": 100, "chunk_size": 64},
             {"num_samples": "pos_int", "chunk_size": "pos_int"}),
        Case("volume.volume_curve", volume.volume_curve, lambda: {"K_values": kv.clone(), "eps": [0.01, 0.1]},
             {"K_values": "tensor_any_dtype", "eps": "pos_seq"}),
        Case("volume.log_spaced_eps", volume.log_spaced_eps,
             lambda: {"K_values": kv.clone(), "num": 8, "min_count": 50, "max_fraction": 0.2},
             {"K_values": "tensor", "num": "pos_int", "min_count": "pos_int", "max_fraction": "pos_float"}),
        Case("volume.fit_rlct_from_volume", volume.fit_rlct_from_volume,
             lambda: {"eps": [1e-3, 1e-2, 1e-1], "V": [1e-3, 1e-2, 1e-1], "num_samples": 100_000, "m": 1, "min_count": 20},
             {"eps": "pos_seq", "V": "float_seq", "num_samples": "pos_int", "m": "pos_int", "min_count": "pos_int"}),
        # free_energy
        Case("free_energy.monomial_free_energy", free_energy.monomial_free_energy,
             lambda: {"k": 2, "p": 1, "sigma": 1.0, "beta": 1.0, "tol": 1e-6},
             {"k": "pos_int", "p": "pos_int", "sigma": "pos_float", "beta": "pos_float", "tol": "pos_float"}),
        Case("free_energy.fit_learning_coefficient", free_energy.fit_learning_coefficient,
             lambda: {"ns": [10.0, 100.0, 1000.0, 10000.0], "excess": torch.tensor([1.0, 2.1, 3.0, 4.2]), "multiplicity": 1},
             {"ns": "pos_seq", "excess": "tensor_any_dtype", "multiplicity": "pos_int"}),
        Case("free_energy.wbic_beta", free_energy.wbic_beta, lambda: {"n": 100}, {"n": "pos_float"}),
        Case("free_energy.wbic_samples", free_energy.wbic_samples,
             lambda: {"loss_fn": quad, "samples": torch.ones(4, 1), "n": 100}, {"samples": "tensor_any_dtype", "n": "pos_float"}),
        Case("free_energy.tempered_log_density", free_energy.tempered_log_density,
             lambda: {"loss_fn": quad, "log_prior_fn": flat, "n": 100, "beta": 1.0}, {"n": "pos_float", "beta": "pos_float"}),
        Case("free_energy.waic", free_energy.waic, lambda: {"log_lik": -torch.rand(4, 3) - 1, "weights": torch.ones(4)},
             {"log_lik": "tensor_any_dtype", "weights": "tensor_any_dtype"}),
        # phase_transitions
        Case("phase_transitions.TwoPhasePotential", phase_transitions.TwoPhasePotential,
             lambda: {"loss_gap": 0.005, "alpha": 0.1, "prior_std": 1.0},
             {"loss_gap": "pos_float", "alpha": "pos_float", "prior_std": "pos_float"}),
        Case("phase_transitions.critical_n", phase_transitions.critical_n,
             lambda: {"loss_gap": 0.005, "lambda_gap": 0.5, "multiplicity_gap": 0, "constant_gap": 0.0},
             {"loss_gap": "pos_float", "lambda_gap": "float", "constant_gap": "float"}),
        Case("phase_transitions.gradient_descent", phase_transitions.gradient_descent,
             lambda: {"loss_fn": quad, "init": torch.tensor([1.0, 1.0]), "lr": 0.1, "steps": 3, "noise_std": 0.0},
             {"init": "tensor_any_dtype", "lr": "pos_float", "steps": "pos_int", "noise_std": "nonneg_float"}),
        Case("phase_transitions.TWO_PHASE.posterior_grid",
             lambda n, size, limit: phase_transitions.TWO_PHASE.posterior_grid(n, size=size, limit=limit),
             lambda: {"n": 100.0, "size": 21, "limit": 2.0}, {"n": "pos_float", "size": "pos_int", "limit": "pos_float"}),
        # plotting
        Case("plotting.set_style", plotting.set_style, lambda: {"dpi": 80}, {"dpi": "pos_float"}),
        Case("plotting.annotate_free_energy", lambda free_energy: plotting.annotate_free_energy(_axes(), free_energy),
             lambda: {"free_energy": 1.5}, {"free_energy": "float"}),
        # sampling
        Case("sampling.metropolis_hastings", sampling.metropolis_hastings,
             lambda: {"log_density": lambda w: -quad(w), "init": torch.zeros(2, 1), "step_size": 0.5, "num_samples": 5,
                      "num_burnin": 1, "show_progress": False},
             {"init": "tensor_any_dtype", "step_size": "pos_float", "num_samples": "pos_int", "num_burnin": "nonneg_int"}),
        Case("sampling.hamiltonian_monte_carlo", sampling.hamiltonian_monte_carlo,
             lambda: {"log_density": lambda w: -quad(w), "init": torch.zeros(2, 1), "step_size": 0.1, "num_leapfrog": 3,
                      "num_samples": 5, "show_progress": False},
             {"init": "tensor_any_dtype", "step_size": "pos_float", "num_leapfrog": "pos_int", "num_samples": "pos_int"}),
        Case("sampling.effective_sample_size", sampling.effective_sample_size,
             lambda: {"x": torch.randn(2, 50, 1, generator=torch.Generator().manual_seed(0))}, {"x": "tensor_any_dtype"}),
        # grokking
        Case("grokking.modular_addition_data", grokking.modular_addition_data,
             lambda: {"p": 5, "train_frac": 0.4, "seed": 0}, {"p": "pos_int", "train_frac": "pos_float"}),
        Case("grokking.ModularMLP", grokking.ModularMLP, lambda: {"p": 5, "embed_dim": 3, "hidden": 4},
             {"p": "pos_int", "embed_dim": "pos_int", "hidden": "pos_int"}),
        Case("grokking.train_modular_addition", grokking.train_modular_addition,
             lambda: {"data": grokking.modular_addition_data(5), "steps": [1, 2], "p": 5, "embed_dim": 3, "hidden": 4,
                      "lr": 1e-3, "weight_decay": 1.0, "progress": False},
             {"lr": "pos_float", "weight_decay": "nonneg_float"}),
        # development (chapter 9); steps may start at 0 (initialisation), so they are float_seq, not pos_seq
        Case("development.log_spaced_steps", development.log_spaced_steps, lambda: {"total": 1000, "num": 10},
             {"total": "pos_int", "num": "pos_int"}),
        Case("development.smooth_log_time", development.smooth_log_time,
             lambda: {"steps": [1, 10, 100, 1000, 10000], "values": [1.0, 2.0, 2.5, 4.0, 4.1], "width": 0.15},
             {"steps": "float_seq", "values": "float_seq", "width": "pos_float"}),
        Case("development.stage_boundaries", development.stage_boundaries,
             lambda: {"steps": [1, 3, 10, 30, 100, 300, 1000, 3000], "llc": [0.0, 0.1, 1.0, 1.1, 1.1, 2.0, 2.1, 2.1],
                      "width": 0.15, "flat": 0.15, "min_change": 0.2},
             {"steps": "float_seq", "llc": "float_seq", "width": "pos_float", "flat": "pos_float", "min_change": "pos_float"}),
        Case("development.loss_plateaus", development.loss_plateaus,
             lambda: {"steps": [1, 3, 10, 30, 100, 300, 1000, 3000], "loss": [1.0, 1.0, 1.0, 0.3, 0.1, 0.1, 0.1, 0.1],
                      "max_slope": 0.1, "min_decades": 0.3, "width": 0.05},
             {"steps": "float_seq", "loss": "pos_seq", "max_slope": "pos_float", "min_decades": "pos_float",
              "width": "pos_float"}),
        Case("development.essential_dynamics", development.essential_dynamics,
             lambda: {"outputs": torch.randn(6, 4, 2, generator=torch.Generator().manual_seed(0)), "num_components": 2},
             {"outputs": "tensor_any_dtype", "num_components": "pos_int"}),
        Case("development.turning_points", development.turning_points,
             lambda: {"projections": torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [2.0, 2.0]]),
                      "min_angle": 60.0, "min_step": 0.02},
             {"projections": "tensor_any_dtype", "min_angle": "pos_float", "min_step": "pos_float"}),
        Case("development.outputs_on_probe", development.outputs_on_probe,
             lambda: {"models": [torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)], "probe": torch.zeros(4, 3)},
             {"probe": "tensor"}),
        # influence, refined (chapter 10)
        Case("influence.draws_covariance", influence.draws_covariance,
             lambda: {"a": torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0)),
                      "b": torch.randn(2, 5, generator=torch.Generator().manual_seed(1))},
             {"a": "tensor", "b": "tensor"}),
        Case("influence.linear_regression_posterior", influence.linear_regression_posterior,
             lambda: {"X": torch.eye(3, dtype=torch.float64).repeat(2, 1), "y": torch.ones(6, dtype=torch.float64),
                      "nbeta": 10.0, "localization": 1.0},
             {"X": "tensor", "nbeta": "pos_float", "localization": "nonneg_float"}),
        Case("influence.gaussian_susceptibility", influence.gaussian_susceptibility,
             lambda: {"hessian": torch.eye(2), "probe_hessian": 2 * torch.eye(2), "nbeta": 10.0, "localization": 1.0},
             {"hessian": "tensor", "nbeta": "pos_float", "localization": "nonneg_float"}),
        Case("refined.localized_quadratic_target", refined.localized_quadratic_target,
             lambda: {"hessian": torch.eye(2), "nbeta": 10.0, "localization": 1.0},
             {"hessian": "tensor", "nbeta": "pos_float", "localization": "nonneg_float"}),
        Case("refined.restricted_calibration", refined.restricted_calibration,
             lambda: {"hessian": torch.eye(2), "nbeta": 10.0, "localization": 1.0},
             {"hessian": "tensor", "nbeta": "pos_float", "localization": "nonneg_float"}),
        # tms
        Case("tms.ToyModelOfSuperposition", tms.ToyModelOfSuperposition,
             lambda: {"c": 6, "m": 2, "init_scale": 0.1, "W": None, "b": None}, {"c": "pos_int", "m": "pos_int",
                                                                                  "init_scale": "nonneg_float"}),
        Case("tms.ToyModelOfSuperposition(W=...)", tms.ToyModelOfSuperposition,
             lambda: {"c": 3, "m": 2, "W": torch.ones(2, 3), "b": torch.zeros(3)}, {"W": "tensor_any_dtype", "b": "tensor"}),
        Case("tms.sample_high_sparsity", tms.sample_high_sparsity, lambda: {"n": 5, "c": 6, "num_seeds": 2},
             {"n": "pos_int", "c": "pos_int", "num_seeds": "pos_int"}),
        Case("tms.sample_sparse", tms.sample_sparse, lambda: {"n": 5, "c": 6, "sparsity": 0.9, "num_seeds": 2},
             {"n": "pos_int", "c": "pos_int", "sparsity": "nonneg_float", "num_seeds": "pos_int"}),
        Case("tms.population_loss", tms.population_loss, lambda: {"W": torch.ones(2, 6), "b": torch.zeros(6)},
             {"W": "tensor_any_dtype", "b": "tensor_any_dtype"}),
        Case("tms.population_loss_quadrature", tms.population_loss_quadrature,
             lambda: {"W": torch.ones(2, 6), "b": torch.zeros(6), "points": 101},
             {"W": "tensor_any_dtype", "b": "tensor", "points": "pos_int"}),
        Case("tms.kgon_label", tms.kgon_label, lambda: {"k": 5, "positive_biases": 1}, {"k": "nonneg_int",
                                                                                        "positive_biases": "nonneg_int"}),
        Case("tms.kgon_optimal_shape", tms.kgon_optimal_shape, lambda: {"k": 4}, {"k": "pos_int"}),
        Case("tms.kgon_parameters", tms.kgon_parameters,
             lambda: {"k": 4, "c": 6, "positive_biases": 1, "rotation": 0.0, "dead_bias": -1.0},
             {"k": "pos_int", "c": "pos_int", "positive_biases": "nonneg_int", "rotation": "float", "dead_bias": "float"}),
        Case("tms.kgon_flat_dimension", tms.kgon_flat_dimension, lambda: {"k": 5, "c": 6, "positive_biases": 0},
             {"k": "pos_int", "c": "pos_int", "positive_biases": "nonneg_int"}),
        Case("tms.classify_kgon", tms.classify_kgon, lambda: {"W": torch.ones(2, 6), "b": torch.zeros(6)},
             {"W": "tensor_any_dtype", "b": "tensor_any_dtype"}),
        Case("tms.longest_plateau", tms.longest_plateau,
             lambda: {"steps": np.arange(5), "loss": np.ones(5), "target": 1.0, "rel_tol": 0.1},
             {"target": "pos_float", "rel_tol": "pos_float"}),
        Case("tms.free_energy_asymptotic", tms.free_energy_asymptotic,
             lambda: {"n": 100.0, "loss": 0.1, "llc": 7.0, "constant": 0.0},
             {"n": "pos_float", "loss": "float", "llc": "float", "constant": "float"}),
        Case("tms.train_tms", tms.train_tms,
             lambda: {"num_seeds": 2, "c": 4, "m": 2, "n": 16, "steps": 2, "lr": 0.01, "batch_size": 8, "init_scale": 0.1,
                      "log_every": 1, "progress": False},
             {"num_seeds": "pos_int", "n": "pos_int", "steps": "nonneg_int", "lr": "pos_float", "batch_size": "pos_int",
              "init_scale": "nonneg_float", "log_every": "pos_int"}),
        # dln
        Case("dln.DeepLinearNetwork", dln.DeepLinearNetwork, lambda: {"widths": [3, 2, 3]}, {"widths": "int_seq"}),
        Case("dln.exact_llc", dln.exact_llc, lambda: {"widths": [3, 2, 3], "true_rank": 1},
             {"widths": "int_seq", "true_rank": "nonneg_int"}),
        Case("dln.num_parameters", dln.num_parameters, lambda: {"widths": [3, 2, 3]}, {"widths": "int_seq"}),
        Case("dln.random_true_network", dln.random_true_network, lambda: {"widths": [3, 2, 3], "rank": 1},
             {"widths": "int_seq", "rank": "nonneg_int"}),
        Case("dln.sample_dln_data", dln.sample_dln_data,
             lambda: {"teacher": dln.random_true_network([3, 2, 3], 1, generator=torch.Generator().manual_seed(0)), "n": 5,
                      "input_range": 1.0, "noise_std": 0.1},
             {"n": "pos_int", "input_range": "pos_float", "noise_std": "nonneg_float"}),
        Case("dln.dln_loss", dln.dln_loss, lambda: {"pred": torch.ones(4, 2), "target": torch.zeros(4, 2)}, {}),
    ]
    return cases


def all_probes() -> list[Probe]:
    return [p for case in _cases() for p in variants(case)]

