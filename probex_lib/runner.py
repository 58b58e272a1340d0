"""Run the numbered notebooks headless with papermill: the Python side of ``./run_all.sh``.

    python -m probex_lib.runner [--profile default] [--only 01,03] [--from 04] [--seed 0] [--force]

Each notebook runs with its ``parameters`` cell set to the chosen profile and seed; the
executed copy (with outputs) is kept in ``figures/notebooks/``. A failing notebook stops the
run with the notebook's name, the failing cell, the error and the path of the partially
executed copy, and no report is written. After a successful run the reproduction report
(``figures/REPORT.md`` / ``REPORT.html``, :mod:`probex_lib.report`) is rebuilt.

A rerun skips a notebook when its **input key** is unchanged and its last run succeeded with
its outputs in place. The key is a SHA-256 over the notebook file, the parameters papermill
injects (profile, seed, output folder) and the source of every ``probex_lib`` module the
notebook imports, directly or through other modules (found by parsing the imports), so an edit
to the notebook or to any library code it uses reruns it; ``--force`` reruns everything. The
data caches below (``data/``) are keyed by their own settings and are reused either way.
The state of every notebook (key, status, minutes, profile) is kept in ``figures/run_state.json``.
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd

from . import atomic, paths, profiles, report

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
    except OSError as exc:  # e.g. the disk filled while papermill saved the notebook
        raise RunError(f"notebook {path.name}: {_write_error(exc, output)}; "
                       f"the partially executed notebook (if any) is {output}") from None
    return Result(path.stem, time.perf_counter() - t0, output)


def _write_error(exc: OSError, fallback: Path) -> str:
    """'could not write <file> (the disk is full): <reason>' for a failed write."""
    hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
    return f"could not write {exc.filename or fallback}{hint}: {exc.strerror or exc}"


def record_name(path: Path) -> str:
    """The claims record a notebook writes: ``03_probex_tree_experts`` -> ``03_probex``."""
    return "_".join(path.stem.split("_")[:2])


def _imported(code: str, package: str = "probex_lib") -> set[str] | None:
    """Names of ``package`` modules that ``code`` imports (absolute or relative, anywhere in it);
    None if the code cannot be parsed."""
    import ast

    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level and not mod:  # from . import a, b
                found |= {a.name for a in node.names}
            elif node.level:  # from .a import x
                found.add(mod.split(".")[0])
            elif mod == package:  # from probex_lib import a, b
                found |= {a.name for a in node.names}
            elif mod.startswith(package + "."):
                found.add(mod.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(package + ".")}
    return found


def library_modules(path: Path, library: Path = paths.REPO_ROOT / "probex_lib") -> list[Path]:
    """The library modules a notebook depends on: those its code cells import, and, transitively,
    those they import (plus ``__init__.py``). Sorted. Every module if some code cannot be parsed."""
    nb = nbformat.read(path, as_version=4)
    todo = _imported("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
    if todo is None:
        return sorted(library.glob("*.py"))
    seen: set[str] = {"__init__"}
    while todo:
        name = todo.pop()
        f = library / f"{name}.py"
        if name in seen or not f.exists():
            continue
        seen.add(name)
        sub = _imported(f.read_text())
        if sub is None:
            return sorted(library.glob("*.py"))
        todo |= sub
    return sorted(library / f"{m}.py" for m in seen if (library / f"{m}.py").exists())


def input_key(path: Path, parameters: dict, library: Path = paths.REPO_ROOT / "probex_lib") -> str:
    """SHA-256 over the notebook's bytes, the injected parameters and the source of every library
    module the notebook depends on (:func:`library_modules`)."""
    h = hashlib.sha256(path.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    for module in library_modules(path, library):
        h.update(module.name.encode() + b"\0" + module.read_bytes())
    return h.hexdigest()


def up_to_date(path: Path, key: str, state: dict, out_dir: Path) -> bool:
    """True if the last run of ``path`` had this key, succeeded and its outputs still exist."""
    s = state.get(path.stem, {})
    return (s.get("key") == key and s.get("status") == "ok" and (out_dir / "notebooks" / path.name).exists()
            and (out_dir / "claims" / f"{record_name(path)}.json").exists())


def check_writable(out_dir: Path) -> None:
    """Fail early, naming the folder, if figures cannot be written there."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probex-write-check.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise RunError(f"figures folder {out_dir} is not writable ({exc.strerror or exc}); "
                       "choose another with --out or fix its permissions") from None


def params_for(nb: Path, args: argparse.Namespace, out_dir: Path) -> dict:
    """The parameters papermill injects into ``nb`` (the same for every notebook today)."""
    return {"profile": args.profile, "seed": args.seed, "out_dir": str(out_dir)}


def save_state(out_dir: Path, state: dict) -> None:
    atomic.write_json(out_dir / "run_state.json", state)


def main(argv: list[str] | None = None, notebooks_dir: Path = NOTEBOOKS_DIR) -> int:
    ap = argparse.ArgumentParser(prog="run_all.sh", description="Regenerate the figures and tables of both papers "
                                 "and the reproduction report (figures/REPORT.md).")
    ap.add_argument("--profile", default="default", help=f"one of {list(profiles.PROFILES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated notebook numbers or names, e.g. 01,03")
    ap.add_argument("--from", dest="start", default=None, help="start at this notebook")
    ap.add_argument("--force", action="store_true", help="rerun notebooks whose inputs are unchanged")
    ap.add_argument("--out", default="", help="figures folder (default figures/)")
    args = ap.parse_args(argv)
    if args.profile not in profiles.PROFILES:
        ap.error(f"unknown profile {args.profile!r}; valid profiles: {list(profiles.PROFILES)}")
    out_dir = (Path(args.out) if args.out else paths.figures_dir()).resolve()
    t_run = time.perf_counter()
    try:
        state = report.read_state(out_dir)
        chosen = select(discover(notebooks_dir), [s for s in args.only.split(",") if s] or None, args.start)
        check_writable(out_dir)
        for nb in chosen:
            check_parameters_cell(nb)
        for nb in chosen:
            params = params_for(nb, args, out_dir)
            key = input_key(nb, params)
            if not args.force and up_to_date(nb, key, state, out_dir):
                print(f"[run_all] {nb.stem}: inputs unchanged since its last successful run, skipped (--force reruns it)",
                      flush=True)
                continue
            print(f"[run_all] {nb.stem} (profile {args.profile}) ...", flush=True)
            entry = {"key": key, "profile": args.profile, "seed": args.seed, "record": record_name(nb),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            t0 = time.perf_counter()
            try:
                res = run_notebook(nb, params, out_dir)
            except RunError:
                state[nb.stem] = {**entry, "status": "failed", "minutes": round((time.perf_counter() - t0) / 60, 2)}
                save_state(out_dir, state)
                raise
            state[nb.stem] = {**entry, "status": "ok", "minutes": round(res.seconds / 60, 2)}
            save_state(out_dir, state)
            print(f"[run_all] {nb.stem} done in {res.seconds / 60:.1f} min -> {res.output}", flush=True)
        times = pd.DataFrame([{"notebook": nb, "profile": s["profile"], "status": s["status"], "minutes": s["minutes"]}
                              for nb, s in sorted(state.items()) if s["profile"] == args.profile])
        shown = {nb.stem: {**state[nb.stem], "stale": state[nb.stem]["key"] != input_key(nb, params_for(nb, args, out_dir))}
                 for nb in discover(notebooks_dir) if nb.stem in state}
        stale_ids = report.out_of_sync()
        if stale_ids:
            print(f"[run_all] WARNING: papers/claims.md differs from {report.SHARED_README} at {stale_ids}; "
                  "copy the new list into papers/claims.md", file=sys.stderr)
        md, page, summary = report.build(out_dir, shown, args.profile, args.seed)
        if args.profile == "default" and out_dir.resolve() == paths.figures_dir().resolve() and all(
                s.get("status") == "ok" and not s.get("stale") for s in shown.values()):
            t, nb_times = report.collect(out_dir, shown, args.profile)
            snap = report.snapshot(t, nb_times, {**report.environment(args.profile, args.seed), "date": time.strftime("%Y-%m-%d")})
            report.update_readme(snap)
            print(f"[run_all] README results block regenerated from {report.SNAPSHOT}")
        atomic.write_text(out_dir / "run_times.csv", times.to_csv(index=False))
    except (RunError, ValueError) as exc:
        print(f"[run_all] ERROR: {exc}", file=sys.stderr)
        print("[run_all] stopped; the previous report (if any) is unchanged", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"[run_all] ERROR: {_write_error(exc, out_dir)}; the previous report (if any) is unchanged", file=sys.stderr)
        return 1
    print(times.to_string(index=False))
    print(f"[run_all] notebooks total {times['minutes'].sum():.1f} min (this run {(time.perf_counter() - t_run) / 60:.1f} min "
          "of wall time; skipped notebooks count with their last run)")
    print(f"[run_all] report: {md} and {page}")
    print(f"[run_all] {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
