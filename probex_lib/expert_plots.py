"""Figures of notebook 03 (ProbeX per tree): Table 1 as bars, the layer sweep, the router's
confusion matrix and the Appendix E ablations. Each function returns a figure in the kit's style."""
from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import plotting
from .plotting import PALETTE


def table1_bars(table: pd.DataFrame) -> plt.Figure:
    """Table 1: test accuracy per tree (x) and expert (colour); chance is 0.5."""
    fig, ax = plt.subplots(figsize=(1.4 * table["tree"].nunique() + 1.5, 2.8))
    plotting.grouped_bars(table, "tree", "expert", "test", ax=ax, chance=0.5, ylabel="test accuracy (binary)",
                          title="Training-class prediction per tree")
    return fig


def _short(layer: str) -> str:
    """A tick label for a layer: ViT "3.fc2" / "1.o_proj"; ResNet "s2.b0.c1" (stage, block,
    conv), "s2.b0.sc" (shortcut), "stem"; anything else without its '.weight'."""
    name = layer.removesuffix(".weight")
    m = re.match(r"^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.(?:layer\.(\d+)|(shortcut))\.convolution$", name)
    if m:
        return f"s{m[1]}.b{m[2]}." + (f"c{m[3]}" if m[3] is not None else "sc")
    if name.startswith("resnet.embedder"):
        return "stem"
    m = re.match(r"^vit\.layers\.(\d+)\.(?:attention|mlp)\.(\w+)$", name)
    return f"{m[1]}.{m[2]}" if m else name


def layer_sweep(sweep: pd.DataFrame) -> plt.Figure:
    """Validation (line) and test (dots) accuracy of ProbeX per layer, one panel per tree."""
    trees = sorted(sweep["tree"].unique())
    fig, axes = plt.subplots(1, len(trees), figsize=(3.2 * len(trees), 2.8), sharey=True, squeeze=False)
    for ax, tree, colour in zip(axes[0], trees, PALETTE):
        sub = sweep[sweep["tree"] == tree].reset_index(drop=True)
        x = np.arange(len(sub))
        ax.plot(x, sub["val"], marker="o", ms=3, color=colour, label="val")
        ax.scatter(x, sub["test"], s=10, color="k", zorder=3, label="test")
        best = int(sub["val"].idxmax())
        ax.axvline(best, color=colour, ls=":", lw=1)
        ax.axhline(0.5, color="k", ls="--", lw=0.8)
        ax.set_xticks(x, [_short(k) for k in sub["layer"]], rotation=90, fontsize=6)
        ax.set_title(f"{tree}: best {_short(sub['layer'][best])}")
    axes[0][0].set_ylabel("accuracy (binary)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=2)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def router_confusion(routed: pd.DataFrame) -> plt.Figure:
    """True tree (rows) vs routed tree (columns), counts over every model."""
    m = pd.crosstab(routed["tree"], routed["routed_tree"].fillna("?"))
    fig, ax = plt.subplots(figsize=(0.7 * m.shape[1] + 1.8, 0.6 * m.shape[0] + 1.2))
    ax.imshow(m.to_numpy(), cmap="Blues")
    ax.grid(False)
    for (i, j), v in np.ndenumerate(m.to_numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(m.shape[1]), m.columns, rotation=45)
    ax.set_yticks(range(m.shape[0]), m.index)
    ax.set(xlabel="routed to", ylabel="true tree", title="Router")
    return fig


def ablation_panels(abl: pd.DataFrame) -> plt.Figure:
    """Appendix E: test and validation accuracy vs each ablated value (ranks on a log axis)."""
    names = list(dict.fromkeys(abl["ablation"]))
    fig, axes = plt.subplots(1, len(names), figsize=(2.4 * len(names), 2.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        sub = abl[abl["ablation"] == name].sort_values("value")
        ax.plot(sub["value"], sub["test"], marker="o", ms=3, color=PALETTE[0], label="test")
        ax.plot(sub["value"], sub["val"], marker="s", ms=3, ls=":", color=PALETTE[1], label="val")
        ax.axhline(0.5, color="k", ls="--", lw=0.8)
        if name.startswith("r") or name == "joint r":
            ax.set_xscale("log", base=2)
        ax.set(title=name, xlabel="models" if name == "n_train" else name)
    axes[0][0].set_ylabel("accuracy (binary)")
    axes[0][0].legend()
    fig.tight_layout()
    return fig
