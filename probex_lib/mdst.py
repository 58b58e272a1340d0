"""Minimum directed spanning tree (minimum spanning arborescence) of a dense graph.

Edmonds' algorithm in its O(n^2) form for dense graphs (Tarjan's): follow cheapest incoming
edges from node to node along a path; when the path closes a cycle, contract the cycle in
place (its row and column slots are reused, so memory stays n x n) and continue from the new
node; when the path reaches the finished part of the tree, everything on it is finished.
Contractions are then undone top-down: the edge that enters a contracted cycle replaces the
cycle's own edge into that node. networkx's pure-Python version took 56 s at 250 nodes;
see benchmarks/bench_mother.py for ours.

Convention: ``w[i, j]`` is the cost of the edge i -> j (i the parent of j); ``inf`` means no
edge. The result is a parent array: ``parent[j]`` = i, and ``parent[root] = -1``.
"""
from __future__ import annotations

import numpy as np


class NoArborescence(ValueError):
    """Some node cannot be reached from the root through finite edges."""


def _solve(w: np.ndarray, root: int) -> np.ndarray:
    n = len(w)
    inc = np.array(w.T, dtype=np.float64)  # inc[v, u] = cost of u -> v: incoming costs are rows
    inc[root, :] = np.inf
    np.fill_diagonal(inc, np.inf)
    src = np.tile(np.arange(n, dtype=np.int32), (n, 1))  # original u of the edge stored at inc[v, u]
    dst = np.tile(np.arange(n, dtype=np.int32)[:, None], (1, n))  # original v of that edge

    node_at = np.arange(n)  # id of the (super)node living in each slot; contractions get ids n, n+1, ...
    done = np.zeros(n, dtype=bool)
    done[root] = True
    alive = np.ones(n, dtype=bool)
    chosen: dict[int, tuple[int, int]] = {}  # node id -> original (u, v) of its cheapest incoming edge
    in_cost = np.zeros(n)  # current cost of that edge, per slot
    members: dict[int, list[int]] = {}  # supernode id -> member node ids
    container: dict[int, int] = {}  # node id -> id of the supernode it was contracted into
    next_id = n

    for start in range(n):
        if done[start] or not alive[start]:
            continue
        path, on_path = [start], {start}
        while True:
            v = path[-1]
            u = int(np.argmin(inc[v]))
            cost = inc[v, u]
            if not np.isfinite(cost):
                raise NoArborescence(f"node(s) {[int(node_at[v])]} have no finite incoming edge")
            chosen[int(node_at[v])] = (int(src[v, u]), int(dst[v, u]))
            in_cost[v] = cost
            if done[u]:
                done[path] = True
                break
            if u not in on_path:
                path.append(u)
                on_path.add(u)
                continue
            # the path closed a cycle: contract path[k:] into slot s
            k = path.index(u)
            cyc = np.array(path[k:])
            s = int(cyc[0])
            rows = inc[cyc] - in_cost[cyc][:, None]  # entering the cycle at m replaces m's cycle edge
            best = np.argmin(rows, axis=0)
            cols = np.arange(n)
            new_in, new_src, new_dst = rows[best, cols], src[cyc][best, cols], dst[cyc][best, cols]
            outs = inc[:, cyc]
            best_out = np.argmin(outs, axis=1)
            new_out = outs[cols, best_out]
            out_src, out_dst = src[:, cyc][cols, best_out], dst[:, cyc][cols, best_out]

            sid = next_id
            next_id += 1
            members[sid] = [int(node_at[m]) for m in cyc]
            for m in cyc:
                container[int(node_at[m])] = sid
            inc[s], src[s], dst[s] = new_in, new_src, new_dst
            inc[:, s], src[:, s], dst[:, s] = new_out, out_src, out_dst
            dead = cyc[1:]
            inc[dead, :] = np.inf
            inc[:, dead] = np.inf
            inc[s, cyc] = np.inf
            inc[cyc, s] = np.inf
            alive[dead] = False
            node_at[s] = sid
            for m in cyc:
                on_path.discard(int(m))
            path = path[:k] + [s]
            on_path.add(s)

    # expand contracted cycles, newest first: the edge entering a supernode goes to the member
    # that contains its head; every other member keeps its own cycle edge
    assigned = {int(node_at[s]): chosen[int(node_at[s])] for s in np.flatnonzero(alive) if s != root}
    for sid in range(next_id - 1, n - 1, -1):
        edge = assigned.pop(sid)
        head = edge[1]
        inner = head
        while container[inner] != sid:
            inner = container[inner]
        for m in members[sid]:
            assigned[m] = edge if m == inner else chosen[m]
    parent = np.full(n, -1)
    for v, (u, head) in assigned.items():
        parent[head] = u
    parent[root] = -1
    return parent


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
