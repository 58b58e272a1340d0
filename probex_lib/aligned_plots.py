"""Figures of notebooks 04 and 05 (text-aligned ProbeX): Table 2 as bars, the layer sweep
(in-distribution vs zero-shot), the activation and text-encoder ablations, Table 3 over k and
the retrieval grid. Each function returns a figure in the kit's style."""
from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import plotting
from .plotting import PALETTE


def table2_bars(table: pd.DataFrame) -> plt.Figure:
    """Table 2: in-distribution and zero-shot top-1 per method, one panel per variant and task,
    ±1 SE error bars, chance dashed."""
    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(1, 2 * len(variants), figsize=(2.9 * 2 * len(variants), 2.9), squeeze=False)
    for i, v in enumerate(variants):
        sub = table[table["variant"] == v]
        for j, (task, title) in enumerate((("indist", "in-distribution"), ("zeroshot", "zero-shot"))):
            ax = axes[0][2 * i + j]
            plotting.bar_compare(list(sub["method"]), list(sub[task]), ax=ax, chance=float(sub[f"{task}_chance"].iloc[0]),
                                 errors=list(sub[f"{task}_se"]), ylabel="top-1", title=f"{v}: {title}")
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    return fig


def sweep_scatter(sweeps: pd.DataFrame) -> plt.Figure:
    """Per layer: validation top-1 (in-distribution, what picks the layer) vs zero-shot top-1,
    one panel per variant; the chosen layer is circled and the attention type coloured."""
    variants = list(dict.fromkeys(sweeps["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(3.6 * len(variants), 3.2), squeeze=False)
    kinds = ["to_q", "to_k", "to_v", "to_out"]
    for ax, v in zip(axes[0], variants):
        sub = sweeps[sweeps["variant"] == v]
        for kind, colour in zip(kinds, PALETTE):
            for attn, marker in (("attn1", "o"), ("attn2", "^")):
                m = sub["layer"].str.contains(f"{attn}.{kind}", regex=False)
                ax.scatter(sub.loc[m, "val"], sub.loc[m, "zeroshot"], s=16, color=colour, marker=marker,
                           label=f"{attn}.{kind}" if v == variants[0] else None, alpha=0.8)
        best = sub[sub["chosen"]].iloc[0]
        ax.scatter([best["val"]], [best["zeroshot"]], s=120, facecolors="none", edgecolors="k", lw=1.2)
        ax.axhline(float(sub["zeroshot_chance"].iloc[0]), color="k", ls="--", lw=0.8)
        ax.set(xlabel="validation top-1 (training classes)", ylabel="zero-shot top-1 (held-out classes)",
               title=f"{v}: chosen {best['short']}")
    fig.legend(loc="upper center", ncol=8, fontsize=6)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    return fig


def ablation_bars(table: pd.DataFrame, key: str, title: str) -> plt.Figure:
    """In-distribution and zero-shot top-1 for each row of an ablation (Table 4 or 6)."""
    long = table.melt(id_vars=[key], value_vars=["indist", "zeroshot"], var_name="task", value_name="top-1")
    long["task"] = long["task"].map({"indist": "in-distribution", "zeroshot": "zero-shot"})
    fig, ax = plt.subplots(figsize=(1.3 * len(table) + 2.2, 2.8))
    chance = float(table["zeroshot_chance"].iloc[0]) if "zeroshot_chance" in table else None
    plotting.grouped_bars(long, key, "task", "top-1", ax=ax, chance=chance, ylabel="top-1",
                          title=title + ("" if chance is None else " (dashed: zero-shot chance)"))
    fig.tight_layout()
    return fig


def knn_occ_lines(table: pd.DataFrame) -> plt.Figure:
    """Table 3: kNN accuracy and OCC mean ROC AUC vs k, one line per representation."""
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8))
    plotting.line_with_band(table, "k", "knn_acc", "representation", ax=axes[0], chance=float(table["knn_chance"].iloc[0]),
                            ylabel="kNN accuracy", title="kNN classification (held-out classes)")
    plotting.line_with_band(table, "k", "occ_auc", "representation", ax=axes[1], chance=0.5,
                            ylabel="mean ROC AUC", title="one-class classification")
    for ax in axes:
        ax.set_xticks(sorted(table["k"].unique()))
    fig.tight_layout()
    return fig


def retrieval_grid(table: pd.DataFrame, images: Callable[[str], np.ndarray], n_images: int = 3) -> plt.Figure:
    """One row per query: the query model, then its nearest models, each shown by ``n_images``
    of the images it was trained on (``images(model_id)``); green title: same class as the query."""
    queries = list(dict.fromkeys(table["query"]))
    n_cols = int(table["rank"].max()) + 1
    fig, axes = plt.subplots(len(queries), n_cols * n_images, figsize=(0.62 * n_cols * n_images, 0.95 * len(queries)),
                             squeeze=False)
    for r, q in enumerate(queries):
        rows = table[table["query"] == q].sort_values("rank")
        for c, m in enumerate(rows.itertuples()):
            imgs = images(m.model_id)[:n_images]
            for k in range(n_images):
                ax = axes[r][c * n_images + k]
                if k < len(imgs):
                    ax.imshow(imgs[k], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
            colour = "k" if m.rank == 0 else ("tab:green" if m.same_class else "tab:red")
            label = f"query: {m.class_name}" if m.rank == 0 else f"#{m.rank} {m.class_name} ({m.score:.2f})"
            axes[r][c * n_images].set_title(label, loc="left", fontsize=6, color=colour)
    fig.tight_layout(pad=0.15)
    return fig
