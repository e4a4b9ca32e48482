"""Refined LLCs (slt_course_utils.refined) and covariances over draws (slt_course_utils.influence), and the
numbers chapter 10 and its problem set claim.

Sources: Wang et al. arXiv 2410.02984 §3 (refined LLCs), Baker et al. arXiv 2504.18274 appendix C.4
(susceptibilities), Kreer et al. arXiv 2509.26544 §3 (BIF); the exact Gaussian formulas are derived in the
module docstrings (Isserlis' theorem) and re-checked here by direct Monte Carlo.
"""

import copy
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from slt_course_utils import dln, influence, refined
from slt_course_utils.llc import default_nbeta, estimate_llc, sample_losses, sgld_step
from slt_course_utils.llc.quadratic import predicted_sgld_bias

# ----------------------------------------------------------------------------------------------- masks


def test_restrict_mask_prefixes_names_and_dicts():
    deep = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    m = refined.restrict_mask(deep, ["1", "11.bias"])
    assert m["1.weight"].all() and m["1.bias"].all() and m["11.bias"].all()
    assert not m["11.weight"].any() and not m["10.weight"].any() and set(m) == set(dict(deep.named_parameters()))
    assert refined.num_free(m) == 4 + 2 + 2
    mask = torch.zeros(2, 2, dtype=torch.bool)
    mask[0, 1] = True
    assert refined.num_free(refined.restrict_mask(deep, {"3.weight": mask})) == 1


@pytest.mark.parametrize("bad, match", [(["nope"], "matches no parameter"), ("0", "list of parameter names"),
                                        ({"0.weight": torch.ones(3, 3, dtype=torch.bool)}, "shape"),
                                        ({"0.weight": torch.zeros(2, 2, dtype=torch.bool)}, "selects no coordinate")])
def test_restrict_mask_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        refined.restrict_mask(nn.Sequential(nn.Linear(2, 2)), bad)


# ------------------------------------------------------------------------------ the chapter's teacher


@pytest.fixture(scope="module")
def teacher():
    return refined.orthogonal_dln_teacher(seed=0, n=2000)


def test_restricted_hessian_is_the_kronecker_block(teacher):
    """For L = ½ mean|A X B x − y|², ∇²_X L = AᵀA ⊗ B Σ̂ Bᵀ (row-major vec), exact to rounding."""
    generic, singular, x, y = teacher
    mats = [p.detach() for p in generic.parameters()]
    sig = x.T @ x / len(x)
    for s in range(3):
        A = dln.product_of(mats[s + 1:]) if s < 2 else torch.eye(5, dtype=torch.float64)
        B = dln.product_of(mats[:s]) if s > 0 else torch.eye(5, dtype=torch.float64)
        H = refined.restricted_hessian(generic, (x, y), dln.dln_loss, [f"layers.{s}"])
        torch.testing.assert_close(H, torch.kron(A.T @ A, B @ sig @ B.T), rtol=1e-9, atol=1e-12)


def test_dln_layer_llc_is_half_the_rank_of_the_restricted_hessian(teacher):
    """Chapter 10 §2's table: λ_C = rank(A)·rank(B)/2 — (25/2, 5, 5) generic, (5, 2, 5) most singular."""
    generic, singular, x, y = teacher
    for net, expected in [(generic, [Fraction(25, 2), 5, 5]), (singular, [5, 2, 5])]:
        for s in range(3):
            assert refined.dln_layer_llc(net, s) == expected[s]
            H = refined.restricted_hessian(net, (x, y), dln.dln_loss, [f"layers.{s}"])
            assert Fraction(int(torch.linalg.matrix_rank(H, rtol=1e-8)), 2) == expected[s]
            # the problem set says the reading notebook's finite-n targets are within 4% of λ_C (below it)
            target = refined.localized_quadratic_target(H, default_nbeta(len(x)), 1.0)
            assert 0.96 * float(expected[s]) < target < float(expected[s])


def test_localized_target_and_calibration():
    """½Σa/(a+γ) = ½tr(H(nβH+γI)⁻¹) = nβE[½δᵀHδ] under N(0,(nβH+γI)⁻¹) (Monte Carlo, 5 s.e.); ε hits 2% bias."""
    g = torch.Generator().manual_seed(1)
    J = torch.randn(8, 6, generator=g, dtype=torch.float64)
    H = J.T @ J / 8
    nbeta, gamma = 50.0, 2.0
    prec = nbeta * H + gamma * torch.eye(6, dtype=torch.float64)
    exact = 0.5 * nbeta * torch.trace(H @ torch.linalg.inv(prec))
    assert refined.localized_quadratic_target(H, nbeta, gamma) == pytest.approx(float(exact), rel=1e-10)
    d = torch.randn(200_000, 6, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(torch.linalg.inv(prec)).T
    v = 0.5 * nbeta * ((d @ H) * d).sum(1)
    assert abs(float(v.mean()) - float(exact)) < 5 * float(v.std()) / math.sqrt(len(v))
    target, lr = refined.restricted_calibration(H, nbeta, gamma)
    assert target == pytest.approx(float(exact), rel=1e-10)
    assert predicted_sgld_bias(torch.linalg.eigvalsh(H), nbeta, gamma, lr) == pytest.approx(0.02, rel=1e-3)


# --------------------------------------------------------------------------- covariances over draws


def test_draws_covariance_is_the_pooled_sample_covariance():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 7, 2, generator=g, dtype=torch.float64) + torch.randn(3, 1, 1, generator=g, dtype=torch.float64)
    b = torch.randn(3, 7, 4, generator=g, dtype=torch.float64)
    full = np.cov(np.concatenate([a.reshape(21, 2).numpy(), b.reshape(21, 4).numpy()], 1).T)  # ddof = 1
    np.testing.assert_allclose(influence.draws_covariance(a, b).numpy(), full[:2, 2:], rtol=1e-12)
    assert influence.draws_covariance(a[..., 0], b).shape == (4,)
    K = influence.loss_kernel(b.exp(), correlation=True)
    np.testing.assert_allclose(K.diagonal().numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(influence.bayesian_influence(b, a).numpy(), -full[2:, :2], rtol=1e-12)
    L = b[..., 0]
    chi = influence.susceptibility(L - 1, b[..., 1:], L)
    np.testing.assert_allclose(chi.numpy(), -influence.draws_covariance(L, b[..., 1:] - L[..., None]).numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: influence.draws_covariance(torch.zeros(5), torch.zeros(5)), "chains, draws"),
    (lambda: influence.draws_covariance(torch.zeros(2, 3), torch.zeros(2, 4)), "share"),
    (lambda: influence.loss_kernel(torch.tensor([[[0.0, float("nan")]], [[1.0, 2.0]]])), "NaN"),
    (lambda: influence.loss_kernel(torch.ones(2, 3, 2), correlation=True), "constant"),
    (lambda: influence.gaussian_quadratic_covariance(torch.eye(2), torch.zeros(3), torch.eye(2), torch.zeros(2),
                                                     torch.eye(2)), "length 2"),
])
def test_influence_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_gaussian_quadratic_covariance_by_monte_carlo():
    """½tr(AΣBΣ) + aᵀΣb against 10⁶ draws; tolerance 5 standard errors of the sample covariance."""
    g = torch.Generator().manual_seed(3)
    d = 4
    A, B = (torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(2))
    A, B = A + A.T, B + B.T
    a, b = (torch.randn(d, generator=g, dtype=torch.float64) for _ in range(2))
    Lc = 0.3 * torch.randn(d, d, generator=g, dtype=torch.float64)
    S = Lc @ Lc.T + 0.1 * torch.eye(d, dtype=torch.float64)
    x = torch.randn(1_000_000, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(S).T
    f = 0.5 * ((x @ A) * x).sum(1) + x @ a
    h = 0.5 * ((x @ B) * x).sum(1) + x @ b
    prod = (f - f.mean()) * (h - h.mean())
    se = float(prod.std()) / math.sqrt(len(prod))
    assert abs(float(prod.mean()) - float(influence.gaussian_quadratic_covariance(A, a, B, b, S))) < 5 * se


def linear_regression_problem():
    """Problem set 10, last cell, and chapter 10 §6: n = 200, d = 5, noise 0.5, nβ = n/log n, γ = 1."""
    g = torch.Generator().manual_seed(0)
    n, d = 200, 5
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.randn(d, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    return g, X, y


def test_exact_loss_kernel_matches_the_general_formula_and_the_problem_set_claim():
    """2M²+4rrᵀM equals ½tr(A_iΣA_jΣ)+a_iᵀΣa_j entrywise; 40 000 exact draws (the problem set) within 5%
    (measured ≈ 1%: the relative error of a sample covariance of N draws is about √(2/N)·O(1))."""
    g, X, y = linear_regression_problem()
    n = len(X)
    w, S = influence.linear_regression_posterior(X, y, n / math.log(n), 1.0)
    r = y - X @ w
    m = 8
    K = influence.exact_loss_kernel_linear_regression(X[:m], y[:m], w, S)
    for i in range(m):
        for j in range(m):
            ref = influence.gaussian_quadratic_covariance(2 * torch.outer(X[i], X[i]), -2 * r[i] * X[i],
                                                          2 * torch.outer(X[j], X[j]), -2 * r[j] * X[j], S)
            assert float(K[i, j]) == pytest.approx(float(ref), rel=1e-10, abs=1e-14)
    draws = w + torch.randn(8, 5000, 5, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(S).T
    Khat = influence.loss_kernel((y[:m] - draws @ X[:m].T) ** 2)
    assert float((Khat - K).norm() / K.norm()) < 0.05


# ------------------------------------------------------------------ chapter 10's sampled claims


def _run(net, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_llc(net, data, dln.dln_loss, num_chains=8, num_draws=1000, progress=False,
                            check_localization=False, **kw)


@pytest.mark.parametrize("point", ["generic", "most singular"])
@pytest.mark.parametrize("seed", [0, 1])
def test_restricted_llc_reads_the_exact_target(teacher, point, seed):
    """§2: λ̂ of layer 0 alone within 3 s.e. (8 chains) + 2% (SGLD's predicted ε-bias at this ε) of the exact
    Gaussian target; the notebook uses seed 0, seed 1 shows the window is not tuned to one seed."""
    generic, singular, x, y = teacher
    net = generic if point == "generic" else singular
    H = refined.restricted_hessian(net, (x, y), dln.dln_loss, ["layers.0"])
    target, lr = refined.restricted_calibration(H, default_nbeta(len(x)), 1.0)
    res = _run(net, (x, y), restrict=["layers.0"], lr=lr, seed=seed)
    assert res.hyperparameters["num_params"] == 25
    assert abs(res.mean - target) <= 3 * res.stderr + 0.02 * target


def test_freezing_keeps_the_other_layers_fixed_and_no_gradient_only_runs_away(teacher):
    """§3: restrict= leaves other layers exactly at w*; requires_grad=False is the same run; the devinterp-1.3.2
    update (noise + localisation on frozen layers, no gradient) reads > 1.2 λ_C after 150 draws and rises."""
    generic, singular, x, y = teacher
    nbeta = default_nbeta(len(x))
    H = refined.restricted_hessian(generic, (x, y), dln.dln_loss, ["layers.0"])
    target, lr = refined.restricted_calibration(H, nbeta, 1.0)
    others = {k: v.detach().clone() for k, v in generic.named_parameters() if not k.startswith("layers.0.")}
    obs = {"moved": lambda p: torch.stack([(p[k] - v).abs().max() for k, v in others.items()]).max()}
    res_r = _run(generic, (x, y), restrict=["layers.0"], lr=lr, seed=0, observables=obs)
    assert bool((res_r.observables["moved"] == 0).all())
    frozen = copy.deepcopy(generic)
    for k, p in frozen.named_parameters():
        p.requires_grad_(k.startswith("layers.0."))
    assert abs(_run(frozen, (x, y), lr=lr, seed=0).mean - res_r.mean) < 1e-9
    star = {k: v.detach().clone().expand(8, *v.shape).clone() for k, v in generic.named_parameters()}
    w = {k: v.clone() for k, v in star.items()}
    gen = torch.Generator().manual_seed(0)
    trace = []
    for step in range(550):
        w = {k: v.detach().requires_grad_(True) for k, v in w.items()}
        out = torch.func.vmap(lambda p: torch.func.functional_call(generic, p, (x,)))(w)
        loss = 0.5 * (out - y).pow(2).sum(-1).mean(-1)
        grads = dict(zip(w, torch.autograd.grad(loss.sum(), list(w.values()))))
        grads = {k: v if k.startswith("layers.0.") else torch.zeros_like(v) for k, v in grads.items()}
        if step >= 250:
            trace.append(loss.detach())
        w = sgld_step({k: v.detach() for k, v in w.items()}, grads, star, lr=lr, nbeta=nbeta, localization=1.0,
                      generator=gen)
    running = nbeta * torch.stack(trace).mean(1).cumsum(0) / torch.arange(1, len(trace) + 1)
    assert running[149] > 1.2 * 12.5 and running[299] > running[149]


def test_data_refined_llc_within_ten_percent(teacher):
    """§4: all weights free, data on x₁..x₃ (λ = 15/2) or x₄, x₅ (λ = 5): λ̂ within 10% of the quadratic target
    (Morse–Bott point: the target is exact to leading order; measured +6% and +8%, s.e. ≈ 5%)."""
    generic, singular, x, y = teacher
    keep = torch.tensor([1.0, 1, 1, 0, 0], dtype=torch.float64)
    for mask, seed, lam in [(keep, 1, 7.5), (1 - keep, 2, 5.0)]:
        gen = torch.Generator().manual_seed(seed)
        xs = (2 * torch.rand(2000, 5, generator=gen, dtype=torch.float64) - 1) * mask
        data = (xs, generic(xs).detach())
        H = refined.restricted_hessian(generic, data, dln.dln_loss, ["layers"])
        assert Fraction(int(torch.linalg.matrix_rank(H, rtol=1e-8)), 2) == Fraction(lam)
        target, lr = refined.restricted_calibration(H, default_nbeta(2000), 1.0)
        res = _run(generic, data, lr=lr, seed=0)
        assert abs(res.mean / target - 1) < 0.10


def test_linear_regression_bif_matches_the_closed_form():
    """§6: MALA (exact stationary law) and SGLD (ε = 2e-3, bias ≈ εa/4 ≈ 4% at the stiffest direction) loss kernels
    and BIF within 10% (relative Frobenius error) of the exact Gaussian values; measured 4–8%."""
    g, X, y = linear_regression_problem()
    Y = y[:, None]
    X_test = torch.randn(4, 5, generator=g, dtype=torch.float64)
    Y_test = (X_test @ torch.linalg.lstsq(X, Y).solution) + 0.5 * torch.randn(4, 1, generator=g, dtype=torch.float64)
    w, S = influence.linear_regression_posterior(X, y, default_nbeta(200), 1.0)
    reg = nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        reg.weight.copy_(w[None])
    m = 12
    obs = {"train": sample_losses(reg, (X[:m], Y[:m]), F.mse_loss), "test": sample_losses(reg, (X_test, Y_test), F.mse_loss)}
    K_exact = influence.exact_loss_kernel_linear_regression(torch.cat([X[:m], X_test]),
                                                            torch.cat([Y[:m], Y_test])[:, 0], w, S)
    for sampler in ("mala", "sgld"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = estimate_llc(reg, (X, Y), F.mse_loss, sampler=sampler, lr=2e-3, num_chains=8, num_draws=2000, seed=0,
                               progress=False, observables=obs)
        K = influence.loss_kernel(torch.cat([res.observables["train"], res.observables["test"]], -1))
        assert float((K - K_exact).norm() / K_exact.norm()) < 0.10
        bif = influence.bayesian_influence(res.observables["train"], res.observables["test"])
        assert float((bif + K_exact[:m, m:]).norm() / K_exact[:m, m:].norm()) < 0.10


def test_susceptibility_response_matrix_matches_the_gaussian_closed_form(teacher):
    """§5: χ_{C,P} = −Cov_C(φ_C, ℓ_P − L) from one restricted SGLD run per layer against
    −½tr(H_CΣ_C(H_{P,C} − H_C)Σ_C): relative Frobenius error < 15% (measured ≈ 4%: 8 × 1000 draws of a product
    of two quadratics, plus the 2% ε-bias) and the signs of all entries above 10% of the largest agree."""
    generic, singular, x, y = teacher
    nbeta = default_nbeta(len(x))
    U, S, Vh = torch.linalg.svd(generic.layers[0].weight.detach())

    def probe(basis, n, seed):
        gen = torch.Generator().manual_seed(seed)
        xs = (2 * torch.rand(n, len(basis), generator=gen, dtype=torch.float64) - 1) @ basis
        return xs, generic(xs).detach()

    probes = [probe(Vh[:2], 500, 3), probe(Vh[2:], 500, 4),
              dln.sample_dln_data(generic, 500, generator=torch.Generator().manual_seed(5)),
              dln.sample_dln_data(generic, 500, input_range=2.0, generator=torch.Generator().manual_seed(6))]

    def mean_loss(data):
        xs, ys = data
        return lambda p: 0.5 * (xs @ (p["layers.2.weight"] @ p["layers.1.weight"] @ p["layers.0.weight"]).T
                                - ys).pow(2).sum(-1).mean()

    obs = {"train": mean_loss((x, y))} | {f"p{j}": mean_loss(d) for j, d in enumerate(probes)}
    chi = torch.zeros(3, 4, dtype=torch.float64)
    chi_exact = torch.zeros(3, 4, dtype=torch.float64)
    for i in range(3):
        H = refined.restricted_hessian(generic, (x, y), dln.dln_loss, [f"layers.{i}"])
        _, lr = refined.restricted_calibration(H, nbeta, 1.0)
        res = _run(generic, (x, y), restrict=[f"layers.{i}"], lr=lr, seed=0, observables=obs)
        L = res.observables["train"]
        chi[i] = influence.susceptibility(L - res.observables_star["train"],
                                          torch.stack([res.observables[f"p{j}"] for j in range(4)], -1), L)
        Sig = torch.linalg.inv(nbeta * H + torch.eye(len(H), dtype=torch.float64))
        z = torch.zeros(len(H), dtype=torch.float64)
        for j, d in enumerate(probes):
            HP = refined.restricted_hessian(generic, d, dln.dln_loss, [f"layers.{i}"])
            chi_exact[i, j] = -influence.gaussian_quadratic_covariance(H, z, HP - H, z, Sig)
    assert float((chi - chi_exact).norm() / chi_exact.norm()) < 0.15
    big = chi_exact.abs() > 0.1 * chi_exact.abs().max()
    assert bool((chi.sign() == chi_exact.sign())[big].all())
    assert bool((chi_exact[:, 1] > 0).all()) and bool((chi_exact[:, 3] < 0).all())  # the text's reading
    assert bool((chi_exact[1:, 0].abs() < 0.01 * chi_exact.abs().max()).all())
