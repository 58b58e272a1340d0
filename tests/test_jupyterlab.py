"""A real JupyterLab server on loopback lists the notebooks and offers the kit's kernel."""
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from probex_lib import paths, runner


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture()
def lab(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={paths.REPO_ROOT}", "--ServerApp.port_retries=0",
           "--allow-root"]  # CI containers run as root
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                _get(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        else:
            raise RuntimeError(f"jupyter lab did not answer on {base}: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_jupyterlab_lists_the_notebooks_and_the_kit_kernel(lab):
    base, token = lab
    listing = _get(f"{base}/api/contents/notebooks", token)
    names = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
    assert {p.name for p in runner.discover()} <= names and len(names) >= 7
    specs = _get(f"{base}/api/kernelspecs", token)["kernelspecs"]
    assert "probex-kit" in specs, f"kit kernel not registered; found {sorted(specs)}"
    argv = specs["probex-kit"]["spec"]["argv"]
    assert Path(argv[0]).resolve() == Path(sys.executable).resolve(), "the kit kernel does not run the kit's Python"
    for nb in runner.discover():  # every notebook opens with the kit's kernel
        assert nbformat.read(nb, as_version=4).metadata["kernelspec"]["name"] == "probex-kit", nb.name
    with pytest.raises(urllib.error.HTTPError) as err:  # the token is required
        _get(f"{base}/api/contents/notebooks", "wrong-token")
    assert err.value.code == 403
