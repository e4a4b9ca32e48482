"""Refined (restricted) learning coefficients: the reference code of chapter 10.

A **weight-refined** LLC (Wang et al., arXiv 2410.02984, §3) samples only a chosen set C of
coordinates and keeps every other coordinate exactly at w*:

    λ̂_C(w*) = nβ (E_C[L_n(w)] − L_n(w*)),   E_C over ∝ exp(−nβL_n(w_C, w*_{¬C}) − γ/2|w_C − w*_C|²).

A **data-refined** LLC is the same estimator with L_n computed on another data set (a
sub-population or a different distribution). In ``estimate_llc`` both are the same call:
``restrict=`` for the weights, ``data=`` for the data.

Where L_n restricted to C is an exact quadratic (one layer of a deep linear network, a linear
model) the localised tempered posterior on C is the Gaussian N(w*_C, (nβH_C + γI)⁻¹) and the
finite-n target is exact: nβ E[L_n − L_n(w*)] = ½ Σ a_i/(a_i + γ), a_i the eigenvalues of nβH_C.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor, nn

from slt_course_utils._validate import float64_tensor, nonnegative_float, positive_float

__all__ = [
    "dln_layer_llc",
    "localized_quadratic_target",
    "orthogonal_dln_teacher",
    "num_free",
    "restricted_calibration",
    "restrict_mask",
    "restricted_hessian",
]

Restrict = Sequence[str] | Mapping[str, Any]


def restrict_mask(model: nn.Module, restrict: Restrict) -> dict[str, Tensor]:
    """Boolean mask per parameter (True = sampled) from names, module prefixes or name → mask.

    ``restrict`` is a list of names as in ``model.named_parameters()`` — a module prefix such as
    ``"layers.0"`` selects every parameter under it — or a dict name → bool tensor of that
    parameter's shape. Every parameter of the model gets a mask (all False when not selected).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    params = dict(model.named_parameters())
    masks = {k: torch.zeros(v.shape, dtype=torch.bool) for k, v in params.items()}
    if isinstance(restrict, Mapping):
        for name, m in restrict.items():
            if name not in params:
                raise ValueError(f"restrict names {name!r}, which is not a parameter of the model; "
                                 f"its parameters are {sorted(params)}.")
            m = torch.as_tensor(m)
            if m.dtype != torch.bool or m.shape != params[name].shape:
                raise ValueError(f"the mask of {name!r} must be a bool tensor of shape "
                                 f"{tuple(params[name].shape)}, got {m.dtype} of shape {tuple(m.shape)}.")
            masks[name] = m.clone().cpu()
    elif isinstance(restrict, str) or not isinstance(restrict, Sequence):
        raise ValueError("restrict must be a list of parameter names or module prefixes (e.g. ['layers.0']) "
                         f"or a dict name → bool mask, got {type(restrict).__name__}.")
    else:
        for sel in restrict:
            hits = [k for k in params if k == sel or k.startswith(f"{sel}.")]
            if not hits:
                raise ValueError(f"restrict names {sel!r}, which matches no parameter; the model's parameters "
                                 f"are {sorted(params)}.")
            for k in hits:
                masks[k][...] = True
    if not any(bool(m.any()) for m in masks.values()):
        raise ValueError("restrict selects no coordinate; nothing would be sampled.")
    return masks


def num_free(masks: Mapping[str, Tensor]) -> int:
    """Number of sampled coordinates: Σ over parameters of the True entries of the mask."""
    return int(sum(int(m.sum()) for m in masks.values()))


def restricted_hessian(model: nn.Module, data: tuple[Tensor, Tensor], loss_fn: Callable[[Tensor, Tensor], Tensor],
                       restrict: Restrict) -> Tensor:
    """H_C = ∇²_C L_n(w*): the Hessian over the sampled coordinates only (k × k, float64).

    Coordinates are ordered like ``model.named_parameters()``, row-major inside each parameter.
    """
    masks = restrict_mask(model, restrict)
    k = num_free(masks)
    if k > 4000:
        raise ValueError(f"the restriction has {k} coordinates; a dense {k}×{k} Hessian is too large here.")
    base = {n: p.detach().to(torch.float64).clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    x, y = data
    x, y = x.to(torch.float64), y.to(torch.float64)
    w0 = torch.cat([base[n][m] for n, m in masks.items() if m.any()])
    model64 = _float64_copy(model)

    def loss_of(flat: Tensor) -> Tensor:
        params, i = {}, 0
        for n, m in masks.items():
            p = base[n]
            c = int(m.sum())
            if c:
                p = p.clone()
                p[m] = flat[i:i + c]
                i += c
            params[n] = p
        out = torch.func.functional_call(model64, {**params, **buffers}, (x,))
        return loss_fn(out, y)

    return torch.autograd.functional.hessian(loss_of, w0).detach()


def _float64_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).to(torch.float64)


def localized_quadratic_target(hessian: Tensor, nbeta: float, localization: float) -> float:
    """½ Σ a_i/(a_i + γ), a_i the eigenvalues of nβ·H: nβ E[L_n − L_n(w*)] for a quadratic L_n.

    Exact for L_n(w*+δ) = L_n(w*) + ½δᵀHδ under N(0, (nβH + γI)⁻¹): E[½δᵀHδ] = ½ tr(H (nβH + γI)⁻¹).
    Eigenvalues below 1e-12·max are treated as exact zeros (flat directions contribute 0).
    """
    hessian = float64_tensor("hessian", hessian)
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1]:
        raise ValueError(f"hessian must be a square matrix, got shape {tuple(hessian.shape)}.")
    nbeta, localization = positive_float("nbeta", nbeta), nonnegative_float("localization", localization)
    h = torch.linalg.eigvalsh(hessian.to(torch.float64))
    h = h[h > 1e-12 * float(h.abs().max())] if h.numel() else h
    a = nbeta * h
    return float(0.5 * (a / (a + localization)).sum())


def dln_layer_llc(net: nn.Module | Sequence[Tensor], layer: int) -> Fraction:
    """λ of a DLN restricted to one layer s at a true point: rank(W_L⋯W_{s+1})·rank(W_{s−1}⋯W_1)/2.

    With the other layers fixed, f = A W_s B x is linear in W_s, so the restricted K is the exact
    quadratic ½E|A(W_s − W_s*)Bx|²; the map X ↦ AXB has rank rank(A)·rank(B) (E[xxᵀ] of full
    rank), and a quadratic of rank k has λ = k/2. When the other layers are square and
    invertible this is the number of entries of W_s over 2.
    """
    from slt_course_utils.dln import _around, _numerical_rank, _weights

    mats = _weights(net)
    if not 0 <= int(layer) < len(mats):
        raise ValueError(f"layer must be in [0, {len(mats) - 1}] (0 = the first layer), got {layer}.")
    after, before = _around(mats)[int(layer)]
    # rtol 1e-5: float32 weights carry rounding of ~1e-7 relative in their zero singular values
    return Fraction(_numerical_rank(after, 1e-5) * _numerical_rank(before, 1e-5), 2)


def restricted_calibration(hessian: Tensor, nbeta: float, localization: float, *,
                           bias: float = 0.02) -> tuple[float, float]:
    """(exact target ½Σ a_i/(a_i + γ), the SGLD ε whose predicted relative bias is ``bias``) for a quadratic.

    ε solves Σwᵢ/(1 − εaᵢ/4)/Σwᵢ − 1 = bias (:func:`slt_course_utils.llc.quadratic.predicted_sgld_bias`,
    bisection in log ε) — the rule ``lr="auto"`` aims for, read off the exact restricted Hessian.
    """
    from slt_course_utils.llc.quadratic import predicted_sgld_bias

    if not 0 < bias < 1:
        raise ValueError(f"bias must be a relative bias in (0, 1), e.g. 0.02, got {bias}.")
    target = localized_quadratic_target(hessian, nbeta, localization)
    nbeta, localization = float(nbeta), float(localization)
    eigs = torch.linalg.eigvalsh(float64_tensor("hessian", hessian))
    lo, hi = 1e-12, 4 / (nbeta * float(eigs.max()) + localization)
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if predicted_sgld_bias(eigs, nbeta, localization, mid) < bias else (lo, mid)
    return target, lo


def orthogonal_dln_teacher(*, seed: int = 0, n: int = 2000) -> tuple[nn.Module, nn.Module, Tensor, Tensor]:
    """(generic, most singular, x, y): chapter 10's DLN [5,5,5,5] teacher, float64.

    The generic point has a rank-2 first layer (``dln.random_true_network``) and orthogonal second and
    third layers (square, invertible, perfectly conditioned); the most singular point has the same
    product with every layer of rank 2; x ~ U[−1, 1]⁵ (n samples), y = teacher(x).
    """
    from slt_course_utils import dln

    g = torch.Generator().manual_seed(int(seed))
    generic = dln.random_true_network([5, 5, 5, 5], 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for s in (1, 2):
            generic.layers[s].weight.copy_(torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))[0])
    singular = dln.most_singular_true_network(generic, dtype=torch.float64)
    x, y = dln.sample_dln_data(generic, n, generator=g)
    return generic, singular, x, y
