"""Zero-shot pipeline, retrieval and search-by-text on a planted LoRA zoo written here.

The planted zoo: 5 colours x 4 shapes = 20 classes, 5 LoRAs each (4 classes held out). Each LoRA's A matrix is a
fixed linear map of its class name's MiniLM embedding (plus noise), so the weights carry the
class through the language space and zero-shot prediction is learnable.
"""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from probex_lib import aligned, modelj, profiles, retrieval, search, text, zeroshot, zoo

COLOURS, SHAPES = ("red", "green", "blue", "yellow", "purple"), ("star", "circle", "square", "cross")
NAMES = [f"{c} {s}" for c in COLOURS for s in SHAPES]
LAYERS = ("blk.attn2.to_k", "blk.attn1.to_q")


def _write_zoo(folder, per_class=5, seed=0, layers=LAYERS, d_in=16, with_split=False):
    g = torch.Generator().manual_seed(seed)
    emb = text.minilm(NAMES)
    mix = torch.randn(2, 384, d_in, generator=g) / 4
    b = torch.randn(8, 2, generator=g)
    rows = []
    for c, name in enumerate(NAMES):
        for j in range(per_class):
            a = torch.einsum("t,rtd->rd", emb[c], mix) * 4 + 0.3 * torch.randn(2, d_in, generator=g)
            tensors = {}
            for layer in layers:
                tensors[f"{layer}.lora.up.weight"] = b + 0.05 * torch.randn(8, 2, generator=g)
                tensors[f"{layer}.lora.down.weight"] = a if "attn2" in layer else torch.randn(2, d_in, generator=g)
            mid = f"m-c{c:02d}-{j}"
            meta = {"model_id": mid, "class_id": c, "class_name": name}
            zoo.save_model(folder / "models" / f"{mid}.safetensors", tensors, meta)
            rows.append(meta)
    return folder


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _write_zoo(tmp_path_factory.mktemp("planted"))


def _cfg(**kw):
    # the class is planted in A (2 x 16); ProbeX's probes pass through the layer, so each one reads A·u_l, two
    # numbers: 16 probes see all of A, 32 leave room (top-5 search precision over all 20 queries: 0.65 with 8
    # probes, 0.66 with 16, 0.96 with 32)
    return profiles.get_config("aligned", "default", {"epochs": 80, "r_u": 32, "r_v": 8, "r_t": 16, "ks": (1, 2),
                                                      "n_queries": 3, "n_retrieved": 3, "repeats": 2, **kw})


@pytest.fixture(scope="module")
def swept(planted, tmp_path_factory):
    cfg = _cfg()
    [(name, ls)] = zeroshot.open_variants(cfg, "default", {"planted": str(planted)}, n_held=4).items()
    cache = tmp_path_factory.mktemp("cache")
    sweep, model, T = zeroshot.swept_expert(ls, cfg, cache, name, executor="serial")
    return cfg, ls, sweep, model, T, cache


def test_splits_hold_out_classes_whose_words_are_trained(swept):
    _, ls, *_ = swept
    held = ls.classes("holdout")
    assert len(held) == 4 and not set(held) & set(ls.classes("train"))
    trained = [NAMES[c].split() for c in ls.classes("train")]
    for c in held:
        colour, shape = NAMES[c].split()
        assert any(t[0] == colour for t in trained) and any(t[1] == shape for t in trained)
    assert set(ls.manifest["split"]) == set(zeroshot.SPLITS)


def test_layer_sweep_finds_the_planted_layer_and_generalises_zero_shot(swept):
    cfg, ls, sweep, model, T, _ = swept
    assert list(sweep["layer"]) == sorted(LAYERS) and sweep["chosen"].sum() == 1
    assert zeroshot.chosen_layer(sweep) == "blk.attn2.to_k"
    best = sweep[sweep["chosen"]].iloc[0]
    assert best["zeroshot"] > best["zeroshot_chance"] + 0.3 and best["indist"] > 0.5
    noise = sweep[~sweep["chosen"]].iloc[0]  # the attn1 layer holds no class: near chance
    assert noise["zeroshot"] < best["zeroshot"]
    t2 = zeroshot.table2(ls, T, cfg, sweep, "planted", executor="serial")
    assert list(t2["method"]) == ["ProbeX", "Dense", "StatNN linear", "StatNN MLP"]
    assert t2.loc[3, "parameters"] == pytest.approx(t2.loc[0, "parameters"], rel=0.1)  # the MLP is ProbeX's size
    t4 = zeroshot.activation_table(ls, T, cfg, sweep, executor="serial")
    t5 = zeroshot.table5(sweep)
    t6 = zeroshot.encoder_table(ls, cfg, "blk.attn2.to_k", ["minilm", "random"], executor="serial")
    assert (t2["repeats"] == 2).all() and (t2["zeroshot_sd"] >= 0).all()
    # seed 0 of the repeated ProbeX row is the sweep's own fit (one thread each): same numbers
    assert t2.loc[0, "val"] >= 0 and t2.loc[0, "parameters"] == best["parameters"]
    assert t6.set_index("encoder").loc["minilm", "zeroshot"] > t6.set_index("encoder").loc["random", "zeroshot"]
    record = zeroshot.judge(t2, t4, t5, sweep, t6)
    assert [c.id for c in record] == ["P-T2", "P-T4", "P-T5", "P-T6"]


def test_checkpoint_is_cached_and_round_trips(swept, monkeypatch):
    cfg, ls, sweep, model, _, cache = swept
    [ckpt] = list(cache.glob("*.safetensors"))
    ck = aligned.read_aligned(ckpt)
    assert ck.layers == ["blk.attn2.to_k"] and ck.meta["text_encoder"] == "minilm"
    x = ls.sel("holdout", ck.layers)
    torch.testing.assert_close(ck.model(x), model(x))
    monkeypatch.setattr(zeroshot, "layer_sweep", lambda *a, **k: pytest.fail("cache not used"))
    again, _, _ = zeroshot.swept_expert(ls, cfg, cache, "planted")
    pd.testing.assert_frame_equal(again, pd.read_csv(cache / f"{ckpt.stem}.csv"))


def test_search_by_text_ranks_the_querys_class_first_and_caches(swept, planted, tmp_path, monkeypatch, capsys):
    *_, cache = swept
    [ckpt] = list(cache.glob("*.safetensors"))
    res = search.search(planted, "a red star", ckpt, top=5, cache_dir=tmp_path)
    assert list(res.columns[:3]) == ["rank", "score", "model_id"] and len(res) == 5
    assert (res["class_name"] == "red star").mean() >= 0.6
    assert res["score"].is_monotonic_decreasing
    monkeypatch.setattr(aligned, "lora_deltas", lambda *a, **k: pytest.fail("embeddings not cached"))
    again = search.search(planted, "a red star", ckpt, top=5, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(res, again)
    monkeypatch.undo()
    assert search.main([str(planted), "a blue circle", "--checkpoint", str(ckpt), "--top", "3",
                        "--cache-dir", str(tmp_path)]) == 0
    assert "blue circle" in capsys.readouterr().out


def test_search_cache_notices_a_changed_folder(swept, tmp_path):
    *_, cache = swept
    [ckpt] = list(cache.glob("*.safetensors"))
    folder = _write_zoo(tmp_path / "small", per_class=1)
    _, z1 = search.embed_folder(folder, ckpt, tmp_path / "c")
    (folder / "models" / "m-c00-0.safetensors").unlink()
    m2, z2 = search.embed_folder(folder, ckpt, tmp_path / "c")
    assert len(z1) == 20 and len(z2) == 19 and "m-c00-0" not in set(m2["model_id"])


def test_search_bad_input_is_named(swept, tmp_path, capsys):
    *_, cache = swept
    [ckpt] = list(cache.glob("*.safetensors"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(search.SearchError, match="empty: no LoRA files"):
        search.search(tmp_path / "empty", "a red star", ckpt)
    other = _write_zoo(tmp_path / "other", per_class=1, layers=("blk.attn2.to_v",))
    with pytest.raises(search.SearchError, match=r"m-c00-0\.safetensors: no LoRA layer 'blk\.attn2\.to_k'"):
        search.search(other, "a red star", ckpt, cache_dir=tmp_path)
    wide = _write_zoo(tmp_path / "wide", per_class=1, d_in=20)
    with pytest.raises(search.SearchError, match=r"has B·A of shape \(8, 20\), the checkpoint expects \(8, 16\)"):
        search.search(wide, "a red star", ckpt, cache_dir=tmp_path)
    with pytest.raises(search.SearchError, match="trained with the 'minilm' text encoder, not 'clip'"):
        search.search(other, "a red star", ckpt, encoder="clip")
    with pytest.raises(zoo.ZooError, match="not an aligned ProbeX checkpoint"):
        search.search(other, "a red star", next((other / "models").iterdir()))
    assert search.main([str(tmp_path / "empty"), "a red star", "--checkpoint", str(ckpt)]) == 2
    assert "no LoRA files" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot embed free text"):
        text.embed("bow", ["a red star"], raw=True)


def test_a_text_encoder_of_another_dimension_is_refused(swept, tmp_path):
    *_, model, _, _ = swept
    path = aligned.save_aligned(tmp_path / "ck.safetensors", model, ["blk.attn2.to_k"], {"text_encoder": "minilm"})
    ck = aligned.read_aligned(path)
    ck.model.spec["d_text"] = 512  # as if trained against a 512-d text space
    with pytest.raises(search.SearchError, match="gives 384-d embeddings, the checkpoint expects 512-d"):
        search.embed_query(ck, ["a red star"])


def test_manifest_problems_are_named(planted):
    m = modelj.open_generative(planted)
    with pytest.raises(zoo.ZooError, match=r"lacks column\(s\) \['split'\]"):
        zeroshot.load_loras(m)
    with pytest.raises(zoo.ZooError, match="record no split; pass n_held"):
        zeroshot.open_variants(_cfg(), "default", {"x": str(planted)})
    bad = m.assign(split=np.where(m["class_id"] == 0, "holdout", "train"))
    bad.loc[5, "split"] = "val"
    bad.loc[10, "split"] = "test"
    bad.loc[7, "split"] = "holdout"  # a model of class 1 held out while class 1 also trains
    with pytest.raises(zoo.ZooError, match=r"held-out classes \[1\] also have train/val/test models"):
        zeroshot.load_loras(bad)
    with pytest.raises(zoo.ZooError, match="without models"):
        zeroshot.load_loras(m.assign(split="train"))
    with pytest.raises(zoo.ZooError, match="no LoRA layer name contains"):
        zeroshot.load_loras(zeroshot.assign_generative_splits(m, 4), layer_filter=("mid_block",))


def test_retrieval_knn_occ_and_queries(swept):
    cfg, ls, sweep, model, _, _ = swept
    layer = zeroshot.chosen_layer(sweep)
    t3 = retrieval.knn_occ(ls, model, layer, cfg.ks, "planted")
    assert set(t3["representation"]) == {"raw weights", "StatNN", "ProbeX"} and len(t3) == 6
    probex = t3[t3["representation"] == "ProbeX"]
    assert (probex["knn_acc"] > 0.6).all() and (probex["occ_auc"] > 0.8).all()
    ret = retrieval.retrieval_table(ls, model, layer, cfg.n_queries, cfg.n_retrieved, seed=0)
    assert len(ret) == 3 * 4 and (ret[ret["rank"] == 0]["model_id"] == ret[ret["rank"] == 0]["query"]).all()
    pd.testing.assert_frame_equal(ret, retrieval.retrieval_table(ls, model, layer, cfg.n_queries, cfg.n_retrieved, seed=0))
    assert set(ret[ret["rank"] == 0]["split"]) == {"holdout"}
    prec = retrieval.precision_at_k(ls, model, layer, 3)
    assert prec["precision"] > prec["chance"] + 0.2
    assert [c.id for c in retrieval.judge(t3, prec)] == ["P-T3", "P-F7"]


def test_knn_handles_small_classes_and_refuses_singletons():
    z = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0.05, 1]], float)
    assert aligned.knn_accuracy(z, np.array([0, 0, 1, 1, 1]), 3) == 1.0  # class 0 has only one other model
    with pytest.raises(ValueError, match="at least 2 models per class"):
        aligned.knn_accuracy(z, np.array([0, 1, 1, 1, 1]), 1)


def test_training_images_come_from_metadata():
    row = pd.Series({"data": {"source": "procedural", "n_train": 4, "seed": 0}, "class_id": 2, "image_ids": [0, 3]})
    imgs = retrieval.training_images(row)
    assert imgs.shape[0] == 2 and imgs.dtype == np.uint8
    with pytest.raises(KeyError, match="no 'image_ids'"):
        retrieval.training_images(row.drop("image_ids"))


def test_a_fit_depends_on_its_seed_only_not_on_earlier_work(swept):
    cfg, ls, sweep, _, T, _ = swept
    view = zeroshot.one_layer(ls, zeroshot.chosen_layer(sweep))
    kw = {"kind": "probex", "layers": [zeroshot.chosen_layer(sweep)]}
    short = profiles.get_config("aligned", "default", {"epochs": 5, "r_u": 4, "r_v": 4, "r_t": 8})
    torch.manual_seed(123)
    first = zeroshot.fit_one(view, T, short, **kw)[0].model.state_dict()
    torch.randn(1000)  # other work in the same process moves the global RNG
    again = zeroshot.fit_one(view, T, short, **kw)[0].model.state_dict()
    other = zeroshot.fit_one(view, T, dataclasses.replace(short, seed=1), **kw)[0].model.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
