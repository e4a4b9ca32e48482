"""Every chapter through the grader's wire: its solution scores full marks, its exercise notebook 0.

The checks run in the grader on what the student process returns (docs/INSTRUCTORS.md), so every
check of every chapter must work that way: arguments pickled to the student process (lambdas by
value, generators by state), results back as plain data. To keep it quick each notebook is cut down
to its set-up, its imports, its solution (or stub) cells and its check cells — the demo cells,
which take most of a notebook's time, are left out.
"""

from __future__ import annotations

import ast

import nbformat

from slt_course_utils import grade

from .conftest import EXERCISES, SOLUTIONS, notebooks


def _only_imports(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(node, ast.Import | ast.ImportFrom) for node in body)


def _cut(path, folder):
    nb = nbformat.read(path, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.metadata.get("nbgrader"))
    keep = [c for i, c in enumerate(nb.cells) if c.cell_type == "code" and (
        i < first or c.metadata.get("nbgrader", {}).get("solution") or c.metadata.get("nbgrader", {}).get("grade")
        or _only_imports(c.source))]
    nb.cells = keep
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / path.name)


def test_every_chapter_passes_solved_and_fails_unsolved(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    names = [p.stem for p in notebooks(SOLUTIONS)]
    assert names == sorted(chapters) and len(names) >= 9
    for name in names:
        _cut(SOLUTIONS / f"{name}.ipynb", tmp_path / "solved" / name)
        _cut(EXERCISES / f"{name}.ipynb", tmp_path / "unsolved" / name)
    subs = grade.collect_submissions([tmp_path / "solved", tmp_path / "unsolved"], chapters)
    opts = grade.Options(cell_timeout=300, total_timeout=900, unsafe=grade.sandbox.sandbox_problem(grade.package_snapshot()) is not None)
    results = grade.grade_all(subs, chapters, opts, jobs=2, show_progress=False)
    report = {(res.path.split("/")[-3], res.chapter): (res.points, res.max_points, [r.message for r in res.rows if not r.passed])
              for res in results}
    for name in names:
        points, max_points, failed = report[("solved", name)]
        assert points == max_points == chapters[name].max_points > 0, (name, failed)
        points, _, failed = report[("unsolved", name)]
        assert points == 0 and all("not implemented yet" in m for m in failed), (name, failed)
