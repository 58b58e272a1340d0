"""Vision roots and fine-tunes with tiny configs of the paper's transformers classes."""
import pytest
import torch

from probex_lib import vision, zoo

TINY_VIT = {"patch_size": 8, "hidden_size": 32, "layers": 1, "heads": 2, "mlp": 64}
TINY_RESNET = {"embedding": 8, "hidden_sizes": [8, 16], "depths": [1, 1]}
DATA = {"source": "procedural", "seed": 0, "n_train": 20, "n_test": 5}


def _params(**kw):
    p = {"kind": "vit", "size": TINY_VIT, "classes": [0, 31, 62], "data": DATA, "images_per_class": 20, "epochs": 6,
         "lr": 3e-3, "batch_size": 16, "weight_decay": 0.01, "seed": 0, "init": "random", "objective": "classify", "flip": True}
    return {**p, **kw}


@pytest.mark.parametrize("kind,size", [("vit", TINY_VIT), ("resnet", TINY_RESNET)])
def test_pretrain_then_finetune_is_deterministic_and_learns(kit_dirs, kind, size):
    state, meta = vision.train_vision(_params(kind=kind, size=size))
    again, _ = vision.train_vision(_params(kind=kind, size=size))
    assert all(torch.equal(state[k], again[k]) for k in state)
    assert meta["test_accuracy"] > 0.5  # 3 easy classes (chance 0.33)
    root = zoo.save_model(kit_dirs[0] / "root.safetensors", state, {})
    ft_state, ft_meta = vision.train_vision(_params(kind=kind, size=size, classes=[5, 15, 25, 35], init=str(root), epochs=2, seed=1))
    backbone = [k for k in state if not k.startswith("classifier.")]
    assert ft_state["classifier.weight" if kind == "vit" else "classifier.1.weight"].shape[0] == 4
    assert any(not torch.equal(ft_state[k], state[k]) for k in backbone)  # fine-tuning moved the backbone


def test_mae_root_initialises_a_vit_classifier(kit_dirs):
    state, meta = vision.train_vision(_params(kind="mae", objective="mae", epochs=2))
    assert "mae_loss" not in meta and meta["architecture"] == "ViTMAEForPreTraining" and meta["final_loss"] > 0
    root = zoo.save_model(kit_dirs[0] / "mae.safetensors", state, {})
    ft, meta = vision.train_vision(_params(kind="mae", init=str(root), epochs=1))
    assert meta["architecture"] == "ViTForImageClassification"
    torch.testing.assert_close(ft["vit.embeddings.cls_token"].shape, state["vit.embeddings.cls_token"].shape)


def test_wrong_root_is_named(kit_dirs):
    state, _ = vision.train_vision(_params(kind="resnet", size=TINY_RESNET, epochs=1))
    root = zoo.save_model(kit_dirs[0] / "resnet_root.safetensors", state, {})
    with pytest.raises(zoo.ZooError, match=r"resnet_root\.safetensors: cannot initialise ViTForImageClassification"):
        vision.train_vision(_params(init=str(root)))
    with pytest.raises(ValueError, match="valid kinds"):
        vision.build("dino", 3, TINY_VIT)


def test_from_pretrained_path_on_tiny_local_checkpoints(tmp_path):
    for kind, size in (("vit", TINY_VIT), ("resnet", TINY_RESNET), ("mae", TINY_VIT)):
        model = vision.build(kind, 7, size)
        model.save_pretrained(tmp_path / kind)
        clf = vision.load_pretrained(str(tmp_path / kind), kind, n_classes=4)
        out = clf(pixel_values=torch.zeros(2, 3, 32, 32)).logits
        assert out.shape == (2, 4)
        if kind == "mae":
            torch.testing.assert_close(clf.state_dict()["vit.layers.0.attention.q_proj.weight"],
                                       model.state_dict()["vit.layers.0.attention.q_proj.weight"])


def test_paper_profile_roots_come_from_the_hub_path(kit_dirs, tmp_path):
    """objective "hub": the root is the checkpoint as loaded (new head, no training); fine-tuning
    from it resizes the 32x32 images to the checkpoint's input size."""
    model = vision.build("vit", 7, {**TINY_VIT, "image_size": 48})
    model.save_pretrained(tmp_path / "vit48")
    hub = str(tmp_path / "vit48")
    state, meta = vision.train_vision(_params(objective="hub", hub=hub))
    torch.testing.assert_close(state["vit.layers.0.attention.q_proj.weight"], model.state_dict()["vit.layers.0.attention.q_proj.weight"])
    assert state["classifier.weight"].shape[0] == 3 and "test_accuracy" not in meta
    root = zoo.save_model(kit_dirs[0] / "hub_root.safetensors", state, {})
    ft, meta = vision.train_vision(_params(hub=hub, init=str(root), epochs=1))
    assert 0 <= meta["test_accuracy"] <= 1 and not torch.equal(ft["vit.layers.0.attention.q_proj.weight"],
                                                                state["vit.layers.0.attention.q_proj.weight"])


@pytest.mark.parametrize("kind,size", [("vit", TINY_VIT), ("resnet", TINY_RESNET)])
def test_probed_head_fits_the_frozen_features_and_leaves_the_backbone(kind, size):
    torch.manual_seed(0)
    model = vision.build(kind, 3, size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(60, 3, 32, 32)
    y = torch.arange(60) % 3
    x[y == 1] += 1.5  # classes the frozen random features can tell apart
    x[y == 2] -= 1.5
    vision.probe_head(model, x, y, 3, seed=0)
    after = model.state_dict()
    head = [k for k in after if k.startswith("classifier.")]
    assert all(torch.equal(after[k], before[k]) for k in after if k not in head)  # backbone untouched
    assert any(not torch.equal(after[k], before[k]) for k in head)
    model.eval()
    with torch.no_grad():
        acc = (model(pixel_values=x).logits.argmax(1) == y).float().mean()
    assert acc > 0.9
    p = _params(kind=kind, size=size, head_init="probe", epochs=1)
    s1, _ = vision.train_vision(p)
    s2, _ = vision.train_vision(p)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)  # deterministic with the probe stage
