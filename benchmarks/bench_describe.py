"""probex-describe at scale: a folder of N simulated one-layer models, against plain MoTHer on the same files.

    .venv/bin/python benchmarks/bench_describe.py [--n 1000 10000] [--dim 256] [--trees 5] [--keep] [--out data/bench]
                                                  [--torch-threads 1]

The folder ``<out>/describe-<N>-<dim>/`` holds one ``<id>.safetensors`` per model (tensor ``fc.weight``,
dim x dim float32): the models of :func:`probex_lib.mother_sim.simulate` (the forest of the kit's
10,000-model MoTHer timing, ``benchmarks/bench_mother.py``: unrelated roots, each child its parent plus
a small update), plus per tree four artefacts made by :func:`probex_lib.lineage_data.derive`: an fp16
copy, an int8 copy (symmetric per-tensor, absmax / 127), an l1-pruned copy (50%) and the merge of two
siblings; N counts them all (a tree without two siblings gets no merge: the folder has one model
less). ``truth.json`` ({id: [parents]}) is written last, so a folder with it is complete; an
interrupted build skips the files it already has. The folder and the atlas are removed after the
run unless ``--keep``.

Rows per N, each measured in a fresh spawned process (its own peak resident memory, ``ru_maxrss``,
so the rows do not see each other's memory):

* ``describe``: :func:`probex_lib.describe.describe` on the folder (calibration: the shipped
  ``probex_lib/resources/edge_confidence.json`` if present, else none), wall seconds of the call,
  split into discover (``recover.load_models``), read layers (``Models.stack``), lineage (the rest of
  ``recover._recover_group``), html (``atlas_html.render``), write (``atomic.write_many``), figure
  (``recover.save_tree_figure``) and other (atlas dict, model cards); plus a check of the result against
  the truth (primary parents right, artefacts and merges typed right);
* ``reference``: plain MoTHer on the same files: the stacked layer read with ``zoo.load_layer``,
  then ``mother.pairwise_l2``, ``mother.kurtosis_score`` and ``mother.recover_graph`` (told the number
  of trees, as bench_mother: its own dendrogram cut splits off every near-exact copy), so the describe
  row shows what the lineage extras, the atlas and the files cost.

``--torch-threads 1`` sets torch's intra-op threads in both measured processes: on a loaded 2-core
machine the default pool stalls the many tiny per-file torch ops of reading (58 layers read in ~3 s
with the default pool, ~0.03 s with one thread, measured while a training job ran).

Targets (the issue; dim 256): 1,000 models under 3 minutes and 4 GB; 10,000 models under 15 minutes
and 16 GB (memory: one layer of all models, never whole checkpoints).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from probex_lib import atomic, paths, recover, zoo
from probex_lib.lineage_data import derive
from probex_lib.mother_sim import simulate

KEY = "fc.weight"
ARTEFACTS = {"fp16": "fp16", "int8": "quantised", "prune50": "pruned"}  # derive kind -> edge type describe should give
TARGETS = {(1000, 256): (180.0, 4.0), (10000, 256): (900.0, 16.0)}  # (models, dim) -> (seconds, GB)
SEED = 0


# --------------------------------------------------------------------------- the folder


def _sim_id(i: int) -> str:
    return f"m{i:05d}"


def plan(parent: np.ndarray, trees: int, seed: int = SEED) -> list[tuple[str, str, list[int]]]:
    """Artefacts to add to a simulated forest (parent (n,), -1 for a root): per tree an fp16, an int8
    and a 50%-pruned copy of three random members, and the merge of two siblings (if the tree has
    any). Returns [(id, derive kind, source indices)]."""
    rng = np.random.default_rng(seed + 1)
    root = np.arange(len(parent))
    for i in range(len(parent)):  # parents come before children
        root[i] = root[parent[i]] if parent[i] >= 0 else i
    out = []
    for r in range(trees):
        members = np.flatnonzero(root == r)
        for kind, src in zip(ARTEFACTS, rng.choice(members, 3, replace=len(members) < 3)):
            out.append((f"{_sim_id(src)}-{kind}", kind, [int(src)]))
        kids = defaultdict(list)
        for i in members:
            if parent[i] >= 0:
                kids[int(parent[i])].append(int(i))
        families = [k for k in sorted(kids) if len(kids[k]) >= 2]
        if families:
            a, b = sorted(rng.choice(kids[families[rng.integers(len(families))]], 2, replace=False))
            out.append((f"merge-{_sim_id(a)}-{_sim_id(b)}", "merge2", [int(a), int(b)]))
    return out


def build_folder(folder: Path, n: int, dim: int, trees: int) -> dict[str, list[str]]:
    """Write the N-model folder (see module doc), skipping files already there. Returns the truth
    {id: [parent ids]} (read from ``truth.json`` when the folder is complete)."""
    truth_file = folder / "truth.json"
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
        if all((folder / f"{m}.safetensors").exists() for m in truth):
            return truth
    n_sim = n - 4 * trees
    if n_sim < 2 * trees:
        raise SystemExit(f"--n {n}: too few models for {trees} trees and their {4 * trees} artefacts (need at least {6 * trees})")
    w, parent = simulate(n_sim, dim, trees, seed=SEED)
    extra = plan(parent, trees)  # a tree without siblings gets no merge: the folder then has fewer than n models
    truth = {_sim_id(i): ([_sim_id(parent[i])] if parent[i] >= 0 else []) for i in range(n_sim)}

    def states(idx: list[int]) -> list[dict[str, torch.Tensor]]:
        return [{KEY: torch.from_numpy(w[i].reshape(dim, dim))} for i in idx]

    for i in range(n_sim):
        if not (folder / f"{_sim_id(i)}.safetensors").exists():
            zoo.save_model(folder / f"{_sim_id(i)}.safetensors", states([i])[0], {})
    for mid, kind, src in extra:
        truth[mid] = [_sim_id(s) for s in src]
        if not (folder / f"{mid}.safetensors").exists():
            zoo.save_model(folder / f"{mid}.safetensors", derive(kind, states(src)), {})
    atomic.write_json(truth_file, truth)
    return truth


# --------------------------------------------------------------------------- the measured children


class _Phases:
    """Exclusive wall time per label of wrapped functions (time inside a nested wrapped call goes to its own label)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._inner: list[float] = []

    def wrap(self, owner, name: str, label: str) -> None:
        fn = getattr(owner, name, None)
        if fn is None:  # not in this version of the library
            return

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            self._inner.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed, inner = time.perf_counter() - t0, self._inner.pop()
                self.seconds[label] += elapsed - inner
                self.calls[label] += 1
                if self._inner:
                    self._inner[-1] += elapsed

        setattr(owner, name, timed)


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _set_threads(torch_threads: int | None) -> None:
    if torch_threads:
        torch.set_num_threads(torch_threads)


def run_describe(folder: str, out: str, calibration: str | None, torch_threads: int | None = None) -> dict:
    """In a fresh process: describe(folder) timed by phase; peak memory of this process."""
    from probex_lib import atlas_html, describe

    _set_threads(torch_threads)

    baseline_gb = _peak_gb()
    ph = _Phases()
    for owner, name, label in [(recover, "load_models", "discover"), (recover.Models, "stack", "read layers"),
                               (recover, "_recover_group", "lineage"), (atlas_html, "render", "html"),
                               (atomic, "write_many", "write"), (recover, "save_graph", "write"),
                               (recover, "save_tree_figure", "figure")]:
        ph.wrap(owner, name, label)
    t0 = time.perf_counter()
    atlas, written = describe.describe(folder, out, calibration=calibration)
    wall = time.perf_counter() - t0
    phases = {(f"{k} ({ph.calls[k]} calls)" if ph.calls[k] > 1 else k): v for k, v in ph.seconds.items()}
    phases["other"] = wall - sum(phases.values())
    return {"wall": wall, "peak_gb": _peak_gb(), "baseline_gb": baseline_gb, "phases": phases, "n_files": len(written),
            "parents": {m["id"]: m["parents"] for m in atlas["models"]},
            "types": {e["child"]: e["type"] for e in atlas["edges"]}, "trees": len(atlas["trees"])}


def run_reference(folder: str, trees: int, torch_threads: int | None = None) -> dict:
    """In a fresh process: plain MoTHer on the stacked layer of the same files, told the number of trees."""
    from probex_lib import mother

    _set_threads(torch_threads)
    files = sorted(Path(folder).glob("*.safetensors"))
    t = [time.perf_counter()]
    x = zoo.load_layer(files, KEY).numpy().reshape(len(files), -1)
    t.append(time.perf_counter())
    dist = mother.pairwise_l2(x)
    t.append(time.perf_counter())
    score = mother.kurtosis_score([x])
    t.append(time.perf_counter())
    labels, parent = mother.recover_graph(dist, score, trees)
    t.append(time.perf_counter())
    ids = [f.name[: -len(".safetensors")] for f in files]
    return {"wall": t[-1] - t[0], "peak_gb": _peak_gb(), "trees": len(set(labels.tolist())),
            "parents": {m: [ids[p]] if p >= 0 else [] for m, p in zip(ids, parent)},
            "phases": dict(zip(["read layer", "distances", "kurtosis", "clustering + MDSTs"], np.diff(t)))}


def in_child(fn, *args):
    """fn(*args) in a fresh spawned process (clean peak memory); its result."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# --------------------------------------------------------------------------- table


def _right(truth: dict[str, list[str]], parents: dict[str, list[str]]) -> int:
    """Models whose recovered primary parent is a true parent (a root: no parent)."""
    return sum(parents[m][:1] == ps[:1] if len(ps) < 2 else bool(parents[m]) and parents[m][0] in ps for m, ps in truth.items())


def check(truth: dict[str, list[str]], got: dict) -> str:
    """Primary parents right, and artefacts / merges given their type."""
    right = _right(truth, got["parents"])
    want = {m: ("merge" if m.startswith("merge-") else ARTEFACTS[m.rsplit("-", 1)[1]])
            for m in truth if m.startswith("merge-") or m.rsplit("-", 1)[-1] in ARTEFACTS}
    typed = sum(got["types"].get(m) == t for m, t in want.items())
    return f"{got['trees']} trees; primary parent right {right}/{len(truth)}; artefacts+merges typed right {typed}/{len(want)}"


def _split(phases: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in phases.items()) + " s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1000], help="models per folder (simulated models + 4 artefacts per tree)")
    ap.add_argument("--dim", type=int, default=256, help="the one layer is dim x dim (bench_mother's 10,000-model run: 256)")
    ap.add_argument("--trees", type=int, default=5, help="unrelated roots of the simulated forest")
    ap.add_argument("--keep", action="store_true", help="keep the model folders and atlases (a rerun then skips writing)")
    ap.add_argument("--out", default=str(paths.REPO_ROOT / "data" / "bench"), help="cache root of the folders")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads in the measured processes (default: torch's own, as a user runs it)")
    args = ap.parse_args()
    calibration = str(recover.CALIBRATION) if recover.CALIBRATION.exists() else None
    print(f"calibration: {calibration or 'none (no shipped edge_confidence.json)'}; "
          f"torch threads: {args.torch_threads or f'default ({torch.get_num_threads()})'}")
    print(f"{'task':<10} {'N':>6} {'dim':>4} {'files MB':>9} {'wall s':>8} {'peak GB':>8} {'target s / GB':>14} {'met?':>6}  note")
    for n in args.n:
        folder = Path(args.out) / f"describe-{n}-{args.dim}"
        atlas_dir = Path(args.out) / f"describe-{n}-{args.dim}.atlas"
        t0 = time.perf_counter()
        truth = build_folder(folder, n, args.dim, args.trees)
        build_s = time.perf_counter() - t0
        mb = sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 2**20
        try:
            got = in_child(run_describe, str(folder), str(atlas_dir), calibration, args.torch_threads)
            ref = in_child(run_reference, str(folder), args.trees, args.torch_threads)
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(atlas_dir, ignore_errors=True)
        target = TARGETS.get((n, args.dim))
        met = "-" if target is None else ("met" if got["wall"] < target[0] and got["peak_gb"] < target[1] else "MISSED")
        note = (f"{got['wall'] / ref['wall']:.1f}x reference; {_split(got['phases'])}; {check(truth, got)}; "
                f"{got['n_files']} files written; {got['baseline_gb']:.2f} GB before the call; folder built in {build_s:.0f} s")
        ref_note = (f"plain MoTHer ({args.trees} trees given): {_split(ref['phases'])}; "
                    f"primary parent right {_right(truth, ref['parents'])}/{len(truth)}")
        tgt = f"{target[0]:.0f} / {target[1]:.0f}" if target else "-"
        for task, r, t, verdict, text in [("describe", got, tgt, met, note), ("reference", ref, "-", "-", ref_note)]:
            print(f"{task:<10} {len(truth):>6} {args.dim:>4} {mb:>9.1f} {r['wall']:>8.2f} {r['peak_gb']:>8.2f} {t:>14} "
                  f"{verdict:>6}  {text}", flush=True)

if __name__ == "__main__":
    main()
