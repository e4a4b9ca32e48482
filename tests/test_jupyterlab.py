"""JupyterLab starts headless on a free localhost port and serves the course notebooks."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - localhost only
        return response.status, json.loads(response.read() or b"null")


def test_jupyterlab_serves_the_course(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--ServerApp.root_dir={REPO}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # CI runs as root
        cmd.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        # Only a bound for a server that never answers (one that exits is caught at once by poll()):
        # JupyterLab starts in ~10 s alone, much longer on a 2-core machine shared by several runs.
        deadline = time.monotonic() + 600
        while True:
            try:
                status, _ = _get(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode(errors="replace") if server.poll() is not None else ""
                    pytest.fail(f"JupyterLab did not start on port {port}:\n{output[-3000:]}")
                time.sleep(0.5)
        assert status == 200
        status, listing = _get(f"{base}/api/contents/chapters", token)
        names = {item["name"] for item in listing["content"]}
        assert "00_bayesian_learning.ipynb" in names
        status, notebook = _get(f"{base}/api/contents/chapters/00_bayesian_learning.ipynb", token)
        assert notebook["type"] == "notebook" and notebook["content"]["cells"]
        with urllib.request.urlopen(urllib.request.Request(f"{base}/lab", headers={"Authorization": f"token {token}"}), timeout=10) as page:  # noqa: S310
            assert page.status == 200 and b"JupyterLab" in page.read()
        request = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
