"""How long does grading a class take? 30 chapter-00 submissions, graded with --jobs 2.

    python benchmarks/grade_30.py [--n 30] [--jobs 2] [--keep DIR] [--unsafe]

The class: copies of the solution and of the handed-out exercise notebook with small variations
— partly solved (k of the 7 solutions pasted in), one wrong answer, extra scratch cells, a
renamed file — in the one-folder-per-student layout. Prints the grader's summary and the wall
time of the whole command (the number to quote), and checks every score is the one expected.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

REPO = Path(__file__).resolve().parent.parent
CH = "00_bayesian_learning"
POINTS = {f"ch00-ex{k}-solution": (2 if k == 7 else 1) for k in range(1, 8)}


def _solution_sources() -> dict[str, str]:
    sol = nbformat.read(REPO / "solutions" / f"{CH}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in sol.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def make_class(root: Path, n: int) -> dict[str, float]:
    """Write n submissions under root/<student>/; return each student's expected points."""
    exercise = nbformat.read(REPO / "exercises" / f"{CH}.ipynb", as_version=4)
    solutions = _solution_sources()
    ids = list(POINTS)
    expected = {}
    for i in range(n):
        nb = copy.deepcopy(exercise)
        solved = ids[: (i % 8)] if i % 3 else ids  # every third student solves everything
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in solved:
                cell.source = solutions[gid]
        score = sum(POINTS[g] for g in solved)
        if i % 5 == 4 and "ch00-ex6-solution" in solved:  # KL the wrong way round
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "ch00-ex6-solution":
                    cell.source = ("def generalisation_error(w0, mu_n, v_n):\n    s2 = 1.0 + v_n\n"
                                   "    return 0.5 * math.log(1 / s2) + (s2 + (w0 - mu_n) ** 2) / 2 - 0.5")
            score -= POINTS["ch00-ex6-solution"]
        if i % 4 == 1:  # scratch work left in
            nb.cells.insert(3, new_code_cell(f"scratch = [k**2 for k in range({1000 * i})]\nprint(len(scratch))"))
        student = f"student{i:02d}"
        name = f"{CH}.ipynb" if i % 7 else f"{CH} (copy {i}).ipynb"
        (root / student).mkdir(parents=True)
        nbformat.write(nb, root / student / name)
        expected[student] = float(score)
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="write the class and the gradebook here (default: a temp folder)")
    parser.add_argument("--unsafe", action="store_true", help="grade without the bubblewrap sandbox (to measure its cost)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        expected = make_class(root / "submitted", args.n)
        env = {**os.environ, "PYTHONPATH": str(REPO), "SLT_PROGRESS": os.environ.get("SLT_PROGRESS", "1")}
        cmd = [sys.executable, "-m", "slt_course_utils.grade", str(root / "submitted"),
               "--out", str(root / "out"), "--jobs", str(args.jobs)] + (["--unsafe"] if args.unsafe else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE)
        wall = time.perf_counter() - start
        print(proc.stdout)
        rows = json.loads((root / "out" / "gradebook.json").read_text(encoding="utf-8"))
        got: dict[str, float] = {}
        for row in rows:
            got[row["student"]] = got.get(row["student"], 0.0) + row["points"]
        wrong = {s: (got.get(s), p) for s, p in expected.items() if got.get(s) != p}
        print(f"{args.n} submissions, --jobs {args.jobs}{' --unsafe' if args.unsafe else ''}: {wall:.1f} s wall "
              f"({wall / args.n:.1f} s per notebook); load average now {os.getloadavg()[0]:.1f}")
        if wrong:
            print(f"UNEXPECTED scores (got, expected): {wrong}")
            return 1
        print("every score as expected")
        return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
