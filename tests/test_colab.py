"""slt_course_utils.colab: Colab detection and set-up, launch links, the standard Colab cell."""

import sys
import types

import nbformat
import pytest

from slt_course_utils import colab

from .conftest import CHAPTERS, EXERCISES, REPO, SOLUTIONS, notebooks


def test_setup_colab_is_a_no_op_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    assert colab.in_colab() is False
    assert colab.setup_colab(runner=calls.append) is False
    assert calls == []


def test_setup_colab_installs_the_course_from_its_repository_on_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    calls = []
    assert colab.in_colab() is True
    assert colab.setup_colab(runner=calls.append) is True
    (command,) = calls
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert command[-1] == f"slt-course-utils @ git+{colab.COURSE_REPO}@{colab.COURSE_BRANCH}"


def test_links_are_built_from_the_one_repository_constant():
    owner_repo = colab.COURSE_REPO.removeprefix("https://github.com/")
    path = "chapters/00_bayesian_learning.ipynb"
    assert colab.colab_link(path) == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{colab.COURSE_BRANCH}/{path}"
    )
    assert colab.binder_link(path) == (
        f"https://mybinder.org/v2/gh/{owner_repo}/{colab.COURSE_BRANCH}"
        "?urlpath=lab%2Ftree%2Fchapters%2F00_bayesian_learning.ipynb"
    )
    assert colab.github_link(path).startswith(colab.COURSE_REPO + "/blob/")


@pytest.mark.parametrize("bad", ["https://gitlab.com/a/b", "https://github.com/only-owner", "github.com/a/b"])
def test_non_github_repository_is_rejected_with_a_sentence(bad):
    with pytest.raises(ValueError, match="COURSE_REPO must be"):
        colab.colab_link("x.ipynb", repo_url=bad)


def test_colab_cell_installs_only_on_colab():
    source = colab.colab_setup_cell()
    assert source.startswith(colab.COLAB_CELL_MARKER)
    assert 'if "google.colab" in sys.modules:' in source
    assert colab.install_spec() in source


def test_notebooks_with_a_colab_cell_use_the_current_one():
    """A notebook that has the Colab set-up cell has it first and identical to colab_setup_cell()."""
    expected = colab.colab_setup_cell()
    for path in notebooks(CHAPTERS) + notebooks(SOLUTIONS) + notebooks(EXERCISES):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(colab.COLAB_CELL_MARKER)]
        if not cells:
            continue
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert cells == [first_code], f"{path.name}: the Colab set-up cell must be the first code cell"
        assert first_code.source == expected, (
            f"{path.name}: Colab set-up cell differs from slt_course_utils.colab.colab_setup_cell() "
            "(print it with `python -m slt_course_utils.colab`)"
        )


def _yaml_lines(path):
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_binder_environment_is_environment_yml_without_the_editable_install():
    """Binder builds .binder/environment.yml before the repository is copied in; postBuild installs it."""
    root = [line for line in _yaml_lines(REPO / "environment.yml") if line.strip() not in ("- pip:", "- -e .")]
    assert _yaml_lines(REPO / ".binder" / "environment.yml") == root, (
        ".binder/environment.yml must list exactly the pins of environment.yml (without `pip: -e .`)"
    )
    post_build = (REPO / ".binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build
    assert (REPO / ".binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
