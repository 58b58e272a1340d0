"""Reading LoRA adapters from safetensors files, in the two layouts users hand us.

* Model-J generative / diffusers: ``pytorch_lora_weights.safetensors`` with keys
  ``<layer>.lora.down.weight`` (A, (r, d_in)) and ``<layer>.lora.up.weight`` (B, (d_out, r)),
  class in metadata ``imagenet_class_id``;
* peft: ``adapter_model.safetensors`` with keys ``<layer>.lora_A.weight`` (A) and
  ``<layer>.lora_B.weight`` (B).

An adapted layer's weight is W0 + B @ A (scaling folded in by the writer). Every file is
validated (see :mod:`probex_lib.zoo`); an unpaired A or B, or a file with no LoRA keys, is
an error naming the file and the layer.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import torch

from . import zoo

_PATTERNS = (
    (re.compile(r"^(?P<layer>.+)\.lora\.down\.weight$"), "A"),
    (re.compile(r"^(?P<layer>.+)\.lora\.up\.weight$"), "B"),
    (re.compile(r"^(?P<layer>.+)\.lora_A(?:\.default)?\.weight$"), "A"),
    (re.compile(r"^(?P<layer>.+)\.lora_B(?:\.default)?\.weight$"), "B"),
)
LORA_FILENAMES = ("pytorch_lora_weights.safetensors", "adapter_model.safetensors")


def lora_layers(path: str | Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (B (d_out, r), A (r, d_in))} of one adapter file, layers sorted by name."""
    path = Path(path)
    tensors = zoo.load_tensors(path)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        for pattern, which in _PATTERNS:
            m = pattern.match(key)
            if m:
                parts.setdefault(m["layer"], {})[which] = t
                break
    if not parts:
        raise zoo.ZooError(f"{path}: no LoRA tensors (expected keys ending in .lora.up/.lora.down.weight or .lora_A/.lora_B.weight)")
    out = {}
    for layer in sorted(parts):
        p = parts[layer]
        if set(p) != {"A", "B"}:
            missing = "B (up)" if "B" not in p else "A (down)"
            raise zoo.ZooError(f"{path}: layer {layer!r} has no LoRA {missing} matrix")
        b, a = p["B"], p["A"]
        if b.ndim != 2 or a.ndim != 2 or b.shape[1] != a.shape[0]:
            raise zoo.ZooError(f"{path}: layer {layer!r} has B {tuple(b.shape)} and A {tuple(a.shape)}, which do not multiply")
        out[layer] = (b, a)
    return out


def delta(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The full weight update B @ A: (d_out, d_in)."""
    return b.float() @ a.float()


def find_lora_files(root: str | Path) -> list[Path]:
    """Every adapter file (by the known file names) anywhere under ``root``, sorted."""
    root = Path(root)
    files = sorted(p for name in LORA_FILENAMES for p in root.rglob(name))
    if not files:
        raise zoo.ZooError(f"{root}: no LoRA files found (looked for {list(LORA_FILENAMES)} in all sub-folders)")
    return files


def scan_lora_folder(root: str | Path) -> pd.DataFrame:
    """Manifest of a folder of adapters: path, model_id (folder relative to root), metadata."""
    root = Path(root)
    rows = []
    for p in find_lora_files(root):
        meta = zoo.read_metadata(p)
        rows.append({"path": str(p.resolve()), "model_id": p.parent.relative_to(root).as_posix() or p.stem, **meta})
    return pd.DataFrame(rows)
