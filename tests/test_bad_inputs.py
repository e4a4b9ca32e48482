"""No silent wrong numbers (issue 17): bad input gets a clear error; equivalent input gets the same answer.

The systematic table (every public function outside ``llc`` × NaN, ±∞, 0, negative, float-for-int,
string, NaN inside a tensor, generators, NumPy/0-d torch scalars) is ``tests/input_probe.py``; the
named cases below are the ones the issue lists, each checked for its message or its value.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from slt_course_utils import dln, free_energy, models, posterior, theory, tms, volume
from tests.input_probe import all_probes, run_probe

PROBES = all_probes()


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_probe_table(probe):
    outcome, detail = run_probe(probe)
    assert outcome == probe.should, f"{probe.id}: expected {probe.should}, got {outcome} ({detail})"


def test_probe_table_covers_every_public_module_outside_llc():
    names = {p.case.name.split(".")[0] for p in PROBES}
    assert names >= {"posterior", "models", "fisher", "singular", "theory", "volume", "free_energy",
                     "phase_transitions", "sampling", "tms", "dln", "grokking", "influence", "refined",
                     "development"}
    assert len(PROBES) > 1000


def test_the_probe_classifier_is_not_a_rubber_stamp():
    """run_probe must report NaN results as silent and torch's own errors as obscure."""
    from tests.input_probe import Case, Probe

    nan_case = Case("nan", lambda x: torch.tensor([x]) * math.nan, lambda: {"x": 1.0}, {})
    assert run_probe(Probe(nan_case, "x", "1", 1.0, "clear"))[0] == "silent"
    torch_case = Case("torch", lambda n: torch.zeros(n), lambda: {"n": 2}, {})
    assert run_probe(Probe(torch_case, "n", "2.5", 2.5, "clear"))[0] == "obscure"


# --- Silent garbage -----------------------------------------------------------------------------

@pytest.mark.parametrize("hessian", [-torch.eye(2), torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0])),
                                     torch.tensor([[1.0, 2.0], [2.0, 1.0]]), torch.zeros(2, 2)])
def test_laplace_rejects_hessians_that_are_not_positive_definite(hessian):
    # slogdet's sign is +1 for diag(−1, −1) and diag(−1, −1, 1, 1): the old test let these through.
    with pytest.raises(ValueError, match="not positive definite"):
        posterior.laplace_free_energy(1.0, hessian, 50, 0.0)


def test_laplace_value_and_asymmetric_hessian():
    H = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    expected = 50 * 1.0 - 0.0 + 1.0 * math.log(50 / (2 * math.pi)) + 0.5 * math.log(1.75)
    assert posterior.laplace_free_energy(1.0, H, 50, 0.0) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="not symmetric"):
        posterior.laplace_free_energy(1.0, torch.tensor([[2.0, 1.0], [0.0, 1.0]]), 50, 0.0)


def test_grid_posterior_with_zero_prior_or_infinite_loss_on_the_whole_grid():
    ax = torch.linspace(-2, 2, 41, dtype=torch.float64)
    zero_prior = posterior.log_uniform_prior(ax, 5.0, 6.0)  # support off the grid
    with pytest.raises(ValueError, match="zero at every grid point"):
        posterior.grid_posterior(ax, zero_prior, ax * ax, 10)
    with pytest.raises(ValueError, match="zero at every grid point"):
        posterior.grid_posterior(ax, torch.zeros_like(ax), torch.full_like(ax, math.inf), 10)
    with pytest.raises(ValueError, match="zero at every grid point"):
        posterior.free_energy_grid(zero_prior, ax * ax, 10, volume=0.1)


@pytest.mark.parametrize("widths", [[2.7, 3.9], [2, 3.0], (w for w in [2.5, 3])])
def test_dln_refuses_float_widths_like_theory(widths):
    widths = list(widths)
    for fn in (lambda: dln.DeepLinearNetwork(widths), lambda: dln.exact_llc(widths, 0),
               lambda: theory.rlct_deep_linear_network(widths, 0)):
        with pytest.raises(TypeError, match="integers"):
            fn()


def test_widths_from_a_generator_are_read_once():
    widths = [5, 5, 5, 5]
    expected = theory.DEEP_LINEAR_EXAMPLES[((5, 5, 5, 5), 2)]
    assert theory.rlct_deep_linear_network((w for w in widths), 2) == expected
    assert theory.dln_sigma((w for w in widths), 2) == theory.dln_sigma(widths, 2)
    assert dln.exact_llc((w for w in widths), 2) == expected[0]
    assert theory.num_parameters_deep_linear_network(w for w in widths) == 75
    assert dln.DeepLinearNetwork(np.array([3, 2])).widths == [3, 2]


@pytest.mark.parametrize("noise_std", [math.nan, -1.0, math.inf])
def test_sample_dln_data_rejects_bad_noise(noise_std):
    teacher = dln.random_true_network([3, 2, 3], 1, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="noise_std"):
        dln.sample_dln_data(teacher, 10, noise_std=noise_std)


def test_sample_dln_data_noise_is_added_with_the_requested_scale():
    teacher = dln.random_true_network([3, 2, 3], 1, generator=torch.Generator().manual_seed(0))
    x, y = dln.sample_dln_data(teacher, 20_000, noise_std=0.5, generator=torch.Generator().manual_seed(1))
    resid = y - teacher(x).detach()
    # 60 000 residuals: the sample std has relative s.e. 1/√(2·60 000) ≈ 0.003; 2 % is > 6 s.e.
    assert resid.std().item() == pytest.approx(0.5, rel=0.02)


def test_sample_dln_data_teacher_without_parameters():
    with pytest.raises(ValueError, match="teacher must be an nn.Module"):
        dln.sample_dln_data(torch.nn.Identity(), 5)


def test_dln_loss_refuses_broadcasting_shapes():
    with pytest.raises(ValueError, match=r"pred has shape \(4, 1\) but target has shape \(4,\)"):
        dln.dln_loss(torch.ones(4, 1), torch.ones(4))


@pytest.mark.parametrize("kwargs", [{"init_scale": math.nan}, {"init_scale": -0.1},
                                    {"W": torch.tensor([[math.nan, 0.0], [0.0, 1.0]])}, {"b": torch.tensor([0.0, math.inf])}])
def test_tms_model_rejects_non_finite_initialisation(kwargs):
    with pytest.raises(ValueError, match="init_scale|W contains|b contains"):
        tms.ToyModelOfSuperposition(2, 2, **kwargs)


@pytest.mark.parametrize("values", [[math.nan, 1.0, 2.0], [1.0, 2.0, math.inf]])
def test_free_energy_slope_rejects_non_finite_values(values):
    with pytest.raises(ValueError, match="NaN or infinite"):
        posterior.free_energy_slope([10, 100, 1000], values)


def test_free_energy_slope_rejects_n_zero():
    with pytest.raises(ValueError, match="every n must be positive"):
        posterior.free_energy_slope([0, 100, 1000], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("volume", [math.inf, 0.0, -1.0, math.nan])
def test_log_posterior_grid_rejects_bad_volume(volume):
    ax = torch.linspace(-1, 1, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="volume must be positive and finite"):
        posterior.log_posterior_grid(torch.zeros(5), ax * ax, 10, volume=volume)


def test_sample_sparse_and_high_sparsity_agree_on_n_zero():
    messages = []
    for fn in (tms.sample_high_sparsity, tms.sample_sparse):
        with pytest.raises(ValueError, match=r"n \(the number of samples\) must be a positive integer") as info:
            fn(0, 6)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# --- Wrongly rejected -----------------------------------------------------------------------------

def test_float32_linspace_is_a_uniform_grid():
    ax32 = torch.linspace(-2, 2, 101)  # the default dtype: steps differ by ~1e-7
    ax64 = torch.linspace(-2, 2, 101, dtype=torch.float64)
    assert posterior.cell_volume(ax32) == pytest.approx(0.04, rel=1e-6)
    a = posterior.grid_posterior(ax32, torch.zeros(101), ax32**2, 10)
    b = posterior.grid_posterior(ax64, torch.zeros(101, dtype=torch.float64), ax64**2, 10)
    # float32 grid points carry relative errors ~6e-8, so F differs by ~nL·1e-7 ≪ 1e-5.
    assert a.free_energy == pytest.approx(b.free_energy, abs=1e-5)
    big = torch.linspace(1000, 1001, 11)  # a float32 grid far from 0: rounding is eps·1000
    assert posterior.cell_volume(big) == pytest.approx(0.1, rel=1e-3)


def test_non_uniform_grids_are_still_rejected():
    with pytest.raises(ValueError, match="uniformly spaced"):
        posterior.cell_volume(torch.tensor([0.0, 1.0, 2.001]))
    with pytest.raises(ValueError, match="uniformly spaced"):
        posterior.cell_volume(torch.linspace(-2, 2, 101) ** 3)
    with pytest.raises(ValueError, match="uniformly spaced"):
        posterior.cell_volume(torch.linspace(2, -2, 11))


@pytest.mark.parametrize("n", [np.float32(50.0), torch.tensor(50.0), np.int64(50)])
def test_real_scalars_of_any_library_are_accepted(n):
    assert posterior.laplace_free_energy(1.0, torch.eye(2), n, 0.0) == pytest.approx(
        posterior.laplace_free_energy(1.0, torch.eye(2), 50, 0.0), rel=1e-12)
    assert free_energy.wbic_beta(n) == pytest.approx(1 / math.log(50))


# --- Obscure errors -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fn", "match"), [
    (lambda: tms.kgon_parameters(5, 6.0), "c .* must be an integer"),
    (lambda: tms.kgon_parameters(5.0, 6), "k .* must be an integer"),
    (lambda: tms.sample_high_sparsity(10.0, 6), "n .* must be an integer"),
    (lambda: tms.kgon_flat_dimension(5, 6, 0.5), "positive_biases must be an integer"),
    (lambda: dln.random_true_network([3, 2, 3], 1.0), "rank must be an integer"),
    (lambda: dln.sample_dln_data(dln.random_true_network([3, 2, 3], 1), 10.0), "n must be an integer"),
    (lambda: tms.train_tms(2, 6, 2, n=10.0, steps=1), "n must be an integer"),
])
def test_float_counts_are_a_clear_type_error(fn, match):
    with pytest.raises(TypeError, match=match):
        fn()


def test_dtype_mismatches_are_handled_in_the_package():
    # float32 W with float64 b (or int tensors) are converted, not passed to torch to fail.
    W, b = torch.ones(2, 6), torch.zeros(6, dtype=torch.float64)
    assert torch.isfinite(tms.population_loss(W, b))
    assert tms.population_loss(W.int(), b).dtype == torch.float32
    ax = torch.linspace(-1, 1, 11)
    post = posterior.grid_posterior(ax, torch.zeros(11, dtype=torch.float64), ax**2, 10)
    assert post.log_density.dtype == torch.float64
    x = torch.linspace(-1, 1, 5)
    assert models.gaussian_mean_loss(torch.tensor(0.0, dtype=torch.float64), x).dtype == torch.float64
    with pytest.raises(TypeError, match="floating-point"):
        posterior.free_energy_grid(torch.zeros(3, dtype=torch.int64), torch.zeros(3), 10, volume=0.1)


def test_volume_fit_reads_generators_once():
    eps = [1e-3, 1e-2, 1e-1]
    V = [1e-3 ** 0.5, 1e-2 ** 0.5, 1e-1 ** 0.5]
    a = volume.fit_rlct_from_volume(iter(eps), iter(V), 10**6)
    b = volume.fit_rlct_from_volume(eps, V, 10**6)
    assert a.lam == pytest.approx(b.lam) and a.lam == pytest.approx(0.5, abs=1e-12)


def test_fraction_results_are_unchanged():
    assert dln.exact_llc([5, 5, 5, 5], 2) == Fraction(11)


def test_mixed_float_dtypes_in_functional_helpers_give_the_float64_answer():
    gen = torch.Generator().manual_seed(0)
    W, b, x = torch.randn(2, 6, generator=gen, dtype=torch.float64), torch.zeros(6), torch.rand(5, 6, generator=gen)
    assert torch.allclose(tms.tms_forward(W, b, x), tms.tms_forward(W, b.double(), x.double()))
    rrr = models.ReducedRankRegression(3, 3, 2)
    w = rrr.true_parameter(1, generator=gen)
    xr, yr = rrr.sample(w, 6, generator=gen)
    assert torch.allclose(rrr.nll(w, xr.float(), yr.float()), rrr.nll(w, xr, yr), rtol=1e-5)
    logit = models.LogisticRegression(2)
    xl, yl = logit.sample([0.5, -0.5], 6, generator=gen)
    assert torch.allclose(logit.nll(torch.tensor([0.5, -0.5]), xl, yl), logit.nll(torch.tensor([0.5, -0.5]).double(), xl, yl),
                          rtol=1e-5)


@pytest.mark.parametrize("model", [tms.ToyModelOfSuperposition(6, 2), dln.DeepLinearNetwork([6, 2, 3])])
def test_models_say_what_to_do_with_a_dtype_or_width_mismatch(model):
    with pytest.raises(TypeError, match=r"dtype torch.float64 but the model's parameters are torch.float32"):
        model(torch.rand(4, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 6\)"):
        model(torch.rand(4, 5))


def test_tms_shapes_are_checked():
    with pytest.raises(ValueError, match="one c"):
        tms.tms_forward(torch.ones(2, 6), torch.zeros(6), torch.rand(5, 5))
    with pytest.raises(ValueError, match="must match"):
        tms.tms_loss(torch.rand(5, 6), torch.rand(5))
