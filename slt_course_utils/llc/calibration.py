"""Calibration grids: λ̂ over ε × (γ or nβ), all cells × chains in ONE batched sampler call."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from slt_course_utils import diagnostics as mcmc
from slt_course_utils.llc.driver import LLCDivergenceError
from slt_course_utils.llc.estimator import estimate_llc
from slt_course_utils.llc.problem import LossFn

__all__ = ["calibration_sweep", "plot_calibration"]


def calibration_sweep(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | DataLoader,
    loss_fn: LossFn,
    lrs: Iterable[float],
    values: Iterable[float],
    *,
    vary: str = "localization",
    progress: bool | None = None,
    num_chains: int = 8,
    **kwargs: Any,
) -> dict[str, Any]:
    """λ̂ on the grid lrs × values (values are γ or nβ, per ``vary``): mean, stderr, diverged.

    One :func:`estimate_llc` call samples every cell: cell (i, j) owns ``num_chains`` chains
    whose ε and γ (or nβ) are per-chain tensors, so the grid costs about as much as one run
    with cells × chains chains. Returns ``{"lr", vary, "mean", "stderr", "diverged",
    "levelled_off"}`` with arrays of shape (len(lrs), len(values)); a cell whose chains all
    diverged gives NaN (``diverged`` is the fraction of a cell's chains that diverged).
    Keyword arguments go to :func:`estimate_llc`. Look for a region where λ̂ is flat in both axes.
    """
    if vary not in ("localization", "nbeta"):
        raise ValueError(f"vary must be 'localization' or 'nbeta', got {vary!r}.")
    if vary in kwargs or "lr" in kwargs:
        raise ValueError(f"lr and {vary} are swept; do not also pass them as keyword arguments.")
    lrs, values = [float(v) for v in lrs], [float(v) for v in values]
    if not lrs or not values:
        raise ValueError("lrs and values must both be non-empty.")
    shape = (len(lrs), len(values))
    cells = shape[0] * shape[1]
    C = int(num_chains)
    lr_t = torch.tensor(lrs, dtype=torch.float64).repeat_interleave(len(values) * C)
    val_t = torch.tensor(values, dtype=torch.float64).repeat_interleave(C).repeat(len(lrs))
    kwargs.setdefault("check_localization", False)
    mean, se, div = np.full(shape, np.nan), np.full(shape, np.nan), np.ones(shape)
    lev = np.full(shape, None, dtype=object)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = estimate_llc(model, data, loss_fn, lr=lr_t, progress=progress, num_chains=cells * C,
                               **{vary: val_t}, **kwargs)
    except LLCDivergenceError:
        return {"lr": np.array(lrs), vary: np.array(values), "vary": vary, "mean": mean,
                "stderr": se, "diverged": div, "levelled_off": lev}
    nbeta = res.hyperparameters["nbeta"]
    per_chain = res.per_chain.numpy().reshape(*shape, C)
    nb = np.asarray(nbeta, dtype=float).reshape(*shape, C) if vary == "nbeta" else nbeta
    lam = (np.asarray(nb)[..., None] if vary == "nbeta" else nb) * (
        res.loss_trace.numpy().reshape(*shape, C, -1) - res.loss_star)
    for i in range(shape[0]):
        for j in range(shape[1]):
            ok = np.isfinite(per_chain[i, j])
            div[i, j] = 1.0 - ok.mean()
            if not ok.any():
                continue
            mean[i, j] = per_chain[i, j][ok].mean()
            se[i, j] = per_chain[i, j][ok].std(ddof=1) / math.sqrt(ok.sum()) if ok.sum() > 1 else math.nan
            rows = lam[i, j][ok]
            lev[i, j] = None if rows.shape[1] < 8 else not mcmc.drift(rows).drifting
    return {"lr": np.array(lrs), vary: np.array(values), "vary": vary, "mean": mean,
            "stderr": se, "diverged": div, "levelled_off": lev}


def plot_calibration(table: Mapping[str, Any], ax: Any = None, *, title: str | None = None):
    """Heat map of λ̂ over (lr, γ or nβ), each cell annotated 'mean ± se'; diverged cells grey."""
    import matplotlib.pyplot as plt

    vary = table["vary"]
    mean = np.asarray(table["mean"], dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.3 * mean.shape[1] + 2.5, 0.8 * mean.shape[0] + 2))
    else:
        fig = ax.figure
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, aspect="auto", origin="lower")
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            text = "diverged" if not np.isfinite(mean[i, j]) else f"{mean[i, j]:.3g}\n±{table['stderr'][i, j]:.2g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="k" if not np.isfinite(mean[i, j]) else "w")
    ax.set_xticks(range(mean.shape[1]), [f"{v:.6g}" if 1e-3 <= abs(v) < 1e6 else f"{v:.0e}" for v in table[vary]])
    ax.set_yticks(range(mean.shape[0]), [f"{v:.0e}" for v in table["lr"]])
    ax.set_xlabel("γ (localization)" if vary == "localization" else "nβ")
    ax.set_ylabel("ε (lr)")
    ax.set_title(title or "λ̂ over the calibration grid")
    fig.colorbar(im, ax=ax, label="λ̂")
    fig.tight_layout()
    return fig
