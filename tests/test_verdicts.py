"""Every verdict rule moved through every tier it can return, on synthetic numbers."""
from __future__ import annotations

import math

import pytest

from probex_lib import claims, verdicts
from probex_lib.mother_baselines import shape_baseline

R, P, N = "reproduced", "partly", "not reproduced"


def _mt(ours: float, paper: float, signal: float, n: int = 100, base: float = 0.914, p: float = 0.001) -> dict:
    return {"ours": ours, "paper": paper, "paper_baseline": base, "signal": signal, "n_placed": n, "p_random_root": p}


def _knn(px: float, other: float) -> dict:
    return {1: {"ProbeX": px, "raw weights": other}, 3: {"ProbeX": px, "raw weights": other}}


def _variant(indist: float, zs: float, base_zs: float, se: float = 0.02) -> dict:
    return {"indist": indist, "indist_chance": 0.1, "indist_se": se, "zeroshot": zs, "zeroshot_chance": 0.1,
            "zeroshot_se": se, "baselines": [{"method": "Dense", "zeroshot": base_zs, "zeroshot_se": se}]}


RECIPE = dict(verdicts.PAPER_RECIPE)
CASES: dict[str, list[tuple[dict, str]]] = {
    "P-F3a": [({"t": 0.84, "f": 0.5, "se_t": 0.01, "se_f": 0.01}, R), ({"t": 0.6, "f": 0.5, "se_t": 0.01, "se_f": 0.01}, P),
              ({"t": 0.52, "f": 0.5, "se_t": 0.01, "se_f": 0.01}, N)],
    "P-F3b": [({"accuracy": [0.5, 0.55, 0.6], "se": [0.01] * 3}, R), ({"accuracy": [0.5, 0.65, 0.6], "se": [0.01] * 3}, P),
              ({"accuracy": [0.5, 0.5, 0.505], "se": [0.01] * 3}, N)],
    "P-F3c": [({"alone": 0.84, "with_others": [0.75, 0.7], "se": 0.01}, R),
              ({"alone": 0.84, "with_others": [0.84, 0.7], "se": 0.01}, P), ({"alone": 0.61, "with_others": [0.61, 0.612], "se": 0.01}, N)],
    "P-F3d": [({"moe": 0.6, "shared": 0.55, "se_moe": 0.01, "se_shared": 0.01, "ahead": 4, "trees": 4}, R),
              ({"moe": 0.6, "shared": 0.55, "se_moe": 0.01, "se_shared": 0.01, "ahead": 1, "trees": 4}, P),
              ({"moe": 0.576, "shared": 0.570, "se_moe": 0.009, "se_shared": 0.009, "ahead": 4, "trees": 4}, N)],
    "P-T1": [({"probex": 0.8, "dense": 0.65, "statnn": 0.6, "se_probex": 0.01, "se_dense": 0.01, "se_statnn": 0.01, "param_ratio": 30}, R),
             ({"probex": 0.7, "dense": 0.65, "statnn": 0.6, "se_probex": 0.01, "se_dense": 0.01, "se_statnn": 0.01, "param_ratio": 30}, P),
             ({"probex": 0.8, "dense": 0.65, "statnn": 0.6, "se_probex": 0.01, "se_dense": 0.01, "se_statnn": 0.01, "param_ratio": 10}, N)],
    "P-Router": [({"routing_accuracy": 1.0, "n_clusters": 4, "n_trees": 4}, R), ({"routing_accuracy": 0.95, "n_clusters": 4, "n_trees": 4}, P),
                 ({"routing_accuracy": 1.0, "n_clusters": 3, "n_trees": 4}, N)],
    "P-F9..12": [({"joint_best": 0.6, "joint_smallest": 0.5, "spread_v": 0.01, "spread_t": 0.1, "se": 0.01}, R),
                 ({"joint_best": 0.6, "joint_smallest": 0.5, "spread_v": 0.01, "spread_t": 0.02, "se": 0.01}, P),
                 ({"joint_best": 0.51, "joint_smallest": 0.5, "spread_v": 0.01, "spread_t": 0.02, "se": 0.01}, N)],
    "P-F13,15": [({"accuracy": [0.6, 0.58, 0.55], "se": 0.01}, R), ({"accuracy": [0.6, 0.5, 0.55], "se": 0.01}, P),
                 ({"accuracy": [0.524, 0.525, 0.523], "se": 0.01}, N)],
    "P-F14": [({"accuracy": [0.5, 0.55, 0.6], "se": 0.01}, R), ({"accuracy": [0.5, 0.7, 0.55], "se": 0.01}, P),
              ({"accuracy": [0.5, 0.52], "se": 0.01}, N)],
    "P-impl": [(RECIPE, R), ({**RECIPE, "epochs": 200, "r_u": 32}, P), ({**RECIPE, "lr": 3e-4}, N)],
    "P-T2": [({"variants": [_variant(0.9, 0.8, 0.5)]}, R), ({"variants": [_variant(0.9, 0.5, 0.5)]}, P),
             ({"variants": [_variant(0.9, 0.11, 0.1)]}, N)],
    "P-T3": [({"knn": _knn(0.6, 0.3), "occ": _knn(0.9, 0.7), "knn_chance": 0.1, "n": 200}, R),
             ({"knn": _knn(0.28, 0.62), "occ": _knn(0.9, 0.7), "knn_chance": 0.1, "n": 200}, P),
             ({"knn": _knn(0.5, 0.5), "occ": _knn(0.7, 0.7), "knn_chance": 0.1, "n": 200}, N)],  # ties fail
    "P-T4": [({"relu_zs": 0.9, "linear_zs": 0.56, "relu_zs_se": 0.02, "linear_zs_se": 0.02, "relu_id": 0.97, "linear_id": 0.95}, R),
             ({"relu_zs": 0.65, "linear_zs": 0.56, "relu_zs_se": 0.02, "linear_zs_se": 0.02, "relu_id": 0.99, "linear_id": 0.85}, P),
             ({"relu_zs": 0.285, "linear_zs": 0.275, "relu_zs_se": 0.087, "linear_zs_se": 0.087, "relu_id": 0.1, "linear_id": 0.1}, N)],
    "P-T5": [({"reversal_z": [1.0, 4.0], "n_pairs": 21}, R), ({"reversal_z": [2.5], "n_pairs": 21}, P),
             ({"reversal_z": [1.5], "n_pairs": 21}, N)],
    "P-T6": [({"encoders": {"minilm": [0.5, 0.02]}, "chance": 0.1, "random": 0.1, "random_se": 0.02, "bow": 0.3, "bow_se": 0.02}, R),
             ({"encoders": {"minilm": [0.3, 0.02]}, "chance": 0.1, "random": 0.1, "random_se": 0.02, "bow": 0.3, "bow_se": 0.02}, P),
             ({"encoders": {"minilm": [0.12, 0.02]}, "chance": 0.1, "random": 0.1, "random_se": 0.02, "bow": 0.3, "bow_se": 0.02}, N)],
    "P-F7": [({"precision": 0.2, "chance": 0.04, "n": 100, "se": 0.02}, R), ({"precision": 0.15, "chance": 0.1, "n": 400, "se": 0.01}, P),
             ({"precision": 0.05, "chance": 0.04, "n": 100, "se": 0.02}, N)],
    # the kit's lineage tools: a classifier with no signal (majority type), a constant confidence, a chance AUC fail
    "K-type": [({"accuracy": 0.95, "n": 200, "majority": 0.4, "recall": {"fp16": 1.0, "merge": 0.8}}, R),
               ({"accuracy": 0.95, "n": 200, "majority": 0.4, "recall": {"fp16": 1.0, "merge": 0.2}}, P),
               ({"accuracy": 0.42, "n": 200, "majority": 0.4, "recall": {"fp16": 1.0, "merge": 0.0}}, N)],
    "K-conf": [({"ece": 0.05, "auc": 0.8, "n_right": 80, "n_wrong": 20}, R), ({"ece": 0.15, "auc": 0.8, "n_right": 80, "n_wrong": 20}, P),
               ({"ece": 0.0, "auc": 0.5, "n_right": 80, "n_wrong": 20}, N)],
    "K-pair1": [({"auc_hard": 0.97, "auc_easy": 1.0, "n_pos": 60, "n_hard": 300}, R),
                ({"auc_hard": 0.85, "auc_easy": 1.0, "n_pos": 60, "n_hard": 300}, P),
                ({"auc_hard": 0.52, "auc_easy": 1.0, "n_pos": 60, "n_hard": 300}, N)],
    "K-pair2": [({"auc_hard": 0.92, "auc_easy": 1.0, "n_pos": 60, "n_hard": 300}, R),
                ({"auc_hard": 0.85, "auc_easy": 1.0, "n_pos": 60, "n_hard": 300}, P),
                ({"auc_hard": 0.5, "auc_easy": 1.0, "n_pos": 60, "n_hard": 300}, N)],
    "MJ-acc": [({"ratio_to_chance": [20, 14]}, R), ({"ratio_to_chance": [20, 3]}, P), ({"ratio_to_chance": [20, 1.5]}, N)],
    "MJ-lora": [({"gains": {"class acc": [0.2, 0.05], "colour acc": [0.7, 0.05]}}, R),
                ({"gains": {"class acc": [0.05, 0.05], "colour acc": [0.7, 0.05]}}, P),
                ({"gains": {"class acc": [0.05, 0.05], "colour acc": [0.05, 0.05]}}, N)],
    # MoTHer: a no-direction method (signal 0.5) must not pass where the paper beats its baseline
    "M-T1": [({"subsets": {"FT": _mt(0.94, 0.94, 0.9), "Mixed": _mt(0.85, 0.83, 0.5)}}, R),
             ({"subsets": {"FT": _mt(0.94, 0.94, 0.9), "LoRA-V": _mt(0.5, 1.0, 0.9)}}, P),
             ({"subsets": {"FT": _mt(0.914, 0.94, 0.5), "LoRA-V": _mt(0.914, 1.0, 0.5)}}, N)],
    "M-deep": [({"ours": 0.8, "paper": 0.79, "shallow": 0.85}, R), ({"ours": 0.8, "paper": 0.79, "shallow": 0.95}, P),
               ({"ours": 0.5, "paper": 0.79, "shallow": 0.66}, N)],
    "M-resnet": [(_mt(0.95, 1.0, 0.9), R), (_mt(0.85, 1.0, 0.9), P), (_mt(1.0, 1.0, 0.9, p=1 / 21), N)],
    "M-abl-lft": [({"placed_l2": 0.6, "placed_rank": 0.95, "n_edges": 100}, R), ({"placed_l2": 0.82, "placed_rank": 0.9, "n_edges": 400}, P),
                  ({"placed_l2": 0.94, "placed_rank": 0.95, "n_edges": 100}, N)],
    "M-F1": [({"rho": 0.95, "n_pairs": 210}, R), ({"rho": 0.6, "n_pairs": 210}, P), ({"rho": 0.43, "n_pairs": 210}, N)],
    "M-F2": [({"pre_up": 0.95, "n_pre": 100, "ft_down": 0.95, "n_ft": 100}, R),
             ({"pre_up": 0.75, "n_pre": 100, "ft_down": 0.95, "n_ft": 100}, P), ({"pre_up": 0.2, "n_pre": 5, "ft_down": 0.74, "n_ft": 100}, N)],
    "M-F7": [({"wrong": 0, "signal": 1.0, "n_placed": 4}, R), ({"wrong": 2, "signal": 1.0, "n_placed": 4}, P),
             ({"wrong": 1, "signal": 0.75, "n_placed": 4}, N)],
    "M-F6": [({"smallest": 1.0}, R), ({"smallest": 0.8}, P), ({"smallest": 0.5}, N)],
    "M-F8": [({"consistency": {"kurtosis": 0.9, "variance": 0.55}, "n_edges": 100}, R),
             ({"consistency": {"kurtosis": 0.9, "variance": 0.76}, "n_edges": 100}, P),
             ({"consistency": {"kurtosis": 0.55, "variance": 0.9}, "n_edges": 100}, N)],
    "M-F13": [({"consistency": {"o": 0.9, "fc1": 0.8}, "n_edges": 100}, R), ({"consistency": {"o": 0.7, "fc1": 0.86}, "n_edges": 100}, P),
              ({"consistency": {"o": 0.55, "fc1": 0.86}, "n_edges": 100}, N)],
    "M-impl": [({"spread": 0.02, "lowest": 0.98, "baseline": 0.914, "n_edges": 100}, R),
               ({"spread": 0.1, "lowest": 0.98, "baseline": 0.914, "n_edges": 100}, P),
               ({"spread": 0.0, "lowest": 0.914, "baseline": 0.914, "n_edges": 100}, N)],  # a prior that does nothing
    "M-T6": [({"identified": 1.0}, R), ({"identified": 0.9}, P), ({"identified": 0.5}, N)],
    "M-T7": [({"distances_10k_s": 200, "clustering_10k_s": 100, "mdst_s": 0.1, "distances_s": 2, "clustering_s": 1, "d": 768}, R),
             ({"distances_10k_s": 200, "clustering_10k_s": 100, "mdst_s": 0.1, "distances_s": 2, "clustering_s": 1, "d": 256}, P),
             ({"distances_10k_s": 2000, "clustering_10k_s": 100, "mdst_s": 0.1, "distances_s": 20, "clustering_s": 1, "d": 768}, N)],
    "M-T4": [({"at0": 0.9, "at90": 0.85}, R), ({"at0": 0.9, "at90": 0.72}, P), ({"at0": 0.0, "at90": 0.0}, N)],
    "M-T5": [({"drop": 0.0, "unquantised": 0.89}, R), ({"drop": 0.08, "unquantised": 0.89}, P), ({"drop": 0.0, "unquantised": 0.5}, N)],
    "M-F16": [({"falls": [0.8, 0.9], "n_steps": [100, 100]}, R), ({"falls": [0.65, 0.9], "n_steps": [100, 100]}, P),
              ({"falls": [0.61, 0.8], "n_steps": [10, 100]}, N)],
}


def _curve(y: list[float], se: float = 0.01, at_default: str = N) -> dict:
    x = [150, 300, 600, 1200][: len(y)]
    pv = [N] * len(y)
    pv[x.index(600) if 600 in x else 0] = at_default
    return {"x": x, "y": y, "se": [se] * len(y), "default_x": 600, "point_verdicts": pv}


TD, TT, NT = claims.TREND_TIERS
for _cid in verdicts.TREND_CURVES:  # every curve rule: the same trend tiers
    CASES[_cid] = [(_curve([0.1, 0.1, 0.1, 0.1], at_default=R), TD),  # reproduced at default, whatever the slope
                   (_curve([0.1, 0.15, 0.2, 0.25], at_default=P), TT),  # +0.05 per doubling, SE 0.01
                   (_curve([0.1, 0.11, 0.1, 0.11]), NT),  # flat within noise
                   (_curve([0.3, 0.2, 0.1, 0.0]), NT)]  # opposite to the paper


def test_trend_fit_by_hand_and_scatter_inflates_the_slope_se():
    f = verdicts.trend_fit([1, 2, 4], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    assert f["slope"] == pytest.approx(1.0) and f["intercept"] == pytest.approx(0.0)
    assert f["slope_se"] == pytest.approx(math.sqrt(0.5))  # sum (t - mean t)^2 = 2
    noisy = verdicts.trend_fit([1, 2, 4, 8], [0.0, 3.0, -1.0, 4.0], [0.1] * 4)
    quiet = verdicts.trend_fit([1, 2, 4, 8], [0.0, 3.0, -1.0, 4.0], [10.0] * 4)
    assert noisy["chi2_dof"] > 1 and noisy["slope_se"] == pytest.approx(quiet["slope_se"] / 100 * math.sqrt(noisy["chi2_dof"]))
    assert quiet["slope_se"] == pytest.approx(math.sqrt(1 / (5 / 100)))  # chi2/dof < 1: never deflated


def test_trend_points_scattered_beyond_their_se_are_no_trend():
    """A rising fit whose points jump around far beyond their SEs: the Birge ratio keeps it a non-trend."""
    c = _curve([0.0, 0.3, 0.05, 0.35], se=0.01)
    assert verdicts.judge("P-F3c@models", c, "ours").verdict == NT


def test_trend_needs_three_points_and_measured_noise():
    two = {"x": [300, 600], "y": [0.1, 0.5], "se": [0.01, 0.01], "default_x": 600, "point_verdicts": [N, N]}
    zero_se = {**_curve([0.1, 0.2, 0.3, 0.4]), "se": [0.0] * 4}
    for numbers in (two, zero_se):
        c = verdicts.judge("M-T1@root_steps", numbers, "ours")
        assert c.verdict == claims.NOT_JUDGED and "conditions" in c.details["not_judged"]


def test_move_default_takes_the_cheapest_affordable_better_point():
    x, aff = [150, 300, 600, 1200, 2400], [150, 300, 600, 1200]
    assert verdicts.move_default(x, [N, N, N, P, R], 600, aff) == 1200
    assert verdicts.move_default(x, [N, N, N, N, R], 600, aff) is None  # only the unaffordable point is better
    assert verdicts.move_default(x, [R, R, P, P, R], 600, aff) is None  # no better point above the default
    assert verdicts.move_default(x, [N, N, P, R, R], 600, aff) == 1200
    assert verdicts.move_default(x, [N] * 5, 999, aff) is None


def test_every_rule_has_cases_and_every_case_names_a_rule():
    assert set(CASES) == set(verdicts.RULES)


@pytest.mark.parametrize("claim_id", sorted(verdicts.RULES))
def test_rule_reaches_every_tier(claim_id):
    rule = verdicts.RULES[claim_id]
    got = [verdicts.judge(claim_id, numbers, "ours").verdict for numbers, _ in CASES[claim_id]]
    assert got == [want for _, want in CASES[claim_id]]
    assert set(got) == set(rule.tiers), f"{claim_id}: cases reach {set(got)}, the rule can return {rule.tiers}"


@pytest.mark.parametrize("claim_id", sorted(verdicts.RULES))
def test_missing_or_nan_number_is_not_judged(claim_id):
    numbers, _ = CASES[claim_id][0]
    key = verdicts.RULES[claim_id].needs[0]
    c = verdicts.judge(claim_id, {k: v for k, v in numbers.items() if k != key}, "ours")
    assert c.verdict == claims.NOT_JUDGED and claim_id in c.details["not_judged"] and key in c.details["not_judged"]


def test_nan_number_is_not_judged():
    c = verdicts.judge("M-F6", {"smallest": math.nan}, "ours")
    assert c.verdict == claims.NOT_JUDGED and "not finite" in c.details["not_judged"]


def test_unknown_claim_is_an_error():
    with pytest.raises(KeyError, match="no verdict rule"):
        verdicts.judge("P-X", {}, "ours")


def test_no_direction_recovery_fails_where_the_paper_beats_its_baseline():
    """Random roots on perfectly placed 1-4-16 trees score the shape baseline; that must not pass M-T1
    or M-resnet, whose paper values beat it."""
    base = shape_baseline([-1] + [0] * 4 + [1 + i // 4 for i in range(16)])
    assert base == pytest.approx(0.9142857)
    subsets = {s: _mt(base, p, 0.5) for s, p in {"FT": 0.94, "LoRA-V": 1.0, "LoRA-F": 0.96}.items()}
    assert verdicts.judge("M-T1", {"subsets": subsets}, "").verdict == N
    assert verdicts.judge("M-resnet", _mt(base, 1.0, 0.5), "").verdict == N
    # the score may carry signal while the recovery ignores it: random roots on the same placement
    subsets = {s: _mt(base, p, 0.9, p=0.5) for s, p in {"FT": 0.94, "LoRA-V": 1.0, "LoRA-F": 0.96}.items()}
    assert verdicts.judge("M-T1", {"subsets": subsets}, "").verdict == N


def test_nested_nan_is_not_judged():
    c = verdicts.judge("M-T1", {"subsets": {"FT": _mt(float("nan"), 0.94, 0.9)}}, "")
    assert c.verdict == claims.NOT_JUDGED and "FT" in c.details["not_judged"]


def test_bonferroni_threshold_grows_with_pairs():
    assert verdicts.bonferroni_z(1) == pytest.approx(1.96, abs=0.01)
    assert verdicts.bonferroni_z(21) > 3.0


def test_auc_se_matches_hanley_mcneil_by_hand():
    # A = 0.8, 50 positives, 50 negatives: Q1 = 0.8/1.2, Q2 = 1.28/1.8 (Hanley & McNeil 1982, Eq. 2)
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    want = math.sqrt((0.16 + 49 * (q1 - 0.64) + 49 * (q2 - 0.64)) / 2500)
    assert verdicts.auc_se(0.8, 50, 50) == pytest.approx(want)
    assert verdicts.auc_se(0.8, 500, 500) < verdicts.auc_se(0.8, 50, 50)
