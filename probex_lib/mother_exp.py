"""Experiments of notebooks 06 and 07 on the MoTHer dataset (:mod:`probex_lib.mother_zoo`).

Shapes: a :class:`Weights` holds, for ``n`` models, each backbone tensor stacked as (n, ...);
``parent`` arrays index into the same order (-1 for a root). Accuracy is the paper's: the
fraction of non-root models whose parent is recovered, edge and direction both right.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.optimize import linear_sum_assignment

from . import mother
from .mother_baselines import direction_signal, no_direction, shape_baseline
from .mother_data import LORA_SUBSETS, Weights, load, members

# --------------------------------------------------------------------------- distances and scores


DISTANCES = ("ft", "lora", "ft-official", "lora-official")
SCORE_GROUP = "o"  # the paper's "dense layers": HF ViT attention.output.dense (our o_proj), as the official calc_ku
# LoRA leaves o_proj frozen (its kurtosis is the same for every model of a tree: no direction at all), so LoRA
# subsets take the kurtosis over the square attention matrices, where the adapters (q, v) sit
LORA_SCORE_GROUP = "attention"


def distance(w: Weights, kind: str = "ft") -> np.ndarray:
    """Pairwise distances (n, n). The paper's equations (defaults) and the official code's variants:

    * "ft": Eq. 1, the mean over every backbone layer of the l2 distance;
    * "lora": Eq. 2, the maximum over the attention matrices (where the LoRAs sit) of the rank of
      the difference of the merged weights;
    * "ft-official": the official code's full fine-tuning distance, the maximum over the q/k/v/o
      types of the min-max-normalised differences (:func:`mother.ft_distance_official`);
    * "lora-official": the official code's LoRA distance, value matrices only, ranks summed over
      layers instead of Eq. 2's maximum.
    """
    if kind == "ft":
        return mother.ft_distance([t.reshape(len(w.ids), -1) for t in w.group("all")])
    if kind == "lora":
        return mother.rank_distance_full([t for t in w.group("attention")]).astype(np.float64)
    if kind == "ft-official":
        return mother.ft_distance_official({g: [t.reshape(len(w.ids), -1) for t in w.group(g)] for g in ("q", "k", "v", "o")})
    if kind == "lora-official":
        return mother.rank_distance_full([t for t in w.group("v")], reduce="sum").astype(np.float64)
    raise ValueError(f"unknown distance {kind!r}; valid: {list(DISTANCES)}")


def _entropy(x: np.ndarray, bins: int = 100) -> np.ndarray:
    out = []
    for row in x:
        h, _ = np.histogram(row, bins=bins)
        p = h[h > 0] / h.sum()
        out.append(float(-(p * np.log(p)).sum()))
    return np.asarray(out)


SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "kurtosis": lambda x: stats.kurtosis(x, axis=1, fisher=False),
    "variance": lambda x: x.var(axis=1),
    "skewness": lambda x: stats.skew(x, axis=1),
    "entropy": _entropy,
}


def score(w: Weights, group: str = SCORE_GROUP, kind: str = "kurtosis") -> np.ndarray:
    """Direction score per model: ``kind`` summed over the layers of ``group``. (n,)"""
    return sum(SCORES[kind](np.asarray(t, np.float64).reshape(len(w.ids), -1)) for t in w.group(group))


def accuracy(w: Weights, parent: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of non-root models (within ``mask``) whose recovered parent is the true one."""
    m = w.parent >= 0 if mask is None else (w.parent >= 0) & mask
    return float((parent[m] == w.parent[m]).mean()) if m.any() else float("nan")


def undirected_accuracy(w: Weights, parent: np.ndarray) -> float:
    """Fraction of true edges present in the recovered graph in either direction."""
    edges = {frozenset((c, p)) for c, p in enumerate(parent) if p >= 0}
    true = [frozenset((c, p)) for c, p in enumerate(w.parent) if p >= 0]
    return float(np.mean([e in edges for e in true])) if true else float("nan")


def run(w: Weights, dist: np.ndarray, sc: np.ndarray, n_trees: int | None, c: float = 0.3,
        generalization: bool = False) -> dict:
    """Recover the graph and score it: graph accuracy, undirected accuracy, per-tree accuracy,
    the no-direction baseline (same distances, random roots; exact expectation), the shape
    baseline (perfect placement, random roots) and the direction signal with its edge count.

    The models are recovered in a seeded random order: our files list each root first, and the
    MDST breaks ties (e.g. between equal candidate roots when the direction prior is silent) by
    position, which would otherwise hand it the true root for free."""
    perm = np.random.default_rng(len(dist)).permutation(len(dist))
    labels_p, parent_p = mother.recover_graph(dist[np.ix_(perm, perm)], sc[perm], n_trees, generalization, c)
    labels, parent = np.empty_like(labels_p), np.empty_like(parent_p)
    labels[perm] = labels_p
    parent[perm] = np.where(parent_p >= 0, perm[np.maximum(parent_p, 0)], -1)
    trees = sorted(set(w.tree))
    signal, n_placed = direction_signal(w.parent, parent, sc, generalization)
    baseline, p_random = no_direction(dist, labels, w.parent, parent)
    return {"graph": accuracy(w, parent), "undirected": undirected_accuracy(w, parent),
            "baseline": baseline, "shape baseline": shape_baseline(w.parent), "p random root": p_random,
            "signal": signal, "n placed": n_placed, "edges": int((w.parent >= 0).sum()), "clusters": int(len(np.unique(labels))), "parent": parent,
            **{f"tree {t}": accuracy(w, parent, w.tree == t) for t in trees}}


# --------------------------------------------------------------------------- notebook 06


def hop_distance(parent: np.ndarray) -> np.ndarray:
    """Number of edges between every pair of nodes of one tree (parent array). (n, n)"""
    n = len(parent)
    anc = []
    for i in range(n):
        chain, j = [i], i
        while parent[j] >= 0:
            j = parent[j]
            chain.append(j)
        anc.append({a: d for d, a in enumerate(chain)})
    out = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(n):
            common = [anc[i][a] + anc[j][a] for a in anc[i] if a in anc[j]]
            out[i, j] = min(common) if common else -1
    return out


def distance_vs_hops(w: Weights) -> tuple[pd.DataFrame, float]:
    """Fig. 1 on one tree: every pair's Eq. 1 distance and hop count; Pearson rho."""
    d = distance(w, "ft")
    h = hop_distance(w.parent)
    iu = np.triu_indices(len(d), 1)
    df = pd.DataFrame({"hops": h[iu], "distance": d[iu]})
    return df, float(stats.pearsonr(df["hops"], df["distance"])[0])


def monotonic_fraction(tr: pd.DataFrame, rising: bool) -> float:
    """Share of consecutive trace steps (over all models) that move in the expected direction."""
    fr = []
    for _, g in tr.groupby("model_id"):
        d = np.diff(g.sort_values("step")["kurtosis"].to_numpy())
        fr.append(float(((d > 0) if rising else (d < 0)).mean()) if len(d) else np.nan)
    return float(np.nanmean(fr))


SCORE_GROUPS = (SCORE_GROUP, "q", "k", "v", "attention", "fc1", "fc2")  # the paper's first, the options beside it
DISTANCE_LABELS = {"ft": "Eq. 1 (l2)", "lora": "Eq. 2 (rank)", "ft-official": "official FT (max q/k/v/o)",
                   "lora-official": "official LoRA (value, sum)"}


def table1(man: pd.DataFrame, subsets: Sequence[str], groups: Sequence[str] = SCORE_GROUPS,
           c: float = 0.3) -> pd.DataFrame:
    """Table 1: per subset, distance and direction-score layer group, per-tree and graph accuracy
    (known number of trees), the undirected accuracy, both baselines and the direction signal.
    LoRA subsets use the rank distance (Eq. 2), FT and Mixed the Eq. 1 distance (the paper's
    equations); the official code's distances follow with the first score group only, and so does
    the row "LoRA-V, Eq. 1" (the paper's ablation); for LoRA subsets that group is LORA_SCORE_GROUP."""
    rows = []
    for subset in subsets:
        w = load(members(man, subset))
        lora = subset in LORA_SUBSETS
        kinds = ["lora", "lora-official"] + (["ft"] if subset == "LoRA-V" else []) if lora else ["ft", "ft-official"]
        for kind in kinds:
            dist = distance(w, kind)
            first = LORA_SCORE_GROUP if lora else groups[0]
            for g in groups if kind in ("ft", "lora") and not (lora and kind == "ft") else [first]:
                res = run(w, dist, score(w, g), len(set(w.tree)), c)
                res.pop("parent")
                rows.append({"subset": subset, "distance": DISTANCE_LABELS[kind], "score layers": g,
                             "models": len(w.ids), **res})
    return pd.DataFrame(rows)


def single_tree(man: pd.DataFrame, subset: str, groups: Sequence[str] = (SCORE_GROUP, "attention", "fc2", "all"),
                c: float = 0.3) -> pd.DataFrame:
    """Deep and ResNet (one tree each): accuracy per score group (ResNet has only "all")."""
    w = load(members(man, subset))
    dist = distance(w, "ft")
    rows = []
    for g in groups:
        try:
            sc = score(w, g)
        except KeyError:
            continue
        res = run(w, dist, sc, 1, c)
        res.pop("parent")
        rows.append({"subset": subset, "score layers": g, "models": len(w.ids), "levels": int(w.depth.max()), **res})
    return pd.DataFrame(rows)


def chain(man: pd.DataFrame, group: str = SCORE_GROUP, c: float = 0.3) -> pd.DataFrame:
    """The generalisation chain (root, then continued pre-training stages): accuracy with the
    specialisation prior and with the flipped (generalisation) prior, as for Stable Diffusion."""
    rows_ = man[man["subset"] == "Chain"]
    w = load(pd.concat([man[man["model_id"] == rows_["tree"].iloc[0]], rows_.sort_values("depth")], ignore_index=True))
    dist, sc = distance(w, "ft"), score(w, group)
    out = []
    for gen in (False, True):
        res = run(w, dist, sc, 1, c, generalization=gen)
        out.append({"prior": "generalisation (flipped)" if gen else "specialisation", "models": len(w.ids),
                    "graph": res["graph"], "undirected": res["undirected"], "baseline": res["baseline"],
                    "signal": res["signal"], "n placed": res["n placed"], "p random root": res["p random root"],
                    "recovered": " ".join(f"{w.ids[p]}->{w.ids[i]}" for i, p in enumerate(res["parent"]) if p >= 0)})
    return pd.DataFrame(out).assign(kurtosis=" < ".join(w.ids[i] for i in np.argsort(sc)))


def clustering_accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Accuracy after the best one-to-one matching of predicted clusters to true trees."""
    t = pd.factorize(labels_true)[0]
    p = pd.factorize(labels_pred)[0]
    m = np.zeros((p.max() + 1, t.max() + 1))
    np.add.at(m, (p, t), 1)
    r, c = linear_sum_assignment(-m)
    return float(m[r, c].sum() / len(t))


def clustering_vs_size(w: Weights, sizes: Sequence[int], repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Fig. 6: clustering accuracy of random subsets of n models (known number of trees present)."""
    dist = distance(w, "ft")
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for r in range(repeats):
            idx = np.sort(rng.choice(len(w.ids), min(n, len(w.ids)), replace=False))
            k = len(set(w.tree[idx]))
            lab = mother.cluster_models(dist[np.ix_(idx, idx)], k)
            auto = mother.cluster_models(dist[np.ix_(idx, idx)], None)
            rows.append({"models": len(idx), "repeat": r, "trees": k, "accuracy": clustering_accuracy(w.tree[idx], lab),
                         "accuracy (automatic count)": clustering_accuracy(w.tree[idx], auto)})
    return pd.DataFrame(rows)


def edge_consistency(w: Weights, groups: Sequence[str], kinds: Sequence[str] = tuple(SCORES)) -> pd.DataFrame:
    """Figs. 8 and 13: for each score and layer group, the share of true edges where the score
    falls from parent to child (specialisation), its consistency max(falls, rises), the number
    of edges, and the graph accuracy with that score."""
    dist = distance(w, "ft")
    m = w.parent >= 0
    rows = []
    for g in groups:
        for k in kinds:
            sc = score(w, g, k)
            res = run(w, dist, sc, len(set(w.tree)))
            falls = float((sc[w.parent[m]] > sc[m]).mean())
            rows.append({"layers": g, "score": k, "falls parent->child": falls, "consistency": max(falls, 1 - falls),
                         "edges": int(m.sum()), "graph": res["graph"]})
    return pd.DataFrame(rows)


def c_sensitivity(w: Weights, cs: Sequence[float], dist_kind: str = "ft", group: str = SCORE_GROUP) -> pd.DataFrame:
    """Graph accuracy, no-direction baseline and direction signal for each c of lambda = c mean(D)."""
    dist, sc = distance(w, dist_kind), score(w, group)
    keep = ("graph", "baseline", "signal", "n placed", "edges")
    return pd.DataFrame([{"c": c, **{k: v for k, v in run(w, dist, sc, len(set(w.tree)), c).items() if k in keep}} for c in cs])


def merged_parents(man: pd.DataFrame) -> pd.DataFrame:
    """Table 6: mean cosine similarity of each merged model's fine-tunes to the centre (mean
    weights) of each root's fine-tunes; the two highest are the chosen parents."""
    sub = man[man["subset"] == "Merge"]
    w = load(sub)
    flat = np.concatenate([t.reshape(len(w.ids), -1) for t in w.group("all")], axis=1).astype(np.float64)
    base = sub["tree"].to_numpy()
    roots = sorted(b for b in set(base) if b.startswith("root"))
    centres = {r: flat[base == r].mean(0) for r in roots}
    parents = man.set_index("model_id")["parent_ids"] if "parent_ids" in man else pd.Series(dtype=object)
    rows = []
    for mbase in sorted(b for b in set(base) if not b.startswith("root")):
        sims = []
        for x in flat[base == mbase]:
            sims.append({r: float(x @ c / (np.linalg.norm(x) * np.linalg.norm(c))) for r, c in centres.items()})
        sims_df = pd.DataFrame(sims)
        picks = [tuple(sorted(r.nlargest(2).index)) for _, r in sims_df.iterrows()]
        true = tuple(sorted(parents.get(mbase, []) or []))
        rows.append({"merged": mbase, "true parents": " + ".join(true), **sims_df.mean().round(4).to_dict(),
                     "identified": float(np.mean([c == true for c in picks])),
                     "chosen": "; ".join(" + ".join(c) for c in sorted(set(picks)))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- notebook 07


def prune_l1(t: np.ndarray, amount: float) -> np.ndarray:
    """``torch.nn.utils.prune.l1_unstructured`` of each model's tensor: (n, ...) -> same shape."""
    from torch.nn.utils import prune

    out = np.empty_like(t)
    for i, x in enumerate(t):
        holder = torch.nn.Module()
        holder.weight = torch.nn.Parameter(torch.from_numpy(np.array(x)))
        prune.l1_unstructured(holder, "weight", amount=amount)
        out[i] = holder.weight.detach().numpy()
    return out


def quantise(x: np.ndarray, kind: str) -> np.ndarray:
    """One model's tensor through fp16, or through int8: symmetric per-tensor quantisation,
    scale max|x| / 127, stored as a ``torch.int8`` tensor, then dequantised (runs on CPU); or
    "int4c": symmetric per-output-channel 4-bit, scale max|row| / 7 (the lineage views' second grid)."""
    t = torch.from_numpy(np.array(x))
    if kind == "fp16":
        return t.half().float().numpy()
    if kind == "int8":
        scale = float(t.abs().max()) / 127 or 1.0
        q = torch.clamp(torch.round(t / scale), -127, 127).to(torch.int8)
        return (q.float() * scale).numpy()
    if kind == "int4c":
        m = np.asarray(x).reshape(len(x), -1)
        scale = np.abs(m).max(1, keepdims=True) / 7
        scale[scale == 0] = 1.0
        return (np.clip(np.round(m / scale), -7, 7).astype(np.float32) * scale.astype(np.float32)).reshape(np.shape(x))
    raise ValueError(f"unknown quantisation {kind!r}; valid: ['fp16', 'int8', 'int4c']")


def pruning(w: Weights, amounts: Sequence[float], group: str = SCORE_GROUP, c: float = 0.3) -> pd.DataFrame:
    """Table 4 / Fig. 15: every model pruned by the same amount, then recovered."""
    rows = []
    for a in amounts:
        wp = w.with_tensors({k: prune_l1(t, a) if a > 0 else t for k, t in w.tensors.items()})
        res = run(wp, distance(wp, "ft"), score(wp, group), len(set(w.tree)), c)
        rows.append({"pruned": a, **{k: res[k] for k in ("graph", "undirected", "baseline", "shape baseline", "signal", "n placed",
                                                           "p random root")}})
    return pd.DataFrame(rows)


def quantisation(w: Weights, kinds: Sequence[str] = ("none", "fp16", "int8"), repeats: int = 10, group: str = SCORE_GROUP,
                 c: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Table 5: a random half of the models quantised (new half each repeat), then recovered."""
    rows = []
    rng = np.random.default_rng(seed)
    halves = [rng.choice(len(w.ids), len(w.ids) // 2, replace=False) for _ in range(repeats)]
    for kind in kinds:
        for r, half in enumerate(halves if kind != "none" else halves[:1]):
            tensors = {}
            for k, t in w.tensors.items():
                t = t.copy()
                if kind != "none":
                    for i in half:
                        t[i] = quantise(t[i], kind)
                tensors[k] = t
            wq = w.with_tensors(tensors)
            res = run(wq, distance(wq, "ft"), score(wq, group), len(set(w.tree)), c)
            rows.append({"quantisation": kind, "repeat": r, **{k: res[k] for k in ("graph", "baseline", "signal", "n placed")}})
    return pd.DataFrame(rows)


def lr_table(tr: pd.DataFrame) -> pd.DataFrame:
    """Fig. 16 in numbers: per learning rate, the share of falling trace steps and the mean net
    relative change of kurtosis over fine-tuning."""
    rows = []
    for lr, g in tr.groupby("lr"):
        net = g.sort_values("step").groupby("model_id")["kurtosis"].agg(lambda s: s.iloc[-1] / s.iloc[0] - 1)
        rows.append({"lr": lr, "models": g["model_id"].nunique(), "steps": int(len(g) - g["model_id"].nunique()),
                     "falls": monotonic_fraction(g, rising=False),
                     "net change": float(net.mean())})
    return pd.DataFrame(rows)


def net_direction(tr: pd.DataFrame, rising: bool) -> float:
    """Share of runs whose kurtosis ends above (``rising``) or below its start."""
    net = tr.sort_values("step").groupby("model_id")["kurtosis"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    return float(((net > 0) if rising else (net < 0)).mean())
