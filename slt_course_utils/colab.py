"""Run the course on Google Colab or Binder: the repository address, launch links and Colab set-up.

``COURSE_REPO`` is the one place the course's public repository is named. It is a placeholder
until the course is published: set it (and ``COURSE_BRANCH``) to the real repository, then
regenerate the site (``make site``) and update the Colab set-up cell (see ``docs/AUTHORING.md``;
``python -m slt_course_utils.colab`` prints the cell, and a test keeps notebooks in agreement).

On Colab a notebook has no ``slt_course_utils``: the first code cell of every notebook installs it
when (and only when) it runs on Colab::

    import sys

    if "google.colab" in sys.modules:
        %pip install --quiet "slt-course-utils @ git+https://github.com/slt-course/slt-course@main"

``setup_colab()`` does the same from Python (for scripts and for a Colab session that already has
the package, e.g. to upgrade it). Binder needs nothing in the notebook: it builds its environment
from ``.binder/environment.yml`` (the pins of ``environment.yml``) and installs the package in
``.binder/postBuild``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from urllib.parse import quote

# The course's public repository (placeholder: set it for the real repository).
COURSE_REPO = "https://github.com/slt-course/slt-course"
COURSE_BRANCH = "main"
PACKAGE_NAME = "slt-course-utils"
COLAB_URL = "https://colab.research.google.com"
BINDER_URL = "https://mybinder.org"
COLAB_CELL_MARKER = "# Colab set-up"


def _github_owner_repo(repo_url: str = COURSE_REPO) -> str:
    """'owner/name' of a https://github.com/owner/name repository address."""
    prefix = "https://github.com/"
    if not repo_url.startswith(prefix):
        raise ValueError(f"COURSE_REPO must be a https://github.com/owner/name address, got {repo_url!r}")
    owner_repo = repo_url[len(prefix) :].strip("/").removesuffix(".git")
    if owner_repo.count("/") != 1:
        raise ValueError(f"COURSE_REPO must be a https://github.com/owner/name address, got {repo_url!r}")
    return owner_repo


def install_spec(repo_url: str = COURSE_REPO, branch: str = COURSE_BRANCH) -> str:
    """The pip requirement that installs the course package from its git repository."""
    _github_owner_repo(repo_url)
    return f"{PACKAGE_NAME} @ git+{repo_url.removesuffix('/')}@{branch}"


def colab_setup_cell(repo_url: str = COURSE_REPO, branch: str = COURSE_BRANCH) -> str:
    """Source of the standard first code cell: installs the package on Colab, a no-op elsewhere."""
    return (
        f"{COLAB_CELL_MARKER}: installs the course package when this notebook runs on Google Colab;"
        " does nothing elsewhere.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "{install_spec(repo_url, branch)}"'
    )


def in_colab() -> bool:
    """True when running inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def setup_colab(
    *,
    quiet: bool = True,
    runner: Callable[[Sequence[str]], object] | None = None,
) -> bool:
    """On Colab, pip-install the course package from ``COURSE_REPO``; return whether it did.

    Elsewhere (a local ``make course`` install, Binder, CI) it does nothing and returns False.
    ``runner`` runs the pip command (default: ``subprocess.run(..., check=True)``).
    """
    if not in_colab():
        return False
    command = [sys.executable, "-m", "pip", "install", *(["--quiet"] if quiet else []), install_spec()]
    if runner is None:
        subprocess.run(command, check=True)
    else:
        runner(command)
    return True


def colab_link(path: str, repo_url: str = COURSE_REPO, branch: str = COURSE_BRANCH) -> str:
    """'Open in Colab' address of the notebook at ``path`` (relative to the repository root)."""
    return f"{COLAB_URL}/github/{_github_owner_repo(repo_url)}/blob/{branch}/{path.lstrip('/')}"


def binder_link(path: str, repo_url: str = COURSE_REPO, branch: str = COURSE_BRANCH) -> str:
    """'Launch Binder' address that opens the notebook at ``path`` in JupyterLab."""
    urlpath = quote(f"lab/tree/{path.lstrip('/')}", safe="")
    return f"{BINDER_URL}/v2/gh/{_github_owner_repo(repo_url)}/{branch}?urlpath={urlpath}"


def github_link(path: str, repo_url: str = COURSE_REPO, branch: str = COURSE_BRANCH) -> str:
    """Address of ``path`` on GitHub."""
    return f"{repo_url.removesuffix('/')}/blob/{branch}/{path.lstrip('/')}"


if __name__ == "__main__":
    print(colab_setup_cell())
