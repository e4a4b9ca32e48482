"""Issue #18's estimator API: restrict=, evaluate=, observables / sample_losses, save/load, trajectories.

Exact targets are Gaussian: for a linear model the localised tempered posterior
∝ exp(−nβL_n(w) − γ/2|w − w₀|²) is N(μ, A⁻¹) with A = nβH + γI, so E[nβ(L − L(w₀))] has a closed
form (below). MALA is exact for it at any ε, so its tolerance is statistical only: 4 standard
errors over chains (each chain's mean of many draws is close to normal).
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from slt_course_utils.llc import (
    LLCResult,
    estimate_llc,
    estimate_llc_trajectory,
    expected_llc_quadratic,
    sample_losses,
)

SIGMA = 0.5


def _nll(out, target):
    """Gaussian negative log likelihood per sample (up to a constant), noise σ = 0.5."""
    return ((out - target) ** 2).mean() / (2 * SIGMA**2)


def _regression(n=400, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.linspace(-1, 1, d, dtype=torch.float64)
    Y = (X @ w + SIGMA * torch.randn(n, generator=g, dtype=torch.float64)).unsqueeze(-1)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():  # the least-squares minimiser: w* is the exact minimum of L_n
        model.weight.copy_(torch.linalg.lstsq(X, Y).solution.T)
    return model, X, Y


def _gaussian_target(X, w_hat, w0, nbeta, gamma, free=None):
    """E[nβ(L(w) − L(w₀))] under N(μ, A⁻¹), A = nβH + γI, H = XᵀX/(nσ²), on the coordinates ``free``.

    L(w) − L(ŵ) = ½(w − ŵ)ᵀH(w − ŵ) (ŵ the least-squares fit); μ − ŵ = γA⁻¹(w₀ − ŵ).
    """
    n = len(X)
    H = X.T @ X / (n * SIGMA**2)
    idx = torch.arange(len(w_hat)) if free is None else torch.as_tensor(free)
    Hs = H[idx][:, idx]
    # restricted: the other coordinates are held at w₀, so along idx the loss is a quadratic whose
    # minimiser is ŵ_s = argmin over idx with the rest at w₀
    rest = torch.ones(len(w_hat), dtype=torch.bool)
    rest[idx] = False
    delta_rest = (w0 - w_hat)[rest]
    g0 = H[idx][:, rest] @ delta_rest  # gradient of the quadratic along idx at w_hat-on-idx
    w_hat_s = w_hat[idx] - torch.linalg.solve(Hs, g0)
    A = nbeta * Hs + gamma * torch.eye(len(idx), dtype=X.dtype)
    Ainv = torch.linalg.inv(A)
    mu = w_hat_s + gamma * Ainv @ (w0[idx] - w_hat_s)
    e_quad = 0.5 * torch.trace(Hs @ Ainv) + 0.5 * (mu - w_hat_s) @ Hs @ (mu - w_hat_s)
    l0 = 0.5 * (w0[idx] - w_hat_s) @ Hs @ (w0[idx] - w_hat_s)
    return float(nbeta * (e_quad - l0))


# --- restrict ---------------------------------------------------------------------------------------------


def test_restrict_moves_only_the_chosen_coordinates_and_matches_the_exact_gaussian():
    model, X, Y = _regression(d=4)
    mask = torch.tensor([[True, False, True, False]])
    nb, gamma = 400 / math.log(400), 1.0
    res = estimate_llc(model, (X, Y), _nll, restrict={"weight": mask}, sampler="mala", num_chains=8,
                       num_draws=1500, seed=3, progress=False, localization=gamma,
                       observables={"w": lambda p: p["weight"][0]})
    w = res.observables["w"]  # (chains, draws, 4)
    w_star = model.weight.detach()[0]
    assert torch.equal(w[..., 1], w_star[1].expand_as(w[..., 1]))  # frozen: exactly w*, no noise
    assert torch.equal(w[..., 3], w_star[3].expand_as(w[..., 3]))
    assert float(w[..., 0].std()) > 1e-3 and float(w[..., 2].std()) > 1e-3
    assert res.hyperparameters["num_params"] == 2 and res.hyperparameters["num_params_total"] == 4
    exact = _gaussian_target(X, w_star, w_star, nb, gamma, free=[0, 2])
    assert 0.9 < exact < 1.0  # ½·rank = 1, slightly less at γ = 1
    assert abs(res.mean - exact) < 4 * res.stderr + 0.01, (res.mean, res.stderr, exact)


def test_restrict_by_module_prefix_and_frozen_requires_grad_agree():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    X = torch.randn(200, 3, dtype=torch.float64)
    Y = net(X).detach() + 0.1 * torch.randn(200, 1, dtype=torch.float64)
    kw = dict(num_chains=2, num_draws=30, lr=1e-4, seed=1, progress=False, check_localization=False)
    a = estimate_llc(net, (X, Y), _nll, restrict=["2"], **kw)
    frozen = copy.deepcopy(net)
    frozen[0].requires_grad_(False)
    b = estimate_llc(frozen, (X, Y), _nll, **kw)
    assert a.hyperparameters["num_params"] == b.hyperparameters["num_params"] == 4
    assert torch.allclose(a.loss_trace, b.loss_trace, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("restrict, err, match", [
    (["nope"], ValueError, "matches no trainable parameter"),
    ({"weight": torch.zeros(1, 4, dtype=torch.bool)}, ValueError, "selects no coordinates"),
    ({"weight": torch.ones(4, dtype=torch.bool)}, ValueError, "bool mask of the parameter's shape"),
    ({"weight": torch.ones(1, 4)}, ValueError, "bool mask"),
    ({"bias": torch.ones(1, dtype=torch.bool)}, ValueError, "not a trainable parameter"),
    ("weight", TypeError, "list of parameter names"),
    ([], TypeError, "list of parameter names"),
])
def test_restrict_rejects_bad_selections_with_a_message(restrict, err, match):
    model, X, Y = _regression()
    with pytest.raises(err, match=match):
        estimate_llc(model, (X, Y), _nll, restrict=restrict, num_draws=5, progress=False)


# --- evaluate ---------------------------------------------------------------------------------------------


def test_evaluate_equals_loss_fn_and_accepts_dict_batches_with_minibatches():
    model, X, Y = _regression()
    kw = dict(num_chains=3, num_draws=40, lr=1e-4, seed=2, progress=False)
    a = estimate_llc(model, (X, Y), _nll, **kw)
    b = estimate_llc(model, {"x": X, "y": Y}, evaluate=lambda m, b: _nll(m(b["x"]), b["y"]), **kw)
    assert torch.equal(a.loss_trace, b.loss_trace)
    c = estimate_llc(model, (X, Y), _nll, batch_size=50, **kw)
    d = estimate_llc(model, [X, Y], evaluate=lambda m, b: _nll(m(b[0]), b[1]), batch_size=50, **kw)
    assert torch.equal(c.loss_trace, d.loss_trace)


def test_evaluate_sees_the_sampled_parameters_but_a_closure_over_the_model_does_not():
    model, X, Y = _regression()
    kw = dict(num_chains=2, num_draws=20, lr=1e-4, seed=0, progress=False, check_localization=False)
    penalised = estimate_llc(model, (X, Y), evaluate=lambda m, b: _nll(m(b[0]), b[1]) + 10 * m.weight.pow(2).sum(),
                             **kw)
    with pytest.warns(UserWarning, match="refers to the model or its parameters"):
        estimate_llc(model, (X, Y), lambda o, t: _nll(o, t) + 10 * model.weight.pow(2).sum(), **kw)
    plain = estimate_llc(model, (X, Y), _nll, **kw)
    assert not torch.allclose(penalised.loss_trace - penalised.loss_star, plain.loss_trace - plain.loss_star)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(loss_fn=_nll, evaluate=lambda m, b: m(b[0]).mean()), TypeError, "either loss_fn"),
    (dict(), TypeError, "needs a loss"),
    (dict(evaluate=lambda m, b: m(b[0])), ValueError, "scalar"),
    (dict(evaluate=lambda m, b: float(m(b[0]).mean())), TypeError, "must return a torch tensor"),
    (dict(evaluate=lambda m, b: m(b["missing"]).mean()), TypeError, "evaluate\\(model, batch\\) failed at w"),
])
def test_evaluate_errors_say_what_to_change(kwargs, err, match):
    model, X, Y = _regression()
    with pytest.raises(err, match=match):
        estimate_llc(model, (X, Y), num_draws=5, progress=False, **kwargs)


def test_evaluate_rejects_data_of_unequal_length():
    model, X, Y = _regression()
    with pytest.raises(ValueError, match="share their leading"):
        estimate_llc(model, {"x": X, "y": Y[:-1]}, evaluate=lambda m, b: _nll(m(b["x"]), b["y"]), num_draws=5)


# --- observables, sample_losses, save/load ----------------------------------------------------------------


def test_sample_losses_are_recorded_at_the_draws_whose_loss_is_recorded():
    model, X, Y = _regression()
    res = estimate_llc(model, (X, Y), _nll, num_chains=3, num_draws=25, lr=1e-4, seed=0, progress=False,
                       observables={"probe": sample_losses(model, (X, Y), _nll)})
    probe = res.observables["probe"]
    assert probe.shape == (3, 25, len(X))
    # L_n is the mean of the per-sample losses, at the same positions (float64: 1e-12 relative)
    assert torch.allclose(probe.mean(-1), res.loss_trace, rtol=1e-12)
    assert torch.allclose(res.observables_star["probe"].mean(), torch.tensor(res.loss_star, dtype=torch.float64))


def test_observable_errors_are_clear():
    model, X, Y = _regression()
    with pytest.raises(TypeError, match="observable 'bad' failed at w"):
        estimate_llc(model, (X, Y), _nll, num_draws=5, progress=False,
                     observables={"bad": lambda p: p["weight"].sum().item()})
    with pytest.raises(TypeError, match="dict name"):
        estimate_llc(model, (X, Y), _nll, num_draws=5, progress=False, observables=[lambda p: p])


def test_save_and_load_round_trip(tmp_path):
    model, X, Y = _regression()
    res = estimate_llc(model, (X, Y), _nll, num_chains=2, num_draws=10, seed=0, progress=False,
                       observables={"w": lambda p: p["weight"]})
    json_path, npz_path = res.save(tmp_path / "run")
    assert json_path.exists() and npz_path.exists()
    back = LLCResult.load(tmp_path / "run.json")
    assert back.mean == res.mean and math.isnan(back.std) == math.isnan(res.std)
    assert torch.equal(back.loss_trace, res.loss_trace) and torch.equal(back.observables["w"], res.observables["w"])
    assert back.hyperparameters["lr"] == res.hyperparameters["lr"]
    assert back.diagnostics["lr_auto"]["rule"] == res.diagnostics["lr_auto"]["rule"]
    with pytest.raises(FileNotFoundError, match="needs the .json and .npz"):
        LLCResult.load(tmp_path / "missing")
    (tmp_path / "other.json").write_text("{}")
    (tmp_path / "other.npz").write_bytes(npz_path.read_bytes())
    with pytest.raises(ValueError, match="not written by LLCResult.save"):
        LLCResult.load(tmp_path / "other")


# --- trajectories -----------------------------------------------------------------------------------------


def test_trajectory_of_one_checkpoint_is_estimate_llc():
    model, X, Y = _regression()
    kw = dict(num_chains=3, num_draws=30, lr=2e-4, seed=5, progress=False)
    one = estimate_llc(model, (X, Y), _nll, check_localization=False, **kw)
    (traj,) = estimate_llc_trajectory([model], (X, Y), _nll, **kw)
    # the same random stream; ε is a per-row tensor in the trajectory (another float op order)
    assert torch.allclose(one.loss_trace, traj.loss_trace, rtol=1e-10, atol=0)
    assert traj.mean == pytest.approx(one.mean, rel=1e-8)


def test_each_checkpoint_is_localised_at_its_own_w_star():
    """Checkpoints off the minimum: E[nβ(L − L(w₀))] depends on w₀ − ŵ; MALA is exact for the Gaussian."""
    model, X, Y = _regression(d=3)
    w_hat = model.weight.detach()[0]
    nb, gamma = 400 / math.log(400), 30.0  # γ comparable to nβh, so the offset matters
    offsets = [0.0, 0.05, -0.1]
    cks = []
    for o in offsets:
        m = copy.deepcopy(model)
        with torch.no_grad():
            m.weight.add_(o)
        cks.append(m)
    res = estimate_llc_trajectory(cks, (X, Y), _nll, sampler="mala", lr=2e-3, localization=gamma,
                                  num_chains=8, num_draws=1500, seed=0, progress=False)
    targets = [_gaussian_target(X, w_hat, w_hat + o, nb, gamma) for o in offsets]
    assert targets[2] < targets[1] < targets[0]  # the farther from ŵ, the lower: a real dependence
    for r, t in zip(res, targets, strict=True):
        assert abs(r.mean - t) < 4 * r.stderr + 0.01, (r.mean, r.stderr, t)
        assert r.loss_star == pytest.approx(float(_nll(cks[res.index(r)](X), Y)), rel=1e-12)


def test_trajectory_auto_lr_is_per_checkpoint():
    """y = a·b·x: along the minimum set ab = 1 the curvature grows with a² + b², so ε must shrink."""
    class Product(nn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
            self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

        def forward(self, x):
            return self.a * self.b * x

    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 1, generator=g, dtype=torch.float64)
    Y = X + SIGMA * torch.randn(500, 1, generator=g, dtype=torch.float64)
    c = float((X * Y).sum() / (X * X).sum())  # least squares: ab = c
    cks = [Product(1.0, c), Product(4.0, c / 4)]
    res = estimate_llc_trajectory(cks, (X, Y), _nll, num_chains=8, num_draws=600, seed=0, progress=False)
    lr0, lr1 = (r.hyperparameters["lr"] for r in res)
    assert lr1 < lr0 / 3, (lr0, lr1)  # curvature ratio (16 + 1/16)/(1 + 1) ≈ 8
    for r in res:  # λ = ½ (a smooth curve of minima); finite-n quadratic target at γ = 1
        target = expected_llc_quadratic(cks[r.hyperparameters["checkpoint"]], (X, Y), _nll, r.hyperparameters["nbeta"], 1.0)
        assert 0.45 < target < 0.5
        assert abs(r.mean - target) < 4 * r.stderr + 0.05 * target, (r.mean, r.stderr, target)
        assert r.diagnostics["lr_auto"]["predicted_bias"] == pytest.approx(0.02, rel=1e-6)


def test_trajectory_state_dicts_and_errors():
    model, X, Y = _regression()
    sd = [copy.deepcopy(model.state_dict()) for _ in range(2)]
    res = estimate_llc_trajectory(sd, (X, Y), _nll, model=model, num_chains=2, num_draws=10, lr=1e-4,
                                  progress=False)
    assert [r.hyperparameters["checkpoint"] for r in res] == [0, 1]
    with pytest.raises(TypeError, match="pass model="):
        estimate_llc_trajectory(sd, (X, Y), _nll, num_draws=5)
    with pytest.raises(TypeError, match="non-empty list"):
        estimate_llc_trajectory([], (X, Y), _nll, num_draws=5)
    other = nn.Linear(5, 1, bias=False).double()
    with pytest.raises(ValueError, match="does not fit model="):
        estimate_llc_trajectory([other.state_dict()], (X, Y), _nll, model=model, num_draws=5)
    with pytest.raises(ValueError, match="one per checkpoint|shape"):
        estimate_llc_trajectory(sd, (X, Y), _nll, model=model, lr=[1e-4, 1e-4, 1e-4], num_draws=5)


def test_trajectory_restrict_and_observables_per_checkpoint():
    model, X, Y = _regression(d=4)
    cks = [copy.deepcopy(model) for _ in range(2)]
    with torch.no_grad():
        cks[1].weight.add_(0.01)
    mask = {"weight": torch.tensor([[True, True, False, False]])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate_llc_trajectory(cks, (X, Y), _nll, restrict=mask, num_chains=2, num_draws=20, lr=1e-4,
                                      progress=False, observables={"w": lambda p: p["weight"][0]})
    for k, r in enumerate(res):
        w = r.observables["w"]
        w_star = cks[k].weight.detach()[0]
        assert torch.equal(w[..., 2:], w_star[2:].expand_as(w[..., 2:]))  # its own frozen coordinates
        assert torch.equal(r.observables_star["w"], w_star)
        assert r.hyperparameters["num_params"] == 2
