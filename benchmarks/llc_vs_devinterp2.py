"""Second reference: devinterp 2.x (``devinterp.slt.llc.llc``) on the same work as llc_vs_devinterp.py.

    make bench-devinterp2           # a separate venv with devinterp==2.0.1 (it pulls transformers,
                                    # datasets, xarray, zarr: ~450 MB), then runs this script

devinterp 2.x is written for language models: it samples from a HuggingFace ``Dataset`` with an
``input_ids`` column and a per-token loss of shape (batch, seq − 1). The tasks are wrapped:
each row of ``input_ids`` is a sample's inputs and targets followed by a dummy entry, and the
loss returns per-output squared errors (repeated to length seq − 1 where needed), whose mean is
exactly ``F.mse_loss``. Differences that remain and are reported, not hidden: devinterp 2.x
estimates L(w*) from ``num_init_loss_batches`` minibatches (not the full data), averages the
loss over every step including burn-in, and lets all chains see the same minibatch sequence.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch
from llc_vs_devinterp import dln_task, run_course, summary, tms_task


def run_devinterp2(model, x, y, *, chains, draws, burnin, lr, localization, nbeta, batch_size, seed):
    from datasets import Dataset
    from devinterp.slt.llc import llc

    ids = torch.cat([x, y, torch.zeros(len(x), 1)], 1)  # (n, in + out + 1): "sequence" length in + out + 1
    d_in, d_out = x.shape[1], y.shape[1]
    ds = Dataset.from_dict({"input_ids": ids.tolist()}).with_format("torch")

    def loss_fn(m, input_ids):
        xb, yb = input_ids[:, :d_in].float(), input_ids[:, d_in : d_in + d_out].float()
        err = (m(xb) - yb) ** 2  # (batch, d_out)
        # devinterp 2 wants (batch, seq − 1) = (batch, d_in + d_out): repeat the errors whole, so that
        # the mean over "tokens" is the mean squared error (d_out divides d_in + d_out in both tasks).
        if (d_in + d_out) % d_out:
            raise ValueError("the wrapper needs d_out to divide d_in + d_out")
        return err.repeat(1, (d_in + d_out) // d_out)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        out = llc(model, ds, {}, lr=lr, n_beta=nbeta, loss_fn=loss_fn, num_chains=chains, num_draws=draws,
                  num_burnin_steps=burnin, batch_size=batch_size, localization=localization, device="cpu",
                  init_seed=seed)
        seconds = time.perf_counter() - start
    return seconds, torch.as_tensor(out["llc_per_chain"].values, dtype=torch.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# LLC benchmark: slt_course_utils.estimate_llc vs devinterp 2.x; torch threads = {args.threads}\n")
    print("| task | chains | devinterp 2 (s) | course (s) | speed-up | λ̂ devinterp 2 | λ̂ course | agree (3σ) |")
    print("|---|---|---|---|---|---|---|---|")
    tasks = {"TMS 6→2": (tms_task, {"lr": 1e-3, "localization": 100.0}),
             "DLN [5,4,4,5]": (dln_task, {"lr": 1e-4, "localization": 10.0})}
    for name, (make, hp) in tasks.items():
        model, x, y = make(args.n, seed=0)
        for chains in args.chains:
            common = {"chains": chains, "draws": args.draws, "burnin": 0, "nbeta": args.n / math.log(args.n),
                      "batch_size": args.batch_size, "seed": 0, **hp}
            t_ref, ref = run_devinterp2(model, x, y, **common)
            t_ours, ours = run_course(model, x, y, **common)
            (m1, s1), (m2, s2) = summary(ref), summary(ours)
            agree = ("yes" if abs(m1 - m2) <= 3 * math.hypot(s1, s2) else "NO") if chains > 1 else "n/a (1 chain)"
            print(f"| {name} | {chains} | {t_ref:.2f} | {t_ours:.3f} | {t_ref / t_ours:.1f}× | {m1:.3f} ± {s1:.3f} | "
                  f"{m2:.3f} ± {s2:.3f} | {agree} |", flush=True)


if __name__ == "__main__":
    main()
