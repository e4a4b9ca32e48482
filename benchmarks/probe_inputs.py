"""Probe every public function outside ``llc`` with bad and edge inputs and print what each does.

Usage: ``.venv/bin/python benchmarks/probe_inputs.py [--all]`` from the repository root. The table
of cases and the rule (a bad value → a clear ``ValueError``/``TypeError`` from the package; a NumPy or
0-d torch scalar → accepted; never a NaN result without an error) live in ``tests/input_probe.py``,
which ``tests/test_bad_inputs.py`` runs as a parametrised test. Exit status 1 if any probe breaks the rule.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.input_probe import all_probes, run_probe  # noqa: E402


def main(show_all: bool = False) -> int:
    warnings.simplefilter("ignore")
    counts: Counter[str] = Counter()
    bad = 0
    for probe in all_probes():
        outcome, detail = run_probe(probe)
        good = outcome == probe.should
        counts[outcome] += 1
        bad += not good
        if show_all or not good:
            mark = "ok  " if good else "FAIL"
            print(f"{mark} {probe.id:70s} want {probe.should:5s} got {outcome:8s} {detail[:110]}")
    print(f"\n{sum(counts.values())} probes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f"; {bad} break the rule.")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main("--all" in sys.argv))
