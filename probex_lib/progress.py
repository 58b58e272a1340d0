"""Live progress of ``./run_all.sh``: the notebook, its cell (n of m), elapsed time, time left.

The runner hands :meth:`Progress.engine_kwargs` to papermill: nbclient's hooks
(``on_notebook_start``, ``on_cell_execute``, ``on_cell_executed``) say which cell runs, and
papermill's ``stdout_file`` / ``stderr_file`` forward the kernel's own output (the tqdm bars of
long loops, warnings, prints) while the notebook runs. A heartbeat thread, independent of
tqdm, prints a status line every ``interval`` seconds, and at once for a cell still running
after 2 s::

    [run_all] 03_probex_tree_experts  cell 5/14 [Table 1] table1 = experts.table1(...)  elapsed 3m05s (cell 1m10s), about 1m50s left (last run 4m55s)

The estimate of what is left comes from the notebook's last successful run in the same profile
(``figures/run_state.json``); on a first run it says so. On a terminal the kernel's
carriage-return bars pass through; anywhere else (a CI log, a file) only whole lines are
written and the latest bar rides on the heartbeat line. ``quiet`` prints none of this. A failed
write (a terminal that hung up) switches to quiet: progress never stops a run, and
:func:`survive_hangup` keeps the run going after a SIGHUP (the terminal closed).
"""
from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

DEFAULT_INTERVAL = 20.0  # seconds between heartbeat lines; --heartbeat or PROBEX_HEARTBEAT sets it
ANNOUNCE_AFTER = 2.0  # a cell still running after this many seconds gets its line at once
KERNEL_PREFIX = "    | "  # before each line the kernel writes (plain mode)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def interval_from_env(default: float = DEFAULT_INTERVAL) -> float:
    """The heartbeat interval in seconds: PROBEX_HEARTBEAT if set (a positive number), else ``default``."""
    raw = os.environ.get("PROBEX_HEARTBEAT", "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"PROBEX_HEARTBEAT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"PROBEX_HEARTBEAT={raw!r}: the heartbeat interval must be positive")
    return value


def fmt_seconds(s: float) -> str:
    """42 -> '42s', 185 -> '3m05s', 3720 -> '1h02m'."""
    s = int(round(max(s, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cell_labels(cells: list, heading_width: int = 40, code_width: int = 60) -> dict[int, str]:
    """{cell index: label} for the code cells nbclient executes (non-empty source): the last
    markdown heading above the cell in brackets, then the cell's first code line (not a comment,
    unless the cell has nothing else), each cut to its width."""
    labels, heading = {}, ""
    for i, c in enumerate(cells):
        source = c.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        lines = [l.strip() for l in source.splitlines() if l.strip()]
        if c.get("cell_type") == "markdown":
            heading = next((l.lstrip("#").strip() for l in lines if l.startswith("#")), heading)
        elif c.get("cell_type") == "code" and lines:
            first = next((l for l in lines if not l.startswith("#")), lines[0])
            labels[i] = (f"[{_cut(heading, heading_width)}] " if heading else "") + _cut(first, code_width)
    return labels


class _Forward:
    """A file-like object for papermill's ``stdout_file`` / ``stderr_file``."""

    def __init__(self, progress: "Progress", name: str):
        self.progress, self.name = progress, name

    def write(self, text: str) -> int:
        self.progress.kernel_output(text, self.name)
        return len(text)

    def flush(self) -> None:
        pass


class Progress:
    """What one run prints while notebooks execute (see the module docstring).

    ``out``: the stream (default sys.stdout); ``tty``: whether it is a terminal (default: asked
    of ``out``); ``interval``: seconds between heartbeat lines; ``quiet``: print nothing."""

    def __init__(self, out: TextIO | None = None, interval: float = DEFAULT_INTERVAL, quiet: bool = False,
                 tty: bool | None = None, clock=time.monotonic):
        self.out = out if out is not None else sys.stdout
        self.interval, self.quiet, self.clock = float(interval), quiet, clock
        try:
            self.tty = self.out.isatty() if tty is None else tty
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._at_line_start = True
        self._partial: dict[str, str] = {}  # the unfinished kernel line of each stream (plain mode)
        self._reset(None, None)

    def _reset(self, name: str | None, expected: float | None) -> None:
        self.name, self.expected = name, expected
        self.labels: dict[int, str] = {}
        self.order: dict[int, int] = {}
        self.current: int | None = None
        self.t_nb = self.t_cell = self._last_line = self.clock()
        self._shown_cell: int | None = None
        self.bar = ""

    # ------------------------------------------------------------------ writing
    def _write(self, text: str) -> None:
        if self.quiet:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # the terminal hung up, or the stream was closed
            self.quiet = True

    def line(self, text: str) -> None:
        """One whole line, after the kernel's unfinished bar if one is on screen."""
        with self._lock:
            self._write(("" if self._at_line_start else "\n") + text + "\n")
            self._at_line_start = True

    def kernel_output(self, text: str, stream: str = "stderr") -> None:
        """Text the kernel wrote to ``stream`` (stdout / stderr) while a cell ran."""
        if self.quiet or not text:
            return
        with self._lock:
            if self.tty:
                self._write_raw(text)
            else:
                self._write_plain(text, stream)

    def _write_raw(self, text: str) -> None:
        """Terminal: exactly as written, so carriage returns redraw bars in place (no prefix: tqdm
        sizes its bar to the terminal, and a longer line would wrap)."""
        self._write(text)
        self._at_line_start = text.endswith("\n")

    def _write_plain(self, text: str, stream: str) -> None:
        """Log: whole lines only; of a line redrawn with carriage returns, its last state."""
        lines = (self._partial.get(stream, "") + _ANSI.sub("", text)).split("\n")
        self._partial[stream] = lines.pop().split("\r")[-1]
        if stream == "stderr":  # where tqdm draws
            self.bar = self._partial[stream].strip()
        for l in lines:
            l = l.split("\r")
            last = next((s for s in reversed(l) if s.strip()), "")
            if last.strip():
                self._write(KERNEL_PREFIX + last.rstrip() + "\n")

    # ------------------------------------------------------------------ status lines
    def status(self) -> str:
        """The heartbeat line: notebook, cell n/m with its label, elapsed, estimate of what is left."""
        now = self.clock()
        elapsed = now - self.t_nb
        if self.current is None:
            where = "starting the kernel"
        else:
            where = f"cell {self.order.get(self.current, '?')}/{len(self.order) or '?'} {self.labels.get(self.current, '')}".rstrip()
        when = f"elapsed {fmt_seconds(elapsed)}"
        if self.current is not None and now - self.t_cell < elapsed - 1:
            when += f" (cell {fmt_seconds(now - self.t_cell)})"
        if self.expected is None:
            left = "time left unknown (no earlier run in this profile)"
        elif elapsed < self.expected:
            left = f"about {fmt_seconds(self.expected - elapsed)} left (last run {fmt_seconds(self.expected)})"
        else:
            left = f"longer than its last run ({fmt_seconds(self.expected)}), time left unknown"
        bar = f"  | {self.bar}" if self.bar and not self.tty else ""
        return f"[run_all] {self.name}  {where}  {when}, {left}{bar}"

    def tick(self) -> None:
        """Print the status line if ``interval`` has passed since the last one, or if the current
        cell has run for ANNOUNCE_AFTER seconds (or ``interval``, if shorter) without its line."""
        with self._lock:
            if self.quiet or self.name is None:
                return
            now = self.clock()
            new_cell = (self.current is not None and self._shown_cell != self.current
                        and now - self.t_cell >= min(ANNOUNCE_AFTER, self.interval))
            if new_cell or now - self._last_line >= self.interval:
                self.line(self.status())
                self._last_line, self._shown_cell = now, self.current

    def _beat(self) -> None:
        while not self._stop.wait(min(0.25, self.interval / 2)):
            self.tick()

    @contextmanager
    def notebook(self, name: str, expected: float | None = None) -> Iterator["Progress"]:
        """While one notebook runs: the heartbeat thread runs. ``expected``: seconds of its last run."""
        with self._lock:
            self._reset(name, expected)
            self._partial = {}
        self._stop.clear()
        if not self.quiet:
            self._thread = threading.Thread(target=self._beat, name="probex-heartbeat", daemon=True)
            self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            with self._lock:
                if self.tty and not self._at_line_start:
                    self._write("\n")
                    self._at_line_start = True
                self.name = None

    # ------------------------------------------------------------------ papermill / nbclient hooks
    def on_notebook_start(self, notebook, **_) -> None:
        with self._lock:
            self.labels = cell_labels(notebook.cells)
            self.order = {i: n for n, i in enumerate(sorted(self.labels), 1)}

    def on_cell_execute(self, cell, cell_index: int, **_) -> None:
        with self._lock:
            self.current, self.t_cell = cell_index, self.clock()

    def on_cell_executed(self, cell, cell_index: int, **_) -> None:
        with self._lock:
            self.bar = ""

    def engine_kwargs(self) -> dict:
        """Keyword arguments for ``papermill.execute_notebook`` (passed on to nbclient); none if quiet."""
        if self.quiet:
            return {}
        return {"on_notebook_start": self.on_notebook_start, "on_cell_execute": self.on_cell_execute,
                "on_cell_executed": self.on_cell_executed,
                "stdout_file": _Forward(self, "stdout"), "stderr_file": _Forward(self, "stderr")}


def say(text: str, err: bool = False) -> None:
    """print, except that a terminal gone (EIO) or a closed pipe never stops the run."""
    try:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


def survive_hangup(live: Progress):
    """On SIGHUP (the terminal closed) stop printing to it and go on: stdout / stderr, where they
    were the terminal, are pointed at /dev/null and progress turns quiet (a log file keeps getting
    everything). Returns the previous handler (to restore)."""
    ttys = [fd for fd in (1, 2) if _isatty(fd)]

    def hung_up(signum, frame):
        live.quiet = live.quiet or live.tty
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in ttys:
            os.dup2(null, fd)
        os.close(null)

    try:
        return signal.signal(signal.SIGHUP, hung_up)
    except (ValueError, AttributeError):  # not the main thread, or no SIGHUP on this platform
        return None


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
