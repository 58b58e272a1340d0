"""Figures of notebook 08 (scaling curves), in the kit's style."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import verdicts
from .claims import Claim
from .plotting import PALETTE


def curves(points: pd.DataFrame, judged: list[Claim], axis: str) -> plt.Figure:
    """One panel per curve of ``axis``: the effect (error bars: 1 SE) against the axis on a log
    scale, the WLS fit, the paper's value (dashed), the default profile's point (star), the verdict
    in the title."""
    by_id = {c.id: c for c in judged}
    names = [c for c in dict.fromkeys(points["curve"]) if by_id.get(c) and by_id[c].details.get("axis") == axis]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.4 * max(len(names), 1), 3.0), squeeze=False)
    for ax, (i, name) in zip(axes[0], enumerate(names)):
        g = points[points["curve"] == name].sort_values("x")
        claim, axis_words, effect, paper = verdicts.TREND_CURVES[name]
        ax.errorbar(g["x"], g["y"], yerr=g["se"], color=PALETTE[i % len(PALETTE)], marker="o", ms=4, capsize=2, lw=1)
        fit = by_id[name].details.get("fit") or {}
        if fit and np.isfinite(fit.get("slope", np.nan)):
            xs = np.geomspace(g["x"].min(), g["x"].max(), 50)
            ax.plot(xs, fit["intercept"] + fit["slope"] * np.log2(xs), color="0.4", lw=0.8, ls=":", label="WLS fit")
        if paper is not None:
            ax.axhline(paper, color="k", ls="--", lw=0.8, label="paper")
        d = g[g["default"]]
        ax.plot(d["x"], d["y"], marker="*", ms=12, color="k", ls="", label="default profile")
        ax.set_xscale("log")
        ax.set_xticks(g["x"].tolist(), [str(v) for v in g["x"]])
        ax.minorticks_off()
        ax.set(xlabel=axis_words, ylabel=textwrap.fill(effect, 38),
               title=f"{claim}: {by_id[name].verdict}")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
