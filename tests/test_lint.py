"""ruff over the package, tests, notebooks and scripts (configured in pyproject.toml)."""

import subprocess
import sys

from .conftest import REPO


def test_ruff_is_clean():
    targets = [p for p in ("slt_course_utils", "tests", "chapters", "solutions", "benchmarks", "docs") if (REPO / p).exists()]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", *targets], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff found problems (run `ruff check --fix`):\n{result.stdout}{result.stderr}"


def test_python_version():
    assert sys.version_info[:2] >= (3, 11)
