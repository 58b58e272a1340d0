"""One plotting style for every figure, and savers for figures (PNG + PDF) and tables (CSV + Markdown).

Plot functions take ``ax=None`` and return the axes; notebooks call them and then
:func:`save_figure`. Agg backend: figures render headless under papermill and in CI.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import atomic, paths  # noqa: E402

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


def use_style() -> None:
    """The kit's matplotlib style (call once per notebook)."""
    plt.rcParams.update({
        "figure.figsize": (4.2, 3.2), "figure.dpi": 110, "savefig.dpi": 160, "savefig.bbox": "tight",
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "legend.frameon": False,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    })


def out_dir(out: str | Path | None) -> Path:
    """The folder figures and tables go to: ``out``, or ``figures/``."""
    return Path(out) if out else paths.figures_dir()


_out = out_dir


def save_figure(fig: plt.Figure, name: str, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.pdf`` atomically; returns both paths."""
    written = []
    for ext in ("png", "pdf"):
        target = _out(out_dir) / f"{name}.{ext}"
        with atomic.atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext)
        written.append(target)
    return written


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    def cell(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt) if np.isfinite(v) else str(v)
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def save_table(df: pd.DataFrame, name: str, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.md`` atomically; returns both paths."""
    out = _out(out_dir)
    return [atomic.write_text(out / f"{name}.csv", df.to_csv(index=False)),
            atomic.write_text(out / f"{name}.md", to_markdown(df))]


def _accuracy_limits(ax, values: Sequence[float], chance: float | None, bottom_zero: bool = False) -> None:
    """Y range that shows every bar (with its error bar) and the chance line, with 15 % headroom
    for value labels. Bars start at zero when ``bottom_zero`` (a cut bar misleads)."""
    vals = [float(v) for v in values if np.isfinite(v)] + ([chance] if chance is not None else [])
    if vals:
        lo = 0.0 if bottom_zero else max(0.0, min(vals) - 0.05)
        hi = max(vals)
        ax.set_ylim(lo, min(1.02, hi + 0.15 * max(hi - lo, 0.05)))


def _chance_line(ax, chance: float) -> None:
    """Dashed chance line, labelled in the right margin so that it never covers a bar."""
    ax.axhline(chance, color="k", ls="--", lw=0.8)
    ax.annotate("chance", xy=(1.0, chance), xycoords=("axes fraction", "data"), xytext=(2, 0),
                textcoords="offset points", va="center", ha="left", fontsize=7)


def bar_compare(labels: Sequence[str], values: Sequence[float], ax=None, chance: float | None = None,
                errors: Sequence[float] | None = None, ylabel: str = "accuracy", title: str = ""):
    """Bars with value labels and an optional chance line."""
    ax = ax or plt.subplots()[1]
    x = np.arange(len(labels))
    ax.bar(x, values, yerr=errors, color=[PALETTE[i % len(PALETTE)] for i in range(len(labels))], capsize=3)
    tops = np.asarray(values, dtype=float) + (np.asarray(errors, dtype=float) if errors is not None else 0.0)
    for xi, v, top in zip(x, values, tops):
        ax.text(xi + 0.05, top + 0.004, f"{v:.3f}", ha="left", va="bottom", fontsize=8)
    if chance is not None:
        _chance_line(ax, chance)
    _accuracy_limits(ax, list(tops), chance, bottom_zero=True)
    ax.set_xticks(x, labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax


def line_with_band(df: pd.DataFrame, x: str, y: str, hue: str, ax=None, chance: float | None = None,
                   xlabel: str = "", ylabel: str = "accuracy", title: str = "", logx: bool = False):
    """Mean of ``y`` over repeats vs ``x``, one line per ``hue`` value, with a ±1 std band."""
    ax = ax or plt.subplots()[1]
    for i, (name, g) in enumerate(df.groupby(hue, sort=True)):
        stats = g.groupby(x)[y].agg(["mean", "std"]).fillna(0.0)
        ax.plot(stats.index, stats["mean"], marker="o", ms=3, color=PALETTE[i % len(PALETTE)], label=str(name))
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                        color=PALETTE[i % len(PALETTE)], alpha=0.2)
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=0.8, label="chance")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax


def grouped_bars(df: pd.DataFrame, group: str, hue: str, value: str, ax=None, chance: float | None = None,
                 ylabel: str = "accuracy", title: str = ""):
    """Bars of ``value`` for each ``group`` (x axis) and ``hue`` (colour)."""
    ax = ax or plt.subplots()[1]
    groups = list(dict.fromkeys(df[group]))
    hues = list(dict.fromkeys(df[hue]))
    w = 0.8 / len(hues)
    _accuracy_limits(ax, df[value].tolist(), chance, bottom_zero=True)
    for j, h in enumerate(hues):
        vals = [float(df[(df[group] == g) & (df[hue] == h)][value].mean()) for g in groups]
        ax.bar(np.arange(len(groups)) + (j - (len(hues) - 1) / 2) * w, vals, w, label=str(h), color=PALETTE[j % len(PALETTE)])
    if chance is not None:
        _chance_line(ax, chance)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax


def model_tree(names: Sequence[str], parent: Sequence[int], cluster: Sequence[int] | None = None, ax=None, title: str = ""):
    """Draw a forest given by a parent array (-1 = root): roots on top, children below, one
    colour per cluster. Leaves are spaced evenly; a parent sits above the middle of its children."""
    parent = np.asarray(parent)
    n = len(parent)
    children: dict[int, list[int]] = {i: [] for i in range(n)}
    for c, p in enumerate(parent):
        if p >= 0:
            children[int(p)].append(c)
    pos: dict[int, tuple[float, float]] = {}
    next_x = [0.0]

    def place(v: int, depth: int) -> float:
        if children[v]:
            xs = [place(c, depth + 1) for c in children[v]]
            x = (min(xs) + max(xs)) / 2
        else:
            x = next_x[0]
            next_x[0] += 1
        pos[v] = (x, -depth)
        return x

    for r in np.flatnonzero(parent < 0):
        place(int(r), 0)
        next_x[0] += 0.5
    ax = ax or plt.subplots(figsize=(max(4.0, 0.35 * n), 3.2))[1]
    for c, p in enumerate(parent):
        if p >= 0:
            (x0, y0), (x1, y1) = pos[int(p)], pos[c]
            ax.annotate("", (x1, y1 + 0.08), (x0, y0 - 0.08), arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8})
    cols = [PALETTE[int(cluster[i]) % len(PALETTE)] if cluster is not None else PALETTE[0] for i in range(n)]
    ax.scatter([pos[i][0] for i in range(n)], [pos[i][1] for i in range(n)], c=cols, s=60, zorder=3)
    if n <= 40:
        for i in range(n):
            ax.text(pos[i][0] + 0.12, pos[i][1] + 0.05, str(names[i]), ha="left", va="bottom", fontsize=6)
    ax.set_axis_off()
    ax.set_title(title)
    return ax
