"""Lineage beyond MoTHer's tree: edge types, merges, per-edge confidence and a pairwise test.

MoTHer (:mod:`probex_lib.mother`) recovers one parent per model from distances and kurtosis. A
folder of real checkpoints also holds copies that were pruned, quantised or cast to fp16, merges
of two or more models, and LoRA fine-tunes. This module recognises those from the weights alone:

* **artefacts** (``fp16``, ``pruned``, ``quantised``) are exact transforms of one source model,
  recognised by a per-model signature (every tensor survives ``t.half().float()``; exact zeros
  appear; every row lies on a uniform grid of 2^b levels) and then verified against the nearest
  model that lacks the signature (fp16: within half an fp16 ulp of it; pruned: equal to it wherever
  not zero; quantised: within one step of its own grid). The type fixes the direction: the artefact is the child;
* **merges**: a model that is an affine combination of 2 or 3 other models, found from squared
  distances alone (its residual after projecting onto their affine hull is ~0; weights >= -0.05);
  a merge has 2+ parents, the one of largest weight first;
* **LoRA vs full fine-tune**: the difference of an edge's weights is low rank in every changed
  layer (numerical rank at most half the smaller side) for LoRA;
* **edge confidence**: a logistic model of an edge's margins in MoTHer's cost matrix, fitted on
  the kit's MoTHer dataset (:class:`Calibrator`, stored as JSON: never pickled);
* **pairwise test**: is B derived from A? Log distance and log effective rank of B - A, each
  standardised against a null of unrelated pairs, in a weighted sum (:func:`pair_score`; the
  weights fitted on the kit's MoTHer dataset, :func:`fit_pair_weights`).

Shapes: a layer stack is (n_models, d_out, d_in) (convolutions are read as (d_out, d_in·k·k));
distance matrices are (n, n); parent arrays index models, -1 for a root.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

EDGE_TYPES = ("fine-tune", "lora", "pruned", "quantised", "fp16", "merge")
ARTEFACT_TYPES = ("fp16", "pruned", "quantised")
QUANT_BITS = (8, 4)  # grids recognised: symmetric absmax (2^(b-1) - 1 levels a side) and min-max (2^b - 1 steps)
GRID_TOL = 1e-3  # a value is on the grid if within this many steps of a level
FP16_TOL = 2.0**-11  # half an fp16 ulp, relative
PRUNE_MIN_NEW_ZEROS = 0.02  # a pruned model has at least 2% more exact zeros than its source
MERGE_RESIDUAL = 0.02  # a merge's residual is under 2% of its distance to the nearest model
MERGE_MIN_WEIGHT = -0.05
MERGE_NEIGHBOURS = 6
MERGE_ALL_PAIRS = 1500  # up to this many models, every pair is tried as a 2-model merge (O(n^3) time)
LORA_RANK_SHARE = 0.5  # a LoRA edge changes every changed layer by rank <= this share of its smaller side


def evenly_spaced(items: Sequence, k: int) -> list:
    """At most ``k`` of ``items``, evenly spaced, first and last included (all of them if k >= len)."""
    items = list(items)
    if len(items) <= k:
        return items
    return [items[int(round(i))] for i in np.linspace(0, len(items) - 1, k)]


def as_matrices(stack: np.ndarray) -> np.ndarray:
    """(n, d_out, ...) -> (n, d_out, prod(...)); 1-D tensors become (n, 1, d)."""
    stack = np.asarray(stack)
    return stack.reshape(len(stack), 1, -1) if stack.ndim == 2 else stack.reshape(*stack.shape[:2], -1)


# --------------------------------------------------------------------------- per-model signatures


@dataclass
class Signature:
    """Per-model lossy-copy signature, accumulated over layers. Arrays are (n,)."""

    n: int
    zeros: np.ndarray = field(init=False)
    size: int = 0
    fp16_exact: np.ndarray = field(init=False)
    on_grid: np.ndarray = field(init=False)

    def __post_init__(self):
        self.zeros = np.zeros(self.n, dtype=np.int64)
        self.fp16_exact = np.ones(self.n, dtype=bool)
        self.on_grid = np.ones(self.n, dtype=bool)

    def add(self, stack: np.ndarray, block: int = 256) -> None:
        """Fold one layer of every model, (n, ...), into the signature (``block`` models at a time,
        so the float64 temporaries stay small next to the stack)."""
        x = as_matrices(np.asarray(stack, dtype=np.float32))
        self.size += x[0].size
        for s in range(0, self.n, block):
            c = x[s:s + block]
            self.zeros[s:s + block] += (c == 0).reshape(len(c), -1).sum(1)
            with np.errstate(over="ignore"):
                self.fp16_exact[s:s + block] &= (c.astype(np.float16).astype(np.float32) == c).reshape(len(c), -1).all(1)
            self.on_grid[s:s + block] &= on_quant_grid(c)

    @property
    def zero_share(self) -> np.ndarray:
        return self.zeros / max(self.size, 1)


def on_quant_grid(x: np.ndarray) -> np.ndarray:
    """(n, rows, cols) -> (n,) bool: every row (per-channel) or the whole tensor (per-tensor) lies on
    a uniform grid of the common integer schemes: symmetric absmax (levels k·max|x|/(2^(b-1)-1)) or
    min-max (min + k·(max-min)/(2^b-1)), b in QUANT_BITS. A tensor with one distinct value counts."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(len(x), dtype=bool)
    for fits, _ in _grids(x):
        out |= fits.reshape(len(x), -1).all(1)
    return out


def _grids(x: np.ndarray):
    """For each grid :func:`on_quant_grid` recognises, (fits, step), both (n, rows, 1) per row or
    (n, 1, 1) per tensor: does the row (tensor) of x (n, rows, cols) lie on it, and its step."""
    for per_row in (True, False):
        v = x if per_row else x.reshape(len(x), 1, -1)
        amax = np.abs(v).max(-1, keepdims=True)
        lo, hi = v.min(-1, keepdims=True), v.max(-1, keepdims=True)
        for b in QUANT_BITS:
            for origin, step in ((0.0, amax / (2 ** (b - 1) - 1)), (lo, (hi - lo) / (2**b - 1))):
                safe = np.where(step > 0, step, 1.0)
                k = (v - origin) / safe
                yield ((np.abs(k - np.round(k)) <= GRID_TOL) | (step == 0)).all(-1, keepdims=True), step


def lossy_kind(sig: Signature, i: int) -> str:
    """The artefact type model ``i``'s signature suggests ("" if none). fp16 first (a cast is also
    on no integer grid), then quantised (a grid; quantisation may also create zeros), then pruned."""
    if sig.fp16_exact[i]:
        return "fp16"
    if sig.on_grid[i]:
        return "quantised"
    if sig.zero_share[i] >= PRUNE_MIN_NEW_ZEROS:
        return "pruned"
    return ""


def verify_artefact(kind: str, source: np.ndarray, child: np.ndarray) -> bool:
    """Is this layer of ``child`` the ``kind`` artefact of the same layer of ``source``?

    fp16: within half an fp16 ulp of the source everywhere; pruned: equal to the source wherever not
    zero (the share of new zeros is checked on the whole model's :class:`Signature`); quantised: within
    one grid step of the source, the step of the coarsest grid each row of the child lies on (rounding
    to the nearest level moves a weight by half a step; a row on no grid has step 0)."""
    s, c = np.asarray(source, np.float64), np.asarray(child, np.float64)
    if s.shape != c.shape:
        return False
    if kind == "fp16":
        return bool((np.abs(c - s) <= FP16_TOL * np.abs(s) + 2.0**-24).all())
    if kind == "pruned":
        nz = c != 0
        return bool(np.allclose(c[nz], s[nz], rtol=1e-6, atol=0))
    if kind == "quantised":
        m, q = as_matrices(s[None]), as_matrices(c[None])
        step = np.zeros((*q.shape[:2], 1))
        for fits, h in _grids(q):
            step = np.where(fits, np.maximum(step, h), step)
        return bool((np.abs(q - m) <= (1 + GRID_TOL) * step).all())
    raise ValueError(f"unknown artefact type {kind!r}; valid: {list(ARTEFACT_TYPES)}")


ARTEFACT_SOURCES = 5  # nearest models without the signature tried as the source of an artefact


def artefact_candidates(sig: Signature, dist: np.ndarray, k: int = ARTEFACT_SOURCES) -> dict[int, tuple[str, list[int]]]:
    """{model: (kind, sources to verify, nearest first)}: each model with a lossy signature and its k
    nearest models (Eq. 1 distance) that lack it (for pruning: with at least PRUNE_MIN_NEW_ZEROS fewer
    zeros). Heavy pruning moves a model about as far from its source as from the source's siblings,
    hence several. Models with no such neighbour are left out."""
    out = {}
    for i in range(sig.n):
        kind = lossy_kind(sig, i)
        if not kind:
            continue
        if kind == "fp16":
            eligible = ~sig.fp16_exact
        elif kind == "quantised":
            eligible = ~sig.on_grid
        else:
            eligible = sig.zero_share <= sig.zero_share[i] - PRUNE_MIN_NEW_ZEROS
        eligible = eligible.copy()
        eligible[i] = False
        if eligible.any():
            idx = np.flatnonzero(eligible)
            out[i] = (kind, idx[np.argsort(dist[i, idx], kind="stable")[:k]].tolist())
    return out


# --------------------------------------------------------------------------- merges


def affine_residual(d2: np.ndarray, target: int, members: Sequence[int]) -> tuple[float, np.ndarray]:
    """Distance from model ``target`` to the affine hull of ``members``, and the affine weights of its
    projection, from squared Euclidean distances alone (classical multidimensional scaling). d2: (n, n)."""
    m = list(members)
    o, rest = m[0], m[1:]
    g = 0.5 * (d2[o, rest][:, None] + d2[o, rest][None, :] - d2[np.ix_(rest, rest)])
    h = 0.5 * (d2[o, rest] + d2[o, target] - d2[rest, target])
    coef, *_ = np.linalg.lstsq(g, h, rcond=1e-10)
    res2 = d2[o, target] - float(h @ coef)
    return math.sqrt(max(res2, 0.0)), np.concatenate([[1 - coef.sum()], coef])


def find_merges(d2: np.ndarray, candidates: Sequence[int] | None = None, k: int = MERGE_NEIGHBOURS) -> dict[int, list[int]]:
    """{merge: parents, largest weight first} among ``candidates`` (default: all). A model is a merge
    of 2 or 3 of its k nearest neighbours if its residual from their affine hull is at most
    MERGE_RESIDUAL of its distance to the nearest and every weight >= MERGE_MIN_WEIGHT. The
    neighbours searched: the k nearest, and the k nearest of those whose own nearest model is not
    the candidate (a merge's fine-tuned children crowd around it and hide its parents). Up to
    MERGE_ALL_PAIRS models, the pair (a, b) closest to having the candidate on its segment
    (d(t, a) + d(t, b) - d(a, b) smallest) is tried too: a merge of two unrelated models is no nearer
    to them than to every other unrelated model. d2: squared Euclidean distances (n, n)."""
    idx = np.arange(len(d2)) if candidates is None else np.asarray(candidates)
    sub = d2[np.ix_(idx, idx)].astype(np.float64)
    np.fill_diagonal(sub, np.inf)
    nearest = idx[np.argmin(sub, 1)] if len(idx) > 1 else idx
    euclid = np.sqrt(np.maximum(sub, 0)) if len(idx) <= MERGE_ALL_PAIRS else None  # once, not once per model
    found: dict[int, list[int]] = {}
    for a, t in enumerate(idx):
        others, far = idx[idx != t], idx[(idx != t) & (nearest != t)]
        if len(others) < 2:
            continue
        near = others[np.argsort(d2[t, others], kind="stable")[:k]]
        near = np.unique(np.r_[near, far[np.argsort(d2[t, far], kind="stable")[:k]]])
        near = near[np.argsort(d2[t, near], kind="stable")]
        scale = math.sqrt(d2[t, near[0]])
        if scale == 0:
            continue
        best = None
        for size in (2, 3):
            combos = list(itertools.combinations(near.tolist(), size))
            if size == 2 and euclid is not None:
                i, j = _segment_pair(euclid, a)
                combos.append((int(idx[i]), int(idx[j])))
            for combo in combos:
                if any(c in found for c in combo):
                    continue
                res, w = affine_residual(d2, int(t), combo)
                if res <= MERGE_RESIDUAL * scale and w.min() >= MERGE_MIN_WEIGHT and (best is None or res < best[0]):
                    best = (res, combo, w)
            if best:
                break
        if best:
            order = np.argsort(-best[2], kind="stable")
            found[int(t)] = [int(best[1][j]) for j in order]
    return found


def _segment_pair(dist: np.ndarray, a: int) -> tuple[int, int]:
    """Positions (i, j) of the pair whose segment passes closest to model ``a`` (smallest relative
    triangle gap), all given as positions in ``dist``: Euclidean distances (m, m), inf on the diagonal."""
    dt = dist[a]
    with np.errstate(invalid="ignore"):
        gap = (dt[:, None] + dt[None, :] - dist) / np.maximum(dist, 1e-300)
    gap[a, :] = gap[:, a] = np.inf
    np.fill_diagonal(gap, np.inf)
    i, j = np.unravel_index(int(np.argmin(gap)), gap.shape)
    return int(i), int(j)


def merge_children(dist: np.ndarray, merges: dict[int, list[int]], candidates: Sequence[int],
                   score: np.ndarray | None = None) -> dict[int, int]:
    """{model: merge} for each candidate whose nearest model (dist: (n, n)) is a merge it is not a
    parent of: the fine-tunes of a merge. (Their own descendants are left to MoTHer.)

    score: the kurtosis direction score (n,), if given: a candidate scoring above the merge is not
    its fine-tune (fine-tuning lowers kurtosis, MoTHer's prior) and is left to MoTHer. This keeps the
    parent of two merged siblings in place: the uniform merge (p + (u1 + u2) / 2) lies nearer to p
    (|u1 + u2| / 2) than either sibling does (|u_i|), so p's nearest model is the merge."""
    out = {}
    cand = np.asarray(candidates)
    for c in cand:
        row = dist[c].astype(np.float64).copy()
        row[c] = np.inf
        j = int(np.argmin(row))
        if j in merges and c not in merges[j] and (score is None or score[c] <= score[j]):
            out[int(c)] = j
    return out


# --------------------------------------------------------------------------- LoRA vs full fine-tune


def numerical_rank(diff: np.ndarray, scale: float) -> int:
    """Singular values of ``diff`` (d_out, d_in) above 1e-4 of the largest, and above float32 noise
    of weights of magnitude ``scale`` (4 eps32 · scale · sqrt(max side))."""
    s = np.linalg.svd(np.asarray(diff, np.float64), compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return 0
    tol = max(1e-4 * s[0], 4 * np.finfo(np.float32).eps * scale * math.sqrt(max(diff.shape)))
    return int((s > tol).sum())


def is_low_rank_update(parent: Sequence[np.ndarray], child: Sequence[np.ndarray]) -> bool:
    """LoRA-like: every changed 2-D layer changes by numerical rank <= LORA_RANK_SHARE of its smaller side."""
    changed = 0
    for p, c in zip(parent, child):
        p, c = as_matrices(np.asarray(p)[None])[0], as_matrices(np.asarray(c)[None])[0]
        if min(p.shape) < 2:
            continue
        diff = c.astype(np.float64) - p
        if not diff.any():
            continue
        changed += 1
        if numerical_rank(diff, float(np.abs(p).max())) > LORA_RANK_SHARE * min(p.shape):
            return False
    return changed > 0


# --------------------------------------------------------------------------- edge confidence


TYPED_PLACEMENTS = (*ARTEFACT_TYPES, "merge", "merge-child")  # edges whose confidence is their type's rate
# (a log cluster size was a fifth feature until the first held-out run: notebook 06's 5 trees have nearly equal
# sizes, std 0.03 in log, so its weight extrapolated without support to trees of another size)
CONFIDENCE_FEATURES = ("cost_margin", "relative_distance", "direction_agrees", "direction_margin")
CALIBRATION_FORMAT = 2


def edge_features(dist: np.ndarray, score: np.ndarray, labels: np.ndarray, parent: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Features of each MoTHer edge (child c, parent parent[c]): (n, len(CONFIDENCE_FEATURES)), NaN rows
    for roots. ``cost``: the (n, n) cost matrix M[i, j] of edge i -> j within clusters (inf across).

    cost_margin: (cost of c's best other parent - cost of its chosen parent) / median within-cluster
    distance; relative_distance: D[p, c] / that median; direction_agrees: 1 if the parent's kurtosis is
    higher (MoTHer's fine-tuning prior), else 0; direction_margin: |score[p] - score[c]| / score std in
    the cluster."""
    n = len(dist)
    out = np.full((n, len(CONFIDENCE_FEATURES)), np.nan)
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if len(idx) < 2:
            continue
        sub = dist[np.ix_(idx, idx)]
        med = float(np.median(sub[np.triu_indices(len(idx), 1)])) or 1.0
        sd = float(score[idx].std()) or 1.0
        for c in idx:
            p = parent[c]
            if p < 0:
                continue
            col = cost[idx, c].copy()
            col[idx == p] = np.inf
            alt = float(col.min()) if np.isfinite(col).any() else cost[p, c] + med
            out[c] = (alt - cost[p, c]) / med, dist[p, c] / med, float(score[p] > score[c]), abs(score[p] - score[c]) / sd
    return out


def expected_calibration_error(conf: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """ECE: sum over equal-width confidence bins of (share of edges) x |accuracy - mean confidence|."""
    conf, right = np.asarray(conf, float), np.asarray(right, float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def reliability_table(conf: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict]:
    """Per bin: lo, hi, n, mean confidence, accuracy (the reliability diagram's points)."""
    conf, right = np.asarray(conf, float), np.asarray(right, float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return [{"lo": b / bins, "hi": (b + 1) / bins, "n": int((which == b).sum()), "confidence": float(conf[which == b].mean()),
             "accuracy": float(right[which == b].mean())} for b in range(bins) if (which == b).any()]


@dataclass
class Calibrator:
    """P(edge right) = sigmoid(w · standardised features + b) for MoTHer edges, a fixed rate per
    artefact / merge type (Laplace-smoothed share right on the calibration set), and the weights of
    the pairwise score (:func:`pair_score`). JSON, never pickled."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    type_rate: dict[str, float]
    fitted_on: str = ""
    pair_weights: tuple[float, float] = (1.0, 1.0)
    features: tuple[str, ...] = CONFIDENCE_FEATURES

    def confidence(self, feats: np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, float) - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1 / (1 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))

    def to_json(self) -> dict:
        return {"format_version": CALIBRATION_FORMAT, "features": list(self.features), "mean": self.mean, "scale": self.scale,
                "weights": self.weights, "bias": self.bias, "type_rate": self.type_rate, "fitted_on": self.fitted_on,
                "pair_weights": list(self.pair_weights)}

    @classmethod
    def from_json(cls, d: dict, source: str = "calibration") -> "Calibrator":
        if d.get("format_version") != CALIBRATION_FORMAT or tuple(d.get("features", ())) != CONFIDENCE_FEATURES:
            raise ValueError(f"{source}: not an edge-confidence calibration of format {CALIBRATION_FORMAT} with features "
                             f"{CONFIDENCE_FEATURES} (rerun notebook 09 to write one)")
        return cls(d["mean"], d["scale"], d["weights"], float(d["bias"]), dict(d["type_rate"]), d.get("fitted_on", ""),
                   tuple(float(w) for w in d["pair_weights"]))


def fit_calibrator(feats: np.ndarray, right: np.ndarray, typed: Sequence[tuple[str, bool]] = (), fitted_on: str = "") -> Calibrator:
    """Logistic regression (L2, C = 1) on MoTHer edges' features (m, F) and correctness (m,); per
    artefact/merge type, the Laplace-smoothed share right of ``typed`` (type, right) pairs."""
    from sklearn.linear_model import LogisticRegression

    feats, right = np.asarray(feats, float), np.asarray(right, bool)
    mean, scale = feats.mean(0), feats.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    if right.all() or not right.any():
        w, b = np.zeros(feats.shape[1]), math.log((right.sum() + 1) / ((~right).sum() + 1))
    else:
        lr = LogisticRegression(C=1.0, max_iter=1000).fit((feats - mean) / scale, right)
        w, b = lr.coef_[0], float(lr.intercept_[0])
    rate = {}
    for t in sorted({*TYPED_PLACEMENTS, *(t for t, _ in typed)}):  # a type the calibration never saw gets 1/2
        ok = [r for tt, r in typed if tt == t]
        rate[t] = (sum(ok) + 1) / (len(ok) + 2)
    return Calibrator(mean.tolist(), scale.tolist(), np.asarray(w).tolist(), float(b), rate, fitted_on)


# --------------------------------------------------------------------------- pairwise test


def pair_features(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[float, float]:
    """(log mean l2 distance, log mean effective rank share) of B - A over their 2-D layers.

    Effective rank (Roy & Vetterli 2007): exp(entropy of the normalised singular values), divided by
    the smaller side. One fine-tune's update is concentrated; a sum of two independent updates
    (siblings, or unrelated models) spreads over more directions."""
    d, r = [], []
    for x, y in zip(a, b):
        diff = as_matrices(np.asarray(y, np.float64)[None])[0] - as_matrices(np.asarray(x, np.float64)[None])[0]
        d.append(float(np.linalg.norm(diff)))
        if min(diff.shape) >= 2:
            s = np.linalg.svd(diff, compute_uv=False)
            if s.sum() > 0:
                p = s[s > 0] / s.sum()
                r.append(math.exp(-(p * np.log(p)).sum()) / min(diff.shape))
    if not d:
        raise ValueError("no layers to compare")
    return math.log(max(float(np.mean(d)), 1e-300)), math.log(max(float(np.mean(r)) if r else 1.0, 1e-300))


@dataclass(frozen=True)
class PairTest:
    """A pair's score (higher = more likely derived), its z and percentile among the null pairs, the verdict."""

    score: float
    z: float
    percentile: float
    n_null: int
    verdict: str
    log_distance: float
    log_eff_rank: float

    def to_json(self) -> dict:
        return self.__dict__.copy()


DERIVED_Z = 3.0  # "derived" when the pair scores 3 null SDs above the null mean (one-sided p ~ 0.0013)


def null_z(feats: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Each pair feature (m, 2) as a z-score against the null pairs' (k, 2), sign flipped so that
    larger = more derived (both features are smaller for derived pairs)."""
    null = np.asarray(null, float)
    mu, sd = null.mean(0), null.std(0)
    return -(np.asarray(feats, float) - mu) / np.where(sd > 0, sd, 1.0)


def pair_score(feats: np.ndarray, null: np.ndarray, weights: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """Scores of pairs (m, 2) given null pairs' features (k, 2): the weighted sum of the features'
    :func:`null_z` (equal weights, or those fitted by :func:`fit_pair_weights`). Higher = more derived."""
    return null_z(feats, null) @ np.asarray(weights, float)


def fit_pair_weights(pos: np.ndarray, neg: np.ndarray, null: np.ndarray) -> tuple[float, float]:
    """Weights of :func:`pair_score` from a logistic regression (L2, C = 1) of ancestor pairs ``pos``
    (m, 2) against same-tree pairs not in one lineage ``neg`` (k, 2), on their null z-scores; scaled to
    sum to 2 (equal weights are (1, 1)). Only their ratio matters for the ranking and the z-score."""
    from sklearn.linear_model import LogisticRegression

    x = np.r_[null_z(pos, null), null_z(neg, null)]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    w = LogisticRegression(C=1.0, max_iter=1000).fit(x, y).coef_[0]
    if w.sum() <= 0:
        return (1.0, 1.0)
    w = 2 * w / w.sum()
    return float(w[0]), float(w[1])


def pair_test(feats: tuple[float, float], null: np.ndarray, weights: Sequence[float] = (1.0, 1.0)) -> PairTest:
    """The pair against the null pairs' features (k, 2), k >= 3."""
    null = np.asarray(null, float)
    if len(null) < 3:
        raise ValueError(f"a null of {len(null)} pair(s): need at least 3 unrelated pairs")
    s = float(pair_score(np.asarray(feats)[None], null, weights)[0])
    ns = pair_score(null, null, weights)
    z = (s - ns.mean()) / (ns.std() or 1.0)
    pct = float((ns < s).mean() * 100)
    return PairTest(s, float(z), pct, len(null), "derived" if z >= DERIVED_Z else "not derived", *feats)


def permuted(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of one layer (d_out, ...), same shape, with its rows and the columns of its (d_out, rest)
    matrix shuffled: the same weights with their alignment to any other model destroyed (the no-null
    fallback of the pairwise test)."""
    m = as_matrices(np.asarray(x)[None])[0]
    return m[rng.permutation(m.shape[0])][:, rng.permutation(m.shape[1])].reshape(np.shape(x))
