"""Execute notebooks in place (authors' tool): ``python -m slt_course_utils.execute_notebooks chapters solutions``.

Each notebook runs top to bottom in a fresh kernel of the current environment, from its
own folder, with progress bars off (``SLT_PROGRESS=0``) so stored outputs are stable.
The wall time of each notebook is printed. Afterwards, regenerate the exercises with
``python -m slt_course_utils.make_exercises``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute_notebook(path: Path, *, timeout: int = 600, kernel_name: str = "python3") -> float:
    """Run ``path`` in place (outputs replaced); return the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("SLT_PROGRESS", "0")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        _replace_widget_repr(cell)
    nb.metadata.pop("widgets", None)  # widget state is large and useless without a kernel
    nbformat.write(nb, path)
    return elapsed


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "Interactive explorer: run this cell in a live notebook (Jupyter, Colab, Binder) to get its sliders."


def _replace_widget_repr(cell: nbformat.NotebookNode) -> None:
    """Store a readable note instead of ``interactive(children=(FloatSlider…`` as a widget's text fallback.

    Without the widget state (never stored) a fresh JupyterLab shows an output's text/plain, which for a
    widget is its Python repr; the note says what the cell is and how to use it.
    """
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if WIDGET_MIME in data:
            data["text/plain"] = WIDGET_NOTE


def _collect(targets: list[Path]) -> list[Path]:
    paths: list[Path] = []
    for target in targets:
        if target.is_dir():
            paths.extend(sorted(target.glob("[0-9][0-9]_*.ipynb")))
        elif target.suffix == ".ipynb":
            paths.append(target)
        else:
            raise ValueError(f"{target}: give notebook files or folders that contain them.")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slt_course_utils.execute_notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    try:
        paths = _collect(args.targets)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"{path} ...", end=" ", flush=True)
        seconds = execute_notebook(path, timeout=args.timeout)
        print(f"{seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
