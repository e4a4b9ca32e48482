"""Deep linear networks f(x) = W_L ⋯ W_1 x: model, random true networks of a given rank, data.

The exact learning coefficient at a true parameter of rank r is Aoyagi's (2024) formula,
:func:`slt_course_utils.theory.rlct_deep_linear_network`; Lau et al. (arXiv 2308.12108) and
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
    """λ of a deep linear network at a true parameter of rank r (Aoyagi 2024, Theorem 1)."""
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
