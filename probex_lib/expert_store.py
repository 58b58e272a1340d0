"""Saved tree experts: one Model Tree's ProbeX plus its router entry, usable on an unlabelled model.

A tree expert (ProbeX paper, Sec. 4.4 and App. C, the mixture of tree experts) is the ProbeX
trained on one layer of one tree's models, and the router's view of that tree: the centroid of
the training models' flattened layer and how far from it the tree's models lie. A new model is
first routed (l2 distance of its layer to the centroid, Eq. 5's nearest centre); a model farther
than the tree's spread is not the tree's, and the expert does not answer for it.

One expert = one safetensors file (written atomically, read without pickle)::

    tensors   probex.*          the ProbeX weights (and the input normalisation ``mean`` / ``scale``
                                buffers when the model was trained with them, as experts.fit_expert does)
              router.centroid   (prod(layer_shape),) float32, mean of the training models' flattened layer
    metadata  format_version, probex_orientation, probex_spec (d_w, d_h, d_y, r_u, r_v, r_t,
              activation, encoder_depth, normalised), layer, layer_shape, labels (output order),
              tree, spread, meta (anything the writer adds: zoo, settings, test accuracy ...)

Shapes: a weight is the layer as stored in the model file, ``layer_shape`` (e.g. (d_out, d_in) or a
conv kernel (out, in, k, k)); ProbeX reads it as the matrix (d_W, d_H) = (out, in·k·k)
(:func:`probex_lib.zoo.matrix_view`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import zoo
from .probex import ORIENTATION, Normalised, ProbeX

# 1: the first format (ProbeX in the official orientation, ``probex.ORIENTATION``).
FORMAT_VERSION = 1
SPREAD_FACTOR = 1.0  # a model is the tree's when its distance <= SPREAD_FACTOR * spread
PREFIX = "probex."
CENTROID_KEY = "router.centroid"


# --------------------------------------------------------------------------- the router's statistics


def router_stats(x_train: torch.Tensor) -> tuple[np.ndarray, float]:
    """Centroid and spread of one tree's training models at one layer.

    x_train: (n, ...) the layer of each training model (any per-model shape; flattened here).
    Returns (centroid (d,) float32, spread). The spread is the **maximum leave-one-out l2
    distance**: each training model's distance to the centroid of the *other* n-1 training
    models, which is n/(n-1) times its distance to the full centroid. Plain training distances
    are biased low (each model pulled the centroid towards itself), so a held-out model of the
    same tree would lie beyond their maximum more often than 1 in n+1; the leave-one-out
    maximum treats it like one more training model. With a single training model the spread is 0.
    """
    x = x_train.reshape(len(x_train), -1).double()
    n = len(x)
    if n == 0:
        raise ValueError("router_stats needs at least one training model")
    centroid = x.mean(0)
    d = torch.linalg.vector_norm(x - centroid, dim=1)
    spread = float(d.max() * n / (n - 1)) if n > 1 else 0.0
    return centroid.float().numpy(), spread


# --------------------------------------------------------------------------- files


def probex_spec(model: nn.Module) -> dict:
    """The hyper-parameters that rebuild ``model`` (a ProbeX with its head, or one wrapped in
    :class:`probex_lib.probex.Normalised`), read from its parameter shapes."""
    inner = model.inner if isinstance(model, Normalised) else model
    if not isinstance(inner, ProbeX) or not isinstance(inner.head, nn.Linear):
        raise TypeError(f"a tree expert is a ProbeX with a head (optionally Normalised), got {type(inner).__name__}")
    r_u = inner.probes.shape[1]
    return {"d_w": inner.shape[0], "d_h": inner.shape[1], "d_y": inner.head.out_features, "r_u": r_u,
            "r_v": inner.proj.out_features, "r_t": inner.head.in_features,
            "activation": "relu" if isinstance(inner.act, nn.ReLU) else "linear",
            "encoder_depth": (len(inner.encoder) + 1) // 2, "normalised": isinstance(model, Normalised)}


def build_probex(spec: Mapping) -> nn.Module:
    """An untrained module of the architecture ``spec`` (:func:`probex_spec`)."""
    model: nn.Module = ProbeX(spec["d_w"], spec["d_h"], spec["d_y"], spec["r_u"], spec["r_v"], spec["r_t"],
                              spec["activation"], spec["encoder_depth"])
    if spec["normalised"]:
        model = Normalised(model, torch.zeros(spec["d_w"], spec["d_h"]), torch.ones(()))
    return model.eval()


def matrix_shape(layer_shape: Sequence[int]) -> tuple[int, int]:
    """(d_W, d_H) ProbeX reads from a layer of shape ``layer_shape`` (as :func:`zoo.matrix_view`)."""
    shape = tuple(int(s) for s in layer_shape)
    if len(shape) == 1:
        return shape[0], 1
    return shape[0], math.prod(shape[1:])


def save_tree_expert(path: str | Path, model: nn.Module, *, layer: str, layer_shape: tuple[int, ...], labels: list[str],
                     tree: str, centroid: np.ndarray, spread: float, meta: dict) -> Path:
    """Write one tree's ProbeX and router entry to ``path`` (safetensors, atomically).

    model: ProbeX (d_W, d_H) -> (d_Y), possibly :class:`Normalised`; layer_shape: the layer as
    stored in model files; labels: d_Y class names in output order; centroid: (prod(layer_shape),)
    or layer_shape, the mean of the training models' layer; spread: the router's tolerance
    (:func:`router_stats`); meta: JSON-serialisable extras. Inconsistent shapes are an error.
    """
    spec = probex_spec(model)
    layer_shape = tuple(int(s) for s in layer_shape)
    if matrix_shape(layer_shape) != (spec["d_w"], spec["d_h"]):
        raise ValueError(f"{path}: ProbeX reads layers of matrix shape {(spec['d_w'], spec['d_h'])}, but layer "
                         f"{layer!r} has shape {layer_shape}")
    if len(labels) != spec["d_y"]:
        raise ValueError(f"{path}: ProbeX has {spec['d_y']} outputs, got {len(labels)} label names")
    centroid_t = torch.as_tensor(np.asarray(centroid, dtype=np.float32)).reshape(-1)
    if centroid_t.numel() != math.prod(layer_shape):
        raise ValueError(f"{path}: centroid has {centroid_t.numel()} values, layer {layer!r} of shape {layer_shape} "
                         f"has {math.prod(layer_shape)}")
    if not (spread >= 0 and math.isfinite(spread)):
        raise ValueError(f"{path}: spread must be a finite distance >= 0, got {spread}")
    tensors = {PREFIX + k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    tensors[CENTROID_KEY] = centroid_t.contiguous()
    return zoo.save_model(path, tensors, {
        "format_version": FORMAT_VERSION, "probex_orientation": ORIENTATION, "probex_spec": spec, "layer": layer,
        "layer_shape": list(layer_shape), "labels": [str(s) for s in labels], "tree": str(tree),
        "spread": float(spread), "meta": meta})


def check_format(path: str | Path, meta: Mapping) -> None:
    """Refuse a file that is not a tree expert of this format version and ProbeX orientation, naming it."""
    if "probex_spec" not in meta or "tree" not in meta:
        raise zoo.ZooError(f"{path}: not a tree expert file (no 'probex_spec' / 'tree' metadata)")
    version, orientation = meta.get("format_version"), meta.get("probex_orientation")
    if version == FORMAT_VERSION and orientation == ORIENTATION:
        return
    raise zoo.ZooError(f"{path}: tree expert of format version {version!r} and ProbeX orientation {orientation!r}; "
                       f"this kit reads version {FORMAT_VERSION} ({ORIENTATION}) only: retrain it (notebook 03)")


@dataclass
class TreeExpert:
    """One loaded tree expert. model: (batch, d_W, d_H) -> logits (batch, len(labels))."""

    path: Path
    model: nn.Module
    tree: str
    layer: str
    layer_shape: tuple[int, ...]
    labels: list[str]
    centroid: torch.Tensor  # (prod(layer_shape),) float32
    spread: float
    spec: dict
    meta: dict = field(default_factory=dict)


def load_tree_expert(path: str | Path) -> TreeExpert:
    """Rebuild a file written by :func:`save_tree_expert` (safetensors only, no pickle). A file of
    another format version or orientation, or a missing or corrupt one, is an error naming it."""
    path = Path(path)
    meta = zoo.read_metadata(path)
    check_format(path, meta)
    tensors = zoo.load_tensors(path)
    if CENTROID_KEY not in tensors:
        raise zoo.ZooError(f"{path}: tree expert without its router centroid ({CENTROID_KEY!r})")
    model = build_probex(meta["probex_spec"])
    zoo.load_checked(model, {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}, path)
    model.eval()
    return TreeExpert(path, model, meta["tree"], meta["layer"], tuple(meta["layer_shape"]), list(meta["labels"]),
                      tensors[CENTROID_KEY], float(meta["spread"]), meta["probex_spec"], meta.get("meta") or {})


# --------------------------------------------------------------------------- routing and prediction


@dataclass
class ExpertPrediction:
    """classes: the predicted class names (probability > threshold), in label order;
    probabilities: every label's sigmoid probability; distance / spread: the router's."""

    tree: str
    layer: str
    classes: list[str]
    probabilities: dict[str, float]
    distance: float
    spread: float
    path: Path


def _checked(expert: TreeExpert, weight: torch.Tensor) -> torch.Tensor:
    if tuple(weight.shape) != expert.layer_shape:
        raise ValueError(f"{expert.path}: expert of tree {expert.tree!r} reads layer {expert.layer!r} of shape "
                         f"{expert.layer_shape}, got a weight of shape {tuple(weight.shape)}")
    return weight.detach().float()


def route(expert: TreeExpert, weight: torch.Tensor) -> float:
    """l2 distance of one model's layer (weight: ``expert.layer_shape``) to the tree's centroid."""
    w = _checked(expert, weight).reshape(-1).double()
    return float(torch.linalg.vector_norm(w - expert.centroid.double()))


def predict_classes(expert: TreeExpert, weight: torch.Tensor, threshold: float = 0.5,
                    factor: float = SPREAD_FACTOR) -> ExpertPrediction | None:
    """The expert's answer for one model's layer (weight: ``expert.layer_shape``), or None when
    the model is not the tree's: its distance exceeds ``factor`` x the tree's spread
    (:func:`router_stats`; factor 1.0 admits what lies as far as the farthest training model).
    Multi-label, as trained: a class is predicted when sigmoid(logit) > ``threshold``."""
    distance = route(expert, weight)
    if distance > factor * expert.spread:
        return None
    x = zoo.matrix_view(_checked(expert, weight).unsqueeze(0))
    with torch.no_grad():
        p = torch.sigmoid(expert.model(x))[0].tolist()
    return ExpertPrediction(expert.tree, expert.layer, [c for c, q in zip(expert.labels, p) if q > threshold],
                            dict(zip(expert.labels, p)), distance, expert.spread, expert.path)


def find_expert_for(experts: Sequence[TreeExpert], tensors: Mapping[str, torch.Tensor], threshold: float = 0.5,
                    factor: float = SPREAD_FACTOR) -> ExpertPrediction | None:
    """Route one model (tensors: name -> weight, e.g. ``zoo.load_tensors(file)``) to a tree expert
    and predict its classes. Candidates are the experts whose layer the model has with the
    expert's shape; among those within ``factor`` x their spread, the one at the smallest
    distance answers (Eq. 5's nearest centre). None when no tree claims the model."""
    best: tuple[float, TreeExpert] | None = None
    for e in experts:
        w = tensors.get(e.layer)
        if w is None or tuple(w.shape) != e.layer_shape:
            continue
        d = route(e, w)
        if d <= factor * e.spread and (best is None or d < best[0]):
            best = (d, e)
    return None if best is None else predict_classes(best[1], tensors[best[1].layer], threshold, factor)
