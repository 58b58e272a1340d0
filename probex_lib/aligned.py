"""Text-aligned ProbeX: model weights and class names in one space (ProbeX paper, Sec. 6.2).

A LoRA is read as the full update B·A of each chosen layer, (d_out, d_in). ProbeX encodes each
layer (probes, shared projection, ReLU, encoder; :class:`probex_lib.probex.ProbeX` without its
head), the layer codes are concatenated and a linear head maps them to the text space. Training
is CLIP-style: cosine similarities between model embeddings and the text embeddings of the
classes in the batch, times a learnable scale, cross-entropy towards each model's own class.

Zero-shot: a model of a class no training model had is matched against the text embeddings of
the held-out classes only. Baselines get the same objective: the Dense expert (a linear map of
the flattened layers) and StatNN features with a linear or an MLP head.

Shapes: ``xs`` is a list with one tensor (n_models, d_out, d_in) per layer; features are
``[x]`` with x (n_models, n_features); class ids index the rows of the text matrix.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import baselines, lora, zoo
from .probex import ORIENTATION, ProbeX, n_parameters


# --------------------------------------------------------------------------- data


def lora_deltas(paths: Sequence[str], layers: Sequence[str]) -> list[torch.Tensor]:
    """One (n, d_out, d_in) tensor of B·A per layer, each file read once; a file whose layer is
    missing or of another shape is an error naming it."""
    out: list[list[torch.Tensor]] = [[] for _ in layers]
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    for p in tqdm(paths, desc="LoRA layers", leave=False, disable=len(paths) < 50):
        factors = lora.lora_layers(p)
        for i, layer in enumerate(layers):
            if layer not in factors:
                raise zoo.ZooError(f"{p}: no LoRA layer {layer!r} (it has {len(factors)} layers, e.g. {sorted(factors)[:2]})")
            d = lora.delta(*factors[layer])
            first = shapes.setdefault(layer, (tuple(d.shape), p))
            if tuple(d.shape) != first[0]:
                raise zoo.ZooError(f"{p}: layer {layer!r} has B·A of shape {tuple(d.shape)}, but {first[1]} has {first[0]}")
            out[i].append(d)
    return [torch.stack(v) for v in out]


def lora_layer_names(path: str, pattern: str = "") -> list[str]:
    """The adapted layers of one LoRA file whose name contains ``pattern`` (all when empty)."""
    names = [k for k in lora.lora_layers(path) if pattern in k]
    if not names:
        raise zoo.ZooError(f"{path}: no LoRA layer name contains {pattern!r}")
    return names


def statnn_matrix(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """(n, 7 * n_layers) StatNN statistics of each layer's B·A."""
    return torch.from_numpy(baselines.statnn_features([x.numpy() for x in xs])).float()


# --------------------------------------------------------------------------- models


class _Standardise(nn.Module):
    """x -> (x - mean) / scale with statistics of the training models (buffers)."""

    def __init__(self, x: torch.Tensor, per_feature: bool):
        super().__init__()
        mean = x.mean(0)
        scale = x.std(0) + 1e-6 if per_feature else x.std() + 1e-12
        self.register_buffer("mean", mean.clone())
        self.register_buffer("scale", torch.as_tensor(scale).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class Aligned(nn.Module):
    """Encoders per input (ProbeX per layer, or identity on features) -> concat -> [MLP] -> text space."""

    def __init__(self, encoders: Sequence[nn.Module], norms: Sequence[nn.Module], d_code: int, d_text: int,
                 hidden: int = 0):
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.norms = nn.ModuleList(norms)
        self.head = (nn.Sequential(nn.Linear(d_code, hidden), nn.ReLU(), nn.Linear(hidden, d_text)) if hidden
                     else nn.Linear(d_code, d_text))
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def codes(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The representation before the text head: (batch, d_code) (kNN / OCC use it)."""
        if len(xs) != len(self.encoders):
            raise ValueError(f"model built for {len(self.encoders)} inputs, got {len(xs)}")
        return torch.cat([enc(norm(x)) for enc, norm, x in zip(self.encoders, self.norms, xs)], dim=1)

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Unit-norm embeddings in the text space: (batch, d_text)."""
        return F.normalize(self.head(self.codes(xs)), dim=1)


def build(kind: str, xs: Sequence[torch.Tensor], d_text: int, r_u: int = 32, r_v: int = 32, r_t: int = 32,
          activation: str = "relu", hidden: int = 0) -> Aligned:
    """``kind``: "probex" (one ProbeX per layer), "dense" (flattened layers), "features" (xs are
    feature vectors, e.g. StatNN; ``hidden`` > 0 adds an MLP layer). Statistics from ``xs``."""
    if kind == "probex":
        encs = [ProbeX(x.shape[1], x.shape[2], None, r_u, r_v, r_t, activation) for x in xs]
        model = Aligned(encs, [_Standardise(x, per_feature=False) for x in xs], r_t * len(xs), d_text, hidden)
    elif kind == "dense":
        flat = [x.flatten(1) for x in xs]
        model = Aligned([nn.Flatten(1) for _ in xs], [_Standardise(x, per_feature=False) for x in xs],
                        sum(f.shape[1] for f in flat), d_text, hidden)
    elif kind == "features":
        model = Aligned([nn.Identity() for _ in xs], [_Standardise(x, per_feature=True) for x in xs],
                        sum(x.shape[1] for x in xs), d_text, hidden)
    else:
        raise ValueError(f"unknown aligned model kind {kind!r}; valid: ['probex', 'dense', 'features']")
    model.spec = {"kind": kind, "shapes": [list(x.shape[1:]) for x in xs], "d_text": d_text, "r_u": r_u, "r_v": r_v,
                  "r_t": r_t, "activation": activation, "hidden": hidden}
    return model


# --------------------------------------------------------------------------- checkpoints (safetensors, no pickle)

# 2: ProbeX in the official orientation (probes over the layer's input dimension, ``probex.ORIENTATION``);
# files without a version were written with the transposed ProbeX and are refused.
FORMAT_VERSION = 2


def save_aligned(path: str | Path, model: Aligned, layers: Sequence[str], meta: dict | None = None) -> Path:
    """Write the model's weights and its architecture (``model.spec``), the LoRA ``layers`` it
    reads, the format version and ProbeX orientation, and ``meta`` (text encoder, class names,
    ...) to one safetensors file, atomically."""
    if len(layers) != len(model.encoders):
        raise ValueError(f"model reads {len(model.encoders)} layers, got names of {len(layers)}")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return zoo.save_model(path, state, {**(meta or {}), "aligned_spec": model.spec, "layers": list(layers),
                                        "format_version": FORMAT_VERSION, "probex_orientation": ORIENTATION})


def check_format(path: str | Path, meta: dict) -> None:
    """Refuse a checkpoint of another format version or ProbeX orientation, naming the file."""
    version, orientation = meta.get("format_version"), meta.get("probex_orientation")
    if version == FORMAT_VERSION and orientation == ORIENTATION:
        return
    if version is None or (isinstance(version, int) and version < FORMAT_VERSION):
        raise zoo.ZooError(f"{path}: aligned checkpoint written by an older probex-kit (format version {version}), whose "
                           f"ProbeX applied its probes to the transposed layer (Xᵀu); this kit uses the official "
                           f"orientation ({ORIENTATION}: X·u), so the weights do not fit: retrain it (notebook 04)")
    raise zoo.ZooError(f"{path}: aligned checkpoint of format version {version!r} and ProbeX orientation "
                       f"{orientation!r}; this kit reads version {FORMAT_VERSION} ({ORIENTATION}) only")


@dataclass
class AlignedCheckpoint:
    model: Aligned
    layers: list[str]
    meta: dict


def read_aligned(path: str | Path) -> AlignedCheckpoint:
    """Rebuild a model written by :func:`save_aligned`; a file without its spec, or of an older
    format (the transposed ProbeX), is an error naming the file."""
    meta = zoo.read_metadata(path)
    if "aligned_spec" not in meta or "layers" not in meta:
        raise zoo.ZooError(f"{path}: not an aligned ProbeX checkpoint (no 'aligned_spec' / 'layers' metadata)")
    check_format(path, meta)
    meta.pop("format_version"), meta.pop("probex_orientation")
    spec = meta.pop("aligned_spec")
    dummies = [torch.zeros(2, *shape) for shape in spec["shapes"]]
    model = build(spec["kind"], dummies, spec["d_text"], spec["r_u"], spec["r_v"], spec["r_t"], spec["activation"],
                  spec["hidden"])
    zoo.load_checked(model, zoo.load_tensors(path), path)
    model.eval()
    return AlignedCheckpoint(model, list(meta.pop("layers")), meta)


def load_aligned(path: str | Path) -> Aligned:
    return read_aligned(path).model


def n_trainable(model: Aligned) -> int:
    """Parameters of the model (buffers such as standardisation statistics excluded)."""
    return n_parameters(model)


# --------------------------------------------------------------------------- training and evaluation


def contrastive_loss(emb: torch.Tensor, cls: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the classes present in the batch. emb: (b, d) unit rows; cls: (b,) ids
    into text: (n_classes, d) unit rows."""
    present, target = torch.unique(cls, return_inverse=True)
    logits = log_scale.clamp(max=math.log(100)).exp() * emb @ text[present].T
    return F.cross_entropy(logits, target)


def predict(model: Aligned, xs: Sequence[torch.Tensor], text: torch.Tensor, candidates: Sequence[int]) -> np.ndarray:
    """The candidate class id whose text embedding is nearest (cosine) to each model."""
    cand = torch.as_tensor(list(candidates))
    with torch.no_grad():
        sims = model(xs) @ text[cand].T
    return cand[sims.argmax(1)].numpy()


def top1(model: Aligned, xs: Sequence[torch.Tensor], cls: np.ndarray, text: torch.Tensor, candidates: Sequence[int]) -> float:
    return float((predict(model, xs, text, candidates) == np.asarray(cls)).mean())


@dataclass
class AlignedFit:
    model: Aligned
    best_epoch: int
    best_val: float
    history: list[float]
    seconds: float


def fit(model: Aligned, xs: Sequence[torch.Tensor], cls: np.ndarray, text: torch.Tensor, val_xs: Sequence[torch.Tensor],
        val_cls: np.ndarray, candidates: Sequence[int], epochs: int = 300, lr: float = 1e-3,
        weight_decay: float = 1e-5, batch_size: int = 64, seed: int = 0) -> AlignedFit:
    """Adam on the contrastive loss; keeps the epoch with the best validation top-1 (validation
    models are of training classes, matched against ``candidates``)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    y = torch.as_tensor(np.asarray(cls))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-1.0, -1, None)
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), batch_size):
            idx = perm[s:s + batch_size]
            loss = contrastive_loss(model([x[idx] for x in xs]), y[idx], text, model.log_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        val = top1(model, val_xs, val_cls, text, candidates)
        history.append(val)
        if val > best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return AlignedFit(model, best[1], best[0], history, time.perf_counter() - t0)


# --------------------------------------------------------------------------- kNN, OCC


def _cosine_distances(z: np.ndarray) -> np.ndarray:
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return 1 - z @ z.T


def knn_accuracy(z: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Leave-one-out kNN classification: each model goes to the class whose k nearest other
    models (cosine distance) are nearest on average (all of them if the class has fewer than k
    others). z: (n, d); labels: (n,); every class needs at least 2 models."""
    counts = dict(zip(*np.unique(labels, return_counts=True)))
    single = [c for c, n in counts.items() if n < 2]
    if single:
        raise ValueError(f"classes {single[:5]}: leave-one-out kNN needs at least 2 models per class")
    d = _cosine_distances(z)
    np.fill_diagonal(d, np.nan)  # a model is not its own neighbour; a class with fewer than k others uses them all
    classes = np.unique(labels)
    scores = np.stack([np.nanmean(np.sort(d[:, labels == c], axis=1)[:, :k], axis=1) for c in classes], axis=1)
    return float((classes[scores.argmin(1)] == labels).mean())


def occ_auc(z: np.ndarray, labels: np.ndarray, k: int) -> float:
    """One-class classification, each class in turn normal: the anomaly score of a model is its
    mean cosine distance to the k nearest normal models (itself excluded); ROC AUC of normal vs
    the rest, averaged over classes."""
    from sklearn.metrics import roc_auc_score

    d = _cosine_distances(z)
    np.fill_diagonal(d, np.inf)
    aucs = []
    for c in np.unique(labels):
        normal = labels == c
        kk = min(k, int(normal.sum()) - 1)
        if kk < 1:
            raise ValueError(f"class {c}: OCC needs at least 2 models, has {int(normal.sum())}")
        score = np.sort(d[:, normal], axis=1)[:, :kk].mean(1)
        aucs.append(roc_auc_score(~normal, score))
    return float(np.mean(aucs))


def knn_occ_table(reps: dict[str, np.ndarray], labels: np.ndarray, ks: Sequence[int]) -> pd.DataFrame:
    """kNN accuracy and OCC mean ROC AUC for every representation and k (Table 3)."""
    rows = []
    for name, z in reps.items():
        for k in ks:
            rows.append({"representation": name, "k": k, "knn_acc": knn_accuracy(z, labels, k),
                         "occ_auc": occ_auc(z, labels, k)})
    return pd.DataFrame(rows)
