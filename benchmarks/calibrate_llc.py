"""Calibrate the SGLD LLC estimator against exact learning coefficients; print a markdown table.

    PYTHONPATH=. python benchmarks/calibrate_llc.py [--steps 10000] [--chains 8] [--device auto]

Models (exact values from GROUND_TRUTHS.md / slt_course_utils.theory):

- normal crossings y = Π w_j^{k_j} x + N(0, σ²), σ = 0.5, n = 1000, β = 1/log n, γ = 1
  (Lau et al.'s grid); the noise is residualised against x so that w* = 0 is the exact
  empirical minimum. For two parameters the exact *finite-n* target E[nβ(L_n − L_n(w*))]
  under the localised posterior is also given (quadrature), to separate sampler error
  from the finite-n gap to λ (large for m ≥ 2: a log log n correction);
- reduced-rank regression y = BAx and deep linear networks y = W_L⋯W_1 x, noiseless targets
  from a true network of rank r, at its most singular true parameter (unused rows/columns
  zero), x ~ N(0, I), n = 2000 (``--lin-n``), γ = 1, loss ½‖y − f‖² summed over outputs (the NLL for σ = 1).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from fractions import Fraction

import torch
from torch import nn

from slt_course_utils.llc import estimate_llc
from slt_course_utils.llc_models import normal_crossing_finite_n_target

try:
    from slt_course_utils.theory import (
        rlct_deep_linear_network,
        rlct_normal_crossing,
        rlct_reduced_rank_regression,
    )
except ImportError:  # theory.py lives on another branch: fall back to GROUND_TRUTHS.md values
    _NC = {(1, 1): (Fraction(1, 2), 2), (2, 0): (Fraction(1, 4), 1), (1, 2): (Fraction(1, 4), 1),
           (2, 3): (Fraction(1, 6), 1), (1, 0): (Fraction(1, 2), 1), (2, 2): (Fraction(1, 4), 2),
           (1, 1, 1): (Fraction(1, 2), 3)}
    _RRR = {(3, 3, 2, 1): (Fraction(7, 2), 2), (3, 3, 2, 0): (Fraction(5, 2), 1),
            (5, 5, 3, 0): (Fraction(13, 2), 2), (4, 8, 3, 0): (Fraction(6), 1)}
    _DLN = {((2, 2, 2, 2, 2), 0): (Fraction(3, 2), 5), ((3, 2, 2, 3), 0): (Fraction(2), 3),
            ((4, 3, 5, 2), 1): (Fraction(7, 2), 1), ((5, 5, 5, 5), 0): (Fraction(17, 2), 3)}

    def rlct_normal_crossing(k, h=None):
        return _NC[tuple(k)]

    def rlct_reduced_rank_regression(M, N, H, r):
        return _RRR[(M, N, H, r)]

    def rlct_deep_linear_network(widths, true_rank):
        return _DLN[(tuple(widths), true_rank)]


SIGMA = 0.5


class NormalCrossing(nn.Module):
    """f(x) = Π_j w_j^{k_j} · x, at w* = 0."""

    def __init__(self, k: tuple[int, ...]) -> None:
        super().__init__()
        self.k = k
        self.w = nn.Parameter(torch.zeros(len(k)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for j, kj in enumerate(self.k):
            out = out * self.w[j] ** kj
        return out


def nc_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 2).mean() / (2 * SIGMA**2)


def sum_sq_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1).mean()


def quadrature(k: tuple[int, ...], a: float, nbeta: float, gamma: float) -> float:
    """E[nβ(a/2)u²], u = w1^k1 w2^k2, under ∝ exp(−nβ(a/2)u² − γ|w|²/2) (2-D grid, llc_models)."""
    return normal_crossing_finite_n_target(k, a, nbeta, gamma)


def linear_chain(widths: list[int], r: int, gen: torch.Generator) -> nn.Sequential:
    """W_L⋯W_1 with a rank-r truth: only the first r hidden units used, the rest zero."""
    layers = []
    for i, (h_in, h_out) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(h_in, h_out, bias=False)
        w = torch.zeros(h_out, h_in)
        rows = slice(None) if i == len(widths) - 2 else slice(0, r)
        cols = slice(None) if i == 0 else slice(0, r)
        block = w[rows, cols]
        w[rows, cols] = torch.randn(block.shape, generator=gen)
        lin.weight.data.copy_(w)
        layers.append(lin)
    return nn.Sequential(*layers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000, help="SGLD steps per chain (incl. 20% burn-in)")
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="nc,rrr,dln", help="comma list of nc, rrr, dln")
    ap.add_argument("--nc-lrs", default="1e-4,5e-4", help="SGLD step sizes for normal crossings")
    ap.add_argument("--lin-lrs", default="1e-4,5e-4", help="step sizes for RRR and DLN")
    ap.add_argument("--lin-n", type=int, default=2000, help="sample size for RRR and DLN")
    ap.add_argument("--lin-gamma", type=float, default=1.0, help="localization for RRR and DLN")
    args = ap.parse_args()
    burnin = args.steps // 5
    draws = args.steps - burnin
    common = dict(num_chains=args.chains, num_draws=draws, num_burnin_steps=burnin,
                  device=args.device, progress=False, seed=0)
    rows = []

    def run(name, exact, m, model, data, loss, lr, gamma, finite="–", n=None):
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            res = estimate_llc(model, data, loss, lr=lr, localization=gamma, n=n, **common)
        wall = time.perf_counter() - t0
        lam = float(exact)
        flags = "; ".join(sorted({str(w.message).split(":")[0][:40] for w in caught
                                  if w.filename.endswith(("llc.py", "calibrate_llc.py"))}))
        rows.append(f"| {name} | {exact} | {m} | {finite} | {res.mean:.3f} ± {res.stderr:.3f} | "
                    f"{(res.mean - lam) / lam:+.1%} | {lr:g} | {gamma:g} | "
                    f"{res.hyperparameters['nbeta']:.0f} | {res.diagnostics['mala_acceptance']:.2f} | "
                    f"{wall:.1f} | {flags} |")
        print(rows[-1], flush=True)

    print(f"steps {args.steps} (burn-in {burnin}), chains {args.chains}, device {args.device}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    print("| model | λ | m | finite-n exact | λ̂ ± se | rel. err | ε | γ | nβ | MALA | wall s | warnings |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    todo = set(args.only.split(","))
    if "nc" in todo:
        g = torch.Generator().manual_seed(1)
        n = 1000
        x = torch.randn(n, generator=g)
        y = SIGMA * torch.randn(n, generator=g)
        y = y - (x @ y) / (x @ x) * x
        a = float((x @ x) / n / SIGMA**2)
        nbeta = n / math.log(n)
        for k in [(1, 0), (2, 0), (1, 1), (1, 2), (2, 2), (2, 3), (1, 1, 1)]:
            lam, m = rlct_normal_crossing(k)
            for lr in map(float, args.nc_lrs.split(",")):
                fin = f"{quadrature(k, a, nbeta, 1.0):.3f}" if len(k) == 2 else "–"
                kstr = "·".join(f"w{j + 1}^{2 * kj}" for j, kj in enumerate(k) if kj)
                run(f"NC {kstr}", lam, m, NormalCrossing(k), (x, y), nc_loss, lr, 1.0, fin)
    n = args.lin_n
    lin_lrs = [float(v) for v in args.lin_lrs.split(",")]
    if "rrr" in todo:
        for M, N, H, r in [(3, 3, 2, 1), (3, 3, 2, 0), (5, 5, 3, 0), (4, 8, 3, 0)]:
            lam, m = rlct_reduced_rank_regression(M, N, H, r)
            g = torch.Generator().manual_seed(2)
            model = linear_chain([M, H, N], r, g)
            x = torch.randn(n, M, generator=g)
            with torch.no_grad():
                y = model(x)
            for lr in lin_lrs:
                run(f"RRR M={M} N={N} H={H} r={r}", lam, m, model, (x, y), sum_sq_loss, lr, args.lin_gamma)
    if "dln" in todo:
        for widths, r in [([2, 2, 2, 2, 2], 0), ([3, 2, 2, 3], 0), ([4, 3, 5, 2], 1), ([5, 5, 5, 5], 0)]:
            lam, m = rlct_deep_linear_network(widths, r)
            g = torch.Generator().manual_seed(3)
            model = linear_chain(widths, r, g)
            x = torch.randn(n, widths[0], generator=g)
            with torch.no_grad():
                y = model(x)
            for lr in lin_lrs:
                run(f"DLN {widths} r={r}", lam, m, model, (x, y), sum_sq_loss, lr, args.lin_gamma)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
