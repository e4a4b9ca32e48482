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
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from slt_course_utils import grade

from .conftest import EXERCISES, REPO, SOLUTIONS

CH = "00_bayesian_learning"
EXERCISE_IDS = [f"ch00-ex{k}-check" for k in range(1, 9)]
POINTS = dict.fromkeys(EXERCISE_IDS, 1.0) | {"ch00-ex7-check": 2.0, "ch00-ex8-check": 3.0}
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


VICTIM = "good"
PROC_MARKER = "slt-grade-test-detached-7f3a"


def _unsolved_with(ex, *cells):
    """The unsolved exercise notebook with ``cells`` inserted after its setup cell (a forgery scores 0)."""
    nb = copy.deepcopy(ex)
    for k, source in enumerate(cells):
        nb.cells.insert(3 + k, new_code_cell(source))
    return nb


FAKE_PACKAGE = r"""
import os, sys
root = '/tmp/fake_pkg/slt_course_utils/checks'
os.makedirs(root, exist_ok=True)
open('/tmp/fake_pkg/slt_course_utils/__init__.py', 'w').write('')
open(root + '/__init__.py', 'w').write('')
open(root + '/ch00.py', 'w').write("def __getattr__(name):\n    return lambda *a, **k: print('✔ ' + name + ' passed')\n")
sys.path.insert(0, '/tmp/fake_pkg')
for m in [m for m in sys.modules if m.startswith('slt_course_utils')]:
    del sys.modules[m]
import slt_course_utils.checks.ch00 as ch00
"""

READ_SOLUTIONS = """
import json, pathlib, slt_course_utils
root = pathlib.Path(slt_course_utils.__file__).resolve().parents[1]
nb = json.loads((root / 'solutions' / '00_bayesian_learning.ipynb').read_text())
for cell in nb['cells']:
    if cell.get('metadata', {}).get('nbgrader', {}).get('solution'):
        exec(''.join(cell['source']), globals())
"""

PATCH_NUMPY = """
import numpy, torch
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda a, b, *r, **k: numpy.ones(numpy.shape(a), bool)
numpy.all = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
import slt_course_utils.checks._core as core
core.assert_close = lambda *a, **k: None
"""

ALWAYS_EQUAL = """
import numpy
class Yes(float):
    def __eq__(self, other): return True
class YesArray(numpy.ndarray):
    def __eq__(self, other): return True
def empirical_loss(w, x): return Yes(1.0)
def log_posterior_on_grid(*a): return numpy.zeros(401).view(YesArray)
def free_energy(*a): return Yes(0.0)
def conjugate_posterior(*a): return (Yes(0.0), Yes(0.0))
def generalisation_error(*a): return Yes(0.0)
def predictive_density(*a): return object()
def metropolis_hastings_1d(*a): return Yes(0.0)
"""


def _harm_cells(victim, solutions_dir, out):
    """Cells that try to hurt other students or the grader (each in its own cell, so each is tried)."""
    check_file = REPO / "slt_course_utils" / "checks" / "ch00.py"
    writer = f"import time; time.sleep(4); open({str(out / 'gradebook.csv')!r}, 'w').write('forged')"
    return [
        "import os\nraise RuntimeError('saw ' + open(f'/proc/{os.getppid()}/cmdline').read().replace(chr(0), ' '))",
        f"open({str(victim)!r}, 'w').write('{{}}')",
        f"import os\nfor f in os.listdir({str(solutions_dir)!r}):\n    open(os.path.join({str(solutions_dir)!r}, f), 'w').write('{{}}')",
        "import slt_course_utils.checks.ch00 as m\nopen(m.__file__, 'a').write('raise SystemExit')",
        f"open({str(check_file)!r}, 'a').write('raise SystemExit')",
        # a detached grandchild that would outlive its parent and rewrite the gradebook later
        f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {writer!r}, {PROC_MARKER!r}], start_new_session=True)",
        "import os\nif os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(30)\n    os._exit(0)",
        "import socket\nsocket.create_connection(('pypi.org', 443), timeout=3)",
    ]


def _lean(nb):
    """The notebook without its demo cells (the set-up, the exercises and the checks stay): quicker."""
    first = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader"))
    nb.cells = [c for i, c in enumerate(nb.cells) if i < first or c.metadata.get("nbgrader")]
    return nb


def _class(root, solutions_dir, out):
    """The class: {student: expected {grade_id: passed}}; notebooks written under root/<student>/."""
    sol, ex = _lean(_read(SOLUTIONS)), _read(EXERCISES)
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
    hand_in(VICTIM, sol, all_)
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

    # A segfault in a cell; a segfault inside a check.
    nb = _insert_after(copy.deepcopy(sol), "ch00-ex3-check", "import ctypes\nctypes.string_at(0)")
    _solution_cell(nb, "ch00-ex4-solution").source = (
        "def conjugate_posterior(x, prior_mean, prior_std, beta):\n    import ctypes\n    ctypes.string_at(0)")
    hand_in("kernel_death", nb, all_ - {"ch00-ex4-check"})

    # Touches 4 GB at most, so a broken limit can't take the machine down; and a 3 GB shared
    # mapping, which RLIMIT_DATA did not count.
    nb = _insert_after(copy.deepcopy(sol), "ch00-ex4-check",
                       "hog = []\nfor _ in range(80):\n    hog.append(b'x' * 50_000_000)")
    nb = _insert_after(nb, "ch00-ex5-check",
                       "import mmap\nshared = mmap.mmap(-1, 3 * 1024**3, flags=mmap.MAP_SHARED)\n"
                       "for i in range(0, len(shared), 4096):\n    shared[i] = 1")
    hand_in("memory_hog", nb, all_)

    # Honest work that exits: exit(), quit(), sys.exit, os._exit each in a cell of their own; a
    # solution cell that ends with its own check call; one that names the check in a comment; one
    # whose metadata says "grade" but that defines the function. Full marks, each exit blamed.
    nb = _insert_after(copy.deepcopy(sol), "ch00-ex1-check", "exit()")
    nb = _insert_after(nb, "ch00-ex2-check", "quit()")
    nb = _insert_after(nb, "ch00-ex3-check", "import sys\nsys.exit(3)")
    nb = _insert_after(nb, "ch00-ex6-check", "import os\nos._exit(0)")
    cell = _solution_cell(nb, "ch00-ex4-solution")
    cell.source += "\n\nch00.check_conjugate_posterior(conjugate_posterior)"
    cell = _solution_cell(nb, "ch00-ex5-solution")
    cell.source = "# ch00.check_predictive_density(predictive_density) is the check\n" + cell.source
    cell = _solution_cell(nb, "ch00-ex6-solution")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "mine", "points": 0}
    hand_in("exits", nb, all_)

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

    # The forgeries of issue 15, on the unsolved notebook: each must score 0.
    hand_in("forge_custom_exc", _unsolved_with(
        ex, "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
        "import sys, builtins\nsys.excepthook = lambda *a: None\nbuiltins.AssertionError = type('X', (Exception,), {})"),
        set())
    hand_in("forge_transformer", _unsolved_with(
        ex, "get_ipython().input_transformers_cleanup.append(\n"
            "    lambda lines: ['pass\\n' if 'check_' in line else line for line in lines])"), set())
    hand_in("forge_fake_package", _unsolved_with(ex, FAKE_PACKAGE), set())
    hand_in("forge_read_solutions", _unsolved_with(ex, READ_SOLUTIONS), set())
    hand_in("forge_patch_numpy", _unsolved_with(ex, PATCH_NUMPY), set())
    nb = copy.deepcopy(ex)
    nb.cells.append(new_code_cell(ALWAYS_EQUAL))
    hand_in("forge_always_equal", nb, set())
    # Tries to harm others; graded first ("aaa"), so its victims come after it.
    if SANDBOX:  # without a sandbox (--unsafe) these cells would really rewrite the repository's checks
        hand_in("aaa_harm", _unsolved_with(ex, *_harm_cells(root / VICTIM / f"{CH}.ipynb", solutions_dir, out)), set())

    nb = _fake_chapter_01()
    _solution_cell(nb, "ch01-ex1-solution").source = "def rlct_of_line(d):\n    return d / 2"
    hand_in("wrong_chapter", nb, set())

    hand_in("invalid_json", b'{"cells": [', set())
    hand_in("empty", b"", set())
    return expected


def _processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and marker in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
                found.append(pid)
        except OSError:
            continue
    return found


SANDBOX_PROBLEM = grade.sandbox.sandbox_problem(grade.package_snapshot())
SANDBOX = SANDBOX_PROBLEM is None
def test_the_sandbox_starts_where_make_test_installs_it():
    """As root with bubblewrap installed (CI: `make test` installs it), the sandbox must start — wherever
    the checkout lies (a clone under /tmp once failed: the tmpfs over /tmp hid the venv) — else every
    sandbox test would be skipped and the forgery tests run unsandboxed."""
    if os.geteuid() != 0 or shutil.which("bwrap") is None:
        pytest.skip("not root with bubblewrap")
    assert SANDBOX_PROBLEM is None, SANDBOX_PROBLEM


needs_sandbox = pytest.mark.skipif(not SANDBOX, reason=f"no sandbox here ({SANDBOX_PROBLEM}); make test installs bubblewrap as root")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, solutions_dir):
    root = tmp_path_factory.mktemp("class")
    out = root / "out"
    expected = _class(root / "submitted", solutions_dir, out)
    check_file = REPO / "slt_course_utils" / "checks" / "ch00.py"
    before = {p: p.read_bytes() for p in [check_file, *solutions_dir.iterdir()]}
    cmd = [sys.executable, "-m", "slt_course_utils.grade", str(root / "submitted"), "--out", str(out),
           "--solutions", str(solutions_dir), "--jobs", "2", "--cell-timeout", str(CELL_TIMEOUT),
           "--total-timeout", "300", "--memory-limit-mb", "1024"] + ([] if SANDBOX else ["--unsafe"])
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO), "SLT_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    left = [p for p in _processes_with(PROC_MARKER) if p != str(os.getpid())]
    time.sleep(6)  # a detached writer would have struck by now
    after = {p: p.read_bytes() for p in before}
    rows = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    harm = {"changed": [str(p) for p in before if before[p] != after[p]], "left": left}
    return expected, rows, out, proc.stdout, harm


def test_gradebook_is_exactly_the_expected_rows(graded):
    expected, rows, _, stdout, _ = graded
    got = {(r["student"], r["exercise"]): (r["passed"], r["points"], r["max_points"]) for r in rows}
    want = {(student, g): (ok, POINTS[g] if ok else 0.0, POINTS[g])
            for student, exercises in expected.items() for g, ok in exercises.items()}
    assert got == want, stdout
    assert len(rows) == len(want)
    assert {r["chapter"] for r in rows} == {CH}


def test_csv_matches_json(graded):
    _, rows, out, _, _ = graded
    with open(out / "gradebook.csv", encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert list(csv_rows[0]) == grade.FIELDS
    assert [(r["student"], r["exercise"], r["passed"]) for r in csv_rows] == \
        [(r["student"], r["exercise"], str(r["passed"])) for r in rows]


def _messages(rows, student):
    return {r["exercise"]: r["message"] for r in rows if r["student"] == student}


def _issues(out):
    issues = {}
    with open(out / "issues.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            issues.setdefault(row["student"], []).append(row["issue"])
    return {k: "\n".join(v) for k, v in issues.items()}


def test_messages_say_what_went_wrong(graded):
    _, rows, out, stdout, _ = graded
    assert all("not implemented yet" in m for m in _messages(rows, "unsolved").values())
    assert all("not implemented yet" in m for m in _messages(rows, "cheater").values())
    assert "empirical_loss is not defined" in _messages(rows, "renamed")["ch00-ex1-check"]
    assert "empirical_loss is not defined" in _messages(rows, "syntax_error")["ch00-ex1-check"]
    assert all("invalid JSON" in m for m in _messages(rows, "invalid_json").values())
    assert all("empty" in m for m in _messages(rows, "empty").values())
    assert all("wrong chapter (01_fake_chapter, expected 00_bayesian_learning)" in m
               for m in _messages(rows, "wrong_chapter").values())
    assert _messages(rows, "good")["ch00-ex1-check"].startswith("✔ check_empirical_loss passed")

    joined = _issues(out)
    assert "SyntaxError" in joined["syntax_error"]
    assert f"timed out after {CELL_TIMEOUT} s" in joined["infinite_loop"]
    assert "restarted 2 time(s)" in joined["infinite_loop"]
    assert _messages(rows, "infinite_loop")["ch00-ex5-check"].startswith(f"the check timed out after {CELL_TIMEOUT} s")
    assert "the process died" in joined["kernel_death"] and "[killed by signal SIGSEGV]" in joined["kernel_death"]
    assert "restarted 2 time(s)" in joined["kernel_death"]
    assert _messages(rows, "kernel_death")["ch00-ex4-check"].startswith("your code ended the process")
    assert "[killed by signal SIGSEGV]" in _messages(rows, "kernel_death")["ch00-ex4-check"]
    assert "ran out of memory (MemoryError; the limit is 1024 MB)" in joined["memory_hog"]
    assert "wrong chapter: this notebook is 01_fake_chapter" in joined["wrong_chapter"]
    assert "good" not in joined
    for student in ("infinite_loop", "kernel_death", "memory_hog", "invalid_json", "empty"):
        assert student in stdout


def test_a_shared_mapping_counts_against_the_memory_limit(graded):
    _, _, out, _, _ = graded
    mmap_issue = [i for i in _issues(out)["memory_hog"].splitlines() if "'import mmap'" in i]
    assert mmap_issue and "ran out of memory" in mmap_issue[0], mmap_issue


def test_exit_is_blamed_on_its_cell_and_honest_work_survives(graded):
    _, rows, out, _, _ = graded
    assert all(r["passed"] for r in rows if r["student"] == "exits")
    issues = _issues(out)["exits"].splitlines()
    for first_line in ("'exit()'", "'quit()'", "'import sys'"):
        assert any(first_line in i and "called exit()/quit()/sys.exit" in i for i in issues), (first_line, issues)
    assert any("'import os'" in i and "the process died" in i and "[exit status 0]" in i for i in issues), issues
    assert not any("on replay" in i for i in issues), issues  # a blamed cell is never run again
    assert sum("called exit()" in i for i in issues) == 3, issues


FORGERIES = ["forge_custom_exc", "forge_transformer", "forge_fake_package", "forge_read_solutions",
             "forge_patch_numpy", "forge_always_equal"] + (["aaa_harm"] if SANDBOX else [])


@pytest.mark.parametrize("student", FORGERIES)
def test_forgeries_score_zero(graded, student):
    expected, rows, _, _, _ = graded
    assert student in expected
    assert [r["points"] for r in rows if r["student"] == student] == [0.0] * len(EXERCISE_IDS)


def test_forgeries_are_reported(graded):
    _, rows, out, _, _ = graded
    issues = _issues(out)
    assert "NameError: name 'get_ipython' is not defined" in issues["forge_custom_exc"]
    assert "NameError: name 'get_ipython' is not defined" in issues["forge_transformer"]
    assert "No such file or directory" in issues["forge_read_solutions"]
    always = _messages(rows, "forge_always_equal")
    assert "cannot read back" in always["ch00-ex1-check"] and "Yes" in always["ch00-ex1-check"], always


@needs_sandbox
def test_no_submission_reaches_another_student_or_the_grader(graded, solutions_dir):
    expected, rows, out, _, harm = graded
    assert harm["changed"] == []  # the package's checks and the --solutions copy are untouched
    assert all(r["passed"] for r in rows if r["student"] == VICTIM)  # the victim's notebook was not overwritten
    issues = _issues(out)["aaa_harm"]
    saw = [i for i in issues.splitlines() if "RuntimeError: saw" in i]  # the command line of its parent
    assert saw and str(solutions_dir) not in saw[0] and "--solutions" not in saw[0] and str(out) not in saw[0], saw
    assert "Permission denied: '/course/slt_course_utils/checks/ch00.py'" in issues, issues  # its read-only copy
    assert issues.count("No such file or directory") >= 3, issues  # the victim, the solutions, the repo's checks
    assert "Network is unreachable" in issues or "name resolution" in issues, issues
    assert harm["left"] == []  # every process the submission started died with its sandbox
    with open(out / "gradebook.csv", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(rows)  # not rewritten by a detached process


def test_feedback_files(graded):
    expected, _, out, _, _ = graded
    names = grade.feedback_filenames(sorted(expected))
    assert sorted(p.name for p in (out / "feedback").glob("*.md")) == sorted(names.values())
    text = (out / "feedback" / "renamed.md").read_text(encoding="utf-8")
    assert "10 / 11 points" in text and "empirical_loss is not defined" in text
    assert "11 / 11 points" in (out / "feedback" / "good.md").read_text(encoding="utf-8")
    assert "timed out" in (out / "feedback" / "infinite_loop.md").read_text(encoding="utf-8")


# ---- one notebook at a time, or none -------------------------------------------------------


def _options(**kw):
    return grade.Options(unsafe=not SANDBOX, **kw)


def test_exercises_come_from_the_solution_notebook():
    chapter = grade.load_chapters(SOLUTIONS)[CH]
    assert [e.grade_id for e in chapter.exercises] == EXERCISE_IDS
    assert {e.grade_id: e.points for e in chapter.exercises} == POINTS
    assert chapter.check_imports == ["from slt_course_utils.checks import ch00"]
    assert "empirical_loss" in chapter.function_names
    assert chapter.max_points == 11


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


def test_check_cells_are_recognised_by_metadata_only():
    graded_ = {"nbgrader": {"grade": True, "solution": False}}
    assert grade.is_check_cell(new_code_cell("x = 1", metadata=graded_))
    assert not grade.is_check_cell(new_code_cell("ch00.check_free_energy(free_energy)"))  # a self-check: it runs
    assert not grade.is_check_cell(new_code_cell("def f(x):\n    return x", metadata={"nbgrader": {"grade": True, "solution": True}}))
    assert grade.defines_something("def f(x):\n    return x\nch00.check_f(f)")
    assert grade.defines_something("x = 1")
    assert not grade.defines_something("from slt_course_utils.checks import ch00\n\nch00.check_f(f)  # def g")
    chapter = grade.load_chapters(SOLUTIONS)[CH]
    nb = _read(EXERCISES)
    cells, notes = grade.runnable_cells(nb, chapter)
    ran = {i for i, _ in cells}
    checks = [i for i, c in enumerate(nb.cells) if grade.is_check_cell(c)]
    assert len(checks) == len(EXERCISE_IDS) and not ran & set(checks) and notes == []  # unchanged check cells: skipped silently
    assert all("%" not in line.lstrip()[:1] for _, source in cells for line in source.splitlines())
    edited = copy.deepcopy(nb)
    edited.cells[checks[0]].source = 'print("✔ passed")'
    edited.cells[checks[1]].source = "def log_posterior_on_grid(*a):\n    return 0"
    cells, notes = grade.runnable_cells(edited, chapter)
    assert checks[1] in {i for i, _ in cells}  # defines something: runs, whatever its metadata
    assert len(notes) == 1 and f"cell {checks[0] + 1}" in notes[0] and "differs" in notes[0]


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
    (tmp_path / "nested" / "erin" / "week1").mkdir(parents=True)
    (tmp_path / "nested" / "erin" / "week1" / f"{CH} (1).ipynb").write_text("{}")
    subs = grade.collect_submissions([tmp_path / "flat", tmp_path / "nested"], chapters)
    assert [s.student for s in subs] == ["alice", "bob", "carol", "dave", "erin/week1"]
    single = grade.collect_submissions([tmp_path / "nested" / "carol" / f"{CH}.ipynb"], chapters)
    assert [s.student for s in single] == ["carol"]


def test_a_student_is_the_full_relative_path(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    (tmp_path / "section1").mkdir()
    for name in ("carol", "dave"):
        (tmp_path / "section1" / f"{name}_{CH}.ipynb").write_text("{}")
    subs = grade.collect_submissions([tmp_path], chapters)
    assert [s.student for s in subs] == [f"section1/carol_{CH}", f"section1/dave_{CH}"]


def test_feedback_file_names_never_collide():
    students = ["Zoë Ångström", "Zoë_Ångström", "alice", "Alice", "a/b", "a_b", "Zoe\u0308", "Zo\u00eb", "..", ""]
    names = grade.feedback_filenames(students)
    assert len({n.casefold() for n in names.values()}) == len(students)
    assert all("/" not in n and not n.startswith(".") for n in names.values())
    # a name that is safe and alone keeps its file name; the others get a hash of the full name
    assert grade.feedback_filenames(["bob", "Zoë_Ångström"]) == {"bob": "bob.md", "Zoë_Ångström": "Zoë_Ångström.md"}
    assert names["Zoë_Ångström"].startswith("Zoë_Ångström-") and names["Zoë Ångström"].startswith("Zoë_Ångström-")


def test_a_huge_notebook_is_refused_with_a_clear_line(tmp_path):
    big = tmp_path / f"{CH}.ipynb"
    with open(big, "wb") as f:
        f.truncate(21 * 1024 * 1024)
    with pytest.raises(ValueError, match=r"21\.0 MB, over the 20 MB limit: clear its outputs"):
        grade.read_notebook(big)


def test_the_gradebook_is_written_atomically_from_one_source(tmp_path, monkeypatch):
    rows = [grade.Row("a/b", CH, "ch00-ex1-check", True, 1.0, 1.0, 'say "hi",\nthen', 0.1)]
    res = grade.Result("a/b", "x.ipynb", CH, rows, ["an issue"], 1.0)
    grade.write_outputs([res], tmp_path)
    with open(tmp_path / "gradebook.csv", encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert csv_rows == [{k: str(v) for k, v in r.items()} for r in json.loads((tmp_path / "gradebook.json").read_text())]
    assert not list(tmp_path.glob(".*.tmp"))
    # a failure while writing leaves the previous gradebook whole, not half-written
    monkeypatch.setattr(grade, "feedback_markdown", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        grade.write_outputs([res, res], tmp_path)
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "feedback").glob(".*.tmp"))


def test_unreadable_notebooks_need_no_kernel(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    (tmp_path / "x").mkdir()
    bad = tmp_path / "x" / f"{CH}.ipynb"
    bad.write_text('{"nbformat": 4}')
    res = grade.grade_submission(grade.Submission("x", bad), chapters, _options())
    assert [r.passed for r in res.rows] == [False] * 8
    assert "not a valid notebook" in res.rows[0].message
    lost = tmp_path / "who.ipynb"
    lost.write_text("")
    res = grade.grade_submission(grade.Submission("who", lost), chapters, _options())
    assert res.chapter == "?" and "--chapter" in res.rows[0].message


def test_cli_usage_errors(tmp_path):
    assert grade.main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert grade.main([str(tmp_path), "--out", str(tmp_path / "o"), "--chapter", "99"]) == 2


def test_total_timeout_and_chapter_override(tmp_path):
    chapters = grade.load_chapters(SOLUTIONS)
    nb = new_notebook(cells=[new_code_cell("import time\ntime.sleep(3600)")])
    path = tmp_path / "zoe.ipynb"
    nbformat.write(nb, path)
    opts = _options(chapter=CH, cell_timeout=60, total_timeout=10)
    res = grade.grade_submission(grade.Submission("zoe", path), chapters, opts)
    # The cell sleeps an hour: finishing in less than 15 minutes (however loaded the machine) proves the
    # 10 s total limit cut it off; the messages below say which limit did.
    assert res.chapter == CH and res.runtime_s < 900
    assert [r.exercise for r in res.rows] == EXERCISE_IDS
    assert all(not r.passed and "total time limit of 10 s" in r.message for r in res.rows)
    assert any("timed out" in i or "total time limit" in i for i in res.issues)
    # the sleeping cell hit the total limit: there was no time to restart, and the report says so
    assert not any("the student process was restarted" in i for i in res.issues), res.issues
    assert any("no time was left to restart it" in i for i in res.issues), res.issues


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
    res = grade.grade_submission(grade.Submission("ivy", tmp_path / "ivy.ipynb"), chapters, _options())
    assert res.chapter == "42_tiny" and res.issues == []
    assert [(r.exercise, r.passed, r.points) for r in res.rows] == [("ch42-ex1-check", True, 2.0), ("ch42-ex2-check", False, 0.0)]
    assert "hidden test" in res.rows[1].message


def test_output_is_capped_and_replies_are_plain_data(tmp_path):
    """~100 MB of base64 printed by a cell: the grader keeps 20 000 characters and its memory stays put."""
    import resource

    from slt_course_utils.grading import sandbox, wire

    process = sandbox.StudentProcess(grade.package_snapshot(), None, memory_limit_mb=1024, unsafe=not SANDBOX)
    process.start()
    try:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reply = process.request(("cell", 0, "import base64, os, sys\nchunk = base64.b64encode(os.urandom(3 * 2**20)).decode()\n"
                                 "for _ in range(25):\n    sys.stdout.write(chunk)\ndef f():\n    return [1, (2.5, 'x')]"), 60)
        assert reply.status == "ok", reply
        time.sleep(1)
        assert len(process.captured_output()) == sandbox.MAX_OUTPUT_CHARS
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50 * 1024  # KiB: under 50 MB
        assert wire.decode(process.request(("call", "f", (), {}), 30).body["value"]) == [1, (2.5, "x")]
    finally:
        process.stop()
    for bad in ({"int": "9" * 5000}, {"tensor": ["float64", "|O", [1], ""]}, {"pickle": "x"}, {"ndarray": ["<f8", [3], "AAAA"]}):
        with pytest.raises(wire.WireError):
            wire.decode(bad)


def test_no_sandbox_means_no_grading_unless_unsafe(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grade.sandbox, "sandbox_problem", lambda snapshot: "bwrap is not installed")
    nb = new_notebook(cells=[new_code_cell("def double(x):\n    return 2 * x")])
    nbformat.write(nb, tmp_path / f"{CH}.ipynb")
    assert grade.main([str(tmp_path / f"{CH}.ipynb"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "REFUSING TO GRADE" in err and "bwrap is not installed" in err and "--unsafe" in err
    assert not (tmp_path / "out").exists()
    res = grade.grade_submission(grade.Submission("x", tmp_path / f"{CH}.ipynb"), grade.load_chapters(SOLUTIONS),
                                 grade.Options())
    assert all(not r.passed and "the sandbox is unavailable" in r.message for r in res.rows)


def test_student_functions_run_remotely_and_return_fresh_plain_values():
    """Lambdas travel by value, generators by state (and come back advanced), exceptions by name."""
    import torch

    from slt_course_utils.grading import checking, sandbox

    process = sandbox.StudentProcess(grade.package_snapshot(), None, memory_limit_mb=1024, unsafe=not SANDBOX)
    process.start()
    try:
        source = ("import torch\n"
                  "def draw(f, gen):\n    return f(torch.rand(3, generator=gen, dtype=torch.float64))\n"
                  "def bad(x):\n    raise ValueError('negative ' + str(x))\n"
                  "class Mine(Exception):\n    pass\n"
                  "def mine():\n    raise Mine('custom')\n"
                  "def module():\n    return torch\n")
        assert process.request(("cell", 0, source), 30).status == "ok"
        session = checking.Session(process, deadline=time.perf_counter() + 60, timeout=60)
        names = checking.StudentNamespace(session)
        scale = 10.0
        gen, twin = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        got = names["draw"](lambda u: u * scale, gen)
        assert torch.equal(got, torch.rand(3, generator=twin, dtype=torch.float64) * scale)
        assert torch.equal(gen.get_state(), twin.get_state())  # the generator advanced as if called here
        with pytest.raises(ValueError, match="negative 3"):
            names["bad"](3)
        with pytest.raises(checking.StudentError, match="custom") as info:
            names["mine"]()
        assert type(info.value).__name__ == "Mine" and not isinstance(info.value, AssertionError)
        with pytest.raises(checking.UnsupportedResult, match="module"):
            names["module"]()
        with pytest.raises(KeyError):
            names["undefined_name"]
    finally:
        process.stop()


@needs_sandbox
@pytest.mark.skipif(grade.sandbox.memory_cgroup_parent() is None, reason="no writable memory cgroup here")
def test_a_memory_cgroup_caps_the_whole_sandbox():
    """RLIMIT_AS is per process: 6 forked children of 250 MB each pass it, the sandbox's cgroup stops them
    (limit 256 MB + 1024 MB of slack = 1280 MB < 6 × 250 MB = 1500 MB)."""
    from slt_course_utils.grading import sandbox

    process = sandbox.StudentProcess(grade.package_snapshot(), None, memory_limit_mb=256)
    process.start()
    try:
        assert process._cgroup is not None
        source = ("import os, time\nkids = []\nfor _ in range(6):\n    pid = os.fork()\n    if pid == 0:\n"
                  "        b = bytearray(250 * 2**20)\n        for i in range(0, len(b), 4096):\n            b[i] = 1\n"
                  "        time.sleep(3)\n        os._exit(0)\n    kids.append(pid)\n"
                  "codes = [os.waitpid(k, 0)[1] for k in kids]\nraise RuntimeError(f'children ended {codes}')")
        reply = process.request(("cell", 0, source), 60)
        assert reply.status == "error" and "children ended [" in reply.body.get("evalue", ""), reply
        codes = [int(c) for c in reply.body["evalue"].split("[")[1].rstrip("]").split(",")]
        assert 9 in codes, codes  # at least one child was killed (SIGKILL) by the cgroup's OOM killer
        path = process._cgroup.path
    finally:
        process.stop()
    assert not path.exists()  # the group is removed with its sandbox
