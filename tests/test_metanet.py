import numpy as np
import pytest

from probex_lib.metanet import binary_accuracy, fit_linear_metanet


def test_binary_accuracy_hand_checked():
    scores = np.array([[0.9, 0.2], [0.4, 0.7]])
    y = np.array([[1, 0], [1, 1]])
    assert binary_accuracy(scores, y) == 0.75


def test_ridge_recovers_a_planted_linear_signal_in_high_dimension():
    rng = np.random.default_rng(0)
    n, d, k = 120, 2000, 6
    y = (rng.random((n, k)) < 0.5).astype(float)
    directions = rng.normal(size=(k, d))
    x = y @ directions + 3.0 * rng.normal(size=(n, d)) + 5.0  # offset: the fit must centre
    tr, va, te = slice(0, 80), slice(80, 95), slice(95, n)
    net = fit_linear_metanet(x[tr], y[tr], x[va], y[va])
    assert binary_accuracy(net.predict(x[te]), y[te]) > 0.9
    assert net.coef.shape == (d, k) and net.n_parameters == d * k + k


def test_ridge_on_unrelated_labels_stays_near_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 500))
    y = (rng.random((300, 10)) < 0.5).astype(float)
    net = fit_linear_metanet(x[:200], y[:200], x[200:230], y[200:230])
    assert abs(binary_accuracy(net.predict(x[230:]), y[230:]) - 0.5) < 0.08


def test_too_few_models_is_an_error():
    with pytest.raises(ValueError, match="at least 2 training"):
        fit_linear_metanet(np.zeros((1, 3)), np.zeros((1, 2)), np.zeros((1, 3)), np.zeros((1, 2)))
