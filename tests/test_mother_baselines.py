"""The no-direction baseline and the direction signal, on hand-checked trees."""
from __future__ import annotations

import numpy as np
import pytest

from probex_lib import mother_baselines as mb
from probex_lib.mother_exp import hop_distance

TREE_1_4_16 = np.array([-1] + [0] * 4 + [1 + i // 4 for i in range(16)])
DEEP = np.array([-1] + [(i - 1) // 3 for i in range(1, 121)])


def test_shape_baseline_by_hand():
    # root at the true root: 20/20; at a child: 19/20; at a grandchild: 18/20
    assert mb.shape_baseline(TREE_1_4_16) == pytest.approx((1 + 4 * 0.95 + 16 * 0.9) / 21)
    assert mb.shape_baseline(DEEP) == pytest.approx(1 - (3 * 1 + 9 * 2 + 27 * 3 + 81 * 4) / 121 / 120)
    assert mb.shape_baseline(np.array([-1, 0, 1, 2, 3])) == pytest.approx(0.5)  # a chain
    two = np.concatenate([TREE_1_4_16, np.where(TREE_1_4_16 >= 0, TREE_1_4_16 + 21, -1)])
    assert mb.shape_baseline(two) == pytest.approx(mb.shape_baseline(TREE_1_4_16))


def test_no_direction_baseline_with_tree_distances_is_the_shape_baseline():
    hops = hop_distance(TREE_1_4_16).astype(float)  # the tree metric: its MST is the tree itself
    labels = np.zeros(len(TREE_1_4_16), int)
    assert mb.no_direction_baseline(hops, labels, TREE_1_4_16) == pytest.approx(mb.shape_baseline(TREE_1_4_16))


def test_no_direction_baseline_counts_misplaced_edges_as_wrong():
    chain = np.array([-1, 0, 1])
    d = np.array([[0, 1, 1.5], [1, 0, 3], [1.5, 3, 0]])  # places 0-1 and 0-2: the 1-2 edge is lost
    # roots 0: 0->1 right; 1: 1->0 wrong; 2: 2->0, 0->1 -> 0->1 right. (1 + 0 + 1) / 3 of 2 true edges
    assert mb.no_direction_baseline(d, np.zeros(3, int), chain) == pytest.approx(2 / 3 / 2)


def test_direction_signal():
    parent = TREE_1_4_16
    depth = np.array([0] + [1] * 4 + [2] * 16)
    falling = 10.0 - depth  # kurtosis falls parent -> child on every edge
    assert mb.direction_signal(parent, parent, falling) == (1.0, 20)
    assert mb.direction_signal(parent, parent, -falling) == (0.0, 20)
    assert mb.direction_signal(parent, parent, -falling, generalization=True) == (1.0, 20)
    pred = parent.copy()
    pred[5:] = 0  # grandchildren attached to the root: only the 4 root edges placed
    assert mb.direction_signal(parent, pred, falling) == (1.0, 4)
    share, n = mb.direction_signal(parent, parent, np.random.default_rng(0).standard_normal(21))
    assert n == 20 and 0.0 < share < 1.0
    assert mb.direction_signal(parent, parent, np.ones(21)) == (0.5, 20)  # a layer nobody changed: no signal


def test_random_root_pvalue_is_exact():
    hops = hop_distance(TREE_1_4_16).astype(float)
    labels = np.zeros(21, int)
    assert mb.random_root_pvalue(hops, labels, TREE_1_4_16, TREE_1_4_16) == pytest.approx(1 / 21)  # only the true root
    wrong_root = TREE_1_4_16.copy()
    wrong_root[[0, 1]] = [1, -1]  # rooted at child 1: 19 of 20 right, reached by 5 of 21 roots or better
    assert mb.random_root_pvalue(hops, labels, TREE_1_4_16, wrong_root) == pytest.approx(5 / 21)
    two = np.concatenate([TREE_1_4_16, np.where(TREE_1_4_16 >= 0, TREE_1_4_16 + 21, -1)])
    d2 = np.full((42, 42), 100.0)
    d2[:21, :21] = d2[21:, 21:] = hops
    np.fill_diagonal(d2, 0)
    assert mb.random_root_pvalue(d2, np.repeat([0, 1], 21), two, two) == pytest.approx(1 / 21**2)
