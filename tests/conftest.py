"""Shared test set-up: quiet progress bars, a non-interactive matplotlib, helpers for notebooks."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SLT_PROGRESS", "0")
# Notebook kernels (nbval) and tests run with one OpenMP thread: the stored outputs were made with the
# author's thread count (make execute), so every CI run also checks that the checked outputs do not
# depend on it; and two xdist workers × one thread is what a 2-core machine has.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import nbformat  # noqa: E402
import pytest  # noqa: E402

from slt_course_utils.colab import COLAB_CELL_MARKER  # noqa: E402
from slt_course_utils.make_exercises import BEGIN_SOLUTION  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = REPO / "chapters"
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"


def notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def solution_namespace(name: str) -> dict:
    """Run the setup cell and every solution cell of ``solutions/<name>.ipynb``; return their names."""
    nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    namespace: dict = {}
    # the Colab set-up cell (slt_course_utils.colab), where a notebook has one, comes before the setup cell
    code_cells = [c for c in nb.cells if c.cell_type == "code" and not c.source.startswith(COLAB_CELL_MARKER)]
    setup = "\n".join(line for line in code_cells[0].source.splitlines() if not line.startswith("%"))
    exec(compile(setup, f"{name}[setup]", "exec"), namespace)  # noqa: S102
    for index, cell in enumerate(code_cells):
        if BEGIN_SOLUTION in cell.source:
            exec(compile(cell.source, f"{name}[cell {index}]", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for tiny tensors: fastest, and on a shared 2-core machine OpenMP threads
    contending with other processes made such tests up to 20× slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
