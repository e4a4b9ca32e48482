"""Exercise generation: marker handling, errors, and that exercises/ is up to date."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from slt_course_utils import make_exercises as mx

from .conftest import EXERCISES, SOLUTIONS, notebooks

SOLUTION_CELL = """def f(x):
    y = 2
    ### BEGIN SOLUTION
    return x * y
    ### END SOLUTION"""


def test_solution_region_becomes_stub_at_same_indent():
    out = mx.strip_cell_source(SOLUTION_CELL, "code")
    assert out.splitlines() == [
        "def f(x):",
        "    y = 2",
        "    # YOUR CODE HERE",
        f'    raise NotImplementedError("{mx.STUB_MESSAGE}")',
    ]
    namespace = {}
    exec(out, namespace)  # noqa: S102 - the stub must be valid Python
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_markdown_answer_and_hidden_tests():
    md = "Derive it.\n### BEGIN SOLUTION\nThe answer is 42.\n### END SOLUTION"
    assert mx.strip_cell_source(md, "markdown") == "Derive it.\nYOUR ANSWER HERE"
    code = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS\nprint('done')"
    assert mx.strip_cell_source(code, "code") == "check(f)\nprint('done')"


@pytest.mark.parametrize(
    "source",
    ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"],
)
def test_unbalanced_markers_are_clear_errors(source):
    with pytest.raises(mx.MarkerError, match="line|never closed"):
        mx.strip_cell_source(source, "code", where="nb, cell 3")


def test_make_exercise_clears_outputs_drops_solution_only_and_keeps_metadata():
    code = new_code_cell(SOLUTION_CELL, execution_count=3, outputs=[nbformat.v4.new_output("stream", text="hi")])
    code.metadata["nbgrader"] = {"solution": True}
    extra = new_code_cell("print('spoiler')", metadata={"tags": ["solution-only"]})
    nb = new_notebook(cells=[new_markdown_cell("# Title"), code, extra])
    out = mx.make_exercise(nb)
    assert len(out.cells) == 2
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert out.cells[1].metadata["nbgrader"] == {"solution": True}
    assert "return x * y" in nb.cells[1].source  # input untouched


def test_generate_writes_and_checks(tmp_path):
    (tmp_path / "solutions").mkdir()
    sol = tmp_path / "solutions" / "09_demo.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(SOLUTION_CELL)]), sol)
    assert not mx.generate(sol, check_only=True)
    assert mx.generate(sol)
    assert mx.generate(sol, check_only=True)
    assert "NotImplementedError" in (tmp_path / "exercises" / "09_demo.ipynb").read_text()


def test_bad_notebook_names_and_files(tmp_path):
    bad = tmp_path / "Chapter One.ipynb"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="NN_slug"):
        mx.generate(bad)
    broken = tmp_path / "01_broken.ipynb"
    broken.write_text("not json")
    with pytest.raises(ValueError, match="not a readable notebook"):
        mx.generate(broken)


def test_cli_reports_stale_exercises(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    sol = tmp_path / "solutions" / "09_demo.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(SOLUTION_CELL)]), sol)
    assert mx.main([str(sol), "--check"]) == 1
    assert "Out of date" in capsys.readouterr().err
    assert mx.main([str(sol)]) == 0
    assert mx.main([str(sol), "--check"]) == 0


@pytest.mark.parametrize("solution", notebooks(SOLUTIONS), ids=lambda p: p.name)
def test_committed_exercises_are_up_to_date(solution):
    assert (EXERCISES / solution.name).exists(), f"exercises/{solution.name} is missing: run `make exercises`."
    assert mx.generate(solution, check_only=True), (
        f"exercises/{solution.name} differs from what solutions/{solution.name} generates: run `make exercises` "
        "(never edit exercises/ by hand)."
    )


def _exercise_block():
    sol = new_code_cell(SOLUTION_CELL, metadata={"nbgrader": {"solution": True, "grade": False}})
    check = new_code_cell("check(f)", metadata={"nbgrader": {"grade": True, "solution": False, "points": 1}})
    return sol, check


def test_checks_and_demos_that_run_the_learners_function_are_tagged_raises_exception():
    sol, check = _exercise_block()
    demo = new_code_cell("y = f(3)\nprint(y)")
    later = new_code_cell("print(y + 1)")  # uses a name that only exists once the demo has run... not learner's
    unrelated = new_code_cell("import math\ndef g(x=1):\n    return f(x)  # only in the body: defining g runs nothing")
    nb = new_notebook(cells=[new_code_cell("import math"), sol, check, demo, later, unrelated])
    out = mx.make_exercise(nb)
    tags = [c.metadata.get("tags", []) for c in out.cells]
    assert tags == [[], [], [mx.RAISES_TAG], [mx.RAISES_TAG], [], []]
    assert "tags" not in nb.cells[2].metadata  # input untouched


def test_defined_and_run_names_ignore_function_bodies_and_handle_magics():
    assert mx.defined_names("%matplotlib inline\ndef f(x):\n    return x\nA, b = 1, 2") == {"f", "A", "b"}
    assert mx.runs_names("def h(x=f(1)):\n    pass", {"f"})  # a default argument runs at definition
    assert not mx.runs_names("def h(x):\n    return f(x)", {"f"})
    assert mx.runs_names("this is not python f", {"f"})  # unparsable: fall back to the name's presence


def test_run_all_on_an_exercise_goes_past_unfinished_exercises(tmp_path):
    """Two unfinished exercises: like Jupyter's Run All, nbclient (allow_errors=False) stops at the first
    error unless the cell is tagged; in the generated exercise every cell runs and each check says
    'not implemented yet'."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    check_src = (
        "from slt_course_utils.checks import call_student\n"
        "def check(fn):\n"
        "    call_student(fn, 1)\n"
        "    print('passed')"
    )
    sol, check = _exercise_block()
    sol2 = new_code_cell(SOLUTION_CELL.replace("def f", "def f2"), metadata=sol.metadata)
    check2 = new_code_cell("check(f2)", metadata=check.metadata)
    cells = [new_code_cell(check_src), sol, check, sol2, check2, new_code_cell("print('reached the end')")]
    exercise = mx.make_exercise(new_notebook(cells=cells))
    NotebookClient(exercise, timeout=120, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for index in (2, 4):
        (error,) = [o for o in exercise.cells[index].outputs if o.output_type == "error"]
        assert error.ename == "CheckFailure" and "not implemented yet" in error.evalue
    assert "reached the end" in exercise.cells[5].outputs[0].text
    untagged = mx.make_exercise(new_notebook(cells=cells))
    for cell in untagged.cells:
        cell.metadata.pop("tags", None)
    with pytest.raises(CellExecutionError):
        NotebookClient(untagged, timeout=120, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
