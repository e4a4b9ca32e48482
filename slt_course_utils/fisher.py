"""Fisher information: by autograd for any per-sample log-likelihood, and in closed form.

The score of one observation is s(w) = ∇_w log p(y|x, w), and the Fisher information is
I(w) = E[s sᵀ] = −E[∇²_w log p(y|x, w)] (the two agree when the data come from p(·|w)).
Here the expectations are sample means over data you pass in, so draw the data from the
model at w itself. A model is given as ``log_lik(w, *data) -> (n,)`` with w of shape (d,),
e.g. ``lambda w, x, y: -TANH.nll(w, x, y)``. Closed forms take expectations over x ~ N(0, 1)
with ``models.trapezoid_normal`` (a truncated trapezoid rule, geometrically convergent for
analytic integrands such as tanh and sigmoid, where Gauss–Hermite converges slowly).

A regular model has I(w0) positive definite; in a singular model it drops rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import hessian, jacfwd

from slt_course_utils._validate import finite_float, finite_tensor, positive_float
from slt_course_utils.models import GaussianRegression, trapezoid_normal

LogLik = Callable[..., Tensor]


def _check_point(w: Tensor) -> Tensor:
    w = torch.as_tensor(w, dtype=torch.float64)
    if w.ndim != 1 or w.numel() < 1:
        raise ValueError(f"w must be a single parameter vector of shape (d,), got shape {tuple(w.shape)}.")
    return finite_tensor("w", w)


def scores(log_lik: LogLik, w: Tensor, *data: Tensor) -> Tensor:
    """Per-sample scores s_i = ∇_w log p(z_i|w), shape (n, d), by forward-mode autograd (d passes)."""
    w = _check_point(w)
    out = log_lik(w, *data)
    if out.ndim != 1:
        raise ValueError(f"log_lik must return per-sample log-likelihoods of shape (n,), got {tuple(out.shape)}.")
    return jacfwd(lambda v: log_lik(v, *data))(w)


def fisher_information(log_lik: LogLik, w: Tensor, *data: Tensor, method: str = "score") -> Tensor:
    """I(w) ≈ (1/n) Σ_i s_i s_iᵀ (``method="score"``) or −(1/n) Σ_i ∇² log p(z_i|w) (``"hessian"``), shape (d, d)."""
    w = _check_point(w)
    if method == "score":
        s = scores(log_lik, w, *data)
        return s.T @ s / s.shape[0]
    if method == "hessian":
        return -hessian(lambda v: log_lik(v, *data).mean())(w)
    raise ValueError(f"method must be 'score' or 'hessian', got {method!r}.")


def fisher_gaussian_regression(model: GaussianRegression, w: Tensor, *, step: float = 0.02) -> Tensor:
    """I(w) = E_x[∇f(x;w) ∇f(x;w)ᵀ]/σ² for y = f(x;w) + N(0,σ²), x ~ N(0,1) (trapezoid rule over x), shape (d, d)."""
    w = model._check_w(_check_point(w))
    step = positive_float("step", step)
    xs, ws = trapezoid_normal(step)
    grad = jacfwd(lambda v: model.mean_fn(v, xs))(w)  # (nodes, d)
    return (grad * ws[:, None]).T @ grad / model.sigma**2


def fisher_tanh(a: float, b: float, sigma: float = 1.0, *, step: float = 0.02) -> Tensor:
    """I(a, b) for y = a·tanh(bx) + N(0,σ²), x ~ N(0,1): [[E tanh²(bx), a E x tanh sech²], [·, a² E x² sech⁴(bx)]]/σ²."""
    a, b = finite_float("a", a), finite_float("b", b)
    sigma, step = positive_float("the noise scale sigma", sigma), positive_float("step", step)
    xs, ws = trapezoid_normal(step)
    t = torch.tanh(b * xs)
    sech2 = 1 - t * t
    i_aa = (ws * t * t).sum()
    i_ab = a * (ws * xs * t * sech2).sum()
    i_bb = a * a * (ws * xs * xs * sech2 * sech2).sum()
    return torch.stack([torch.stack([i_aa, i_ab]), torch.stack([i_ab, i_bb])]) / sigma**2


def fisher_logistic(w: Tensor, *, step: float = 0.02) -> Tensor:
    """I(w) = E_x[σ'(w·x) x xᵀ], x ~ N(0, I_d): E[σ'(st)t²] uuᵀ + E[σ'(st)](I − uuᵀ), s = |w|, u = w/s, t ~ N(0,1)."""
    w = _check_point(w)
    step = positive_float("step", step)
    d = w.numel()
    s = torch.linalg.vector_norm(w)
    if s == 0:
        return torch.eye(d, dtype=torch.float64) / 4
    u = w / s
    ts, ws = trapezoid_normal(step)
    p = torch.sigmoid(s * ts)
    dsig = p * (1 - p)
    along = (ws * dsig * ts * ts).sum()
    across = (ws * dsig).sum()
    proj = torch.outer(u, u)
    return along * proj + across * (torch.eye(d, dtype=torch.float64) - proj)


def fisher_eigenvalues(info: Tensor) -> Tensor:
    """Eigenvalues of the symmetric matrix I, ascending, shape (d,)."""
    info = torch.as_tensor(info, dtype=torch.float64)
    if info.ndim != 2 or info.shape[0] != info.shape[1]:
        raise ValueError(f"a Fisher information matrix is square d × d, got shape {tuple(info.shape)}.")
    if not torch.isfinite(info).all():
        raise ValueError("the Fisher information matrix contains NaN or inf.")
    return torch.linalg.eigvalsh(0.5 * (info + info.T))


def fisher_rank(info: Tensor, tol: float = 1e-8) -> int:
    """Number of eigenvalues of I above tol·(largest eigenvalue); 0 for the zero matrix."""
    tol = positive_float("tol", tol)
    eig = fisher_eigenvalues(info)
    top = eig.abs().max().item()
    if top == 0:
        return 0
    return int((eig > tol * top).sum().item())
