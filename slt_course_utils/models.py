"""Toy statistical models: samplers for synthetic data and negative log-likelihoods.

Conventions: parameters ``w`` carry their coordinates in the last dimension (shape
``(..., d)``), so one call evaluates a whole grid or a batch of chains; data are tensors
with the sample index first. Losses are per-sample negative log-likelihoods, and the
empirical loss is their mean, L_n(w) = −(1/n) Σ_i log p(y_i | x_i, w).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from slt_course_utils._validate import (
    finite_float,
    finite_tensor,
    int_in_range,
    positive_float,
    positive_int,
)

LOG_2PI = math.log(2 * math.pi)


def _check_n(n: int) -> int:
    return positive_int("n (the number of samples)", n)


def _check_sigma(sigma: float) -> float:
    return positive_float("the noise scale sigma", sigma)


def _same_float(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors in one floating dtype (the promoted one, at least float32), so mixed float32/float64 inputs work."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype) if t.is_floating_point() else dtype
    return tuple(t.to(dtype) for t in tensors)


def _chunked_mean(nll: Callable[..., Tensor], w: Tensor, data: tuple[Tensor, ...], chunk: int, width: int = 1) -> Tensor:
    """mean_i nll(w, *data_i) over the sample axis, in blocks of about ``chunk`` (grid × samples × width) numbers."""
    n = data[0].shape[0]
    per = max(1, chunk // max(1, w[..., 0].numel() * width))
    total = torch.zeros(w.shape[:-1], dtype=torch.float64)
    for s in range(0, n, per):
        total = total + nll(w, *(t[s : s + per] for t in data)).sum(-1)
    return total / n


# --- The Gaussian mean model: p(x|w) = N(x; w, σ²) ---------------------------------------

def sample_gaussian(n: int, mean: float = 0.0, sigma: float = 1.0, *, generator: torch.Generator | None = None) -> Tensor:
    """n i.i.d. draws X_i ~ N(mean, σ²), float64, shape ``(n,)``."""
    n, sigma, mean = _check_n(n), _check_sigma(sigma), finite_float("mean", mean)
    return mean + sigma * torch.randn(n, generator=generator, dtype=torch.float64)


def gaussian_mean_loss(w: Tensor, x: Tensor, sigma: float = 1.0) -> Tensor:
    """L_n(w) = ½ log(2πσ²) + (1/2nσ²) Σ_i (X_i − w)², for any shape of ``w`` (data ``x`` 1-D).

    Uses the sufficient statistics mean(X) and mean(X²), so it costs O(n + |w|) and is exact
    for n up to millions.
    """
    sigma = _check_sigma(sigma)
    if x.ndim != 1 or x.numel() < 1:
        raise ValueError(f"x must be a non-empty 1-D tensor of observations, got shape {tuple(x.shape)}.")
    x = finite_tensor("x", x).double()
    m1, m2 = x.mean(), (x * x).mean()
    return 0.5 * (LOG_2PI + 2 * math.log(sigma)) + (m2 - 2 * w * m1 + w * w) / (2 * sigma**2)


def gaussian_mean_population_loss(w: Tensor, w0: float, sigma: float = 1.0) -> Tensor:
    """L(w) = E_q[−log p(X|w)] with q = N(w0, σ²): ½ log(2πσ²) + ½ + (w − w0)²/(2σ²)."""
    sigma, w0 = _check_sigma(sigma), finite_float("w0", w0)
    return 0.5 * (LOG_2PI + 2 * math.log(sigma)) + 0.5 + (w - w0) ** 2 / (2 * sigma**2)


@dataclass(frozen=True)
class ConjugatePosterior:
    """N(mean, var) posterior of the Gaussian mean, and the exact free energy F_n(β)."""

    mean: float
    var: float
    free_energy: float


def gaussian_mean_conjugate(
    x: Tensor, *, prior_mean: float = 0.0, prior_std: float = 1.0, sigma: float = 1.0, beta: float = 1.0
) -> ConjugatePosterior:
    """Exact tempered posterior and F_n(β) for p(x|w) = N(w, σ²), φ = N(μ0, s0²).

    With a = 1/s0² + nβ/σ² and b = μ0/s0² + βΣX_i/σ²: the posterior is N(b/a, 1/a) and
    F_n(β) = (nβ/2) log 2πσ² + βΣX_i²/(2σ²) + μ0²/(2s0²) − b²/(2a) + ½ log(s0² a).
    """
    sigma, prior_std = _check_sigma(sigma), positive_float("prior_std", prior_std)
    beta, prior_mean = positive_float("beta", beta), finite_float("prior_mean", prior_mean)
    if x.ndim != 1 or x.numel() < 1:
        raise ValueError(f"x must be a non-empty 1-D tensor, got shape {tuple(x.shape)}.")
    x = finite_tensor("x", x).double()
    n = x.numel()
    s2, v0 = sigma**2, prior_std**2
    a = 1 / v0 + n * beta / s2
    b = prior_mean / v0 + beta * x.sum().item() / s2
    free = (
        0.5 * n * beta * math.log(2 * math.pi * s2)
        + beta * (x * x).sum().item() / (2 * s2)
        + prior_mean**2 / (2 * v0)
        - b * b / (2 * a)
        + 0.5 * math.log(v0 * a)
    )
    return ConjugatePosterior(mean=b / a, var=1 / a, free_energy=free)


def kl_gaussians(mean_q: float, var_q: float, mean_p: float, var_p: float) -> float:
    """KL(N(m_q, v_q) ‖ N(m_p, v_p)) = ½[log(v_p/v_q) + (v_q + (m_q − m_p)²)/v_p − 1]."""
    var_q, var_p = positive_float("var_q", var_q), positive_float("var_p", var_p)
    mean_q, mean_p = finite_float("mean_q", mean_q), finite_float("mean_p", mean_p)
    return 0.5 * (math.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)


# --- Gaussian regression with a parameterised mean: y = f(x; w) + N(0, σ²) ---------------

MeanFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class GaussianRegression:
    """y = f(x; w) + N(0, σ²) with x ~ N(0, 1); ``mean_fn(w, x)`` maps (..., d), (n,) → (..., n)."""

    name: str
    mean_fn: MeanFn
    d: int
    sigma: float = 1.0

    def __post_init__(self) -> None:
        positive_int("d", self.d)
        _check_sigma(self.sigma)

    def sample(self, w0: Tensor | list[float], n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(x, y) with x_i ~ N(0,1), y_i = f(x_i; w0) + σ·ε_i; float64 tensors of shape ``(n,)``."""
        n = _check_n(n)
        w0 = finite_tensor("w0", self._check_w(torch.as_tensor(w0, dtype=torch.float64)))
        x = torch.randn(n, generator=generator, dtype=torch.float64)
        y = self.mean_fn(w0, x) + self.sigma * torch.randn(n, generator=generator, dtype=torch.float64)
        return x, y

    def _check_w(self, w: Tensor) -> Tensor:
        if w.shape[-1:] != (self.d,):
            raise ValueError(
                f"{self.name}: parameters must have last dimension d = {self.d}, got shape {tuple(w.shape)}."
            )
        return w

    def nll(self, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample −log p(y_i|x_i, w), shape ``w.shape[:-1] + (n,)``."""
        self._check_w(w)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"x and y must be 1-D of equal length, got {tuple(x.shape)} and {tuple(y.shape)}.")
        r = y - self.mean_fn(w, x)
        return 0.5 * (LOG_2PI + 2 * math.log(self.sigma)) + r * r / (2 * self.sigma**2)

    def empirical_loss(self, w: Tensor, x: Tensor, y: Tensor, *, chunk: int = 1 << 22) -> Tensor:
        """L_n(w) = mean_i −log p(y_i|x_i, w), shape ``w.shape[:-1]``; data processed in chunks."""
        self._check_w(w)
        if x.numel() < 1:
            raise ValueError("need at least one data point.")
        return _chunked_mean(self.nll, w, (x, y), chunk)


def _linear_mean(w: Tensor, x: Tensor) -> Tensor:
    return w[..., 0:1] + w[..., 1:2] * x


def _product_mean(w: Tensor, x: Tensor) -> Tensor:
    return (w[..., 0:1] * w[..., 1:2]) * x


#: y = w1 + w2·x + noise: a regular model (d = 2, λ = 1).
LINE = GaussianRegression("line y = w1 + w2·x", _linear_mean, d=2)
#: y = a·b·x + noise: a singular model (d = 2; at truth a·b = 0, λ = 1/2, m = 2).
PRODUCT = GaussianRegression("product y = a·b·x", _product_mean, d=2)


# --- Expectations over x ~ N(0, 1) by Gauss–Hermite quadrature --------------------------

def gauss_hermite_normal(nodes: int = 100) -> tuple[Tensor, Tensor]:
    """Nodes x_k and weights ω_k with Σ_k ω_k g(x_k) ≈ E[g(X)], X ~ N(0,1); exact for polynomials of degree < 2·nodes."""
    nodes = int_in_range("nodes (NumPy's rule overflows beyond 250)", nodes, 1, 250)
    import numpy as np

    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    return torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(w, dtype=torch.float64)


def trapezoid_normal(step: float = 0.05, cutoff: float = 12.0) -> tuple[Tensor, Tensor]:
    """Nodes x_k = −cutoff, …, cutoff (spacing h) and weights h·φ(x_k) with Σ_k ω_k g(x_k) ≈ E[g(X)], X ~ N(0,1).

    For g analytic in the strip |Im x| < a the error is O(e^{−2πa/h}) plus the tail beyond
    ``cutoff`` (φ(12) ≈ 5e-32): for tanh(bx) (poles at |Im x| = π/2b) and h = 0.05 this is
    ~e^{−98/b}, far better than Gauss–Hermite, which converges slowly for such functions.
    """
    step, cutoff = positive_float("step", step), positive_float("cutoff", cutoff)
    if not step < cutoff:
        raise ValueError(f"need 0 < step < cutoff, got step={step!r}, cutoff={cutoff!r}.")
    k = math.floor(cutoff / step)
    x = step * torch.arange(-k, k + 1, dtype=torch.float64)
    return x, step * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def gaussian_regression_kl(model: GaussianRegression, w: Tensor, w0: Tensor | list[float], *, step: float = 0.05) -> Tensor:
    """K(w) = E_x[(f(x;w) − f(x;w0))²]/(2σ²), x ~ N(0,1), by the trapezoid rule ``trapezoid_normal(step)`` (error ≪ 1e-12 for polynomial or tanh means)."""
    w = model._check_w(torch.as_tensor(w, dtype=torch.float64))
    w0 = model._check_w(torch.as_tensor(w0, dtype=torch.float64))
    xs, ws = trapezoid_normal(step)
    diff = model.mean_fn(w, xs) - model.mean_fn(w0, xs)
    return (diff * diff * ws).sum(-1) / (2 * model.sigma**2)


def gaussian_regression_population_loss(
    model: GaussianRegression, w: Tensor, w0: Tensor | list[float], *, step: float = 0.05
) -> Tensor:
    """L(w) = E_q[−log p(y|x,w)] = ½ log(2πσ²) + ½ + K(w) for y = f(x;w0) + N(0,σ²), x ~ N(0,1)."""
    entropy = 0.5 * (LOG_2PI + 2 * math.log(model.sigma)) + 0.5
    return entropy + gaussian_regression_kl(model, w, w0, step=step)


# --- Regression whose mean is linear in fixed features: sufficient statistics ------------

@dataclass(frozen=True)
class RegressionStatistics:
    """Sufficient statistics of y = g(w)·ψ(x) + noise: n, Σψψᵀ (K×K), Σψy (K,), Σy²."""

    n: int
    gram: Tensor
    cross: Tensor
    yy: float


@dataclass(frozen=True, kw_only=True)
class LinearFeatureRegression(GaussianRegression):
    """y = Σ_k g_k(w) ψ_k(x) + N(0, σ²): L_n depends on the data only through Σψψᵀ, Σψy, Σy².

    ``coef_fn`` maps (..., d) → (..., K) and ``features_fn`` maps (n,) → (n, K); ``mean_fn``
    must equal ``coef_fn(w) @ features_fn(x)``. Then, with G = Σψψᵀ, c = Σψy:
    nL_n(w) = (n/2) log 2πσ² + (Σy² − 2 g·c + gᵀGg)/(2σ²), which costs O(K²) per w for any n.
    """

    coef_fn: Callable[[Tensor], Tensor]
    features_fn: Callable[[Tensor], Tensor]

    def statistics(self, x: Tensor, y: Tensor) -> RegressionStatistics:
        """The sufficient statistics (n, Σψψᵀ, Σψy, Σy²) of a data set (x, y), in float64."""
        if x.shape != y.shape or x.ndim != 1 or x.numel() < 1:
            raise ValueError(f"x and y must be non-empty 1-D of equal length, got {tuple(x.shape)} and {tuple(y.shape)}.")
        psi = self.features_fn(finite_tensor("x", x).double())
        y = finite_tensor("y", y).double()
        return RegressionStatistics(n=x.numel(), gram=psi.T @ psi, cross=psi.T @ y, yy=(y * y).sum().item())

    def feature_second_moment(self, nodes: int = 100) -> Tensor:
        """E_x[ψ(x)ψ(x)ᵀ] for x ~ N(0,1) (Gauss–Hermite; exact for polynomial features)."""
        xs, ws = gauss_hermite_normal(nodes)
        psi = self.features_fn(xs)
        return (psi * ws[:, None]).T @ psi

    def population_statistics(self, w0: Tensor | list[float], n: int) -> RegressionStatistics:
        """Statistics at their expectations under the truth w0 (x ~ N(0,1)): then nL_n(w) − nL_n(w0) = nK(w) exactly."""
        n = _check_n(n)
        w0 = finite_tensor("w0", self._check_w(torch.as_tensor(w0, dtype=torch.float64)))
        second = self.feature_second_moment()
        g0 = self.coef_fn(w0)
        return RegressionStatistics(
            n=n, gram=n * second, cross=n * (second @ g0), yy=n * (self.sigma**2 + (g0 @ second @ g0).item())
        )

    def loss_from_statistics(self, w: Tensor, stats: RegressionStatistics) -> Tensor:
        """L_n(w) = ½ log 2πσ² + (Σy² − 2 g(w)·Σψy + g(w)ᵀ Σψψᵀ g(w))/(2σ²n), shape ``w.shape[:-1]``."""
        self._check_w(w)
        g = self.coef_fn(w.double())
        quad = ((g @ stats.gram) * g).sum(-1)
        return 0.5 * (LOG_2PI + 2 * math.log(self.sigma)) + (stats.yy - 2 * (g @ stats.cross) + quad) / (
            2 * self.sigma**2 * stats.n
        )

    def kl(self, w: Tensor, w0: Tensor | list[float]) -> Tensor:
        """K(w) = (g(w) − g(w0))ᵀ E[ψψᵀ] (g(w) − g(w0))/(2σ²), exact (x ~ N(0,1))."""
        self._check_w(w)
        w0 = self._check_w(torch.as_tensor(w0, dtype=torch.float64))
        dg = self.coef_fn(w.double()) - self.coef_fn(w0)
        return ((dg @ self.feature_second_moment()) * dg).sum(-1) / (2 * self.sigma**2)

    def population_loss(self, w: Tensor, w0: Tensor | list[float]) -> Tensor:
        """L(w) = ½ log(2πσ²) + ½ + K(w), exact (x ~ N(0,1))."""
        return 0.5 * (LOG_2PI + 2 * math.log(self.sigma)) + 0.5 + self.kl(w, w0)


def _features_x(x: Tensor) -> Tensor:
    return x[:, None]


def _features_1x(x: Tensor) -> Tensor:
    return torch.stack([torch.ones_like(x), x], dim=-1)


def _abc_mean(w: Tensor, x: Tensor) -> Tensor:
    return (w[..., 0:1] * w[..., 1:2] * w[..., 2:3]) * x


def _square_mean(w: Tensor, x: Tensor) -> Tensor:
    return (w[..., 0:1] ** 2) * x


def _tanh_mean(w: Tensor, x: Tensor) -> Tensor:
    return w[..., 0:1] * torch.tanh(w[..., 1:2] * x)


#: y = w1 + w2·x + noise with sufficient statistics (same model as ``LINE``).
LINE_STATS = LinearFeatureRegression(
    "line y = w1 + w2·x", _linear_mean, d=2, coef_fn=lambda w: w, features_fn=_features_1x
)
#: y = a·b·x + noise with sufficient statistics (same model as ``PRODUCT``); K = a²b²/2 at truth 0.
PRODUCT_STATS = LinearFeatureRegression(
    "product y = a·b·x", _product_mean, d=2, coef_fn=lambda w: w[..., 0:1] * w[..., 1:2], features_fn=_features_x
)
#: y = a·b·c·x + noise (d = 3; truth 0: λ = 1/2, m = 3).
TRIPLE_PRODUCT = LinearFeatureRegression(
    "triple product y = a·b·c·x",
    _abc_mean,
    d=3,
    coef_fn=lambda w: w[..., 0:1] * w[..., 1:2] * w[..., 2:3],
    features_fn=_features_x,
)
#: y = a²·x + noise (d = 1; truth 0: λ = 1/4, m = 1).
SQUARE = LinearFeatureRegression("square y = a²·x", _square_mean, d=1, coef_fn=lambda w: w**2, features_fn=_features_x)
#: y = a·tanh(b·x) + noise (d = 2; truth a = b = 0: λ = 1/2, m = 2; a0·b0 ≠ 0: regular).
TANH = GaussianRegression("tanh y = a·tanh(b·x)", _tanh_mean, d=2)


# --- A two-layer tanh network y = Σ_h c_h tanh(a_h x + b_h) ------------------------------

def tanh_network_unflatten(w: Tensor, hidden: int, bias: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Split w = (a_1..a_H, b_1..b_H, c_1..c_H) (or (a, c) without bias) into a, b, c of shape (..., H)."""
    k = 3 if bias else 2
    if w.shape[-1:] != (k * hidden,):
        raise ValueError(f"a tanh network with H = {hidden} (bias={bias}) has d = {k * hidden} parameters, got shape {tuple(w.shape)}.")
    a = w[..., :hidden]
    b = w[..., hidden : 2 * hidden] if bias else torch.zeros_like(a)
    c = w[..., -hidden:]
    return a, b, c


def tanh_network(hidden: int, *, bias: bool = True, sigma: float = 1.0) -> GaussianRegression:
    """y = Σ_h c_h tanh(a_h x + b_h) + N(0, σ²), x ~ N(0,1); w = (a, b, c) flattened, d = 3H (2H without bias)."""
    hidden = positive_int("hidden (the number of tanh units H)", hidden)
    sigma = _check_sigma(sigma)

    def mean_fn(w: Tensor, x: Tensor) -> Tensor:
        a, b, c = tanh_network_unflatten(w, hidden, bias)
        pre = a[..., None, :] * x[:, None] + b[..., None, :]  # (..., n, H)
        return (c[..., None, :] * torch.tanh(pre)).sum(-1)

    k = 3 if bias else 2
    return GaussianRegression(f"two-layer tanh network, H = {hidden}", mean_fn, d=k * hidden, sigma=sigma)


# --- Reduced-rank regression y = BAx + N(0, σ² I_N) ----------------------------------------

def _check_data_2d(x: Tensor, y: Tensor, dx: int, dy: int) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise ValueError(
            f"x and y must be 2-D with the same (positive) number of rows, got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if x.shape[1] != dx or y.shape[1] != dy:
        raise ValueError(f"expected x of shape (n, {dx}) and y of shape (n, {dy}), got {tuple(x.shape)} and {tuple(y.shape)}.")


@dataclass(frozen=True)
class ReducedRankRegression:
    """y = BAx + N(0, σ² I_N), x ~ N(0, I_M), A: H×M, B: N×H; w = (vec A, vec B) row-major, d = H(M+N)."""

    M: int
    N: int
    H: int
    sigma: float = 1.0

    def __post_init__(self) -> None:
        for name in ("M", "N", "H"):
            positive_int(name, getattr(self, name))
        _check_sigma(self.sigma)

    @property
    def d(self) -> int:
        """Number of parameters H(M + N)."""
        return self.H * (self.M + self.N)

    def unflatten(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """(A, B) of shapes (..., H, M) and (..., N, H) from w of shape (..., d)."""
        if w.shape[-1:] != (self.d,):
            raise ValueError(f"reduced-rank regression (M={self.M}, N={self.N}, H={self.H}) has d = {self.d}, got shape {tuple(w.shape)}.")
        k = self.H * self.M
        return w[..., :k].unflatten(-1, (self.H, self.M)), w[..., k:].unflatten(-1, (self.N, self.H))

    def flatten(self, A: Tensor, B: Tensor) -> Tensor:
        """w = (vec A, vec B) from A (..., H, M) and B (..., N, H)."""
        if A.shape[-2:] != (self.H, self.M) or B.shape[-2:] != (self.N, self.H):
            raise ValueError(f"expected A (..., {self.H}, {self.M}) and B (..., {self.N}, {self.H}), got {tuple(A.shape)}, {tuple(B.shape)}.")
        return torch.cat([A.flatten(-2), B.flatten(-2)], dim=-1)

    def true_parameter(self, rank: int, generator: torch.Generator | None = None) -> Tensor:
        """A random w0 (N(0,1) entries) whose product BA has rank ``rank`` (columns of B beyond ``rank`` zero)."""
        rank = int_in_range("rank", rank, 0, min(self.M, self.N, self.H))
        A = torch.randn(self.H, self.M, generator=generator, dtype=torch.float64)
        B = torch.randn(self.N, self.H, generator=generator, dtype=torch.float64)
        B[:, rank:] = 0.0
        return self.flatten(A, B)

    def product(self, w: Tensor) -> Tensor:
        """C = BA, shape (..., N, M)."""
        A, B = self.unflatten(w)
        return B @ A

    def sample(self, w0: Tensor, n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(x, y): x ~ N(0, I_M) of shape (n, M), y = BAx + σε of shape (n, N), float64."""
        _check_n(n)
        C = self.product(torch.as_tensor(w0, dtype=torch.float64))
        if C.ndim != 2:
            raise ValueError("sample from a single true parameter of shape (d,).")
        x = torch.randn(n, self.M, generator=generator, dtype=torch.float64)
        y = x @ C.T + self.sigma * torch.randn(n, self.N, generator=generator, dtype=torch.float64)
        return x, y

    def nll(self, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample −log p(y_i|x_i, w) = (N/2) log 2πσ² + |y_i − BAx_i|²/(2σ²), shape ``w.shape[:-1] + (n,)``."""
        _check_data_2d(x, y, self.M, self.N)
        w, x, y = _same_float(w, x, y)
        C = self.product(w)
        r = y - x @ C.transpose(-1, -2)  # (..., n, N)
        return 0.5 * self.N * (LOG_2PI + 2 * math.log(self.sigma)) + (r * r).sum(-1) / (2 * self.sigma**2)

    def empirical_loss(self, w: Tensor, x: Tensor, y: Tensor, *, chunk: int = 1 << 22) -> Tensor:
        """L_n(w) = mean_i −log p(y_i|x_i, w), shape ``w.shape[:-1]``; data processed in chunks."""
        _check_data_2d(x, y, self.M, self.N)
        self.unflatten(w)
        return _chunked_mean(self.nll, w, (x, y), chunk, width=self.N)

    def kl(self, w: Tensor, w0: Tensor) -> Tensor:
        """K(w) = ‖BA − B0A0‖_F²/(2σ²), exact for x ~ N(0, I_M)."""
        D = self.product(w) - self.product(torch.as_tensor(w0, dtype=torch.float64))
        return (D * D).sum((-1, -2)) / (2 * self.sigma**2)

    def population_loss(self, w: Tensor, w0: Tensor) -> Tensor:
        """L(w) = (N/2)(log 2πσ² + 1) + K(w), exact."""
        return 0.5 * self.N * (LOG_2PI + 2 * math.log(self.sigma) + 1) + self.kl(w, w0)


# --- Logistic regression: y ~ Bernoulli(sigmoid(w·x)), x ~ N(0, I_d) ------------------------

@dataclass(frozen=True)
class LogisticRegression:
    """p(y=1|x, w) = sigmoid(w·x), x ~ N(0, I_d); y ∈ {0, 1}."""

    d: int

    def __post_init__(self) -> None:
        positive_int("d", self.d)

    def _check_w(self, w: Tensor) -> Tensor:
        if w.shape[-1:] != (self.d,):
            raise ValueError(f"logistic regression: parameters must have last dimension d = {self.d}, got shape {tuple(w.shape)}.")
        return w

    def sample(self, w0: Tensor | list[float], n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(x, y): x ~ N(0, I_d) of shape (n, d), y ~ Bernoulli(sigmoid(w0·x)) of shape (n,), float64."""
        _check_n(n)
        w0 = self._check_w(torch.as_tensor(w0, dtype=torch.float64))
        x = torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return x, (u < torch.sigmoid(x @ w0)).double()

    def nll(self, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample −log p(y_i|x_i, w) = log(1 + e^{z_i}) − y_i z_i, z_i = w·x_i; shape ``w.shape[:-1] + (n,)``."""
        self._check_w(w)
        if x.ndim != 2 or x.shape[1] != self.d or y.shape != (x.shape[0],):
            raise ValueError(f"expected x of shape (n, {self.d}) and y of shape (n,), got {tuple(x.shape)} and {tuple(y.shape)}.")
        w, x, y = _same_float(w, x, y)
        z = w @ x.T if w.ndim > 1 else x @ w
        return torch.nn.functional.softplus(z) - y * z

    def empirical_loss(self, w: Tensor, x: Tensor, y: Tensor, *, chunk: int = 1 << 22) -> Tensor:
        """L_n(w) = mean_i −log p(y_i|x_i, w), shape ``w.shape[:-1]``; data processed in chunks."""
        self._check_w(w)
        if x.shape[0] < 1:
            raise ValueError("need at least one data point.")
        return _chunked_mean(self.nll, w, (x, y), chunk)


# --- Gaussian mixtures (density models: data x only) ---------------------------------------

def _check_x_1d(x: Tensor) -> None:
    if x.ndim != 1 or x.numel() < 1:
        raise ValueError(f"x must be a non-empty 1-D tensor of observations, got shape {tuple(x.shape)}.")


@dataclass(frozen=True)
class WeightMixture:
    """p(x|a, b) = (1 − a) N(x; 0, 1) + a N(x; b, 1), w = (a, b) with a ∈ [0, 1] (truth N(0,1): λ = 1/2, m = 2)."""

    d: int = 2

    def _check_w(self, w: Tensor) -> Tensor:
        if w.shape[-1:] != (2,):
            raise ValueError(f"the mixture (1−a)N(0,1) + aN(b,1) has parameters (a, b), last dimension 2; got shape {tuple(w.shape)}.")
        a = w[..., 0]
        if ((a < 0) | (a > 1)).any():
            raise ValueError("the mixing weight a must lie in [0, 1].")
        return w

    def sample(self, w0: Tensor | list[float], n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n draws from (1 − a0) N(0,1) + a0 N(b0,1), float64, shape ``(n,)``."""
        _check_n(n)
        w0 = self._check_w(torch.as_tensor(w0, dtype=torch.float64))
        comp = torch.rand(n, generator=generator, dtype=torch.float64) < w0[0]
        return torch.randn(n, generator=generator, dtype=torch.float64) + comp * w0[1]

    def nll(self, w: Tensor, x: Tensor) -> Tensor:
        """Per-sample −log[(1 − a)N(x_i;0,1) + aN(x_i;b,1)], shape ``w.shape[:-1] + (n,)``."""
        self._check_w(w)
        _check_x_1d(x)
        a, b = w[..., 0:1], w[..., 1:2]
        l0 = torch.log1p(-a) - 0.5 * x * x
        l1 = torch.log(a) - 0.5 * (x - b) ** 2
        return 0.5 * LOG_2PI - torch.logaddexp(l0, l1)

    def empirical_loss(self, w: Tensor, x: Tensor, *, chunk: int = 1 << 22) -> Tensor:
        """L_n(w) = mean_i −log p(x_i|w), shape ``w.shape[:-1]``."""
        self._check_w(w)
        _check_x_1d(x)
        return _chunked_mean(self.nll, w, (x,), chunk)


@dataclass(frozen=True)
class SymmetricMixture:
    """p(x|b) = ½ N(x; b, 1) + ½ N(x; −b, 1), w = (b,) (truth b = 0: λ = 1/4, m = 1)."""

    d: int = 1

    def _check_w(self, w: Tensor) -> Tensor:
        if w.shape[-1:] != (1,):
            raise ValueError(f"the mixture ½N(b,1) + ½N(−b,1) has one parameter b (last dimension 1); got shape {tuple(w.shape)}.")
        return w

    def sample(self, w0: Tensor | list[float], n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n draws from ½ N(b0, 1) + ½ N(−b0, 1), float64, shape ``(n,)``."""
        _check_n(n)
        w0 = self._check_w(torch.as_tensor(w0, dtype=torch.float64))
        sign = 2.0 * (torch.rand(n, generator=generator, dtype=torch.float64) < 0.5) - 1.0
        return torch.randn(n, generator=generator, dtype=torch.float64) + sign * w0[0]

    def nll(self, w: Tensor, x: Tensor) -> Tensor:
        """Per-sample ½ log 2π + (x_i² + b²)/2 − log cosh(b x_i), shape ``w.shape[:-1] + (n,)``."""
        self._check_w(w)
        _check_x_1d(x)
        b = w[..., 0:1]
        t = (b * x).abs()
        log_cosh = t + torch.log1p(torch.exp(-2 * t)) - math.log(2.0)
        return 0.5 * LOG_2PI + 0.5 * (x * x + b * b) - log_cosh

    def empirical_loss(self, w: Tensor, x: Tensor, *, chunk: int = 1 << 22) -> Tensor:
        """L_n(w) = mean_i −log p(x_i|w), shape ``w.shape[:-1]``."""
        self._check_w(w)
        _check_x_1d(x)
        return _chunked_mean(self.nll, w, (x,), chunk)


MIXTURE_WEIGHT = WeightMixture()
MIXTURE_SYMMETRIC = SymmetricMixture()


# --- Monte Carlo population loss for any of the models above -------------------------------

def population_loss_mc(
    model: object, w: Tensor, w0: Tensor | list[float], *, n: int = 1_000_000, generator: torch.Generator | None = None
) -> Tensor:
    """L(w) ≈ (1/n) Σ_i −log p(z_i|w) on n fresh draws z_i from the truth w0 (error O(n^{-1/2})), shape ``w.shape[:-1]``.

    ``model`` needs ``sample(w0, n, generator=...)`` and ``empirical_loss(w, *data)``. For K(w)
    use ``kl_mc``, which reuses the same draws for L(w0) so most of the noise cancels.
    """
    data = model.sample(w0, n, generator=generator)
    data = data if isinstance(data, tuple) else (data,)
    return model.empirical_loss(torch.as_tensor(w, dtype=torch.float64), *data)


def kl_mc(
    model: object, w: Tensor, w0: Tensor | list[float], *, n: int = 1_000_000, generator: torch.Generator | None = None
) -> Tensor:
    """K(w) ≈ (1/n) Σ_i [log p(z_i|w0) − log p(z_i|w)] on n draws z_i from the truth (common random numbers)."""
    data = model.sample(w0, n, generator=generator)
    data = data if isinstance(data, tuple) else (data,)
    w = torch.as_tensor(w, dtype=torch.float64)
    w0 = torch.as_tensor(w0, dtype=torch.float64)
    return model.empirical_loss(w, *data) - model.empirical_loss(w0, *data)


def gaussian_mean_expected_generalisation_error(n: int, w0: float, prior_std: float = 1.0) -> float:
    """E[G_n] exactly for the conjugate model N(w, 1), prior N(0, s0²), truth N(w0, 1), β = 1.

    v = 1/(1/s0² + n), μ_n = vΣX ~ N(v n w0, v² n), so E(w0 − μ_n)² = w0²(v/s0²)² + v²n and
    E[G_n] = ½ log(1 + v) + (1 + w0²(v/s0²)² + v²n)/(2(1 + v)) − ½  (G_n is linear in (w0 − μ_n)²).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if not prior_std > 0:
        raise ValueError(f"prior_std must be positive, got {prior_std!r}.")
    v = 1.0 / (1.0 / prior_std**2 + n)
    mean_sq = w0**2 * (v / prior_std**2) ** 2 + v**2 * n
    return 0.5 * math.log1p(v) + (1.0 + mean_sq) / (2 * (1.0 + v)) - 0.5


def linear_gaussian_excess_free_energy(n: int, w0: Tensor) -> float:
    """F_n − nL_n(w₀) at population statistics for y = wᵀψ(x) + N(0, 1), E[ψψᵀ] = I, prior N(0, I_d).

    nL_n(w) − nL_n(w₀) = (n/2)|w − w₀|², so the excess is −log ∫ N(w; 0, I) e^{−(n/2)|w−w₀|²} dw
    = (d/2) log(1 + n) + ½ |w₀|² n/(1 + n).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    w0 = torch.as_tensor(w0, dtype=torch.float64).reshape(-1)
    return 0.5 * w0.numel() * math.log1p(n) + 0.5 * float(w0 @ w0) * n / (1 + n)
