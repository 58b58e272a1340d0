"""Notebook 09: calibrate the lineage tools on one view, measure them on a held-out one.

Every function takes a view folder (:mod:`probex_lib.lineage_data`) and reads it the way
``probex-recover`` reads a user's folder (:func:`probex_lib.recover.recover`), so the numbers
are those of the shipped code path. Returns plain numbers and tables; verdicts are
:mod:`probex_lib.verdicts`' (K-type, K-conf, K-pair1, K-pair2).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from . import atomic, derived, lineage, paths, recover, verdicts, zoo
from .claims import Claim
from .lineage import EDGE_TYPES
from .lineage_data import LineageConfig, read_truth

ROOT = "root"  # the predicted "type" of a model the recovery made a root


def recover_view(view: str | Path, cfg: LineageConfig, calibration: str | Path | None = None) -> recover.ModelGraph:
    """The lineage graph of a view, as ``probex-recover`` computes it (one architecture group)."""
    (g,) = recover.recover(view, score_layers=cfg.score_layers, calibration=calibration)
    return g


def edge_table(g: recover.ModelGraph, view: str | Path) -> pd.DataFrame:
    """One row per model that truly has a parent: true and predicted parents and type, whether the
    recovered parents are right (the set of parents for a merge), how it was placed, its confidence
    and MoTHer's edge features (for the calibration)."""
    truth, types = read_truth(view)
    index = {m: i for i, m in enumerate(g.model_ids)}
    unknown = sorted(set(truth) ^ set(index))
    if unknown:
        raise ValueError(f"{view}: truth.json and the recovered models differ at {unknown[:5]}")
    lin_feats = g.features
    rows = []
    for m, true_parents in truth.items():
        if not true_parents:
            continue
        i = index[m]
        pred = [g.model_ids[p] for p in g.parents[i]]
        right = set(pred) == set(true_parents) if len(true_parents) > 1 else bool(pred) and pred[0] == true_parents[0]
        rows.append({"model": m, "true_type": types[m], "pred_type": g.edge_type[i] or ROOT, "true_parents": true_parents,
                     "pred_parents": pred, "right": bool(right), "confidence": float(g.confidence[i]),
                     "placed_by": g.placed_by[i] if g.placed_by else "mother",
                     **({} if lin_feats is None else dict(zip(lineage.CONFIDENCE_FEATURES, lin_feats[i])))})
    return pd.DataFrame(rows)


def calibrate(table: pd.DataFrame, pairs: pd.DataFrame, null: np.ndarray, fitted_on: str) -> lineage.Calibrator:
    """Fit the edge confidence on one view's edge table (MoTHer edges: features; others: per type) and
    the pairwise score's weights on its pair table (:func:`pair_feature_table`: ancestor pairs at 1
    and 2 hops against same-tree pairs not in one lineage), against ``null`` (:func:`null_features`).
    ``fitted_on`` is kept relative to the data folder when inside it (the committed resource names no machine's path)."""
    try:
        fitted_on = str(Path(fitted_on).resolve().relative_to(paths.data_dir().resolve()))
    except ValueError:
        pass
    mother_rows = table[table["placed_by"] == "mother"]
    typed = [(t if b != "merge-child" else b, r) for t, r, b in zip(table["pred_type"], table["right"], table["placed_by"])
             if b in ("artefact", "merge", "merge-child")]
    cal = lineage.fit_calibrator(mother_rows[list(lineage.CONFIDENCE_FEATURES)].to_numpy(), mother_rows["right"].to_numpy(),
                                 typed, fitted_on)
    f = lambda kinds: pairs[pairs["kind"].isin(kinds)][list(PAIR_FEATURES)].to_numpy()  # noqa: E731
    return replace(cal, pair_weights=lineage.fit_pair_weights(f(("1-hop", "2-hop")), f(("hard",)), null))


def save_calibration(cal: lineage.Calibrator, profile: str) -> Path:
    """Write the calibration to ``data/lineage/<profile>/edge_confidence.json``; a ``default`` run
    also writes the one ``probex-recover`` and ``probex-describe`` ship with
    (``probex_lib/resources/edge_confidence.json``, committed). Returns the data copy."""
    out = atomic.write_json(paths.data_dir() / "lineage" / profile / "edge_confidence.json", cal.to_json())
    if profile == "default":
        atomic.write_json(recover.CALIBRATION, cal.to_json())
    return out


def confidence_numbers(table: pd.DataFrame) -> dict:
    """ECE, the AUC of confidence for "edge right", and the reliability points, over every non-root
    model's edge(s) (a model the recovery made a root has no edge and no confidence: left out)."""
    t = table[table["pred_type"] != ROOT]
    conf, right = t["confidence"].to_numpy(), t["right"].to_numpy()
    auc = float(roc_auc_score(right, conf)) if 0 < right.sum() < len(right) else float("nan")
    return {"ece": lineage.expected_calibration_error(conf, right), "auc": auc, "n_right": int(right.sum()),
            "n_wrong": int((~right).sum()), "accuracy": float(right.mean()), "mean_confidence": float(conf.mean()),
            "reliability": lineage.reliability_table(conf, right)}


def type_numbers(table: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Edge-type accuracy, per-type recall, the majority-type rate, and the confusion matrix (true
    types x predicted types, a model made a root predicted as "root")."""
    true, pred = table["true_type"], table["pred_type"]
    present = [t for t in EDGE_TYPES if (true == t).any()]
    confusion = pd.crosstab(true, pred).reindex(index=present, columns=[*EDGE_TYPES, ROOT], fill_value=0)
    recall = {t: float((pred[true == t] == t).mean()) for t in present}
    return {"accuracy": float((true == pred).mean()), "n": int(len(table)), "majority": float(true.value_counts(normalize=True).max()),
            "recall": recall}, confusion


# --------------------------------------------------------------------------- pairwise test


def _layers(view: Path, ids: Sequence[str], keys: Sequence[str]) -> dict[str, list[np.ndarray]]:
    return {m: [t.numpy() for t in zoo.load_tensors(view / f"{m}.safetensors", keys).values()] for m in ids}


def pair_kinds(truth: dict[str, list[str]], types: dict[str, str], tree_of: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Pairs of trained models (no derived artefacts, no merges): "1-hop" and "2-hop" ancestor ->
    descendant; "hard": same tree, not in one lineage (siblings, cousins, uncle-nephew); "easy":
    different trees."""
    trained = sorted(m for m in truth if types[m] in ("", "fine-tune", "lora") and len(truth[m]) <= 1)
    anc = {}
    for m in trained:
        chain, p = [], truth[m]
        while p:
            chain.append(p[0])
            p = truth.get(p[0], [])
        anc[m] = chain
    kinds: dict[str, list] = {"1-hop": [], "2-hop": [], "hard": [], "easy": []}
    for a, b in itertools.combinations(trained, 2):
        if a in anc[b] or b in anc[a]:
            hops = anc[b].index(a) + 1 if a in anc[b] else anc[a].index(b) + 1
            if hops <= 2:
                kinds[f"{hops}-hop"].append((a, b) if a in anc[b] else (b, a))
        elif tree_of[a] == tree_of[b]:
            kinds["hard"].append((a, b))
        else:
            kinds["easy"].append((a, b))
    return kinds


def tree_of_truth(truth: dict[str, list[str]]) -> dict[str, str]:
    """The root each model descends from along first parents."""
    out = {}
    for m in truth:
        r = m
        while truth.get(r):
            r = truth[r][0]
        out[m] = r
    return out


def null_features(view: str | Path, cfg: LineageConfig) -> np.ndarray:
    """Pair features (k, 2) of ``cfg.null_pairs`` unrelated pairs of a view (trained models of different trees)."""
    t = pair_feature_table(view, replace(cfg, max_pairs=cfg.null_pairs), ("easy",))
    return t[list(PAIR_FEATURES)].to_numpy()


def _two_d_keys(view: Path, model: str) -> list[str]:
    """The layers pairs are compared on: those ``probex-lineage`` picks (:func:`derived.layer_subset`)."""
    header, _ = zoo.read_header(view / f"{model}.safetensors")
    return derived.layer_subset([k for k, info in header.items() if len(info["shape"]) >= 2])


def _subsample(pairs: list, k: int, seed: int) -> list:
    if len(pairs) <= k:
        return pairs
    rng = np.random.default_rng(seed)
    return [pairs[i] for i in sorted(rng.choice(len(pairs), k, replace=False))]


PAIR_FEATURES = ("log_distance", "log_eff_rank")


def pair_feature_table(view: str | Path, cfg: LineageConfig, kinds: Sequence[str] = ("1-hop", "2-hop", "hard", "easy")) -> pd.DataFrame:
    """Pair features (:func:`lineage.pair_features`) of up to ``cfg.max_pairs`` pairs of each kind of
    :func:`pair_kinds` in a view: kind, a, b, log_distance, log_eff_rank."""
    view = Path(view)
    truth, types = read_truth(view)
    all_kinds = pair_kinds(truth, types, tree_of_truth(truth))
    chosen = {k: _subsample(all_kinds[k], cfg.max_pairs, cfg.seed) for k in kinds}
    layers = _layers(view, sorted({m for v in chosen.values() for p in v for m in p}), _two_d_keys(view, next(iter(truth))))
    rows = [{"kind": k, "a": a, "b": b, **dict(zip(PAIR_FEATURES, lineage.pair_features(layers[a], layers[b])))}
            for k, pairs in chosen.items() for a, b in tqdm(pairs, desc=f"pairs: {k}", leave=False)]
    return pd.DataFrame(rows)


def pair_numbers(pairs: pd.DataFrame, null: np.ndarray, weights: Sequence[float]) -> tuple[dict, pd.DataFrame]:
    """ROC AUCs of the pair score (weights: the calibration's), per positive kind (1-hop, 2-hop) against
    hard and easy negatives, and the share called "derived" (z >= 3 against ``null``) per kind.
    Returns (numbers, the pair table with score, z and derived)."""
    feats = pairs[list(PAIR_FEATURES)].to_numpy()
    null_scores = lineage.pair_score(null, null, weights)
    table = pairs.assign(score=lineage.pair_score(feats, null, weights))
    table["z"] = (table["score"] - null_scores.mean()) / (null_scores.std() or 1.0)
    table["derived"] = table["z"] >= lineage.DERIVED_Z
    out = {}
    for pos in ("1-hop", "2-hop"):
        p = table[table["kind"] == pos]["score"]
        res = {"n_pos": len(p)}
        for neg in ("hard", "easy"):
            q = table[table["kind"] == neg]["score"]
            y = np.r_[np.ones(len(p)), np.zeros(len(q))]
            res[f"auc_{neg}"] = float(roc_auc_score(y, np.r_[p, q])) if len(p) and len(q) else float("nan")
            res[f"n_{neg}"] = len(q)
        out[pos] = res
    out["derived_share"] = table.groupby("kind")["derived"].mean().to_dict()
    out["weights"] = list(weights)
    return out, table


def pair_summary(pairs: dict) -> pd.DataFrame:
    """One row per positive kind: AUCs against hard and easy negatives, counts, and the share of
    each kind's pairs called "derived" (z >= 3 against the null)."""
    rows = [{"positives": k, **pairs[k], "derived share": pairs["derived_share"].get(k, float("nan"))} for k in ("1-hop", "2-hop")]
    rows += [{"positives": f"({k} negatives)", "derived share": pairs["derived_share"].get(k, float("nan"))} for k in ("hard", "easy")]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- claims


def judge09(conf: dict, types: dict, pairs: dict, figures: dict[str, str]) -> list[Claim]:
    """The kit's lineage claims (rules in :mod:`probex_lib.verdicts`: K-type, K-conf, K-pair1, K-pair2)."""
    out = [verdicts.judge("K-type", types, f"accuracy {types['accuracy']:.3f} over {types['n']} edges (majority type "
                          f"{types['majority']:.3f}); lowest recall {min(types['recall'].values()):.2f} "
                          f"({min(types['recall'], key=types['recall'].get)})", figures["types"]),
           verdicts.judge("K-conf", {k: conf[k] for k in ("ece", "auc", "n_right", "n_wrong")},
                          f"ECE {conf['ece']:.3f}, AUC {conf['auc']:.3f} over {conf['n_right'] + conf['n_wrong']} edges "
                          f"({conf['accuracy']:.2f} right)", figures["reliability"], {"reliability": conf["reliability"]})]
    for cid, pos in (("K-pair1", "1-hop"), ("K-pair2", "2-hop")):
        p = pairs[pos]
        out.append(verdicts.judge(cid, p, f"AUC {p['auc_hard']:.3f} vs hard ({p['n_hard']} pairs), {p['auc_easy']:.3f} vs easy; "
                                  f"{p['n_pos']} {pos} pairs", figures["pairs"]))
    return out
