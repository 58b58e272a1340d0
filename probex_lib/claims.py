"""Machine-readable claims records: one JSON file per notebook under ``figures/claims/``.

Each claim carries the id from ``shared/papers/README.md``, the paper's value, ours, the
verdict rule in words and the verdict that code computed from that rule. The report
(``figures/REPORT.md``) is built from these records, never from hand-typed numbers.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import atomic, paths

TIERS = ("reproduced", "partly", "not reproduced")  # what a rule of verdicts.py returns
TREND_TIERS = ("reproduced at default", "trend toward paper", "no trend")  # what a scaling-curve rule returns
NOT_RUN = "not run"  # the notebook has not (successfully) run yet
NOT_JUDGED = "not judged"  # it ran, but a number its rule needs is missing or not finite
STATUSES = (NOT_RUN, NOT_JUDGED)  # the one vocabulary for claims without a verdict
VERDICTS = TIERS + TREND_TIERS + STATUSES


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and what we measured.

    ``verdict`` must be one of VERDICTS; ``rule`` says in words how code decided it.
    """

    id: str
    what: str
    paper: str
    ours: str
    rule: str
    verdict: str
    figure: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict {self.verdict!r} is not one of {VERDICTS}")


def write_claims(notebook: str, profile: str, claims: list[Claim], out_dir: str | Path | None = None) -> Path:
    """Write ``claims/<notebook>.json`` (atomically) and return its path."""
    out = Path(out_dir) if out_dir else paths.figures_dir()
    record = {"notebook": notebook, "profile": profile, "claims": [asdict(c) for c in claims]}
    return atomic.write_json(out / "claims" / f"{notebook}.json", record)


def read_claims(path: str | Path) -> pd.DataFrame:
    """All claims of one record (or of every ``*.json`` in a folder) as a DataFrame."""
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    rows = []
    for f in files:
        rec = json.loads(f.read_text())
        rows += [{"notebook": rec["notebook"], "profile": rec["profile"], **c} for c in rec["claims"]]
    return pd.DataFrame(rows)
