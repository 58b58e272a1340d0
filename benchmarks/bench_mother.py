"""MoTHer speed: each kit routine against its reference, measured in the same run.

    .venv/bin/python benchmarks/bench_mother.py [--quick]

Rows: pairwise l2 distances (kit vs a per-pair float64 numpy loop, on 5 unrelated trees whose
fine-tunes move each weight by 0.1% or 1% of the weights' spread, plus two duplicated models;
the worst relative error over all pairs, and whether duplicates come out exactly 0), and the minimum directed spanning tree (vectorised Chu-Liu/Edmonds vs
networkx's minimum_spanning_arborescence, identical trees checked), plus large graphs alone,
and the whole pipeline (distances, clustering, MDST per cluster) on 10,000 simulated models of
one 256x256 layer (target: under 5 minutes and 16 GB on 2 cores; peak resident memory shown).
"""
from __future__ import annotations

import argparse
import resource
import time

import networkx as nx
import numpy as np

from probex_lib import mother
from probex_lib.mother_sim import simulate
from probex_lib.mdst import min_spanning_arborescence, tree_cost


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _loop_l2(x: np.ndarray) -> np.ndarray:
    n = len(x)
    out = np.zeros((n, n))
    x64 = x.astype(np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            diff = x64[i] - x64[j]
            out[i, j] = out[j, i] = np.sqrt(np.einsum("i,i->", diff, diff))  # no BLAS threads: a fair serial reference
    return out


def _forest(rng: np.random.Generator, n: int, d: int, trees: int = 5, std: float = 0.02) -> np.ndarray:
    """(n, d) float32: ``trees`` unrelated roots ~ N(0, std^2); every other model is a random
    earlier model of its tree plus a move of 0.1% or 1% of std per weight; the last two rows
    copy rows 0 and ``trees`` (identical models)."""
    x = np.empty((n, d), dtype=np.float32)
    tree = np.arange(n) % trees
    for i in range(n - 2):
        if i < trees:
            x[i] = rng.normal(size=d) * std
        else:
            parent = rng.choice(np.flatnonzero(tree[:i] == tree[i]))
            x[i] = x[parent] + rng.choice([1e-3, 1e-2]) * std * rng.normal(size=d)
    x[n - 2], x[n - 1] = x[0], x[trees]
    return x


def _nx_mdst(w: np.ndarray) -> np.ndarray:
    g = nx.DiGraph()
    n = len(w)
    g.add_weighted_edges_from((i, j, w[i, j]) for i in range(n) for j in range(n) if i != j)
    parent = np.full(n, -1)
    for i, j in nx.minimum_spanning_arborescence(g).edges():
        parent[j] = i
    return parent


def _reference_rows(args: argparse.Namespace, rng: np.random.Generator) -> list[tuple]:
    """Kit vs reference implementations on the same inputs (distances, LoRA ranks, MDST)."""
    rows = []
    n, d = (200, 16384) if args.quick else (500, 65536)
    x = _forest(rng, n, d)
    ref, t_ref = _timed(_loop_l2, x)
    got, t_ours = _timed(mother.pairwise_l2, x)
    zero = ref == 0
    err = (np.abs(got - ref)[~zero] / ref[~zero]).max()
    dup = "exactly 0" if np.all(got[zero] == 0) else f"up to {got[zero].max():.1e}"
    rows.append((f"l2 distances, {n} models x {d} weights", t_ref, t_ours,
                 f"5 trees; worst per-pair rel. error {err:.1e}; duplicates {dup}"))

    dim, n_lora = (256, 6) if args.quick else (768, 8)
    layer = [(rng.normal(size=(dim, r)), rng.normal(size=(r, dim))) for r in rng.choice([8, 16, 32, 64], n_lora)]
    ref_r, t_ref = _timed(mother.lora_rank_distance_dense, [layer])
    our_r, t_ours = _timed(mother.lora_rank_distance, [layer])
    pairs = n_lora * (n_lora - 1) // 2
    rows.append((f"LoRA rank distance, {pairs} pairs of {dim}x{dim}", t_ref, t_ours,
                 "identical ranks" if np.array_equal(ref_r, our_r) else "RANKS DIFFER"))

    n_nx = 100 if args.quick else 250
    w = rng.random((n_nx, n_nx))
    ref_p, t_ref = _timed(_nx_mdst, w)
    our_p, t_ours = _timed(min_spanning_arborescence, w)
    same = "identical tree" if np.array_equal(ref_p, our_p) else f"cost {tree_cost(w, our_p):.6f} vs {tree_cost(w, ref_p):.6f}"
    rows.append((f"MDST, dense {n_nx} nodes (networkx ref)", t_ref, t_ours, same))

    for n_big in ((1000,) if args.quick else (2000, 10000)):
        pts = rng.normal(size=(n_big, 32))
        dist = mother.pairwise_l2(pts)
        m = mother.cost_matrix(dist, rng.random(n_big))
        _, t_ours = _timed(min_spanning_arborescence, m)
        rows.append((f"MDST, dense {n_big} nodes (distance-like)", float("nan"), t_ours, ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller reference problems (CI-sized)")
    ap.add_argument("--pipeline-only", action="store_true", help="only the 10,000-model pipeline row (clean peak memory)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    if not args.pipeline_only:
        rows += _reference_rows(args, rng)

    n_sim = 2000 if args.quick else 10000
    sim, _ = simulate(n_sim, 256, trees=5)
    t0 = time.perf_counter()
    dist = mother.pairwise_l2(sim)
    t1 = time.perf_counter()
    score = mother.kurtosis_score([sim])
    t2 = time.perf_counter()
    labels, _ = mother.recover_graph(dist, score, 5)
    t_all = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows.append((f"pipeline, {n_sim} models x 256x256", float("nan"), t_all,
                 f"distances {t1 - t0:.0f} s, kurtosis {t2 - t1:.0f} s, clustering + MDSTs {t_all - (t2 - t0):.0f} s; "
                 f"{len(set(labels))} trees; peak memory of this process {peak_gb:.1f} GB (target 300 s, 16 GB)"))

    print(f"{'task':<44} {'reference s':>12} {'kit s':>9} {'speed-up':>9}  note")
    for task, t_ref, t_ours, note in rows:
        speed = f"{t_ref / t_ours:.0f}x" if np.isfinite(t_ref) else "-"
        ref_s = f"{t_ref:.3f}" if np.isfinite(t_ref) else "-"
        print(f"{task:<44} {ref_s:>12} {t_ours:>9.3f} {speed:>9}  {note}")


if __name__ == "__main__":
    main()
