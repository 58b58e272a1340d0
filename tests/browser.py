"""Headless Chromium for tests: the Debian package, installed when absent, with the network blocked.

    browser = Chromium.ensure()              # installs it (apt-get, as root) if needed
    dom = browser.dump_dom(page)             # the DOM after the page (and its scripts) loaded
    browser.screenshot(page, png)            # a PNG of the rendered page

The network is blocked twice: host names resolve to nothing and every request goes to a proxy on
a closed port (loopback excepted); where ``unshare -n`` works the browser also runs in an empty
network namespace. A failed install raises with apt's own error: a test using it fails, never skips.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
NO_NETWORK = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


class BrowserInstallError(RuntimeError):
    """Chromium is absent and apt-get could not install it."""


def _run_apt(*args: str) -> None:
    done = subprocess.run(["apt-get", *args], env=APT_ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise BrowserInstallError(f"`apt-get {' '.join(args)}` failed (exit {done.returncode}):\n"
                                  + (done.stderr.strip() or done.stdout.strip())[-3000:])


def install_chromium() -> str:
    """``apt-get update && apt-get install -y chromium``; the path of the binary."""
    if os.geteuid() != 0:
        raise BrowserInstallError("chromium is not installed and this test is not running as root; "
                                  "install it with `sudo apt-get install chromium`")
    _run_apt("update")
    _run_apt("install", "-y", "chromium")
    path = shutil.which("chromium")
    if path is None:
        raise BrowserInstallError("apt-get installed chromium but no `chromium` is on PATH")
    return path


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@dataclass
class Chromium:
    binary: str
    isolate: bool  # run inside `unshare -n` (no network interface but loopback)

    @classmethod
    def ensure(cls) -> "Chromium":
        return cls(shutil.which("chromium") or install_chromium(), _unshare_works())

    def _run(self, page: Path, *flags: str, timeout: float = 60) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="probex-chromium-") as profile:
            cmd = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                   f"--user-data-dir={profile}", *NO_NETWORK, *flags, page.resolve().as_uri()]
            if self.isolate:
                cmd = ["unshare", "-n", *cmd]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
        return done

    def dump_dom(self, page: Path, budget_ms: int = 3000) -> str:
        """The serialised DOM once the page has loaded and its scripts ran (virtual time budget)."""
        return self._run(page, "--dump-dom", f"--virtual-time-budget={budget_ms}").stdout

    def screenshot(self, page: Path, png: Path, size: tuple[int, int] = (1280, 1600)) -> Path:
        self._run(page, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=3000")
        if not png.exists():
            raise RuntimeError(f"chromium wrote no screenshot to {png}")
        return png
