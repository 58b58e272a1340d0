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
