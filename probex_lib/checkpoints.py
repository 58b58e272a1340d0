"""Checkpoints a user hands us: a folder (or files and folders) -> model entries, one layer at a time.

Layouts understood (folders are searched recursively; hidden files and folders, partial
downloads and writes ``*.tmp`` / ``*.incomplete``, and everything that is not a checkpoint,
e.g. ``manifest.csv`` or ``*.json``, are ignored):

* single ``*.safetensors`` files; id = path relative to the input folder, without suffix. The
  kit's zoos (``<zoo>/models/<model_id>.safetensors``) are such files; a kit zoo folder
  (``zoo.json`` beside ``models/``) contributes only ``models/``, not e.g. ``prompts.safetensors``;
* Hugging Face ``save_pretrained`` folders: ``model.safetensors``, or shards
  ``model-0000k-of-0000n.safetensors`` with or without ``model.safetensors.index.json`` (checked:
  every shard present, every tensor in the shard its index names); diffusers
  ``diffusion_pytorch_model[-0000k-of-0000n].safetensors`` likewise. id = the folder; a Hugging
  Face cache snapshot ``<repo>/snapshots/<hash>`` named by ``<repo>/refs/main`` has id ``<repo>``;
* LoRA adapters: peft folders (``adapter_model.safetensors`` + ``adapter_config.json``), diffusers
  ``pytorch_lora_weights.safetensors``, and single files whose every tensor is a LoRA matrix (the
  kit's generative zoo). An adapted layer reads as ``W0 + scaling * B @ A``; other tensors of a
  peft adapter (``modules_to_save``, e.g. a new head) replace the base tensor of the same name.

With several inputs, each folder's ids are prefixed by its name; a file input's id is its
stem (a model folder's file: the folder's name). Pickled checkpoints (``.bin .pt .pth .ckpt
.pkl``) are never unpickled: one is an error, unless its folder holds the same model as
safetensors (``pytorch_model.bin`` beside ``model.safetensors``) or it is Trainer state beside
such a model (``optimizer.pt``, ``training_args.bin``, ...). Discovery reads only headers and
small JSON files; :func:`read_tensor` reads one tensor of one model.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from . import lora, zoo

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
FOLDER_WEIGHTS = ("model.safetensors", "diffusion_pytorch_model.safetensors")
ADAPTER_FILES = lora.LORA_FILENAMES
CONFIG_FIELDS = ("model_type", "architectures", "_class_name")  # config.json fields copied into metadata
ADAPTER_FIELDS = ("peft_type", "r", "lora_alpha")  # adapter_config.json fields copied into metadata
BASE_PREFIXES = ("base_model.model.", "unet.", "transformer.", "text_encoder.")  # adapter key prefixes the base lacks

_SHARD = re.compile(r"^(?P<prefix>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.safetensors$")
_INDEX = ".safetensors.index.json"
_PARTIAL = (".tmp", ".incomplete", ".part", ".lock")
_PICKLE_TWIN = re.compile(r"^(?P<stem>pytorch_model|diffusion_pytorch_model)(-\d{5}-of-\d{5})?\.bin$")
_TRAINER_STATE = re.compile(r"^(training_args\.bin|optimizer\.(pt|bin)|scheduler\.(pt|bin)|scaler\.pt|"
                            r"rng_state(_\d+)?\.pth|random_states_\d+\.pkl)$")

Index = dict[str, tuple[Path, tuple[int, ...]]]


class CheckpointError(ValueError):
    """Checkpoints that cannot be used as given; the message names the file and what was expected."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of a collection: where its tensors are and what it says about itself.

    base: adapters only, the id of their base entry in the collection, or the path of the base
    checkpoint; base_files: that base's safetensors files (so an entry reads on its own).
    """

    id: str
    files: tuple[Path, ...]
    kind: str  # "full" or "adapter"
    base: str | None
    declared_base: str | None
    metadata: dict[str, str] = field(hash=False)
    scaling: float = 1.0
    base_files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class _Found:
    folder: Path
    files: tuple[Path, ...]
    layout: str  # "single" (one file among others), "folder" (save_pretrained), "adapter" (peft/diffusers LoRA)


# --------------------------------------------------------------------------- finding files


def _walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """(folder, visible sub-folders, visible complete files) for root and below, sorted."""
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        yield Path(d), dirs, sorted(f for f in files if not f.startswith(".") and not f.endswith(_PARTIAL))


def _indexed_shards(index: Path, names: Sequence[str]) -> tuple[Path, ...]:
    """The shards ``index`` names, checked: all present, none beside it unnamed, tensors where it says."""
    data = _read_json(index)
    wm = data.get("weight_map")
    if not isinstance(wm, dict) or not wm or not all(isinstance(v, str) for v in wm.values()):
        raise CheckpointError(f"{index}: expected a 'weight_map' of tensor name -> shard file name")
    shards = sorted(set(wm.values()))
    for s in shards:
        if not (index.parent / s).is_file():
            raise CheckpointError(f"{index}: shard {s!r} is missing (the index names {len(shards)} shards)")
    counts = {int(m["n"]) for s in shards if (m := _SHARD.match(s))}
    if counts and counts != {len(shards)}:
        raise CheckpointError(f"{index}: names {len(shards)} shards, but their file names count {sorted(counts)}")
    prefix = index.name[: -len(_INDEX)]
    stray = [n for n in names if (m := _SHARD.match(n)) and m["prefix"] == prefix and n not in shards]
    if stray:
        raise CheckpointError(f"{index}: does not name {stray[0]!r}, a shard beside it (left from another save?)")
    headers = {s: zoo.read_header(index.parent / s)[0] for s in shards}
    for tensor, s in wm.items():
        if tensor not in headers[s]:
            raise CheckpointError(f"{index}: tensor {tensor!r} is not in {s}, where its weight_map says it is")
    for s, header in headers.items():
        extra = sorted(set(header) - {t for t, s2 in wm.items() if s2 == s})
        if extra:
            raise CheckpointError(f"{index.parent / s}: holds tensor {extra[0]!r}, which {index.name} does not map to it")
    return tuple(index.parent / s for s in shards)


def _complete_shards(folder: Path, prefix: str, names: Sequence[str]) -> tuple[Path, ...]:
    """Shards ``prefix-0000k-of-0000n.safetensors`` without an index: all n of one save present."""
    counts = sorted({int(_SHARD.match(n)["n"]) for n in names})
    if len(counts) > 1:
        raise CheckpointError(f"{folder}: shards of {len(counts)} different saves of {prefix!r} ({list(names)[:4]}); keep one")
    expected = [f"{prefix}-{i:05d}-of-{counts[0]:05d}.safetensors" for i in range(1, counts[0] + 1)]
    for n in names:
        if n not in expected:
            raise CheckpointError(f"{folder / n}: shard number beyond its count of {counts[0]}")
    missing = [e for e in expected if e not in names]
    if missing:
        raise CheckpointError(f"{folder / missing[0]}: shard missing ({len(names)} of {counts[0]} shards of {prefix!r} present)")
    return tuple(folder / e for e in expected)


def _has_twin(name: str, names: Sequence[str], has_model: bool) -> bool:
    """True if pickle ``name`` is the same model as a safetensors file beside it, or Trainer state."""
    stem = name.rsplit(".", 1)[0]
    if f"{stem}.safetensors" in names:
        return True
    m = _PICKLE_TWIN.match(name)
    if m:
        target = "model" if m["stem"] == "pytorch_model" else m["stem"]
        return any(n == f"{target}.safetensors" or n == f"{target}{_INDEX}" or
                   ((s := _SHARD.match(n)) is not None and s["prefix"] == target) for n in names)
    return has_model and bool(_TRAINER_STATE.match(name))


def _scan_folder(folder: Path, names: Sequence[str], kit_zoo: bool = False) -> tuple[list[_Found], list[Path]]:
    """(checkpoints in ``folder`` itself, pickles that are not twins of one of them)."""
    st = [] if kit_zoo else [n for n in names if n.endswith(".safetensors")]
    groups: list[_Found] = []
    claimed: set[str] = set()
    for idx in ([] if kit_zoo else [n for n in names if n.endswith(_INDEX)]):
        files = _indexed_shards(folder / idx, names)
        groups.append(_Found(folder, files, "folder"))
        claimed |= {f.name for f in files}
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for n in st:
        if (m := _SHARD.match(n)) and n not in claimed:
            by_prefix[m["prefix"]].append(n)
    for prefix, shard_names in by_prefix.items():
        groups.append(_Found(folder, _complete_shards(folder, prefix, shard_names), "folder"))
        claimed |= set(shard_names)
    for n in st:
        if n not in claimed and n in FOLDER_WEIGHTS + ADAPTER_FILES:
            groups.append(_Found(folder, (folder / n,), "adapter" if n in ADAPTER_FILES else "folder"))
            claimed.add(n)
    if len(groups) > 1:
        raise CheckpointError(f"{folder}: holds {len(groups)} save_pretrained checkpoints ({', '.join(g.files[0].name for g in groups)}); "
                              f"a model folder holds one: move the others into folders of their own")
    singles = [_Found(folder, (folder / n,), "single") for n in st if n not in claimed]
    pickles = [folder / n for n in names if n.lower().endswith(PICKLE_SUFFIXES) and not _has_twin(n, names, bool(st))]
    return groups + singles, pickles


def _snapshot_folder(d: Path) -> Path:
    """``d`` with a Hugging Face cache snapshot ``<repo>/snapshots/<hash>`` that ``<repo>/refs/main``
    names replaced by ``<repo>`` (``.../snapshots/<hash>/unet`` -> ``<repo>/unet``); other folders unchanged."""
    for s in (d, *d.parents):
        if s.parent.name == "snapshots":
            ref = s.parent.parent / "refs" / "main"
            if ref.is_file() and ref.read_text().strip() == s.name:
                return s.parent.parent / d.relative_to(s)
            return d
    return d


def _model_id(root: Path, found: _Found, multi: bool) -> str:
    rel = Path(os.path.relpath(_snapshot_folder(found.folder), root))
    if rel.parts[:1] == ("..",):  # the input is itself a snapshot: its repo names it below
        rel = Path(os.path.relpath(found.folder, root))
    if found.layout == "single":
        rel = rel / found.files[0].name[: -len(".safetensors")]
    parts = [_snapshot_folder(root.resolve()).name] if multi or rel == Path(".") else []
    return "/".join(parts + ([rel.as_posix()] if rel != Path(".") else []))


def _pickle_error(p: Path, more: int = 0) -> CheckpointError:
    extra = f" ({more} more pickled file(s) beside it or below)" if more else ""
    return CheckpointError(f"{p}: pickled checkpoints are never loaded; convert it to safetensors{extra}")


def _found_in_file(p: Path) -> tuple[str, _Found]:
    """An input that is a file: a single checkpoint, or the model folder it belongs to."""
    name = p.name
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise _pickle_error(p)
    if not (name.endswith((".safetensors", _INDEX)) or name == "adapter_config.json"):
        raise CheckpointError(f"{p}: not a checkpoint (expected a .safetensors file, a model folder, or a folder of checkpoints)")
    names = sorted(f.name for f in p.parent.iterdir() if f.is_file())
    groups, _ = _scan_folder(p.parent, names)
    for g in groups:
        if p.name in {f.name for f in g.files} or (g.layout != "single" and not name.endswith(".safetensors")):
            stem = name[: -len(".safetensors")] if g.layout == "single" else _snapshot_folder(p.parent).resolve().name
            return stem, g
    raise CheckpointError(f"{p}: no safetensors checkpoint of this model beside it")


def _found_in(root: Path, multi: bool) -> list[tuple[str, _Found]]:
    if not root.exists():
        raise CheckpointError(f"{root}: not a folder or a checkpoint file (it does not exist)")
    if root.is_file():
        return [_found_in_file(root)]
    out, pickles = [], []
    for d, dirs, names in _walk(root):
        groups, bad = _scan_folder(d, names, kit_zoo=zoo.SETTINGS_FILE in names and zoo.MODELS_SUBDIR in dirs)
        out += [(_model_id(root, g, multi), g) for g in groups]
        pickles += bad
    if pickles:
        raise _pickle_error(pickles[0], len(pickles) - 1)
    if not out:
        raise CheckpointError(f"{root}: no .safetensors checkpoints found (searched all sub-folders)")
    return out


# --------------------------------------------------------------------------- what a model says


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _unquote(v: str) -> str:
    v = v.strip()
    if v[:1] in "\"'":
        return v[1:].split(v[0], 1)[0]
    return v.split(" #", 1)[0].strip()


def readme_base_model(readme: Path) -> str | None:
    """``base_model`` of a model card's YAML front matter (a list: its first item), else None."""
    lines = readme.read_text(errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i, line in enumerate(lines[1:], 1):
        if line.strip() in ("---", "..."):
            return None
        m = re.match(r"base_model\s*:(.*)$", line)
        if not m:
            continue
        value = m[1].strip()
        if value.startswith("["):
            items = [_unquote(x) for x in value.strip("[]").split(",") if x.strip()]
            return items[0] if items else None
        if value and not value.startswith("#"):
            return _unquote(value) or None
        item = re.match(r"\s*-\s*(.+)$", lines[i + 1]) if i + 1 < len(lines) else None
        return _unquote(item[1]) if item else None
    return None


def _lora_scaling(cfg: Mapping[str, Any], source: Path) -> float:
    """lora_alpha / r (rsLoRA: / sqrt(r)) of a peft LoraConfig dict; per-layer variants are errors."""
    if cfg.get("peft_type", "LORA") != "LORA":
        raise CheckpointError(f"{source}: peft_type {cfg['peft_type']!r} is not supported (only LORA adapters)")
    for key in ("rank_pattern", "alpha_pattern", "use_dora", "fan_in_fan_out"):
        if cfg.get(key):
            raise CheckpointError(f"{source}: {key} is set, which the kit does not support "
                                  f"(it merges W + lora_alpha / r * B @ A with one r and alpha for every layer)")
    r, alpha = cfg.get("r"), cfg.get("lora_alpha", cfg.get("r"))
    if r is None:
        return 1.0
    if not all(isinstance(x, (int, float)) and x > 0 for x in (r, alpha)):
        raise CheckpointError(f"{source}: expected positive numbers r and lora_alpha, got r={r!r}, lora_alpha={alpha!r}")
    return float(alpha) / (math.sqrt(r) if cfg.get("use_rslora") else float(r))


def _metadata_scaling(raw: Mapping[str, str], path: Path) -> float:
    """Scaling from diffusers' ``lora_adapter_metadata`` (plain or per component ``unet.r``), else 1.0."""
    text = raw.get("lora_adapter_metadata")
    if not text:
        return 1.0
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata 'lora_adapter_metadata' is not JSON ({exc})") from None
    if "r" in cfg:
        return _lora_scaling(cfg, path)
    parts: dict[str, dict] = defaultdict(dict)
    for k, v in cfg.items():
        if "." in k:
            parts[k.split(".", 1)[0]][k.split(".", 1)[1]] = v
    scalings = {_lora_scaling(c, path) for c in parts.values()}
    if len(scalings) > 1:
        raise CheckpointError(f"{path}: components {sorted(parts)} have different LoRA scalings {sorted(scalings)}; not supported")
    return scalings.pop() if scalings else 1.0


def _lora_key(key: str) -> tuple[str, str] | None:
    """(layer, "A" or "B") of a LoRA tensor name, else None (patterns of :mod:`probex_lib.lora`)."""
    for pattern, which in lora._PATTERNS:
        m = pattern.match(key)
        if m:
            return m["layer"], which
    return None


def _folder_card(d: Path, adapter: bool) -> tuple[dict[str, str], str | None, str, dict[str, Any]]:
    """What a model folder's config.json, adapter_config.json and README.md say: (metadata
    fields, declared base, the file naming it, adapter_config)."""
    cfg = _read_json(d / "config.json") if (d / "config.json").is_file() else {}
    acfg = _read_json(d / "adapter_config.json") if adapter and (d / "adapter_config.json").is_file() else {}
    fields = {k: ",".join(map(str, src[k])) if isinstance(src[k], list) else str(src[k])
              for k, src in [(k, cfg) for k in CONFIG_FIELDS] + [(k, acfg) for k in ADAPTER_FIELDS] if k in src}
    for name, value in (("adapter_config.json", acfg.get("base_model_name_or_path")),
                        ("README.md", readme_base_model(d / "README.md") if (d / "README.md").is_file() else None),
                        ("config.json", cfg.get("base_model"))):
        if isinstance(value, str) and value:
            return fields, value, name, acfg
    return fields, None, "", acfg


def _entry(mid: str, found: _Found) -> tuple[ModelEntry, str]:
    """The entry (adapters without their base yet) and which file declared its base."""
    headers = [zoo.read_header(f) for f in found.files]  # validates every file; errors name it
    _files_index(found.files, headers=[h for h, _ in headers])
    raw = dict(headers[0][1])
    adapter = found.layout == "adapter" or (found.layout == "single" and bool(headers[0][0])
                                            and all(_lora_key(k) for k in headers[0][0]))
    fields, declared, source, acfg = _folder_card(found.folder, adapter) if found.layout != "single" else ({}, None, "", {})
    decoded = zoo.decode_metadata(raw)
    for key in ("base_model", "base") if adapter else ("base_model",):  # "base": the kit's LoRA zoo
        if declared is None and isinstance(decoded.get(key), str) and decoded[key]:
            declared, source = decoded[key], f"its metadata {key!r}"
    scaling = 1.0
    if adapter:
        scaling = _lora_scaling(acfg, found.folder / "adapter_config.json") if acfg else _metadata_scaling(raw, found.files[0])
    meta = {**fields, **raw}  # the file's own metadata wins
    return ModelEntry(mid, found.files, "adapter" if adapter else "full", None, declared, meta, scaling), source


# --------------------------------------------------------------------------- adapters and their bases


def _match_base(name: str, index: Mapping[str, Any]) -> str | None:
    """The tensor of ``index`` an adapter tensor ``name`` stands for (peft / diffusers prefixes stripped)."""
    candidates = [name] + [name.removeprefix(p) for p in BASE_PREFIXES if name.startswith(p)]
    return next((c for c in candidates if c in index), None)


@dataclass(frozen=True)
class _Plan:
    pairs: dict[str, tuple[str, str]]  # base weight -> (B key, A key) in the adapter file
    replaced: dict[str, tuple[str, tuple[int, ...]]]  # base tensor -> (adapter key, shape): peft modules_to_save


def _adapter_plan(path: Path, index: Mapping[str, tuple[Path, tuple[int, ...]]]) -> _Plan:
    """Which base tensor each adapter tensor changes, checked against ``index`` from headers only."""
    header, _ = zoo.read_header(path)
    parts: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = defaultdict(dict)
    replaced = {}
    for key, info in header.items():
        lk = _lora_key(key)
        if lk:
            parts[lk[0]][lk[1]] = (key, tuple(info["shape"]))
            continue
        target = _match_base(key, index)
        if target is None:
            raise CheckpointError(f"{path}: tensor {key!r} is neither a LoRA matrix nor a tensor of the base checkpoint")
        replaced[target] = (key, tuple(info["shape"]))
    if not parts:
        raise CheckpointError(f"{path}: no LoRA tensors (expected keys ending in .lora.up/.lora.down.weight or .lora_A/.lora_B.weight)")
    pairs: dict[str, tuple[str, str]] = {}
    for layer in sorted(parts):
        p = parts[layer]
        if set(p) != {"A", "B"}:
            raise CheckpointError(f"{path}: layer {layer!r} has no LoRA {'B (up)' if 'B' not in p else 'A (down)'} matrix")
        (bk, b), (ak, a) = p["B"], p["A"]
        if len(b) < 2 or len(a) < 2 or b[1] != a[0] or any(s != 1 for s in b[2:]):
            raise CheckpointError(f"{path}: layer {layer!r} has B {b} and A {a}, which do not multiply")
        key = _match_base(f"{layer}.weight", index)
        if key is None:
            raise CheckpointError(f"{path}: adapter layer {layer!r} has no matching weight in the base checkpoint")
        merged = (b[0], *a[1:])
        if index[key][1] != merged:
            raise CheckpointError(f"{path}: adapter layer {layer!r} is {'x'.join(map(str, merged))}, base weight {key!r} is {index[key][1]}")
        if key in pairs or key in replaced:
            raise CheckpointError(f"{path}: base weight {key!r} is changed by two adapter entries (layer {layer!r})")
        pairs[key] = (bk, ak)
    return _Plan(pairs, replaced)


def _find_base(name: str, fulls: Mapping[str, ModelEntry]) -> list[str]:
    """Ids of ``fulls`` that a declared base name (hub id, path or file) refers to."""
    if name in fulls:
        return [name]
    last = name.rstrip("/").split("/")[-1].removesuffix(".safetensors")
    hub = "models--" + name.strip("/").replace("/", "--")
    hits = [i for i in fulls if i.split("/")[-1] in (last, hub)]
    # a diffusion pipeline's LoRA adapts its denoiser: <pipeline>/unet or <pipeline>/transformer
    return hits or [i for i in fulls if len(i.split("/")) > 1 and i.split("/")[-2] in (last, hub)
                    and i.split("/")[-1] in ("unet", "transformer")]


def _base_from_path(p: Path, fulls: Mapping[str, ModelEntry]) -> tuple[str, tuple[Path, ...]]:
    """(base reference, its files) for a base checkpoint at ``p``: the collection's id if it is one of them."""
    entries = discover(p)
    if len(entries) != 1 or entries[0].kind != "full":
        raise CheckpointError(f"{p}: expected one full base checkpoint, found {[(e.id, e.kind) for e in entries][:4]}")
    files = {f.resolve() for f in entries[0].files}
    same = [i for i, e in fulls.items() if {f.resolve() for f in e.files} == files]
    return (same[0], fulls[same[0]].files) if same else (str(p), entries[0].files)


def _resolve_base(e: ModelEntry, source: str, fulls: Mapping[str, ModelEntry]) -> tuple[str, tuple[Path, ...]]:
    what = f"{e.files[0]}: {e.id!r} is a LoRA adapter without its base"
    if e.declared_base is None:
        raise CheckpointError(f"{what}: it names no base model; pass the base checkpoint (base=..., --base)")
    hits = _find_base(e.declared_base, fulls)
    if len(hits) > 1:
        raise CheckpointError(f"{what}: {source} names base {e.declared_base!r}, which matches {hits[:4]}; pass --base")
    if hits:
        return hits[0], fulls[hits[0]].files
    if Path(e.declared_base).is_absolute() and Path(e.declared_base).exists():
        return _base_from_path(Path(e.declared_base), fulls)
    raise CheckpointError(f"{what}: {source} names base {e.declared_base!r}, which is not in the folder; pass --base")


def discover(inputs: str | Path | Sequence[str | Path], base: str | Path | None = None) -> list[ModelEntry]:
    """Every model in ``inputs`` (folders, searched recursively, and files), sorted by id.

    base: the base checkpoint of the LoRA adapters (an id of the collection or a path). Without
    it an adapter's base is the entry its own files name (adapter_config.json, README.md front
    matter, metadata ``base_model`` or, in the kit's LoRA zoo, ``base``), matched by id, by last
    path component, as a hub cache folder ``models--org--name``, as a pipeline's ``<name>/unet``
    (or ``/transformer``), or as an existing absolute path; otherwise it is an error. Each
    adapter is checked against its base from headers: every LoRA layer must fit a base weight.
    """
    roots = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    if not roots:
        raise CheckpointError("no inputs given: expected folders or .safetensors files")
    found: dict[str, _Found] = {}
    for root in roots:
        for mid, f in _found_in(root, len(roots) > 1):
            if mid in found:
                raise CheckpointError(f"{f.files[0]} and {found[mid].files[0]}: two checkpoints get the model id {mid!r}; "
                                      f"rename one, or pass their common parent folder")
            found[mid] = f
    made = {mid: _entry(mid, found[mid]) for mid in sorted(found)}
    fulls = {mid: e for mid, (e, _) in made.items() if e.kind == "full"}
    explicit = None
    if base is not None:
        if str(base) in fulls:
            explicit = (str(base), fulls[str(base)].files)
        elif not Path(base).exists():
            raise CheckpointError(f"{base}: base checkpoint not found (neither a path nor a model id of the inputs)")
        else:
            explicit = _base_from_path(Path(base), fulls)
    out, base_indexes = [], {}
    for mid, (e, source) in made.items():
        if e.kind == "adapter":
            ref, files = explicit or _resolve_base(e, source, fulls)
            if files not in base_indexes:
                base_indexes[files] = _files_index(files)
            _adapter_plan(e.files[0], base_indexes[files])
            e = replace(e, base=ref, base_files=files)
        out.append(e)
    return out


# --------------------------------------------------------------------------- reading


def _files_index(files: Sequence[Path], headers: Sequence[Mapping[str, Any]] | None = None) -> Index:
    """{tensor name: (file, shape)} over ``files`` from validated headers; shards must not overlap."""
    index: Index = {}
    for i, f in enumerate(files):
        header = headers[i] if headers is not None else zoo.read_header(f)[0]
        for k, info in header.items():
            if k in index:
                raise CheckpointError(f"{f}: tensor {k!r} is also in {index[k][0]}; shards of one model must not overlap")
            index[k] = (f, tuple(info["shape"]))
    return index


def tensor_index(entry: ModelEntry, base_index: Index | None = None) -> Index:
    """{tensor name: (file holding it, shape)} from validated headers only (no tensor is read).

    Adapters: the merged model's tensors, i.e. their base's (``base_index`` if given), with the
    tensors the adapter replaces (peft ``modules_to_save``) pointing at the adapter file.
    """
    if entry.kind != "adapter":
        return _files_index(entry.files)
    if not entry.base_files:
        raise CheckpointError(f"{entry.files[0]}: adapter {entry.id!r} has no base checkpoint; discover it with base=")
    index = dict(base_index if base_index is not None else _files_index(entry.base_files))
    plan = _adapter_plan(entry.files[0], index)
    index.update({k: (entry.files[0], shape) for k, (_, shape) in plan.replaced.items()})
    return index


def _delta(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """B @ A in float64 for linear (B (d_out, r), A (r, d_in)) and conv LoRAs (A (r, in, k, k)): (d_out, prod(A.shape[1:]))."""
    return b.double().reshape(b.shape[0], -1) @ a.double().reshape(a.shape[0], -1)


def read_tensor(entry: ModelEntry, key: str, index: Index | None = None, base_index: Index | None = None) -> torch.Tensor:
    """One tensor of one model as float64, with its shape from the header; reads only that tensor
    (adapters: the base tensor and the layer's B and A). NaN or Inf weights are an error naming
    file and tensor. Pass ``index`` = tensor_index(entry) (and for adapters ``base_index``) when
    reading many layers, so headers are parsed once."""
    if index is None:
        index = tensor_index(entry, base_index)
    if key not in index:
        raise CheckpointError(f"{entry.files[0]}: model {entry.id!r} has no tensor {key!r} ({len(index)} tensors, e.g. {sorted(index)[:4]})")
    if entry.kind != "adapter":
        return zoo.load_tensors(index[key][0], [key])[key].double()
    plan = _adapter_plan(entry.files[0], index)
    if key in plan.replaced:
        ak = plan.replaced[key][0]
        return zoo.load_tensors(entry.files[0], [ak])[ak].double()
    t = zoo.load_tensors(index[key][0], [key])[key].double()
    if key in plan.pairs:
        bk, ak = plan.pairs[key]
        ba = zoo.load_tensors(entry.files[0], [bk, ak])
        t = t + entry.scaling * _delta(ba[bk], ba[ak]).reshape(t.shape)
    return t


def lora_updates(entry: ModelEntry, index: Index | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{base weight name: (scaling * B (d_out, r), A (r, d_in))} float64 of one adapter (conv A
    flattened to (r, in*k*k)), so that the merged weight is base + B @ A; reads the adapter only."""
    if entry.kind != "adapter":
        raise CheckpointError(f"{entry.files[0]}: model {entry.id!r} is not a LoRA adapter")
    plan = _adapter_plan(entry.files[0], index if index is not None else tensor_index(entry))
    tensors = zoo.load_tensors(entry.files[0], [k for pair in plan.pairs.values() for k in pair])
    return {key: (entry.scaling * tensors[bk].double().reshape(tensors[bk].shape[0], -1),
                  tensors[ak].double().reshape(tensors[ak].shape[0], -1)) for key, (bk, ak) in sorted(plan.pairs.items())}


# --------------------------------------------------------------------------- architectures and cards


def tensor_indexes(entries: Sequence[ModelEntry]) -> dict[str, Index]:
    """{id: :func:`tensor_index`} of every entry, each shared base's headers parsed once."""
    base_indexes: dict[tuple[Path, ...], Index] = {}
    out = {}
    for e in entries:
        if e.kind == "adapter" and e.base_files not in base_indexes:
            base_indexes[e.base_files] = _files_index(e.base_files)
        out[e.id] = tensor_index(e, base_indexes.get(e.base_files))
    return out


def architecture_groups(entries: Sequence[ModelEntry], exclude: str | None = None,
                        indexes: Mapping[str, Index] | None = None) -> dict[tuple, list[str]]:
    """{((name, shape), ... sorted): [ids]}: models with equal tensor names and shapes (adapters:
    their merged model's), ignoring names that match regex ``exclude`` (e.g. ``^classifier\\.``).
    ``indexes``: :func:`tensor_indexes` of the entries, if already at hand."""
    try:
        pattern = re.compile(exclude) if exclude else None
    except re.error as exc:
        raise CheckpointError(f"exclude={exclude!r} is not a valid regular expression ({exc})") from None
    indexes = indexes if indexes is not None else tensor_indexes(entries)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for e in entries:
        groups[tuple(sorted((k, shape) for k, (_, shape) in indexes[e.id].items() if not (pattern and pattern.search(k))))].append(e.id)
    return dict(groups)


def mixed_architecture_error(groups: Mapping[tuple, Sequence[str]]) -> str:
    """Text naming each architecture group and, for the second and later ones, how they differ
    (up to 3 tensors) from the earlier group sharing most tensor names."""
    items = [(dict(key), list(ids)) for key, ids in groups.items()]
    if len(items) < 2:
        return f"all {sum(len(ids) for _, ids in items)} checkpoints share one architecture"
    parts = [f"{len(items[0][1])} model(s) like {items[0][1][0]!r}"]
    for i, (shapes, ids) in enumerate(items[1:], 1):
        ref, ref_ids = max(items[:i], key=lambda item: len(item[0].keys() & shapes.keys()))
        shared = ref.keys() & shapes.keys()
        if 2 * len(shared) < min(len(ref), len(shapes)):  # another kind of model altogether
            parts.append(f"{len(ids)} model(s) like {ids[0]!r} [another model: {len(shapes)} tensors, {len(shared)} named as in {ref_ids[0]!r}]")
            continue
        diff = [f"{k} {shapes[k]} vs {ref[k]}" for k in sorted(shared) if ref[k] != shapes[k]]
        diff += [f"{k} only here" for k in sorted(shapes.keys() - ref.keys())]
        diff += [f"no {k}" for k in sorted(ref.keys() - shapes.keys())]
        more = f", ... ({len(diff)} tensors differ)" if len(diff) > 3 else ""
        parts.append(f"{len(ids)} model(s) like {ids[0]!r} [vs {ref_ids[0]!r}: {', '.join(diff[:3])}{more}]")
    return f"checkpoints of {len(items)} different architectures ({'; '.join(parts)})"


def describe_entry(entry: ModelEntry) -> dict[str, Any]:
    """JSON-able description of an entry for model cards (adapters add scaling and base_files)."""
    out: dict[str, Any] = {"id": entry.id, "kind": entry.kind, "files": [str(f) for f in entry.files], "base": entry.base,
                           "declared_base": entry.declared_base, "metadata": dict(entry.metadata)}
    if entry.kind == "adapter":
        out.update(scaling=entry.scaling, base_files=[str(f) for f in entry.base_files])
    return out
