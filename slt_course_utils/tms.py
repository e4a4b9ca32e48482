"""The toy model of superposition (TMS) and its k-gon critical points.

Model (Elhage et al. 2022): f(x; W, b) = ReLU(WᵀW x + b), W ∈ R^{m×c} (m = 2 hidden
dimensions, c features), b ∈ R^c; d = (m+1)c parameters (c = 6 → d = 18). Loss: the squared
error summed over the c outputs, averaged over samples, ℓ(x) = ‖f(x) − x‖².

Data. The high-sparsity limit used by Chen, Lau, Mendel, Wei & Murfet (arXiv 2310.06301,
eq. (2)): exactly one coordinate i ~ U{1..c} is active, with value μ ~ U[0, 1]. At general
sparsity S (Elhage et al.) each coordinate is independently active with probability 1 − S.

Population loss at high sparsity (exact, piecewise-quadratic integration in μ):

    L(W, b) = (1/c) Σ_i ∫_0^1 ‖ReLU(μ WᵀW e_i + b) − μ e_i‖² dμ,

which equals H(W, b)/(3c) with H the closed form of the paper's Lemma 3.1.

Sources of the paper's numbers (``PAPER_*`` below). We could not read the paper's own text
here; every value comes from a public transcription of the arXiv v1 LaTeX source
(repository humiliati/sundog, ``docs/atlas/TMS_H0_HARVEST.md``, which cites Lemma 3.1 /
eq. (4) for the closed form, Appendix E.1 for the polynomial system giving the k-gon
(l*, b*), Corollary D.2 for the dead-feature constant). None of them rests on that
transcription alone:

- the losses and (l*, b*) are re-derived here (tests/test_tms.py: our exact integral,
  minimised over (l, b), reproduces every published digit);
- the learning coefficients λ (k ≥ 5) are re-derived by :func:`kgon_llc_from_hessian`: the
  exact Hessian of our population loss has a spectral gap, its null space is exactly the
  known flat directions (the O(2) rotation and each dead feature with negative bias), so the
  critical set is a manifold and λ = rank/2 (Morse–Bott); this gives every ``PAPER_LLC``
  value, and our SGLD estimates agree (chapter 07);
- the critical n is the root of n ΔL = Δλ log n + Δc with the published constants, which
  we check is self-consistent; the O(1) constant Δc itself is quoted, not re-derived.

What we could not do is cite the paper's *table number* for λ: that needs the paper itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from slt_course_utils._validate import (
    InputTypeError,
    finite_float,
    finite_tensor,
    int_in_range,
    model_input,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    real_scalar,
)
from slt_course_utils.device import get_device
from slt_course_utils.progress import progress as _progress

__all__ = [
    "PAPER_CRITICAL_N",
    "PAPER_KGON_LOSS",
    "PAPER_KGON_PARAMETERS",
    "PAPER_LLC",
    "KGonType",
    "ToyModelOfSuperposition",
    "TrainResult",
    "classify_kgon",
    "draw_columns",
    "free_energy_asymptotic",
    "hessian_eigenvalues",
    "kgon_flat_dimension",
    "kgon_hessian_eigenvalues",
    "kgon_label",
    "kgon_llc_from_hessian",
    "kgon_optimal_shape",
    "kgon_parameters",
    "longest_plateau",
    "plot_polygons",
    "population_loss",
    "population_loss_quadrature",
    "sample_high_sparsity",
    "sample_sparse",
    "tms_forward",
    "tms_loss",
    "train_tms",
]

# --------------------------------------------------------------------------------------
# The paper's values (arXiv 2310.06301 v1, via the transcription named in the module doc)
# --------------------------------------------------------------------------------------

#: (l*, b*) of the regular k-gon: column length and bias of the k live features
#: (Appendix E.1 polynomial system; the 4-gon is (1, 0)). Dead features have W_i = 0.
PAPER_KGON_PARAMETERS: dict[int, tuple[float, float]] = {
    4: (1.0, 0.0), 5: (1.17046, -0.28230), 6: (1.32053, -0.61814),
    7: (1.44839, -0.96691), 8: (1.55045, -1.29119),
}
#: Population loss L at (k, c, σ) — σ dead features with the optimal positive bias 1/(2c),
#: the other c − k − σ dead features with a negative bias. L(k, c) = (h_k + c − k)/(3c).
PAPER_KGON_LOSS: dict[tuple[int, int, int], float] = {
    (5, 6, 0): 0.06874, (5, 6, 1): 0.06180, (6, 6, 0): 0.04819, (4, 5, 0): 0.06667,
    (4, 5, 1): 0.05667, (5, 5, 0): 0.01583, (4, 6, 1): 0.10417, (4, 4, 0): 0.0,
}
#: Local learning coefficients λ of k-gon critical points, (k, c, σ) → λ: (3c − 1)/2 for
#: k = c; 7 for the 5-gon at c = 6 (its dead feature is flat), 8.5 for the 5⁺-gon at c = 6.
#: (The 4-gon is not C² there and has direction-dependent values: not listed.) Each value
#: is re-derived as rank(∇²L)/2 by :func:`kgon_llc_from_hessian` (tests/test_tms.py).
PAPER_LLC: dict[tuple[int, int, int], float] = {
    (5, 5, 0): 7.0, (6, 6, 0): 8.5, (7, 7, 0): 10.0, (8, 8, 0): 11.5,
    (5, 6, 0): 7.0, (5, 6, 1): 8.5,
}
#: The Bayesian 5-gon → 6-gon transition at c = 6: the critical n, with the loss gap, the
#: λ gap and the O(1) free-energy constant gap the paper uses; observed in MCMC at 600–700.
PAPER_CRITICAL_N: dict[str, float] = {
    "n_critical": 601, "delta_loss": 0.02055, "delta_llc": 1.5, "delta_constant": 2.7535,
}


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


class ToyModelOfSuperposition(nn.Module):
    """f(x) = ReLU(WᵀWx + b), W ∈ R^{m×c}, b ∈ R^c (Elhage et al. 2022); x of shape (n, c)."""

    def __init__(self, c: int = 6, m: int = 2, *, W: Tensor | None = None, b: Tensor | None = None,
                 init_scale: float = 0.1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        c, m = positive_int("c (the number of features)", c), positive_int("m (the hidden dimension)", m)
        init_scale = nonnegative_float("init_scale", init_scale)
        W0 = torch.randn(m, c, generator=generator) * init_scale if W is None else torch.as_tensor(W).clone()
        b0 = torch.zeros(c) if b is None else torch.as_tensor(b).clone()
        finite_tensor("W", W0)
        finite_tensor("b", b0)
        if W0.shape != (m, c) or b0.shape != (c,):
            raise ValueError(f"W must have shape ({m}, {c}) and b shape ({c},); got {tuple(W0.shape)}, "
                             f"{tuple(b0.shape)}.")
        self.W = nn.Parameter(W0.float() if W0.dtype not in (torch.float32, torch.float64) else W0)
        self.b = nn.Parameter(b0.to(self.W.dtype))

    def forward(self, x: Tensor) -> Tensor:
        model_input(x, self.W)
        return torch.relu(x @ self.W.T @ self.W + self.b)


def tms_forward(W: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """ReLU(x WᵀW + b), batched over leading seed dimensions.

    W: (..., m, c), b: (..., c), x: (..., n, c) or (n, c) → (..., n, c).
    """
    if W.ndim < 2 or b.shape[-1:] != W.shape[-1:] or x.shape[-1:] != W.shape[-1:]:
        raise ValueError(f"tms_forward needs W (..., m, c), b (..., c) and x (..., n, c) with one c; got "
                         f"{tuple(W.shape)}, {tuple(b.shape)} and {tuple(x.shape)}.")
    dtype = torch.promote_types(torch.promote_types(W.dtype, b.dtype), x.dtype)
    W, b, x = W.to(dtype), b.to(dtype), x.to(dtype)
    gram = W.transpose(-1, -2) @ W  # (..., c, c), symmetric
    return torch.relu(x @ gram + b.unsqueeze(-2))


def tms_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over samples of ‖pred − target‖² (summed over the c outputs): the Gaussian NLL
    with σ² = 1/2 up to a constant. The normalisation matches :func:`population_loss`."""
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)} but target has shape {tuple(target.shape)}; they must match.")
    return (pred - target).pow(2).sum(-1).mean(-1)


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def _check_sample_shape(n: int, c: int, num_seeds: int | None) -> tuple[int, ...]:
    """The leading shape () or (num_seeds,), after checking n, c (and num_seeds) are positive integers."""
    positive_int("n (the number of samples)", n)
    positive_int("c (the number of features)", c)
    return () if num_seeds is None else (positive_int("num_seeds", num_seeds),)


def sample_high_sparsity(n: int, c: int = 6, *, generator: torch.Generator | None = None,
                         num_seeds: int | None = None, device: torch.device | str = "cpu") -> Tensor:
    """x with exactly one active coordinate i ~ U{1..c}, value μ ~ U[0, 1]: shape (n, c)
    (or (num_seeds, n, c)). The paper's eq. (2), the S → 1 limit of Elhage et al."""
    lead = _check_sample_shape(n, c, num_seeds)
    idx = torch.randint(0, c, lead + (n,), generator=generator, device=device)
    mu = torch.rand(lead + (n,), generator=generator, device=device)
    x = torch.zeros(lead + (n, c), device=device)
    x.scatter_(-1, idx.unsqueeze(-1), mu.unsqueeze(-1))
    return x


def sample_sparse(n: int, c: int = 6, sparsity: float = 0.9, *, generator: torch.Generator | None = None,
                  num_seeds: int | None = None, device: torch.device | str = "cpu") -> Tensor:
    """x_i = a_i μ_i with a_i ~ Bernoulli(1 − S) and μ_i ~ U[0, 1] independent (Elhage et al.)."""
    lead = _check_sample_shape(n, c, num_seeds)
    sparsity = real_scalar("sparsity", sparsity)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity S must lie in [0, 1), got {sparsity}.")
    active = torch.rand(lead + (n, c), generator=generator, device=device) >= sparsity
    return active * torch.rand(lead + (n, c), generator=generator, device=device)


# --------------------------------------------------------------------------------------
# Population loss (high-sparsity limit)
# --------------------------------------------------------------------------------------


def _check_W_b(W: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(W, b) as floating tensors of shapes (..., m, c) and (..., c), finite (an integer W becomes float32)."""
    W = torch.as_tensor(W)
    if not W.is_floating_point():
        W = W.float()
    b = torch.as_tensor(b, dtype=W.dtype, device=W.device)
    if W.ndim < 2 or b.shape[-1:] != W.shape[-1:]:
        raise ValueError(f"W must have shape (..., m, c) and b shape (..., c); got {tuple(W.shape)} and {tuple(b.shape)}.")
    finite_tensor("W", W)
    finite_tensor("b", b)
    return W, b


def _int_sq_linear(p: Tensor, q: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """∫_lo^hi (p μ + q)² dμ (0 where hi ≤ lo)."""
    hi = torch.maximum(hi, lo)
    return p * p * (hi**3 - lo**3) / 3 + p * q * (hi**2 - lo**2) + q * q * (hi - lo)


def population_loss(W: Tensor, b: Tensor) -> Tensor:
    """L(W, b) = (1/c) Σ_i ∫_0^1 ‖ReLU(μ WᵀW e_i + b) − μ e_i‖² dμ, exactly.

    For input feature i and output j the integrand is piecewise quadratic in μ with one kink
    at μ = −b_j/a_ji (a = WᵀW); each piece is integrated in closed form. Differentiable
    (autograd gives the exact gradient away from kinks); batched over leading dims of
    W: (..., m, c), b: (..., c) → (...). Equals H/(3c) of the paper's Lemma 3.1.
    """
    W, b = _check_W_b(W, b)
    c = W.shape[-1]
    a = W.transpose(-1, -2) @ W  # a[..., i, j] = W_i · W_j; input i, output j
    bj = b.unsqueeze(-2).expand_as(a)  # bias of output j
    eye = torch.eye(c, dtype=W.dtype, device=W.device)
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    # Active set {μ ∈ [0,1]: a μ + b_j > 0}: an interval [lo, hi].
    safe_a = torch.where(a == 0, one, a)
    root = (-bj / safe_a).clamp(0.0, 1.0)
    lo = torch.where(a > 0, root, torch.where(a < 0, zero, torch.where(bj > 0, zero, one)))
    hi = torch.where(a > 0, one, torch.where(a < 0, root, one))
    # Active: (a μ + b − δ μ)²; inactive: (δ μ)² on the complement.
    active = _int_sq_linear(a - eye, bj, lo, hi)
    total_target = eye / 3.0  # ∫_0^1 (δμ)² over [0,1]
    inactive = total_target - eye * (torch.maximum(hi, lo) ** 3 - lo**3) / 3.0
    return (active + inactive).sum((-1, -2)) / c


def population_loss_quadrature(W: Tensor, b: Tensor, points: int = 20001) -> Tensor:
    """The same integral by the trapezoid rule on ``points`` nodes (an independent check)."""
    W, b = (t.double() for t in _check_W_b(W, b))
    if W.ndim != 2:
        raise ValueError(f"population_loss_quadrature takes one W of shape (m, c), got {tuple(W.shape)}.")
    points = int_in_range("points", points, 2)
    c = W.shape[-1]
    mu = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    x = mu[:, None, None] * torch.eye(c, dtype=torch.float64)  # (points, i, c)
    out = torch.relu(x @ (W.T @ W) + b)
    err = (out - x).pow(2).sum(-1)  # (points, i)
    return torch.trapezoid(err, mu, dim=0).mean()


# --------------------------------------------------------------------------------------
# k-gon critical points
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KGonType:
    """A critical point's type: k live columns, σ dead features with positive bias."""

    k: int
    positive_biases: int = 0
    regular: bool = True

    @property
    def label(self) -> str:
        return kgon_label(self.k, self.positive_biases, self.regular)


def kgon_label(k: int, positive_biases: int = 0, regular: bool = True) -> str:
    """'5', '5+', '4++' (the paper's k^{σ+}); '~' prefix when the polygon is not regular."""
    k, positive_biases = nonnegative_int("k", k), nonnegative_int("positive_biases", positive_biases)
    return ("" if regular else "~") + f"{k}" + "+" * positive_biases


def _regular_kgon(k: int, c: int, length: Tensor, bias: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    angles = 2 * math.pi * torch.arange(k, dtype=dtype) / k
    W = torch.zeros(2, c, dtype=dtype)
    W[0, :k] = length * torch.cos(angles)
    W[1, :k] = length * torch.sin(angles)
    b = torch.zeros(c, dtype=dtype)
    b[:k] = bias
    return W, b


_SHAPE_CACHE: dict[int, tuple[float, float]] = {}


def kgon_optimal_shape(k: int) -> tuple[float, float]:
    """(l*, b*): the column length and bias minimising the loss of a regular k-gon.

    Found by Newton's method on our exact :func:`population_loss` (in float64) from the
    paper's value; does not depend on c (dead features with W = 0, b ≤ 0 decouple).
    For k ≤ 4, (1, 0): orthogonal/antipodal columns reconstruct exactly.
    """
    k = positive_int("k", k)
    if k <= 4:
        return 1.0, 0.0
    if k in _SHAPE_CACHE:
        return _SHAPE_CACHE[k]
    l0, b0 = PAPER_KGON_PARAMETERS.get(k, (0.9 + 0.1 * k, -0.3 * (k - 4)))
    z = torch.tensor([l0, b0], dtype=torch.float64)

    def f(v: Tensor) -> Tensor:
        W, b = _regular_kgon(k, k, v[0], v[1], torch.float64)
        return population_loss(W, b)

    for _ in range(50):
        g = torch.autograd.functional.jacobian(f, z)
        h = torch.autograd.functional.hessian(f, z)
        step = torch.linalg.solve(h, g)
        z = z - step
        if float(step.abs().max()) < 1e-14:
            break
    _SHAPE_CACHE[k] = (float(z[0]), float(z[1]))
    return _SHAPE_CACHE[k]


def _check_kgon(k: int, c: int, positive_biases: int) -> tuple[int, int, int]:
    """(k, c, σ) as integers with 1 ≤ k ≤ c and 0 ≤ σ ≤ c − k."""
    c = positive_int("c (the number of features)", c)
    k = int_in_range("k (the number of live features)", k, 1, c)
    return k, c, int_in_range("positive_biases", positive_biases, 0, c - k)


def kgon_parameters(k: int, c: int = 6, positive_biases: int = 0, *, rotation: float = 0.0,
                    dead_bias: float = -1.0, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """(W, b) of the ideal k-gon critical point with σ = ``positive_biases`` (the paper's k^{σ+}).

    Columns 0..k−1 form a regular k-gon of radius l* (rotated by ``rotation``), biases b*;
    the c − k dead columns are 0, the first σ of them with the optimal positive bias 1/(2c)
    (minimises (1/c)[c b² − b + 1/3]), the rest with ``dead_bias`` < 0 (a flat direction:
    any negative value is critical). Shapes (2, c), (c,).
    """
    k, c, positive_biases = _check_kgon(k, c, positive_biases)
    rotation, dead_bias = finite_float("rotation", rotation), finite_float("dead_bias", dead_bias)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InputTypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}.")
    if dead_bias >= 0:
        raise ValueError(f"dead_bias must be negative (a positive dead bias is the σ pattern), got {dead_bias}.")
    length, bias = kgon_optimal_shape(k)
    W, b = _regular_kgon(k, c, torch.tensor(length, dtype=dtype), torch.tensor(bias, dtype=dtype), dtype)
    rot = torch.tensor([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]],
                       dtype=dtype)
    W = rot @ W
    b[k:] = dead_bias
    b[k : k + positive_biases] = 1.0 / (2 * c)
    return W, b


def hessian_eigenvalues(W: Tensor, b: Tensor) -> Tensor:
    """Eigenvalues (ascending, float64) of the 3c × 3c Hessian of :func:`population_loss` in (W, b)."""
    c = W.shape[-1]
    v = torch.cat([torch.as_tensor(W).flatten(), torch.as_tensor(b, dtype=W.dtype)]).double()

    def f(v: Tensor) -> Tensor:
        return population_loss(v[: 2 * c].reshape(2, c), v[2 * c :])

    return torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, v))


def kgon_flat_dimension(k: int, c: int = 6, positive_biases: int = 0) -> int:
    """Directions in which L is exactly flat near the k^{σ+}-gon: 1 (rotating the hidden plane)
    + 3 per dead feature with negative bias (its column and bias), 1 + 3(c − k − σ)."""
    k, c, positive_biases = _check_kgon(k, c, positive_biases)
    return 1 + 3 * (c - k - positive_biases)


def kgon_hessian_eigenvalues(k: int, c: int = 6, positive_biases: int = 0) -> Tensor:
    """Eigenvalues (ascending, float64) of the exact Hessian ∇²L at the ideal k^{σ+}-gon, d = 3c.

    Autograd through :func:`population_loss`, which is piecewise analytic. For 5 ≤ k ≤ 8 no kink
    of the integrand sits at μ = 0 or 1 and the inactive pairs stay inactive nearby, so L is
    C^∞ at the k-gon and this is the true Hessian (tests/test_tms.py checks the gap and the
    null space for every published k-gon).
    """
    return hessian_eigenvalues(*kgon_parameters(k, c, positive_biases, rotation=0.3))


def kgon_llc_from_hessian(k: int, c: int = 6, positive_biases: int = 0, *, rel_tol: float = 1e-9) -> float:
    """λ of the k^{σ+}-gon from the Hessian: λ = rank(∇²L)/2 at a Morse–Bott minimum.

    Near the k-gon the loss is exactly flat along 1 + 3(c − k − σ) directions (rotating the
    hidden plane; the column and bias of each dead feature with negative bias). If the
    Hessian's null space has exactly that dimension and no eigenvalue is negative, the set
    of minimisers is locally a manifold of that dimension with a non-degenerate normal
    Hessian, so λ = (d − dim)/2 = rank/2 and m = 1 (Watanabe 2009, the regular case applied
    in normal coordinates). Raises ValueError for k ≤ 4 (the 4-gons have b* = 0, a kink of
    the integrand at μ = 0: L is not C² there) and RuntimeError if the null space is not
    the expected one (then λ is not rank/2).
    """
    k, c, positive_biases = _check_kgon(k, c, positive_biases)
    rel_tol = positive_float("rel_tol", rel_tol)
    if k <= 4:
        raise ValueError(f"the {k}-gon is not a smooth critical point (b* = 0 puts a kink at μ = 0); "
                         "λ is not rank/2 there — use k ≥ 5.")
    eig = kgon_hessian_eigenvalues(k, c, positive_biases)
    scale = float(eig.abs().max())
    rank = int((eig > rel_tol * scale).sum())
    negative = int((eig < -rel_tol * scale).sum())
    flat = kgon_flat_dimension(k, c, positive_biases)
    if negative or eig.numel() - rank != flat:
        raise RuntimeError(f"{kgon_label(k, positive_biases)}-gon at c={c}: {negative} negative eigenvalues and "
                           f"nullity {eig.numel() - rank}, expected 0 and {flat}; not a Morse–Bott minimum.")
    return rank / 2


def kgon_llc_quadratic(k: int, c: int = 6, positive_biases: int = 0, *, nbeta: float, localization: float) -> float:
    """What SGLD's λ̂ reads at the k^{σ+}-gon if the loss were its quadratic approximation:
    ½ Σ nβh/(nβh + γ) over the curved Hessian eigenvalues h (llc.expected_llc_quadratic's formula,
    with the exact population Hessian). γ > 0 lowers it below λ = rank/2 (k ≥ 5)."""
    from slt_course_utils.llc.quadratic import quadratic_llc  # lazy: llc is the heavier module

    kgon_llc_from_hessian(k, c, positive_biases)  # raises unless this is a Morse–Bott minimum
    eig = kgon_hessian_eigenvalues(k, c, positive_biases)[kgon_flat_dimension(k, c, positive_biases):]
    return quadratic_llc(eig, nbeta, localization)[0]


def classify_kgon(W: Tensor, b: Tensor, *, live_threshold: float = 0.5, angle_tol: float = 0.35,
                  bias_threshold: float = 0.0) -> KGonType:
    """Name the critical point (W, b) is near: k = number of columns with ‖W_i‖ > threshold,
    σ = number of the other features with bias > ``bias_threshold``; ``regular`` when the
    live columns' angular gaps are all within ``angle_tol`` (radians) of 2π/k (k ≥ 2) and
    their lengths within 30% of each other. W: (2, c), b: (c,).
    """
    W = torch.as_tensor(W, dtype=torch.float64).detach().cpu()
    b = torch.as_tensor(b, dtype=torch.float64).detach().cpu()
    if W.ndim != 2 or W.shape[0] != 2 or b.shape != (W.shape[1],):
        raise ValueError(f"classify_kgon needs W of shape (2, c) and b of shape (c,); got {tuple(W.shape)}, "
                         f"{tuple(b.shape)}.")
    finite_tensor("W", W)
    finite_tensor("b", b)
    norms = W.norm(dim=0)
    live = norms > live_threshold
    k = int(live.sum())
    sigma = int((b[~live] > bias_threshold).sum())
    regular = True
    if k >= 2:
        ang = torch.sort(torch.atan2(W[1, live], W[0, live])).values
        gaps = torch.diff(torch.cat([ang, ang[:1] + 2 * math.pi]))
        regular = bool((gaps - 2 * math.pi / k).abs().max() < angle_tol)
        ln = norms[live]
        regular = regular and bool(ln.max() / ln.min() < 1.3)
    return KGonType(k, sigma, regular)


# --------------------------------------------------------------------------------------
# Training many seeds at once
# --------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """Batched training output: final (W, b) per seed, loss curves, checkpoints."""

    W: Tensor  # (seeds, m, c)
    b: Tensor  # (seeds, c)
    steps: Tensor  # (T,) logged steps
    train_loss: Tensor  # (seeds, T) training loss at the logged steps
    population_loss: Tensor  # (seeds, T) exact high-sparsity loss at the logged steps
    checkpoints: list[tuple[int, Tensor, Tensor]] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def labels(self) -> list[str]:
        """The k-gon label of each seed's final parameters."""
        return [classify_kgon(self.W[s], self.b[s]).label for s in range(self.W.shape[0])]

    def tally(self) -> dict[str, int]:
        """How many seeds ended in each k-gon type, sorted by label."""
        out: dict[str, int] = {}
        for lab in self.labels():
            out[lab] = out.get(lab, 0) + 1
        return dict(sorted(out.items()))


def train_tms(num_seeds: int = 8, c: int = 6, m: int = 2, *, n: int = 1000, steps: int = 5000,
              lr: float = 0.01, batch_size: int | None = 100, optimizer: str = "adam",
              init_scale: float = 0.1, init: tuple[Tensor, Tensor] | None = None, seed: int = 0,
              log_every: int = 50, checkpoint_steps: list[int] | None = None, sparsity: float | None = None,
              device: str = "cpu", progress: bool | None = None) -> TrainResult:
    """Train ``num_seeds`` TMS models at once: every tensor has a leading seed dimension.

    Each seed has its own training set of n samples (high sparsity, or ``sparsity`` S) and
    its own initialisation W ~ N(0, init_scale²), b = 0 (or ``init`` = (W, b) with shapes
    (seeds, m, c), (seeds, c)). The summed loss Σ_s L_s has per-seed gradients, so one
    optimiser step (Adam or SGD, elementwise) advances all seeds independently.
    ``device="auto"`` uses the GPU when there is one.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}.")
    num_seeds, c, m = positive_int("num_seeds", num_seeds), positive_int("c", c), positive_int("m", m)
    n, steps, log_every = positive_int("n", n), nonnegative_int("steps", steps), positive_int("log_every", log_every)
    batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
    lr, init_scale = positive_float("lr", lr), nonnegative_float("init_scale", init_scale)
    dev = get_device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if sparsity is None:
        x = sample_high_sparsity(n, c, generator=gen, num_seeds=num_seeds)
    else:
        x = sample_sparse(n, c, sparsity, generator=gen, num_seeds=num_seeds)
    if init is None:
        W = torch.randn(num_seeds, m, c, generator=gen) * init_scale
        b = torch.zeros(num_seeds, c)
    else:
        W, b = (torch.as_tensor(t, dtype=torch.float32).clone() for t in init)
        if W.shape != (num_seeds, m, c) or b.shape != (num_seeds, c):
            raise ValueError(f"init must have shapes ({num_seeds}, {m}, {c}) and ({num_seeds}, {c}).")
    x, W, b = x.to(dev), W.to(dev).requires_grad_(True), b.to(dev).requires_grad_(True)
    opt = torch.optim.Adam([W, b], lr=lr) if optimizer == "adam" else torch.optim.SGD([W, b], lr=lr)
    ckpt_set = set(checkpoint_steps or [])
    logged_steps, train_hist, pop_hist, ckpts = [], [], [], []
    seeds_idx = torch.arange(num_seeds, device=dev)[:, None]
    minibatch = batch_size is not None and batch_size < n

    def log(step: int) -> None:
        with torch.no_grad():
            logged_steps.append(step)
            train_hist.append(tms_loss(tms_forward(W, b, x), x).double().cpu())
            pop_hist.append(population_loss(W.double(), b.double()).cpu())
        if step in ckpt_set:
            ckpts.append((step, W.detach().cpu().clone(), b.detach().cpu().clone()))

    for step in _progress(range(steps), desc=f"training {num_seeds} TMS seeds", enabled=progress):
        if step % log_every == 0 or step in ckpt_set:
            log(step)
        if minibatch:
            idx = torch.randint(0, n, (num_seeds, batch_size), generator=gen).to(dev)
            xb = x[seeds_idx, idx]
        else:
            xb = x
        opt.zero_grad(set_to_none=True)
        tms_loss(tms_forward(W, b, xb), xb).sum().backward()
        opt.step()
    log(steps)
    hp = {"num_seeds": num_seeds, "c": c, "m": m, "n": n, "steps": steps, "lr": lr, "batch_size": batch_size,
          "optimizer": optimizer, "init_scale": init_scale, "seed": seed, "sparsity": sparsity, "device": str(dev)}
    return TrainResult(W=W.detach().cpu(), b=b.detach().cpu(), steps=torch.tensor(logged_steps),
                       train_loss=torch.stack(train_hist, 1), population_loss=torch.stack(pop_hist, 1),
                       checkpoints=ckpts, hyperparameters=hp)


# --------------------------------------------------------------------------------------
# Free energy of a phase, and pictures
# --------------------------------------------------------------------------------------


def longest_plateau(steps: np.ndarray, loss: np.ndarray, target: float, rel_tol: float = 0.025) -> tuple[int, int] | None:
    """The longest stay of a loss curve near ``target``: (first, last) logged step of the run of
    consecutive logged steps with |loss/target − 1| < rel_tol that has the largest last/first
    ratio (its length on a log-step axis; step 0 counts as 1). None when the curve never gets close.
    """
    steps, loss = np.asarray(steps), np.asarray(loss)
    if steps.shape != loss.shape or steps.ndim != 1:
        raise ValueError(f"steps and loss must be 1-d of the same length, got {steps.shape} and {loss.shape}.")
    target, rel_tol = positive_float("target (a positive loss)", target), positive_float("rel_tol", rel_tol)
    near = np.abs(loss / target - 1) < rel_tol
    best, best_ratio, i = None, 0.0, 0
    while i < len(near):
        if not near[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(near) and near[j + 1]:
            j += 1
        ratio = max(steps[j], 1) / max(steps[i], 1)
        if ratio > best_ratio:
            best, best_ratio = (int(steps[i]), int(steps[j])), ratio
        i = j + 1
    return best


def free_energy_asymptotic(n: np.ndarray | float, loss: float, llc: float, constant: float = 0.0) -> np.ndarray:
    """F_n ≈ n L + λ log n + const for a phase with population loss L and LLC λ."""
    if not np.issubdtype(np.asarray(n).dtype, np.number):
        raise InputTypeError(f"n must be a number or an array of numbers, got {n!r}.")
    n = np.asarray(n, dtype=float)
    if not (np.isfinite(n).all() and (n > 0).all()):
        raise ValueError("every n must be positive and finite (F_n uses log n).")
    loss, llc, constant = finite_float("loss", loss), finite_float("llc", llc), finite_float("constant", constant)
    return n * loss + llc * np.log(n) + constant


def draw_columns(ax, w: Tensor, b: Tensor | None = None, *, ms: float = 3) -> None:
    """Draw the columns of one W (2, c) on ``ax``: spokes from the origin, live ones (norm > 0.5) in blue and
    joined into a polygon, the others grey; a red dot at the origin when a dead feature has b > 0."""
    w = torch.as_tensor(w).detach().cpu().double()
    live = w.norm(dim=0) > 0.5
    if int(live.sum()) >= 3:
        pts = w[:, live][:, torch.argsort(torch.atan2(w[1, live], w[0, live]))]
        ax.fill(pts[0].numpy(), pts[1].numpy(), color="C0", alpha=0.15)
    for i in range(w.shape[1]):
        ax.plot([0, float(w[0, i])], [0, float(w[1, i])], color="C0" if live[i] else "0.6", lw=1.2)
        ax.plot(float(w[0, i]), float(w[1, i]), "o", ms=ms, color="C0" if live[i] else "0.6")
    if b is not None and bool(((~live) & (torch.as_tensor(b).detach().cpu() > 0)).any()):
        ax.plot([0], [0], "o", ms=2 * ms, color="C3")


def plot_polygons(W: Tensor, b: Tensor | None = None, *, ncols: int = 8, titles: list[str] | None = None,
                  suptitle: str | None = None, panel_size: float = 1.6):
    """One small panel per seed: the columns of W (2, c) as spokes from the origin, the
    live ones joined into a polygon; a dead feature with positive bias is a red dot.
    W: (seeds, 2, c) or (2, c); b: (seeds, c) or (c,). Returns the figure."""
    import matplotlib.pyplot as plt

    W = torch.as_tensor(W).detach().cpu().double()
    if W.ndim == 2:
        W = W[None]
    b = None if b is None else torch.as_tensor(b).detach().cpu().double().reshape(W.shape[0], -1)
    S = W.shape[0]
    ncols = min(ncols, S)
    nrows = math.ceil(S / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.4), squeeze=False)
    lim = max(1.0, float(W.norm(dim=1).max()) * 1.15)
    for s in range(nrows * ncols):
        ax = axes[s // ncols][s % ncols]
        ax.set_xticks([])
        ax.set_yticks([])
        if s >= S:
            ax.axis("off")
            continue
        w = W[s]
        kt = classify_kgon(w, b[s]) if b is not None else None
        draw_columns(ax, w, None if b is None else b[s])
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        label = titles[s] if titles is not None else (f"seed {s}: {kt.label}" if kt else f"seed {s}")
        ax.set_title(label, fontsize=8)
    fig.suptitle(suptitle or "Columns of W (blue: live features; red dot: dead feature with b > 0)", fontsize=10)
    fig.tight_layout()
    return fig
