"""Convergence diagnostics of the λ̂ draws nβ(L − L*), from :mod:`slt_course_utils.diagnostics`.

Rank-normalised split-R̂, bulk/tail ESS (pooled and per chain; Vehtari et al. 2021) and the
drift test (a line through the whole run, ESS-based errors; it catches the +10–15% drifts the
old last-two-quarters test missed). All are invariant to the affine map L ↦ nβ(L − L*), so they
describe the loss trace and the λ̂ draws alike; the drift is relative to λ̂. Each warning says
what to change; one warning per result carries all of them.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from slt_course_utils import diagnostics as mcmc

__all__ = ["convergence_diagnostics"]

#: Fewer draws than this: no diagnostics (NaN / None).
MIN_DRAWS = 8


def convergence_diagnostics(lam_draws: np.ndarray, *, warn: bool = True) -> dict[str, Any]:
    """R̂, ESS (pooled, per chain), drift of the (chains, draws) array nβ(L − L*); warns on problems.

    Keys: ``rhat``, ``ess_bulk``, ``ess_tail``, ``ess_per_chain``, ``drift`` (relative change over
    the run), ``drift_z``, ``levelled_off`` (not drifting; None with < 8 draws),
    ``convergence_warnings``. Diverged (NaN) chains are left out.
    """
    rows = lam_draws[np.isfinite(lam_draws).all(axis=1)]
    out: dict[str, Any] = {"rhat": math.nan, "ess_bulk": math.nan, "ess_tail": math.nan,
                           "ess_per_chain": [math.nan] * lam_draws.shape[0], "drift": math.nan,
                           "drift_z": math.nan, "levelled_off": None, "convergence_warnings": []}
    if lam_draws.shape[1] < MIN_DRAWS or len(rows) == 0:
        return out
    summary = mcmc.summarize(rows)
    d = summary["drift"]
    per_chain = np.full(lam_draws.shape[0], math.nan)
    per_chain[np.isfinite(lam_draws).all(axis=1)] = summary["ess_per_chain"]
    messages = [m for m in summary["warnings"] if not m.startswith("only one chain")]
    out.update({"rhat": summary["rhat"], "ess_bulk": summary["ess_bulk"], "ess_tail": summary["ess_tail"],
                "ess_per_chain": per_chain.tolist(), "drift": d.relative_change, "drift_z": d.z,
                "levelled_off": not d.drifting, "convergence_warnings": messages})
    if warn and messages:
        warnings.warn("λ̂ draws: " + " Also: ".join(messages), stacklevel=4)
    return out
