"""Folders of checkpoints with known lineage, for calibrating and testing the lineage tools (notebook 09).

A *view* is what a user would hand the kit: one ``<id>.safetensors`` per model holding its backbone
only (no head, no adapter tensors, no lineage metadata), plus ``truth.json`` ({id: [parents]}) and
``types.json`` ({id: edge type}) that only the evaluation reads. A view is built from a MoTHer
dataset (:mod:`probex_lib.mother_zoo`): its roots, the trees of the chosen subsets and its Merge
subset, plus artefacts derived here as files of their own:

* ``fp16``: every tensor through ``t.half().float()``, stored as float32;
* ``int8``: symmetric per-tensor quantisation (notebook 07's); ``int4c``: symmetric per-channel 4-bit;
* ``prune<p>``: ``torch.nn.utils.prune.l1_unstructured`` of every 2-D tensor by p%;
* ``merge``: the uniform average of two siblings (a model soup) or of three.

Which nodes get which artefact is drawn from ``seed`` per tree. Writes are atomic and a rebuilt view
skips the files it already has; ``truth.json`` is written last, so a view with it is complete.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import atomic, mother_zoo, paths, profiles, zoo
from .mother_exp import prune_l1, quantise
from .profiles import LineageConfig

ARTEFACTS = ("fp16", "int8", "int4c", "prune30", "prune60", "merge2", "merge3")
TRUE_TYPE = {"fp16": "fp16", "int8": "quantised", "int4c": "quantised", "prune30": "pruned", "prune60": "pruned",
             "merge2": "merge", "merge3": "merge", "ft": "fine-tune", "lora": "lora", "average": "merge", "pretrain": "fine-tune"}


def heldout_mother_config(profile: str, cfg: LineageConfig) -> profiles.MotherConfig:
    """Notebook 06's MoTHer config for ``profile`` with the held-out seed and a smaller layout."""
    base = profiles.get_config("mother", profile)
    return replace(base, seed=cfg.heldout_seed, n_roots=cfg.heldout_roots, subsets=tuple(cfg.subsets), deep_levels=0,
                   resnet_trees=0, chain_stages=0, merge_roots=min(cfg.merge_roots, cfg.heldout_roots),
                   merge_children=cfg.merge_children)


def backbone(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor but the head (``classifier*``) and stored LoRA factors (``adapter.*``), float32."""
    return {k: v.float().contiguous() for k, v in tensors.items()
            if not k.startswith(("classifier", mother_zoo.ADAPTER_PREFIX))}


def derive(kind: str, states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The artefact ``kind`` of one model (or the merge of several): float32 tensors."""
    if kind.startswith("merge"):
        return {k: (sum(s[k].double() for s in states) / len(states)).float().contiguous() for k in states[0]}
    (state,) = states
    out = {}
    for k, t in state.items():
        x = t.numpy()
        if t.ndim < 2 or kind == "fp16":
            y = quantise(x, "fp16") if kind == "fp16" else x
        elif kind in ("int8", "int4c"):
            y = quantise(x, kind)
        elif kind.startswith("prune"):
            y = prune_l1(x[None], int(kind[5:]) / 100)[0]
        else:
            raise ValueError(f"unknown artefact {kind!r}; valid: {list(ARTEFACTS)}")
        out[k] = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    return out


def _plan(man: pd.DataFrame, subsets: tuple[str, ...], artefacts: tuple[str, ...], seed: int) -> tuple[pd.DataFrame, list[dict]]:
    """(the dataset's models in the view, the artefacts to derive: id, kind, sources, tree)."""
    keep = man[man["subset"].isin(("roots", "Merge", *subsets)) & (man["architecture"] != "ResNetForImageClassification")]
    keep = keep[~keep["model_id"].str.startswith("resnet")]
    plans = []
    for t, tree_rows in keep[keep["subset"].isin(subsets)].groupby("tree", sort=True):
        rng = np.random.default_rng([seed, int(str(t).removeprefix("root") or 0)])
        nodes = tree_rows.sort_values("model_id")
        by_parent = {p: g["model_id"].tolist() for p, g in nodes.groupby("parent")}
        families = sorted((p, kids) for p, kids in by_parent.items() if len(kids) >= 3)
        for kind in artefacts:
            if kind.startswith("merge"):
                if not families:
                    continue
                p, kids = families[int(rng.integers(len(families)))]
                pick = sorted(rng.choice(kids, int(kind[-1]), replace=False).tolist())
                plans.append({"id": f"{kind}-" + "+".join(pick), "kind": kind, "sources": pick, "tree": t})
            else:
                src = str(nodes["model_id"].iloc[int(rng.integers(len(nodes)))])
                plans.append({"id": f"{src}.{kind}", "kind": kind, "sources": [src], "tree": t})
    return keep.sort_values("model_id"), plans


def view_folder(dataset: Path, cfg: LineageConfig, subsets: tuple[str, ...], root: Path | None = None) -> Path:
    key = profiles.settings_hash({"dataset": dataset.name, "subsets": subsets, "artefacts": cfg.artefacts, "seed": cfg.seed})
    return Path(root or paths.data_dir() / "lineage") / f"view-{dataset.parent.name}-{key}"


def build_view(dataset: str | Path, subsets: tuple[str, ...], cfg: LineageConfig, root: Path | None = None) -> Path:
    """Write (or complete) the view of ``dataset`` (see module doc). Returns its folder."""
    dataset = Path(dataset)
    man = mother_zoo.open_dataset(dataset)
    rows, plans = _plan(man, subsets, cfg.artefacts, cfg.seed)
    out = view_folder(dataset, cfg, subsets, root)
    if (out / "truth.json").exists():
        return out
    path_of = dict(zip(rows["model_id"], rows["path"]))
    truth, types = {}, {}
    for _, r in rows.iterrows():
        mid = r["model_id"]
        parents = list(r["parent_ids"]) if isinstance(r.get("parent_ids"), list) else ([r["parent"]] if isinstance(r["parent"], str) else [])
        truth[mid], types[mid] = parents, (TRUE_TYPE[r["mode"]] if parents else "")
        target = out / f"{mid}.safetensors"
        if not target.exists():
            zoo.save_model(target, backbone(zoo.load_tensors(r["path"])), {})
    for p in plans:
        truth[p["id"]], types[p["id"]] = p["sources"], TRUE_TYPE[p["kind"]]
        target = out / f"{p['id']}.safetensors"
        if not target.exists():
            zoo.save_model(target, derive(p["kind"], [backbone(zoo.load_tensors(path_of[s])) for s in p["sources"]]), {})
    atomic.write_json(out / "types.json", types)
    atomic.write_json(out / "settings.json", {"dataset": str(dataset), "subsets": list(subsets), **asdict(cfg)})
    atomic.write_json(out / "truth.json", truth)  # last: its presence marks a complete view
    return out


def read_truth(view: str | Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({id: true parents}, {id: true type of the edge(s) into it, "" for a root})."""
    view = Path(view)
    return json.loads((view / "truth.json").read_text()), json.loads((view / "types.json").read_text())
