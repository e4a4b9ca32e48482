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


@pytest.mark.parametrize("path", notebooks(EXERCISES), ids=ids)
def test_exercises_are_unexecuted_and_hold_no_solutions(path):
    nb = nbformat.read(path, as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
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
