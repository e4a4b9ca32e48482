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
