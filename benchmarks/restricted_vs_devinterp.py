"""A weight-restricted LLC with an exact answer: ``estimate_llc(restrict=...)`` vs devinterp 1.3.2's ``requires_grad=False``.

    .venv-bench/bin/python benchmarks/restricted_vs_devinterp.py     # make bench installs devinterp 1.3.2 there

A deep linear network [H]*4 (three H×H layers) at a teacher whose layers are orthogonal matrices. With the
first and last layers held fixed, L_n as a function of the middle layer W₂ alone is a non-degenerate
quadratic (W₃W₂W₁ is injective in W₂ and E[xxᵀ] = I/3 for x ~ U[−1, 1]^H), so the restricted learning
coefficient is exactly H²/2 (the Hessian in W₂ is (W₁E[xxᵀ]W₁ᵀ) ⊗ W₃ᵀW₃ = I/3 here), and its finite-n target is ½Σ a_i/(a_i + γ) over the restricted Hessian
(``expected_llc_quadratic`` of the model whose other layers have ``requires_grad=False``).

The course samples only W₂: the other coordinates stay exactly at w*. devinterp 1.3.2 is given the
same model with W₁, W₃ frozen by ``requires_grad=False`` (its documented way to restrict) and the
same ε, γ, nβ, draws and minibatch size; the script reports both λ̂ against the exact value and
whether devinterp's "frozen" weights moved.
"""

from __future__ import annotations

import argparse
import copy
import math
import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset

from slt_course_utils import dln
from slt_course_utils.llc import estimate_llc, expected_llc_quadratic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    H = args.width
    g = torch.Generator().manual_seed(0)
    teacher = dln.DeepLinearNetwork([H] * 4)
    with torch.no_grad():  # orthogonal layers: invertible and well conditioned (every restricted curvature equal)
        for layer in teacher.layers:
            layer.weight.copy_(torch.linalg.qr(torch.randn(H, H, generator=g))[0])
    x, y = dln.sample_dln_data(teacher, args.n, generator=g)
    nbeta = args.n / math.log(args.n)
    frozen = copy.deepcopy(teacher)
    for name, p in frozen.named_parameters():
        p.requires_grad_(name == "layers.1.weight")
    exact = H * H / 2
    target = expected_llc_quadratic(frozen, (x, y), dln.dln_loss, nbeta, 1.0)
    print(f"# Restricted LLC of the middle layer of a DLN {[H] * 4} at an invertible teacher: exact λ = {exact:g}, "
          f"finite-n target (γ = 1, nβ = n/log n) = {target:.3f}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = estimate_llc(teacher, (x, y), dln.dln_loss, restrict=["layers.1"], num_chains=args.chains,
                            num_draws=args.draws, batch_size=args.batch_size, seed=0, progress=False)
    lr = auto.hyperparameters["lr"]
    print(f"course, restrict=['layers.1'], lr='auto' (ε = {lr:.2e}): λ̂ = {auto.mean:.2f} ± {auto.stderr:.2f} "
          f"({auto.mean / target - 1:+.1%} vs target), {auto.hyperparameters['num_params']} coordinates sampled")
    try:
        import devinterp  # noqa: F401
    except ImportError:
        print("devinterp is not installed here: run with .venv-bench/bin/python (make bench installs it).")
        return
    for factor in (1.0, 0.1):  # the same ε, and ε/10 in case devinterp's larger effective model needs it
        run_devinterp(frozen, x, y, lr * factor, factor, nbeta, target, args)


def run_devinterp(frozen, x, y, lr, factor, nbeta, target, args) -> None:
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary

    model = copy.deepcopy(frozen)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
    with torch.no_grad():
        init_loss = dln.dln_loss(model(x), y).item()
    what = f"devinterp 1.3.2, W₁ and W₃ requires_grad=False, ε × {factor:g} = {lr:.2e}, same γ/nβ"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = estimate_learning_coeff_with_summary(
                model, loader, evaluate=lambda m, b: dln.dln_loss(m(b[0]), b[1]), sampling_method=SGLD,
                optimizer_kwargs={"lr": lr, "localization": 1.0, "nbeta": nbeta}, num_draws=args.draws,
                num_chains=args.chains, num_burnin_steps=args.draws // 4, num_steps_bw_draws=1, init_loss=init_loss,
                seed=0, device="cpu", verbose=False, online=False)
        except RuntimeError as err:  # devinterp stops at a NaN loss
            print(f"{what}: stopped: {err}")
            return
    mean = float(out["llc/mean"])
    se = float(out["llc/std"]) / math.sqrt(args.chains)
    print(f"{what}: λ̂ = {mean:.2f} ± {se:.2f} ({mean / target - 1:+.1%} vs target)")

if __name__ == "__main__":
    main()
