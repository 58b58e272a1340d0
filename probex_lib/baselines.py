"""Baselines of the ProbeX paper (Sec. 6, App. H.2) and the mixture-of-tree-experts router (Sec. 4.4).

* StatNN (Unterthiner et al.): 7 statistics per weight and bias tensor (mean, variance and
  the 0, 25, 50, 75, 100 % quantiles), concatenated; a gradient-boosted tree classifier per
  label (scikit-learn's HistGradientBoostingClassifier).
* The tree router: hierarchical clustering of single-layer l2 distances into trees (number
  of trees from the dendrogram unless given), then each model goes to the nearest cluster
  centre (Eq. 5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from . import mother

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def statnn_features(tensors: list[np.ndarray]) -> np.ndarray:
    """tensors: list of (n_models, ...) arrays (each weight or bias tensor) -> (n_models, 7 * len(tensors))."""
    feats = []
    for t in tensors:
        flat = np.asarray(t, dtype=np.float64).reshape(len(t), -1)
        feats += [flat.mean(1, keepdims=True), flat.var(1, keepdims=True), np.quantile(flat, QUANTILES, axis=1).T]
    return np.concatenate(feats, axis=1)


@dataclass
class StatNN:
    """One gradient-boosted tree classifier per binary label on StatNN features."""

    models: list
    constant: dict[int, float]  # labels with a single class in training: predicted as that class

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """x: (n, n_features) -> probabilities (n, n_labels)."""
        out = np.zeros((len(x), len(self.models)))
        for j, m in enumerate(self.models):
            out[:, j] = self.constant[j] if m is None else m.predict_proba(x)[:, 1]
        return out

    @property
    def n_parameters(self) -> int:
        """Tree nodes (split or leaf) over all labels: the honest size of a boosted-tree model."""
        total = 0
        for m in self.models:
            if m is not None:
                total += sum(len(p.nodes) for it in m._predictors for p in it)
        return total


def fit_statnn(x: np.ndarray, y: np.ndarray, seed: int = 0, max_iter: int = 100) -> StatNN:
    """x: (n, n_features), y: (n, n_labels) 0/1. A label with one class only is stated, not fitted."""
    models, constant = [], {}
    for j in range(y.shape[1]):
        col = y[:, j]
        if col.min() == col.max():
            models.append(None)
            constant[j] = float(col[0])
            continue
        models.append(HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed).fit(x, col))
    return StatNN(models, constant)


@dataclass
class TreeRouter:
    """Cluster centres of one layer's flattened weights; routes a model to the nearest (Eq. 5)."""

    centres: np.ndarray  # (k, d)

    def route(self, x: np.ndarray) -> np.ndarray:
        """x: (n, d) -> cluster index (n,)."""
        d2 = (x**2).sum(1)[:, None] - 2 * x @ self.centres.T + (self.centres**2).sum(1)[None]
        return np.argmin(d2, axis=1)


def fit_router(x: np.ndarray, n_trees: int | None = None) -> tuple[TreeRouter, np.ndarray]:
    """Cluster models x: (n, d) into trees; returns the router and the training labels (n,).

    Ward linkage on one layer's l2 distances (Euclidean, where Ward is valid). The ProbeX paper says
    scipy's defaults (single linkage); single linkage chains across trees whose fine-tunes spread
    widely (tests/test_experts.py has such a zoo), so the kit keeps Ward here and says so in the README."""
    labels = mother.cluster_models(mother.pairwise_l2(x), n_trees, method="ward")
    centres = np.stack([x[labels == k].mean(0) for k in range(labels.max() + 1)])
    return TreeRouter(centres), labels


def routing_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy of cluster ids against true tree names under the best one-to-one matching
    (Hungarian); a tree split over two clusters, or two trees merged, costs accuracy."""
    from scipy.optimize import linear_sum_assignment

    pred, truth = np.asarray(pred), np.asarray(truth)
    clusters, trees = np.unique(pred), np.unique(truth)
    counts = np.array([[np.sum((pred == c) & (truth == t)) for t in trees] for c in clusters])
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(pred))
