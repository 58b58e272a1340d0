"""Notebook 08's machinery without training: axis checks, shared zoos, point reuse, curve judging."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from probex_lib import claims, modelj, motivation, mother_zoo, profiles, scaling, verdicts


def test_scaling_profile_extends_default_everywhere_else():
    for section in profiles.sections():
        if section != "scaling":
            assert profiles.get_config(section, "scaling") == profiles.get_config(section, "default")
    big, default = profiles.get_config("scaling", "scaling"), profiles.get_config("scaling", "default")
    for axis in scaling.AXES:  # the scaling profile's points include the default's (one curve, extended)
        assert set(scaling.axis_values(default, axis)) <= set(scaling.axis_values(big, axis))
        # probex_models is bounded by notebook 02's zoo, lr_spread by the paper's own spread (45), lora_classes
        # by the variant's 40 training classes
        if scaling.axis_values(default, axis) and axis not in ("probex_models", "lr_spread", "lora_classes"):
            assert max(scaling.axis_values(big, axis)) > max(scaling.axis_values(default, axis))


@pytest.mark.parametrize("overrides, message", [
    ({"tree_models": [5, 70]}, r"axis tree_models: value 5: a population needs >= 10 models"),
    ({"root_steps": [5, 600]}, r"axis root_steps: value 5: fewer than 10 steps"),
    ({"resnet_widths": [0, 8]}, r"axis resnet_width: value 0 is not a positive integer"),
    ({"root_steps": [300, 300]}, r"axis root_steps: repeated values"),
    ({"axes": ["root_steps", "depth"]}, r"unknown scaling axis \['depth'\]"),
    ({"resnet_widths": [4, 8], "width_models": 3}, r"width_models = 3"),
    ({"probex_models": [25, 200]}, r"axis probex_models: value 200: each Model-J tree has 105 training models"),
    ({"lora_models": [1, 4]}, r"axis lora_models: value 1: kNN on held-out classes needs >= 2 LoRAs per class"),
    ({"lora_ranks": [4, 64]}, r"axis lora_rank: value 64: above the narrowest adapted layer's width 32 .*not a low-rank"),
    ({"lora_classes": [10, 41]}, r"axis lora_classes: value 41: the variant 'fine' has 40 training classes"),
    ({"lora_classes": [4, 40]}, r"axis lora_classes: value 4: .* needs >= 10 LoRAs \(2 per class\)"),
    ({"lora_axes_k": 1}, r"axis lora_rank \(lora_axes_k\): value 1: kNN on held-out classes needs >= 2 LoRAs"),
    ({"lora_steps": [0, 50]}, r"axis lora_steps: value 0 is not a positive integer"),
    ({"vit_widths": [32, 66]}, r"axis vit_width: value 66: the ViT's 4 attention heads need a hidden width divisible by 4"),
])
def test_unbuildable_axis_values_are_named_before_training(overrides, message):
    cfg = profiles.get_config("scaling", "default", overrides)
    with pytest.raises(scaling.AxisError, match=message):
        scaling.check(cfg, "default")


def test_more_classes_per_model_than_dataset_a_holds_is_an_axis_error(monkeypatch):
    real = profiles.get_config
    monkeypatch.setattr(profiles, "get_config", lambda s, p, o=None, seed=None: (
        dataclasses.replace(real(s, p, o, seed), classes_per_model=80) if s == "motivation" else real(s, p, o, seed)))
    with pytest.raises(scaling.AxisError, match="models of 80 classes, but dataset A has 50"):
        scaling.check(profiles.get_config("scaling", "default"), "default")


def test_every_population_size_shares_one_zoo_and_its_first_models():
    base = profiles.get_config("motivation", "default")
    small, large = (scaling.motivation_point_config(base, n) for n in (35, 140))
    assert motivation.default_zoo_dir(small, "default") == motivation.default_zoo_dir(large, "default")
    assert motivation.default_zoo_dir(scaling.motivation_point_config(base, 70, False, 16), "default") != \
        motivation.default_zoo_dir(small, "default")  # another width: another zoo
    s_specs = {s.model_id: s.params for s in motivation.population_specs(small, motivation.default_zoo_dir(small, "default"))}
    l_specs = {s.model_id: s.params for s in motivation.population_specs(large, motivation.default_zoo_dir(large, "default"))}
    assert len(s_specs) == 5 * 35 and len(l_specs) == 5 * 140
    assert all(l_specs[m] == p for m, p in s_specs.items())  # the 35-model populations are the first 35 of the 140


def test_the_default_root_steps_point_is_a_subset_of_notebook_06s_plan(tmp_path):
    base = profiles.get_config("mother", "default")
    point = scaling.mother_point_config(base, base.root_steps, 3)
    full = {s.model_id: s.params for w in mother_zoo.plan(base, tmp_path).values() for s in w}
    sub = {s.model_id: s.params for w in mother_zoo.plan(point, tmp_path).values() for s in w}
    assert len(sub) == 3 + 3 * 20 + base.chain_stages
    assert all(full[m] == p for m, p in sub.items())  # same specs, seeds and data: reusing 06's files is exact
    other = scaling.mother_point_config(base, 1200, 3)
    assert mother_zoo.folder_for(other, "points", tmp_path) != mother_zoo.folder_for(point, "points", tmp_path)


def test_every_loras_per_class_point_shares_one_folder_and_nests_its_split(tmp_path):
    mcfg = profiles.get_config("modelj", "default")
    dirs = {"diffusion": tmp_path / "diffusion"}
    assert scaling.default_value("lora_models", "default") == mcfg.variants[0][3] == 4
    small, large = ({s.model_id: s.params for s in scaling.lora_point_specs(mcfg, dirs, k)} for k in (2, 8))
    name, n_cls, n_held, _ = mcfg.variants[0]
    assert len(small) == 2 * n_cls and len(large) == 8 * n_cls
    assert all(large[m] == p for m, p in small.items())  # the 2-per-class point is a subset, split included
    held = {p["class_id"] for p in large.values() if p["split"] == "holdout"}
    assert len(held) == n_held and all(p["split"] != "holdout" for p in large.values() if p["class_id"] not in held)
    train = [p for p in small.values() if p["split"] != "holdout"]
    assert [sum(p["split"] == s for p in train) for s in ("train", "val", "test")] == [56, 8, 16]  # whole blocks: 70/10/20
    # LoRA j of a class is notebook 02's LoRA j of that class: the same training run (only its split differs)
    nb02 = {s.model_id: s.params for s in modelj.lora_specs(mcfg, dirs, 0)}
    for m, p in small.items():
        assert {k: v for k, v in p.items() if k != "split"} == {k: v for k, v in nb02[m].items() if k != "split"}
    other = dataclasses.replace(mcfg, lora_rank=8)
    assert scaling.lora_point_dir(other, "default") != scaling.lora_point_dir(mcfg, "default")
    assert scaling.lora_point_dir(dataclasses.replace(mcfg, variants=((name, n_cls, n_held, 25),) + mcfg.variants[1:]),
                                  "default") == scaling.lora_point_dir(mcfg, "default")  # k is not in the folder's hash


def test_lr_spread_stretches_the_kit_set_and_keeps_it_at_its_own_spread():
    base = profiles.get_config("mother", "default")
    assert scaling.default_value("lr_spread", "default") == 10 and scaling.spread_lrs(base.ft_lrs, 10) == base.ft_lrs
    wide = scaling.spread_lrs(base.ft_lrs, 45)
    assert max(wide) / min(wide) == pytest.approx(45, rel=0.01)
    assert np.sqrt(max(wide) * min(wide)) == pytest.approx(np.sqrt(1e-4 * 1e-3), rel=0.01)  # same geometric centre
    assert len(set(scaling.spread_lrs(base.ft_lrs, 1))) == 1
    with pytest.raises(scaling.AxisError, match="axis lr_spread: value 0 is not a positive integer"):
        scaling.check(profiles.get_config("scaling", "default", {"lr_spreads": [0, 10]}), "default")


def test_lr_points_reuse_notebook_06s_roots_and_its_dataset_at_the_kit_spread(tmp_path):
    import torch

    from probex_lib import zoo

    base = profiles.get_config("mother", "default")
    own = scaling.lr_point_config(base, 10, 3)
    full = {s.model_id: s.params for w in mother_zoo.plan(base, tmp_path).values() for s in w}
    sub = {s.model_id: s.params for w in mother_zoo.plan(own, tmp_path).values() for s in w}
    assert len(sub) == 3 + 3 * 20 and all(full[m] == p for m, p in sub.items())  # the kit's spread: 06's models
    src, dst = tmp_path / "06", tmp_path / "point"
    for r in range(3):
        zoo.save_model(zoo.model_path(src, f"root{r}"), {"w": torch.full((2,), float(r))}, {"model_id": f"root{r}"})
    wide = scaling.lr_point_config(base, 45, 3)
    assert scaling._link_roots(wide, base, src, dst) == 3
    assert torch.equal(zoo.load_tensors(zoo.model_path(dst, "root2"))["w"], torch.full((2,), 2.0))
    assert scaling._link_roots(wide, base, src, dst) == 0  # already there
    other = dataclasses.replace(wide, root_steps=base.root_steps * 2)  # other roots: nothing linked
    assert scaling._link_roots(other, base, src, tmp_path / "other") == 0
    # each fine-tune keeps notebook 06's draws: only its rate (stretched) and its folder differ
    stretch = dict(zip(base.ft_lrs, wide.ft_lrs))
    mine = {s.model_id: s.params for w in mother_zoo.plan(wide, dst).values() for s in w if s.params["subset"] == "FT"}
    theirs = {s.model_id: s.params for w in mother_zoo.plan(base, src).values() for s in w if s.params["subset"] == "FT"}
    assert len(mine) == 60 and {p["lr"] for p in mine.values()} == set(wide.ft_lrs)
    for m, p in mine.items():
        assert p["lr"] == stretch[theirs[m]["lr"]]
        assert {k: v for k, v in p.items() if k not in ("lr", "init")} == \
            {k: v for k, v in theirs[m].items() if k not in ("lr", "init")}
    assert scaling.is_default("M-T1@lr_spread", 10, "default", profiles.get_config("scaling", "default"))
    assert not scaling.is_default("M-F1@lr_spread", 45, "default", profiles.get_config("scaling", "default"))


def test_a_profile_without_a_spread_of_learning_rates_has_no_lr_axis(monkeypatch):
    real = profiles.get_config
    monkeypatch.setattr(profiles, "get_config", lambda s, p, o=None, seed=None: (
        dataclasses.replace(real(s, p, o, seed), ft_lrs=(3e-4, 3e-4)) if s == "mother" else real(s, p, o, seed)))
    with pytest.raises(scaling.AxisError, match=r"axis lr_spread: value 1: .* have no spread to scale"):
        scaling.check(profiles.get_config("scaling", "default"), "default")


def test_available_points_add_only_larger_values_already_on_disk():
    got = scaling._available((150, 600), (150, 600, 2400, 4800), lambda v: v == 2400)
    assert got == [(150, True), (600, True), (2400, False)]
    assert scaling._available((), (4, 8, 16), lambda v: v == 8) == []  # one width on disk is not a curve
    assert scaling._available((), (4, 8, 16), lambda v: True) == [(4, False), (8, False), (16, False)]


def test_share_se_never_reports_zero_noise():
    assert scaling.share_se([1.0, 1.0, 1.0], 60) > 0
    assert scaling.share_se([0.2, 0.8, 0.5], 60) == pytest.approx(scaling.sem([0.2, 0.8, 0.5]))


def _points(curve: str, ys: list[float], verdicts_: list[str], xs=(150, 300, 600, 1200), default=600) -> pd.DataFrame:
    return pd.DataFrame({"curve": curve, "x": list(xs), "y": ys, "se": [0.01] * len(xs), "point_verdict": verdicts_,
                         "default": [x == default for x in xs]})


def test_m_f2_measures_pre_training_rise_per_root_and_fine_tuning_fall_per_tree():
    def row(model_id, tree, subset, mode, trace):
        return {"model_id": model_id, "tree": tree, "subset": subset, "mode": mode, "lr": 1e-3, "path": f"{model_id}.safetensors",
                "trace_step": list(range(len(trace))), "trace_attention": list(trace)}

    man = pd.DataFrame([row("r0", "r0", "root", "pretrain", [1, 2, 3]), row("r1", "r1", "root", "pretrain", [1, 3, 2]),
                        row("a", "r0", "FT", "finetune", [3, 2, 1]), row("b", "r0", "FT", "finetune", [3, 2, 1]),
                        row("c", "r1", "FT", "finetune", [1, 2, 1])])
    f2 = scaling.m_f2_numbers(man)
    assert f2["pre"]["y"] == pytest.approx(0.75)  # r0 rises on 2 of 2 records, r1 on 1 of 2
    assert f2["ft"]["y"] == pytest.approx(0.75)  # tree r0 falls on 4 of 4, tree r1 on 1 of 2
    assert f2["pre"]["rule"] == f2["ft"]["rule"] == {"pre_up": 1.0, "n_pre": 2, "ft_down": pytest.approx(2 / 3), "n_ft": 3}
    assert f2["ft"]["se"] > 0 and verdicts.judge("M-F2", f2["ft"]["rule"], "").verdict == "not reproduced"
    assert "M-F2@lr_spread" in scaling.CURVES_OF_AXIS["lr_spread"] and "M-F2@lr_spread" in verdicts.TREND_CURVES


def test_judge_curves_fits_judges_and_applies_the_move_rule():
    pts = pd.concat([_points("M-T1@root_steps", [0.5, 0.6, 0.7, 0.8], ["not reproduced"] * 3 + ["partly"]),
                     _points("M-F1@root_steps", [0.5, 0.5, 0.5, 0.5], ["not reproduced"] * 4)], ignore_index=True)
    record, fits = scaling.judge_curves(pts, {"root_steps": (150, 300, 600, 1200)})
    by = {c.id: c for c in record}
    assert by["M-T1@root_steps"].verdict == "trend toward paper" and by["M-F1@root_steps"].verdict == "no trend"
    f = fits.set_index("curve")
    assert f.loc["M-T1@root_steps", "slope per doubling"] == pytest.approx(0.1)
    assert f.loc["M-T1@root_steps", "move default to"] == 1200 and f.loc["M-F1@root_steps", "move default to"] == ""
    assert by["M-T1@root_steps"].details["largest"] == 1200
    assert all(c.verdict in claims.TREND_TIERS for c in record)
    assert set(by) <= set(verdicts.TREND_CURVES)
    assert np.isfinite(f["slope SE"]).all()


def test_first_training_models_are_nested_and_keep_val_and_test():
    sub = pd.DataFrame({"tree": "T", "model_id": [f"m{i}" for i in range(20)],
                        "split": ["train"] * 14 + ["val"] * 2 + ["test"] * 4})
    small, large = (scaling.first_training_models(sub, n, seed=0) for n in (5, 10))
    assert (small["split"] == "train").sum() == 5 and (large["split"] == "train").sum() == 10
    assert set(small["model_id"]) <= set(large["model_id"])
    assert list(small[small["split"] != "train"]["model_id"]) == list(sub[sub["split"] != "train"]["model_id"])
    assert list(scaling.first_training_models(sub, 14, 0)["model_id"]) == list(sub["model_id"])  # all: nothing reordered
    with pytest.raises(scaling.AxisError, match="tree T has 14 training models"):
        scaling.first_training_models(sub, 15, 0)


def test_measurements_are_computed_once_per_point_and_library_version(kit_dirs, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return {"y": 0.5, "se": float("nan"), "rule": {"n": 3}}

    first = scaling.measured({"axis": "a", "value": 1}, compute)
    again = scaling.measured({"axis": "a", "value": 1}, compute)
    assert len(calls) == 1 and first["y"] == again["y"] == 0.5 and first["rule"] == {"n": 3}
    scaling.measured({"axis": "a", "value": 2}, compute)  # another point
    monkeypatch.setattr(scaling, "library_hash", lambda: "changed")
    scaling.measured({"axis": "a", "value": 1}, compute)  # the library changed: measured again
    assert len(calls) == 3
    assert not list((kit_dirs[0] / "scaling" / "measured").glob("*.tmp"))


def test_a_point_is_marked_default_only_when_it_is_the_profiles_experiment():
    cfg = profiles.get_config("scaling", "default")
    assert scaling.is_default("M-T1@root_steps", 600, "default", cfg) and not scaling.is_default("M-T1@root_steps", 1200, "default", cfg)
    assert scaling.is_default("P-F3a@models", 140, "default", cfg)
    assert not any(scaling.is_default("P-F3c@models", n, "default", cfg) for n in cfg.tree_models)  # 01: T2..T4 at 50
    big = profiles.get_config("scaling", "scaling")
    assert scaling.default_value("resnet_width", "scaling", big) == -1  # widths at 70 models, notebook 01 at 140
    same = dataclasses.replace(big, width_models=140)
    assert scaling.default_value("resnet_width", "scaling", same) == 8
    assert scaling.is_default("P-T1@models", 105, "default", cfg)


def test_loras_recording_another_split_than_the_plan_are_an_error(monkeypatch, tmp_path):
    from probex_lib import zoo

    mcfg = profiles.get_config("modelj", "default")
    dirs = {"diffusion": tmp_path / "diffusion"}

    def fake_generate(folder, specs, *a, **k):
        rows = [{"model_id": s.model_id, "split": s.params["split"]} for s in specs]
        rows[0]["split"] = "test" if rows[0]["split"] != "test" else "train"  # written under another rule
        return pd.DataFrame(rows)

    monkeypatch.setattr(zoo, "generate_zoo", fake_generate)
    with pytest.raises(zoo.ZooError, match="record another split than the nested split planned now"):
        scaling.lora_point(mcfg, 2, dirs, "default")
    monkeypatch.setattr(zoo, "generate_zoo", lambda folder, specs, *a, **k: pd.DataFrame(
        [{"model_id": s.model_id, "split": s.params["split"]} for s in specs]))
    man, _ = scaling.lora_point(mcfg, 2, dirs, "default")
    assert len(man) == 2 * mcfg.variants[0][1]


def test_rank_and_steps_points_are_paired_runs_of_notebook_02s_loras_and_classes_points_nest(tmp_path):
    mcfg, cfg = profiles.get_config("modelj", "default"), profiles.get_config("scaling", "default")
    dirs = {"diffusion": tmp_path / "diffusion"}
    base = {s.model_id: s.params for s in scaling.lora_point_specs(mcfg, dirs, 2)}
    nb02 = {s.model_id: s.params for s in modelj.lora_specs(mcfg, dirs, 0)}
    assert all({k: x for k, x in p.items() if k != "split"} == {k: x for k, x in nb02[m].items() if k != "split"}
               for m, p in base.items())  # the 2-per-class LoRAs are notebook 02's runs
    assert scaling.lora_axis_config(mcfg, "lora_rank", 4) == mcfg == scaling.lora_axis_config(mcfg, "lora_steps", 50)
    assert scaling.steps_grid((30, 40, 50), 100) == (60, 80, 100) and scaling.steps_grid((30, 40, 50), 25) == (15, 20, 25)
    for axis, v, field, want in (("lora_rank", 16, "rank", lambda p: 16), ("lora_steps", 100, "steps", lambda p: 2 * p["steps"])):
        pc = scaling.lora_axis_config(mcfg, axis, v)
        assert scaling.lora_point_dir(pc, "default") != scaling.lora_point_dir(mcfg, "default")
        other = {s.model_id: s.params for s in scaling.lora_point_specs(pc, dirs, 2)}
        assert other.keys() == base.keys()
        for m, p in base.items():  # the same images, lr, seed and split: only the axis's setting moved
            assert other[m][field] == want(p)
            assert {k: x for k, x in other[m].items() if k != field} == {k: x for k, x in p.items() if k != field}
    specs = scaling.lora_point_specs(mcfg, dirs, cfg.lora_axes_k)
    splits = [scaling.class_point_split(mcfg, specs, n) for n in cfg.lora_classes]
    order = scaling.class_order(mcfg)
    assert len(order) == 40 and len(set(order)) == 40
    for n, sp in zip(cfg.lora_classes, splits):
        trained = {base[m]["class_id"] for m, s in sp.items() if s != "holdout"}
        assert trained == set(order[:n])
        assert [sum(s == part for s in sp.values()) for part in ("train", "val", "test", "holdout")] == \
            [14 * n // 10, 2 * n // 10, 4 * n // 10, 2 * 10]
    for small, large in zip(splits, splits[1:]):  # nested: a smaller point's LoRAs keep their split in a larger one
        assert all(large[m] == s for m, s in small.items())


def test_a_classes_point_reads_the_k_point_files_and_relabels_their_split(monkeypatch, tmp_path):
    from probex_lib import zoo

    mcfg = profiles.get_config("modelj", "default")
    dirs = {"diffusion": tmp_path / "diffusion"}
    seen = []

    def fake_generate(folder, specs, *a, **k):
        seen.append(folder)
        return pd.DataFrame([{"model_id": s.model_id, "split": s.params["split"]} for s in specs])

    monkeypatch.setattr(zoo, "generate_zoo", fake_generate)
    man, folder = scaling.lora_point(mcfg, 2, dirs, "default", n_classes=10)
    want = scaling.class_point_split(mcfg, scaling.lora_point_specs(mcfg, dirs, 2), 10)
    assert dict(zip(man["model_id"], man["split"])) == want and len(man) == 2 * (10 + 10)
    assert seen == [folder] == [scaling.lora_point_dir(mcfg, "default")]  # the lora_models folder, no new training


def test_lora_axes_mark_a_default_only_at_notebook_02s_loras_per_class():
    cfg = profiles.get_config("scaling", "default")
    assert cfg.lora_axes_k != profiles.get_config("modelj", "default").variants[0][3]
    assert not any(scaling.is_default(c, v, "default", cfg) for a in ("lora_rank", "lora_steps", "lora_classes")
                   for c in scaling.CURVES_OF_AXIS[a] for v in scaling.axis_values(cfg, a))
    same = dataclasses.replace(cfg, lora_axes_k=4)
    assert [scaling.default_value(a, "default", same) for a in ("lora_rank", "lora_steps", "lora_classes")] == [4, 50, 40]
    assert set(verdicts.TREND_CURVES) == {c for cs in scaling.CURVES_OF_AXIS.values() for c in cs}


def test_a_vit_width_point_is_notebook_02s_supvit_tree_at_another_width(tmp_path):
    mcfg = profiles.get_config("modelj", "default")
    assert scaling.vit_point_config(mcfg, 64) == mcfg and scaling.default_value("vit_width", "default") == -1
    wide = scaling.vit_point_config(mcfg, 128)
    assert wide.vit_size == {**mcfg.vit_size, "hidden_size": 128, "mlp": 512}
    assert modelj.zoo_dirs(wide, "default", tmp_path)["roots"] != modelj.zoo_dirs(mcfg, "default", tmp_path)["roots"]
    ours = [s for s in modelj.finetune_specs(wide, tmp_path) if s.params["tree"] == scaling.VIT_TREE]
    nb02 = {s.model_id: s.params for s in modelj.finetune_specs(mcfg, tmp_path)}
    assert len(ours) == mcfg.models_per_tree
    for s in ours:  # the same classes, hyperparameters, seed and split: only the width moved
        assert s.params["size"]["hidden_size"] == 128
        assert {k: v for k, v in s.params.items() if k != "size"} == {k: v for k, v in nb02[s.model_id].items() if k != "size"}
    root = [s for s in modelj.root_specs(wide) if s.model_id == scaling.VIT_TREE][0].params
    assert {k: v for k, v in root.items() if k != "size"} == \
        {k: v for k, v in modelj.root_specs(mcfg)[0].params.items() if k != "size"}
    big = profiles.get_config("scaling", "scaling")  # one tree of notebook 03's four: never the profile's P-T1
    assert not any(scaling.is_default("P-T1@vit_width", w, "scaling", big) for w in big.vit_widths)


def test_hub_roots_have_no_width_axis():
    cfg = profiles.get_config("scaling", "paper", {"vit_widths": [64, 128, 256]})
    with pytest.raises(scaling.AxisError, match="axis vit_width: the profile's roots come from the hub"):
        scaling.check(cfg, "paper")


def test_a_lora_point_shared_by_two_axes_has_one_measurement_key(monkeypatch, tmp_path):
    """Rank 4 at 2 LoRAs per class is the LoRAs-per-class axis's 2-per-class point: the same key."""
    import json

    from probex_lib import zeroshot

    mcfg = profiles.get_config("modelj", "default")
    dirs = {"diffusion": tmp_path / "diffusion"}
    monkeypatch.setattr(modelj, "build", lambda *a, **k: modelj.Jungle(dirs, {}, pd.DataFrame()))
    monkeypatch.setattr(scaling, "notebook04_layer", lambda *a, **k: "down.1.attn")
    monkeypatch.setattr(scaling, "lora_point", lambda pc, k, d, p, e, w, n=None: (pd.DataFrame(
        [{"model_id": s.model_id, "split": s.params["split"]} for s in scaling.lora_point_specs(pc, d, k)]),
        scaling.lora_point_dir(pc, p)))
    monkeypatch.setattr(zeroshot, "load_loras", lambda *a, **k: None)
    keys = {}

    def fake_measured(key, compute):
        keys.setdefault(json.dumps(key, sort_keys=True, default=str), []).append(key)
        num = {"y": 0.0, "se": 0.1, "rule": {"n": 20}, "ours": ""}
        return {"P-T2": num, "P-T3": num}

    monkeypatch.setattr(scaling, "measured", fake_measured)
    monkeypatch.setattr(scaling, "_rows", lambda curve, x, num, d, src, s: {"curve": curve, "x": x})
    monkeypatch.setattr(scaling, "_available", lambda values, larger, present: [(v, True) for v in values])
    cfg = profiles.get_config("scaling", "default", {"lora_models": [2], "lora_ranks": [1, 4]})
    scaling.run_axis("lora_models", cfg, "default")
    scaling.run_axis("lora_rank", cfg, "default")
    assert sorted(len(v) for v in keys.values()) == [1, 2]  # rank 1 alone; rank 4 and 2 per class share one key
