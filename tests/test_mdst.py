"""Chu-Liu/Edmonds against networkx on random dense graphs."""
import networkx as nx
import numpy as np
import pytest

from probex_lib.mdst import NoArborescence, min_spanning_arborescence, tree_cost


def _networkx(w):
    g = nx.DiGraph()
    n = len(w)
    g.add_nodes_from(range(n))
    g.add_weighted_edges_from((i, j, w[i, j]) for i in range(n) for j in range(n) if i != j and np.isfinite(w[i, j]))
    t = nx.minimum_spanning_arborescence(g, attr="weight")
    parent = np.full(n, -1)
    for i, j in t.edges():
        parent[j] = i
    return parent


def _is_arborescence(parent):
    roots = np.flatnonzero(parent < 0)
    if len(roots) != 1:
        return False
    for v in range(len(parent)):  # every node reaches the root without a cycle
        seen, u = set(), v
        while parent[u] >= 0:
            if u in seen:
                return False
            seen.add(u)
            u = parent[u]
    return True


@pytest.mark.parametrize("seed", range(25))
def test_matches_networkx_on_random_dense_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    w = rng.random((n, n))  # distinct weights: the optimum is unique
    ours = min_spanning_arborescence(w)
    ref = _networkx(w)
    assert _is_arborescence(ours)
    assert tree_cost(w, ours) == pytest.approx(tree_cost(w, ref), rel=1e-12)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("seed", range(10))
def test_ties_give_the_same_total_weight(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 30))
    w = rng.integers(1, 4, (n, n)).astype(float)  # many equal weights
    ours = min_spanning_arborescence(w)
    assert _is_arborescence(ours)
    assert tree_cost(w, ours) == pytest.approx(tree_cost(w, _networkx(w)))


def test_fixed_root_and_hand_checked_cycle():
    # 0 -> 1 cheap, but 1 <-> 2 form a cheaper cycle that must be broken
    w = np.array([[np.inf, 5.0, 9.0], [np.inf, np.inf, 1.0], [np.inf, 1.0, np.inf]])
    np.testing.assert_array_equal(min_spanning_arborescence(w, root=0), [-1, 0, 1])
    np.testing.assert_array_equal(min_spanning_arborescence(w), [-1, 0, 1])
    assert min_spanning_arborescence(np.zeros((1, 1))).tolist() == [-1]


def test_unreachable_node_and_bad_shapes_are_errors():
    w = np.array([[np.inf, 1.0, np.inf], [np.inf, np.inf, np.inf], [np.inf, np.inf, np.inf]])
    with pytest.raises(NoArborescence, match=r"node\(s\) \[2\]"):
        min_spanning_arborescence(w, root=0)
    with pytest.raises(ValueError, match="square"):
        min_spanning_arborescence(np.zeros((2, 3)))


@pytest.mark.parametrize("seed", range(8))
def test_matches_networkx_on_distance_like_graphs_with_nested_cycles(seed):
    from probex_lib import mother

    rng = np.random.default_rng(500 + seed)
    n = 70
    pts = rng.normal(size=(n, 8)) + np.repeat(rng.normal(size=(7, 8)) * 4, 10, axis=0)  # 7 clumps
    w = mother.cost_matrix(mother.pairwise_l2(pts), rng.random(n))
    ours = min_spanning_arborescence(w)
    np.testing.assert_array_equal(ours, _networkx(np.where(np.isfinite(w), w, 0)))
