"""Run the numbered notebooks headless with papermill: the Python side of ``./run_all.sh``.

    python -m probex_lib.runner [--profile default] [--only 01,03] [--from 04] [--seed 0] [--force]
                                [--quiet] [--heartbeat SECONDS]

Each notebook runs with its ``parameters`` cell set to the chosen profile and seed; the
executed copy (with outputs) is kept in ``figures/notebooks/``. While a notebook runs, the
terminal shows its cell (n of m), the elapsed time and an estimate of what is left, and the
kernel's own output (tqdm bars); see :mod:`probex_lib.progress` (``--quiet``: none of it).
After each notebook that finishes while others are still to run, the reproduction report
(``figures/REPORT.md`` / ``REPORT.html``, :mod:`probex_lib.report`) is rebuilt: the finished
notebooks' claims judged, those still to run "not run". A failing notebook stops the run with
the notebook's name, the failing cell, the error and the path of the partially executed copy;
the report is not rewritten after a failure, so the failed run never reaches it. After a
successful run the report is rebuilt once more. A SIGHUP (the terminal closed) only stops the
printing: the run and its report are the same.

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
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd

from . import atomic, paths, profiles, progress, report

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


def run_notebook(path: Path, parameters: dict, out_dir: Path, kernel: str = "python3",
                 live: progress.Progress | None = None) -> Result:
    """Execute one notebook into ``out_dir/notebooks``; raises RunError naming the failing cell.
    ``live``: its hooks follow the cells and forward the kernel's output (none if omitted)."""
    import papermill as pm

    check_parameters_cell(path)
    output = out_dir / "notebooks" / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(output), parameters=parameters, kernel_name=kernel,
                            cwd=str(path.parent), progress_bar=False, **(live.engine_kwargs() if live else {}))
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


def last_seconds(state: dict, nb: Path, profile: str) -> float | None:
    """Seconds the last successful run of ``nb`` in ``profile`` took (run_state.json), else None."""
    s = state.get(nb.stem, {})
    return s["minutes"] * 60 if s.get("status") == "ok" and s.get("profile") == profile and "minutes" in s else None


def plan_line(todo: list[Path], state: dict, profile: str) -> str:
    """'3 notebooks to run: about 25 min by their last runs' (or what is unknown)."""
    known = [t for t in (last_seconds(state, nb, profile) for nb in todo) if t is not None]
    n = f"{len(todo)} notebook{'s' if len(todo) != 1 else ''} to run"
    if not todo:
        return f"{n}"
    if len(known) == len(todo):
        return f"{n}: about {progress.fmt_seconds(sum(known))} by their last runs in this profile"
    if known:
        return (f"{n}: at least {progress.fmt_seconds(sum(known))} by the last runs of {len(known)} of them; "
                f"{len(todo) - len(known)} never finished in this profile (time unknown)")
    return f"{n}; none has finished in this profile before, so the time is unknown"


def shown_state(state: dict, args: argparse.Namespace, out_dir: Path, notebooks_dir: Path,
                queued: tuple[str, ...] = ()) -> dict:
    """The run state as the report shows it: each notebook with a state, marked stale if its inputs
    changed since; those ``queued`` (still to run in this run) as not finished."""
    shown = {}
    for nb in discover(notebooks_dir):
        if nb.stem in queued:
            shown[nb.stem] = {"profile": args.profile, "record": record_name(nb), "minutes": 0.0,
                              "status": "queued in this run"}
        elif nb.stem in state:
            shown[nb.stem] = {**state[nb.stem], "stale": state[nb.stem]["key"] != input_key(nb, params_for(nb, args, out_dir))}
    return shown


def main(argv: list[str] | None = None, notebooks_dir: Path = NOTEBOOKS_DIR) -> int:
    ap = argparse.ArgumentParser(prog="run_all.sh", description="Regenerate the figures and tables of both papers "
                                 "and the reproduction report (figures/REPORT.md).")
    ap.add_argument("--profile", default="default", help=f"one of {list(profiles.PROFILES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated notebook numbers or names, e.g. 01,03")
    ap.add_argument("--from", dest="start", default=None, help="start at this notebook")
    ap.add_argument("--force", action="store_true", help="rerun notebooks whose inputs are unchanged")
    ap.add_argument("--out", default="", help="figures folder (default figures/)")
    ap.add_argument("--quiet", action="store_true", help="no live progress (cells, elapsed, heartbeat, kernel output)")
    ap.add_argument("--heartbeat", type=float, default=None, metavar="SECONDS",
                    help=f"seconds between progress lines (default $PROBEX_HEARTBEAT or {progress.DEFAULT_INTERVAL:g})")
    args = ap.parse_args(argv)
    if args.profile not in profiles.PROFILES:
        ap.error(f"unknown profile {args.profile!r}; valid profiles: {list(profiles.PROFILES)}")
    if args.profile == "scaling" and [s.strip() for s in args.only.split(",") if s.strip()] not in (["08"], ["08_scaling"]):
        ap.error("profile 'scaling' holds notebook 08's larger points only: run it with --only 08 (every other "
                 "notebook is the default profile's)")
    try:
        interval = args.heartbeat if args.heartbeat is not None else progress.interval_from_env()
    except ValueError as exc:
        ap.error(str(exc))
    if interval <= 0:
        ap.error("--heartbeat must be a positive number of seconds")
    out_dir = (Path(args.out) if args.out else paths.figures_dir()).resolve()
    live = progress.Progress(interval=interval, quiet=args.quiet)
    previous_hup = progress.survive_hangup(live)
    try:
        return _run(args, out_dir, notebooks_dir, live)
    finally:
        if previous_hup is not None:
            signal.signal(signal.SIGHUP, previous_hup)


def data_is_empty(folder: Path | None = None) -> bool:
    """True when the data folder holds nothing but its .gitignore: no zoo, image or model cache."""
    folder = folder or paths.data_dir()
    return not folder.exists() or all(f.name == ".gitignore" for f in folder.iterdir())


def _run(args: argparse.Namespace, out_dir: Path, notebooks_dir: Path, live: progress.Progress) -> int:
    t_run = time.perf_counter()
    reported = None  # the report written during this run, if any
    from_empty = data_is_empty()  # a first run: every zoo is built in it
    try:
        state = report.read_state(out_dir)
        chosen = select(discover(notebooks_dir), [s for s in args.only.split(",") if s] or None, args.start)
        check_writable(out_dir)
        for nb in chosen:
            check_parameters_cell(nb)
        keys = {nb: input_key(nb, params_for(nb, args, out_dir)) for nb in chosen}
        todo = [nb for nb in chosen if args.force or not up_to_date(nb, keys[nb], state, out_dir)]
        for nb in chosen:
            if nb not in todo:
                progress.say(f"[run_all] {nb.stem}: inputs unchanged since its last successful run, "
                             "skipped (--force reruns it)")
        if todo:
            progress.say(f"[run_all] {plan_line(todo, state, args.profile)}")
        for i, nb in enumerate(todo):
            params = params_for(nb, args, out_dir)
            expected = last_seconds(state, nb, args.profile)
            progress.say(f"[run_all] {nb.stem} (profile {args.profile}) ... {i + 1} of {len(todo)}; "
                         + (f"its last run took {progress.fmt_seconds(expected)}" if expected is not None else "first run in this profile"))
            entry = {"key": keys[nb], "profile": args.profile, "seed": args.seed, "record": record_name(nb),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            t0 = time.perf_counter()
            try:
                with live.notebook(nb.stem, expected):
                    res = run_notebook(nb, params, out_dir, live=live)
            except RunError:
                state[nb.stem] = {**entry, "status": "failed", "minutes": round((time.perf_counter() - t0) / 60, 2)}
                save_state(out_dir, state)
                raise
            state[nb.stem] = {**entry, "status": "ok", "minutes": round(res.seconds / 60, 2)}
            save_state(out_dir, state)
            progress.say(f"[run_all] {nb.stem} done in {res.seconds / 60:.1f} min -> {res.output}")
            queued = tuple(q.stem for q in todo[i + 1:])
            if queued:  # the report so far: the last notebook's report is the final one below
                reported, _, summary = report.build(out_dir, shown_state(state, args, out_dir, notebooks_dir, queued),
                                                    args.profile, args.seed)
                progress.say(f"[run_all] report so far ({i + 1} of {len(todo)} finished, {len(queued)} still to run): "
                             f"{reported}; {summary}")
        times = pd.DataFrame([{"notebook": nb, "profile": s["profile"], "status": s["status"], "minutes": s["minutes"]}
                              for nb, s in sorted(state.items()) if s["profile"] == args.profile])
        shown = shown_state(state, args, out_dir, notebooks_dir)
        stale_ids = report.out_of_sync()
        if stale_ids:
            progress.say(f"[run_all] WARNING: papers/claims.md differs from {report.SHARED_README} at {stale_ids}; "
                         "copy the new list into papers/claims.md", err=True)
        t, nb_times = report.collect(out_dir, shown, args.profile)
        env = report.environment(args.profile, args.seed)
        md, page, summary = report.write(out_dir, t, nb_times, env)
        if args.profile == "default" and out_dir.resolve() == paths.figures_dir().resolve() and all(
                s.get("status") == "ok" and not s.get("stale") for s in shown.values()):
            snap = report.snapshot(t, nb_times, {**env, "date": time.strftime("%Y-%m-%d")})
            if from_empty and len(todo) == len(shown):  # every notebook ran here, from an empty data/
                snap["first_run"] = {"minutes": {nb.stem: state[nb.stem]["minutes"] for nb in todo}, "date": snap["date"],
                                     "commit": snap["commit"], "wall_minutes": round((time.perf_counter() - t_run) / 60, 1)}
            else:  # keep the last first-run measurement
                snap["first_run"] = report.previous_first_run()
            report.update_readme(snap)
            progress.say(f"[run_all] README results block regenerated from {report.SNAPSHOT}")
        atomic.write_text(out_dir / "run_times.csv", times.to_csv(index=False))
    except (RunError, ValueError) as exc:
        progress.say(f"[run_all] ERROR: {exc}", err=True)
        progress.say("[run_all] stopped; " + (f"the report {reported} shows the notebooks that finished in this run and "
                                              "those after them as 'not run'" if reported else
                                              "the previous report (if any) is unchanged"), err=True)
        return 1
    except OSError as exc:
        progress.say(f"[run_all] ERROR: {_write_error(exc, out_dir)}; the previous report (if any) is unchanged", err=True)
        return 1
    progress.say(times.to_string(index=False))
    progress.say(f"[run_all] notebooks total {times['minutes'].sum():.1f} min (this run {(time.perf_counter() - t_run) / 60:.1f} min "
                 "of wall time; skipped notebooks count with their last run)")
    progress.say(f"[run_all] report: {md} and {page}")
    progress.say(f"[run_all] {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
