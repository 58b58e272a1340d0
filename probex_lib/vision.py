"""Hugging Face vision models for Model-J's discriminative trees (ViT, MAE, ResNet).

* :func:`build` makes a model of the same transformers classes as the paper's checkpoints
  (``ViTForImageClassification``, ``ViTMAEForPreTraining``, ``ResNetForImageClassification``)
  from a small config: what the ``default`` profile pre-trains inside the kit.
* :func:`load_pretrained` is the ``paper`` path: ``from_pretrained`` of a hub name or local
  folder (google/vit-base-patch16-224, facebook/dino-vitb16, facebook/vit-mae-base,
  microsoft/resnet-101), with a new head. Tested with tiny configs saved to a local folder.
* :func:`train_vision` is a zoo ``train_fn``: pre-train a root (classification or MAE
  reconstruction) or fine-tune a classifier from a root checkpoint, deterministically.

Shapes: images enter as (batch, 3, 32, 32) floats, as in :mod:`probex_lib.train`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import train, zoo

KINDS = ("vit", "mae", "resnet")


def _vit_kwargs(size: dict) -> dict:
    return dict(image_size=size.get("image_size", 32), patch_size=size["patch_size"], hidden_size=size["hidden_size"],
                num_hidden_layers=size["layers"], num_attention_heads=size["heads"], intermediate_size=size["mlp"])


def build(kind: str, n_classes: int, size: dict) -> nn.Module:
    """A randomly initialised model of ``kind`` ("vit", "mae" for pre-training, "resnet")."""
    from transformers import (ResNetConfig, ResNetForImageClassification, ViTConfig, ViTForImageClassification,
                              ViTMAEConfig, ViTMAEForPreTraining)

    if kind == "vit":
        return ViTForImageClassification(ViTConfig(**_vit_kwargs(size), num_labels=n_classes))
    if kind == "mae":
        return ViTMAEForPreTraining(ViTMAEConfig(
            **_vit_kwargs(size), decoder_hidden_size=size.get("decoder_hidden", 32),
            decoder_num_hidden_layers=size.get("decoder_layers", 1), decoder_num_attention_heads=size["heads"],
            decoder_intermediate_size=size.get("decoder_mlp", 64), mask_ratio=size.get("mask_ratio", 0.75)))
    if kind == "resnet":
        return ResNetForImageClassification(ResNetConfig(
            embedding_size=size["embedding"], hidden_sizes=list(size["hidden_sizes"]), depths=list(size["depths"]),
            num_labels=n_classes, downsample_in_first_stage=False))
    raise ValueError(f"unknown model kind {kind!r}; valid kinds: {list(KINDS)}")


def classifier_for(kind: str, n_classes: int, size: dict) -> nn.Module:
    """The classifier fine-tuned from a root of ``kind`` (an MAE root gives a ViT classifier)."""
    return build("vit" if kind == "mae" else kind, n_classes, size)


def load_pretrained(name_or_path: str, kind: str, n_classes: int) -> nn.Module:
    """``from_pretrained`` with a fresh ``n_classes`` head (MAE: its encoder in a ViT classifier)."""
    from transformers import ResNetForImageClassification, ViTConfig, ViTForImageClassification, ViTMAEModel

    if kind == "vit":
        return ViTForImageClassification.from_pretrained(name_or_path, num_labels=n_classes, ignore_mismatched_sizes=True)
    if kind == "resnet":
        return ResNetForImageClassification.from_pretrained(name_or_path, num_labels=n_classes, ignore_mismatched_sizes=True)
    if kind == "mae":
        enc = ViTMAEModel.from_pretrained(name_or_path, mask_ratio=0.0)
        cfg = ViTConfig(**{k: getattr(enc.config, k) for k in ("image_size", "patch_size", "hidden_size", "num_hidden_layers",
                                                                 "num_attention_heads", "intermediate_size")}, num_labels=n_classes)
        clf = ViTForImageClassification(cfg)
        _load_encoder(clf, {f"vit.{k}": v for k, v in enc.state_dict().items()}, name_or_path)
        return clf
    raise ValueError(f"unknown model kind {kind!r}; valid kinds: {list(KINDS)}")


def hub_kind(name_or_path: str) -> str:
    """The kit's kind ("vit", "mae" or "resnet") of a hub checkpoint, read from its config's
    ``model_type`` (never guessed from the name). ViT variants (DINO, MSN, in21k) are "vit"."""
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(name_or_path).model_type
    kinds = {"vit_mae": "mae", "resnet": "resnet", "vit": "vit", "vit_msn": "vit", "dinov2": "vit"}
    if model_type not in kinds:
        raise ValueError(f"{name_or_path}: model_type {model_type!r} is not one the kit fine-tunes; "
                         f"expected one of {sorted(kinds)}")
    return kinds[model_type]


def _load_encoder(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every backbone tensor of ``state`` into ``model`` (the head stays new); checks coverage."""
    zoo.load_checked(model, state, source, [k for k in model.state_dict() if not k.startswith("classifier.")])


def _head(model: nn.Module) -> nn.Linear:
    """The final linear layer of a transformers classifier (ViT: ``classifier``; ResNet: ``classifier.1``)."""
    linears = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise ValueError(f"expected one linear layer in {type(model).__name__}.classifier, found {len(linears)}")
    return linears[0]


def probe_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int, seed: int,
               steps: int = 200, lr: float = 1e-2, batch: int = 256) -> None:
    """Linear-probe initialisation of the head (the first stage of LP-FT, Kumar et al. 2022).

    Fits the head on the frozen backbone's features of x: (n, 3, h, w) with labels y: (n,) in
    0..n_classes-1, by full-batch Adam on cross-entropy, in place. With a probed head the
    backbone's fine-tuning gradient depends on the model's classes rather than on a random head.
    """
    head = _head(model)
    feats: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inp, _out: feats.append(inp[0].detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for b in range(0, len(x), batch):
                model(pixel_values=x[b:b + batch])
    finally:
        hook.remove()
        model.train(was_training)
    f = torch.cat(feats)
    torch.manual_seed(seed)
    w = torch.zeros(n_classes, f.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.Adam([w, bias], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(f @ w.T + bias, y).backward()
        opt.step()
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(bias)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=x).logits


def train_vision(p: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Pre-train (``p["objective"]`` = "classify" or "mae") or fine-tune (``p["init"]`` a root file).

    Keys: kind, size, classes, data, images_per_class, epochs, lr, batch_size, weight_decay,
    seed, init, objective, flip, and optionally head_init ("random", the default, or "probe":
    :func:`probe_head` before fine-tuning). Returns (state dict, metadata with test_accuracy or mae_loss).
    """
    torch.manual_seed(int(p["seed"]))
    g = torch.Generator().manual_seed(int(p["seed"]))
    classes = np.asarray(p["classes"], dtype=np.int64)
    x, y, xt, yt, class_names = train.model_data(p)
    x, xt = x.contiguous(), xt.contiguous()

    mae = p["objective"] == "mae"
    if p.get("hub"):  # paper: a hub checkpoint (its own input size); a root is stored untrained
        model = load_pretrained(p["hub"], p["kind"], len(classes))
        side = getattr(model.config, "image_size", 224)
        x, xt = (F.interpolate(t, size=side, mode="bilinear", align_corners=False) for t in (x, xt))
        if p["objective"] == "hub":
            state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
            return state, {**p, "architecture": type(model).__name__,
                           "n_parameters": int(sum(t.numel() for t in model.parameters()))}
    else:
        model = build("mae", 0, p["size"]) if mae else classifier_for(p["kind"], len(classes), p["size"])
    if p["init"] != "random":
        _load_encoder(model, zoo.load_tensors(p["init"]), p["init"])
    if not mae and p.get("head_init", "random") == "probe":
        probe_head(model, x, y, len(classes), int(p["seed"]))
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    bs = p["batch_size"]
    steps = max(1, len(y) // bs) * p["epochs"]
    model.train()
    step, loss = 0, torch.tensor(float("nan"))
    while step < steps:
        perm = torch.randperm(len(y), generator=g)
        for b in range(max(1, len(y) // bs)):
            if step >= steps:
                break
            sel = perm[b * bs:(b + 1) * bs]
            xb = train.random_hflip(x[sel], g) if p.get("flip", True) else x[sel]
            if mae:
                noise = torch.rand(len(sel), (p["size"].get("image_size", 32) // p["size"]["patch_size"]) ** 2, generator=g)
                loss = model(pixel_values=xb, noise=noise).loss
            else:
                loss = F.cross_entropy(_logits(model, xb), y[sel])
            train.optimiser_step(opt, loss, train.lr_at(step, steps, p["lr"], p.get("warmup", 0.1)))
            step += 1
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged (loss {loss.item()}) for seed {p['seed']}, lr {p['lr']}")
    model.eval()
    meta: dict[str, Any] = {**p, "architecture": type(model).__name__, "final_loss": loss.item(),
                            "n_parameters": int(sum(t.numel() for t in model.parameters()))}
    if not mae:
        meta["class_names"] = class_names
        meta["test_accuracy"] = train.evaluate(model, xt, yt, forward=lambda b: _logits(model, b))
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    return state, meta
