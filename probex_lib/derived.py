"""``probex-lineage A B [--null FOLDER_OR_FILES ...]``: is B derived from A (either direction)?

The pair's score (:func:`probex_lib.lineage.pair_score`: log distance and log effective rank of
B - A, each standardised against the null, in a weighted sum whose weights notebook 09 fits on the
kit's MoTHer dataset and ships in ``probex_lib/resources/edge_confidence.json``; higher = more derived) is compared with the
scores of the null pairs: its z-score and percentile among them. The verdict is ``derived`` when
z >= 3 (one-sided p about 0.001 under a normal null), else ``not derived``.

The null: every pair among the ``--null`` models (unrelated models of A's architecture: at least
3; up to ``max_null_pairs`` pairs drawn at random), or, without ``--null``, ``n_permutations``
copies of B with the rows and columns of each layer shuffled (B's own weights with any alignment
to A destroyed). The permutation null is weaker (it ignores that unrelated trained models share
statistics), so the output says which null was used.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import checkpoints, lineage, mother, recover, zoo

MAX_LAYERS = 16  # layers compared (evenly spaced over the shared 2-D tensors)
N_PERMUTATIONS = 32
MAX_NULL_PAIRS = 300


MEANING = ("derived: A and B are one lineage family (one descends from the other, or both from a common "
           "ancestor) beyond the null of unrelated models; the test does not tell a parent from a sibling or a cousin "
           "(README, rows K-pair1 and K-pair2; probex-describe on the whole folder places edges)")


class LineageError(ValueError):
    """The pair cannot be tested as asked; the message names the file and why."""


def layer_subset(keys: Sequence[str], max_layers: int = MAX_LAYERS) -> list[str]:
    """At most ``max_layers`` of the sorted ``keys``, evenly spaced: the layers a pair is compared on
    (notebook 09 uses the same, so its numbers are the CLI's)."""
    return lineage.evenly_spaced(sorted(keys), max_layers)


def _one(path: str | Path, role: str) -> checkpoints.ModelEntry:
    entries = checkpoints.discover(path)
    if len(entries) != 1:
        raise LineageError(f"{path}: {role} must be one model (a checkpoint file or one model's folder); found {len(entries)}: "
                           f"{[e.id for e in entries[:4]]}")
    return entries[0]


def _shapes(index: checkpoints.Index) -> dict[str, tuple[int, ...]]:
    return {k: shape for k, (_, shape) in index.items()}


def _layers(e: checkpoints.ModelEntry, keys: Sequence[str], index: checkpoints.Index) -> list[np.ndarray]:
    return [checkpoints.read_tensor(e, k, index).float().numpy() for k in keys]


def test_pair(a: str | Path, b: str | Path, null: Sequence[str | Path] = (), exclude: str | None = None,
              max_layers: int = MAX_LAYERS, n_permutations: int = N_PERMUTATIONS, max_null_pairs: int = MAX_NULL_PAIRS,
              seed: int = 0, calibration: str | Path | None = recover.CALIBRATION) -> dict:
    """The verdict on "is B derived from A" as a JSON-able dict (see module doc)."""
    ea, eb = _one(a, "A"), _one(b, "B")
    ia, ib = checkpoints.tensor_index(ea), checkpoints.tensor_index(eb)
    sa, sb = _shapes(ia), _shapes(ib)
    keep = lambda k: not (exclude and re.search(exclude, k))  # noqa: E731
    shared = sorted(k for k in sa if k in sb and sa[k] == sb[k] and len(sa[k]) >= 2 and keep(k))
    if not shared:
        raise LineageError(f"{ea.files[0]} and {eb.files[0]}: no 2-D tensor of the same name and shape; "
                           f"not the same architecture (e.g. {sorted(sa)[:3]} vs {sorted(sb)[:3]})")
    diff = sorted(k for k in set(sa) | set(sb) if keep(k) and sa.get(k) != sb.get(k))
    if diff:
        raise LineageError(f"{ea.files[0]} and {eb.files[0]}: different architectures (tensors differ: {diff[:3]}); "
                           f"pass --exclude REGEX to ignore e.g. differing heads")
    keys = layer_subset(shared, max_layers)
    xa, xb = _layers(ea, keys, ia), _layers(eb, keys, ib)
    rng = np.random.default_rng(seed)
    dropped: list[str] = []
    if null:
        entries = checkpoints.discover(list(null))
        own = {f.resolve() for f in (*ea.files, *eb.files)}
        dropped = [e.id for e in entries if {f.resolve() for f in e.files} & own]
        entries = [e for e in entries if e.id not in dropped]
        indexes = checkpoints.tensor_indexes(entries)
        for e in entries:
            se = _shapes(indexes[e.id])
            bad = [k for k in keys if se.get(k) != sa[k]]
            if bad:
                raise LineageError(f"{e.files[0]}: null model {e.id!r} is another architecture than A and B "
                                   f"({bad[0]!r} is {se.get(bad[0])} there, {sa[bad[0]]} in A)")
        if len(entries) < 3:
            raise LineageError(f"{list(null)}: {len(entries)} null model(s); need at least 3 unrelated models (3 pairs)")
        pairs = [(i, j) for i in range(len(entries)) for j in range(i + 1, len(entries))]
        if len(pairs) > max_null_pairs:
            pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), max_null_pairs, replace=False))]
        layers = {i: _layers(entries[i], keys, indexes[entries[i].id]) for i in sorted({i for p in pairs for i in p})}
        feats = np.array([lineage.pair_features(layers[i], layers[j]) for i, j in pairs])
        null_desc = f"{len(pairs)} pairs of {len(entries)} models given as unrelated ({', '.join(str(p) for p in null)})"
        if dropped:
            null_desc += f"; A and B themselves left out of the null ({', '.join(dropped)})"
    else:
        feats = np.array([lineage.pair_features(xa, [lineage.permuted(x, rng) for x in xb]) for _ in range(n_permutations)])
        null_desc = (f"{n_permutations} neuron-permuted copies of B (B's weights with their alignment to A destroyed); "
                     f"pass --null with unrelated models of this architecture for a sharper test")
    cal = recover.load_calibration(calibration) if calibration else None
    weights = cal.pair_weights if cal else (1.0, 1.0)
    t = lineage.pair_test(lineage.pair_features(xa, xb), feats, weights)
    ka = float(mother.kurtosis_score([x.reshape(1, -1) for x in xa])[0])
    kb = float(mother.kurtosis_score([x.reshape(1, -1) for x in xb])[0])
    return {"a": str(a), "b": str(b), "verdict": t.verdict, "score": t.score, "z": t.z, "percentile": t.percentile,
            "n_null": t.n_null, "null": null_desc, "layers": len(keys), "log_distance": t.log_distance,
            "log_eff_rank": t.log_eff_rank, "rule": f"derived if z >= {lineage.DERIVED_Z:g} against the null",
            "weights": list(weights), "weights_from": str(calibration) if cal else "equal weights (no calibration)",
            "meaning": MEANING,
            "direction": (("A -> B" if ka > kb else "B -> A") if t.verdict == "derived" else None),
            "direction_rule": "MoTHer's kurtosis prior: the higher-kurtosis model is the ancestor of a fine-tune "
                              f"(kurtosis A {ka:.4g}, B {kb:.4g}); weak at the kit's scale (claim M-F2)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="probex-lineage", description="Is B derived from A (either direction)? A verdict, a "
                                 "score, and its z-score and percentile among unrelated pairs of the same architecture. "
                                 + MEANING)
    ap.add_argument("a", help="a checkpoint file or one model's folder")
    ap.add_argument("b", help="a checkpoint file or one model's folder")
    ap.add_argument("--null", nargs="+", default=[], help="at least 3 models of A's architecture, unrelated to each other "
                    "and to A and B (not the folder A and B came from: relatives in the null hide relatedness); A and B "
                    "are left out if given; default: neuron-permuted copies of B")
    ap.add_argument("--exclude", default=None, help="regex of tensors to ignore (e.g. '^classifier')")
    ap.add_argument("--max-layers", type=int, default=MAX_LAYERS, help="layers compared, evenly spaced (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--calibration", default=str(recover.CALIBRATION), help="calibration JSON with the score's weights "
                    "('' for equal weights)")
    args = ap.parse_args(argv)
    try:
        res = test_pair(args.a, args.b, args.null, args.exclude, args.max_layers, calibration=args.calibration or None)
    except (LineageError, recover.RecoverError, zoo.ZooError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2, allow_nan=False))
    else:
        pct = f"{res['percentile']:.1f}" if math.isfinite(res["percentile"]) else "n/a"
        print(f"{res['verdict']}: score {res['score']:.2f}, z {res['z']:.1f}, percentile {pct} among {res['null']}")
        print(f"  rule: {res['rule']}")
        if res["direction"]:
            print(f"  direction: {res['direction']} ({res['direction_rule']})")
        print(f"  meaning: {res['meaning']}")
    return 0
