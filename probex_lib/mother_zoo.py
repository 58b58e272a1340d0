"""The MoTHer dataset, generated in the kit (MoTHer paper, Sec. 6.1 and App. B).

Every model is a safetensors file with its true ``parent`` (model id, or none for a root), its
``subset``, ``tree``, ``depth`` and hyperparameters in the metadata. One folder holds everything;
generation runs in waves (a child needs its parent's file), resumes after an interruption and
runs on the process pool or Dask like every zoo of the kit (:func:`probex_lib.zoo.generate_zoos`).

* roots: ``n_roots`` ViTs pre-trained from their own seed on their own images, a ResNet root,
  and a chain of continued pre-training stages (generalisation);
* ``FT``, ``LoRA-V``, ``LoRA-F``, ``Mixed``: ``n_roots`` trees of 1 + children + children^2 ...
  models; a LoRA model is stored merged (W + B A, what the distances read) and keeps its
  adapter under ``adapter.<module>.lora_{A,B}.weight``;
* ``Deep`` (one root, deeper), ``ResNet``, ``Merge`` (roots, their uniform averages, and
  fine-tunes of each: the paper's App. E).

During pre-training and full fine-tuning the summed kurtosis of three layer groups is recorded
every ``trace_every`` steps (``trace_*`` metadata; Figs. 2 and 16).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import mother, parallel, paths, profiles, train, vision, zoo
from .profiles import DataConfig, MotherConfig

TRACE_GROUPS = ("attention", "fc2", "all")
ADAPTER_PREFIX = "adapter."


def layer_groups(keys: list[str]) -> dict[str, list[str]]:
    """Backbone weight names by group: "attention" (the square q, k, v, o matrices; the paper's
    choice), "fc2" (MLP output), "all" (every backbone tensor of 2+ dims, heads and adapters
    excluded), "q", "k", "v", "o", "fc1" (Fig. 13). ResNet convolutions are in "all" only."""
    backbone = sorted(k for k in keys if k.endswith(".weight") and not k.startswith(("classifier", ADAPTER_PREFIX))
                      and "layernorm" not in k and "normalization" not in k and ".embeddings." not in k)
    out = {"all": backbone}
    for name, pat in (("q", r"attention\.q_proj"), ("k", r"attention\.k_proj"), ("v", r"attention\.v_proj"),
                      ("o", r"attention\.o_proj"), ("fc1", r"mlp\.fc1"), ("fc2", r"mlp\.fc2")):
        out[name] = [k for k in backbone if re.search(pat, k)]
    out["attention"] = sorted(out["q"] + out["k"] + out["v"] + out["o"])
    return out


def _kurtosis_of(state: dict[str, torch.Tensor], groups: dict[str, list[str]]) -> dict[str, float]:
    return {g: float(mother.kurtosis_score([state[k].detach().reshape(1, -1).double().numpy() for k in groups[g]])[0])
            if groups[g] else float("nan") for g in TRACE_GROUPS}


# --------------------------------------------------------------------------- training one node


def _data(p: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y, xt, yt, _ = train.model_data(p)
    return x.contiguous(), y, xt.contiguous(), yt


def _backbone_keys(model: torch.nn.Module) -> list[str]:
    return [k for k in model.state_dict() if not k.startswith("classifier")]


def _average(paths_: list[str]) -> dict[str, torch.Tensor]:
    """Uniform weight average (model soup) of the backbones of ``paths_``; no head."""
    states = [zoo.load_tensors(p) for p in paths_]
    keys = [k for k in states[0] if not k.startswith(("classifier", ADAPTER_PREFIX))]
    for p, s in zip(paths_[1:], states[1:]):
        zoo.load_checked(_Keys(states[0]), s, p, keys)
    return {k: (sum(s[k].double() for s in states) / len(states)).float().contiguous() for k in keys}


class _Keys(torch.nn.Module):
    """A stand-in module whose state dict is a given dict (for zoo.load_checked's checks)."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        self._state = state

    def state_dict(self, *args, **kwargs):  # noqa: D102
        return self._state

    def load_state_dict(self, *args, **kwargs):  # noqa: D102
        return None


def _inject_lora(model: torch.nn.Module, rank: int, targets: list[str]) -> list[torch.nn.Parameter]:
    from peft import LoraConfig, inject_adapter_in_model

    # alpha = rank: scaling 1, so the merged weight is exactly W + B @ A
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), model)
    trainable = []
    for n, t in model.named_parameters():
        t.requires_grad_("lora_" in n or n.startswith("classifier"))
        if t.requires_grad:
            trainable.append(t)
    return trainable


def _merged_state(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(plain state dict with W + B A at every adapted layer, adapter tensors)."""
    raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state, adapter = {}, {}
    for k, v in raw.items():
        if ".lora_A." in k or ".lora_B." in k:
            module, which = k.split(".lora_")[0], k.split(".lora_")[1][0]
            adapter[f"{ADAPTER_PREFIX}{module}.lora_{which}.weight"] = v.contiguous()
        elif ".base_layer." in k:
            state[k.replace(".base_layer.", ".")] = v
        else:
            state[k] = v
    for key in [k for k in adapter if k.endswith("lora_A.weight")]:
        module = key[len(ADAPTER_PREFIX):-len(".lora_A.weight")]
        b = adapter[f"{ADAPTER_PREFIX}{module}.lora_B.weight"].double()
        state[f"{module}.weight"] = (state[f"{module}.weight"].double() + b @ adapter[key].double()).float()
    return {k: v.contiguous() for k, v in state.items()}, adapter


def train_node(p: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A zoo ``train_fn`` for one node of the dataset.

    ``p["mode"]``: "pretrain" (a root, or a continued pre-training stage when ``init`` is a
    file), "ft" (full fine-tuning), "lora" (peft LoRA of rank ``p["rank"]`` on
    ``p["lora_targets"]``, head trained too, stored merged plus the adapter), "average" (the
    uniform average of ``p["parents"]``, no training), "hub" (``paper``: a hub checkpoint).
    A child's backbone starts from its parent's file; its head is new (a different task).
    """
    if p["mode"] == "average":
        state = _average(p["parents"])
        return state, {**p, "architecture": "average", "n_parameters": int(sum(t.numel() for t in state.values()))}
    torch.manual_seed(int(p["seed"]))
    g = torch.Generator().manual_seed(int(p["seed"]))
    n_classes = len(p["classes"])
    if p["mode"] == "hub":
        model = vision.load_pretrained(p["hub"], vision.hub_kind(p["hub"]), n_classes)
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        return state, {**p, "architecture": type(model).__name__}
    x, y, xt, yt = _data(p)
    if p.get("hub"):  # paper: the tree's hub architecture (its weights are replaced by the parent's below)
        model = vision.load_pretrained(p["hub"], vision.hub_kind(p["hub"]), n_classes)
        side = getattr(model.config, "image_size", 224)
        x, xt = (F.interpolate(t, size=side, mode="bilinear", align_corners=False) for t in (x, xt))
    else:
        model = vision.classifier_for(p["kind"], n_classes, p["size"])
    if p["init"] != "random":
        keys = _backbone_keys(model)
        if p["mode"] == "pretrain":  # continued pre-training keeps the head (same classes)
            keys = list(model.state_dict())
        zoo.load_checked(model, zoo.load_tensors(p["init"]), p["init"], keys)
    lora = p["mode"] == "lora"
    params = _inject_lora(model, int(p["rank"]), list(p["lora_targets"])) if lora else list(model.parameters())
    groups = layer_groups(list(model.state_dict())) if not lora else {}
    opt = torch.optim.AdamW(params, lr=p["lr"], weight_decay=p["weight_decay"])
    bs = int(p["batch_size"])
    per_epoch = max(1, len(y) // bs)
    steps = int(p["steps"]) if p.get("steps") else per_epoch * int(p["epochs"])
    every = int(p.get("trace_every", 0))
    trace: dict[str, list[float]] = {"step": []} | {g_: [] for g_ in TRACE_GROUPS}

    def record(step: int) -> None:
        if every and groups:
            trace["step"].append(step)
            for k, v in _kurtosis_of(model.state_dict(), groups).items():
                trace[k].append(v)

    model.train()
    step, loss = 0, torch.tensor(float("nan"))
    record(0)
    while step < steps:
        perm = torch.randperm(len(y), generator=g)
        for b in range(per_epoch):
            if step >= steps:
                break
            sel = perm[b * bs:(b + 1) * bs]
            loss = F.cross_entropy(model(pixel_values=train.random_hflip(x[sel], g)).logits, y[sel])
            train.optimiser_step(opt, loss, train.lr_at(step, steps, p["lr"], 0.1 if p["mode"] == "pretrain" else 0.0))
            step += 1
            if every and step % every == 0 and step < steps:
                record(step)
    record(steps)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged (loss {loss.item()}) for {p.get('name')} (seed {p['seed']}, lr {p['lr']})")
    model.eval()
    acc = train.evaluate(model, xt, yt, forward=lambda b: model(pixel_values=b).logits)
    if lora:
        state, adapter = _merged_state(model)
        state |= adapter
    else:
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    meta = {**p, "architecture": type(model).__name__, "final_loss": loss.item(), "test_accuracy": acc, "steps_done": steps}
    if trace["step"]:
        meta |= {f"trace_{k}": v for k, v in trace.items()}
    return state, meta


# --------------------------------------------------------------------------- the plan


def _rng(cfg: MotherConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *keys])


def _seed(cfg: MotherConfig, *keys: int) -> int:
    return int(_rng(cfg, *keys).integers(2**31 - 1))


def _tree_paths(children: int, levels: int) -> list[tuple[int, ...]]:
    """Node paths of a full tree below the root, parents first: (0,), (1,), ..., (0, 0), ..."""
    return [pth for d in range(1, levels + 1) for pth in itertools.product(range(children), repeat=d)]


def _all_classes() -> list[int]:
    from .data import COLOURS, SHAPES

    return list(range(len(COLOURS) * len(SHAPES)))


class Planner:
    """Builds the ModelSpecs of every node; ``specs[wave]`` lists what can train in parallel."""

    def __init__(self, cfg: MotherConfig, folder: Path):
        self.cfg, self.folder = cfg, folder
        self.waves: dict[int, list[zoo.ModelSpec]] = {}
        self.hub: dict[str, str] = {}  # model id -> hub name of its tree's root (paper profile)

    def path(self, model_id: str) -> str:
        return str(zoo.model_path(self.folder, model_id).resolve())

    def add(self, wave: int, model_id: str, params: dict) -> str:
        self.waves.setdefault(wave, []).append(zoo.ModelSpec(model_id, {"name": model_id, **params}))
        return model_id

    def root(self, r: int, kind: str = "vit") -> str:
        cfg = self.cfg
        name = f"root{r}" if kind == "vit" else "resnet-root"
        hub = cfg.hub[r] if cfg.hub and kind == "vit" else ""
        self.hub[name] = hub
        data = DataConfig(source=cfg.data.source, seed=100 + r, n_train=cfg.pretrain_images_per_class, n_test=10)
        return self.add(0, name, {
            "mode": "hub" if hub else "pretrain", "hub": hub, "kind": kind, "size": self._size(kind), "init": "random",
            "classes": _all_classes(), "data": asdict(data), "images_per_class": cfg.pretrain_images_per_class,
            "steps": cfg.root_steps, "lr": cfg.root_lr, "batch_size": cfg.root_batch_size, "weight_decay": 0.05,
            "seed": _seed(cfg, 1, r, kind == "resnet"), "trace_every": cfg.trace_every, "subset": "roots",
            "tree": name, "parent": None, "depth": 0})

    def _size(self, kind: str) -> dict:
        return self.cfg.vit_size if kind == "vit" else self.cfg.resnet_size

    def child(self, wave: int, model_id: str, parent: str, mode: str, kind: str, subset: str, tree: str, depth: int,
              key: tuple[int, ...]) -> str:
        cfg = self.cfg
        rng = _rng(cfg, 2, *key)
        classes = sorted(rng.choice(_all_classes(), cfg.classes_per_task, replace=False).tolist())
        lora = mode == "lora"
        rank = int(rng.choice(cfg.lora_ranks)) if subset in ("LoRA-V", "Mixed") else cfg.lora_rank_fixed
        self.hub[model_id] = self.hub.get(parent, "")
        return self.add(wave, model_id, {
            "mode": mode, "kind": kind, "size": self._size(kind), "init": self.path(parent), "classes": classes,
            "data": asdict(cfg.data), "images_per_class": int(rng.choice(cfg.ft_images_per_class)),
            "epochs": int(rng.choice(cfg.ft_epochs)), "batch_size": int(rng.choice(cfg.ft_batch_sizes)),
            "lr": float(rng.choice(cfg.lora_lrs if lora else cfg.ft_lrs)),
            "weight_decay": float(rng.choice(cfg.ft_weight_decays)), "rank": rank if lora else 0,
            "lora_targets": list(cfg.lora_targets), "seed": _seed(cfg, 3, *key),
            "trace_every": 0 if lora else cfg.trace_every, "subset": subset, "tree": tree, "parent": parent,
            "depth": depth, "hub": self.hub[model_id]})

    def tree(self, subset: str, root: str, t_key: int, children: int, levels: int, kind: str = "vit") -> None:
        """A full tree below ``root``: ids ``<subset>-<root>-<path>`` (path like 2.0.1)."""
        for pth in _tree_paths(children, levels):
            mid = f"{subset}-{root}-" + ".".join(map(str, pth))
            parent = root if len(pth) == 1 else f"{subset}-{root}-" + ".".join(map(str, pth[:-1]))
            key = (SUBSET_KEYS[subset], t_key, *pth)
            if subset in ("FT", "Deep", "ResNet"):
                mode = "ft"
            elif subset == "Mixed":
                mode = "lora" if _rng(self.cfg, 4, *key).integers(2) else "ft"
            else:
                mode = "lora"
            self.child(len(pth), mid, parent, mode, kind, subset, root, len(pth), key)


SUBSET_KEYS = {"FT": 1, "LoRA-V": 2, "LoRA-F": 3, "Mixed": 4, "Deep": 5, "ResNet": 6, "Merge": 7}


def plan(cfg: MotherConfig, folder: Path) -> dict[int, list[zoo.ModelSpec]]:
    """Every node of the dataset, grouped in waves (wave k needs only waves < k)."""
    pl = Planner(cfg, folder)
    roots = [pl.root(r) for r in range(cfg.n_roots)]
    for subset in cfg.subsets:
        if subset not in SUBSET_KEYS:
            raise profiles.ProfileError(f"unknown MoTHer subset {subset!r}; valid: {list(SUBSET_KEYS)[:4]}")
        for r, root in enumerate(roots):
            pl.tree(subset, root, r, cfg.children, cfg.levels)
    if cfg.deep_levels:
        pl.tree("Deep", roots[0], 0, cfg.deep_children, cfg.deep_levels)
    if cfg.resnet_trees:
        pl.tree("ResNet", pl.root(0, "resnet"), 0, cfg.children, cfg.levels, kind="resnet")
    prev = roots[0]
    for s in range(1, cfg.chain_stages + 1):  # continued pre-training on new images: generalisation
        data = DataConfig(source=cfg.data.source, seed=200 + s, n_train=cfg.pretrain_images_per_class, n_test=10)
        prev = pl.add(s, f"chain{s}", {
            "mode": "pretrain", "hub": "", "kind": "vit", "size": cfg.vit_size, "init": pl.path(prev),
            "classes": _all_classes(), "data": asdict(data), "images_per_class": cfg.pretrain_images_per_class,
            "steps": cfg.root_steps // 2, "lr": cfg.root_lr / 2, "batch_size": cfg.root_batch_size,
            "weight_decay": 0.05, "seed": _seed(cfg, 5, s), "trace_every": cfg.trace_every, "subset": "Chain",
            "tree": roots[0], "parent": prev, "depth": s})
    bases = roots[:cfg.merge_roots]
    for a, b in itertools.combinations(range(len(bases)), 2):
        mid = pl.add(1, f"merge{a}{b}", {"mode": "average", "parents": [pl.path(bases[a]), pl.path(bases[b])],
                                         "parent_ids": [bases[a], bases[b]], "subset": "Merge", "tree": f"merge{a}{b}",
                                         "parent": None, "depth": 0})
        bases = [*bases, mid]
    for i, base in enumerate(bases):
        for j in range(cfg.merge_children):
            pl.child(1 if base.startswith("root") else 2, f"Merge-{base}-{j}", base, "ft", "vit", "Merge", base, 1,
                     (SUBSET_KEYS["Merge"], i, j))
    return dict(sorted(pl.waves.items()))


def settings(cfg: MotherConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k not in ("c", "c_grid", "prune_amounts", "quant_repeats",
                                                               "size_grid", "timing_sizes", "timing_dim")}


def folder_for(cfg: MotherConfig, profile: str, root: str | Path | None = None) -> Path:
    return Path(root or paths.data_dir() / "mother") / profile / f"dataset-{profiles.settings_hash(settings(cfg))}"


def build(cfg: MotherConfig, profile: str, executor: parallel.Executor = "process", n_workers: int | None = None,
          root: str | Path | None = None) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """Generate (or resume) the dataset. Returns (folder, manifest, per-wave timing)."""
    import time

    folder = folder_for(cfg, profile, root)
    waves = plan(cfg, folder)
    timing = []
    for w, specs in waves.items():
        missing = sum(not zoo.model_path(folder, s.model_id).exists() for s in specs)
        t0 = time.perf_counter()
        zoo.generate_zoos([zoo.ZooPlan(folder, specs, train_node, settings(cfg))], executor, n_workers,
                          desc=f"MoTHer wave {w}")
        timing.append({"wave": w, "models": len(specs), "trained": missing, "wall_s": time.perf_counter() - t0})
    return folder, open_dataset(folder), pd.DataFrame(timing)


def open_dataset(folder: str | Path) -> pd.DataFrame:
    """The manifest of a generated dataset: one row per model with model_id, path, subset, tree,
    parent, depth, mode, rank, lr and the kurtosis traces."""
    man = zoo.build_manifest(folder, write=False)
    need = {"subset", "tree", "parent", "depth", "mode"}
    missing = need - set(man.columns)
    if missing:
        raise zoo.ZooError(f"{folder}: not a MoTHer dataset (metadata lacks {sorted(missing)})")
    return man.sort_values("model_id").reset_index(drop=True)
