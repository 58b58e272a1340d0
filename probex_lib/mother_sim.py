"""Simulated Model Graphs for MoTHer's run-time table (Table 7): many models of one layer.

Shapes: weights (n, d * d) float32, parent (n,) int, -1 for a root.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import mother


def simulate(n: int, d: int = 256, trees: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n models of one d x d layer in ``trees`` random trees: roots unrelated, each child its
    parent plus a small heavy-tailed-shrinking update. Returns (weights (n, d*d) float32, parent)."""
    rng = np.random.default_rng(seed)
    w = np.empty((n, d * d), dtype=np.float32)
    parent = np.full(n, -1)
    for i in range(n):
        if i < trees:
            w[i] = rng.standard_t(5, d * d)
        else:
            parent[i] = rng.integers(i)
            w[i] = w[parent[i]] + 0.05 * rng.standard_normal(d * d)
    return w, parent


def runtime(sizes: Sequence[int], d: int = 768, trees: int = 5) -> pd.DataFrame:
    """Table 7: seconds for distances, clustering, kurtosis scores and the MDSTs of all clusters
    vs number of models of one d x d layer (the paper: 768 x 768). Columns: models, d, the four
    times, and the distances and clustering times extrapolated to 10,000 models as n^2."""
    rows = []
    mother.pairwise_l2(simulate(trees + 1, 8, trees)[0])  # warm up the BLAS threads outside the timing
    for n in sizes:
        w, _ = simulate(n, d, trees)
        t0 = time.perf_counter()
        dist = mother.pairwise_l2(w)
        t1 = time.perf_counter()
        labels = mother.cluster_models(dist, trees)
        t2 = time.perf_counter()
        sc = mother.kurtosis_score([w])
        t_k = time.perf_counter()
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            if len(idx) > 1:
                mother.recover_tree(dist[np.ix_(idx, idx)], sc[idx])
        t3 = time.perf_counter()
        scale = (10_000 / n) ** 2
        rows.append({"models": n, "d": d, "distances s": t1 - t0, "clustering s": t2 - t1, "kurtosis s": t_k - t2,
                     "MDST s": t3 - t_k, "distances 10k s (n^2)": (t1 - t0) * scale, "clustering 10k s (n^2)": (t2 - t1) * scale})
        del w, dist
    return pd.DataFrame(rows)
