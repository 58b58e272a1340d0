"""What a MoTHer accuracy means: the no-direction baseline and the direction signal.

Accuracy counts an edge right only when it is placed *and* directed right. But once the edges
are placed, picking the root at random already directs most of them right: only the edges on the
path from the true root to the chosen one are reversed. On a 1-4-16 tree that scores 0.914, on
the 1-3-9-27-81 tree 0.971, on a chain 0.5. So every MoTHer accuracy is reported with

* the **no-direction baseline**: the same placement (the minimum spanning tree of the same
  distances, i.e. the MDST with the direction prior off), each cluster's root drawn uniformly at
  random; the exact expectation, not a sample (:func:`no_direction_baseline`);
* the **shape baseline**: the same with every edge placed right, which depends only on the tree
  shape and so applies to the paper's trees too (:func:`shape_baseline`);
* the **direction signal**: of the true edges the recovery placed (either direction), the share
  whose direction score orders parent and child as the prior expects; 0.5 without signal
  (:func:`direction_signal`).

Shapes: ``parent`` arrays (n,) index into the same model order, -1 for a root.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import mother


def _correct_per_root(adj: list[list[int]], nodes: list[int], parent_true: np.ndarray) -> np.ndarray:
    """For each root in ``nodes``: the number of true edges directed right when the tree on
    ``nodes`` (undirected adjacency ``adj``) is oriented away from that root. (len(nodes),) int."""
    out = np.zeros(len(nodes), dtype=int)
    for i, root in enumerate(nodes):
        seen, q = {root}, deque([root])
        while q:
            u = q.popleft()
            for v in adj[u]:
                if v not in seen:
                    seen.add(v)
                    out[i] += int(parent_true[v] == u)  # oriented u -> v: right if u is v's true parent
                    q.append(v)
    return out


def _count_distribution(edges: list[tuple[int, int]], groups: list[list[int]], parent_true: np.ndarray) -> np.ndarray:
    """P(total correct edges = k), k = 0..n, when each group's root is drawn uniformly (exact)."""
    adj: list[list[int]] = [[] for _ in range(len(parent_true))]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    dist = np.ones(1)
    for g in groups:
        if len(g) > 1:
            counts = _correct_per_root(adj, g, parent_true)
            one = np.bincount(counts, minlength=counts.max() + 1) / len(counts)
            dist = np.convolve(dist, one)
    return dist


def _expected_accuracy(d: np.ndarray, parent_true: np.ndarray) -> float:
    """Mean of the count distribution ``d`` as a share of the true edges."""
    n_true = int((parent_true >= 0).sum())
    return float((np.arange(len(d)) * d).sum() / n_true) if n_true else float("nan")


def _p_at_least(d: np.ndarray, parent_true: np.ndarray, parent_pred: np.ndarray) -> float:
    """P(count >= the recovery's number of correct edges) under the count distribution ``d``."""
    k = int(((parent_pred == parent_true) & (parent_true >= 0)).sum())
    return float(d[k:].sum()) if k < len(d) else 0.0


def _placement(dist: np.ndarray, labels: np.ndarray) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """The undirected edges the distances alone give (per cluster: the MDST with the prior off, i.e.
    a minimum spanning tree) and the clusters' members."""
    edges, groups = [], []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        groups.append(idx.tolist())
        if len(idx) > 1:
            sub = mother.recover_tree(dist[np.ix_(idx, idx)], np.zeros(len(idx)), c=0.0)
            edges += [(int(idx[c]), int(idx[p])) for c, p in enumerate(sub) if p >= 0]
    return edges, groups


def shape_baseline(parent_true: np.ndarray) -> float:
    """Accuracy of a perfect placement with each tree's root drawn at random (exact expectation):
    0.914 for 1-4-16, 0.971 for 1-3-9-27-81, 0.5 for a chain. Float."""
    parent_true = np.asarray(parent_true)
    child = np.flatnonzero(parent_true >= 0)
    edges = [(int(c), int(parent_true[c])) for c in child]
    n = len(parent_true)
    _, labels = connected_components(coo_matrix((np.ones(len(child)), (child, parent_true[child])), shape=(n, n)))
    groups = [np.flatnonzero(labels == k).tolist() for k in np.unique(labels)]
    return _expected_accuracy(_count_distribution(edges, groups, parent_true), parent_true)


def no_direction_baseline(dist: np.ndarray, labels: np.ndarray, parent_true: np.ndarray) -> float:
    """Expected accuracy of the placement the distances alone give (per cluster of ``labels``, the
    MDST of ``dist`` with the direction prior off, i.e. a minimum spanning tree) with each
    cluster's root drawn uniformly at random. dist: (n, n); labels, parent_true: (n,). Float."""
    return no_direction(dist, labels, parent_true, np.full(len(parent_true), -1))[0]


def random_root_pvalue(dist: np.ndarray, labels: np.ndarray, parent_true: np.ndarray, parent_pred: np.ndarray) -> float:
    """Exact one-sided p-value of the recovery's number of correct (placed and directed) edges under
    the no-direction null: the distances' own placement with each cluster's root drawn uniformly.
    Small p: the recovery directs edges better than random roots would. Float."""
    return no_direction(dist, labels, parent_true, parent_pred)[1]


def no_direction(dist: np.ndarray, labels: np.ndarray, parent_true: np.ndarray,
                 parent_pred: np.ndarray) -> tuple[float, float]:
    """(no-direction baseline, p-value of ``parent_pred`` against it) from one placement and one
    exact count distribution (see :func:`no_direction_baseline`, :func:`random_root_pvalue`)."""
    parent_true, parent_pred = np.asarray(parent_true), np.asarray(parent_pred)
    edges, groups = _placement(np.asarray(dist, np.float64), np.asarray(labels))
    d = _count_distribution(edges, groups, parent_true)
    return _expected_accuracy(d, parent_true), _p_at_least(d, parent_true, parent_pred)


def direction_signal(parent_true: np.ndarray, parent_pred: np.ndarray, score: np.ndarray,
                     generalization: bool = False) -> tuple[float, int]:
    """(share, n): of the true edges present in the recovered graph in either direction (n of
    them), the share whose ``score`` orders parent and child as the prior expects (falls from
    parent to child for specialisation, rises for generalisation); a tie (a layer the child did not
    change) counts one half. 0.5 means no signal."""
    parent_true, parent_pred, score = np.asarray(parent_true), np.asarray(parent_pred), np.asarray(score)
    placed = {frozenset((c, p)) for c, p in enumerate(parent_pred) if p >= 0}
    right = []
    for c, p in enumerate(parent_true):
        if p >= 0 and frozenset((c, int(p))) in placed:
            right.append(0.5 if score[c] == score[p] else float(score[c] > score[p] if generalization else score[p] > score[c]))
    return (float(np.mean(right)) if right else float("nan")), len(right)
