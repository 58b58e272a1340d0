"""The one-command run and its report: skip / --force, failures, atomic report, every claim listed."""
import errno
import json

import nbformat
import pandas as pd
import pytest

from probex_lib import atomic, claims, report, runner

README = """# papers
## Paper A
| id | what | paper says |
|---|---|---|
| P-1 | first claim | up |
| P-2 | second claim | down |
## Paper B
| id | what | paper says |
|---|---|---|
| M-1 | third claim | flat |
"""


def _claim_nb(path, record, ids, verdict="reproduced", fail=False):
    """A tiny notebook with a parameters cell that writes a claims record (and optionally fails after)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile: str = "smoke"\nseed: int = 0\nout_dir: str = ""',
                                          metadata={"tags": ["parameters"]})]
    cs = ", ".join(f"claims.Claim({i!r}, 'w', 'paper', 'ours {i}', 'rule', {verdict!r}, figure='fig.png')" for i in ids)
    nb.cells.append(nbformat.v4.new_code_cell(f"from probex_lib import claims\nclaims.write_claims({record!r}, profile, [{cs}], out_dir)"))
    if fail:
        nb.cells.append(nbformat.v4.new_code_cell("raise ValueError('late failure')"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def kit(tmp_path, monkeypatch):
    """A notebooks folder with two claim-writing notebooks, a papers README and a figures folder."""
    readme = tmp_path / "README.md"
    readme.write_text(README)
    monkeypatch.setattr(report, "PAPERS_README", readme)
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _claim_nb(nbs / "01_alpha_first.ipynb", "01_alpha", ["P-1"])
    _claim_nb(nbs / "02_beta_second.ipynb", "02_beta", ["P-2", "KIT-1"], verdict="partly")
    return nbs, tmp_path / "figures"


def _run(kit, *args):
    nbs, figures = kit
    return runner.main(["--profile", "smoke", "--out", str(figures), *args], notebooks_dir=nbs)


def test_paper_claims_lists_every_id_of_the_real_readme():
    listed = report.paper_claims()
    assert len(listed) >= 30 and listed["id"].is_unique
    assert {"P-T1", "P-F3a", "M-T1", "M-F16"} <= set(listed["id"])
    assert set(listed["paper"]) and all(listed["paper"].str.len() > 0)


def test_every_claim_of_the_papers_is_recorded_by_some_notebook():
    """Every id of the papers' README appears as a string literal in a notebook or library module
    that writes claims records: none is silently missing from the report."""
    import re

    sources = [nb.read_text() for nb in runner.discover()]
    sources += [m.read_text() for m in (runner.paths.REPO_ROOT / "probex_lib").glob("*.py")]
    missing = [cid for cid in report.paper_claims()["id"]
               if not any(re.search(r'\\?"' + re.escape(cid) + r'\\?"', src) for src in sources)]
    assert not missing, f"claims no code records: {missing}"


def test_the_kit_copy_of_the_claims_list_is_checked_against_its_source(tmp_path):
    source = tmp_path / "README.md"
    source.write_text(README)
    copy = tmp_path / "claims.md"
    copy.write_text(README)
    assert report.out_of_sync(copy, source) == []
    copy.write_text(README.replace("| P-2 | second claim | down |", "| P-2 | second claim | up |")
                    .replace("| M-1 | third claim | flat |\n", ""))
    assert report.out_of_sync(copy, source) == ["M-1", "P-2"]
    assert report.out_of_sync(copy, tmp_path / "absent.md") == []


def test_table_and_summary_from_records():
    recs = pd.DataFrame([
        {"notebook": "01_a", "profile": "default", "id": "P-1", "what": "w", "paper": "up", "ours": "0.9",
         "rule": "r", "verdict": "reproduced", "figure": "f.png"},
        {"notebook": "02_b", "profile": "default", "id": "M-1", "what": "w", "paper": "flat", "ours": "0.1",
         "rule": "r", "verdict": "not reproduced", "figure": ""},
        {"notebook": "02_b", "profile": "default", "id": "KIT-1", "what": "kit", "paper": "-", "ours": "1",
         "rule": "r", "verdict": "reproduced", "figure": ""},
    ])
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        readme = Path(d) / "README.md"
        readme.write_text(README)
        t = report.table(recs, {"01_a": "01_a_nb", "02_b": "02_b_nb"}, readme)
        assert list(t["id"]) == ["P-1", "P-2", "M-1", "KIT-1"]
        assert t.set_index("id").loc["P-2", "verdict"] == "not run"
        assert report.summary_line(t) == "3 claims: 1 reproduced, 1 not reproduced, 1 not run"
        # a notebook whose last run failed: its claims are "not run", with the reason
        t2 = report.table(recs, {"01_a": "01_a_nb"}, readme, failed={"02_b": "02_b_nb"})
        row = t2.set_index("id").loc["M-1"]
        assert row["verdict"] == "not run" and "02_b_nb failed" in row["note"]
        assert "KIT-1" not in set(t2["id"])
        md = report.markdown(t2, {"profile": "default", "seed": 0, "git commit": "abc"},
                             pd.DataFrame([{"notebook": "01_a_nb", "profile": "default", "minutes": 1.0, "status": "ok"}]))
        assert "3 claims: 1 reproduced, 2 not run" in md and "## Paper A" in md and "## Paper B" in md


def test_scaling_curves_fill_the_at_scale_column_and_never_count_as_claims(tmp_path):
    rec = lambda i, v, nb="01_a", **d: {"notebook": nb, "profile": "default", "id": i, "what": "w", "paper": "p",  # noqa: E731
                                        "ours": "o", "rule": "r", "verdict": v, "figure": "", "details": d}
    recs = pd.DataFrame([rec("P-1", "not reproduced"), rec("M-1", "partly"),
                         rec("P-1@models", "trend toward paper", "08_s", largest=350),
                         rec("P-1@width", "no trend", "08_s", largest=16), rec("M-1@steps", "bogus", "08_s")])
    readme = tmp_path / "README.md"
    readme.write_text(README)
    t = report.table(recs, {"01_a": "01_a_nb", "08_s": "08_s_nb"}, readme).set_index("id")
    assert list(t.index) == ["P-1", "P-2", "M-1"]  # no row of its own for a curve
    assert t.loc["P-1", "at scale"] == "models: trend toward paper (to 350); width: no trend (to 16)"
    assert t.loc["M-1", "at scale"] == "steps: not judged"
    assert t.loc["P-2", "at scale"] == ""
    assert report.summary_line(t.reset_index()) == "3 claims: 1 partly, 1 not reproduced, 1 not run"
    # the curves of a notebook that has not finished are not shown
    t2 = report.table(recs, {"01_a": "01_a_nb"}, readme).set_index("id")
    assert t2.loc["P-1", "at scale"] == ""
    md = report.markdown(t.reset_index(), {"profile": "default", "seed": 0, "git commit": "abc"},
                         pd.DataFrame(columns=["notebook", "profile", "minutes", "status"]))
    assert "at scale (notebook 08)" in md and "models: trend toward paper (to 350)" in md
    snap = report.snapshot(t.reset_index(), pd.DataFrame(columns=["notebook", "minutes"]), {"profile": "default", "seed": 0})
    assert "| at scale (notebook 08) |" in report.results_block(snap)


def test_first_run_minutes_are_shown_beside_the_last_run(tmp_path):
    snap = {"summary": "s", "profile": "default", "seed": 0, "commit": "abcdef123", "date": "2026-12-01",
            "minutes": {"01_a": 0.2, "02_b": 1.0}, "claims": [],
            "first_run": {"minutes": {"01_a": 7.8, "02_b": 26.8}, "date": "2026-11-30", "commit": "1234567aa", "wall_minutes": 35.0}}
    block = report.results_block(snap)
    assert "| 01_a | 7.8 | 0.2 |" in block and "| **total** | **34.6** | **1.2** |" in block and "35.0 min of wall time" in block
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(snap))
    assert report.previous_first_run(f)["minutes"]["02_b"] == 26.8
    assert report.previous_first_run(tmp_path / "none.json") == {}
    assert "first run" not in report.results_block({**snap, "first_run": {}})


def test_data_is_empty_sees_any_cache(tmp_path):
    assert runner.data_is_empty(tmp_path / "missing")
    (tmp_path / ".gitignore").write_text("*")
    assert runner.data_is_empty(tmp_path)
    (tmp_path / "procedural").mkdir()
    assert not runner.data_is_empty(tmp_path)


def test_run_writes_report_skips_unchanged_and_force_reruns(kit, capsys):
    nbs, figures = kit
    assert _run(kit) == 0
    out = capsys.readouterr().out
    assert "3 claims: 1 reproduced, 1 partly, 1 not run" in out
    md = (figures / "REPORT.md").read_text()
    assert "| P-1 | first claim | paper | ours P-1 | **reproduced** |" in md and "## kit checks" in md
    html = (figures / "REPORT.html").read_text()
    assert "<h1>Reproduction report</h1>" in html and "ours P-2" in html
    state = json.loads((figures / "run_state.json").read_text())
    assert {s["status"] for s in state.values()} == {"ok"} and state["01_alpha_first"]["record"] == "01_alpha"
    executed = figures / "notebooks" / "01_alpha_first.ipynb"
    mtime = executed.stat().st_mtime_ns

    assert _run(kit) == 0  # nothing changed: both skipped
    assert capsys.readouterr().out.count("inputs unchanged") == 2 and executed.stat().st_mtime_ns == mtime

    nb = nbformat.read(nbs / "02_beta_second.ipynb", as_version=4)  # an edit reruns only that notebook
    nb.cells.append(nbformat.v4.new_code_cell("1 + 1"))
    nbformat.write(nb, nbs / "02_beta_second.ipynb")
    assert _run(kit) == 0
    out = capsys.readouterr().out
    assert "01_alpha_first: inputs unchanged" in out and "02_beta_second (profile smoke)" in out

    assert _run(kit, "--force", "--only", "01") == 0
    assert "01_alpha_first (profile smoke)" in capsys.readouterr().out and executed.stat().st_mtime_ns != mtime

    assert _run(kit, "--seed", "1", "--only", "01") == 0  # other parameters: rerun
    assert "01_alpha_first (profile smoke)" in capsys.readouterr().out


def test_a_failing_notebook_stops_the_run_and_never_reaches_the_report(kit, capsys):
    nbs, figures = kit
    assert _run(kit) == 0
    before = {f: (figures / f).read_bytes() for f in ("REPORT.md", "REPORT.html")}
    _claim_nb(nbs / "02_beta_second.ipynb", "02_beta", ["P-2"], verdict="reproduced", fail=True)
    _claim_nb(nbs / "03_gamma_third.ipynb", "03_gamma", ["M-1"])
    assert _run(kit) == 1
    err = capsys.readouterr().err
    assert "02_beta_second.ipynb failed in cell" in err and "ValueError: late failure" in err
    assert str(figures / "notebooks" / "02_beta_second.ipynb") in err
    assert not (figures / "notebooks" / "03_gamma_third.ipynb").exists(), "the run went on after a failure"
    assert {f: (figures / f).read_bytes() for f in before} == before, "the previous report was overwritten"
    assert json.loads((figures / "run_state.json").read_text())["02_beta_second"]["status"] == "failed"

    # the failed notebook wrote "reproduced" for P-2 before failing; a later report must not use it
    assert _run(kit, "--only", "03") == 0
    rows = pd.read_csv(figures / "report_claims.csv").set_index("id")
    assert rows.loc["P-2", "verdict"] == "not run" and "failed" in rows.loc["P-2", "note"]
    assert rows.loc["M-1", "verdict"] == "reproduced"


def test_stale_results_are_marked_in_the_report(kit, monkeypatch):
    nbs, figures = kit
    assert _run(kit) == 0
    nb = nbformat.read(nbs / "01_alpha_first.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("2 + 2"))
    nbformat.write(nb, nbs / "01_alpha_first.ipynb")
    assert _run(kit, "--only", "02") == 0
    md = (figures / "REPORT.md").read_text()
    assert "| 01_alpha_first | smoke |" in md and "stale" in md.split("01_alpha_first | smoke |")[1].splitlines()[0]


def test_a_full_disk_while_writing_the_report_keeps_the_previous_one(kit, monkeypatch, capsys):
    nbs, figures = kit
    assert _run(kit) == 0
    before = {f: (figures / f).read_bytes() for f in ("REPORT.md", "REPORT.html", "report_claims.csv")}
    real_stage = atomic._stage

    def filling_disk(tmp, text):
        if tmp.name.startswith(".REPORT.html."):  # REPORT.md is staged, then the disk fills
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        real_stage(tmp, text)

    monkeypatch.setattr(atomic, "_stage", filling_disk)
    assert _run(kit, "--force", "--only", "02") == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and "REPORT.html" in err and "previous report" in err
    assert {f: (figures / f).read_bytes() for f in before} == before
    assert not list(figures.glob(".*.tmp")), "temporary files were left behind"


def test_an_unwritable_figures_folder_is_reported_before_anything_runs(kit, tmp_path, capsys, monkeypatch):
    nbs, _ = kit
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert runner.main(["--profile", "smoke", "--out", str(blocker / "figures")], notebooks_dir=nbs) == 1
    err = capsys.readouterr().err
    assert f"figures folder {blocker / 'figures'} is not writable" in err
    # a read-only mount (simulated: this suite may run as root, which ignores permission bits)
    ro = tmp_path / "ro"
    ro.mkdir()

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runner.tempfile, "NamedTemporaryFile", read_only)
    assert runner.main(["--profile", "smoke", "--out", str(ro)], notebooks_dir=nbs) == 1
    assert f"figures folder {ro} is not writable (Read-only file system)" in capsys.readouterr().err
    assert not (ro / "notebooks").exists()


def test_unknown_notebook_and_missing_parameters_cell_stop_before_running(kit, capsys):
    nbs, figures = kit
    assert _run(kit, "--only", "09") == 1
    assert "unknown notebook '09'" in capsys.readouterr().err
    nb = nbformat.read(nbs / "02_beta_second.ipynb", as_version=4)
    nb.cells[0].metadata = {}
    nbformat.write(nb, nbs / "02_beta_second.ipynb")
    assert _run(kit) == 1
    assert "02_beta_second.ipynb: no code cell tagged 'parameters'" in capsys.readouterr().err
    assert not (figures / "notebooks" / "01_alpha_first.ipynb").exists(), "ran a notebook before checking all"


def test_the_scaling_profile_runs_notebook_08_only(kit, capsys):
    nbs, figures = kit
    for only in ([], ["--only", "01"], ["--only", "08,01"]):
        with pytest.raises(SystemExit):
            runner.main(["--profile", "scaling", "--out", str(figures), *only], notebooks_dir=nbs)
        assert "run it with --only 08" in capsys.readouterr().err
    assert not (figures / "notebooks").exists()


def test_write_many_is_all_or_nothing(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    atomic.write_many({a: "old a", b: "old b"})
    atomic.write_many({a: "new a", b: "new b"})
    assert a.read_text() == "new a" and b.read_text() == "new b"
    real_stage = atomic._stage

    def full_on_b(tmp, text):
        if tmp.name.startswith(".b.txt."):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_stage(tmp, text)

    monkeypatch.setattr(atomic, "_stage", full_on_b)
    with pytest.raises(OSError, match="No space left"):
        atomic.write_many({a: "newer a", b: "newer b"})
    assert a.read_text() == "new a" and b.read_text() == "new b" and not list(tmp_path.glob(".*.tmp"))


def test_claims_records_name_their_notebook():
    assert runner.record_name(runner.NOTEBOOKS_DIR / "03_probex_tree_experts.ipynb") == "03_probex"
    for nb in runner.discover():
        source = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells)
        assert f'write_claims("{runner.record_name(nb)}"' in source, f"{nb.name} does not write claims/{runner.record_name(nb)}.json"
    assert claims.VERDICTS == report.VERDICT_ORDER


def test_not_judged_claims_show_their_reason_and_never_count_as_verdicts(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    from probex_lib import verdicts

    judged = verdicts.judge("M-F6", {"smallest": float("nan")}, "—")  # a number its rule needs is not finite
    bogus = {"id": "P-2", "what": "w", "paper": "p", "ours": "o", "rule": "r", "verdict": "sort of", "figure": "",
             "details": {}, "notebook": "01_a", "profile": "smoke"}
    recs = pd.DataFrame([{**bogus, "id": "P-1", **{k: getattr(judged, k) for k in ("verdict", "details")}}, bogus])
    t = report.table(recs, {"01_a": "01_a_nb"}, readme).set_index("id")
    assert t.loc["P-1", "verdict"] == claims.NOT_JUDGED and "M-F6" in t.loc["P-1", "note"]
    assert t.loc["P-2", "verdict"] == claims.NOT_JUDGED and "sort of" in t.loc["P-2", "note"]
    assert t.loc["M-1", "verdict"] == claims.NOT_RUN
    assert "1 not run, 2 not judged" in report.summary_line(t.reset_index())


def test_readme_results_block_is_regenerated_from_a_snapshot(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# kit\n\nintro\n\n{report.BEGIN}\nold typed numbers\n{report.END}\n\n## after\n")
    t = pd.DataFrame([{"id": "P-1", "paper": "A", "paper says": "up", "ours": "0.7", "verdict": "reproduced", "note": ""},
                      {"id": "P-2", "paper": "A", "paper says": "down", "ours": "—", "verdict": "not run", "note": "why"}])
    times = pd.DataFrame([{"notebook": "01_a", "profile": "default", "minutes": 2.04, "status": "ok"}])
    snap = report.snapshot(t, times, {"profile": "default", "seed": 0, "git commit": "abc1234", "date": "2026-12-01"})
    report.update_readme(snap, readme, tmp_path / "snap.json")
    text = readme.read_text()
    assert "old typed numbers" not in text and text.startswith("# kit") and text.endswith("## after\n")
    assert report.readme_block(readme) == report.results_block(json.loads((tmp_path / "snap.json").read_text()))
    assert "1 reproduced, 1 not run" in text and "| 01_a | 2.0 |" in text
    readme.write_text("# no block\n")
    with pytest.raises(ValueError, match="no results block"):
        report.update_readme(snap, readme, tmp_path / "snap.json")


def test_the_committed_readme_matches_its_committed_snapshot():
    """The README's results block is exactly what the committed snapshot generates: no hand edits."""
    snap = json.loads(report.SNAPSHOT.read_text())
    assert report.readme_block() == report.results_block(snap)
    listed = set(report.paper_claims()["id"])
    assert listed <= {c["id"] for c in snap["claims"]}
    assert all(c["verdict"] in claims.VERDICTS for c in snap["claims"])
