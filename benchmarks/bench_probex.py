"""ProbeX vs the Dense expert on one layer: training time and peak memory, in one run.

    .venv/bin/python benchmarks/bench_probex.py [--models 200] [--epochs 500] [--shape 64 256]

The issue's target: ProbeX on one layer of 200 models for 500 epochs at ``default`` sizes
(ranks 32; an MLP layer of our ViTs, 64 x 256) in under 2 minutes on a 2-core CPU. Layers are
written as safetensors files, loaded once (``experts.layer_data``) and kept in memory for all
epochs. Each expert trains in its own process so that its peak resident memory is its own;
the Dense expert, measured in the same run, is the reference.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from probex_lib import experts, profiles, zoo


def write_layer_zoo(folder: Path, n: int, shape: tuple[int, int], n_labels: int = 100, seed: int = 0) -> pd.DataFrame:
    """n models whose one layer carries their 50 classes along fixed directions, plus noise."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_labels, *shape, generator=g) * 0.05
    base = torch.randn(*shape, generator=g)
    rows = []
    for i in range(n):
        classes = sorted(torch.randperm(n_labels, generator=g)[: n_labels // 2].tolist())
        w = base + dirs[classes].sum(0) + torch.randn(*shape, generator=g) * 0.5
        path = zoo.save_model(folder / f"m{i:04d}.safetensors", {"layer.weight": w}, {"classes": classes})
        split = "train" if i < 0.7 * n else "val" if i < 0.8 * n else "test"
        rows.append({"path": str(path), "split": split, "classes": classes, "tree": "bench"})
    return pd.DataFrame(rows)


def _run(kind: str, manifest: pd.DataFrame, epochs: int, queue) -> None:
    torch.set_num_threads(torch.get_num_threads())
    cfg = profiles.get_config("probex", "default")
    t = time.perf_counter()
    d = experts.layer_data(manifest, "layer.weight")
    load_s = time.perf_counter() - t
    arch = dict(r_u=cfg.r_u, r_v=cfg.r_v, r_t=cfg.r_t) if kind == "probex" else {}
    r = experts.fit_expert(kind, d, epochs, seed=0, **arch)
    queue.put({"expert": kind, "load s": round(load_s, 2), "train s": round(r["seconds"], 1),
               "test acc": round(r["test"], 3), "parameters": r["parameters"],
               "peak RSS MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--shape", type=int, nargs=2, default=(64, 256))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="probex-bench-") as tmp:
        manifest = write_layer_zoo(Path(tmp), args.models, tuple(args.shape))
        ctx = mp.get_context("spawn")
        rows = []
        for kind in ("dense", "probex"):
            q = ctx.Queue()
            p = ctx.Process(target=_run, args=(kind, manifest, args.epochs, q))
            p.start()
            rows.append(q.get())
            p.join()
    df = pd.DataFrame(rows)
    df["time vs dense"] = (df["train s"] / df.loc[df["expert"] == "dense", "train s"].iloc[0]).round(2)
    print(f"{args.models} models, layer {tuple(args.shape)}, {args.epochs} epochs, {torch.get_num_threads()} threads")
    print(df.to_string(index=False))
    target = df.loc[df["expert"] == "probex", "train s"].iloc[0]
    print(f"ProbeX target (< 120 s): {'met' if target < 120 else 'MISSED'} ({target:.0f} s)")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
