"""The pip and conda paths pin the same versions; torch is pinned to the CPU build on disk."""
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def _pins(lines):
    return sorted(l.strip() for l in lines if "==" in l and not l.strip().startswith("#"))


def test_environment_yml_and_requirements_have_the_same_pins():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == req
    assert "torch==2.13.0" in req
    assert all("==" in l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#"))


def _check_python(*args, env=None):
    import subprocess

    return subprocess.run([str(ROOT / "scripts" / "check_python.sh"), *args], capture_output=True, text=True, env=env)


def test_the_setup_accepts_python_3_11_and_newer_and_refuses_older():
    for v in ("3.11", "3.12", "3.14"):
        done = _check_python(v)
        assert done.returncode == 0 and done.stderr == "", (v, done.stderr)
    for v in ("3.10", "2.7"):
        done = _check_python(v)
        assert done.returncode == 1 and "needs Python 3.11 or newer" in done.stderr and "3.12, 3.13 and 3.14" in done.stderr
    done = _check_python("3.99")
    assert done.returncode == 0 and "WARNING: Python 3.99 is newer than the newest checked (3.14" in done.stderr
    assert _check_python("three").returncode == 2
    assert "requires-python = \">=3.11\"" in (ROOT / "pyproject.toml").read_text()
    assert "check_python.sh --pick" in (ROOT / "scripts" / "setup_env.sh").read_text()


def test_the_setup_picks_the_first_supported_interpreter(tmp_path):
    """Fake interpreters on an otherwise empty PATH: the order is python3.11 ... python3.14, then python3."""
    import os
    import shutil

    def fake(name, version):
        f = tmp_path / name
        f.write_text(f"#!/bin/sh\necho {version}\n")
        f.chmod(0o755)

    os.symlink(shutil.which("bash"), tmp_path / "bash")
    env = {"PATH": str(tmp_path)}
    fake("python3", "3.10")
    done = _check_python("--pick", env=env)
    assert done.returncode == 1 and "too old" in done.stderr and "no supported Python" in done.stderr
    fake("python3.13", "3.13")
    fake("python3.12", "3.12")
    assert _check_python("--pick", env=env).stdout == "python3.12\n"
    (tmp_path / "python3.12").unlink()
    (tmp_path / "python3.13").unlink()
    fake("python3", "3.15")
    done = _check_python("--pick", env=env)
    assert done.stdout == "python3\n" and "WARNING: Python 3.15" in done.stderr
    fake("old", "3.10")
    done = _check_python("--pick", env={**env, "PYTHON": str(tmp_path / "old")})
    assert done.returncode == 1 and done.stdout == ""  # an explicit PYTHON that is too old is refused
