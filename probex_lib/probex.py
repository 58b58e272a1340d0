"""ProbeX, the probing expert (ProbeX paper, Eq. 4 with the ReLU of Sec. 4.3).

    y = T · Σ_l M_l · σ(Vᵀ X u_l)

X: one layer of one model as a matrix (d_W, d_H) = (out, in), as loaded. Orientation: the
official one, the probes pass *through the layer*: each probe u_l lives in the layer's input
dimension d_H, its response X·u_l in the output dimension d_W, and the shared projection V
acts on the output dimension. Conv kernels (out, in, k, k) are read as (out, in·k·k): the
probes go over in·k·k (each probe is an (in, k, k) input patch, X·u_l the kernel's response to
it), V over the out channels. Vectors are
columns; LoRA layers are X = B·A. Learned: probes U = [u_1..u_rU] (d_H, r_U), the shared
projection V (d_W, r_V), the per-probe encoders M_l (r_V -> r_T each; one linear map over the
concatenated probe codes, with a bias, is the same thing) and the head T (r_T -> d_Y). σ is
ReLU, or the identity for the linear variant. Parameters (depth 1, with head), as in the
official implementation: d_H·r_U + d_W·r_V + r_V·r_U·r_T + r_T + r_T·d_Y + d_Y.

Earlier kit versions applied the same model to the transpose (Xᵀu: probes over d_W, V over
d_H). Files holding ProbeX weights or embeddings record :data:`ORIENTATION`; files without it
are refused (:func:`probex_lib.aligned.read_aligned`) or rebuilt (the search cache).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ORIENTATION = "official-v2"  # recorded in files holding ProbeX weights or outputs (probes over d_H, V over d_W)


class ProbeX(nn.Module):
    """ProbeX for inputs x: (batch, d_W, d_H) -> (batch, d_Y); with ``d_y=None`` no head T, so
    the output is the encoding (batch, r_T) (the text-aligned model adds its own head)."""

    def __init__(self, d_w: int, d_h: int, d_y: int | None, r_u: int = 128, r_v: int = 128, r_t: int = 128,
                 activation: str = "relu", encoder_depth: int = 1):
        super().__init__()
        if activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', got {activation!r}")
        self.shape = (d_w, d_h)
        self.probes = nn.Parameter(torch.randn(d_h, r_u) / d_h**0.5)  # U: (d_H, r_U), in the layer's input space
        self.proj = nn.Linear(d_w, r_v, bias=False)  # V (weight Vᵀ: (r_V, d_W)), on the output space
        act: nn.Module = nn.ReLU() if activation == "relu" else nn.Identity()
        self.act = act
        layers: list[nn.Module] = [nn.Linear(r_u * r_v, r_t)]  # the M_l, stacked
        for _ in range(encoder_depth - 1):  # Appendix E.2: deeper encoders
            layers += [copy.deepcopy(act), nn.Linear(r_t, r_t)]
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Linear(r_t, d_y) if d_y else nn.Identity()  # T (none: the encoder alone)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Model encodings e: (batch, r_T)."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"ProbeX built for layers of shape {self.shape}, got {tuple(x.shape[1:])}")
        z = torch.einsum("bwh,hu->buw", x, self.probes)  # probe responses X·u_l: (batch, r_U, d_W)
        codes = self.act(self.proj(z))  # Vᵀ X u_l: (batch, r_U, r_V)
        return self.encoder(codes.flatten(1))

    def encode_factored(self, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The same encodings for a LoRA layer X = B·A without forming X: b (batch, d_W, r),
        a (batch, r, d_H). Vᵀ(BA)u = (VᵀB)(Au): O(r·(d_H·r_U + d_W·r_V)) per model instead of
        O(d_W·d_H·r_U + d_W·r_U·r_V) (no input normalisation here; see benchmarks/bench_aligned.py)."""
        if (b.shape[1], a.shape[2]) != self.shape or b.shape[2] != a.shape[1]:
            raise ValueError(f"ProbeX built for layers of shape {self.shape}, got B {tuple(b.shape[1:])} and A {tuple(a.shape[1:])}")
        au = torch.einsum("brh,hu->bur", a, self.probes)  # (A u_l)ᵀ: (batch, r_U, r)
        vb = self.proj(b.transpose(1, 2))  # (Vᵀ B)ᵀ: (batch, r, r_V)
        codes = self.act(au @ vb)  # (batch, r_U, r) @ (batch, r, r_V) -> (batch, r_U, r_V)
        return self.encoder(codes.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))


class DenseExpert(nn.Module):
    """The Dense expert (Eq. 1): one linear layer on the flattened layer. x: (batch, d_W, d_H)."""

    def __init__(self, d_w: int, d_h: int, d_y: int):
        super().__init__()
        self.linear = nn.Linear(d_w * d_h, d_y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def n_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


@dataclass
class FitResult:
    model: nn.Module
    best_epoch: int
    best_val: float
    history: list[float]  # validation metric per epoch


def binary_accuracy_logits(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over models and labels of (logit > 0) == y."""
    return float(((logits > 0) == (y > 0.5)).float().mean())


OPTIMIZER = torch.optim.Adam  # the paper's optimiser; P-impl reads it from here
SELECTION = "best epoch on validation"  # what fit keeps (the layer is chosen on validation by experts.tree_experts)


def fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
        epochs: int = 500, lr: float = 1e-3, weight_decay: float = 1e-5, batch_size: int = 64, seed: int = 0,
        loss_fn: Callable | None = None, metric: Callable | None = None, normalise: bool = True) -> FitResult:
    """Train ``model`` with Adam; keep the weights of the best validation epoch.

    x_*: (n, d_W, d_H) float, loaded once and kept in memory for all epochs; y_*: (n, d_Y).
    Defaults: BCE with logits and binary accuracy (multi-label class prediction). With
    ``normalise`` the inputs are centred and scaled by the training set's statistics (stored
    in the returned model as buffers, applied inside forward).
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    loss_fn = loss_fn or nn.functional.binary_cross_entropy_with_logits
    metric = metric or binary_accuracy_logits
    if normalise:
        model = Normalised(model, x_train.mean(0), x_train.std() + 1e-12)
    opt = OPTIMIZER(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-np.inf, -1, None)
    history = []
    n = len(x_train)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = metric(model(x_val), y_val)
        history.append(val)
        if val > best[0]:
            best = (val, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(model, best[1], best[0], history)


class Normalised(nn.Module):
    """Wraps a model: x -> model((x - mean) / scale), statistics from the training set."""

    def __init__(self, inner: nn.Module, mean: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.inner = inner
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("scale", scale.detach().clone().reshape(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner((x - self.mean) / self.scale)
