"""The numbers behind the MoTHer claims of notebooks 06 and 07, judged by :mod:`probex_lib.verdicts`.

Each function takes the experiment tables of :mod:`probex_lib.mother_exp`, picks the numbers a
rule needs, words "ours" from them, and calls :func:`verdicts.judge`. No rule lives here.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from . import mother_exp, verdicts
from .claims import Claim
from .mother_baselines import shape_baseline

# the figure that shows each claim of notebooks 06 and 07 (tables without a plot point at their nearest figure)
CLAIM_FIGURES = {
    "M-F1": "mother_fig1_distance_vs_hops.png", "M-F2": "mother_fig2_kurtosis_traces.png",
    "M-T1": "mother_table1.png", "M-abl-lft": "mother_table1.png", "M-deep": "mother_table1.png",
    "M-resnet": "mother_table1.png", "M-F7": "mother_fig8_scores.png", "M-F6": "mother_fig6_clustering.png",
    "M-F8": "mother_fig8_scores.png", "M-F13": "mother_fig13_layer_types.png", "M-impl": "mother_c_sensitivity.png",
    "M-T6": "mother_table1.png", "M-T7": "mother_table7_runtime.png", "M-T4": "mother_table4_pruning.png",
    "M-T5": "mother_table4_pruning.png", "M-F16": "mother_fig16_kurtosis_lr.png",
}
PAPER_T1 = {"FT": 0.94, "LoRA-V": 1.0, "LoRA-F": 0.96, "Mixed": 0.83}
# the paper's tree shapes: 5 trees of 1 + 4 + 16 (Table 1, pruning, quantisation) and 1-3-9-27-81 (Deep)
SHAPE_1_4_16 = shape_baseline(np.array([-1] + [0] * 4 + [1 + i // 4 for i in range(16)]))
SHAPE_DEEP = shape_baseline(np.array([-1] + [(i - 1) // 3 for i in range(1, 121)]))


def _fmt(r: pd.Series | dict) -> str:
    return (f"{r['graph']:.2f} (no-direction baseline {r['baseline']:.2f}, p {r['p random root']:.2g} against random roots; "
            f"direction signal {r['signal']:.2f} of {int(r['n placed'])} placed edges, null SE {verdicts.null_se(r['n placed']):.2f})")


def _row(t: pd.DataFrame, **where) -> pd.Series:
    m = np.ones(len(t), bool)
    for k, v in where.items():
        m &= t[k.replace("_", " ")].to_numpy() == v
    if not m.any():
        raise KeyError(f"no row with {where} in the table (columns {list(t.columns)})")
    return t.loc[m].iloc[0]


def _deep_root(deep: pd.DataFrame) -> str:
    """The root id of the Deep tree (its one 'tree <id>' column)."""
    cols = [c[5:] for c in deep.columns if c.startswith("tree ")]
    return cols[0] if len(cols) == 1 else ""


def _with_figures(claims: list[Claim]) -> list[Claim]:
    return [replace(c, figure=CLAIM_FIGURES.get(c.id, c.figure)) for c in claims]


def judge06(rho: float, n_pairs: int, net: dict, pre_rise: float, ft_fall: float, t1: pd.DataFrame, deep: pd.DataFrame,
            resnet: pd.DataFrame, ch: pd.DataFrame, f6: pd.DataFrame, ec: pd.DataFrame, cs: pd.DataFrame,
            merged: pd.DataFrame, rt: pd.DataFrame, group: str) -> list[Claim]:
    """Claims M-F1, M-F2, M-T1, M-abl-lft, M-deep, M-resnet, M-F7, M-F6, M-F8, M-F13, M-impl,
    M-T6, M-T7 of notebook 06. ``group`` is the score layer group of the headline numbers;
    ``net`` has pre_up, n_pre, ft_down, n_ft (shares of runs and their counts)."""
    out = [verdicts.judge("M-F1", {"rho": rho, "n_pairs": n_pairs}, f"rho = {rho:.2f} over {n_pairs} pairs")]
    out.append(verdicts.judge(
        "M-F2", net,
        f"pre-training: {pre_rise:.2f} of recorded steps rise, net change up for {net['pre_up']:.2f} of {net['n_pre']} runs; "
        f"fine-tuning: {ft_fall:.2f} of steps fall, net change down for {net['ft_down']:.2f} of {net['n_ft']} models"))
    lora_group = mother_exp.LORA_SCORE_GROUP if group == mother_exp.SCORE_GROUP else group
    main = {s: _row(t1, subset=s, score_layers=lora_group if s.startswith("LoRA") else group,
                    distance="Eq. 2 (rank)" if s.startswith("LoRA") else "Eq. 1 (l2)") for s in dict.fromkeys(t1["subset"])}
    subsets = {s: {"ours": float(r["graph"]), "paper": PAPER_T1[s], "paper_baseline": SHAPE_1_4_16,
                   "baseline": float(r["baseline"]), "signal": float(r["signal"]), "n_placed": int(r["n placed"]),
                   "p_random_root": float(r["p random root"])}
               for s, r in main.items() if s in PAPER_T1}
    official = t1[t1["distance"].str.startswith("official")]
    out.append(verdicts.judge(
        "M-T1", {"subsets": subsets},
        f"{group} kurtosis ({lora_group} for LoRA), paper's equations: " + "; ".join(f"{s} {_fmt(r)}" for s, r in main.items())
        + f". Paper's tree shape baseline {SHAPE_1_4_16:.3f}. Official-code distances: "
        + ", ".join(f"{r.subset} {r.graph:.2f}" for r in official.itertuples()),
        details={"table1": t1.to_dict(orient="list")}))
    lv = t1[t1["subset"] == "LoRA-V"]
    rank, l2 = _row(lv, distance="Eq. 2 (rank)", score_layers=lora_group), _row(lv, distance="Eq. 1 (l2)")
    n_edges = int(rank["edges"])
    out.append(verdicts.judge(
        "M-abl-lft", {"placed_l2": float(l2["undirected"]), "placed_rank": float(rank["undirected"]), "n_edges": n_edges},
        f"edges placed (either direction): Eq. 1 {l2['undirected']:.2f} vs Eq. 2 {rank['undirected']:.2f} of {n_edges}; "
        f"directed accuracy {l2['graph']:.2f} vs {rank['graph']:.2f}"))
    d = _row(deep, score_layers=group)
    ft = _row(t1, subset="FT", score_layers=group, distance="Eq. 1 (l2)")
    root = f"tree {deep_root}" if (deep_root := _deep_root(deep)) else ""
    shallow = float(ft[root]) if root in ft else float("nan")
    out.append(verdicts.judge(
        "M-deep", {"ours": float(d["graph"]), "paper": 0.79, "shallow": shallow},
        f"{_fmt(d)}; {int(d['models'])} models, {int(d['levels'])} levels below the root; the same root's FT tree "
        f"{shallow:.2f}; shape baselines: ours {d['shape baseline']:.3f}, the paper's 1-3-9-27-81 {SHAPE_DEEP:.3f}"))
    r = resnet.iloc[0]
    out.append(verdicts.judge(
        "M-resnet", {"ours": float(r["graph"]), "paper": 1.0, "paper_baseline": SHAPE_1_4_16, "signal": float(r["signal"]),
                     "n_placed": int(r["n placed"]), "p_random_root": float(r["p random root"])},
        f"{_fmt(r)} (kurtosis over every convolution)"))
    flip = ch.set_index("prior")
    fl = flip.loc["generalisation (flipped)"]
    n_edges_chain = int(ch["models"].iloc[0]) - 1
    wrong = int(round((1 - fl["graph"]) * n_edges_chain))
    out.append(verdicts.judge(
        "M-F7", {"wrong": wrong, "signal": float(fl["signal"]), "n_placed": int(fl["n placed"])},
        f"flipped prior {_fmt(fl)}, {wrong} of {n_edges_chain} edges wrong; specialisation prior "
        f"{flip.loc['specialisation', 'graph']:.2f}"))
    small = float(f6[f6["models"] == f6["models"].min()]["accuracy"].mean())
    out.append(verdicts.judge(
        "M-F6", {"smallest": small},
        f"{small:.2f} at {int(f6['models'].min())} models; {f6.groupby('models')['accuracy'].mean().min():.2f} at worst"))
    e = ec[ec["layers"] == group].set_index("score")
    out.append(verdicts.judge(
        "M-F8", {"consistency": e["consistency"].to_dict(), "n_edges": int(e["edges"].iloc[0])},
        ", ".join(f"{k} falls on {v.iloc[0]:.2f} (consistency {v.iloc[1]:.2f})"
                  for k, v in e[["falls parent->child", "consistency"]].iterrows()) + f" of {int(e['edges'].iloc[0])} edges ({group})"))
    lt = ec[(ec["score"] == "kurtosis") & ec["layers"].isin(["q", "k", "v", "o", "fc1", "fc2"])].set_index("layers")
    out.append(verdicts.judge(
        "M-F13", {"consistency": lt["consistency"].to_dict(), "n_edges": int(lt["edges"].iloc[0])},
        ", ".join(f"{k} {v:.2f}" for k, v in lt["consistency"].items()) + " consistency of kurtosis (o = the dense "
        "attention output projection)"))
    in_range = cs[(cs["c"] > 0) & (cs["c"] < 5)]
    spread = float(in_range["graph"].max() - in_range["graph"].min())
    low = in_range.loc[in_range["graph"].idxmin()]
    out.append(verdicts.judge(
        "M-impl", {"spread": spread, "lowest": float(low["graph"]), "baseline": float(low["baseline"]),
                   "n_edges": int(low["edges"])},
        ", ".join(f"c={r.c:g}: {r.graph:.2f}" for r in cs.itertuples()) + f" (spread in (0, 5): {spread:.2f}; "
        f"no-direction baseline {cs['baseline'].iloc[0]:.2f})"))
    ident = float(merged["identified"].mean()) if len(merged) else float("nan")
    out.append(verdicts.judge("M-T6", {"identified": ident}, f"{ident:.2f} of merged models' fine-tunes get both true parents"))
    last = rt.iloc[-1]
    out.append(verdicts.judge(
        "M-T7", {"distances_10k_s": float(last["distances 10k s (n^2)"]), "clustering_10k_s": float(last["clustering 10k s (n^2)"]),
                 "mdst_s": float(last["MDST s"]), "distances_s": float(last["distances s"]), "clustering_s": float(last["clustering s"]),
                 "d": int(last["d"])},
        f"{int(last['models'])} models of one {int(last['d'])}x{int(last['d'])} layer: distances {last['distances s']:.1f} s, "
        f"clustering {last['clustering s']:.1f} s, kurtosis {last['kurtosis s']:.1f} s, MDST {last['MDST s']:.2f} s; "
        f"as n^2 at 10,000 models: distances {last['distances 10k s (n^2)'] / 60:.1f} min, clustering "
        f"{last['clustering 10k s (n^2)'] / 60:.1f} min (paper 5.01 and 4.43 min)"))
    return _with_figures(out)


def judge07(pr: pd.DataFrame, qt: pd.DataFrame, lr_table: pd.DataFrame) -> list[Claim]:
    """Claims M-T4 (pruning), M-T5 (quantisation), M-F16 (kurtosis vs learning rate)."""
    base = _row(pr, pruned=0.0)
    at90 = pr[np.isclose(pr["pruned"], 0.9)]
    out = [verdicts.judge(
        "M-T4", {"at0": float(base["graph"]), "at90": float(at90["graph"].iloc[0]) if len(at90) else float("nan")},
        "; ".join(f"{r.pruned:.0%}: {r.graph:.2f} (baseline {r.baseline:.2f}, signal {r.signal:.2f})" for r in pr.itertuples()))]
    m = qt.groupby("quantisation")[["graph", "baseline", "signal"]].mean()
    sd = qt.groupby("quantisation")["graph"].std()
    drop = float(m.loc["none", "graph"] - m.drop(index="none")["graph"].min())
    out.append(verdicts.judge(
        "M-T5", {"drop": drop, "unquantised": float(m.loc["none", "graph"])},
        ", ".join(f"{k} {r['graph']:.3f} ± {0 if np.isnan(sd[k]) else sd[k]:.3f} (baseline {r['baseline']:.2f}, signal "
                  f"{r['signal']:.2f})" for k, r in m.iterrows())))
    mono = lr_table.set_index("lr")
    out.append(verdicts.judge(
        "M-F16", {"falls": mono["falls"].tolist(), "n_steps": mono["steps"].tolist()},
        ", ".join(f"lr {lr:g}: {r['falls']:.2f} of {int(r['steps'])} steps fall, net {r['net change']:+.2%}"
                  for lr, r in mono.iterrows())))
    return _with_figures(out)
