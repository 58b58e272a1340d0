"""Search a folder of LoRAs by text with a trained aligned ProbeX checkpoint.

    python -m probex_lib.search <folder> "a red star" --checkpoint <aligned.safetensors> [--top 10]

The folder's LoRAs (our zoo's ``models/*.safetensors`` or Model-J's
``pytorch_lora_weights.safetensors`` anywhere below) are embedded once and cached: one
safetensors file per (folder, checkpoint) under ``data/cache/search/`` (or ``cache_dir``),
valid while no adapter file was added, removed or changed (names, sizes, modification times)
and written in this kit's cache format (:data:`CACHE_FORMAT`; a cache of an older kit, whose
ProbeX was transposed, is rebuilt with a message on stderr).
The query is embedded with the checkpoint's own text encoder and models are ranked by
cosine similarity. Checkpoints are written by notebook 04 (``aligned.save_aligned``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import aligned, lora, paths, text, zoo
from .probex import ORIENTATION

CACHE_FORMAT = 2  # 2: embeddings of the official-orientation ProbeX; older caches (no version) are rebuilt


class SearchError(ValueError):
    """A query, folder or checkpoint cannot be used; the message names the file and the mismatch."""


def _lora_files(folder: Path) -> list[Path]:
    ours = sorted((folder / zoo.MODELS_SUBDIR).glob("*.safetensors")) if (folder / zoo.MODELS_SUBDIR).is_dir() else []
    if ours:
        return ours
    try:
        return lora.find_lora_files(folder)
    except zoo.ZooError:
        raise SearchError(f"{folder}: no LoRA files (neither {zoo.MODELS_SUBDIR}/*.safetensors nor "
                          f"{list(lora.LORA_FILENAMES)} below it)") from None


def _fingerprint(files: list[Path]) -> list[list]:
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _check_layers(ck: aligned.AlignedCheckpoint, path: Path) -> None:
    factors = lora.lora_layers(path)
    for layer, shape in zip(ck.layers, ck.model.spec["shapes"]):
        if layer not in factors:
            raise SearchError(f"{path}: no LoRA layer {layer!r}, which the checkpoint reads: adapters of another base "
                              f"model or layer set (it has e.g. {sorted(factors)[:2]})")
        got = [factors[layer][0].shape[0], factors[layer][1].shape[1]]
        if got != list(shape):
            raise SearchError(f"{path}: layer {layer!r} has B·A of shape {tuple(got)}, the checkpoint expects "
                              f"{tuple(shape)}: adapters of another base model")


def embed_folder(folder: str | Path, checkpoint: str | Path, cache_dir: str | Path | None = None,
                 batch: int = 256) -> tuple[pd.DataFrame, np.ndarray]:
    """(manifest of the folder's LoRAs, (n, d_text) unit embeddings), from the cache when valid."""
    folder, checkpoint = Path(folder).resolve(), Path(checkpoint)
    files = _lora_files(folder)
    ck = aligned.read_aligned(checkpoint)
    fp = _fingerprint(files)
    ck_hash = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]
    key = hashlib.sha256(json.dumps([str(folder), ck_hash]).encode()).hexdigest()[:16]
    cache = Path(cache_dir or paths.data_dir() / "cache" / "search") / f"{key}.safetensors"
    manifest = pd.DataFrame([{"path": str(p), "model_id": p.stem if p.parent.name == zoo.MODELS_SUBDIR
                              else p.parent.relative_to(folder).as_posix(), **zoo.read_metadata(p)} for p in files])
    if zoo.is_complete(cache) and cache_is_valid(cache, fp):
        return manifest, zoo.load_tensors(cache)["embeddings"].numpy()
    _check_layers(ck, files[0])
    chunks = []
    for s in range(0, len(files), batch):
        part = files[s:s + batch]
        for p in part:
            _check_layers(ck, p)
        with torch.no_grad():
            chunks.append(ck.model(aligned.lora_deltas([str(p) for p in part], ck.layers)))
    z = torch.cat(chunks)
    zoo.save_model(cache, {"embeddings": z.contiguous()}, {"files": fp, "checkpoint": str(checkpoint.resolve()),
                                                           "format_version": CACHE_FORMAT, "probex_orientation": ORIENTATION})
    return manifest, z.numpy()


def cache_is_valid(cache: Path, files: list[list]) -> bool:
    """True if the (complete) cache file is of this kit's format and of the same ``files``
    (fingerprint); a cache of an older format is reported on stderr (it will be rebuilt)."""
    meta = zoo.read_metadata(cache)
    version, orientation = meta.get("format_version"), meta.get("probex_orientation")
    if version != CACHE_FORMAT or orientation != ORIENTATION:
        older = version is None or (isinstance(version, int) and version < CACHE_FORMAT)
        why = "written by an older probex-kit whose ProbeX was transposed (Xᵀu)" if older else "of another format"
        print(f"{cache}: search cache of format version {version} (ProbeX orientation {orientation}), {why}; "
              f"rebuilding it (version {CACHE_FORMAT}, {ORIENTATION})", file=sys.stderr)
        return False
    return meta.get("files") == files


def embed_query(ck: aligned.AlignedCheckpoint, queries: list[str], encoder: str | None = None) -> np.ndarray:
    """(n_queries, d_text) unit embeddings with the checkpoint's text encoder; asking for another
    encoder (or one of another dimension) is an error."""
    trained = ck.meta.get("text_encoder")
    if not trained:
        raise SearchError("the checkpoint does not record its text encoder ('text_encoder' metadata)")
    if encoder and encoder != trained:
        raise SearchError(f"the checkpoint was trained with the {trained!r} text encoder, not {encoder!r}: "
                          "its model embeddings live in that encoder's space")
    q = text.embed(trained, queries, unet_file=ck.meta.get("unet_file") or None, clip_name=ck.meta.get("clip_name", ""),
                   raw=True)
    if q.shape[1] != ck.model.spec["d_text"]:
        raise SearchError(f"text encoder {trained!r} gives {q.shape[1]}-d embeddings, the checkpoint expects "
                          f"{ck.model.spec['d_text']}-d")
    return q.numpy()


def search(folder: str | Path, query: str, checkpoint: str | Path, top: int = 10, cache_dir: str | Path | None = None,
           encoder: str | None = None) -> pd.DataFrame:
    """The ``top`` LoRAs of ``folder`` nearest to ``query``: rank, score (cosine), model_id, path
    and, when the files record them, class_id and class_name."""
    if not query.strip():
        raise SearchError("empty query")
    ck = aligned.read_aligned(checkpoint)
    q = embed_query(ck, [query], encoder)[0]
    manifest, z = embed_folder(folder, checkpoint, cache_dir)
    scores = z @ q
    order = np.argsort(-scores, kind="stable")[:top]
    cols = [c for c in ("model_id", "class_id", "class_name", "imagenet_class_id", "path") if c in manifest.columns]
    out = manifest.iloc[order][cols].reset_index(drop=True)
    out.insert(0, "score", scores[order])
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m probex_lib.search", description="Search a folder of LoRAs by text.")
    ap.add_argument("folder", help="our zoo folder or any folder with LoRA adapter files below it")
    ap.add_argument("query", help='e.g. "a red star"')
    ap.add_argument("--checkpoint", required=True, help="aligned ProbeX checkpoint (written by notebook 04)")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--encoder", default=None, help="text encoder (default: the checkpoint's; another is an error)")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    try:
        res = search(args.folder, args.query, args.checkpoint, args.top, args.cache_dir, args.encoder)
    except (SearchError, zoo.ZooError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.max_colwidth", 60, "display.width", 160):
        print(res.drop(columns=["path"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
