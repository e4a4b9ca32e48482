"""Convergence diagnostics of the λ̂ draws nβ(L − L*): drift between quarters (to be replaced by R̂/ESS)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["convergence_diagnostics"]


def convergence_diagnostics(lam_draws: np.ndarray, *, warn: bool = True) -> dict[str, Any]:
    """Diagnostics of the (chains, draws) array of nβ(L − L*); warns when the traces drift."""
    levelled, drift, t_drift = _levelled_off(lam_draws)
    if warn and levelled is False:
        warnings.warn(
            f"The λ̂ traces have not levelled off: nβ(L − L*) changed by {drift:.3g} between the "
            f"third and last quarter of the draws (t = {t_drift:.1f} across chains). Run more "
            "draws or burn-in, or raise lr (within stability).", stacklevel=4)
    return {"levelled_off": levelled, "drift_last_quarters": drift, "drift_t": t_drift}


def _levelled_off(lam_draws: np.ndarray) -> tuple[bool | None, float, float]:
    """Did λ̂ level off? Per chain δ_c = mean(last quarter) − mean(third quarter) of nβ(L − L*).

    Returns (levelled, drift, t): drift = mean δ_c, t = drift/(std δ_c/√chains) (a paired
    test across chains, robust to autocorrelation within chains). Not levelled when the
    drift is both significant (|t| > 3) and material (> 5% of |λ̂|, or > 0.01).
    With one chain, t uses the chain's second-half std instead.
    """
    rows = lam_draws[np.isfinite(lam_draws).all(axis=1)]
    d = lam_draws.shape[1]
    if d < 8 or len(rows) == 0:
        return None, math.nan, math.nan
    q = d // 4
    deltas = rows[:, d - q :].mean(1) - rows[:, d - 2 * q : d - q].mean(1)
    drift = float(deltas.mean())
    if len(rows) >= 2:
        sd = float(deltas.std(ddof=1)) / math.sqrt(len(rows))
    else:
        sd = float(rows[0, d - 2 * q :].std())
    t = drift / sd if sd > 0 else (0.0 if drift == 0 else math.inf)
    material = abs(drift) > max(0.05 * abs(float(rows.mean())), 0.01)
    return not (abs(t) > 3 and material), drift, t
