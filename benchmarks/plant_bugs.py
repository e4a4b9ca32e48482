"""Plant plausible bugs one at a time and check that a test fails for each (mutation testing by hand).

Each mutant replaces one exact snippet of a module (a factor of 2, a sign, a log base, a dropped
term, an off-by-one) in a scratch copy of the repository, then runs that module's test files with
``pytest -x`` (fast files first). A mutant that no test kills is a hole in the tests.

Usage, from the repository root (slow: minutes per module on a loaded 2-core machine; not in CI):

    .venv/bin/python benchmarks/plant_bugs.py [--only MODULE ...] [--out benchmarks/plant_bugs_results.md]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    module: str
    what: str
    old: str
    new: str


TESTS = {  # module → test files, fastest first
    "posterior": ["tests/test_posterior.py", "tests/test_fits_exact.py", "tests/test_free_energy_grid.py"],
    "theory": ["tests/test_theory.py"],
    "volume": ["tests/test_volume.py"],
    "free_energy": ["tests/test_fits_exact.py", "tests/test_free_energy.py"],
    "fisher": ["tests/test_fisher.py"],
    "singular": ["tests/test_singular.py"],
    "phase_transitions": ["tests/test_phase_transitions.py"],
    "sampling": ["tests/test_sampling.py", "tests/test_hmc.py"],
    "tms": ["tests/test_tms.py"],
    "dln": ["tests/test_dln.py", "tests/test_theory.py"],
    "models": ["tests/test_models.py"],
}

MUTANTS = [
    # posterior
    Mutant("posterior", "Laplace: log(nβ/π) instead of log(nβ/2π)",
           "0.5 * d * math.log(nb / (2 * math.pi))", "0.5 * d * math.log(nb / math.pi)"),
    Mutant("posterior", "free_energy_grid: + log Δ sign flipped",
           "return -(_checked_logsumexp(log_u).item() + math.log(volume))",
           "return -(_checked_logsumexp(log_u).item() - math.log(volume))"),
    Mutant("posterior", "log_unnormalised_posterior: β dropped",
           "log_prior.double() - n * beta * loss.double()", "log_prior.double() - n * loss.double()"),
    Mutant("posterior", "free_energy_slope: m log log n instead of (m−1)",
           "vals = vals + (multiplicity - 1) * torch.log(logn)", "vals = vals + multiplicity * torch.log(logn)"),
    Mutant("posterior", "free_energy_slope: stderr with k−1 degrees of freedom instead of k−2",
           "(logn.numel() - 2) / sxx)", "(logn.numel() - 1) / sxx)"),
    Mutant("posterior", "bic: d log n instead of (d/2) log n",
           "+ 0.5 * d * math.log(n)", "+ d * math.log(n)"),
    # theory
    Mutant("theory", "RRR case 1 odd: (s − 1)/8 instead of (s + 1)/8",
           "return Fraction(s + 1, 8), 2", "return Fraction(s - 1, 8), 2"),
    Mutant("theory", "RRR case 2: + Hr instead of − Hr",
           "Fraction(H * M - H * r + N * r, 2)", "Fraction(H * M + H * r + N * r, 2)"),
    Mutant("theory", "DLN multiplicity: a(ℓ−a) (dropped + 1)",
           "return lam, a * (ell - a) + 1", "return lam, a * (ell - a)"),
    Mutant("theory", "normal crossing: (h+1)/k instead of (h+1)/2k",
           "Fraction(hj + 1, 2 * kj)", "Fraction(hj + 1, kj)"),
    Mutant("theory", "sum of disjoint: m_f + m_g (off by one)",
           "return la + lb, ma + mb - 1", "return la + lb, ma + mb"),
    # volume
    Mutant("volume", "fit_m: m̂ = coefficient (dropped 1 +)",
           "m_used=1 + beta[2].item() if fit_m", "m_used=beta[2].item() if fit_m"),
    Mutant("volume", "known m: subtract m log(−log ε) (off by one)",
           "(0.0 if fit_m else (m - 1) * log_l)", "(0.0 if fit_m else m * log_l)"),
    Mutant("volume", "lam_se: variance instead of standard error (no √)",
           "se = cov_beta.diagonal().clamp_min(0).sqrt()", "se = cov_beta.diagonal().clamp_min(0)"),
    Mutant("volume", "volume_curve counts K ≤ ε instead of K < ε",
           "torch.searchsorted(torch.sort(k).values, e, right=False)",
           "torch.searchsorted(torch.sort(k).values, e, right=True)"),
    Mutant("volume", "power prior: U^{1/(h+2)} instead of U^{1/(h+1)}",
           "radius * sign * u ** (1 / (h_t + 1))", "radius * sign * u ** (1 / (h_t + 2))"),
    # free_energy
    Mutant("free_energy", "WBIC: β = 1/log₁₀ n", "return 1.0 / math.log(n)", "return 1.0 / math.log10(n)"),
    Mutant("free_energy", "joint fit: m̂ = coefficient (dropped + 1)",
           "m = coef[:, 1] + 1 if multiplicity is None", "m = coef[:, 1] if multiplicity is None"),
    Mutant("free_energy", "known m: + m log log n (off by one)",
           "target = y + (multiplicity - 1) * torch.log(logn)", "target = y + multiplicity * torch.log(logn)"),
    Mutant("free_energy", "across-seed s.e.: sd instead of sd/√S",
           "lam_se = (lam.std() / math.sqrt(y.shape[0])).item()", "lam_se = lam.std().item()"),
    Mutant("free_energy", "WAIC: T_n + 2V_n/n", "pointwise = -log_pred + var", "pointwise = -log_pred + 2 * var"),
    # fisher
    Mutant("fisher", "I_bb: a instead of a²",
           "i_bb = a * a * (ws * xs * xs * sech2 * sech2).sum()", "i_bb = a * (ws * xs * xs * sech2 * sech2).sum()"),
    Mutant("fisher", "Hessian method: sign dropped",
           "return -hessian(lambda v: log_lik(v, *data).mean())(w)", "return hessian(lambda v: log_lik(v, *data).mean())(w)"),
    Mutant("fisher", "Gaussian regression: /σ instead of /σ²",
           "@ grad / model.sigma**2", "@ grad / model.sigma"),
    Mutant("fisher", "logistic: E[σ'(st) t] across instead of E[σ'(st)]",
           "across = (ws * dsig).sum()", "across = (ws * dsig * ts * ts).sum()"),
    # singular
    Mutant("singular", "tanh_loss_grid: /σ²n instead of /2σ²n",
           "return 0.5 * (models.LOG_2PI + 2 * math.log(sigma)) + sq / (2 * sigma**2 * n)",
           "return 0.5 * (models.LOG_2PI + 2 * math.log(sigma)) + sq / (sigma**2 * n)"),
    Mutant("singular", "product_map_rank: + rank_A·rank_B",
           "return N * rank_A + M * rank_B - rank_A * rank_B", "return N * rank_A + M * rank_B + rank_A * rank_B"),
    Mutant("singular", "symmetry count: H!·2^(H−1)",
           "return math.factorial(hidden) * 2**hidden", "return math.factorial(hidden) * 2 ** (hidden - 1)"),
    Mutant("singular", "bic_gap: d log n instead of (d/2) log n",
           "return 0.5 * d * torch.log(ns) - vals", "return d * torch.log(ns) - vals"),
    # phase_transitions
    Mutant("phase_transitions", "critical_n: 2Δλ log n",
           "return loss_gap * math.exp(logn) - lambda_gap * logn", "return loss_gap * math.exp(logn) - 2 * lambda_gap * logn"),
    Mutant("phase_transitions", "posterior_mass: sign of the free-energy gap",
           "return 1.0 / (1.0 + math.exp(min(diff, 700.0)))", "return 1.0 / (1.0 + math.exp(min(-diff, 700.0)))"),
    Mutant("phase_transitions", "two-phase loss: (1+a)²b²/2 instead of /4",
           "return self.h(a) + (1 + a) ** 2 * b * b / 4 + b**4", "return self.h(a) + (1 + a) ** 2 * b * b / 2 + b**4"),
    Mutant("phase_transitions", "gradient descent: half the step",
           "w = (w - lr * grad).detach()", "w = (w - 0.5 * lr * grad).detach()"),
    Mutant("phase_transitions", "simple phase λ: quadratic instead of quartic",
           '{"simple": theory.rlct_homogeneous_radial(2, 2)', '{"simple": theory.rlct_homogeneous_radial(2, 1)'),
    # sampling
    Mutant("sampling", "MH: accept with p(w')²/p(w)²",
           "accept = log_u < (logp_new - logp)", "accept = log_u < 2 * (logp_new - logp)"),
    Mutant("sampling", "HMC: full last momentum step instead of half",
           "(step_size if k < num_leapfrog - 1 else 0.5 * step_size)", "step_size"),
    Mutant("sampling", "ESS: τ = 1 + 2Σ instead of −1 + 2Σ",
           "tau = (-1.0 + 2.0 * (pairs * positive).sum(dim=1))", "tau = (1.0 + 2.0 * (pairs * positive).sum(dim=1))"),
    Mutant("sampling", "HMC: kinetic energy ‖p‖² instead of ‖p‖²/2",
           "h_new = -lp_q + 0.5 * (p * p).sum(-1)", "h_new = -lp_q + (p * p).sum(-1)"),
    # tms
    Mutant("tms", "population loss: /2c instead of /c",
           "return (active + inactive).sum((-1, -2)) / c", "return (active + inactive).sum((-1, -2)) / (2 * c)"),
    Mutant("tms", "flat dimension: dropped the rotation (+1)",
           "return 1 + 3 * (c - k - positive_biases)", "return 3 * (c - k - positive_biases)"),
    Mutant("tms", "tms_loss: mean over outputs instead of sum",
           "return (pred - target).pow(2).sum(-1).mean(-1)", "return (pred - target).pow(2).mean(-1).mean(-1)"),
    Mutant("tms", "positive dead bias 1/c instead of 1/(2c)",
           "b[k : k + positive_biases] = 1.0 / (2 * c)", "b[k : k + positive_biases] = 1.0 / c"),
    Mutant("tms", "high-sparsity data: μ² instead of μ ~ U[0, 1]",
           "x.scatter_(-1, idx.unsqueeze(-1), mu.unsqueeze(-1))", "x.scatter_(-1, idx.unsqueeze(-1), mu.unsqueeze(-1) ** 2)"),
    # dln
    Mutant("dln", "dln_loss: dropped the ½", "return 0.5 * (pred - target).pow(2).sum(-1).mean()",
           "return (pred - target).pow(2).sum(-1).mean()"),
    Mutant("dln", "exact_llc returns m instead of λ",
           "return rlct_deep_linear_network(_check_widths(widths), true_rank)[0]",
           "return rlct_deep_linear_network(_check_widths(widths), true_rank)[1]"),
    Mutant("dln", "data: x ~ U[0, a] instead of U[−a, a]",
           "x = (2 * torch.rand(n, h1, generator=generator, dtype=first.dtype) - 1) * input_range",
           "x = torch.rand(n, h1, generator=generator, dtype=first.dtype) * input_range"),
    # models
    Mutant("models", "Gaussian mean loss: /σ² instead of /2σ²",
           "(m2 - 2 * w * m1 + w * w) / (2 * sigma**2)", "(m2 - 2 * w * m1 + w * w) / sigma**2"),
    Mutant("models", "conjugate F_n: dropped log s0² in ½ log(s0² a)",
           "+ 0.5 * math.log(v0 * a)", "+ 0.5 * math.log(a)"),
    Mutant("models", "KL of Gaussians: + 1 instead of − 1",
           "(var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)", "(var_q + (mean_q - mean_p) ** 2) / var_p + 1.0)"),
    Mutant("models", "sufficient statistics: −g·c instead of −2g·c",
           "(stats.yy - 2 * (g @ stats.cross) + quad)", "(stats.yy - (g @ stats.cross) + quad)"),
    Mutant("models", "RRR KL: /σ² instead of /2σ²",
           "return (D * D).sum((-1, -2)) / (2 * self.sigma**2)", "return (D * D).sum((-1, -2)) / self.sigma**2"),
    Mutant("models", "population loss: dropped the ½ (entropy term)",
           "return 0.5 * (LOG_2PI + 2 * math.log(self.sigma)) + 0.5 + self.kl(w, w0)",
           "return 0.5 * (LOG_2PI + 2 * math.log(self.sigma)) + self.kl(w, w0)"),
]


def run_mutant(mutant: Mutant, scratch: Path) -> tuple[str, str, float]:
    """(killed-by test id or 'SURVIVED', pytest's last line, seconds)."""
    src = REPO / "slt_course_utils" / f"{mutant.module}.py"
    if mutant.module == "dln" and mutant.old not in src.read_text(encoding="utf-8"):
        src = REPO / "slt_course_utils" / "theory.py"
    text = src.read_text(encoding="utf-8")
    if text.count(mutant.old) != 1:
        return "NOT APPLIED", f"snippet found {text.count(mutant.old)} times in {src.name}", 0.0
    shutil.rmtree(scratch / "slt_course_utils")
    shutil.copytree(REPO / "slt_course_utils", scratch / "slt_course_utils")
    (scratch / "slt_course_utils" / src.name).write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-W", "ignore",
           *TESTS[mutant.module]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True,
                          env={"PYTHONPATH": str(scratch), "PATH": "/usr/bin:/bin", "SLT_PROGRESS": "0",
                               "HOME": str(scratch)}, check=False)
    seconds = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    failed = [ln.split(" ", 1)[1].split(" - ")[0] for ln in lines if ln.startswith("FAILED ")]
    return (failed[0] if failed else "SURVIVED"), (lines[-1] if lines else proc.stderr[-200:]), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="modules to mutate (default: all)")
    parser.add_argument("--out", default=None, help="write the table as Markdown here")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.only is None or m.module in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for name in ("tests", "slt_course_utils"):
            shutil.copytree(REPO / name, scratch / name)
        shutil.copy(REPO / "pyproject.toml", scratch / "pyproject.toml")
        for m in chosen:
            killer, last, seconds = run_mutant(m, scratch)
            rows.append((m, killer, last, seconds))
            print(f"{m.module:18s} {m.what:60s} -> {killer}  ({seconds:.0f} s)", flush=True)
    table = ["| module | planted bug | caught by |", "|---|---|---|"]
    table += [f"| {m.module} | {m.what} | {killer} |" for m, killer, _, _ in rows]
    survived = sum(k in ("SURVIVED", "NOT APPLIED") for _, k, _, _ in rows)
    table.append(f"\n{len(rows) - survived} of {len(rows)} planted bugs make a test fail.")
    if args.out:
        Path(args.out).write_text("\n".join(table) + "\n", encoding="utf-8")
    print("\n".join(table))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
