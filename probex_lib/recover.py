"""Recover the Model Graph of a folder of checkpoints: ``python -m probex_lib.mother <folder>``.

Models found under the folder:

* any ``*.safetensors`` checkpoint (a Hugging Face ``save_pretrained`` folder counts as one
  model, its shards ``model-0000k-of-0000n.safetensors`` merged);
* peft / diffusers LoRA adapters (``adapter_model.safetensors``, ``pytorch_lora_weights.safetensors``):
  distances use the LoRA rank distance (Eq. 2) and the direction score the merged weights, so
  adapters need their base checkpoint (``--base``).

All models must share one architecture (same tensor names and shapes); otherwise the error
lists the groups, and ``split_by_architecture=True`` recovers each group separately.
Beyond MoTHer's tree (:mod:`probex_lib.lineage_graph`): pruned, quantised and fp16 copies are
attached to their source, merges to their 2-3 parents, every edge gets a type (fine-tune, lora,
pruned, quantised, fp16, merge) and a confidence in [0, 1] (the calibration fitted by notebook 09
on the kit's MoTHer dataset, ``probex_lib/resources/edge_confidence.json``).

Writes ``graph.json``, ``graph.graphml`` and ``tree.png``/``tree.pdf`` to the output folder. Every
parent -> child link is one edge; a merge has one edge per parent, all but the primary (largest
weight) marked ``extra_parent``. Nodes carry their ``tree`` and ``is_root``; ``graph.json`` also
lists the trees with their roots.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from . import atomic, lineage, lineage_graph, lora, mother, paths, zoo

CALIBRATION = paths.REPO_ROOT / "probex_lib" / "resources" / "edge_confidence.json"
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")


class RecoverError(ValueError):
    """The folder cannot be recovered as asked; the message says which file or model and why."""


@dataclass(frozen=True)
class ModelGraph:
    """Recovered graph: ``parent[i]`` is the index of model i's primary parent (-1 for a root),
    ``parents[i]`` all of them (a merge has 2+), ``edge_type[i]`` and ``confidence[i]`` of the
    edge(s) into i ("" and NaN for a root; NaN confidence without a calibration)."""

    model_ids: list[str]
    cluster: np.ndarray
    parent: np.ndarray
    score: np.ndarray
    distance: np.ndarray
    parents: list[list[int]]
    edge_type: list[str]
    confidence: np.ndarray
    placed_by: list[str] | None = None  # "mother", "artefact", "merge" or "" (root); None for generalisation
    features: np.ndarray | None = None  # MoTHer edges' confidence features (n, F), NaN elsewhere

    def edges(self) -> list[tuple[str, str]]:
        return [(self.model_ids[p], self.model_ids[c]) for c, ps in enumerate(self.parents) for p in ps]

    def roots(self) -> dict[int, str]:
        """{tree: root model id}."""
        return {int(self.cluster[i]): m for i, m in enumerate(self.model_ids) if not self.parents[i]}


def find_models(folder: str | Path) -> dict[str, list[Path]]:
    """{model_id: files}: one entry per checkpoint file, or per folder of shards."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecoverError(f"{folder}: not a folder")
    models: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*.safetensors")):
        rel = p.relative_to(folder)
        if _SHARD.search(p.name) or p.name in ("model.safetensors", *lora.LORA_FILENAMES):
            key = rel.parent.as_posix() if rel.parent.as_posix() != "." else p.stem
        else:
            key = rel.with_suffix("").as_posix()
        models.setdefault(key, []).append(p)
    if not models:
        raise RecoverError(f"{folder}: no .safetensors checkpoints found (searched all sub-folders)")
    return models


def _is_adapter(files: list[Path]) -> bool:
    return any(f.name in lora.LORA_FILENAMES for f in files)


def _index(files: list[Path]) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """{tensor name: (file holding it, shape)} from validated headers only (no tensor is read)."""
    index: dict[str, tuple[Path, tuple[int, ...]]] = {}
    for f in files:
        header, _ = zoo.read_header(f)
        index.update({k: (f, tuple(info["shape"])) for k, info in header.items()})
    return index


def _read_adapter(path: Path, base: dict[str, tuple[Path, tuple[int, ...]]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{base weight name: (B, A)} of one adapter, read once; each update must fit its base weight."""
    updates = {}
    for layer, (b, a) in lora.lora_layers(path).items():
        key = next((k for k in (f"{layer}.weight", layer.removeprefix("base_model.model.") + ".weight") if k in base), None)
        if key is None:
            raise RecoverError(f"{path}: adapter layer {layer!r} has no matching weight in the base checkpoint")
        if base[key][1] != (b.shape[0], a.shape[1]):
            raise RecoverError(f"{path}: adapter layer {layer!r} is {b.shape[0]}x{a.shape[1]}, base weight {key!r} is {base[key][1]}")
        updates[key] = (b.double(), a.double())
    return updates


def recover(folder: str | Path, n_trees: int | None = None, base: str | Path | None = None,
            score_layers: str | None = None, generalization: bool = False, c: float = 0.3,
            split_by_architecture: bool = False, calibration: str | Path | None = CALIBRATION) -> list[ModelGraph]:
    """Recover the Model Graph(s) of the checkpoints under ``folder``.

    n_trees: number of Model Trees if known, else chosen from the dendrogram.
    score_layers: regex of the layers whose kurtosis gives the direction (default: all 2-D+).
    Returns one ModelGraph per architecture group (one unless ``split_by_architecture``).
    Memory: one layer of all models at a time, never whole checkpoints.
    """
    found = find_models(folder)
    adapters = {k for k, files in found.items() if _is_adapter(files)}
    if adapters and len(adapters) != len(found):
        raise RecoverError(f"{folder}: mixes LoRA adapters ({sorted(adapters)[:3]} ...) and full checkpoints; recover them separately")
    if adapters and base is None:
        raise RecoverError(f"{folder}: {sorted(adapters)[0]!r} is a LoRA adapter without its base; pass the base checkpoint (--base)")
    base_index = _index([Path(base)]) if base else {}
    updates = {mid: _read_adapter(found[mid][0], base_index) for mid in sorted(adapters)}
    if updates:
        first = next(iter(updates))
        for mid, up in updates.items():
            if set(up) != set(updates[first]):
                raise RecoverError(f"{found[mid][0]}: adapts layers {sorted(set(up) ^ set(updates[first]))[:4]} differently "
                                   f"from {first!r}; all adapters must adapt the same layers")
    indexes = {mid: base_index if mid in adapters else _index(files) for mid, files in found.items()}

    groups: dict[tuple, list[str]] = defaultdict(list)
    for mid, index in indexes.items():
        groups[tuple(sorted((k, shape) for k, (_, shape) in index.items()))].append(mid)
    if len(groups) > 1 and not split_by_architecture:
        desc = "; ".join(f"{len(ids)} model(s) like {ids[0]!r}" for ids in groups.values())
        raise RecoverError(f"{folder}: checkpoints of {len(groups)} different architectures ({desc}); "
                           f"pass split_by_architecture=True (--split-by-architecture) to recover each group")
    if len(groups) > 1:
        print(f"splitting {len(indexes)} models into {len(groups)} architecture groups", file=sys.stderr)
    loader = _Loader(updates)
    cal = load_calibration(calibration)
    return [_recover_group(sorted(ids), indexes, loader, n_trees, score_layers, generalization, c, cal) for ids in groups.values()]


def load_calibration(path: str | Path | None) -> lineage.Calibrator | None:
    """The edge-confidence calibration at ``path`` (None: no confidences). A missing default file is
    allowed (NaN confidences, with a message); a named file that is missing or malformed is an error."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        if path == CALIBRATION:
            print(f"note: no edge-confidence calibration at {path} (run notebook 09); confidences are NaN", file=sys.stderr)
            return None
        raise RecoverError(f"{path}: no such calibration file")
    try:
        return lineage.Calibrator.from_json(json.loads(path.read_text()), str(path))
    except (ValueError, KeyError) as exc:
        raise RecoverError(f"{path}: not an edge-confidence calibration ({exc})") from exc


class _Loader:
    """Loads one layer of one model: from its checkpoint, or base weight + B @ A for adapters."""

    def __init__(self, updates: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]):
        self.updates = updates  # adapter model id -> {base weight name: (B, A)}
        self.adapters = set(updates)

    def layer(self, mid: str, key: str, index: dict[str, tuple[Path, tuple[int, ...]]]) -> torch.Tensor:
        t = zoo.load_tensors(index[key][0], [key])[key].double()
        if key in self.updates.get(mid, {}):
            b, a = self.updates[mid][key]
            t = t + b @ a
        return t


def _recover_group(ids, indexes, loader: _Loader, n_trees, score_layers, generalization, c,
                   calibrator: lineage.Calibrator | None = None) -> ModelGraph:
    if len(ids) < 2:
        raise RecoverError(f"only one model ({ids[0]!r}): a Model Graph needs at least two")
    first = indexes[ids[0]]
    keys = sorted(k for k, (_, shape) in first.items() if len(shape) >= 2)
    score_keys = [k for k in keys if not score_layers or re.search(score_layers, k)]
    if not score_keys:
        raise RecoverError(f"no layer matches score_layers={score_layers!r}; 2-D layers include {keys[:5]}")
    if generalization:  # continued pre-training: MoTHer only (artefact and merge checks assume specialisation)
        dist = _l2_distances(ids, keys, indexes, loader)
        score = sum(mother.kurtosis_score([_stack(ids, k, indexes, loader).reshape(len(ids), -1)]) for k in score_keys)
        labels, parent = mother.recover_graph(dist, score, n_trees, generalization, c)
        parents = [[int(p)] if p >= 0 else [] for p in parent]
        return ModelGraph(ids, labels, parent, score, dist, parents, ["fine-tune" if p else "" for p in parents],
                          np.full(len(ids), np.nan))
    dist = None
    if ids[0] in loader.adapters:
        layers = sorted(loader.updates[ids[0]])
        dist = mother.lora_rank_distance([[tuple(t.numpy() for t in loader.updates[m][l]) for m in ids] for l in layers]).astype(np.float64)
    lin = lineage_graph.recover_lineage(ids, keys, lambda k: _stack(ids, k, indexes, loader), score_keys, n_trees,
                                        calibrator, c, distance=dist, progress=len(ids) > 200)
    return ModelGraph(ids, lin.tree, lin.parent, lin.score, lin.dist, lin.parents, lin.edge_type, lin.confidence,
                      lin.placed_by, lin.features)


def _stack(ids, key, indexes, loader: _Loader) -> np.ndarray:
    """Layer ``key`` of every model, (n, ...) float32 (adapters merged in float64 first)."""
    return np.stack([loader.layer(m, key, indexes[m]).float().numpy() for m in ids])


def _l2_distances(ids, keys, indexes, loader: _Loader) -> np.ndarray:
    return sum(mother.pairwise_l2(_stack(ids, k, indexes, loader).reshape(len(ids), -1)) for k in keys) / len(keys)


def graph_to_networkx(g: ModelGraph) -> nx.DiGraph:
    """Nodes: tree, is_root, kurtosis. Edges parent -> child: type, distance, extra_parent (all but a
    merge's primary parent) and confidence (when calibrated)."""
    nxg = nx.DiGraph()
    for i, m in enumerate(g.model_ids):
        nxg.add_node(m, tree=int(g.cluster[i]), is_root=not g.parents[i], kurtosis=float(g.score[i]))
    for c, ps in enumerate(g.parents):
        for k, p in enumerate(ps):
            attrs = {"type": g.edge_type[c], "distance": float(g.distance[p, c]), "extra_parent": k > 0}
            if np.isfinite(g.confidence[c]):
                attrs["confidence"] = float(g.confidence[c])
            nxg.add_edge(g.model_ids[p], g.model_ids[c], **attrs)
    return nxg


def save_graph(g: ModelGraph, out_dir: str | Path) -> list[Path]:
    """graph.json, graph.graphml and tree.png/pdf in ``out_dir`` (atomic writes)."""
    from . import plotting

    out_dir = Path(out_dir)
    nxg = graph_to_networkx(g)
    payload = {"nodes": [{"id": n, **d} for n, d in nxg.nodes(data=True)],
               "edges": [{"parent": u, "child": v, **d} for u, v, d in nxg.edges(data=True)],
               "trees": [{"tree": t, "root": r} for t, r in sorted(g.roots().items())]}
    written = [atomic.write_json(out_dir / "graph.json", payload)]
    with atomic.atomic_path(out_dir / "graph.graphml") as tmp:
        nx.write_graphml(nxg, tmp)
    written.append(out_dir / "graph.graphml")
    plotting.use_style()
    ax = plotting.model_tree(g.model_ids, g.parent, g.cluster)
    written += plotting.save_figure(ax.figure, "tree", out_dir)
    return written


def score_against_truth(g: ModelGraph, truth_file: str | Path) -> float:
    """Edge accuracy against a JSON file {model_id: parent_id or null}; unknown ids are errors."""
    truth = json.loads(Path(truth_file).read_text())
    unknown = sorted(set(truth) - set(g.model_ids)) + sorted({p for p in truth.values() if p} - set(g.model_ids))
    if unknown:
        raise RecoverError(f"{truth_file}: names models not in the folder: {unknown[:5]}")
    index = {m: i for i, m in enumerate(g.model_ids)}
    true_parent = np.array([index[truth[m]] if truth.get(m) else -1 for m in g.model_ids])
    return mother.edge_accuracy(true_parent, g.parent)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m probex_lib.mother", description="Recover the Model Graph of a folder of checkpoints (MoTHer).")
    ap.add_argument("folder")
    ap.add_argument("--out", default=None, help="output folder (default: <folder>/mother)")
    ap.add_argument("--n-trees", type=int, default=None, help="number of Model Trees, if known")
    ap.add_argument("--base", default=None, help="base checkpoint of LoRA adapters")
    ap.add_argument("--score-layers", default=None, help="regex of layers for the kurtosis direction score")
    ap.add_argument("--generalization", action="store_true", help="edges are generalisation (continued pre-training)")
    ap.add_argument("--split-by-architecture", action="store_true")
    ap.add_argument("--truth", default=None, help="JSON {model_id: parent_id or null} to score the recovery")
    args = ap.parse_args(argv)
    try:
        graphs = recover(args.folder, args.n_trees, args.base, args.score_layers, args.generalization,
                         split_by_architecture=args.split_by_architecture)
        for i, g in enumerate(graphs):
            out = Path(args.out or Path(args.folder) / "mother") / (f"group{i}" if len(graphs) > 1 else "")
            save_graph(g, out)
            print(f"{len(g.model_ids)} models, {len(set(g.cluster))} tree(s); wrote {out}/graph.json, graph.graphml, tree.png")
            for c, ps in enumerate(g.parents):
                for k, p in enumerate(ps):
                    conf = f", confidence {g.confidence[c]:.2f}" if np.isfinite(g.confidence[c]) else ""
                    extra = " (extra parent)" if k else ""
                    print(f"  {g.model_ids[p]} -> {g.model_ids[c]}: {g.edge_type[c]}{conf}{extra}")
            for t, r in sorted(g.roots().items()):
                print(f"  tree {t}: root {r}")
            if args.truth:
                print(f"edge accuracy vs {args.truth}: {score_against_truth(g, args.truth):.3f}")
    except (RecoverError, zoo.ZooError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
