"""MoTHer: recover the Model Tree(s) of a set of models from their weights alone.

Shapes: ``layers`` is a list of arrays, one per layer, each (n_models, d_l) flattened weights.

* :func:`ft_distance` — Eq. 1, the mean over layers of the l2 distance, as one blocked,
  centred matrix product per layer (never a Python loop over model pairs);
* :func:`kurtosis_score` — Eq. 3, the sum over layers of each layer's (Pearson) kurtosis;
* :func:`cost_matrix` — Eq. 4-6, M = D + lambda (K xor T), lambda = c mean(D);
* :func:`recover_tree` — the minimum directed spanning tree of M (Chu-Liu/Edmonds, mdst.py);
* :func:`cluster_models` — hierarchical clustering of D into trees (known or automatic count).
"""
from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from .mdst import min_spanning_arborescence


def pairwise_l2(x: np.ndarray, block: int = 1024) -> np.ndarray:
    """Euclidean distances between the rows of x: (n, d) -> (n, n) float64.

    Centred (column means removed in float64) before a float32 Gram matrix, so that
    |a|^2 + |b|^2 - 2ab does not cancel catastrophically when models share a large common
    component (models of one tree do); rows are processed in blocks of ``block``.
    """
    x = np.asarray(x)
    mean = x.mean(axis=0, dtype=np.float64)
    xc = np.empty(x.shape, dtype=np.float32)
    for s in range(0, len(x), block):  # centre block by block: no float64 copy of all of x
        xc[s:s + block] = x[s:s + block] - mean
    sq = np.einsum("ij,ij->i", xc, xc, dtype=np.float64)
    out = np.empty((len(x), len(x)))
    for s in range(0, len(x), block):  # the upper block triangle only: half the Gram matrix's flops
        g = xc[s:s + block] @ xc[s:].T
        d2 = sq[s:s + block, None] + sq[None, s:] - 2 * g.astype(np.float64)
        out[s:s + block, s:] = d2
        out[s:, s:s + block] = d2.T
    np.maximum(out, 0, out=out)
    np.sqrt(out, out=out)
    out = (out + out.T) / 2  # the diagonal blocks were computed once each way; make them exactly symmetric
    np.fill_diagonal(out, 0.0)
    return out


def ft_distance(layers: list[np.ndarray]) -> np.ndarray:
    """Eq. 1: (1/L) sum_l ||u_l - v_l||_2 for every model pair. Returns (n, n), zero diagonal."""
    if not layers:
        raise ValueError("ft_distance needs at least one layer")
    return sum(pairwise_l2(l.reshape(len(l), -1)) for l in layers) / len(layers)


LoraFactors = list[tuple[np.ndarray, np.ndarray]]  # per model: (B (d_out, r), A (r, d_in)); r may differ


def _spectral_norm(b: np.ndarray, a: np.ndarray) -> float:
    r1 = np.linalg.qr(b, mode="r")
    r2 = np.linalg.qr(a.T, mode="r")
    return float(np.linalg.norm(r1 @ r2.T, 2)) if r1.size and r2.size else 0.0


def lora_rank_distance(layers: list[LoraFactors], rel_tol: float = 1e-4) -> np.ndarray:
    """Eq. 2: max over layers of rank(B_u A_u - B_v A_v), from the factors. Returns (n, n) int.

    ``layers[l][i]`` = (B, A) of model i at layer l, i.e. the model's weight is W0 + B @ A.
    The difference is [B_u, -B_v] @ [A_u; A_v]; with QR of both stacked factors it has the
    singular values of the small (r_u + r_v)^2 product R1 @ R2^T, so no d_out x d_in SVD is
    needed. A singular value counts if it exceeds ``rel_tol`` times the larger of the two
    models' own spectral norms (same rule as :func:`lora_rank_distance_dense`).
    """
    n = len(layers[0])
    out = np.zeros((n, n), dtype=np.int64)
    for factors in layers:
        if len(factors) != n:
            raise ValueError(f"every layer needs factors for all {n} models, got {len(factors)}")
        f64 = [(np.asarray(b, np.float64), np.asarray(a, np.float64)) for b, a in factors]
        norms = [_spectral_norm(b, a) for b, a in f64]
        for i in range(n):
            for j in range(i + 1, n):
                (bi, ai), (bj, aj) = f64[i], f64[j]
                r1 = np.linalg.qr(np.concatenate([bi, -bj], axis=1), mode="r")
                r2 = np.linalg.qr(np.concatenate([ai, aj], axis=0).T, mode="r")
                s = np.linalg.svd(r1 @ r2.T, compute_uv=False)
                rank = int((s > rel_tol * max(norms[i], norms[j], 1e-30)).sum())
                out[i, j] = out[j, i] = max(out[i, j], rank)
    return out


def lora_rank_distance_dense(layers: list[LoraFactors], rel_tol: float = 1e-4) -> np.ndarray:
    """Reference for :func:`lora_rank_distance`: SVD of each full difference matrix (slow)."""
    n = len(layers[0])
    out = np.zeros((n, n), dtype=np.int64)
    for factors in layers:
        full = [np.asarray(b, np.float64) @ np.asarray(a, np.float64) for b, a in factors]
        norms = [np.linalg.norm(w, 2) for w in full]
        for i in range(n):
            for j in range(i + 1, n):
                s = np.linalg.svd(full[i] - full[j], compute_uv=False)
                rank = int((s > rel_tol * max(norms[i], norms[j], 1e-30)).sum())
                out[i, j] = out[j, i] = max(out[i, j], rank)
    return out


def kurtosis_score(layers: list[np.ndarray], block: int = 256) -> np.ndarray:
    """Eq. 3: sum over layers of E[(w - mu)^4] / E[(w - mu)^2]^2 per model. Returns (n,).

    Equals ``sum(scipy.stats.kurtosis(layer, axis=1, fisher=False))`` (tested). Models are
    processed ``block`` at a time in float64, so memory stays near the size of the input.
    """
    n = len(layers[0]) if layers else 0
    total = np.zeros(n)
    for l in layers:
        l = np.asarray(l).reshape(len(l), -1)
        for s in range(0, len(l), block):
            c = l[s:s + block].astype(np.float64)
            c -= c.mean(axis=1, keepdims=True)
            c2 = c * c
            m2 = c2.mean(axis=1)
            total[s:s + block] += np.einsum("ij,ij->i", c2, c2) / c2.shape[1] / m2**2
    return total


def cost_matrix(dist: np.ndarray, score: np.ndarray, generalization: bool | np.ndarray = False, c: float = 0.3) -> np.ndarray:
    """Eq. 4-6. ``M[i, j]`` is the cost of the edge i -> j (i the parent of j).

    K[i, j] = 1 if score[i] < score[j]; T = 1 for generalization edges (kurtosis rises from
    parent to child), 0 for specialization (falls). An edge against the expected direction
    costs lambda = c * mean(D) extra. The diagonal is infinite.
    """
    dist = np.asarray(dist, dtype=np.float64)
    n = len(dist)
    k = (score[:, None] < score[None, :]).astype(np.int8)
    t = np.broadcast_to(np.asarray(generalization, dtype=np.int8), (n, n))
    lam = c * dist.sum() / n**2
    m = dist + lam * (k ^ t)
    np.fill_diagonal(m, np.inf)
    return m


def recover_tree(dist: np.ndarray, score: np.ndarray, generalization: bool | np.ndarray = False, c: float = 0.3) -> np.ndarray:
    """Parent array (-1 for the root) of the recovered Model Tree of one cluster."""
    return min_spanning_arborescence(cost_matrix(dist, score, generalization, c))


def recover_graph(dist: np.ndarray, score: np.ndarray, n_trees: int | None = None, generalization: bool | np.ndarray = False,
                  c: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Cluster into Model Trees, then the MDST of each cluster. Returns (cluster labels (n,),
    parent index (n,), -1 for each tree's root)."""
    labels = cluster_models(dist, n_trees)
    parent = np.full(len(dist), -1)
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if len(idx) > 1:
            gen = generalization if np.ndim(generalization) == 0 else np.asarray(generalization)[np.ix_(idx, idx)]
            sub = recover_tree(dist[np.ix_(idx, idx)], score[idx], gen, c)
            parent[idx] = np.where(sub >= 0, idx[np.maximum(sub, 0)], -1)
    return labels, parent


def rank_distance_full(layers: list[np.ndarray], rel_tol: float = 1e-5, block: int = 4096) -> np.ndarray:
    """Eq. 2 from merged weights: max over layers of rank(W_u - W_v). ``layers``: (n, d_out, d_in)
    each. A singular value counts if it exceeds ``rel_tol`` times the larger spectral norm of
    W_u, W_v (float32 storage noise is about 1e-7 of it). Pairs are batched, never looped in
    Python one by one. Returns (n, n) int."""
    n = len(layers[0])
    iu, ju = np.triu_indices(n, 1)
    best = np.zeros(len(iu), dtype=np.int64)
    for w in layers:
        w = np.asarray(w, dtype=np.float64)
        norms = np.linalg.norm(w, 2, axis=(1, 2))
        for s in range(0, len(iu), block):
            a, b = iu[s:s + block], ju[s:s + block]
            sv = np.linalg.svd(w[a] - w[b], compute_uv=False)
            tol = rel_tol * np.maximum(norms[a], norms[b])
            best[s:s + block] = np.maximum(best[s:s + block], (sv > tol[:, None]).sum(1))
    out = np.zeros((n, n), dtype=np.int64)
    out[iu, ju] = out[ju, iu] = best
    return out


def cluster_models(dist: np.ndarray, n_clusters: int | None = None, method: str = "ward") -> np.ndarray:
    """Labels 0..k-1 from hierarchical clustering of the distance matrix (n, n).

    ``n_clusters=None`` cuts the dendrogram where one merge height jumps the most relative to
    the previous one, if that jump is more than ``3x`` (unrelated roots are far apart compared
    with fine-tunes of one root); otherwise everything is one tree.
    """
    n = len(dist)
    if n < 2:
        return np.zeros(n, dtype=int)
    z = linkage(squareform(np.asarray(dist, dtype=np.float64), checks=False), method=method)
    if n_clusters is None:
        heights = np.maximum(z[:, 2], 1e-12)
        ratios = heights[1:] / heights[:-1]
        if len(ratios) == 0 or ratios.max() <= 3.0:
            n_clusters = 1
        else:
            n_clusters = n - 1 - int(np.argmax(ratios))
    return fcluster(z, t=n_clusters, criterion="maxclust") - 1


def edge_accuracy(parent_true: np.ndarray, parent_pred: np.ndarray) -> float:
    """Fraction of true edges (non-root nodes) whose parent is recovered with the right direction."""
    parent_true, parent_pred = np.asarray(parent_true), np.asarray(parent_pred)
    mask = parent_true >= 0
    return float((parent_pred[mask] == parent_true[mask]).mean()) if mask.any() else 1.0


if __name__ == "__main__":
    import sys

    from .recover import main

    sys.exit(main())
