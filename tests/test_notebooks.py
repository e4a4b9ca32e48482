"""Notebook hygiene, the course's shape, and that handed-out exercises fail only with "not implemented yet"."""

import json
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from slt_course_utils.make_exercises import BEGIN_SOLUTION, NB_NAME

from .conftest import CHAPTERS, EXERCISES, REPO, SOLUTIONS, notebooks

EXECUTED = notebooks(CHAPTERS) + notebooks(SOLUTIONS)
ALL = EXECUTED + notebooks(EXERCISES)
ABSOLUTE_PATH = re.compile(r"(/home/|/Users/|/work/|/root/|/tmp/|[A-Z]:\\\\)")
MAX_OUTPUT_BYTES = 200_000  # one cell's outputs (a figure at the house DPI is 30–90 kB)
MAX_NOTEBOOK_BYTES = 1_500_000
ids = lambda p: f"{p.parent.name}/{p.name}"  # noqa: E731


def test_three_folders_hold_the_same_chapters():
    names = lambda folder: sorted(p.name for p in notebooks(folder))  # noqa: E731
    assert names(SOLUTIONS), "no solution notebooks"
    assert names(SOLUTIONS) == names(EXERCISES), "every solution needs its generated exercise"
    assert set(names(SOLUTIONS)) <= set(names(CHAPTERS)), "every problem set needs its reading notebook"
    for path in (REPO / d for d in ("chapters", "solutions", "exercises")):
        for nb in path.glob("*.ipynb"):
            assert NB_NAME.match(nb.name), f"{nb} is not named NN_slug.ipynb"


@pytest.mark.parametrize("path", notebooks(SOLUTIONS), ids=ids)
def test_every_chapter_has_a_seminar_guide(path):
    assert (REPO / "docs" / "seminar" / path.with_suffix(".md").name).exists()


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_valid_and_no_absolute_paths_or_skips(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    text = path.read_text(encoding="utf-8")
    match = ABSOLUTE_PATH.search(text)
    assert match is None, f"{path.name}: absolute path {match.group(0)!r} stored in the notebook"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    for cell in nb.cells:
        assert "nbval-skip" not in cell.metadata.get("tags", []), f"{path.name}: nbval-skip is not allowed"
    assert "widgets" not in nb.metadata, f"{path.name}: stored widget state (re-run make execute)"


@pytest.mark.parametrize("path", EXECUTED, ids=ids)
def test_executed_notebooks_are_clean(path):
    nb = nbformat.read(path, as_version=4)
    counts = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        counts.append(cell.execution_count)
        size = len(json.dumps(cell.outputs))
        assert size < MAX_OUTPUT_BYTES, f"{path.name} cell {index}: outputs are {size} bytes"
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} cell {index} stores an error: {out.get('ename')}"
            if out.output_type == "stream":
                assert out.name != "stderr" or "Warning" not in out.text, f"{path.name} cell {index}: stored warning"
            text = json.dumps(out.get("data", {})) + out.get("text", "")
            assert "it/s]" not in text and "s/it]" not in text, (
                f"{path.name} cell {index}: a stored progress bar (a call ignores $SLT_PROGRESS; re-run make execute)")
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts} (re-run make execute)"


# What an nbval-check-output cell may print: a claim at the precision it needs, the same on any machine.
# Numbers at the level of float64 rounding (a gradient of 1e-16), signed zeros from rounding ("-0.000")
# and more significant digits than a sum in float64 keeps across summation orders depend on the CPU's
# instruction set, the BLAS path and the thread count: they matched the author's machine and no other.
TINY_SCIENTIFIC = re.compile(r"(?<![\w.])[-+]?(\d)(?:\.(\d+))?e-(\d+)", re.IGNORECASE)
SIGNED_ZERO = re.compile(r"(?<![\w.])-0(?:\.0*)?(?![\d.])")
STATED_BOUND = re.compile(r"(<|≤|>|\bto|\bwithin|\bbelow|\babove|\btol\w*\s*=?)\s*$")  # "(to 1e-12)" is a claim
LONG_NUMBER = re.compile(r"\d[\d.]*")
MAX_SIGNIFICANT_DIGITS = 10


def fragile_numbers(text: str) -> list[str]:
    """The numbers in ``text`` that a checked output must not print (see above)."""
    found = []
    for m in TINY_SCIENTIFIC.finditer(text):
        mantissa_nonzero = m.group(1) != "0" or any(ch != "0" for ch in (m.group(2) or ""))
        if mantissa_nonzero and int(m.group(3)) >= 10 and not STATED_BOUND.search(text[: m.start()]):
            found.append(m.group(0))
    found += [m.group(0) for m in SIGNED_ZERO.finditer(text)]
    for m in LONG_NUMBER.finditer(text):
        digits = m.group(0).replace(".", "").lstrip("0")
        if m.group(0).count(".") <= 1 and len(digits) > MAX_SIGNIFICANT_DIGITS:
            found.append(m.group(0))
    return found


def test_fragile_number_detector():
    assert fragile_numbers("|∇L| 9e-17 and 1.2e-11, |g| = 3e-16") == ["9e-17", "1.2e-11", "3e-16"]
    assert fragile_numbers("mean -0.000 and -0. and -0") == ["-0.000", "-0.", "-0"]
    assert fragile_numbers("F_n = 142332.904748") == ["142332.904748"]
    assert fragile_numbers("eigenvalues 0.00e+00, 2.02e-08, 0e-20, λ = -0.25, 1415.557167, n = 100000") == []
    assert fragile_numbers("L_n constant (to 1e-12): True; |∇L| < 1e-12; tol=1e-14") == []


@pytest.mark.parametrize("path", EXECUTED, ids=ids)
def test_checked_outputs_hold_on_any_machine(path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "nbval-check-output" not in cell.metadata.get("tags", []):
            continue
        for out in cell.outputs:
            text = out.get("text", "") + out.get("data", {}).get("text/plain", "")
            bad = fragile_numbers(text)
            assert not bad, (
                f"{path.name} cell {index} (nbval-check-output) prints {bad}: rounding noise that differs between "
                "machines. Print the claim at the precision it needs (e.g. `|∇L| < 1e-12`), then re-run make execute.")


@pytest.mark.parametrize("path", notebooks(EXERCISES), ids=ids)
def test_exercises_are_unexecuted_and_hold_no_solutions(path):
    nb = nbformat.read(path, as_version=4)
    # code check cells; Markdown derivations are nbgrader "manually graded answers" (0 points by default)
    graded = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    assert 4 <= len(graded) <= 10, f"{path.name}: {len(graded)} graded exercises (the course plan asks for 4–10)"
    for cell in nb.cells:
        assert BEGIN_SOLUTION not in cell.source
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("path", notebooks(EXERCISES), ids=ids)
def test_handed_out_exercises_fail_only_as_not_implemented(path, tmp_path):
    """Run the exercise notebook as a learner receives it ("Run All"): each check must fail with 'not
    implemented yet', and execution must go on to the end (allow_errors=False: like Jupyter, nbclient
    stops at an error unless the cell is tagged raises-exception, which make_exercises adds)."""
    nb = nbformat.read(path, as_version=4)
    os.environ["SLT_PROGRESS"] = "0"
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if cell.metadata.get("nbgrader", {}).get("grade"):
            assert errors, f"{path.name} cell {index}: a check passed on the unsolved stub"
            assert errors[0].ename == "CheckFailure" and "not implemented yet" in errors[0].evalue, (
                f"{path.name} cell {index}: expected 'not implemented yet', got {errors[0].ename}: {errors[0].evalue}"
            )
        else:
            for err in errors:
                assert err.ename == "NotImplementedError", (
                    f"{path.name} cell {index} raises {err.ename}: {err.evalue} (only NotImplementedError is allowed)"
                )
