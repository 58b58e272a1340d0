"""Text-aligned ProbeX: the factored LoRA path vs the full B·A matrix, and search-by-text speed.

    .venv/bin/python benchmarks/bench_aligned.py [--models 200] [--n-search 1000]

1. ProbeX encodes a LoRA layer as X = B·A (the paper). ``ProbeX.encode_factored`` computes the
   same codes from the factors, (VᵀB)(Au), without forming X. Timed: forward + backward over
   ``--models`` LoRAs for our layer (32 x 384, rank 4) and a Stable-Diffusion-sized one
   (320 x 768, rank 16), with the full path (forming B·A included) as the reference.
2. Search: ``--n-search`` LoRA files are embedded once with an aligned checkpoint (cached),
   then queries are answered from the cache. Target: under 1 s per query for 1,000 models.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from probex_lib import aligned, search, zoo
from probex_lib.probex import ProbeX


def _time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def factored_vs_full(n: int) -> pd.DataFrame:
    rows = []
    for d_w, d_h, r, ranks in ((32, 384, 4, 32), (320, 768, 16, 128)):
        torch.manual_seed(0)
        px = ProbeX(d_w, d_h, None, ranks, ranks, ranks)
        b, a = torch.randn(n, d_w, r), torch.randn(n, r, d_h)
        torch.testing.assert_close(px.encode_factored(b, a), px.encode(b @ a), rtol=1e-4, atol=1e-4)

        def full() -> None:
            px.zero_grad()
            px.encode(b @ a).sum().backward()

        def factored() -> None:
            px.zero_grad()
            px.encode_factored(b, a).sum().backward()

        t_full, t_fact = _time(full), _time(factored)
        rows.append({"layer": f"{d_w}x{d_h} rank {r}", "ranks": ranks, "models": n, "full B·A s": round(t_full, 4),
                     "factored s": round(t_fact, 4), "speed-up": round(t_full / t_fact, 1)})
    return pd.DataFrame(rows)


def search_speed(n: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "loras"
        g = torch.Generator().manual_seed(0)
        for i in range(n):
            zoo.save_model(folder / "models" / f"m{i:05d}.safetensors",
                           {"blk.attn2.to_k.lora.up.weight": torch.randn(32, 4, generator=g),
                            "blk.attn2.to_k.lora.down.weight": torch.randn(4, 384, generator=g)},
                           {"model_id": f"m{i:05d}", "class_id": i % 50, "class_name": f"class {i % 50}"})
        model = aligned.build("probex", [torch.randn(8, 32, 384)], 384, 32, 32, 128)
        ckpt = aligned.save_aligned(Path(tmp) / "ck.safetensors", model, ["blk.attn2.to_k"], {"text_encoder": "minilm"})
        cache = Path(tmp) / "cache"
        t = time.perf_counter()
        search.search(folder, "a red star", ckpt, cache_dir=cache)  # embeds every file, loads MiniLM
        first = time.perf_counter() - t
        cached = _time(lambda: search.search(folder, "a blue circle", ckpt, cache_dir=cache), repeats=3)
        _, z = search.embed_folder(folder, ckpt, cache)
        q = torch.randn(384).numpy()
        rank_only = _time(lambda: (z @ q).argsort(), repeats=20)
    return pd.DataFrame([{"models": n, "first search (embeds all) s": round(first, 2),
                          "cached search s": round(cached, 3), "ranking only s": round(rank_only, 5),
                          "target s": 1.0, "met": cached < 1.0}])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--n-search", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    with pd.option_context("display.width", 160):
        print("ProbeX encoding of LoRA layers, forward + backward over all models (reference: full B·A):")
        print(factored_vs_full(args.models).to_string(index=False))
        print("\nSearch by text with cached embeddings:")
        print(search_speed(args.n_search).to_string(index=False))


if __name__ == "__main__":
    main()
