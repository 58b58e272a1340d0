"""Public Model-J generative files as published: WordNet ids in metadata, split folders, the
vendored ImageNet-1k table; the result trains an aligned expert."""
import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from probex_lib import modelj, profiles, zeroshot, zoo

ROOT = Path(__file__).parents[1]
LORA = "pytorch_lora_weights.safetensors"
LAYERS = ("unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k",
          "unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q")
# ImageNet-1k index -> wnid (standard order): 1 goldfish, 134 crane (bird), 517 crane (machine),
# 639 maillot (tank suit) train; 0 tench and 638 maillot held out
TRAIN = {1: "n01443537", 134: "n02012849", 517: "n03126707", 639: "n03710721"}
HELD = {0: "n01440764", 638: "n03710637"}


def _write(file: Path, wnid: str, g: torch.Generator, centre: torch.Tensor) -> None:
    """One LoRA as diffusers writes it: unet.<layer>.lora.down/up.weight, metadata as plain strings."""
    tensors = {}
    for layer in LAYERS:
        tensors[f"{layer}.lora.down.weight"] = (centre + 0.3 * torch.randn(2, 16, generator=g)).contiguous()
        tensors[f"{layer}.lora.up.weight"] = torch.randn(8, 2, generator=g)
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(file), metadata={"format": "pt", "imagenet_class_id": wnid})


def _published(root: Path) -> Path:
    """<root>/<split>/<model folder>/pytorch_lora_weights.safetensors; one held-out model nested as a hub
    cache keeps it (models--<org>--<name>/snapshots/<hash>/)."""
    g = torch.Generator().manual_seed(0)
    centres = {w: torch.randn(2, 16, generator=g) for w in [*TRAIN.values(), *HELD.values()]}
    layout = [("train", TRAIN, 3), ("val", TRAIN, 1), ("test", TRAIN, 1), ("val_holdout", HELD, 1), ("test_holdout", HELD, 2)]
    for split, classes, per_class in layout:
        for wnid in classes.values():
            for j in range(per_class):
                _write(root / split / f"lora_{wnid}_{j}" / LORA, wnid, g, centres[wnid])
    _write(root / "test_holdout" / "models--ProbeX--lora_x" / "snapshots" / "0a1b2c" / LORA, HELD[0], g, centres[HELD[0]])
    return root


def test_the_vendored_imagenet_table_is_complete_and_unique():
    t = modelj.imagenet_classes()
    assert len(t) == 1000 and t["index"].tolist() == list(range(1000))
    assert t["wnid"].is_unique and t["wnid"].tolist() == sorted(t["wnid"]) and t["wnid"].str.fullmatch(r"n\d{8}").all()
    assert t["name"].is_unique and (t["name"].str.strip() != "").all()
    named = dict(zip(t["wnid"], t["name"]))
    assert [named[w] for w in ("n01440764", "n02119789", "n02012849", "n03126707", "n03710637", "n03710721")] == [
        "tench", "kit fox", "crane, bird", "crane", "maillot", "maillot, tank suit"]
    header = (ROOT / "probex_lib" / modelj.IMAGENET_TABLE).read_text().splitlines()[0]
    assert header.startswith("# source: timm ") and "timm/data/_info/imagenet_synset_to_lemma.txt" in header


def test_the_generator_disambiguates_by_lemma_then_gloss_then_wnid():
    spec = importlib.util.spec_from_file_location("make_imagenet_classes", ROOT / "scripts" / "make_imagenet_classes.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    lemmas = {"n1": ["crane"], "n2": ["crane"], "n3": ["maillot"], "n4": ["maillot", "tank suit"], "n5": ["kite"],
              "n6": ["kite"], "n7": ["tench", "Tinca tinca"]}
    glosses = {"n1": "large long-necked wading bird of marshes", "n2": "lifts and moves heavy objects; lifting tackle",
               "n5": "", "n6": ""}
    names, qualified = make.unique_names(list(lemmas), lemmas, glosses)
    assert names == {"n1": "crane, bird", "n2": "crane", "n3": "maillot", "n4": "maillot, tank suit", "n5": "kite, n5",
                     "n6": "kite", "n7": "tench"}
    assert qualified == ["n1", "n4", "n5"]
    assert make.gloss_head("tights for dancers or gymnasts") == "tights"


def test_published_layout_reads_splits_and_class_names(tmp_path):
    df = modelj.open_generative(_published(tmp_path / "SD_200"))
    assert len(df) == 4 * 5 + 2 * 3 + 1
    counts = df.groupby(["published_split", "split"]).size().to_dict()
    assert counts == {("train", "train"): 12, ("val", "val"): 4, ("test", "test"): 4, ("val_holdout", "holdout"): 2,
                      ("test_holdout", "holdout"): 5}
    assert df["class_id"].dtype.kind == "i"
    assert set(df.loc[df["split"] == "holdout", "class_id"]) == set(HELD)
    assert set(df.loc[df["split"] != "holdout", "class_id"]) == set(TRAIN)
    row = df[df["model_id"] == "train/lora_n02012849_0"].iloc[0]
    assert (row["class_id"], row["wnid"], row["class_name"]) == (134, "n02012849", "crane, bird")
    nested = df[df["model_id"].str.contains("snapshots")].iloc[0]
    assert (nested["split"], nested["class_name"]) == ("holdout", "tench")


def test_published_layout_trains_an_aligned_expert(tmp_path):
    root = _published(tmp_path / "SD_200")
    cfg = profiles.get_config("aligned", "default", {"epochs": 4, "r_u": 2, "r_v": 2, "r_t": 4, "batch_size": 8,
                                                    "text_encoder": "random", "repeats": 1})
    [(name, ls)] = zeroshot.open_variants(cfg, "default", {"sd200": str(root)}).items()
    assert ls.classes("holdout") == sorted(HELD) and ls.classes("train") == sorted(TRAIN)
    assert ls.names[638] == "maillot" and ls.names[517] == "crane"
    T = zeroshot.class_text(cfg.text_encoder, ls, cfg)
    _, row = zeroshot.fit_one(ls, T, cfg, "probex", [LAYERS[0]])
    assert row["n_zeroshot"] == 7 and row["zeroshot_chance"] == 0.5 and row["indist_chance"] == 0.25
    assert 0 <= row["zeroshot"] <= 1 and 0 <= row["indist"] <= 1


def test_bad_published_files_are_named(tmp_path):
    g = torch.Generator().manual_seed(1)
    c = torch.zeros(2, 16)
    _write(tmp_path / "a" / "train" / "m0" / LORA, "n99999999", g, c)
    with pytest.raises(zoo.ZooError, match=r"train/m0/pytorch_lora_weights.safetensors: imagenet_class_id 'n99999999' is not one"):
        modelj.open_generative(tmp_path / "a")
    _write(tmp_path / "b" / "train" / "m0" / LORA, "kit fox", g, c)
    with pytest.raises(zoo.ZooError, match=r"m0/pytorch_lora_weights.safetensors: class id 'kit fox' is neither"):
        modelj.open_generative(tmp_path / "b")
    _write(tmp_path / "c" / "train" / "m0" / LORA, "n01440764", g, c)
    _write(tmp_path / "c" / "train" / "m1" / LORA, "7", g, c)
    with pytest.raises(zoo.ZooError, match=r"mixed class ids: .*m0/pytorch_lora_weights.safetensors has WordNet id "
                                           r"'n01440764', .*m1/pytorch_lora_weights.safetensors has integer id 7"):
        modelj.open_generative(tmp_path / "c")
    _write(tmp_path / "d" / "lora_1" / LORA, "n01440764", g, c)
    with pytest.raises(zoo.ZooError, match=r"d: no split folders \(expected \['train', 'val', 'test', 'val_holdout', "
                                           r"'test_holdout'\] as folder names below it\) and no 'split' metadata"):
        modelj.open_generative(tmp_path / "d")
    assert "split" not in modelj.open_generative(tmp_path / "d", require_split=False).columns
    _write(tmp_path / "d" / "val" / "lora_2" / LORA, "n01440764", g, c)
    with pytest.raises(zoo.ZooError, match=r"lora_1/pytorch_lora_weights.safetensors: no split: no folder named one of"):
        modelj.open_generative(tmp_path / "d")


def test_split_metadata_wins_over_the_folder(tmp_path):
    g = torch.Generator().manual_seed(2)
    for j, split in enumerate(["val_holdout", None]):
        tensors = {f"{LAYERS[0]}.lora.down.weight": torch.randn(2, 16, generator=g),
                   f"{LAYERS[0]}.lora.up.weight": torch.randn(8, 2, generator=g)}
        meta = {"imagenet_class_id": "n01440764", **({"split": split} if split else {})}
        zoo.save_model(tmp_path / "train" / f"m{j}" / LORA, tensors, meta)  # kit writer: JSON-quoted strings
    df = modelj.open_generative(tmp_path)
    assert df[["published_split", "split", "class_id"]].values.tolist() == [["val_holdout", "holdout", 0], ["train", "train", 0]]
