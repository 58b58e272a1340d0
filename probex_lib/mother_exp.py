"""Experiments of notebooks 06 and 07 on the MoTHer dataset (:mod:`probex_lib.mother_zoo`).

Shapes: a :class:`Weights` holds, for ``n`` models, each backbone tensor stacked as (n, ...);
``parent`` arrays index into the same order (-1 for a root). Accuracy is the paper's: the
fraction of non-root models whose parent is recovered, edge and direction both right.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.optimize import linear_sum_assignment

from . import mother, zoo
from .mother_zoo import layer_groups

LORA_SUBSETS = ("LoRA-V", "LoRA-F")


@dataclass
class Weights:
    """Backbone tensors of ``ids`` (stacked (n, ...) float32), the true parent index of each
    model (-1 for a root or a parent outside the set), its tree and depth."""

    ids: list[str]
    tensors: dict[str, np.ndarray]
    parent: np.ndarray
    tree: np.ndarray
    depth: np.ndarray

    def group(self, name: str) -> list[np.ndarray]:
        keys = layer_groups(list(self.tensors))[name]
        if not keys:
            raise KeyError(f"no layer of group {name!r} in these models (layers: {list(self.tensors)[:4]} ...)")
        return [self.tensors[k] for k in keys]

    def with_tensors(self, tensors: dict[str, np.ndarray]) -> "Weights":
        return Weights(self.ids, tensors, self.parent, self.tree, self.depth)


def members(man: pd.DataFrame, subset: str, roots: Sequence[str] | None = None) -> pd.DataFrame:
    """The models of ``subset`` and the roots of its trees (or the given ``roots``), roots first."""
    sub = man[man["subset"] == subset]
    if sub.empty:
        raise KeyError(f"no models of subset {subset!r}; subsets here: {sorted(man['subset'].unique())}")
    roots = sorted(set(sub["tree"])) if roots is None else list(roots)
    return pd.concat([man[man["model_id"].isin(roots)].sort_values("model_id"), sub], ignore_index=True)


def load(rows: pd.DataFrame, group: str = "all") -> Weights:
    """Read the ``group`` tensors (see :func:`layer_groups`) of every model in ``rows``."""
    keys = layer_groups(zoo.tensor_names(rows["path"].iloc[0]))[group]
    paths = rows["path"].tolist()
    tensors = {k: zoo.load_layer(paths, k).numpy() for k in keys}
    ids = rows["model_id"].tolist()
    index = {m: i for i, m in enumerate(ids)}
    parent = np.array([index.get(p, -1) if isinstance(p, str) else -1 for p in rows["parent"]])
    return Weights(ids, tensors, parent, rows["tree"].to_numpy(), rows["depth"].to_numpy().astype(int))


# --------------------------------------------------------------------------- distances and scores


def distance(w: Weights, kind: str = "ft") -> np.ndarray:
    """"ft": Eq. 1 over every backbone layer; "lora": Eq. 2, the rank of the difference of the
    merged weights over the attention matrices (where the LoRAs sit)."""
    if kind == "ft":
        return mother.ft_distance([t.reshape(len(w.ids), -1) for t in w.group("all")])
    if kind == "lora":
        return mother.rank_distance_full([t for t in w.group("attention")]).astype(np.float64)
    raise ValueError(f"unknown distance {kind!r}; valid: ['ft', 'lora']")


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


def score(w: Weights, group: str = "attention", kind: str = "kurtosis") -> np.ndarray:
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
    """Recover the graph and score it: graph accuracy, undirected accuracy, per-tree accuracy.

    The models are recovered in a seeded random order: our files list each root first, and the
    MDST breaks ties (e.g. between equal candidate roots when the direction prior is silent) by
    position, which would otherwise hand it the true root for free."""
    perm = np.random.default_rng(len(dist)).permutation(len(dist))
    labels_p, parent_p = mother.recover_graph(dist[np.ix_(perm, perm)], sc[perm], n_trees, generalization, c)
    labels, parent = np.empty_like(labels_p), np.empty_like(parent_p)
    labels[perm] = labels_p
    parent[perm] = np.where(parent_p >= 0, perm[np.maximum(parent_p, 0)], -1)
    trees = sorted(set(w.tree))
    return {"graph": accuracy(w, parent), "undirected": undirected_accuracy(w, parent),
            "clusters": int(len(np.unique(labels))), "parent": parent,
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


def traces(man: pd.DataFrame, models: Sequence[str], group: str = "attention") -> pd.DataFrame:
    """Long table of the recorded kurtosis traces (Figs. 2, 16): model_id, step, progress, kurtosis."""
    rows = []
    for _, r in man[man["model_id"].isin(models)].iterrows():
        steps, vals = r.get("trace_step"), r.get(f"trace_{group}")
        if not isinstance(steps, list):
            raise KeyError(f"{r['path']}: no kurtosis trace recorded (trace_every was 0)")
        for s, v in zip(steps, vals):
            rows.append({"model_id": r["model_id"], "mode": r["mode"], "lr": r["lr"], "step": s,
                         "progress": s / max(steps[-1], 1), "kurtosis": v})
    return pd.DataFrame(rows)


def monotonic_fraction(tr: pd.DataFrame, rising: bool) -> float:
    """Share of consecutive trace steps (over all models) that move in the expected direction."""
    fr = []
    for _, g in tr.groupby("model_id"):
        d = np.diff(g.sort_values("step")["kurtosis"].to_numpy())
        fr.append(float(((d > 0) if rising else (d < 0)).mean()) if len(d) else np.nan)
    return float(np.nanmean(fr))


def table1(man: pd.DataFrame, subsets: Sequence[str], groups: Sequence[str] = ("attention", "fc2", "all"),
           c: float = 0.3) -> pd.DataFrame:
    """Table 1: per subset and direction-score layer group, per-tree and graph accuracy (known
    number of trees), with the undirected accuracy. LoRA subsets use the rank distance (Eq. 2),
    FT and Mixed the Eq. 1 distance; the row "LoRA-V, Eq. 1" is the paper's ablation."""
    rows = []
    for subset in subsets:
        w = load(members(man, subset))
        kinds = ["lora", "ft"] if subset == "LoRA-V" else ["lora"] if subset in LORA_SUBSETS else ["ft"]
        for kind in kinds:
            dist = distance(w, kind)
            for g in groups:
                if kind == "ft" and subset == "LoRA-V" and g != groups[0]:
                    continue
                res = run(w, dist, score(w, g), len(set(w.tree)), c)
                res.pop("parent")
                rows.append({"subset": subset, "distance": "Eq. 2 (rank)" if kind == "lora" else "Eq. 1 (l2)",
                             "score layers": g, "models": len(w.ids), **res})
    return pd.DataFrame(rows)


def single_tree(man: pd.DataFrame, subset: str, groups: Sequence[str] = ("attention", "fc2", "all"), c: float = 0.3) -> pd.DataFrame:
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


def chain(man: pd.DataFrame, group: str = "attention", c: float = 0.3) -> pd.DataFrame:
    """The generalisation chain (root, then continued pre-training stages): accuracy with the
    specialisation prior and with the flipped (generalisation) prior, as for Stable Diffusion."""
    rows_ = man[man["subset"] == "Chain"]
    w = load(pd.concat([man[man["model_id"] == rows_["tree"].iloc[0]], rows_.sort_values("depth")], ignore_index=True))
    dist, sc = distance(w, "ft"), score(w, group)
    out = []
    for gen in (False, True):
        res = run(w, dist, sc, 1, c, generalization=gen)
        out.append({"prior": "generalisation (flipped)" if gen else "specialisation", "models": len(w.ids),
                    "graph": res["graph"], "undirected": res["undirected"],
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
    falls from parent to child (specialisation), and the graph accuracy with that score."""
    dist = distance(w, "ft")
    m = w.parent >= 0
    rows = []
    for g in groups:
        for k in kinds:
            sc = score(w, g, k)
            res = run(w, dist, sc, len(set(w.tree)))
            rows.append({"layers": g, "score": k, "falls parent->child": float((sc[w.parent[m]] > sc[m]).mean()),
                         "graph": res["graph"]})
    return pd.DataFrame(rows)


def c_sensitivity(w: Weights, cs: Sequence[float], dist_kind: str = "ft", group: str = "attention") -> pd.DataFrame:
    dist, sc = distance(w, dist_kind), score(w, group)
    return pd.DataFrame([{"c": c, "graph": run(w, dist, sc, len(set(w.tree)), c)["graph"]} for c in cs])


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


def runtime(sizes: Sequence[int], d: int = 256, trees: int = 5) -> pd.DataFrame:
    """Table 7: seconds for distances, clustering, kurtosis scores and the MDSTs of all clusters
    vs number of models."""
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
        rows.append({"models": n, "distances s": t1 - t0, "clustering s": t2 - t1, "kurtosis s": t_k - t2, "MDST s": t3 - t_k})
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
    scale max|x| / 127, stored as a ``torch.int8`` tensor, then dequantised (runs on CPU)."""
    t = torch.from_numpy(np.array(x))
    if kind == "fp16":
        return t.half().float().numpy()
    if kind == "int8":
        scale = float(t.abs().max()) / 127 or 1.0
        q = torch.clamp(torch.round(t / scale), -127, 127).to(torch.int8)
        return (q.float() * scale).numpy()
    raise ValueError(f"unknown quantisation {kind!r}; valid: ['fp16', 'int8']")


def pruning(w: Weights, amounts: Sequence[float], group: str = "attention", c: float = 0.3) -> pd.DataFrame:
    """Table 4 / Fig. 15: every model pruned by the same amount, then recovered."""
    rows = []
    for a in amounts:
        wp = w.with_tensors({k: prune_l1(t, a) if a > 0 else t for k, t in w.tensors.items()})
        res = run(wp, distance(wp, "ft"), score(wp, group), len(set(w.tree)), c)
        rows.append({"pruned": a, "graph": res["graph"], "undirected": res["undirected"]})
    return pd.DataFrame(rows)


def quantisation(w: Weights, kinds: Sequence[str] = ("none", "fp16", "int8"), repeats: int = 10, group: str = "attention",
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
            rows.append({"quantisation": kind, "repeat": r, "graph": res["graph"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- claims


def _acc(t: pd.DataFrame, **where) -> float:
    m = np.ones(len(t), bool)
    for k, v in where.items():
        m &= t[k.replace("_", " ")].to_numpy() == v
    return float(t.loc[m, "graph"].iloc[0]) if m.any() else float("nan")


# the figure that shows each claim of notebooks 06 and 07 (tables without a plot point at their nearest figure)
CLAIM_FIGURES = {
    "M-F1": "mother_fig1_distance_vs_hops.png", "M-F2": "mother_fig2_kurtosis_traces.png",
    "M-T1": "mother_table1.png", "M-abl-lft": "mother_table1.png", "M-deep": "mother_table1.png",
    "M-resnet": "mother_table1.png", "M-F7": "mother_fig8_scores.png", "M-F6": "mother_fig6_clustering.png",
    "M-F8": "mother_fig8_scores.png", "M-F13": "mother_fig13_layer_types.png", "M-impl": "mother_c_sensitivity.png",
    "M-T6": "mother_table1.png", "M-T7": "mother_table7_runtime.png", "M-T4": "mother_table4_pruning.png",
    "M-T5": "mother_table4_pruning.png", "M-F16": "mother_fig16_kurtosis_lr.png",
}


def _with_figures(claims: list) -> list:
    """Each claim with its own figure from CLAIM_FIGURES (else the one the caller passed)."""
    from dataclasses import replace

    return [replace(c, figure=CLAIM_FIGURES.get(c.id, c.figure)) for c in claims]


def judge06(rho: float, pre_rise: float, ft_fall: float, net: dict, t1: pd.DataFrame, deep: pd.DataFrame,
            resnet: pd.DataFrame, ch: pd.DataFrame, f6: pd.DataFrame, ec: pd.DataFrame, cs: pd.DataFrame,
            merged: pd.DataFrame, rt: pd.DataFrame, group: str = "attention", figure: str = "") -> list:
    """Claims M-F1, M-F2, M-T1, M-abl-lft, M-deep, M-resnet, M-F7, M-F6, M-F8, M-F13, M-impl,
    M-T6, M-T7 of notebook 06. ``group`` is the score layer group of the headline numbers."""
    from .claims import Claim, verdict

    out = [Claim("M-F1", "weight distance vs edge distance on one tree", "Pearson rho = 0.99", f"rho = {rho:.2f}",
                 "reproduced: rho >= 0.9; partly: rho >= 0.5", verdict(rho >= 0.9, rho >= 0.5), figure)]
    out.append(Claim(
        "M-F2", "kurtosis rises during pre-training, falls during fine-tuning", "almost monotonic",
        f"pre-training: {pre_rise:.2f} of recorded steps rise, net change up for {net['pre_up']:.2f} of runs; "
        f"fine-tuning: {ft_fall:.2f} of steps fall, net change down for {net['ft_down']:.2f} of models",
        "reproduced: net change in the expected direction for >= 90% of runs in both phases; partly: >= 50% in both",
        verdict(min(net["pre_up"], net["ft_down"]) >= 0.9, min(net["pre_up"], net["ft_down"]) >= 0.5)))
    main = t1[t1["distance"].str.startswith("Eq. 2") | (t1["subset"] != "LoRA-V")]
    ours = {s: _acc(main, subset=s, score_layers=group) for s in dict.fromkeys(main["subset"])}
    paper = {"FT": 0.94, "LoRA-V": 1.0, "LoRA-F": 0.96, "Mixed": 0.83}
    best = {s: float(main[main["subset"] == s]["graph"].max()) for s in ours}
    close = [abs(ours[s] - paper[s]) <= 0.1 for s in ours if s in paper]
    out.append(Claim(
        "M-T1", "graph accuracy per subset (5 trees x 21 models)", "FT 0.94, LoRA-V 1.0, LoRA-F 0.96, Mixed 0.83",
        f"{group} kurtosis: " + ", ".join(f"{s} {v:.2f}" for s, v in ours.items())
        + "; best layer group: " + ", ".join(f"{s} {v:.2f}" for s, v in best.items()),
        f"reproduced: every subset within 0.1 of the paper with {group} kurtosis; partly: at least half of them",
        verdict(all(close), sum(close) >= len(close) / 2)))
    lv = t1[t1["subset"] == "LoRA-V"]
    lv_rank = _acc(lv[lv["distance"].str.startswith("Eq. 2")], score_layers=group)
    lv_l2 = float(lv[lv["distance"].str.startswith("Eq. 1")]["graph"].iloc[0]) if len(lv) else float("nan")
    out.append(Claim("M-abl-lft", "LoRA-V with the Eq. 1 distance instead of the rank distance", "0.78 (vs 1.0)",
                     f"{lv_l2:.2f} (vs {lv_rank:.2f} with the rank distance)", "reproduced: Eq. 1 lower than Eq. 2",
                     verdict(lv_l2 < lv_rank)))
    d_acc = _acc(deep, score_layers=group)
    ft_root0 = float(t1[(t1["subset"] == "FT") & (t1["score layers"] == group)]["tree root0"].iloc[0])
    out.append(Claim("M-deep", "a deeper tree of the same root", "0.79 vs 0.85 for the 3-level tree",
                     f"{d_acc:.2f} ({int(deep['models'].iloc[0])} models, {int(deep['levels'].iloc[0])} levels below the root) "
                     f"vs {ft_root0:.2f} for the FT tree of the same root",
                     "reproduced: within 0.1 of the shallow tree's accuracy and at least 0.6; partly: at least 0.5",
                     verdict(abs(d_acc - ft_root0) <= 0.1 and d_acc >= 0.6, d_acc >= 0.5)))
    r_acc = float(resnet["graph"].iloc[0])
    out.append(Claim("M-resnet", "ResNet tree, 21 models", "1.0", f"{r_acc:.2f} (kurtosis over every convolution)",
                     "reproduced: >= 0.9; partly: >= 0.7", verdict(r_acc >= 0.9, r_acc >= 0.7)))
    flip = ch.set_index("prior")["graph"]
    n_edges = int(ch["models"].iloc[0]) - 1
    wrong = round((1 - flip["generalisation (flipped)"]) * n_edges)
    out.append(Claim("M-F7", "continued pre-training chain with the flipped (generalisation) prior",
                     "all edges but one correct (Stable Diffusion 1.1-1.5)",
                     f"flipped prior: {flip['generalisation (flipped)']:.2f} ({wrong} of {n_edges} edges wrong); "
                     f"specialisation prior: {flip['specialisation']:.2f}",
                     "reproduced: at most one edge wrong with the flipped prior; partly: the flipped prior beats the unflipped",
                     verdict(wrong <= 1, flip["generalisation (flipped)"] > flip["specialisation"])))
    small = f6[f6["models"] == f6["models"].min()]["accuracy"].mean()
    out.append(Claim("M-F6", "clustering into trees vs graph size", "high accuracy even with 10 models across 5 trees",
                     f"{small:.2f} at {int(f6['models'].min())} models; {f6.groupby('models')['accuracy'].mean().min():.2f} at worst",
                     "reproduced: >= 0.9 at the smallest size; partly: >= 0.7", verdict(small >= 0.9, small >= 0.7)))
    e = ec[ec["layers"] == group].set_index("score")["falls parent->child"]
    top_score = e.idxmax()
    out.append(Claim("M-F8", "variance, skewness, kurtosis, entropy as direction scores", "only kurtosis consistently monotonic",
                     ", ".join(f"{k} {v:.2f}" for k, v in e.items()) + f" of edges fall parent->child ({group})",
                     "reproduced: kurtosis falls on >= 80% of edges, more often than any other score; partly: more often only",
                     verdict(e["kurtosis"] >= 0.8 and top_score == "kurtosis", top_score == "kurtosis")))
    lt = ec[(ec["score"] == "kurtosis") & ec["layers"].isin(["q", "k", "v", "o", "fc1", "fc2"])].set_index("layers")["falls parent->child"]
    top = lt.idxmax()
    out.append(Claim("M-F13", "layer types as kurtosis layers", "dense layers most consistent",
                     ", ".join(f"{k} {v:.2f}" for k, v in lt.items()), "reproduced: an MLP (dense) layer is the most consistent",
                     verdict(top in ("fc1", "fc2"))))
    spread = float(cs["graph"].max() - cs["graph"].min())
    in_range = cs[(cs["c"] > 0) & (cs["c"] < 5)]
    out.append(Claim("M-impl", "sensitivity to c (lambda = c mean(D))", "results unchanged for c in (0, 5)",
                     ", ".join(f"c={r.c:g}: {r.graph:.2f}" for r in cs.itertuples()),
                     "reproduced: accuracy varies by <= 0.05 for c in (0, 5); partly: <= 0.15",
                     verdict(float(in_range["graph"].max() - in_range["graph"].min()) <= 0.05,
                             float(in_range["graph"].max() - in_range["graph"].min()) <= 0.15),
                     details={"spread_all": spread}))
    ident = float(merged["identified"].mean()) if len(merged) else float("nan")
    out.append(Claim("M-T6", "parents of merged models by cosine similarity to parent cluster centres",
                     "parents identified perfectly", f"{ident:.2f} of merged models' fine-tunes get both true parents",
                     "reproduced: 1.0; partly: >= 0.8", verdict(ident == 1.0, ident >= 0.8)))
    last = rt.iloc[-1]
    out.append(Claim("M-T7", "run time of distances, clustering and MDST", "10k models: distances 5.0 min, clustering 4.4 min on CPU; MDST negligible",
                     f"{int(last['models'])} models: distances {last['distances s']:.1f} s, clustering {last['clustering s']:.1f} s, "
                     f"kurtosis {last['kurtosis s']:.1f} s, MDST {last['MDST s']:.2f} s",
                     "reproduced: MDST takes less time than distances + clustering",
                     verdict(last["MDST s"] < last["distances s"] + last["clustering s"])))
    return _with_figures(out)


def judge07(pr: pd.DataFrame, qt: pd.DataFrame, lr_table: pd.DataFrame, figure: str = "") -> list:
    """Claims M-T4 (pruning), M-T5 (quantisation), M-F16 (kurtosis vs learning rate)."""
    from .claims import Claim, verdict

    base = float(pr.loc[pr["pruned"] == 0, "graph"].iloc[0])
    at90 = float(pr.loc[np.isclose(pr["pruned"], 0.9), "graph"].iloc[0]) if np.isclose(pr["pruned"], 0.9).any() else float("nan")
    out = [Claim("M-T4", "recovery after l1 unstructured pruning of every model", "0.89 at 0%, 0.85 at 90%, 0.80 at 95%, 0.68 at 99%",
                 ", ".join(f"{r.pruned:.0%}: {r.graph:.2f}" for r in pr.itertuples()),
                 "reproduced: accuracy at 90% within 0.1 of 0%; partly: within 0.2", verdict(base - at90 <= 0.1, base - at90 <= 0.2), figure)]
    m = qt.groupby("quantisation")["graph"].agg(["mean", "std"])
    drop = float(m.loc["none", "mean"] - m.drop(index="none")["mean"].min())
    out.append(Claim("M-T5", "half the models quantised (fp16, int8 per-tensor), 10 repeats", "fp16 0.883, int8 0.883 (vs 0.89)",
                     ", ".join(f"{k} {r['mean']:.3f} ± {0 if np.isnan(r['std']) else r['std']:.3f}" for k, r in m.iterrows()),
                     "reproduced: both within 0.05 of unquantised; partly: within 0.1", verdict(drop <= 0.05, drop <= 0.1)))
    mono = lr_table.set_index("lr")
    out.append(Claim("M-F16", "kurtosis during fine-tuning at each learning rate", "monotonic for models that converge",
                     ", ".join(f"lr {lr:g}: {r['falls']:.2f} of steps fall, net {r['net change']:+.2%}" for lr, r in mono.iterrows()),
                     "reproduced: >= 70% of steps fall at every lr; partly: at the largest lr",
                     verdict(bool((mono["falls"] >= 0.7).all()), bool(mono["falls"].iloc[-1] >= 0.7))))
    return _with_figures(out)


def lr_table(tr: pd.DataFrame) -> pd.DataFrame:
    """Fig. 16 in numbers: per learning rate, the share of falling trace steps and the mean net
    relative change of kurtosis over fine-tuning."""
    rows = []
    for lr, g in tr.groupby("lr"):
        net = g.sort_values("step").groupby("model_id")["kurtosis"].agg(lambda s: s.iloc[-1] / s.iloc[0] - 1)
        rows.append({"lr": lr, "models": g["model_id"].nunique(), "falls": monotonic_fraction(g, rising=False),
                     "net change": float(net.mean())})
    return pd.DataFrame(rows)


def net_direction(tr: pd.DataFrame, rising: bool) -> float:
    """Share of runs whose kurtosis ends above (``rising``) or below its start."""
    net = tr.sort_values("step").groupby("model_id")["kurtosis"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    return float(((net > 0) if rising else (net < 0)).mean())
