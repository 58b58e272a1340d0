"""Figures of notebooks 06 and 07 (MoTHer), in the kit's style. Each function returns a figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import plotting
from .plotting import PALETTE

# MoTHer paper, Table 1 (graph accuracy per subset)
PAPER_TABLE1 = {"FT": 0.94, "LoRA-V": 1.0, "LoRA-F": 0.96, "Mixed": 0.83}


def distance_vs_hops(df: pd.DataFrame, rho: float, title: str = "") -> plt.Figure:
    """Fig. 1: Eq. 1 distance of every pair of one tree against their hop count."""
    fig, ax = plt.subplots(figsize=(3.6, 2.9))
    rng = np.random.default_rng(0)
    ax.scatter(df["hops"] + rng.uniform(-0.12, 0.12, len(df)), df["distance"], s=10, alpha=0.6, color=PALETTE[0])
    means = df.groupby("hops")["distance"].mean()
    ax.plot(means.index, means.values, color="k", marker="o", ms=4, lw=1, label="mean")
    ax.set(xlabel="edges between the two models", ylabel="weight distance (Eq. 1)",
           title=f"{title} Pearson rho = {rho:.2f}".strip())
    ax.set_xticks(sorted(df["hops"].unique()))
    ax.legend()
    fig.tight_layout()
    return fig


def kurtosis_traces(pre: pd.DataFrame, ft: pd.DataFrame) -> plt.Figure:
    """Fig. 2: summed kurtosis during pre-training (roots, continued stages) and during
    fine-tuning (relative to the start, mean and spread over models)."""
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 2.9))
    for i, (m, g) in enumerate(pre.groupby("model_id", sort=True)):
        axes[0].plot(g["step"], g["kurtosis"], color=PALETTE[i % len(PALETTE)], label=m, lw=1.2)
    axes[0].set(xlabel="pre-training step", ylabel="kurtosis (sum over layers)", title="generalisation: pre-training")
    axes[0].legend(fontsize=6, ncol=2)
    rel = ft.assign(change=ft["kurtosis"] / ft.groupby("model_id")["kurtosis"].transform("first") - 1)
    rel["bin"] = (rel["progress"] * 10).round() / 10
    plotting.line_with_band(rel.assign(lr=rel["lr"].map(lambda v: f"lr {v:g}")), "bin", "change", "lr", ax=axes[1],
                            xlabel="fine-tuning progress", ylabel="kurtosis change vs start",
                            title="specialisation: fine-tuning")
    axes[1].axhline(0, color="k", lw=0.6)
    fig.tight_layout()
    return fig


def table1_bars(t1: pd.DataFrame) -> plt.Figure:
    """Table 1 as bars: graph accuracy per subset (and distance variant) and score-layer choice;
    the paper's value as a black tick, the no-direction baseline (same distances, random root) as
    a grey dashed tick."""
    label = np.where(t1["distance"].str.startswith("official"), t1["subset"] + " (official)",
                     np.where(t1["distance"].str.startswith("Eq. 1") & t1["subset"].str.startswith("LoRA"),
                              t1["subset"] + " (Eq. 1)", t1["subset"]))
    t = t1.assign(label=label)
    fig, ax = plt.subplots(figsize=(7.6, 3.2))
    plotting.grouped_bars(t, "label", "score layers", "graph", ax=ax, ylabel="graph accuracy", title="")
    labels = list(dict.fromkeys(t["label"]))
    for i, lab in enumerate(labels):
        if lab in PAPER_TABLE1:
            ax.plot([i - 0.4, i + 0.4], [PAPER_TABLE1[lab]] * 2, color="k", lw=2)
        base = float(t.loc[t["label"] == lab, "baseline"].mean())
        ax.plot([i - 0.4, i + 0.4], [base] * 2, color="0.45", lw=1.5, ls="--")
    ax.set_ylim(0, 1.08)
    ax.tick_params(axis="x", rotation=20)
    ax.set_title("recovery accuracy per subset (black: paper; dashed grey: no-direction baseline)", loc="left", fontsize=8)
    ax.legend(title="kurtosis layers", ncol=1, fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              frameon=False)
    fig.tight_layout()
    return fig


def clustering_vs_size(df: pd.DataFrame) -> plt.Figure:
    """Fig. 6: clustering accuracy vs number of models (known and automatic tree count)."""
    long = df.melt(id_vars=["models", "repeat"], value_vars=["accuracy", "accuracy (automatic count)"],
                   var_name="count", value_name="acc")
    fig, ax = plt.subplots(figsize=(3.8, 2.9))
    plotting.line_with_band(long, "models", "acc", "count", ax=ax, xlabel="models in the graph",
                            ylabel="clustering accuracy", title="clustering into Model Trees")
    ax.set_ylim(0, 1.05)
    fig.tight_layout()
    return fig


def direction_scores(ec: pd.DataFrame, layers: list[str], title: str) -> plt.Figure:
    """Figs. 8 and 13: share of true edges where the score falls parent -> child, per score and
    layer group (0.5 = no signal)."""
    sub = ec[ec["layers"].isin(layers)]
    fig, ax = plt.subplots(figsize=(1.1 * len(layers) + 3.0, 2.9))
    plotting.grouped_bars(sub, "layers", "score", "falls parent->child", ax=ax, chance=0.5,
                          ylabel="edges with falling score", title=title)
    ax.set_ylim(0, 1.08)
    fig.tight_layout()
    return fig


def accuracy_lines(df: pd.DataFrame, x: str, title: str, xlabel: str, logx: bool = False, ys=("graph",),
                   paper: dict | None = None) -> plt.Figure:
    """One accuracy curve per column of ``ys`` against ``x`` (c sensitivity, pruning); a column
    "baseline" (the no-direction baseline) is drawn grey and dashed, the paper's values
    (``paper``: x -> accuracy) as black crosses."""
    fig, ax = plt.subplots(figsize=(3.8, 2.9))
    for i, y in enumerate(ys):
        style = dict(color="0.45", ls="--", label="no-direction baseline") if y == "baseline" else dict(color=PALETTE[i], label=y)
        ax.plot(df[x], df[y], marker="o", ms=4, **style)
    if paper:
        ax.plot(list(paper), list(paper.values()), "kx", ms=7, mew=2, label="paper")
    if logx:
        ax.set_xscale("symlog", linthresh=0.1)
    ax.set(xlabel=xlabel, ylabel="accuracy", title=title, ylim=(0, 1.05))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def runtime_lines(rt: pd.DataFrame) -> plt.Figure:
    """Table 7: seconds per stage vs number of models (log-log)."""
    fig, ax = plt.subplots(figsize=(3.8, 2.9))
    for i, col in enumerate(["distances s", "clustering s", "kurtosis s", "MDST s"]):
        ax.plot(rt["models"], rt[col].clip(lower=1e-4), marker="o", ms=4, color=PALETTE[i], label=col[:-2])
    ax.set(xscale="log", yscale="log", xlabel=f"models (one {int(rt['d'].iloc[0])}x{int(rt['d'].iloc[0])} layer)", ylabel="seconds", title="run time (2 CPU cores)")
    ax.legend()
    fig.tight_layout()
    return fig
