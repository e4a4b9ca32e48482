"""Generate ``exercises/NN_slug.ipynb`` from ``solutions/NN_slug.ipynb``.

Run ``python -m slt_course_utils.make_exercises`` (all chapters) or pass solution paths.
``--check`` only reports whether the committed exercises are up to date (exit 1 if not).

Rules (nbgrader's markers, so instructors who use nbgrader can use the same notebooks):

- In code cells, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` and ``raise NotImplementedError(...)`` at the marker's indentation.
- In Markdown cells, the same region becomes ``YOUR ANSWER HERE``.
- Lines from ``### BEGIN HIDDEN TESTS`` to ``### END HIDDEN TESTS`` are removed.
- Cells tagged ``solution-only`` are dropped; all outputs and execution counts are cleared.
- Check cells (nbgrader ``grade: true``) and every other code cell that *runs* a name a solution
  cell defines (a demo that calls the learner's function) are tagged ``raises-exception``.

Why the tag: a learner works through a problem set in any order and runs the whole notebook
often; an unfinished exercise must not stop "Run All" before the exercises after it. Jupyter
(JupyterLab, Notebook ≥ 5.1), nbclient and nbconvert continue past an error in a cell tagged
``raises-exception``, and the check still fails loudly (a short "✗ ... not implemented yet"), so
a grader (nbgrader autograde, ``slt_course_utils.grade``) still scores it 0. A check that merely
printed "not implemented yet" without raising would instead be scored as passed by nbgrader.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
SOLUTION_ONLY_TAG = "solution-only"
RAISES_TAG = "raises-exception"
STUB_MESSAGE = "Exercise not done yet: replace this line with your solution."
NB_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")

REPO_ROOT = Path(__file__).resolve().parent.parent


class MarkerError(ValueError):
    """A solution notebook's markers are unbalanced or nested."""


def _strip_region(lines: list[str], begin: str, end: str, replacement, where: str) -> list[str]:
    out: list[str] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith(begin):
            if inside:
                raise MarkerError(f"{where}, line {number}: '{begin}' inside another '{begin}' region.")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(replacement(indent))
            continue
        if stripped.startswith(end):
            if not inside:
                raise MarkerError(f"{where}, line {number}: '{end}' without a matching '{begin}'.")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: '{begin}' is never closed by '{end}'.")
    return out


def strip_cell_source(source: str, cell_type: str, where: str = "cell") -> str:
    """The exercise version of one cell's source (see the module docstring for the rules)."""
    lines = source.split("\n")
    lines = _strip_region(lines, BEGIN_HIDDEN, END_HIDDEN, lambda indent: [], where)
    if cell_type == "code":
        stub = lambda indent: [f"{indent}# YOUR CODE HERE", f'{indent}raise NotImplementedError("{STUB_MESSAGE}")']
    else:
        stub = lambda indent: [f"{indent}YOUR ANSWER HERE"]
    lines = _strip_region(lines, BEGIN_SOLUTION, END_SOLUTION, stub, where)
    return "\n".join(lines)


def _parse(source: str) -> ast.Module | None:
    """The cell as Python (IPython ``%``/``!`` lines blanked), or None if it is not valid Python."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def defined_names(source: str) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments, imports)."""
    tree = _parse(source)
    names: set[str] = set()
    for node in tree.body if tree else []:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def runs_names(source: str, names: set[str]) -> bool:
    """Whether running the cell evaluates one of ``names`` (bodies of functions it defines do not run)."""
    tree = _parse(source)
    if tree is None:
        return any(re.search(rf"\b{re.escape(n)}\b", source) for n in names)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            parts: list[ast.AST] = [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]
        elif isinstance(node, ast.ClassDef):
            parts = [*node.decorator_list, *node.bases]
        else:
            parts = [node]
        for part in parts:
            if part is not None and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(part)):
                return True
    return False


def _add_tag(cell: nbformat.NotebookNode, tag: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def make_exercise(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A new exercise notebook from a solution notebook (the input is not modified)."""
    nb = copy.deepcopy(solution)
    cells = []
    learner: set[str] = set()  # names the learner's solution cells define (stubs in the exercise)
    for index, cell in enumerate(nb.cells):
        if SOLUTION_ONLY_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        where = f"{name}, cell {index}"
        is_solution = cell.cell_type == "code" and (
            BEGIN_SOLUTION in cell.source or cell.metadata.get("nbgrader", {}).get("solution", False)
        )
        if is_solution:
            learner |= defined_names(cell.source)
        cell.source = strip_cell_source(cell.source, cell.cell_type, where)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if cell.metadata.get("nbgrader", {}).get("grade", False) or runs_names(cell.source, learner):
                _add_tag(cell, RAISES_TAG)
        cell.metadata.pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def exercise_path_for(solution_path: Path) -> Path:
    """solutions/NN_slug.ipynb → exercises/NN_slug.ipynb (next to the solutions folder)."""
    return solution_path.resolve().parent.parent / "exercises" / solution_path.name


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text written for ``nb`` (stable, so regeneration is byte for byte)."""
    return nbformat.writes(nb) + "\n"


def generate(solution_path: Path, *, check_only: bool = False) -> bool:
    """Write (or with ``check_only``, compare) the exercise for one solution; True if up to date."""
    if not NB_NAME.match(solution_path.name):
        raise ValueError(f"{solution_path.name}: solution notebooks are named NN_slug.ipynb (e.g. 00_bayesian_learning.ipynb).")
    try:
        solution = nbformat.read(solution_path, as_version=4)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{solution_path}: not a readable notebook ({err}).") from err
    text = render(make_exercise(solution, solution_path.name))
    target = exercise_path_for(solution_path)
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if check_only:
        return current == text
    if current != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slt_course_utils.make_exercises", description=__doc__.splitlines()[0])
    parser.add_argument("solutions", nargs="*", type=Path, help="solution notebooks (default: all of solutions/)")
    parser.add_argument("--check", action="store_true", help="only check that exercises are up to date")
    args = parser.parse_args(argv)
    paths = args.solutions or sorted((REPO_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print("No solution notebooks found.", file=sys.stderr)
        return 1
    stale = []
    for path in paths:
        try:
            ok = generate(path, check_only=args.check)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if not ok:
            stale.append(path.name)
        elif not args.check:
            print(f"wrote {exercise_path_for(path).relative_to(REPO_ROOT) if exercise_path_for(path).is_relative_to(REPO_ROOT) else exercise_path_for(path)}")
    if stale:
        print("Out of date (run `make exercises`): " + ", ".join(stale), file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(paths)} exercise notebook(s) up to date.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
