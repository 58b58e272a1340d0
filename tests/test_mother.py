import numpy as np
import pytest
from scipy.stats import kurtosis

from probex_lib import mother


def test_pairwise_l2_matches_float64_loop_with_a_large_shared_component():
    rng = np.random.default_rng(0)
    base = rng.normal(size=4000) * 10  # models of one tree share their root's weights
    x = (base + 0.01 * rng.normal(size=(30, 4000))).astype(np.float32)
    ref = np.array([[np.linalg.norm(x[i].astype(np.float64) - x[j]) for j in range(30)] for i in range(30)])
    got = mother.pairwise_l2(x, block=7)
    assert np.abs(got - ref).max() / ref.max() < 1e-5
    np.testing.assert_array_equal(got, got.T)


def _forest(rng, d, trees=5, std=0.02):
    """``trees`` unrelated roots (weights ~ N(0, std^2)), each with 6 fine-tunes moving every
    weight by 0.1% of std and 6 by 1% (each from a random earlier model of its tree), then a copy
    of one child and of one root: identical layers."""
    rows = []
    for _ in range(trees):
        tree = [rng.normal(size=d) * std]
        for move in [1e-3] * 6 + [1e-2] * 6:
            tree.append(tree[rng.integers(len(tree))] + move * std * rng.normal(size=d))
        rows += tree
    rows += [rows[3], rows[0]]
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("split_min,block", [((32, 256), 1024), ((4, 4), 7)])  # ((4, 4), 7): sub-groups, recursion, small blocks
def test_pairwise_l2_is_exact_per_pair_with_several_unrelated_trees(monkeypatch, split_min, block):
    monkeypatch.setattr(mother, "_SPLIT_MIN", split_min)
    x = _forest(np.random.default_rng(4), 16384)
    x64 = x.astype(np.float64)
    ref = np.sqrt(np.array([((a - x64) ** 2).sum(axis=1) for a in x64]))  # float64, pair by pair
    got = mother.pairwise_l2(x, block=block)
    same = ref == 0  # the diagonal and the two copies
    assert same.sum() == len(x) + 4
    np.testing.assert_array_equal(got[same], 0.0)
    assert (np.abs(got - ref)[~same] / ref[~same]).max() < 1e-5  # per pair, not relative to the largest
    np.testing.assert_array_equal(got, got.T)


def test_ft_distance_with_an_identical_layer():
    rng = np.random.default_rng(5)
    x = _forest(rng, 4096, trees=2)
    frozen = np.repeat(rng.normal(size=(1, 8, 8)), len(x), axis=0)  # e.g. a layer LoRA left unchanged
    d = mother.ft_distance([x, frozen])
    np.testing.assert_allclose(d, mother.pairwise_l2(x) / 2, rtol=1e-12)
    assert d[3, len(x) - 2] == 0.0 and d[0, len(x) - 1] == 0.0


def test_ft_distance_official_hand_checked():
    q = np.array([[0.0, 0.0], [1.0, -1.0], [3.0, 1.0]]).reshape(3, 1, 2)  # W_i - W_j (i < j): [-1, 1], [-3, -1], [-2, -2]
    v = np.array([[0.0], [1.0], [0.0]])  # -1, 0, 1
    # query: lo = -3, hi = 1 -> pairs (0,1), (0,2), (1,2): (1+3)/4, (-1+3)/4, (-2+3)/4 = 1, 0.5, 0.25
    # value: lo = -1, hi = 1 -> 0, 0.5, 1; the maximum over layers: 1, 0.5, 1
    got = mother.ft_distance_official({"query": [q], "value": [v]})
    np.testing.assert_allclose(got, [[0, 1, 0.5], [1, 0, 1], [0.5, 1, 0]])
    # as in the official code, the order matters: reversed, query's pair (2,1) is max([2, 2]) -> (2+1)/4
    rev = mother.ft_distance_official({"query": [q[::-1]]})
    assert rev[0, 1] == pytest.approx(0.75) and got[1, 2] != rev[0, 1]


def test_rank_distances_max_or_sum_over_layers():
    e = np.eye(4)
    a = np.stack([0 * e, np.diag([1.0, 0, 0, 0]), np.diag([1.0, 1, 1, 0])])  # ranks (0,1)=1, (0,2)=3, (1,2)=2
    b = np.stack([0 * e, 0 * e, np.diag([1.0, 0, 0, 0])])  # 0, 1, 1
    iu = np.triu_indices(3, 1)
    np.testing.assert_array_equal(mother.rank_distance_full([a, b])[iu], [1, 3, 2])
    np.testing.assert_array_equal(mother.rank_distance_full([a, b], reduce="sum")[iu], [1, 4, 3])
    with pytest.raises(ValueError):
        mother.rank_distance_full([a], reduce="mean")


def test_cluster_models_default_single_keeps_a_chain_of_fine_tunes():
    pts = np.r_[np.arange(10.0), 11.5, 12.0][:, None]  # a tree as a chain of steps of 1; an unrelated pair 2.5 away
    d = mother.pairwise_l2(pts)
    tree = [0] * 10 + [1] * 2

    def same_partition(labels, expected):
        return len(set(zip(labels, expected))) == len(set(labels)) == len(set(expected))

    assert same_partition(mother.cluster_models(d, 2), tree)  # single: cuts the longest MST edge
    assert same_partition(mother.cluster_models(d, 2, method="average"), tree)
    assert same_partition(mother.cluster_models(d, 2, method="ward"), [0] * 8 + [1] * 4)  # Ward (official) cuts the chain
    ranks = np.array([[0, 2, 2, 9], [2, 0, 2, 9], [2, 2, 0, 9], [9, 9, 9, 0]])  # integer rank distances
    assert same_partition(mother.cluster_models(ranks), [0, 0, 0, 1])  # automatic count: 9 / 2 > 3


def test_ft_distance_is_the_mean_over_layers():
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0], [1.0]])
    np.testing.assert_allclose(mother.ft_distance([a, b]), [[0, 3.0], [3.0, 0]])


def test_kurtosis_score_equals_scipy():
    rng = np.random.default_rng(1)
    layers = [rng.standard_t(5, size=(4, 300)), rng.normal(size=(4, 10, 10))]
    expected = sum(kurtosis(l.reshape(4, -1), axis=1, fisher=False) for l in layers)
    np.testing.assert_allclose(mother.kurtosis_score(layers), expected, rtol=1e-12)


def test_cost_matrix_penalises_the_wrong_direction():
    d = np.array([[0, 1.0], [1.0, 0]])
    s = np.array([5.0, 3.0])  # model 0 has the higher kurtosis: specialisation says 0 -> 1
    m = mother.cost_matrix(d, s, c=0.3)
    lam = 0.3 * 2 / 4
    assert m[0, 1] == 1.0 and m[1, 0] == pytest.approx(1.0 + lam)
    g = mother.cost_matrix(d, s, generalization=True, c=0.3)
    assert g[1, 0] == 1.0 and g[0, 1] == pytest.approx(1.0 + lam)
    np.testing.assert_array_equal(mother.recover_tree(d, s), [-1, 0])
    np.testing.assert_array_equal(mother.recover_tree(d, s, generalization=True), [1, -1])


def _simulated_tree(rng, d=2000):
    """Root -> 3 children -> 2 grandchildren each; fine-tuning shrinks outliers (lowers kurtosis)."""
    parent = np.array([-1, 0, 0, 0, 1, 1, 2, 2, 3, 3])
    w = np.zeros((10, d))
    w[0] = rng.standard_t(4, size=d)
    for j in range(1, 10):
        w[j] = 0.9 * w[parent[j]] + 0.3 * rng.normal(size=d)
    return w, parent


def test_recovers_a_simulated_tree_and_clusters_two_roots():
    rng = np.random.default_rng(2)
    (wa, pa), (wb, _) = _simulated_tree(rng), _simulated_tree(rng)
    dist = mother.ft_distance([wa])
    pred = mother.recover_tree(dist, mother.kurtosis_score([wa]))
    assert mother.edge_accuracy(pa, pred) == 1.0
    both = np.concatenate([wa, wb])
    labels = mother.cluster_models(mother.ft_distance([both]))
    assert len(set(labels)) == 2 and len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1
    assert set(mother.cluster_models(mother.ft_distance([both]), n_clusters=2)) == {0, 1}


def test_edge_accuracy():
    assert mother.edge_accuracy([-1, 0, 0, 1], [-1, 0, 1, 1]) == pytest.approx(2 / 3)


def test_lora_rank_distance_from_factors_matches_full_svd():
    rng = np.random.default_rng(3)
    ranks = [2, 4, 4, 8]
    layer = [(rng.normal(size=(40, r)), rng.normal(size=(r, 30))) for r in ranks]
    layer.append(layer[1])  # an identical adapter: distance 0
    other = [(rng.normal(size=(20, 1)), rng.normal(size=(1, 20))) for _ in ranks + [0]]
    fast = mother.lora_rank_distance([layer, other])
    np.testing.assert_array_equal(fast, mother.lora_rank_distance_dense([layer, other]))
    assert fast[0, 1] == 6 and fast[2, 3] == 12 and fast[1, 4] == 2  # identical in layer 1; layer 2: two rank-1 adapters differ by rank 2
    assert mother.lora_rank_distance([layer])[1, 4] == 0
    summed = mother.lora_rank_distance([layer, other], reduce="sum")  # the official code's sum over layers
    np.testing.assert_array_equal(summed, mother.lora_rank_distance_dense([layer, other], reduce="sum"))
    assert summed[0, 1] == 6 + 2 and summed[2, 3] == 12 + 2 and summed[1, 4] == 0 + 2
