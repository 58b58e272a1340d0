"""The lineage graph of a collection of models: MoTHer plus artefacts, merges, edge types and confidence.

:func:`recover_lineage` reads the models one layer at a time through a ``stack(key)`` callable
(every model's tensor ``key`` stacked, (n, ...)), so memory holds one layer of all models, never
whole checkpoints. Two passes:

1. every shared layer: Eq. 1 distances, squared Euclidean distances (for merges), the kurtosis
   score over ``score_keys``, the lossy-copy :class:`~probex_lib.lineage.Signature` and a fingerprint
   of each layer (sum and sum of squares: equal fingerprints = an unchanged layer);
2. only the layers the checks need (at most ``check_layers`` per check): artefacts verified
   against their source, and LoRA vs full fine-tune for MoTHer's edges (rank of the changed layers).

Then artefacts are attached to their sources, merges to their 2-3 parents, models whose nearest
model is a merge to that merge, and MoTHer (clustering + minimum directed spanning tree) places
the rest. A merge is the one model with several parents:
``parents[i]`` lists them, the primary first.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from . import lineage, mother
from .lineage import Calibrator

Stack = Callable[[str], np.ndarray]
# Unknown number of trees: cut the dendrogram at its largest relative jump if above this. MoTHer's own
# default (3x) kept every tree of the kit's calibration view (notebook 06's dataset, 5 roots) in one
# cluster (largest jump 1.96x: within-tree heights up to 0.88, unrelated roots at 1.73); chosen there,
# judged on the held-out view.
TREE_GAP = 1.5


@dataclass
class Lineage:
    """The recovered graph. ``parents[i]``: model i's parents (primary first; [] for a root);
    ``edge_type[i]`` / ``confidence[i]``: of the edge(s) into i ("" / NaN for a root); ``tree[i]``:
    its tree (the cluster of its primary ancestors' root); ``features``: MoTHer edges' confidence
    features (n, F), NaN elsewhere; ``dist``: Eq. 1 distances (n, n)."""

    ids: list[str]
    parents: list[list[int]]
    edge_type: list[str]
    confidence: np.ndarray
    tree: np.ndarray
    score: np.ndarray
    dist: np.ndarray
    features: np.ndarray
    placed_by: list[str]  # "mother", "artefact", "merge", "merge-child" (a merge's fine-tune) or "" (root)

    @property
    def parent(self) -> np.ndarray:
        """Primary parent index per model, -1 for a root."""
        return np.array([p[0] if p else -1 for p in self.parents])

    def roots(self) -> list[int]:
        return [i for i, p in enumerate(self.parents) if not p]


def recover_lineage(ids: Sequence[str], keys: Sequence[str], stack: Stack, score_keys: Sequence[str] | None = None,
                    n_trees: int | None = None, calibrator: Calibrator | None = None, c: float = 0.3,
                    check_layers: int = 8, progress: bool = True, distance: np.ndarray | None = None) -> Lineage:
    """Recover the lineage of ``ids`` from their shared layers ``keys`` (see module doc).

    score_keys: layers of the kurtosis direction score (default: every key). calibrator: turns edge
    features into confidences (default: NaN confidence, features still returned).
    """
    ids, keys = list(ids), list(keys)
    n = len(ids)
    if n < 2:
        raise ValueError(f"only {n} model(s): a lineage needs at least two")
    score_keys = set(keys if score_keys is None else score_keys)
    dist, d2, score = np.zeros((n, n)), np.zeros((n, n)), np.zeros(n)
    sig = lineage.Signature(n)
    prints = np.zeros((len(keys), n, 2))
    for j, k in enumerate(tqdm(keys, desc="lineage: distances", disable=not progress, leave=False)):
        x = np.asarray(stack(k), dtype=np.float32)
        flat = x.reshape(n, -1)
        d = mother.pairwise_l2(flat)
        d2 += np.square(d)
        d /= len(keys)
        dist += d
        del d
        if k in score_keys:
            score += mother.kurtosis_score([flat])
        sig.add(x)
        for s in range(0, n, 256):  # float64 in blocks of models: a whole-stack copy would double memory
            f64 = flat[s:s + 256].astype(np.float64)
            prints[j, s:s + 256] = np.stack([f64.sum(1), (f64 * f64).sum(1)], 1)

    if distance is not None:
        dist = np.asarray(distance, dtype=np.float64)
    # artefacts: lossy signature, verified against the nearest model without it
    cand = lineage.artefact_candidates(sig, dist)
    ok = {(i, s): True for i, (kind, sources) in cand.items() for s in sources}
    for k in lineage.evenly_spaced(keys, check_layers) if cand else []:
        x = np.asarray(stack(k), dtype=np.float32)
        for i, (kind, sources) in cand.items():
            for s in sources:
                ok[i, s] = ok[i, s] and lineage.verify_artefact(kind, x[s], x[i])
    artefact = {i: (kind, next(s for s in sources if ok[i, s])) for i, (kind, sources) in cand.items()
                if any(ok[i, s] for s in sources)}

    core = np.array([i for i in range(n) if i not in artefact])
    merges = lineage.find_merges(d2, core) if len(core) >= 3 else {}
    adopted = lineage.merge_children(dist, merges, [i for i in core if i not in merges], score)
    placed = np.array([i for i in core if i not in merges and i not in adopted], dtype=int)

    parents: list[list[int]] = [[] for _ in range(n)]
    etype, by = [""] * n, [""] * n
    tree = np.full(n, -1)
    feats = np.full((n, len(lineage.CONFIDENCE_FEATURES)), np.nan)
    if len(placed) >= 2:
        dsub = dist[np.ix_(placed, placed)]
        labels, par = mother.recover_graph(dsub, score[placed], n_trees, c=c, gap=TREE_GAP)
        cost = np.full((len(placed), len(placed)), np.inf)
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            cost[np.ix_(idx, idx)] = mother.cost_matrix(dsub[np.ix_(idx, idx)], score[placed][idx], c=c)
        f = lineage.edge_features(dsub, score[placed], labels, par, cost)
        del dsub, cost
        for a, i in enumerate(placed):
            tree[i] = labels[a]
            if par[a] >= 0:
                parents[i], by[i], feats[i] = [int(placed[par[a]])], "mother", f[a]
    elif len(placed) == 1:
        tree[placed[0]] = 0
    for i, ps in merges.items():
        parents[i], etype[i], by[i] = list(ps), "merge", "merge"
    for i, (kind, s) in artefact.items():
        parents[i], etype[i], by[i] = [s], kind, "artefact"
    for i, m in adopted.items():
        parents[i], by[i] = [m], "merge-child"
    _type_mother_edges(parents, by, etype, keys, stack, prints, check_layers)
    _resolve_trees(parents, tree)

    conf = np.full(n, np.nan)
    if calibrator is not None:
        m = np.array([b == "mother" for b in by])
        if m.any():
            conf[m] = calibrator.confidence(feats[m])
        for i in range(n):
            if by[i] in ("artefact", "merge", "merge-child"):
                conf[i] = calibrator.type_rate.get(etype[i] if by[i] != "merge-child" else "merge-child", np.nan)
    return Lineage(ids, parents, etype, conf, tree, score, dist, feats, by)


def _type_mother_edges(parents, by, etype, keys, stack: Stack, prints: np.ndarray, check_layers: int) -> None:
    """LoRA or fine-tune for each MoTHer edge: LoRA if every changed layer (up to ``check_layers`` of
    them, evenly spaced) changes by low rank. Unchanged layers are found from the fingerprints."""
    edges = [(i, ps[0]) for i, ps in enumerate(parents) if by[i] in ("mother", "merge-child")]
    differs = (prints[:, [c for c, _ in edges]] != prints[:, [p for _, p in edges]]).any(-1)  # (keys, edges)
    changed = {e: np.flatnonzero(differs[:, k]).tolist() for k, e in enumerate(edges)}
    check = {e: set(lineage.evenly_spaced(ch, check_layers)) for e, ch in changed.items()}
    low = {e: bool(changed[e]) for e in edges}
    for j in sorted(set().union(*check.values()) if check else []):
        x = np.asarray(stack(keys[j]), dtype=np.float32)
        for e in edges:
            if low[e] and j in check[e]:
                low[e] = lineage.is_low_rank_update([x[e[1]]], [x[e[0]]])
    for (i, _), is_low in low.items():
        etype[i] = "lora" if is_low else "fine-tune"


def _resolve_trees(parents: list[list[int]], tree: np.ndarray) -> None:
    """Artefacts and merges join the tree of their primary parent (following chains)."""
    for i in range(len(parents)):
        seen, j = set(), i
        while tree[j] < 0 and parents[j] and j not in seen:
            seen.add(j)
            j = parents[j][0]
        tree[i] = tree[j]
    if (tree < 0).any():  # isolated models (e.g. a merge whose parents are all merges): their own trees
        nxt = tree.max() + 1
        for i in np.flatnonzero(tree < 0):
            tree[i], nxt = nxt, nxt + 1
