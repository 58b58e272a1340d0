"""Notebook 08: each headline claim's effect along one scale axis (issue 16).

An *axis* is a setting on which our ``default`` scale differs most from the paper's. A *point* is
one value of it: a zoo (cached by its settings hash like every zoo of the kit, resumable model by
model) and the claim's numbers measured on it. Each point is judged by the claim's own rule
(:mod:`probex_lib.verdicts`) and the curve by the trend rule there.

* ``root_steps`` (M-T1 FT, M-F1, M-F2, M-F7): MoTHer roots pre-trained for s steps, each an FT
  tree of 1 + 4 + 16 models, and root 0's chain of continued pre-training. Every s is its own
  run with the kit's schedule (warm-up, then linear decay to *its own* last step; a checkpoint of
  a longer run would be a different, undecayed model); s equal to notebook 06's reuses 06's files.
* ``lr_spread`` (M-T1 FT, M-F1, M-F2's fine-tuning half): the FT trees of those roots (at notebook
  06's step count) with fine-tuning learning rates spread so that max / min is s, log-symmetric
  about the kit's set's geometric mean (the kit's set for its own spread, so that point is notebook
  06's). The roots are notebook 06's files, linked, not retrained (their specs do not involve the
  FT rates).
* ``tree_models`` (P-F3a, P-F3c): n models in each of T1..T4 and F, one zoo shared with notebook 01
  (per-model seeds; the split is nested in n, :func:`motivation.split_indices`).
* ``resnet_width`` (P-F3a): the ResNet9 width multiplier, T1 and F at ``width_models`` models.
* ``lora_models`` (P-T2, P-T3): k LoRAs per class of notebook 02's first generative variant (its
  classes, held-out classes and per-LoRA seeds, so LoRA j of a class is the same training run at
  every k), in one folder shared by every k, split per model (nested in k); each point judged at
  the layer notebook 04 chose on validation.
* ``probex_models`` (P-T1): ProbeX, Dense and StatNN of every Model-J tree (notebook 02's zoo) trained
  on the first n of a seeded order of the tree's training models (nested in n), each tree at the
  layer notebook 03 chose on validation; validation and test models unchanged.
* ``lora_rank``, ``lora_steps``, ``lora_classes`` (P-T2, P-T3): at ``lora_axes_k`` LoRAs per class,
  the LoRAs of that point retrained with rank v, or with the personalisation-step grid scaled to top
  out at v (same images, rate, seed and grid position: paired), or the first v training classes of a
  seeded order (the LoRAs-per-class folder's files, split nested in v; held-out classes unchanged).
* ``vit_width`` (P-T1): notebook 02's SupViT root and fine-tunes (same specs and seeds) at hidden v,
  ProbeX / Dense / StatNN on that one tree at the layer chosen on validation.

A point's numbers come back as rows of one long table (``curve``, ``x``, ``y``, ``se``,
``point_verdict``, ...): ``y`` is the effect oriented so that the paper's direction is up.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import atomic, modelj, mother_data, mother_exp, mother_zoo, motivation, parallel, paths, profiles, verdicts, zoo
from .claims import Claim
from .profiles import MotherConfig, MotivationConfig, ScalingConfig

AXES = ("root_steps", "lr_spread", "tree_models", "resnet_width", "probex_models", "lora_models", "lora_rank", "lora_steps",
        "lora_classes", "vit_width")
LORA_AXES = {"lora_models": "loras", "lora_rank": "rank", "lora_steps": "lora_steps", "lora_classes": "classes"}  # -> curve suffix
CURVES_OF_AXIS = {"root_steps": ("M-T1@root_steps", "M-F1@root_steps", "M-F2@root_steps", "M-F7@root_steps"),
                  "lr_spread": ("M-T1@lr_spread", "M-F1@lr_spread", "M-F2@lr_spread"),
                  "tree_models": ("P-F3a@models", "P-F3c@models"), "resnet_width": ("P-F3a@width",),
                  "probex_models": ("P-T1@models",), "vit_width": ("P-T1@vit_width",)} | {a: (f"P-T2@{s}", f"P-T3@{s}") for a, s in LORA_AXES.items()}
MOTHER_SCORE_GROUP, MOTHER_TRACE_GROUP = mother_exp.SCORE_GROUP, "attention"  # notebook 06's headline choices
MIN_POPULATION = motivation.SPLIT_BLOCK  # a population needs one full block of the nested split


class AxisError(ValueError):
    """An axis value that cannot be built (raised before any training starts)."""


def axis_values(cfg: ScalingConfig, axis: str) -> tuple[int, ...]:
    return {"root_steps": cfg.root_steps, "lr_spread": cfg.lr_spreads, "tree_models": cfg.tree_models, "resnet_width": cfg.resnet_widths,
            "probex_models": cfg.probex_models, "lora_models": cfg.lora_models, "lora_rank": cfg.lora_ranks,
            "lora_steps": cfg.lora_steps, "lora_classes": cfg.lora_classes, "vit_width": cfg.vit_widths}[axis]


def modelj_train_models(profile: str) -> int:
    """Training models per Model-J tree in the profile's zoo (notebook 02's split)."""
    mj = profiles.get_config("modelj", profiles.base_profile(profile))
    return int(round(mj.split[0] * mj.models_per_tree))


def default_value(axis: str, profile: str, cfg: ScalingConfig | None = None) -> int:
    """The axis value of the profile's own experiments (the point marked on each curve), or -1 when
    no point of the axis is the profile's experiment (the ResNet9 widths run at ``width_models``
    models, notebook 01 at ``models_t1``)."""
    base = profiles.base_profile(profile)
    if axis == "root_steps":
        return profiles.get_config("mother", base).root_steps
    if axis == "lr_spread":
        return lr_spread_of(profiles.get_config("mother", base).ft_lrs)
    if axis == "probex_models":
        return modelj_train_models(profile)
    if axis == "vit_width":
        return -1  # one tree of notebook 03's four: no point is the profile's P-T1 experiment
    if axis in LORA_AXES:
        mj = profiles.get_config("modelj", base)
        if axis == "lora_models":
            return int(mj.variants[0][3])
        if (cfg or profiles.get_config("scaling", profile)).lora_axes_k != mj.variants[0][3]:
            return -1  # the axis runs at another number of LoRAs per class than notebook 02
        return {"lora_rank": mj.lora_rank, "lora_steps": max(mj.lora_steps), "lora_classes": mj.variants[0][1] - mj.variants[0][2]}[axis]
    mo = profiles.get_config("motivation", base)
    if axis == "tree_models":
        return mo.models_t1
    width_models = (cfg or profiles.get_config("scaling", profile)).width_models
    return mo.width if width_models == mo.models_t1 == mo.models_forest else -1


def is_default(curve: str, x: int, profile: str, cfg: ScalingConfig) -> bool:
    """Whether point x of ``curve`` is the profile's own experiment. P-F3c's default (T1 at models_t1,
    T2..T4 at models_other_trees) is on the equal-size axis only when the two sizes are equal."""
    axis = next(a for a, cs in CURVES_OF_AXIS.items() if curve in cs)
    if curve == "P-F3c@models":
        mo = profiles.get_config("motivation", profiles.base_profile(profile))
        return mo.models_other_trees == mo.models_t1 == x
    return x == default_value(axis, profile, cfg)


def check(cfg: ScalingConfig, profile: str) -> None:
    """Every axis value buildable, else an :class:`AxisError` naming the axis and the value."""
    unknown = sorted(set(cfg.axes) - set(AXES))
    if unknown:
        raise AxisError(f"unknown scaling axis {unknown}; valid axes: {list(AXES)}")
    base = profiles.base_profile(profile)
    mo, mc = profiles.get_config("motivation", base), profiles.get_config("mother", base)
    for axis in cfg.axes:
        values = axis_values(cfg, axis)
        if len(set(values)) != len(values):
            raise AxisError(f"axis {axis}: repeated values {list(values)}")
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise AxisError(f"axis {axis}: value {v!r} is not a positive integer")
            if axis == "lr_spread" and base_lrs_degenerate(mc.ft_lrs):
                raise AxisError(f"axis lr_spread: value {v}: the profile's fine-tuning learning rates {list(mc.ft_lrs)} "
                                "have no spread to scale (one distinct value)")
            if axis == "root_steps" and v < 10:
                raise AxisError(f"axis root_steps: value {v}: fewer than 10 steps leave no warm-up (10% of the steps)")
            if axis == "probex_models" and not 2 <= v <= modelj_train_models(profile):
                raise AxisError(f"axis probex_models: value {v}: each Model-J tree has {modelj_train_models(profile)} "
                                "training models (and an expert needs at least 2)")
            if axis == "tree_models" and v < MIN_POPULATION:
                raise AxisError(f"axis tree_models: value {v}: a population needs >= {MIN_POPULATION} models "
                                "(one block of the nested 70/10/20 split)")
    lora_axes = [a for a in cfg.axes if a in LORA_AXES and axis_values(cfg, a)]
    if lora_axes:
        mj, name = profiles.get_config("modelj", base), profiles.get_config("aligned", base).variants[0]
        if mj.variants[0][0] != name:
            raise AxisError(f"axis {lora_axes[0]}: notebook 04's first variant {name!r} is not the zoo's first generative "
                            f"variant {mj.variants[0][0]!r}")
        n_train_classes = mj.variants[0][1] - mj.variants[0][2]
        per_class = [(a, v) for a in lora_axes if a == "lora_models" for v in cfg.lora_models]
        per_class += [(f"{a} (lora_axes_k)", cfg.lora_axes_k) for a in lora_axes if a != "lora_models"]
        for a, v in per_class:
            if v < 2 or v * n_train_classes < MIN_POPULATION:
                raise AxisError(f"axis {a}: value {v}: kNN on held-out classes needs >= 2 LoRAs per class, and "
                                f"the nested split >= {MIN_POPULATION} LoRAs of the {n_train_classes} training classes")
        max_rank = min(mj.unet_size["widths"][1:])  # attention (the adapted layers) sits in every block but the outermost
        for v in cfg.lora_ranks if "lora_rank" in lora_axes else ():
            if v > max_rank:
                raise AxisError(f"axis lora_rank: value {v}: above the narrowest adapted layer's width {max_rank} "
                                f"(UNet widths {mj.unet_size['widths']}): not a low-rank update")
        for v in cfg.lora_classes if "lora_classes" in lora_axes else ():
            if v > n_train_classes or v * cfg.lora_axes_k < MIN_POPULATION:
                raise AxisError(f"axis lora_classes: value {v}: the variant {name!r} has {n_train_classes} training classes, "
                                f"and the nested split needs >= {MIN_POPULATION} LoRAs ({cfg.lora_axes_k} per class)")
    if "vit_width" in cfg.axes and cfg.vit_widths:
        mj = profiles.get_config("modelj", base)
        if mj.hub:
            raise AxisError(f"axis vit_width: the profile's roots come from the hub ({mj.hub.get(VIT_TREE)}), whose width is fixed")
        if VIT_TREE not in modelj.root_names(mj):
            raise AxisError(f"axis vit_width: the profile's Model-J zoo has no {VIT_TREE} tree (roots {modelj.root_names(mj)})")
        heads = mj.vit_size["heads"]
        for v in cfg.vit_widths:
            if v % heads:
                raise AxisError(f"axis vit_width: value {v}: the ViT's {heads} attention heads need a hidden width divisible by {heads}")
    if {"root_steps", "lr_spread"} & set(cfg.axes):
        if not 1 <= cfg.mother_roots:
            raise AxisError(f"mother_roots = {cfg.mother_roots}: need at least one root")
        if mc.classes_per_task > len(mother_zoo._all_classes()):
            raise AxisError(f"axis root_steps: MoTHer tasks of {mc.classes_per_task} classes, but the images have "
                            f"{len(mother_zoo._all_classes())} classes")
    if {"tree_models", "resnet_width"} & set(cfg.axes):
        if mo.classes_per_model > mo.n_classes_a:
            raise AxisError(f"models of {mo.classes_per_model} classes, but dataset A has {mo.n_classes_a}")
        if "resnet_width" in cfg.axes and cfg.resnet_widths and cfg.width_models < MIN_POPULATION:
            raise AxisError(f"axis resnet_width: width_models = {cfg.width_models}: a population needs >= {MIN_POPULATION} models")


def sem(values: list[float]) -> float:
    """Standard error of the mean across seeds (nan for one value)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def share_se(per_seed: list[float], n: int) -> float:
    """SE of a mean share across seeds, floored by the binomial SE of the pooled share over its n
    decisions with one success and one failure added (so that seeds that agree exactly, e.g. three
    trees all at 1.0, still carry the resolution of n decisions, never an SE of 0)."""
    p = (float(np.mean(per_seed)) * n + 1) / (n + 2)
    floor = verdicts.binomial_se(p, n + 2)
    s = sem(per_seed)
    return max(s, floor) if np.isfinite(s) else floor


# --------------------------------------------------------------------------- MoTHer: root pre-training steps


def mother_point_config(base: MotherConfig, steps: int, roots: int) -> MotherConfig:
    """Notebook 06's config cut to what the curves read: ``roots`` roots pre-trained for ``steps``,
    an FT tree each, root 0's chain; no LoRA, Deep, ResNet or merges."""
    return dataclasses.replace(base, root_steps=steps, n_roots=roots, subsets=("FT",), deep_levels=0, resnet_trees=0,
                               merge_roots=0)


def _complete(cfg: MotherConfig, folder: Path) -> list[str] | None:
    """The model ids ``cfg`` plans, if every one of them has its file in ``folder``; else None."""
    need = [s.model_id for wave in mother_zoo.plan(cfg, folder).values() for s in wave]
    return need if folder.exists() and all(zoo.model_path(folder, m).exists() for m in need) else None


def mother_point(base: MotherConfig, cfg: MotherConfig, profile: str, executor: parallel.Executor = "process",
                 n_workers: int | None = None, root: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """The manifest of the point ``cfg`` (:func:`mother_point_config`, :func:`lr_point_config`) and
    where it came from. A point at notebook 06's step count and FT rates is a true subset of 06's
    dataset (same specs, seeds and data): read from there when every file it needs exists. Any other
    point is built in its own folder, with 06's roots linked in where both plans specify them
    identically (:func:`_link_roots`)."""
    full = mother_zoo.folder_for(base, profiles.base_profile(profile))
    if (cfg.root_steps, cfg.ft_lrs) == (base.root_steps, base.ft_lrs):
        need = _complete(cfg, full)
        if need is not None:
            man = mother_zoo.open_dataset(full)
            return man[man["model_id"].isin(need)].reset_index(drop=True), f"notebook 06's dataset {full.name}"
    points = root or paths.data_dir() / "scaling" / "mother"
    if full.exists():
        _link_roots(cfg, base, full, mother_zoo.folder_for(cfg, "points", points))
    folder, man, _ = mother_zoo.build(cfg, "points", executor, n_workers, points)
    return man, folder.name


def lr_spread_of(lrs: tuple[float, ...]) -> int:
    """max / min of a set of learning rates, rounded (the x of the lr_spread axis)."""
    return int(round(max(lrs) / min(lrs)))


def base_lrs_degenerate(lrs: tuple[float, ...]) -> bool:
    return max(lrs) <= min(lrs)


def spread_lrs(lrs: tuple[float, ...], spread: int) -> tuple[float, ...]:
    """``lrs`` stretched in log space about their geometric mean so that max / min = ``spread``
    (3 significant digits); the set itself when ``spread`` is its own (rounded) spread. 1: every
    rate the geometric mean."""
    if spread == lr_spread_of(lrs):
        return tuple(lrs)
    lo, hi = min(lrs), max(lrs)
    centre, power = float(np.sqrt(lo * hi)), np.log(spread) / np.log(hi / lo)
    return tuple(float(f"{centre * (lr / centre) ** power:.3g}") for lr in lrs)


def lr_point_config(base: MotherConfig, spread: int, roots: int) -> MotherConfig:
    """Notebook 06's config cut to ``roots`` roots at its own step count with an FT tree each
    (no chain: M-F7 does not involve the FT rates), the FT rates spread to ``spread``."""
    return dataclasses.replace(mother_point_config(base, base.root_steps, roots), ft_lrs=spread_lrs(base.ft_lrs, spread),
                               chain_stages=0)


def _link_roots(cfg: MotherConfig, src_cfg: MotherConfig, src: Path, dst: Path) -> int:
    """Put the roots of ``cfg``'s plan into ``dst`` from ``src`` (built by ``src_cfg``; hard link,
    else copy; each atomically through a temporary name) where ``src`` has them complete and the two
    plans specify them identically; returns how many were linked. Roots that differ or are absent
    are left to train."""
    import os
    import shutil

    mine = {s.model_id: s.params for s in mother_zoo.plan(cfg, dst)[0]}
    theirs = {s.model_id: s.params for s in mother_zoo.plan(src_cfg, src)[0]}
    n = 0
    for mid, params in mine.items():
        f, g = zoo.model_path(src, mid), zoo.model_path(dst, mid)
        if g.exists() or theirs.get(mid) != params or not zoo.is_complete(f):
            continue
        g.parent.mkdir(parents=True, exist_ok=True)
        tmp = g.with_suffix(".link.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(f, tmp)
        except OSError:
            shutil.copy2(f, tmp)
        os.replace(tmp, g)
        n += 1
    return n


def mother_ft_numbers(man: pd.DataFrame, c: float) -> dict[str, dict[str, Any]]:
    """M-T1 (FT) and M-F1 at one point: y, se, the numbers of the claim's own rule, and words (keys
    without the axis)."""
    ft = mother_data.members(man, "FT")
    trees = sorted(set(ft["tree"]))
    rhos, n_pairs = [], 0
    for t in trees:
        df, rho = mother_exp.distance_vs_hops(mother_data.load(ft[ft["tree"] == t]))
        rhos.append(rho)
        n_pairs = len(df)
    # Table 1's protocol (notebook 06): the FT models of every tree recovered together (clustering, then
    # one MDST per cluster); y is its graph accuracy, the SE from its per-tree accuracies
    w = mother_data.load(ft)
    ft_row = mother_exp.run(w, mother_exp.distance(w, "ft"), mother_exp.score(w, MOTHER_SCORE_GROUP), len(trees), c)
    per_tree = [float(ft_row[f"tree {t}"]) for t in trees]
    from .mother_claims import PAPER_T1, SHAPE_1_4_16

    sub = {"FT": {"ours": float(ft_row["graph"]), "paper": PAPER_T1["FT"], "paper_baseline": SHAPE_1_4_16,
                  "baseline": float(ft_row["baseline"]), "signal": float(ft_row["signal"]),
                  "n_placed": int(ft_row["n placed"]), "p_random_root": float(ft_row["p random root"])}}
    k = len(trees)
    rho_floor = (1 - min(np.mean(rhos) ** 2, 0.999)) / np.sqrt(max(n_pairs - 3, 1))
    return {
        "M-T1": {"y": float(ft_row["graph"]), "se": share_se(per_tree, int(ft_row["edges"])), "rule": {"subsets": sub},
                 "ours": f"FT graph accuracy {ft_row['graph']:.2f} (per tree {', '.join(f'{a:.2f}' for a in per_tree)}); "
                         f"direction signal {sub['FT']['signal']:.2f}"},
        "M-F1": {"y": float(np.mean(rhos)), "se": float(np.nanmax([sem(rhos), rho_floor / np.sqrt(k)])),
                 "rule": {"rho": float(np.mean(rhos)), "n_pairs": n_pairs},
                 "ours": f"rho {np.mean(rhos):.2f} (per tree {', '.join(f'{r:.2f}' for r in rhos)})"},
    }


def m_f2_numbers(man: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """M-F2 at one MoTHer point, both halves, each with the claim's own rule numbers:
    ``"pre"``, y = the mean over roots of the share of pre-training trace records where kurtosis
    rises (the root-steps curve), and ``"ft"``, y = the mean over FT trees of the share of fine-tuning
    records where it falls (the learning-rate-spread curve). SEs across roots / trees, floored by
    :func:`share_se`."""
    ft = mother_data.members(man, "FT")
    trees = sorted(set(ft["tree"]))
    ft_ids = ft.query("subset == 'FT'")[["model_id", "tree"]]
    pre = mother_data.traces(man, man.query("mode == 'pretrain'")["model_id"], MOTHER_TRACE_GROUP)
    ft_tr = mother_data.traces(man, ft_ids["model_id"], MOTHER_TRACE_GROUP)
    net = {"pre_up": mother_exp.net_direction(pre, True), "n_pre": int(pre["model_id"].nunique()),
           "ft_down": mother_exp.net_direction(ft_tr, False), "n_ft": int(ft_tr["model_id"].nunique())}

    def records(tr: pd.DataFrame) -> int:
        return int(sum(max(len(g) - 1, 0) for _, g in tr.groupby("model_id")))

    root_rise = [mother_exp.monotonic_fraction(pre[pre["model_id"] == r], True) for r in trees]
    ft_fall = [mother_exp.monotonic_fraction(ft_tr[ft_tr["model_id"].isin(ft_ids.loc[ft_ids["tree"] == t, "model_id"])], False)
               for t in trees]
    nets = (f"net up {net['pre_up']:.2f} of {net['n_pre']} pre-training runs, net down {net['ft_down']:.2f} of "
            f"{net['n_ft']} fine-tunes")
    return {
        "pre": {"y": float(np.mean(root_rise)), "se": share_se(root_rise, records(pre[pre["model_id"].isin(trees)])),
                "rule": net, "ours": f"{np.mean(root_rise):.2f} of pre-training records rise (per root "
                                     f"{', '.join(f'{r:.2f}' for r in root_rise)}); {nets}"},
        "ft": {"y": float(np.mean(ft_fall)), "se": share_se(ft_fall, records(ft_tr)), "rule": net,
               "ours": f"{np.mean(ft_fall):.2f} of fine-tuning records fall (per tree "
                       f"{', '.join(f'{r:.2f}' for r in ft_fall)}); {nets}"},
    }


def mother_numbers(man: pd.DataFrame, c: float) -> dict[str, dict[str, Any]]:
    """Per curve of the root_steps axis: y, se, the numbers of the claim's own rule, and words."""
    ft = mother_ft_numbers(man, c)
    ch = mother_exp.chain(man, MOTHER_SCORE_GROUP, c).set_index("prior").loc["generalisation (flipped)"]
    n_chain = int(ch["models"]) - 1
    wrong = int(round((1 - ch["graph"]) * n_chain))
    return {
        "M-T1@root_steps": ft["M-T1"], "M-F1@root_steps": ft["M-F1"], "M-F2@root_steps": m_f2_numbers(man)["pre"],
        "M-F7@root_steps": {"y": float(ch["signal"]), "se": verdicts.null_se(int(ch["n placed"])),
                            "rule": {"wrong": wrong, "signal": float(ch["signal"]), "n_placed": int(ch["n placed"])},
                            "ours": f"{wrong} of {n_chain} chain edges wrong, signal {ch['signal']:.2f} (SE: null, "
                                    f"{int(ch['n placed'])} edges)"},
    }


# --------------------------------------------------------------------------- ProbeX Fig. 3: population size, ResNet9 width


def motivation_point_config(base: MotivationConfig, n: int, trees: bool = True, width: int | None = None) -> MotivationConfig:
    """Notebook 01's config with n models in T1, F (and T2..T4 when ``trees``), at ``width``."""
    return dataclasses.replace(base, models_t1=n, models_forest=n, models_other_trees=n if trees else 0,
                               width=base.width if width is None else width)


def motivation_numbers(cfg: MotivationConfig, man: pd.DataFrame, trees: bool = True) -> dict[str, dict[str, Any]]:
    """P-F3a (and P-F3c when ``trees``) at one population size or width."""
    pops = motivation.load_populations(cfg, man)
    a = motivation.tree_vs_forest(pops).set_index("population")
    t, f, se_t, se_f = a.loc["T1", "accuracy"], a.loc["F", "accuracy"], a.loc["T1", "se"], a.loc["F", "se"]
    out = {"P-F3a": {"y": float(t - f), "se": verdicts.se_diff(se_t, se_f),
                     "rule": {"t": float(t), "f": float(f), "se_t": float(se_t), "se_f": float(se_f)},
                     "ours": f"T {t:.3f}, F {f:.3f} (gap {t - f:+.3f}); {len(pops['T1'].test)} + {len(pops['F'].test)} test models",
                     "n_test": len(pops["T1"].test)}}
    if trees:
        c = motivation.negative_transfer(pops, motivation.tree_names(cfg))
        by_k = dict(zip(c["n_trees"], c["accuracy"]))
        se = float(c["se"].iloc[0])
        others = [v for k, v in by_k.items() if k > 1]
        out["P-F3c"] = {"y": float(by_k[1] - np.mean(others)), "se": verdicts.se_diff(se, se),
                        "rule": {"alone": float(by_k[1]), "with_others": [float(o) for o in others], "se": se},
                        "ours": ", ".join(f"{k} tree{'s' if k > 1 else ''} {v:.3f}" for k, v in by_k.items()) + f" (SE {se:.3f})",
                        "n_test": len(pops["T1"].test)}
    return out


# --------------------------------------------------------------------------- ProbeX Table 1: training models per tree


def probex_layers(manifest: pd.DataFrame, pcfg: Any, profile: str, key: str = "classes",
                  trees: list[str] | None = None) -> dict[str, str]:
    """Per tree (every tree of ``manifest``, or ``trees``), the layer notebook 03 chose on validation
    (read from its saved tree experts), or, where they are absent, the same choice made here: ProbeX
    on every swept layer, best validation."""
    from . import expert_store, experts

    folder = experts.expert_dir(manifest, pcfg, profiles.base_profile(profile), key)
    _, labels = experts.label_matrix(manifest, key)
    out = {}
    for tree in trees or sorted(manifest["tree"].unique()):
        f = folder / f"{tree}.safetensors"
        if f.exists():
            out[tree] = expert_store.load_tree_expert(f).layer
            continue
        sub = manifest[manifest["tree"] == tree].reset_index(drop=True)
        sweep = experts.layer_sweep(sub, experts.swept_layers(sub["path"].iloc[0], pcfg.sweep_filter), pcfg.epochs,
                                    pcfg.seed, key, labels, r_u=pcfg.r_u, r_v=pcfg.r_v, r_t=pcfg.r_t)
        out[tree] = str(sweep.loc[sweep["val"].idxmax(), "layer"])
    return out


def first_training_models(sub: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """One tree's rows with only the first n training models of a seeded order (the same order for
    every n, so smaller sets are subsets of larger ones); other rows and the row order unchanged."""
    train = np.flatnonzero(sub["split"].to_numpy() == "train")
    if n > len(train):
        raise AxisError(f"axis probex_models: value {n}: tree {sub['tree'].iloc[0]} has {len(train)} training models")
    keep = set(train[np.random.default_rng([seed, 16]).permutation(len(train))[:n]].tolist())
    return sub[[i in keep or s != "train" for i, s in enumerate(sub["split"])]].reset_index(drop=True)


def probex_numbers(manifest: pd.DataFrame, layers: dict[str, str], n: int, pcfg: Any, key: str = "classes") -> dict[str, Any]:
    """P-T1 with n training models per tree: means over trees, SEs as notebook 03 (root of the summed
    squared test SEs over the number of trees)."""
    from . import experts

    _, labels = experts.label_matrix(manifest, key)
    res: dict[str, list[dict]] = {"probex": [], "dense": [], "statnn": []}
    for tree, layer in layers.items():
        sub = first_training_models(manifest[manifest["tree"] == tree].reset_index(drop=True), n, pcfg.seed)
        d = experts.layer_data(sub, layer, key, labels)
        res["probex"].append(experts.fit_expert("probex", d, pcfg.epochs, pcfg.seed, r_u=pcfg.r_u, r_v=pcfg.r_v, r_t=pcfg.r_t))
        res["dense"].append(experts.fit_expert("dense", d, pcfg.epochs, pcfg.seed))
        res["statnn"].append(experts.fit_statnn_tree(sub, key, labels, pcfg.seed, pcfg.statnn_iter))
    mean = {k: float(np.mean([r["test"] for r in v])) for k, v in res.items()}
    se = {k: float(np.sqrt(sum(r["test_se"] ** 2 for r in v)) / len(v)) for k, v in res.items()}
    ratio = float(np.mean([r["parameters"] for r in res["dense"]]) / np.mean([r["parameters"] for r in res["probex"]]))
    rule = {"probex": mean["probex"], "dense": mean["dense"], "statnn": mean["statnn"], "se_probex": se["probex"],
            "se_dense": se["dense"], "se_statnn": se["statnn"], "param_ratio": ratio}
    return {"y": mean["probex"] - mean["dense"], "se": verdicts.se_diff(se["probex"], se["dense"]), "rule": rule,
            "ours": f"ProbeX {mean['probex']:.3f}, Dense {mean['dense']:.3f}, StatNN {mean['statnn']:.3f} "
                    f"({len(layers)} trees, {n} training models each)"}


# --------------------------------------------------------------------------- ProbeX Table 1: ViT width

VIT_TREE = "SupViT"  # the tree the width axis scales (the others: a second ViT, MAE, ResNet)


def vit_point_config(mcfg: Any, width: int) -> Any:
    """Notebook 02's Model-J settings with the ViT at hidden ``width`` (MLP width scaled with it, heads
    and depth unchanged); notebook 02's own settings at its width."""
    size = mcfg.vit_size
    return dataclasses.replace(mcfg, vit_size={**size, "hidden_size": width, "mlp": size["mlp"] * width // size["hidden_size"]})


def vit_point(mcfg: Any, width: int, profile: str, executor: parallel.Executor = "process",
              n_workers: int | None = None) -> tuple[pd.DataFrame, str]:
    """The SupViT tree at ``width``: notebook 02's zoo (every tree, built if missing) at its own width,
    else the root and its ``models_per_tree`` fine-tunes with notebook 02's specs and seeds at that width
    in ``data/scaling/vit/`` (resumable). Returns the manifest and where the models came from."""
    from . import vision

    pc, dirs, specs = _vit_plan(mcfg, width, profile)
    if pc == mcfg:
        return modelj.build(mcfg, profiles.base_profile(profile), executor, n_workers,
                            parts=("discriminative",)).manifests["discriminative"], "notebook 02's zoo"
    modelj.cache_images(pc)
    zoo.generate_zoo(dirs["roots"], [s for s in modelj.root_specs(pc) if s.model_id == VIT_TREE], vision.train_vision,
                     modelj._settings(pc, modelj.ROOT_FIELDS), executor, n_workers, desc=f"{VIT_TREE} root, hidden {width}")
    man = zoo.generate_zoo(dirs["discriminative"], specs, vision.train_vision, modelj._settings(pc, modelj.DISC_FIELDS),
                           executor, n_workers, desc=f"{VIT_TREE} fine-tunes, hidden {width}")
    return man, dirs["discriminative"].name


def _vit_plan(mcfg: Any, width: int, profile: str) -> tuple[Any, dict[str, Path], list[zoo.ModelSpec]]:
    """(settings, folders, SupViT fine-tune specs) of a width point: notebook 02's folders at its width."""
    pc, base = vit_point_config(mcfg, width), profiles.base_profile(profile)
    dirs = modelj.zoo_dirs(pc, base, None if pc == mcfg else paths.data_dir() / "scaling" / "vit" / base)
    return pc, dirs, [s for s in modelj.finetune_specs(pc, dirs["roots"]) if s.params["tree"] == VIT_TREE]


def vit_point_present(mcfg: Any, width: int, profile: str) -> bool:
    _, dirs, specs = _vit_plan(mcfg, width, profile)
    return all(zoo.model_path(dirs["discriminative"], s.model_id).exists() for s in specs)


# --------------------------------------------------------------------------- ProbeX Tables 2-3: LoRAs per class


def lora_point_settings(mcfg: Any) -> dict[str, Any]:
    """What every LoRA of a LoRA point depends on (not k, not the class subset): notebook 02's generative settings
    with its first variant's classes and held-out classes, and the nested split."""
    s = {k: v for k, v in profiles.as_dict(mcfg).items() if k in modelj.GEN_FIELDS and k != "variants"}
    name, n_cls, n_held, _ = mcfg.variants[0]
    return s | {"variant": [name, n_cls, n_held], "split_kind": "per model, blocks of 10 in (LoRA index, class) order"}


def lora_point_dir(mcfg: Any, profile: str) -> Path:
    return (paths.data_dir() / "scaling" / "lora" / profiles.base_profile(profile)
            / f"{mcfg.variants[0][0]}-{profiles.settings_hash(lora_point_settings(mcfg))}")


def lora_point_specs(mcfg: Any, dirs: dict[str, Path], k: int) -> list[zoo.ModelSpec]:
    """The LoRAs of a k-per-class point: :func:`modelj.lora_specs` of the first variant with k per
    class (LoRA j of class c has seeds of (variant, c, j) only, so it is the same run at every k),
    with a split nested in k: training-class LoRAs ordered by (j, class) and split in seeded
    blocks of 10 (:func:`motivation.split_indices`); LoRAs of held-out classes stay "holdout"."""
    name, n_cls, n_held, _ = mcfg.variants[0]
    specs = modelj.lora_specs(dataclasses.replace(mcfg, variants=((name, n_cls, n_held, k),)), dirs, 0)
    train = sorted((s for s in specs if s.params["split"] != "holdout"),
                   key=lambda s: (int(s.model_id.rsplit("-", 1)[1]), s.params["class_id"]))
    parts = motivation.split_indices(len(train), mcfg.split, modelj._seed(mcfg, 16))
    split = {train[i].model_id: part for part, idx in zip(("train", "val", "test"), parts) for i in idx}
    return [zoo.ModelSpec(s.model_id, {**s.params, "split": split.get(s.model_id, "holdout")}) for s in specs]


def steps_grid(grid: tuple[int, ...], top: int) -> tuple[int, ...]:
    """The personalisation-step grid scaled so that its largest value is ``top`` (the grid itself at
    ``top = max(grid)``). Same length, so every LoRA draws the same grid position: points are paired."""
    return tuple(max(1, round(s * top / max(grid))) for s in grid)


def lora_axis_config(mcfg: Any, axis: str, v: int) -> Any:
    """Notebook 02's generative settings at value v of a LoRA axis: rank v, or the step grid scaled to
    top out at v; unchanged for lora_models and lora_classes (k and the class subset are not settings)."""
    if axis == "lora_rank":
        return dataclasses.replace(mcfg, lora_rank=v)
    if axis == "lora_steps":
        return dataclasses.replace(mcfg, lora_steps=steps_grid(mcfg.lora_steps, v))
    return mcfg


def class_order(mcfg: Any) -> list[int]:
    """The first variant's training classes in a seeded order: the n-class point uses the first n."""
    classes, held = modelj.variant_classes(mcfg, 0)
    train = [c for c in classes if c not in held]
    return [train[i] for i in np.random.default_rng(modelj._seed(mcfg, 17)).permutation(len(train))]


def class_point_split(mcfg: Any, specs: list[zoo.ModelSpec], n: int) -> dict[str, str]:
    """model id -> split of the n-training-class point of the k-per-class LoRAs ``specs``: the LoRAs
    of the first n classes of :func:`class_order`, ordered by (class position, LoRA index), split in
    seeded blocks of 10 (nested in n); held-out classes' LoRAs stay "holdout"; other LoRAs absent."""
    pos = {c: i for i, c in enumerate(class_order(mcfg)[:n])}
    train = sorted((s for s in specs if s.params["class_id"] in pos and s.params["split"] != "holdout"),
                   key=lambda s: (pos[s.params["class_id"]], int(s.model_id.rsplit("-", 1)[1])))
    parts = motivation.split_indices(len(train), mcfg.split, modelj._seed(mcfg, 18))
    split = {train[i].model_id: part for part, idx in zip(("train", "val", "test"), parts) for i in idx}
    return split | {s.model_id: "holdout" for s in specs if s.params["split"] == "holdout"}


def lora_point(mcfg: Any, k: int, dirs: dict[str, Path], profile: str, executor: parallel.Executor = "process",
               n_workers: int | None = None, n_classes: int | None = None) -> tuple[pd.DataFrame, Path]:
    """Train (or resume) the LoRAs of the k-per-class point on notebook 02's base UNet (in
    ``dirs["diffusion"]``, :func:`modelj.build`); returns the manifest of the point's LoRAs (the
    folder may hold more, trained for a larger k) and the folder. With ``n_classes``, only the LoRAs
    of the first n training classes (and every held-out class) of the k point, with the split of
    :func:`class_point_split` (the files keep the split of the k point they were trained for)."""
    from . import diffusion

    specs = lora_point_specs(mcfg, dirs, k)
    relabel = class_point_split(mcfg, specs, n_classes) if n_classes is not None else None
    if relabel is not None:
        specs = [sp for sp in specs if sp.model_id in relabel]
    folder = lora_point_dir(mcfg, profile)
    man = zoo.generate_zoo(folder, specs, diffusion.train_lora, lora_point_settings(mcfg), executor, n_workers,
                           desc=f"LoRAs, {k} per class")
    man = man[man["model_id"].isin({s.model_id for s in specs})].reset_index(drop=True)
    planned = {s.model_id: s.params["split"] for s in specs}
    stale = [m for m, sp in zip(man["model_id"], man["split"]) if planned[m] != sp]
    if stale:  # files written under another split rule than the plan's: never mix the two
        raise zoo.ZooError(f"{folder}: LoRAs {stale[:3]} record another split than the nested split planned now; "
                           "delete the folder to rebuild it")
    if relabel is not None:
        man = man.assign(split=man["model_id"].map(relabel))
    return man, folder


def notebook04_layer(manifests: dict[str, pd.DataFrame], profile: str, n_workers: int | None = None) -> str:
    """The layer notebook 04 chose on validation for its first variant (its cached sweep; run if
    absent). ``manifests``: the generative zoo's, as :func:`modelj.build` returns them."""
    from . import zeroshot

    acfg = profiles.get_config("aligned", profiles.base_profile(profile))
    name = acfg.variants[0]
    ls = zeroshot.load_loras(manifests[name], acfg.layer_filter)
    sweep, _, _ = zeroshot.swept_expert(ls, acfg, paths.data_dir() / "aligned" / profiles.base_profile(profile), name,
                                        n_workers=n_workers)
    return zeroshot.chosen_layer(sweep)


def lora_numbers(ls: Any, layer: str, acfg: Any, variant: str, executor: parallel.Executor = "process",
                 n_workers: int | None = None) -> dict[str, dict[str, Any]]:
    """P-T2 (Table 2 on ``layer``: ProbeX, Dense, StatNN linear and MLP, ``acfg.repeats`` seeds each)
    and P-T3 (Table 3 with the ProbeX of seed ``acfg.seed``) at one point, keyed by claim; y as in
    verdicts.TREND_CURVES (the same effect on every LoRA axis)."""
    from . import retrieval, zeroshot

    T = zeroshot.class_text(acfg.text_encoder, ls, acfg)
    t2 = zeroshot.table2_at(ls, T, acfg, layer, variant, executor, n_workers)
    variants, ours2 = zeroshot.t2_numbers(t2)
    v = variants[0]
    best = max(v["baselines"], key=lambda b: b["zeroshot"])
    fit, _ = zeroshot.fit_one(ls, T, acfg, "probex", [layer])
    t3 = retrieval.knn_occ(ls, fit.model, layer, acfg.ks, variant)
    rule3, ours3 = retrieval.t3_numbers(t3)
    knn = t3.groupby("representation")["knn_acc"].mean()
    other = knn.drop("ProbeX").idxmax()
    n = int(rule3["n"])
    return {
        "P-T2": {"y": v["zeroshot"] - best["zeroshot"], "se": verdicts.se_diff(v["zeroshot_se"], best["zeroshot_se"]),
                       "rule": {"variants": variants}, "ours": f"{ours2}; margin over {best['method']}"},
        "P-T3": {"y": float(knn["ProbeX"] - knn[other]),
                       "se": verdicts.se_diff(verdicts.binomial_se(float(knn["ProbeX"]), n), verdicts.binomial_se(float(knn[other]), n)),
                       "rule": rule3, "ours": f"{ours3}; margin over {other}; {n} held-out LoRAs"},
    }


# --------------------------------------------------------------------------- the sweep


def library_hash() -> str:
    """SHA-256 (12 hex) of every ``probex_lib`` source file: a measurement cached under it is
    recomputed after any change to the library."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:12]


def measured(key: dict[str, Any], compute: Callable[[], dict]) -> dict:
    """``compute()`` once per ``key`` (the point's settings and where its models came from) and
    library version: the numbers are kept in ``data/scaling/measured/<hash>.json`` (written
    atomically), so a rerun of notebook 08 with its zoos cached only reads them."""
    blob = json.dumps({**key, "library": library_hash()}, sort_keys=True, default=str)
    f = paths.data_dir() / "scaling" / "measured" / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.json"
    if f.exists():
        return json.loads(f.read_text())
    out = compute()
    atomic.write_json(f, out)
    return json.loads(f.read_text())  # the same types on the first run as on a cached one


def _models_key(man: pd.DataFrame) -> str:
    """A short hash of a manifest's (path, split) pairs: which models a measurement read."""
    return hashlib.sha256(json.dumps(sorted(zip(man["path"], man["split"]))).encode()).hexdigest()[:16]


def _rows(curve: str, x: int, num: dict[str, Any], default: bool, source: str, seconds: float) -> dict:
    claim = verdicts.TREND_CURVES[curve][0]
    pv = verdicts.judge(claim, num["rule"], num["ours"]).verdict
    return {"curve": curve, "claim": claim, "axis": verdicts.TREND_CURVES[curve][1], "x": x, "y": num["y"], "se": num["se"],
            "point_verdict": pv, "default": default, "ours": num["ours"], "source": source,
            "build_s": round(seconds, 1), "rule_numbers": num["rule"]}


def _available(values: tuple[int, ...], larger: tuple[int, ...], present: Callable[[int], bool]) -> list[tuple[int, bool]]:
    """(value, train it) for the profile's values, then the larger profile's values already on disk. An
    axis the profile does not run (no values) shows the larger profile's points only if they are >= 3
    (a curve a trend can be fitted to), not, e.g., one width that happens to be notebook 01's zoo."""
    extra = [v for v in larger if v not in values and present(v)]
    if not values and len(extra) < 3:
        return []
    return sorted([(v, True) for v in values] + [(v, False) for v in extra])


def run_axis(axis: str, cfg: ScalingConfig, profile: str, executor: parallel.Executor = "process",
             n_workers: int | None = None) -> pd.DataFrame:
    """Every point of ``axis``: the profile's values (built if missing), plus values of the
    ``scaling`` profile already built by an earlier scaling run (read, never trained here)."""
    base = profiles.base_profile(profile)
    larger = axis_values(profiles.get_config("scaling", "scaling"), axis) if base == "default" else ()
    rows = []
    if axis in ("root_steps", "lr_spread"):
        mc = profiles.get_config("mother", base)
        steps_axis = axis == "root_steps"

        def point_cfg(v: int) -> MotherConfig:
            return (mother_point_config if steps_axis else lr_point_config)(mc, v, cfg.mother_roots)

        def present(v: int) -> bool:
            pc = point_cfg(v)
            return _complete(pc, mother_zoo.folder_for(pc, "points", paths.data_dir() / "scaling" / "mother")) is not None

        def numbers(man: pd.DataFrame) -> dict[str, dict[str, Any]]:
            if steps_axis:
                return mother_numbers(man, mc.c)
            return {f"{claim}@lr_spread": num for claim, num in mother_ft_numbers(man, mc.c).items()} | {
                "M-F2@lr_spread": m_f2_numbers(man)["ft"]}

        for v, _train in _available(axis_values(cfg, axis), larger, present):
            t0 = time.perf_counter()
            man, source = mother_point(mc, point_cfg(v), profile, executor, n_workers)
            key = {"axis": axis, "config": profiles.as_dict(point_cfg(v)), "source": source}
            nums = measured(key, lambda: numbers(man))
            secs = time.perf_counter() - t0
            for curve, num in nums.items():
                rows.append(_rows(curve, v, num, is_default(curve, v, profile, cfg), source, secs) | {"seeds": cfg.mother_roots})
    elif axis == "probex_models":
        mcfg, pcfg = profiles.get_config("modelj", base), profiles.get_config("probex", base)
        t0 = time.perf_counter()
        man = modelj.build(mcfg, base, executor, n_workers, parts=("discriminative",)).manifests["discriminative"]
        zoo_key = _models_key(man)
        base_key = {"axis": axis, "models": zoo_key, "probex": profiles.as_dict(pcfg)}
        layers = measured({**base_key, "what": "layers"}, lambda: probex_layers(man, pcfg, profile))
        secs = time.perf_counter() - t0
        for n in sorted(cfg.probex_models):
            t0 = time.perf_counter()
            num = measured({**base_key, "n": n, "layers": layers}, lambda: probex_numbers(man, layers, n, pcfg))
            rows.append(_rows("P-T1@models", n, num, is_default("P-T1@models", n, profile, cfg), "notebook 02's zoo",
                              secs + time.perf_counter() - t0)
                        | {"seeds": int((man["split"] == "test").sum())})
            secs = 0.0
    elif axis == "vit_width":
        mcfg, pcfg = profiles.get_config("modelj", base), profiles.get_config("probex", base)
        for w, _train in _available(cfg.vit_widths, larger, lambda v: vit_point_present(mcfg, v, profile)):
            t0 = time.perf_counter()
            man, source = vit_point(mcfg, w, profile, executor, n_workers)
            zoo_key = _models_key(man)
            key = {"axis": axis, "models": zoo_key, "probex": profiles.as_dict(pcfg), "tree": VIT_TREE}
            layers = measured({**key, "what": "layers"}, lambda: probex_layers(man, pcfg, profile, trees=[VIT_TREE]))
            sub = man[man["tree"] == VIT_TREE]
            n = int((sub["split"] == "train").sum())
            num = measured({**key, "n": n, "layers": layers}, lambda: probex_numbers(sub, layers, n, pcfg))
            rows.append(_rows("P-T1@vit_width", w, num, is_default("P-T1@vit_width", w, profile, cfg), source,
                              time.perf_counter() - t0) | {"seeds": int((sub["split"] == "test").sum())})
    elif axis in LORA_AXES:
        from . import zeroshot

        mcfg, acfg = profiles.get_config("modelj", base), profiles.get_config("aligned", base)
        t0 = time.perf_counter()
        jungle = modelj.build(mcfg, base, executor, n_workers, parts=("generative",))
        layer = notebook04_layer(jungle.manifests, profile, n_workers)
        secs = time.perf_counter() - t0

        def point(v: int) -> tuple[Any, int, int | None]:  # (generative settings, LoRAs per class, training classes)
            k = v if axis == "lora_models" else cfg.lora_axes_k
            return lora_axis_config(mcfg, axis, v), k, v if axis == "lora_classes" else None

        def present(v: int) -> bool:
            pc, k, n = point(v)
            specs = lora_point_specs(pc, jungle.dirs, k)
            need = [sp.model_id for sp in specs] if n is None else list(class_point_split(pc, specs, n))
            return all(zoo.model_path(lora_point_dir(pc, profile), m).exists() for m in need)

        for v, _train in _available(axis_values(cfg, axis), larger, present):
            pc, k, n = point(v)
            t0 = time.perf_counter()
            man, folder = lora_point(pc, k, jungle.dirs, profile, executor, n_workers, n)
            # the key names the models, splits and settings, not the axis: a point that is also another
            # axis's point (rank 4 at 2 per class is lora_models' 2) is measured once
            key = {"what": "LoRA point", "models": sorted(zip(man["model_id"], man["split"])), "layer": layer,
                   "aligned": profiles.as_dict(acfg), "zoo": folder.name}
            nums = measured(key, lambda: lora_numbers(zeroshot.load_loras(man, acfg.layer_filter), layer, acfg,
                                                      mcfg.variants[0][0], executor, n_workers))
            secs += time.perf_counter() - t0
            for claim, num in nums.items():
                curve = f"{claim}@{LORA_AXES[axis]}"
                rows.append(_rows(curve, v, num, is_default(curve, v, profile, cfg), folder.name, secs)
                            | {"seeds": acfg.repeats if claim == "P-T2" else int(num["rule"]["n"]), "per_class": k})
            secs = 0.0
    else:
        mo = profiles.get_config("motivation", base)
        width_axis = axis == "resnet_width"

        def point_cfg(v: int) -> MotivationConfig:
            return motivation_point_config(mo, cfg.width_models, False, v) if width_axis else motivation_point_config(mo, v)

        def present(v: int) -> bool:
            c = point_cfg(v)
            folder = motivation.default_zoo_dir(c, base)
            return all(zoo.model_path(folder / "populations", s.model_id).exists()
                       for s in motivation.population_specs(c, folder / "roots"))

        values = cfg.resnet_widths if width_axis else cfg.tree_models
        for v, _train in _available(values, larger, present):
            c = point_cfg(v)
            t0 = time.perf_counter()
            man = motivation.build_populations(c, motivation.default_zoo_dir(c, base), executor, n_workers)
            key = {"axis": axis, "config": profiles.as_dict(c), "models": sorted(man["model_id"])}
            nums = measured(key, lambda: motivation_numbers(c, man, trees=not width_axis))
            secs = time.perf_counter() - t0
            for claim, num in nums.items():
                curve = f"{claim}@{'width' if width_axis else 'models'}"
                rows.append(_rows(curve, v, num, is_default(curve, v, profile, cfg), motivation.default_zoo_dir(c, base).name, secs)
                            | {"seeds": num["n_test"]})
    return pd.DataFrame(rows)


def judge_curves(points: pd.DataFrame, affordable: dict[str, tuple[int, ...]]) -> tuple[list[Claim], pd.DataFrame]:
    """One trend claim per curve, and per curve the fit and what the default-moving rule says.

    ``affordable``: axis -> the values the default profile's budget allows."""
    out, fits = [], []
    for curve, g in points.groupby("curve", sort=False):
        g = g.sort_values("x")
        claim, axis_words, effect, paper = verdicts.TREND_CURVES[curve]
        axis = next(a for a, cs in CURVES_OF_AXIS.items() if curve in cs)
        x, y, se, pv = g["x"].tolist(), g["y"].tolist(), g["se"].tolist(), g["point_verdict"].tolist()
        dx = int(g.loc[g["default"], "x"].iloc[0]) if g["default"].any() else -1
        fit = verdicts.trend_fit(x, y, se) if len(set(x)) >= 2 and min(se) > 0 else {}
        move = verdicts.move_default(x, pv, dx, list(affordable.get(axis, ())))
        ours = (", ".join(f"{a}: {b:+.3f} ± {s:.3f} ({v})" for a, b, s, v in zip(x, y, se, pv))
                + (f"; slope {fit['slope']:+.3f} ± {fit['slope_se']:.3f} per doubling" if fit else "")
                + (f"; rule: move the default to {move}" if move else ""))
        c = verdicts.judge(curve, {"x": x, "y": y, "se": se, "default_x": dx, "point_verdicts": pv}, ours,
                           f"scaling_{axis}.png", {"claim": claim, "axis": axis, "largest": max(x), "fit": fit,
                                                   "move_default_to": move})
        out.append(c)
        fits.append({"curve": curve, "claim": claim, "points": len(x), "largest": max(x), "default": dx,
                     "slope per doubling": fit.get("slope", np.nan), "slope SE": fit.get("slope_se", np.nan),
                     "chi2/dof": fit.get("chi2_dof", np.nan), "verdict": c.verdict, "move default to": move or ""})
    return out, pd.DataFrame(fits)
