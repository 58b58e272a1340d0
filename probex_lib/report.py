"""The reproduction report: every claim of both papers, ours beside the paper's, judged.

:func:`build` reads the claims records the notebooks wrote (``figures/claims/*.json``), joins
them to the list of figures and tables in ``../shared/papers/README.md`` (every id gets a row;
one without a record is "not run" with the reason), records the run's environment and wall
times, and writes ``REPORT.md`` and a self-contained ``REPORT.html`` (figures embedded)
atomically: a failed write leaves the previous report as it was.
"""
from __future__ import annotations

import base64
import html
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import pandas as pd

from . import atomic, claims, paths

PAPERS_README = paths.REPO_ROOT / "papers" / "claims.md"  # the kit's copy of the papers' list of figures and tables
SHARED_README = paths.REPO_ROOT.parent / "shared" / "papers" / "README.md"  # its source, beside the kit if present
VERDICT_ORDER = claims.VERDICTS  # the one vocabulary: the three tiers, then "not run" and "not judged"
PACKAGES = ("torch", "numpy", "scipy", "pandas", "transformers", "diffusers", "peft", "sentence_transformers",
            "dask", "papermill", "networkx")


def paper_claims(readme: str | Path | None = None) -> pd.DataFrame:
    """Rows (id, paper, what, says) of the tables in the papers' list (default: PAPERS_README)."""
    path = Path(readme or PAPERS_README)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the list of the papers' figures and tables is missing")
    rows, paper = [], ""
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            paper = line[3:].strip()
        m = re.match(r"^\| ([PM][^|]*?) \| (.*?) \| (.*?) \|$", line)
        if m and m.group(1) != "id":
            rows.append({"id": m.group(1).strip(), "paper": paper, "what": m.group(2).strip(), "says": m.group(3).strip()})
    if not rows:
        raise ValueError(f"{path}: no claim rows (| id | what | paper says |) found")
    return pd.DataFrame(rows)


def out_of_sync(copy: str | Path | None = None, source: str | Path | None = None) -> list[str]:
    """Claim ids that differ between the kit's list and its source (both present); [] if in sync
    or if the source is not beside the kit."""
    source = Path(source or SHARED_README)
    if not source.exists():
        return []
    a = paper_claims(copy).set_index("id")[["what", "says"]]
    b = paper_claims(source).set_index("id")[["what", "says"]]
    ids = sorted(set(a.index) ^ set(b.index))
    ids += sorted(i for i in set(a.index) & set(b.index) if not a.loc[i].equals(b.loc[i]))
    return ids


def environment(profile: str, seed: int) -> dict:
    """Package versions, CPU / GPU, Python, platform, git commit (marked dirty if changed)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    vers = {}
    for p in PACKAGES:
        try:
            vers[p] = version(p.replace("_", "-"))
        except PackageNotFoundError:
            vers[p] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.REPO_ROOT,
                               capture_output=True, text=True).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"profile": profile, "seed": seed, "git commit": commit, "python": platform.python_version(),
            "platform": platform.platform(), "CPU cores": os.cpu_count(), "GPU": gpu, **vers}


def table(records: pd.DataFrame, ok_notebooks: dict[str, str], readme: str | Path | None = None,
          failed: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per claim id of the papers' README (then the kit's own checks): the paper's value,
    ours, rule, verdict, figure and notebook. A claim counts only if its notebook's last run
    succeeded (``ok_notebooks``: record name -> executed notebook stem); otherwise "not run",
    with the reason (``failed``: record name -> notebook stem whose last run failed)."""
    failed = failed or {}
    listed = paper_claims(readme)
    recs = records[records["notebook"].isin(ok_notebooks)] if len(records) else records
    by_id = {r["id"]: r for _, r in recs.iterrows()} if len(recs) else {}
    rows = []
    for _, p in listed.iterrows():
        r = by_id.get(p["id"])
        if r is None:
            rec = records[records["id"] == p["id"]]["notebook"] if len(records) else pd.Series(dtype=str)
            if len(rec) and rec.iloc[0] in failed:
                reason = f"notebook {failed[rec.iloc[0]]} failed in its last run"
            elif len(rec):
                reason = "its notebook has not finished in this profile"
            else:
                reason = "no notebook in this profile has recorded it yet"
            rows.append({"id": p["id"], "paper": p["paper"], "what": p["what"], "paper says": p["says"], "ours": "—",
                         "rule": "", "verdict": claims.NOT_RUN, "figure": "", "notebook": "", "note": reason})
        else:
            rows.append(_row(p["id"], p["paper"], p["what"], r, ok_notebooks))
    for cid, r in by_id.items():  # the kit's own checks (e.g. MJ-acc)
        if cid not in set(listed["id"]) and SCALE_MARK not in cid:
            rows.append(_row(cid, "kit checks", r["what"], r, ok_notebooks))
    out = pd.DataFrame(rows)
    out["at scale"] = [at_scale(cid, by_id) for cid in out["id"]] if len(out) else []
    return out


SCALE_MARK = "@"  # scaling-curve records are "<claim>@<axis>" (notebook 08)


def at_scale(claim_id: str, by_id: dict) -> str:
    """The scaling verdicts of one claim, e.g. "root_steps: trend toward paper (largest 1200)"; "" if none."""
    parts = []
    for cid, r in by_id.items():
        if cid.startswith(claim_id + SCALE_MARK):
            details = r.get("details") if isinstance(r.get("details"), dict) else {}
            largest = details.get("largest")
            verdict = r["verdict"] if r["verdict"] in claims.TREND_TIERS else claims.NOT_JUDGED
            parts.append(f"{cid.split(SCALE_MARK, 1)[1]}: {verdict}" + (f" (to {largest})" if largest is not None else ""))
    return "; ".join(parts)


def _row(cid: str, paper: str, what: str, r: pd.Series, ok: dict[str, str]) -> dict:
    """A recorded claim. A record whose verdict is missing or not in the vocabulary, or that its rule
    could not judge, is shown as "not judged" with the reason (never as a verdict)."""
    verdict, note = r.get("verdict"), ""
    details = r.get("details") if isinstance(r.get("details"), dict) else {}
    if verdict == claims.NOT_JUDGED:
        note = details.get("not_judged", f"claim {cid}: its rule could not judge the recorded numbers")
    elif verdict not in claims.TIERS:
        verdict, note = claims.NOT_JUDGED, f"claim {cid} in record {r['notebook']}: verdict {r.get('verdict')!r} is not one of {claims.TIERS}"
    return {"id": cid, "paper": paper, "what": what, "paper says": r["paper"], "ours": r["ours"], "rule": r["rule"],
            "verdict": verdict, "figure": r.get("figure") or "", "notebook": ok.get(r["notebook"], ""), "note": note}


def summary_line(t: pd.DataFrame) -> str:
    """E.g. '32 claims: 12 reproduced, 8 partly, 11 not reproduced, 1 not run' (paper claims only)."""
    papers = t[t["paper"] != "kit checks"]
    counts = papers["verdict"].value_counts()
    parts = [f"{int(counts.get(v, 0))} {v}" for v in VERDICT_ORDER if counts.get(v, 0)]
    return f"{len(papers)} claims: " + ", ".join(parts)


def _md_cell(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def markdown(t: pd.DataFrame, env: dict, times: pd.DataFrame) -> str:
    lines = ["# Reproduction report", "", f"**{summary_line(t)}** (profile `{env['profile']}`, seed {env['seed']}, "
             f"commit {env['git commit']}).", "",
             "Verdicts are decided by code: the rule of each claim is in its row and in `figures/claims/*.json`.", ""]
    for paper, sub in t.groupby("paper", sort=False):
        lines += [f"## {paper}", "", "| id | what | paper | ours | verdict | at scale (notebook 08) | rule | figure | notebook |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for _, r in sub.iterrows():
            fig = f"[{r['figure']}]({r['figure']})" if r["figure"] else ""
            nb = f"[{r['notebook']}](notebooks/{r['notebook']}.ipynb)" if r["notebook"] else ""
            ours = r["ours"] if r["verdict"] in claims.TIERS else f"{r['ours'] if r['ours'] != '—' else '—'} ({r['note']})"
            lines.append("| " + " | ".join(_md_cell(x) for x in (r["id"], r["what"], r["paper says"], ours, f"**{r['verdict']}**",
                                                                   r.get("at scale", ""), r["rule"], fig, nb)) + " |")
        lines.append("")
    lines += ["## Run", "", "| notebook | profile | minutes | status |", "|---|---|---|---|"]
    for _, r in times.iterrows():
        lines.append(f"| {r['notebook']} | {r['profile']} | {r['minutes']:.1f} | {r['status']} |")
    lines += ["", f"Total: {times['minutes'].sum():.1f} min.", "", "## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(v)} |" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def to_html(t: pd.DataFrame, env: dict, times: pd.DataFrame, figures_dir: Path) -> str:
    """Self-contained HTML: the same tables, each claim's figure embedded as a data URI."""
    css = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;font-size:14px}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top}"
           ".reproduced{background:#e3f4e1}.partly{background:#fff4d6}.not.reproduced,.notreproduced{background:#fbe3e3}"
           ".notrun{background:#eee}img{max-width:560px}")
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>probex-kit reproduction report</title><style>{css}</style></head><body>",
           "<h1>Reproduction report</h1>", f"<p><b>{html.escape(summary_line(t))}</b></p>"]
    embedded: set[str] = set()
    for paper, sub in t.groupby("paper", sort=False):
        out += [f"<h2>{html.escape(paper)}</h2><table><tr><th>id</th><th>what</th><th>paper</th><th>ours</th><th>verdict</th><th>at scale (notebook 08)</th><th>rule</th><th>figure</th></tr>"]
        for _, r in sub.iterrows():
            img = ""
            png = figures_dir / r["figure"] if r["figure"] else None
            if png is not None and png.suffix == ".png" and png.exists() and r["figure"] not in embedded:
                img = f"<img alt='{html.escape(r['figure'])}' src='data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}'>"
                embedded.add(r["figure"])
            elif r["figure"]:
                img = html.escape(r["figure"])
            ours = r["ours"] if r["verdict"] in claims.TIERS else f"{r['ours'] if r['ours'] != '—' else '—'} ({r['note']})"
            out.append(f"<tr class='{r['verdict'].replace(' ', '')}'>" + "".join(
                f"<td>{html.escape(str(x))}</td>" for x in (r["id"], r["what"], r["paper says"], ours, r["verdict"], r.get("at scale", ""), r["rule"]))
                + f"<td>{img}</td></tr>")
        out.append("</table>")
    out.append("<h2>Run</h2>" + times.to_html(index=False) + "<h2>Environment</h2>"
               + pd.DataFrame(list(env.items()), columns=["", "value"]).to_html(index=False) + "</body></html>")
    return "\n".join(out)


def build(figures_dir: str | Path, state: dict, profile: str, seed: int, readme: str | Path | None = None) -> tuple[Path, Path, str]:
    """Write REPORT.md and REPORT.html in ``figures_dir`` from its claims records and the run
    ``state`` ({notebook stem: {"status", "minutes", "profile", "record"}}). Returns the paths and
    the summary line."""
    t, times = collect(figures_dir, state, profile, readme)
    return write(figures_dir, t, times, environment(profile, seed))


def write(figures_dir: str | Path, t: pd.DataFrame, times: pd.DataFrame, env: dict) -> tuple[Path, Path, str]:
    """Write REPORT.md, REPORT.html and report_claims.csv as one unit from the claims table ``t``
    and the minutes per notebook (see :func:`collect`). Returns the paths and the summary line."""
    figures_dir = Path(figures_dir)
    md, page = figures_dir / "REPORT.md", figures_dir / "REPORT.html"
    atomic.write_many({md: markdown(t, env, times), page: to_html(t, env, times, figures_dir),
                       figures_dir / "report_claims.csv": t.to_csv(index=False)})
    return md, page, summary_line(t)


def collect(figures_dir: str | Path, state: dict, profile: str, readme: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's claims table and the minutes per notebook, from the records and run state."""
    figures_dir = Path(figures_dir)
    claims_dir = figures_dir / "claims"
    records = claims.read_claims(claims_dir) if claims_dir.exists() and any(claims_dir.glob("*.json")) else pd.DataFrame()
    ok = {s["record"]: nb for nb, s in state.items() if s.get("status") == "ok" and s.get("profile") == profile}
    failed = {s["record"]: nb for nb, s in state.items() if s.get("status") == "failed" and s.get("profile") == profile}
    if len(records):  # a record rewritten by a later run in another profile (e.g. interactively) does not count
        records = records[records["profile"] == profile]
    t = table(records, ok, readme, failed)
    times = pd.DataFrame([{"notebook": nb, "profile": s.get("profile", ""), "minutes": float(s.get("minutes", 0.0)),
                           "status": s.get("status", "") + (" (stale: its inputs changed since; rerun it)" if s.get("stale") else "")}
                          for nb, s in sorted(state.items()) if s.get("profile") == profile],
                         columns=["notebook", "profile", "minutes", "status"])
    return t, times


def read_state(figures_dir: str | Path) -> dict:
    """The runner's record of every notebook's last run ({} before the first run)."""
    f = Path(figures_dir) / "run_state.json"
    if not f.exists():
        return {}
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{f}: not valid JSON ({exc}); delete it to rerun every notebook") from None


# --------------------------------------------------------------------------- the README's results block

README = paths.REPO_ROOT / "README.md"
SNAPSHOT = paths.REPO_ROOT / "results" / "snapshot.json"  # committed: the records the README block was made from
BEGIN = "<!-- results:begin: generated by ./run_all.sh (default profile) from results/snapshot.json; never edit by hand -->"
END = "<!-- results:end -->"


def snapshot(t: pd.DataFrame, times: pd.DataFrame, env: dict) -> dict:
    """The small, committed summary of a run: summary line, minutes per notebook, one row per claim."""
    return {"summary": summary_line(t), "profile": env["profile"], "seed": env["seed"], "commit": env.get("git commit", ""),
            "date": env.get("date", ""), "minutes": {r.notebook: round(float(r.minutes), 1) for r in times.itertuples()},
            "claims": [{k: ("" if pd.isna(r.get(k, "")) else str(r.get(k, ""))) for k in ("id", "paper", "paper says", "ours", "verdict", "note", "at scale")}
                       for _, r in t.iterrows()]}


def previous_first_run(snapshot_file: str | Path = SNAPSHOT) -> dict:
    """The first-run timing (a run from an empty data/) of the committed snapshot, or {}."""
    f = Path(snapshot_file)
    return json.loads(f.read_text()).get("first_run", {}) if f.exists() else {}


def results_block(snap: dict) -> str:
    """The README's results section, entirely from a snapshot (so a test can check the README)."""
    total = sum(snap["minutes"].values())
    first = snap.get("first_run") or {}
    lines = [BEGIN, "", f"**{snap['summary']}** (profile `{snap['profile']}`, seed {snap['seed']}, commit "
             f"`{snap['commit'][:7] or 'unknown'}`, {snap['date'] or 'date unknown'}; rules: `probex_lib/verdicts.py`).", ""]
    if first:
        fm = first["minutes"]
        lines += [f"Minutes per notebook on this kind of machine (2 CPU cores): the first run built every zoo from an empty "
                  f"`data/` (commit `{first['commit'][:7]}`, {first['date']}, {first['wall_minutes']:.1f} min of wall time); "
                  "\"last run\" is each notebook's most recent run (the same run for a notebook not rerun since; a rerun "
                  "reuses the cached zoos).", "",
                  "| notebook | first run (empty data/) | last run |", "|---|---|---|"]
        for nb in dict.fromkeys([*fm, *snap["minutes"]]):
            a, b = fm.get(nb), snap["minutes"].get(nb)
            lines.append(f"| {nb} | {'' if a is None else f'{a:.1f}'} | {'' if b is None else f'{b:.1f}'} |")
        lines += [f"| **total** | **{sum(fm.values()):.1f}** | **{total:.1f}** |", ""]
    else:
        lines += ["| notebook | minutes of its last run (zoos cached after a first build) |", "|---|---|"]
        lines += [f"| {nb} | {m:.1f} |" for nb, m in snap["minutes"].items()] + [f"| **total** | **{total:.1f}** |", ""]
    scale = any(c.get("at scale") for c in snap["claims"])
    lines += ["| id | paper says | ours | verdict |" + (" at scale (notebook 08) |" if scale else ""),
              "|---|---|---|---|" + ("---|" if scale else "")]
    for c in snap["claims"]:
        ours = c["ours"] + (f" ({c['note']})" if c.get("note") else "")
        cells = (c["id"], c["paper says"], ours, f"**{c['verdict']}**") + ((c.get("at scale", ""),) if scale else ())
        lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    return "\n".join(lines + ["", END])


def update_readme(snap: dict, readme: str | Path = README, snapshot_file: str | Path = SNAPSHOT) -> None:
    """Replace the README's results block and write the snapshot, as one unit (atomic)."""
    readme = Path(readme)
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme}: no results block (the lines {BEGIN!r} ... {END!r}) to regenerate")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    atomic.write_many({readme: head + results_block(snap) + tail,
                       Path(snapshot_file): json.dumps(snap, indent=1, ensure_ascii=False) + "\n"})


def readme_block(readme: str | Path = README) -> str:
    """The results block as it stands in the README (markers included)."""
    text = Path(readme).read_text()
    return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
