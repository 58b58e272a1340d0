"""Model-J generation plan: roots, fine-tune hyperparameters, splits, held-out classes, folders, bad input."""
import json
from pathlib import Path

import pytest

from probex_lib import data, lora, modelj, profiles, zoo

MINI = {"models_per_tree": 2, "variants": [["fine", 6, 2, 1]]}


def test_finetune_plan_follows_the_config():
    cfg = profiles.get_config("modelj", "default")
    specs = modelj.finetune_specs(cfg, Path("/nowhere"))
    assert len(specs) == 4 * cfg.models_per_tree
    kinds = [modelj.ROOT_KINDS[s.params["tree"]] for s in specs[:: cfg.models_per_tree]]
    assert kinds.count("vit") >= 2  # two trees share an architecture
    for s in specs:
        p = s.params
        assert len(p["classes"]) == 50 and len(set(p["classes"])) == 50
        assert p["lr"] in cfg.ft_lrs and p["epochs"] in cfg.ft_epochs and p["batch_size"] in cfg.ft_batch_sizes
    splits = [s.params["split"] for s in specs if s.params["tree"] == "SupViT"]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (105, 15, 30)
    assert len({s.params["lr"] for s in specs}) == len(cfg.ft_lrs)  # hyperparameters really vary
    assert specs == modelj.finetune_specs(cfg, Path("/nowhere"))  # fixed by seed


def test_held_out_classes_keep_every_colour_and_shape_in_training():
    cfg = profiles.get_config("modelj", "default")
    names = modelj.class_names(cfg)
    for v, (name, n_cls, n_held, per_class) in enumerate(cfg.variants):
        classes, held = modelj.variant_classes(cfg, v)
        assert len(classes) == n_cls and len(held) == n_held and set(held) <= set(classes)
        train = [c for c in classes if c not in held]
        for c in held:
            colour, shape = names[c].split(" ", 1)
            assert any(names[t].startswith(colour + " ") for t in train)
            assert any(names[t].endswith(" " + shape) for t in train)
        specs = modelj.lora_specs(cfg, {"diffusion": Path("/d")}, v)
        assert len(specs) == n_cls * per_class
        assert {s.params["split"] for s in specs if s.params["class_id"] in held} == {"holdout"}
        assert all(5 <= len(s.params["image_ids"]) <= 10 for s in specs)
    with pytest.raises(profiles.ProfileError, match="cannot hold out 3 of 4"):
        modelj.held_out_classes(list(names), [0, 11, 22, 33], 3, seed=0)


def test_folders_depend_only_on_their_own_settings():
    cfg = profiles.get_config("modelj", "default")
    a = modelj.zoo_dirs(cfg, "default")
    b = modelj.zoo_dirs(profiles.get_config("modelj", "default", {"lora_rank": 8}), "default")
    c = modelj.zoo_dirs(profiles.get_config("modelj", "default", {"root_epochs": 3}), "default")
    assert a["discriminative"] == b["discriminative"] and a["roots"] == b["roots"] and a["fine"] != b["fine"]
    assert a["roots"] != c["roots"] and a["discriminative"] != c["discriminative"] and a["fine"] == c["fine"]


def test_unknown_class_names_are_an_error():
    cfg = profiles.get_config("modelj", "smoke", {"classes": ["red star", "plaid unicorn"]})
    with pytest.raises(data.DataError, match="plaid unicorn"):
        modelj.finetune_specs(cfg, Path("/nowhere"))
    with pytest.raises(profiles.ProfileError, match="unknown part"):
        modelj.build(profiles.get_config("modelj", "smoke"), "smoke", parts=("discriminative", "audio"))


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("models/*.safetensors"))}


@pytest.mark.slow
def test_serial_and_dask_build_byte_identical_zoos_and_resume(kit_dirs, tmp_path):
    from dask.distributed import Client, LocalCluster

    cfg = profiles.get_config("modelj", "smoke", MINI)
    root = tmp_path / "zoo"
    serial = modelj.build(cfg, "smoke", executor="serial", root=root)
    first = _bytes(root)
    assert len(first) == 2 + 4 + 4 * 2 + 6  # SD stages, roots, fine-tunes, LoRAs
    assert set(serial.waves["trained"]) and serial.waves["trained"].sum() == len(first)
    disc = serial.manifests["discriminative"]
    assert disc["test_accuracy"].between(0, 1).all() and set(disc["tree"]) == set(modelj.DEFAULT_ROOTS)

    # the same plan on a 2-worker Dask LocalCluster, in the same folder after deleting everything
    for p in root.rglob("models/*.safetensors"):
        p.unlink()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        modelj.build(cfg, "smoke", executor=client, root=root)
    assert _bytes(root) == first

    # an interrupted run (one LoRA and one fine-tune missing, a stale temp file) resumes exactly
    lora_file = sorted(root.rglob("generative-*/models/*.safetensors"))[0]
    ft_file = sorted(root.rglob("discriminative-*/models/*.safetensors"))[-1]
    lora_file.unlink()
    ft_file.unlink()
    (lora_file.parent / f".{lora_file.name}.123.tmp").write_bytes(b"partial")
    again = modelj.build(cfg, "smoke", executor="serial", root=root)
    assert again.waves["trained"].sum() == 2 and _bytes(root) == first
    assert not list(root.rglob("*.tmp"))

    # the LoRAs read back as Model-J adapters with their class in the metadata
    gen = modelj.open_generative(serial.dirs["fine"])
    assert len(lora.lora_layers(gen["path"].iloc[0])) > 0 and gen["class_id"].isin(modelj.used_classes(cfg)).all()


@pytest.mark.slow
def test_bad_root_and_other_settings_are_errors(kit_dirs, tmp_path):
    cfg = profiles.get_config("modelj", "smoke", MINI)
    root = tmp_path / "zoo"
    modelj.build(cfg, "smoke", executor="serial", root=root, parts=("discriminative",))
    dirs = modelj.zoo_dirs(cfg, "smoke", root)
    # a second run with other settings into the same folder
    settings = json.loads((dirs["roots"] / zoo.SETTINGS_FILE).read_text())
    settings["root_epochs"] = 99
    (dirs["roots"] / zoo.SETTINGS_FILE).write_text(json.dumps(settings))
    with pytest.raises(zoo.ZooError, match=r"zoo\.json: this zoo was generated with other settings \(differing keys: \['root_epochs'\]"):
        modelj.build(cfg, "smoke", executor="serial", root=root, parts=("discriminative",))
    # a root checkpoint that does not load (truncated file)
    (dirs["roots"] / zoo.SETTINGS_FILE).unlink()
    root_file = zoo.model_path(dirs["roots"], "MAE")
    root_file.write_bytes(root_file.read_bytes()[:200])
    with pytest.raises(zoo.ZooError, match="MAE.safetensors"):
        modelj.build(cfg, "smoke", executor="serial", root=root, parts=("discriminative",))


def test_public_modelj_generative_layout_is_read(tmp_path):
    import torch

    for i, cls in enumerate([7, 7, 42]):
        zoo.save_model(tmp_path / "sd200" / f"model_{i}" / "pytorch_lora_weights.safetensors",
                       {"unet.mid.to_q.lora.down.weight": torch.randn(4, 8), "unet.mid.to_q.lora.up.weight": torch.randn(8, 4)},
                       {"imagenet_class_id": str(cls)})
    with pytest.raises(zoo.ZooError, match="no split folders"):
        modelj.open_generative(tmp_path / "sd200")
    df = modelj.open_generative(tmp_path / "sd200", require_split=False)  # integer ids, splits assigned later
    assert df["class_id"].tolist() == [7, 7, 42] and df["model_id"].tolist() == ["model_0", "model_1", "model_2"]
    zoo.save_model(tmp_path / "bad" / "x" / "pytorch_lora_weights.safetensors",
                   {"a.lora.down.weight": torch.randn(4, 8), "a.lora.up.weight": torch.randn(8, 4)}, {"note": "none"})
    with pytest.raises(zoo.ZooError, match="neither 'class_id' nor 'imagenet_class_id'"):
        modelj.open_generative(tmp_path / "bad")
