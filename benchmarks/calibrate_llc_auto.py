"""λ̂ with ``lr="auto"`` for each sampler against exact finite-n targets; prints a markdown table.

    PYTHONPATH=. python benchmarks/calibrate_llc_auto.py [--draws 4000] [--chains 8] [--gammas 1,10]

Cases (none was used to tune the rule in slt_course_utils/llc/adapt.py, which was derived for
Gaussians):

- devinterp's nine normal crossings y = w₁^{p₁} w₂^{p₂} x + N(0, σ²) (its
  ``tests/slt/sampler_accuracy_test.py`` powers), here with σ = 0.5, x ~ N(0, 1), n = 1000,
  β = 1/log n and the noise residualised against x, so that L_n(w) − L_n(0) = (a/2)(w₁^{p₁}w₂^{p₂})²
  exactly and the finite-n target E[nβ(L_n − L_n(0))] under ∝ exp(−nβL_n − γ|w|²/2) is a 2-D
  integral (``llc_models.normal_crossing_finite_n_target``);
- linear regression, d = 5 (regular): exact ½Σ nβhᵢ/(nβhᵢ + γ).

Columns: z = (λ̂ − exact)/se (se over chains); ε the chosen step; R̂ and bulk ESS of the draws.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

from slt_course_utils.llc import estimate_llc
from slt_course_utils.llc_models import (
    SIGMA,
    NormalCrossing,
    gaussian_nll,
    linear_regression,
    normal_crossing_data,
    normal_crossing_finite_n_target,
)

POWERS = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3), (3, 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=4000)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--gammas", default="1")
    ap.add_argument("--samplers", default="sgld,rmsprop_sgld,mala")
    args = ap.parse_args()
    n = 1000
    nbeta = n / math.log(n)
    x, y = normal_crossing_data(n)
    a = float((x @ x) / n / SIGMA**2)
    print(f"chains {args.chains}, draws {args.draws} (burn-in ¼ after the lr='auto' windows), torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}\n")
    print("| model | γ | sampler | exact | λ̂ ± se | rel. err | z | ε (auto) | R̂ | ESS | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cases = [(f"NC w1^{2 * p[0]}·w2^{2 * p[1]}", NormalCrossing(p), (x, y),
              lambda g, p=p: normal_crossing_finite_n_target(p, a, nbeta, g)) for p in POWERS]
    model, xr, yr = linear_regression()
    h = torch.linalg.eigvalsh(xr.T @ xr / n / SIGMA**2).double()
    cases.append(("linear regression d=5", model, (xr, yr),
                  lambda g: float(0.5 * (nbeta * h / (nbeta * h + g)).sum())))
    for gamma in map(float, args.gammas.split(",")):
        for name, net, data, exact_fn in cases:
            exact = exact_fn(gamma)
            for sampler in args.samplers.split(","):
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = estimate_llc(net, data, gaussian_nll, sampler=sampler, lr="auto", localization=gamma,
                                       num_chains=args.chains, num_draws=args.draws, device="cpu",
                                       progress=False, seed=0)
                z = (res.mean - exact) / res.stderr
                dg = res.diagnostics
                print(f"| {name} | {gamma:g} | {sampler} | {exact:.4f} | {res.mean:.4f} ± {res.stderr:.4f} | "
                      f"{(res.mean - exact) / exact:+.1%} | {z:+.1f} | {res.hyperparameters['lr']:.2e} | "
                      f"{dg['rhat']:.3f} | {dg['ess_bulk']:.0f} | {time.perf_counter() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
