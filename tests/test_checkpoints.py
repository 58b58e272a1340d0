"""Model entries from the folders users hand us, on tiny ViT / UNet / LoRA fixtures."""
import json
import resource
import struct

import pytest
import safetensors.torch
import torch
from safetensors.torch import save_file

from probex_lib import checkpoints as ck
from probex_lib import zoo

D = 8
Q0 = "vit.encoder.layer.0.attention.attention.query"
V1 = "vit.encoder.layer.1.attention.attention.value"
PATCH = "vit.embeddings.patch_embeddings.projection"
CONFIG = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": D}


def _vit(seed=0, n_cls=3):
    """A 2-layer ViT-style state dict with Hugging Face key names."""
    g = torch.Generator().manual_seed(seed)
    t = {f"{PATCH}.weight": torch.randn(D, 3, 2, 2, generator=g), f"{PATCH}.bias": torch.randn(D, generator=g),
         "vit.embeddings.cls_token": torch.randn(1, 1, D, generator=g)}
    for i in range(2):
        p = f"vit.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            t[f"{p}attention.attention.{n}.weight"] = torch.randn(D, D, generator=g)
            t[f"{p}attention.attention.{n}.bias"] = torch.randn(D, generator=g)
        t[f"{p}intermediate.dense.weight"] = torch.randn(2 * D, D, generator=g)
        t[f"{p}output.dense.weight"] = torch.randn(D, 2 * D, generator=g)
    t.update({"vit.layernorm.weight": torch.ones(D), "classifier.weight": torch.randn(n_cls, D, generator=g),
              "classifier.bias": torch.zeros(n_cls)})
    return t


def _hf(d, tensors, shards=0, index=True, prefix="model", config=CONFIG, readme=None):
    """A save_pretrained folder: one file, or ``shards`` shards (round robin over sorted keys)."""
    d.mkdir(parents=True, exist_ok=True)
    if shards:
        names = [f"{prefix}-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
        wm = {k: names[j % shards] for j, k in enumerate(sorted(tensors))}
        for n in names:
            save_file({k: v for k, v in tensors.items() if wm[k] == n}, str(d / n), metadata={"format": "pt"})
        if index:
            (d / f"{prefix}.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": wm}))
    else:
        save_file(tensors, str(d / f"{prefix}.safetensors"), metadata={"format": "pt"})
    if config:
        (d / "config.json").write_text(json.dumps(config))
    if readme:
        (d / "README.md").write_text(readme)
    return d


def _peft(d, base_name, r=2, alpha=4, layers=(Q0, V1), extra=None, seed=1, **cfg):
    """A peft adapter folder; returns {layer: (B, A)}."""
    g = torch.Generator().manual_seed(seed)
    d.mkdir(parents=True, exist_ok=True)
    keys, out = {}, {}
    for layer in layers:
        b, a = torch.randn(D, r, generator=g), torch.randn(r, D, generator=g)
        keys[f"base_model.model.{layer}.lora_A.weight"], keys[f"base_model.model.{layer}.lora_B.weight"] = a, b
        out[layer] = (b, a)
    save_file({**keys, **(extra or {})}, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": alpha, "base_model_name_or_path": base_name,
                                                       "target_modules": ["query", "value"], "rank_pattern": {}, "alpha_pattern": {}, **cfg}))
    return out


def _by_id(entries):
    return {e.id: e for e in entries}


# --------------------------------------------------------------------------- layouts


def test_single_files_anywhere_under_the_folder(tmp_path):
    save_file(_vit(0), str(tmp_path / "root.safetensors"), metadata={"note": "root"})
    (tmp_path / "runs" / "lr1e-4").mkdir(parents=True)
    save_file(_vit(1), str(tmp_path / "runs" / "lr1e-4" / "ft.safetensors"))
    (tmp_path / "notes.txt").write_text("not a model")
    entries = ck.discover(tmp_path)
    assert [e.id for e in entries] == ["root", "runs/lr1e-4/ft"]
    root = entries[0]
    assert root.kind == "full" and root.base is None and root.metadata == {"note": "root"} and root.scaling == 1.0
    index = ck.tensor_index(root)
    assert index[f"{Q0}.weight"] == (tmp_path / "root.safetensors", (D, D)) and len(index) == len(_vit())
    t = ck.read_tensor(root, f"{PATCH}.weight", index)
    assert t.dtype == torch.float64 and torch.equal(t, _vit(0)[f"{PATCH}.weight"].double())
    with pytest.raises(ck.CheckpointError, match=r"root\.safetensors: model 'root' has no tensor 'vit\.pooler\.weight'"):
        ck.read_tensor(root, "vit.pooler.weight")


def test_save_pretrained_folder_with_config_readme_and_pickled_twins(tmp_path):
    readme = "---\nlicense: mit\nbase_model:\n  - google/vit-base-patch16-224 # the root\n  - other/model\ntags: [vit]\n---\n# card\n"
    d = _hf(tmp_path / "vit-ft", _vit(), readme=readme)
    for twin in ("pytorch_model.bin", "training_args.bin", "optimizer.pt", "rng_state.pth"):
        (d / twin).write_bytes(b"\x80\x04 never unpickled")
    (e,) = ck.discover(tmp_path)
    assert e.id == "vit-ft" and e.files == (d / "model.safetensors",) and e.kind == "full"
    assert e.declared_base == "google/vit-base-patch16-224"
    assert e.metadata == {"format": "pt", "model_type": "vit", "architectures": "ViTForImageClassification"}
    (alone,) = ck.discover(d)  # the folder itself is the input: its name is the id
    assert alone.id == "vit-ft"
    assert ck.discover(d / "model.safetensors")[0].id == "vit-ft"
    assert ck.readme_base_model(_text(tmp_path / "r1.md", "---\nbase_model: ['a/b', c]\n---\n")) == "a/b"
    assert ck.readme_base_model(_text(tmp_path / "r2.md", '---\nbase_model: "org/x"  # c\nbase_model_relation: adapter\n---\n')) == "org/x"
    assert ck.readme_base_model(_text(tmp_path / "r3.md", "# no front matter\nbase_model: x\n")) is None


def _text(path, text):
    path.write_text(text)
    return path


def test_shards_with_index_are_merged_and_checked(tmp_path):
    w = _vit()
    d = _hf(tmp_path / "big", w, shards=3)
    (e,) = ck.discover(tmp_path)
    assert e.id == "big" and [f.name for f in e.files] == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = ck.tensor_index(e)
    assert set(index) == set(w) and len({f for f, _ in index.values()}) == 3
    key = sorted(w)[2]  # in the third shard
    assert index[key][0].name == "model-00003-of-00003.safetensors"
    assert torch.equal(ck.read_tensor(e, key, index), w[key].double())
    assert ck.discover(d / "model.safetensors.index.json")[0].files == e.files  # the index file as input: its model

    save_file({"x": torch.zeros(1)}, str(d / "model-00001-of-00004.safetensors"))
    with pytest.raises(ck.CheckpointError, match=r"index\.json: does not name 'model-00001-of-00004\.safetensors', a shard beside it"):
        ck.discover(tmp_path)
    (d / "model-00001-of-00004.safetensors").unlink()
    wm = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
    wm[key] = "model-00001-of-00003.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    with pytest.raises(ck.CheckpointError, match=rf"model\.safetensors\.index\.json: tensor '{key}' is not in model-00001-of-00003"):
        ck.discover(tmp_path)
    (d / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(ck.CheckpointError, match=r"big/model\.safetensors\.index\.json: shard 'model-00002-of-00003\.safetensors' is missing"):
        ck.discover(tmp_path)

    d2 = _hf(tmp_path / "counts", w, shards=3)
    wm = {k: v for k, v in json.loads((d2 / "model.safetensors.index.json").read_text())["weight_map"].items() if "-00003-of" not in v}
    (d2 / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    (d2 / "model-00003-of-00003.safetensors").unlink()
    with pytest.raises(ck.CheckpointError, match=r"counts/model\.safetensors\.index\.json: names 2 shards, but their file names count \[3\]"):
        ck.discover(d2)


def test_shards_without_index_and_folders_holding_two_checkpoints(tmp_path):
    d = _hf(tmp_path / "noindex", _vit(), shards=2, index=False)
    assert ck.discover(tmp_path)[0].id == "noindex"
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ck.CheckpointError, match=r"noindex/model-00002-of-00002\.safetensors: shard missing \(1 of 2 shards of 'model' present\)"):
        ck.discover(tmp_path)
    save_file({f"{Q0}.weight": torch.zeros(D, D)}, str(d / "model-00002-of-00002.safetensors"))
    with pytest.raises(ck.CheckpointError, match=rf"model-00002-of-00002\.safetensors: tensor '{Q0}.weight' is also in .*model-00001-of-00002"):
        ck.discover(tmp_path)
    save_file({"x": torch.zeros(1)}, str(d / "model-00001-of-00003.safetensors"))
    with pytest.raises(ck.CheckpointError, match=r"noindex: shards of 2 different saves of 'model'"):
        ck.discover(tmp_path)
    two = _hf(tmp_path / "two", _vit())
    save_file({"x": torch.zeros(2)}, str(two / "adapter_model.safetensors"))
    with pytest.raises(ck.CheckpointError, match=r"two: holds 2 save_pretrained checkpoints \(adapter_model\.safetensors, model\.safetensors\)"):
        ck.discover(two)


def test_diffusers_folders_single_and_sharded(tmp_path):
    g = torch.Generator().manual_seed(0)
    unet = {"conv_in.weight": torch.randn(4, 4, 3, 3, generator=g),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight": torch.randn(D, D, generator=g),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight": torch.randn(D, D, generator=g)}
    cfg = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.42.1"}
    _hf(tmp_path / "sd" / "unet", unet, prefix="diffusion_pytorch_model", config=cfg)
    (tmp_path / "sd" / "model_index.json").write_text("{}")
    _hf(tmp_path / "sd-big" / "unet", unet, shards=2, prefix="diffusion_pytorch_model", config=cfg)
    a, b = ck.discover(tmp_path)
    assert (a.id, b.id) == ("sd-big/unet", "sd/unet") and a.metadata["_class_name"] == "UNet2DConditionModel"
    assert len(a.files) == 2 and ck.architecture_groups([a, b]) == {next(iter(ck.architecture_groups([b]))): ["sd-big/unet", "sd/unet"]}


def test_kit_zoo_layout_and_its_lora_zoo(tmp_path):
    """Our zoos: models/<id>.safetensors with JSON metadata; zoo.json, manifest.csv, prompts and
    partial writes beside them are not models; the generative zoo's LoRAs name their base file."""
    diff = tmp_path / "diffusion-abc"
    base = {"down_blocks.0.attn1.to_q.weight": torch.eye(2), "down_blocks.0.attn1.to_k.weight": torch.ones(2, 2)}
    for mid in ("sd_stage1", "sd_stage2"):
        zoo.save_model(zoo.model_path(diff, mid), base, {"model_id": mid, "parent": None if mid == "sd_stage1" else "sd_stage1"})
    zoo.ensure_settings(diff, {"seed": 0})
    zoo.build_manifest(diff)
    save_file({"emb": torch.zeros(3, 4)}, str(diff / "prompts.safetensors"))
    (diff / zoo.MODELS_SUBDIR / ".sd_stage3.safetensors.x1.tmp").write_bytes(b"half")
    (diff / zoo.MODELS_SUBDIR / "sd_stage3.safetensors.tmp").write_bytes(b"half")
    entries = ck.discover(diff)
    assert [e.id for e in entries] == ["models/sd_stage1", "models/sd_stage2"]
    assert json.loads(entries[1].metadata["parent"]) == "sd_stage1"

    gen = tmp_path / "generative-fine-abc"
    lora = {"down_blocks.0.attn1.to_q.lora.down.weight": torch.tensor([[1.0, 2.0]]),  # A (1, 2)
            "down_blocks.0.attn1.to_q.lora.up.weight": torch.tensor([[1.0], [0.0]])}  # B (2, 1)
    zoo.save_model(zoo.model_path(gen, "fine-c000-00"), lora,
                   {"model_id": "fine-c000-00", "base": str(zoo.model_path(diff, "sd_stage2").resolve()), "rank": 1})
    (ad,) = ck.discover(gen)
    assert ad.kind == "adapter" and ad.base == str(zoo.model_path(diff, "sd_stage2").resolve()) and ad.scaling == 1.0
    assert ad.base_files == (zoo.model_path(diff, "sd_stage2").resolve(),)
    # W + B @ A = I + [[1, 2], [0, 0]]
    assert ck.read_tensor(ad, "down_blocks.0.attn1.to_q.weight").tolist() == [[2.0, 2.0], [0.0, 1.0]]
    assert ck.read_tensor(ad, "down_blocks.0.attn1.to_k.weight").tolist() == [[1.0, 1.0], [1.0, 1.0]]
    both = _by_id(ck.discover([diff, gen]))  # several inputs: ids start with the folder name
    assert sorted(both) == ["diffusion-abc/models/sd_stage1", "diffusion-abc/models/sd_stage2", "generative-fine-abc/models/fine-c000-00"]
    assert both["generative-fine-abc/models/fine-c000-00"].base == "diffusion-abc/models/sd_stage2"


def test_hugging_face_cache_snapshots_are_named_by_their_repo(tmp_path):
    repo = tmp_path / "hub" / "models--org--vit-tiny"
    _hf(repo / "snapshots" / "abc123", _vit())
    _hf(repo / "snapshots" / "old456", _vit(1))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    _peft(tmp_path / "hub" / "adapters" / "a0", "org/vit-tiny")
    ids = _by_id(ck.discover(tmp_path / "hub"))
    assert sorted(ids) == ["adapters/a0", "models--org--vit-tiny", "models--org--vit-tiny/snapshots/old456"]
    assert ids["adapters/a0"].base == "models--org--vit-tiny"


# --------------------------------------------------------------------------- adapters


def test_peft_adapter_reads_base_plus_scaled_update_and_replaced_head(tmp_path):
    w = _vit(0)
    _hf(tmp_path / "vit-tiny", w)
    g = torch.Generator().manual_seed(5)
    head = torch.randn(5, D, generator=g)
    conv_a, conv_b = torch.randn(2, 3, 2, 2, generator=g), torch.randn(D, 2, 1, 1, generator=g)
    ups = _peft(tmp_path / "adapters" / "cats", "/somewhere/else/vit-tiny", r=2, alpha=4,
                extra={"base_model.model.classifier.weight": head, f"base_model.model.{PATCH}.lora_A.weight": conv_a,
                       f"base_model.model.{PATCH}.lora_B.weight": conv_b})
    ids = _by_id(ck.discover(tmp_path))
    ad = ids["adapters/cats"]
    assert (ad.kind, ad.base, ad.declared_base, ad.scaling) == ("adapter", "vit-tiny", "/somewhere/else/vit-tiny", 2.0)
    assert ad.base_files == ids["vit-tiny"].files and ad.metadata == {"peft_type": "LORA", "r": "2", "lora_alpha": "4"}
    index = ck.tensor_index(ad)
    assert index["classifier.weight"] == (ad.files[0], (5, D)) and index[f"{Q0}.weight"][1] == (D, D)
    b, a = ups[Q0]
    torch.testing.assert_close(ck.read_tensor(ad, f"{Q0}.weight", index), w[f"{Q0}.weight"].double() + 2.0 * b.double() @ a.double())
    conv = w[f"{PATCH}.weight"].double() + 2.0 * (conv_b.flatten(1) @ conv_a.flatten(1)).double().reshape(D, 3, 2, 2)
    torch.testing.assert_close(ck.read_tensor(ad, f"{PATCH}.weight"), conv)
    assert torch.equal(ck.read_tensor(ad, "classifier.weight"), head.double())
    untouched = "vit.encoder.layer.0.intermediate.dense.weight"
    assert torch.equal(ck.read_tensor(ad, untouched), w[untouched].double())
    up = ck.lora_updates(ad)
    assert sorted(up) == sorted([f"{Q0}.weight", f"{V1}.weight", f"{PATCH}.weight"])
    torch.testing.assert_close(up[f"{Q0}.weight"][0] @ up[f"{Q0}.weight"][1], 2.0 * (b @ a).double())


def test_hand_checked_merge_with_rslora_scaling(tmp_path):
    save_file({"q.weight": torch.eye(2)}, str(tmp_path / "base.safetensors"))
    d = tmp_path / "ads" / "m0"
    d.mkdir(parents=True)
    save_file({"base_model.model.q.lora_A.weight": torch.tensor([[1.0, 2.0]]), "base_model.model.q.lora_B.weight": torch.tensor([[1.0], [0.0]])},
              str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": True}))
    (ad,) = ck.discover(tmp_path / "ads", base=tmp_path / "base.safetensors")
    assert ad.scaling == 4.0 and ad.base == str(tmp_path / "base.safetensors")  # 8 / sqrt(4)
    assert ck.read_tensor(ad, "q.weight").tolist() == [[5.0, 8.0], [0.0, 1.0]]  # I + 4 * [[1, 2], [0, 0]]


def test_diffusers_lora_finds_the_pipeline_unet_from_its_card(tmp_path):
    unet = {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight": torch.zeros(D, D)}
    _hf(tmp_path / "stable-diffusion-tiny" / "unet", unet, prefix="diffusion_pytorch_model", config={"_class_name": "UNet2DConditionModel"})
    d = tmp_path / "loras" / "dog"
    d.mkdir(parents=True)
    layer = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    a, b = torch.ones(2, D), torch.ones(D, 2)
    meta = {"format": "pt", "lora_adapter_metadata": json.dumps({"unet.r": 2, "unet.lora_alpha": 1, "unet.peft_type": "LORA"})}
    save_file({f"{layer}.lora_A.weight": a, f"{layer}.lora_B.weight": b}, str(d / "pytorch_lora_weights.safetensors"), metadata=meta)
    (d / "README.md").write_text("---\nbase_model: acme/stable-diffusion-tiny\ninstance_prompt: a photo of sks dog\n---\n")
    ad = _by_id(ck.discover(tmp_path))["loras/dog"]
    assert (ad.base, ad.declared_base, ad.scaling) == ("stable-diffusion-tiny/unet", "acme/stable-diffusion-tiny", 0.5)
    assert ck.read_tensor(ad, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight").unique().tolist() == [1.0]  # 0.5 * 2


def test_adapter_base_resolution_errors(tmp_path):
    _hf(tmp_path / "vit-tiny", _vit())
    _peft(tmp_path / "ads" / "a0", "google/vit-huge")
    with pytest.raises(ck.CheckpointError, match=r"a0/adapter_model\.safetensors: 'a0' is a LoRA adapter without its base: adapter_config\.json "
                                                 r"names base 'google/vit-huge', which is not in the folder; pass --base"):
        ck.discover(tmp_path / "ads")
    with pytest.raises(ck.CheckpointError, match="names base 'google/vit-huge', which is not in the folder"):
        ck.discover(tmp_path)
    (ad,) = [e for e in ck.discover([tmp_path / "ads", tmp_path / "vit-tiny"], base="vit-tiny") if e.kind == "adapter"]
    assert ad.id == "ads/a0" and ad.base == "vit-tiny"  # the base argument may be an id of the inputs
    (ad,) = ck.discover(tmp_path / "ads", base=tmp_path / "vit-tiny")  # ... or a path
    assert ad.base == str(tmp_path / "vit-tiny") and ad.base_files == (tmp_path / "vit-tiny" / "model.safetensors",)
    with pytest.raises(ck.CheckpointError, match=r"nowhere: base checkpoint not found"):
        ck.discover(tmp_path / "ads", base=tmp_path / "nowhere")
    _hf(tmp_path / "more" / "vit-tiny", _vit(2))
    with pytest.raises(ck.CheckpointError, match=r"names base 'google/vit-huge', which matches|not in the folder"):
        ck.discover(tmp_path)
    _peft(tmp_path / "ads" / "a0", "org/vit-tiny")
    with pytest.raises(ck.CheckpointError, match=r"names base 'org/vit-tiny', which matches \['more/vit-tiny', 'vit-tiny'\]; pass --base"):
        ck.discover(tmp_path)
    _peft(tmp_path / "ads" / "a0", "vit-tiny", rank_pattern={"query": 8})
    with pytest.raises(ck.CheckpointError, match=r"a0/adapter_config\.json: rank_pattern is set, which the kit does not support"):
        ck.discover(tmp_path / "ads", base=tmp_path / "vit-tiny")


def test_adapters_that_do_not_fit_their_base_are_named(tmp_path):
    """The messages recover.py gives today."""
    save_file({"q.weight": torch.zeros(8, 8)}, str(tmp_path / "base.safetensors"))
    d = tmp_path / "ads" / "m0"
    d.mkdir(parents=True)
    save_file({"base_model.model.q.lora_A.weight": torch.randn(2, 8), "base_model.model.q.lora_B.weight": torch.randn(9, 2)},
              str(d / "adapter_model.safetensors"))
    with pytest.raises(ck.CheckpointError, match="'m0' is a LoRA adapter without its base"):
        ck.discover(tmp_path / "ads")
    with pytest.raises(ck.CheckpointError,
                       match=r"m0/adapter_model\.safetensors: adapter layer 'base_model.model.q' is 9x8, base weight 'q.weight' is \(8, 8\)"):
        ck.discover(tmp_path / "ads", base=tmp_path / "base.safetensors")
    save_file({"k.weight": torch.zeros(8, 8)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ck.CheckpointError,
                       match=r"m0/adapter_model\.safetensors: adapter layer 'base_model.model.q' has no matching weight in the base checkpoint"):
        ck.discover(tmp_path / "ads", base=tmp_path / "other.safetensors")
    save_file({"base_model.model.q.lora_A.weight": torch.randn(2, 8)}, str(d / "adapter_model.safetensors"))
    with pytest.raises(ck.CheckpointError, match=r"m0/adapter_model\.safetensors: layer 'base_model.model.q' has no LoRA B \(up\) matrix"):
        ck.discover(tmp_path / "ads", base=tmp_path / "base.safetensors")
    save_file({"base_model.model.q.lora_A.weight": torch.randn(2, 8), "base_model.model.q.lora_B.weight": torch.randn(8, 2),
               "base_model.model.q.lora_magnitude_vector": torch.ones(8)}, str(d / "adapter_model.safetensors"))
    with pytest.raises(ck.CheckpointError, match=r"'base_model.model.q.lora_magnitude_vector' is neither a LoRA matrix nor a tensor of the base"):
        ck.discover(tmp_path / "ads", base=tmp_path / "base.safetensors")


# --------------------------------------------------------------------------- errors


def test_pickles_are_never_loaded(tmp_path):
    d = tmp_path / "old-run"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04 never unpickled")
    with pytest.raises(ck.CheckpointError, match=r"old-run/pytorch_model\.bin: pickled checkpoints are never loaded; convert it to safetensors"):
        ck.discover(tmp_path)
    (d / "pytorch_model.bin").unlink()
    save_file(_vit(), str(d / "ema.safetensors"))
    (d / "ema.pt").write_bytes(b"twin")  # same stem: the safetensors twin is read
    (d / "best.ckpt").write_bytes(b"no twin")
    with pytest.raises(ck.CheckpointError, match=r"best\.ckpt: pickled checkpoints are never loaded"):
        ck.discover(tmp_path)
    (d / "best.ckpt").unlink()
    assert [e.id for e in ck.discover(tmp_path)] == ["old-run/ema"]
    with pytest.raises(ck.CheckpointError, match=r"ema\.pt: pickled checkpoints are never loaded"):
        ck.discover(d / "ema.pt")
    with pytest.raises(ck.CheckpointError, match=r"notes\.txt: not a checkpoint"):
        ck.discover([d, _text(tmp_path / "notes.txt", "hi")])


def test_missing_empty_corrupt_and_nan_inputs_are_named(tmp_path):
    with pytest.raises(ck.CheckpointError, match=r"nothing: not a folder"):
        ck.discover(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ck.CheckpointError, match=r"empty: no \.safetensors checkpoints found"):
        ck.discover(tmp_path / "empty")
    with pytest.raises(ck.CheckpointError, match="no inputs given"):
        ck.discover([])
    save_file(_vit(), str(tmp_path / "good.safetensors"))
    raw = (tmp_path / "good.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[:-7])
    with pytest.raises(zoo.ZooError, match=r"cut\.safetensors: corrupt or truncated safetensors file"):
        ck.discover(tmp_path)
    (tmp_path / "cut.safetensors").unlink()
    bad = _vit()
    bad[f"{Q0}.weight"][1, 2] = float("nan")
    save_file(bad, str(tmp_path / "nan.safetensors"))
    e = _by_id(ck.discover(tmp_path))["nan"]  # headers are fine; the tensor is not
    with pytest.raises(zoo.ZooError, match=rf"nan\.safetensors: tensor '{Q0}.weight' contains NaN or Inf"):
        ck.read_tensor(e, f"{Q0}.weight")
    with pytest.raises(ck.CheckpointError, match=r"two checkpoints get the model id 'good'"):
        ck.discover([tmp_path / "good.safetensors", tmp_path / "good.safetensors"])


# --------------------------------------------------------------------------- lazy reading


def _spy(monkeypatch):
    """Record every (file name, key) read through safetensors' safe_open; whole-file loaders fail."""
    calls, real = [], zoo.safe_open

    class Spy:
        def __init__(self, path, framework, **kw):
            self.name, self.fh = path.rsplit("/", 1)[-1], real(path, framework=framework, **kw)

        def __enter__(self):
            self.fh.__enter__()
            return self

        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

        def get_tensor(self, key):
            calls.append((self.name, key))
            return self.fh.get_tensor(key)

    def forbidden(*a, **k):
        raise AssertionError("a whole checkpoint was loaded")

    monkeypatch.setattr(zoo, "safe_open", Spy)
    monkeypatch.setattr(safetensors.torch, "load_file", forbidden)
    monkeypatch.setattr(safetensors.torch, "load", forbidden)
    return calls


def test_read_tensor_reads_only_the_requested_tensors(tmp_path, monkeypatch):
    _hf(tmp_path / "vit-tiny", _vit(), shards=2)
    _peft(tmp_path / "ads" / "a0", "vit-tiny")
    ids = _by_id(ck.discover(tmp_path))
    calls = _spy(monkeypatch)
    ck.read_tensor(ids["vit-tiny"], f"{Q0}.weight")
    assert calls == [(ck.tensor_index(ids["vit-tiny"])[f"{Q0}.weight"][0].name, f"{Q0}.weight")]
    calls.clear()
    ck.read_tensor(ids["ads/a0"], f"{Q0}.weight")
    assert sorted(k for _, k in calls) == [f"base_model.model.{Q0}.lora_A.weight", f"base_model.model.{Q0}.lora_B.weight", f"{Q0}.weight"]


def test_reading_a_small_tensor_of_a_huge_file_stays_small(tmp_path):
    """A 256 MiB tensor (sparse on disk) beside a 4-float one: reading the small one must not
    raise the peak memory by anything near 256 MiB; loading the whole file does."""
    n = 2**26  # float32 -> 256 MiB
    header = {"big.weight": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]},
              "small.weight": {"dtype": "F32", "shape": [4], "data_offsets": [4 * n, 4 * n + 16]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    p = tmp_path / "huge.safetensors"
    with open(p, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text)
        fh.seek(8 + len(text) + 4 * n)
        fh.write(torch.arange(4, dtype=torch.float32).numpy().tobytes())
    (e,) = ck.discover(p)

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    before = peak_mb()
    assert ck.read_tensor(e, "small.weight").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert peak_mb() - before < 64
    whole = safetensors.torch.load(p.read_bytes())  # reading the file would have shown
    assert peak_mb() - before > 200 and whole["big.weight"].shape == (n,)


# --------------------------------------------------------------------------- architectures and cards


def test_architecture_groups_exclude_heads_and_group_adapters_with_their_base(tmp_path):
    for i, n_cls in enumerate([3, 3, 5]):
        save_file(_vit(i, n_cls), str(tmp_path / f"m{i}.safetensors"))
    _peft(tmp_path / "ads" / "a0", "m0")
    save_file({"resnet.embedder.convolution.weight": torch.zeros(4, 3, 3, 3), "classifier.1.weight": torch.zeros(3, 4)},
              str(tmp_path / "resnet.safetensors"))
    entries = ck.discover(tmp_path)
    groups = ck.architecture_groups(entries)
    assert sorted(groups.values()) == [["ads/a0", "m0", "m1"], ["m2"], ["resnet"]]
    text = ck.mixed_architecture_error(groups)
    assert text == ("checkpoints of 3 different architectures (3 model(s) like 'ads/a0'; 1 model(s) like 'm2' [vs 'ads/a0': "
                    "classifier.bias (5,) vs (3,), classifier.weight (5, 8) vs (3, 8)]; "
                    "1 model(s) like 'resnet' [another model: 2 tensors, 0 named as in 'ads/a0'])")
    entries = [e for e in entries if e.id != "resnet"]
    assert list(ck.architecture_groups(entries, exclude=r"^classifier\.").values()) == [["ads/a0", "m0", "m1", "m2"]]
    with pytest.raises(ck.CheckpointError, match=r"exclude='\(' is not a valid regular expression"):
        ck.architecture_groups(entries, exclude="(")


def test_describe_entry_is_json_for_model_cards(tmp_path):
    _hf(tmp_path / "vit-tiny", _vit(), readme="---\nbase_model: google/vit-base-patch16-224\n---\n")
    _peft(tmp_path / "ads" / "a0", "vit-tiny")
    cards = [json.loads(json.dumps(ck.describe_entry(e))) for e in ck.discover(tmp_path)]
    assert cards[0] == {"id": "ads/a0", "kind": "adapter", "files": [str(tmp_path / "ads" / "a0" / "adapter_model.safetensors")],
                        "base": "vit-tiny", "declared_base": "vit-tiny", "metadata": {"peft_type": "LORA", "r": "2", "lora_alpha": "4"},
                        "scaling": 2.0, "base_files": [str(tmp_path / "vit-tiny" / "model.safetensors")]}
    assert cards[1]["declared_base"] == "google/vit-base-patch16-224" and "scaling" not in cards[1]
