"""Benchmark: a 6×6 calibration grid × 8 chains as ONE batched call vs 36 separate ``estimate_llc`` calls.

    cd benchmarks && PYTHONPATH=.. python calibrate_llc_grid.py [--draws 200] [--threads 1] [--no-compile]

``calibration_sweep`` gives every cell its own chains (per-chain ε and γ tensors) and advances all
6·6·8 = 288 chains together; the loop calls ``estimate_llc`` once per cell with 8 chains. Same work on
both sides: same model, data, minibatch size (per-chain indices drawn with replacement), draws, burn-in
(¼ of the draws) and sampler (SGLD); ``check_localization=False`` on both (the sweep's default; the
loop's default would add a Hessian per call, which is not the work being compared). The per-cell means
of both agree statistically (different random streams).

Rows: eager loop vs eager batched call; the batched call with ``compile=True`` (its time includes
torch.compile's compilation, done once). Times are process CPU seconds (robust to the other jobs on a
shared CPU, one thread) and wall seconds. The last columns measure the two costs the ratio is made of:
the loop's time per sampler step of one 8-chain call, and the batched call's time per step divided by
its 288 chains (the arithmetic of one chain-step, which neither eager nor compiled code gets much below
~10 µs for these models on this CPU). The ratio cannot exceed (36 × loop step)/(batched step).
``llc_vs_devinterp.py`` prints the eager row after its table.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from slt_course_utils.llc import calibration_sweep, estimate_llc

LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4]
GAMMAS = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0]


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - t0


def grid_row(name: str, model, x, y, *, draws: int, batch_size: int, chains: int = 8,
             compiled: bool = True) -> str:
    """Time the loop over cells and the batched grid (eager, and compiled); return markdown row(s)."""
    kw = dict(num_draws=draws, batch_size=batch_size, device="cpu", progress=False, seed=0,
              check_localization=False)
    steps = draws + -(-draws // 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def loop():
            out = np.full((len(LRS), len(GAMMAS)), np.nan)
            for i, lr in enumerate(LRS):
                for j, g in enumerate(GAMMAS):
                    out[i, j] = estimate_llc(model, (x, y), F.mse_loss, lr=lr, localization=g,
                                             num_chains=chains, **kw).mean
            return out

        loop_mean, c_loop, w_loop = _timed(loop)
        table, c_grid, w_grid = _timed(lambda: calibration_sweep(model, (x, y), F.mse_loss, LRS, GAMMAS,
                                                                 num_chains=chains, **kw))
        rows = [("eager", table, c_grid, w_grid)]
        if compiled:
            t2, c2, w2 = _timed(lambda: calibration_sweep(model, (x, y), F.mse_loss, LRS, GAMMAS,
                                                          num_chains=chains, compile=True, **kw))
            rows.append(("compiled (incl. compile)", t2, c2, w2))
    cells = len(LRS) * len(GAMMAS)
    out = []
    for label, tab, c, w in rows:
        se = np.where(np.isfinite(tab["stderr"]), tab["stderr"], np.inf)
        agree = np.nanmean(np.abs(tab["mean"] - loop_mean) <= 4 * np.sqrt(2) * se)
        per_step_loop = 1e3 * c_loop / cells / steps
        per_chain_step = 1e6 * c / steps / (cells * chains)
        out.append(f"| {name} | {label} | {c_loop:.1f} ({w_loop:.1f}) | {c:.2f} ({w:.2f}) | "
                   f"{c_loop / c:.1f}× ({w_loop / w:.1f}×) | {agree:.0%} | {per_step_loop:.2f} | "
                   f"{per_chain_step:.1f} |")
    return "\n".join(out)


HEADER = ("| task | batched call | 36 calls: CPU s (wall) | one call: CPU s (wall) | speed-up CPU (wall) | "
          "cells agreeing (4σ) | loop: ms per step of one call | batched: µs per chain-step |\n"
          "|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled batched call")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llc_vs_devinterp import dln_task, tms_task

    print(f"torch {torch.__version__}, threads {args.threads}, draws {args.draws} (+¼ burn-in), "
          f"batch {args.batch_size}, n {args.n}, SGLD, check_localization=False on both sides\n")
    print(HEADER)
    for name, make in (("TMS 6→2", tms_task), ("DLN [5,4,4,5]", dln_task)):
        model, x, y = make(args.n, seed=0)
        print(grid_row(name, model, x, y, draws=args.draws, batch_size=args.batch_size,
                       compiled=not args.no_compile), flush=True)


if __name__ == "__main__":
    main()
