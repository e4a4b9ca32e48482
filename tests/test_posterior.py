"""Grid posteriors and free energies (slt_course_utils.posterior) and the Gaussian-mean model."""

import math

import pytest
import torch

from slt_course_utils import models, posterior


def _setup(n, seed=0, lo=-8.0, hi=8.0, size=16001):
    x = models.sample_gaussian(n, 0.3, generator=torch.Generator().manual_seed(seed))
    w = torch.linspace(lo, hi, size, dtype=torch.float64)
    return x, w, models.gaussian_mean_loss(w, x), posterior.log_normal_prior(w, 0.0, 1.0)


@pytest.mark.parametrize("n", [1, 10, 1000, 1_000_000])
@pytest.mark.parametrize("beta", [1.0, 0.2])
def test_grid_free_energy_matches_exact_conjugate(n, beta):
    # The Riemann sum of a smooth, rapidly decaying density converges exponentially fast in the grid
    # spacing, so 1e-8 relative is reachable as long as the posterior spans several grid cells; at
    # n = 1e6 its sd is 1e-3 (β = 1), i.e. one cell, hence the looser 1e-6 there.
    x, w, loss, lp = _setup(n)
    if n == 1_000_000:
        w = torch.linspace(0.28, 0.32, 4001, dtype=torch.float64)
        loss, lp = models.gaussian_mean_loss(w, x), posterior.log_normal_prior(w, 0.0, 1.0)
    post = posterior.grid_posterior(w, lp, loss, n, beta)
    exact = models.gaussian_mean_conjugate(x, beta=beta)
    assert post.free_energy == pytest.approx(exact.free_energy, rel=1e-8 if n < 1e6 else 1e-6)
    assert post.mean().item() == pytest.approx(exact.mean, abs=1e-6)
    assert post.cov().item() == pytest.approx(exact.var, rel=1e-4)
    assert (post.density.sum() * post.volume).item() == pytest.approx(1.0, rel=1e-9)


def test_two_dimensional_grid_matches_product_of_one_dimensional():
    # Independent coordinates: F(2-D) = F(a) + F(b) when the loss and prior separate.
    x, w, loss, lp = _setup(50, size=401)
    a, b = torch.meshgrid(w, w, indexing="ij")
    loss2 = models.gaussian_mean_loss(a, x) + models.gaussian_mean_loss(b, x)
    lp2 = posterior.log_normal_prior(a) + posterior.log_normal_prior(b)
    f2 = posterior.grid_posterior((w, w), lp2, loss2, 50).free_energy
    f1 = posterior.grid_posterior(w, lp, loss, 50).free_energy
    assert f2 == pytest.approx(2 * f1, rel=1e-10)
    post = posterior.grid_posterior((w, w), lp2, loss2, 50)
    assert post.mean().shape == (2,) and post.cov().shape == (2, 2)


def test_uniform_prior_and_bad_inputs():
    w = torch.linspace(-1, 1, 5, dtype=torch.float64)
    lp = posterior.log_uniform_prior(w, -0.5, 0.5)
    assert torch.isinf(lp[0]) and lp[2].item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="low < high"):
        posterior.log_uniform_prior(w, 1, 1)
    with pytest.raises(ValueError, match="std must be positive"):
        posterior.log_normal_prior(w, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "positive and finite"),
        ({"n": -3}, "positive and finite"),
        ({"n": math.nan}, "positive and finite"),
        ({"beta": 0.0}, "inverse temperature"),
        ({"beta": math.inf}, "inverse temperature"),
    ],
)
def test_bad_n_and_beta_are_clear_errors(kwargs, message):
    x, w, loss, lp = _setup(10, size=11)
    args = {"n": 10, "beta": 1.0} | kwargs
    with pytest.raises(ValueError, match=message):
        posterior.grid_posterior(w, lp, loss, args["n"], args["beta"])


def test_shape_and_non_finite_errors():
    x, w, loss, lp = _setup(10, size=11)
    with pytest.raises(ValueError, match="same grid"):
        posterior.free_energy_grid(lp[:5], loss, 10, volume=0.1)
    with pytest.raises(ValueError, match="NaN"):
        posterior.free_energy_grid(lp, loss * math.nan, 10, volume=0.1)
    with pytest.raises(ValueError, match="grid axes give"):
        posterior.grid_posterior((w, w), lp, loss, 10)
    with pytest.raises(ValueError, match="uniformly spaced"):
        posterior.cell_volume(torch.tensor([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="volume must be positive"):
        posterior.free_energy_grid(lp, loss, 10, volume=0.0)


def test_gaussian_mean_model_values_and_errors():
    x = torch.tensor([0.0, 2.0], dtype=torch.float64)
    # L_n(1) = ½ log 2π + ((0−1)² + (2−1)²)/(2·2)
    assert models.gaussian_mean_loss(torch.tensor(1.0), x).item() == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5)
    assert models.gaussian_mean_population_loss(torch.tensor(0.3), 0.3).item() == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5)
    assert models.kl_gaussians(0, 1, 0, 1) == 0.0
    with pytest.raises(ValueError, match="positive integer"):
        models.sample_gaussian(0)
    with pytest.raises(ValueError, match="sigma"):
        models.sample_gaussian(3, sigma=-1.0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        models.gaussian_mean_loss(torch.tensor(0.0), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="beta"):
        models.gaussian_mean_conjugate(x, beta=0.0)


def test_regression_models_sample_and_loss():
    gen = torch.Generator().manual_seed(0)
    x, y = models.PRODUCT.sample([1.0, 0.5], 2000, generator=gen)
    w = torch.tensor([[1.0, 0.5], [0.0, 0.0]], dtype=torch.float64)
    loss = models.PRODUCT.empirical_loss(w, x, y)
    assert loss.shape == (2,) and loss[0] < loss[1]
    assert loss[0].item() == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5, abs=0.05)
    with pytest.raises(ValueError, match="last dimension d = 2"):
        models.LINE.empirical_loss(torch.zeros(3), x, y)
    with pytest.raises(ValueError, match="equal length"):
        models.LINE.nll(torch.zeros(2, dtype=torch.float64), x, y[:-1])
