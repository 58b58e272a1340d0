"""Unsupervised uses of the aligned representation (ProbeX paper, Sec. 6.2.2, Table 3, Figs. 7, 8, 25-27).

All on the models of held-out classes, which the aligned expert never saw:

* :func:`knn_occ` — kNN classification (leave-one-out, mean distance to the k nearest models
  of each class) and one-class classification (each class in turn normal, mean ROC AUC) for
  three representations: raw weights (the chosen layer's flattened B·A), StatNN statistics
  (every layer) and the aligned ProbeX embedding.
* :func:`retrieve` — for seeded query models, the nearest other models by cosine similarity,
  with :func:`training_images` to show each model by the images it was trained on.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from . import aligned, data
from .zeroshot import LoraSet


def representations(ls: LoraSet, model: aligned.Aligned, layer: str, split: str = "holdout") -> dict[str, np.ndarray]:
    """{name: (n_split, d)} for the models of ``split``: "raw weights", "StatNN", "ProbeX"."""
    i = ls.idx(split)
    x = ls.sel(split, [layer])
    with torch.no_grad():
        emb = model(x).numpy()
    stats = aligned.statnn_matrix([t[i] for t in ls.xs]).numpy()
    stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-12)  # statistics differ in scale by orders of magnitude
    return {"raw weights": x[0].flatten(1).numpy(), "StatNN": stats, "ProbeX": emb}


def knn_occ(ls: LoraSet, model: aligned.Aligned, layer: str, ks: Sequence[int], variant: str = "") -> pd.DataFrame:
    """Table 3: kNN accuracy and OCC mean ROC AUC on the held-out models for each representation
    and k, with chance (1 / number of held-out classes for kNN, 0.5 for AUC)."""
    reps = representations(ls, model, layer)
    labels = ls.cls[ls.idx("holdout")]
    table = aligned.knn_occ_table(reps, labels, ks)
    table.insert(0, "variant", variant)
    table["knn_chance"] = 1 / len(np.unique(labels))
    table["n"] = len(labels)
    return table


def retrieve(z: np.ndarray, queries: Sequence[int], top: int) -> list[list[tuple[int, float]]]:
    """For each query row of z (n, d), the ``top`` other rows by cosine similarity: (index, score)."""
    zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    out = []
    for q in queries:
        s = zn @ zn[q]
        s[q] = -np.inf
        order = np.argsort(-s, kind="stable")[:top]
        out.append([(int(j), float(s[j])) for j in order])
    return out


def retrieval_table(ls: LoraSet, model: aligned.Aligned, layer: str, n_queries: int, top: int, seed: int = 0,
                    gallery_splits: Sequence[str] = ("test", "holdout")) -> pd.DataFrame:
    """Seeded query models of held-out classes and their ``top`` nearest models among every model
    of ``gallery_splits`` (query excluded). One row per (query, rank); rank 0 is the query."""
    idx = np.concatenate([ls.idx(s) for s in gallery_splits])
    with torch.no_grad():
        z = model([ls.xs[ls.layer_index(layer)][idx]]).numpy()
    held_pos = np.flatnonzero(np.isin(idx, ls.idx("holdout")))
    rng = np.random.default_rng(seed)
    queries = sorted(rng.choice(held_pos, min(n_queries, len(held_pos)), replace=False).tolist())
    rows = []
    for q, hits in zip(queries, retrieve(z, queries, top)):
        qi = idx[q]
        for rank, (j, score) in enumerate([(q, 1.0), *hits]):
            mi = idx[j]
            rows.append({"query": ls.manifest["model_id"].iloc[qi], "rank": rank, "model_id": ls.manifest["model_id"].iloc[mi],
                         "class_name": ls.names[int(ls.cls[mi])], "split": ls.manifest["split"].iloc[mi], "score": score,
                         "same_class": bool(ls.cls[mi] == ls.cls[qi])})
    return pd.DataFrame(rows)


def precision_at_k(ls: LoraSet, model: aligned.Aligned, layer: str, k: int,
                   gallery_splits: Sequence[str] = ("test", "holdout")) -> dict:
    """Every held-out model as a query: the fraction of its k nearest models (gallery as in
    :func:`retrieval_table`) of its own class, against the fraction expected at random."""
    idx = np.concatenate([ls.idx(s) for s in gallery_splits])
    with torch.no_grad():
        z = model([ls.xs[ls.layer_index(layer)][idx]]).numpy()
    cls = ls.cls[idx]
    queries = np.flatnonzero(np.isin(idx, ls.idx("holdout")))
    hits = retrieve(z, queries, k)
    prec = [np.mean([cls[j] == cls[q] for j, _ in h]) for q, h in zip(queries, hits)]
    chance = [(np.sum(cls == cls[q]) - 1) / (len(cls) - 1) for q in queries]
    se = float(np.std(prec, ddof=1) / np.sqrt(len(prec))) if len(prec) > 1 else float("nan")
    return {"k": k, "precision": float(np.mean(prec)), "chance": float(np.mean(chance)), "n_queries": len(queries), "se": se}


def training_images(row: pd.Series, n: int | None = None) -> np.ndarray:
    """(n_images, s, s, 3) uint8 images a LoRA of our zoo was trained on (from its metadata:
    data, class_id, image_ids). Public Model-J files do not record them: an error."""
    for key in ("data", "class_id", "image_ids"):
        if key not in row or row[key] is None:
            raise KeyError(f"{row.get('path', row.get('model_id'))}: metadata has no {key!r}; training images unknown")
    d = row["data"]
    pool = data.load_images(d["source"], "train", d["n_train"], d["seed"])
    ids = np.asarray(row["image_ids"])[:n]
    return pool.subset([int(row["class_id"])]).images[ids]


def t3_numbers(t3: pd.DataFrame) -> tuple[dict, str]:
    """The numbers of P-T3's rule from a Table 3 (per k, per representation), and their words."""
    mean = t3.groupby("representation")[["knn_acc", "occ_auc"]].mean()
    per = {m: {int(k): dict(zip(g["representation"], g[m].astype(float))) for k, g in t3.groupby("k")} for m in ("knn_acc", "occ_auc")}
    numbers = {"knn": per["knn_acc"], "occ": per["occ_auc"], "knn_chance": float(t3["knn_chance"].iloc[0]),
               "n": int(t3["n"].iloc[0]) if "n" in t3 else float("nan")}
    ours = ("mean over k " + "; ".join(f"{r}: kNN {m.knn_acc:.3f}, OCC AUC {m.occ_auc:.3f}" for r, m in mean.iterrows())
            + f" (kNN chance {t3['knn_chance'].iloc[0]:.3f}, k in {sorted(t3['k'].unique().tolist())})")
    return numbers, ours


def judge(t3: pd.DataFrame, prec: dict, figure: str = "") -> list:
    """Claims P-T3 (ProbeX best for kNN and OCC) and P-F7 (retrieval finds models of the query's
    class): numbers here, verdicts from :mod:`verdicts`."""
    from . import verdicts

    out = [verdicts.judge("P-T3", *t3_numbers(t3), figure, {"table3": t3.to_dict(orient="list")})]
    out.append(verdicts.judge(
        "P-F7", {"precision": prec["precision"], "chance": prec["chance"], "n": prec["n_queries"], "se": prec.get("se", float("nan"))},
        f"precision@{prec['k']} {prec['precision']:.3f}±{prec.get('se', float('nan')):.3f} over {prec['n_queries']} held-out "
        f"queries (random {prec['chance']:.3f})", figure, {"precision": prec}))
    return out
