"""Benchmark: the course's vectorised LLC estimator against devinterp 1.3.2 on identical work.

    make bench                      # installs devinterp==1.3.2 (the 'bench' extra) and runs this
    python benchmarks/llc_vs_devinterp.py [--chains 1 4 16 64] [--draws 200] [--threads 1]
    python benchmarks/llc_vs_devinterp.py --device cuda --chains 16 64 --no-compile \
        --course-only-chains 1024 4096 16384          # the GPU table (benchmarks/gpu_check.py runs it)

Both estimators get the same model at the same w*, the same data, step size ε, localisation γ,
nβ, number of draws and burn-in, the same minibatch size, and the same L(w*) (full data).
devinterp runs its chains one after another (cores=1); ``estimate_llc`` advances them together.
For each task and chain count the script prints the wall time of each, the ratio, and whether
the two means agree within 3 combined standard errors (standard errors over chains). It also
runs ``estimate_llc(compile=True)``: its total time includes torch.compile's one-off
compilation (seconds), its sampling time does not; both are printed. ``--course-only-chains``
adds a table of ``estimate_llc`` alone at chain counts where devinterp's loop over chains would
take minutes. On the CPU a last table times a 6×6 calibration grid × 8 chains as one batched
``calibration_sweep`` call against 36 ``estimate_llc`` calls (``calibrate_llc_grid.py``).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from slt_course_utils.dln import DeepLinearNetwork
from slt_course_utils.llc import estimate_llc
from slt_course_utils.tms import ToyModelOfSuperposition


def tms_task(n: int, seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """TMS 6→2 trained to a critical point on high-sparsity data (one active feature, value U[0,1])."""
    g = torch.Generator().manual_seed(seed)
    c = 6
    idx = torch.randint(0, c, (n,), generator=g)
    x = torch.zeros(n, c)
    x[torch.arange(n), idx] = torch.rand(n, generator=g)
    torch.manual_seed(seed)
    model = ToyModelOfSuperposition(c)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3000):
        opt.zero_grad()
        F.mse_loss(model(x), x).backward()
        opt.step()
    return model, x, x.clone()


def dln_task(n: int, seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A deep linear network [5, 4, 4, 5] at a random true parameter, noiseless targets, x ~ U[−1, 1]^5."""
    torch.manual_seed(seed)
    model = DeepLinearNetwork([5, 4, 4, 5])
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.rand(n, 5, generator=g) - 1
    with torch.no_grad():
        y = model(x)
    return model, x, y


def run_devinterp(model, x, y, *, chains, draws, burnin, lr, localization, nbeta, batch_size, init_loss, seed,
                  device="cpu"):
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary

    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        out = estimate_learning_coeff_with_summary(
            model, loader, evaluate=lambda m, batch: F.mse_loss(m(batch[0]), batch[1]),
            sampling_method=SGLD, optimizer_kwargs={"lr": lr, "localization": localization, "nbeta": nbeta},
            num_draws=draws, num_chains=chains, num_burnin_steps=burnin, num_steps_bw_draws=1,
            init_loss=init_loss, seed=seed, device=device, verbose=False, online=False,
        )
        seconds = time.perf_counter() - start
    per_chain = torch.tensor([out[f"llc-chain/{i}"] for i in range(chains)], dtype=torch.float64)
    return seconds, per_chain


def run_course(model, x, y, *, chains, draws, burnin, lr, localization, nbeta, batch_size, seed, compile=False,
               device="cpu"):
    """Wall time of estimate_llc (compilation included) and per-chain λ̂; with compile, also the sampling time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        res = estimate_llc(model, (x, y), F.mse_loss, num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
                           lr=lr, localization=localization, nbeta=nbeta, batch_size=batch_size, device=device,
                           seed=seed, progress=False, check_localization=False, compile=compile)
        seconds = time.perf_counter() - start
    if compile:
        return seconds, res.per_chain.double(), res.diagnostics["wall_time_s"]
    return seconds, res.per_chain.double()


def summary(per_chain: torch.Tensor) -> tuple[float, float]:
    k = per_chain.numel()
    se = per_chain.std().item() / math.sqrt(k) if k > 1 else math.nan
    return per_chain.mean().item(), se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--burnin", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (tiny models: 1 is fastest)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for both estimators")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    parser.add_argument("--course-only-chains", type=int, nargs="*", default=[],
                        help="also time estimate_llc alone at these chain counts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import devinterp

    print(f"# LLC benchmark: slt_course_utils.estimate_llc vs devinterp {getattr(devinterp, '__version__', '1.3.2')}")
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {where} ({args.device}), torch threads = {args.threads}, "
          f"n = {args.n}, batch = {args.batch_size}, draws = {args.draws}, burn-in = {args.burnin}\n")
    tasks = {
        "TMS 6→2": (tms_task, {"lr": 1e-3, "localization": 100.0}),
        "DLN [5,4,4,5]": (dln_task, {"lr": 1e-4, "localization": 10.0}),
    }
    # Each task is built (the TMS one trained) once; L(w*) is taken before devinterp moves the model to the device.
    nbeta = args.n / math.log(args.n)
    built = {}
    for name, (make, hp) in tasks.items():
        model, x, y = make(args.n, seed=0)
        with torch.no_grad():
            init_loss = F.mse_loss(model(x), y).item()
        built[name] = (model, x, y, init_loss, hp)
    if args.device.startswith("cuda"):  # CUDA context, cuBLAS handles, kernel caches: paid once, outside the timings
        for model, x, y, _, hp in built.values():
            warm = {"draws": 5, "burnin": 0, "nbeta": 10.0, "batch_size": args.batch_size, "seed": 0,
                    "device": args.device, **hp}
            run_devinterp(model, x, y, chains=1, init_loss=0.0, **warm)
            run_course(model, x, y, chains=2, **warm)
    print("| task | chains | devinterp (s) | course (s) | speed-up | compiled: total / sampling (s) | speed-up (sampling) "
          "| λ̂ devinterp | λ̂ course | agree (3σ) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (model, x, y, init_loss, hp) in built.items():
        for chains in args.chains:
            common = {"chains": chains, "draws": args.draws, "burnin": args.burnin, "nbeta": nbeta,
                      "batch_size": args.batch_size, "seed": 0, "device": args.device, **hp}
            t_ref, ref = run_devinterp(model, x, y, init_loss=init_loss, **common)
            t_ours, ours = run_course(model, x, y, **common)
            if args.no_compile:
                t_comp = t_sampling = math.nan
            else:
                t_comp, comp, t_sampling = run_course(model, x, y, compile=True, **common)
                assert torch.allclose(comp, ours, rtol=1e-3, atol=1e-3), "compiled and eager runs disagree"
            (m1, s1), (m2, s2) = summary(ref), summary(ours)
            if chains > 1:
                agree = "yes" if abs(m1 - m2) <= 3 * math.hypot(s1, s2) else "NO"
                fmt = lambda m, s: f"{m:.3f} ± {s:.3f}"  # noqa: E731
            else:
                agree, fmt = "n/a (1 chain)", lambda m, s: f"{m:.3f}"  # noqa: E731
            print(f"| {name} | {chains} | {t_ref:.2f} | {t_ours:.3f} | {t_ref / t_ours:.1f}× | {t_comp:.2f} / "
                  f"{t_sampling:.3f} | {t_ref / t_sampling:.1f}× | {fmt(m1, s1)} | {fmt(m2, s2)} | {agree} |", flush=True)
    if not args.device.startswith("cuda"):  # the batched calibration grid (CPU): one call vs 36
        from calibrate_llc_grid import HEADER, grid_row

        print("\nA 6×6 grid × 8 chains: 36 estimate_llc calls vs one calibration_sweep call\n")
        print(HEADER)
        for name, (model, x, y, _, _hp) in built.items():
            print(grid_row(name, model, x, y, draws=args.draws, batch_size=args.batch_size,
                           compiled=not args.no_compile), flush=True)
    if args.course_only_chains:
        print(f"\n| task | chains | course (s) | µs per chain-step | λ̂ course |  ({args.device}, eager)")
        print("|---|---|---|---|---|")
        for name, (model, x, y, _, hp) in built.items():
            for chains in args.course_only_chains:
                t, per_chain = run_course(model, x, y, chains=chains, draws=args.draws, burnin=args.burnin, nbeta=nbeta,
                                          batch_size=args.batch_size, seed=0, device=args.device, **hp)
                m, se = summary(per_chain)
                steps = chains * (args.draws + args.burnin)
                print(f"| {name} | {chains} | {t:.2f} | {1e6 * t / steps:.2f} | {m:.3f} ± {se:.3f} |", flush=True)


if __name__ == "__main__":
    main()
