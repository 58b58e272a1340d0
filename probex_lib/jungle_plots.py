"""Figures of the Model Jungle (notebook 02): the paper's Figs. 16-24 and the LoRA samples.

Every function takes data (manifests, tables, images) and returns a matplotlib figure in the
kit's style; notebooks save them with :func:`probex_lib.plotting.save_figure`.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .plotting import PALETTE


def accuracy_histograms(manifest: pd.DataFrame, bins: int = 20) -> plt.Figure:
    """Figs. 17-21: test accuracy of the fine-tuned models, one panel per tree."""
    trees = sorted(manifest["tree"].unique())
    fig, axes = plt.subplots(1, len(trees), figsize=(2.6 * len(trees), 2.4), sharey=True, squeeze=False)
    for ax, tree, colour in zip(axes[0], trees, PALETTE):
        sub = manifest[manifest["tree"] == tree]
        ax.hist(sub["test_accuracy"], bins=bins, range=(0, 1), color=colour, alpha=0.85)
        chance = float((1 / sub["classes"].map(len)).mean())
        ax.axvline(chance, color="k", ls=":", lw=1, label="chance")
        ax.set(title=f"{tree} (n={len(sub)})", xlabel="test accuracy", xlim=(0, 1))
    axes[0][0].set_ylabel("# models")
    axes[0][0].legend(loc="upper right")
    fig.tight_layout()
    return fig


def accuracy_vs_lr(manifest: pd.DataFrame) -> plt.Figure:
    """Figs. 22-24: test accuracy against the model's learning rate, one panel per tree."""
    trees = sorted(manifest["tree"].unique())
    fig, axes = plt.subplots(1, len(trees), figsize=(2.6 * len(trees), 2.4), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)  # horizontal jitter only, for visibility
    for ax, tree, colour in zip(axes[0], trees, PALETTE):
        sub = manifest[manifest["tree"] == tree]
        jitter = np.exp(rng.uniform(-0.12, 0.12, len(sub)))
        ax.scatter(sub["lr"] * jitter, sub["test_accuracy"], s=7, alpha=0.6, color=colour)
        means = sub.groupby("lr")["test_accuracy"].mean()
        ax.plot(means.index, means.values, "k-o", ms=3, lw=1, label="mean")
        ax.set(xscale="log", title=tree, xlabel="learning rate", ylim=(0, 1))
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(loc="lower left")
    fig.tight_layout()
    return fig


def generative_layout(layout: pd.DataFrame, n_rows: int = 10) -> plt.Figure:
    """Fig. 16: which classes each generative variant uses, held out or for training.

    Classes are drawn on a grid by class id (procedural: colour rows x shape columns);
    each cell shows the number of LoRAs.
    """
    variants = list(dict.fromkeys(layout["variant"]))
    n_classes = int(layout["class_id"].max()) + 1
    n_cols = int(np.ceil(n_classes / n_rows)) if n_classes > n_rows else n_classes
    n_rows = int(np.ceil(n_classes / n_cols))
    fig, axes = plt.subplots(1, len(variants), figsize=(3.4 * len(variants), 3.4), squeeze=False)
    codes = {"unused": 0, "train": 1, "held-out": 2}
    cmap = plt.matplotlib.colors.ListedColormap(["#eeeeee", PALETTE[0], PALETTE[1]])
    for ax, v in zip(axes[0], variants):
        grid = np.zeros(n_rows * n_cols)
        sub = layout[layout["variant"] == v]
        grid[sub["class_id"].to_numpy()] = sub["role"].map(codes).to_numpy()
        ax.imshow(grid.reshape(n_rows, n_cols), cmap=cmap, vmin=0, vmax=2)
        for r in sub.itertuples():
            ax.text(r.class_id % n_cols, r.class_id // n_cols, str(r.models), ha="center", va="center", fontsize=6,
                    color="white")
        n_train, n_held = (sub["role"] == "train").sum(), (sub["role"] == "held-out").sum()
        ax.set(title=f"{v}: {n_train} train + {n_held} held-out classes\n{int(sub['models'].sum())} LoRAs",
               xticks=[], yticks=[])
        rows, cols = _grid_labels(layout, n_cols)
        if rows:  # colour x shape names: label the grid's rows and columns
            ax.set(yticks=range(len(rows)), yticklabels=rows, xticks=range(len(cols)))
            ax.set_xticklabels(cols, rotation=90)
        ax.grid(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(3)]
    fig.legend(handles, list(codes), loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _grid_labels(layout: pd.DataFrame, n_cols: int) -> tuple[list[str], list[str]]:
    """Row and column names of the class grid when every class is "<row> <column>" on it."""
    rows: dict[int, str] = {}
    cols: dict[int, str] = {}
    for r in layout.drop_duplicates("class_id").itertuples():
        parts = str(r.class_name).split(" ", 1)
        if len(parts) != 2 or rows.setdefault(r.class_id // n_cols, parts[0]) != parts[0] \
                or cols.setdefault(r.class_id % n_cols, parts[1]) != parts[1]:
            return [], []
    if set(rows) != set(range(max(rows) + 1)) or set(cols) != set(range(n_cols)):
        return [], []
    return [rows[i] for i in sorted(rows)], [cols[i] for i in sorted(cols)]


def lora_samples(rows: pd.DataFrame, samples: dict[str, np.ndarray], train_images: dict[str, np.ndarray],
                 n_show: int = 4) -> plt.Figure:
    """Per LoRA (one row): its training images, then images sampled with the identifier prompt."""
    fig, axes = plt.subplots(len(rows), 2 * n_show, figsize=(1.0 * 2 * n_show, 1.05 * len(rows)), squeeze=False)
    for r, m in enumerate(rows.itertuples()):
        tiles = list(train_images[m.model_id][:n_show]) + list(samples[m.model_id][:n_show])
        for c, ax in enumerate(axes[r]):
            if c < len(tiles):
                ax.imshow(tiles[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        axes[r][0].set_ylabel(f"{m.class_name}\n({m.split})", fontsize=7, rotation=0, ha="right", va="center")
    axes[0][0].set_title("training images", loc="left", fontsize=8)
    axes[0][n_show].set_title("LoRA samples ('a photo of sks object')", loc="left", fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def personalisation_bars(table: pd.DataFrame, metrics: Sequence[str] = ("class acc", "colour acc", "shape acc"),
                         chance: dict[str, float] | None = None) -> plt.Figure:
    """Mean agreement of the judge with the LoRA's class, per condition and metric."""
    conds = list(dict.fromkeys(table["condition"]))
    mean = table.groupby("condition")[list(metrics)].mean().loc[conds]
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    width = 0.8 / len(conds)
    for i, (cond, colour) in enumerate(zip(conds, PALETTE)):
        ax.bar(np.arange(len(metrics)) + i * width, mean.loc[cond].values, width, label=cond, color=colour)
    for j, m in enumerate(metrics):
        if chance and m in chance:
            ax.hlines(chance[m], j - width / 2, j + 0.8 - width / 2, colors="k", linestyles=":", lw=1)
    ax.set(xticks=np.arange(len(metrics)) + 0.4 - width / 2, xticklabels=list(metrics), ylim=(0, 1),
           ylabel="agreement with the LoRA's class", title="does personalisation work? (dotted: chance)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
