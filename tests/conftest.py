"""Shared fixtures: every test works in its own data and figures folders."""
from __future__ import annotations

import pytest


@pytest.fixture()
def kit_dirs(tmp_path, monkeypatch):
    """Point PROBEX_DATA and PROBEX_FIGURES at fresh temporary folders; returns (data, figures)."""
    data, figures = tmp_path / "data", tmp_path / "figures"
    monkeypatch.setenv("PROBEX_DATA", str(data))
    monkeypatch.setenv("PROBEX_FIGURES", str(figures))
    return data, figures


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium from the Debian packages (tests/browser.py), installed with apt-get when
    absent. A failed install fails the test with apt's error; nothing is skipped."""
    from browser import BrowserInstallError, Chromium

    try:
        return Chromium.ensure()
    except BrowserInstallError as exc:
        pytest.fail(str(exc), pytrace=False)
