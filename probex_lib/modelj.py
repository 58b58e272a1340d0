"""Model Jungle (ProbeX paper, Section 5 and Appendix G), generated inside the kit.

Folders under ``data/modelj/<profile>/`` (each named by a hash of the settings it depends on,
so changing a parameter never mixes models of two settings):

* ``roots-<h>/``: the discriminative roots (supervised ViT, a second supervised ViT from other
  data and seed in place of DINO, an MAE, a ResNet; ``paper``: the hub checkpoints);
* ``diffusion-<h>/``: the generative tree's two upper levels (``sd_stage1`` pre-trained,
  ``sd_stage2`` continued on more data) and the stored prompt embeddings;
* ``discriminative-<h>/``: the fine-tuned classifiers, ``<tree>-<i>``;
* ``generative-<variant>-<h>/``: the LoRAs of one variant (``fine``: fewer classes, more models
  per class, like SD200; ``low``: more classes, fewer models, like SD1k).

Every model's metadata holds its hyperparameters, tree, parent, ``split`` (train / val /
test; ``holdout`` for LoRAs of held-out classes) and, for classifiers, its test accuracy.
"""
from __future__ import annotations

import functools
import importlib.resources
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import data, diffusion, lora, parallel, paths, profiles, vision, zoo
from .profiles import ModelJConfig

ROOT_KINDS = {"SupViT": "vit", "SupViT2": "vit", "DINO": "vit", "MAE": "mae", "ResNet": "resnet"}
DEFAULT_ROOTS = ("SupViT", "SupViT2", "MAE", "ResNet")
ROOT_FIELDS = ("classes", "pretrain_data", "continue_data", "hub", "vit_size", "mae_size", "resnet_size", "root_images_per_class",
               "root_epochs", "root_lr", "root_batch_size", "seed")
DISC_FIELDS = ROOT_FIELDS + ("data", "models_per_tree", "classes_per_model", "ft_lrs", "ft_epochs", "ft_batch_sizes",
                             "ft_images_per_class", "ft_weight_decays", "ft_head_init", "split")
DIFF_FIELDS = ("classes", "pretrain_data", "continue_data", "unet_size", "text_tokens", "unet_pretrain_steps",
               "unet_continue_steps", "unet_batch_size", "unet_lr", "cond_dropout", "seed")
GEN_FIELDS = DIFF_FIELDS + ("data", "lora_rank", "lora_steps", "lora_lrs", "lora_images", "variants", "split")


def _seed(cfg: ModelJConfig, *keys: int) -> int:
    return int(np.random.SeedSequence([cfg.seed, 7, *keys]).generate_state(1)[0] % (2**31))


def _settings(cfg: ModelJConfig, fields: tuple[str, ...]) -> dict[str, Any]:
    full = profiles.as_dict(cfg)
    return {f: full[f] for f in fields}


def zoo_dirs(cfg: ModelJConfig, profile: str, root: str | Path | None = None) -> dict[str, Path]:
    """Folders of every part of the zoo: keys roots, diffusion, discriminative, and one per variant."""
    base = Path(root) if root is not None else paths.data_dir() / "modelj" / profile

    def h(fields):
        return profiles.settings_hash(_settings(cfg, fields))

    out = {"roots": base / f"roots-{h(ROOT_FIELDS)}", "diffusion": base / f"diffusion-{h(DIFF_FIELDS)}",
           "discriminative": base / f"discriminative-{h(DISC_FIELDS)}"}
    for v in cfg.variants:
        out[v[0]] = base / f"generative-{v[0]}-{h(GEN_FIELDS)}"
    return out


def class_names(cfg: ModelJConfig) -> tuple[str, ...]:
    """All class names of the data source (procedural: 100 colour x shape names); index = class id."""
    if cfg.data.source == "procedural":
        return tuple(data.PROCEDURAL_CLASSES)
    return data.load_images(cfg.data.source, "test", 1, cfg.data.seed).class_names


def used_classes(cfg: ModelJConfig) -> list[int]:
    """Global ids of the classes the zoo uses (``cfg.classes``, or all); unknown names are an error."""
    names = class_names(cfg)
    if not cfg.classes:
        return list(range(len(names)))
    probe = data.ImageSet(np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), names, cfg.data.source)
    return sorted(probe.class_ids(list(cfg.classes)).tolist())


def root_names(cfg: ModelJConfig) -> list[str]:
    return list(cfg.hub) if cfg.hub else list(DEFAULT_ROOTS)


# --------------------------------------------------------------------------- discriminative


def _size(cfg: ModelJConfig, kind: str) -> dict:
    return {"vit": cfg.vit_size, "mae": cfg.mae_size, "resnet": cfg.resnet_size}[kind]


def root_specs(cfg: ModelJConfig) -> list[zoo.ModelSpec]:
    """One spec per discriminative root: pre-trained here, or loaded from the hub (``paper``)."""
    classes = used_classes(cfg)
    specs = []
    for r, name in enumerate(root_names(cfg)):
        if name not in ROOT_KINDS:
            raise profiles.ProfileError(f"unknown root {name!r} in 'hub'; valid roots: {sorted(ROOT_KINDS)}")
        kind = ROOT_KINDS[name]
        pdata = cfg.continue_data if name == "SupViT2" else cfg.pretrain_data  # other data for the second ViT
        specs.append(zoo.ModelSpec(name, {
            "kind": kind, "size": _size(cfg, kind), "classes": classes, "data": profiles.as_dict(pdata),
            "images_per_class": cfg.root_images_per_class, "epochs": cfg.root_epochs, "lr": cfg.root_lr,
            "batch_size": cfg.root_batch_size, "weight_decay": 0.05, "seed": _seed(cfg, 1, r), "init": "random",
            "objective": "hub" if cfg.hub else ("mae" if kind == "mae" else "classify"),
            "hub": cfg.hub.get(name), "tree": name, "parent": None, "split": "root",
        }))
    return specs


def finetune_specs(cfg: ModelJConfig, roots_dir: Path) -> list[zoo.ModelSpec]:
    """``models_per_tree`` fine-tunes per root, each on random classes with drawn hyperparameters
    (the kit's Table 7) and a split (train/val/test) drawn with the given fractions."""
    pool = used_classes(cfg)
    if cfg.classes_per_model > len(pool):
        raise profiles.ProfileError(f"classes_per_model={cfg.classes_per_model} exceeds the {len(pool)} classes in use")
    specs = []
    for r, name in enumerate(root_names(cfg)):
        kind = ROOT_KINDS[name]
        split = zoo.split_labels(cfg.models_per_tree, cfg.split, _seed(cfg, 2, r))
        for i in range(cfg.models_per_tree):
            rng = np.random.default_rng(_seed(cfg, 3, r, i))
            specs.append(zoo.ModelSpec(f"{name}-{i:04d}", {
                "kind": kind, "size": _size(cfg, kind), "data": profiles.as_dict(cfg.data),
                "classes": sorted(rng.choice(pool, cfg.classes_per_model, replace=False).tolist()),
                "lr": float(rng.choice(cfg.ft_lrs)), "epochs": int(rng.choice(cfg.ft_epochs)),
                "batch_size": int(rng.choice(cfg.ft_batch_sizes)),
                "images_per_class": int(rng.choice(cfg.ft_images_per_class)),
                "weight_decay": float(rng.choice(cfg.ft_weight_decays)), "flip": bool(rng.integers(2)),
                "head_init": cfg.ft_head_init,
                "seed": _seed(cfg, 4, r, i), "init": str(zoo.model_path(roots_dir, name).resolve()),
                "hub": cfg.hub.get(name), "objective": "classify", "tree": name, "parent": name, "split": split[i],
            }))
    return specs


# --------------------------------------------------------------------------- generative


def held_out_classes(names: list[str], classes: list[int], n_held: int, seed: int, tries: int = 1000) -> list[int]:
    """``n_held`` of ``classes`` whose every word group (colour, shape) also occurs in a training
    class, so zero-shot prediction is meaningful; drawn with ``seed``. Names that are not
    "colour shape" (CIFAR, ImageNet) are drawn at random."""
    rng = np.random.default_rng(seed)
    parts = [n.split(" ", 1) for n in names]
    two_part = all(len(p) == 2 for p in parts)
    for _ in range(tries):
        held = sorted(rng.choice(classes, n_held, replace=False).tolist())
        if not two_part:
            return held
        train = [c for c in classes if c not in held]
        colours, shapes = {parts[c][0] for c in train}, {parts[c][1] for c in train}
        if all(parts[c][0] in colours and parts[c][1] in shapes for c in held):
            return held
    raise profiles.ProfileError(f"cannot hold out {n_held} of {len(classes)} classes with every colour and shape still in training")


def variant_classes(cfg: ModelJConfig, v: int) -> tuple[list[int], list[int]]:
    """(classes, held-out classes) of variant number ``v`` (global class ids, sorted)."""
    name, n_cls, n_held, _ = cfg.variants[v]
    names, pool = list(class_names(cfg)), used_classes(cfg)
    if n_cls > len(pool) or n_held >= n_cls:
        raise profiles.ProfileError(f"variant {name!r}: {n_cls} classes with {n_held} held out does not fit {len(pool)} classes")
    rng = np.random.default_rng(_seed(cfg, 5, v))
    classes = sorted(rng.choice(pool, n_cls, replace=False).tolist())
    return classes, held_out_classes(names, classes, n_held, _seed(cfg, 6, v))


def prompts_file(dirs: dict[str, Path]) -> Path:
    return dirs["diffusion"] / "prompts.safetensors"


def diffusion_specs(cfg: ModelJConfig, dirs: dict[str, Path], stage: int) -> list[zoo.ModelSpec]:
    """Stage 1: pre-training from scratch; stage 2: continued on ``continue_data`` (the
    generative tree's second level, the paper's SD 1.2 -> 1.5)."""
    d = cfg.pretrain_data if stage == 1 else cfg.continue_data
    return [zoo.ModelSpec(f"sd_stage{stage}", {
        "size": cfg.unet_size, "data": profiles.as_dict(d), "classes": used_classes(cfg),
        "images_per_class": d.n_train, "steps": cfg.unet_pretrain_steps if stage == 1 else cfg.unet_continue_steps,
        "batch_size": cfg.unet_batch_size, "lr": cfg.unet_lr, "weight_decay": 0.0, "seed": _seed(cfg, 8, stage),
        "init": "random" if stage == 1 else str(zoo.model_path(dirs["diffusion"], "sd_stage1").resolve()),
        "prompts": str(prompts_file(dirs).resolve()), "cond_dropout": cfg.cond_dropout, "tree": "SD",
        "parent": None if stage == 1 else "sd_stage1", "split": "root",
    })]


def lora_specs(cfg: ModelJConfig, dirs: dict[str, Path], v: int) -> list[zoo.ModelSpec]:
    """The LoRAs of variant ``v``: ``models_per_class`` per class, each on 5-10 images of its class
    with the identifier prompt; models of held-out classes get split "holdout"."""
    name, _, _, per_class = cfg.variants[v]
    classes, held = variant_classes(cfg, v)
    names = class_names(cfg)
    train_classes = [c for c in classes if c not in held]
    split = zoo.split_labels(len(train_classes) * per_class, cfg.split, _seed(cfg, 9, v))
    specs, k = [], 0
    for c in classes:
        for j in range(per_class):
            rng = np.random.default_rng(_seed(cfg, 10, v, c, j))
            n_img = int(rng.integers(cfg.lora_images[0], cfg.lora_images[1] + 1))
            if c in held:
                s = "holdout"
            else:
                s, k = split[k], k + 1
            specs.append(zoo.ModelSpec(f"{name}-c{c:03d}-{j:02d}", {
                "base": str(zoo.model_path(dirs["diffusion"], "sd_stage2").resolve()), "size": cfg.unet_size,
                "data": profiles.as_dict(cfg.data), "class_id": int(c), "class_name": names[c],
                "image_ids": sorted(rng.choice(cfg.data.n_train, n_img, replace=False).tolist()),
                "rank": cfg.lora_rank, "steps": int(rng.choice(cfg.lora_steps)), "lr": float(rng.choice(cfg.lora_lrs)),
                "flip": bool(rng.integers(2)), "seed": _seed(cfg, 11, v, c, j), "prompts": str(prompts_file(dirs).resolve()),
                "prompt": diffusion.IDENTIFIER_PROMPT, "variant": name, "tree": "SD", "parent": "sd_stage2", "split": s,
            }))
    return specs


# --------------------------------------------------------------------------- building


@dataclass
class Jungle:
    """A generated zoo: its folders, the manifest of every part (keys as in :func:`zoo_dirs`)
    and, per wave, how many models this call trained and how long it took."""

    dirs: dict[str, Path]
    manifests: dict[str, pd.DataFrame]
    waves: pd.DataFrame


def cache_images(cfg: ModelJConfig) -> None:
    """Generate (or read) every image set the zoo trains on once, before the workers start."""
    for ds in {cfg.data, cfg.pretrain_data, cfg.continue_data}:
        for split, n in (("train", ds.n_train), ("test", ds.n_test)):
            data.load_images(ds.source, split, n, ds.seed)


def build(cfg: ModelJConfig, profile: str, executor: parallel.Executor = "process", n_workers: int | None = None,
          root: str | Path | None = None, parts: tuple[str, ...] = ("discriminative", "generative")) -> Jungle:
    """Generate (or resume) the whole Model Jungle.

    Three waves of independent tasks, longest first: (1) roots and diffusion stage 1,
    (2) diffusion stage 2 and all fine-tunes, (3) all LoRAs. Every wave is resumable.
    """
    unknown = sorted(set(parts) - {"discriminative", "generative"})
    if unknown:
        raise profiles.ProfileError(f"unknown part(s) {unknown}; valid parts: ['discriminative', 'generative']")
    dirs = zoo_dirs(cfg, profile, root)
    disc, gen = "discriminative" in parts, "generative" in parts
    cache_images(cfg)
    if gen and not prompts_file(dirs).exists():
        dirs["diffusion"].mkdir(parents=True, exist_ok=True)
        diffusion.write_prompt_embeddings(prompts_file(dirs), [diffusion.class_prompt(n) for n in class_names(cfg)]
                                          + [diffusion.IDENTIFIER_PROMPT], cfg.text_tokens)
    s_root, s_disc = _settings(cfg, ROOT_FIELDS), _settings(cfg, DISC_FIELDS)
    s_diff, s_gen = _settings(cfg, DIFF_FIELDS), _settings(cfg, GEN_FIELDS)
    waves: dict[str, list[zoo.ZooPlan]] = {"roots": [], "fine-tunes": [], "LoRAs": []}
    if gen:
        waves["roots"].append(zoo.ZooPlan(dirs["diffusion"], diffusion_specs(cfg, dirs, 1), diffusion.train_unet, s_diff))
        waves["fine-tunes"].append(zoo.ZooPlan(dirs["diffusion"], diffusion_specs(cfg, dirs, 2), diffusion.train_unet, s_diff))
        waves["LoRAs"] += [zoo.ZooPlan(dirs[v[0]], lora_specs(cfg, dirs, i), diffusion.train_lora, s_gen)
                           for i, v in enumerate(cfg.variants)]
    if disc:
        waves["roots"].append(zoo.ZooPlan(dirs["roots"], root_specs(cfg), vision.train_vision, s_root))
        waves["fine-tunes"].append(zoo.ZooPlan(dirs["discriminative"], finetune_specs(cfg, dirs["roots"]),
                                               vision.train_vision, s_disc))
    manifests: dict[str, pd.DataFrame] = {}
    timing = []
    for wave, plans in waves.items():
        if not plans:
            continue
        missing = sum(not zoo.model_path(p.zoo_dir, s.model_id).exists() for p in plans for s in p.specs)
        t0 = time.perf_counter()
        for plan, df in zip(plans, zoo.generate_zoos(plans, executor, n_workers, desc=f"Model-J {wave}")):
            manifests[next(k for k, d in dirs.items() if d == plan.zoo_dir)] = df
        timing.append({"wave": wave, "trained": missing, "wall_s": time.perf_counter() - t0})
    manifests["diffusion"] = zoo.build_manifest(dirs["diffusion"]) if gen else pd.DataFrame()
    return Jungle(dirs, manifests, pd.DataFrame(timing))


# --------------------------------------------------------------------------- public generative files


PUBLISHED_SPLITS = {"train": "train", "val": "val", "test": "test", "val_holdout": "holdout", "test_holdout": "holdout"}
"""Split folders of the public Model-J generative files -> the kit's split names (both held-out
folders hold models of the held-out classes: the kit's "holdout")."""
IMAGENET_TABLE = "resources/imagenet_classes.tsv"  # inside probex_lib; written by scripts/make_imagenet_classes.py
_WNID = re.compile(r"^n[0-9]{8}$")
_INT = re.compile(r"^-?[0-9]+$")


@functools.lru_cache(maxsize=1)
def _imagenet_rows() -> tuple[tuple[str, int, str], ...]:
    src = importlib.resources.files(__package__).joinpath(IMAGENET_TABLE)
    rows = [line.split("\t") for line in src.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return tuple((w, int(i), n) for w, i, n in rows[1:])  # rows[0]: the column names


def imagenet_classes() -> pd.DataFrame:
    """The ImageNet-1k classes (vendored from timm's WordNet tables): wnid, index (0-999, sorted
    wnids), name (first lemma, made unique: see the file's header)."""
    return pd.DataFrame(list(_imagenet_rows()), columns=["wnid", "index", "name"])


def _id_kind(v: Any) -> str:
    """'int', 'wnid', 'missing' or 'bad' for one class id read from metadata."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "missing"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return "int"
    if isinstance(v, str):
        return "wnid" if _WNID.match(v.strip()) else "int" if _INT.match(v.strip()) else "bad"
    return "bad"


def _class_columns(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """class_id (int) from metadata ``class_id`` or ``imagenet_class_id``; WordNet ids (the public
    files) become their ImageNet-1k index, with columns wnid and class_name."""
    if "class_id" not in df.columns and "imagenet_class_id" not in df.columns:
        raise zoo.ZooError(f"{root}: LoRA files carry neither 'class_id' nor 'imagenet_class_id' metadata")
    raw = df["class_id"].astype(object) if "class_id" in df.columns else pd.Series(None, index=df.index, dtype=object)
    if "imagenet_class_id" in df.columns:
        raw = raw.where(raw.notna(), df["imagenet_class_id"].astype(object))
    kinds = raw.map(_id_kind)
    if (kinds == "missing").any():
        raise zoo.ZooError(f"{df.loc[kinds == 'missing', 'path'].iloc[0]}: no class id in its metadata")
    if (kinds == "bad").any():
        i = kinds[kinds == "bad"].index[0]
        raise zoo.ZooError(f"{df.at[i, 'path']}: class id {raw[i]!r} is neither an integer nor a WordNet id (n + 8 digits)")
    if kinds.nunique() > 1:
        w, n = (kinds[kinds == k].index[0] for k in ("wnid", "int"))
        raise zoo.ZooError(f"mixed class ids: {df.at[w, 'path']} has WordNet id {raw[w]!r}, {df.at[n, 'path']} has integer "
                           f"id {raw[n]!r}; one folder must use one kind")
    if kinds.iloc[0] == "int":
        return df.assign(class_id=raw.map(int))
    table = {w: (i, name) for w, i, name in _imagenet_rows()}
    wnids = raw.map(lambda v: v.strip())
    unknown = ~wnids.isin(table)
    if unknown.any():
        i = unknown[unknown].index[0]
        raise zoo.ZooError(f"{df.at[i, 'path']}: imagenet_class_id {wnids[i]!r} is not one of the 1000 ImageNet-1k WordNet "
                           f"ids (probex_lib/{IMAGENET_TABLE})")
    return df.assign(class_id=wnids.map(lambda w: table[w][0]), wnid=wnids, class_name=wnids.map(lambda w: table[w][1]))


def _folder_split(model_id: str, root: Path) -> str | None:
    """The split folder in a model's path below ``root`` (the topmost one), else ``root``'s own name if it is one."""
    for part in (*Path(model_id).parts, root.name):
        if part in PUBLISHED_SPLITS:
            return part
    return None


def _split_columns(df: pd.DataFrame, root: Path, require_split: bool) -> pd.DataFrame:
    """split (the kit's names) and published_split (the name as recorded, e.g. val_holdout);
    ``split`` metadata wins over the folder."""
    meta = df["split"].astype(object) if "split" in df.columns else pd.Series(None, index=df.index, dtype=object)
    folder = df["model_id"].map(lambda m: _folder_split(m, root)).astype(object)
    missing = meta.isna() & folder.isna()
    if missing.all() and not require_split:
        return df
    if missing.all():
        raise zoo.ZooError(f"{root}: no split folders (expected {list(PUBLISHED_SPLITS)} as folder names below it) and no "
                           "'split' metadata in its LoRA files")
    if missing.any():
        raise zoo.ZooError(f"{df.loc[missing, 'path'].iloc[0]}: no split: no folder named one of {list(PUBLISHED_SPLITS)} "
                           f"in its path below {root}, and no 'split' metadata")
    published = meta.where(meta.notna(), folder)
    return df.assign(split=published.map(lambda s: PUBLISHED_SPLITS.get(s, s)), published_split=published)


def open_generative(path: str | Path, require_split: bool = True) -> pd.DataFrame:
    """Manifest of a folder of LoRAs: ours (``models/``, read as written) or other adapters, e.g.
    the public Model-J generative files: ``<path>/<split>/.../pytorch_lora_weights.safetensors``
    with the split folders of :data:`PUBLISHED_SPLITS` and the class in metadata
    ``imagenet_class_id`` as a WordNet id (``n02119789``) or an integer.

    Columns: path, model_id, metadata, class_id (int; for WordNet ids the ImageNet-1k index,
    plus wnid and class_name from :func:`imagenet_classes`), split (train / val / test /
    holdout; from the metadata, else the folder) and published_split (as recorded, e.g. val_holdout).
    Errors name the file: no class id, an unknown WordNet id, WordNet and integer ids mixed, a
    model with no split (``require_split=False``: a folder with no split at all is returned
    without one, for :func:`zeroshot.assign_generative_splits`).
    """
    path = Path(path)
    if (path / zoo.MODELS_SUBDIR).is_dir():
        return zoo.build_manifest(path, write=False)
    df = _class_columns(lora.scan_lora_folder(path), path)
    return _split_columns(df, path, require_split)


# --------------------------------------------------------------------------- dataset summaries


def accuracy_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of the fine-tuned classifiers per tree: n, mean, std, min, max, chance."""
    chance = 1 / manifest["classes"].map(len)
    g = manifest.assign(chance=chance).groupby("tree")
    return pd.DataFrame({
        "models": g.size(), "mean": g["test_accuracy"].mean(), "std": g["test_accuracy"].std(ddof=0),
        "min": g["test_accuracy"].min(), "max": g["test_accuracy"].max(), "chance": g["chance"].mean(),
    }).reset_index()


def dataset_table(manifests: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The kit's Table 9: per split, models, trees, architecture, parameters per model, disk size.

    ``manifests`` maps part name (discriminative, or a variant name) to its manifest.
    """
    rows = []
    for part, df in manifests.items():
        if part in ("roots", "diffusion") or not len(df):
            continue
        sizes = df["path"].map(lambda p: Path(p).stat().st_size)
        for tree, sub in df.groupby("tree"):
            rows.append({"split": "discriminative" if part == "discriminative" else f"generative ({part})",
                         "tree": tree, "models": len(sub), "architecture": sub["architecture"].iloc[0],
                         "parameters per model": int(sub["n_parameters"].iloc[0]),
                         "disk (MB)": float(sizes[sub.index].sum() / 2**20)})
    out = pd.DataFrame(rows)
    total = {"split": "total", "tree": str(len(out)), "models": int(out["models"].sum()), "architecture": "",
             "parameters per model": None, "disk (MB)": float(out["disk (MB)"].sum())}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def generative_layout(cfg: ModelJConfig, manifests: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (variant, class): role (train classes / held-out) and number of LoRAs."""
    names = class_names(cfg)
    rows = []
    for v, (name, *_rest) in enumerate(cfg.variants):
        classes, held = variant_classes(cfg, v)
        counts = manifests[name]["class_id"].value_counts() if name in manifests else pd.Series(dtype=int)
        rows += [{"variant": name, "class_id": c, "class_name": names[c], "role": "held-out" if c in held else "train",
                  "models": int(counts.get(c, 0))} for c in classes]
    return pd.DataFrame(rows)


def throughput(jungle: Jungle, workers: int) -> pd.DataFrame:
    """Models per minute per core of each wave that trained models in this run."""
    w = jungle.waves[jungle.waves["trained"] > 0].copy()
    w["wall (min)"] = w["wall_s"] / 60
    w["workers"] = workers
    w["models / min / core"] = w["trained"] / w["wall (min)"] / workers
    return w.drop(columns="wall_s")


# --------------------------------------------------------------------------- does personalisation work?


def root_classifier(cfg: ModelJConfig, dirs: dict[str, Path], name: str = "SupViT"):
    """The supervised ViT root as a classifier over the zoo's classes: a judge of generated
    images that never saw the LoRAs' training images (other data seed)."""
    model = vision.classifier_for(ROOT_KINDS[name], len(used_classes(cfg)), _size(cfg, ROOT_KINDS[name]))
    model.load_state_dict(zoo.load_tensors(zoo.model_path(dirs["roots"], name)))
    return model.eval()


def classify(model, images: np.ndarray, classes: list[int]) -> np.ndarray:
    """Global class ids predicted for uint8 (n, s, s, 3) images (upsampled to 32 x 32)."""
    import torch
    import torch.nn.functional as F

    from . import train

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False).round().clamp(0, 255)
    x = train.to_input(x.permute(0, 2, 3, 1).byte().numpy())
    with torch.no_grad():
        local = model(pixel_values=x).logits.argmax(1).numpy()
    return np.asarray(classes)[local]


def pick_loras(manifest: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A fixed, seeded choice of ``n`` LoRAs (not cherry-picked), half from held-out classes when present."""
    rng = np.random.default_rng(seed)
    held = manifest[manifest["split"] == "holdout"]
    rest = manifest[manifest["split"] != "holdout"]
    k = min(len(held), n // 2)
    pick = [held.iloc[i] for i in sorted(rng.choice(len(held), k, replace=False))] if k else []
    pick += [rest.iloc[i] for i in sorted(rng.choice(len(rest), min(len(rest), n - k), replace=False))]
    return pd.DataFrame(pick).reset_index(drop=True)


def personalisation(cfg: ModelJConfig, jungle: Jungle, variant: str, n_models: int, n_samples: int,
                    seed: int = 0, steps: int = 25) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Sample ``n_samples`` images from each of ``n_models`` seeded LoRAs of ``variant`` with the
    identifier prompt, and judge them with the supervised ViT root.

    Conditions per LoRA: ``lora`` (LoRA, identifier prompt), ``base`` (no LoRA, identifier
    prompt: the control), ``class prompt`` (no LoRA, "a <class>": what pre-training learnt),
    ``real`` (the LoRA's own training images at the UNet's resolution: the judge's ceiling).
    Returns a table of class / colour / shape agreement per LoRA and condition, and the
    images per LoRA (key: model_id; value: (n_samples, s, s, 3) uint8 LoRA samples).
    """
    names = class_names(cfg)
    classes = used_classes(cfg)
    judge = root_classifier(cfg, jungle.dirs)
    size = cfg.unet_size
    base_state = zoo.load_tensors(zoo.model_path(jungle.dirs["diffusion"], "sd_stage2"))
    base = diffusion.unet_from_state(base_state, size)
    pfile = str(prompts_file(jungle.dirs))
    ident = diffusion.prompt_embedding(pfile, [diffusion.IDENTIFIER_PROMPT])
    pool = data.load_images(cfg.data.source, "train", cfg.data.n_train, cfg.data.seed)
    rows, samples = [], {}
    picked = pick_loras(jungle.manifests[variant], n_models, seed)
    for i, m in enumerate(picked.itertuples()):
        own = pool.subset([m.class_id]).images[np.asarray(m.image_ids)]
        real = (diffusion.to_pixels(own, size["image_size"]).permute(0, 2, 3, 1).add(1).mul(127.5).round().byte().numpy())
        s = seed * 1000 + i
        imgs = {
            "lora": diffusion.sample(diffusion.unet_from_state(diffusion.merge_lora(base_state, m.path), size), ident, n_samples, s, size, steps),
            "base": diffusion.sample(base, ident, n_samples, s, size, steps),
            "class prompt": diffusion.sample(base, diffusion.prompt_embedding(pfile, [diffusion.class_prompt(names[m.class_id])]),
                                             n_samples, s, size, steps),
            "real": real,
        }
        samples[m.model_id] = imgs["lora"]
        true_colour, true_shape = names[m.class_id].split(" ", 1) if " " in names[m.class_id] else (names[m.class_id], "")
        for cond, im in imgs.items():
            pred = [names[c] for c in classify(judge, im, classes)]
            rows.append({"model_id": m.model_id, "class_name": names[m.class_id], "split": m.split, "condition": cond,
                         "class acc": float(np.mean([p == names[m.class_id] for p in pred])),
                         "colour acc": float(np.mean([p.split(" ", 1)[0] == true_colour for p in pred])),
                         "shape acc": float(np.mean([p.split(" ", 1)[-1] == true_shape for p in pred]))})
    return pd.DataFrame(rows), samples


def _paired_gain(table: pd.DataFrame, metric: str, treated: str, control: str) -> tuple[float, float]:
    """Mean per-LoRA difference of ``metric`` (treated - control) and its standard error."""
    wide = table.pivot_table(index="model_id", columns="condition", values=metric)
    diff = (wide[treated] - wide[control]).to_numpy()
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return float(diff.mean()), se


def judge_dataset(cfg: ModelJConfig, jungle: Jungle, judged: pd.DataFrame | None) -> list:
    """Claims record of notebook 02 (are the classifiers real, do the LoRAs carry their class?),
    judged by :mod:`verdicts`."""
    from . import verdicts

    out = []
    disc = jungle.manifests.get("discriminative")
    if disc is not None and len(disc):
        acc = accuracy_table(disc)
        ratio = acc["mean"] / acc["chance"]
        out.append(verdicts.judge(
            "MJ-acc", {"ratio_to_chance": ratio.tolist()},
            "; ".join(f"{r.tree} {r.mean:.3f}±{r.std:.3f} (chance {r.chance:.3f})" for r in acc.itertuples()),
            "fig17_21_accuracy_histograms.png", {"per_tree": acc.to_dict("records")}))
    if judged is not None and len(judged):
        gains = {m: _paired_gain(judged, m, "lora", "base") for m in ("class acc", "colour acc", "shape acc")}
        out.append(verdicts.judge(
            "MJ-lora", {"gains": {m: list(g) for m, g in gains.items()}},
            "; ".join(f"{m} +{g:.3f}±{se:.3f} over the base model" for m, (g, se) in gains.items()),
            "modelj_personalisation.png",
            {"means": judged.groupby("condition")[["class acc", "colour acc", "shape acc"]].mean().to_dict()}))
    return out
