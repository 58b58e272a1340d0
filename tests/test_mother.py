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
