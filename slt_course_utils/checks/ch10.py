"""Checks for chapter 10, refined LLCs, susceptibilities and influence (solutions/10_refined_llc.ipynb)."""

from __future__ import annotations

import torch
from torch import nn

from slt_course_utils import influence, refined
from slt_course_utils.checks._core import (
    CheckFailure,
    assert_close,
    call_student,
    call_unchanged,
    exercise_check,
)


def _draws(seed: int, chains: int, draws: int, *shape: int) -> torch.Tensor:
    """Correlated synthetic draws with chain offsets (so per-chain centring differs from pooled)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(chains, draws, *shape, generator=g, dtype=torch.float64)
    offset = 0.7 * torch.randn(chains, 1, *([1] * len(shape)), generator=g, dtype=torch.float64)
    return base + offset


# Tolerances: every reference here is exact float64 linear algebra on the same inputs (agreement ~1e-13);
# rtol 1e-9 (1e-8 for the eigenvalue route of the restricted target) allows other summation orders
# (eigenvalues vs trace of an inverse, torch.cov vs a hand-written sum) and rejects float32 work (~1e-7).
FLOAT64_HINT = " If your relative error is about 1e-7, you computed in float32: keep the inputs' float64."


def _tensor(got: object, what: str) -> torch.Tensor:
    """The learner's result, which must be a torch tensor (the notebook's later cells call .norm()/.numpy() on it)."""
    if not isinstance(got, torch.Tensor):
        raise CheckFailure(f"{what} should return a torch tensor, got {type(got).__name__}; the cells below use "
                           "tensor methods on it (use torch operations, or torch.as_tensor at the end).")
    return got


def _call_unchanged(fn, what: str, *args, **kwargs):
    """call_unchanged with this chapter's examples (centring a reshape of the draws in place)."""
    return call_unchanged(fn, *args, what=what, mistake="`A -= A.mean(0)`",
                          fix="`A = a.reshape(N, -1) - a.reshape(N, -1).mean(0)`", **kwargs)


def _models() -> list[tuple[str, nn.Module, list[str]]]:
    mlp = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    deep = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])  # names 0 … 11: "1" must not select "10", "11"
    from slt_course_utils.dln import DeepLinearNetwork

    return [("a DLN of widths [3, 4, 2]", DeepLinearNetwork([3, 4, 2]), ["layers.0"]),
            ("a DLN of widths [3, 4, 2] (the whole 'layers' container)", DeepLinearNetwork([3, 4, 2]), ["layers"]),
            ("an MLP (Linear, Tanh, Linear)", mlp, ["2.weight", "0"]),
            ("a 12-layer Sequential", deep, ["1", "11.bias"])]


@exercise_check
def check_restrict_mask(restrict_mask) -> str:
    """{name: bool mask of the parameter's shape}, True exactly on the selected parameters (prefixes select modules)."""
    for what, model, names in _models():
        got = call_student(restrict_mask, model, list(names))
        expected = refined.restrict_mask(model, names)
        if not isinstance(got, dict):
            raise CheckFailure(f"restrict_mask on {what} with {names}: should return a dict name → bool mask, got "
                               f"{type(got).__name__}.\nHint: loop over model.named_parameters().")
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        if missing or extra:
            detail = f"missing {missing}" if missing else f"keys that are not parameters of the model: {extra}"
            raise CheckFailure(f"restrict_mask on {what} with {names}: should return one mask per parameter of the "
                               f"model (also the unselected ones); {detail}.\nHint: loop over model.named_parameters().")
        for name, m in expected.items():
            g = torch.as_tensor(got[name])
            if g.dtype != torch.bool or g.shape != m.shape:
                raise CheckFailure(f"restrict_mask on {what}: the mask of {name!r} should be a bool tensor of the "
                                   f"parameter's shape {tuple(m.shape)}; got {g.dtype} of shape {tuple(g.shape)}.")
            if not torch.equal(g.cpu(), m):
                raise CheckFailure(
                    f"restrict_mask on {what} with {names}: the mask of {name!r} is wrong ({int(g.sum())} of "
                    f"{g.numel()} entries True).\nHint: a name selects a parameter when it equals the parameter's "
                    "name or is a module prefix of it, i.e. the parameter name starts with name + '.' "
                    "(so '1' selects '1.weight' but not '11.weight'); True means 'sampled'.")
    return "masks match on 4 models (prefixes at any depth, exact names, no '1' ⊂ '11' confusion)"


@exercise_check
def check_restricted_llc_target(restricted_llc_target) -> str:
    """½ Σ a_i/(a_i + γ), a_i the eigenvalues of nβ·H_CC (the block of the Hessian on the sampled coordinates)."""
    g = torch.Generator().manual_seed(3)
    for d, k, nbeta, gamma in [(6, 3, 100.0, 1.0), (8, 5, 1000 / 6.9, 10.0), (5, 2, 50.0, 0.5)]:
        J = torch.randn(d + 2, d, generator=g, dtype=torch.float64)
        H = J.T @ J / d  # symmetric positive definite, with strong couplings between blocks
        mask = torch.zeros(d, dtype=torch.bool)
        mask[torch.randperm(d, generator=g)[:k]] = True
        expected = refined.localized_quadratic_target(H[mask][:, mask], nbeta, gamma)
        got = call_student(restricted_llc_target, H.clone(), mask.clone(), nbeta, gamma)
        assert_close(got, expected, what=f"restricted_llc_target with d = {d}, {k} sampled coordinates", rtol=1e-8,
                     hint="the other coordinates are frozen at w* (conditioned on, not integrated out): take the "
                          "block H[mask][:, mask], its eigenvalues h_i, a_i = nβ h_i, and return ½ Σ a_i/(a_i + γ)."
                          + FLOAT64_HINT)
    return "restricted targets match for 3 Hessians and masks"


@exercise_check
def check_draws_covariance(draws_covariance) -> str:
    """Cov(a, b) pooled over chains × draws, centred at the pooled mean, divided by N − 1, shape (*Sa, *Sb)."""
    # few draws on purpose: with N = 8 draws ddof = 0 vs 1 differs by 1/7 ≈ 14%, and the chain offsets make
    # per-chain centring differ from pooled centring.
    cases = [(2, 4, (3,), (2,)), (4, 5, (2, 3), (4,)), (1, 30, (1,), (5,)), (2, 4, (), (2,))]  # last: scalar φ
    for seed, (chains, draws, sa, sb) in enumerate(cases):
        a = _draws(seed, chains, draws, *sa)
        b = 0.5 * a.reshape(chains, draws, -1)[..., :1] + _draws(seed + 10, chains, draws, *sb)
        got = _tensor(_call_unchanged(draws_covariance, "draws_covariance", a, b), "draws_covariance")
        assert_close(got, influence.draws_covariance(a, b), what=f"draws_covariance for {chains} chains × {draws} "
                     f"draws, a of shape {tuple(a.shape)}, b of shape {tuple(b.shape)}", rtol=1e-9, atol=1e-12,
                     hint="flatten (chains, draws) into N samples, subtract the mean over all N (not per chain), "
                          "form A_cᵀB_c and divide by N − 1; the result has a's trailing shape then b's (a scalar "
                          "observable of shape (chains, draws) has no trailing shape)." + FLOAT64_HINT)
    return "covariances match on 4 sets of draws (shapes incl. a scalar observable, ddof, pooled centring)"


@exercise_check
def check_bayesian_influence(bayesian_influence) -> str:
    """BIF(z_i, φ) = −Cov(ℓ_i, φ) over pooled draws, shape (n, *S)."""
    for seed, (chains, draws, n, s) in enumerate([(2, 5, 4, (3,)), (3, 6, 6, (1,)), (2, 5, 3, ())]):
        losses = _draws(seed, chains, draws, n).exp()
        k = s[0] if s else 1
        phi = (losses[..., :k] * 0.8 + _draws(seed + 5, chains, draws, k)).reshape(chains, draws, *s)
        got = _tensor(_call_unchanged(bayesian_influence, "bayesian_influence", losses, phi), "bayesian_influence")
        assert_close(got, influence.bayesian_influence(losses, phi), what=f"bayesian_influence with {n} samples and "
                     f"{s} observables", rtol=1e-9, atol=1e-12,
                     hint="BIF is minus the covariance (not the correlation) over all draws: a sample whose loss "
                          "moves together with φ has negative influence on φ.")
    return "BIF matches on 3 sets of draws (sign, covariance not correlation, a scalar φ)"


@exercise_check
def check_loss_kernel(loss_kernel) -> str:
    """K_ij = Cov(ℓ_i, ℓ_j) (or its correlation) over pooled draws, shape (n, n)."""
    for seed, (chains, draws, n) in enumerate([(2, 5, 4), (3, 4, 6)]):
        losses = _draws(seed, chains, draws, n).exp()
        for corr in (None, False, True):  # None: called without the keyword (the default is the covariance)
            kw = {} if corr is None else {"correlation": corr}
            got = _tensor(_call_unchanged(loss_kernel, "loss_kernel", losses, **kw), "loss_kernel")
            assert_close(got, influence.loss_kernel(losses, correlation=bool(corr)),
                         what=f"loss_kernel(correlation={corr}) with {n} samples, {chains}×{draws} draws",
                         rtol=1e-9, atol=1e-12,
                         hint="the covariance matrix of the per-sample losses over all draws (pooled, N − 1); with "
                              "correlation=True divide K_ij by √(K_ii K_jj); correlation defaults to False."
                              + FLOAT64_HINT)
    return "loss kernels match (covariance and correlation)"


@exercise_check
def check_susceptibility(susceptibility) -> str:
    """χ = −Cov(φ, ℓ_P − L) over pooled draws, one value per probe set."""
    for seed, (chains, draws, p) in enumerate([(2, 6, 3), (4, 3, 2)]):
        L = _draws(seed, chains, draws).exp()
        phi = L - 0.5 + 0.5 * _draws(seed + 2, chains, draws)  # not a function of L: φ, ℓ_P and L are all needed
        probes = L[..., None] * torch.linspace(0.5, 1.5, p, dtype=torch.float64) + 0.3 * _draws(seed + 1, chains,
                                                                                               draws, p)
        got = _tensor(_call_unchanged(susceptibility, "susceptibility", phi, probes, L), "susceptibility")
        assert_close(got, influence.susceptibility(phi, probes, L), what=f"susceptibility with {p} probe sets",
                     rtol=1e-9, atol=1e-12,
                     hint="χ = −Cov(φ, ℓ_P − L): subtract the sampling loss L from each probe loss draw by draw, "
                          "then take minus the pooled covariance with φ.")
    return "susceptibilities match on 2 sets of draws (φ, probe minus sampling loss, sign)"


@exercise_check
def check_gaussian_quadratic_cov(gaussian_quadratic_cov) -> str:
    """Cov(½δᵀAδ + aᵀδ, ½δᵀBδ + bᵀδ) = ½tr(AΣBΣ) + aᵀΣb for δ ~ N(0, Σ)."""
    g = torch.Generator().manual_seed(7)
    for d in (2, 4, 7):
        A, B = (torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(2))
        A, B = A + A.T, B + B.T
        a, b = (torch.randn(d, generator=g, dtype=torch.float64) for _ in range(2))
        Lc = torch.randn(d, d, generator=g, dtype=torch.float64)
        S = Lc @ Lc.T / d + 0.2 * torch.eye(d, dtype=torch.float64)
        expected = influence.gaussian_quadratic_covariance(A, a, B, b, S)  # before the learner's call
        got = _call_unchanged(gaussian_quadratic_cov, "gaussian_quadratic_cov", A, a, B, b, S)
        assert_close(got, expected, what=f"gaussian_quadratic_cov in "
                     f"d = {d}", rtol=1e-9, atol=1e-12,
                     hint="by Isserlis (Wick): Cov(½δᵀAδ, ½δᵀBδ) = ½tr(AΣBΣ); the linear parts give aᵀΣb; the "
                          "cross terms (odd moments) vanish.")
    return "closed form matches in d = 2, 4 and 7"
