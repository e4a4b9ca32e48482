"""Build the course website: ``python docs/site/build.py`` (what ``make site`` runs).

1. Stage the course into ``_build/site-src``: this folder's pages and config, every notebook that
   exists in ``chapters/`` and ``solutions/`` (with launch links added to the copy, never to the
   original), ``exercises/`` as downloads, ``docs/seminar/*.md``, the facilitators' and authors'
   guides, and MathJax 2 from the pip package ``jupyter-server-mathjax``.
2. Run Sphinx (myst-nb, stored outputs, no execution) into ``_build/site``.

The site works offline: open ``_build/site/index.html`` or serve the folder
(``python -m http.server -d _build/site``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

SITE = Path(__file__).resolve().parent
REPO = SITE.parents[1]

def _load_colab():
    """slt_course_utils/colab.py, loaded by path: importing the package would import torch (seconds)."""
    spec = importlib.util.spec_from_file_location("slt_course_colab", REPO / "slt_course_utils" / "colab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


colab = _load_colab()

STAGE = REPO / "_build" / "site-src"
OUT = REPO / "_build" / "site"
NB_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+$")

# The course plan (docs/shared COURSE_PLAN): number and short title of every chapter.
PLANNED = {
    "00": "Bayesian learning",
    "01": "Fisher information and regular models",
    "02": "Singular models",
    "03": "The learning coefficient (RLCT)",
    "04": "Free-energy asymptotics and Occam's razor",
    "05": "Bayesian phase transitions",
    "06": "Estimating the local learning coefficient",
    "07": "Toy models of superposition",
    "08": "LLC at scale (capstone)",
}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    '<div class="slt-widget-note">Interactive widget: it runs in a live notebook — open this page '
    "in Colab or Binder (buttons at the top), or locally with <code>make course</code>.</div>"
)


def _notebooks(folder: Path) -> dict[str, Path]:
    """{'00': path} for every NN_slug.ipynb in ``folder``."""
    found = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        match = NB_NAME.match(path.stem)
        if match:
            found[match.group(1)] = path
    return found


def _seminars() -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / "docs" / "seminar").glob("[0-9][0-9]_*.md")):
        match = NB_NAME.match(path.stem)
        if match:
            found[match.group(1)] = path
    return found


def _launch_block(kind: str, path: Path) -> str:
    """MyST for the launch links at the top of a staged notebook page (kind: chapters/solutions)."""
    rel = f"{kind}/{path.name}"
    links = [
        f"[Open in Colab]({colab.colab_link(rel)})",
        f"[Launch Binder]({colab.binder_link(rel)})",
        f"{{download}}`Download notebook <{path.name}>`",
    ]
    lines = [":::{container} slt-launch", " ".join(links), ":::"]
    if kind == "chapters":
        exercise = REPO / "exercises" / path.name
        solution = REPO / "solutions" / path.name
        seminar = REPO / "docs" / "seminar" / f"{path.stem}.md"
        parts = []
        if exercise.exists():
            parts.append(f"{{download}}`exercises (.ipynb) <../exercises/{path.name}>`")
            parts.append(f"[exercises in Colab]({colab.colab_link('exercises/' + path.name)})")
        if solution.exists():
            parts.append(f"[solutions](../solutions/{path.name})")
        if seminar.exists():
            parts.append(f"[seminar guide](../seminar/{seminar.name})")
        if parts:
            lines += ["", ":::{container} slt-problem-set", "**Problem set:** " + " · ".join(parts), ":::"]
    return "\n".join(lines)


def stage_notebook(source: Path, kind: str, stage_dir: Path) -> None:
    """Copy a notebook into the stage with launch links after its title and widget notes."""
    nb = nbformat.read(source, as_version=4)
    block = _launch_block(kind, source)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
            if title is not None:
                lines[title + 1 : title + 1] = ["", block, ""]
                cell.source = "\n".join(lines)
                break
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(block))
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_MIME in data:
                output["data"] = {"text/html": WIDGET_NOTE, "text/plain": "[interactive widget]"}
    target = stage_dir / kind / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


def _course_map(chapters, exercises, solutions, seminars) -> str:
    rows = ["| | chapter | reading | problem set | solutions | seminar |", "|---|---|---|---|---|---|"]
    for number, title in PLANNED.items():
        cells = [f"**{number}**", title]
        if number in chapters:
            path = chapters[number]
            cells.append(f"[read](chapters/{path.name}) · [Colab]({colab.colab_link('chapters/' + path.name)})")
        else:
            cells.append("*in preparation*")
        if number in exercises:
            path = exercises[number]
            cells.append(
                f"{{download}}`download <exercises/{path.name}>` · [Colab]({colab.colab_link('exercises/' + path.name)})"
            )
        else:
            cells.append("")
        cells.append(f"[solutions](solutions/{solutions[number].name})" if number in solutions else "")
        cells.append(f"[guide](seminar/{seminars[number].name})" if number in seminars else "")
        rows.append("| " + " | ".join(cells) + " |")
    extra = sorted(set(chapters) - set(PLANNED))
    for number in extra:
        rows.append(f"| **{number}** | [{chapters[number].stem}](chapters/{chapters[number].name}) | | | | |")
    return "\n".join(rows)


def _problem_sets(exercises, solutions) -> str:
    rows = ["| | problem set | open | solutions |", "|---|---|---|---|"]
    for number, path in exercises.items():
        rel = f"exercises/{path.name}"
        title = PLANNED.get(number, path.stem)
        solution = f"[solutions](solutions/{solutions[number].name})" if number in solutions else ""
        rows.append(
            f"| **{number}** | {{download}}`{title} <{rel}>` | "
            f"[Colab]({colab.colab_link(rel)}) · [Binder]({colab.binder_link(rel)}) | {solution} |"
        )
    return "\n".join(rows)


def stage(stage_dir: Path = STAGE) -> None:
    """Lay out the site's source in ``stage_dir`` (default _build/site-src)."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(SITE, stage_dir, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    import jupyter_server_mathjax

    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(mathjax, stage_dir / "_static" / "mathjax")

    chapters, solutions = _notebooks(REPO / "chapters"), _notebooks(REPO / "solutions")
    exercises, seminars = _notebooks(REPO / "exercises"), _seminars()
    for path in chapters.values():
        stage_notebook(path, "chapters", stage_dir)
    for path in solutions.values():
        stage_notebook(path, "solutions", stage_dir)
    (stage_dir / "exercises").mkdir()
    for path in exercises.values():
        shutil.copy2(path, stage_dir / "exercises" / path.name)
    (stage_dir / "seminar").mkdir()
    for path in seminars.values():
        shutil.copy2(path, stage_dir / "seminar" / path.name)
    for name, target in [("FACILITATORS.md", "facilitators.md"), ("AUTHORING.md", "authoring.md")]:
        if (REPO / "docs" / name).exists():
            shutil.copy2(REPO / "docs" / name, stage_dir / target)

    replacements = {
        "index.md": {"<!-- course-map -->": _course_map(chapters, exercises, solutions, seminars)},
        "problem-sets.md": {"<!-- problem-sets -->": _problem_sets(exercises, solutions)},
    }
    for page, subs in replacements.items():
        text = (stage_dir / page).read_text(encoding="utf-8")
        for marker, content in subs.items():
            text = text.replace(marker, content)
        (stage_dir / page).write_text(text, encoding="utf-8")


def build(out: Path = OUT, stage_dir: Path = STAGE, *, quiet: bool = True) -> Path:
    """Stage into ``stage_dir`` and build the site into ``out``; return the path of its home page."""
    stage(stage_dir)
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-j", "auto", str(stage_dir), str(out)]
    if quiet:
        command.append("-q")
    env = {**os.environ, "SLT_COURSE_ROOT": str(REPO)}
    subprocess.run(command, check=True, cwd=stage_dir, env=env)
    return out / "index.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: _build/site)")
    parser.add_argument("--stage", type=Path, default=STAGE, help="staging folder (default: _build/site-src)")
    args = parser.parse_args()
    start = time.perf_counter()
    index = build(args.out.resolve(), args.stage.resolve())
    print(f"site built in {time.perf_counter() - start:.0f} s: {index}")


if __name__ == "__main__":
    main()
