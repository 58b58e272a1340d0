"""Run the numbered notebooks headless with papermill: the Python side of ``./run_all.sh``.

    python -m probex_lib.runner [--profile default] [--only 01,03] [--from 04] [--seed 0]

Each notebook runs with its ``parameters`` cell set to the chosen profile and seed; the
executed copy (with outputs) is kept in ``figures/notebooks/``. A failing notebook stops the
run with the notebook's name, the failing cell, the error and the path of the partially
executed copy; run times go to ``figures/run_times.csv``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd

from . import atomic, paths, profiles

NOTEBOOKS_DIR = paths.REPO_ROOT / "notebooks"


class RunError(RuntimeError):
    """A notebook could not be found, lacks a parameters cell, or failed while running."""


@dataclass(frozen=True)
class Result:
    notebook: str
    seconds: float
    output: Path


def discover(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def select(notebooks: list[Path], only: list[str] | None = None, start: str | None = None) -> list[Path]:
    """Filter by number or name prefix (``--only 01,03``, ``--from 04``); unknown names are errors."""
    def match(p: Path, key: str) -> bool:
        return p.stem == key or p.stem.startswith(key if "_" in key else f"{key}_")

    valid = [p.stem for p in notebooks]
    for key in (only or []) + ([start] if start else []):
        if not any(match(p, key) for p in notebooks):
            raise RunError(f"unknown notebook {key!r}; valid: {valid}")
    chosen = [p for p in notebooks if not only or any(match(p, k) for k in only)]
    if start:
        first = next(i for i, p in enumerate(notebooks) if match(p, start))
        chosen = [p for p in chosen if notebooks.index(p) >= first]
    return chosen


def check_parameters_cell(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells if c.cell_type == "code"):
        raise RunError(f"{path}: no code cell tagged 'parameters'; papermill cannot set the profile")


def run_notebook(path: Path, parameters: dict, out_dir: Path, kernel: str = "python3") -> Result:
    """Execute one notebook into ``out_dir/notebooks``; raises RunError naming the failing cell."""
    import papermill as pm

    check_parameters_cell(path)
    output = out_dir / "notebooks" / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(output), parameters=parameters, kernel_name=kernel,
                            cwd=str(path.parent), progress_bar=False)
    except pm.PapermillExecutionError as exc:
        raise RunError(
            f"notebook {path.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
            f"the partially executed notebook is {output}"
        ) from None
    return Result(path.stem, time.perf_counter() - t0, output)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run_all.sh", description="Regenerate the figures and tables of both papers.")
    ap.add_argument("--profile", default="default", help=f"one of {list(profiles.PROFILES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated notebook numbers or names, e.g. 01,03")
    ap.add_argument("--from", dest="start", default=None, help="start at this notebook")
    ap.add_argument("--out", default="", help="figures folder (default figures/)")
    args = ap.parse_args(argv)
    if args.profile not in profiles.PROFILES:
        ap.error(f"unknown profile {args.profile!r}; valid profiles: {list(profiles.PROFILES)}")
    out_dir = Path(args.out) if args.out else paths.figures_dir()
    try:
        chosen = select(discover(), [s for s in args.only.split(",") if s] or None, args.start)
        results = []
        for nb in chosen:
            print(f"[run_all] {nb.stem} (profile {args.profile}) ...", flush=True)
            params = {"profile": args.profile, "seed": args.seed, "out_dir": str(out_dir.resolve())}
            res = run_notebook(nb, params, out_dir)
            results.append(res)
            print(f"[run_all] {nb.stem} done in {res.seconds / 60:.1f} min -> {res.output}", flush=True)
    except RunError as exc:
        print(f"[run_all] ERROR: {exc}", file=sys.stderr)
        return 1
    times = pd.DataFrame([{"notebook": r.notebook, "profile": args.profile, "minutes": round(r.seconds / 60, 2)} for r in results])
    atomic.write_text(out_dir / "run_times.csv", times.to_csv(index=False))
    print(times.to_string(index=False))
    print(f"[run_all] total {times['minutes'].sum():.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
