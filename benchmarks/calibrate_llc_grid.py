"""Benchmark: a 6×6 calibration grid × 8 chains as ONE batched call vs 36 separate ``estimate_llc`` calls.

    PYTHONPATH=. python benchmarks/calibrate_llc_grid.py [--draws 200] [--threads 1]

``calibration_sweep`` gives every cell its own chains (per-chain ε and γ tensors) and advances all
6·6·8 = 288 chains together; the loop calls ``estimate_llc`` once per cell with 8 chains. Same
model, data, minibatch size, draws and burn-in; the per-cell means of both agree statistically
(different random streams). ``llc_vs_devinterp.py`` prints the same row after its table.
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


def grid_row(name: str, model, x, y, *, draws: int, batch_size: int, chains: int = 8) -> str:
    """Time the batched grid and the loop over cells; return a markdown row."""
    kw = dict(num_draws=draws, batch_size=batch_size, device="cpu", progress=False, seed=0,
              check_localization=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        table = calibration_sweep(model, (x, y), F.mse_loss, LRS, GAMMAS, num_chains=chains, **kw)
        t_grid = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = np.full((len(LRS), len(GAMMAS)), np.nan)
        for i, lr in enumerate(LRS):
            for j, g in enumerate(GAMMAS):
                loop[i, j] = estimate_llc(model, (x, y), F.mse_loss, lr=lr, localization=g, num_chains=chains,
                                          **kw).mean
        t_loop = time.perf_counter() - t0
    se = np.where(np.isfinite(table["stderr"]), table["stderr"], np.inf)
    agree = np.nanmean(np.abs(table["mean"] - loop) <= 4 * np.sqrt(2) * se)
    return (f"| {name} | {len(LRS)}×{len(GAMMAS)}×{chains} | {t_loop:.1f} | {t_grid:.2f} | "
            f"{t_loop / t_grid:.1f}× | {agree:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llc_vs_devinterp import dln_task, tms_task

    print(f"torch {torch.__version__}, threads {args.threads}, draws {args.draws} (+¼ burn-in), "
          f"batch {args.batch_size}, n {args.n}\n")
    print("| task | grid | 36 calls (s) | one batched call (s) | speed-up | cells agreeing (4σ) |")
    print("|---|---|---|---|---|---|")
    for name, make in (("TMS 6→2", tms_task), ("DLN [5,4,4,5]", dln_task)):
        model, x, y = make(args.n, seed=0)
        print(grid_row(name, model, x, y, draws=args.draws, batch_size=args.batch_size), flush=True)


if __name__ == "__main__":
    main()
