"""Reading an LLC run: classify it from its diagnostics, pick a step size from a sweep (chapter 06).

:func:`classify_llc_run` turns the diagnostics of an :class:`~slt_course_utils.llc.LLCResult`
into one verdict, checked in this order (the first that applies wins):

1. ``"diverged"``: some chain was frozen for a NaN/inf or runaway loss (``diverged_chains``);
2. ``"not a minimum"``: the mean λ̂ is negative, so the chains found loss below L(w*);
3. ``"not equilibrated"``: the λ̂ traces were still drifting (``levelled_off`` is False: the drift
   test of :func:`slt_course_utils.diagnostics.drift`, a line through the run with ESS-based errors);
4. ``"localisation-dominated"``: the quadratic prediction with γ is under half of the one
   without γ (``lambda_quadratic`` < ½ ``lambda_quadratic_no_localization``), i.e. the
   estimate measures γ rather than the loss — the same rule as the estimator's warning;
5. ``"ok"`` otherwise.

:func:`pick_lr` implements the calibration rule of the chapter: among the step sizes of a
sweep whose chains all stayed finite and whose traces levelled off, take the one whose λ̂ is
closest to the known λ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["VERDICTS", "classify_llc_run", "devinterp_default_nbeta", "pick_lr"]

VERDICTS = ("diverged", "not a minimum", "not equilibrated", "localisation-dominated", "ok")


def classify_llc_run(result: Any) -> str:
    """One of :data:`VERDICTS` for an ``LLCResult`` (uses ``mean`` and ``diagnostics``)."""
    diag: Mapping[str, Any] = result.diagnostics
    if diag.get("diverged_chains"):
        return "diverged"
    if result.mean < 0:
        return "not a minimum"
    if diag.get("levelled_off") is False:
        return "not equilibrated"
    lam_q = diag.get("lambda_quadratic")
    lam_free = diag.get("lambda_quadratic_no_localization")
    if lam_q is not None and lam_free and lam_q < 0.5 * lam_free:
        return "localisation-dominated"
    return "ok"


def devinterp_default_nbeta(batch_size: int) -> float:
    """devinterp 1.x's default nβ = B/log B with B the batch size (inf at B = 1, where log B = 0)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    return math.inf if batch_size == 1 else batch_size / math.log(batch_size)


def pick_lr(sweep: Mapping[str, Any], exact: float) -> float:
    """The lr of a one-column ``calibration_sweep`` whose λ̂ is closest to ``exact`` among usable runs.

    Usable: no chain diverged (``diverged == 0``), traces levelled off (``levelled_off`` true, not None)
    and a finite mean. Raises ``ValueError`` when no run is usable.
    """
    lrs = np.asarray(sweep["lr"], dtype=float)
    mean = np.asarray(sweep["mean"], dtype=float).reshape(len(lrs), -1)[:, 0]
    diverged = np.asarray(sweep["diverged"], dtype=float).reshape(len(lrs), -1)[:, 0]
    levelled = np.asarray(sweep["levelled_off"], dtype=object).reshape(len(lrs), -1)[:, 0]
    best, best_err = None, math.inf
    for lr, m, dv, lev in zip(lrs, mean, diverged, levelled):
        if dv == 0 and lev is not None and bool(lev) and np.isfinite(m) and abs(m - exact) < best_err:
            best, best_err = float(lr), abs(m - exact)
    if best is None:
        raise ValueError("no step size in the sweep is usable (all diverged or did not level off); "
                         "sweep smaller lr or run more draws.")
    return best
