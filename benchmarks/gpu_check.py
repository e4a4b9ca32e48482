"""Run the GPU-size parts of the course once and write what they print, on a CUDA machine.

    python benchmarks/gpu_check.py --out DIR [--parts ch07 ch08 sweep] [--force-device cpu]

Runs the reading notebooks of chapters 07 and 08 as plain scripts (their code cells in order,
in one namespace; IPython magics and the widget cells skipped; every figure saved as
``DIR/<notebook>_cell<i>_<n>.png``) so that no Jupyter is needed on the GPU machine, and times
each cell. ``sweep`` re-estimates the largest deep linear network of chapter 08 at three
step sizes around the heuristic ε = 1e-4 (75/d)^{1/4} (the chapter itself now takes ε from
``dln.quadratic_calibration``, the 2%-bias rule, whose (H₁H_{L+1})² Hessian is out of reach at these
sizes); ``long`` runs the three largest with
ε ∝ d^{-1/2} (the decay of Furman & Lau's step sizes) and 16 000 draws, printing λ̂ over
successive windows of draws to show whether the traces level off. The devinterp comparison is
``benchmarks/llc_vs_devinterp.py --device cuda`` (run it separately; it needs devinterp).
``--force-device cpu`` is a smoke test of this script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("SLT_PROGRESS", "0")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

NOTEBOOKS = {"ch07": "chapters/07_toy_models_of_superposition.ipynb", "ch08": "chapters/08_llc_at_scale.ipynb"}
_MAGIC = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)


def run_notebook(path: Path, out: Path) -> float:
    """Execute the code cells of ``path`` as a script; returns the total wall time in seconds."""
    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {"__name__": "__main__"}
    total = 0.0
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "widgets_" in source:
            print(f"[{path.stem} cell {i}] widget cell skipped (needs a browser)")
            continue
        source = _MAGIC.sub(lambda m: m.group(1) + "pass", source)
        start = time.perf_counter()
        exec(compile(source, f"{path.name}:cell{i}", "exec"), namespace)  # noqa: S102
        seconds = time.perf_counter() - start
        total += seconds
        for num in plt.get_fignums():
            plt.figure(num).savefig(out / f"{path.stem[:2]}_cell{i}_{num}.png", dpi=80, bbox_inches="tight")
        plt.close("all")
        print(f"[{path.stem} cell {i}] {seconds:.1f} s", flush=True)
    print(f"[{path.stem}] total {total:.1f} s\n", flush=True)
    return total


def _dln_task(widths: list[int], r: int):
    """Chapter 08's task: a random true DLN of rank r, 10⁴ noiseless samples; (teacher, x, y, d, λ).

    λ is the exact *local* λ at this teacher, H_1·H_{L+1}/2: its later layers are square and
    invertible, so the product map is a submersion there (dln.local_llc; chapter 08, §2) — not
    Aoyagi's global dln.exact_llc, which belongs to the most singular true point."""
    from slt_course_utils import dln

    g = torch.Generator().manual_seed(0)
    teacher = dln.random_true_network(widths, r, generator=g)
    x, y = dln.sample_dln_data(teacher, 10_000, generator=g)
    return teacher, x, y, dln.num_parameters(widths), widths[0] * widths[-1] / 2


def step_size_sweep(device: str) -> None:
    """λ̂ of the largest DLN of chapter 08 at ε × {0.5, 1, 2} of the heuristic ε = 1e-4 (75/d)^{1/4}."""
    from slt_course_utils import dln
    from slt_course_utils.llc import estimate_llc

    widths, r = ([500] * 5, 100) if device == "cuda" else ([20] * 4, 5)
    teacher, x, y, d, lam = _dln_task(widths, r)
    rule = 1e-4 * (75 / d) ** 0.25
    print(f"step-size sweep: widths {widths}, rank {r}, d = {d}, λ = {lam:g}, rule ε = {rule:.2e}")
    for factor in (0.5, 1.0, 2.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = estimate_llc(teacher, (x, y), dln.dln_loss, num_chains=100, num_draws=1000, lr=rule * factor,
                               localization=1.0, batch_size=200, seed=0, device=device, check_localization=False,
                               progress=False)
        diag = res.diagnostics
        print(f"  ε = {rule * factor:.2e} ({factor}× rule): λ̂ = {res.mean:.1f} ± {res.stderr:.1f} "
              f"({(res.mean - lam) / lam:+.1%}), MALA {diag['mala_acceptance']:.2f}, {diag['wall_time_s']:.1f} s",
              flush=True)


def long_runs(device: str) -> None:
    """The largest DLNs with ε = 1e-4 (75/d)^{1/2}, 32 chains and long runs: λ̂ per window of draws."""
    from slt_course_utils import dln
    from slt_course_utils.llc import estimate_llc

    on_gpu = device == "cuda"
    sizes = [([100] * 5, 20), ([250] * 5, 50), ([500] * 5, 100)] if on_gpu else [([20] * 4, 5)]
    draws = 16_000 if on_gpu else 800
    windows = [(0, draws // 8), (draws // 8, draws // 4), (draws // 4, draws // 2), (draws // 2, draws)]
    for widths, r in sizes:
        teacher, x, y, d, lam = _dln_task(widths, r)
        lr = 1e-4 * (75 / d) ** 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = estimate_llc(teacher, (x, y), dln.dln_loss, num_chains=32, num_draws=draws, lr=lr, localization=1.0,
                               batch_size=200, seed=0, device=device, check_localization=False, progress=False)
        nbeta, trace = res.hyperparameters["nbeta"], res.loss_trace.double()
        parts = [nbeta * (float(trace[:, a:b].mean()) - res.loss_star) for a, b in windows]
        shown = ", ".join(f"draws {a}-{b}: {(v - lam) / lam:+.1%}" for (a, b), v in zip(windows, parts))
        print(f"d = {d}, λ = {lam:g}, ε = {lr:.2e}, 32 chains × {draws} draws: λ̂ = {res.mean:.1f} ± {res.stderr:.1f} "
              f"({(res.mean - lam) / lam:+.1%}), MALA {res.diagnostics['mala_acceptance']:.2f}, "
              f"{res.diagnostics['wall_time_s']:.1f} s\n    by window: {shown}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parts", nargs="+", default=["ch07", "ch08", "sweep"], choices=["ch07", "ch08", "sweep", "long"])
    parser.add_argument("--force-device", default=None, help="set SLT_DEVICE (e.g. cpu for a smoke test)")
    args = parser.parse_args()
    if args.force_device:
        os.environ["SLT_DEVICE"] = args.force_device
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() and args.force_device in (None, "cuda") else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name})\n", flush=True)
    for part in args.parts:
        start = time.perf_counter()
        if part == "sweep":
            step_size_sweep(device)
        elif part == "long":
            long_runs(device)
        else:
            run_notebook(ROOT / NOTEBOOKS[part], args.out)
        print(f"== {part}: {time.perf_counter() - start:.1f} s wall ==\n", flush=True)


if __name__ == "__main__":
    main()
