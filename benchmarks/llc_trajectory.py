"""Benchmark: λ̂ over 16 checkpoints — one ``estimate_llc_trajectory`` call vs a loop, and vs devinterp 1.3.2.

    python benchmarks/llc_trajectory.py [--checkpoints 16] [--chains 8] [--draws 200] [--threads 1]
    .venv-bench/bin/python benchmarks/llc_trajectory.py     # adds devinterp 1.3.2 (make bench installs it)

Same work on every side: the same checkpoints, data, ε, γ, nβ, draws, burn-in and minibatch size
(fixed ε: the loop and devinterp get the ε the trajectory's lr="auto" chose, so that the
adaptation, which only the course does, is timed separately). The loop is ``estimate_llc`` per
checkpoint with its Hessian checks off (``check_localization=False``: the trajectory does not run
them); devinterp runs ``estimate_learning_coeff_with_summary`` per checkpoint, its chains one after
another (it has no batched trajectory). Results (this CPU) are pasted into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from slt_course_utils.llc import estimate_llc, estimate_llc_trajectory
from slt_course_utils.tms import ToyModelOfSuperposition


def tms_checkpoints(n: int, K: int, seed: int = 0) -> tuple[list[nn.Module], torch.Tensor, torch.Tensor]:
    """TMS 6→2 trained by Adam from a small initialisation on high-sparsity data; K checkpoints, log-spaced."""
    g = torch.Generator().manual_seed(seed)
    c = 6
    idx = torch.randint(0, c, (n,), generator=g)
    x = torch.zeros(n, c)
    x[torch.arange(n), idx] = torch.rand(n, generator=g)
    torch.manual_seed(seed)
    model = ToyModelOfSuperposition(c)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    steps = 3000
    save = sorted({int(s) for s in torch.logspace(1, math.log10(steps), K).round().tolist()})
    cks = []
    for t in range(1, steps + 1):
        opt.zero_grad()
        F.mse_loss(model(x), x).backward()
        opt.step()
        if t in save:
            cks.append(copy.deepcopy(model))
    while len(cks) < K:  # rounding merged two steps: pad with the last
        cks.append(copy.deepcopy(model))
    return cks[:K], x, x.clone()


def mlp_checkpoints(n: int, K: int, width: int, seed: int = 0) -> tuple[list[nn.Module], torch.Tensor, torch.Tensor]:
    """A 8→width→width→1 tanh MLP regressing a smooth target; K checkpoints over 2000 Adam steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = torch.sin(x[:, :1]) * x[:, 1:2] + 0.1 * torch.randn(n, 1, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = 2000
    save = {round(steps * (k + 1) / K) for k in range(K)}
    cks = []
    for t in range(1, steps + 1):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
        if t in save:
            cks.append(copy.deepcopy(model))
    return cks, x, y


def devinterp_loop(cks, x, y, *, chains, draws, burnin, lrs, localization, nbeta, batch_size, seed):
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    means = []
    start = time.perf_counter()
    for m, lr in zip(cks, lrs, strict=True):
        with torch.no_grad():
            init_loss = F.mse_loss(m(x), y).item()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = estimate_learning_coeff_with_summary(
                copy.deepcopy(m), loader, evaluate=lambda mm, b: F.mse_loss(mm(b[0]), b[1]), sampling_method=SGLD,
                optimizer_kwargs={"lr": lr, "localization": localization, "nbeta": nbeta}, num_draws=draws,
                num_chains=chains, num_burnin_steps=burnin, num_steps_bw_draws=1, init_loss=init_loss, seed=seed,
                device="cpu", verbose=False, online=False)
        means.append(float(out["llc/mean"]))
    return time.perf_counter() - start, means


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=16)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--burnin", type=int, default=50)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    K, C = args.checkpoints, args.chains
    nbeta = args.n / math.log(args.n)
    print(f"# λ̂ over {K} checkpoints × {C} chains: one batched call vs a loop (vs devinterp 1.3.2 if installed)")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads = {args.threads}, "
          f"n = {args.n}, batch = {args.batch_size}, draws = {args.draws}, burn-in = {args.burnin}, γ = 1, nβ = n/log n\n")
    tasks = {"TMS 6→2 (d = 18)": tms_checkpoints(args.n, K),
             f"MLP 8→{args.width}→{args.width}→1": mlp_checkpoints(args.n, K, args.width)}
    print("| task | d | trajectory lr=auto (adapt + sample) | trajectory, fixed ε | loop of estimate_llc | loop/trajectory "
          "| devinterp loop | devinterp/trajectory | max |Δλ̂|/se (loop vs trajectory) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (cks, x, y) in tasks.items():
        d = sum(p.numel() for p in cks[0].parameters())
        kw = dict(num_chains=C, num_draws=args.draws, num_burnin_steps=args.burnin, batch_size=args.batch_size,
                  localization=1.0, nbeta=nbeta, progress=False, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            auto = estimate_llc_trajectory(cks, (x, y), F.mse_loss, **kw)
            t_auto = time.perf_counter() - t
            lrs = [r.hyperparameters["lr"] for r in auto]
            t = time.perf_counter()
            traj = estimate_llc_trajectory(cks, (x, y), F.mse_loss, lr=lrs, **kw)
            t_traj = time.perf_counter() - t
            t = time.perf_counter()
            loop = [estimate_llc(m, (x, y), F.mse_loss, lr=lr, check_localization=False, **kw)
                    for m, lr in zip(cks, lrs, strict=True)]
            t_loop = time.perf_counter() - t
        z = max(abs(a.mean - b.mean) / math.hypot(a.stderr, b.stderr) for a, b in zip(traj, loop, strict=True))
        try:
            t_dev, _ = devinterp_loop(cks, x, y, chains=C, draws=args.draws, burnin=args.burnin, lrs=lrs,
                                      localization=1.0, nbeta=nbeta, batch_size=args.batch_size, seed=0)
            dev = f"{t_dev:.1f} s | {t_dev / t_traj:.1f}×"
        except ImportError:
            dev = "not installed | –"
        print(f"| {name} | {d} | {t_auto:.1f} s | {t_traj:.1f} s | {t_loop:.1f} s | {t_loop / t_traj:.1f}× | {dev} "
              f"| {z:.1f} |")


if __name__ == "__main__":
    main()
