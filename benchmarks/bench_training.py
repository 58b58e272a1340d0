"""Throughput of the pieces behind zoo generation, on this machine, in one run.

    .venv/bin/python benchmarks/bench_training.py [--models 8]

Prints a table: procedural images per second; ResNet9 (width 8) fine-tunes per minute with
(a) one process using all cores' threads vs (b) one single-threaded process per core (the
kit's choice, parallel.map_tasks). The reference is (a), measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from probex_lib import data, motivation, parallel, profiles, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("PROBEX_DATA", tempfile.mkdtemp(prefix="probex-bench-"))
    cores = parallel.default_workers()

    t = time.perf_counter()
    data.make_procedural(20, "train", seed=0)
    gen_rate = 2000 / (time.perf_counter() - t)

    cfg = profiles.get_config("motivation", "default")
    for split, n in (("train", cfg.data.n_train), ("test", cfg.data.n_test)):
        data.load_images(cfg.data.source, split, n, cfg.data.seed)
    specs = [s.params for s in motivation.population_specs(cfg, Path("/nonexistent"))
             if s.params["init"] == "random"][: args.models]

    with parallel.torch_threads(cores):
        t = time.perf_counter()
        for p in specs:
            train.train_resnet9(p)
        threaded = time.perf_counter() - t
    t = time.perf_counter()
    parallel.map_tasks(train.train_resnet9, specs, executor="process", n_workers=cores)
    pooled = time.perf_counter() - t

    rows = [
        ("procedural images / s (1 process)", f"{gen_rate:,.0f}", ""),
        (f"fine-tunes / min: 1 process x {cores} threads (reference)", f"{60 * len(specs) / threaded:.1f}", "1.00x"),
        (f"fine-tunes / min: {cores} processes x 1 thread (kit)", f"{60 * len(specs) / pooled:.1f}", f"{threaded / pooled:.2f}x"),
    ]
    print(f"{'what':<58} {'value':>10} {'vs ref':>8}")
    for what, val, rel in rows:
        print(f"{what:<58} {val:>10} {rel:>8}")
    print(f"(torch {torch.__version__}, {cores} cores, {len(specs)} models of {cfg.images_per_class} images/class x {cfg.epochs} epochs; "
          f"pool time includes process start-up)")


if __name__ == "__main__":
    main()
