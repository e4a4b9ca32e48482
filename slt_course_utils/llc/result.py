"""The result of an LLC estimate: λ̂ over chains, the traces, hyperparameters and diagnostics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["LLCResult"]


@dataclass
class LLCResult:
    """λ̂ over chains: mean, std, stderr; per-chain values; traces (chains × draws); diagnostics."""

    mean: float
    std: float
    stderr: float
    per_chain: Tensor
    loss_trace: Tensor
    llc_trace: Tensor
    loss_star: float
    hyperparameters: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python/NumPy dict: ``mean, std, stderr, per_chain, loss_trace, llc_trace, ...``."""
        out = asdict(self)
        for k in ("per_chain", "loss_trace", "llc_trace"):
            out[k] = getattr(self, k).numpy()
        return out

    def __repr__(self) -> str:
        c = self.hyperparameters.get("num_chains")
        return f"LLCResult(λ̂ = {self.mean:.4g} ± {self.stderr:.2g} (se over {c} chains), std {self.std:.3g})"

    def plot(self, axes: Sequence[Any] | None = None, *, title: str | None = None):
        """Loss trace and running-λ̂ trace: one thin line per chain, the mean and a ±std band."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        else:
            fig = axes[0].figure
        draws = np.arange(self.loss_trace.shape[1])
        for ax, trace, name in ((axes[0], self.loss_trace, "L(w)"), (axes[1], self.llc_trace, "running λ̂")):
            arr = trace.numpy()
            for row in arr:
                ax.plot(draws, row, lw=0.6, alpha=0.4, color="C0")
            if np.isfinite(arr).any(axis=0).all():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mu, sd = np.nanmean(arr, axis=0), np.nanstd(arr, axis=0)
                ax.plot(draws, mu, lw=2, color="C1", label="mean over chains")
                ax.fill_between(draws, mu - sd, mu + sd, color="C1", alpha=0.2, label="± std")
            ax.set_xlabel("draw")
            ax.set_ylabel(name)
        axes[0].axhline(self.loss_star, color="k", ls="--", lw=1, label="L(w*)")
        axes[0].set_title("Loss at the draws")
        axes[1].set_title(f"Running λ̂ (final {self.mean:.3g} ± {self.stderr:.2g})")
        axes[0].legend(loc="best", fontsize="small")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig
