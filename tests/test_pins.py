"""pyproject.toml is the one place where versions are pinned; environment.yml must mirror it."""

import re
import tomllib

from .conftest import REPO

# conda-forge names that differ from PyPI names
# extras that environment.yml does not carry (benchmark-only, installed in their own venv)
NOT_MIRRORED = {"bench"}
CONDA_NAME = {"torch": "pytorch", "jupyter-server-mathjax": "jupyter_server_mathjax"}


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = {k: v for k, v in project["optional-dependencies"].items() if k not in NOT_MIRRORED}
    specs = list(project["dependencies"]) + [d for deps in extras.values() for d in deps]
    pins = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.\-+]*)", spec)
        assert match, f"pyproject dependency {spec!r} is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def _environment_pins() -> tuple[dict[str, str], str]:
    pins, python = {}, ""
    for line in (REPO / "environment.yml").read_text().splitlines():
        match = re.fullmatch(r"\s+- ([A-Za-z0-9_.\-]+)=([0-9][A-Za-z0-9.\-]*)\s*", line)
        if match:
            if match.group(1) == "python":
                python = match.group(2)
            else:
                pins[match.group(1).lower()] = match.group(2)
    return pins, python


def test_environment_yml_mirrors_pyproject_pins():
    pins = _pyproject_pins()
    env, python = _environment_pins()
    expected = {CONDA_NAME.get(name, name): version for name, version in pins.items()}
    assert env == expected, f"environment.yml differs from pyproject.toml: {set(env.items()) ^ set(expected.items())}"
    assert python == "3.11"


def test_benchmark_extra_is_pinned():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["bench"] == ["devinterp==1.3.2"]


def test_torch_is_pinned_to_the_cpu_wheel_release():
    assert _pyproject_pins()["torch"] == "2.13.0"


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for name, pinned in _pyproject_pins().items():
        installed = version(name).split("+")[0]  # torch reports 2.13.0+cpu
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned} (re-run make install)"
