"""Deep linear networks f(x) = W_L ⋯ W_1 x: model, random true networks of a given rank, data.

Aoyagi's (2024) formula, :func:`slt_course_utils.theory.rlct_deep_linear_network` (:func:`exact_llc`),
is the *global* learning coefficient for a truth of rank r: the local λ at the most singular true
parameter (:func:`most_singular_true_network`). At the generic true point that
:func:`random_true_network` builds the local λ is larger, rank(dμ)/2 = H_1·H_{L+1}/2 (:func:`local_llc`);
compare λ̂ with the local λ at the point sampled (chapter 08, §2). Lau et al. (arXiv 2308.12108) and
Furman & Lau (arXiv 2402.03698) validate the SGLD estimator against it with x ~ U[−10, 10]^{H_1}
and noiseless targets from a random true network. ``DeepLinearNetwork`` is the model used by
chapter 08 and by ``benchmarks/llc_vs_devinterp.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import Tensor, nn

from slt_course_utils._validate import (
    int_in_range,
    int_sequence,
    model_input,
    nonnegative_float,
    positive_float,
    positive_int,
)
from slt_course_utils.theory import num_parameters_deep_linear_network, rlct_deep_linear_network

__all__ = [
    "DeepLinearNetwork",
    "dln_loss",
    "exact_llc",
    "num_parameters",
    "random_true_network",
    "sample_dln_data",
]


def _check_widths(widths: Sequence[int]) -> list[int]:
    """widths as a list of ≥ 2 positive ints (input … output); floats are refused, not truncated."""
    return int_sequence("widths (input … output sizes)", widths, low=1, min_len=2)


class DeepLinearNetwork(nn.Module):
    """f(x) = W_L ⋯ W_1 x, no biases; widths = [H_1 (input), H_2, …, H_{L+1} (output)]."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = _check_widths(widths)
        self.layers = nn.Sequential(
            *[nn.Linear(a, b, bias=False) for a, b in zip(self.widths[:-1], self.widths[1:], strict=True)]
        )

    def forward(self, x: Tensor) -> Tensor:
        model_input(x, self.layers[0].weight)
        return self.layers(x)

    def product(self) -> Tensor:
        """The end-to-end matrix W_L ⋯ W_1, shape (H_{L+1}, H_1)."""
        out = self.layers[0].weight
        for layer in self.layers[1:]:
            out = layer.weight @ out
        return out

    @property
    def num_parameters(self) -> int:
        return num_parameters(self.widths)


def num_parameters(widths: Sequence[int]) -> int:
    """d = Σ_s H_s H_{s+1}."""
    return num_parameters_deep_linear_network(_check_widths(widths))


def exact_llc(widths: Sequence[int], true_rank: int) -> Fraction:
    """The global λ of a deep linear network whose truth has rank r (Aoyagi 2024, Theorem 1).

    This is the learning coefficient at the *most singular* true parameter
    (:func:`most_singular_true_network`); at a generic true point the local λ can be larger
    (:func:`local_llc`, e.g. H₁H_{L+1}/2 at :func:`random_true_network`'s teacher).
    """
    return rlct_deep_linear_network(_check_widths(widths), true_rank)[0]


def random_true_network(widths: Sequence[int], rank: int, *, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float32) -> DeepLinearNetwork:
    """A DLN whose product W_L ⋯ W_1 has rank exactly ``rank`` (almost surely).

    Each W_s has entries N(0, 1/H_s) (Kaiming-like, so products stay O(1)); the first layer
    is then replaced by the rank-r matrix U V with U: (H_2, r), V: (r, H_1) Gaussian, which
    caps the product's rank at r; generic factors keep it there. rank = 0 gives the zero network.
    """
    widths = _check_widths(widths)
    rank = int_in_range("rank", rank, 0, min(widths))
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}.")
    net = DeepLinearNetwork(widths).to(dtype)
    with torch.no_grad():
        for layer, fan_in in zip(net.layers, widths[:-1], strict=True):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, dtype=dtype) / fan_in**0.5)
        H1, H2 = widths[0], widths[1]
        U = torch.randn(H2, rank, generator=generator, dtype=dtype)
        V = torch.randn(rank, H1, generator=generator, dtype=dtype)
        net.layers[0].weight.copy_(U @ V / max(rank * H1, 1) ** 0.5)
    return net


def sample_dln_data(teacher: nn.Module, n: int, *, input_range: float = 1.0, noise_std: float = 0.0,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(x, y) with x ~ U[−a, a]^{H_1} (a = ``input_range``; Lau et al. use 10) and
    y = teacher(x) + N(0, noise_std²). Shapes (n, H_1), (n, H_{L+1})."""
    n = positive_int("n", n)
    input_range = positive_float("input_range", input_range)
    noise_std = nonnegative_float("noise_std", noise_std)
    first = next(teacher.parameters(), None) if isinstance(teacher, nn.Module) else None
    if first is None or first.ndim != 2:
        raise ValueError("teacher must be an nn.Module whose first parameter is a weight matrix (out, in), "
                         "e.g. random_true_network(widths, rank).")
    h1 = first.shape[1]
    x = (2 * torch.rand(n, h1, generator=generator, dtype=first.dtype) - 1) * input_range
    with torch.no_grad():
        y = teacher(x)
    if noise_std > 0:
        y = y + noise_std * torch.randn(y.shape, generator=generator, dtype=y.dtype)
    return x, y


def dln_loss(pred: Tensor, target: Tensor) -> Tensor:
    """½‖y − f(x)‖² summed over outputs, averaged over samples (the NLL for σ = 1, up to a constant)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)} but target has shape {tuple(target.shape)}; they must "
                         "match (broadcasting (n,) against (n, 1) would compare every prediction with every target).")
    return 0.5 * (pred - target).pow(2).sum(-1).mean()


# ---------------------------------------------------------------------------------------------
# Local learning coefficients: which true parameter is the teacher? (issue 14)
#
# The true parameters of a DLN with truth M₀ form the fibre μ⁻¹(M₀) of the product map
# μ(W_1, …, W_L) = W_L ⋯ W_1. Aoyagi's λ (:func:`exact_llc`) is the *global* learning
# coefficient: the minimum of the local λ(w) over that fibre. Different points of the fibre
# have different local λ, and λ̂ measures the local one at the point it samples around.
# ---------------------------------------------------------------------------------------------


def _weights(net: nn.Module | Sequence[Tensor]) -> list[Tensor]:
    """The weight matrices [W_1, …, W_L] of a DLN (or a list of them), detached, float64."""
    if isinstance(net, nn.Module):
        mats = [p for p in net.parameters()]
    else:
        mats = list(net)
    if not mats or any(not isinstance(w, Tensor) or w.ndim != 2 for w in mats):
        raise TypeError("expected a DeepLinearNetwork (or nn.Module of bias-free Linear layers) or a list of "
                        "2-d weight tensors [W_1, …, W_L].")
    for s, (a, b) in enumerate(zip(mats[:-1], mats[1:], strict=False), start=1):
        if b.shape[1] != a.shape[0]:
            raise ValueError(f"W_{s + 1} has {b.shape[1]} columns but W_{s} has {a.shape[0]} rows; the layers "
                             "must chain (W_s has shape (H_{s+1}, H_s)).")
    return [w.detach().to(torch.float64) for w in mats]


def _numerical_rank(mat: Tensor, rtol: float) -> int:
    """Number of singular values above rtol·σ_max (0 for the zero matrix)."""
    s = torch.linalg.svdvals(mat)
    return int((s > rtol * s.max()).sum()) if s.numel() and float(s.max()) > 0 else 0


def most_singular_true_network(teacher: nn.Module, *, rank: int | None = None,
                               dtype: torch.dtype = torch.float32) -> DeepLinearNetwork:
    """The same product M₀ = W_L⋯W_1 as ``teacher``, refactored so that every layer has rank r = rank M₀.

    With M₀ = U S Vᵀ (top r singular triples) and E_s the embedding of ℝ^r into the first r
    coordinates of ℝ^{H_s}: W_1 = E_2 S^{1/L} Vᵀ, W_s = E_{s+1} S^{1/L} E_sᵀ, W_L = U S^{1/L} E_Lᵀ.

    **Why its local λ is Aoyagi's global λ.** G = ∏_s GL(H_s) (hidden layers) acts by
    W_s ↦ g_{s+1} W_s g_s⁻¹ and preserves μ, hence K and the local λ (a linear change of
    variables). (a) The points with every layer of rank r are a single G-orbit: each hidden
    space splits as im(W_{s−1}⋯W_1) ⊕ ker W_s (dims r, H_s − r), and bases adapted to the splits
    carry one such point to any other. (b) The closure of the G-orbit of *every* true point
    contains such a point: with rates that differ from layer to layer — e.g. at a generic true
    point, g_s fixes im(W_{s−1}⋯W_1) and multiplies a complement by t^{−(L+1−s)}; in general also
    scale down, faster for deeper layers, the part of each hidden space the later layers kill —
    the product is unchanged and as t → 0 every layer tends to rank r (one common rate is not
    enough: the middle layers would keep full rank). (c) λ is lower semicontinuous on the fibre:
    a ball around w* contains a ball around each nearby w, so ∫ K^z over it diverges at least
    where the smaller integral does, i.e. λ(w*) ≤ λ(w). Together: λ(here) ≤ λ(w) for every true
    w, so the local λ here is the minimum over the fibre — the global λ that Aoyagi (2024,
    Theorem 1) computes. Tested: the differential of μ has lower rank here than at a generic
    true point and its rank jumps nearby (so :func:`local_llc` refuses), and λ̂ reads lower here.
    """
    mats = _weights(teacher)
    widths = [mats[0].shape[1]] + [w.shape[0] for w in mats]
    M0 = product_of(mats)
    U, S, Vh = torch.linalg.svd(M0)
    # the rank of M₀ up to the rounding of the teacher's own dtype (float32 products are full rank at ~1e-7)
    eps = torch.finfo(next(iter(teacher.parameters())).dtype if isinstance(teacher, nn.Module) else mats[0].dtype).eps
    r = _numerical_rank(M0, eps**0.5) if rank is None else int(rank)
    if not 0 <= r <= min(widths):
        raise ValueError(f"rank must be in [0, min(widths)] = [0, {min(widths)}], got {r}.")
    L = len(mats)
    root = S[:r] ** (1.0 / L)
    net = DeepLinearNetwork(widths).to(torch.float64)
    with torch.no_grad():
        for s, layer in enumerate(net.layers):
            W = torch.zeros(widths[s + 1], widths[s], dtype=torch.float64)
            left = U[:, :r] if s == L - 1 else torch.eye(widths[s + 1], r, dtype=torch.float64)
            right = Vh[:r] if s == 0 else torch.eye(r, widths[s], dtype=torch.float64)
            W += left @ torch.diag(root) @ right
            layer.weight.copy_(W)
    return net.to(dtype)


def product_of(weights: Sequence[Tensor]) -> Tensor:
    """μ(W) = W_L ⋯ W_1 for a list [W_1, …, W_L]."""
    out = weights[0]
    for w in weights[1:]:
        out = w @ out
    return out


def product_jacobian(net: nn.Module | Sequence[Tensor]) -> Tensor:
    """dμ at W, shape (H_{L+1}·H_1, d), float64: the block of W_s is P_{>s} ⊗ P_{<s}ᵀ.

    dμ(dW) = Σ_s P_{>s} dW_s P_{<s} with P_{>s} = W_L⋯W_{s+1}, P_{<s} = W_{s−1}⋯W_1;
    row-major vec(A X B) = (A ⊗ Bᵀ) vec(X), columns ordered like ``net.parameters()``.
    """
    return torch.cat([torch.kron(after, before.T.contiguous()) for after, before in _around(_weights(net))], dim=1)


def _around(mats: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """(P_{>s}, P_{<s}) = (W_L⋯W_{s+1}, W_{s−1}⋯W_1) for each layer s (identities at the ends)."""
    eye = torch.eye
    return [(product_of(mats[s + 1:]) if s + 1 < len(mats) else eye(mats[s].shape[0], dtype=torch.float64),
             product_of(mats[:s]) if s > 0 else eye(mats[s].shape[1], dtype=torch.float64))
            for s in range(len(mats))]


def local_llc(net: nn.Module | Sequence[Tensor], *, rtol: float = 1e-7, probes: int = 2,
              generator: torch.Generator | None = None) -> Fraction:
    """Local λ = rank(dμ)/2 at a true parameter where dμ has locally constant rank k.

    Then (constant-rank theorem) μ⁻¹(M₀) is a smooth submanifold of codimension k near W, and
    K(w) = ½ E‖(μ(w) − M₀)x‖² is comparable to a sum of k squares: λ = k/2, m = 1 (Morse–Bott;
    the Hessian of L_n there has rank k). A submersion (k = H_1·H_{L+1}) is always such a point.
    Constancy is checked on ``probes`` random perturbations of relative size 1e-3 (the rank can
    only rise nearby, and does so at a random nearby point when W is a singular point); where it
    rises, the true set is singular at W and ValueError says so (use :func:`exact_llc` at the most
    singular point).
    """
    mats = _weights(net)
    k = _numerical_rank(product_jacobian(mats), rtol)
    scale = 1e-3 * max(float(w.abs().max()) for w in mats)
    for _ in range(int(probes)):
        nearby = [w + scale * torch.randn(w.shape, generator=generator, dtype=torch.float64) for w in mats]
        k_near = _numerical_rank(product_jacobian(nearby), rtol)
        if k_near > k:
            raise ValueError(f"the rank of dμ is {k} here but {k_near} at a nearby point: the set of true "
                             "parameters is singular at this point and λ ≠ rank/2. At the most singular true "
                             "point use exact_llc(widths, rank) (Aoyagi); elsewhere no closed form is built in.")
    return Fraction(k, 2)


def hessian_eigenvalues_at_truth(net: nn.Module | Sequence[Tensor], x: Tensor) -> Tensor:
    """The H_{L+1}·H_1 possibly non-zero eigenvalues of ∇²L_n at a true parameter (ascending, float64).

    For L_n = ½ mean‖(μ(W) − M₀)x‖² (:func:`dln_loss`) the residual vanishes at a true W, so
    ∇²L_n = Jᵀ(I ⊗ Σ̂)J with J = dμ, Σ̂ = XᵀX/n; its non-zero spectrum is that of
    Σ_s (P_{>s}P_{>s}ᵀ) ⊗ (R P_{<s}ᵀP_{<s} R), R = Σ̂^{1/2} — an (H_{L+1}H_1)² matrix, not d × d.
    """
    mats = _weights(net)
    if x.ndim != 2 or x.shape[1] != mats[0].shape[1]:
        raise ValueError(f"x must have shape (n, H_1) = (n, {mats[0].shape[1]}), got {tuple(x.shape)}.")
    xd = x.detach().to(torch.float64)
    evals, evecs = torch.linalg.eigh(xd.T @ xd / len(xd))
    R = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    h_in, h_out = mats[0].shape[1], mats[-1].shape[0]
    gram = torch.zeros(h_out * h_in, h_out * h_in, dtype=torch.float64)
    for after, before in _around(mats):
        gram += torch.kron(after @ after.T, R @ before.T @ before @ R)
    return torch.linalg.eigvalsh(gram)


def quadratic_calibration(net: nn.Module | Sequence[Tensor], x: Tensor, nbeta: float, localization: float,
                          *, bias: float = 0.02) -> tuple[float, float]:
    """(finite-n target ½Σ a_i/(a_i + γ) with a_i = nβh_i, the SGLD ε whose predicted bias is ``bias``).

    Both from the exact spectrum at a true parameter (:func:`hessian_eigenvalues_at_truth`) and the
    instrument's quadratic formulas (:mod:`slt_course_utils.llc.quadratic`): the target is what λ̂
    converges to at this nβ and γ where the point is Morse–Bott (it tends to rank/2 as nβ → ∞);
    ε solves Σwᵢ/(1 − εaᵢ/4)/Σwᵢ − 1 = bias (bisection in log ε) — what ``lr="auto"`` aims for,
    without its adaptation windows (and the d × d Hessian it builds when d²·n ≤ 3e8).
    """
    from slt_course_utils.llc.quadratic import predicted_sgld_bias, quadratic_llc

    if not 0 < bias < 1:
        raise ValueError(f"bias must be a relative bias in (0, 1), e.g. 0.02, got {bias}.")
    eigs = hessian_eigenvalues_at_truth(net, x)
    target = quadratic_llc(eigs, nbeta, localization)[0]
    lo, hi = 1e-12, 4 / (nbeta * float(eigs.max()) + localization)   # bias 0 … ∞
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if predicted_sgld_bias(eigs, nbeta, localization, mid) < bias else (lo, mid)
    return target, lo
