"""Figures of notebook 09 (the kit's style, :mod:`probex_lib.plotting`): one figure, one function."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import auc, roc_curve

from .plotting import PALETTE


def reliability(points: list[dict], ece: float, title: str = "") -> plt.Figure:
    """Reliability diagram: accuracy vs mean confidence per bin (marker area ~ edges in the bin),
    the diagonal of perfect calibration, and the ECE in the legend."""
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfectly calibrated")
    if points:
        conf = [p["confidence"] for p in points]
        acc = [p["accuracy"] for p in points]
        n = np.array([p["n"] for p in points], float)
        ax.plot(conf, acc, c=PALETTE[0], lw=1)
        ax.scatter(conf, acc, s=20 + 300 * n / n.max(), c=PALETTE[0], label=f"held-out edges (ECE {ece:.3f})", zorder=3)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="edge confidence", ylabel="share of edges right", title=title)
    ax.legend(loc="upper left", fontsize=7)
    return fig


def confusion(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Edge types: true (rows) x predicted (columns), counts annotated, rows coloured by their share."""
    share = matrix.div(matrix.sum(1).replace(0, 1), axis=0)
    fig, ax = plt.subplots(figsize=(0.7 * matrix.shape[1] + 1.5, 0.5 * matrix.shape[0] + 1.2))
    ax.imshow(share.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if share.iat[i, j] > 0.6 else "black")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=35, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    ax.set(xlabel="predicted type", ylabel="true type", title=title)
    ax.grid(False)
    return fig


def pair_rocs(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """ROC curves of the pair score: 1-hop and 2-hop ancestor pairs against hard (same tree, not one
    lineage) and easy (other trees) negatives."""
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    for k, (pos, neg) in enumerate((("1-hop", "hard"), ("2-hop", "hard"), ("1-hop", "easy"), ("2-hop", "easy"))):
        p, q = table[table["kind"] == pos]["score"], table[table["kind"] == neg]["score"]
        if not len(p) or not len(q):
            continue
        fpr, tpr, _ = roc_curve(np.r_[np.ones(len(p)), np.zeros(len(q))], np.r_[p, q])
        ax.plot(fpr, tpr, c=PALETTE[k % 2], ls="-" if neg == "hard" else ":", label=f"{pos} vs {neg}: AUC {auc(fpr, tpr):.3f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=7)
    return fig
