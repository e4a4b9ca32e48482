"""The instructors' autograder (python -m slt_course_utils.grade) on a class of crafted submissions.

One run grades a whole class of chapter-00 notebooks — good ones and every kind of broken one
— in kernels, two at a time; the gradebook must be exactly the expected rows.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from slt_course_utils import grade

from .conftest import EXERCISES, REPO, SOLUTIONS

CH = "00_bayesian_learning"
EXERCISE_IDS = [f"ch00-ex{k}-check" for k in range(1, 8)]
POINTS = dict.fromkeys(EXERCISE_IDS, 1.0) | {"ch00-ex7-check": 2.0}
CELL_TIMEOUT = 60  # the slowest solution cell takes ~3 s alone, ~6 s with both cores busy, and a 2-core
# machine shared by several test runs is several times slower again: 60 s is 10× the busy figure. Only the
# infinite-loop submission waits this long.


def _read(folder):
    return nbformat.read(folder / f"{CH}.ipynb", as_version=4)


def _solution_cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _insert_after(nb, grade_id, source):
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    nb.cells.insert(index + 1, new_code_cell(source))
    return nb


def _fake_chapter_01() -> nbformat.NotebookNode:
    """A tiny 'chapter 01' solution notebook, so that a wrong-chapter submission can be recognised."""
    solution = new_code_cell("def rlct_of_line(d):\n    ### BEGIN SOLUTION\n    return d / 2\n    ### END SOLUTION")
    solution.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "ch01-ex1-solution",
                                     "locked": False, "schema_version": 3, "task": False}
    check = new_code_cell("from slt_course_utils.checks import ch01\n\nch01.check_rlct_of_line(rlct_of_line)")
    check.metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": "ch01-ex1-check", "points": 3,
                                  "locked": True, "schema_version": 3, "task": False}
    return new_notebook(cells=[new_markdown_cell("# 01 fake"), solution, check])


@pytest.fixture(scope="module")
def solutions_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solutions")
    shutil.copy(SOLUTIONS / f"{CH}.ipynb", folder)
    nbformat.write(_fake_chapter_01(), folder / "01_fake_chapter.ipynb")
    return folder


def _class(root, solutions_dir):
    """The class: {student: expected {grade_id: passed}}; notebooks written under root/<student>/."""
    sol, ex = _read(SOLUTIONS), _read(EXERCISES)
    expected = {}

    def hand_in(student, nb_or_bytes, passed, name=f"{CH}.ipynb"):
        folder = root / student
        folder.mkdir(parents=True)
        if isinstance(nb_or_bytes, bytes):
            (folder / name).write_bytes(nb_or_bytes)
        else:
            nbformat.write(nb_or_bytes, folder / name)
        expected[student] = {g: (g in passed) for g in EXERCISE_IDS}

    all_ = set(EXERCISE_IDS)
    hand_in("good", sol, all_)
    hand_in("unsolved", ex, set())

    nb = copy.deepcopy(sol)
    _solution_cell(nb, "ch00-ex1-solution").source = "def empirical_loss(w, x)\n    return w"
    hand_in("syntax_error", nb, all_ - {"ch00-ex1-check"})

    nb = copy.deepcopy(sol)
    cell = _solution_cell(nb, "ch00-ex1-solution")
    cell.source = cell.source.replace("def empirical_loss(", "def emp_loss(")
    hand_in("renamed", nb, all_ - {"ch00-ex1-check"})

    # An infinite loop that even swallows KeyboardInterrupt: only a restart stops it.
    # And a function that hangs inside its check: that check fails, the next ones still run.
    nb = _insert_after(copy.deepcopy(sol), "ch00-ex2-check",
                       "while True:\n    try:\n        pass\n    except KeyboardInterrupt:\n        pass")
    _solution_cell(nb, "ch00-ex5-solution").source = "def predictive_density(x_new, w_grid, log_post, dw):\n    while True:\n        pass"
    hand_in("infinite_loop", nb, all_ - {"ch00-ex5-check"})

    # os._exit in a cell; a segfault inside a check.
    nb = _insert_after(copy.deepcopy(sol), "ch00-ex3-check", "import os\nos._exit(1)")
    _solution_cell(nb, "ch00-ex4-solution").source = (
        "def conjugate_posterior(x, prior_mean, prior_std, beta):\n    import ctypes\n    ctypes.string_at(0)")
    hand_in("kernel_death", nb, all_ - {"ch00-ex4-check"})

    # Touches 4 GB at most, so a broken limit can't take the machine down.
    nb = _insert_after(copy.deepcopy(sol), "ch00-ex4-check",
                       "hog = []\nfor _ in range(80):\n    hog.append(b'x' * 50_000_000)")
    hand_in("memory_hog", nb, all_)

    # Unsolved, but every check cell replaced by a fake success (points raised, too), and the
    # check module monkeypatched: none of it counts.
    nb = copy.deepcopy(ex)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cell.source = 'print("✔ passed")'
            meta["points"] = 100
    nb.cells.insert(2, new_code_cell(
        "from slt_course_utils.checks import ch00\n"
        "for _name in dir(ch00):\n"
        "    if _name.startswith('check_'):\n"
        "        setattr(ch00, _name, lambda f: print('✔ passed'))"))
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "ch00-ex7-check"]
    hand_in("cheater", nb, set())

    nb = _fake_chapter_01()
    _solution_cell(nb, "ch01-ex1-solution").source = "def rlct_of_line(d):\n    return d / 2"
    hand_in("wrong_chapter", nb, set())

    hand_in("invalid_json", b'{"cells": [', set())
    hand_in("empty", b"", set())
    return expected


@pytest.fixture(scope="module")
def graded(tmp_path_factory, solutions_dir):
    root = tmp_path_factory.mktemp("class")
    expected = _class(root / "submitted", solutions_dir)
    out = root / "out"
    cmd = [sys.executable, "-m", "slt_course_utils.grade", str(root / "submitted"), "--out", str(out),
           "--solutions", str(solutions_dir), "--jobs", "2", "--cell-timeout", str(CELL_TIMEOUT),
           "--total-timeout", "300", "--memory-limit-mb", "1024"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "SLT_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    return expected, rows, out, proc.stdout


def test_gradebook_is_exactly_the_expected_rows(graded):
    expected, rows, _, stdout = graded
    got = {(r["student"], r["exercise"]): (r["passed"], r["points"], r["max_points"]) for r in rows}
    want = {(student, g): (ok, POINTS[g] if ok else 0.0, POINTS[g])
            for student, exercises in expected.items() for g, ok in exercises.items()}
    assert got == want, stdout
    assert len(rows) == len(want)
    assert {r["chapter"] for r in rows} == {CH}


def test_csv_matches_json(graded):
    _, rows, out, _ = graded
    with open(out / "gradebook.csv", encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert list(csv_rows[0]) == grade.FIELDS
    assert [(r["student"], r["exercise"], r["passed"]) for r in csv_rows] == \
        [(r["student"], r["exercise"], str(r["passed"])) for r in rows]


def _messages(rows, student):
    return {r["exercise"]: r["message"] for r in rows if r["student"] == student}


def test_messages_say_what_went_wrong(graded):
    _, rows, out, stdout = graded
    assert all("not implemented yet" in m for m in _messages(rows, "unsolved").values())
    assert all("not implemented yet" in m for m in _messages(rows, "cheater").values())
    assert "empirical_loss is not defined" in _messages(rows, "renamed")["ch00-ex1-check"]
    assert "empirical_loss is not defined" in _messages(rows, "syntax_error")["ch00-ex1-check"]
    assert all("invalid JSON" in m for m in _messages(rows, "invalid_json").values())
    assert all("empty" in m for m in _messages(rows, "empty").values())
    assert all("wrong chapter (01_fake_chapter, expected 00_bayesian_learning)" in m
               for m in _messages(rows, "wrong_chapter").values())
    assert _messages(rows, "good")["ch00-ex1-check"].startswith("✔ check_empirical_loss passed")

    issues = {}
    with open(out / "issues.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            issues.setdefault(row["student"], []).append(row["issue"])
    joined = {k: "\n".join(v) for k, v in issues.items()}
    assert "SyntaxError" in joined["syntax_error"]
    assert f"timed out after {CELL_TIMEOUT} s" in joined["infinite_loop"]
    assert "restarted 2 time(s)" in joined["infinite_loop"]
    assert _messages(rows, "infinite_loop")["ch00-ex5-check"].startswith(f"the check timed out after {CELL_TIMEOUT} s")
    assert "the kernel died" in joined["kernel_death"]
    assert "restarted 2 time(s)" in joined["kernel_death"]
    assert _messages(rows, "kernel_death")["ch00-ex4-check"].startswith("the kernel died")
    assert "[killed by signal SIGSEGV]" in _messages(rows, "kernel_death")["ch00-ex4-check"]
    assert "[exit status 1]" in joined["kernel_death"]
    assert "ran out of memory (MemoryError; the limit is 1024 MB)" in joined["memory_hog"]
    assert "wrong chapter: this notebook is 01_fake_chapter" in joined["wrong_chapter"]
    assert "good" not in issues
    for student in ("infinite_loop", "kernel_death", "memory_hog", "invalid_json", "empty"):
        assert student in stdout


def test_feedback_files(graded):
    expected, _, out, _ = graded
    assert sorted(p.stem for p in (out / "feedback").glob("*.md")) == sorted(expected)
    text = (out / "feedback" / "renamed.md").read_text(encoding="utf-8")
    assert "7 / 8 points" in text and "empirical_loss is not defined" in text
    assert "8 / 8 points" in (out / "feedback" / "good.md").read_text(encoding="utf-8")
    assert "timed out" in (out / "feedback" / "infinite_loop.md").read_text(encoding="utf-8")


# ---- no kernels below: discovery, chapters, names ----------------------------------------


def test_exercises_come_from_the_solution_notebook():
    chapter = grade.load_chapters(SOLUTIONS)[CH]
    assert [e.grade_id for e in chapter.exercises] == EXERCISE_IDS
    assert {e.grade_id: e.points for e in chapter.exercises} == POINTS
    assert chapter.check_imports == ["from slt_course_utils.checks import ch00"]
    assert "empirical_loss" in chapter.function_names
    assert chapter.max_points == 8


def test_chapter_detection(tmp_path, solutions_dir):
    chapters = grade.load_chapters(solutions_dir)
    sol = _read(SOLUTIONS)
    assert grade.chapter_from_name(tmp_path / "alice_00_bayesian_learning.ipynb", chapters) == CH
    assert grade.chapter_from_name(tmp_path / "alice.ipynb", chapters) is None
    assert grade.chapter_from_content(sol, chapters) == CH
    bare = copy.deepcopy(sol)  # metadata stripped and check cells deleted: function names still tell
    bare.cells = [new_code_cell(c.source) for c in bare.cells if c.cell_type == "code" and "check_" not in c.source]
    assert grade.chapter_from_content(bare, chapters) == CH
    assert grade.chapter_from_content(_fake_chapter_01(), chapters) == "01_fake_chapter"
    assert grade.chapter_from_content(new_notebook(cells=[new_code_cell("1 + 1")]), chapters) is None


def test_check_cells_are_recognised():
    assert grade.is_check_cell(new_code_cell("ch00.check_free_energy(free_energy)"))
    assert grade.is_check_cell(new_code_cell("x = 1", metadata={"nbgrader": {"grade": True}}))
    assert not grade.is_check_cell(new_code_cell("def check_mine(x):\n    return x"))
    assert not grade.is_check_cell(new_code_cell("def free_energy(x):\n    return x"))


def test_collect_both_layouts(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    (tmp_path / "flat").mkdir()
    for name in ("alice.ipynb", "bob.ipynb"):
        (tmp_path / "flat" / name).write_text("{}")
    for student in ("carol", "dave"):
        (tmp_path / "nested" / student).mkdir(parents=True)
        (tmp_path / "nested" / student / f"{CH}.ipynb").write_text("{}")
    (tmp_path / "nested" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "nested" / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")
    subs = grade.collect_submissions([tmp_path / "flat", tmp_path / "nested"], chapters)
    assert [s.student for s in subs] == ["alice", "bob", "carol", "dave"]
    single = grade.collect_submissions([tmp_path / "nested" / "carol" / f"{CH}.ipynb"], chapters)
    assert [s.student for s in single] == ["carol"]


def test_unreadable_notebooks_need_no_kernel(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    (tmp_path / "x").mkdir()
    bad = tmp_path / "x" / f"{CH}.ipynb"
    bad.write_text('{"nbformat": 4}')
    res = grade.grade_submission(grade.Submission("x", bad), chapters, grade.Options())
    assert [r.passed for r in res.rows] == [False] * 7
    assert "not a valid notebook" in res.rows[0].message
    lost = tmp_path / "who.ipynb"
    lost.write_text("")
    res = grade.grade_submission(grade.Submission("who", lost), chapters, grade.Options())
    assert res.chapter == "?" and "--chapter" in res.rows[0].message


def test_cli_usage_errors(tmp_path):
    assert grade.main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert grade.main([str(tmp_path), "--out", str(tmp_path / "o"), "--chapter", "99"]) == 2


def test_total_timeout_and_chapter_override(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    nb = new_notebook(cells=[new_code_cell("import time\ntime.sleep(3600)")])
    path = tmp_path / "zoe.ipynb"
    nbformat.write(nb, path)
    opts = grade.Options(chapter=CH, cell_timeout=60, total_timeout=10)
    res = grade.grade_submission(grade.Submission("zoe", path), chapters, opts)
    # The cell sleeps an hour: finishing in less than 15 minutes (however loaded the machine) proves the
    # 10 s total limit cut it off; the messages below say which limit did.
    assert res.chapter == CH and res.runtime_s < 900
    assert [r.exercise for r in res.rows] == EXERCISE_IDS
    assert all(not r.passed and "total time limit of 10 s" in r.message for r in res.rows)
    assert any("timed out" in i or "total time limit" in i for i in res.issues)
    # the sleeping cell hit the total limit: there was no time to restart, and the report says so
    assert not any("the kernel was restarted" in i for i in res.issues), res.issues
    assert any("no time was left to restart the kernel" in i for i in res.issues), res.issues


def test_a_new_chapter_is_discovered_and_hidden_tests_count(tmp_path):
    """Any solutions/NN_slug.ipynb is a chapter; its check cells' hidden tests run too."""
    def cell(source, **nbgrader):
        return new_code_cell(source, metadata={"nbgrader": {"schema_version": 3, **nbgrader}})

    solution = new_notebook(cells=[
        cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
             solution=True, grade=False, grade_id="ch42-ex1-solution"),
        cell("assert double(1) == 2\n### BEGIN HIDDEN TESTS\nassert double(-3) == -6\n### END HIDDEN TESTS",
             solution=False, grade=True, grade_id="ch42-ex1-check", points=2),
        cell("def half(x):\n    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION",
             solution=True, grade=False, grade_id="ch42-ex2-solution"),
        cell("assert half(4) == 2\n### BEGIN HIDDEN TESTS\nassert half(1) == 0.5\n### END HIDDEN TESTS",
             solution=False, grade=True, grade_id="ch42-ex2-check", points=1),
    ])
    (tmp_path / "solutions").mkdir()
    nbformat.write(solution, tmp_path / "solutions" / "42_tiny.ipynb")
    chapters = grade.load_chapters(tmp_path / "solutions")
    assert chapters["42_tiny"].check_imports == []
    student = new_notebook(cells=[
        new_code_cell("def double(x):\n    return x + x"),
        new_code_cell("def half(x):\n    return x // 2  # passes the visible test only"),
        new_code_cell("assert True  # the student's copy of a check: ignored"),
    ])
    nbformat.write(student, tmp_path / "ivy.ipynb")
    res = grade.grade_submission(grade.Submission("ivy", tmp_path / "ivy.ipynb"), chapters, grade.Options())
    assert res.chapter == "42_tiny" and res.issues == []
    assert [(r.exercise, r.passed, r.points) for r in res.rows] == [("ch42-ex1-check", True, 2.0), ("ch42-ex2-check", False, 0.0)]
    assert "hidden test" in res.rows[1].message
