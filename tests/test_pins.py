"""pyproject.toml is the one place where versions are pinned; environment.yml must mirror it.

conda-forge does not always carry the release pinned on PyPI. Where it does not, environment.yml
pins the nearest release that conda-forge has, and CONDA_VERSION below records that (checked
against the conda-forge feedstocks and anaconda.org/conda-forge file lists; see README.md, "With conda").
"""

import re
import sys
import tomllib
from pathlib import Path

from .conftest import REPO

# extras that environment.yml does not carry (benchmark-only, installed in their own venv)
NOT_MIRRORED = {"bench"}
# conda-forge names that differ from PyPI names (conda does not treat _ and - as the same)
CONDA_NAME = {"torch": "pytorch"}
# PyPI pin -> the release conda-forge has, for pins conda-forge did not have when last checked
CONDA_VERSION = {
    "matplotlib": ("3.11.2", "3.11.0"),
    "ipywidgets": ("8.1.9", "8.1.8"),
    "jupyterlab": ("4.6.6", "4.5.6"),
    "ipykernel": ("7.4.0", "7.2.0"),
    "nbclient": ("0.11.0", "0.10.4"),
    "tqdm": ("4.70.1", "4.70.0"),
    "pytest": ("9.2.0", "9.1.1"),
    "ruff": ("0.17.6", "0.16.2"),
    "sphinx-book-theme": ("1.4.0", "1.2.0"),
}
# What Binder needs: the runtime dependencies only (no test, lint or website tools).
BINDER_EXCLUDES = {"pytest", "pytest-xdist", "nbval", "ruff", "sphinx", "myst-nb", "sphinx-book-theme",
                   "jupyter-server-mathjax"}


def _pyproject_pins(extras: bool = True) -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = {k: v for k, v in project["optional-dependencies"].items() if k not in NOT_MIRRORED}
    specs = list(project["dependencies"]) + ([d for deps in optional.values() for d in deps] if extras else [])
    pins = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.\-+]*)", spec)
        assert match, f"pyproject dependency {spec!r} is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def _environment_pins(path: Path = REPO / "environment.yml") -> tuple[dict[str, str], str]:
    pins, python = {}, ""
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"\s+- ([A-Za-z0-9_.\-]+)=([0-9][A-Za-z0-9.\-]*)\s*", line)
        if match:
            if match.group(1) == "python":
                python = match.group(2)
            else:
                pins[match.group(1).lower()] = match.group(2)
    return pins, python


def _expected_conda_pins(extras: bool = True) -> dict[str, str]:
    expected = {}
    for name, version in _pyproject_pins(extras).items():
        if name in CONDA_VERSION:
            pypi, conda = CONDA_VERSION[name]
            assert version == pypi, (
                f"{name}: pyproject now pins {version}; check whether conda-forge has it and update "
                f"CONDA_VERSION in tests/test_pins.py (it maps {pypi} to {conda})"
            )
            version = conda
        expected[CONDA_NAME.get(name, name)] = version
    return expected


def test_environment_yml_mirrors_pyproject_pins():
    env, python = _environment_pins()
    expected = _expected_conda_pins()
    assert env == expected, f"environment.yml differs from pyproject.toml: {set(env.items()) ^ set(expected.items())}"
    assert python == "3.11"
    assert "jupyter_server_mathjax" not in (REPO / "environment.yml").read_text(), (
        "the conda-forge package is jupyter-server-mathjax (hyphens); conda does not match the underscore name"
    )


def test_binder_environment_is_lean():
    """Binder gets the runtime pins of environment.yml and nothing for tests, linting or the website."""
    env, python = _environment_pins(REPO / ".binder" / "environment.yml")
    expected = {k: v for k, v in _expected_conda_pins(extras=False).items() if k not in BINDER_EXCLUDES}
    assert env == expected, f".binder/environment.yml: {set(env.items()) ^ set(expected.items())}"
    assert python == "3.11"
    post_build = (REPO / ".binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build
    assert (REPO / ".binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_benchmark_extra_is_pinned():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["bench"] == ["devinterp==1.3.2"]


def test_torch_is_pinned_to_the_cpu_wheel_release():
    assert _pyproject_pins()["torch"] == "2.13.0"


def test_installed_versions_match_the_pins():
    """The pip pins in a venv (make install); in a conda environment, environment.yml's pins."""
    from importlib.metadata import version

    in_conda = (Path(sys.prefix) / "conda-meta").is_dir()
    for name, pinned in _pyproject_pins().items():
        if in_conda and name in CONDA_VERSION:
            pinned = CONDA_VERSION[name][1]
        installed = version(name).split("+")[0]  # torch reports 2.13.0+cpu
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned} (re-run make install)"
