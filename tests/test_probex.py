import pytest
import torch

from probex_lib.probex import DenseExpert, ProbeX, binary_accuracy_logits, fit, n_parameters


def official_count(d0, d1, r_u, r_v, r_t, d_y):
    """The official implementation's count for a layer d0 x d1 = out x in."""
    return d1 * r_u + d0 * r_v + r_v * r_u * r_t + r_t + r_t * d_y + d_y


def test_parameter_counts_follow_the_factorisation():
    m = ProbeX(64, 576, 50, r_u=16, r_v=8, r_t=32)
    assert n_parameters(m) == 576 * 16 + 64 * 8 + (16 * 8 * 32 + 32) + (32 * 50 + 50)
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


def test_parameter_count_matches_the_official_formula_on_a_non_square_layer():
    m = ProbeX(48, 20, 3, r_u=7, r_v=5, r_t=6)  # out 48, in 20; r_U != r_V
    assert n_parameters(m) == official_count(48, 20, 7, 5, 6, 3) == 20 * 7 + 48 * 5 + 5 * 7 * 6 + 6 + 6 * 3 + 3
    assert tuple(m.probes.shape) == (20, 7) and tuple(m.proj.weight.shape) == (5, 48)  # U (d_H, r_U); Vᵀ (r_V, d_W)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_forward_is_the_official_orientation_written_out(activation):
    """y = T · Σ_l M_l · σ(Vᵀ X u_l): the probes pass through the layer (input dimension)."""
    torch.manual_seed(0)
    d_w, d_h, r_u, r_v, r_t, d_y = 6, 4, 3, 2, 5, 2
    m = ProbeX(d_w, d_h, d_y, r_u, r_v, r_t, activation)
    x = torch.randn(2, d_w, d_h)
    sigma = torch.relu if activation == "relu" else (lambda t: t)
    V = m.proj.weight.T  # (d_W, r_V)
    M, m0 = m.encoder[0].weight, m.encoder[0].bias  # (r_T, r_U * r_V): block l is M_l
    T, t0 = m.head.weight, m.head.bias
    want = []
    for X in x:
        e = m0.clone()
        for l in range(r_u):
            u = m.probes[:, l]  # (d_H,)
            code = sigma(V.T @ (X @ u))  # (r_V,)
            e = e + M[:, l * r_v:(l + 1) * r_v] @ code
        want.append(T @ e + t0)
    with torch.no_grad():
        torch.testing.assert_close(m(x), torch.stack(want))


def test_factored_lora_encoding_equals_the_full_matrix():
    torch.manual_seed(0)
    px = ProbeX(12, 20, 3, r_u=5, r_v=6, r_t=7)  # B·A of shape (12, 20): out 12, in 20, rank 2
    b, a = torch.randn(4, 12, 2), torch.randn(4, 2, 20)
    torch.testing.assert_close(px.encode_factored(b, a), px.encode(b @ a))
    wide = ProbeX(48, 20, None, r_u=7, r_v=5, r_t=6, activation="relu")
    b2, a2 = torch.randn(3, 48, 4), torch.randn(3, 4, 20)
    torch.testing.assert_close(wide.encode_factored(b2, a2), wide.encode(b2 @ a2))
    with pytest.raises(ValueError, match="built for layers of shape"):
        px.encode_factored(torch.randn(4, 11, 2), a)
