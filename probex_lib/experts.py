"""Training-class prediction per Model Tree (ProbeX paper, Sec. 6.1, Table 1; App. E ablations).

One tree's models at one layer become a :class:`LayerData` (weights loaded once, kept in
memory for all epochs); :func:`fit_expert` trains ProbeX or the Dense expert on it and
reports test accuracy (mean binary accuracy over all labels) of the best validation epoch;
:func:`layer_sweep` does that for every layer; :func:`fit_statnn_tree` is the StatNN
baseline on the statistics of every tensor of the model; :func:`route_models` is the
mixture-of-experts router over a whole zoo.
"""
from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import baselines, zoo
from .probex import DenseExpert, ProbeX, binary_accuracy_logits, fit, n_parameters

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
    sorted union unless given). A model without the key is an error naming it."""
    if key not in manifest.columns:
        raise zoo.ZooError(f"no model has metadata {key!r}; available keys: {sorted(manifest.columns)[:20]}")
    missing = manifest[manifest[key].map(lambda v: not isinstance(v, (list, tuple)))]
    if len(missing):
        raise zoo.ZooError(f"{missing['path'].iloc[0]}: metadata {key!r} missing or not a list "
                           f"({len(missing)} of {len(manifest)} models)")
    labels = tuple(labels) if labels is not None else tuple(sorted({v for vs in manifest[key] for v in vs}))
    return zoo.multi_hot([[str(v) for v in vs] for vs in manifest[key]], [str(v) for v in labels]), labels


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
    """Train one expert; returns val/test accuracy of the best validation epoch, parameters,
    best epoch, seconds and the fitted model. ``n_train`` keeps a seeded subset of training models."""
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
        test = binary_accuracy_logits(res.model(xte), yte)
    return {"expert": kind, "layer": d.layer, "val": res.best_val, "test": test, "best_epoch": res.best_epoch,
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
                    seed: int = 0) -> dict:
    """StatNN on 7 statistics of every weight and bias tensor; test accuracy and size."""
    names = zoo.tensor_names(manifest["path"].iloc[0])
    tensors = [zoo.load_layer(manifest["path"].tolist(), k).numpy() for k in names]
    x = baselines.statnn_features(tensors)
    y, _ = label_matrix(manifest, key, labels)
    split = manifest["split"].to_numpy()
    t0 = time.perf_counter()
    model = baselines.fit_statnn(x[split == "train"], y[split == "train"], seed=seed)
    seconds = time.perf_counter() - t0
    pred = model.predict_proba(x[split == "test"]) > 0.5
    return {"expert": "statnn", "layer": "all tensors", "test": float((pred == (y[split == "test"] > 0.5)).mean()),
            "parameters": model.n_parameters, "seconds": seconds}


# --------------------------------------------------------------------------- mixture of tree experts


def architecture_groups(manifest: pd.DataFrame) -> pd.Series:
    """An architecture signature per model (tensor names and shapes): models of different
    architectures can never share a tree, so routing clusters within each group."""
    def signature(path: str) -> str:
        header, _ = zoo.read_header(path)
        return str(hash(tuple((k, tuple(v["shape"])) for k, v in header.items() if not k.startswith("classifier"))))

    return manifest["path"].map(signature)


def route_models(manifest: pd.DataFrame, layer_of: dict[str, str], n_trees: int | None = None) -> pd.DataFrame:
    """Cluster the training models into trees and route every model to its nearest cluster.

    Models are first grouped by architecture, then clustered on one layer's flattened weights
    (``layer_of[group representative's architecture]`` or the first candidate layer); the
    number of trees per group comes from the dendrogram unless given. Returns the manifest's
    model_id, tree (truth), cluster (global id), and split.
    """
    groups = architecture_groups(manifest)
    rows, offset = [], 0
    for g in sorted(groups.unique()):
        sub = manifest[groups == g]
        layer = layer_of.get(sub["architecture"].iloc[0]) or candidate_layers(sub["path"].iloc[0])[0]
        x = zoo.load_layer(sub["path"].tolist(), layer).reshape(len(sub), -1).double().numpy()
        train = (sub["split"] == "train").to_numpy()
        if train.sum() < 2:
            clusters = np.zeros(len(sub), dtype=int)
        else:
            router, _ = baselines.fit_router(x[train], n_trees)
            clusters = router.route(x)
        rows.append(pd.DataFrame({"model_id": sub["model_id"].to_numpy(), "tree": sub["tree"].to_numpy(),
                                  "split": sub["split"].to_numpy(), "cluster": clusters + offset, "layer": layer}))
        offset += int(clusters.max()) + 1
    return pd.concat(rows, ignore_index=True)


def cluster_to_tree(routed: pd.DataFrame) -> dict[int, str]:
    """Each cluster's tree: the majority tree of its training models (what the MoE would use)."""
    train = routed[routed["split"] == "train"]
    return train.groupby("cluster")["tree"].agg(lambda s: s.value_counts().index[0]).to_dict()
