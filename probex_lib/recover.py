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
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from . import atomic, checkpoints, lineage, lineage_graph, mother, paths, zoo

CALIBRATION = paths.REPO_ROOT / "probex_lib" / "resources" / "edge_confidence.json"


RecoverError = checkpoints.CheckpointError  # the folder cannot be recovered as asked; the message says which file and why


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
    placed_by: list[str] | None = None  # "mother", "artefact", "merge", "merge-child" or "" (root); None for generalisation
    features: np.ndarray | None = None  # MoTHer edges' confidence features (n, F), NaN elsewhere

    def edges(self) -> list[tuple[str, str]]:
        return [(self.model_ids[p], self.model_ids[c]) for c, ps in enumerate(self.parents) for p in ps]

    def roots(self) -> dict[int, str]:
        """{tree: root model id}."""
        return {int(self.cluster[i]): m for i, m in enumerate(self.model_ids) if not self.parents[i]}


class Models:
    """The models of one architecture group, read one layer of all models at a time."""

    def __init__(self, entries: list[checkpoints.ModelEntry], indexes: dict | None = None):
        self.entries = {e.id: e for e in entries}
        self.ids = sorted(self.entries)
        indexes = indexes if indexes is not None else checkpoints.tensor_indexes(entries)
        self.index = {m: indexes[m] for m in self.ids}
        self.adapters = [m for m in self.ids if self.entries[m].kind == "adapter"]

    def keys(self, exclude: str | None = None) -> list[str]:
        """Shared tensors of 2+ dims (not matching ``exclude``), sorted."""
        first = self.index[self.ids[0]]
        return sorted(k for k, (_, shape) in first.items() if len(shape) >= 2 and not (exclude and re.search(exclude, k)))

    def stack(self, key: str) -> np.ndarray:
        """Layer ``key`` of every model, (n, ...) float32 (adapters merged in float64 first). Torch runs
        on one thread here: thousands of tiny per-file operations stall a busy thread pool."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out = None
            for i, m in enumerate(self.ids):  # filled in place: a list of tensors and its stack would double memory
                t = checkpoints.read_tensor(self.entries[m], key, self.index[m]).float().numpy()
                if out is None:
                    out = np.empty((len(self.ids), *t.shape), dtype=np.float32)
                out[i] = t
            return out
        finally:
            torch.set_num_threads(threads)


def load_models(inputs, base: str | Path | None = None, split_by_architecture: bool = False,
                exclude: str | None = None) -> list[Models]:
    """Discover the checkpoints under ``inputs`` (:func:`probex_lib.checkpoints.discover`) and group
    them by architecture (tensors matching regex ``exclude`` ignored): one :class:`Models` per
    group; several groups are an error unless ``split_by_architecture``."""
    entries = checkpoints.discover(inputs, base)
    kinds = {e.kind for e in entries}
    if len(kinds) > 1:
        adapters = sorted(e.id for e in entries if e.kind == "adapter")
        raise RecoverError(f"{inputs}: mixes LoRA adapters ({adapters[:3]} ...) and full checkpoints; recover them separately "
                           f"(the adapters with --base)")
    indexes = checkpoints.tensor_indexes(entries)
    groups = checkpoints.architecture_groups(entries, exclude, indexes)
    if len(groups) > 1 and not split_by_architecture:
        raise RecoverError(f"{inputs}: {checkpoints.mixed_architecture_error(groups)}; pass --split-by-architecture "
                           f"to recover each group, or --exclude REGEX to ignore differing tensors (heads)")
    by_id = {e.id: e for e in entries}
    if len(groups) > 1:
        print(f"splitting {len(entries)} models into {len(groups)} architecture groups", file=sys.stderr)
        for ids in [ids for ids in groups.values() if len(ids) == 1]:
            print(f"warning: {by_id[ids[0]].files[0]}: the only model of its architecture; skipped", file=sys.stderr)
        groups = {k: ids for k, ids in groups.items() if len(ids) > 1}
        if not groups:
            raise RecoverError(f"{inputs}: every architecture group has a single model; a Model Graph needs at least two")
    return [Models([by_id[m] for m in ids], indexes) for ids in groups.values()]


def recover(folder: str | Path, n_trees: int | None = None, base: str | Path | None = None,
            score_layers: str | None = None, generalization: bool = False, c: float = 0.3,
            split_by_architecture: bool = False, calibration: str | Path | None = CALIBRATION,
            exclude: str | None = None) -> list[ModelGraph]:
    """Recover the Model Graph(s) of the checkpoints under ``folder``.

    n_trees: number of Model Trees if known, else chosen from the dendrogram.
    score_layers: regex of the layers whose kurtosis gives the direction (default: all 2-D+).
    exclude: regex of tensors to ignore (e.g. ``^classifier`` for heads of different sizes).
    Returns one ModelGraph per architecture group (one unless ``split_by_architecture``).
    Memory: one layer of all models at a time, never whole checkpoints.
    """
    groups = load_models(folder, base, split_by_architecture, exclude)
    cal = load_calibration(calibration)
    return [_recover_group(g, n_trees, score_layers, generalization, c, cal, exclude) for g in groups]


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


def _recover_group(models: Models, n_trees, score_layers, generalization, c,
                   calibrator: lineage.Calibrator | None = None, exclude: str | None = None) -> ModelGraph:
    ids = models.ids
    if len(ids) < 2:
        raise RecoverError(f"only one model ({ids[0]!r}): a Model Graph needs at least two")
    keys = models.keys(exclude)
    score_keys = [k for k in keys if not score_layers or re.search(score_layers, k)]
    if not score_keys:
        raise RecoverError(f"no layer matches score_layers={score_layers!r}; 2-D layers include {keys[:5]}")
    if generalization:  # continued pre-training: MoTHer only (artefact and merge checks assume specialisation)
        dist, score = np.zeros((len(ids), len(ids))), np.zeros(len(ids))
        for k in keys:  # each layer read once
            flat = models.stack(k).reshape(len(ids), -1)
            dist += mother.pairwise_l2(flat) / len(keys)
            if k in score_keys:
                score += mother.kurtosis_score([flat])
        labels, parent = mother.recover_graph(dist, score, n_trees, generalization, c)
        parents = [[int(p)] if p >= 0 else [] for p in parent]
        return ModelGraph(ids, labels, parent, score, dist, parents, ["fine-tune" if p else "" for p in parents],
                          np.full(len(ids), np.nan))
    dist = None
    if models.adapters:
        updates = {m: checkpoints.lora_updates(models.entries[m], models.index[m]) for m in ids}
        layers = sorted(updates[ids[0]])
        for m in ids:
            if set(updates[m]) != set(layers):
                raise RecoverError(f"{models.entries[m].files[0]}: adapts layers {sorted(set(updates[m]) ^ set(layers))[:4]} "
                                   f"differently from {ids[0]!r}; all adapters must adapt the same layers")
        dist = mother.lora_rank_distance([[tuple(t.numpy() for t in updates[m][l]) for m in ids] for l in layers]).astype(np.float64)
    lin = lineage_graph.recover_lineage(ids, keys, models.stack, score_keys, n_trees, calibrator, c, distance=dist,
                                        progress=len(ids) > 200)
    return ModelGraph(ids, lin.tree, lin.parent, lin.score, lin.dist, lin.parents, lin.edge_type, lin.confidence,
                      lin.placed_by, lin.features)


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


def graph_files(g: ModelGraph, out_dir: str | Path) -> dict[Path, str]:
    """{path: text} of graph.json and graph.graphml in ``out_dir``, for :func:`probex_lib.atomic.write_many`
    (so that probex-describe writes them in one unit with its atlas)."""
    out_dir = Path(out_dir)
    nxg = graph_to_networkx(g)
    payload = {"nodes": [{"id": n, **d} for n, d in nxg.nodes(data=True)],
               "edges": [{"parent": u, "child": v, **d} for u, v, d in nxg.edges(data=True)],
               "trees": [{"tree": t, "root": r} for t, r in sorted(g.roots().items())]}
    return {out_dir / "graph.json": json.dumps(payload, indent=2, sort_keys=True, default=atomic._jsonable) + "\n",
            out_dir / "graph.graphml": "\n".join(nx.generate_graphml(nxg)) + "\n"}


def save_tree_figure(g: ModelGraph, out_dir: str | Path) -> list[Path]:
    """tree.png/pdf in ``out_dir``."""
    from . import plotting

    plotting.use_style()
    ax = plotting.model_tree(g.model_ids, g.parent, g.cluster)
    return plotting.save_figure(ax.figure, "tree", Path(out_dir))


def save_graph(g: ModelGraph, out_dir: str | Path) -> list[Path]:
    """graph.json, graph.graphml (one atomic unit) and tree.png/pdf in ``out_dir``."""
    return atomic.write_many(graph_files(g, out_dir)) + save_tree_figure(g, out_dir)


SMALL_TREE = 10  # the shipped calibration saw trees of 40-100 models


def small_tree_warnings(g: ModelGraph) -> list[str]:
    """A warning per recovered tree of fewer than SMALL_TREE models (its directions and confidences
    rest on few kurtosis values and lie outside the calibration's range)."""
    out = []
    for t, root in sorted(g.roots().items()):
        n = int((g.cluster == t).sum())
        if 1 < n < SMALL_TREE:
            out.append(f"warning: tree {t} (root {root}) has {n} models: its edge directions rest on {n} kurtosis values "
                       f"and its confidences were calibrated on trees of 40-100 models; pass --n-trees if you know the count")
    return out


def read_truth(truth_file: str | Path) -> dict[str, list[str]]:
    """{model_id: [parents]} from a JSON file mapping each model to its parent id, null, or a list of
    parents (a merge; the kit's ``truth.json``). A missing or malformed file is an error naming it."""
    path = Path(truth_file)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RecoverError(f"{path}: cannot read a truth file ({exc})") from None
    if not isinstance(raw, dict):
        raise RecoverError(f"{path}: expected a JSON object {{model_id: parent id, null or [parents]}}")
    out = {}
    for m, p in raw.items():
        if not (p is None or isinstance(p, str) or (isinstance(p, list) and all(isinstance(x, str) for x in p))):
            raise RecoverError(f"{path}: model {m!r}: parent must be an id, null or a list of ids, not {p!r}")
        out[m] = [p] if isinstance(p, str) else list(p or [])
    return out


def score_against_truth(g: ModelGraph, truth_file: str | Path) -> float:
    """Share of the folder's models that have a parent in the truth file (:func:`read_truth`) whose
    recovered parents are right (the set of parents for a merge). Models the file does not name, or
    names as roots, are not scored; the file may name models that are not in the folder."""
    truth = read_truth(truth_file)
    judged = [(i, set(truth[m])) for i, m in enumerate(g.model_ids) if truth.get(m)]
    if not judged:
        raise RecoverError(f"{truth_file}: no model of the folder has a parent there; nothing to score")
    return float(np.mean([{g.model_ids[p] for p in g.parents[i]} == want for i, want in judged]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="probex-recover", description="Recover the Model Graph of a folder of checkpoints "
                                 "(MoTHer, plus edge types, merges and edge confidences).")
    ap.add_argument("folder", help="a folder of checkpoints (searched recursively)")
    ap.add_argument("--out", default=None, help="output folder (default: <folder>/mother, inside the checkpoint folder)")
    ap.add_argument("--n-trees", type=int, default=None, help="number of Model Trees, if known")
    ap.add_argument("--base", default=None, help="base checkpoint of LoRA adapters")
    ap.add_argument("--score-layers", default=None, help="regex of layers for the kurtosis direction score")
    ap.add_argument("--generalization", action="store_true", help="edges are generalisation (continued pre-training)")
    ap.add_argument("--split-by-architecture", action="store_true", help="recover each architecture group separately "
                    "(a group of one model is skipped with a warning)")
    ap.add_argument("--exclude", default=None, help="regex of tensors to ignore (e.g. '^classifier' for heads of different sizes)")
    ap.add_argument("--calibration", default=str(CALIBRATION), help="edge-confidence calibration JSON ('' for none)")
    ap.add_argument("--truth", default=None, help="JSON {model_id: parent id, null, or [parents] for a merge} to score "
                    "the recovery (the kit's truth.json works)")
    args = ap.parse_args(argv)
    try:
        if args.truth:
            read_truth(args.truth)  # a bad path fails before the run
        graphs = recover(args.folder, args.n_trees, args.base, args.score_layers, args.generalization,
                         split_by_architecture=args.split_by_architecture, calibration=args.calibration or None,
                         exclude=args.exclude)
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
            for w in small_tree_warnings(g):
                print(w, file=sys.stderr)
            if args.truth:
                print(f"edge accuracy vs {args.truth}: {score_against_truth(g, args.truth):.3f}")
    except (RecoverError, zoo.ZooError) as exc:  # RecoverError is checkpoints.CheckpointError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
