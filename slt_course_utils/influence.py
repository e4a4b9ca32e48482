"""Covariances over posterior draws: susceptibilities, the Bayesian influence function, the loss kernel.

Everything here is a function of recorded draws (shape (chains, draws, …), e.g. the
``observables`` of :func:`slt_course_utils.llc.estimate_llc`) or, for checking them, of the
exact Gaussian posterior of a quadratic loss. Conventions (those of devinterp 2.0.1, whose
``bif.py`` stacks the chains and uses ``torch.cov``):

- ``draws_covariance``: the draws of all chains pooled into N = chains·draws samples, centred at
  the pooled mean, divided by N − 1.
- Bayesian influence function (Kreer, Wu, Adam, Furman, Hoogland, arXiv 2509.26544, §3):
  BIF(z_i, φ) = −Cov(ℓ_i, φ) over the localised posterior. The loss kernel is the matrix of
  per-sample loss covariances K_ij = Cov(ℓ_i, ℓ_j) (so BIF(z_i, ℓ_j) = −K_ij), or its correlation.
- Susceptibility (Baker et al., arXiv 2504.18274, appendix C.4): for a weight restriction C, sampled
  with only C moving, φ_C = L_n(w) − L_n(w*) and a probe set P,
  χ_{C,P} = −Cov_C(φ_C, ℓ_P − L_n), ℓ_P the mean loss on P. The linear-response derivative is
  d/dh E_h[φ_C] = nβ·χ_{C,P} for the data distribution moved a fraction h towards P.

Exact references (:func:`gaussian_quadratic_covariance`, :func:`linear_regression_posterior`,
:func:`exact_loss_kernel_linear_regression`): for w ~ N(μ, Σ) and f = ½δᵀAδ + aᵀδ,
g = ½δᵀBδ + bᵀδ (δ = w − μ, A, B symmetric), Cov(f, g) = ½tr(AΣBΣ) + aᵀΣb.
"""

from __future__ import annotations

import torch
from torch import Tensor

from slt_course_utils._validate import float64_tensor, nonnegative_float, positive_float

__all__ = [
    "bayesian_influence",
    "draws_covariance",
    "exact_loss_kernel_linear_regression",
    "gaussian_quadratic_covariance",
    "gaussian_susceptibility",
    "linear_regression_posterior",
    "loss_kernel",
    "susceptibility",
]


def _draws(name: str, t: Tensor) -> Tensor:
    t = torch.as_tensor(t)
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (chains, draws, …), got {tuple(t.shape)}.")
    if t.shape[0] * t.shape[1] < 2:
        raise ValueError(f"{name} has {t.shape[0] * t.shape[1]} draws in all; a covariance needs at least 2.")
    t = t.to(torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf (a diverged chain?); drop those chains first.")
    return t


def draws_covariance(a: Tensor, b: Tensor) -> Tensor:
    """Cov(a, b) = 1/(N−1) Σ_draws (a − ā)(b − b̄)ᵀ over all N = chains·draws draws, shape (*Sa, *Sb).

    ``a``: (chains, draws, *Sa), ``b``: (chains, draws, *Sb); ā, b̄ pooled means over chains and draws.
    """
    a, b = _draws("a", a), _draws("b", b)
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"a and b must share (chains, draws); got {tuple(a.shape[:2])} and {tuple(b.shape[:2])}.")
    N = a.shape[0] * a.shape[1]
    A = a.reshape(N, -1)
    B = b.reshape(N, -1)
    A = A - A.mean(0)
    B = B - B.mean(0)
    return (A.T @ B / (N - 1)).reshape(*a.shape[2:], *b.shape[2:])


def bayesian_influence(losses: Tensor, observable: Tensor) -> Tensor:
    """BIF(z_i, φ) = −Cov(ℓ_i, φ) over draws; ``losses`` (chains, draws, n), ``observable`` (chains, draws, *S).

    Returns shape (n, *S). Up-weighting z_i (posterior × e^{−ε nβ ℓ_i}) changes E[φ] at rate
    dE[φ]/dε = −nβ Cov(ℓ_i, φ) = nβ·BIF: positive BIF, up-weighting z_i raises E[φ] (harmful if φ is a
    loss); negative BIF, ℓ_i and φ covary and up-weighting z_i lowers E[φ] (z_i helps φ).
    """
    return -draws_covariance(losses, observable)


def loss_kernel(losses: Tensor, *, correlation: bool = False) -> Tensor:
    """K_ij = Cov(ℓ_i, ℓ_j) over draws (or the correlation K_ij/√(K_ii K_jj)); ``losses`` (chains, draws, n)."""
    losses = _draws("losses", losses)
    if losses.ndim != 3:
        raise ValueError(f"losses must have shape (chains, draws, n), got {tuple(losses.shape)}.")
    K = draws_covariance(losses, losses)
    if correlation:
        s = K.diagonal().clamp_min(0).sqrt()
        if bool((s == 0).any()):
            raise ValueError("some per-sample loss is constant over the draws; its correlation is undefined.")
        K = K / (s[:, None] * s[None, :])
    return K


def susceptibility(phi: Tensor, probe_loss: Tensor, sampling_loss: Tensor) -> Tensor:
    """χ = −Cov(φ_C, ℓ_P − L_n) over draws of the run restricted to C.

    ``phi``: (chains, draws), e.g. L_n(w) − L_n(w*); ``probe_loss``: (chains, draws, *P), the mean loss
    on each probe set; ``sampling_loss``: (chains, draws), L_n(w). Returns shape (*P).
    """
    phi = _draws("phi", phi)
    probe_loss = _draws("probe_loss", probe_loss)
    sampling_loss = _draws("sampling_loss", sampling_loss)
    if phi.ndim != 2 or sampling_loss.shape != phi.shape:
        raise ValueError(f"phi and sampling_loss must both have shape (chains, draws); got {tuple(phi.shape)} "
                         f"and {tuple(sampling_loss.shape)}.")
    extra = probe_loss.ndim - 2
    delta = probe_loss - sampling_loss.reshape(*sampling_loss.shape, *([1] * extra))
    return -draws_covariance(phi, delta)


def gaussian_quadratic_covariance(A: Tensor, a: Tensor, B: Tensor, b: Tensor, Sigma: Tensor) -> Tensor:
    """Cov(½δᵀAδ + aᵀδ, ½δᵀBδ + bᵀδ) = ½tr(AΣBΣ) + aᵀΣb for δ ~ N(0, Σ), A, B symmetric (d × d)."""
    A, B, Sigma = (torch.as_tensor(m, dtype=torch.float64) for m in (A, B, Sigma))
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    d = Sigma.shape[0]
    for name, m in (("A", A), ("B", B), ("Sigma", Sigma)):
        if m.shape != (d, d):
            raise ValueError(f"{name} must be ({d}, {d}) like Sigma, got {tuple(m.shape)}.")
    for name, v in (("a", a), ("b", b)):
        if v.shape != (d,):
            raise ValueError(f"{name} must be a vector of length {d}, got shape {tuple(v.shape)}.")
    return 0.5 * torch.trace(A @ Sigma @ B @ Sigma) + a @ Sigma @ b


def linear_regression_posterior(X: Tensor, y: Tensor, nbeta: float, localization: float) -> tuple[Tensor, Tensor]:
    """(w*, Σ) of the localised tempered posterior of L_n(w) = mean_i (y_i − x_iᵀw)² around its minimiser.

    ∝ exp(−nβL_n(w) − γ/2|w − w*|²) = N(w*, (nβH + γI)⁻¹), H = ∇²L_n = 2XᵀX/n, w* = argmin L_n
    (least squares; at the minimiser the localisation does not move the mean).
    """
    X, y = float64_tensor("X", X), float64_tensor("y", y).reshape(-1)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}.")
    nbeta, localization = positive_float("nbeta", nbeta), nonnegative_float("localization", localization)
    n, d = X.shape
    w_star = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    H = 2 * X.T @ X / n
    Sigma = torch.linalg.inv(nbeta * H + localization * torch.eye(d, dtype=torch.float64))
    return w_star, 0.5 * (Sigma + Sigma.T)


def exact_loss_kernel_linear_regression(X_probe: Tensor, y_probe: Tensor, w_star: Tensor, Sigma: Tensor) -> Tensor:
    """Cov(ℓ_i, ℓ_j) for ℓ_i(w) = (y_i − x_iᵀw)², w ~ N(w*, Σ): 2M_ij² + 4r_ir_jM_ij, M = XΣXᵀ, r = y − Xw*.

    (ℓ_i = r_i² − 2r_i x_iᵀδ + δᵀx_ix_iᵀδ: A_i = 2x_ix_iᵀ, a_i = −2r_ix_i in
    :func:`gaussian_quadratic_covariance`.)
    """
    X = torch.as_tensor(X_probe, dtype=torch.float64)
    y = torch.as_tensor(y_probe, dtype=torch.float64).reshape(-1)
    w = torch.as_tensor(w_star, dtype=torch.float64).reshape(-1)
    S = torch.as_tensor(Sigma, dtype=torch.float64)
    if X.ndim != 2 or X.shape[1] != len(w) or S.shape != (len(w), len(w)) or len(y) != len(X):
        raise ValueError(f"need X_probe (m, d), y_probe (m,), w_star (d,), Sigma (d, d); got {tuple(X.shape)}, "
                         f"{tuple(y.shape)}, {tuple(w.shape)}, {tuple(S.shape)}.")
    r = y - X @ w
    M = X @ S @ X.T
    return 2 * M**2 + 4 * r[:, None] * r[None, :] * M


def gaussian_susceptibility(hessian: Tensor, probe_hessian: Tensor, nbeta: float, localization: float) -> Tensor:
    """χ = −Cov(½δᵀHδ, ½δᵀ(H_P − H)δ) = −½tr(HΣ(H_P − H)Σ), Σ = (nβH + γI)⁻¹: exact at a true point
    where the restricted losses are quadratics with no linear term (φ = L_n − L_n(w*), ℓ_P − L_n)."""
    H, HP = float64_tensor("hessian", hessian), float64_tensor("probe_hessian", probe_hessian)
    if H.ndim != 2 or H.shape != HP.shape or H.shape[0] != H.shape[1]:
        raise ValueError(f"hessian and probe_hessian must be square of one shape, got {tuple(H.shape)} and "
                         f"{tuple(HP.shape)}.")
    nbeta, localization = positive_float("nbeta", nbeta), nonnegative_float("localization", localization)
    Sigma = torch.linalg.inv(nbeta * H + localization * torch.eye(len(H), dtype=torch.float64))
    zero = torch.zeros(len(H), dtype=torch.float64)
    return -gaussian_quadratic_covariance(H, zero, HP - H, zero, Sigma)
