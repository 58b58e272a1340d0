import numpy as np
import pytest

from probex_lib import baselines


def test_statnn_features_hand_checked():
    t = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    f = baselines.statnn_features([t, t.reshape(1, 5, 1) * 2])
    np.testing.assert_allclose(f[0, :7], [2.0, 2.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    assert f.shape == (1, 14) and f[0, 7] == 4.0


def test_statnn_learns_a_label_carried_by_a_statistic_and_states_constant_labels():
    rng = np.random.default_rng(0)
    n = 200
    y = np.stack([rng.random(n) < 0.5, np.ones(n, bool)], axis=1).astype(float)
    w = rng.normal(size=(n, 400)) * (1 + y[:, :1])  # label 0 doubles the weights' spread
    x = baselines.statnn_features([w])
    model = baselines.fit_statnn(x[:150], y[:150], max_iter=30)
    p = model.predict_proba(x[150:])
    assert ((p[:, 0] > 0.5) == (y[150:, 0] > 0.5)).mean() > 0.9
    assert (p[:, 1] == 1.0).all() and model.n_parameters > 0


def test_router_finds_trees_and_routes_new_models():
    rng = np.random.default_rng(1)
    roots = rng.normal(size=(3, 500)) * 3
    tree = np.repeat(np.arange(3), 40)
    x = roots[tree] + 0.3 * rng.normal(size=(120, 500))
    router, labels = baselines.fit_router(x[::2])
    assert labels.max() == 2 and baselines.routing_accuracy(labels, tree[::2]) == 1.0
    assert baselines.routing_accuracy(router.route(x[1::2]), tree[1::2]) == 1.0


def test_routing_accuracy_penalises_split_and_merged_trees():
    truth = np.array([0, 0, 0, 0, 1, 1])
    assert baselines.routing_accuracy(np.array([0, 0, 1, 1, 2, 2]), truth) == pytest.approx(4 / 6)
    assert baselines.routing_accuracy(np.zeros(6, int), truth) == pytest.approx(4 / 6)
