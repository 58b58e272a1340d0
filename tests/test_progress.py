"""Live progress of ./run_all.sh: status lines, kernel output on a terminal and in a log, and real
runs of tiny notebooks (heartbeat, report filling in, --quiet, a terminal that hangs up)."""
import io
import os
import re
import select
import subprocess
import sys
import time

import nbformat
import pandas as pd
import pytest

from probex_lib import claims, progress, report, runner
from test_report import README, _claim_nb


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def _progress(out=None, **kw):
    clock = Clock()
    return progress.Progress(out if out is not None else io.StringIO(), clock=clock, **kw), clock


def _cells():
    return [nbformat.v4.new_markdown_cell("# Title\ntext"), nbformat.v4.new_code_cell("profile = 'smoke'"),
            nbformat.v4.new_markdown_cell("no heading here"), nbformat.v4.new_code_cell("# a comment\nx = train(1)"),
            nbformat.v4.new_code_cell("   "), nbformat.v4.new_markdown_cell("## Table 1"),
            nbformat.v4.new_code_cell("# only a comment")]


def test_cell_labels_name_the_heading_above_and_the_first_code_line():
    assert progress.cell_labels(_cells()) == {1: "[Title] profile = 'smoke'", 3: "[Title] x = train(1)",
                                              6: "[Table 1] # only a comment"}
    long = [nbformat.v4.new_markdown_cell("## " + "h" * 50), nbformat.v4.new_code_cell("y = " + "1" * 200)]
    assert progress.cell_labels(long, heading_width=10, code_width=20) == {1: "[hhhhhhh...] y = 1111111111111..."}


def test_fmt_seconds_and_the_interval_from_the_environment(monkeypatch):
    assert [progress.fmt_seconds(s) for s in (0, 42.4, 185, 3720)] == ["0s", "42s", "3m05s", "1h02m"]
    monkeypatch.delenv("PROBEX_HEARTBEAT", raising=False)
    assert progress.interval_from_env() == progress.DEFAULT_INTERVAL <= 30
    monkeypatch.setenv("PROBEX_HEARTBEAT", "0.5")
    assert progress.interval_from_env() == 0.5
    for bad in ("soon", "0"):
        monkeypatch.setenv("PROBEX_HEARTBEAT", bad)
        with pytest.raises(ValueError, match="PROBEX_HEARTBEAT"):
            progress.interval_from_env()


def test_status_lines_come_every_interval_and_early_for_a_long_cell():
    out = io.StringIO()
    p, clock = _progress(out, interval=20)
    p._reset("03_x", expected=300.0)
    p.on_notebook_start(nbformat.v4.new_notebook(cells=_cells()))
    p.tick()
    assert out.getvalue() == ""
    clock.t += 20
    p.tick()
    assert out.getvalue() == "[run_all] 03_x  starting the kernel  elapsed 20s, about 4m40s left (last run 5m00s)\n"
    p.on_cell_execute(None, 3)
    clock.t += 1.9
    p.tick()
    assert out.getvalue().count("\n") == 1
    clock.t += 0.1  # the cell has run 2 s: its line at once
    p.tick()
    assert out.getvalue().splitlines()[-1] == ("[run_all] 03_x  cell 2/3 [Title] x = train(1)  elapsed 22s (cell 2s), "
                                               "about 4m38s left (last run 5m00s)")
    clock.t += 10
    p.tick()  # shown already, interval not over
    assert out.getvalue().count("\n") == 2
    clock.t += 400
    p.tick()
    assert "longer than its last run (5m00s), time left unknown" in out.getvalue().splitlines()[-1]
    p.expected = None
    assert "time left unknown (no earlier run in this profile)" in p.status()


def test_a_log_gets_whole_lines_and_the_latest_bar_rides_on_the_status_line():
    out = io.StringIO()
    p, clock = _progress(out, interval=5)
    p._reset("01_a", None)
    p.kernel_output("\rloop:  10%|#  | 1/10", "stderr")
    p.kernel_output("\rloop:  20%|## | 2/10", "stderr")
    p.kernel_output("hello\n", "stdout")  # another stream does not break the bar's line
    assert out.getvalue() == "    | hello\n" and p.bar == "loop:  20%|## | 2/10"
    clock.t += 5
    p.tick()
    assert out.getvalue().splitlines()[-1].endswith("  | loop:  20%|## | 2/10")
    p.kernel_output("\rloop: 100%|###| 10/10\n\x1b[A", "stderr")
    assert out.getvalue().endswith("    | loop: 100%|###| 10/10\n") and p.bar == ""
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_a_terminal_gets_the_bars_as_drawn_and_status_lines_below_them():
    out = Tty()
    p, clock = _progress(out, interval=5)
    assert p.tty
    p._reset("01_a", None)
    p.kernel_output("\rloop:  10%", "stderr")
    clock.t += 5
    p.tick()
    p.kernel_output("\rloop:  20%", "stderr")
    assert out.getvalue().startswith("\rloop:  10%\n[run_all] 01_a  starting the kernel") and out.getvalue().endswith("\rloop:  20%")
    assert "  | loop" not in out.getvalue()


def test_quiet_prints_nothing_and_a_terminal_gone_turns_quiet():
    out = io.StringIO()
    p, clock = _progress(out, quiet=True, interval=1)
    p._reset("01_a", None)
    p.kernel_output("hello\n")
    clock.t += 5
    p.tick()
    p.line("x")
    assert out.getvalue() == "" and p.engine_kwargs() == {}

    class HungUp(io.StringIO):
        def write(self, s):
            raise OSError(5, "Input/output error")

    p, clock = _progress(HungUp(), interval=1)
    p._reset("01_a", None)
    clock.t += 5
    p.tick()  # no exception
    assert p.quiet


# ---------------------------------------------------------------------------- real runs

@pytest.fixture()
def slow_kit(tmp_path, monkeypatch):
    """01 waits 2 s (and draws a tqdm bar) and writes P-1; 02 writes P-2 then fails."""
    (tmp_path / "README.md").write_text(README)
    monkeypatch.setattr(report, "PAPERS_README", tmp_path / "README.md")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    first = _claim_nb(nbs / "01_alpha_first.ipynb", "01_alpha", ["P-1"])
    nb = nbformat.read(first, as_version=4)
    nb.cells[1:1] = [nbformat.v4.new_markdown_cell("## Wait two seconds"),
                     nbformat.v4.new_code_cell("import time; time.sleep(2)\nfrom tqdm import tqdm\n"
                                               "for _ in tqdm(range(3), desc='loop'):\n    time.sleep(0.1)\n"
                                               "print('hello from the kernel')")]
    nbformat.write(nb, first)
    _claim_nb(nbs / "02_beta_second.ipynb", "02_beta", ["P-2"], fail=True)
    return nbs, tmp_path / "figures"


def _main(kit, *args):
    nbs, figures = kit
    return runner.main(["--profile", "smoke", "--out", str(figures), "--heartbeat", "0.5", *args], notebooks_dir=nbs)


def test_a_run_shows_its_progress_and_the_report_fills_in_as_notebooks_finish(slow_kit, capsys):
    nbs, figures = slow_kit
    assert _main(slow_kit) == 1
    out, err = capsys.readouterr()
    assert "2 notebooks to run; none has finished in this profile before" in out
    assert "01_alpha_first (profile smoke) ... 1 of 2; first run in this profile" in out
    beats = [l for l in out.splitlines() if re.match(r"\[run_all\] 01_alpha_first  cell \d+/\d+ ", l)]
    assert any(re.match(r"\[run_all\] 01_alpha_first  cell 3/4 \[Wait two seconds\] import time; time\.sleep\(2\)  "
                        r"elapsed \d+s( \(cell \d+s\))?, time left unknown", l) for l in beats), out
    assert len([l for l in beats if "cell 3/4" in l]) >= 2, "no heartbeat while the 2 s cell ran"
    assert "    | hello from the kernel" in out and re.search(r"    \| loop: 100%.*3/3", out)  # kernel output forwarded
    assert "\r" not in out  # not a terminal: plain lines
    assert "report so far (1 of 2 finished, 1 still to run)" in out
    assert "02_beta_second.ipynb failed in cell" in err and "shows the notebooks that finished" in err
    rows = pd.read_csv(figures / "report_claims.csv").set_index("id")
    assert rows.loc["P-1", "verdict"] == "reproduced" and rows.loc["P-1", "notebook"] == "01_alpha_first"
    assert rows.loc["P-2", "verdict"] == claims.NOT_RUN and rows.loc["M-1", "verdict"] == claims.NOT_RUN
    assert "**reproduced**" in (figures / "REPORT.md").read_text() and (figures / "REPORT.html").exists()
    assert "| 02_beta_second | smoke | 0.0 | queued in this run |" in (figures / "REPORT.md").read_text()
    cols = ["verdict", "ours", "notebook"]
    first = rows[cols]

    # --quiet: the same run and report, without progress
    assert _main(slow_kit, "--force", "--quiet") == 1
    out, err = capsys.readouterr()
    assert not re.search(r"elapsed|  cell \d|starting the kernel|    \| ", out), out
    assert "01_alpha_first done in" in out and "02_beta_second.ipynb failed in cell" in err
    pd.testing.assert_frame_equal(pd.read_csv(figures / "report_claims.csv").set_index("id")[cols], first)

    # a rerun estimates what is left from the last run in run_state.json
    assert _main(slow_kit, "--force", "--only", "01") == 0
    out = capsys.readouterr().out
    assert re.search(r"1 notebook to run: about \d+s by their last runs", out)
    assert re.search(r"01_alpha_first  cell \d/4 .*(about \d+s left \(last run \d+s\)|longer than its last run)", out)


DRIVER = """import fcntl, os, sys, termios
from pathlib import Path
from probex_lib import report, runner
if os.isatty(0):  # a new session (start_new_session) takes the pty as its terminal: closing it sends SIGHUP
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
report.PAPERS_README = Path(sys.argv[1])
sys.exit(runner.main(sys.argv[3:], notebooks_dir=Path(sys.argv[2])))
"""


def test_a_terminal_that_hangs_up_changes_neither_the_run_nor_the_report(slow_kit, tmp_path):
    """The runner's terminal closes while a notebook runs: SIGHUP. It goes on quietly, and its report
    equals that of a --quiet run."""
    import pty

    nbs, figures = slow_kit
    _claim_nb(nbs / "02_beta_second.ipynb", "02_beta", ["P-2"])  # both succeed here
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    quiet = subprocess.run([sys.executable, str(driver), str(report.PAPERS_README), str(nbs), "--profile", "smoke",
                            "--out", str(tmp_path / "quiet"), "--quiet"], capture_output=True, text=True,
                           cwd=runner.paths.REPO_ROOT, timeout=300)
    assert quiet.returncode == 0, quiet.stderr

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(driver), str(report.PAPERS_README), str(nbs), "--profile", "smoke",
                             "--out", str(figures), "--heartbeat", "0.3"], stdin=slave, stdout=slave, stderr=slave,
                            cwd=runner.paths.REPO_ROOT, start_new_session=True)
    os.close(slave)
    seen, end = b"", time.monotonic() + 120
    try:
        while b"cell 3/4 [Wait two seconds]" not in seen:  # mid-notebook, heartbeat running
            ready, _, _ = select.select([master], [], [], max(0.0, end - time.monotonic()))
            assert ready, f"no progress line within 120 s: {seen[-2000:]!r}"
            seen += os.read(master, 65536)
    finally:
        os.close(master)  # the terminal is gone: the kernel sends SIGHUP to the session
    assert proc.wait(timeout=300) == 0, "the run died with its terminal"
    assert (figures / "report_claims.csv").read_text() == (tmp_path / "quiet" / "report_claims.csv").read_text()
    assert {s["status"] for s in report.read_state(figures).values()} == {"ok"}
