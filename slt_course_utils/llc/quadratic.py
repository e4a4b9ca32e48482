"""The quadratic model at w*: λ_quad, the localisation check and the predicted SGLD step-size bias.

For L_n(w) ≈ L_n(w*) + ½ Σ h_i v_i² (h_i the Hessian eigenvalues at w*) the localised tempered
posterior is Gaussian with precisions a_i = nβh_i + γ, and

    λ_quad = ½ Σ_i nβh_i/a_i,        SGLD at step ε:  ½ Σ_i nβh_i/(a_i(1 − εa_i/4)),

the second being the exact stationary mean of E[nβ(L − L*)] for the discretised chain (its
variance per direction is 1/(a_i(1 − εa_i/4))). Their ratio − 1 is the predicted relative bias.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from slt_course_utils.device import get_device
from slt_course_utils.llc.problem import MAX_HESSIAN_DIM, LossFn, Problem, as_tensors, build_problem

__all__ = ["expected_llc_quadratic", "predicted_sgld_bias"]

#: Above this predicted relative ε-bias the estimator warns.
BIAS_WARN = 0.05


def positive_eigs(eigs: Tensor, nbeta: float) -> Tensor:
    """Eigenvalues that are clearly positive: > 1e-6·max|h| and nβh > 1e-2 (else numerically flat)."""
    scale = float(eigs.abs().max()) if eigs.numel() else 0.0
    return eigs[(eigs > 1e-6 * scale) & (nbeta * eigs > 1e-2)]


def quadratic_llc(eigs: Tensor, nbeta: float, localization: float) -> tuple[float, int]:
    """(½ Σ nβh/(nβh + γ) over h > 0, number of clearly positive eigenvalues)."""
    pos = positive_eigs(eigs, nbeta)
    if localization == 0:
        return 0.5 * pos.numel(), pos.numel()
    return float(0.5 * (nbeta * pos / (nbeta * pos + localization)).sum()), pos.numel()


def predicted_sgld_bias(eigs: Tensor, nbeta: float, localization: float, lr: float) -> float:
    """Relative bias of SGLD's E[nβ(L − L*)] for the quadratic model: Σ wᵢ/(1 − εaᵢ/4) / Σ wᵢ − 1.

    wᵢ = nβhᵢ/aᵢ, aᵢ = nβhᵢ + γ. Infinite when some εaᵢ ≥ 4 (the discretised chain is unstable).
    """
    h = positive_eigs(eigs.double(), nbeta)
    if h.numel() == 0:
        return 0.0
    a = nbeta * h + localization
    if float((lr * a).max()) >= 4:
        return math.inf
    wts = nbeta * h / a
    return float((wts / (1 - lr * a / 4)).sum() / wts.sum() - 1)


def expected_llc_quadratic(
    model: nn.Module,
    data: Any,
    loss_fn: LossFn,
    nbeta: float,
    localization: float,
    *,
    device: str | torch.device = "cpu",
) -> float:
    """λ_quad = ½ Σ_i nβh_i/(nβh_i + γ) over eigenvalues h_i > 0 of the Hessian of L_n at w*.

    This is λ̂ for the quadratic approximation of L_n at w* (exact for a Gaussian). Without
    localisation it is ½·rank(H); when γ ≫ nβh_i it is ≈ ½ Σ nβh_i/γ, which grows with nβ —
    the signature of an estimate that measures the localisation, not the loss.
    Builds the full d×d Hessian: meant for small models (d ≲ 2000).
    """
    if not (math.isfinite(nbeta) and nbeta > 0):
        raise ValueError(f"nbeta must be positive and finite, got {nbeta}.")
    if not (math.isfinite(localization) and localization >= 0):
        raise ValueError(f"localization must be finite and ≥ 0, got {localization}.")
    dev = device if isinstance(device, torch.device) else get_device(device)
    x, y = as_tensors(data)
    prob = build_problem(model, x, y, loss_fn, dev, len(x))
    if prob.d > 4 * MAX_HESSIAN_DIM:
        raise ValueError(f"model has d = {prob.d} parameters; a dense d×d Hessian is too large here.")
    return quadratic_llc(prob.hessian_eigenvalues(), nbeta, localization)[0]


def check_localization(prob: Problem, nbeta: float, localization: float, generator: torch.Generator,
                       eigs: Tensor | None) -> dict[str, Any]:
    """Warn when γ dominates nβ·curvature; return what was computed (for the diagnostics)."""
    if localization == 0:
        return {}
    if eigs is not None:
        lam_q, n_pos = quadratic_llc(eigs, nbeta, localization)
        info = {"lambda_quadratic": lam_q, "lambda_quadratic_no_localization": 0.5 * n_pos}
        if n_pos and lam_q < 0.25 * n_pos:  # less than half of the unlocalised ½·rank
            pos = positive_eigs(eigs, nbeta)
            suggest = 0.1 * nbeta * float(pos.median())
            warnings.warn(
                f"The localization term dominates: the Hessian of L at w* has {n_pos} directions "
                f"of positive curvature, and with nbeta={nbeta:.4g}, localization={localization:.4g} "
                f"a quadratic model predicts λ̂ ≈ {lam_q:.3g} instead of {0.5 * n_pos:.3g} without "
                f"localisation. Such an estimate measures γ, not the loss (it scales with nbeta). "
                f"Lower `localization` (e.g. to ≲ {suggest:.3g}) or raise `nbeta`; note that a loss "
                "averaged over many outputs has a proportionally smaller curvature.",
                stacklevel=3,
            )
        return info
    curv = prob.mean_curvature_hutchinson(generator)
    info = {"mean_curvature": curv}
    if nbeta * curv < localization:
        warnings.warn(
            f"The localization term may dominate: nbeta × mean Hessian eigenvalue = "
            f"{nbeta * curv:.3g} < localization = {localization:.3g}, so λ̂ would mostly measure "
            "γ rather than the loss. Lower `localization` or raise `nbeta`.",
            stacklevel=3,
        )
    return info
