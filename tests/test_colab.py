"""slt_course_utils.colab: Colab detection and set-up, launch links, the standard Colab cell."""

import json
import subprocess
import sys
import tomllib
import types

import nbformat
import pytest

from slt_course_utils import colab

from .conftest import CHAPTERS, EXERCISES, REPO, SOLUTIONS, notebooks

EXAMPLE = "https://github.com/example-org/slt-course"


def test_setup_colab_is_a_no_op_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    assert colab.in_colab() is False
    assert colab.setup_colab(runner=calls.append) is False
    assert calls == []


def test_setup_colab_installs_without_dependencies_on_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    calls = []
    assert colab.in_colab() is True
    assert colab.setup_colab(runner=calls.append, repo_url=EXAMPLE) is True
    command = calls[0]  # (a second call would install missing light dependencies; here none is missing)
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert "--no-deps" in command
    assert command[-1] == f"slt-course-utils @ git+{EXAMPLE}@main"
    assert not any(word in " ".join(c) for c in calls for word in ("torch", "numpy", "ipykernel"))
    with pytest.raises(ValueError, match="no public repository"):
        colab.setup_colab(runner=calls.append, repo_url=None)


@pytest.mark.parametrize("path", ["chapters/00_bayesian_learning.ipynb", "exercises/03_learning_coefficient.ipynb"])
def test_launch_urls_have_the_documented_shape(path):
    assert colab.colab_link(path, EXAMPLE) == (
        f"https://colab.research.google.com/github/example-org/slt-course/blob/main/{path}"
    )
    assert colab.binder_link(path, EXAMPLE, "dev") == (
        "https://mybinder.org/v2/gh/example-org/slt-course/dev?urlpath=lab%2Ftree%2F" + path.replace("/", "%2F")
    )
    assert colab.github_link(path, EXAMPLE + ".git") == f"{EXAMPLE}/blob/main/{path}"
    assert colab.install_spec(EXAMPLE + "/") == f"slt-course-utils @ git+{EXAMPLE}@main"


@pytest.mark.parametrize("bad", [
    "https://gitlab.com/a/b", "https://github.com/only-owner", "github.com/a/b", "http://github.com/a/b",
    "https://token@github.com/a/b", "git@github.com:a/b.git", "https://github.com/a/b/c", "https://github.com/a/..",
])
def test_non_github_repository_is_rejected_with_a_sentence(bad):
    with pytest.raises(ValueError, match="must be a public https://github.com/owner/name address"):
        colab.colab_link("x.ipynb", bad)


def test_repository_comes_from_the_setting_else_the_git_remote_else_none(tmp_path, monkeypatch):
    env = {colab.REPO_ENV: EXAMPLE + ".git", colab.BRANCH_ENV: "course"}
    repo = colab.course_repository(tmp_path, env)
    assert (repo.url, repo.branch) == (EXAMPLE, "course") and colab.REPO_ENV in repo.source
    assert colab.course_repository(tmp_path, {colab.REPO_ENV: ""}).url is None
    with pytest.raises(ValueError, match=colab.REPO_ENV):
        colab.course_repository(tmp_path, {colab.REPO_ENV: "https://example.com/x"})
    with pytest.raises(ValueError, match=colab.BRANCH_ENV):
        colab.course_repository(tmp_path, {colab.BRANCH_ENV: "main; rm -rf /"})
    # git remotes: a public https GitHub address is used; credentials, ssh or other hosts are not (nor echoed)
    for remote, expected in [(EXAMPLE + ".git", EXAMPLE), ("https://user:s3cret@github.com/a/b.git", None),
                             ("git@github.com:a/b.git", None), ("https://gitlab.com/a/b", None), (None, None)]:
        monkeypatch.setattr(colab, "_git_origin", lambda root, remote=remote: remote)
        repo = colab.course_repository(tmp_path, {})
        assert repo.url == expected, remote
        assert "s3cret" not in repo.source and (expected or "origin" in repo.source)


def test_git_remote_of_a_real_checkout(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert colab.course_repository(tmp_path, {}).url is None
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", EXAMPLE + ".git"], check=True)
    assert colab.course_repository(tmp_path, {}).url == EXAMPLE


def _run_cell(source: str, on_colab: bool) -> list[str]:
    """Run a Colab cell in IPython (magics recorded instead of run); returns the %pip lines and prints."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    ran: list[str] = []
    shell.register_magic_function(lambda line: ran.append(line), "line", "pip")
    saved = sys.modules.get("google.colab")
    if on_colab:
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    try:
        result = shell.run_cell(source)
    finally:
        if saved is None:
            sys.modules.pop("google.colab", None)
    assert result.success, result.error_in_exec or result.error_before_exec
    return ran


def test_colab_cell_installs_only_on_colab_and_never_replaces_torch(monkeypatch):
    source = colab.colab_setup_cell(EXAMPLE)
    assert source.startswith(colab.COLAB_CELL_MARKER)
    assert 'if "google.colab" in sys.modules:' in source
    assert "torch 2.13.0, numpy 2.4.6" in source
    assert _run_cell(source, on_colab=False) == []
    ran = _run_cell(source, on_colab=True)
    assert ran[0] == f'install --quiet --no-deps "slt-course-utils @ git+{EXAMPLE}@main"'
    monkeypatch.setattr(colab, "LIGHT_DEPENDENCIES", ("not_a_module_xyz",))
    ran = _run_cell(colab.colab_setup_cell(EXAMPLE), on_colab=True)
    assert ran[1] == "install --quiet not_a_module_xyz"  # only what is missing, expanded by IPython


def test_colab_cell_without_a_repository_is_valid_and_only_prints(capsys):
    source = colab.colab_setup_cell(None)
    assert "%pip" not in source.replace("%pip install --no-deps -e <folder>", "")
    assert _run_cell(source, on_colab=False) == []
    assert _run_cell(source, on_colab=True) == []
    assert "No public repository" in capsys.readouterr().out


def test_tested_versions_are_the_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(spec.split("==") for spec in project["dependencies"])
    assert colab.TESTED_WITH == {name: pins[name] for name in colab.TESTED_WITH}
    assert all(name in " ".join(project["dependencies"]) for name in colab.LIGHT_DEPENDENCIES)


def test_write_rewrites_only_the_first_code_cell_in_place(tmp_path):
    """On copies of the course's notebooks: only the Colab cell's source changes, byte for byte."""
    copies = []
    for path in notebooks(CHAPTERS)[:2] + notebooks(SOLUTIONS)[:2]:
        copy = tmp_path / path.parent.name / path.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    cell = colab.colab_setup_cell(EXAMPLE)
    before = {p: json.loads(p.read_text()) for p in copies}
    changed, problems = colab.write_colab_cells(copies, cell)
    assert problems == [] and changed == copies
    for p in copies:
        old, new = before[p], json.loads(p.read_text())
        index = next(i for i, c in enumerate(new["cells"]) if c["cell_type"] == "code")
        assert "".join(new["cells"][index]["source"]) == cell
        new["cells"][index]["source"] = old["cells"][index]["source"]
        assert new == old, f"{p.name}: something besides the Colab cell changed"
    assert colab.write_colab_cells(copies, cell) == ([], [])  # idempotent
    # and back: writing the original cell restores the original bytes
    original = notebooks(CHAPTERS)[0]
    first_code = next(c for c in nbformat.read(original, as_version=4).cells if c.cell_type == "code")
    colab.write_colab_cells(copies[:1], first_code.source)
    assert copies[0].read_bytes() == original.read_bytes()


def test_write_refuses_a_notebook_without_the_colab_cell(tmp_path, capsys):
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), path)
    before = path.read_bytes()
    assert colab.main(["--write", str(path)]) == 1
    assert "not the Colab set-up cell" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_check_reports_notebooks_with_another_cell(tmp_path, monkeypatch):
    path = tmp_path / "00_x.ipynb"
    cell = nbformat.v4.new_code_cell(colab.colab_setup_cell(EXAMPLE))
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    monkeypatch.setenv(colab.REPO_ENV, "")
    assert colab.main(["--check", str(path)]) == 1
    assert colab.main(["--write", str(path)]) == 0
    assert colab.main(["--check", str(path)]) == 0
    assert "No public repository" in path.read_text()


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
            "(after merging or when the repository address changes run `python -m slt_course_utils.colab --write` "
            "and `make exercises`)"
        )
