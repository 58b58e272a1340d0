"""Zero-shot model classification with text-aligned ProbeX (ProbeX paper, Sec. 6.2; Tables 2, 4, 5, 6).

For one generative variant (a folder of LoRAs with class ids, class names and splits):

1. :func:`load_loras` reads every adapted layer's B·A once;
2. :func:`class_text` embeds the class names with a text encoder;
3. :func:`layer_sweep` fits aligned ProbeX on every layer; the layer and epoch with the best
   validation top-1 are kept (Table 5 compares that ranking with the zero-shot one);
4. :func:`table2` compares ProbeX with the Dense expert and StatNN (linear, MLP) on that
   layer; :func:`activation_table` (Table 4) and :func:`encoder_table` (Table 6) ablate it.

Splits: "train", "val" and "test" hold models of the training classes (in-distribution test
is "test"); "holdout" holds models of classes that no training model has (zero-shot). Top-1
matches a model against the text embeddings of the candidate classes only: the training
classes in-distribution, the held-out classes zero-shot.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import aligned, modelj, parallel, text, zoo
from .profiles import AlignedConfig

SPLITS = ("train", "val", "test", "holdout")


@dataclass
class LoraSet:
    """LoRAs of one variant, loaded once: ``xs[i]`` is layer ``layers[i]`` as (n_models, d_out, d_in)
    B·A; ``cls`` (n_models,) class ids; ``names`` maps every class id to its name; rows of
    ``manifest`` are the models in the same order."""

    manifest: pd.DataFrame
    layers: list[str]
    xs: list[torch.Tensor]
    cls: np.ndarray
    names: dict[int, str]

    def idx(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.manifest["split"].to_numpy() == split)

    def classes(self, split: str) -> list[int]:
        """Sorted class ids of the models in ``split``; "train" means every training class (the
        classes of all train, val and test models: a class may have no model in "train" itself)."""
        if split == "train":
            return sorted(set(self.cls[self.manifest["split"].to_numpy() != "holdout"].tolist()))
        return sorted(set(self.cls[self.idx(split)].tolist()))

    def layer_index(self, layer: str) -> int:
        if layer not in self.layers:
            close = difflib.get_close_matches(layer, self.layers, n=4, cutoff=0.4)
            raise zoo.ZooError(f"no LoRA layer {layer!r} in this set; close names: {close or self.layers[:4]}")
        return self.layers.index(layer)

    def sel(self, split: str, layers: Sequence[str]) -> list[torch.Tensor]:
        """The given layers of the models of ``split``: one (n_split, d_out, d_in) tensor per layer."""
        i = self.idx(split)
        return [self.xs[self.layer_index(layer)][i] for layer in layers]


def assign_generative_splits(manifest: pd.DataFrame, n_held: int, seed: int = 0,
                             fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> pd.DataFrame:
    """For a folder without recorded splits (e.g. public Model-J files): hold out ``n_held`` classes
    (with every colour and shape still in training for colour x shape names), split the models of
    the other classes train/val/test in ``fractions``, seeded. Returns a copy with ``split``."""
    df = manifest.sort_values("model_id").reset_index(drop=True).copy()
    classes = sorted(df["class_id"].unique().tolist())
    names = {int(c): str(n) for c, n in zip(df["class_id"], df["class_name"])} if "class_name" in df else {}
    name_list = [names.get(c, str(c)) for c in range(max(classes) + 1)]
    held = modelj.held_out_classes(name_list, classes, n_held, seed)
    rest = ~df["class_id"].isin(held)
    df["split"] = "holdout"
    df.loc[rest, "split"] = zoo.split_labels(int(rest.sum()), fractions, seed)
    return df


def load_loras(manifest: pd.DataFrame, layer_filter: Sequence[str] = (), class_names: dict[int, str] | None = None) -> LoraSet:
    """Read B·A of every adapted layer (those whose name contains one of ``layer_filter``; all
    when empty) of every model of ``manifest`` (columns path, class_id, split; class_name or
    ``class_names``). Every split must be present and held-out classes must not be trained on."""
    missing = [c for c in ("path", "class_id", "split") if c not in manifest.columns]
    if missing:
        raise zoo.ZooError(f"LoRA manifest lacks column(s) {missing}; use modelj.open_generative and, without "
                           "recorded splits, assign_generative_splits")
    df = manifest.sort_values("model_id" if "model_id" in manifest else "path").reset_index(drop=True)
    bad = sorted(set(df["split"]) - set(SPLITS))
    absent = [s for s in SPLITS if s not in set(df["split"])]
    if bad or absent:
        raise zoo.ZooError(f"LoRA splits must be {list(SPLITS)}: unknown {bad}, without models {absent}")
    cls = df["class_id"].astype(int).to_numpy()
    if class_names is None:
        if "class_name" not in df.columns:
            raise zoo.ZooError("LoRA metadata has no class_name: pass class_names={class_id: name}")
        class_names = {int(c): str(n) for c, n in zip(cls, df["class_name"])}
    unnamed = sorted(set(cls.tolist()) - set(class_names))
    if unnamed:
        raise zoo.ZooError(f"class ids {unnamed[:5]} have no name in class_names")
    held, trained = set(cls[df["split"] == "holdout"].tolist()), set(cls[df["split"] != "holdout"].tolist())
    if held & trained:
        raise zoo.ZooError(f"held-out classes {sorted(held & trained)[:5]} also have train/val/test models")
    layers = aligned.lora_layer_names(df["path"].iloc[0])
    if layer_filter:
        layers = [name for name in layers if any(f in name for f in layer_filter)]
        if not layers:
            raise zoo.ZooError(f"{df['path'].iloc[0]}: no LoRA layer name contains any of {list(layer_filter)}")
    xs = aligned.lora_deltas(list(df["path"]), layers)
    return LoraSet(df, layers, xs, cls, dict(class_names))


def base_unet_file(ls: LoraSet) -> str:
    """The base UNet that the LoRAs adapt (manifest column ``base``): one file, or an error."""
    if "base" not in ls.manifest.columns:
        raise zoo.ZooError("LoRA metadata does not name its base UNet ('base'): the 'unet' text encoder needs it")
    bases = sorted(set(ls.manifest["base"]))
    if len(bases) != 1:
        raise zoo.ZooError(f"LoRAs adapt {len(bases)} different base models, e.g. {bases[:2]}")
    return bases[0]


def class_text(encoder: str, ls: LoraSet, cfg: AlignedConfig) -> torch.Tensor:
    """(max class id + 1, d_text) unit rows: the text embedding of every class of ``ls`` (other rows 0)."""
    ids = sorted(ls.names)
    unet_file = base_unet_file(ls) if encoder == "unet" else None
    emb = text.embed(encoder, [ls.names[i] for i in ids], unet_file=unet_file, clip_name=cfg.clip_name, seed=cfg.seed)
    out = torch.zeros(max(ids) + 1, emb.shape[1])
    out[ids] = emb
    return out


# --------------------------------------------------------------------------- fitting one expert


def _se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n)) if n else float("nan")


def true_class_rank(model: aligned.Aligned, xs: Sequence[torch.Tensor], cls: np.ndarray, T: torch.Tensor,
                    candidates: Sequence[int]) -> float:
    """Mean rank (0 = first) of each model's own class among the candidates: a finer tie-breaker than top-1."""
    cand = torch.as_tensor(list(candidates))
    with torch.no_grad():
        sims = model(xs) @ T[cand].T
    own = sims[torch.arange(len(cls)), torch.as_tensor([list(candidates).index(c) for c in cls])]
    return float((sims > own[:, None]).sum(1).float().mean())


def evaluate(model: aligned.Aligned, ls: LoraSet, T: torch.Tensor, layers: Sequence[str] | None,
             features: dict[str, torch.Tensor] | None = None) -> dict:
    """In-distribution (test) and zero-shot (holdout) top-1 with standard errors and chance."""
    def xs(split: str) -> list[torch.Tensor]:
        return [features[split]] if features is not None else ls.sel(split, layers)

    train_c, held = ls.classes("train"), ls.classes("holdout")
    out = {}
    for key, split, cands in (("indist", "test", train_c), ("zeroshot", "holdout", held)):
        i = ls.idx(split)
        acc = aligned.top1(model, xs(split), ls.cls[i], T, cands)
        out |= {key: acc, f"{key}_se": _se(acc, len(i)), f"{key}_chance": 1 / len(cands), f"n_{key}": len(i)}
    out["val_rank"] = true_class_rank(model, xs("val"), ls.cls[ls.idx("val")], T, train_c)
    return out


def fit_one(ls: LoraSet, T: torch.Tensor, cfg: AlignedConfig, kind: str = "probex", layers: Sequence[str] = (),
            activation: str = "relu", hidden: int = 0, features: dict[str, torch.Tensor] | None = None,
            ) -> tuple[aligned.AlignedFit, dict]:
    """Fit one aligned model (``kind`` as in :func:`aligned.build`) on ``layers`` (or on
    ``features``: {split: (n_split, n_features)}) and evaluate it. Returns the fit and a row:
    val, indist, zeroshot (with SE and chance), val_rank, parameters, best_epoch, seconds."""
    def xs(split: str) -> list[torch.Tensor]:
        return [features[split]] if features is not None else ls.sel(split, layers)

    tr, va = ls.idx("train"), ls.idx("val")
    torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only, never on earlier work in this process
    model = aligned.build(kind, xs("train"), T.shape[1], cfg.r_u, cfg.r_v, cfg.r_t, activation, hidden)
    f = aligned.fit(model, xs("train"), ls.cls[tr], T, xs("val"), ls.cls[va], ls.classes("train"), epochs=cfg.epochs,
                    lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, seed=cfg.seed)
    row = {"val": f.best_val, **evaluate(f.model, ls, T, layers, features), "parameters": aligned.n_trainable(f.model),
           "best_epoch": f.best_epoch, "seconds": f.seconds}
    return f, row


def short_layer(name: str) -> str:
    """'down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k' -> 'down1.a0.attn2.to_k'."""
    s = name.replace(".transformer_blocks.0", "").replace("attentions.", "a").replace("_blocks.", "")
    return s.replace("mid_block", "mid").replace(".0.", ".").replace("to_out", "to_out")


def _sweep_one(job: tuple) -> tuple[dict, aligned.Aligned]:
    ls, T, cfg = job
    f, row = fit_one(ls, T, cfg, "probex", ls.layers)
    return {"layer": ls.layers[0], "short": short_layer(ls.layers[0]), **row}, f.model


def one_layer(ls: LoraSet, layer: str) -> LoraSet:
    """A view of ``ls`` with only ``layer`` (what a sweep task ships to its worker)."""
    return LoraSet(ls.manifest[["split"]], [layer], [ls.xs[ls.layer_index(layer)]], ls.cls, ls.names)


def layer_sweep(ls: LoraSet, T: torch.Tensor, cfg: AlignedConfig, executor: parallel.Executor = "process",
                n_workers: int | None = None, desc: str = "layers") -> tuple[pd.DataFrame, aligned.Aligned]:
    """Aligned ProbeX on every layer of ``ls`` (layers in parallel, one thread each): one row per
    layer (layer, short, val, indist, zeroshot, ...), and the model of the layer chosen on
    validation (best top-1, ties broken by the lower mean rank of the true class, then by name)."""
    out = parallel.map_tasks(_sweep_one, [(one_layer(ls, layer), T, cfg) for layer in ls.layers], executor, n_workers,
                             desc=desc)
    sweep = pd.DataFrame([row for row, _ in out])
    best = sweep.sort_values(["val", "val_rank", "layer"], ascending=[False, True, True]).iloc[0]["layer"]
    sweep["chosen"] = sweep["layer"] == best
    return sweep, out[ls.layers.index(best)][1]


def chosen_layer(sweep: pd.DataFrame) -> str:
    return str(sweep.loc[sweep["chosen"], "layer"].iloc[0])


def statnn_splits(ls: LoraSet) -> dict[str, torch.Tensor]:
    """StatNN features (7 statistics of every layer's B·A) per split: {split: (n_split, 7 * n_layers)}."""
    z = aligned.statnn_matrix(ls.xs)
    return {s: z[ls.idx(s)] for s in SPLITS}


def matched_hidden(n_params: int, d_in: int, d_text: int) -> int:
    """Hidden width of a one-hidden-layer MLP (d_in -> h -> d_text) with about ``n_params`` parameters."""
    return max(1, round((n_params - d_text) / (d_in + 1 + d_text)))


def _fit_task(job: tuple) -> dict:
    ls, T, cfg, kw = job
    return fit_one(ls, T, cfg, **kw)[1]


def aggregate(rows: Sequence[dict]) -> dict:
    """Mean over repeats (seeds) of one setting; ``<task>_sd`` is the spread over seeds and
    ``<task>_se`` combines the test set's binomial error with the seed spread's error of the mean."""
    df = pd.DataFrame(rows)
    out = {k: df[k].iloc[0] for k in ("indist_chance", "zeroshot_chance", "parameters")}
    out |= {k: float(df[k].mean()) for k in ("val", "indist", "zeroshot", "val_rank", "best_epoch", "seconds")}
    for k in ("indist", "zeroshot"):
        sd = float(df[k].std(ddof=1)) if len(df) > 1 else 0.0
        p, n = out[k], int(df[f"n_{k}"].iloc[0])
        out[f"{k}_sd"] = sd
        out[f"{k}_se"] = float(np.sqrt(p * (1 - p) / n + sd**2 / len(df)))
    out["repeats"] = len(df)
    return out


def run_settings(ls: LoraSet, cfg: AlignedConfig, settings: dict[str, dict], executor: parallel.Executor = "process",
                 n_workers: int | None = None, desc: str = "") -> dict[str, dict]:
    """Fit every setting ``cfg.repeats`` times (seeds cfg.seed, cfg.seed + 1, ...), one thread per
    fit, and return {name: :func:`aggregate` row}. A setting is a dict with ``T`` (text matrix)
    and the keyword arguments of :func:`fit_one` (kind, layers, activation, hidden, features)."""
    jobs, names = [], []
    for name, st in settings.items():
        st = dict(st)
        T = st.pop("T")
        view = (one_layer(ls, st["layers"][0]) if len(st.get("layers", ())) == 1
                else LoraSet(ls.manifest[["split"]], [], [], ls.cls, ls.names) if "features" in st else ls)
        for r in range(cfg.repeats):
            jobs.append((view, T, dataclasses.replace(cfg, seed=cfg.seed + r), st))
            names.append(name)
    rows = parallel.map_tasks(_fit_task, jobs, executor, n_workers, desc=desc or None)
    return {name: aggregate([r for n, r in zip(names, rows) if n == name]) for name in settings}


def table2(ls: LoraSet, T: torch.Tensor, cfg: AlignedConfig, sweep: pd.DataFrame, variant: str,
           executor: parallel.Executor = "process", n_workers: int | None = None) -> pd.DataFrame:
    """Table 2 for one variant, each row a mean over ``cfg.repeats`` seeds: ProbeX on the sweep's
    chosen layer, the Dense expert on that layer, StatNN features (every layer) with a linear head
    and with an MLP of ProbeX's size."""
    return table2_at(ls, T, cfg, chosen_layer(sweep), variant, executor, n_workers)


def table2_at(ls: LoraSet, T: torch.Tensor, cfg: AlignedConfig, layer: str, variant: str,
              executor: parallel.Executor = "process", n_workers: int | None = None) -> pd.DataFrame:
    """:func:`table2` on a given ``layer`` (the StatNN MLP sized like ProbeX on that layer)."""
    feats = statnn_splits(ls)
    px_params = aligned.n_trainable(aligned.build("probex", ls.sel("train", [layer]), T.shape[1], cfg.r_u, cfg.r_v, cfg.r_t))
    h = matched_hidden(px_params, feats["train"].shape[1], T.shape[1])
    settings = {
        "ProbeX": {"T": T, "kind": "probex", "layers": [layer]},
        "Dense": {"T": T, "kind": "dense", "layers": [layer]},
        "StatNN linear": {"T": T, "kind": "features", "features": feats},
        "StatNN MLP": {"T": T, "kind": "features", "features": feats, "hidden": h},
    }
    res = run_settings(ls, cfg, settings, executor, n_workers, desc=f"{variant}: Table 2")
    out = pd.DataFrame([{"variant": variant, "method": k, "layer": layer if k in ("ProbeX", "Dense") else "all (statistics)",
                         **v} for k, v in res.items()])
    return out


def activation_table(ls: LoraSet, T: torch.Tensor, cfg: AlignedConfig, sweep: pd.DataFrame,
                     executor: parallel.Executor = "process", n_workers: int | None = None) -> pd.DataFrame:
    """Table 4: linear vs ReLU ProbeX on the chosen layer, each a mean over ``cfg.repeats`` seeds."""
    layer = chosen_layer(sweep)
    res = run_settings(ls, cfg, {a: {"T": T, "kind": "probex", "layers": [layer], "activation": a}
                                 for a in ("linear", "relu")}, executor, n_workers, desc="Table 4")
    return pd.DataFrame([{"activation": k, **v} for k, v in res.items()])


def encoder_table(ls: LoraSet, cfg: AlignedConfig, layer: str, encoders: Sequence[str],
                  executor: parallel.Executor = "process", n_workers: int | None = None) -> pd.DataFrame:
    """Table 6: aligned ProbeX on ``layer`` with each text encoder, a mean over ``cfg.repeats``
    seeds (the layer chosen with the default encoder, so only the text side changes)."""
    texts = {enc: class_text(enc, ls, cfg) for enc in encoders}
    res = run_settings(ls, cfg, {e: {"T": T, "kind": "probex", "layers": [layer]} for e, T in texts.items()},
                       executor, n_workers, desc="Table 6")
    return pd.DataFrame([{"encoder": e, "d_text": texts[e].shape[1], **v} for e, v in res.items()])


def table5(sweep: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Table 5: the ``top`` layers by validation (in-distribution) top-1, their zero-shot top-1,
    their rank among these layers by each, and the move (positive: up in the zero-shot ranking)."""
    t = sweep.sort_values(["val", "val_rank", "layer"], ascending=[False, True, True]).head(top).copy()
    t["rank in-dist"] = np.arange(1, len(t) + 1)
    t["rank zero-shot"] = t["zeroshot"].rank(ascending=False, method="min").astype(int)
    t["move"] = t["rank in-dist"] - t["rank zero-shot"]
    return t[["short", "val", "indist", "zeroshot", "rank in-dist", "rank zero-shot", "move"]].reset_index(drop=True)


# --------------------------------------------------------------------------- cached aligned experts


CACHE_VERSION = 3  # 2: initial weights seeded (version 1 drew them from the process's RNG state); 3: official ProbeX orientation


def cache_key(ls: LoraSet, cfg: AlignedConfig, encoder: str) -> str:
    """Hash of what a trained aligned expert depends on: the models (ids, splits, file sizes), the
    layers, the text encoder and the training settings."""
    files = [(m, s, Path(p).stat().st_size) for m, s, p in zip(ls.manifest.get("model_id", ls.manifest["path"]),
                                                              ls.manifest["split"], ls.manifest["path"])]
    settings = {k: getattr(cfg, k) for k in ("epochs", "lr", "weight_decay", "batch_size", "r_u", "r_v", "r_t", "seed",
                                             "clip_name")}
    # CACHE_VERSION changes when the training code changes what a setting produces
    blob = json.dumps([files, ls.layers, encoder, settings, CACHE_VERSION], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def swept_expert(ls: LoraSet, cfg: AlignedConfig, cache_dir: str | Path, variant: str, encoder: str | None = None,
                 executor: parallel.Executor = "process", n_workers: int | None = None) -> tuple[pd.DataFrame, aligned.Aligned, torch.Tensor]:
    """The layer sweep and the chosen layer's aligned ProbeX, from ``cache_dir`` if this exact
    setting was run before (sweep CSV + safetensors checkpoint), else computed and cached.
    Returns (sweep, model, text matrix)."""
    encoder = encoder or cfg.text_encoder
    T = class_text(encoder, ls, cfg)
    stem = Path(cache_dir) / f"{variant}-{encoder}-{cache_key(ls, cfg, encoder)}"
    csv, ckpt = stem.with_suffix(".csv"), stem.with_suffix(".safetensors")
    if csv.exists() and zoo.is_complete(ckpt):
        return pd.read_csv(csv), aligned.load_aligned(ckpt), T
    sweep, model = layer_sweep(ls, T, cfg, executor, n_workers, desc=f"{variant}: layers")
    meta = {"variant": variant, "text_encoder": encoder, "clip_name": cfg.clip_name,
            "unet_file": base_unet_file(ls) if encoder == "unet" else "", "classes": {str(k): v for k, v in ls.names.items()}}
    aligned.save_aligned(ckpt, model, [chosen_layer(sweep)], meta)
    from .atomic import write_text

    write_text(csv, sweep.to_csv(index=False))
    return sweep, model, T


# --------------------------------------------------------------------------- notebook plumbing


def open_variants(cfg: AlignedConfig, profile: str, zoos: dict[str, str] | None = None, zoo_overrides: dict | None = None,
                  n_workers: int | None = None, n_held: int = 0, seed: int = 0, limit: int | None = None) -> dict[str, LoraSet]:
    """The LoRA sets of the notebooks: ``zoos`` {variant: folder} (our zoo folders or any folder of
    adapters, e.g. public Model-J files; without recorded splits, ``n_held`` classes are held
    out), or else the kit's generative variants ``cfg.variants`` (built by notebook 02's code
    if missing). ``limit``: only the first that many variants."""
    if zoos:
        out = {}
        for name, folder in list(zoos.items())[:limit]:
            m = modelj.open_generative(folder, require_split=n_held <= 0)
            if "split" not in m.columns:
                if n_held <= 0:
                    raise zoo.ZooError(f"{folder}: the LoRAs record no split; pass n_held (classes to hold out)")
                m = assign_generative_splits(m, n_held, seed)
            out[name] = load_loras(m, cfg.layer_filter)
        return out
    from . import profiles

    mcfg = profiles.get_config("modelj", profile, zoo_overrides, seed=seed)
    jungle = modelj.build(mcfg, profile, n_workers=n_workers, parts=("generative",))
    unknown = [v for v in cfg.variants if v not in jungle.manifests]
    if unknown:
        raise profiles.ProfileError(f"variants {unknown} are not generative variants of the zoo "
                                    f"({[v[0] for v in mcfg.variants]})")
    return {v: load_loras(jungle.manifests[v], cfg.layer_filter) for v in cfg.variants[:limit]}


def t2_numbers(t2: pd.DataFrame) -> tuple[list[dict], str]:
    """The numbers of P-T2's rule per variant of a Table 2, and their words."""
    variants = []
    for v, sub in t2.groupby("variant", sort=False):
        px = sub[sub["method"] == "ProbeX"].iloc[0]
        variants.append({"variant": v, **{k: float(px[k]) for k in ("indist", "indist_chance", "indist_se", "zeroshot",
                                                                    "zeroshot_chance", "zeroshot_se")},
                         "baselines": [{"method": r.method, "zeroshot": float(r.zeroshot), "zeroshot_se": float(r.zeroshot_se)}
                                       for r in sub[sub["method"] != "ProbeX"].itertuples()]})
    ours = "; ".join(
        f"{v['variant']}: ProbeX in-dist {v['indist']:.3f} (chance {v['indist_chance']:.3f}), zero-shot "
        f"{v['zeroshot']:.3f}±{v['zeroshot_se']:.3f} (chance {v['zeroshot_chance']:.3f}, "
        f"{int(round(1 / v['zeroshot_chance']))} held-out classes); baselines zero-shot "
        + ", ".join(f"{b['method']} {b['zeroshot']:.3f}" for b in v["baselines"]) for v in variants)
    return variants, ours


def judge(t2: pd.DataFrame, t4: pd.DataFrame, t5: pd.DataFrame, sweep: pd.DataFrame, t6: pd.DataFrame,
          figure: str = "") -> list:
    """Claims P-T2, P-T4, P-T5 and P-T6: numbers from the measured tables, verdicts from
    :mod:`verdicts`."""
    from . import verdicts

    out = []
    variants, ours = t2_numbers(t2)
    out.append(verdicts.judge("P-T2", {"variants": variants}, ours, figure, {"table2": t2.to_dict(orient="list")}))
    lin, relu = t4.set_index("activation").loc["linear"], t4.set_index("activation").loc["relu"]
    out.append(verdicts.judge(
        "P-T4", {"relu_zs": relu["zeroshot"], "linear_zs": lin["zeroshot"], "relu_zs_se": relu["zeroshot_se"],
                 "linear_zs_se": lin["zeroshot_se"], "relu_id": relu["indist"], "linear_id": lin["indist"]},
        f"linear {lin['indist']:.3f} / {lin['zeroshot']:.3f}, ReLU {relu['indist']:.3f} / {relu['zeroshot']:.3f} "
        f"(zero-shot SE {relu['zeroshot_se']:.3f} / {lin['zeroshot_se']:.3f})", figure, {"table4": t4.to_dict(orient="list")}))
    se = sweep.set_index("short")["zeroshot_se"]
    rows = t5.to_dict(orient="records")
    zs = []  # per reversed pair: the zero-shot reversal in SEs of the difference
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:  # a ranks above b in-distribution
            if b["zeroshot"] > a["zeroshot"]:
                zs.append(float(verdicts.z_of(b["zeroshot"] - a["zeroshot"], float(np.hypot(se[a["short"]], se[b["short"]])))))
    n_pairs = len(rows) * (len(rows) - 1) // 2
    from scipy.stats import spearmanr

    rho = float(spearmanr(sweep["val"], sweep["zeroshot"]).statistic)
    out.append(verdicts.judge(
        "P-T5", {"reversal_z": zs, "n_pairs": n_pairs},
        f"of the top {len(t5)} layers by validation ({n_pairs} pairs), {len(zs)} pairs swap order zero-shot, "
        f"{sum(z > 2 for z in zs)} by more than 2 SE, {sum(z > verdicts.bonferroni_z(n_pairs) for z in zs)} beyond the "
        f"Bonferroni threshold z > {verdicts.bonferroni_z(n_pairs):.2f}; Spearman rho (validation vs zero-shot, all "
        f"{len(sweep)} layers) {rho:.2f}", figure, {"table5": t5.to_dict(orient="list"), "spearman": rho}))
    enc = t6.set_index("encoder")
    controls = ("bow", "random")
    language = {e: [float(enc.loc[e, "zeroshot"]), float(enc.loc[e, "zeroshot_se"])] for e in enc.index if e not in controls}
    get = lambda e, col: float(enc.loc[e, col]) if e in enc.index else float("nan")  # noqa: E731
    out.append(verdicts.judge(
        "P-T6", {"encoders": language, "chance": float(enc["zeroshot_chance"].iloc[0]), "random": get("random", "zeroshot"),
                 "random_se": get("random", "zeroshot_se"), "bow": get("bow", "zeroshot"), "bow_se": get("bow", "zeroshot_se")},
        ", ".join(f"{e} {r.zeroshot:.3f}±{r.zeroshot_se:.3f}" for e, r in enc.iterrows())
        + f" (chance {enc['zeroshot_chance'].iloc[0]:.3f}); MiniLM is also the generator's conditioning encoder",
        figure, {"table6": t6.to_dict(orient="list")}))
    return out
