"""Saved tree experts: round trip, format refusal, shape errors, routing by the tree's spread."""
import json
import struct

import numpy as np
import pandas as pd
import pytest
import torch

from probex_lib import expert_store, experts, profiles, zoo
from probex_lib.probex import ORIENTATION, Normalised, ProbeX

LABELS = ["red circle", "blue star", "green ring"]
SHAPE = (6, 2, 2)  # a conv kernel (out, in, k, k): ProbeX reads it as (6, 4)


def _tree(seed: int, n: int = 12, shift: float = 0.0) -> torch.Tensor:
    """n models of one tree: a root plus small fine-tuning noise, (n, *SHAPE)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*SHAPE, generator=g) + shift + 0.1 * torch.randn(n, *SHAPE, generator=g)


def _expert(tmp_path, tree="A", seed=0, shift=0.0, name=None):
    """A tiny untrained (seeded) normalised ProbeX saved with the router entry of its tree."""
    x = _tree(seed, shift=shift)
    torch.manual_seed(seed)
    mats = zoo.matrix_view(x)
    model = Normalised(ProbeX(6, 4, len(LABELS), r_u=3, r_v=2, r_t=4, encoder_depth=2), mats.mean(0), mats.std()).eval()
    centroid, spread = expert_store.router_stats(x)
    path = expert_store.save_tree_expert(tmp_path / f"{name or tree}.safetensors", model, layer="enc.weight",
                                         layer_shape=SHAPE, labels=LABELS, tree=tree, centroid=centroid,
                                         spread=spread, meta={"test": 0.9})
    return path, model, x


def _rewrite_meta(path, **changes):
    """The same file with some metadata values replaced (None: removed)."""
    meta = zoo.read_metadata(path)
    for k, v in changes.items():
        meta.pop(k) if v is None else meta.__setitem__(k, v)
    zoo.save_model(path, zoo.load_tensors(path), meta)


def test_router_stats_use_the_leave_one_out_maximum():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    centroid, spread = expert_store.router_stats(x)
    assert centroid.tolist() == [2.0, 0.0]
    assert spread == pytest.approx(3.0)  # model 0: 2 from the centroid, 3 from the mean (3, 0) of the others
    assert expert_store.router_stats(x[:1])[1] == 0.0


def test_round_trip_gives_identical_predictions_and_fields(tmp_path):
    path, model, x = _expert(tmp_path)
    e = expert_store.load_tree_expert(path)
    assert (e.tree, e.layer, e.layer_shape, e.labels, e.meta) == ("A", "enc.weight", SHAPE, LABELS, {"test": 0.9})
    assert e.spec == {"d_w": 6, "d_h": 4, "d_y": 3, "r_u": 3, "r_v": 2, "r_t": 4, "activation": "relu",
                      "encoder_depth": 2, "normalised": True}
    assert torch.equal(e.centroid, x.reshape(len(x), -1).double().mean(0).float())
    with torch.no_grad():
        assert torch.equal(e.model(zoo.matrix_view(x)), model(zoo.matrix_view(x)))
    p = expert_store.predict_classes(e, x[0], threshold=0.5)
    probs = torch.sigmoid(model(zoo.matrix_view(x[:1])))[0].detach()
    assert p.probabilities == pytest.approx(dict(zip(LABELS, probs.tolist())))
    assert p.classes == [c for c, q in zip(LABELS, probs.tolist()) if q > 0.5]
    assert expert_store.predict_classes(e, x[0], threshold=0.0).classes == LABELS  # every sigmoid is above 0
    # read without pickle: the file is plain safetensors (a JSON header, raw tensor bytes)
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert json.loads(header["__metadata__"]["format_version"]) == expert_store.FORMAT_VERSION
    assert json.loads(header["__metadata__"]["probex_orientation"]) == ORIENTATION
    assert header[expert_store.CENTROID_KEY]["shape"] == [24] and not list(tmp_path.glob("*.tmp"))


def test_other_format_versions_and_orientations_are_refused_naming_the_file(tmp_path):
    path, _, _ = _expert(tmp_path)
    for change in ({"format_version": 2}, {"format_version": None}, {"probex_orientation": "transposed-v1"}):
        _expert(tmp_path)
        _rewrite_meta(path, **change)
        with pytest.raises(zoo.ZooError, match=rf"{path.name}: tree expert of format version .* reads version 1"):
            expert_store.load_tree_expert(path)
    zoo.save_model(tmp_path / "model.safetensors", {"enc.weight": torch.zeros(SHAPE)}, {"tree": "A"})
    with pytest.raises(zoo.ZooError, match=r"model\.safetensors: not a tree expert file"):
        expert_store.load_tree_expert(tmp_path / "model.safetensors")
    with pytest.raises(zoo.ZooError, match=r"missing\.safetensors: file not found"):
        expert_store.load_tree_expert(tmp_path / "missing.safetensors")


def test_a_weight_of_another_shape_is_an_error_naming_file_layer_and_shapes(tmp_path):
    path, _, _ = _expert(tmp_path)
    e = expert_store.load_tree_expert(path)
    msg = rf"{path.name}: .*layer 'enc\.weight' of shape \(6, 2, 2\), got a weight of shape \(6, 4\)"
    for fn in (expert_store.route, expert_store.predict_classes):
        with pytest.raises(ValueError, match=msg):
            fn(e, torch.zeros(6, 4))
    with pytest.raises(ValueError, match=r"matrix shape \(6, 4\), but layer 'enc\.weight' has shape \(4, 6\)"):
        expert_store.save_tree_expert(tmp_path / "bad.safetensors", e.model, layer="enc.weight", layer_shape=(4, 6),
                                      labels=LABELS, tree="A", centroid=np.zeros(24), spread=1.0, meta={})
    assert not (tmp_path / "bad.safetensors").exists()


def test_routing_refuses_a_far_model_and_answers_for_a_training_model(tmp_path):
    path, _, x = _expert(tmp_path)
    e = expert_store.load_tree_expert(path)
    dists = [expert_store.route(e, w) for w in x]
    assert max(dists) < e.spread == pytest.approx(max(dists) * 12 / 11, rel=1e-6)
    p = expert_store.predict_classes(e, x[3])
    assert p is not None and p.tree == "A" and p.distance == pytest.approx(dists[3]) and p.spread == e.spread
    far = x[3] + 5.0
    assert expert_store.route(e, far) > e.spread and expert_store.predict_classes(e, far) is None
    edge = e.centroid.reshape(SHAPE) + 2 * e.spread * torch.ones(SHAPE) / 24**0.5  # twice the spread away
    assert expert_store.predict_classes(e, edge) is None
    assert expert_store.predict_classes(e, edge, factor=2.5) is not None


def test_find_expert_for_picks_the_nearest_tree_within_its_spread(tmp_path):
    a = expert_store.load_tree_expert(_expert(tmp_path, "A", seed=1)[0])
    b_path, _, xb = _expert(tmp_path, "B", seed=2, shift=3.0)
    b = expert_store.load_tree_expert(b_path)
    xa = _tree(1)
    other = expert_store.load_tree_expert(_expert(tmp_path, "C", seed=3)[0])
    other.layer = "head.weight"  # an expert on a layer the model lacks is no candidate
    assert expert_store.find_expert_for([a, b, other], {"enc.weight": xa[0], "enc.bias": torch.zeros(6)}).tree == "A"
    assert expert_store.find_expert_for([a, b], {"enc.weight": xb[5]}).tree == "B"
    assert expert_store.find_expert_for([a, b], {"enc.weight": xb[5] + 10}) is None  # no tree claims it
    assert expert_store.find_expert_for([a, b], {"enc.weight": torch.zeros(6, 4)}) is None  # other shape: skipped
    assert expert_store.find_expert_for([], {"enc.weight": xa[0]}) is None


def test_save_tree_experts_writes_the_chosen_layer_of_every_tree(tmp_path, kit_dirs):
    rows = []
    for tree, seed, shift in (("A", 1, 0.0), ("B", 2, 3.0)):
        x = _tree(seed, n=10, shift=shift)
        for i, w in enumerate(x):
            split = "train" if i < 7 else "val" if i < 8 else "test"
            classes = [i % 3, (i + 1) % 3]
            p = zoo.save_model(tmp_path / "zoo" / "models" / f"{tree}{i}.safetensors", {"enc.weight": w},
                               {"model_id": f"{tree}{i}", "classes": classes})
            rows.append({"path": str(p), "model_id": f"{tree}{i}", "tree": tree, "split": split, "classes": classes,
                         "class_names": [LABELS[c] for c in classes]})
    m = pd.DataFrame(rows)
    cfg = profiles.get_config("probex", "smoke", {"epochs": 2, "r_u": 2, "r_v": 2, "r_t": 2})
    best = {t: experts.fit_expert("probex", experts.layer_data(m[m["tree"] == t], "enc.weight"), 2, r_u=2, r_v=2, r_t=2)
            for t in ("A", "B")}
    files = experts.save_tree_experts(best, m, cfg, "smoke")
    folder = experts.expert_dir(m, cfg, "smoke")
    assert files == [folder / "A.safetensors", folder / "B.safetensors"]
    assert folder.parent == kit_dirs[0] / "experts" / "smoke" and folder.name.startswith("zoo-")
    loaded = [expert_store.load_tree_expert(f) for f in files]
    assert loaded[0].labels == LABELS and loaded[0].meta["n_train"] == 7 and loaded[1].layer_shape == SHAPE
    assert [e.layer for e in loaded] == [best["A"]["layer"], best["B"]["layer"]]
    found = expert_store.find_expert_for(loaded, zoo.load_tensors(m["path"][12]))  # a test model of B
    assert found.tree == "B"
    assert experts.expert_dir(m, profiles.get_config("probex", "smoke", {"epochs": 3}), "smoke") != folder
