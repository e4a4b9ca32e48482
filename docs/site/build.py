"""Build the course website: ``python docs/site/build.py`` (what ``make site`` runs).

1. Stage the course into ``_build/site-src``: this folder's pages and config, every notebook that
   exists in ``chapters/``; the **problem sets** — the exercise notebooks of ``exercises/`` (stubs
   and checks) — as pages under ``problem-sets/`` and as downloads; the solution notebooks under
   ``solutions/``, labelled as solutions and without nbgrader's ``BEGIN/END SOLUTION`` marker lines;
   ``docs/seminar/*.md`` (marked as facilitators' guides with answers), the facilitators' and
   authors' guides, and MathJax 2 from the pip package ``jupyter-server-mathjax``. Launch links
   are added to the staged copies, never to the originals.
2. Run Sphinx (myst-nb, stored outputs, no execution) into ``_build/site``.

*Open in Colab* / *Launch Binder* links are built from the course's public repository
(``$SLT_COURSE_REPO`` or the checkout's GitHub remote, see ``slt_course_utils/colab.py``); when
there is none the site has no launch links, and the build says why.

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
MARKERS = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")

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
    "09": "Development: the LLC over training",
    "10": "Refined LLCs, susceptibilities and influence",
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


# Site folder of each kind of notebook, and the repository folder it comes from.
SOURCE_FOLDER = {"chapters": "chapters", "problem-sets": "exercises", "solutions": "solutions"}
SOLUTIONS_NOTE = (
    ":::{{admonition}} Solutions\n:class: warning\n"
    "This page shows the **worked solutions**. Try the [problem set](../problem-sets/{name}) first: "
    "it has the same exercises with a check under each.\n:::"
)
SEMINAR_NOTE = (
    ":::{admonition} For facilitators\n:class: note\n"
    "A seminar guide for whoever runs the session. Its last sections contain the **answers** to the "
    "discussion questions and exercises.\n:::"
)


def _launch_block(kind: str, path: Path, repo: colab.Repository) -> str:
    """MyST for the links at the top of a staged notebook page (kind: chapters, problem-sets, solutions).

    Colab and Binder links only when ``repo.url`` is set (a public GitHub repository)."""
    rel = f"{SOURCE_FOLDER[kind]}/{path.name}"
    links = []
    if repo.url:
        links += [f"[Open in Colab]({colab.colab_link(rel, repo.url, repo.branch)})",
                  f"[Launch Binder]({colab.binder_link(rel, repo.url, repo.branch)})"]
    download = f"../exercises/{path.name}" if kind == "problem-sets" else path.name
    links.append(f"{{download}}`Download notebook <{download}>`")
    lines = [":::{container} slt-launch", " ".join(links), ":::"]
    if kind == "chapters":
        exercise = REPO / "exercises" / path.name
        solution = REPO / "solutions" / path.name
        seminar = REPO / "docs" / "seminar" / f"{path.stem}.md"
        parts = []
        if exercise.exists():
            parts.append(f"[exercises](../problem-sets/{path.name})")
        if solution.exists():
            parts.append(f"[solutions](../solutions/{path.name})")
        if seminar.exists():
            parts.append(f"[seminar guide for facilitators](../seminar/{seminar.name})")
        if parts:
            lines += ["", ":::{container} slt-problem-set", "**Problem set:** " + " · ".join(parts), ":::"]
    if kind == "solutions" and (REPO / "exercises" / path.name).exists():
        lines += ["", SOLUTIONS_NOTE.format(name=path.name)]
    return "\n".join(lines)


def strip_markers(source: str) -> str:
    """A cell's source without nbgrader's marker lines (in Markdown they would render as headings)."""
    return "\n".join(line for line in source.split("\n") if not MARKERS.match(line))


def stage_notebook(source: Path, kind: str, stage_dir: Path, repo: colab.Repository) -> None:
    """Copy a notebook into the stage with links after its title, widget notes, no nbgrader markers."""
    nb = nbformat.read(source, as_version=4)
    block = _launch_block(kind, source, repo)
    for cell in nb.cells:
        cell.source = strip_markers(cell.source)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
            if title is not None:
                if kind == "solutions":  # the solution notebook's title is the problem set's: say which page
                    heading = re.sub(r"\s*[—–-]\s*problem set\s*$", "", lines[title])
                    lines[title] = f"{heading} — solutions"
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


def _colab(rel: str, repo: colab.Repository) -> str:
    """' · [Colab](...)' for the notebook at ``rel``, or '' without a public repository."""
    return f" · [Colab]({colab.colab_link(rel, repo.url, repo.branch)})" if repo.url else ""


def _course_map(chapters, exercises, solutions, seminars, repo: colab.Repository) -> str:
    rows = ["| | chapter | reading | problem set | solutions | seminar (facilitators) |",
            "|---|---|---|---|---|---|"]
    for number, title in PLANNED.items():
        cells = [f"**{number}**", title]
        if number in chapters:
            path = chapters[number]
            cells.append(f"[read](chapters/{path.name})" + _colab("chapters/" + path.name, repo))
        else:
            cells.append("*in preparation*")
        if number in exercises:
            path = exercises[number]
            cells.append(f"[exercises](problem-sets/{path.name}) · {{download}}`download <exercises/{path.name}>`"
                         + _colab("exercises/" + path.name, repo))
        else:
            cells.append("")
        cells.append(f"[solutions](solutions/{solutions[number].name})" if number in solutions else "")
        cells.append(f"[guide](seminar/{seminars[number].name})" if number in seminars else "")
        rows.append("| " + " | ".join(cells) + " |")
    extra = sorted(set(chapters) - set(PLANNED))
    for number in extra:
        rows.append(f"| **{number}** | [{chapters[number].stem}](chapters/{chapters[number].name}) | | | | |")
    return "\n".join(rows)


def _problem_sets(exercises, solutions, repo: colab.Repository) -> str:
    rows = ["| | problem set | download or open | solutions |", "|---|---|---|---|"]
    for number, path in exercises.items():
        rel = f"exercises/{path.name}"
        title = PLANNED.get(number, path.stem)
        solution = f"[solutions](solutions/{solutions[number].name})" if number in solutions else ""
        launch = f"{{download}}`.ipynb <{rel}>`" + _colab(rel, repo)
        if repo.url:
            launch += f" · [Binder]({colab.binder_link(rel, repo.url, repo.branch)})"
        rows.append(f"| **{number}** | [{title}](problem-sets/{path.name}) | {launch} | {solution} |")
    return "\n".join(rows)


def stage(stage_dir: Path = STAGE, repo: colab.Repository | None = None) -> colab.Repository:
    """Lay out the site's source in ``stage_dir`` (default _build/site-src); return the repository used.

    ``repo`` (default: the configured one, ``colab.course_repository()``) gives the launch links.
    """
    repo = repo or colab.course_repository(REPO)
    if repo.url:
        print(f"launch links (Colab, Binder) for {repo.url}, branch {repo.branch} ({repo.source})")
    else:
        print(f"no Colab/Binder launch links on the site: {repo.source}. Set {colab.REPO_ENV}="
              "https://github.com/owner/name to add them.")
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(SITE, stage_dir, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    import jupyter_server_mathjax

    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(mathjax, stage_dir / "_static" / "mathjax")

    chapters, solutions = _notebooks(REPO / "chapters"), _notebooks(REPO / "solutions")
    exercises, seminars = _notebooks(REPO / "exercises"), _seminars()
    for path in chapters.values():
        stage_notebook(path, "chapters", stage_dir, repo)
    for path in solutions.values():
        stage_notebook(path, "solutions", stage_dir, repo)
    (stage_dir / "exercises").mkdir()  # the downloads, byte for byte
    for path in exercises.values():
        shutil.copy2(path, stage_dir / "exercises" / path.name)
        stage_notebook(path, "problem-sets", stage_dir, repo)
    (stage_dir / "seminar").mkdir()
    for path in seminars.values():
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        title = next((i for i, line in enumerate(lines) if line.startswith("# ")), -1)
        lines[title + 1 : title + 1] = ["", SEMINAR_NOTE, ""]
        (stage_dir / "seminar" / path.name).write_text("\n".join(lines), encoding="utf-8")
    for name, target in [("FACILITATORS.md", "facilitators.md"), ("AUTHORING.md", "authoring.md")]:
        if (REPO / "docs" / name).exists():
            shutil.copy2(REPO / "docs" / name, stage_dir / target)

    replacements = {
        "index.md": {"<!-- course-map -->": _course_map(chapters, exercises, solutions, seminars, repo)},
        "problem-sets.md": {"<!-- problem-sets -->": _problem_sets(exercises, solutions, repo)},
    }
    for page, subs in replacements.items():
        text = (stage_dir / page).read_text(encoding="utf-8")
        for marker, content in subs.items():
            text = text.replace(marker, content)
        (stage_dir / page).write_text(text, encoding="utf-8")
    return repo


def build(out: Path = OUT, stage_dir: Path = STAGE, *, quiet: bool = True) -> Path:
    """Stage into ``stage_dir`` and build the site into ``out``; return the path of its home page."""
    repo = stage(stage_dir)
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-j", "auto", str(stage_dir), str(out)]
    if quiet:
        command.append("-q")
    # conf.py uses the same repository (or none): pass it on explicitly
    env = {**os.environ, "SLT_COURSE_ROOT": str(REPO), colab.REPO_ENV: repo.url or "", colab.BRANCH_ENV: repo.branch}
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
