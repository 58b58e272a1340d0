"""ProbeX paper, Section 3: is learning within one Model Tree easier than across trees?

Populations (all ResNet9, each model trained on ``classes_per_model`` random classes of A):

* T1..T4: fine-tuned from four roots, each pre-trained for ``root_epochs`` on dataset B with
  its own seed (T = T1 in the paper's Fig. 3a, b);
* F: the same training from random initialisation, so every model is its own tree.

A linear metanetwork on one layer's flattened weights predicts the n_A binary labels "was
class c in this model's training set". Experiments: (a) T vs F, (b) accuracy vs number of
training models, (c) T1 test accuracy when other trees are added to training, (d) one expert
per tree vs one shared metanetwork.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import claims, data, parallel, paths, profiles, zoo
from .metanet import binary_accuracy, fit_linear_metanet
from .profiles import MotivationConfig
from .train import train_resnet9

FOREST = "F"


def _seed(cfg: MotivationConfig, *keys: int) -> int:
    return int(np.random.SeedSequence([cfg.seed, *keys]).generate_state(1)[0] % (2**31))


def class_split(cfg: MotivationConfig, n_classes: int = 100) -> tuple[list[int], list[int]]:
    """Datasets A and B: disjoint random class sets (global ids), sorted."""
    perm = np.random.default_rng(_seed(cfg, 0)).permutation(n_classes)
    a = sorted(perm[: cfg.n_classes_a].tolist())
    b = sorted(perm[cfg.n_classes_a: cfg.n_classes_a + cfg.n_classes_b].tolist())
    return a, b


def tree_names(cfg: MotivationConfig) -> list[str]:
    return [f"T{t + 1}" for t in range(cfg.n_trees)]


def _base_params(cfg: MotivationConfig) -> dict:
    return {
        "width": cfg.width, "data": profiles.as_dict(cfg.data), "batch_size": cfg.batch_size,
        "momentum": cfg.momentum, "weight_decay": cfg.weight_decay, "warmup": cfg.warmup,
    }


def root_specs(cfg: MotivationConfig) -> list[zoo.ModelSpec]:
    """One root per tree, pre-trained on B from its own random initialisation."""
    _, b = class_split(cfg)
    return [
        zoo.ModelSpec(f"root_{name}", {
            **_base_params(cfg), "classes": b, "images_per_class": cfg.root_images_per_class,
            "epochs": cfg.root_epochs, "lr": cfg.root_lr, "seed": _seed(cfg, 1, t), "init": "random",
            "population": "root", "tree": name, "parent": None,
        })
        for t, name in enumerate(tree_names(cfg))
    ]


def population_specs(cfg: MotivationConfig, roots_dir: Path) -> list[zoo.ModelSpec]:
    """Fine-tuned models of T1..T4 and the forest F, each with its own classes and seed."""
    a, _ = class_split(cfg)
    sizes = {name: cfg.models_t1 if t == 0 else cfg.models_other_trees for t, name in enumerate(tree_names(cfg))}
    sizes[FOREST] = cfg.models_forest
    specs = []
    for p, (pop, n) in enumerate(sizes.items()):
        for i in range(n):
            rng = np.random.default_rng(_seed(cfg, 2, p, i))
            classes = sorted(rng.choice(a, cfg.classes_per_model, replace=False).tolist())
            root = None if pop == FOREST else f"root_{pop}"
            specs.append(zoo.ModelSpec(f"{pop}-{i:04d}", {
                **_base_params(cfg), "classes": classes, "images_per_class": cfg.images_per_class,
                "epochs": cfg.epochs, "lr": cfg.lr, "seed": _seed(cfg, 3, p, i),
                "init": "random" if root is None else str(zoo.model_path(roots_dir, root).resolve()),
                "population": pop, "tree": pop if root else f"F{i}", "parent": root,
            }))
    return specs


# Settings that choose how many models exist or how they are read, not how any one model is trained:
# a population of n models is the first n of a larger one (per-model seeds), so every size shares one zoo.
SIZE_FIELDS = ("models_t1", "models_other_trees", "models_forest", "size_grid", "size_repeats", "split", "layer")


def zoo_settings(cfg: MotivationConfig) -> dict:
    """The settings a model file depends on (the config without :data:`SIZE_FIELDS`)."""
    return {k: v for k, v in profiles.as_dict(cfg).items() if k not in SIZE_FIELDS}


def default_zoo_dir(cfg: MotivationConfig, profile: str) -> Path:
    """``data/motivation/<profile>-<hash of the zoo settings>``: other settings, other folder; other
    population sizes, the same folder (a larger population adds models to it)."""
    return paths.data_dir() / "motivation" / f"{profile}-{profiles.settings_hash(zoo_settings(cfg))}"


def build_populations(cfg: MotivationConfig, zoo_dir: str | Path, executor: parallel.Executor = "process",
                      n_workers: int | None = None) -> pd.DataFrame:
    """Train (or resume) the roots and all populations; returns the manifest of the populations
    ``cfg`` asks for (the folder may hold more models, trained for a larger population size)."""
    zoo_dir = Path(zoo_dir)
    settings = zoo_settings(cfg)
    for split, n in (("train", cfg.data.n_train), ("test", cfg.data.n_test)):
        data.load_images(cfg.data.source, split, n, cfg.data.seed)  # cache once, before workers start
    zoo.generate_zoo(zoo_dir / "roots", root_specs(cfg), train_resnet9, settings, executor, n_workers,
                     desc="pre-training roots on B")
    specs = population_specs(cfg, zoo_dir / "roots")
    man = zoo.generate_zoo(zoo_dir / "populations", specs, train_resnet9, settings, executor, n_workers,
                           desc="fine-tuning T1..T4 and F")
    return man[man["model_id"].isin({s.model_id for s in specs})].reset_index(drop=True)


# --------------------------------------------------------------------------- metanetwork experiments


@dataclass(frozen=True)
class Population:
    """One population's features and labels at one layer, with a fixed train/val/test split.

    x: (n, d) flattened weights; y: (n, n_A) 0/1 labels over dataset A's classes.
    """

    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


SPLIT_BLOCK = 10  # models per block of the nested split


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test index arrays (sorted) of models 0..n-1 with the given fractions, nested in n:
    model i's part depends on i and ``seed`` only, so the split of the first k models of a population
    is the split of a k-model population (scaling curves compare populations of different sizes).

    Models come in blocks of 10; each block's slots are a seeded permutation of 7 train, 1 val and 2
    test (for 0.7/0.1/0.2), so whole blocks have the exact fractions. Fractions must be multiples of
    0.1 summing to 1; fewer than one model in a part is an error naming the population size.
    """
    counts = [f * SPLIT_BLOCK for f in fractions]
    if any(abs(c - round(c)) > 1e-9 for c in counts) or sum(round(c) for c in counts) != SPLIT_BLOCK:
        raise profiles.ProfileError(f"split {tuple(fractions)}: the fractions must be multiples of 0.1 that sum to 1")
    part_of_slot = np.repeat([0, 1, 2], [round(c) for c in counts])
    part = np.array([part_of_slot[np.random.default_rng([seed, i // SPLIT_BLOCK]).permutation(SPLIT_BLOCK)[i % SPLIT_BLOCK]]
                     for i in range(n)], dtype=int)
    out = tuple(np.flatnonzero(part == k) for k in range(3))
    if n and any(len(o) == 0 for o in out):
        raise ValueError(f"a population of {n} models has an empty train, val or test part under split {tuple(fractions)}; "
                         "use at least 10 models")
    return out  # type: ignore[return-value]


def load_populations(cfg: MotivationConfig, manifest: pd.DataFrame, layer: str | None = None) -> dict[str, Population]:
    """Features of every population at ``layer`` (default ``cfg.layer``), split by seed."""
    a, _ = class_split(cfg)
    layer = layer or cfg.layer
    out = {}
    for p, (pop, rows) in enumerate(sorted(manifest.groupby("population"), key=lambda kv: kv[0])):
        rows = rows.sort_values("model_id")
        x = zoo.load_layer(rows["path"].tolist(), layer).reshape(len(rows), -1).double().numpy()
        y = zoo.multi_hot([[str(c) for c in cl] for cl in rows["classes"]], [str(c) for c in a])
        out[pop] = Population(x, y, *split_indices(len(rows), cfg.split, _seed(cfg, 4, p)))
    return out


def _fit_eval(train_sets: list[tuple[np.ndarray, np.ndarray]], val: tuple[np.ndarray, np.ndarray],
              tests: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    return {name: acc for name, (acc, _) in _fit_eval_se(train_sets, val, tests).items()}


def _fit_eval_se(train_sets: list[tuple[np.ndarray, np.ndarray]], val: tuple[np.ndarray, np.ndarray],
                 tests: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """Per test set: (binary accuracy, its SE over test models). The labels of one model are not
    independent decisions, so the SE is that of the per-model accuracies' mean."""
    x = np.concatenate([t[0] for t in train_sets])
    y = np.concatenate([t[1] for t in train_sets])
    net = fit_linear_metanet(x, y, *val)
    out = {}
    for name, (xt, yt) in tests.items():
        per_model = ((net.predict(xt) > 0.5) == (yt > 0.5)).reshape(len(yt), -1).mean(1)
        se = float(per_model.std(ddof=1) / np.sqrt(len(per_model))) if len(per_model) > 1 else float("nan")
        out[name] = (binary_accuracy(net.predict(xt), yt), se)
    return out


def _part(p: Population, which: str) -> tuple[np.ndarray, np.ndarray]:
    idx = getattr(p, which)
    return p.x[idx], p.y[idx]


def tree_vs_forest(pops: dict[str, Population], tree: str = "T1") -> pd.DataFrame:
    """Fig. 3a: a metanetwork per population; test accuracy.

    Columns: population, n_train, accuracy, n_decisions (test models x labels, for error bars).
    """
    rows = []
    for name in (tree, FOREST):
        p = pops[name]
        acc, se = _fit_eval_se([_part(p, "train")], _part(p, "val"), {"test": _part(p, "test")})["test"]
        rows.append({"population": name, "n_train": len(p.train), "accuracy": acc, "se": se, "n_decisions": p.y[p.test].size})
    return pd.DataFrame(rows)


def positive_transfer(pops: dict[str, Population], sizes: tuple[int, ...], repeats: int, seed: int,
                      names: tuple[str, ...] = ("T1", FOREST)) -> pd.DataFrame:
    """Fig. 3b: accuracy vs number of training models (random subsets, ``repeats`` each).

    Columns: population, n_train, repeat, accuracy. Sizes above the training split are dropped.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for name in names:
        p = pops[name]
        for n in sizes:
            if n > len(p.train) or n < 2:
                continue
            for r in range(repeats):
                sub = np.sort(rng.choice(p.train, n, replace=False))
                acc = _fit_eval([(p.x[sub], p.y[sub])], _part(p, "val"), {"test": _part(p, "test")})["test"]
                rows.append({"population": name, "n_train": n, "repeat": r, "accuracy": acc})
    return pd.DataFrame(rows)


def negative_transfer(pops: dict[str, Population], trees: list[str]) -> pd.DataFrame:
    """Fig. 3c: train on trees[0] plus the training models of trees[1:k]; test on trees[0].

    Columns: n_trees, n_train, accuracy (on the test models of the first tree), n_decisions.
    """
    first = pops[trees[0]]
    rows = []
    for k in range(1, len(trees) + 1):
        train_sets = [_part(pops[t], "train") for t in trees[:k]]
        acc, se = _fit_eval_se(train_sets, _part(first, "val"), {"test": _part(first, "test")})["test"]
        rows.append({"n_trees": k, "n_train": sum(len(s[0]) for s in train_sets), "accuracy": acc,
                     "se": se, "n_decisions": first.y[first.test].size})
    return pd.DataFrame(rows)


def moe_vs_shared(pops: dict[str, Population], trees: list[str]) -> pd.DataFrame:
    """Fig. 3d: one expert per tree (oracle routing) vs one metanetwork for all trees.

    Columns: tree, method ("MoE" | "shared"), accuracy on that tree's test models, n_decisions.
    """
    tests = {t: _part(pops[t], "test") for t in trees}
    shared_val = tuple(np.concatenate([_part(pops[t], "val")[i] for t in trees]) for i in range(2))
    shared = _fit_eval_se([_part(pops[t], "train") for t in trees], shared_val, tests)
    rows = []
    for t in trees:
        expert = _fit_eval_se([_part(pops[t], "train")], _part(pops[t], "val"), {t: tests[t]})[t]
        n_dec = tests[t][1].size
        rows += [{"tree": t, "method": "MoE", "accuracy": expert[0], "se": expert[1], "n_decisions": n_dec},
                 {"tree": t, "method": "shared", "accuracy": shared[t][0], "se": shared[t][1], "n_decisions": n_dec}]
    return pd.DataFrame(rows)


def layer_sweep(cfg: MotivationConfig, manifest: pd.DataFrame, layers: list[str], names: tuple[str, ...] = ("T1", FOREST)) -> pd.DataFrame:
    """Fig. 3a per layer: T vs F test accuracy for every layer in ``layers``. Columns: layer, population, accuracy."""
    sub = manifest[manifest["population"].isin(names)]
    rows = []
    for layer in layers:
        pops = load_populations(cfg, sub, layer)
        for r in tree_vs_forest(pops).itertuples():
            rows.append({"layer": layer, "population": r.population, "accuracy": r.accuracy})
    return pd.DataFrame(rows)


def model_accuracy_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of the trained models themselves, per population: mean, std, min, chance."""
    g = manifest.groupby("population")
    out = g["test_accuracy"].agg(["count", "mean", "std", "min", "max"]).reset_index()
    out["chance"] = 1.0 / g["classes"].first().map(len).values
    return out


# --------------------------------------------------------------------------- claims


def standard_error(accuracy: float, n_decisions: int) -> float:
    """Binomial standard error of an accuracy measured over ``n_decisions`` binary decisions."""
    return float(np.sqrt(max(accuracy * (1 - accuracy), 1e-12) / max(n_decisions, 1)))


def _se(t: pd.DataFrame) -> np.ndarray:
    """Per row: the SE over test models ("se" column); tables without it (older records) fall back to
    the binomial SE over decisions, which treats one model's labels as independent."""
    if "se" in t:
        return t["se"].to_numpy(dtype=float)
    return np.array([standard_error(acc, int(n)) for acc, n in zip(t["accuracy"], t["n_decisions"])])


def judge_claims(a: pd.DataFrame, b: pd.DataFrame, c: pd.DataFrame, d: pd.DataFrame,
                 models: pd.DataFrame, layer: str) -> list[claims.Claim]:
    """Claims P-F3a..d: the numbers of the four experiments' tables, judged by :mod:`verdicts`."""
    from . import verdicts

    acc = dict(zip(a["population"], a["accuracy"]))
    t, f = acc["T1"], acc[FOREST]
    model_acc = {r.population: round(float(r.mean), 3) for r in models.itertuples()}
    se_a = dict(zip(a["population"], _se(a)))
    se_t, se_f = se_a["T1"], se_a[FOREST]
    out = [verdicts.judge(
        "P-F3a", {"t": t, "f": f, "se_t": se_t, "se_f": se_f},
        f"T {t:.3f}, F {f:.3f} (gap {t - f:+.3f}, SE {np.hypot(se_t, se_f):.3f})", "fig3a_tree_vs_forest.png",
        {"layer": layer, "n_train": dict(zip(a["population"], a["n_train"].astype(int))), "model_test_accuracy": model_acc})]

    g = b[b["population"] == "T1"].groupby("n_train")["accuracy"]
    curve, sd, reps = g.mean(), g.std(ddof=1), g.size()
    se = (sd / np.sqrt(reps)).where(reps > 1)
    out.append(verdicts.judge(
        "P-F3b", {"accuracy": curve.tolist(), "se": se.tolist()},
        ", ".join(f"{n}: {v:.3f}±{s:.3f}" for n, v, s in zip(curve.index, curve, se)) + f" (SE over {int(reps.min())} repeats)",
        "fig3b_positive_transfer.png"))

    by_k = dict(zip(c["n_trees"], c["accuracy"]))
    se_c = float(_se(c)[0])
    out.append(verdicts.judge(
        "P-F3c", {"alone": by_k[1], "with_others": [v for k, v in by_k.items() if k > 1], "se": se_c},
        ", ".join(f"{k} tree{'s' if k > 1 else ''} {v:.3f}" for k, v in by_k.items()) + f" (SE {se_c:.3f})",
        "fig3c_negative_transfer.png"))

    per = d.pivot(index="tree", columns="method", values="accuracy")
    moe, shared = float(per["MoE"].mean()), float(per["shared"].mean())
    se_d = d.assign(se=_se(d)).pivot(index="tree", columns="method", values="se")
    se_m, se_s = (float(np.sqrt((se_d[m] ** 2).sum()) / len(se_d)) for m in ("MoE", "shared"))
    ahead = int((per["MoE"] > per["shared"]).sum())
    out.append(verdicts.judge(
        "P-F3d", {"moe": moe, "shared": shared, "se_moe": se_m, "se_shared": se_s, "ahead": ahead, "trees": len(per)},
        f"MoE {moe:.3f}, shared {shared:.3f} (mean over {len(per)} trees, SE of the gap {np.hypot(se_m, se_s):.3f}; "
        f"MoE ahead on {ahead}/{len(per)} trees)", "fig3d_moe_vs_shared.png"))
    return out
