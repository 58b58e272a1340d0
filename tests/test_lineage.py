"""probex_lib.lineage: lossy-copy signatures and verification, merges, LoRA rank, edge confidence,
the pairwise test. Tiny synthetic models; artefacts made by the kit's own ``lineage_data.derive``."""
import json
import math

import numpy as np
import pytest
import torch

from probex_lib import lineage
from probex_lib.lineage_data import TRUE_TYPE, derive
from probex_lib.mother import pairwise_l2

# 2-D and conv layers only: the recovery reads tensors of 2+ dims (recover.Models.keys); 100 entries
# each, so pruning p% zeroes exactly p entries per layer.
SHAPES = {"fc": (10, 10), "conv": (5, 2, 2, 5)}


def _model(rng, std=0.1) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy((std * rng.standard_normal(s)).astype(np.float32)) for k, s in SHAPES.items()}


def _moved(model, rng, std) -> dict[str, torch.Tensor]:
    """A sibling: every weight moved by N(0, std^2)."""
    return {k: (t + torch.from_numpy((std * rng.standard_normal(t.shape)).astype(np.float32))) for k, t in model.items()}


def _signature(models) -> lineage.Signature:
    sig = lineage.Signature(len(models))
    for k in SHAPES:
        sig.add(np.stack([m[k].numpy() for m in models]))
    return sig


def _dist(models) -> np.ndarray:
    """Eq. 1 distance: mean over layers of the l2 distance."""
    return sum(pairwise_l2(np.stack([m[k].numpy().ravel() for m in models])) for k in SHAPES) / len(SHAPES)


# --------------------------------------------------------------------------- signatures


def test_signature_of_each_derived_artefact():
    rng = np.random.default_rng(0)
    src = _model(rng)
    kinds = ["fp16", "int8", "int4c", "prune30", "prune60"]
    models = [src, *(derive(k, [src]) for k in kinds)]
    sig = _signature(models)
    assert sig.size == 200
    np.testing.assert_array_equal(sig.fp16_exact, [False, True, False, False, False, False])
    np.testing.assert_array_equal(sig.on_grid, [False, False, True, True, False, False])
    np.testing.assert_allclose(sig.zero_share[[0, 1, 4, 5]], [0, 0, 0.3, 0.6])
    # 4 bits round every |w| < max|row| / 14 to 0: many exact zeros, yet a quantised model, not a pruned one
    assert sig.zero_share[3] >= lineage.PRUNE_MIN_NEW_ZEROS
    kinds_found = [lineage.lossy_kind(sig, i) for i in range(len(models))]
    assert kinds_found == ["", "fp16", "quantised", "quantised", "pruned", "pruned"]
    assert [lineage.lossy_kind(sig, i) for i in range(1, len(models))] == [TRUE_TYPE[k] for k in kinds]


def test_fp16_signature_is_the_half_round_trip():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4, 5)).astype(np.float32)  # 3 models, one 4x5 layer
    sig = lineage.Signature(3)
    sig.add(np.stack([w[0], torch.from_numpy(w[1]).half().float().numpy(), w[2]]))
    np.testing.assert_array_equal(sig.fp16_exact, [False, True, False])
    # accumulated over layers: a model is fp16 only if every layer is
    sig.add(np.stack([torch.from_numpy(w[0]).half().float().numpy(), w[1], np.ones((4, 5), np.float32)]))
    np.testing.assert_array_equal(sig.fp16_exact, [False, False, False])
    assert sig.size == 40
    np.testing.assert_array_equal(sig.zeros, [0, 0, 0])


def test_on_quant_grid_by_hand():
    x = np.array([
        [[0.0, 1 / 127, -2 / 127, 1.0], [0.5, 0.5, 0.5, 0.5]],  # symmetric 8-bit, per tensor
        [[-1.0, -1 / 3, 1 / 3, 1.0], [0.2, 0.4, 0.6, 0.8]],  # min-max 4-bit per row: steps 2/15 and 0.6/15
        [[1 / 7, -3 / 7, 1.0, 0.0], [0.3 / 7, 0.3, -0.6 / 7, 0]],  # symmetric 4-bit per channel (int4c)
        [[0.1, 0.2, 0.35, 1.0], [0.1, 0.2, 0.3, 0.4]],  # row 0 is on no grid
        [[0.5, 0.5, 0.5, 0.5], [-2.0, -2.0, -2.0, -2.0]],  # one distinct value per row
    ])
    np.testing.assert_array_equal(lineage.on_quant_grid(x), [True, True, True, False, True])
    rng = np.random.default_rng(2)
    assert not lineage.on_quant_grid(rng.standard_normal((4, 6, 8))).any()
    q = np.r_[127, rng.integers(-127, 128, 31)].reshape(1, 4, 8) / 127  # symmetric 8-bit, per tensor
    assert lineage.on_quant_grid(q)[0]
    q[0, 2, 3] += 0.0005 / 127  # within GRID_TOL = 0.001 step of its level
    assert lineage.on_quant_grid(q)[0]
    q[0, 2, 3] += 0.01 / 127
    assert not lineage.on_quant_grid(q)[0]


# --------------------------------------------------------------------------- artefact verification


@pytest.mark.parametrize("kind,noise", [("fp16", 0.002), ("prune30", 0.002), ("prune60", 0.002), ("int8", 0.002),
                                        ("int4c", 0.05)])
def test_verify_artefact_accepts_the_source_and_rejects_a_sibling(kind, noise):
    """The sibling moves every weight by N(0, noise^2) (weights ~ N(0, 0.1^2)). int4c's grid step is
    max|row| / 7 (~0.03 here): a sibling that moved less than a step is indistinguishable, hence a larger move."""
    rng = np.random.default_rng(3)
    src = _model(rng)
    sib = _moved(src, rng, noise)
    art, sib_art = derive(kind, [src]), derive(kind, [sib])
    t = TRUE_TYPE[kind]
    for k in SHAPES:
        assert lineage.verify_artefact(t, src[k].numpy(), art[k].numpy()), k
        assert not lineage.verify_artefact(t, src[k].numpy(), sib_art[k].numpy()), k
        assert lineage.verify_artefact(t, sib[k].numpy(), sib_art[k].numpy()), k


def test_verify_quantised_allows_one_step_of_the_coarsest_grid_of_the_child():
    child = np.array([[0.0, 2 / 7, 1.0]])  # symmetric 4-bit: step 1/7 = 0.143
    assert lineage.verify_artefact("quantised", np.array([[0.05, 0.4, 1.0]]), child)  # moved 0.05, 0.114
    assert not lineage.verify_artefact("quantised", np.array([[0.0, 0.45, 1.0]]), child)  # moved 0.164
    # min-max 4-bit (step 2/15 = 0.133) is also on the 8-bit min-max grid (step 2/255): the coarser step counts
    child = np.array([[-1.0, -1 + 2 / 15, 1.0]])
    assert lineage.verify_artefact("quantised", child + [[0, 0.12, 0]], child)
    assert not lineage.verify_artefact("quantised", child + [[0, 0.14, 0]], child)
    # per row: each row its own step (1/7 and 0.1); one row moved beyond its step fails the layer
    child = np.array([[0.0, 2 / 7, 1.0], [0.0, 0.2, 0.7]])
    assert lineage.verify_artefact("quantised", child + 0.09, child)
    assert not lineage.verify_artefact("quantised", child + [[0, 0, 0], [0, 0.11, 0]], child)
    # int8 of a tensor: its step is max|x| / 127, far finer than int4's
    s = np.linspace(-1, 1, 50)[None]
    q = derive("int8", [{"w": torch.from_numpy(s.astype(np.float32))}])["w"].numpy()
    assert lineage.verify_artefact("quantised", s, q)
    assert not lineage.verify_artefact("quantised", s + np.where(np.arange(50) == 7, 2 / 127, 0), q)


def test_verify_artefact_rejects_a_moved_copy_and_other_shapes_and_unknown_kinds():
    rng = np.random.default_rng(4)
    s = rng.standard_normal((6, 8)).astype(np.float32)
    assert lineage.verify_artefact("fp16", s, s)  # an exact copy is within half an ulp
    assert not lineage.verify_artefact("fp16", s, s * (1 + 2.0**-9))  # 4 times the tolerance (half an ulp)
    pruned = np.where(np.abs(s) < 0.5, 0, s)
    assert lineage.verify_artefact("pruned", s, pruned)
    assert not lineage.verify_artefact("pruned", s, np.where(pruned != 0, pruned + 1e-3, 0))
    assert not lineage.verify_artefact("fp16", s, s[:, :4])
    with pytest.raises(ValueError, match="int8"):
        lineage.verify_artefact("int8", s, s)  # a derive() name, not an artefact type


def test_artefact_candidates_lists_the_nearest_models_without_the_signature():
    rng = np.random.default_rng(5)
    src = _model(rng)
    sib = _moved(src, rng, 0.01)
    other = _model(rng)
    models = [other, sib, src, derive("fp16", [src]), derive("int8", [sib]),
              derive("prune30", [src]), derive("prune60", [src])]
    sig = _signature(models)
    cand = lineage.artefact_candidates(sig, _dist(models))
    assert set(cand) == {3, 4, 5, 6}
    kind, sources = cand[3]
    assert kind == "fp16" and sources[0] == 2 and 3 not in sources
    assert cand[4][0] == "quantised" and cand[4][1][0] == 1 and 4 not in cand[4][1]
    # a pruning's sources have at least PRUNE_MIN_NEW_ZEROS fewer zeros: prune30 is eligible for prune60
    # (l1 pruning is nested: prune60 of src is also prune60 of prune30 of src), prune60 is not for prune30
    assert cand[5][0] == "pruned" and set(cand[5][1]) == {0, 1, 2, 3, 4} and cand[5][1][0] in (2, 3)  # src or its fp16 copy
    assert cand[6][0] == "pruned" and cand[6][1][0] == 5 and len(cand[6][1]) == lineage.ARTEFACT_SOURCES
    d = _dist(models)
    for i, (_, sources) in cand.items():
        assert (np.diff(d[i, sources]) >= 0).all()  # nearest first
    # verification picks the true source among them
    for i, (k, sources) in cand.items():
        ok = [s for s in sources
              if all(lineage.verify_artefact(k, models[s][n].numpy(), models[i][n].numpy()) for n in SHAPES)]
        assert ok[0] == {3: 2, 4: 1, 5: 2, 6: 5}[i]
    # k nearest only; models with no eligible neighbour are left out
    assert len(lineage.artefact_candidates(sig, _dist(models), k=1)[3][1]) == 1
    only = [derive("fp16", [src]), derive("fp16", [other])]
    assert lineage.artefact_candidates(_signature(only), _dist(only)) == {}


# --------------------------------------------------------------------------- merges


def _d2(x) -> np.ndarray:
    """Squared distances as the recovery gets them: pairwise_l2 of float32 models, squared."""
    return pairwise_l2(np.asarray(x, np.float32)) ** 2


def test_affine_residual_by_hand():
    pts = np.array([[0.0, 0, 0], [2, 0, 0], [1, 0, 0], [1, 3, 0], [0, 2, 0], [0.5, 0.5, 4]])
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    res, w = lineage.affine_residual(d2, 2, [0, 1])  # the midpoint
    assert res == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(w, [0.5, 0.5])
    res, w = lineage.affine_residual(d2, 3, [0, 1])  # 3 above the midpoint
    assert res == pytest.approx(3)
    np.testing.assert_allclose(w, [0.5, 0.5])
    res, w = lineage.affine_residual(d2, 1, [0, 2])  # beyond the segment: a negative weight
    assert res == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(w, [-1, 2])
    res, w = lineage.affine_residual(d2, 5, [0, 1, 4])  # the plane z = 0: residual 4, projection (0.5, 0.5, 0)
    assert res == pytest.approx(4)
    np.testing.assert_allclose(w, [0.5, 0.25, 0.25])
    assert w @ pts[[0, 1, 4]] == pytest.approx([0.5, 0.5, 0])


def _merge_zoo(rng, d=1000, noise=0.01):
    """Random "models" of ``d`` weights ~ N(0, 1). Index: 0-1 roots A, B of two far-apart trees, each
    with 2 fine-tunes (2-3, 4-5); 6-8 unrelated roots C, D, E; 9 = (A + B) / 2 with 5 fine-tunes
    (10-14); 15 = (C + D + E) / 3; 16 = 0.7 F + 0.3 G of two more roots (17, 18). (At d = 200, about
    1 seed in 5 puts 6 other models nearer the 3-merge than one of its parents, out of its
    MERGE_NEIGHBOURS: distances concentrate as d grows, as in real models.)"""
    root = lambda: rng.standard_normal(d)  # noqa: E731
    a, b = root(), root()
    rows = [a, b, a + noise * root(), a + noise * root(), b + noise * root(), b + noise * root(), root(), root(), root()]
    m = (a + b) / 2
    rows += [m, *(m + noise * root() for _ in range(5))]
    rows.append((rows[6] + rows[7] + rows[8]) / 3)
    f, g = root(), root()
    rows += [0.7 * f + 0.3 * g, f, g]
    return np.array(rows, dtype=np.float32)


def test_find_merges_finds_two_and_three_model_merges():
    x = _merge_zoo(np.random.default_rng(6))
    found = lineage.find_merges(_d2(x))
    assert set(found) == {9, 15, 16}
    assert sorted(found[9]) == [0, 1]  # its 5 fine-tunes are its nearest models, not its parents
    assert sorted(found[15]) == [6, 7, 8]
    assert found[16] == [17, 18]  # largest weight first
    found = lineage.find_merges(_d2(x[[17, 18, 16]]))  # the merge alone with its parents
    assert found == {2: [0, 1]}
    x[16] = 0.3 * x[17] + 0.7 * x[18]
    assert lineage.find_merges(_d2(x))[16] == [18, 17]


def test_find_merges_respects_candidates():
    x = _merge_zoo(np.random.default_rng(7))
    found = lineage.find_merges(_d2(x), candidates=[i for i in range(len(x)) if i not in (17, 18)])
    assert 16 not in found  # its parents are not candidates
    assert set(found) == {9, 15}


def test_no_merge_among_siblings():
    rng = np.random.default_rng(8)
    parents = rng.standard_normal((3, 200))
    x = [p for p in parents] + [p + 0.01 * rng.standard_normal(200) for p in parents for _ in range(4)]
    x += [parents[0] + 0.1 * rng.standard_normal(200) for _ in range(3)]  # farther siblings too
    assert lineage.find_merges(_d2(x)) == {}


def test_merge_children_are_the_fine_tunes_of_a_merge_not_its_parents():
    rng = np.random.default_rng(9)
    a, b, c = rng.standard_normal((3, 200))
    m = (a + b) / 2
    u = (a - b) / np.linalg.norm(a - b)
    noise = 0.01 * rng.standard_normal((5, 200))
    noise -= np.outer(noise @ u, u)  # fine-tunes moving across the segment a-b: no nearer to a or b than m is
    # 0, 1: the merge's parents; 2, 3: an unrelated root and its fine-tune; 4: the merge; 5-9 its fine-tunes
    x = np.array([a, b, c, c + 0.01 * rng.standard_normal(200), m, *(m + noise)], dtype=np.float32)
    dist = pairwise_l2(x)
    merges = lineage.find_merges(dist**2)
    assert set(merges) == {4} and sorted(merges[4]) == [0, 1]
    d = dist + np.diag(np.full(len(x), np.inf))
    assert d[0].argmin() == 4 and d[1].argmin() == 4  # the parents' nearest model is the merge too
    got = lineage.merge_children(dist, merges, [i for i in range(len(x)) if i != 4])
    assert got == {i: 4 for i in range(5, 10)}


def test_merge_children_leaves_a_higher_scoring_model_to_mother():
    """The parent p of two merged siblings is nearer to their uniform merge than to either sibling."""
    rng = np.random.default_rng(19)
    p = rng.standard_normal(200)
    u1, u2 = p + 0.1 * rng.standard_normal((2, 200))
    m = (u1 + u2) / 2
    x = np.array([p, u1, u2, m, m + 0.01 * rng.standard_normal(200)], dtype=np.float32)
    dist = pairwise_l2(x)
    merges = {3: [1, 2]}
    assert lineage.merge_children(dist, merges, [0, 1, 2, 4]) == {0: 3, 4: 3}  # distance alone adopts p
    score = np.array([5.0, 3.0, 3.0, 3.0, 2.0])  # kurtosis falls with fine-tuning: p is above the merge
    assert lineage.merge_children(dist, merges, [0, 1, 2, 4], score) == {4: 3}
    assert lineage.merge_children(dist, merges, [0, 1, 2, 4], np.full(5, 3.0)) == {0: 3, 4: 3}  # ties adopt


# --------------------------------------------------------------------------- LoRA vs full fine-tune


def test_low_rank_update_is_lora_and_full_rank_is_not():
    rng = np.random.default_rng(10)
    w1, w2 = rng.standard_normal((2, 16, 16)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    lora = (0.1 * rng.standard_normal((16, 2)) @ rng.standard_normal((2, 16))).astype(np.float32)  # B @ A, rank 2
    parent = [w1, w2, bias]
    assert lineage.is_low_rank_update(parent, [w1 + lora, w2, bias])  # w2 and bias unchanged
    assert lineage.is_low_rank_update(parent, [w1 + lora, w2, bias + 1])  # 1-D tensors are not judged
    full = (0.01 * rng.standard_normal((16, 16))).astype(np.float32)
    assert not lineage.is_low_rank_update(parent, [w1 + full, w2, bias])
    assert not lineage.is_low_rank_update(parent, [w1 + lora, w2 + full, bias])  # every changed layer must be low rank
    assert not lineage.is_low_rank_update(parent, [w1, w2, bias])  # nothing changed: no update at all
    # rank 8 = half of 16 is still LoRA; rank 9 is not
    r8 = (rng.standard_normal((16, 8)) @ rng.standard_normal((8, 16))).astype(np.float32)
    r9 = (rng.standard_normal((16, 9)) @ rng.standard_normal((9, 16))).astype(np.float32)
    assert lineage.is_low_rank_update([w1], [w1 + r8])
    assert not lineage.is_low_rank_update([w1], [w1 + r9])
    # conv layers are read as (d_out, d_in * k * k)
    conv = rng.standard_normal((8, 2, 3, 3)).astype(np.float32)
    conv_lora = (rng.standard_normal((8, 1)) @ rng.standard_normal((1, 18))).reshape(8, 2, 3, 3).astype(np.float32)
    assert lineage.is_low_rank_update([conv], [conv + conv_lora])


def test_numerical_rank_ignores_float32_rounding():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((16, 16)).astype(np.float32)
    tiny = 1e-5 * np.outer(rng.standard_normal(16), rng.standard_normal(16))
    child = (w.astype(np.float64) + tiny).astype(np.float32)  # stored in float32: rounding noise in every entry
    diff = child.astype(np.float64) - w
    assert lineage.numerical_rank(diff, float(np.abs(w).max())) == 1
    assert lineage.numerical_rank(diff, 0.0) > 8  # without the float32 floor the rounding noise counts
    assert lineage.is_low_rank_update([w], [child])
    assert lineage.numerical_rank(np.zeros((4, 4)), 1.0) == 0
    assert lineage.numerical_rank(np.diag([1.0, 1e-3, 1e-6]), 0.0) == 2  # relative floor 1e-4


# --------------------------------------------------------------------------- edge confidence


def test_edge_features_by_hand():
    inf = np.inf
    dist = np.array([[0, 1, 2, 3], [1, 0, 2, 1], [2, 2, 0, 3], [3, 1, 3, 0]], float)  # median off-diagonal: 2
    score = np.array([4.0, 3.0, 1.0, 3.5])
    parent = np.array([-1, 0, 0, 1])
    cost = np.array([[inf, 1, 2, 5], [3, inf, 4, 1.5], [6, 5, inf, 4], [7, 6, 8, inf]])  # cost[i, j]: i parent of j
    f = lineage.edge_features(dist, score, np.zeros(4, int), parent, cost)
    assert f.shape == (4, len(lineage.CONFIDENCE_FEATURES))
    assert np.isnan(f[0]).all()
    sd = score.std()
    np.testing.assert_allclose(f[1], [(5 - 1) / 2, 1 / 2, 1, 1 / sd])
    np.testing.assert_allclose(f[2], [(4 - 2) / 2, 2 / 2, 1, 3 / sd])
    np.testing.assert_allclose(f[3], [(4 - 1.5) / 2, 1 / 2, 0, 0.5 / sd])  # parent scores lower


def test_edge_features_per_cluster():
    inf = np.inf
    dist = np.array([[0, 2, 9, 9, 9], [2, 0, 9, 9, 9], [9, 9, 0, 4, 9], [9, 9, 4, 0, 9], [9, 9, 9, 9, 0]], float)
    score = np.array([2.0, 1.0, 0.0, 5.0, 7.0])
    labels = np.array([0, 0, 1, 1, 2])
    parent = np.array([-1, 0, -1, 2, -1])
    cost = np.full((5, 5), inf)
    cost[0, 1], cost[1, 0], cost[2, 3], cost[3, 2] = 1.0, 3.0, 2.0, 0.5
    f = lineage.edge_features(dist, score, labels, parent, cost)
    assert np.isnan(f[[0, 2, 4]]).all()  # roots, and a singleton cluster
    # no other parent in a cluster of two: margin of one median distance
    np.testing.assert_allclose(f[1], [1, 1, 1, 1 / 0.5])
    np.testing.assert_allclose(f[3], [1, 1, 0, 5 / 2.5])


def test_expected_calibration_error_by_hand():
    conf = np.array([0.2, 0.4, 0.6, 0.8])
    right = np.array([0, 1, 1, 1])
    # bin [0, 0.5): confidence 0.3, accuracy 0.5; bin [0.5, 1]: 0.7 and 1. Half the edges each.
    assert lineage.expected_calibration_error(conf, right, bins=2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.3)
    assert lineage.expected_calibration_error([0.25] * 4, [1, 0, 0, 0]) == pytest.approx(0)
    assert lineage.expected_calibration_error([1.0, 1.0], [True, True]) == 0  # confidence 1 is in the last bin
    assert lineage.expected_calibration_error([1.0, 0.0], [False, True]) == pytest.approx(1)
    table = lineage.reliability_table(conf, right, bins=2)
    assert [(r["lo"], r["hi"], r["n"]) for r in table] == [(0, 0.5, 2), (0.5, 1, 2)]
    assert [r["confidence"] for r in table] == pytest.approx([0.3, 0.7])
    assert [r["accuracy"] for r in table] == [0.5, 1.0]
    rng = np.random.default_rng(12)
    c = rng.uniform(size=50)
    table = lineage.reliability_table(c, c > 0.5)
    assert sum(r["n"] for r in table) == 50
    ece = sum(r["n"] / 50 * abs(r["accuracy"] - r["confidence"]) for r in table)
    assert lineage.expected_calibration_error(c, c > 0.5) == pytest.approx(ece)


def _calibration_set(rng, m=200):
    feats = rng.standard_normal((m, len(lineage.CONFIDENCE_FEATURES))) * [1, 2, 0.5, 3] + [0, 1, 0.5, 2]
    right = feats[:, 0] + 0.5 * rng.standard_normal(m) > 0
    return feats, right


def test_calibrator_confidence_rises_with_a_predictive_feature():
    rng = np.random.default_rng(13)
    feats, right = _calibration_set(rng)
    cal = lineage.fit_calibrator(feats, right, fitted_on="synthetic")
    probe = np.tile(feats.mean(0), (5, 1))
    probe[:, 0] = np.linspace(-2, 2, 5)
    conf = cal.confidence(probe)
    assert (np.diff(conf) > 0).all() and conf[0] < 0.2 and conf[-1] > 0.8
    assert cal.weights[0] > 2 * max(abs(w) for w in cal.weights[1:])
    assert set(cal.type_rate.values()) == {0.5} and cal.fitted_on == "synthetic"  # unseen types: (0 + 1) / (0 + 2)
    # the fitted confidences are calibrated on their own set, roughly
    assert lineage.expected_calibration_error(cal.confidence(feats), right) < 0.1


def test_calibrator_json_round_trip_and_refusals():
    rng = np.random.default_rng(14)
    feats, right = _calibration_set(rng)
    typed = [("fp16", True)] * 3 + [("pruned", False), ("merge", True), ("merge", False)]
    cal = lineage.fit_calibrator(feats, right, typed, fitted_on="view-x")
    assert cal.type_rate == {"fp16": pytest.approx(4 / 5), "pruned": pytest.approx(1 / 3), "merge": pytest.approx(2 / 4),
                             "quantised": 0.5, "merge-child": 0.5}
    d = json.loads(json.dumps(cal.to_json()))  # plain JSON: no numpy types
    back = lineage.Calibrator.from_json(d, "cal.json")
    np.testing.assert_array_equal(back.confidence(feats), cal.confidence(feats))
    assert back.type_rate == cal.type_rate and back.fitted_on == "view-x"
    with pytest.raises(ValueError, match="my/cal.json"):
        lineage.Calibrator.from_json({**d, "format_version": 1}, "my/cal.json")
    with pytest.raises(ValueError, match="other.json"):
        lineage.Calibrator.from_json({**d, "features": d["features"][::-1]}, "other.json")
    with pytest.raises(ValueError, match="calibration"):
        lineage.Calibrator.from_json({k: v for k, v in d.items() if k != "format_version"})


def test_calibrator_with_one_outcome_only():
    feats = np.random.default_rng(15).standard_normal((9, len(lineage.CONFIDENCE_FEATURES)))
    cal = lineage.fit_calibrator(feats, np.ones(9, bool))
    np.testing.assert_allclose(cal.confidence(feats), 10 / 11)  # Laplace: (9 + 1) / (9 + 2)
    cal = lineage.fit_calibrator(feats, np.zeros(9, bool))
    np.testing.assert_allclose(cal.confidence(feats), 1 / 11)


# --------------------------------------------------------------------------- pairwise test


def _layers(rng, n_layers=2, d=16):
    return [rng.standard_normal((d, d)) for _ in range(n_layers)]


def _fine_tune(rng, layers, size=0.05):
    """Every layer + a rank-1 update."""
    return [w + size * np.outer(rng.standard_normal(len(w)), rng.standard_normal(w.shape[1])) for w in layers]


def test_pair_features_and_scores_order_child_sibling_unrelated():
    rng = np.random.default_rng(16)
    parent = _layers(rng)
    child, sib = _fine_tune(rng, parent), _fine_tune(rng, parent)
    other = _layers(rng)
    f_child, f_sib, f_other = (lineage.pair_features(a, b) for a, b in [(parent, child), (child, sib), (parent, other)])
    # the child's update is rank 1: effective rank share 1/16; siblings differ by rank 2
    assert f_child[1] == pytest.approx(math.log(1 / 16), abs=1e-6)
    assert math.log(1 / 16) < f_sib[1] <= math.log(2 / 16) + 1e-9
    assert f_child[0] < f_sib[0] < f_other[0] and f_sib[1] < f_other[1]
    null = np.array([lineage.pair_features(_layers(rng), _layers(rng)) for _ in range(10)])
    s = lineage.pair_score(np.array([f_child, f_sib, f_other]), null)
    assert s[0] > s[1] > s[2]
    # by hand: minus the sum of each feature's z against the null
    mu, sd = null.mean(0), null.std(0)
    assert s[2] == pytest.approx(-(((np.array(f_other) - mu) / sd).sum()))


def test_pair_features_by_hand():
    a = [np.zeros((2, 2)), np.zeros(3)]
    b = [np.diag([3.0, 4.0]), np.array([0.0, 3.0, 4.0])]  # distances 5 and 5; singular values 4, 3; 1-D: no rank
    d, r = lineage.pair_features(a, b)
    assert d == pytest.approx(math.log(5))
    p = np.array([4, 3]) / 7
    assert r == pytest.approx(math.log(math.exp(-(p * np.log(p)).sum()) / 2))
    assert lineage.pair_features([np.zeros((2, 2))], [np.zeros((2, 2))]) == pytest.approx((math.log(1e-300), 0))
    with pytest.raises(ValueError):
        lineage.pair_features([], [])


def test_pair_test_against_a_null_of_unrelated_pairs():
    rng = np.random.default_rng(17)
    null = np.array([lineage.pair_features(_fine_tune(rng, _layers(rng)), _fine_tune(rng, _layers(rng))) for _ in range(20)])
    parent = _layers(rng)
    derived = lineage.pair_test(lineage.pair_features(parent, _fine_tune(rng, parent)), null)
    assert derived.verdict == "derived" and derived.z >= lineage.DERIVED_Z and derived.percentile == 100
    assert derived.n_null == 20
    unrelated = lineage.pair_test(lineage.pair_features(_fine_tune(rng, _layers(rng)), _fine_tune(rng, _layers(rng))), null)
    assert unrelated.verdict == "not derived" and unrelated.z < lineage.DERIVED_Z
    assert unrelated.score < derived.score
    j = json.loads(json.dumps(derived.to_json()))
    assert j["verdict"] == "derived" and j["log_distance"] == derived.log_distance
    with pytest.raises(ValueError, match="at least 3"):
        lineage.pair_test((0.0, 0.0), null[:2])


def test_permuted_shuffles_rows_and_columns_and_keeps_the_values():
    rng = np.random.default_rng(18)
    for shape in [(6, 5), (4, 3, 2, 2)]:
        x = rng.standard_normal(shape)
        p = lineage.permuted(x, rng)
        assert p.shape == x.shape
        np.testing.assert_array_equal(np.sort(p, axis=None), np.sort(x, axis=None))
        assert not np.array_equal(p, x)
        rows, prows = x.reshape(len(x), -1), p.reshape(len(p), -1)
        assert sorted(map(tuple, np.sort(rows, 1))) == sorted(map(tuple, np.sort(prows, 1)))  # rows stay rows
    x = rng.standard_normal((16, 16))
    child = x + 0.05 * np.outer(rng.standard_normal(16), rng.standard_normal(16))
    # a permuted copy is as far from its origin as an unrelated model: the alignment is gone
    assert lineage.pair_features([x], [lineage.permuted(child, rng)])[0] > lineage.pair_features([x], [child])[0] + 2


def test_pair_weights_follow_the_feature_that_separates():
    rng = np.random.default_rng(21)
    null = rng.standard_normal((200, 2))
    # positives differ from negatives in feature 1 only (lower = more derived), feature 0 is noise
    pos = np.c_[rng.standard_normal(300), rng.standard_normal(300) - 2]
    neg = rng.standard_normal((300, 2))
    w = lineage.fit_pair_weights(pos, neg, null)
    assert sum(w) == pytest.approx(2) and w[1] > 1.8 and abs(w[0]) < 0.2
    s = lineage.pair_score(np.r_[pos, neg], null, w)
    assert s[:300].mean() > s[300:].mean() + 1
