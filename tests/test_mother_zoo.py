"""The MoTHer dataset generator and the experiments of notebooks 06 and 07, on the smoke dataset."""
import numpy as np
import pandas as pd
import pytest
import torch

from probex_lib import mother, mother_data, mother_exp, mother_zoo, profiles, zoo


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cfg = profiles.get_config("mother", "smoke")
    folder, man, timing = mother_zoo.build(cfg, "smoke", executor="serial", root=tmp_path_factory.mktemp("mother"))
    return cfg, folder, man, timing


def test_plan_orders_parents_before_children():
    cfg = profiles.get_config("mother", "default")
    waves = mother_zoo.plan(cfg, mother_zoo.folder_for(cfg, "default", "/nonexistent"))
    seen: dict[str, int] = {}
    for w, specs in waves.items():
        for s in specs:
            assert s.model_id not in seen
            seen[s.model_id] = w
    for w, specs in waves.items():
        for s in specs:
            parents = s.params.get("parent_ids") or ([s.params["parent"]] if s.params.get("parent") else [])
            assert all(seen[p] < w for p in parents), s.model_id
    subsets = pd.Series([s.params["subset"] for specs in waves.values() for s in specs]).value_counts()
    assert subsets["FT"] == subsets["LoRA-V"] == 5 * 20  # 5 trees of 21 with their shared roots
    assert subsets["Deep"] == 3 + 9 + 27 and subsets["ResNet"] == 20


def test_dataset_records_truth_and_resumes(smoke):
    cfg, folder, man, timing = smoke
    assert set(man["subset"]) >= {"roots", "FT", "LoRA-V", "LoRA-F", "Mixed", "Deep", "ResNet", "Chain", "Merge"}
    ids = set(man["model_id"])
    assert all(p in ids for p in man["parent"].dropna())
    victim = zoo.model_path(folder, "FT-root1-1")
    before = victim.read_bytes()
    victim.unlink()
    _, _, again = mother_zoo.build(cfg, "smoke", executor="serial", root=folder.parent.parent)
    assert again["trained"].sum() == 1 and victim.read_bytes() == before  # deterministic and resumable


def test_lora_child_is_parent_plus_its_rank(smoke):
    _, folder, man, _ = smoke
    row = man[(man["mode"] == "lora") & (man["subset"] == "LoRA-F")].iloc[0]
    child, parent = zoo.load_tensors(row["path"]), zoo.load_tensors(zoo.model_path(folder, row["parent"]))
    adapted = [k for k in child if k.startswith(mother_zoo.ADAPTER_PREFIX) and k.endswith("lora_A.weight")]
    assert adapted
    for key in adapted:
        module = key[len(mother_zoo.ADAPTER_PREFIX):-len(".lora_A.weight")]
        b = child[f"{mother_zoo.ADAPTER_PREFIX}{module}.lora_B.weight"].double()
        expect = parent[f"{module}.weight"].double() + b @ child[key].double()
        assert torch.allclose(child[f"{module}.weight"].double(), expect, atol=1e-6)
    fc2 = next(k for k in child if k.endswith("mlp.fc2.weight"))
    assert torch.equal(child[fc2], parent[fc2])  # LoRA leaves the other layers alone
    w = mother_data.load(man[man["model_id"].isin([row["model_id"], row["parent"]])])
    assert mother_exp.distance(w, "lora")[0, 1] == int(row["rank"])


def test_rank_distance_from_merged_weights_matches_factor_rank():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((12, 10))
    factors = [(rng.standard_normal((12, r)) * 0.1, rng.standard_normal((r, 10))) for r in (1, 2, 3)]
    full = np.stack([base + b @ a for b, a in factors])
    got = mother.rank_distance_full([full])
    want = mother.lora_rank_distance_dense([factors])
    assert np.array_equal(got, want)


def test_experiments_run_and_score_in_range(smoke):
    cfg, _, man, _ = smoke
    t1 = mother_exp.table1(man, cfg.subsets)
    assert set(t1["subset"]) == set(cfg.subsets) and t1["graph"].between(0, 1).all()
    assert (t1["clusters"] == cfg.n_roots).all()
    assert t1[["baseline", "shape baseline"]].stack().between(0, 1).all() and (t1["n placed"] <= t1["edges"]).all()
    assert {"Eq. 1 (l2)", "official FT (max q/k/v/o)"} <= set(t1["distance"])
    assert set(t1["score layers"]) >= {"o", "attention", "fc1", "fc2"}
    ch = mother_exp.chain(man)
    assert len(ch) == 2 and ch["models"].iloc[0] == cfg.chain_stages + 1
    merged = mother_exp.merged_parents(man)
    assert len(merged) == 1 and merged["true parents"].iloc[0] == "root0 + root1"


def test_hops_clustering_accuracy_and_compression_helpers():
    parent = np.array([-1, 0, 0, 1])
    h = mother_exp.hop_distance(parent)
    assert h[3, 2] == 3 and h[1, 0] == 1 and h[3, 3] == 0
    assert mother_exp.clustering_accuracy(np.array([0, 0, 1, 1]), np.array([5, 5, 2, 2])) == 1.0
    assert mother_exp.clustering_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == 0.5
    x = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    pruned = mother_exp.prune_l1(x, 0.9)
    assert ((pruned == 0).sum(1) == 90).all()
    assert np.all(np.abs(pruned[pruned != 0]) >= np.sort(np.abs(x), 1)[:, 89].min())
    q = mother_exp.quantise(x[0], "int8")
    assert np.abs(q - x[0]).max() <= np.abs(x[0]).max() / 127 / 2 + 1e-6 and len(np.unique(q)) <= 255
    with pytest.raises(ValueError, match="int4"):
        mother_exp.quantise(x[0], "int4")


def test_bad_input_is_named(tmp_path, smoke):
    _, _, man, _ = smoke
    zoo.save_model(tmp_path / "models" / "m.safetensors", {"w": torch.zeros(2, 2)}, {"model_id": "m"})
    with pytest.raises(zoo.ZooError, match="not a MoTHer dataset"):
        mother_zoo.open_dataset(tmp_path)
    with pytest.raises(KeyError, match="subsets here"):
        mother_data.members(man, "LoRA-X")
    with pytest.raises(profiles.ProfileError, match="unknown MoTHer subset"):
        mother_zoo.plan(profiles.get_config("mother", "smoke", {"subsets": ("FT", "Bogus")}), tmp_path)


def test_paper_roots_load_through_from_pretrained(tmp_path):
    from probex_lib import vision

    cfg = profiles.get_config("mother", "smoke")
    vision.build("vit", 3, cfg.vit_size).save_pretrained(tmp_path / "tiny-vit")
    state, meta = mother_zoo.train_node({"mode": "hub", "hub": str(tmp_path / "tiny-vit"), "classes": list(range(4)),
                                         "seed": 0})
    assert meta["architecture"] == "ViTForImageClassification"
    assert state["classifier.weight"].shape[0] == 4  # a new head for the task
    assert set(mother_zoo.layer_groups(list(state))["attention"])
    parent = zoo.save_model(tmp_path / "root.safetensors", state, meta | {"model_id": "root"})
    child, cmeta = mother_zoo.train_node({
        "mode": "ft", "hub": str(tmp_path / "tiny-vit"), "kind": "vit", "size": cfg.vit_size, "init": str(parent),
        "classes": [0, 1, 2, 3], "data": {"source": "procedural", "seed": 20, "n_train": 4, "n_test": 2},
        "images_per_class": 4, "epochs": 1, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "seed": 1, "trace_every": 1})
    q = next(k for k in child if k.endswith("q_proj.weight"))
    assert not torch.equal(child[q], state[q]) and cmeta["trace_step"][0] == 0


def test_hub_roots_are_typed_by_their_config_not_their_name(tmp_path):
    from probex_lib import vision

    cfg = profiles.get_config("mother", "smoke")
    mae_size = {**cfg.vit_size, "decoder_hidden": 8, "decoder_layers": 1, "decoder_mlp": 16}
    vision.build("mae", 3, mae_size).save_pretrained(tmp_path / "root-b")  # an MAE whose folder name says nothing
    assert vision.hub_kind(str(tmp_path / "root-b")) == "mae"
    state, meta = mother_zoo.train_node({"mode": "hub", "hub": str(tmp_path / "root-b"), "classes": list(range(4)),
                                         "seed": 0})
    assert meta["architecture"] == "ViTForImageClassification" and state["classifier.weight"].shape[0] == 4
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="model_type 'bert' is not one the kit fine-tunes"):
        vision.hub_kind(str(tmp_path / "odd"))


def test_recovery_does_not_depend_on_the_order_of_models():
    # a path 0-1-...-8 with a symmetric distance and a silent direction score: every node is an
    # equally good root, so an order-blind recovery must not always pick node 0 (listed first)
    parent = np.arange(-1, 8)
    hops = mother_exp.hop_distance(parent).astype(float)
    w = mother_data.Weights([f"m{i}" for i in range(9)], {}, parent, np.zeros(9, int), np.zeros(9, int))
    res = mother_exp.run(w, hops, np.zeros(9), 1)
    assert res["undirected"] == 1.0
    assert res["graph"] < 1.0  # the true root is not handed over by its position
