"""The result of an LLC estimate: λ̂ over chains, the traces, hyperparameters and diagnostics."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
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
    #: name → (chains, draws, *S) float64: each observable at every draw (``estimate_llc(observables=...)``).
    observables: dict[str, Tensor] = field(default_factory=dict)
    #: name → (*S,): each observable at w*.
    observables_star: dict[str, Tensor] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python/NumPy dict: ``mean, std, stderr, per_chain, loss_trace, llc_trace, ...``."""
        out = asdict(self)
        for k in ("per_chain", "loss_trace", "llc_trace"):
            out[k] = getattr(self, k).numpy()
        for k in ("observables", "observables_star"):
            out[k] = {name: v.numpy() for name, v in getattr(self, k).items()}
        return out

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path.json`` (numbers, hyperparameters, diagnostics) and ``path.npz`` (traces, observables)."""
        path = Path(path)
        base = path.with_suffix("") if path.suffix in (".json", ".npz") else path
        meta = {"format": "slt_course_utils.LLCResult/1", "mean": self.mean, "std": self.std,
                "stderr": self.stderr, "loss_star": self.loss_star,
                "hyperparameters": _jsonable(self.hyperparameters), "diagnostics": _jsonable(self.diagnostics)}
        arrays = {"per_chain": self.per_chain.numpy(), "loss_trace": self.loss_trace.numpy(),
                  "llc_trace": self.llc_trace.numpy()}
        for prefix, group in (("obs/", self.observables), ("obs_star/", self.observables_star)):
            arrays.update({prefix + k: v.numpy() for k, v in group.items()})
        json_path, npz_path = base.parent / (base.name + ".json"), base.parent / (base.name + ".npz")
        json_path.write_text(json.dumps(meta, indent=1, allow_nan=True))
        np.savez_compressed(npz_path, **arrays)
        return json_path, npz_path

    @classmethod
    def load(cls, path: str | Path) -> LLCResult:
        """Read a result written by :meth:`save` (``path`` with or without the .json/.npz suffix)."""
        path = Path(path)
        base = path.with_suffix("") if path.suffix in (".json", ".npz") else path
        json_path, npz_path = base.parent / (base.name + ".json"), base.parent / (base.name + ".npz")
        for p in (json_path, npz_path):
            if not p.exists():
                raise FileNotFoundError(f"{p} not found; LLCResult.load needs the .json and .npz written by save().")
        meta = json.loads(json_path.read_text())
        if meta.get("format") != "slt_course_utils.LLCResult/1":
            raise ValueError(f"{json_path} was not written by LLCResult.save (format {meta.get('format')!r}).")
        with np.load(npz_path) as z:
            arr = {k: torch.from_numpy(z[k].copy()) for k in z.files}
        obs = {k[4:]: v for k, v in arr.items() if k.startswith("obs/")}
        star = {k[9:]: v for k, v in arr.items() if k.startswith("obs_star/")}
        return cls(mean=meta["mean"], std=meta["std"], stderr=meta["stderr"], per_chain=arr["per_chain"],
                   loss_trace=arr["loss_trace"], llc_trace=arr["llc_trace"], loss_star=meta["loss_star"],
                   hyperparameters=meta["hyperparameters"], diagnostics=meta["diagnostics"],
                   observables=obs, observables_star=star)

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


def _jsonable(v: Any) -> Any:
    """Tensors/arrays → lists, NumPy scalars → Python numbers, recursively (NaN/inf kept as JSON NaN/Infinity)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (Tensor, np.ndarray)):
        return np.asarray(v.detach().cpu() if isinstance(v, Tensor) else v).tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) or v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return repr(v) if not isinstance(v, float) or math.isfinite(v) else v
