"""Training-class prediction per Model Tree (ProbeX paper, Sec. 6.1, Table 1; App. E ablations).

One tree's models at one layer become a :class:`LayerData` (weights loaded once, kept in
memory for all epochs); :func:`fit_expert` trains ProbeX or the Dense expert on it and
reports test accuracy (mean binary accuracy over all labels) of the best validation epoch;
:func:`layer_sweep` does that for every layer; :func:`fit_statnn_tree` is the StatNN
baseline on the statistics of every tensor of the model; :func:`route_models` is the
mixture-of-experts router over a whole zoo; :func:`save_tree_experts` writes each tree's
Table 1 ProbeX with its router entry (:mod:`probex_lib.expert_store`).
"""
from __future__ import annotations

import difflib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import baselines, expert_store, paths, profiles, zoo
from .probex import DenseExpert, ProbeX, fit, n_parameters

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LayerData:
    """x: (n, d_W, d_H) float32 weights of one layer; y: (n, n_labels) 0/1; split: (n,) names."""

    x: torch.Tensor
    y: torch.Tensor
    split: np.ndarray
    labels: tuple
    layer: str

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.flatnonzero(self.split == name))
        return self.x[idx], self.y[idx]


def label_matrix(manifest: pd.DataFrame, key: str = "classes", labels: Sequence | None = None) -> tuple[np.ndarray, tuple]:
    """(n, n_labels) multi-hot of the per-model label lists in column ``key`` (labels: the
    sorted union unless given); a single string or integer label counts as a one-element list.
    A model without the key is an error naming it."""
    if key not in manifest.columns:
        raise zoo.ZooError(f"no model has metadata {key!r}; available keys: {sorted(manifest.columns)[:20]}")
    values = manifest[key].map(lambda v: [v] if isinstance(v, (str, int, np.integer)) and not isinstance(v, bool) else v)
    missing = manifest[values.map(lambda v: not isinstance(v, (list, tuple)))]
    if len(missing):
        raise zoo.ZooError(f"{missing['path'].iloc[0]}: metadata {key!r} missing or not a list "
                           f"({len(missing)} of {len(manifest)} models)")
    labels = tuple(labels) if labels is not None else tuple(sorted({v for vs in values for v in vs}, key=str))
    return zoo.multi_hot([[str(v) for v in vs] for vs in values], [str(v) for v in labels]), labels


def layer_data(manifest: pd.DataFrame, layer: str, key: str = "classes", labels: Sequence | None = None) -> LayerData:
    """One tree's models (rows of ``manifest``, with a ``split`` column) at ``layer``."""
    if "split" not in manifest.columns:
        raise zoo.ZooError("the manifest has no 'split' column (train / val / test per model)")
    bad = sorted(set(manifest["split"]) - set(SPLITS))
    if bad:
        raise zoo.ZooError(f"unknown split name(s) {bad}; expected {list(SPLITS)}")
    y, labels = label_matrix(manifest, key, labels)
    x = zoo.matrix_view(zoo.load_layer(manifest["path"].tolist(), layer))
    return LayerData(x, torch.from_numpy(y), manifest["split"].to_numpy(), labels, layer)


def assign_split(manifest: pd.DataFrame, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> pd.DataFrame:
    """The manifest with a seeded train/val/test ``split`` column when it has none (kept if present)."""
    return manifest if "split" in manifest.columns else manifest.assign(split=zoo.split_labels(len(manifest), fractions, seed))


def train_probex(folder: str, layer: str, key: str = "classes", epochs: int = 500, seed: int = 0,
                 r_u: int = 128, r_v: int = 128, r_t: int = 128) -> dict:
    """ProbeX on one layer of a folder of models of one tree (our zoo, a Model-J tree, or plain
    safetensors files with metadata), predicting the per-model label list (or single label)
    ``key``. Models without a split get a seeded 70/10/20 one. Returns :func:`fit_expert`'s
    dict plus ``labels`` (the order of the outputs)."""
    manifest = assign_split(zoo.open_zoo(folder), seed)
    check_layer(manifest["path"].iloc[0], layer)
    d = layer_data(manifest, layer, key)
    return {**fit_expert("probex", d, epochs, seed, r_u=r_u, r_v=r_v, r_t=r_t), "labels": d.labels}


def candidate_layers(path: str, exclude: Sequence[str] = ("classifier",)) -> list[str]:
    """Weight tensors of at least 2 dimensions (what ProbeX reads), excluding the new heads."""
    header, _ = zoo.read_header(path)
    return [k for k, v in header.items() if len(v["shape"]) >= 2 and not k.startswith(tuple(exclude))]


def check_layer(path: str, layer: str) -> None:
    """A clear error (with close names) when ``layer`` is not in the model file."""
    names = zoo.tensor_names(path)
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=4, cutoff=0.4)
        raise zoo.ZooError(f"{path}: no layer {layer!r}; close names: {close}")


def build_expert(kind: str, d: LayerData, r_u: int = 128, r_v: int = 128, r_t: int = 128, activation: str = "relu",
                 depth: int = 1) -> torch.nn.Module:
    d_w, d_h = d.x.shape[1:]
    if kind == "probex":
        return ProbeX(d_w, d_h, d.y.shape[1], r_u, r_v, r_t, activation, depth)
    if kind == "dense":
        return DenseExpert(d_w, d_h, d.y.shape[1])
    raise ValueError(f"unknown expert {kind!r}; valid: ['probex', 'dense']")


def fit_expert(kind: str, d: LayerData, epochs: int, seed: int = 0, n_train: int | None = None, **arch) -> dict:
    """Train one expert; returns val/test accuracy of the best validation epoch, the test
    accuracy's standard error over test models (``test_se``), parameters, best epoch, seconds
    and the fitted model. ``n_train`` keeps a seeded subset of training models."""
    xtr, ytr = d.part("train")
    if n_train is not None:
        keep = torch.as_tensor(np.sort(np.random.default_rng(seed).permutation(len(xtr))[:n_train]))
        xtr, ytr = xtr[keep], ytr[keep]
    xva, yva = d.part("val")
    xte, yte = d.part("test")
    if min(len(xtr), len(xva), len(xte)) == 0:
        raise zoo.ZooError(f"layer {d.layer}: empty split (train {len(xtr)}, val {len(xva)}, test {len(xte)} models)")
    torch.manual_seed(seed)
    model = build_expert(kind, d, **arch)
    t0 = time.perf_counter()
    res = fit(model, xtr, ytr, xva, yva, epochs=epochs, seed=seed)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        per_model = ((res.model(xte) > 0) == (yte > 0.5)).float().mean(1)  # (n_test,) accuracy of each test model
    test = float(per_model.mean())
    test_se = float(per_model.std() / len(per_model) ** 0.5) if len(per_model) > 1 else float("nan")
    return {"expert": kind, "layer": d.layer, "val": res.best_val, "test": test, "test_se": test_se, "best_epoch": res.best_epoch,
            "parameters": n_parameters(model), "seconds": seconds, "n_train": len(xtr), "model": res.model}


def layer_sweep(manifest: pd.DataFrame, layers: Sequence[str], epochs: int, seed: int = 0, key: str = "classes",
                labels: Sequence | None = None, **arch) -> pd.DataFrame:
    """ProbeX on every layer of one tree: val and test accuracy per layer (best epoch each)."""
    rows = []
    for layer in tqdm(layers, desc=f"layers of {manifest['tree'].iloc[0]}", leave=False):
        r = fit_expert("probex", layer_data(manifest, layer, key, labels), epochs, seed, **arch)
        rows.append({k: v for k, v in r.items() if k != "model"})
    return pd.DataFrame(rows)


def fit_statnn_tree(manifest: pd.DataFrame, key: str = "classes", labels: Sequence | None = None,
                    seed: int = 0, max_iter: int = 100) -> dict:
    """StatNN on 7 statistics of every weight and bias tensor (``max_iter`` boosting rounds per
    label); val and test accuracy and size (boosting nodes)."""
    names = zoo.tensor_names(manifest["path"].iloc[0])
    tensors = [zoo.load_layer(manifest["path"].tolist(), k).numpy() for k in names]
    x = baselines.statnn_features(tensors)
    y, _ = label_matrix(manifest, key, labels)
    split = manifest["split"].to_numpy()
    t0 = time.perf_counter()
    model = baselines.fit_statnn(x[split == "train"], y[split == "train"], seed=seed, max_iter=max_iter)
    seconds = time.perf_counter() - t0

    def per_model(part: str) -> np.ndarray:
        return ((model.predict_proba(x[split == part]) > 0.5) == (y[split == part] > 0.5)).mean(1)

    test = per_model("test")
    test_se = float(test.std() / len(test) ** 0.5) if len(test) > 1 else float("nan")
    return {"expert": "statnn", "layer": "all tensors", "val": float(per_model("val").mean()), "test": float(test.mean()),
            "test_se": test_se, "parameters": model.n_parameters, "seconds": seconds}


# --------------------------------------------------------------------------- mixture of tree experts


def architecture_groups(manifest: pd.DataFrame) -> pd.Series:
    """An architecture signature per model (tensor names and shapes): models of different
    architectures can never share a tree, so routing clusters within each group."""
    def signature(path: str) -> str:
        header, _ = zoo.read_header(path)
        return str(hash(tuple((k, tuple(v["shape"])) for k, v in header.items() if not k.startswith("classifier"))))

    return manifest["path"].map(signature)


def route_models(manifest: pd.DataFrame, layer: str = "", patterns: Sequence[str] = (),
                 n_trees: int | None = None) -> pd.DataFrame:
    """Cluster the training models into trees and route every model to its nearest cluster.

    Models are first grouped by architecture (tensor names and shapes), then clustered on one
    layer's flattened weights: ``layer`` if the group's models have it, else the group's first
    candidate layer matching ``patterns``. The number of trees per group comes from the
    dendrogram unless given. Returns model_id, tree (truth), split, cluster (global id), layer.
    """
    groups = architecture_groups(manifest)
    rows, offset = [], 0
    for g in sorted(groups.unique()):
        sub = manifest[groups == g]
        first = sub["path"].iloc[0]
        use = layer if layer and layer in zoo.tensor_names(first) else swept_layers(first, patterns)[0]
        x = zoo.load_layer(sub["path"].tolist(), use).reshape(len(sub), -1).double().numpy()
        train = (sub["split"] == "train").to_numpy()
        if train.sum() < 2:
            clusters = np.zeros(len(sub), dtype=int)
        else:
            router, _ = baselines.fit_router(x[train], n_trees)
            clusters = router.route(x)
        rows.append(pd.DataFrame({"model_id": sub["model_id"].to_numpy(), "tree": sub["tree"].to_numpy(),
                                  "split": sub["split"].to_numpy(), "cluster": clusters + offset, "layer": use}))
        offset += int(clusters.max()) + 1
    return pd.concat(rows, ignore_index=True)


def strict_routing(routed: pd.DataFrame) -> pd.Series:
    """Per model: routed right under a one-tree-one-cluster reading. Each tree owns the majority
    cluster of its training models; a model is right only if it lands in its tree's cluster and
    that cluster belongs to no other tree (so a tree split over clusters, or two trees merged in
    one cluster, counts as errors rather than being matched away). Boolean Series."""
    train = routed[routed["split"] == "train"]
    own = train.groupby("tree")["cluster"].agg(lambda s: s.value_counts().index[0])
    claimed = own.value_counts()
    home = routed["tree"].map(own)
    return (routed["cluster"] == home) & home.map(lambda c: claimed.get(c, 0) == 1)


def cluster_to_tree(routed: pd.DataFrame) -> dict[int, str]:
    """Each cluster's tree: the majority tree of its training models (what the MoE would use)."""
    train = routed[routed["split"] == "train"]
    return train.groupby("cluster")["tree"].agg(lambda s: s.value_counts().index[0]).to_dict()


# --------------------------------------------------------------------------- Table 1, router, ablations


def swept_layers(path: str, patterns: Sequence[str] = ()) -> list[str]:
    """The candidate layers whose name contains one of ``patterns`` (empty: every candidate)."""
    layers = candidate_layers(path)
    chosen = [k for k in layers if not patterns or any(p in k for p in patterns)]
    if not chosen:
        raise zoo.ZooError(f"{path}: no layer matches sweep_filter {list(patterns)}; layers: {layers[:8]} ...")
    return chosen


def tree_experts(manifest: pd.DataFrame, cfg, key: str = "classes") -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Table 1 on every tree of ``manifest`` (columns path, tree, split, ``key``).

    Per tree: ProbeX on every swept layer (``cfg``: a ``profiles.ProbeXConfig``), the best layer
    and epoch by validation; the Dense expert on that layer; StatNN on all tensors. Labels are
    the union of ``key`` over the whole zoo, so every tree predicts the same label vector.
    Returns (table: tree, expert, layer, val, test, parameters, seconds; the sweep; the best
    ProbeX per tree as {tree: fit result}).
    """
    _, labels = label_matrix(manifest, key)
    arch = dict(r_u=cfg.r_u, r_v=cfg.r_v, r_t=cfg.r_t)
    trees = list(cfg.trees) or sorted(manifest["tree"].unique())
    unknown = sorted(set(trees) - set(manifest["tree"]))
    if unknown:
        raise zoo.ZooError(f"unknown tree(s) {unknown}; the zoo has {sorted(manifest['tree'].unique())}")
    rows, sweeps, best = [], [], {}
    for tree in tqdm(trees, desc="trees"):
        sub = manifest[manifest["tree"] == tree].reset_index(drop=True)
        layers = swept_layers(sub["path"].iloc[0], cfg.sweep_filter)
        fits = []
        for layer in tqdm(layers, desc=f"layers of {tree}", leave=False):
            fits.append(fit_expert("probex", layer_data(sub, layer, key, labels), cfg.epochs, cfg.seed, **arch))
        sweeps.append(pd.DataFrame([{k: v for k, v in f.items() if k != "model"} for f in fits]).assign(tree=tree))
        top = max(fits, key=lambda f: f["val"])
        best[tree] = top
        dense = fit_expert("dense", layer_data(sub, top["layer"], key, labels), cfg.epochs, cfg.seed)
        stat = fit_statnn_tree(sub, key, labels, cfg.seed, cfg.statnn_iter)
        for r in (stat, dense, top):
            rows.append({"tree": tree, **{k: r.get(k, np.nan) for k in ("expert", "layer", "val", "test", "test_se",
                                                                          "parameters", "seconds")}})
    return pd.DataFrame(rows), pd.concat(sweeps, ignore_index=True), best


def label_names(manifest: pd.DataFrame, labels: Sequence, key: str = "classes") -> list[str]:
    """Names of ``labels`` (the outputs of :func:`label_matrix`): the kit zoo stores class ids
    in ``classes`` beside their names in ``class_names``; other labels are their own names."""
    if key != "classes" or "class_names" not in manifest.columns:
        return [str(v) for v in labels]
    names: dict[str, str] = {}
    for ids, ns in zip(manifest["classes"], manifest["class_names"]):
        if isinstance(ids, (list, tuple)) and isinstance(ns, (list, tuple)) and len(ids) == len(ns):
            names.update({str(i): str(n) for i, n in zip(ids, ns)})
    return [names.get(str(v), str(v)) for v in labels]


def _zoo_root(manifest: pd.DataFrame) -> Path:
    """The folder holding every model file of ``manifest`` (our zoo's folder, not its models/)."""
    root = Path(os.path.commonpath(manifest["path"].tolist()))
    return root.parent if root.name == zoo.MODELS_SUBDIR or root.suffix == ".safetensors" else root


def expert_dir(manifest: pd.DataFrame, cfg, profile: str, key: str = "classes") -> Path:
    """``data/experts/<profile>/<zoo folder>-<hash>``: the hash covers the models (id, split),
    the label key and the settings that shape a tree's ProbeX, so other settings get other folders."""
    root = _zoo_root(manifest)
    ids = manifest.get("model_id", manifest["path"]).astype(str)
    settings = {"models": sorted(zip(ids, manifest["split"])), "key": key,
                **{k: getattr(cfg, k) for k in ("epochs", "r_u", "r_v", "r_t", "sweep_filter", "seed")}}
    return paths.data_dir() / "experts" / profile / f"{root.name}-{profiles.settings_hash(settings)}"


def save_tree_experts(best: dict, manifest: pd.DataFrame, cfg, profile: str, key: str = "classes") -> list[Path]:
    """Save every tree's Table 1 ProbeX (``best`` of :func:`tree_experts`: the layer chosen on
    validation) with its router entry (centroid and spread of the training models at that
    layer, :func:`expert_store.router_stats`) to ``expert_dir(...)/<tree>.safetensors``; read
    them back with :func:`expert_store.load_tree_expert`. Returns the files."""
    _, labels = label_matrix(manifest, key)
    names = label_names(manifest, labels, key)
    folder = expert_dir(manifest, cfg, profile, key)
    out = []
    for tree, fit_result in best.items():
        sub = manifest[(manifest["tree"] == tree) & (manifest["split"] == "train")]
        layer = fit_result["layer"]
        x = zoo.load_layer(sub["path"].tolist(), layer)  # (n_train, *layer_shape)
        centroid, spread = expert_store.router_stats(x)
        meta = {"profile": profile, "zoo": str(_zoo_root(manifest)), "label_key": key, "n_train": len(sub),
                **{k: fit_result[k] for k in ("val", "test", "test_se", "best_epoch")},
                "settings": {k: getattr(cfg, k) for k in ("epochs", "r_u", "r_v", "r_t", "seed")}}
        out.append(expert_store.save_tree_expert(
            folder / f"{tree}.safetensors", fit_result["model"], layer=layer, layer_shape=tuple(x.shape[1:]),
            labels=names, tree=tree, centroid=centroid, spread=spread, meta=meta))
    return out


def table1_wide(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as in the paper: one row per expert, test accuracy per tree, mean and parameters."""
    acc = table.pivot(index="expert", columns="tree", values="test")
    acc["mean"] = acc.mean(axis=1)
    acc["parameters (mean)"] = table.groupby("expert")["parameters"].mean().round().astype(int)
    order = [e for e in ("statnn", "dense", "probex") if e in acc.index]
    return acc.loc[order].reset_index()


def router_accuracy(manifest: pd.DataFrame, best: dict, layer: str = "", patterns: Sequence[str] = (),
                    key: str = "classes") -> tuple[pd.DataFrame, dict]:
    """Route every model (clusters of training models, nearest centre), then score the mixture.

    Returns the routed table (model_id, tree, split, cluster, routed_tree) and a summary:
    routing accuracy on all and on test models, number of clusters, and the end-to-end test
    accuracy of router + routed tree's best ProbeX next to the oracle (true tree's expert).
    """
    routed = route_models(manifest, layer, patterns)
    c2t = cluster_to_tree(routed)
    routed["routed_tree"] = routed["cluster"].map(c2t)
    test = routed["split"] == "test"
    _, labels = label_matrix(manifest, key)
    end, oracle = [], []  # per test model: accuracy of its routed tree's expert, of its own tree's expert
    by_id = routed.set_index("model_id")["routed_tree"]
    for tree, own in best.items():
        sub = manifest[(manifest["tree"] == tree) & (manifest["split"] == "test")]
        if not len(sub):
            continue
        y = torch.from_numpy(label_matrix(sub, key, labels)[0])
        to = by_id.loc[sub["model_id"]].to_numpy()
        for target in np.unique(to.astype(str)):
            rows = np.flatnonzero(to.astype(str) == target)
            paths = sub["path"].iloc[rows].tolist()
            for expert, sink in ((own, oracle), (best.get(target), end)):
                if expert is None or expert["layer"] not in zoo.tensor_names(paths[0]):
                    sink += [0.5] * len(rows)  # routed to a tree whose expert cannot read this model: a coin flip
                    continue
                x = zoo.matrix_view(zoo.load_layer(paths, expert["layer"]))
                if tuple(x.shape[1:]) != expert["model"].inner.shape:
                    sink += [0.5] * len(rows)
                    continue
                with torch.no_grad():
                    sink += ((expert["model"](x) > 0) == (y[rows] > 0.5)).float().mean(1).tolist()
    strict = strict_routing(routed)
    summary = {"routing_accuracy": float((routed["routed_tree"] == routed["tree"]).mean()),
               "routing_accuracy_test": float(strict[test].mean()),
               "n_clusters": int(routed["cluster"].nunique()), "n_trees": int(routed["tree"].nunique()),
               "end_to_end_test": float(np.mean(end)) if end else float("nan"),
               "oracle_test": float(np.mean(oracle)) if oracle else float("nan")}
    return routed, summary


def ablations(manifest: pd.DataFrame, layer: str, cfg, key: str = "classes") -> pd.DataFrame:
    """Appendix E on one tree and layer: ranks (joint and one at a time, the others at the
    config's value), encoder depth, and the number of training models (0: all).

    Returns rows: ablation, value, val, test, parameters, seconds.
    """
    d = layer_data(manifest, layer, key)
    base = dict(r_u=cfg.r_u, r_v=cfg.r_v, r_t=cfg.r_t)
    runs: list[tuple[str, int, dict, int | None]] = []
    for r in cfg.rank_grid:
        runs.append(("joint r", r, dict(r_u=r, r_v=r, r_t=r), None))
        for name in ("r_u", "r_v", "r_t"):
            runs.append((name, r, {**base, name: r}, None))
    runs += [("depth", k, {**base, "depth": k}, None) for k in cfg.depth_grid]
    n_all = int((d.split == "train").sum())
    runs += [("n_train", n or n_all, base, n or None) for n in cfg.n_train_grid]
    rows = []
    for name, value, arch, n in tqdm(runs, desc="ablations"):
        r = fit_expert("probex", d, cfg.ablation_epochs, cfg.seed, n_train=n, **arch)
        rows.append({"ablation": name, "value": value, "val": r["val"], "test": r["test"], "test_se": r["test_se"],
                     "parameters": r["parameters"], "seconds": r["seconds"]})
    return pd.DataFrame(rows)


def recipe(cfg, manifest: pd.DataFrame | None = None) -> dict:
    """The training recipe this run used, read from the code and configuration (P-impl)."""
    import inspect

    from . import probex

    defaults = {k: v.default for k, v in inspect.signature(probex.fit).parameters.items()}
    split = [0.7, 0.1, 0.2]  # zoo.split_labels' default when the models carry no split
    if manifest is not None and "split" in manifest:
        counts = manifest["split"].value_counts(normalize=True)
        split = [round(float(counts.get(k, 0.0)), 2) for k in ("train", "val", "test")]
    return {"optimizer": probex.OPTIMIZER.__name__.lower(), "lr": defaults["lr"], "weight_decay": defaults["weight_decay"],
            "split": split, "selection": f"best layer on validation, {probex.SELECTION}", "epochs": cfg.epochs,
            "r_u": cfg.r_u, "r_v": cfg.r_v, "r_t": cfg.r_t}


def judge(table: pd.DataFrame, router: dict, abl: pd.DataFrame, cfg, figure: str = "",
          manifest: pd.DataFrame | None = None) -> list:
    """Claims P-T1, P-Router, P-F9..12, P-F13,15, P-F14 and P-impl: numbers from the measured
    tables, verdicts from :mod:`verdicts`."""
    from . import verdicts

    wide = table1_wide(table).set_index("expert")
    se = table.groupby("expert")["test_se"].agg(lambda s: float(np.sqrt((s**2).sum(min_count=len(s))) / len(s)))  # NaN stays NaN
    px, dense, stat = wide.loc["probex"], wide.loc["dense"], wide.loc["statnn"]
    ratio = float(dense["parameters (mean)"] / px["parameters (mean)"])
    trees = [c for c in wide.columns if c not in ("mean", "parameters (mean)")]
    ahead = sum(px[t] > dense[t] and px[t] > stat[t] for t in trees)
    out = [verdicts.judge(
        "P-T1", {"probex": px["mean"], "dense": dense["mean"], "statnn": stat["mean"], "se_probex": se["probex"],
                 "se_dense": se["dense"], "se_statnn": se.get("statnn", float("nan")), "param_ratio": ratio},
        f"mean test acc ProbeX {px['mean']:.3f}±{se['probex']:.3f}, Dense {dense['mean']:.3f}±{se['dense']:.3f}, "
        f"StatNN {stat['mean']:.3f}; ProbeX above both on {ahead}/{len(trees)} trees; {ratio:.0f}x fewer parameters than Dense",
        figure, {"table1": wide.reset_index().to_dict(orient="list")})]
    out.append(verdicts.judge(
        "P-Router", {"routing_accuracy": router["routing_accuracy_test"], "n_clusters": router["n_clusters"],
                     "n_trees": router["n_trees"]},
        f"test models routed right {router['routing_accuracy_test']:.3f} (one tree, one cluster); {router['n_clusters']} "
        f"clusters for {router['n_trees']} trees; router + experts {router['end_to_end_test']:.3f} vs oracle "
        f"{router['oracle_test']:.3f}", figure, {"router": router}))

    def series(name: str, col: str = "test") -> pd.Series:
        return abl[abl["ablation"] == name].set_index("value")[col].sort_index()

    se_a = float(abl["test_se"].median())  # one test set for every run: a typical standard error
    joint, r_v, r_t = series("joint r"), series("r_v"), series("r_t")
    best_r = series("joint r", "val").idxmax()  # chosen on validation, read on test
    spread_v, spread_t = float(r_v.max() - r_v.min()), float(r_t.max() - r_t.min())
    out.append(verdicts.judge(
        "P-F9..12", {"joint_best": joint[best_r], "joint_smallest": joint.iloc[0], "spread_v": spread_v,
                     "spread_t": spread_t, "se": se_a},
        f"best joint rank on validation {int(best_r)} (test {joint[best_r]:.3f} vs {joint.iloc[0]:.3f} at rank "
        f"{int(joint.index[0])}, SE {se_a:.3f}); spread over r_V {spread_v:.3f}, over r_T {spread_t:.3f}",
        figure, {k: series(k).to_dict() for k in ("joint r", "r_u", "r_v", "r_t")}))
    depth = series("depth")
    out.append(verdicts.judge(
        "P-F13,15", {"accuracy": depth.tolist(), "se": se_a},
        "test " + ", ".join(f"depth {int(k)}: {v:.3f}" for k, v in depth.items()) + f" (SE {se_a:.3f})",
        figure, {"depth": depth.to_dict()}))
    n = series("n_train")
    out.append(verdicts.judge(
        "P-F14", {"accuracy": n.tolist(), "se": se_a},
        "test " + ", ".join(f"{int(k)} models: {v:.3f}" for k, v in n.items()) + f" (SE {se_a:.3f})",
        figure, {"n_train": n.to_dict()}))
    rec = recipe(cfg, manifest)
    secs = table[table["expert"] == "probex"]["seconds"].mean()
    out.append(verdicts.judge(
        "P-impl", rec,
        f"{'/'.join(f'{x:.0%}' for x in rec['split'])} split, {rec['epochs']} epochs, Adam lr {rec['lr']:g} wd "
        f"{rec['weight_decay']:g}, ranks {rec['r_u']}/{rec['r_v']}/{rec['r_t']}, {rec['selection']}; {secs:.1f} s per "
        "layer on this machine (read from the run's configuration)", figure))
    return out
