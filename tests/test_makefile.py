"""The two-command set-up: `make test` re-installs the venv exactly when the pins change, whatever the file times."""

import os
import shutil
import subprocess
import time

import pytest

from .conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_question(*args: str) -> int:
    """`make -q install`: 0 when the venv is up to date, 1 when make would re-install."""
    return subprocess.run(["make", "-q", "install", *args], cwd=REPO, capture_output=True).returncode


def test_install_stamp_follows_the_content_of_pyproject_not_its_time():
    if make_question() != 0:
        pytest.skip("the venv was not installed by `make install` (e.g. a conda environment)")
    pyproject = REPO / "pyproject.toml"
    before = pyproject.stat()
    try:
        os.utime(pyproject, (time.time() + 3600, time.time() + 3600))  # as after a fresh git clone
        assert make_question() == 0, "a newer pyproject.toml with the same pins must not trigger a re-install"
    finally:
        os.utime(pyproject, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert make_question("PINS_HASH=0000000000000000") == 1, "changed pins must trigger a re-install"
