"""Run the course on Google Colab or Binder: the repository address, launch links and Colab set-up.

**The repository address** (for the site's *Open in Colab* / *Launch Binder* links and the Colab
set-up cell) comes from one setting, in this order:

1. the environment variable ``SLT_COURSE_REPO`` — a public ``https://github.com/owner/name``
   address; set it to the empty string for "no public repository" (no launch links);
2. otherwise the checkout's git remote ``origin``, when it is a ``https://github.com/owner/name``
   address (an ssh remote, another host or a URL with credentials is not used);
3. otherwise there is none: the site shows no launch buttons (the build says why) and the Colab
   cell only prints how to install the package.

The branch is ``SLT_COURSE_BRANCH`` (default ``main``).

**The Colab set-up cell**, the first code cell of every notebook, installs the course package
when (and only when) it runs on Colab. It installs it with ``--no-deps``, keeping Colab's own
torch, numpy and ipykernel, and adds only light dependencies that are missing. Print it with
``python -m slt_course_utils.colab``; after the address changes, rewrite it in every notebook with
``python -m slt_course_utils.colab --write`` (then ``make exercises``). Binder needs nothing in
the notebook: it builds ``.binder/environment.yml`` and installs the package in ``.binder/postBuild``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

REPO_ENV = "SLT_COURSE_REPO"
BRANCH_ENV = "SLT_COURSE_BRANCH"
DEFAULT_BRANCH = "main"
PACKAGE_NAME = "slt-course-utils"
COLAB_URL = "https://colab.research.google.com"
BINDER_URL = "https://mybinder.org"
COLAB_CELL_MARKER = "# Colab set-up"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The versions the course is tested with (pyproject.toml's pins; tests/test_colab.py keeps them equal).
# On Colab the runtime's own torch and numpy are kept: other 2.x releases are expected to work.
TESTED_WITH = {"torch": "2.13.0", "numpy": "2.4.6"}
# Light runtime dependencies the package imports that a Colab runtime might lack (import names = pip names).
LIGHT_DEPENDENCIES = ("seaborn", "tqdm", "ipywidgets", "nbformat", "nbclient")
_GITHUB = re.compile(r"https://github\.com/([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/([A-Za-z0-9._-]{1,100}?)(?:\.git)?/?")


class Repository(NamedTuple):
    """Where the course is published: ``url`` (https://github.com/owner/name or None), ``branch``, and why."""

    url: str | None
    branch: str
    source: str  # a sentence: where the address came from, or why there is none


def _github_owner_repo(repo_url: str) -> str:
    """'owner/name' of a https://github.com/owner/name address; ValueError for anything else."""
    match = _GITHUB.fullmatch(repo_url.strip())
    if not match or match.group(2) in (".", ".."):
        raise ValueError(
            f"the course repository must be a public https://github.com/owner/name address, got {repo_url!r} "
            f"(set {REPO_ENV}, or set it to the empty string for none)"
        )
    return f"{match.group(1)}/{match.group(2)}"


def _git_origin(root: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def course_repository(root: Path = REPO_ROOT, environ: Mapping[str, str] | None = None) -> Repository:
    """The course's public repository from ``$SLT_COURSE_REPO``, else the git remote, else none."""
    env = os.environ if environ is None else environ
    branch = env.get(BRANCH_ENV, "").strip() or DEFAULT_BRANCH
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise ValueError(f"{BRANCH_ENV} must be a git branch name, got {branch!r}")
    if REPO_ENV in env:
        value = env[REPO_ENV].strip()
        if not value:
            return Repository(None, branch, f"{REPO_ENV} is set to the empty string (no public repository)")
        return Repository(f"https://github.com/{_github_owner_repo(value)}", branch, f"from {REPO_ENV}")
    origin = _git_origin(root)
    if origin is None:
        return Repository(None, branch, f"{REPO_ENV} is not set and the checkout has no git remote 'origin'")
    try:
        owner_repo = _github_owner_repo(origin)
    except ValueError:
        # never echo the remote: it may carry credentials
        return Repository(None, branch, f"{REPO_ENV} is not set and git remote 'origin' is not a "
                                        "https://github.com/owner/name address")
    return Repository(f"https://github.com/{owner_repo}", branch, "from git remote 'origin'")


def _resolve(repo_url: str | None | bool, branch: str | None) -> tuple[str | None, str]:
    """(url, branch): ``repo_url=True`` means "the configured one" (see course_repository)."""
    if repo_url is True:
        repo = course_repository()
        return repo.url, branch or repo.branch
    if repo_url is False:
        repo_url = None
    return (None if repo_url is None else f"https://github.com/{_github_owner_repo(repo_url)}"), branch or DEFAULT_BRANCH


def install_spec(repo_url: str, branch: str = DEFAULT_BRANCH) -> str:
    """The pip requirement that installs the course package from its git repository."""
    return f"{PACKAGE_NAME} @ git+https://github.com/{_github_owner_repo(repo_url)}@{branch}"


def colab_setup_cell(repo_url: str | None | bool = True, branch: str | None = None) -> str:
    """Source of the standard first code cell: on Colab installs the package (``--no-deps``), elsewhere nothing.

    ``repo_url=True`` uses the configured repository (:func:`course_repository`); ``None``: none, and
    on Colab the cell prints how to install the package instead.
    """
    url, branch = _resolve(repo_url, branch)
    tested = ", ".join(f"{name} {version}" for name, version in TESTED_WITH.items())
    head = (
        f"{COLAB_CELL_MARKER}: installs the course package when this notebook runs on Google Colab;"
        " does nothing elsewhere.\n"
        f"# It keeps Colab's own torch, numpy and ipykernel (--no-deps); the course is tested with {tested}.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
    )
    if url is None:
        return head + (
            '    print("No public repository was configured for this course, so the package cannot be installed "\n'
            '          "here automatically: upload the course folder and run  %pip install --no-deps -e <folder>")'
        )
    return head + (
        f'    %pip install --quiet --no-deps "{install_spec(url, branch)}"\n'
        "    import importlib.util\n"
        "\n"
        f"    _missing = [m for m in {LIGHT_DEPENDENCIES!r} if importlib.util.find_spec(m) is None]\n"
        "    if _missing:\n"
        "        %pip install --quiet {' '.join(_missing)}"
    )


def in_colab() -> bool:
    """True when running inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def setup_colab(
    *,
    quiet: bool = True,
    runner: Callable[[Sequence[str]], object] | None = None,
    repo_url: str | None | bool = True,
) -> bool:
    """On Colab, pip-install the course package (``--no-deps``) and any missing light dependency.

    Returns whether it installed. Elsewhere (a local ``make course`` install, Binder, CI) it does
    nothing and returns False. ``runner`` runs each pip command (default: ``subprocess.run(..., check=True)``).
    """
    if not in_colab():
        return False
    url, branch = _resolve(repo_url, None)
    if url is None:
        raise ValueError(f"no public repository is configured ({course_repository().source}): set {REPO_ENV}")
    import importlib.util

    run = runner or (lambda command: subprocess.run(command, check=True))
    pip = [sys.executable, "-m", "pip", "install", *(["--quiet"] if quiet else [])]
    run([*pip, "--no-deps", install_spec(url, branch)])
    missing = [m for m in LIGHT_DEPENDENCIES if importlib.util.find_spec(m) is None]
    if missing:
        run([*pip, *missing])
    return True


def colab_link(path: str, repo_url: str, branch: str = DEFAULT_BRANCH) -> str:
    """'Open in Colab' address of the notebook at ``path`` (relative to the repository root)."""
    return f"{COLAB_URL}/github/{_github_owner_repo(repo_url)}/blob/{branch}/{quote(path.lstrip('/'))}"


def binder_link(path: str, repo_url: str, branch: str = DEFAULT_BRANCH) -> str:
    """'Launch Binder' address that opens the notebook at ``path`` in JupyterLab."""
    urlpath = quote(f"lab/tree/{path.lstrip('/')}", safe="")
    return f"{BINDER_URL}/v2/gh/{_github_owner_repo(repo_url)}/{quote(branch, safe='')}?urlpath={urlpath}"


def github_link(path: str, repo_url: str, branch: str = DEFAULT_BRANCH) -> str:
    """Address of ``path`` on GitHub."""
    return f"https://github.com/{_github_owner_repo(repo_url)}/blob/{branch}/{quote(path.lstrip('/'))}"


# ----------------------------------------------------------------------------- rewriting notebooks


def rewrite_colab_cell(text: str, cell: str) -> str | None:
    """The notebook JSON ``text`` with its first code cell's source set to ``cell``; None if unchanged.

    Only that cell's source changes (outputs, metadata, other cells and the file's formatting are
    kept): ValueError if the first code cell is not a Colab set-up cell or the file is not written
    the way nbformat writes notebooks (then its formatting could not be kept).
    """
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    newline = "\n" if text.endswith("\n") else ""
    if nbformat.writes(nb) + newline != text:
        raise ValueError("not stored the way nbformat writes notebooks; open and save it in Jupyter first")
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None or not first.source.startswith(COLAB_CELL_MARKER):
        raise ValueError(f"its first code cell is not the Colab set-up cell (starting {COLAB_CELL_MARKER!r})")
    if first.source == cell:
        return None
    first.source = cell
    return nbformat.writes(nb) + newline


def write_colab_cells(paths: Sequence[Path], cell: str, *, check_only: bool = False) -> tuple[list[Path], list[str]]:
    """Rewrite (or with ``check_only`` only compare) the Colab cell of each notebook: (changed, problems)."""
    changed, problems = [], []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        try:
            new = rewrite_colab_cell(text, cell)
        except ValueError as err:
            problems.append(f"{path}: {err}")
            continue
        if new is not None:
            changed.append(path)
            if not check_only:
                path.write_text(new, encoding="utf-8")
    return changed, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slt_course_utils.colab",
        description="Print the Colab set-up cell, or write it into the notebooks (chapters/ and solutions/).",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the first code cell of every notebook in place")
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook's Colab cell is not the current one")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb and solutions/*.ipynb")
    args = parser.parse_args(argv)
    repo = course_repository()
    cell = colab_setup_cell(repo.url, repo.branch)
    if not (args.write or args.check):
        print(cell)
        return 0
    print(f"course repository: {repo.url or 'none'} ({repo.source}), branch {repo.branch}", file=sys.stderr)
    paths = args.notebooks or sorted(
        p for folder in ("chapters", "solutions") for p in (REPO_ROOT / folder).glob("[0-9][0-9]_*.ipynb")
    )
    changed, problems = write_colab_cells(paths, cell, check_only=args.check)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    verb = "differ" if args.check else "rewritten"
    print(f"{len(changed)} of {len(paths)} notebook(s) {verb}" + "".join(f"\n  {p}" for p in changed))
    if args.write and changed:
        print("now regenerate the exercises: python -m slt_course_utils.make_exercises")
    return 1 if problems or (args.check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
