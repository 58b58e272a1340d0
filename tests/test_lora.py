import pytest
import torch
from safetensors.torch import save_file

from probex_lib import lora, zoo


def _adapter(r=4, d_out=6, d_in=5, style="modelj", seed=0):
    g = torch.Generator().manual_seed(seed)
    b, a = torch.randn(d_out, r, generator=g), torch.randn(r, d_in, generator=g)
    if style == "modelj":
        keys = {"unet.down.attn1.to_q.lora.up.weight": b, "unet.down.attn1.to_q.lora.down.weight": a}
    else:
        keys = {"base_model.model.vit.layers.0.q_proj.lora_B.weight": b, "base_model.model.vit.layers.0.q_proj.lora_A.weight": a}
    return keys, b, a


def test_reads_both_layouts_and_recovers_b_times_a(tmp_path):
    for style, name in (("modelj", "pytorch_lora_weights.safetensors"), ("peft", "adapter_model.safetensors")):
        keys, b, a = _adapter(style=style)
        folder = tmp_path / style / "model_0"
        folder.mkdir(parents=True)
        save_file(keys, str(folder / name), metadata={"imagenet_class_id": "7"})
        layers = lora.lora_layers(folder / name)
        (layer, (bb, aa)), = layers.items()
        torch.testing.assert_close(lora.delta(bb, aa), b @ a)
    df = lora.scan_lora_folder(tmp_path)
    assert df["model_id"].tolist() == ["modelj/model_0", "peft/model_0"]
    assert df["imagenet_class_id"].tolist() == [7, 7]


def test_bad_adapters_are_named(tmp_path):
    keys, _, _ = _adapter()
    keys.pop("unet.down.attn1.to_q.lora.down.weight")
    save_file(keys, str(tmp_path / "a.safetensors"))
    with pytest.raises(zoo.ZooError, match=r"a\.safetensors: layer 'unet.down.attn1.to_q' has no LoRA A \(down\)"):
        lora.lora_layers(tmp_path / "a.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "b.safetensors"))
    with pytest.raises(zoo.ZooError, match=r"b\.safetensors: no LoRA tensors"):
        lora.lora_layers(tmp_path / "b.safetensors")
    keys, _, _ = _adapter()
    keys["unet.down.attn1.to_q.lora.down.weight"] = torch.zeros(3, 5)
    save_file(keys, str(tmp_path / "c.safetensors"))
    with pytest.raises(zoo.ZooError, match="do not multiply"):
        lora.lora_layers(tmp_path / "c.safetensors")
    with pytest.raises(zoo.ZooError, match="no LoRA files found"):
        lora.find_lora_files(tmp_path / "empty_dir_that_does_not_exist")
