import pytest
import torch

from probex_lib.probex import DenseExpert, ProbeX, binary_accuracy_logits, fit, n_parameters


def test_parameter_counts_follow_the_factorisation():
    m = ProbeX(64, 576, 50, r_u=16, r_v=8, r_t=32)
    assert n_parameters(m) == 64 * 16 + 576 * 8 + (16 * 8 * 32 + 32) + (32 * 50 + 50)
    assert n_parameters(DenseExpert(64, 576, 50)) == 64 * 576 * 50 + 50
    with pytest.raises(ValueError, match=r"built for layers of shape \(64, 576\), got \(64, 575\)"):
        m(torch.zeros(2, 64, 575))


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_probex_learns_labels_planted_in_the_weights(activation):
    g = torch.Generator().manual_seed(0)
    n, dw, dh, k = 300, 12, 20, 6
    y = (torch.rand(n, k, generator=g) < 0.5).float()
    dirs = torch.randn(k, dw, dh, generator=g)
    x = torch.einsum("nk,kwh->nwh", y, dirs) + 2.0 * torch.randn(n, dw, dh, generator=g) + 3.0
    tr, va, te = slice(0, 200), slice(200, 240), slice(240, n)
    torch.manual_seed(0)  # the initialisation must not depend on what ran before in this process
    res = fit(ProbeX(dw, dh, k, 16, 16, 16, activation=activation), x[tr], y[tr], x[va], y[va], epochs=60, seed=0)
    with torch.no_grad():
        acc = binary_accuracy_logits(res.model(x[te]), y[te])
    assert acc > 0.9, acc
    assert 0 <= res.best_epoch < 60 and len(res.history) == 60
    shuffled = y[torch.randperm(n, generator=g)]
    res0 = fit(ProbeX(dw, dh, k, 16, 16, 16), x[tr], shuffled[tr], x[va], shuffled[va], epochs=30, seed=0)
    with torch.no_grad():
        assert binary_accuracy_logits(res0.model(x[te]), shuffled[te]) < 0.7


def test_factored_lora_encoding_equals_the_full_matrix():
    torch.manual_seed(0)
    px = ProbeX(12, 20, 3, r_u=5, r_v=6, r_t=7)
    b, a = torch.randn(4, 12, 2), torch.randn(4, 2, 20)
    torch.testing.assert_close(px.encode_factored(b, a), px.encode(b @ a))
    with pytest.raises(ValueError, match="built for layers of shape"):
        px.encode_factored(torch.randn(4, 11, 2), a)
