import numpy as np
import pandas as pd
import pytest
import torch

from probex_lib import claims, motivation as mo, profiles, train, zoo
from probex_lib.nets import ResNet9, count_parameters


def test_resnet9_width8_has_the_documented_size():
    state = ResNet9(8, 25).state_dict()
    assert count_parameters(state) == 104904
    assert ResNet9(4, 5)(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def test_class_split_and_specs_are_deterministic_and_disjoint(tmp_path):
    cfg = profiles.get_config("motivation", "default")
    a, b = mo.class_split(cfg)
    assert len(a) == 50 and len(b) == 25 and not set(a) & set(b)
    specs = mo.population_specs(cfg, tmp_path)
    assert [s.model_id for s in specs] == [s.model_id for s in mo.population_specs(cfg, tmp_path)]
    assert len({s.params["seed"] for s in specs}) == len(specs)
    t1 = [s for s in specs if s.params["population"] == "T1"]
    forest = [s for s in specs if s.params["population"] == "F"]
    assert len(t1) == cfg.models_t1 and len(forest) == cfg.models_forest
    assert {s.params["init"] for s in t1} == {str(zoo.model_path(tmp_path, "root_T1").resolve())}
    assert {s.params["init"] for s in forest} == {"random"}
    assert all(set(s.params["classes"]) <= set(a) and len(s.params["classes"]) == 25 for s in specs)
    assert mo.population_specs(profiles.get_config("motivation", "default", seed=1), tmp_path)[0].params["classes"] != t1[0].params["classes"]


def test_split_indices_fractions():
    tr, va, te = mo.split_indices(100, (0.7, 0.1, 0.2), seed=0)
    assert (len(tr), len(va), len(te)) == (70, 10, 20)
    assert len(set(tr) | set(va) | set(te)) == 100


def test_split_is_nested_in_the_population_size():
    """The first k models of a population are split as a k-model population (scaling curves)."""
    big = mo.split_indices(140, (0.7, 0.1, 0.2), seed=3)
    for k in (35, 70):
        small = mo.split_indices(k, (0.7, 0.1, 0.2), seed=3)
        for part_small, part_big in zip(small, big):
            assert part_small.tolist() == [i for i in part_big if i < k]
    assert [len(p) for p in mo.split_indices(70, (0.7, 0.1, 0.2), seed=3)] == [49, 7, 14]
    with pytest.raises(ValueError, match="population of 3 models"):
        mo.split_indices(3, (0.7, 0.1, 0.2), seed=0)
    with pytest.raises(profiles.ProfileError, match="multiples of 0.1"):
        mo.split_indices(50, (0.75, 0.05, 0.2), seed=0)


def test_training_learns_and_bad_roots_are_named(kit_dirs):
    cfg = profiles.get_config("motivation", "smoke")
    p = {**mo._base_params(cfg), "classes": [0, 31], "images_per_class": 30, "epochs": 5, "lr": 0.05, "batch_size": 16,
         "seed": 0, "init": "random", "data": {"source": "procedural", "seed": 0, "n_train": 30, "n_test": 20}}
    state, meta = train.train_resnet9(p)
    assert meta["test_accuracy"] > 0.75  # red circle vs green square: easy
    assert meta["class_names"] == ["red circle", "green square"]
    bad = zoo.save_model(kit_dirs[0] / "bad.safetensors", {"prep.conv.weight": torch.zeros(1)}, {})
    with pytest.raises(zoo.ZooError, match=r"bad\.safetensors: cannot initialise.*missing"):
        train.train_resnet9({**p, "init": str(bad)})
    wide = zoo.save_model(kit_dirs[0] / "wide.safetensors", ResNet9(8, 2).state_dict(), {})
    with pytest.raises(zoo.ZooError, match=r"wide\.safetensors: layer 'prep.conv.weight' has shape \(8, 3, 3, 3\)"):
        train.train_resnet9({**p, "init": str(wide)})


def _synthetic_pops(rng, n=80, d=300, k=10):
    """T trees: labels linearly readable from weights (one direction set per tree); F: no signal."""
    def pop(signal, directions):
        y = (rng.random((n, k)) < 0.5).astype(float)
        x = signal * y @ directions + rng.normal(size=(n, d))
        return mo.Population(x, y, *mo.split_indices(n, (0.7, 0.1, 0.2), int(rng.integers(1000))))
    pops = {f"T{t}": pop(0.3, rng.normal(size=(k, d))) for t in range(1, 5)}
    pops["F"] = pop(0.0, np.zeros((k, d)))
    return pops


def test_experiments_on_planted_populations():
    pops = _synthetic_pops(np.random.default_rng(0))
    a = mo.tree_vs_forest(pops)
    acc = dict(zip(a.population, a.accuracy))
    assert acc["T1"] > 0.85 and abs(acc["F"] - 0.5) < 0.1
    b = mo.positive_transfer(pops, (5, 20, 56, 999), 2, seed=0)
    assert set(b.n_train) == {5, 20, 56}  # sizes above the training split are dropped
    c = mo.negative_transfer(pops, ["T1", "T2", "T3", "T4"])
    assert c.n_train.tolist() == [56, 112, 168, 224]
    assert c.accuracy.iloc[-1] < c.accuracy.iloc[0]  # other trees' directions only add confusion
    d = mo.moe_vs_shared(pops, ["T1", "T2", "T3", "T4"])
    assert set(d.method) == {"MoE", "shared"} and len(d) == 8


def _tables(t, f, curve, by_k, moe, shared, repeats=(0, 1), spread=0.01):
    a = pd.DataFrame({"population": ["T1", "F"], "n_train": [70, 70], "accuracy": [t, f], "n_decisions": 1000})
    b = pd.DataFrame([{"population": "T1", "n_train": n, "repeat": r, "accuracy": v + spread * (-1) ** r}
                      for n, v in curve.items() for r in repeats])
    c = pd.DataFrame({"n_trees": list(by_k), "n_train": 0, "accuracy": list(by_k.values()), "n_decisions": 1000})
    d = pd.DataFrame([{"tree": f"T{i}", "method": m, "accuracy": v, "n_decisions": 500}
                      for i, (x, y) in enumerate(zip(moe, shared)) for m, v in (("MoE", x), ("shared", y))])
    models = pd.DataFrame({"population": ["T1"], "mean": [0.5]})
    return a, b, c, d, models


def test_judge_claims_hands_the_rules_their_numbers():
    """The rules themselves are tested tier by tier in test_verdicts; here: the numbers they get."""
    good = mo.judge_claims(*_tables(0.8, 0.5, {10: 0.6, 50: 0.7}, {1: 0.8, 2: 0.7, 3: 0.75}, [0.8, 0.7], [0.7, 0.6]), "L")
    assert [c.id for c in good] == ["P-F3a", "P-F3b", "P-F3c", "P-F3d"]
    assert [c.verdict for c in good] == ["reproduced"] * 4
    n = {c.id: c.details["numbers"] for c in good}
    assert n["P-F3a"]["se_t"] == pytest.approx(mo.standard_error(0.8, 1000))
    assert n["P-F3b"]["accuracy"] == pytest.approx([0.6, 0.7]) and n["P-F3b"]["se"] == pytest.approx([0.01, 0.01])
    assert n["P-F3c"]["with_others"] == [0.7, 0.75] and n["P-F3d"]["ahead"] == 2 and n["P-F3d"]["trees"] == 2
    # SE of 0.614 over 1000 decisions = 0.0154: drops of 0.005 are noise, not negative transfer
    noise = mo.judge_claims(*_tables(0.8, 0.5, {10: 0.6, 50: 0.7}, {1: 0.614, 2: 0.609, 3: 0.613}, [0.614, 0.56], [0.613, 0.556]), "L")
    assert [c.verdict for c in noise][2:] == ["not reproduced", "not reproduced"]
    assert mo.standard_error(0.5, 100) == pytest.approx(0.05)
    one_repeat = mo.judge_claims(*_tables(0.8, 0.5, {10: 0.6, 50: 0.7}, {1: 0.8}, [0.8], [0.7], repeats=(0,)), "L")
    assert one_repeat[1].verdict == claims.NOT_JUDGED and "'se'" in one_repeat[1].details["not_judged"]


def test_judge_claims_uses_the_se_over_test_models_when_the_tables_carry_it():
    a, b, c, d, models = _tables(0.8, 0.5, {10: 0.6, 50: 0.7}, {1: 0.8, 2: 0.7}, [0.8, 0.7], [0.7, 0.6])
    a, c, d = a.assign(se=[0.05, 0.04]), c.assign(se=0.05), d.assign(se=0.03)
    n = {x.id: x.details["numbers"] for x in mo.judge_claims(a, b, c, d, models, "L")}
    assert (n["P-F3a"]["se_t"], n["P-F3a"]["se_f"], n["P-F3c"]["se"]) == (0.05, 0.04, 0.05)
    assert n["P-F3d"]["se_moe"] == pytest.approx(np.sqrt(2 * 0.03**2) / 2)


def test_fit_eval_se_is_the_se_of_per_model_accuracies():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)), (rng.random((40, 3)) > 0.5).astype(np.float32)
    (acc, se), = mo._fit_eval_se([(x[:30], y[:30])], (x[30:35], y[30:35]), {"t": (x[30:], y[30:])}).values()
    assert 0 <= acc <= 1 and 0 < se < 0.5
