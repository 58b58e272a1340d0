"""The generative tree: UNet, MiniLM conditioning, LoRA training in Model-J's layout, merging, sampling."""
import numpy as np
import pytest
import torch

from probex_lib import data, diffusion, lora, zoo

SIZE = {"image_size": 16, "widths": [16, 16, 16], "head_dim": 8, "cross_dim": 384, "groups": 8}
DATA = {"source": "procedural", "seed": 0, "n_train": 12, "n_test": 4}


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.safetensors"
    names = [diffusion.class_prompt(n) for n in data.PROCEDURAL_CLASSES]
    return diffusion.write_prompt_embeddings(path, names + [diffusion.IDENTIFIER_PROMPT], n_tokens=10)


@pytest.fixture(scope="module")
def base(prompts, tmp_path_factory):
    p = {"size": SIZE, "data": DATA, "classes": [0, 1, 2], "images_per_class": 12, "steps": 3, "batch_size": 8,
         "lr": 1e-3, "weight_decay": 0.0, "seed": 0, "init": "random", "prompts": str(prompts), "cond_dropout": 0.1}
    state, meta = diffusion.train_unet(p)
    return zoo.save_model(tmp_path_factory.mktemp("base") / "base.safetensors", state, {"model_id": "base"}), state


def test_minilm_token_embeddings_separate_class_names(prompts):
    e = diffusion.prompt_embedding(str(prompts), ["a red star", "a blue star", "a red star"])
    assert e.shape == (3, 10, 384)
    assert torch.equal(e[0], e[2]) and not torch.allclose(e[0], e[1])
    with pytest.raises(zoo.ZooError, match="no stored embedding for prompt"):
        diffusion.prompt_embedding(str(prompts), ["a purple dragon"])


def _lora_params(base_path, prompts, **kw):
    p = {"base": str(base_path), "size": SIZE, "data": DATA, "class_id": 3, "image_ids": [0, 2, 4, 6, 8], "rank": 4,
         "steps": 3, "lr": 5e-3, "seed": 1, "prompts": str(prompts), "prompt": diffusion.IDENTIFIER_PROMPT}
    return {**p, **kw}


def test_lora_is_saved_in_modelj_layout_and_merges_like_peft(base, prompts, tmp_path):
    from peft import inject_adapter_in_model

    base_path, base_state = base
    tensors, meta = diffusion.train_lora(_lora_params(base_path, prompts))
    again, _ = diffusion.train_lora(_lora_params(base_path, prompts))
    assert all(torch.equal(tensors[k], again[k]) for k in tensors)  # deterministic
    assert "sks" in meta["prompt"] and "red" not in meta["prompt"]  # the class is never in the prompt
    path = zoo.save_model(tmp_path / "pytorch_lora_weights.safetensors", tensors, {"class_id": 3})
    layers = lora.lora_layers(path)
    assert len(layers) == len(tensors) // 2 and any("attn2.to_k" in k for k in layers)  # cross-attention adapted
    assert all(b.shape[1] == 4 and a.shape[0] == 4 for b, a in layers.values())
    assert any(float(b.abs().max()) > 0 for b, _ in layers.values())  # B moved away from its zero init

    # the merged UNet (W + B A) computes what the peft-injected UNet computes
    peft_unet = inject_adapter_in_model(diffusion._lora_config(4), diffusion.unet_from_state(base_state, SIZE))
    own = {n: t for n, t in peft_unet.named_parameters() if "lora_" in n}
    for n, t in own.items():
        layer, which = n.split(".lora_")[0], "down" if "lora_A" in n else "up"
        t.data.copy_(tensors[f"{layer}.lora.{which}.weight"])
    merged = diffusion.unet_from_state(diffusion.merge_lora(base_state, path), SIZE)
    x, cond = torch.randn(2, 3, 16, 16), torch.randn(2, 10, 384)
    with torch.no_grad():
        torch.testing.assert_close(merged(x, 10, encoder_hidden_states=cond).sample,
                                   peft_unet(x, 10, encoder_hidden_states=cond).sample, atol=1e-4, rtol=1e-4)
    imgs = diffusion.sample(merged, cond[:1], n=2, seed=0, size=SIZE, steps=3)
    assert imgs.shape == (2, 16, 16, 3) and imgs.dtype == np.uint8


def test_adapter_for_another_model_is_named(base, tmp_path):
    _, base_state = base
    bad = zoo.save_model(tmp_path / "other" / "pytorch_lora_weights.safetensors",
                         {"mid_block.nonexistent.to_q.lora.down.weight": torch.zeros(4, 16),
                          "mid_block.nonexistent.to_q.lora.up.weight": torch.zeros(16, 4)}, {})
    with pytest.raises(zoo.ZooError, match=r"other/pytorch_lora_weights\.safetensors: adapted layer 'mid_block\.nonexistent"):
        diffusion.merge_lora(base_state, bad)
    key = next(k for k in base_state if k.endswith("attn1.to_q.weight"))
    wrong = zoo.save_model(tmp_path / "wrong" / "pytorch_lora_weights.safetensors",
                           {key.replace(".weight", ".lora.down.weight"): torch.zeros(4, 7),
                            key.replace(".weight", ".lora.up.weight"): torch.zeros(16, 4)}, {})
    with pytest.raises(zoo.ZooError, match="does not fit base"):
        diffusion.merge_lora(base_state, wrong)


def test_continued_pretraining_needs_a_matching_checkpoint(base, prompts, tmp_path):
    base_path, base_state = base
    p = {"size": {**SIZE, "widths": [8, 8, 8]}, "data": DATA, "classes": [0], "images_per_class": 4, "steps": 1,
         "batch_size": 2, "lr": 1e-3, "weight_decay": 0.0, "seed": 0, "init": str(base_path), "prompts": str(prompts),
         "cond_dropout": 0.0}
    with pytest.raises(zoo.ZooError, match=r"base\.safetensors: layer .* has shape"):
        diffusion.train_unet(p)


def test_paper_path_loads_a_tiny_local_stable_diffusion_unet(tmp_path):
    unet = diffusion.build_unet(SIZE)
    unet.save_pretrained(tmp_path / "sd" / "unet")
    loaded = diffusion.load_pretrained_unet(str(tmp_path / "sd"))
    torch.testing.assert_close(loaded.state_dict()["conv_in.weight"], unet.state_dict()["conv_in.weight"])
