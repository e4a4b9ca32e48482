"""The nbgrader route (docs/INSTRUCTORS.md): generate_assignment + autograde + export on one chapter.

Optional: runs only where nbgrader is installed (``pip install nbgrader``; it is not one of the
course's pins). The solution notebook's nbgrader metadata must be enough for nbgrader to release the
exercises we generate, and to give the solution full marks and the release zero.

Chapter 07, the chapter of the run by hand. Chapters 00–05's Markdown "Your derivation" cells carry
nbgrader metadata as manually graded answers with 0 points (generate_assignment rejects a solution
region in a cell without it); an instructor who wants them to count sets their points.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from slt_course_utils import grade

from .conftest import EXERCISES, SOLUTIONS

pytest.importorskip("nbgrader")

CH = "07_toy_models_of_superposition"
ASSIGNMENT = "ps07"


def _nbgrader(course: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_generate_assignment_autograde_and_export(tmp_path):
    course = tmp_path / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOLUTIONS / f"{CH}.ipynb", course / "source" / ASSIGNMENT)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'slt'\nc.ExecutePreprocessor.timeout = 600\n")
    # nbgrader calls alembic by name (so this interpreter's bin/ goes first on PATH), and runs the
    # notebooks in the kernel named in them: "python3", here this interpreter with the course package.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (SLT Course)", "language": "python"}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_PATH": str(tmp_path / "jupyter"), "SLT_PROGRESS": "0", "MPLBACKEND": "Agg",
           "PYTHONPATH": str(SOLUTIONS.parent)}

    _nbgrader(course, env, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{CH}.ipynb", as_version=4)
    ours = nbformat.read(EXERCISES / f"{CH}.ipynb", as_version=4)
    assert len(_code(release)) == len(_code(ours))
    solution_ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in ours.cells
                    if c.metadata.get("nbgrader", {}).get("solution")}
    for theirs, mine in zip(release.cells, ours.cells, strict=False):
        if theirs.cell_type == "code" and theirs.metadata.get("nbgrader", {}).get("grade_id") not in solution_ids:
            assert theirs.source == mine.source  # only the stubs' wording differs

    for student, source in (("solved", SOLUTIONS / f"{CH}.ipynb"), ("unsolved", course / "release" / ASSIGNMENT / f"{CH}.ipynb")):
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copy(source, folder / f"{CH}.ipynb")
    _nbgrader(course, env, "autograde", ASSIGNMENT, "--create", "--force")
    _nbgrader(course, env, "export", "--to", str(tmp_path / "grades.csv"))
    with open(tmp_path / "grades.csv", encoding="utf-8") as f:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}
    points = grade.load_chapters(SOLUTIONS)[CH].max_points  # from the solution's check-cell metadata (6)
    assert points > 0 and scores == {"solved": (points, points), "unsolved": (0.0, points)}
