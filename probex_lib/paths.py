"""Where the kit keeps things. Paths only: importing this module has no side effects.

``PROBEX_DATA`` and ``PROBEX_FIGURES`` override the default folders (tests use them to work
in a temporary directory).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder for generated data, caches and zoos (git-ignored)."""
    return Path(os.environ.get("PROBEX_DATA", REPO_ROOT / "data"))


def figures_dir() -> Path:
    """Folder for regenerated figures, tables and claims records (git-ignored)."""
    return Path(os.environ.get("PROBEX_FIGURES", REPO_ROOT / "figures"))
