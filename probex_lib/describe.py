"""``probex-describe FOLDER``: an atlas of a folder of checkpoints.

Recovers the lineage (:func:`probex_lib.recover.recover`: trees, roots, edge types, confidences),
routes each model to a saved ProbeX tree expert when one fits (:mod:`probex_lib.expert_store`:
the model's layer within that tree's training spread) and writes, as one unit (every file is
staged first, then all are renamed; a failure leaves the folder as it was):

* ``atlas.json``: models (tree, parents, children, files, metadata, declared base model, expert
  prediction) and edges (type, confidence, distance, extra_parent);
* ``atlas.html``: the interactive page (:mod:`probex_lib.atlas_html`; offline, plotly inlined);
* ``cards/<id>.md``: a model-card draft per model (what the weights say beside what the model
  declares);
* ``graph.json`` / ``graph.graphml`` (as ``probex-recover``; per architecture group ``group<k>/``);

then ``tree.png`` / ``tree.pdf`` beside each ``graph.json`` (drawn after the unit is written).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from . import atlas_html, atomic, checkpoints, expert_store, recover, zoo

FORMAT_VERSION = 1
MAX_META_CHARS = 300  # a metadata value longer than this is cut in the atlas (the file keeps it whole)


class DescribeError(ValueError):
    """The atlas cannot be made as asked; the message names the file and why."""


def load_experts(paths_: Sequence[str | Path]) -> list[expert_store.TreeExpert]:
    return [expert_store.load_tree_expert(p) for p in paths_]


def applies(ex: expert_store.TreeExpert, models: recover.Models) -> bool:
    """Do these models have the expert's layer, in the expert's shape?"""
    index = models.index[models.ids[0]]
    return ex.layer in index and tuple(index[ex.layer][1]) == tuple(ex.layer_shape)


def check_experts(groups: Sequence[recover.Models], experts: Sequence[expert_store.TreeExpert]) -> None:
    """Every expert must fit at least one architecture group; otherwise an error naming its file."""
    for ex in experts:
        if any(applies(ex, g) for g in groups):
            continue
        index = groups[0].index[groups[0].ids[0]]
        if ex.layer not in index:
            raise DescribeError(f"{ex.path}: expert of tree {ex.tree!r} reads layer {ex.layer!r}, which these models do not "
                                f"have (e.g. {sorted(index)[:3]})")
        raise DescribeError(f"{ex.path}: expert of tree {ex.tree!r} reads {ex.layer!r} of shape {tuple(ex.layer_shape)}, "
                            f"these models have {tuple(index[ex.layer][1])}")


def route_experts(models: recover.Models, experts: Sequence[expert_store.TreeExpert]) -> list[dict | None]:
    """Per model (models.ids order): the prediction of the expert (among those that fit these models'
    architecture) whose router accepts it with the smallest distance relative to its spread
    (:func:`expert_store.predict_classes`), else None."""
    best: list[tuple[float, dict] | None] = [None] * len(models.ids)
    stacks: dict[str, torch.Tensor] = {}  # experts of several trees often read the same layer: read it once
    for ex in (e for e in experts if applies(e, models)):
        if ex.layer not in stacks:
            stacks[ex.layer] = torch.from_numpy(models.stack(ex.layer))
        stack = stacks[ex.layer]
        for i in range(len(models.ids)):
            p = expert_store.predict_classes(ex, stack[i])
            if p is not None and (best[i] is None or p.distance / max(p.spread, 1e-12) < best[i][0]):
                best[i] = (p.distance / max(p.spread, 1e-12), {"expert": str(p.path), "tree": p.tree, "distance": p.distance,
                                                             "spread": p.spread, "classes": list(p.classes)})
    return [b[1] if b else None for b in best]


def _meta(entry: checkpoints.ModelEntry) -> dict[str, str]:
    return {k: (v if len(v) <= MAX_META_CHARS else v[:MAX_META_CHARS] + " ...") for k, v in sorted(entry.metadata.items())}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def build_atlas(folder: str | Path, groups: Sequence[tuple[recover.Models, recover.ModelGraph]],
                experts: Sequence[expert_store.TreeExpert] = (), title: str | None = None) -> dict:
    """The atlas dict (``atlas.json``) of recovered groups; tree ids are made unique across groups."""
    models, edges, trees = [], [], []
    offset = 0
    for mods, g in groups:
        routed = route_experts(mods, experts) if experts else [None] * len(g.model_ids)
        children: dict[int, list[str]] = {}
        for c, ps in enumerate(g.parents):
            for p in ps:
                children.setdefault(p, []).append(g.model_ids[c])
        for i, m in enumerate(g.model_ids):
            e = mods.entries[m]
            models.append({"id": m, "tree": int(g.cluster[i]) + offset, "is_root": not g.parents[i],
                           "parents": [g.model_ids[p] for p in g.parents[i]], "children": sorted(children.get(i, [])),
                           "files": [str(f) for f in e.files], "metadata": _meta(e), "declared_base_model": e.declared_base,
                           "kurtosis": float(g.score[i]), "expert": routed[i], "kind": e.kind,
                           "placed_by": g.placed_by[i] if g.placed_by else ("mother" if g.parents[i] else "")})
            for k, p in enumerate(g.parents[i]):
                edges.append({"parent": g.model_ids[p], "child": m, "type": g.edge_type[i],
                              "confidence": _finite(g.confidence[i]), "distance": float(g.distance[p, i]), "extra_parent": k > 0})
        for t, root in sorted(g.roots().items()):
            trees.append({"id": t + offset, "root": root, "n_models": int((g.cluster == t).sum())})
        offset += int(g.cluster.max()) + 1
    return {"format_version": FORMAT_VERSION, "title": title or f"Model atlas of {Path(folder).name}", "folder": str(folder),
            "models": models, "edges": edges, "trees": trees}


def model_card(atlas: dict, model: dict) -> str:
    """A Markdown model-card draft: what the weights say (parent, type, confidence, tree, children,
    expert classes) beside what the model declares (its base_model)."""
    mid = model["id"]
    by_child = [e for e in atlas["edges"] if e["child"] == mid]
    parent = model["parents"][0] if model["parents"] else None
    lines = ["---", f"# draft written by probex-describe from the weights alone; check it before publishing"]
    lines.append(f"base_model: {parent}" if parent else "# base_model: none (a root of the recovered lineage)")
    lines += ["---", "", f"# {mid}", "", "| | |", "|---|---|"]
    root = next((t["root"] for t in atlas["trees"] if t["id"] == model["tree"]), "?")
    lines.append(f"| tree | {model['tree']} (root `{root}`) |")
    if by_child:
        for e in by_child:
            conf = "n/a" if e["confidence"] is None else f"{e['confidence']:.2f}"
            extra = " (extra merge parent)" if e["extra_parent"] else ""
            lines.append(f"| parent (from the weights) | `{e['parent']}`: {e['type']}, confidence {conf}{extra} |")
    else:
        lines.append("| parent (from the weights) | none: a root |")
    declared = model["declared_base_model"]
    if declared:
        agree = "agrees" if parent and (declared == parent or declared.rstrip("/").split("/")[-1] == parent.split("/")[-1]) else "differs"
        lines.append(f"| base_model (declared by the model) | `{declared}` ({agree} with the weights) |")
    else:
        lines.append("| base_model (declared by the model) | none declared |")
    lines.append(f"| children | {', '.join(f'`{c}`' for c in model['children']) or 'none'} |")
    lines.append(f"| files | {', '.join(f'`{f}`' for f in model['files'])} |")
    ex = model.get("expert")
    lines += ["", "## Training classes (ProbeX tree expert)", ""]
    if ex:
        lines.append(f"Routed to the expert of tree `{ex['tree']}` (distance {ex['distance']:.3g} within its training "
                     f"spread {ex['spread']:.3g}). Predicted training classes: {', '.join(ex['classes']) or 'none above 0.5'}.")
    else:
        lines.append("No saved expert routes here (no expert given, or the model is outside every expert's training spread).")
    if model["metadata"]:
        lines += ["", "## Metadata in the checkpoint", "", "| key | value |", "|---|---|"]
        lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in model["metadata"].items()]
    return "\n".join(lines) + "\n"


def card_name(mid: str) -> str:
    """A file name for a model id (path separators and odd characters become '_')."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", mid) + ".md"


def describe(folder: str | Path, out: str | Path | None = None, experts: Sequence[str | Path] = (), base: str | Path | None = None,
             n_trees: int | None = None, score_layers: str | None = None, exclude: str | None = None,
             calibration: str | Path | None = recover.CALIBRATION, split_by_architecture: bool = False,
             title: str | None = None) -> tuple[dict, list[Path]]:
    """Recover, route and write the atlas of ``folder`` to ``out`` (default ``<folder>/atlas``).
    Returns (the atlas dict, the files written)."""
    out = Path(out or Path(folder) / "atlas")
    exps = load_experts(experts)
    groups = recover.load_models(folder, base, split_by_architecture, exclude)
    check_experts(groups, exps)
    cal = recover.load_calibration(calibration)
    graphs = [(m, recover._recover_group(m, n_trees, score_layers, False, 0.3, cal, exclude)) for m in groups]
    for _, g in graphs:
        for w in recover.small_tree_warnings(g):
            print(w, file=sys.stderr)
    atlas = build_atlas(folder, graphs, exps, title)
    files = {out / "atlas.json": atomic.json_text(atlas), out / "atlas.html": atlas_html.render(atlas)}
    names = {}
    for m in atlas["models"]:
        name = card_name(m["id"])
        if name in names:
            raise DescribeError(f"models {names[name]!r} and {m['id']!r} get the same card file name {name!r}")
        names[name] = m["id"]
        files[out / "cards" / name] = model_card(atlas, m)
    graph_dirs = [out / (f"group{k}" if len(graphs) > 1 else "") for k in range(len(graphs))]
    for (_, g), d in zip(graphs, graph_dirs):
        files.update(recover.graph_files(g, d))
    written = atomic.write_many(files)
    stale = sorted(p for p in (out / "cards").glob("*.md") if p not in files)
    for p in stale:  # cards of models no longer in the folder, from an earlier run into the same --out
        p.unlink()
    if stale:
        print(f"removed {len(stale)} stale model card(s) from an earlier run in {out / 'cards'}", file=sys.stderr)
    for (_, g), d in zip(graphs, graph_dirs):
        written += recover.save_tree_figure(g, d)
    return atlas, written


def route_check(manifest, expert_files: Sequence[str | Path], out: str | Path, key: str = "classes",
                split: str = "test"):
    """``probex-describe`` on the ``split`` models of a zoo (manifest rows: path, tree, ``key``) with
    the zoo's saved tree experts, as a user with unlabelled checkpoints would run it. Returns (atlas,
    per-model table: model, true tree, routed tree, label accuracy of the predicted classes (the
    mean over the expert's labels of "predicted" == "trained on"; Table 1's metric), or NaN when no
    expert routes the model)."""
    import pandas as pd

    from .experts import label_names

    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise DescribeError(f"no models of split {split!r} in the manifest (splits: {sorted(manifest['split'].unique())})")
    atlas, _ = describe([Path(p) for p in rows["path"]], out, experts=expert_files, exclude=r"^classifier",
                        split_by_architecture=True, title=f"{split} models of {Path(rows['path'].iloc[0]).parent.parent.name}")
    by_id = {m["id"]: m for m in atlas["models"]}
    labels: dict[str, list[str]] = {}  # each expert file read once, not once per model
    out_rows = []
    for _, r in rows.iterrows():
        m = by_id[Path(r["path"]).stem]
        ex = m["expert"]
        true = set(label_names(manifest, list(r[key]), key))
        acc = float("nan")
        if ex:
            if ex["expert"] not in labels:
                labels[ex["expert"]] = expert_store.load_tree_expert(ex["expert"]).labels
            names = labels[ex["expert"]]
            acc = sum((lab in ex["classes"]) == (lab in true) for lab in names) / len(names)
        out_rows.append({"model": m["id"], "tree": r["tree"], "routed to": ex["tree"] if ex else "", "label accuracy": acc})
    return atlas, pd.DataFrame(out_rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="probex-describe", description="An atlas of a folder of checkpoints: recovered lineage "
                                 "(trees, roots, edge types, confidences), ProbeX expert predictions, model-card drafts.")
    ap.add_argument("folder", help="a folder of checkpoints (searched recursively)")
    ap.add_argument("--out", default=None, help="output folder (default: <folder>/atlas, inside the checkpoint folder)")
    ap.add_argument("--expert", action="append", default=[], help="a saved ProbeX tree expert (.safetensors); repeatable")
    ap.add_argument("--base", default=None, help="base checkpoint of LoRA adapters (if their config does not name one in the folder)")
    ap.add_argument("--n-trees", type=int, default=None, help="number of Model Trees, if known (else cut from the dendrogram)")
    ap.add_argument("--score-layers", default=None, help="regex of layers for the kurtosis direction score")
    ap.add_argument("--exclude", default=None, help="regex of tensors to ignore (e.g. '^classifier')")
    ap.add_argument("--split-by-architecture", action="store_true", help="recover each architecture group separately "
                    "(a group of one model is skipped with a warning)")
    ap.add_argument("--calibration", default=str(recover.CALIBRATION), help="edge-confidence calibration JSON ('' for none)")
    ap.add_argument("--title", default=None, help="title of the atlas page")
    args = ap.parse_args(argv)
    try:
        atlas, written = describe(args.folder, args.out, args.expert, args.base, args.n_trees, args.score_layers, args.exclude,
                                  args.calibration or None, args.split_by_architecture, args.title)
    except (DescribeError, recover.RecoverError, zoo.ZooError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kinds: dict[str, int] = {}
    for e in atlas["edges"]:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    routed = sum(m["expert"] is not None for m in atlas["models"])
    print(f"{len(atlas['models'])} models, {len(atlas['trees'])} tree(s), edges: "
          + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) + f"; {routed} routed to an expert")
    print(f"wrote {written[0].parent}/atlas.html, atlas.json, cards/ ({len(atlas['models'])} model cards), graph.json, "
          f"graph.graphml, tree.png/pdf")
    return 0
