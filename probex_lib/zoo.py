"""Model zoo I/O: one model = one ``.safetensors`` file with self-describing metadata.

Our zoo layout::

    <zoo>/zoo.json                      generation settings; a second run with other settings is refused
    <zoo>/models/<model_id>.safetensors weights + metadata (JSON strings)
    <zoo>/manifest.csv                  one row per model, rebuilt from the files

Metadata values are stored as JSON strings (safetensors metadata is ``str -> str``); they hold
everything needed to interpret the model: classes, tree, parent, seed, hyperparameters, test
accuracy. Files are written atomically (see :mod:`probex_lib.atomic`), so a file under its
final name is always complete. Every read validates the header and the file length first:
a corrupt or truncated file is an error naming the file, never a silent skip.

The public Model-J discriminative split is read as it is downloaded (a Hugging Face cache
tree, see :func:`scan_modelj_discriminative`).
"""
from __future__ import annotations

import ast
import difflib
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open

from . import atomic, parallel

MODELS_SUBDIR = "models"
SETTINGS_FILE = "zoo.json"
MANIFEST_FILE = "manifest.csv"
MODELJ_SPLITS = ("train", "val", "test")


class ZooError(ValueError):
    """A zoo file or folder is not what was expected; the message names the file and the problem."""


# --------------------------------------------------------------------------- single files


def save_model(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> Path:
    """Atomically write ``tensors`` with ``metadata`` (each value JSON-encoded) to ``path``.

    Refuses NaN or Inf weights: a zoo never stores a diverged model under a valid name.
    """
    path = Path(path)
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ZooError(f"{path}: refusing to save tensor {key!r} with NaN or Inf values")
    meta = {str(k): json.dumps(v, sort_keys=True, default=atomic._jsonable) for k, v in metadata.items()}
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for chunk in _serialise(tensors, meta):
            fh.write(chunk)
    return path


_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def _serialise(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str]) -> list[bytes]:
    """The safetensors format with sorted keys everywhere, so equal models give equal bytes.

    (safetensors' own writer orders metadata through a hash map, which differs between processes.)
    """
    header: dict[str, Any] = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise ZooError(f"tensor {name!r}: dtype {t.dtype} cannot be stored in safetensors by the kit")
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return [struct.pack("<Q", len(text)), text, *blobs]


def read_header(path: str | Path) -> tuple[dict[str, dict], dict[str, str]]:
    """Validate a safetensors file and return (tensor infos, raw metadata).

    Checks: 8-byte header length, a JSON header that fits in the file, and tensor data that
    ends exactly at the end of the file (a truncated download fails here).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ZooError(f"{path}: corrupt or truncated safetensors file ({size} bytes, no header)")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise ZooError(f"{path}: corrupt or truncated safetensors file (header of {n} bytes, file of {size})")
            header = json.loads(fh.read(n))
    except FileNotFoundError:
        raise ZooError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZooError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ZooError(f"{path}: corrupt safetensors header (not a JSON object)")
    raw_meta = header.pop("__metadata__", None) or {}
    end = max((info["data_offsets"][1] for info in header.values()), default=0)
    if 8 + n + end != size:
        raise ZooError(
            f"{path}: corrupt or truncated safetensors file (tensors end at byte {8 + n + end}, file has {size})"
        )
    return header, raw_meta


def decode_metadata(raw: Mapping[str, str]) -> dict[str, Any]:
    """JSON-decode each metadata value; values that are not JSON (other tools' files) stay strings."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            out[k] = v
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Decoded metadata of a validated safetensors file."""
    return decode_metadata(read_header(path)[1])


def is_complete(path: str | Path) -> bool:
    """True if ``path`` exists and is a valid, complete safetensors file."""
    try:
        read_header(path)
        return True
    except ZooError:
        return False


def _missing_key_error(path: Path, key: str, available: Sequence[str]) -> ZooError:
    close = difflib.get_close_matches(key, available, n=5, cutoff=0.4)
    hint = f"; close names: {close}" if close else f"; it has {len(available)} tensors, e.g. {sorted(available)[:5]}"
    return ZooError(f"{path}: no tensor named {key!r}{hint}")


def load_tensors(path: str | Path, keys: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Load ``keys`` (default: all) from a validated file; NaN/Inf weights are an error."""
    path = Path(path)
    header, _ = read_header(path)
    wanted = list(header) if keys is None else list(keys)
    out = {}
    with safe_open(str(path), framework="pt") as fh:
        for key in wanted:
            if key not in header:
                raise _missing_key_error(path, key, list(header))
            t = fh.get_tensor(key)
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ZooError(f"{path}: tensor {key!r} contains NaN or Inf values")
            out[key] = t
    return out


def load_checked(model: "torch.nn.Module", state: Mapping[str, torch.Tensor], source: str | Path,
                 keys: Sequence[str] | None = None) -> None:
    """Load ``state`` into ``model`` at ``keys`` (default: every tensor of the model; the others
    keep their values). A missing tensor or a shape mismatch is an error naming ``source``."""
    own = model.state_dict()
    keys = list(own) if keys is None else list(keys)
    missing = [k for k in keys if k not in state]
    if missing:
        raise ZooError(f"{source}: cannot initialise {type(model).__name__} from it; missing {missing[:4]} "
                       f"({len(missing)} tensors)")
    for k in keys:
        if tuple(state[k].shape) != tuple(own[k].shape):
            raise ZooError(f"{source}: layer {k!r} has shape {tuple(state[k].shape)}, the model expects {tuple(own[k].shape)}")
    model.load_state_dict({**own, **{k: state[k] for k in keys}})


def tensor_names(path: str | Path) -> list[str]:
    """Tensor names of a validated file, in file order."""
    return list(read_header(path)[0])


def load_layer(paths: Sequence[str | Path], key: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One tensor from each file, stacked: (n_models, *shape). Loads only that tensor.

    Every file must have ``key`` with the same shape; otherwise the error names the file.
    """
    if len(paths) == 0:
        raise ZooError(f"no model files given to load layer {key!r} from")
    first, out, shape = None, None, None
    for i, p in enumerate(paths):
        t = load_tensors(p, [key])[key]
        if out is None:
            first, shape = p, tuple(t.shape)
            out = torch.empty((len(paths), *shape), dtype=dtype)
        elif tuple(t.shape) != shape:
            raise ZooError(f"{p}: layer {key!r} has shape {tuple(t.shape)}, but {first} has {shape}")
        out[i] = t.to(dtype)
    return out


def matrix_view(t: torch.Tensor) -> torch.Tensor:
    """2-D view of a layer per model: (n, d_out, d_in). Conv kernels (n, out, in, k, k) become
    (n, out, in*k*k); vectors (n, d) become columns (n, d, 1)."""
    if t.ndim == 2:
        return t.unsqueeze(-1)
    return t.reshape(t.shape[0], t.shape[1], -1)


# --------------------------------------------------------------------------- manifests


def _our_model_files(zoo_dir: Path) -> list[Path]:
    return sorted((zoo_dir / MODELS_SUBDIR).glob("*.safetensors"))


def build_manifest(zoo_dir: str | Path, write: bool = True) -> pd.DataFrame:
    """Rebuild the manifest of our zoo from its files (one row per model, sorted by model_id).

    Columns: ``path`` (absolute) and every metadata key; list-valued metadata (e.g. ``classes``)
    stay Python lists in the DataFrame and are JSON strings in ``manifest.csv``.
    """
    zoo_dir = Path(zoo_dir)
    rows = []
    for p in _our_model_files(zoo_dir):
        meta = read_metadata(p)
        if "model_id" not in meta:
            raise ZooError(f"{p}: metadata has no 'model_id'; this file was not written by the kit's zoo writer")
        rows.append({"path": str(p.resolve()), **meta})
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values("model_id", kind="stable").reset_index(drop=True)
    if write:
        csv = df.copy()
        for col in csv.columns:
            if csv[col].map(lambda v: isinstance(v, (list, dict))).any():
                csv[col] = csv[col].map(lambda v: json.dumps(v, sort_keys=True))
        atomic.write_text(zoo_dir / MANIFEST_FILE, csv.to_csv(index=False))
    return df


def _parse_class_list(path: Path, raw: Any, key: str) -> list[str]:
    """A class list stored as a JSON list or as a Python-literal string (Model-J); no eval."""
    value = raw
    if isinstance(raw, str):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ZooError(f"{path}: metadata {key!r} is not a list literal: {raw[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise ZooError(f"{path}: metadata {key!r} should be a list of class names, got {type(value).__name__}")
    return list(value)


def scan_modelj_discriminative(root: str | Path, splits: Sequence[str] = MODELJ_SPLITS, tree: str | None = None) -> pd.DataFrame:
    """Manifest of a downloaded Model-J discriminative tree (Hugging Face cache layout).

    Layout: ``<root>/<split>/<model_dir>/refs/main`` holds a snapshot ref and the weights are
    ``<root>/<split>/<model_dir>/snapshots/<ref>/model.safetensors``; metadata key
    ``dataset_chosen_targets`` is the Python-literal list of CIFAR-100 class names.
    Returns columns path, model_id, split, tree, classes, plus the file's other metadata.
    """
    root = Path(root)
    tree = tree or root.name
    rows = []
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            raise ZooError(f"{split_dir}: Model-J split folder not found (expected splits {list(splits)} under {root})")
        for model_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            ref_file = model_dir / "refs" / "main"
            if not ref_file.exists():
                raise ZooError(f"{model_dir}: no refs/main; not a Hugging Face cache model folder")
            ref = ref_file.read_text().strip()
            weights = model_dir / "snapshots" / ref / "model.safetensors"
            if not weights.exists():
                raise ZooError(f"{weights}: missing (refs/main names snapshot {ref!r})")
            meta = read_metadata(weights)
            if "dataset_chosen_targets" not in meta:
                raise ZooError(f"{weights}: metadata has no 'dataset_chosen_targets' (the list of training classes)")
            classes = _parse_class_list(weights, meta.pop("dataset_chosen_targets"), "dataset_chosen_targets")
            rows.append({"path": str(weights.resolve()), "model_id": model_dir.name, "split": split,
                         "tree": tree, "classes": classes, **meta})
    if not rows:
        raise ZooError(f"{root}: no Model-J models found under {list(splits)}")
    return pd.DataFrame(rows)


def _is_modelj_tree(path: Path) -> bool:
    return all((path / s).is_dir() for s in MODELJ_SPLITS)


def open_zoo(path: str | Path) -> pd.DataFrame:
    """Manifest of our zoo, of one Model-J discriminative tree, of a folder of such trees (one
    sub-folder per tree, named after it), or of a plain folder of ``*.safetensors`` files (their
    metadata as columns), detected from the layout."""
    path = Path(path)
    if (path / MODELS_SUBDIR).is_dir():
        return build_manifest(path, write=False)
    if _is_modelj_tree(path):
        return scan_modelj_discriminative(path)
    trees = sorted(d for d in path.iterdir() if d.is_dir() and _is_modelj_tree(d)) if path.is_dir() else []
    if trees:
        return pd.concat([scan_modelj_discriminative(d) for d in trees], ignore_index=True)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if files:  # a plain folder of checkpoints: one row per file, its metadata as columns
        return pd.DataFrame([{"path": str(f.resolve()), "model_id": f.stem, **read_metadata(f)} for f in files])
    raise ZooError(
        f"{path}: not a zoo: expected a '{MODELS_SUBDIR}/' folder (kit zoo), {list(MODELJ_SPLITS)} folders "
        f"(a Model-J discriminative tree), sub-folders that are Model-J trees, or *.safetensors files"
    )


def split_labels(n: int, fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0) -> list[str]:
    """"train" / "val" / "test" for n models in the given fractions, in a seeded random order."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    labels = np.empty(n, dtype=object)
    labels[perm[:n_train]], labels[perm[n_train:n_train + n_val]], labels[perm[n_train + n_val:]] = "train", "val", "test"
    return labels.tolist()


def multi_hot(class_lists: Sequence[Sequence[str]], class_names: Sequence[str]) -> np.ndarray:
    """(n_models, n_classes) float32 0/1 labels; a class outside ``class_names`` is an error."""
    index = {c: i for i, c in enumerate(class_names)}
    y = np.zeros((len(class_lists), len(class_names)), dtype=np.float32)
    for r, classes in enumerate(class_lists):
        for c in classes:
            if c not in index:
                raise ZooError(f"model {r}: class {c!r} is not among the {len(class_names)} label classes")
            y[r, index[c]] = 1
    return y


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class ModelSpec:
    """What to train: a unique id and JSON-serialisable parameters for the train function."""

    model_id: str
    params: dict


TrainFn = Callable[[dict], tuple[dict[str, torch.Tensor], dict[str, Any]]]


def ensure_settings(zoo_dir: str | Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` in ``zoo.json``, or check they equal the recorded ones.

    Two runs with different settings never write into the same zoo: the error lists the
    differing keys.
    """
    zoo_dir = Path(zoo_dir)
    file = zoo_dir / SETTINGS_FILE
    canon = json.loads(json.dumps(dict(settings), sort_keys=True, default=atomic._jsonable))
    if file.exists():
        old = json.loads(file.read_text())
        if old != canon:
            diff = sorted(k for k in set(old) | set(canon) if old.get(k) != canon.get(k))
            raise ZooError(
                f"{file}: this zoo was generated with other settings (differing keys: {diff}); "
                f"use another zoo folder or delete this one"
            )
    else:
        atomic.write_json(file, canon)


def model_path(zoo_dir: str | Path, model_id: str) -> Path:
    return Path(zoo_dir) / MODELS_SUBDIR / f"{model_id}.safetensors"


def _train_and_save(job: tuple[TrainFn, str, ModelSpec]) -> str:
    fn, zoo_dir, spec = job
    tensors, meta = fn(spec.params)
    save_model(model_path(zoo_dir, spec.model_id), tensors, {"model_id": spec.model_id, **meta})
    return spec.model_id


@dataclass(frozen=True)
class ZooPlan:
    """One zoo folder to fill: its specs, the train function and the settings it is bound to."""

    zoo_dir: Path
    specs: Sequence[ModelSpec]
    train_fn: TrainFn
    settings: Mapping[str, Any]


def _pending(plan: ZooPlan) -> list[tuple[TrainFn, str, ModelSpec]]:
    zoo_dir = Path(plan.zoo_dir)
    ids = [s.model_id for s in plan.specs]
    if len(set(ids)) != len(ids):
        raise ZooError(f"{zoo_dir}: duplicate model ids in the generation plan")
    ensure_settings(zoo_dir, plan.settings)
    models = zoo_dir / MODELS_SUBDIR
    models.mkdir(parents=True, exist_ok=True)
    for stale in models.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    todo = []
    for s in plan.specs:
        p = model_path(zoo_dir, s.model_id)
        if p.exists():
            read_header(p)  # a damaged final file is an error, never silently retrained or read
        else:
            todo.append((plan.train_fn, str(zoo_dir), s))
    return todo


def generate_zoos(
    plans: Sequence[ZooPlan],
    executor: parallel.Executor = "process",
    n_workers: int | None = None,
    desc: str = "training models",
) -> list[pd.DataFrame]:
    """Train every missing model of several zoos as one stream of tasks (no core waits for
    another zoo to finish), then rebuild each manifest; see :func:`generate_zoo`.

    Tasks run in plan order (put long tasks first); all specs of all plans must be
    independent of each other.
    """
    todo = [job for plan in plans for job in _pending(plan)]
    if todo:
        parallel.map_tasks(_train_and_save, todo, executor=executor, n_workers=n_workers, desc=desc)
    return [build_manifest(plan.zoo_dir) for plan in plans]


def generate_zoo(
    zoo_dir: str | Path,
    specs: Sequence[ModelSpec],
    train_fn: TrainFn,
    settings: Mapping[str, Any],
    executor: parallel.Executor = "process",
    n_workers: int | None = None,
    desc: str = "training models",
) -> pd.DataFrame:
    """Train every spec whose file is not already complete, then rebuild the manifest.

    Resumable: rerunning after an interruption trains only what is missing (leftover ``*.tmp``
    files of a killed writer are removed). ``train_fn`` must be a module-level function (it is
    shipped to worker processes or Dask workers) and deterministic given ``spec.params``, so
    serial, process-pool and Dask runs write identical files.
    """
    return generate_zoos([ZooPlan(Path(zoo_dir), specs, train_fn, settings)], executor, n_workers, desc)[0]
