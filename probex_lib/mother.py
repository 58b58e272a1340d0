"""MoTHer: recover the Model Tree(s) of a set of models from their weights alone.

Shapes: ``layers`` is a list of arrays, one per layer, each (n_models, d_l) flattened weights.

* :func:`pairwise_l2` — l2 distances within 1e-5 of exact for every pair, from matrix products
  of rows re-centred group by group (never a Python loop over model pairs);
* :func:`ft_distance` — Eq. 1, the mean over layers of the l2 distance;
  :func:`ft_distance_official` — the official code's max of min-max-normalised differences;
* :func:`lora_rank_distance`, :func:`rank_distance_full` — Eq. 2 (``reduce="sum"``: official code);
* :func:`kurtosis_score` — Eq. 3, the sum over layers of each layer's (Pearson) kurtosis;
* :func:`cost_matrix` — Eq. 4-6, M = D + lambda (K xor T), lambda = c mean(D);
* :func:`recover_tree` — the minimum directed spanning tree of M (Chu-Liu/Edmonds, mdst.py);
* :func:`cluster_models` — hierarchical clustering of D into trees (single linkage by default;
  known or automatic count).
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform
from threadpoolctl import threadpool_limits

from .mdst import min_spanning_arborescence


_SKETCH_DIM, _FOLD = 128, 8192  # sketch: random-sign fold of the weights into 8,192 sums, then a Gaussian to 128
_NEAR = 3.0  # sketched |a|^2 + |b|^2 > 3 |a - b|^2 (centred): a and b go in one group
_F32_RATIO = 2.0  # float32 Gram kept where |a|^2 + |b|^2 <= 2 |a - b|^2 (measured error < 1e-6 of d^2)
_F64_RATIO = 1e6  # float64 Gram kept up to this ratio (error ~1e-10 of d^2); beyond it, exact per pair
_SPLIT_MIN, _SPLIT_DEPTH = (32, 256), 6  # split all rows from 32 of them, a group from 256 (smaller: float64); depth <= 6


def _chunks(n: int, d: int, nbytes: int = 2**25):
    """(start, end) of row chunks of about ``nbytes`` in float64."""
    step = max(1, nbytes // (8 * d))
    return ((s, min(s + step, n)) for s in range(0, n, step))


def _centred(x: np.ndarray, idx: np.ndarray, mean: np.ndarray | None, dtype) -> np.ndarray:
    """x[idx] - mean (or x[idx] if mean is None) as a (len(idx), d) array of ``dtype``, built a
    few rows at a time."""
    out = np.empty((len(idx), x.shape[1]), dtype=dtype)
    for s, e in _chunks(len(idx), x.shape[1]):
        if out.dtype == x.dtype:
            np.take(x, idx[s:e], axis=0, out=out[s:e], mode="clip")  # "clip": unbuffered
        else:
            out[s:e] = x[idx[s:e]]
        if mean is not None:
            np.subtract(out[s:e], mean, out=out[s:e], casting="unsafe")
    return out


def _d2_block(rows: np.ndarray, cols: np.ndarray, sq_rows: np.ndarray, sq_cols: np.ndarray, square: bool) -> np.ndarray:
    """|a|^2 + |b|^2 - 2ab in float64 for rows x cols; if ``square`` (cols start with rows), that
    leading square is made exactly symmetric. A thin product (fewer than 256 rows or columns)
    runs on one BLAS thread: OpenBLAS's threads cost more than they give there, up to 40x on a
    busy machine (measured: a 100 x 100 product over 65,536 weights, 35 ms vs 0.1-1.8 s)."""
    with threadpool_limits(1, user_api="blas") if min(len(rows), len(cols)) < 256 else nullcontext():
        g = rows @ cols.T
    d2 = sq_rows[:, None] + sq_cols[None, :] - 2 * g.astype(np.float64)
    if square:
        k = len(rows)
        d2[:, :k] = (d2[:, :k] + d2[:, :k].T) / 2
    return d2


def _risky(sq_rows: np.ndarray, sq_cols: np.ndarray, d2: np.ndarray, ratio: float) -> np.ndarray:
    """Pairs where |a|^2 + |b|^2 > ratio * d2 (d2 <= 0 included): the Gram form may have cancelled."""
    return sq_rows[:, None] + sq_cols[None, :] > ratio * d2


def _sketch(x: np.ndarray, idx: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(len(idx), <= 128) float64 sketch of the centred rows whose squared distances and norms
    estimate the true ones within ~15%: random signs, a fold into 8,192 sums, a Gaussian projection."""
    d = x.shape[1]
    if d <= 2 * _SKETCH_DIM:
        return _centred(x, idx, mean, np.float64)
    rng = np.random.default_rng(0)
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), d)
    fold = min(d, _FOLD)
    proj = rng.standard_normal((fold, _SKETCH_DIM), dtype=np.float32)
    folded = np.empty((len(idx), fold), dtype=np.float32)
    k = d // fold * fold
    for s, e in _chunks(len(idx), d, 2**22):  # small chunks stay in cache
        c = _centred(x, idx[s:e], mean, np.float32)
        c *= signs
        folded[s:e] = c[:, :k].reshape(e - s, -1, fold).sum(axis=1)
        folded[s:e, :d - k] += c[:, k:]
    return (folded @ proj).astype(np.float64)


def _near_groups(y: np.ndarray, block: int) -> np.ndarray:
    """Group labels (n,) of the sketch rows y (n, k), centred here: connected components of the
    pairs with |a|^2 + |b|^2 > _NEAR |a - b|^2. They only choose each pair's precision in
    :func:`pairwise_l2`, so a wrong call costs time, never accuracy."""
    y = y - y.mean(axis=0)
    n = len(y)
    rows = np.arange(n)
    sq = np.einsum("ij,ij->i", y, y)
    labels, star = rows, (rows[:0], rows[:0])
    for s in range(0, n, block):
        e = min(s + block, n)
        r, c = np.nonzero(_risky(sq[s:e], sq[s:], _d2_block(y[s:e], y[s:], sq[s:e], sq[s:], True), _NEAR))
        keep = r < c
        r, c = np.r_[r[keep] + s, star[0]], np.r_[c[keep] + s, star[1]]
        _, labels = connected_components(coo_matrix((np.ones(len(r), bool), (r, c)), shape=(n, n)), directed=False)
        star = (np.unique(labels, return_index=True)[1][labels], rows)  # a star per group carries it forward
    return labels


def _row_blocks(bounds: np.ndarray, block: int, own: int = 128):
    """(start, end, first column) of each row block of the float32 pass over rows sorted by group
    (``bounds``: group starts, then n). A group of ``own`` rows or more is cut into equal chunks of
    at most ``block`` rows whose columns start after the group; smaller whole groups share a block
    of up to ~block rows, starting at its own first column (their inner pairs are overwritten by
    the group pass). Few, thick matrix products: BLAS is slow on thin ones."""
    s = None
    for a, b in zip(bounds[:-1], bounds[1:]):
        if s is not None and (b - a >= own or b - s > block):
            yield s, a, s
            s = None
        if b - a >= own:
            cuts = np.linspace(a, b, -(-(b - a) // block) + 1).astype(int)
            for c, c1 in zip(cuts[:-1], cuts[1:]):
                yield c, c1, b
        elif s is None:
            s = a
    if s is not None:
        yield s, bounds[-1], s


def _exact(x: np.ndarray, idx: np.ndarray, out: np.ndarray, r: np.ndarray, c: np.ndarray) -> None:
    """out[r, c] = out[c, r] = sum((x[idx[r]] - x[idx[c]])^2) in float64, pair by pair (vectorised
    in chunks), for the pairs r < c: exactly 0 for equal rows."""
    r, c = r[r < c], c[r < c]
    for s, e in _chunks(len(r), x.shape[1], 2**26):
        diff = x[idx[r[s:e]]].astype(np.float64) - x[idx[c[s:e]]]
        out[r[s:e], c[s:e]] = out[c[s:e], r[s:e]] = np.einsum("ij,ij->i", diff, diff)


def _sq_f64(x: np.ndarray, idx: np.ndarray, lab: np.ndarray, block: int) -> np.ndarray:
    """Squared distances (m, m) of the rows x[idx] within each run of equal ``lab`` (entries
    across runs are left meaningless): float64 Gram of the rows centred on their run's mean, pairs
    beyond _F64_RATIO recomputed exactly. Batching small groups saves matrix-product calls."""
    xc = _centred(x, idx, None, np.float64)
    runs = np.r_[np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]]), len(idx)]
    for a, b in zip(runs[:-1], runs[1:]):
        xc[a:b] -= xc[a:b].mean(axis=0)
    sq = np.einsum("ij,ij->i", xc, xc)
    m = len(idx)
    out = np.empty((m, m))
    redo = []
    for s in range(0, m, block):
        e = min(s + block, m)
        d2 = _d2_block(xc[s:e], xc[s:], sq[s:e], sq[s:], True)
        out[s:e, s:], out[s:, s:e] = d2, d2.T
        r, c = np.nonzero(_risky(sq[s:e], sq[s:], d2, _F64_RATIO) & (lab[s:e, None] == lab[None, s:]))
        redo.append((r + s, c + s))
    del xc
    _exact(x, idx, out, *(np.concatenate(v) for v in zip(*redo)))
    return out


def _small_batches(bounds: np.ndarray, rows: int):
    """(start, end) of runs of consecutive whole groups of 2 to _SPLIT_MIN[1] - 1 rows, at most
    ``rows`` rows each (one group alone may be larger)."""
    a = last = None
    for s, e in zip(bounds[:-1], bounds[1:]):
        if not 2 <= e - s < _SPLIT_MIN[1]:
            continue
        if a is not None and (e - a > rows or s != last):
            yield a, last
            a = None
        a, last = (s if a is None else a), e
    if a is not None:
        yield a, last


def _sq_dists(x: np.ndarray, idx: np.ndarray, block: int, y: np.ndarray | None = None, mean: np.ndarray | None = None,
              depth: int = 0) -> np.ndarray:
    """Squared distances (m, m) of the rows x[idx], each pair within ~1e-6 of exact (see
    pairwise_l2). ``y``: the rows' sketch (linear, so one sketch serves every level); ``mean``:
    of the rows, float64 (d,)."""
    m = len(idx)
    if m < _SPLIT_MIN[depth > 0] or depth >= _SPLIT_DEPTH:
        return _sq_f64(x, idx, np.zeros(m, dtype=int), block)
    mean = x.mean(axis=0, dtype=np.float64) if mean is None else mean
    y = _sketch(x, idx, mean) if y is None else y
    labels = _near_groups(y, block)
    if labels.max() == 0:
        return _sq_f64(x, idx, labels, block)
    perm = np.lexsort((labels, -np.bincount(labels)[labels]))  # largest groups first: thick products
    lab, idx, y = labels[perm], idx[perm], y[perm]
    bounds = np.r_[np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]]), m]
    out = np.empty((m, m))
    xc = _centred(x, idx, mean, np.float32)  # across groups: float32 Gram of the centred rows
    sq = np.einsum("ij,ij->i", xc, xc, dtype=np.float64)
    redo = []
    for s, e, c0 in _row_blocks(bounds, block):
        d2 = _d2_block(xc[s:e], xc[c0:], sq[s:e], sq[c0:], c0 == s)
        out[s:e, c0:], out[c0:, s:e] = d2, d2.T
        r, c = np.nonzero(_risky(sq[s:e], sq[c0:], d2, _F32_RATIO) & (lab[s:e, None] != lab[None, c0:]))
        redo.append((r + s, c + c0))
    big = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= _SPLIT_MIN[1]]
    means = [mean + xc[a:b].mean(axis=0, dtype=np.float64) for a, b in big]  # close enough to centre on
    del xc
    for (a, b), mu in zip(big, means):  # within each group: the same, recursively ...
        out[a:b, a:b] = _sq_dists(x, idx[a:b], block, y[a:b], mu, depth + 1)
    for a, b in _small_batches(bounds, 64):  # ... or, for smaller groups, float64 a batch at a time
        same = lab[a:b, None] == lab[None, a:b]
        out[a:b, a:b][same] = _sq_f64(x, idx[a:b], lab[a:b], block)[same]
    _exact(x, idx, out, *(np.concatenate(v) for v in zip(*redo)))
    inv = np.empty_like(perm)
    inv[perm] = np.arange(m)
    return out[np.ix_(inv, inv)]


def pairwise_l2(x: np.ndarray, block: int = 1024) -> np.ndarray:
    """Euclidean distances between the rows of x: (n, d) -> (n, n) float64. Every pair is within
    1e-5 (relative) of the float64 per-pair value, about 1e-7 in practice; identical rows give 0.

    |a - b|^2 = |a|^2 + |b|^2 - 2ab is one matrix product, but it cancels when a and b are close
    compared with their norms, as models of one tree are (they share their root). So, after
    centring the rows on their mean: (1) a cheap random sketch groups the models that are near one
    another (at first, one group per tree); (2) pairs across groups come from a float32 Gram, kept
    where |a|^2 + |b|^2 <= 2 |a - b|^2 (little cancels there); (3) each group is re-centred on its
    own mean and treated the same way (sub-trees), up to 6 levels; a group that no longer splits
    gets a float64 Gram, kept where that ratio is <= 1e6; (4) any pair failing its check
    (duplicates, near-duplicates) is recomputed as ||a - b|| in float64. Rows go ``block`` at a
    time. Memory beside x and the (n, n) result: one float32 copy of x, a few (n, n) arrays, and a
    float64 copy of the largest group that does not split (all of x if nothing splits).
    """
    x = np.asarray(x)
    x = x.reshape(len(x), -1)
    if x.dtype.kind != "f" or x.dtype.itemsize < 4:
        x = x.astype(np.float32)
    n = len(x)
    if n < 2 or x.shape[1] == 0:
        return np.zeros((n, n))
    out = _sq_dists(x, np.arange(n), block)
    np.maximum(out, 0, out=out)
    np.sqrt(out, out=out)
    np.fill_diagonal(out, 0.0)
    return out


def ft_distance(layers: list[np.ndarray]) -> np.ndarray:
    """Eq. 1: (1/L) sum_l ||u_l - v_l||_2 for every model pair. Returns (n, n), zero diagonal."""
    if not layers:
        raise ValueError("ft_distance needs at least one layer")
    return sum(pairwise_l2(l.reshape(len(l), -1)) for l in layers) / len(layers)


def ft_distance_official(layers_by_type: dict[str, list[np.ndarray]]) -> np.ndarray:
    """The official MoTHer code's full fine-tuning distance (not Eq. 1), as an option to compare.
    ``layers_by_type``: {layer type: [one (n, d_out, d_in) or (n, d) array per block]}; the
    official code uses the four square attention matrices of each ViT block (query, key, value,
    attention output dense; LLaMA: q/k/v/o and MLP projections). Returns (n, n), zero diagonal.

    What eliahuhorwitz/MoTHer does (MoTHer_FullFT.py, statistics from get_vit_layers_statistics.py;
    test_llama_and_sd.py the same): per layer (type, block), for each pair i < j (i listed first)
    the signed difference D = W_i - W_j; min-max normalised with lo, hi = the smallest and largest
    entry of D over all pairs of the tree; the pair's value is max(D - lo) / (hi - lo), the largest
    normalised entry; the distance is the maximum of that over all layers, written to both [i, j]
    and [j, i]. As there, it depends on the order of the models (max of W_i - W_j, not of |.|).
    A layer whose differences are all equal (hi == lo) adds nothing (the official code gives NaN).
    """
    layers = [np.asarray(w) for ws in layers_by_type.values() for w in ws]
    if not layers:
        raise ValueError("ft_distance_official needs at least one layer")
    n = len(layers[0])
    out = np.zeros((n, n))
    for w in layers:
        w = w.reshape(n, -1)
        top, bottom = np.zeros((n, n)), np.zeros((n, n))  # max and min of W_i - W_j, for i < j
        for i in range(n - 1):
            for s, e in _chunks(n - i - 1, w.shape[1]):
                diff = w[i].astype(np.float64) - w[i + 1 + s:i + 1 + e]
                top[i, i + 1 + s:i + 1 + e] = diff.max(axis=1)
                bottom[i, i + 1 + s:i + 1 + e] = diff.min(axis=1)
        iu = np.triu_indices(n, 1)
        lo, hi = bottom[iu].min(), top[iu].max()
        if hi > lo:
            out[iu] = np.maximum(out[iu], (top[iu] - lo) / (hi - lo))
    return out + out.T


LoraFactors = list[tuple[np.ndarray, np.ndarray]]  # per model: (B (d_out, r), A (r, d_in)); r may differ


def _spectral_norm(b: np.ndarray, a: np.ndarray) -> float:
    r1 = np.linalg.qr(b, mode="r")
    r2 = np.linalg.qr(a.T, mode="r")
    return float(np.linalg.norm(r1 @ r2.T, 2)) if r1.size and r2.size else 0.0


def _rank_reducer(reduce: str):
    """np.maximum for Eq. 2 ("max"), np.add for the official code's sum over layers ("sum")."""
    if reduce not in ("max", "sum"):
        raise ValueError(f"reduce must be 'max' (Eq. 2) or 'sum' (official code), got {reduce!r}")
    return np.maximum if reduce == "max" else np.add


def lora_rank_distance(layers: list[LoraFactors], rel_tol: float = 1e-4, reduce: str = "max") -> np.ndarray:
    """Eq. 2: max over layers of rank(B_u A_u - B_v A_v), from the factors. Returns (n, n) int.

    ``reduce="sum"`` sums the ranks over layers instead, as the official code does
    (eliahuhorwitz/MoTHer, MoTHer_LoRA.py: sum of np.linalg.matrix_rank(W_u - W_v) over the
    square layers whose name contains "value"; clustering.py sums over all square layers). Which
    layers enter (the official experiments: the value projections only) is the caller's choice
    of ``layers``; the rank threshold stays this function's ``rel_tol`` rule.

    ``layers[l][i]`` = (B, A) of model i at layer l, i.e. the model's weight is W0 + B @ A.
    The difference is [B_u, -B_v] @ [A_u; A_v]; with QR of both stacked factors it has the
    singular values of the small (r_u + r_v)^2 product R1 @ R2^T, so no d_out x d_in SVD is
    needed. A singular value counts if it exceeds ``rel_tol`` times the larger of the two
    models' own spectral norms (same rule as :func:`lora_rank_distance_dense`).
    """
    combine = _rank_reducer(reduce)
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
                out[i, j] = out[j, i] = combine(out[i, j], rank)
    return out


def lora_rank_distance_dense(layers: list[LoraFactors], rel_tol: float = 1e-4, reduce: str = "max") -> np.ndarray:
    """Reference for :func:`lora_rank_distance`: SVD of each full difference matrix (slow)."""
    combine = _rank_reducer(reduce)
    n = len(layers[0])
    out = np.zeros((n, n), dtype=np.int64)
    for factors in layers:
        full = [np.asarray(b, np.float64) @ np.asarray(a, np.float64) for b, a in factors]
        norms = [np.linalg.norm(w, 2) for w in full]
        for i in range(n):
            for j in range(i + 1, n):
                s = np.linalg.svd(full[i] - full[j], compute_uv=False)
                rank = int((s > rel_tol * max(norms[i], norms[j], 1e-30)).sum())
                out[i, j] = out[j, i] = combine(out[i, j], rank)
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
                  c: float = 0.3, method: str = "single", gap: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster into Model Trees (linkage ``method``, see :func:`cluster_models`), then the MDST of
    each cluster. Returns (cluster labels (n,), parent index (n,), -1 for each tree's root)."""
    labels = cluster_models(dist, n_trees, method, gap)
    parent = np.full(len(dist), -1)
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if len(idx) > 1:
            gen = generalization if np.ndim(generalization) == 0 else np.asarray(generalization)[np.ix_(idx, idx)]
            sub = recover_tree(dist[np.ix_(idx, idx)], score[idx], gen, c)
            parent[idx] = np.where(sub >= 0, idx[np.maximum(sub, 0)], -1)
    return labels, parent


def rank_distance_full(layers: list[np.ndarray], rel_tol: float = 1e-5, block: int = 4096, reduce: str = "max") -> np.ndarray:
    """Eq. 2 from merged weights: max over layers of rank(W_u - W_v). ``layers``: (n, d_out, d_in)
    each. A singular value counts if it exceeds ``rel_tol`` times the larger spectral norm of
    W_u, W_v (float32 storage noise is about 1e-7 of it). Pairs are batched, never looped in
    Python one by one. Returns (n, n) int.

    ``reduce="sum"``: the official code's sum of ranks over layers (see :func:`lora_rank_distance`;
    pass only the value projections to match its LoRA experiments)."""
    combine = _rank_reducer(reduce)
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
            best[s:s + block] = combine(best[s:s + block], (sv > tol[:, None]).sum(1))
    out = np.zeros((n, n), dtype=np.int64)
    out[iu, ju] = out[ju, iu] = best
    return out


def cluster_models(dist: np.ndarray, n_clusters: int | None = None, method: str = "single", gap: float = 3.0) -> np.ndarray:
    """Labels 0..k-1 from hierarchical clustering (scipy ``linkage``) of the distance matrix (n, n).

    Default ``method="single"``, for three reasons: it is what the paper says (Sec. 6.1: scipy's
    hierarchical clustering "with the default hyperparameters", and scipy's default method is
    'single'); it is valid for any dissimilarity and depends only on the order of the distances,
    so it means the same on Eq. 1 distances, on integer rank distances (Eq. 2) and on the official
    max-normalised distance; and it matches the structure: a Model Tree is a chain of small
    fine-tuning steps while unrelated roots are far apart, and single linkage cuts exactly the
    longest edges of the minimum spanning tree. ``method="ward"`` reproduces the official code
    (eliahuhorwitz/MoTHer, clustering.py: linkage(..., method='ward') on summed per-layer
    distances), but Ward's update assumes Euclidean distances: justified for one layer's l2
    distance, not for rank distances or sums of per-layer distances. 'average' and 'complete'
    are also accepted.

    ``n_clusters=None`` cuts the dendrogram where one merge height jumps the most relative to
    the previous one, if that jump is more than ``gap`` times (unrelated roots are far apart
    compared with fine-tunes of one root); otherwise everything is one tree.
    """
    n = len(dist)
    if n < 2:
        return np.zeros(n, dtype=int)
    z = linkage(squareform(np.asarray(dist, dtype=np.float64), checks=False), method=method)
    if n_clusters is None:
        heights = np.maximum(z[:, 2], 1e-12)
        ratios = heights[1:] / heights[:-1]
        if len(ratios) == 0 or ratios.max() <= gap:
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
