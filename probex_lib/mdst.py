"""Minimum directed spanning tree (minimum spanning arborescence) of a dense graph.

Chu-Liu/Edmonds, with every step of one round done on whole arrays: each node takes its
cheapest incoming edge; all cycles of that choice are found (one pass over the parent
array) and contracted at once; the contracted graph is solved recursively and expanded. A
round costs O(n^2) array work and contracts every cycle, so dense distance-like graphs need
few rounds (networkx's pure-Python Edmonds took 56 s at 250 nodes; see benchmarks/).

Convention: ``w[i, j]`` is the cost of the edge i -> j (i the parent of j); ``inf`` means no
edge. The result is a parent array: ``parent[j]`` = i, and ``parent[root] = -1``.
"""
from __future__ import annotations

import numpy as np


class NoArborescence(ValueError):
    """Some node cannot be reached from the root through finite edges."""


def _find_cycles(parent: np.ndarray) -> list[np.ndarray]:
    """Cycles of the functional graph j -> parent[j] (parent -1 ends a path). O(n) Python."""
    n = len(parent)
    state = np.zeros(n, dtype=np.int8)  # 0 unseen, 1 on the current walk, 2 done
    cycles = []
    for start in range(n):
        if state[start]:
            continue
        path = []
        v = start
        while v != -1 and state[v] == 0:
            state[v] = 1
            path.append(v)
            v = parent[v]
        if v != -1 and state[v] == 1:  # closed a cycle on this walk
            cycle = path[path.index(v):]
            cycles.append(np.array(cycle))
        for u in path:
            state[u] = 2
    return cycles


def _solve(w: np.ndarray, root: int) -> np.ndarray:
    n = len(w)
    w = w.copy()
    w[:, root] = np.inf
    np.fill_diagonal(w, np.inf)
    parent = np.argmin(w, axis=0)
    best = w[parent, np.arange(n)]
    parent[root] = -1
    unreachable = np.flatnonzero(~np.isfinite(best))
    unreachable = unreachable[unreachable != root]
    if unreachable.size:
        raise NoArborescence(f"node(s) {unreachable[:10].tolist()} have no finite incoming edge")
    cycles = _find_cycles(parent)
    if not cycles:
        return parent

    # contract: cycle c becomes node c; the other nodes follow in order
    comp = np.full(n, -1)
    for c, cyc in enumerate(cycles):
        comp[cyc] = c
    rest = np.flatnonzero(comp < 0)
    comp[rest] = len(cycles) + np.arange(rest.size)
    m = len(cycles) + rest.size

    in_cycle = comp < len(cycles)
    adj = w.copy()
    adj[:, in_cycle] -= best[in_cycle]  # entering a cycle replaces the cycle's edge into that node
    order = np.argsort(comp, kind="stable")
    starts = np.searchsorted(comp[order], np.arange(m))
    blocked = adj[order][:, order]
    small = np.minimum.reduceat(np.minimum.reduceat(blocked, starts, axis=0), starts, axis=1)
    np.fill_diagonal(small, np.inf)
    small_parent = _solve(small, int(comp[root]))

    # expand: each contracted node b entered from a; find the original edge achieving small[a, b]
    members = [order[starts[b]:(starts[b + 1] if b + 1 < m else n)] for b in range(m)]
    out = parent.copy()
    for b in range(m):
        a = small_parent[b]
        if a < 0:
            continue
        rows, cols = members[a], members[b]
        block = adj[np.ix_(rows, cols)]
        i, j = np.unravel_index(np.argmin(block), block.shape)
        out[cols[j]] = rows[i]  # within a cycle, the other nodes keep their cycle parents
    out[root] = -1
    return out


def min_spanning_arborescence(w: np.ndarray, root: int | None = None) -> np.ndarray:
    """Parent array of the minimum-cost arborescence of the dense cost matrix ``w`` (n, n).

    With ``root=None`` the root is chosen too (the cheapest tree over all roots): a virtual
    node with one equal, larger-than-everything edge to each node is added, so the optimum
    uses exactly one of them.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"cost matrix must be square (n, n), got shape {w.shape}")
    n = len(w)
    if n == 1:
        return np.array([-1])
    if np.isnan(w).any():
        raise ValueError("cost matrix contains NaN")
    if root is not None:
        return _solve(w, int(root))
    finite = w[np.isfinite(w)]
    big = (np.abs(finite).sum() + 1.0) * 2 if finite.size else 1.0
    ext = np.full((n + 1, n + 1), np.inf)
    ext[:n, :n] = w
    ext[n, :n] = big
    parent = _solve(ext, n)[:n]
    parent[parent == n] = -1
    return parent


def tree_cost(w: np.ndarray, parent: np.ndarray) -> float:
    """Sum of ``w[parent[j], j]`` over non-root nodes."""
    j = np.flatnonzero(parent >= 0)
    return float(np.asarray(w)[parent[j], j].sum())
