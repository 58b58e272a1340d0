import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from probex_lib import zoo


def _model(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"layer1.weight": torch.randn(4, 3, generator=g), "layer1.bias": torch.randn(4, generator=g),
            "conv.weight": torch.randn(2, 3, 3, 3, generator=g)}


def test_save_and_read_round_trip(tmp_path):
    p = zoo.save_model(tmp_path / "m.safetensors", _model(), {"model_id": "m", "classes": ["red star", "blue ring"], "acc": 0.5})
    meta = zoo.read_metadata(p)
    assert meta == {"model_id": "m", "classes": ["red star", "blue ring"], "acc": 0.5}
    t = zoo.load_tensors(p)
    torch.testing.assert_close(t["conv.weight"], _model()["conv.weight"])
    assert zoo.tensor_names(p) == sorted(_model())  # safetensors stores keys sorted
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("cut", [3, 20, -5])
def test_truncated_or_corrupt_file_is_named(tmp_path, cut):
    p = zoo.save_model(tmp_path / "m.safetensors", _model(), {"model_id": "m"})
    raw = p.read_bytes()
    p.write_bytes(raw[:cut] if cut > 0 else raw[:cut])
    with pytest.raises(zoo.ZooError, match=r"m\.safetensors: corrupt"):
        zoo.load_tensors(p)
    assert not zoo.is_complete(p)


def test_garbage_header_is_named(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes((10).to_bytes(8, "little") + b"not json!!" )
    with pytest.raises(zoo.ZooError, match="junk.safetensors: corrupt safetensors header"):
        zoo.read_header(p)


def test_nan_weights_are_refused_on_save_and_on_load(tmp_path):
    bad = _model()
    bad["layer1.bias"][0] = float("nan")
    with pytest.raises(zoo.ZooError, match="refusing.*layer1.bias"):
        zoo.save_model(tmp_path / "a.safetensors", bad, {})
    save_file(bad, str(tmp_path / "b.safetensors"))  # someone else's file
    with pytest.raises(zoo.ZooError, match=r"b\.safetensors: tensor 'layer1.bias' contains NaN"):
        zoo.load_tensors(tmp_path / "b.safetensors")


def test_load_layer_stacks_and_names_bad_files(tmp_path):
    paths = [zoo.save_model(tmp_path / f"m{i}.safetensors", _model(i), {}) for i in range(3)]
    x = zoo.load_layer(paths, "conv.weight")
    assert x.shape == (3, 2, 3, 3, 3)
    assert zoo.matrix_view(x).shape == (3, 2, 27)
    assert zoo.matrix_view(zoo.load_layer(paths, "layer1.bias")).shape == (3, 4, 1)
    with pytest.raises(zoo.ZooError, match=r"m0\.safetensors: no tensor named 'layer1.weights'; close names: \['layer1.weight'"):
        zoo.load_layer(paths, "layer1.weights")
    odd = _model(9)
    odd["conv.weight"] = torch.zeros(3, 3, 3, 3)
    paths.append(zoo.save_model(tmp_path / "odd.safetensors", odd, {}))
    with pytest.raises(zoo.ZooError, match=r"odd\.safetensors: layer 'conv.weight' has shape \(3, 3, 3, 3\)"):
        zoo.load_layer(paths, "conv.weight")


def test_manifest_is_rebuilt_from_files(tmp_path):
    for i in (2, 0, 1):
        zoo.save_model(zoo.model_path(tmp_path, f"m{i}"), _model(i), {"model_id": f"m{i}", "classes": [f"c{i}"], "tree": "T1"})
    df = zoo.build_manifest(tmp_path)
    assert df["model_id"].tolist() == ["m0", "m1", "m2"]
    assert df["classes"].tolist() == [["c0"], ["c1"], ["c2"]]
    csv = pd.read_csv(tmp_path / "manifest.csv")
    assert json.loads(csv["classes"][1]) == ["c1"]
    assert zoo.open_zoo(tmp_path)["model_id"].tolist() == ["m0", "m1", "m2"]


def test_settings_mismatch_is_refused(tmp_path):
    zoo.ensure_settings(tmp_path, {"width": 8, "lr": 0.1})
    zoo.ensure_settings(tmp_path, {"lr": 0.1, "width": 8})
    with pytest.raises(zoo.ZooError, match=r"other settings \(differing keys: \['width'\]\)"):
        zoo.ensure_settings(tmp_path, {"width": 16, "lr": 0.1})


def _toy_train(params):
    g = torch.Generator().manual_seed(params["seed"])
    return {"w": torch.randn(3, 3, generator=g)}, {"seed": params["seed"]}


def test_generate_zoo_skips_complete_files_and_refuses_damaged_ones(tmp_path):
    specs = [zoo.ModelSpec(f"m{i}", {"seed": i}) for i in range(3)]
    df = zoo.generate_zoo(tmp_path, specs, _toy_train, {"v": 1}, executor="serial")
    assert df["model_id"].tolist() == ["m0", "m1", "m2"]
    first = zoo.model_path(tmp_path, "m0")
    mtime = first.stat().st_mtime_ns
    (tmp_path / "models" / ".m1.safetensors.abc.tmp").write_bytes(b"partial")  # a killed writer's leftover
    zoo.generate_zoo(tmp_path, specs, _toy_train, {"v": 1}, executor="serial")
    assert first.stat().st_mtime_ns == mtime
    assert not list((tmp_path / "models").glob("*.tmp"))
    first.write_bytes(first.read_bytes()[:-4])
    with pytest.raises(zoo.ZooError, match=r"m0\.safetensors: corrupt or truncated"):
        zoo.generate_zoo(tmp_path, specs, _toy_train, {"v": 1}, executor="serial")
    with pytest.raises(zoo.ZooError, match="duplicate model ids"):
        zoo.generate_zoo(tmp_path, specs + specs[:1], _toy_train, {"v": 1}, executor="serial")


# --------------------------------------------------------------------------- Model-J layout


def write_modelj_fixture(root, n_per_split=2, classes_literal=None, drop_layer=None):
    """A tiny Model-J discriminative tree in Hugging Face cache layout."""
    rng = np.random.default_rng(0)
    names = ["apple", "aquarium_fish", "baby", "bear"]
    for split in zoo.MODELJ_SPLITS:
        for i in range(n_per_split):
            model_dir = root / split / f"models--ProbeX--model_{split}_{i}"
            ref = f"{split}{i:02d}ab"
            (model_dir / "refs").mkdir(parents=True)
            (model_dir / "refs" / "main").write_text(ref)
            snap = model_dir / "snapshots" / ref
            snap.mkdir(parents=True)
            chosen = [str(c) for c in rng.choice(names, 2, replace=False)]
            tensors = {"vit.encoder.layer.0.attention.query.weight": torch.randn(4, 4), "classifier.weight": torch.randn(2, 4)}
            if drop_layer and i == 1 and split == "val":
                tensors.pop(drop_layer)
            meta = {"dataset_chosen_targets": classes_literal if classes_literal is not None else repr(chosen), "lr": "0.001"}
            save_file(tensors, str(snap / "model.safetensors"), metadata=meta)


def test_modelj_reader(tmp_path):
    write_modelj_fixture(tmp_path / "SupViT")
    df = zoo.open_zoo(tmp_path / "SupViT")
    assert len(df) == 6 and set(df["split"]) == {"train", "val", "test"}
    assert all(isinstance(c, list) and len(c) == 2 for c in df["classes"])
    assert df["tree"].iloc[0] == "SupViT" and df["lr"].iloc[0] == 0.001
    x = zoo.load_layer(df["path"].tolist(), "classifier.weight")
    assert x.shape == (6, 2, 4)


def test_modelj_missing_layer_and_bad_metadata_are_named(tmp_path):
    write_modelj_fixture(tmp_path / "a", drop_layer="classifier.weight")
    df = zoo.open_zoo(tmp_path / "a")
    with pytest.raises(zoo.ZooError, match=r"model_val_1/snapshots/val01ab/model\.safetensors: no tensor named 'classifier.weight'"):
        zoo.load_layer(df["path"].tolist(), "classifier.weight")
    write_modelj_fixture(tmp_path / "b", classes_literal="__import__('os').system('echo pwned')")
    with pytest.raises(zoo.ZooError, match="dataset_chosen_targets' is not a list literal"):
        zoo.open_zoo(tmp_path / "b")
    write_modelj_fixture(tmp_path / "c", classes_literal="[1, 2]")
    with pytest.raises(zoo.ZooError, match="should be a list of class names"):
        zoo.open_zoo(tmp_path / "c")
    write_modelj_fixture(tmp_path / "d")
    p = zoo.open_zoo(tmp_path / "d")["path"].iloc[0]
    save_file({"w": torch.zeros(1)}, p, metadata={"lr": "0.1"})
    with pytest.raises(zoo.ZooError, match="no 'dataset_chosen_targets'"):
        zoo.open_zoo(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(zoo.ZooError, match="not a zoo"):
        zoo.open_zoo(tmp_path / "empty")


def test_folder_of_modelj_trees_is_one_manifest(tmp_path):
    write_modelj_fixture(tmp_path / "SupViT")
    write_modelj_fixture(tmp_path / "MAE", n_per_split=1)
    (tmp_path / "notes").mkdir()  # a folder that is not a tree is ignored by name, trees are not guessed
    df = zoo.open_zoo(tmp_path)
    assert df.groupby("tree").size().to_dict() == {"MAE": 3, "SupViT": 6}


def test_multi_hot():
    y = zoo.multi_hot([["b"], ["a", "c"]], ["a", "b", "c"])
    np.testing.assert_array_equal(y, [[0, 1, 0], [1, 0, 1]])
    with pytest.raises(zoo.ZooError, match="class 'd' is not among"):
        zoo.multi_hot([["d"]], ["a"])


def test_written_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    p = zoo.save_model(tmp_path / "m.safetensors", _model(), {})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
